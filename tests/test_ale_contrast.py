"""Subtraction and conjunction ALE: in-house vs NiMARE, exact ties, thresholding, CLI."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from painmeta.ale import contrast as C
from painmeta.ale.geometry import load_mask
from painmeta.cli import main

from ale_fixtures import convergent


def _sets() -> tuple[pd.DataFrame, dict, pd.DataFrame, dict]:
    fa, na = convergent(6, seed=1)
    fb, nb = convergent(5, seed=2)
    fb = fb.assign(x=-fb["x"])  # set B converges in the other hemisphere
    return fa, na, fb, nb


@pytest.fixture(scope="module")
def cp() -> C.ContrastProblem:
    fa, na, fb, nb = _sets()
    return C.make_contrast_problem(fa, na, fb, nb)


def test_inhouse_equals_nimare_on_nimare_permutations(cp: C.ContrastProblem) -> None:
    """Fed NiMARE's own permutations, NiMARE's arithmetic gives NiMARE's maps bit for bit."""
    fa, na, fb, nb = _sets()
    n_iters, seed = 25, 7
    perms = C.nimare_permutations(cp.n_total, cp.n_a, n_iters, seed)
    ih = C.subtraction_inhouse(cp, perms=perms, arithmetic="nimare")
    nm = C.subtraction_nimare(fa, na, fb, nb, n_iters, seed)
    for key in ("ale_a", "ale_b", "diff", "p", "null_abs_max"):
        assert np.array_equal(getattr(ih, key), getattr(nm, key)), key
    # z = Phi^-1(1 - p/2) from equal p; NiMARE and scipy differ only in the last float32 bit
    assert np.max(np.abs(ih.z.astype(np.float32) - nm.z.astype(np.float32))) <= 1e-6


def test_exact_arithmetic_keeps_ties(cp: C.ContrastProblem) -> None:
    """At a voxel reached by one experiment of A only, the exact permutation p is ~2 n_A / N."""
    n_iters = 400
    perms = C.inhouse_permutations(cp.n_total, n_iters, 3)
    exact = C.subtraction_inhouse(cp, perms=perms, arithmetic="exact")
    nim = C.subtraction_inhouse(cp, perms=perms, arithmetic="nimare")
    reach = np.bincount(cp.local, minlength=len(cp.union))
    owner = np.repeat(np.arange(cp.n_total), np.diff(cp.ptr))
    single_a = np.zeros(len(cp.union), dtype=bool)
    single_a[cp.local[owner < cp.n_a]] = True
    single_a &= reach == 1
    idx = cp.union[single_a]
    assert idx.size > 100
    expected = 2 * cp.n_a / cp.n_total
    se = 2 * np.sqrt(expected / 2 * (1 - expected / 2) / n_iters)
    p_exact = exact.p[idx].astype(float)
    # one value per voxel, all from the same permutations: the share of permutations keeping
    # that experiment in set 1 (identical for every voxel of the experiment)
    assert np.all(np.abs(p_exact - expected) < 4 * se)
    # NiMARE's arithmetic breaks these ties by float32 rounding: some get the minimum p
    assert np.sum(nim.p[idx] <= 1.0 / n_iters + 1e-9) > 0
    # where no tie is possible (large differences) both arithmetics agree closely
    strong = np.abs(exact.diff) > 0.01
    assert strong.sum() > 0
    assert np.max(np.abs(exact.p[strong] - nim.p[strong])) <= 2.0 / n_iters + 1e-7


def test_stream_is_deterministic_and_chunk_invariant(cp: C.ContrastProblem) -> None:
    perms = C.inhouse_permutations(cp.n_total, 40, 11)
    assert np.array_equal(perms[:10], C.inhouse_permutations(cp.n_total, 40, 11)[:10])
    diff = C.group_ale(cp, range(cp.n_a)) - C.group_ale(cp, range(cp.n_a, cp.n_total))
    a = C.permutation_null(cp, diff[cp.union], perms, batch=16, n_threads=2, arithmetic="exact")
    b = C.permutation_null(cp, diff[cp.union], perms, batch=3, n_threads=1, arithmetic="exact")
    assert np.array_equal(a.upper, b.upper) and np.array_equal(a.lower, b.lower)
    assert np.array_equal(a.abs_max, b.abs_max)


def test_threshold_extent_and_sign() -> None:
    geom = load_mask()
    vol_z = np.zeros(geom.shape)
    vol_p = np.ones(geom.shape)
    # a 5x5x1 positive block (25 voxels, kept at 200 mm^3) and a 4x6x1 negative one (24, dropped)
    vol_z[40:45, 50:55, 40] = 3.5
    vol_z[30:34, 50:56, 40] = -3.6
    vol_z[60, 60, 40] = 2.0  # p above threshold
    vol_p[vol_z != 0] = 0.0004
    vol_p[60, 60, 40] = 0.04
    z = vol_z[geom.data]
    p = vol_p[geom.data]
    zt, labels, n = C.threshold_subtraction(z, p, geom, 0.001, 200.0)
    assert n == 1 and (labels > 0).sum() == 25 and np.all(zt[zt != 0] == 3.5)
    zt, labels, n = C.threshold_subtraction(z, p, geom, 0.001, 192.0)
    assert n == 2 and (labels > 0).sum() == 49


def test_conjunction_is_minimum_where_both() -> None:
    a = np.array([0.0, 0.02, 0.03, 0.01], dtype=np.float32)
    b = np.array([0.02, 0.0, 0.01, 0.04], dtype=np.float32)
    assert np.array_equal(C.conjunction(a, b), np.array([0, 0, 0.01, 0.01], dtype=np.float32))


