"""Risk of bias (ROBINS-I): load, validate and plot in robvis's conventions.

Input is ``data/raw/<dataset>/robins_i.csv`` in long format, one row per
study and domain::

    study_id,domain,judgement,source,note,evidence
    StudyA2020,D2,low,"Review 2024, section 3.5","review text: low across studies",inferred

``domain`` is one of ``D1`` ... ``D7`` or ``overall``; ``judgement`` is one of
:data:`JUDGEMENTS`. ``not_extracted`` marks a judgement the source made but did
not publish: it is drawn as its own grey level with its own symbol, never as
"no information" (which is a judgement the assessors made).

An optional column ``evidence`` says how a judgement is known: ``verified``
(the source's own per-study judgement; the default when empty) or
``inferred`` (read from a blanket sentence such as "consistently low across
studies", not a per-study judgement). Inferred judgements are drawn as a level
of their own -- the judgement's symbol on a pale, hatched light with a dashed
rim, with its own legend entry ("Low (inferred)") -- in the traffic-light and
the summary plots, so that a reader never takes them for verified ratings.

The two figures follow robvis (McGuinness & Higgins 2021, R package ``robvis``):
:func:`traffic_light_plot` mirrors ``rob_traffic_light(tool = "ROBINS-I")`` and
:func:`summary_plot` mirrors ``rob_summary(tool = "ROBINS-I")``. Colours,
symbols and domain names are robvis's (``R/helpers.R::get_colour``,
``R/rob_traffic_light.R``, ``R/rob_summary.R``); only the "not extracted"
level is ours.

Command line: ``python -m painmeta quality [DATASET] [--colour-blind]`` draws
these figures and the PRISMA flow (:mod:`painmeta.prisma`) into
``outputs/<dataset>/quality/``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from pathlib import Path

import matplotlib
import matplotlib.colors
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Rectangle

from painmeta.errors import InputError
from painmeta.plotting import FONT as _FONT
from painmeta.plotting import inch_canvas as _inch_canvas
from painmeta.plotting import save_figure  # re-exported: quality.save_figure is the shared helper
from painmeta.plotting import text_width as _text_width
from painmeta.plotting import wrap_text as _wrap

__all__ = [
    "COLUMNS",
    "DOMAINS",
    "DOMAIN_NAMES",
    "SUMMARY_DOMAIN_NAMES",
    "JUDGEMENTS",
    "JUDGEMENT_LABELS",
    "SYMBOLS",
    "PALETTES",
    "palette",
    "load_robins_i",
    "validate_robins_i",
    "wide_table",
    "inferred_mask",
    "judgement_table",
    "summary_table",
    "traffic_light_plot",
    "summary_plot",
    "save_figure",
    "run_quality",
    "register_cli",
]

#: Columns of ``robins_i.csv``, in order. ``note`` may be empty; extra columns are kept.
COLUMNS = ("study_id", "domain", "judgement", "source", "note")

#: Domains in plotting order; ``overall`` is the overall judgement.
DOMAINS = ("D1", "D2", "D3", "D4", "D5", "D6", "D7", "overall")

#: robvis's ROBINS-I domain captions (``rob_traffic_light_robinsi``).
DOMAIN_NAMES: dict[str, str] = {
    "D1": "Bias due to confounding",
    "D2": "Bias due to selection of participants",
    "D3": "Bias in classification of interventions",
    "D4": "Bias due to deviations from intended interventions",
    "D5": "Bias due to missing data",
    "D6": "Bias in measurement of outcomes",
    "D7": "Bias in selection of the reported result",
    "overall": "Overall risk of bias",
}
#: Bar labels of the summary plot (robvis ``rob_summary_robinsi``).
SUMMARY_DOMAIN_NAMES = DOMAIN_NAMES

#: Judgement levels, from best to worst, then the two "unknown" levels.
JUDGEMENTS = ("low", "moderate", "serious", "critical", "no_information", "not_extracted")

JUDGEMENT_LABELS: dict[str, str] = {
    "low": "Low",
    "moderate": "Moderate",
    "serious": "Serious",
    "critical": "Critical",
    "no_information": "No information",
    "not_extracted": "Not extracted (not public)",
}

#: Symbols inside the traffic lights. robvis uses pch 43 '+', 45 '-', 120 'x',
#: 33 '!', 63 '?'; 'not extracted' has none in robvis, so we add an empty-set sign.
SYMBOLS: dict[str, str] = {
    "low": "+",
    "moderate": "\u2212",  # minus sign: same meaning as robvis's '-', better weight
    "serious": "X",
    "critical": "!",
    "no_information": "?",
    "not_extracted": "\u2205",
}

#: Colour schemes. ``cochrane`` and ``colourblind`` are robvis's ROBINS-I presets
#: (``get_colour`` in robvis R/helpers.R). robvis draws "not applicable" in
#: #cccccc; our "not extracted" takes a darker grey so that it stays visible on
#: the light-grey Overall column and differs from colour-blind NI (white).
PALETTES: dict[str, dict[str, str]] = {
    "cochrane": {
        "low": "#02C100",
        "moderate": "#E2DF07",
        "serious": "#BF0000",
        "critical": "#820000",
        "no_information": "#4EA1F7",
        "not_extracted": "#9E9E9E",
    },
    "colourblind": {
        "low": "#fed98e",
        "moderate": "#fe9929",
        "serious": "#d95f0e",
        "critical": "#993404",
        "no_information": "#ffffff",
        "not_extracted": "#9E9E9E",
    },
}

#: Values of the optional ``evidence`` column; empty means ``verified``.
EVIDENCE_LEVELS = ("verified", "inferred")

# robvis's furniture colours (rob_tf_theme): strips #a9a9a9, Overall column #d3d3d3.
_STRIP = "#a9a9a9"
_OVERALL_BG = "#d3d3d3"
_GRID = "#808080"


def palette(colour_blind: bool = False) -> dict[str, str]:
    """Return the judgement → colour mapping.

    Parameters
    ----------
    colour_blind : bool
        Use robvis's ``colour = "colourblind"`` preset instead of the Cochrane colours.

    Returns
    -------
    dict
        Hex colour per judgement in :data:`JUDGEMENTS`.
    """
    return dict(PALETTES["colourblind" if colour_blind else "cochrane"])


# --------------------------------------------------------------------------- loading


def _normalise_judgement(value: str) -> str:
    """Map 'No information', 'no-information', ' Low ' to the canonical code."""
    return "_".join(value.strip().lower().replace("-", " ").split())


def _normalise_domain(value: str) -> str:
    v = value.strip()
    return "overall" if v.lower() == "overall" else v.upper()


def _format(file: str, line: int | None, column: str | None, message: str, value: str = "") -> str:
    # Same shape as painmeta.schemas.Problem so every table reports alike.
    where = file
    if line is not None:
        where += f", line {line}"
    if column:
        where += f", column '{column}'"
    shown = f" (value: {value!r})" if value != "" else ""
    return f"{where}: {message}{shown}"


def _raise(problems: list[str]) -> None:
    head = f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found:"
    raise InputError("\n".join([head, *(f"  - {p}" for p in problems)]), problems)


def validate_robins_i(df: pd.DataFrame, file: str | Path = "robins_i.csv") -> pd.DataFrame:
    """Validate a long ROBINS-I table and return it in canonical form.

    Every problem is collected before raising, so one run lists them all.

    Parameters
    ----------
    df : pandas.DataFrame
        Table with at least the columns in :data:`COLUMNS` (``note`` optional).
        Rows are numbered as in a spreadsheet: header = line 1, first row = line 2.
    file : str or path-like
        Name used in messages.

    Returns
    -------
    pandas.DataFrame
        Copy with canonical ``domain`` and ``judgement`` codes (ordered categoricals),
        stripped text, an empty ``note`` where missing, in file order.

    Raises
    ------
    painmeta.errors.InputError
        Naming file, line and column of each problem and how to fix it.
    """
    file = str(file)
    problems: list[str] = []
    missing = [c for c in COLUMNS if c not in df.columns and c != "note"]
    if missing:
        _raise([
            _format(file, 1, c, f"required column is missing; the header must contain "
                                f"{', '.join(COLUMNS)} (note may be empty)")
            for c in missing
        ])
    out = df.copy()
    if "note" not in out.columns:
        out["note"] = ""
    for c in COLUMNS:
        out[c] = out[c].astype(object).where(out[c].notna(), "").map(lambda v: str(v).strip())
    if out.empty:
        _raise([_format(file, None, None, "the table has no rows; add one row per study and domain")])

    lines = np.arange(len(out)) + 2
    out["domain"] = out["domain"].map(_normalise_domain)
    out["judgement"] = out["judgement"].map(_normalise_judgement)
    first_seen: dict[tuple[str, str], int] = {}
    for i, row in enumerate(out.itertuples(index=False)):
        line = int(lines[i])
        raw = df.iloc[i]
        if not row.study_id:
            problems.append(_format(file, line, "study_id", "empty study id; write the study's id "
                                    "(e.g. StudyA2020) as used in studies.csv"))
        if row.domain not in DOMAINS:
            problems.append(_format(file, line, "domain",
                                    f"unknown domain; use one of {', '.join(DOMAINS)}",
                                    str(raw["domain"])))
        if row.judgement not in JUDGEMENTS:
            problems.append(_format(file, line, "judgement",
                                    f"unknown judgement; use one of {', '.join(JUDGEMENTS)} "
                                    "(not_extracted when the source's judgement is not public)",
                                    str(raw["judgement"])))
        if not row.source:
            problems.append(_format(file, line, "source", "empty source; say where the judgement "
                                    "comes from (paper, section, table or URL)"))
        key = (row.study_id, row.domain)
        if row.study_id and row.domain in DOMAINS:
            if key in first_seen:
                problems.append(_format(file, line, "domain",
                                        f"duplicate row for study {row.study_id!r}, domain {row.domain}: "
                                        f"already given on line {first_seen[key]}; keep one of them",
                                        row.domain))
            else:
                first_seen[key] = line
    # Completeness: a traffic light with holes would hide what is unknown.
    studies = list(dict.fromkeys(s for s in out["study_id"] if s))
    for study in studies:
        have = {d for (s, d) in first_seen if s == study}
        lacking = [d for d in DOMAINS if d not in have]
        if lacking:
            problems.append(_format(file, None, "domain",
                                    f"study {study!r} has no row for {', '.join(lacking)}; add one row per "
                                    "missing domain (judgement not_extracted if it is not public)"))
    if problems:
        _raise(problems)
    out["domain"] = pd.Categorical(out["domain"], categories=list(DOMAINS), ordered=True)
    out["judgement"] = pd.Categorical(out["judgement"], categories=list(JUDGEMENTS), ordered=True)
    return out.reset_index(drop=True)


def load_robins_i(path: str | Path) -> pd.DataFrame:
    """Read and validate ``robins_i.csv``.

    Parameters
    ----------
    path : path-like
        The CSV file, or a dataset folder holding ``robins_i.csv``.

    Returns
    -------
    pandas.DataFrame
        See :func:`validate_robins_i`.

    Raises
    ------
    painmeta.errors.InputError
        When the file is missing, unreadable or invalid.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "robins_i.csv"
    if not path.is_file():
        raise InputError(f"{path}: file not found; create it with the header {','.join(COLUMNS)}")
    try:
        # Read as text: 'NA' or 'None' in a note must stay text, and judgements are codes.
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[], encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as a UTF-8 CSV table ({exc}); "
                         "check quoting and save as CSV UTF-8") from exc
    df.columns = [str(c).strip() for c in df.columns]
    return validate_robins_i(df, path)


