"""Fail-safe N: null drawers, the bisection vs the scan, attaching FSN to a result."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from painmeta.ale import fsn as F
from painmeta.ale.problem import make_problem

from ale_fixtures import convergent, enge_like


def test_null_drawer_shapes_nesting_and_seed() -> None:
    foci, sizes = convergent(8, seed=3)
    prob = make_problem(foci, sizes)
    d1 = F.null_drawer(prob, 30, 5)
    d2 = F.null_drawer(prob, 30, 5)
    assert d1.foci.equals(d2.foci) and d1.sample_sizes == d2.sample_sizes
    counts = d1.foci.groupby("experiment_id").size()
    assert set(counts.unique()) <= set(prob.foci_per_experiment().tolist())
    assert set(d1.sample_sizes.values()) <= set(prob.sample_sizes.astype(int).tolist())
    # foci are in-mask voxel centres, distinct within an experiment
    ijk = prob.mask.mm2vox(d1.foci[["x", "y", "z"]].to_numpy(float))
    assert prob.mask.data[tuple(ijk.T)].all()
    assert not d1.foci.duplicated(["experiment_id", "x", "y", "z"]).any()
    f5, s5, ids5 = d1.first(5)
    assert ids5 == d1.order[:5] and set(f5["experiment_id"]) == set(ids5)


@pytest.mark.parametrize("k_max", [1, 7, 40])
def test_bisection_equals_scan_on_monotone_survival(k_max: int) -> None:
    rng = np.random.default_rng(k_max)
    last = rng.integers(0, k_max + 1, size=6)  # last surviving k per cluster (k_max = never fails)
    calls = []

    def evaluate(k: int) -> np.ndarray:
        calls.append(k)
        return k <= last

    scan, _ = F._fsn_one_drawer(evaluate, 6, k_max, "scan")
    n_scan = len(calls)
    calls.clear()
    bis, cache = F._fsn_one_drawer(evaluate, 6, k_max, "bisect")
    assert np.array_equal(scan, last) and np.array_equal(bis, last)
    assert len(cache) <= max(n_scan, 6 * int(np.ceil(np.log2(k_max + 2))))


def test_fsn_on_real_refits_bisect_matches_scan() -> None:
    """A weakly convergent set: FSN small enough that both methods must find the same boundary."""
    foci, sizes = convergent(5, seed=5)
    from painmeta.ale.inhouse import run_inhouse

    res = run_inhouse(foci, sizes, n_iters=100, seed=1, contributions=False)
    assert len(res.clusters) >= 1
    peaks = res.clusters[["peak_x", "peak_y", "peak_z"]].to_numpy(float)
    kw = dict(n_drawers=2, k_max=6, n_iters=100, seed=3)
    b = F.fail_safe_n(foci, sizes, peaks, method="bisect", **kw)
    s = F.fail_safe_n(foci, sizes, peaks, method="scan", **kw)
    assert list(b.table.columns) == F.FSN_COLUMNS
    assert np.array_equal(b.table["fail_safe_n"], s.table["fail_safe_n"])
    assert b.table["n_refits"].max() <= s.table["n_refits"].max()
    summ = b.summary()
    assert {"mean", "ci_lower", "ci_upper"} <= set(summ.columns)
    assert np.array_equal(F.enge_convention(np.array([0, 3, 6]), 6), [1, 4, 6])


def test_attach_fsn_adds_column_and_tables() -> None:
    foci, sizes = convergent(5, seed=5)
    from painmeta.ale.inhouse import run_inhouse

    res = run_inhouse(foci, sizes, n_iters=100, seed=1, contributions=False)
    out = F.attach_fsn(res, foci, sizes, n_drawers=1, max_factor=1.0, n_iters=100)
    assert out is not None
    sig = res.clusters_all["significant"].astype(bool)
    assert res.clusters_all.loc[sig, "fail_safe_n"].notna().all()
    assert res.clusters_all.loc[~sig, "fail_safe_n"].isna().all()
    assert "fsn" not in res.contributions  # contributions stay experiment x cluster tables
    assert set(out.table["cluster_id"]) == set(res.clusters_all.loc[sig, "cluster_id"])


def test_ale_cli_fsn_writes_column_and_tables(tmp_path) -> None:
    import pandas as pd

    from painmeta.cli import main

    foci, sizes = convergent(5, seed=5)
    lines = ["// Reference=MNI"]
    for e, grp in foci.groupby("experiment_id"):
        lines += [f"// {e}", f"// Subjects={sizes[e]}"] + [f"{r.x}\t{r.y}\t{r.z}" for r in grp.itertuples()] + [""]
    path = tmp_path / "s.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    out = tmp_path / "out"
    rc = main(["ale", "--sleuth", str(path), "--out", str(out), "--n-iters", "100", "--seed", "1", "--engine",
               "inhouse", "--no-contributions", "--fsn", "--fsn-drawers", "1", "--fsn-max-factor", "1",
               "--n-cores", "1"])
    assert rc == 0
    table = pd.read_csv(out / "clusters_all.csv")
    assert "fail_safe_n" in table.columns
    assert table.loc[table["significant"], "fail_safe_n"].between(0, 5).all()
    assert (out / "fsn.csv").is_file() and (out / "fsn_summary.csv").is_file()
    # --fsn-alpha reaches attach_fsn: 100 iterations cannot give p < 0.001, so no cluster is significant at that
    # level to begin with, and none gets a fail-safe N (no refit).
    rc = main(["ale", "--sleuth", str(path), "--out", str(tmp_path / "strict"), "--n-iters", "100", "--seed", "1",
               "--engine", "inhouse", "--no-contributions", "--fsn", "--fsn-drawers", "1", "--fsn-max-factor", "1",
               "--n-cores", "1", "--fsn-alpha", "0.001"])
    assert rc == 0
    strict = pd.read_csv(tmp_path / "strict" / "fsn.csv")
    assert len(strict) and strict["fail_safe_n"].isna().all() and (strict["n_refits"] == 0).all()


def test_refits_judge_significance_like_the_analysis() -> None:
    """Voxel-level and cluster-mass inference and exact placement reach the refits (not only cluster size)."""
    foci, sizes = convergent(6, seed=5)
    from painmeta.ale.inhouse import run_inhouse

    order = sorted(sizes)
    for inference in ("cluster_size", "cluster_mass", "voxel"):
        res = run_inhouse(foci, sizes, n_iters=100, seed=1, contributions=False, inference=inference)
        sig = res.clusters_all[res.clusters_all["significant"].astype(bool)]
        assert len(sig), inference
        peaks = make_problem(foci, sizes).mask.mm2vox(sig[["peak_x", "peak_y", "peak_z"]].to_numpy(float))
        # The refit of the unchanged data with the same seed reproduces the analysis' verdict.
        ok = F.surviving(foci, sizes, order, peaks, 100, 1, inference=inference)
        assert ok.all(), inference
    # an impossible alpha: nothing survives, whatever the inference
    for inference in ("cluster_size", "cluster_mass", "voxel"):
        assert not F.surviving(foci, sizes, order, peaks, 100, 1, cluster_alpha=1e-9, inference=inference).any()
    assert F.surviving(foci.assign(x=foci["x"] + 1.0), sizes, order, peaks, 100, 1,
                       focus_placement="exact").dtype == bool


def _renumbered(res, factor: int = 10):
    """The result with cluster ids 10, 20, ... so that a test sees the id mapping, not positions 1..n."""
    res.clusters_all["cluster_id"] = res.clusters_all["cluster_id"] * factor
    res.label_map = res.label_map * factor
    return res


def test_points_are_read_off_the_same_refits_as_the_clusters(tmp_path) -> None:
    """A point at a cluster's peak gets that cluster's fail-safe N in every drawer; points outside every
    significant cluster (a non-significant supra-threshold cluster, outside the volume) get NaN and cost no
    refit; cluster ids are the result's; the cluster table is the same with or without points."""
    from painmeta.ale.inhouse import run_inhouse

    foci, sizes = enge_like(20, seed=1234)
    res = _renumbered(run_inhouse(foci, sizes, n_iters=100, seed=1, contributions=False))
    allc = res.clusters_all
    sig, supra = allc[allc["significant"]], allc[~allc["significant"]]
    assert len(sig) >= 2 and len(supra)
    second, small = sig.iloc[1], supra.iloc[0]
    points = pd.DataFrame({"point": ["t:a", "t:b", "t:c"], "x": [second["peak_x"], small["peak_x"], 200.0],
                           "y": [second["peak_y"], small["peak_y"], 0.0],
                           "z": [second["peak_z"], small["peak_z"], 0.0]})
    with_points = F.attach_fsn(res, foci, sizes, n_drawers=2, max_factor=1.0, n_iters=100, points=points)
    res2 = _renumbered(run_inhouse(foci, sizes, n_iters=100, seed=1, contributions=False))
    without = F.attach_fsn(res2, foci, sizes, n_drawers=2, max_factor=1.0, n_iters=100)
    # an identical voxel does not change the bisection's path: the same refits, the same table
    pd.testing.assert_frame_equal(with_points.table, without.table)
    assert sorted(set(with_points.table["cluster_id"])) == sorted(sig["cluster_id"])
    pts = with_points.points
    assert list(pts.columns) == F.POINT_COLUMNS and len(pts) == 6  # 2 drawers x 3 points
    at_peak = pts[pts["point"] == "t:a"].set_index("drawer")["fail_safe_n"]
    of_cluster = with_points.table[with_points.table["cluster_id"] == second["cluster_id"]].set_index("drawer")
    assert (at_peak == of_cluster["fail_safe_n"]).all()
    assert pts[pts["point"].isin(["t:b", "t:c"])]["fail_safe_n"].isna().all()
    assert set(with_points.point_evaluations["point"]) == {"t:a"}
    assert set(with_points.evaluations["cluster_id"]) == set(sig["cluster_id"])
    with_points.save(tmp_path)
    assert (tmp_path / "fsn_points.csv").is_file() and (tmp_path / "fsn_points_refits.csv").is_file()
    F.clear_outputs(tmp_path)
    assert not any((tmp_path / f).exists() for f in F.OUTPUT_FILES)


