"""The neuroquery_pain dataset: committed tables validate, rebuild byte for byte, counts as stated.

The rebuild test needs the NeuroQuery v1 source files (not committed): it looks in
``$PAINMETA_NEUROQUERY_SOURCE``, then ``../shared/data/neuroquery`` beside the project, then
``/work/shared/data/neuroquery``, and skips with the reason when none holds them. The
builder's rules are also tested on small synthetic inputs, which need no source.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import sparse

from painmeta import extraction
from painmeta.config import load_config

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "data" / "raw" / "neuroquery_pain"
TOOL = ROOT / "tools" / "build_neuroquery_pain.py"


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_neuroquery_pain", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


nq = _load_builder()


def _source_dir() -> Path | None:
    candidates = [os.environ.get("PAINMETA_NEUROQUERY_SOURCE"), ROOT.parent / "shared" / "data" / "neuroquery",
                  "/work/shared/data/neuroquery"]
    for c in candidates:
        if c and all((Path(c) / name).is_file() for name, _ in nq.SOURCE_FILES.values()):
            return Path(c)
    return None


def _read(name: str) -> pd.DataFrame:
    return pd.read_csv(RAW / name, dtype=str, keep_default_na=False)


def _stated_counts() -> dict[str, int]:
    """The Counts table of SOURCE.md, parsed."""
    text = (RAW / "SOURCE.md").read_text(encoding="utf-8")
    section = text.split("## Counts", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([^|]+?) \| ([0-9,]+) \|$", section, flags=re.M)
    return {k: int(v.replace(",", "")) for k, v in rows}


# --------------------------------------------------------------------------- committed data


def test_committed_tables_validate():
    assert extraction.validate(RAW) == []
    config, paths = load_config("neuroquery_pain")
    assert config.name == paths.raw.name == "neuroquery_pain"
    assert config.role == "database"
    assert config.question and config.overview and config.missing
    assert (RAW / "LICENSE").read_text().startswith("BSD 3-Clause License")
    # What the dataset does not have is absent, not faked.
    for absent in ("prisma.yaml", "robins_i.csv", "reported.yaml"):
        assert not (RAW / absent).exists()


def test_counts_are_those_stated_in_source_md():
    stated = _stated_counts()
    studies, experiments, foci = _read("studies.csv"), _read("experiments.csv"), _read("foci.csv")
    excluded = _read("build_exclusions.csv")
    assert stated["articles selected"] == len(studies) == len(experiments)
    assert stated["experiments (experiments.csv)"] == len(experiments)
    assert stated["foci (foci.csv)"] == len(foci)
    by_reason = excluded["reason_code"].value_counts().to_dict()
    assert {k.removeprefix("excluded: "): v for k, v in stated.items() if k.startswith("excluded: ")} == by_reason
    # Every source peak of a selected article is either a focus or a listed exclusion.
    assert stated["peaks of the selected articles in the database"] == len(foci) + len(excluded)
    assert 300 <= len(studies) <= 500 and 10_000 <= len(foci) <= 20_000  # the brief's scale


def test_one_experiment_per_article_with_the_assumed_n():
    config, _ = load_config("neuroquery_pain")
    n = config.extra["build"]["n_subjects"]
    studies, experiments, foci = _read("studies.csv"), _read("experiments.csv"), _read("foci.csv")
    excluded = _read("build_exclusions.csv")
    assert experiments["study_id"].tolist() == studies["study_id"].tolist()
    assert set(experiments["n_ale"]) == {str(n)}
    assert f"n_ale = {n} is an assumption" in experiments["evidence_note"].iloc[0]
    assert set(experiments["contrast_type"]) == {"within_group"} and set(experiments["direction"]) == {"unknown"}
    assert set(foci["space"]) == set(experiments["space"]) == {"MNI"}
    assert (studies["study_id"] == "PMID" + studies["pmid"]).all()
    # Dropped peaks keep their would-be ids, never reused; a kept twin is a real focus.
    assert not set(excluded["focus_id"]) & set(foci["focus_id"])
    kept = excluded["kept_focus_id"][excluded["kept_focus_id"] != ""]
    assert set(kept) <= set(foci["focus_id"])
    assert not foci.duplicated(["experiment_id", "x", "y", "z"]).any()
    assert set(foci["source"].str.extract(r"commit (\w+)")[0]) == {nq.SHORT}


# --------------------------------------------------------------------------- rebuild


def test_rebuild_is_byte_identical(tmp_path):
    source = _source_dir()
    if source is None:
        pytest.skip("NeuroQuery v1 source files not found (set PAINMETA_NEUROQUERY_SOURCE to a folder holding them)")
    config, _ = load_config("neuroquery_pain")
    build = config.extra["build"]
    nq.build(source, tmp_path, min_count=build["min_count"], n_subjects=build["n_subjects"])
    committed = sorted(p.name for p in RAW.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == committed
    for name in committed:
        assert (tmp_path / name).read_bytes() == (RAW / name).read_bytes(), f"{name} differs from a rebuild"


def test_cli_reports_missing_source_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, str(TOOL), "--source", str(tmp_path / "nowhere"), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "source folder not found" in proc.stderr
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- rules on synthetic input


def _source(coords: list[tuple], titles: dict[str, str] | None = None) -> object:
    df = pd.DataFrame(coords, columns=["id", "table_id", "table_name", "x", "y", "z"]).astype(str)
    df["line"] = np.arange(len(df)) + 2
    ids = list(dict.fromkeys(df["id"]))
    meta = pd.DataFrame({"id": ids, "title": [(titles or {}).get(i, "") for i in ids]})
    return nq.Source(meta, sparse.csr_matrix((len(ids), 1)), ["pain"], df)


BOX = (np.array([-90.0, -126.0, -72.0]), np.array([90.0, 90.0, 108.0]))


def test_rules_for_repeated_tables_and_peaks():
    rows = [
        ("1", "tbl1", "Table 1", "10.0", "20.0", "30.0"),
        ("1", "tbl1", "Table 1", "-10.0", "20.0", "30.0"),
        ("1", "T1", "Table\xa01", "10.0", "20.0", "30.0"),     # the same table again, peak for peak
        ("1", "T1", "Table\xa01", "-10.0", "20.0", "30.0"),
        ("1", "tbl2", "Table 2", "1.0", "2.0", "3.0"),
        ("1", "tbl2", "Table 2", "4.0", "5.0", "6.0"),
        ("1", "T2", "TABLE 2", "1.0", "2.0", "3.0"),          # a second extraction that disagrees on one row
        ("1", "T2", "TABLE 2", "4.0", "-5.0", "6.0"),
        ("1", "tbl3", "Table 3", "-10.0", "20.0", "30.0"),     # a peak shared with another table
        ("1", "tbl3", "Table 3", "7.0", "8.0", "x"),           # not a number
        ("1", "tbl3", "Table 3", "7.0", "8.0", "190.0"),       # beyond +/-150 mm
        ("1", "tbl3", "Table 3", "2.0", "24.0", "128.0"),      # outside the template volume: kept, noted
    ]
    foci, dropped = nq.build_foci(_source(rows), ["1"], BOX)
    assert foci["focus_id"].tolist() == ["PMID1_0001", "PMID1_0002", "PMID1_0005", "PMID1_0006", "PMID1_0012"]
    reasons = dict(zip(dropped["focus_id"], dropped["reason_code"]))
    assert reasons == {"PMID1_0003": "repeated_table", "PMID1_0004": "repeated_table",
                       "PMID1_0007": "second_extraction", "PMID1_0008": "second_extraction",
                       "PMID1_0009": "repeated_peak", "PMID1_0010": "not_a_number", "PMID1_0011": "beyond_150mm"}
    assert dropped.set_index("focus_id").loc["PMID1_0009", "kept_focus_id"] == "PMID1_0002"
    assert "disagree" in dropped.set_index("focus_id").loc["PMID1_0008", "reason"]
    notes = foci.set_index("focus_id")["note"]
    assert "second extraction" in notes["PMID1_0006"] and "outside" in notes["PMID1_0012"]
    assert notes["PMID1_0001"] == ""


def test_tables_with_different_names_are_not_merged():
    rows = [("1", "t1", "Table 1", "1.0", "2.0", "3.0"), ("1", "t1", "Table 1", "4.0", "5.0", "6.0"),
            ("1", "t2", "Table 2", "1.0", "2.0", "3.0"), ("1", "t2", "Table 2", "7.0", "8.0", "9.0")]
    foci, dropped = nq.build_foci(_source(rows), ["1"], BOX)
    assert len(foci) == 3 and dropped["reason_code"].tolist() == ["repeated_peak"]


def test_row_order_check_detects_a_shifted_matrix():
    vocab = [f"term{i}" for i in range(40)]
    titles = [f"term{i} term{i + 20}" for i in range(20)]
    counts = np.zeros((20, 40))
    for i in range(20):
        counts[i, [i, i + 20]] = 2
    meta = pd.DataFrame({"id": [str(100 + i) for i in range(20)], "title": titles})
    good = nq.Source(meta, sparse.csr_matrix(counts), vocab, pd.DataFrame())
    facts = nq.check_row_order(good, np.arange(20))
    assert facts["aligned"] == 1.0 and facts["own_best"] == 20
    shifted = nq.Source(meta, sparse.csr_matrix(np.roll(counts, 1, axis=0)), vocab, pd.DataFrame())
    with pytest.raises(nq.BuildError, match="row-order check failed"):
        nq.check_row_order(shifted, np.arange(20))


def test_dataset_yaml_states_the_assumptions():
    text = (RAW / "dataset.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    assert raw["ale"]["models"]["all"]["n_iters"] == 1000 and "10,000 is the publication setting" in text
    assert raw["ale"]["models"]["all"]["contrast_types"] == ["within_group"]
    for words in ("No contrasts", "Fixed, assumed sample size", "Coordinate space assumed MNI", "Dependence"):
        assert words in raw["missing"]
