"""Risk of bias (ROBINS-I): validation, summaries and robvis-style figures."""

from __future__ import annotations

from pathlib import Path

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Circle
from PIL import Image

from painmeta.errors import InputError
from painmeta.quality import (
    DOMAINS,
    JUDGEMENT_LABELS,
    JUDGEMENTS,
    PALETTES,
    SYMBOLS,
    load_robins_i,
    save_figure,
    summary_plot,
    summary_table,
    inferred_mask,
    inferred_style,
    judgement_table,
    traffic_light_plot,
    validate_robins_i,
    wide_table,
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CIPN = ROOT / "data" / "raw" / "cipn" / "robins_i.csv"


@pytest.fixture(scope="module")
def complete() -> pd.DataFrame:
    return load_robins_i(FIXTURES / "robins_i_complete.csv")


@pytest.fixture(scope="module")
def cipn() -> pd.DataFrame:
    return load_robins_i(CIPN)


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]


def _circle_colours(fig) -> set[str]:
    return {mcolors.to_hex(c.get_facecolor()).lower() for c in fig.findobj(Circle)}


# --------------------------------------------------------------------------- validation


def test_broken_fixture_lists_every_problem_with_location():
    with pytest.raises(InputError) as exc:
        load_robins_i(FIXTURES / "robins_i_broken.csv")
    msg = str(exc.value)
    assert "robins_i_broken.csv" in msg
    assert "6 problems found" in msg
    assert "line 3, column 'judgement'" in msg and "'Some concerns'" in msg
    assert "line 4, column 'domain'" in msg and "'D9'" in msg
    assert "line 5, column 'source'" in msg
    assert "line 6, column 'domain'" in msg and "already given on line 5" in msg
    assert "line 8, column 'study_id'" in msg
    assert "has no row for D5, D6, D7, overall" in msg and "not_extracted" in msg
    assert len(exc.value.problems) == 6


def test_missing_column_and_missing_file(tmp_path):
    bad = tmp_path / "robins_i.csv"
    bad.write_text("study_id,domain,judgment,source\nA,D1,low,x\n")
    with pytest.raises(InputError, match=r"line 1, column 'judgement'.*missing"):
        load_robins_i(bad)
    with pytest.raises(InputError, match="file not found"):
        load_robins_i(tmp_path / "nope.csv")


def test_spelling_variants_are_normalised():
    rows = [("S1", d, j, "src") for d, j in zip(
        ["d1", "D2", "D3", "D4", "D5", "D6", "D7", "Overall"],
        ["Low", "No information", "not-extracted", " SERIOUS ", "moderate", "critical", "low", "serious"])]
    df = validate_robins_i(pd.DataFrame(rows, columns=["study_id", "domain", "judgement", "source"]))
    assert list(df["domain"]) == list(DOMAINS)
    assert list(df["judgement"].astype(str)) == ["low", "no_information", "not_extracted", "serious",
                                                 "moderate", "critical", "low", "serious"]
    assert (df["note"] == "").all()


# --------------------------------------------------------------------------- the cipn table


def test_cipn_table_records_only_what_the_review_supports(cipn):
    wide = wide_table(cipn)
    assert list(wide.index) == ["Boland2014", "Liu2022", "Smith2021", "Nudelman2016", "Unidentified_ref20"]
    assert (wide[["D2", "D3", "D4"]] == "low").all().all()
    assert (wide[["D1", "D5", "D6", "D7", "overall"]] == "not_extracted").all().all()
    low = cipn[cipn["judgement"] == "low"]
    assert low["note"].str.contains("consistently low across studies").all()
    assert low["note"].str.contains("not individually confirmed").all()
    assert (low["source"] == "Diagnostics 2026;16(11):1619, section 3.5").all()
    assert (cipn["note"] != "").all()


def test_cipn_plots_render(cipn):
    fig = traffic_light_plot(cipn, footnote="D2-D4 from the review text")
    texts = _texts(fig)
    assert {"Boland2014", "Unidentified_ref20", "Overall", "Not extracted (not public)", "Low (inferred)"} <= set(texts)
    assert "Critical" not in texts and "Low" not in texts  # legend shows only the levels present, as robvis
    # Every cipn 'low' is read from the review's blanket sentence: drawn as the inferred level, never as plain low.
    inferred_face = inferred_style(PALETTES["cochrane"]["low"])["facecolor"].lower()
    assert _circle_colours(fig) == {inferred_face, PALETTES["cochrane"]["not_extracted"].lower()}
    summ = summary_table(cipn)
    assert summ.loc["D2", "low"] == 100 and summ.loc["overall", "not_extracted"] == 100
    split = summary_table(cipn, by_evidence=True)
    assert split.loc["D2", "low"] == 0 and split.loc["D2", "low_inferred"] == 100
    assert np.allclose(split.sum(axis=1), 100)
    bars = summary_plot(cipn)
    labels = bars.legends[0].get_texts()
    assert [t.get_text() for t in labels] == ["Low risk (inferred)", "Not extracted (not public)"]
    hatched = [p for p in bars.axes[0].patches if p.get_hatch()]
    assert len(hatched) == 8 and {round(p.get_width()) for p in hatched if p.get_width() > 0} == {100}


