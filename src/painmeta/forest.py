"""Forest plots of single-proportion meta-analyses in the layout of R's ``meta::forest``.

One row per category with events/total, proportion, 95% CI (square and whisker) and weight;
the common-effect and random-effects pooled diamonds; a heterogeneity line (I^2, tau^2, p of
the Wald-type Q); optionally subgroups stacked one under another (e.g. per direction of
effect), each with its own diamonds and heterogeneity line, and the test for subgroup
differences at the bottom.

Weights: meta prints no weights for a GLMM. The weight column shows the approximate
inverse-variance weights of :class:`painmeta.proportions.RowResult` (random-effects model),
marked with an asterisk and explained in a footnote; squares are scaled by the same weights.

Squares use the Okabe--Ito colour-blind-safe palette (or per-subgroup colours), diamonds two
greys; shapes and text carry the same information, so the figure also reads in greyscale.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib import transforms
from matplotlib.figure import Figure
from matplotlib.patches import Polygon

from painmeta.errors import InputError
from painmeta.proportions import MetapropResult, MetapropSubgroups, PooledEstimate

__all__ = ["OKABE_ITO", "forest_plot", "save_figure"]

#: Okabe & Ito (2008) colour-blind-safe palette.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}
_SQUARE = OKABE_ITO["blue"]
# Diamonds in two greys (as meta draws them): distinct in colour and greyscale, and free of the
# hues that subgroup squares may carry (e.g. the project's direction colours).
_COMMON = "#BDBDBD"
_RANDOM = "#404040"
_GREY = "#555555"

# Column anchors in figure fraction (x); the plot panel sits between _PLOT_L and _PLOT_R.
_X_LABEL = 0.02
_X_EVENTS = 0.29
_X_TOTAL = 0.35
_PLOT_L, _PLOT_R = 0.385, 0.715
_X_PROP = 0.80
_X_CI = 0.815
_X_WEIGHT = 0.975

_ROW_IN = 0.26  # height of one row in inches
_FONT = 9.0


@dataclass
class _Row:
    kind: str  # header | study | common | random | het | test | gap
    text: str = ""
    result: MetapropResult | None = None
    index: int = 0
    estimate: PooledEstimate | None = None
    group: str | None = None


def _fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return "n.e."
    return "< 0.0001" if p < 1e-4 else f"= {p:.4f}" if p < 0.001 else f"= {p:.2f}" if p >= 0.01 else f"= {p:.3f}"


def _fmt_tau2(t2: float) -> str:
    if not math.isfinite(t2):
        return "not estimable"
    return "0" if t2 == 0 else f"{t2:.4f}" if t2 < 0.01 else f"{t2:.2f}"


def _het_text(res: MetapropResult) -> str:
    h = res.heterogeneity
    i2 = f"{h.I2:.0f}%" if math.isfinite(h.I2) else "n.e."
    return (
        rf"Heterogeneity: $I^2$ = {i2}, $\tau^2$ = {_fmt_tau2(h.tau2)}, "
        rf"$\chi^2_{{{h.df}}}$ = {h.Q:.2f} (p {_fmt_p(h.p)})"
    )


def _rows_for(res: MetapropResult, show_common: bool, show_random: bool) -> list[_Row]:
    rows = [_Row("study", result=res, index=i) for i in range(res.k)]
    if show_common:
        rows.append(_Row("common", "Common effect model", result=res, estimate=res.common))
    if show_random:
        rows.append(_Row("random", "Random effects model", result=res, estimate=res.random))
    rows.append(_Row("het", _het_text(res), result=res))
    return rows


def _layout(
    obj: MetapropResult | MetapropSubgroups, show_common: bool, show_random: bool
) -> tuple[list[_Row], list[str]]:
    rows: list[_Row] = []
    notes: list[str] = []
    if isinstance(obj, MetapropResult):
        rows += _rows_for(obj, show_common, show_random)
        notes += list(obj.notes)
    elif isinstance(obj, MetapropSubgroups):
        for i, (name, res) in enumerate(obj.groups.items()):
            if i:
                rows.append(_Row("gap"))
            rows.append(_Row("header", name))
            sub = _rows_for(res, show_common, show_random)
            for r in sub:
                r.group = name
                if r.kind in ("common", "random"):
                    r.text = r.text.replace(" model", "") + f" ({name})"
            rows += sub
        rows.append(_Row("gap"))
        t = obj.test_random if show_random else obj.test_common
        model = "random effects" if show_random else "common effect"
        rows.append(
            _Row("test", rf"Test for subgroup differences ({model}): $\chi^2_{{{t.df}}}$ = {t.Q:.2f} (p {_fmt_p(t.p)})")
        )
        notes += list(obj.notes)
    else:
        raise InputError(
            f"forest_plot needs a MetapropResult or MetapropSubgroups, got {type(obj).__name__}."
        )
    return rows, notes


def _diamond(ax, y: float, est: PooledEstimate, color: str, half_height: float = 0.32) -> None:
    xs = [est.lower, est.proportion, est.upper, est.proportion]
    ys = [y, y + half_height, y, y - half_height]
    ax.add_patch(Polygon(list(zip(xs, ys)), closed=True, facecolor=color, edgecolor="black", lw=0.8, zorder=3,
                         clip_on=False))


def forest_plot(
    result_or_subgroups: MetapropResult | MetapropSubgroups,
    title: str | None = None,
    *,
    label_header: str = "Category",
    xlabel: str = "Proportion",
    show_common: bool = True,
    show_random: bool = True,
    figsize: tuple[float, float] | None = None,
    footnote: str | None = None,
    group_colours: dict[str, str] | None = None,
) -> Figure:
    """Draw a forest plot in ``meta::forest``'s layout.

    Parameters
    ----------
    result_or_subgroups : MetapropResult or MetapropSubgroups
        One analysis, or several subgroups (stacked, each with its diamonds, then the test for
        subgroup differences).
    title : str, optional
        Figure title.
    label_header : str
        Header of the label column.
    xlabel : str
        Label of the proportion axis.
    show_common, show_random : bool
        Which pooled diamonds to draw (meta draws both by default). The test for subgroup
        differences shown is the random-effects one when ``show_random``.
    figsize : (float, float), optional
        Figure size in inches; by default 10 inches wide and tall enough for the rows. The
        layout uses the whole figure (text columns on both sides of the plot panel), so the
        plot is always drawn into its own new figure.
    footnote : str, optional
        Extra line under the figure (e.g. the data source).
    group_colours : dict of str to str, optional
        Square colour per subgroup name (e.g. the project's direction colours); default blue.

    Returns
    -------
    matplotlib.figure.Figure
    """
    rows, notes = _layout(result_or_subgroups, show_common, show_random)
    level = (
        result_or_subgroups.level
        if isinstance(result_or_subgroups, MetapropResult)
        else next(iter(result_or_subgroups.groups.values())).level
    )
    foot = [f"* Approximate inverse-variance weights (random effects); meta shows none for a GLMM. "
            f"Diamonds: {100 * level:g}% Wald CI of the logistic models; rows: Clopper–Pearson."]
    if footnote:
        foot.append(footnote)
    # Routine remarks (tau^2 = 0, no continuity correction) are left to the text output; notes about
    # degenerate tables go under the figure.
    routine = ("tau^2 is estimated at the boundary", "Rows with 0 or n events enter")
    foot += [f"Note: {n}" for n in notes if not n.startswith(routine)]
    foot = [ln for item in foot for ln in textwrap.wrap(item, width=175, subsequent_indent="  ")]

    n_rows = len(rows)
    top_in, bottom_in = 0.95 if title else 0.6, 0.75 + 0.17 * len(foot)
    width, height = figsize or (10.0, top_in + bottom_in + _ROW_IN * (n_rows + 1.2))
    fig = plt.figure(figsize=(width, height))
    bottom = bottom_in / height
    top = 1 - top_in / height
    ax = fig.add_axes((_PLOT_L, bottom, _PLOT_R - _PLOT_L, top - bottom))
    ax.set_ylim(n_rows - 0.2, -0.8)  # row i at y = i, header above row 0
    ax.set_xlim(-0.02, 1.02)  # room for squares at 0 or 1; the axis line itself spans 0..1
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_bounds(0.0, 1.0)
    ax.set_yticks([])
    ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.tick_params(axis="x", labelsize=_FONT)
    ax.set_xlabel(xlabel, fontsize=_FONT + 0.5)
    ax.patch.set_alpha(0.0)

    tr = transforms.blended_transform_factory(fig.transFigure, ax.transData)
    kw = dict(transform=tr, fontsize=_FONT, va="center", clip_on=False)

    # Column headers.
    hy = -0.8
    ax.text(_X_LABEL, hy, label_header, ha="left", fontweight="bold", **kw)
    ax.text(_X_EVENTS, hy, "Events", ha="right", fontweight="bold", **kw)
    ax.text(_X_TOTAL, hy, "Total", ha="right", fontweight="bold", **kw)
    ax.text(_X_PROP, hy, "Proportion", ha="right", fontweight="bold", **kw)
    ax.text(_X_CI + 0.01, hy, f"{100 * level:g}%-CI", ha="left", fontweight="bold", **kw)
    ax.text(_X_WEIGHT, hy, "Weight*", ha="right", fontweight="bold", **kw)
    ax.plot([_X_LABEL, _X_WEIGHT], [-0.45, -0.45], transform=tr, color="black", lw=0.6, clip_on=False)

    max_w = max(
        (r.result.rows[r.index].weight_random for r in rows if r.kind == "study" and r.result is not None),
        default=1.0,
    )
    ref_lines: list[tuple[float, float, float]] = []  # (x, y_top, y_bottom) of pooled estimates
    block_start = 0
    for y, row in enumerate(rows):
        if row.kind == "header":
            ax.text(_X_LABEL, y, row.text, ha="left", fontweight="bold", **kw)
            block_start = y + 1
        elif row.kind == "study" and row.result is not None:
            r = row.result.rows[row.index]
            ax.text(_X_LABEL + 0.01, y, r.label, ha="left", **kw)
            ax.text(_X_EVENTS, y, f"{r.events}", ha="right", **kw)
            ax.text(_X_TOTAL, y, f"{r.total}", ha="right", **kw)
            ax.text(_X_PROP, y, f"{r.proportion:.2f}", ha="right", **kw)
            ax.text(_X_CI, y, f"[{r.lower:.2f}; {r.upper:.2f}]", ha="left", **kw)
            ax.text(_X_WEIGHT, y, f"{r.weight_random:.1f}%", ha="right", **kw)
            ax.plot([r.lower, r.upper], [y, y], color="black", lw=1.0, zorder=2, solid_capstyle="butt")
            # Square area proportional to weight (meta's convention), side in points.
            side = 4.0 + 7.0 * math.sqrt(max(r.weight_random, 0.0) / max_w)
            colour = (group_colours or {}).get(row.group or "", _SQUARE)
            ax.plot([r.proportion], [y], marker="s", ms=side, color=colour, mec="black", mew=0.4, zorder=3,
                    clip_on=False)
        elif row.kind in ("common", "random") and row.result is not None and row.estimate is not None:
            est = row.estimate
            res = row.result
            ax.text(_X_LABEL, y, row.text, ha="left", fontweight="bold", **kw)
            if row.kind == "common":
                ax.text(_X_EVENTS, y, f"{res.events}", ha="right", fontweight="bold", **kw)
                ax.text(_X_TOTAL, y, f"{res.total}", ha="right", fontweight="bold", **kw)
            if math.isfinite(est.proportion):
                ax.text(_X_PROP, y, f"{est.proportion:.2f}", ha="right", fontweight="bold", **kw)
                ax.text(_X_CI, y, f"[{est.lower:.2f}; {est.upper:.2f}]", ha="left", fontweight="bold", **kw)
                _diamond(ax, y, est, _COMMON if row.kind == "common" else _RANDOM)
                if row.kind == ("random" if show_random else "common"):
                    ref_lines.append((est.proportion, block_start - 0.5, y + 0.45))
            else:
                ax.text(_X_PROP, y, "not estimable", ha="right", style="italic", **kw)
            ax.text(_X_WEIGHT, y, "--", ha="right", color=_GREY, **kw)
        elif row.kind == "het":
            ax.text(_X_LABEL, y, row.text, ha="left", color=_GREY, **{**kw, "fontsize": _FONT - 0.5})
            block_start = y + 1
        elif row.kind == "test":
            ax.text(_X_LABEL, y, row.text, ha="left", fontweight="bold", **kw)

    for x, y0, y1 in ref_lines:
        ax.plot([x, x], [y0, y1], color=_GREY, lw=0.8, ls=(0, (3, 3)), zorder=1)

    if title:
        fig.text(0.5, 1 - 0.35 / height, title, ha="center", va="center", fontsize=_FONT + 3, fontweight="bold")
    for i, line in enumerate(foot):
        fig.text(_X_LABEL, (0.2 + 0.17 * (len(foot) - 1 - i)) / height, line, ha="left", va="bottom",
                 fontsize=_FONT - 1.5, color=_GREY)
    fig.set_facecolor("white")
    return fig


# Saving uses the project's one convention (PNG + byte-stable SVG/PDF); re-exported here.
from painmeta.plotting import save_figure  # noqa: E402,F401
