"""``modality`` accepts ``unknown``: coordinate databases and Sleuth imports do not know it."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from painmeta import extraction
from painmeta.schemas import MODALITIES


def _mini_with_modality(tmp_path, fixtures, value: str):
    folder = tmp_path / "raw" / "valid_mini"
    shutil.copytree(fixtures / "valid_mini", folder)
    exp = pd.read_csv(folder / "experiments.csv", dtype=str, keep_default_na=False)
    exp.loc[0, "modality"] = value
    exp.to_csv(folder / "experiments.csv", index=False)
    return folder


def test_unknown_modality_is_valid(tmp_path, fixtures, use_raw):
    assert "unknown" in MODALITIES
    folder = _mini_with_modality(tmp_path, fixtures, "unknown")
    use_raw(folder.parent)
    assert extraction.validate("valid_mini") == []
    ext, _, _ = extraction.extract("valid_mini")
    assert ext.experiments["modality"].iloc[0] == "unknown"


@pytest.mark.parametrize("value", ["fMRI?", "Unknown ", ""])
def test_other_modalities_are_refused_naming_file_row_and_column(tmp_path, fixtures, use_raw, value):
    folder = _mini_with_modality(tmp_path, fixtures, value)
    use_raw(folder.parent)
    text = "\n".join(map(str, extraction.validate("valid_mini")))
    assert "experiments.csv" in text and "modality" in text, text


def test_new_dataset_from_sleuth_writes_unknown_modality_and_validates(tmp_path, use_raw):
    from pathlib import Path

    from painmeta.scaffold import new_dataset

    use_raw(tmp_path / "raw")
    folder = new_dataset("imported", [Path(__file__).parent / "fixtures" / "sleuth" / "two_blocks.txt"])
    exp = pd.read_csv(folder / "experiments.csv", dtype=str, keep_default_na=False)
    assert set(exp["modality"]) == {"unknown"}
    assert extraction.validate("imported") == []