def test_cipn_inferred_judgements_are_the_blanket_sentence_rows(cipn):
    inferred = inferred_mask(cipn)
    wide = wide_table(cipn)
    assert (inferred == (wide == "low")).all().all()
    low = cipn[cipn["judgement"] == "low"]
    assert (low["evidence"] == "inferred").all()
    assert low["note"].str.startswith("review text: consistently low across studies").all()
    table = judgement_table(cipn)
    assert list(table.columns) == ["Study", *DOMAINS[:-1], "Overall"]
    assert (table["D2"] == "Low (inferred)").all() and (table["Overall"] == "Not extracted (not public)").all()


def test_evidence_column_is_optional_and_checked(complete):
    assert not inferred_mask(complete).to_numpy().any()  # no column: every judgement verified
    bad = complete.assign(evidence=["maybe"] + [""] * (len(complete) - 1))
    with pytest.raises(InputError, match="line 2, column 'evidence'.*'maybe'"):
        inferred_mask(bad)
    mixed = complete.assign(evidence=["inferred"] + ["verified"] * (len(complete) - 1))
    fig = traffic_light_plot(mixed)
    texts = set(_texts(fig))
    first = mixed.iloc[0]["judgement"]
    assert f"{JUDGEMENT_LABELS[first]} (inferred)" in texts and JUDGEMENT_LABELS[first] in texts


def test_cipn_weighted_needs_a_weight_for_every_study(cipn):
    with pytest.raises(InputError, match="Unidentified_ref20"):
        summary_table(cipn, weighted=True, weights={"Boland2014": 24, "Liu2022": 40, "Smith2021": 23,
                                                    "Nudelman2016": 47})


# --------------------------------------------------------------------------- complete synthetic table


def test_complete_traffic_light_has_every_level_and_symbol(complete):
    fig = traffic_light_plot(complete, title="Synthetic")
    texts = set(_texts(fig))
    assert set(SYMBOLS.values()) <= texts
    assert {f"{d}: " for d in DOMAINS[:-1]} <= {t[:4] for t in texts}
    assert "D4: Bias due to deviations from intended interventions." in texts
    assert _circle_colours(fig) == {c.lower() for c in PALETTES["cochrane"].values()}


def test_colour_blind_palette(complete):
    fig = traffic_light_plot(complete, colour_blind=True)
    assert _circle_colours(fig) == {c.lower() for c in PALETTES["colourblind"].values()}
    assert "#02c100" not in _circle_colours(fig)
    bars = summary_plot(complete, colour_blind=True)
    fills = {mcolors.to_hex(p.get_facecolor()).lower() for p in bars.axes[0].patches}
    assert fills == {c.lower() for c in PALETTES["colourblind"].values()}


def test_summary_unweighted_and_weighted(complete):
    plain = summary_table(complete)
    assert np.allclose(plain.sum(axis=1), 100)
    assert np.allclose(plain.to_numpy(), 100 / 6)  # each level once per domain in the fixture
    weighted = summary_table(complete, weighted=True)  # 'weight' column: 10..60
    # D1: Study1 is low (weight 10) of a total 210.
    assert weighted.loc["D1", "low"] == pytest.approx(100 * 10 / 210)
    assert np.allclose(weighted.sum(axis=1), 100)
    explicit = summary_table(complete, weighted=True, weights={f"Study{i}": 1 for i in range(1, 7)})
    assert np.allclose(explicit, plain)
    with pytest.raises(ValueError, match="weighted=True"):
        summary_table(complete, weights={"Study1": 1})
    fig = summary_plot(complete, weighted=True, weight_label="sample size", title="Weighted")
    assert "Studies (n = 6), weighted by sample size" in _texts(fig)
    assert "Overall risk of bias" in [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(summary_plot(complete, overall=False).axes[0].get_yticks()) == 7


def test_save_figure_writes_png_svg_pdf_reproducibly(complete, tmp_path):
    fig = traffic_light_plot(complete)
    paths = save_figure(fig, tmp_path / "sub" / "tl")
    assert [p.suffix for p in paths] == [".png", ".svg", ".pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)
    with Image.open(paths[0]) as png:
        assert round(png.info["dpi"][0]) == 300
    first_svg = paths[1].read_bytes()
    save_figure(fig, tmp_path / "sub" / "tl")
    assert paths[1].read_bytes() == first_svg
    assert JUDGEMENTS[0] == "low"


def test_cli_draws_the_quality_stage(capsys):
    from painmeta.cli import main
    from painmeta.paths import dataset_paths

    assert main(["quality", "cipn", "--colour-blind"]) == 0
    out = dataset_paths("cipn").stage("quality", create=False)  # conftest points outputs at a temp folder
    for stem in ("robins_traffic_light", "robins_summary", "prisma_flow"):
        assert all((out / f"{stem}.{ext}").is_file() for ext in ("png", "svg", "pdf"))
    checks = pd.read_csv(out / "prisma_checks.csv")
    assert checks.loc[checks["check"] == "records_identified", "status"].item() == "flag"
    assert main(["quality", "no_such_dataset"]) == 2
    assert "dataset folder not found" in capsys.readouterr().err
