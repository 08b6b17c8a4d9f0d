"""Hostile input never escapes: every file type a dataset may hold, and Sleuth files.

The corpora live in tests/fixtures/ (regenerate with tests/fixtures/make_broken_corpus.py):
``broken/<case>/`` is a whole dataset with one defect (checked case by case in
test_extraction.py), ``sleuth_broken/<case>/input.txt`` a defective Sleuth file.
Each case folder carries ``expected.json`` with the fragments its message must hold.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from painmeta import extraction
from painmeta.errors import InputError
from painmeta.sleuth import read_sleuth

FIXTURES = Path(__file__).parent / "fixtures"
BROKEN = FIXTURES / "broken"
SLEUTH_BROKEN = FIXTURES / "sleuth_broken"
SLEUTH_CASES = sorted(p.name for p in SLEUTH_BROKEN.iterdir() if p.is_dir())


def test_corpus_covers_every_file_type():
    # Every file a dataset may hold has at least one broken case; the case's expected message names the file.
    files = {"dataset.yaml", "studies.csv", "experiments.csv", "foci.csv", "findings.csv", "robins_i.csv",
             "prisma.yaml", "reported.yaml", "review_implied_counts.csv"}
    named = set()
    for case in BROKEN.iterdir():
        for expected in json.loads((case / "expected.json").read_text()):
            named |= {f for f in files if any(f in fragment for fragment in expected)}
    assert named == files
    # The cases the issue lists by name.
    required = {"config_alias_bomb", "prisma_alias_bomb", "config_duplicate_key", "duplicate_column",
                "blank_lines_keep_line_numbers", "fullwidth_digits", "integer_out_of_range",
                "config_filter_matches_nothing", "config_lookup_outside_project", "config_name_mismatch",
                "robins_unknown_study", "robins_bad_evidence", "implied_events_exceed_n", "config_not_utf8"}
    assert required <= {p.name for p in BROKEN.iterdir()}
    assert {"coordinate_far_outside", "subjects_absurd", "subjects_fraction"} <= set(SLEUTH_CASES)


def test_optional_files_are_validated(use_raw):
    # Before: validate looked at the four tables only; a broken robins_i.csv, prisma.yaml, reported.yaml
    # or review_implied_counts.csv passed and failed later, inside a notebook.
    use_raw(BROKEN)
    for case, file in (("robins_bad_judgement", "robins_i.csv"), ("prisma_negative_count", "prisma.yaml"),
                       ("reported_bad_kind", "reported.yaml"),
                       ("implied_events_exceed_n", "review_implied_counts.csv")):
        problems = [str(p) for p in extraction.validate(case)]
        assert problems and all(file in p for p in problems), (case, problems)


def test_unicode_digits_are_not_silently_missing(use_raw):
    # Full-width "２０" passed the integer check and became a missing sample size downstream.
    use_raw(BROKEN)
    problems = [str(p) for p in extraction.validate("fullwidth_digits")]
    assert any("column 'n_ale'" in p and "digits 0-9" in p for p in problems), problems


def test_line_numbers_survive_blank_lines(use_raw):
    use_raw(BROKEN)
    problems = [str(p) for p in extraction.validate("blank_lines_keep_line_numbers")]
    # The bad cell is on line 5 of the file (two blank lines above it), not line 3.
    assert any("line 5, column 'z'" in p for p in problems), problems


@pytest.mark.parametrize("case", ["config_alias_bomb", "prisma_alias_bomb", "reported_alias"])
def test_alias_bombs_are_refused_quickly(case, use_raw):
    use_raw(BROKEN)
    start = time.perf_counter()
    problems = [str(p) for p in extraction.validate(case)]
    assert time.perf_counter() - start < 30  # generous: refusal needs no expansion at all
    assert any("is not allowed" in p for p in problems), problems


def test_prisma_alias_bomb_refused_by_the_loader(tmp_path):
    # A small bomb (9**5 paths) so that the old loader, which walked every path, fails the test
    # rather than exhausting memory; the committed corpus case has nine levels.
    from painmeta.prisma import load_prisma

    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcd", "bcde"))
    path = tmp_path / "prisma.yaml"
    path.write_text("version: 1\nnotes:\n" + "".join("  " + ln + "\n" for ln in bomb.splitlines()))
    with pytest.raises(InputError, match=r"line 3: anchor '&a' is not allowed"):
        load_prisma(path)


@pytest.mark.parametrize("case", SLEUTH_CASES)
def test_broken_sleuth_file_is_reported_with_line(case):
    folder = SLEUTH_BROKEN / case
    with pytest.raises(InputError) as info:
        read_sleuth(folder / "input.txt")
    message = str(info.value)
    for fragment in json.loads((folder / "expected.json").read_text()):
        assert fragment in message, (case, fragment, message)


@pytest.mark.parametrize("case", ["coordinate_far_outside", "subjects_absurd", "not_utf8"])
def test_broken_sleuth_through_the_cli_gives_no_traceback(case, tmp_path, use_raw, capsys):
    from painmeta.cli import main

    use_raw(tmp_path / "raw")
    bad = SLEUTH_BROKEN / case / "input.txt"
    for argv in (["new-dataset", "fromsleuth", "--from-sleuth", str(bad)],
                 ["ale", "--sleuth", str(bad), str(bad), "--out", str(tmp_path / "o"), "--n-iters", "5",
                  "--engine", "inhouse"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "Traceback" not in err and "input.txt:" in err, err
    assert not (tmp_path / "raw" / "fromsleuth").exists()  # nothing half-made is left behind


@pytest.mark.parametrize("case", ["config_alias_bomb", "config_not_utf8", "prisma_duplicate_key",
                                  "robins_unknown_study", "implied_not_integer", "duplicate_column"])
def test_cli_validate_reports_every_file_type_without_traceback(case, use_raw, capsys):
    from painmeta.cli import main

    use_raw(BROKEN)
    assert main(["validate", "--dataset", case]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for expected in json.loads((BROKEN / case / "expected.json").read_text()):
        assert any(all(f in line for f in expected) for line in err.splitlines()), (expected, err)


def test_cli_process_gives_no_traceback(use_raw):
    # One real process per entry point kind: bad input exits 2 with the message only.
    use_raw(BROKEN)
    proc = subprocess.run([sys.executable, "-m", "painmeta", "validate", "--dataset", "prisma_alias_bomb"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "prisma.yaml, line 3: anchor '&a' is not allowed" in proc.stderr
