"""Leave-one-out ALE from the shared log-sum: equals refits; jackknife and stability table."""

from __future__ import annotations

import numpy as np
import pytest

from painmeta.ale import contributions as K
from painmeta.ale.inhouse import run_inhouse
from painmeta.ale.inference import analytic_null
from painmeta.ale.problem import ale_map, make_problem

from ale_fixtures import convergent


@pytest.fixture(scope="module")
def fitted():
    foci, sizes = convergent(9, seed=5)
    res = run_inhouse(foci, sizes, n_iters=100, seed=1, contributions=False)
    return foci, sizes, res, make_problem(foci, sizes)


def test_leave_one_out_equals_refit(fitted) -> None:
    _, _, res, prob = fitted
    loo = K.LeaveOneOut(prob)
    assert np.array_equal(loo.ale, ale_map(prob))
    for e in range(prob.n_experiments):
        # log-sum minus one term vs a fresh sum: a few float64 ulps, at most one float32 ulp after storage
        d = np.abs(loo.ale_without(e).astype(np.float64) - ale_map(prob, exclude=e).astype(np.float64))
        assert d.max() <= 1e-8


def test_fast_jackknife_matches_refit(fitted) -> None:
    _, _, res, prob = fitted
    sig = [int(c) for c in res.clusters["cluster_id"]]
    assert sig
    fast = K.jackknife(prob, res.ale, res.label_map, sig)
    ref = K.jackknife_refit(prob, res.ale, res.label_map, sig)
    assert list(fast.columns) == list(ref.columns)
    assert np.max(np.abs(fast.iloc[:, 1:].to_numpy() - ref.iloc[:, 1:].to_numpy())) <= 1e-6


def test_drop_experiment_is_the_smaller_problem(fitted) -> None:
    foci, sizes, _, prob = fitted
    e = 3
    small = K._drop_experiment(prob, e)
    drop = prob.experiment_ids[e]
    ref = make_problem(foci[foci["experiment_id"] != drop], {k: v for k, v in sizes.items() if k != drop})
    assert small.experiment_ids == ref.experiment_ids
    assert np.array_equal(small.foci_ijk, ref.foci_ijk) and np.array_equal(small.exp_offsets, ref.exp_offsets)
    assert np.array_equal(analytic_null(small).weights, analytic_null(ref).weights)


def test_stability_table(fitted) -> None:
    _, _, res, prob = fitted
    sig = [int(c) for c in res.clusters["cluster_id"]]
    tab = K.leave_one_out_stability(prob, res.label_map, sig, res.cluster_size_threshold)
    assert list(tab.columns) == K.LOO_COLUMNS
    assert len(tab) == prob.n_experiments * len(sig)
    assert (tab["n_voxels_without"] >= 0).all()
    assert tab["survives"].equals(tab["n_voxels_without"] >= res.cluster_size_threshold)
    # removing an experiment never enlarges ALE, so no voxel above the full model's peak
    assert (tab["peak_ale_without"] <= tab["peak_ale"] + 1e-9).all()


def test_stability_can_reuse_full_threshold(fitted) -> None:
    _, _, res, prob = fitted
    sig = [int(c) for c in res.clusters["cluster_id"]]
    tab = K.leave_one_out_stability(prob, res.label_map, sig, res.cluster_size_threshold, own_threshold=False,
                                    full_threshold=res.ale_threshold)
    assert (tab["cluster_forming_ale_without"] == res.ale_threshold).all()
    assert (tab["threshold_source"] == "full model's (reused)").all()


def test_stability_shortcut_equals_relabelling(monkeypatch) -> None:
    """Experiments that reach no cluster voxel are copied, not relabelled; the result is the same."""
    import pandas as pd

    foci, sizes = convergent(9, seed=5)
    far = pd.DataFrame({"experiment_id": ["farA", "farB"], "x": [-50.0, 10.0], "y": [-70.0, 50.0], "z": [40.0, -10.0]})
    foci = pd.concat([foci, far], ignore_index=True)
    sizes = {**sizes, "farA": 15, "farB": 25}
    res = run_inhouse(foci, sizes, n_iters=100, seed=1, contributions=False)
    prob = make_problem(foci, sizes)
    sig = [int(c) for c in res.clusters["cluster_id"]]
    loo = K.LeaveOneOut(prob)
    lab = res.label_map[prob.mask.data]
    assert sum(not np.isin(lab[c], sig).any() for c in loo.cols) >= 2  # the shortcut is exercised
    fast = K.leave_one_out_stability(prob, res.label_map, sig, res.cluster_size_threshold, own_threshold=False,
                                     full_threshold=res.ale_threshold, loo=loo)
    real_isin = np.isin
    monkeypatch.setattr(np, "isin", lambda a, b: real_isin(a, b) | True)
    slow = K.leave_one_out_stability(prob, res.label_map, sig, res.cluster_size_threshold, own_threshold=False,
                                     full_threshold=res.ale_threshold, loo=loo)
    assert fast.equals(slow)