def test_refits_use_the_fsn_alpha_and_say_so(monkeypatch) -> None:
    """``cluster_alpha`` reaches every refit; a cluster not significant at it gets NaN and no refit."""
    foci, sizes = convergent(5, seed=5)
    from painmeta.ale.inhouse import run_inhouse

    res = run_inhouse(foci, sizes, n_iters=100, seed=1, contributions=False)
    seen = []
    real = F.surviving

    def spy(*args, **kwargs):
        seen.append(args[7])  # cluster_alpha, positional in fail_safe_n's call
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "surviving", spy)
    out = F.attach_fsn(res, foci, sizes, n_drawers=1, max_factor=1.0, n_iters=100, cluster_alpha=0.04)
    assert seen and set(seen) == {0.04} and out.cluster_alpha == 0.04
    assert "alpha 0.04; the analysis used 0.05" in res.notes[-1]
    seen.clear()
    res2 = run_inhouse(foci, sizes, n_iters=100, seed=1, contributions=False)
    none = F.attach_fsn(res2, foci, sizes, n_drawers=2, max_factor=1.0, n_iters=100, cluster_alpha=1e-6)
    assert not seen and none.table["fail_safe_n"].isna().all() and len(none.table) == 2 * len(res2.clusters)
    assert "not significant at that alpha: no fail-safe N" in res2.notes[-1]


