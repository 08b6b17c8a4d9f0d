"""Extraction stage: validation messages, accounting, exports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from painmeta import extraction
from painmeta.errors import InputError

BROKEN = Path(__file__).parent / "fixtures" / "broken"
CASES = sorted(p.name for p in BROKEN.iterdir() if p.is_dir())


def test_corpus_is_complete():
    # The list of defects must all be covered by the committed corpus.
    required = {"missing_column", "wrong_type_int", "bad_space", "duplicate_focus", "unknown_experiment",
                "non_numeric_coordinate", "empty_file", "semicolon_delimiter", "latin1_encoding"}
    assert required <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_broken_table_is_reported_with_location(case):
    folder = BROKEN / case
    problems = extraction.validate(folder)
    assert problems, f"{case}: defect not detected"
    report = extraction.format_problems(problems)
    for expected in json.loads((folder / "expected.json").read_text()):
        # One problem line must contain every expected fragment (file, line, column, hint).
        lines = [str(p) for p in problems] + [report]
        assert any(all(fragment in line for fragment in expected) for line in lines), (case, expected, report)


@pytest.mark.parametrize("case", ["non_numeric_coordinate", "latin1_encoding", "several_problems"])
def test_cli_validate_exits_nonzero_without_traceback(case):
    proc = subprocess.run([sys.executable, "-m", "painmeta", "validate", str(BROKEN / case)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "problem" in proc.stderr and "line" in proc.stderr


def test_cli_validate_ok(fixtures):
    proc = subprocess.run([sys.executable, "-m", "painmeta", "validate", str(fixtures / "valid_mini")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "all tables valid" in proc.stdout


def test_extract_raises_with_all_problems():
    with pytest.raises(InputError) as info:
        extraction.extract(BROKEN / "several_problems")
    assert len(info.value.problems) == 3


@pytest.mark.parametrize("dataset", ["cipn", "cancer_pain", "nidm_pain"])
def test_shipped_datasets_validate_and_account_for_every_row(dataset):
    ext, config, paths = extraction.extract(dataset)
    acc = ext.accounting()
    assert acc["accounted"].all(), acc
    assert (acc["raw_rows"] == acc["processed_rows"] + acc["excluded_rows"]).all()
    # Every focus and finding keeps its source.
    assert ext.foci["source"].notna().all()
    assert ext.findings["source"].notna().all() if len(ext.findings) else True


def test_exclusions_cascade_with_reasons(fixtures):
    ext, _, _ = extraction.extract(fixtures / "valid_mini")
    excl = ext.exclusions.set_index(["table", "id"])
    assert ("experiments", "A_lt") in excl.index
    assert ("foci", "A3") in excl.index and ("findings", "fA2") in excl.index
    assert excl["reason"].notna().all()
    assert "A3" not in set(ext.foci["focus_id"])


def test_talairach_converted_per_study_transform(fixtures):
    from painmeta.coords import tal2mni

    ext, _, _ = extraction.extract(fixtures / "valid_mini")
    b1 = ext.foci.set_index("focus_id").loc["B1"]
    assert b1["space_reported"] == "TAL" and b1["space"] == "MNI"
    assert "tal2icbm_spm" in b1["transform"]
    expected = tal2mni([[-38, -20, 50]], "tal2icbm_spm")[0]
    assert [b1["x"], b1["y"], b1["z"]] == pytest.approx(list(expected), abs=0.01)
    assert (b1["x_reported"], b1["y_reported"], b1["z_reported"]) == (-38, -20, 50)


def test_unverified_experiments_respect_config():
    ext, _, _ = extraction.extract("cipn")
    exp = ext.experiments.set_index("experiment_id")
    assert exp.loc["Boland2014_table3", "evidence"] == "unverified"
    assert bool(exp.loc["Boland2014_table3", "in_ale"])
    ext2, _, _ = extraction.extract("cipn", {"ale": {"include_unverified": False}})
    exp2 = ext2.experiments.set_index("experiment_id")
    assert not bool(exp2.loc["Boland2014_table3", "in_ale"])
    assert "unverified" in exp2.loc["Boland2014_table3", "ale_note"]


def test_cipn_public_facts():
    ext, _, _ = extraction.extract("cipn")
    # 10 public peaks of Boland's Table 3 (contrast assignment unverified) and Boland's two group peaks from
    # Xu 2021's data (secondary extraction); the fifth study is unidentified.
    assert len(ext.foci) == 12
    assert ext.foci["evidence"].value_counts().to_dict() == {"unverified": 10, "secondary": 2}
    studies = ext.studies.set_index("study_id")
    assert not bool(studies.loc["Unidentified_ref20", "identified"])
    assert studies.loc["Boland2014", "cancer_type"] == "multiple myeloma"


def test_write_outputs_and_nimare_roundtrip(fixtures):
    from nimare.dataset import Dataset

    ext, config, paths = extraction.extract(fixtures / "valid_mini")
    written = extraction.write_outputs(ext, config, paths)
    for name in ("studies.csv", "experiments.csv", "foci_mni.csv", "findings.csv", "exclusions.csv",
                 "qa_flags.csv", "nimare_dataset.json"):
        assert written[name].is_file()
    dset = Dataset(str(written["nimare_dataset.json"]))
    assert len(dset.ids) == int(ext.experiments["in_ale"].sum())
    assert len(dset.coordinates) == int(ext.foci["experiment_id"].isin(
        ext.experiments.loc[ext.experiments["in_ale"], "experiment_id"]).sum())
    back = pd.read_csv(written["foci_mni.csv"])
    assert len(back) == len(ext.foci)


def test_two_runs_give_identical_tables(fixtures, tmp_path, monkeypatch):
    outs = []
    for i in range(2):
        monkeypatch.setenv("PAINMETA_WORK", str(tmp_path / f"run{i}"))
        ext, config, paths = extraction.extract("cancer_pain")
        written = extraction.write_outputs(ext, config, paths)
        outs.append({k: Path(v).read_bytes() for k, v in written.items()})
    assert outs[0] == outs[1]
