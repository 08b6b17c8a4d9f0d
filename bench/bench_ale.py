"""Benchmark the ALE Monte Carlo cluster null: NiMARE vs the in-house engine, 3 to ~350 experiments.

Usage::

    python bench/bench_ale.py --out outputs/bench/ale.csv [--cores 1 2] [--repeats 3]
        [--problems cipn nidm_pain enge2021 neuroquery_pain60 neuroquery_pain] [--scale 1.0]

Problems (``bench/problems.py``): a CIPN-sized problem (3 experiments, 11
foci), nidm_pain (21), Enge 2021 (50), the 60 NeuroQuery articles with most
"pain" mentions and all ~350 NeuroQuery pain articles (13,630 foci). A
problem whose input files are missing is skipped with a message.

Only the Monte Carlo null is timed (it is the cost of an ALE): for NiMARE
``FWECorrector(method="montecarlo").transform`` on a fitted result, for the
in-house engine :func:`painmeta.ale.inhouse.null_statistics`, each after a
warm-up (numba compilation, caches). Every (problem, engine, cores) cell runs
in its own subprocess so that ``peak_rss_mb`` (``ru_maxrss``) belongs to it;
the fastest of ``--repeats`` runs is reported, because other processes on a
shared machine only ever make a run slower (``all_seconds`` lists every run,
``cpu_ms_per_iteration`` the CPU time of the fastest, ``load_before`` the
1-minute load average before the cell). ``ratio`` is NiMARE's per-iteration
time (same problem, same cores) divided by the row's; ``cpu_ratio`` the same
for CPU time, which other processes disturb less than wall time.

``null_10000_s`` is the time of a 10,000-iteration null: measured
(``null_10000_how = measured``) for the in-house engine when it takes at most
``--max-measure`` seconds, otherwise per-iteration time x 10,000
(``extrapolated``; NiMARE always).

Floor (in-house rows): the part of an iteration no method can skip - draw the
random foci, index them, compute the exact ALE at the supra-threshold voxels
(and nothing else) and label them - timed with the engine's own kernels on the
true supra-threshold sets of a few iterations (found by computing the whole
ALE map). ``floor_ms`` is that time, ``floor_share`` = floor / per-iteration
time (1.0 would be perfect), ``supra_voxels`` and ``foci_per_voxel`` the mean
work behind it; ``method`` the upper bound the engine chose (sparse / dense).

This is a benchmark, never a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import problems as bench_problems  # noqa: E402

#: Iterations timed per (problem, engine) at --scale 1.
DEFAULT_ITERS = {
    ("cipn", "nimare"): 200, ("cipn", "inhouse"): 5000,
    ("nidm_pain", "nimare"): 100, ("nidm_pain", "inhouse"): 2000,
    ("enge2021", "nimare"): 60, ("enge2021", "inhouse"): 1000,
    ("neuroquery_pain60", "nimare"): 30, ("neuroquery_pain60", "inhouse"): 300,
    ("neuroquery_pain", "nimare"): 8, ("neuroquery_pain", "inhouse"): 60,
}
TEN_K = 10_000


def _fit_threshold(foci, n):
    from painmeta.ale import inference
    from painmeta.ale import problem as ale_problem

    problem = ale_problem.make_problem(foci, n)
    return problem, inference.fit_observed(problem).ale_threshold


def worker(problem: str, engine: str, n_iters: int, cores: int, seed: int) -> dict:
    """Time one Monte Carlo null in this process; return the measurements."""
    import warnings

    warnings.simplefilter("ignore")
    foci, n = bench_problems.load(problem)
    out: dict = {}
    if engine == "nimare":
        from nimare.correct import FWECorrector

        from painmeta.ale import nimare_engine as ne

        studyset, _ = ne.build_dataset(foci, n)
        est = ne.make_estimator(seed, n_cores=cores)
        with ne.quiet_nimare():
            res = est.fit(studyset)
            FWECorrector(method="montecarlo", voxel_thresh=0.001, n_iters=3, n_cores=cores).transform(res)  # warm-up
            _mark_children()
            t0, c0 = time.perf_counter(), time.process_time()
            FWECorrector(method="montecarlo", voxel_thresh=0.001, n_iters=n_iters, n_cores=cores).transform(res)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        if cores > 1:
            cpu = _tree_cpu_seconds(cpu)
    else:
        from painmeta.ale import inhouse as ih

        problem_, thr = _fit_threshold(foci, n)
        ih.null_statistics(problem_, thr, n_iters=20, seed=seed, n_threads=cores)  # warm-up (numba)
        t0, c0 = time.perf_counter(), time.process_time()
        ih.null_statistics(problem_, thr, n_iters=n_iters, seed=seed, n_threads=cores)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        out["method"] = "dense" if ih._null_plan(problem_, thr).dense else "sparse"
    out.update({"seconds": seconds, "cpu_seconds": cpu,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0})  # kB on Linux
    return out


_CPU_START: dict = {}


def _mark_children() -> None:
    try:
        import psutil
    except ImportError:  # pragma: no cover
        return
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
            _CPU_START[child.pid] = t.user + t.system
        except psutil.Error:
            pass


def _tree_cpu_seconds(own: float) -> float:
    """CPU seconds of this process plus its live children (NiMARE's joblib workers), since the warm-up."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is in the lock
        return float("nan")
    total = own
    for child in psutil.Process().children(recursive=True):
        try:
            t = child.cpu_times()
            total += t.user + t.system - _CPU_START.get(child.pid, 0.0)
        except psutil.Error:
            pass
    return total


def floor_worker(problem: str, n_samples: int, seed: int) -> dict:
    """Time the unavoidable part of an iteration on the true supra-threshold sets (see module docstring)."""
    import numpy as np
    import pandas as pd

    from painmeta.ale import inhouse as ih
    from painmeta.ale import problem as pb

    foci, n = bench_problems.load(problem)
    problem_, thr = _fit_threshold(foci, n)
    job = ih._null_job(problem_, thr)
    plan = job.plan
    scr = tuple(a[0] for a in job.scratch(1))
    fpad, b_start, b_fill, b_list = scr[6], scr[7], scr[8], scr[9]
    g_list, rowm, acc, out, lab = scr[11], scr[12], scr[13], scr[5], scr[2]
    geom = problem_.mask
    draws = ih.draw_null_foci(problem_, n_samples, seed)
    psz, psy = int(plan.pshape[2]), int(plan.pshape[1] * plan.pshape[2])
    times, supra, per_voxel = [], [], []
    for d in draws:
        f = pd.DataFrame(geom.vox2mm(geom.inmask_ijk[d]), columns=["x", "y", "z"])
        f.insert(0, "experiment_id", [problem_.experiment_ids[e] for e in problem_.focus_exp])
        q = pb.make_problem(f, dict(zip(problem_.experiment_ids, problem_.sample_sizes)),
                            experiment_order=problem_.experiment_ids)
        ale = pb.ale_map(q)
        above = np.nonzero(ale.astype(np.float64) > thr)[0]
        keep = above if above.size else np.array([int(np.argmax(ale))])
        ijk = geom.inmask_ijk[keep].astype(np.int64) - plan.origin
        idx = np.sort(ijk[:, 0] * psy + ijk[:, 1] * psz + ijk[:, 2])
        # foci reaching each supra-threshold voxel (work of the exact ALE)
        fi = geom.inmask_ijk[d].astype(np.int64) - plan.origin
        rad = plan.k_radius[job.f_kernel]
        reach = 0
        for v in ijk:
            reach += int(np.sum(np.all(np.abs(fi - v) <= rad[:, None], axis=1)))
        supra.append(above.size)
        per_voxel.append(reach / max(len(ijk), 1))
        cand = np.zeros(max(idx.size, 1), dtype=np.int64)
        fp = (job.inmask[d] - plan.origin).astype(np.int64)
        args = (fp, fpad, job.f_kernel, job.f_exp, plan.bsize, plan.bshape, b_start, b_fill, b_list, idx, cand,
                plan.pshape, plan.rmax, plan.k_radius, plan.logcube, g_list, rowm, acc, out, float(thr), lab)
        _floor_loop(1, *args)  # compile / warm
        reps = max(3, min(2000, int(2e6 // max(1, idx.size * per_voxel[-1] + problem_.n_foci))))
        rng = np.random.default_rng(seed)
        t0 = time.perf_counter()
        for _ in range(reps):
            rng.integers(0, geom.n_voxels, problem_.n_foci)  # drawing the random foci
        t_draw = (time.perf_counter() - t0) / reps
        t0 = time.perf_counter()
        _floor_loop(reps, *args)
        times.append((time.perf_counter() - t0) / reps + t_draw)
    return {"floor_ms": 1000 * float(np.median(times)), "supra_voxels": float(np.mean(supra)),
            "foci_per_voxel": float(np.mean(per_voxel))}


def _label_impl(above_idx, n, vals, thr, pshape, lab):  # the engine's labelling step, alone
    parent = np.arange(n)
    psz = pshape[2]
    psy = pshape[1] * pshape[2]
    for a in range(n):
        lab[above_idx[a]] = a + 1
    for a in range(n):
        idx = above_idx[a]
        for d in (1, psz, psy):
            b = lab[idx + d] - 1
            if b >= 0:
                ra = a
                while parent[ra] != ra:
                    ra = parent[ra]
                rb = b
                while parent[rb] != rb:
                    rb = parent[rb]
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
    sizes = np.zeros(max(n, 1), dtype=np.int64)
    mass = np.zeros(max(n, 1), dtype=np.float64)
    for a in range(n):
        root = a
        while parent[root] != root:
            root = parent[root]
        sizes[root] += 1
        mass[root] += np.float64(vals[a]) - thr
        lab[above_idx[a]] = 0
    return sizes.max(), mass.max()


_JIT: dict = {}


def _floor_loop(reps, fp, fpad, f_kernel, f_exp, bsize, bshape, b_start, b_fill, b_list, idx, cand, pshape, rmax,
                k_radius, logcube, g_list, rowm, acc, out, thr, lab):
    """``reps`` times: index the foci, exact ALE at the given voxels, label them (compiled on first use)."""
    if "loop" not in _JIT:
        from numba import njit

        from painmeta.ale import inhouse as ih

        label = njit(_label_impl)

        def loop(reps, fp, fpad, f_kernel, f_exp, bsize, bshape, b_start, b_fill, b_list, idx, cand, pshape, rmax,
                 k_radius, logcube, g_list, rowm, acc, out, thr, lab):
            tot = 0.0
            for _ in range(reps):
                fpad[:, :] = fp
                ih._bucket_foci(fpad, f_kernel, f_exp, bsize, bshape, b_start, b_fill, b_list)
                cand[:idx.shape[0]] = idx
                ih._exact_runs(cand, idx.shape[0], pshape, rmax, bsize, bshape, b_start, b_list, k_radius,
                               logcube, g_list, rowm, acc, out)
                s, m = label(cand, idx.shape[0], out, thr, pshape, lab)
                tot += m
            return tot

        _JIT["loop"] = njit(loop)
    return _JIT["loop"](reps, fp, fpad, f_kernel, f_exp, bsize, bshape, b_start, b_fill, b_list, idx, cand,
                        pshape, rmax, k_radius, logcube, g_list, rowm, acc, out, thr, lab)


def _run(args: list[str], cores: int) -> dict:
    cmd = [sys.executable, __file__, *args]
    env = dict(os.environ, NUMBA_NUM_THREADS=str(max(cores, 1)), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="outputs/bench/ale.csv")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, nargs="+", default=[1, 2], help="core counts to benchmark")
    parser.add_argument("--problems", nargs="+", default=list(bench_problems.PROBLEMS),
                        choices=list(bench_problems.PROBLEMS))
    parser.add_argument("--engines", nargs="+", default=["nimare", "inhouse"], choices=["nimare", "inhouse"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the default iteration counts")
    parser.add_argument("--max-measure", type=float, default=120.0,
                        help="measure the 10,000-iteration in-house null when it takes at most this many seconds")
    parser.add_argument("--floor-samples", type=int, default=3, help="iterations sampled for the floor (0: skip)")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--floor-worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        problem, engine, n_iters, cores, seed = args.worker
        print(json.dumps(worker(problem, engine, int(n_iters), int(cores), int(seed))))
        return 0
    if args.floor_worker:
        problem, n_samples, seed = args.floor_worker
        print(json.dumps(floor_worker(problem, int(n_samples), int(seed))))
        return 0

    import pandas as pd

    rows = []
    for problem in args.problems:
        try:
            foci, n = bench_problems.load(problem)
        except bench_problems.MissingInput as exc:
            print(f"{problem}: skipped ({exc} not found)", flush=True)
            continue
        n_exp, n_foci = len(n), len(foci)
        floor = {}
        if "inhouse" in args.engines and args.floor_samples > 0:
            floor = _run(["--floor-worker", problem, str(args.floor_samples), str(args.seed)], 1)
        for cores in args.cores:
            for engine in args.engines:
                n_iters = max(10, int(DEFAULT_ITERS[(problem, engine)] * args.scale))
                load = os.getloadavg()[0]
                runs = [_run(["--worker", problem, engine, str(n_iters), str(cores), str(args.seed)], cores)
                        for _ in range(args.repeats)]
                best = min(runs, key=lambda r: r["seconds"])
                per_it = 1000 * best["seconds"] / n_iters
                row = {"problem": problem, "n_experiments": n_exp, "n_foci": n_foci, "engine": engine,
                       "cores": cores, "n_iters": n_iters, "seconds": round(best["seconds"], 4),
                       "per_iteration_ms": round(per_it, 4),
                       "cpu_ms_per_iteration": round(1000 * best["cpu_seconds"] / n_iters, 4),
                       "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
                       "method": best.get("method", ""), "repeats": args.repeats, "load_before": round(load, 2),
                       "all_seconds": ";".join(f"{r['seconds']:.3f}" for r in runs)}
                projected = per_it * TEN_K / 1000
                if engine == "inhouse" and projected <= args.max_measure:
                    ten = _run(["--worker", problem, engine, str(TEN_K), str(cores), str(args.seed)], cores)
                    row["null_10000_s"], row["null_10000_how"] = round(ten["seconds"], 1), "measured"
                else:
                    row["null_10000_s"], row["null_10000_how"] = round(projected, 1), "extrapolated"
                if engine == "inhouse" and floor:
                    row["floor_ms"] = round(floor["floor_ms"], 4)
                    row["floor_share"] = round(floor["floor_ms"] / per_it, 3)
                    row["supra_voxels"] = round(floor["supra_voxels"], 1)
                    row["foci_per_voxel"] = round(floor["foci_per_voxel"], 1)
                rows.append(row)
                print(f"{problem:18s} {engine:8s} cores={cores} {per_it:10.3f} ms/iteration "
                      f"(load {load:.1f})", flush=True)
    if not rows:
        print("nothing benchmarked")
        return 1
    table = pd.DataFrame(rows)
    for col, src in (("ratio", "per_iteration_ms"), ("cpu_ratio", "cpu_ms_per_iteration")):
        ref = table[table["engine"] == "nimare"].set_index(["problem", "cores"])[src]
        table[col] = [round(ref[(p, c)] / v, 1) if (p, c) in ref.index else float("nan")
                      for p, c, v in zip(table["problem"], table["cores"], table[src])]
    table["machine"] = f"{platform.processor() or platform.machine()} x{os.cpu_count()}"
    cols = ["problem", "n_experiments", "n_foci", "engine", "cores", "n_iters", "seconds", "per_iteration_ms",
            "cpu_ms_per_iteration", "ratio", "cpu_ratio", "peak_rss_mb", "null_10000_s", "null_10000_how", "method",
            "floor_ms", "floor_share", "supra_voxels", "foci_per_voxel", "repeats", "all_seconds", "load_before",
            "machine"]
    table = table.reindex(columns=cols)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    show = ["problem", "n_experiments", "engine", "cores", "per_iteration_ms", "cpu_ms_per_iteration", "ratio",
            "cpu_ratio", "peak_rss_mb", "null_10000_s", "null_10000_how", "floor_share", "load_before"]
    print(table[show].to_string(index=False))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
