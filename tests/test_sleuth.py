"""Sleuth reader/writer: round trips (ours and NiMARE's) and error messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from painmeta.cli import main
from painmeta.errors import InputError
from painmeta.sleuth import read_sleuth, tal2mni, write_sleuth

GOOD = """// Reference=MNI
// Boland 2014: CIPN > control
// Subjects=12
4\t24\t23
-50 13 -8

// Liu 2022: CIPN > control
// Subjects=20
-40\t-20\t50

// Smith 2021: MBSR > waitlist
// second name line
// Subjects=13
2 -54 30
0 50 0
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_good(tmp_path: Path) -> None:
    data = read_sleuth(_write(tmp_path, "good.txt", GOOD))
    assert data.space == "MNI"
    assert data.sample_sizes == {
        "Boland 2014: CIPN > control": 12,
        "Liu 2022: CIPN > control": 20,
        "Smith 2021: MBSR > waitlist second name line": 13,
    }
    assert list(data.foci.columns[:5]) == ["experiment_id", "x", "y", "z", "space"]
    assert len(data.foci) == 5
    assert data.foci.loc[1, ["x", "y", "z"]].tolist() == [-50.0, 13.0, -8.0]
    assert data.foci["line"].tolist() == [4, 5, 9, 14, 15]


def test_round_trip_ours(tmp_path: Path) -> None:
    foci = pd.DataFrame(
        [("a: x", 1.0, 2.0, 3.0), ("a: x", -4.5, 5.25, 6.0), ("b: y", 10.123456, -20.0, 30.0)],
        columns=["experiment_id", "x", "y", "z"],
    )
    path = write_sleuth(foci, {"a: x": 12, "b: y": 20}, tmp_path / "sub" / "out.txt")
    back = read_sleuth(path)
    assert back.sample_sizes == {"a: x": 12, "b: y": 20}
    pd.testing.assert_frame_equal(back.foci[["experiment_id", "x", "y", "z"]], foci)


def test_round_trip_through_nimare(tmp_path: Path) -> None:
    from nimare.io import convert_sleuth_to_dataset

    data = read_sleuth(_write(tmp_path, "good.txt", GOOD))
    out = write_sleuth(data.foci, data.sample_sizes, tmp_path / "rewritten.txt")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dset = convert_sleuth_to_dataset(str(out), target="mni152_2mm")
    coords = dset.coordinates
    nimare_sets = {}
    for _, row in coords.iterrows():
        nimare_sets.setdefault(row["id"], []).append((row["x"], row["y"], row["z"]))
    ours = {}
    for _, row in data.foci.iterrows():
        ours.setdefault(row["experiment_id"], []).append((row["x"], row["y"], row["z"]))
    # NiMARE names experiments "<study>-<contrast>", splitting at the ':' after the year.
    mapping = {
        "Boland 2014: CIPN > control": "Boland 2014-CIPN > control",
        "Liu 2022: CIPN > control": "Liu 2022-CIPN > control",
        "Smith 2021: MBSR > waitlist second name line": "Smith 2021-MBSR > waitlist second name line",
    }
    for ours_id, nim_id in mapping.items():
        assert sorted(nimare_sets[nim_id]) == sorted(ours[ours_id])
    meta = dset.metadata.set_index("id")
    for ours_id, nim_id in mapping.items():
        assert int(np.ravel(meta.loc[nim_id, "sample_sizes"])[0]) == data.sample_sizes[ours_id]


def test_talairach_conversion_matches_nimare(tmp_path: Path) -> None:
    from nimare.utils import tal2mni as nimare_tal2mni

    path = _write(tmp_path, "tal.txt", "// Reference=Talairach\n// A 2000: c\n// Subjects=10\n10 -20 30\n-44 8 2\n")
    data = read_sleuth(path)
    assert data.space == "Talairach"
    mni = data.to_mni()
    xyz = data.foci[["x", "y", "z"]].to_numpy()
    assert np.allclose(mni.foci[["x", "y", "z"]].to_numpy(), nimare_tal2mni(xyz))
    assert np.allclose(tal2mni(xyz), nimare_tal2mni(xyz))
    assert (mni.foci["space"] == "MNI").all()


