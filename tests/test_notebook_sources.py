"""Stage notebooks are Jupytext py:percent sources: canonical, parameterised, and in sync with any paired .ipynb."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import jupytext
import pytest

from painmeta.notebooks import list_stages, load_stage_notebook, stage_source

ROOT = Path(__file__).resolve().parents[1]
STAGES = list_stages(ROOT)


def test_stages_exist():
    assert STAGES and STAGES[0].startswith("00_"), STAGES


@pytest.mark.parametrize("stage", STAGES)
def test_source_is_canonical_py_percent(stage):
    # Reading and writing back must not change the file: the text people edit is the text that runs.
    path = stage_source(stage, ROOT)
    text = path.read_text(encoding="utf-8")
    nb = jupytext.reads(text, fmt="py:percent")
    assert jupytext.writes(nb, fmt="py:percent") == text


@pytest.mark.parametrize("stage", STAGES)
def test_one_parameters_cell_with_dataset_and_overrides(stage):
    nb = load_stage_notebook(stage_source(stage, ROOT))
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{stage}: exactly one cell must be tagged 'parameters'"
    src = tagged[0].source
    assert "dataset =" in src and "config_overrides =" in src
    assert [c["id"] for c in nb.cells] == [f"cell-{i:02d}" for i in range(len(nb.cells))]


@pytest.mark.parametrize("stage", STAGES)
def test_paired_ipynb_in_sync(stage):
    # JupyterLab keeps a paired .ipynb beside the source; when one exists it must say the same.
    ipynb = ROOT / "notebooks" / f"{stage}.ipynb"
    if not ipynb.is_file():
        pytest.skip("no paired .ipynb on this machine (run `make notebooks` to write them)")
    py_nb = jupytext.read(stage_source(stage, ROOT))
    ipy_nb = jupytext.read(ipynb)
    assert [(c.cell_type, c.source) for c in py_nb.cells] == [(c.cell_type, c.source) for c in ipy_nb.cells], (
        f"{ipynb.name} and {stage}.py differ: run `make notebooks` (jupytext --sync) and keep the .py")


def test_no_notebook_outputs_or_ipynb_tracked():
    try:
        tracked = subprocess.run(["git", "ls-files", "notebooks"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    assert not [f for f in tracked if f.endswith(".ipynb")], "commit the py:percent sources, not .ipynb files"


#: Names of one dataset's studies or its paper; the pre-commit hook greps src/ and notebooks/ for the same.
DATASET_SPECIFIC = re.compile(r"Boland|Nudelman|Smith 2021|Liu 2022|Diagnostics 2026")


def test_no_dataset_specific_names_in_src_or_notebooks():
    """Nothing dataset-specific in code: text that belongs to one dataset comes from data/raw/<name>/."""
    hits = []
    for folder in (ROOT / "src", ROOT / "notebooks"):
        for path in sorted(p for p in folder.rglob("*") if p.suffix in {".py", ".j2", ".json", ".md", ".tpl"}):
            for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if DATASET_SPECIFIC.search(line):
                    hits.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not hits, "dataset-specific names in code:\n" + "\n".join(hits)