def test_drop_experiment_keeps_exact_placement() -> None:
    foci, sizes = convergent(6, seed=2)
    foci = foci.assign(x=foci["x"] + 1.0)  # off the 2 mm grid
    prob = make_problem(foci, sizes, focus_placement="exact")
    small = K._drop_experiment(prob, 2)
    drop = prob.experiment_ids[2]
    ref = make_problem(foci[foci["experiment_id"] != drop], {k: v for k, v in sizes.items() if k != drop},
                       focus_placement="exact")
    assert small.focus_placement == "exact"
    assert np.array_equal(small.foci_shift, ref.foci_shift)
    assert np.array_equal(ale_map(small), ale_map(ref))


def test_stability_judges_survival_by_the_primary_inference(fitted) -> None:
    _, _, res, prob = fitted
    sig = [int(c) for c in res.clusters["cluster_id"]]
    kw = dict(own_threshold=False, full_threshold=res.ale_threshold)
    # voxel level: a cluster survives when its peak ALE exceeds the voxel-level cutoff
    vox = K.leave_one_out_stability(prob, res.label_map, sig, res.cluster_size_threshold, inference="voxel",
                                    critical_ale=0.0, **kw)
    assert vox["survives"].equals(vox["n_voxels_without"] > 0)
    never = K.leave_one_out_stability(prob, res.label_map, sig, res.cluster_size_threshold, inference="voxel",
                                      critical_ale=1.0, **kw)
    assert not never["survives"].any()
    # cluster mass: a cutoff between the smallest and the largest mass splits the table
    mass = K.leave_one_out_stability(prob, res.label_map, sig, res.cluster_size_threshold,
                                     inference="cluster_mass", critical_mass=0.0, **kw)
    assert mass["survives"].equals(mass["n_voxels_without"] > 0)
    with pytest.raises(ValueError):
        K.leave_one_out_stability(prob, res.label_map, sig, 1, inference="tfce", **kw)


def test_focus_counts_follow_the_placement() -> None:
    """Off-grid foci: voxel placement counts a focus by its nearest voxel (as NiMARE's FocusCounter does after
    rounding); exact placement by its unrounded position, which may also reach a neighbouring cluster voxel."""
    import pandas as pd

    foci = pd.DataFrame({"experiment_id": ["a", "b"], "x": [1.0, 1.0], "y": [0.0, 0.0], "z": [0.0, 0.0]})
    sizes = {"a": 20, "b": 20}
    vox = make_problem(foci, sizes)
    labels = np.zeros(vox.mask.shape, dtype=np.int32)
    i, j, k = vox.foci_ijk[0]
    # a one-voxel cluster next to the focus's nearest voxel, on the side of its unrounded position
    pos = vox.foci_xyz[0] @ np.linalg.inv(vox.mask.affine)[:3, :3].T + np.linalg.inv(vox.mask.affine)[:3, 3]
    step = int(np.sign(pos[0] - i)) or 1
    labels[i + step, j, k] = 1
    assert K.focus_counts(vox, labels, [1])["cluster_1"].tolist() == [0, 0]
    exact = make_problem(foci, sizes, focus_placement="exact")
    assert K.focus_counts(exact, labels, [1])["cluster_1"].tolist() == [1, 1]


def test_focus_counts_equal_nimare_on_off_grid_foci(fitted) -> None:
    """Odd-millimetre foci (half-voxel positions): the counts equal NiMARE's own counting of its rounded voxels."""
    from nimare.diagnostics import _count_foci_per_cluster
    from nimare.utils import mm2vox

    foci, sizes, res, _ = fitted
    odd = foci.assign(x=foci["x"] + 1.0, y=foci["y"] - 1.0)
    prob = make_problem(odd, sizes)
    sig = [int(c) for c in res.clusters["cluster_id"]]
    ours = K.focus_counts(prob, res.label_map, sig)
    for e, exp in enumerate(prob.experiment_ids):
        xyz = odd.loc[odd["experiment_id"] == exp, ["x", "y", "z"]].to_numpy(float)
        ref = _count_foci_per_cluster(res.label_map, sig, mm2vox(xyz, prob.mask.affine))
        assert ours.iloc[e, 1:].tolist() == list(ref), exp
