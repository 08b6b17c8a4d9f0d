"""A dataset whose every text field carries markup: no page of its report runs it, every page shows it as text.

The fixture (tests/fixtures/hostile_dataset/, written by make_hostile_dataset.py) puts
``<script>window.__pwned=...</script>``, ``<img src=x onerror=...>`` and an element of class ``pm-injected`` into the
title, prose keys, study labels, contrast text, regions, labels, notes, sources, ROBINS-I and PRISMA text and
``reported.yaml``. All stages run in quick mode into a temporary work folder; headless Chromium then opens every page
offline.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from painmeta.browser_check import check_report
from painmeta.notebooks import list_stages, run_stage
from painmeta.report import build_index

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "hostile_dataset"

PROBE = """JSON.stringify({
  pwned: (typeof window.__pwned === 'undefined') ? null : String(window.__pwned),
  injected: document.querySelectorAll('.pm-injected').length,
  text: document.body.innerText
})"""


def _project_with_hostile_dataset(base: Path) -> Path:
    """A project root whose data/raw holds only the hostile dataset (notebooks and lookups shared)."""
    root = base / "project"
    (root / "data" / "raw").mkdir(parents=True)
    (root / "notebooks").symlink_to(ROOT / "notebooks")
    (root / "data" / "lookups").symlink_to(ROOT / "data" / "lookups")
    (root / "pyproject.toml").symlink_to(ROOT / "pyproject.toml")
    shutil.copytree(FIXTURE, root / "data" / "raw" / "hostile")
    return root


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium not installed")
def test_hostile_dataset_report_runs_no_injected_markup(tmp_path, monkeypatch):
    root = _project_with_hostile_dataset(tmp_path)
    monkeypatch.setenv("PAINMETA_ROOT", str(root))
    failed = {}
    for stage in list_stages(ROOT):
        try:
            run_stage(stage, "hostile", parameters={"quick": True})
        except Exception as exc:  # keep going: every page that renders is checked
            failed[stage] = f"{type(exc).__name__}: {str(exc)[-400:]}"
    build_index("hostile")
    reports = check_report("hostile", probe=PROBE)
    assert {r.page for r in reports} >= {"index.html"}

    problems = []
    texts = {}
    for r in reports:
        probe = json.loads(r.probe)
        texts[r.page] = probe["text"]
        if probe["pwned"] is not None:
            problems.append(f"{r.page}: script from data ran (window.__pwned = {probe['pwned']!r})")
        if probe["injected"]:
            problems.append(f"{r.page}: {probe['injected']} element(s) injected from data")
        problems += [f"{r.page}: {item}" for item in r.injected]
    assert not problems, "\n".join(problems)
    assert not failed, failed

    # The markup shows as text, where the data is shown.
    literal = '<script>window.__pwned="{tag}"</script>'
    assert literal.format(tag="title") in texts["index.html"]
    assert literal.format(tag="overview") in texts["index.html"]
    assert literal.format(tag="notes") in texts["index.html"]
    assert literal.format(tag="contrast_A_gt") in texts["00_extraction.html"]
    assert literal.format(tag="author0") in texts["00_extraction.html"]
    assert literal.format(tag="region") in texts["02_roi_matrices.html"]
    assert literal.format(tag="reported_what") in texts["05_audit.html"]
