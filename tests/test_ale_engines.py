"""Engine agreement (NiMARE vs in-house), the sparse null, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ale_fixtures import cipn_like, convergent, enge_like, whole_volume_null

from painmeta.ale import crosscheck as xc
from painmeta.ale import inference as inf
from painmeta.ale import inhouse as ih
from painmeta.ale import problem as pb
from painmeta.ale import nimare_engine as ne
from painmeta.ale.models import nidm_pain_model


def _assert_all_passed(table: pd.DataFrame) -> None:
    failed = table[~table["passed"]]
    assert failed.empty, failed[["check", "nimare", "inhouse", "difference", "tolerance"]].to_string()


@pytest.fixture(scope="module")
def cipn_check() -> xc.CrossCheck:
    foci, n = cipn_like()
    return xc.crosscheck(foci, n, n_iters=60, seed=11, name="cipn_like")


def test_cipn_sized_engines_agree(cipn_check: xc.CrossCheck) -> None:
    _assert_all_passed(cipn_check.table)
    checks = set(cipn_check.table["check"])
    for needed in ("ALE map: max |difference|", "p map: voxels that differ (float32)",
                   "null max_cluster_size, same random foci: iterations that differ",
                   "null max_ale, independent streams: KS test p"):
        assert needed in checks
    # Every row states its tolerance and why.
    assert cipn_check.table["tolerance"].astype(bool).all()
    assert cipn_check.table["why"].str.len().gt(10).all()


def test_cipn_sized_null_identical_per_iteration(cipn_check: xc.CrossCheck) -> None:
    a, b = cipn_check.nimare.null, cipn_check.inhouse.null
    assert len(a) == len(b) == 60
    for col in ("max_ale", "max_cluster_size", "max_cluster_mass"):
        assert np.array_equal(a[col].to_numpy(), b[col].to_numpy()), col


def test_cipn_sized_review_facts(cipn_check: xc.CrossCheck) -> None:
    s = cipn_check.nimare.summary()
    assert (round(s["fwhm_min_mm"], 2), round(s["fwhm_max_mm"], 2)) == (9.24, 9.76)
    assert s["n_subjects"] == 45 and s["n_experiments"] == 3 and s["n_foci"] == 11
    assert s["mask_voxels"] == 228_483
    # No overlap: the maximum ALE is the n = 20 kernel peak, as in the review.
    assert round(s["ale_max"], 4) == 0.0084


def test_convergent_clusters_agree() -> None:
    foci, n = convergent()
    cc = xc.crosscheck(foci, n, n_iters=100, seed=3, name="convergent")
    _assert_all_passed(cc.table)
    sig = cc.nimare.clusters
    assert len(sig) == 1 and sig.loc[0, "n_voxels"] > 100
    assert cc.inhouse.clusters.equals(sig)
    # Contribution analysis through NiMARE, matched by the in-house version.
    assert set(cc.nimare.contributions) == {"jackknife", "focus_counter"}
    fc = cc.nimare.contributions["focus_counter"]
    assert fc["cluster_1"].sum() >= 9  # nearly every experiment has a focus there


def test_positive_control_nidm_pain() -> None:
    model = nidm_pain_model(n_iters=60)
    cc = xc.crosscheck(model.foci, model.sample_sizes, 60, seed=2, name="nidm_pain")
    _assert_all_passed(cc.table)
    assert len(cc.nimare.clusters) >= 3  # ALE finds convergence in the pain studies
    jk = cc.nimare.contributions["jackknife"]
    assert list(jk["experiment_id"]) == model.experiment_ids
    assert jk.shape[1] - 1 == len(cc.nimare.clusters)


def test_sparse_null_matches_whole_volume_definition() -> None:
    foci, n = convergent(n_exp=6, seed=9)
    problem = pb.make_problem(foci, n)
    fit = inf.fit_observed(problem)
    draws = ih.draw_null_foci(problem, 6, seed=4)
    # Also a draw with every focus in one spot and foci at the mask's edge.
    edge = np.argmin(problem.mask.inmask_ijk[:, 2])
    draws = np.vstack([draws, np.full(problem.n_foci, 12_345), np.full(problem.n_foci, edge)])
    sparse = ih.null_statistics(problem, fit.ale_threshold, draws=draws)
    dense = whole_volume_null(problem, draws, fit.ale_threshold)
    assert np.array_equal(sparse["max_ale"].to_numpy(), dense["max_ale"].to_numpy(np.float32))
    assert np.array_equal(sparse["max_cluster_size"].to_numpy(), dense["max_cluster_size"].to_numpy())
    assert np.allclose(sparse["max_cluster_mass"], dense["max_cluster_mass"], rtol=1e-6, atol=0)


def test_inhouse_deterministic_and_thread_independent() -> None:
    foci, n = convergent(n_exp=5, seed=1)
    problem = pb.make_problem(foci, n)
    thr = inf.fit_observed(problem).ale_threshold
    a = ih.null_statistics(problem, thr, n_iters=300, seed=7, n_threads=1)
    b = ih.null_statistics(problem, thr, n_iters=300, seed=7, n_threads=2)
    c = ih.null_statistics(problem, thr, n_iters=300, seed=8, n_threads=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_nimare_seeded_and_draws_reproduced() -> None:
    foci, n = cipn_like()
    r1 = ne.fit(foci, n, n_iters=15, seed=5, n_cores=2)
    r2 = ne.fit(foci, n, n_iters=15, seed=5, n_cores=1)
    for key in ne.NULL_KEYS.values():
        assert np.array_equal(r1.corrected.estimator.null_distributions_[key],
                              r2.corrected.estimator.null_distributions_[key])
    problem = pb.make_problem(foci, n)
    draws = ne.fwe_draws(5, problem.n_foci, 15, problem.mask.n_voxels)
    mine = ih.null_statistics(problem, r1.ale_threshold, draws=draws)
    nd = r1.corrected.estimator.null_distributions_
    assert np.array_equal(mine["max_ale"].to_numpy(), nd[ne.NULL_KEYS["max_ale"]])
    assert np.array_equal(mine["max_cluster_mass"].to_numpy(), nd[ne.NULL_KEYS["max_cluster_mass"]])


def test_null_statistics_validates_draws() -> None:
    foci, n = cipn_like()
    problem = pb.make_problem(foci, n)
    with pytest.raises(ValueError):
        ih.null_statistics(problem, 0.005, draws=np.zeros((3, 2), dtype=np.int64))
    with pytest.raises(ValueError):
        ih.null_statistics(problem, 0.005, draws=np.full((2, problem.n_foci), problem.mask.n_voxels))
    with pytest.raises(ValueError):
        ih.null_statistics(problem, 0.005)


def test_threshold_and_p_helpers() -> None:
    null = inf.AnalyticNull(np.round(np.arange(0, 0.00006, 0.00001), 5), np.array([0.5, 0.3, 0.1, 0.07, 0.02, 0.01]))
    # tail: 1, .5, .2, .1, .03, .01 -> first <= 0.05 is bin 4, threshold = bin 3
    assert inf.threshold_from_null(null, 0.05) == pytest.approx(0.00003)
    p = inf.p_from_null(np.array([0.0, 0.00001, 0.00005, 1.0]), null)
    assert np.allclose(p, [1.0, 0.5, 0.01, 0.01])
    assert inf.min_significant_size(np.array([1, 2, 3, 10] * 25), 0.05) == 11
    assert inf.min_significant_size(np.array([5] * 10), 0.05) is None  # 10 iterations cannot reach p < .05
    assert np.allclose(inf.null_to_p(np.array([0, 5, 11]), np.arange(1, 11)), [0.9, 0.6, 0.1])


ENGE_SLEUTH = Path("/work/shared/data/published/enge2021/sleuth_all.txt")


def test_enge_like_engines_agree_for_every_inference() -> None:
    """50 experiments / ~700 foci (the size of Enge et al. 2021): every check passes.

    Voxel-level inference is primary here; the table compares the cluster-size and cluster-mass results too
    (thresholds, p-values, thresholded maps), whichever method is primary.
    """
    inference = "voxel"
    foci, n = enge_like()
    cc = xc.crosscheck(foci, n, n_iters=30, seed=1234, name=f"enge_like_{inference}", contributions=False,
                       inference=inference)
    _assert_all_passed(cc.table)
    checks = set(cc.table["check"])
    for needed in ("voxel-level FWE p map: voxels that differ", "voxel-level FWE ALE threshold",
                   "cluster-mass FWE threshold", "thresholded map (voxel FWE): voxels that differ",
                   "thresholded map (cluster_mass FWE): voxels that differ", "cluster p_fwe_mass: max |difference|",
                   "cluster atlas labels (AAL, Harvard-Oxford)"):
        assert needed in checks
    for res in (cc.nimare, cc.inhouse):
        assert res.inference == inference and len(res.clusters) >= 3
        assert (res.clusters["inference"] == inference).all()


@pytest.mark.slow
@pytest.mark.skipif(not ENGE_SLEUTH.is_file(), reason="published Enge 2021 Sleuth file not on this machine")
def test_enge2021_sleuth_engines_agree() -> None:
    from painmeta.sleuth import read_sleuth

    data = read_sleuth([ENGE_SLEUTH])
    cc = xc.crosscheck(data.foci[["experiment_id", "x", "y", "z"]], data.sample_sizes, n_iters=20, seed=1234,
                       name="enge2021", contributions=False, inference="voxel")
    _assert_all_passed(cc.table)
    labels = set(cc.nimare.clusters_all["label_peak"])
    assert {"Frontal_Inf_Tri_L", "Supp_Motor_Area_L"} & labels  # the paper's two largest clusters