def test_non_monotone_refits_are_reported() -> None:
    """A cluster lost at k = 4 and significant again at k = 6 is listed; a monotone one is not."""
    ev = pd.DataFrame({"drawer": 1, "k": [2, 4, 6, 2, 4, 6], "cluster_id": [1, 1, 1, 2, 2, 2],
                       "significant": [True, False, True, True, False, False]})
    res = F.FSNResult(pd.DataFrame(columns=F.FSN_COLUMNS), 6, 1, "bisect", 10, 0, evaluations=ev)
    flicker = res.non_monotone()
    assert flicker.to_dict("records") == [{"drawer": 1, "cluster_id": 1, "lost_at": 4, "back_at": 6}]
    assert F.FSNResult(pd.DataFrame(columns=F.FSN_COLUMNS), 6, 1, "bisect", 10, 0).non_monotone().empty


def test_first_failure_bound_lowers_to_the_first_failure_seen() -> None:
    """Bisection found 6 for cluster 0, but a refit made for cluster 1 saw cluster 0 fail at k = 4: the scan's
    first-failure value is at most 3. Values below every seen failure are unchanged."""
    refits = {5: np.array([True, False]), 4: np.array([False, True]), 7: np.array([False, False])}
    assert F.first_failure_bound(np.array([6, 4]), refits).tolist() == [3, 4]
    # The search applies it. Cluster 0 flickers (lost at k = 2 only); cluster 1 is lost from k = 2 on. Bisection
    # alone answers 5 for cluster 0 (it reads k = 2 only for cluster 1's boundary); the bound gives the scan's 1.
    surv = {1: (True, True), 2: (False, False), 3: (True, False), 4: (True, False), 5: (True, False)}

    def evaluate(k: int) -> np.ndarray:
        return np.array(surv[k])

    fsn, cache = F._fsn_one_drawer(evaluate, 2, 5, "bisect")
    scan, _ = F._fsn_one_drawer(evaluate, 2, 5, "scan")
    assert 2 in cache and scan.tolist() == [1, 1] and fsn.tolist() == [1, 1]
