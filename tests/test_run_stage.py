"""run-stage and make: parameters checked up front and recorded, no traceback reaches a user.

Fast tests run two tiny stage notebooks in a temporary project root (one that
raises the project's InputError, one that crashes); the slow ones go through
``make`` with a real stage on a broken dataset.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from painmeta.errors import InputError
from painmeta.notebooks import run_stage

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"

STAGE = '''# %% tags=["parameters"]
dataset = "cipn"
config_overrides = {}
quick = False
mode = "ok"  # ok | input | crash

# %%
from painmeta.config import load_config
from painmeta.errors import InputError

config, paths = load_config(dataset, config_overrides or None)
if mode == "input":
    raise InputError("foci.csv, line 3, column 'z': write a number (value: 'forty')")
if mode == "crash":
    1 / 0
print("ran", config.name, config.ale.seed)
'''


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A project root with one stage notebook (99_probe) and the valid_mini dataset."""
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    (root / "notebooks" / "99_probe.py").write_text(STAGE)
    shutil.copytree(ROOT / "data" / "lookups", root / "data" / "lookups")
    monkeypatch.setenv("PAINMETA_ROOT", str(root))
    monkeypatch.setenv("PAINMETA_RAW", str(FIXTURES))
    return root


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "painmeta", *args], capture_output=True, text=True,
                          env=dict(os.environ))


@pytest.mark.notebook
def test_parameters_actually_used_are_recorded(project):
    result = run_stage("99_probe", "valid_mini", {"quick": True, "config_overrides": {"ale": {"seed": 7}}})
    record = json.loads(Path(result["params"]).read_text())
    assert Path(result["params"]).name == "99_probe.params.json"
    assert Path(result["params"]).parent == Path(result["notebook"]).parent
    assert record["stage"] == "99_probe" and record["dataset"] == "valid_mini"
    assert record["parameters"] == {"config_overrides": {"ale": {"seed": 7}}, "quick": True, "mode": "ok"}
    assert record["config_overrides"] == {"ale": {"seed": 7}} and record["overridden"] is True
    assert record["effective_config"]["ale"]["seed"] == 7 and record["effective_config"]["name"] == "valid_mini"
    # The notebook really ran with those values.
    nb = json.loads(Path(result["notebook"]).read_text())
    assert "ran valid_mini 7" in json.dumps(nb)
    plain = json.loads(Path(run_stage("99_probe", "valid_mini", render=False)["params"]).read_text())
    assert plain["overridden"] is False and plain["effective_config"]["ale"]["seed"] == 1


@pytest.mark.parametrize("params, message", [
    ({"dataset": "cancer_pain"}, "must not set 'dataset'"),
    ({"quik": True}, "has no parameter 'quik'"),
    ({"quick": "yes"}, "must be a bool"),
    ({"config_overrides": {"ale": {"seeed": 1}}}, "key 'ale.seeed'"),
    ({"config_overrides": {"ale": {"n_iters": "many"}}}, "key 'ale.n_iters'"),
    ({"config_overrides": {"name": "cipn"}}, "folder name 'valid_mini'"),
    ([1, 2], "JSON object"),
])
def test_bad_parameters_fail_before_papermill(project, params, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_stage("99_probe", "valid_mini", params)
    assert not (Path(os.environ["PAINMETA_WORK"]) / "outputs" / "valid_mini" / "notebooks").exists()


def test_stage_and_dataset_names_are_checked(project):
    with pytest.raises(InputError, match="no stage '../../x'"):
        run_stage("../../x", "valid_mini")
    with pytest.raises(InputError, match="not valid"):
        run_stage("99_probe", "../fixtures/valid_mini")


def test_cli_params_errors(project):
    for params, message in (('{"quick": tru', "--params is not valid JSON"),
                            ('{"dataset": "cancer_pain"}', "give the dataset with --dataset")):
        proc = _cli("run-stage", "99_probe", "--dataset", "valid_mini", "--params", params)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.notebook
def test_input_error_inside_a_notebook_is_its_message(project):
    proc = _cli("run-stage", "99_probe", "--dataset", "valid_mini", "--params", '{"mode": "input"}')
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "PapermillExecutionError" not in proc.stderr
    assert "foci.csv, line 3, column 'z': write a number" in proc.stderr
    assert not list((Path(os.environ["PAINMETA_WORK"]) / "outputs").rglob("*.params.json"))


@pytest.mark.notebook
def test_other_failure_is_one_line_naming_the_notebook(project):
    proc = _cli("run-stage", "99_probe", "--dataset", "valid_mini", "--params", '{"mode": "crash"}')
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "stage 99_probe failed on dataset valid_mini: ZeroDivisionError: division by zero" in proc.stderr
    executed = proc.stderr.split("with the traceback, is ")[1].split()[0]
    assert Path(executed).is_file() and "ZeroDivisionError" in Path(executed).read_text()
    from painmeta.errors import StageError

    with pytest.raises(StageError):
        run_stage("99_probe", "valid_mini", {"mode": "crash"}, render=False)


# --------------------------------------------------------------------------- make


def _make(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), "-C", str(cwd), *args],
                          capture_output=True, text=True, env=env or dict(os.environ))


