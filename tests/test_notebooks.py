"""Every stage notebook executes through Papermill on every dataset and renders self-contained HTML."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from painmeta.browser_check import check_report
from painmeta.notebooks import run_stage
from painmeta.paths import dataset_paths
from painmeta.report import build_index

ROOT = Path(__file__).resolve().parents[1]
STAGES = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
DATASETS = ["cipn", "cancer_pain", "nidm_pain", "enge2021_semantic", "xu2021_chronic_pain"]
EXTERNAL = re.compile(r"""<(script|link|img)[^>]+(src|href)=["']https?://""", re.I)


def _assert_self_contained(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert not EXTERNAL.search(text), f"{page.name} loads something from the network"
    assert "pm-hide-code" in text, "code cells must be hidden by default"


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.parametrize("dataset", DATASETS)
def test_all_stages_execute_and_render(dataset):
    # Quick Monte Carlo settings keep the suite fast; make all uses the config's iterations.
    params = {"quick": True}
    for stage in STAGES:
        result = run_stage(stage, dataset, parameters=params)
        assert Path(result["notebook"]).is_file()
        _assert_self_contained(Path(result["html"]))
    index = build_index(dataset)
    _assert_self_contained_index(index, dataset)
    if dataset == "enge2021_semantic":
        # The published fail-safe N has its own audit table. (A quick run's 50 iterations cannot reach the
        # paper's p < 0.01, so no cluster is significant and nothing is computed: each row says why.)
        import pandas as pd

        fsn = pd.read_csv(dataset_paths(dataset).stage("audit", create=False) / "fsn_comparison.csv")
        assert len(fsn) == 8 and set(fsn["status"]) == {"not compared"}
        assert fsn["reason"].str.contains("no fail-safe N").all()
    if shutil.which("chromium"):
        # A real browser, offline: no console error, every image loads, every local link resolves.
        reports = check_report(dataset)
        assert reports and all(r.ok for r in reports), [r for r in reports if not r.ok]


def _assert_self_contained_index(index: Path, dataset: str) -> None:
    text = index.read_text(encoding="utf-8")
    assert not EXTERNAL.search(text)
    paths = dataset_paths(dataset)
    for href in re.findall(r'href="([^"#]+)"', text):
        assert (index.parent / href).is_file(), f"broken link {href}"
    for stage in STAGES:
        assert f'href="{stage}.html"' in text
    # Build info: the SHA-256 table of the inputs (a 64-hex-digit checksum), and the dataset's name.
    assert "SHA-256" in text and re.search(r"\b[0-9a-f]{64}\b", text) and paths.name in text


@pytest.mark.notebook
@pytest.mark.parametrize("dataset", ["enge2021_semantic", "cipn"])
def test_proportions_page_says_in_one_line_when_there_is_nothing_to_pool(dataset):
    """Without region-level findings the page says why once, then points to it: no 0/0 tables, no empty forests."""
    import json

    from painmeta.proportions import NOTHING_TO_POOL

    result = run_stage("03_proportions", dataset, parameters={"quick": True})
    cells = json.loads(Path(result["notebook"]).read_text(encoding="utf-8"))["cells"]
    shown = json.dumps([c.get("outputs", []) for c in cells if c["cell_type"] == "code"])
    forests = list((dataset_paths(dataset).outputs / "proportions").glob("forest_*.png"))
    if dataset == "cipn":  # region-level findings: tables and forest plots, no such line
        assert NOTHING_TO_POOL not in shown and forests
    else:
        assert shown.count(NOTHING_TO_POOL) == 1 and shown.count("Nothing to pool (see the first section).") == 3
        assert "0/0" not in shown and "image/png" not in shown and not forests