def _ensure_valid(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` if it came from :func:`validate_robins_i`, else validate it now."""
    j = df["judgement"] if "judgement" in df.columns else None
    if j is not None and isinstance(j.dtype, pd.CategoricalDtype) and list(j.cat.categories) == list(JUDGEMENTS):
        return df
    return validate_robins_i(df, "<table>")


def wide_table(df: pd.DataFrame) -> pd.DataFrame:
    """Study × domain table of judgement codes, studies in file order.

    Parameters
    ----------
    df : pandas.DataFrame
        Long table (validated or not).

    Returns
    -------
    pandas.DataFrame
        Index ``study_id``, columns :data:`DOMAINS`.
    """
    df = _ensure_valid(df)
    studies = list(dict.fromkeys(df["study_id"]))
    wide = df.pivot(index="study_id", columns="domain", values="judgement")
    wide = wide.reindex(index=studies, columns=list(DOMAINS)).astype(object)
    wide.columns.name = None
    return wide


def inferred_mask(df: pd.DataFrame) -> pd.DataFrame:
    """Study × domain table: True where the judgement is ``inferred`` (optional ``evidence`` column).

    Parameters
    ----------
    df : pandas.DataFrame
        Long ROBINS-I table; without an ``evidence`` column every judgement is verified.

    Returns
    -------
    pandas.DataFrame
        Same shape and order as :func:`wide_table`, booleans.

    Raises
    ------
    painmeta.errors.InputError
        When ``evidence`` holds a value other than ``verified``, ``inferred`` or empty
        (naming the line as a spreadsheet numbers it).
    """
    df = _ensure_valid(df)
    studies = list(dict.fromkeys(df["study_id"]))
    if "evidence" in df.columns:
        ev = df["evidence"].astype(object).where(df["evidence"].notna(), "").map(lambda v: str(v).strip().lower())
        bad = [f"line {i + 2}, column 'evidence': must be verified, inferred or empty (value: {v!r})"
               for i, v in enumerate(ev) if v not in ("", *EVIDENCE_LEVELS)]
        if bad:
            _raise([f"robins_i.csv, {b}" for b in bad])
        flag = ev == "inferred"
    else:
        flag = pd.Series(False, index=df.index)
    long = df.assign(_inferred=flag.to_numpy())
    wide = long.pivot(index="study_id", columns="domain", values="_inferred")
    wide = wide.reindex(index=studies, columns=list(DOMAINS)).fillna(False).astype(bool)
    wide.columns.name = None
    return wide


def judgement_table(df: pd.DataFrame) -> pd.DataFrame:
    """Study × domain table of judgements in words, inferred ones marked: for people.

    Returns
    -------
    pandas.DataFrame
        Column ``Study`` then one column per domain (``D1`` ... ``D7``, ``Overall``),
        cells such as ``Low``, ``Low (inferred)``, ``Not extracted (not public)``.
    """
    wide = wide_table(df)
    inferred = inferred_mask(df)
    out = wide.apply(lambda col: col.map(lambda j: JUDGEMENT_LABELS.get(j, j)))
    out = out.where(~inferred, out + " (inferred)")
    out.columns = ["Overall" if c == "overall" else c for c in out.columns]
    return out.rename_axis("Study").reset_index()


def _resolve_weights(df: pd.DataFrame, weights: Mapping[str, float] | pd.Series | str | None) -> pd.Series:
    studies = list(dict.fromkeys(df["study_id"]))
    if weights is None:
        if "weight" not in df.columns:
            raise InputError("weighted=True needs study weights: pass weights={study_id: weight} "
                             "(e.g. sample sizes) or add a 'weight' column to the table")
        weights = "weight"
    if isinstance(weights, str):
        col = df.drop_duplicates("study_id").set_index("study_id")[weights]
        weights = pd.to_numeric(col.replace("", np.nan), errors="coerce")
    w = pd.Series(weights, dtype=float) if not isinstance(weights, pd.Series) else weights.astype(float)
    lacking = [s for s in studies if s not in w.index or not np.isfinite(w.get(s, np.nan))]
    if lacking:
        raise InputError(f"no usable weight for {', '.join(map(repr, lacking))}; give every study a "
                         "finite weight (e.g. its sample size), or plot unweighted")
    w = w.reindex(studies)
    if (w < 0).any() or w.sum() <= 0:
        raise InputError("weights must be non-negative and not all zero")
    return w


def summary_table(df: pd.DataFrame, weights: Mapping[str, float] | pd.Series | str | None = None,
                  weighted: bool = False, by_evidence: bool = False) -> pd.DataFrame:
    """Percentage of studies (or of total weight) per judgement and domain.

    Parameters
    ----------
    df : pandas.DataFrame
        Long ROBINS-I table.
    weights : mapping, Series or str, optional
        Study weights (``study_id`` → weight) or the name of a column of ``df``;
        used only when ``weighted`` is true. Default column: ``weight``.
    weighted : bool
        Weight each study's judgement, as robvis's ``weighted = TRUE``.
    by_evidence : bool
        Split each judgement into verified (column ``low``) and inferred
        (column ``low_inferred``) shares; see :func:`inferred_mask`.

    Returns
    -------
    pandas.DataFrame
        Index :data:`DOMAINS`, columns :data:`JUDGEMENTS` (with ``by_evidence``:
        each followed by ``<judgement>_inferred``), rows summing to 100.
    """
    df = _ensure_valid(df)
    if weights is not None and not weighted:
        raise ValueError("weights were given but weighted=False; pass weighted=True to use them")
    wide = wide_table(df)
    w = _resolve_weights(df, weights) if weighted else pd.Series(1.0, index=wide.index)
    inferred = inferred_mask(df) if by_evidence else pd.DataFrame(False, index=wide.index, columns=wide.columns)
    columns = [c for j in JUDGEMENTS for c in ((j, f"{j}_inferred") if by_evidence else (j,))]
    rows = {}
    for d in DOMAINS:
        totals = {}
        for j in JUDGEMENTS:
            totals[j] = float(w[(wide[d] == j) & ~inferred[d]].sum())
            if by_evidence:
                totals[f"{j}_inferred"] = float(w[(wide[d] == j) & inferred[d]].sum())
        s = sum(totals.values())
        rows[d] = {j: 100.0 * v / s for j, v in totals.items()}
    out = pd.DataFrame.from_dict(rows, orient="index")[columns]
    out.index.name = "domain"
    return out


# --------------------------------------------------------------------------- plotting helpers


def _ink(hex_colour: str) -> str:
    """Black or white symbol, whichever reads better on ``hex_colour``."""
    r, g, b = matplotlib.colors.to_rgb(hex_colour)
    lum = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return "black" if lum > 0.33 else "white"


def _pale(hex_colour: str, amount: float = 0.55) -> str:
    """``hex_colour`` mixed with white (``amount`` = share of white)."""
    rgb = np.array(matplotlib.colors.to_rgb(hex_colour))
    return matplotlib.colors.to_hex(rgb + (1 - rgb) * amount)


def _dark(hex_colour: str, amount: float = 0.45) -> str:
    """``hex_colour`` mixed with black (``amount`` = share of black)."""
    return matplotlib.colors.to_hex(np.array(matplotlib.colors.to_rgb(hex_colour)) * (1 - amount))


def inferred_style(colour: str) -> dict:
    """Patch style of an inferred judgement: pale fill, hatch and dashed rim in a darker shade of its colour."""
    return {"facecolor": _pale(colour), "edgecolor": _dark(colour), "hatch": "/////", "linestyle": (0, (2.0, 1.2)),
            "linewidth": 0.9}


def _light(ax: Axes, x: float, y: float, r: float, judgement: str, colours: Mapping[str, str],
           size: float, zorder: float = 3, inferred: bool = False) -> None:
    col = colours[judgement]
    if inferred:
        ax.add_patch(Circle((x, y), r, zorder=zorder, **inferred_style(col)))
        ink = "black"
    else:
        ax.add_patch(Circle((x, y), r, facecolor=col, edgecolor="black", linewidth=0.6, zorder=zorder))
        ink = _ink(col)
    ax.text(x, y, SYMBOLS[judgement], ha="center", va="center_baseline", fontsize=size,
            fontweight="bold", color=ink, zorder=zorder + 1, family=_FONT)


def _legend_levels(wide: pd.DataFrame, inferred: pd.DataFrame) -> list[tuple[str, bool]]:
    """(judgement, inferred) pairs present, worst first as robvis, each inferred level after its verified one."""
    out = []
    for j in ("critical", "serious", "moderate", "low", "no_information", "not_extracted"):
        is_j = (wide == j).to_numpy()
        inf = inferred.to_numpy()
        if (is_j & ~inf).any():
            out.append((j, False))
        if (is_j & inf).any():
            out.append((j, True))
    return out


def _level_label(judgement: str, inferred: bool, summary: bool = False) -> str:
    base = JUDGEMENT_LABELS[judgement]
    if summary and judgement in ("low", "moderate", "serious", "critical"):
        base += " risk"  # robvis summary wording
    return f"{base} (inferred)" if inferred else base


# --------------------------------------------------------------------------- traffic light


def traffic_light_plot(df: pd.DataFrame, colour_blind: bool = False, title: str | None = None,
                       footnote: str | None = None) -> Figure:
    """ROBINS-I traffic-light plot: one row per study, one column per domain plus Overall.

    Laid out as robvis's ``rob_traffic_light(tool = "ROBINS-I")``: domain strips on
    top, study strips on the left, the Overall column shaded, a domain caption
    bottom left and a judgement legend bottom right (only levels present).

    Parameters
    ----------
    df : pandas.DataFrame
        Long ROBINS-I table (see :func:`load_robins_i`).
    colour_blind : bool
        Use robvis's colour-blind palette. Symbols differ per level in both palettes.
    title : str, optional
        Figure title above the plot.
    footnote : str, optional
        Text under the caption, wrapped to the figure width (e.g. where the
        judgements come from and what is not public).

    Returns
    -------
    matplotlib.figure.Figure
    """
    df = _ensure_valid(df)
    wide = wide_table(df)
    inferred = inferred_mask(df)
    colours = palette(colour_blind)
    studies = list(wide.index)
    n = len(studies)

    cell = 0.42  # inches
    radius = 0.16
    fs, fs_small = 9.0, 8.0
    name_w = max(_text_width(s, fs) for s in studies) + 0.2
    head_h = 0.3
    left = 0.35  # room for the rotated "Study" title
    grid_x0 = left + name_w
    grid_w = cell * len(DOMAINS)

    present = _legend_levels(wide, inferred)
    caption = ["Domains:"] + [f"{d}: {DOMAIN_NAMES[d]}." for d in DOMAINS[:-1]]
    line = 0.17
    cap_w = max(_text_width(s, fs_small) for s in caption)
    leg_w = 0.45 + max(_text_width(_level_label(j, i), fs_small) for j, i in present + [("low", False)])
    leg_w = max(leg_w, _text_width("Judgement", fs_small, "bold") + 0.2)
    bottom_h = max(len(caption) * line, (len(present) + 1) * 0.25) + 0.25

    title_h = 0.35 if title else 0.0
    top_title_h = 0.3
    width = max(grid_x0 + grid_w + 0.15, 0.15 + cap_w + 0.35 + leg_w + 0.15)
    foot_lines = _wrap(footnote, width - 0.3, fs_small) if footnote else []
    foot_h = (len(foot_lines) * line + 0.1) if foot_lines else 0.0
    height = title_h + top_title_h + head_h + n * cell + bottom_h + foot_h + 0.1
    shift = (width - (grid_x0 + grid_w + 0.15)) / 2  # centre the grid over caption + legend
    left += shift
    grid_x0 += shift
    fig, ax = _inch_canvas(width, height)

    y_top = height - title_h - top_title_h  # top of the header strip
    if title:
        ax.text(width / 2, height - 0.18, title, ha="center", va="center", fontsize=11,
                fontweight="bold", family=_FONT)
    ax.text(grid_x0 + grid_w / 2, y_top + top_title_h / 2, "Risk of bias domains", ha="center",
            va="center", fontsize=fs + 1, family=_FONT)
    grid_y0 = y_top - head_h - n * cell  # bottom of the grid
    ax.text(left / 2, grid_y0 + n * cell / 2, "Study", rotation=90, ha="center", va="center",
            fontsize=fs + 1, family=_FONT)

    # Header strips
    for k, d in enumerate(DOMAINS):
        x = grid_x0 + k * cell
        ax.add_patch(Rectangle((x, y_top - head_h), cell, head_h, facecolor=_STRIP, edgecolor=_GRID,
                               linewidth=0.5))
        ax.text(x + cell / 2, y_top - head_h / 2, "Overall" if d == "overall" else d, ha="center",
                va="center", fontsize=fs if d != "overall" else fs - 1, family=_FONT)
    # Study strips and cells
    for i, study in enumerate(studies):
        y = y_top - head_h - (i + 1) * cell
        ax.add_patch(Rectangle((left, y), name_w, cell, facecolor=_STRIP, edgecolor=_GRID, linewidth=0.5))
        ax.text(left + 0.1, y + cell / 2, study, ha="left", va="center", fontsize=fs, family=_FONT)
        for k, d in enumerate(DOMAINS):
            x = grid_x0 + k * cell
            bg = _OVERALL_BG if d == "overall" else "white"
            ax.add_patch(Rectangle((x, y), cell, cell, facecolor=bg, edgecolor=_GRID, linewidth=0.5))
            _light(ax, x + cell / 2, y + cell / 2, radius, wide.loc[study, d], colours, fs + 2,
                   inferred=bool(inferred.loc[study, d]))

    # Caption (left) and legend (right), as robvis.
    y = grid_y0 - 0.25
    for s in caption:
        ax.text(0.15, y, s, ha="left", va="top", fontsize=fs_small, family=_FONT,
                fontweight="bold" if s == "Domains:" else "normal")
        y -= line
    lx = width - 0.15 - leg_w
    ly = grid_y0 - 0.25
    ax.text(lx, ly, "Judgement", ha="left", va="top", fontsize=fs_small, fontweight="bold", family=_FONT)
    for m, (j, inf) in enumerate(present):
        cy = ly - 0.33 - m * 0.25
        _light(ax, lx + 0.1, cy, 0.095, j, colours, fs_small, inferred=inf)
        ax.text(lx + 0.28, cy, _level_label(j, inf), ha="left", va="center", fontsize=fs_small, family=_FONT)
    y = grid_y0 - bottom_h - 0.05
    for text in foot_lines:
        ax.text(0.15, y, text, ha="left", va="top", fontsize=fs_small, family=_FONT, style="italic")
        y -= line
    fig.set_label("robins_traffic_light")
    return fig


# --------------------------------------------------------------------------- summary bars


def summary_plot(df: pd.DataFrame, weighted: bool = False,
                 weights: Mapping[str, float] | pd.Series | str | None = None,
                 colour_blind: bool = False, overall: bool = True,
                 weight_label: str | None = None, title: str | None = None) -> Figure:
    """robvis ``rob_summary``-style bars: share of each judgement per domain.

    Bars run from D1 (top) to Overall (bottom, bold); segments are stacked low,
    moderate, serious, critical, no information, not extracted from left to right.

    Parameters
    ----------
    df : pandas.DataFrame
        Long ROBINS-I table.
    weighted : bool
        Weight studies (robvis ``weighted = TRUE``); needs ``weights`` or a ``weight`` column.
    weights : mapping, Series or str, optional
        ``study_id`` → weight (e.g. sample size), or a column name of ``df``.
    colour_blind : bool
        Use robvis's colour-blind palette.
    overall : bool
        Include the Overall bar.
    weight_label : str, optional
        What the weights are, for the axis label (e.g. ``"sample size"``).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    table = summary_table(df, weights=weights, weighted=weighted, by_evidence=True)
    if not overall:
        table = table.drop(index="overall")
    colours = palette(colour_blind)
    domains = list(table.index)
    # Segments left to right: low, low (inferred), moderate, ... ; only levels present.
    present = [(j, inf) for j in JUDGEMENTS for inf in (False, True)
               if (table[f"{j}_inferred" if inf else j] > 0).any()]
    labels = {(j, inf): _level_label(j, inf, summary=True) for j, inf in present}
    width = 8.0
    # Legend below the axes, in as many rows as its entries need at this width.
    entry_w = [0.55 + _text_width(labels[k], 8) for k in present]
    ncol = len(present)
    while ncol > 1 and sum(sorted(entry_w, reverse=True)[:ncol]) > width - 0.6:
        ncol -= 1
    leg_rows = math.ceil(len(present) / ncol)
    ncol = math.ceil(len(present) / leg_rows)  # balance the rows (3 + 3, not 5 + 1)
    legend_h = 0.25 + 0.22 * leg_rows
    title_h = 0.35 if title else 0.0
    height = 0.42 * len(domains) + 0.75 + legend_h + title_h
    fig = Figure(figsize=(width, height))
    ax = fig.add_subplot(111)
    ypos = np.arange(len(domains))[::-1]  # D1 at the top
    left = np.zeros(len(domains))
    for j, inf in present:
        vals = table[f"{j}_inferred" if inf else j].to_numpy()
        style = inferred_style(colours[j]) if inf else {"facecolor": colours[j], "edgecolor": "black",
                                                        "linewidth": 0.6}
        ax.barh(ypos, vals, left=left, height=0.7, label=labels[(j, inf)], zorder=2, **style)
        left += vals
    ax.set_ylim(-0.6, len(domains) - 0.4)
    ax.set_yticks(ypos, [SUMMARY_DOMAIN_NAMES[d] for d in domains], fontsize=9, family=_FONT)
    for lab, d in zip(ax.get_yticklabels(), domains):
        if d == "overall":
            lab.set_fontweight("bold")
    ax.tick_params(axis="y", length=0)
    ax.set_xlim(0, 100)
    ax.set_xticks([0, 25, 50, 75, 100], ["0%", "25%", "50%", "75%", "100%"], fontsize=8)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    unit = f"weighted by {weight_label}" if (weighted and weight_label) else ("weighted" if weighted else None)
    n = len(dict.fromkeys(_ensure_valid(df)["study_id"]))
    ax.set_xlabel(f"Studies (n = {n})" + (f", {unit}" if unit else ""), fontsize=8)
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", bbox_to_anchor=(0.5, 0.02),
               ncol=ncol, frameon=True, edgecolor="black", fontsize=8, handlelength=1.2,
               columnspacing=1.2, fancybox=False)
    if title:
        ax.set_title(title, fontsize=11, fontweight="bold")
    fig.tight_layout(rect=(0, legend_h / height, 1, 1))
    fig.set_label("robins_summary")
    return fig


# --------------------------------------------------------------------------- saving


# --------------------------------------------------------------------------- command line


def run_quality(dataset: str | Path = "cipn", colour_blind: bool = False) -> list[Path]:
    """Draw every quality-stage figure of a dataset into ``outputs/<dataset>/quality/``.

    Writes the traffic-light and summary plots (when ``robins_i.csv`` exists),
    the PRISMA flow diagram and ``prisma_checks.csv`` (when ``prisma.yaml`` exists).

    Parameters
    ----------
    dataset : str or path-like
        Dataset name or raw folder (see :func:`painmeta.paths.dataset_paths`).
    colour_blind : bool
        Use the colour-blind palette for the risk-of-bias figures.

    Returns
    -------
    list of pathlib.Path
        Files written.
    """
    from painmeta.paths import dataset_paths
    from painmeta.prisma import check_arithmetic, flow_diagram, load_prisma

    paths = dataset_paths(dataset)
    if not paths.raw.is_dir():
        raise InputError(f"{paths.raw}: dataset folder not found; give a dataset name under data/raw "
                         "or the path of a raw folder")
    out = paths.stage("quality")
    written: list[Path] = []
    if (paths.raw / "robins_i.csv").is_file():
        rob = load_robins_i(paths.raw / "robins_i.csv")
        written += save_figure(traffic_light_plot(rob, colour_blind=colour_blind), out / "robins_traffic_light")
        written += save_figure(summary_plot(rob, colour_blind=colour_blind), out / "robins_summary")
    if (paths.raw / "prisma.yaml").is_file():
        prisma = load_prisma(paths.raw / "prisma.yaml")
        checks = check_arithmetic(prisma)
        checks.to_csv(out / "prisma_checks.csv", index=False, lineterminator="\n")
        written.append(out / "prisma_checks.csv")
        written += save_figure(flow_diagram(prisma, checks), out / "prisma_flow")
    return written


def register_cli(subparsers) -> None:
    """Add ``python -m painmeta quality [DATASET] [--colour-blind]``."""
    parser = subparsers.add_parser("quality", help="risk-of-bias figures and the PRISMA flow diagram",
                                   description="Draw ROBINS-I traffic-light and summary plots and the "
                                               "PRISMA 2020 flow diagram; write the PRISMA arithmetic checks.")
    parser.add_argument("dataset", nargs="?", default="cipn", help="dataset name or raw folder (default: cipn)")
    parser.add_argument("--colour-blind", action="store_true", help="robvis's colour-blind palette")

    def _run(args) -> int:
        written = run_quality(args.dataset, colour_blind=args.colour_blind)
        if not written:
            print(f"note: dataset {args.dataset!r} has neither robins_i.csv nor prisma.yaml; nothing drawn",
                  file=sys.stderr)
        for path in written:
            print(path)
        return 0

    parser.set_defaults(func=_run)
