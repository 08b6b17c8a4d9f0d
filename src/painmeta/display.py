"""One way to show tables and prose from data, in notebooks and on report pages.

Every stage notebook, and the report index, renders tables and Markdown through
this module, so that what a co-author reads is the same everywhere and nothing
from data reaches a page as markup:

- :func:`show_table` / :func:`table_html` — a pandas Styler table with no index
  column, human headers, numbers formatted for people (no
  ``0.00039999999999995595``, no ``NaN``/``<NA>``/``None``), every row shown
  (long tables scroll inside their box, wide tables scroll sideways; nothing is
  silently cut: a table cut with ``max_rows`` says so and names the file holding
  every row), and every cell, header and caption HTML-escaped.
- :func:`show_markdown` / :func:`markdown_html` — Markdown rendered by
  markdown-it-py with raw HTML disabled (``<script>`` in a study label shows as
  text) and images disabled (a page must open offline).
- :func:`literal` — put a data value inside Markdown prose so that it shows
  exactly as written (Markdown punctuation escaped).

Why not ``IPython.display.Markdown`` or ``Styler`` as they come: nbconvert passes
raw HTML inside Markdown outputs through to the page, and ``Styler`` does not
escape cells, headers or captions by default; either lets a study label run
script in a co-author's browser.

Examples
--------
>>> from painmeta.display import show_table, show_markdown, literal
>>> show_table(df, columns=["study_id", "n"], headers={"n": "Patients (n)"},
...            formats={"p": "{:.3f}"}, caption="Included studies")   # doctest: +SKIP
>>> show_markdown(f"**{literal(config.title)}**")                       # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import html
import itertools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "HEADERS",
    "MISSING",
    "TABLE_CSS",
    "format_value",
    "header",
    "literal",
    "markdown_html",
    "show_markdown",
    "show_table",
    "style_table",
    "table_html",
]

#: What a missing value (NaN, None, pandas.NA, NaT) shows as.
MISSING = "—"

#: Human headers for column names used across the project's tables. Anything not
#: listed gets :func:`header`'s default (underscores to spaces, first letter up).
HEADERS: dict[str, str] = {
    "study_id": "Study",
    "experiment_id": "Experiment",
    "focus_id": "Focus",
    "finding_id": "Finding",
    "n_foci": "Foci (n)",
    "n_findings": "Findings (n)",
    "n_ale": "n in ALE",
    "n_patients": "Patients (n)",
    "n_controls": "Controls (n)",
    "n_iters": "Iterations",
    "in_ale": "In ALE",
    "ale_note": "ALE note",
    "evidence_note": "Evidence note",
    "contrast_type": "Contrast type",
    "seed_region": "Seed region",
    "stat_type": "Statistic",
    "stat_value": "Value",
    "space_reported": "Space (reported)",
    "x_reported": "x (reported)",
    "y_reported": "y (reported)",
    "z_reported": "z (reported)",
    "network_label": "Network",
    "rule_id": "Rule",
    "rule_ids": "Rules",
    "finding_ids": "Findings",
    "focus_ids": "Foci",
    "item_id": "Item",
    "ci_lower": "CI lower",
    "ci_upper": "CI upper",
    "I2": "I²",
    "I2_percent": "I² (%)",
    "tau2": "τ²",
    "tau": "τ",
    "Q_p": "p (Q)",
    "p_value": "p",
    "fwhm_mm": "FWHM (mm)",
    "peak_ma": "Peak MA",
    "sha256": "SHA-256",
}

#: CSS for tables made here; the report template and the index page include it.
TABLE_CSS = """
.pm-table-wrap { overflow-x: auto; max-width: 100%; margin: .4em 0 1em 0; }
.pm-table-wrap.pm-scroll { max-height: 36em; overflow-y: auto; border: 1px solid #e4e4e4; }
.pm-table-wrap table.pm-table { border-collapse: collapse; font-size: 13px; line-height: 1.35; table-layout: auto;
                                margin: 0; width: auto; }
.pm-table-wrap table.pm-table caption { caption-side: top; text-align: left; font-weight: 600; padding: 4px 0;
                                        color: #333; }
.pm-table-wrap table.pm-table th { background: #f3f3f3; text-align: left; vertical-align: bottom; padding: 4px 8px;
                                   border-bottom: 1px solid #bbb; position: sticky; top: 0; z-index: 1;
                                   white-space: normal; min-width: 3em; }
.pm-table-wrap table.pm-table td { padding: 3px 8px; border-bottom: 1px solid #eee; vertical-align: top;
                                   text-align: left; max-width: 44em; min-width: 5em; white-space: normal;
                                   overflow-wrap: break-word; }
.pm-table-wrap table.pm-table td.pm-num { text-align: right; font-variant-numeric: tabular-nums;
                                          white-space: nowrap; min-width: 0; }
.pm-table-wrap table.pm-table tbody tr:nth-child(even) td { background: #fafafa; }
.pm-note { color: #555; font-size: 12px; margin: -.6em 0 1em 0; }
"""

# Rows beyond which a table gets a scroll box (all rows are still in the page).
_SCROLL_ROWS = 25
_table_ids = itertools.count()


# --------------------------------------------------------------------------- values


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return bool(pd.isna(value)) if np.ndim(value) == 0 else False
    except (TypeError, ValueError):
        return False


def _format_float(x: float) -> str:
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0:
        return "0"
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    ax = abs(x)
    if ax < 1e-3:
        return f"{x:.3g}"  # 0.0004, 5.09e-06
    if ax >= 1e5:
        return f"{x:.4g}" if ax >= 1e15 else f"{x:.0f}"
    # Four significant digits, at most four decimals, trailing zeros dropped:
    # 0.30000000000000004 -> 0.3, 9.7634 -> 9.763, 1632.49 -> 1632.
    decimals = min(4, max(0, 3 - math.floor(math.log10(ax))))
    text = f"{x:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_value(value: Any, missing: str = MISSING) -> str:
    """Format one cell for people.

    Parameters
    ----------
    value : object
        A cell: number, bool, text, date, list, missing value.
    missing : str
        What NaN, None, ``pandas.NA`` and ``NaT`` show as.

    Returns
    -------
    str
        Floats with at most four significant digits (whole numbers without a
        decimal point; magnitudes below 0.001 in three significant digits,
        e.g. ``5.09e-06``), booleans as ``yes``/``no``, lists joined with ``; ``.
        Not HTML-escaped: escaping happens when the table is rendered.
    """
    if isinstance(value, (list, tuple, set, frozenset)):
        return "; ".join(format_value(v, missing) for v in value)
    if _is_missing(value):
        return missing
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return _format_float(float(value))
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.strftime("%Y-%m-%d %H:%M") if (value.hour or value.minute) else value.strftime("%Y-%m-%d")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def header(column: Any) -> str:
    """Human header for a column name.

    ``HEADERS`` first; otherwise underscores become spaces and the first letter
    is capitalised (``contrast_type`` -> ``Contrast type``). Tuples (MultiIndex
    columns) are joined with `` · ``.
    """
    if isinstance(column, tuple):
        return " · ".join(header(c) for c in column if str(c) != "")
    text = str(column)
    if text in HEADERS:
        return HEADERS[text]
    if not re.fullmatch(r"[a-z0-9_]+", text):
        return text  # already written for people (e.g. "Patients (n)")
    words = text.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


# --------------------------------------------------------------------------- tables

Formatter = str | Callable[[Any], str]


def _formatter(spec: Formatter, missing: str) -> Callable[[Any], str]:
    if callable(spec):
        return lambda v: missing if _is_missing(v) else str(spec(v))
    return lambda v: missing if _is_missing(v) else spec.format(v)


def _prepare(df: pd.DataFrame, columns: Sequence[Any] | None, headers: Mapping[Any, str] | None,
             formats: Mapping[Any, Formatter] | None, missing: str) -> tuple[pd.DataFrame, pd.DataFrame, list[bool]]:
    """Return (original values, display strings, numeric flags), index folded into columns."""
    data = df
    if any(n is not None for n in data.index.names):
        data = data.reset_index()  # a named index becomes ordinary columns: no index column is ever shown
    if columns is not None:
        unknown = [c for c in columns if c not in data.columns]
        if unknown:
            raise KeyError(f"show_table: no column(s) {unknown}; the table has {list(data.columns)}")
        data = data.loc[:, list(columns)]
    formats = dict(formats or {})
    shown = {}
    numeric = []
    for i, col in enumerate(data.columns):
        series = data.iloc[:, i]
        fmt = _formatter(formats[col], missing) if col in formats else (lambda v: format_value(v, missing))
        shown[i] = [fmt(v) for v in series.tolist()]
        numeric.append(pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype))
    names = [str((headers or {}).get(c, header(c))) for c in data.columns]
    text = pd.DataFrame(shown, index=pd.RangeIndex(len(data)), columns=range(len(names)), dtype=object)
    text.columns = pd.Index(_dedupe(names), dtype=object)
    return data.reset_index(drop=True), text, numeric


def _dedupe(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n} ({seen[n]})")
    return out


def style_table(df: pd.DataFrame, columns: Sequence[Any] | None = None, headers: Mapping[Any, str] | None = None,
                formats: Mapping[Any, Formatter] | None = None, caption: str | None = None,
                colours: Mapping[Any, Mapping[Any, str]] | None = None, missing: str = MISSING):
    """Build the escaped pandas Styler behind :func:`show_table` (see there for the parameters).

    Returns
    -------
    pandas.io.formats.style.Styler
        Every cell is a display string; cells, headers and caption are
        HTML-escaped; the index is hidden.
    """
    original, text, numeric = _prepare(df, columns, headers, formats, missing)
    digest = hashlib.sha1(text.to_csv().encode("utf-8")).hexdigest()[:8]
    # A deterministic id (pandas' default is random) keeps re-rendered pages identical.
    uid = f"pm{next(_table_ids)}_{digest}"
    from pandas.io.formats.style import Styler

    styler = Styler(text, uuid=uid, cell_ids=False, escape="html")
    styler = styler.hide(axis="index").format_index(escape="html", axis=1)
    styler = styler.set_table_attributes('class="pm-table"')
    num_cols = [text.columns[i] for i, flag in enumerate(numeric) if flag]
    if num_cols:
        styler = styler.set_td_classes(pd.DataFrame(
            [["pm-num" if c in num_cols else "" for c in text.columns]] * len(text),
            index=text.index, columns=text.columns))
    if colours:
        for col, mapping in colours.items():
            if col not in original.columns:
                continue
            pos = list(original.columns).index(col)
            css = [f"background-color: {_safe_colour(mapping.get(v, ''))}" if mapping.get(v) else ""
                   for v in original[col].tolist()]
            styler = styler.apply(lambda s, css=css: css, subset=[text.columns[pos]], axis=0)
    if caption:
        styler = styler.set_caption(html.escape(str(caption)))
    return styler


def _safe_colour(value: str) -> str:
    # Colours come from code, but a mapping built from data must not inject CSS.
    if re.fullmatch(r"#[0-9A-Fa-f]{3,8}|[a-zA-Z]{3,20}", str(value)):
        return str(value)
    raise ValueError(f"not a CSS colour: {value!r} (use #rrggbb or a colour name)")


def table_html(df: pd.DataFrame, columns: Sequence[Any] | None = None, headers: Mapping[Any, str] | None = None,
               formats: Mapping[Any, Formatter] | None = None, caption: str | None = None,
               colours: Mapping[Any, Mapping[Any, str]] | None = None, missing: str = MISSING,
               empty: str = "Nothing to show.", note: str | None = None, max_rows: int | None = None,
               full_table: str | None = None) -> str:
    """HTML of a table for people; see :func:`show_table` for the parameters.

    Returns
    -------
    str
        ``<div class="pm-table-wrap">`` holding the escaped table (a scroll box
        when it has more than 25 rows, with a note saying how many rows it
        holds), or an escaped sentence when ``df`` has no rows.
    """
    if df is None or len(df) == 0:
        return f'<p class="pm-empty"><em>{html.escape(empty)}</em></p>'
    n_rows = len(df)
    shown = df
    if max_rows is not None and n_rows > max_rows:
        if not full_table:
            raise ValueError("max_rows cuts the table: say where the whole table is (full_table='file.csv')")
        shown = df.iloc[:max_rows]
    body = style_table(shown, columns, headers, formats, caption, colours, missing).to_html()
    long = len(shown) > _SCROLL_ROWS
    out = f'<div class="pm-table-wrap{" pm-scroll" if long else ""}">{body}</div>'
    notes = []
    if len(shown) < n_rows:
        notes.append(f"First {len(shown)} of {n_rows} rows shown; all {n_rows} are in {full_table}.")
    elif long:
        notes.append(f"{n_rows} rows: scroll inside the table to see them all.")
    if note:
        notes.append(str(note))
    if notes:
        out += f'<p class="pm-note">{html.escape(" ".join(notes))}</p>'
    return out


def show_table(df: pd.DataFrame, columns: Sequence[Any] | None = None, headers: Mapping[Any, str] | None = None,
               formats: Mapping[Any, Formatter] | None = None, caption: str | None = None,
               colours: Mapping[Any, Mapping[Any, str]] | None = None, missing: str = MISSING,
               empty: str = "Nothing to show.", note: str | None = None, max_rows: int | None = None,
               full_table: str | None = None) -> None:
    """Display a table for people in a notebook (and so on its report page).

    Parameters
    ----------
    df : pandas.DataFrame
        The table. A named index is shown as ordinary column(s); an unnamed
        index (row numbers, a concatenation's repeated labels) is not shown.
    columns : sequence, optional
        Columns to show, in order (default: all). Unknown names raise ``KeyError``.
    headers : mapping, optional
        Column name -> header text. Others get :func:`header`'s default.
    formats : mapping, optional
        Column name -> format string (``"{:.3f}"``) or callable returning text.
        Others get :func:`format_value`. Missing values always show ``missing``.
    caption : str, optional
        Caption above the table (escaped).
    colours : mapping, optional
        Column name -> {value: CSS colour} background for that column's cells
        (e.g. audit statuses).
    missing : str
        Text for missing values (default an em dash).
    empty : str
        Sentence shown instead of a table with no rows.
    note : str, optional
        A line under the table (escaped).
    max_rows : int, optional
        Show only the first ``max_rows`` rows of a very long table (thousands of
        foci). Never silent: ``full_table`` (required then) names where every row
        is, and a note under the table says how many rows are shown of how many.
        Default: every row (long tables scroll inside their box).
    full_table : str, optional
        Where the whole table is (e.g. ``data/processed/<dataset>/foci_mni.csv``).
    """
    from IPython.display import HTML, display

    display(HTML(table_html(df, columns, headers, formats, caption, colours, missing, empty, note, max_rows,
                            full_table)))


# --------------------------------------------------------------------------- markdown

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>&~])")


def literal(value: Any, missing: str = MISSING) -> str:
    """A data value made safe to place inside Markdown prose: it shows exactly as written.

    Markdown punctuation is backslash-escaped, so ``*`` or ``[x](y)`` in a study
    label is not read as emphasis or a link; line breaks become spaces. (Raw HTML
    is already disabled by :func:`markdown_html`; this also keeps it literal.)

    Parameters
    ----------
    value : object
        Formatted with :func:`format_value` first.
    missing : str
        Text for a missing value.
    """
    text = format_value(value, missing)
    text = re.sub(r"\s*[\r\n]+\s*", " ", text)
    return _MD_SPECIAL.sub(r"\\\1", text)


@lru_cache(maxsize=1)
def _markdown():
    from markdown_it import MarkdownIt

    # CommonMark with tables; raw HTML off (it shows as text), images off (no network on a report page).
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table").disable("image")
    return md


def markdown_html(text: str, inline: bool = False) -> str:
    """Render Markdown from data to safe HTML.

    Parameters
    ----------
    text : str
        Markdown. Raw HTML in it is escaped and shows as text; images are not
        rendered; links with ``javascript:`` and similar schemes are refused by
        markdown-it's link validation.
    inline : bool
        Render without the enclosing paragraph (for a table cell or a heading).

    Returns
    -------
    str
        HTML.
    """
    text = "" if _is_missing(text) else str(text)
    md = _markdown()
    return md.renderInline(text) if inline else md.render(text)


def show_markdown(text: str) -> None:
    """Display Markdown from data (or prose mixing code and data) safely in a notebook.

    Use :func:`literal` for each data value placed inside prose. The output is
    HTML already rendered by :func:`markdown_html`, so nbconvert cannot pass raw
    HTML from the data through to the page.
    """
    from IPython.display import HTML, display

    display(HTML(f'<div class="pm-md">{markdown_html(text)}</div>'))
