"""Benchmark the ALE Monte Carlo cluster null: NiMARE vs the in-house engine.

Usage::

    python bench/bench_ale.py --out outputs/bench/ale.csv [--repeats 3] [--cores 2]

Problems:

* ``cipn`` - CIPN-sized: 3 experiments, 11 foci, n = 12 / 20 / 13;
* ``nidm_pain`` - the 21-study positive control shipped with NiMARE (267 foci).

Only the Monte Carlo null is timed (it is the cost of an ALE): for NiMARE
``FWECorrector(method="montecarlo").transform`` on a fitted result, for the
in-house engine :func:`painmeta.ale.inhouse.null_statistics`, each after a
warm-up that compiles numba code. Every (problem, engine, cores) cell runs in
its own subprocess so that ``peak_rss_mb`` (``ru_maxrss``) belongs to it; the
fastest of ``--repeats`` runs is reported, because other processes on a shared
machine only ever make a run slower (``all_seconds`` lists every run,
``cpu_ms_per_iteration`` the CPU time of the fastest, ``load_before`` the
1-minute load average before the cell). ``ratio`` is NiMARE's per-iteration time
(same problem, same cores) divided by the row's. This is a benchmark, never a
test: nothing here asserts a time.
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

DEFAULT_ITERS = {("cipn", "nimare"): 300, ("cipn", "inhouse"): 5000,
                 ("nidm_pain", "nimare"): 150, ("nidm_pain", "inhouse"): 1000}


def _problem(name: str):
    import pandas as pd

    from painmeta.ale.models import nidm_pain_model

    if name == "cipn":
        rows = [("boland", 4, 24, 23), ("boland", -50, 13, -8), ("boland", -30, -67, -20), ("boland", 44, 20, -9),
                ("liu", -40, -20, 50), ("liu", 20, -20, 0), ("liu", 0, -30, -10), ("liu", 44, 10, 20),
                ("smith", 2, -54, 30), ("smith", 0, 50, 0), ("smith", -30, -70, 40)]
        foci = pd.DataFrame(rows, columns=["experiment_id", "x", "y", "z"]).astype({"x": float, "y": float, "z": float})
        return foci, {"boland": 12, "liu": 20, "smith": 13}
    model = nidm_pain_model()
    return model.foci[["experiment_id", "x", "y", "z"]], model.sample_sizes


def worker(problem: str, engine: str, n_iters: int, cores: int, seed: int) -> dict:
    """Time one Monte Carlo null in this process; return the measurements."""
    import warnings

    warnings.simplefilter("ignore")
    foci, n = _problem(problem)
    if engine == "nimare":
        from nimare.correct import FWECorrector

        from painmeta.ale import nimare_engine as ne

        studyset, _ = ne.build_dataset(foci, n)
        est = ne.make_estimator(seed, n_cores=cores)
        with ne.quiet_nimare():
            res = est.fit(studyset)
            FWECorrector(method="montecarlo", voxel_thresh=0.001, n_iters=3, n_cores=cores).transform(res)  # warm-up
            t0, c0 = time.perf_counter(), time.process_time()
            FWECorrector(method="montecarlo", voxel_thresh=0.001, n_iters=n_iters, n_cores=cores).transform(res)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    else:
        from painmeta.ale import inference
        from painmeta.ale import problem as ale_problem
        from painmeta.ale import inhouse as ih

        problem_ = ale_problem.make_problem(foci, n)
        thr = inference.fit_observed(problem_).ale_threshold
        ih.null_statistics(problem_, thr, n_iters=10, seed=seed, n_threads=cores)  # warm-up (numba)
        t0, c0 = time.perf_counter(), time.process_time()
        ih.null_statistics(problem_, thr, n_iters=n_iters, seed=seed, n_threads=cores)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": peak}


def _run_cell(problem: str, engine: str, n_iters: int, cores: int, seed: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", problem, engine, str(n_iters), str(cores), str(seed)]
    env = dict(os.environ, NUMBA_NUM_THREADS=str(max(cores, 1)))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="outputs/bench/ale.csv")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, nargs="+", default=[2], help="core counts to benchmark (e.g. 1 2)")
    parser.add_argument("--problems", nargs="+", default=["cipn", "nidm_pain"], choices=["cipn", "nidm_pain"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the default iteration counts")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        problem, engine, n_iters, cores, seed = args.worker
        print(json.dumps(worker(problem, engine, int(n_iters), int(cores), int(seed))))
        return 0

    import pandas as pd

    rows = []
    for problem in args.problems:
        for cores in args.cores:
            for engine in ("nimare", "inhouse"):
                n_iters = max(10, int(DEFAULT_ITERS[(problem, engine)] * args.scale))
                load = os.getloadavg()[0]
                runs = [_run_cell(problem, engine, n_iters, cores, args.seed) for _ in range(args.repeats)]
                best = min(runs, key=lambda r: r["seconds"])
                rows.append({"problem": problem, "engine": engine, "cores": cores, "n_iters": n_iters,
                             "seconds": round(best["seconds"], 4),
                             "per_iteration_ms": round(1000 * best["seconds"] / n_iters, 4),
                             "cpu_ms_per_iteration": round(1000 * best["cpu_seconds"] / n_iters, 4),
                             "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
                             "repeats": args.repeats, "load_before": round(load, 2),
                             "all_seconds": ";".join(f"{r['seconds']:.3f}" for r in runs)})
                print(f"{problem:10s} {engine:8s} cores={cores} {rows[-1]['per_iteration_ms']:9.3f} ms/iteration",
                      flush=True)
    table = pd.DataFrame(rows)
    ref = table[table["engine"] == "nimare"].set_index(["problem", "cores"])["per_iteration_ms"]
    table["ratio"] = [round(ref[(p, c)] / ms, 1) for p, c, ms in zip(table["problem"], table["cores"],
                                                                     table["per_iteration_ms"])]
    table["machine"] = f"{platform.processor() or platform.machine()} x{os.cpu_count()}"
    cols = ["problem", "engine", "n_iters", "seconds", "per_iteration_ms", "peak_rss_mb", "ratio",
            "cores", "cpu_ms_per_iteration", "repeats", "all_seconds", "load_before", "machine"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table[cols].to_csv(out, index=False)
    print(table[cols[:8]].to_string(index=False))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
