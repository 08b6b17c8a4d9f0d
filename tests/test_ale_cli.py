"""``python -m painmeta ale``: outputs, determinism, user errors."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from ale_fixtures import cipn_like, convergent

from painmeta.cli import main
from painmeta.sleuth import write_sleuth

SUMMARY_KEYS = {
    "n_experiments", "n_foci", "n_subjects", "fwhm_min_mm", "fwhm_max_mm", "ale_min", "ale_max", "p_min",
    "cluster_forming_ale", "cluster_size_threshold_vox", "cluster_size_threshold_mm3", "engine", "versions",
    "seed", "run_time_s", "n_iters",
}


@pytest.fixture(scope="module")
def sleuth_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sleuth")
    foci, n = cipn_like()
    conv, nc = convergent()
    return {
        "cipn": write_sleuth(foci, n, root / "cipn.txt"),
        "conv": write_sleuth(conv, nc, root / "conv.txt"),
    }


def _run(args: list[str]) -> int:
    return main(["ale", *args])


def test_inhouse_outputs_and_determinism(sleuth_files: dict[str, Path], tmp_path: Path) -> None:
    args = ["--sleuth", str(sleuth_files["conv"]), "--n-iters", "60", "--seed", "3", "--engine", "inhouse"]
    assert _run([*args, "--out", str(tmp_path / "a")]) == 0
    assert _run([*args, "--out", str(tmp_path / "b")]) == 0
    a, b = tmp_path / "a", tmp_path / "b"
    for name in ("ale.nii.gz", "p.nii.gz", "z.nii.gz", "clusters.nii.gz", "clusters.csv", "null.csv", "summary.json"):
        assert (a / name).is_file(), name
    null = pd.read_csv(a / "null.csv")
    assert list(null.columns) == ["iteration", "max_ale", "max_cluster_size", "max_cluster_mass"]
    assert len(null) == 60
    assert (a / "null.csv").read_bytes() == (b / "null.csv").read_bytes()
    assert (a / "clusters.csv").read_bytes() == (b / "clusters.csv").read_bytes()
    assert np.array_equal(nib.load(a / "ale.nii.gz").get_fdata(), nib.load(b / "ale.nii.gz").get_fdata())
    summary = json.loads((a / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["engine"] == "inhouse" and summary["seed"] == 3 and summary["n_iters"] == 60
    clusters = pd.read_csv(a / "clusters.csv")
    assert len(clusters) == summary["n_clusters_significant"] >= 1
    assert (a / "contrib_jackknife.csv").is_file()
    img = nib.load(a / "ale.nii.gz")
    assert img.shape == (91, 109, 91) and np.allclose(np.diag(img.affine)[:3], 2)


def test_nimare_engine_no_cluster_header_only(sleuth_files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "n"
    assert _run(["--sleuth", str(sleuth_files["cipn"]), "--n-iters", "25", "--seed", "1",
                 "--engine", "nimare", "--out", str(out)]) == 0
    text = (out / "clusters.csv").read_text().strip().splitlines()
    assert len(text) == 1 and text[0].startswith("cluster_id,n_voxels")  # header only: no cluster survived
    summary = json.loads((out / "summary.json").read_text())
    assert summary["engine"] == "nimare" and summary["n_clusters_significant"] == 0
    assert (round(summary["fwhm_min_mm"], 2), round(summary["fwhm_max_mm"], 2)) == (9.24, 9.76)
    assert summary["versions"]["nimare"] == "0.22.1"
    assert summary["cluster_size_threshold_mm3"] == summary["cluster_size_threshold_vox"] * 8


def test_user_errors(sleuth_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # --n-iters is required in Sleuth mode
    assert _run(["--sleuth", str(sleuth_files["cipn"]), "--out", str(tmp_path / "x")]) == 2
    assert "--n-iters is required" in capsys.readouterr().err
    # a single experiment cannot converge
    one = tmp_path / "one.txt"
    one.write_text("// Reference=MNI\n// A\n// Subjects=12\n1 2 3\n")
    assert _run(["--sleuth", str(one), "--out", str(tmp_path / "x"), "--n-iters", "5"]) == 2
    assert "at least 2" in capsys.readouterr().err
    # argparse-level validation: usage message and status 2 (painmeta.cli.main returns it)
    assert _run(["--sleuth", str(one), "--out", str(tmp_path / "x"), "--n-iters", "0"]) == 2
    assert _run(["--sleuth", str(one), "--out", str(tmp_path / "x"), "--n-iters", "5", "--voxel-thresh", "2"]) == 2


def test_dataset_mode_with_crosscheck(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "proj"
    (root / "data" / "raw" / "toy").mkdir(parents=True)
    (root / "data" / "processed" / "toy").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'toy'\n")
    (root / "data" / "raw" / "toy" / "dataset.yaml").write_text(
        "name: toy\ntitle: toy\nnetworks:\n  - {key: dmn, label: DMN}\n"
        "ale:\n  seed: 9\n  models:\n"
        "    increase: {contrast_types: [between_group], directions: ['patients>controls'], n_iters: 30}\n"
        "    decrease: {contrast_types: [between_group], directions: ['patients<controls'], n_iters: 30}\n"
    )
    foci, n = convergent(n_exp=6, seed=3)
    exps = pd.DataFrame({"experiment_id": list(n), "study_id": list(n), "contrast": "c",
                         "contrast_type": "between_group", "direction": "patients>controls",
                         "n_ale": list(n.values()), "in_ale": True, "evidence": "verified", "source": "synthetic"})
    exps.to_csv(root / "data" / "processed" / "toy" / "experiments.csv", index=False)
    foci.to_csv(root / "data" / "processed" / "toy" / "foci_mni.csv", index=False)
    monkeypatch.setenv("PAINMETA_ROOT", str(root))
    monkeypatch.setenv("PAINMETA_WORK", str(root))
    out = tmp_path / "out"
    assert _run(["--dataset", "toy", "--out", str(out), "--engine", "inhouse", "--crosscheck",
                 "--no-contributions"]) == 0
    models = pd.read_csv(out / "models.csv")
    assert list(models["status"]) == ["run", "skipped"]
    assert models.loc[0, "n_iters"] == 30 and models.loc[0, "seed"] == 9
    check = pd.read_csv(out / "crosscheck.csv")
    assert check["passed"].all() and set(check["model"]) == {"increase"}
    assert (out / "increase" / "summary.json").is_file()
    assert (out / "increase" / "engine-nimare" / "summary.json").is_file()


def test_inference_and_placement_options(sleuth_files: dict[str, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "v"
    assert _run(["--sleuth", str(sleuth_files["conv"]), "--n-iters", "40", "--seed", "2", "--engine", "inhouse",
                 "--inference", "voxel", "--focus-placement", "exact", "--no-contributions",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["inference"] == "voxel" and summary["focus_placement"] == "exact"
    assert summary["vfwe_ale_threshold"] is not None
    for name in ("ale_fwe-size", "ale_fwe-mass", "ale_fwe-voxel", "logp_fwe-size", "logp_fwe-mass", "logp_fwe-voxel"):
        assert (out / f"{name}.nii.gz").is_file(), name
    clusters = pd.read_csv(out / "clusters.csv")
    assert clusters["significant_voxel"].all() and (clusters["inference"] == "voxel").all()
    assert {"label_peak", "labels", "peak_zscore", "mean_ale", "com_x"} <= set(clusters.columns)
    capsys.readouterr()
    # NiMARE cannot place foci off voxel centres: a clear message, no traceback
    assert _run(["--sleuth", str(sleuth_files["conv"]), "--n-iters", "5", "--engine", "nimare",
                 "--focus-placement", "exact", "--out", str(tmp_path / "n")]) == 2
    err = capsys.readouterr().err
    assert "in-house engine" in err and "Traceback" not in err
