"""Command-line conventions: dataset names, help everywhere, hardened options, no traceback."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from painmeta import cli
from painmeta.cli import build_parser, main
from painmeta.errors import InputError
from painmeta.paths import dataset_paths

BAD_NAMES = ["../cipn", "../../etc", "/tmp/x", "data/raw/cipn", "x src", "", "-x", "_x", "a" * 65, "cipn;rm",
             "caf\u00e9", "\uff43ipn", ".", "..", "x\ny"]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_dataset_paths_refuses_anything_but_a_name(name):
    with pytest.raises(InputError, match="not valid"):
        dataset_paths(name)


def test_a_path_object_is_refused_too(fixtures):
    # The old raw-folder branch took a folder path and wrote outputs under its name.
    with pytest.raises(InputError):
        dataset_paths(fixtures / "valid_mini")


def test_good_names():
    from painmeta.paths import check_dataset_name

    for name in ("cipn", "cancer_pain", "nidm_pain", "A1", "x-y_z", "a" * 64):
        assert check_dataset_name(name) == name


def test_every_command_takes_dataset_as_option_and_checks_it(capsys):
    subs = _subparsers(build_parser())
    takes = [name for name, p in subs.items() if any("--dataset" in a.option_strings for a in p._actions)]
    assert {"validate", "extract", "run-stage", "roi", "quality", "audit", "report", "check-report", "ale",
            "new-dataset"} <= set(takes)
    for name in takes:
        argv = [name, "--dataset", "../../x"]
        if name == "run-stage":
            argv.insert(1, "00_extraction")
        if name in ("ale", "ale-power"):
            argv += ["--out", "o"]
        assert main(argv) == 2, name
        err = capsys.readouterr().err
        assert "not valid" in err and "Traceback" not in err, (name, err)


def test_legacy_positional_is_checked_the_same_way(capsys):
    assert main(["validate", "../cipn"]) == 2
    assert "It looks like a path" in capsys.readouterr().err
    assert main(["validate", "cipn", "--dataset", "cancer_pain"]) == 2
    assert "dataset given twice" in capsys.readouterr().err
    assert main(["validate", "cipn"]) == 0
    assert main(["validate", "--dataset", "cipn"]) == 0
    assert "all files valid" in capsys.readouterr().out


def test_every_command_and_option_has_help():
    subs = _subparsers(build_parser())
    parent = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in parent._choices_actions}
    for name, parser in subs.items():
        assert helps.get(name), f"command {name} has no help"
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"


@pytest.mark.parametrize("text", ["-1", "4294967296", "1.5", "x", "\uff11", ""])
def test_bad_seeds_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        cli.seed_value(text)


def test_seed_bounds_accepted():
    assert cli.seed_value("0") == 0 and cli.seed_value("4294967295") == 2**32 - 1


def test_ale_refuses_negative_seed_and_out_file(tmp_path, capsys):
    sleuth = tmp_path / "s.txt"
    sleuth.write_text("// Reference=MNI\n// A\n// Subjects=10\n1 2 3\n\n// B\n// Subjects=10\n4 5 6\n")
    assert main(["ale", "--sleuth", str(sleuth), "--out", str(tmp_path / "o"), "--n-iters", "5",
                 "--seed", "-1"]) == 2
    assert "seed" in capsys.readouterr().err
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    assert main(["ale", "--sleuth", str(sleuth), "--out", str(target), "--n-iters", "5"]) == 2
    assert "existing file" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_unexpected_error_is_one_line_and_a_log(tmp_path, monkeypatch, capsys):
    def boom(args):
        raise RuntimeError("something broke\nsecond line")

    parser = build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    subs = _subparsers(parser)
    subs["validate"].set_defaults(func=boom)
    assert main(["validate", "--dataset", "cipn"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "RuntimeError: something broke" in err and "second line" not in err
    log = err.split("the traceback is in ")[1].split(")")[0].strip()
    text = open(log, encoding="utf-8").read()
    assert "Traceback" in text and "RuntimeError" in text
    assert str(tmp_path) in log  # under PAINMETA_WORK/outputs/logs, not in the project


def test_usage_errors_return_2_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "painmeta", "run-stage"], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "usage" in proc.stderr