BAD = {
    "empty": ("\n\n", 1, "empty file"),
    "no_reference": ("// A\n// Subjects=12\n1 2 3\n", 1, "missing reference space"),
    "unknown_reference": ("// Reference=SPM\n// A\n// Subjects=12\n1 2 3\n", 1, "unknown reference space"),
    "no_subjects": ("// Reference=MNI\n// A\n1 2 3\n", 2, "without a '// Subjects=N' line"),
    "trailing_header": ("// Reference=MNI\n// A\n// Subjects=3\n1 2 3\n\n// B\n", 6, "without a '// Subjects=N' line"),
    "bad_subjects": ("// Reference=MNI\n// A\n// Subjects=twelve\n1 2 3\n", 3, "not a positive whole number"),
    "non_numeric": ("// Reference=MNI\n// A\n// Subjects=12\n1 2 3\n4 five 6\n", 5, "non-numeric coordinate 'five'"),
    "two_columns": ("// Reference=MNI\n// A\n// Subjects=12\n1 2\n", 4, "expected 3 columns"),
    "four_columns": ("// Reference=MNI\n// A\n// Subjects=12\n1\t2\t3\t4\n", 4, "expected 3 columns"),
    "no_coordinates": ("// Reference=MNI\n// A\n// Subjects=12\n\n// B\n// Subjects=3\n1 2 3\n", 2, "has no coordinates"),
    "orphan_coordinates": ("// Reference=MNI\n// A\n// Subjects=12\n1 2 3\n\n4 5 6\n", 6, "without an experiment header"),
    "duplicate_names": ("// Reference=MNI\n// A\n// Subjects=12\n1 2 3\n\n// A\n// Subjects=3\n1 2 3\n", 6, "already used"),
    "only_reference": ("// Reference=MNI\n", 1, "no experiments"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_errors_name_file_and_line(tmp_path: Path, case: str) -> None:
    text, line, fragment = BAD[case]
    path = _write(tmp_path, f"{case}.txt", text)
    with pytest.raises(InputError) as err:
        read_sleuth(path)
    msg = str(err.value)
    assert f"{path}:{line}:" in msg
    assert fragment in msg
    assert "Fix:" in msg


def test_mixed_references_across_files(tmp_path: Path) -> None:
    a = _write(tmp_path, "a.txt", "// Reference=MNI\n// A\n// Subjects=12\n1 2 3\n")
    b = _write(tmp_path, "b.txt", "// Reference=Talairach\n// B\n// Subjects=12\n1 2 3\n")
    with pytest.raises(InputError, match="mixed reference spaces") as err:
        read_sleuth([a, b])
    assert str(a) in str(err.value) and str(b) in str(err.value)


def test_duplicate_across_files(tmp_path: Path) -> None:
    a = _write(tmp_path, "a.txt", "// Reference=MNI\n// A\n// Subjects=12\n1 2 3\n")
    b = _write(tmp_path, "b.txt", "// Reference=MNI\n// A\n// Subjects=12\n1 2 3\n")
    with pytest.raises(InputError, match=r"b\.txt:2: experiment name 'A' already used at .*a\.txt:2"):
        read_sleuth([a, b])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_sleuth(tmp_path / "nope.txt")


def test_write_validates(tmp_path: Path) -> None:
    foci = pd.DataFrame([("a", 1.0, 2.0, 3.0)], columns=["experiment_id", "x", "y", "z"])
    with pytest.raises(InputError, match="sample size"):
        write_sleuth(foci, {}, tmp_path / "x.txt")
    with pytest.raises(InputError, match="whole number"):
        write_sleuth(foci, {"a": 12.5}, tmp_path / "x.txt")
    with pytest.raises(InputError, match="unknown space"):
        write_sleuth(foci, {"a": 12}, tmp_path / "x.txt", space="SPM")


def test_cli_reports_sleuth_error_with_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _write(tmp_path, "bad.txt", "// Reference=MNI\n// A\n// Subjects=12\n1 2 x\n")
    code = main(["ale", "--sleuth", str(bad), "--out", str(tmp_path / "o"), "--n-iters", "5", "--engine", "inhouse"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{bad}:4:" in err and "non-numeric" in err
    assert "Traceback" not in err