def _write(path: Path, exps: dict[str, tuple[int, list[tuple[float, float, float]]]]) -> Path:
    lines = ["// Reference=MNI"]
    for name, (n, foci) in exps.items():
        lines += [f"// {name}", f"// Subjects={n}"] + ["\t".join(map(str, f)) for f in foci] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_cli_writes_minus_and_conj_maps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shared = (40, 4, 2)
    a = _write(tmp_path / "a.txt", {f"a{i}": (20, [shared, (-40 + 2 * i, -60, 10)]) for i in range(4)})
    b = _write(tmp_path / "b.txt", {f"b{i}": (18, [shared, (30, -80 + 2 * i, 0)]) for i in range(4)})
    out = tmp_path / "out"
    rc = main(["ale-contrast", "--sleuth-a", str(a), "--sleuth-b", str(b), "--out", str(out), "--n-iters", "200",
               "--seed", "2", "--engine", "inhouse", "--group-n-iters", "100", "--n-cores", "1"])
    assert rc == 0
    names = sorted(p.name for p in out.iterdir())
    assert "z_A_minus_B.nii.gz" in names and "z_B_minus_A.nii.gz" in names
    assert [n for n in names if "conj" in n] == ["ale_conj.nii.gz"]
    za = np.asarray(nib.load(out / "z_A_minus_B.nii.gz").dataobj)
    zb = np.asarray(nib.load(out / "z_B_minus_A.nii.gz").dataobj)
    assert np.array_equal(za, -zb)
    conj = np.asarray(nib.load(out / "ale_conj.nii.gz").dataobj)
    geom = load_mask()
    i, j, k = geom.mm2vox(np.array([shared], dtype=float))[0]
    assert conj[i, j, k] > 0  # both sets converge at the shared focus
    table = pd.read_csv(out / "clusters.csv")
    assert list(table.columns) == C.CONTRAST_COLUMNS
    assert (table["analysis"] == "conjunction").sum() >= 1
    assert "n_clusters_conjunction" in capsys.readouterr().out


def test_cli_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(tmp_path / "a.txt", {"a0": (20, [(0, 0, 0)])})
    b = _write(tmp_path / "b.txt", {"b0": (20, [(0, 0, 0)]), "b1": (10, [(2, 2, 2)])})
    rc = main(["ale-contrast", "--sleuth-a", str(a), "--sleuth-b", str(b), "--out", str(tmp_path / "o"),
               "--n-iters", "10"])
    assert rc == 2
    assert "at least 2" in capsys.readouterr().err
    # argparse refuses it: usage message and status 2 (painmeta.cli.main returns it)
    assert main(["ale-contrast", "--sleuth-a", str(b), "--sleuth-b", str(b), "--out", str(tmp_path / "o"),
                 "--n-iters", "10", "--label-a", "../x"]) == 2


def test_config_contrasts_must_name_models() -> None:
    from painmeta.config import ALEConfig

    ok = ALEConfig(models={"up": {}, "down": {}}, contrasts={"c": {"a": "up", "b": "down"}})
    assert ok.contrasts["c"].n_iters == 10000 and ok.contrasts["c"].min_cluster_mm3 == 200
    with pytest.raises(ValueError, match="not a model"):
        ALEConfig(models={"up": {}}, contrasts={"c": {"a": "up", "b": "nope"}})
    with pytest.raises(ValueError, match="different"):
        ALEConfig(models={"up": {}}, contrasts={"c": {"a": "up", "b": "up"}})


def test_dataset_contrast_skipped_with_reason() -> None:
    from types import SimpleNamespace

    from painmeta.config import ALEConfig

    cfg = ALEConfig(models={"up": {}, "down": {}}, contrasts={"c": {"a": "up", "b": "down"}})
    models = [SimpleNamespace(name="up", reason="1 usable experiment", skipped=True),
              SimpleNamespace(name="down", reason="", skipped=False)]
    res, table = C.run_dataset_contrasts(models, cfg, {"down": object()})
    assert res == {} and table.loc[0, "status"] == "skipped" and "up" in table.loc[0, "reason"]


def test_dataset_contrast_flags_shared_participants() -> None:
    """Two models whose experiments differ by id but share a subject group are flagged as not independent."""
    from painmeta.ale.models import ALEModel
    from painmeta.config import ALEConfig

    fa, sa = convergent(4, seed=1)
    fb, sb = convergent(4, seed=2)
    fb = fb.assign(experiment_id=fb["experiment_id"] + "_b")
    sb = {k + "_b": v for k, v in sb.items()}
    ma = ALEModel(name="up", description="", experiment_ids=sorted(sa), foci=fa, sample_sizes=sa, n_iters=20)
    mb = ALEModel(name="down", description="", experiment_ids=sorted(sb), foci=fb, sample_sizes=sb, n_iters=20)
    cfg = ALEConfig.model_validate({"models": {"up": {}, "down": {}},
                                    "contrasts": {"ud": {"a": "up", "b": "down", "n_iters": 20}}})
    first = sorted(sa)[0]
    groups = {first: "sample1", first + "_b": "sample1"}
    from painmeta.ale.inhouse import run_inhouse

    runs = {m.name: run_inhouse(m.foci, m.sample_sizes, n_iters=20, seed=0, contributions=False) for m in (ma, mb)}
    _, table = C.run_dataset_contrasts([ma, mb], cfg, runs, engine="inhouse", n_iters=20, subject_groups=groups)
    assert "share participants" in table.loc[0, "reason"] and "sample1" in table.loc[0, "reason"]
    _, table = C.run_dataset_contrasts([ma, mb], cfg, runs, engine="inhouse", n_iters=20)
    assert "share participants" not in table.loc[0, "reason"]
