"""Forest plots render, on the R fixture's tables, into PNG (300 dpi), SVG and PDF files."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.patches import Polygon
from PIL import Image

from painmeta import proportions as P
from painmeta.errors import InputError
from painmeta.forest import forest_plot, save_figure

REF = json.loads((Path(__file__).parent / "reference" / "metaprop_reference.json").read_text(encoding="utf-8"))
TABLES = REF["tables"]
CATS = ["Default mode network", "Primary sensorimotor", "Lateral/medial prefrontal", "Brainstem/PAG", "Cerebellum"]


def _result(name: str, labels=None) -> P.MetapropResult:
    t = TABLES[name]
    return P.metaprop(t["events"], t["totals"], labels=labels)


def _texts(fig) -> str:
    return "\n".join(t.get_text() for ax in fig.axes for t in ax.texts) + "\n".join(t.get_text() for t in fig.texts)


def _diamonds(fig) -> int:
    return sum(isinstance(p, Polygon) for ax in fig.axes for p in ax.patches)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_single_analysis_renders_all_formats(tmp_path: Path) -> None:
    res = _result("review_experiment", CATS)
    fig = forest_plot(res, title="Experiment level")
    text = _texts(fig)
    # metaprop's layout: rows with events/total, proportion, CI, weight; pooled rows; heterogeneity.
    for needle in ("Default mode network", "Events", "Total", "Proportion", "95%-CI", "Weight*",
                   "Common effect model", "Random effects model", "0.30", "[0.16; 0.48]", "Heterogeneity",
                   "Experiment level"):
        assert needle in text, needle
    assert _diamonds(fig) == 2
    assert fig.axes[0].get_xlabel() == "Proportion"
    paths = save_figure(fig, tmp_path / "sub" / "forest_experiment")
    assert [p.suffix for p in paths] == [".png", ".svg", ".pdf"]
    assert all(p.is_file() and p.stat().st_size > 1000 for p in paths)
    with Image.open(paths[0]) as png:
        assert png.info["dpi"] == pytest.approx((300, 300), abs=0.5)
        assert png.size[0] > 2000  # ~10 inches at 300 dpi, less the trimmed margins
    assert paths[2].read_bytes()[:5] == b"%PDF-"
    assert "<svg" in paths[1].read_text(encoding="utf-8")[:2000]


def test_files_are_reproducible(tmp_path: Path) -> None:
    fig = forest_plot(_result("heterogeneous"))
    a = save_figure(fig, tmp_path / "a")
    b = save_figure(fig, tmp_path / "b")
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes(), pa.suffix


def test_subgroups_stacked_with_difference_test(tmp_path: Path) -> None:
    sg = REF["subgroups"]["synthetic_dir_a"]
    events = {g: TABLES[t]["events"] for g, t in sg["groups"].items()}
    res = P.metaprop_subgroups(events, [6] * 5, labels=CATS)
    colours = {"CIPN > control": "#D55E00", "CIPN < control": "#0072B2"}
    fig = forest_plot(res, title="By direction (synthetic)", group_colours=colours)
    squares = [ln for ln in fig.axes[0].lines if ln.get_marker() == "s"]
    assert {ln.get_color() for ln in squares} == set(colours.values())
    text = _texts(fig)
    assert "CIPN > control" in text and "CIPN < control" in text
    assert "Test for subgroup differences (random effects)" in text
    assert f"{res.test_random.Q:.2f}" in text
    assert _diamonds(fig) == 4
    assert all(p.stat().st_size > 1000 for p in save_figure(fig, tmp_path / "forest_dir"))


@pytest.mark.parametrize("name", ["all_zero", "all_n", "zero_rows", "all_event_rows", "zero_and_all"])
def test_edge_tables_render(tmp_path: Path, name: str) -> None:
    fig = forest_plot(_result(name), title=name)
    assert all(p.stat().st_size > 1000 for p in save_figure(fig, tmp_path / name))


def test_separated_table_shows_not_estimable(tmp_path: Path) -> None:
    fig = forest_plot(P.metaprop([0, 0, 5, 5], [5, 5, 5, 5]))
    text = _texts(fig)
    assert "not estimable" in text and "no random-effects estimate" in text
    assert _diamonds(fig) == 1  # common effect only
    save_figure(fig, tmp_path / "sep")


def test_common_only_and_bad_input() -> None:
    fig = forest_plot(_result("moderate"), show_random=False)
    assert _diamonds(fig) == 1 and "Random effects model" not in _texts(fig)
    with pytest.raises(InputError, match="MetapropResult"):
        forest_plot({"events": [1, 2]})  # type: ignore[arg-type]
