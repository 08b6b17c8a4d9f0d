"""The display module: tables and Markdown for people, with everything from data escaped."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from painmeta import display
from painmeta.display import format_value, header, literal, markdown_html, table_html

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


def _cells(html_text: str) -> list[str]:
    return re.findall(r"<t[dh](?:\s[^>]*)?>(.*?)</t[dh]>", html_text, flags=re.S)


@pytest.mark.parametrize("value, shown", [
    (0.00039999999999995595, "0.0004"),
    (0.30000000000000004, "0.3"),
    (1 / 3, "0.3333"),
    (9.7634, "9.763"),
    (5.09e-6, "5.09e-06"),
    (228483.0, "228483"),
    (2014, "2014"),
    (np.int64(12), "12"),
    (-0.04, "-0.04"),
    (0.0, "0"),
    (float("inf"), "∞"),
    (True, "yes"),
    (np.bool_(False), "no"),
    (["a", 1.5], "a; 1.5"),
])
def test_format_value(value, shown):
    assert format_value(value) == shown


@pytest.mark.parametrize("value", [None, np.nan, pd.NA, pd.NaT, float("nan")])
def test_missing_values_never_show_as_nan_or_none(value):
    assert format_value(value) == display.MISSING


def test_table_has_no_index_human_headers_and_no_raw_floats():
    df = pd.DataFrame({"study_id": ["A", "B"], "p_value": [0.00039999999999995595, np.nan],
                       "n_foci": pd.array([3, None], dtype="Int64"), "in_ale": [True, False]})
    out = table_html(df)
    text = " ".join(_cells(out))
    for bad in ("NaN", "<NA>", "None", "nan", "0.000399999", "True", "False"):
        assert bad not in text, bad
    assert _cells(out)[:4] == ["Study", "p", "Foci (n)", "In ALE"]
    assert "0.0004" in text and "yes" in text and display.MISSING in text
    assert 'class="row_heading' not in out and "index_name" not in out  # no index column


def test_named_index_becomes_a_column_unnamed_index_is_dropped():
    wide = pd.DataFrame({"D1": ["low"]}, index=pd.Index(["S1"], name="study_id"))
    out = table_html(wide)
    assert _cells(out)[:2] == ["Study", "D1"] and "S1" in out
    stacked = pd.concat([pd.DataFrame({"a": [1, 2]}), pd.DataFrame({"a": [3]})])  # index 0, 1, 0
    assert _cells(table_html(stacked)) == ["A", "1", "2", "3"]


def test_everything_from_data_is_escaped():
    df = pd.DataFrame({HOSTILE: [HOSTILE], "ok": [1]})
    out = table_html(df, caption=HOSTILE, note=HOSTILE, headers={"ok": HOSTILE})
    assert "<script" not in out and "<img" not in out and "onerror=\"" not in out
    assert out.count("&lt;script&gt;window.__pwned=1&lt;/script&gt;") == 5  # cell, two headers, caption, note


def test_empty_table_is_a_sentence_and_escaped():
    out = table_html(pd.DataFrame({"a": []}), empty="No <b>row</b>")
    assert "<table" not in out and "No &lt;b&gt;row&lt;/b&gt;" in out


def test_long_tables_scroll_and_say_so_never_truncate():
    df = pd.DataFrame({"i": range(300)})
    out = table_html(df)
    assert "pm-scroll" in out and "300 rows" in out
    assert len(re.findall(r"<tr>", out)) == 301  # header + every row


def test_columns_headers_formats_and_colours():
    df = pd.DataFrame({"a": [1.23456, 2.0], "status": ["match", "mismatch"], "hidden": [0, 0]})
    out = table_html(df, columns=["status", "a"], headers={"a": "Value"}, formats={"a": "{:.2f}"},
                     colours={"status": {"match": "#d9f0d3"}})
    assert _cells(out)[:2] == ["Status", "Value"] and "1.23" in out and "2.00" in out and "Hidden" not in out
    assert "background-color: #d9f0d3" in out
    with pytest.raises(KeyError, match="nope"):
        table_html(df, columns=["nope"])
    with pytest.raises(ValueError, match="CSS colour"):
        table_html(df, colours={"status": {"match": "red;background:url(x)"}})


def test_table_ids_are_deterministic_within_a_run():
    # pandas' Styler uses a random uuid; ours derives it from the content and the table's position.
    df = pd.DataFrame({"a": [1]})
    first = re.search(r'id="(T_[^"]+)"', table_html(df)).group(1)
    assert re.fullmatch(r"T_pm\d+_[0-9a-f]{8}", first)


def test_headers_default():
    assert header("contrast_type") == "Contrast type"
    assert header("Patients (n)") == "Patients (n)"
    assert header(("level", "n")) == "Level · N"


def test_markdown_escapes_html_and_drops_images_and_script_links():
    out = markdown_html("**bold** " + HOSTILE + " [x](javascript:alert(1)) ![i](http://example.org/i.png)")
    assert "<strong>bold</strong>" in out
    assert "<script" not in out and "<img" not in out and 'href="javascript' not in out
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in out


def test_literal_keeps_data_literal_inside_markdown():
    out = markdown_html("Study: " + literal("a*b* [l](http://x) <b>"), inline=True)
    assert "<em>" not in out and "<a " not in out and "<b>" not in out
    assert "a*b* [l](http://x) &lt;b&gt;" in out
    assert literal(None) == display.MISSING


def test_max_rows_cuts_only_with_a_note_naming_the_full_table():
    df = pd.DataFrame({"i": range(1000)})
    with pytest.raises(ValueError, match="full_table"):
        table_html(df, max_rows=10)
    out = table_html(df, max_rows=10, full_table="foci_mni.csv")
    assert len(re.findall(r"<tr>", out)) == 11
    assert "First 10 of 1000 rows shown; all 1000 are in foci_mni.csv." in out
    assert "First" not in table_html(df.head(5), max_rows=10, full_table="x.csv")