@pytest.mark.parametrize("name", ["../../victim", "x src", "", "-rf", "$(shell touch pwned)", "a;b", "a" * 65])
def test_make_refuses_bad_dataset_and_deletes_nothing(tmp_path, name):
    cwd = tmp_path / "a" / "b"
    for keep in (tmp_path / "victim", tmp_path / "a" / "victim", cwd / "src", cwd / "outputs" / "x"):
        keep.mkdir(parents=True)
        (keep / "keep.txt").write_text("keep")
    env = {k: v for k, v in os.environ.items() if k != "PAINMETA_WORK"}
    proc = _make("clean", f"DATASET={name}", cwd=cwd, env=env)
    assert proc.returncode != 0
    assert "is not a dataset name" in proc.stderr or "too long" in proc.stderr, proc.stderr
    assert "rm " not in proc.stdout
    assert len(list(tmp_path.rglob("keep.txt"))) == 4
    assert not (cwd / "pwned").exists()


def test_make_params_stamp_changes_only_with_params(tmp_path):
    env = dict(os.environ, PAINMETA_WORK=str(tmp_path))
    stamp = tmp_path / "outputs" / "cipn" / ".params"
    _make(str(stamp), "DATASET=cipn", 'PARAMS={"quick": true}', env=env)
    first = stamp.stat().st_mtime_ns
    os.utime(stamp, ns=(first - 10**9, first - 10**9))  # as if written a second ago
    _make(str(stamp), "DATASET=cipn", 'PARAMS={"quick": true}', env=env)
    assert stamp.stat().st_mtime_ns == first - 10**9  # same PARAMS: untouched, stages stay up to date
    _make(str(stamp), "DATASET=cipn", 'PARAMS={"quick": false}', env=env)
    assert stamp.stat().st_mtime_ns > first - 10**9 and stamp.read_text() == '{"quick": false}\n'
    # Every stage page depends on the stamp.
    db = _make("-pn", "extraction", "DATASET=cipn", env=env).stdout
    stages = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    for stage in stages:
        rule = next(ln for ln in db.splitlines() if ln.startswith(f"{tmp_path}/outputs/cipn/report/{stage}.html:"))
        assert str(stamp) in rule, rule


@pytest.mark.slow
@pytest.mark.notebook
def test_make_on_a_broken_dataset_shows_the_message_not_a_traceback(tmp_path):
    if not (ROOT / ".venv" / ".painmeta-installed").is_file():
        pytest.skip("make needs the project's .venv (make venv)")
    env = dict(os.environ, PAINMETA_WORK=str(tmp_path), PAINMETA_RAW=str(FIXTURES / "broken"))
    proc = _make("extraction", "DATASET=several_problems", env=env)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "3 problems found" in proc.stderr and "foci.csv, line 3, column 'z'" in proc.stderr


def test_every_stage_recipe_passes_the_params_text():
    """Each stage's recipe hands PARAMS to run-stage through the environment (``"$PAINMETA_PARAMS"``).

    The stage rules after 00 come from ``$(eval $(call ...))``, which expands ``$`` twice: a single ``$$``
    there turned into ``$P`` + "AINMETA_PARAMS" and every ``make all`` failed at stage 01.
    """
    out = subprocess.run(["make", "-n", "-B", "all", "DATASET=cipn"], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PARAMS": ""})
    stages = [line for line in out.stdout.splitlines() if " run-stage " in line]
    assert len(stages) == 6, out.stdout + out.stderr
    assert all(line.endswith('--params "$PAINMETA_PARAMS"') for line in stages), stages
