"""Shared fixtures: every test writes into a temporary work folder, never into data/processed or outputs."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_work(tmp_path, monkeypatch, request):
    """Point PAINMETA_WORK at a per-test temporary folder."""
    monkeypatch.setenv("PAINMETA_ROOT", str(ROOT))
    if request.node.get_closest_marker("notebook") is not None:
        # Notebook runs render every page; their figures need no vector copies (save_figure's
        # formats are tested on their own), which saves a good part of the suite's run time.
        monkeypatch.setenv("PAINMETA_FIGURE_FORMATS", "png")
    monkeypatch.setenv("PAINMETA_WORK", str(tmp_path / "work"))
    # Datasets come from data/raw unless a test says so; restored even if a test sets it directly.
    saved = os.environ.pop("PAINMETA_RAW", None)
    yield
    os.environ.pop("PAINMETA_RAW", None)
    if saved is not None:
        os.environ["PAINMETA_RAW"] = saved


@pytest.fixture
def use_raw(monkeypatch):
    """Return a function that makes a folder the home of raw datasets (``PAINMETA_RAW``).

    Datasets are names, never paths: a test that needs a fixture dataset points
    the project at the folder holding it and then uses the folder's name.
    """
    def _use(folder: Path) -> Path:
        monkeypatch.setenv("PAINMETA_RAW", str(folder))
        return Path(folder)

    return _use


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def pytest_configure(config):
    os.environ.setdefault("MPLBACKEND", "Agg")
