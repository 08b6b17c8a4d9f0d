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
def _isolated_work(tmp_path, monkeypatch):
    """Point PAINMETA_WORK at a per-test temporary folder."""
    monkeypatch.setenv("PAINMETA_ROOT", str(ROOT))
    monkeypatch.setenv("PAINMETA_WORK", str(tmp_path / "work"))
    yield


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def pytest_configure(config):
    os.environ.setdefault("MPLBACKEND", "Agg")
