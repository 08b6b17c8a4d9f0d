"""Shared figure helpers: colour-blind-safe palettes and saving in vector + PNG."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import text_to_path

# Embedding TrueType fonts in PDFs makes fontTools log every subsetting step at
# INFO, which floods notebooks whose root logger is at INFO (NiMARE sets it).
logging.getLogger("fontTools").setLevel(logging.WARNING)

#: Okabe & Ito (2008) colour-blind-safe palette.
OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"]

#: Direction colours used by every stage (orange-vermillion up, blue down).
DIRECTION_COLOURS = {
    "patients>controls": "#D55E00",
    "patients<controls": "#0072B2",
    "positive_association": "#E69F00",
    "negative_association": "#56B4E9",
    "activation": "#009E73",
    "mixed": "#CC79A7",
    "unknown": "#7F7F7F",
}


#: Formats :func:`save_figure` writes by default. ``PAINMETA_FIGURE_FORMATS`` (comma-separated, e.g. "png")
#: narrows them for one run: the notebook tests render every page but need no vector copies.
DEFAULT_FORMATS = ("png", "svg", "pdf")


def _default_formats() -> tuple[str, ...]:
    env = os.environ.get("PAINMETA_FIGURE_FORMATS", "")
    chosen = tuple(f.strip().lower() for f in env.split(",") if f.strip().lower() in DEFAULT_FORMATS)
    return chosen or DEFAULT_FORMATS


def save_figure(fig: plt.Figure, stem: str | Path, formats: tuple[str, ...] | None = None,
                dpi: int = 300) -> list[Path]:
    """Save a figure as PNG (raster, ``dpi``) and vector SVG/PDF.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    stem : path-like
        Output path without extension; folders are created.
    formats : tuple of str, optional
        Extensions to write (default PNG, SVG and PDF; see :data:`DEFAULT_FORMATS`).
    dpi : int
        Resolution of the PNG.

    Returns
    -------
    list of pathlib.Path
        Files written.
    """
    formats = _default_formats() if formats is None else formats
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    # A fixed SVG id salt and no dates keep vector files byte-identical across runs
    # (matplotlib salts ids with a random UUID otherwise); TrueType fonts keep PDF text
    # editable for publishers.
    with plt.rc_context({"svg.hashsalt": "painmeta", "pdf.fonttype": 42}):
        for ext in formats:
            path = stem.parent / f"{stem.name}.{ext}"  # not with_suffix: stems may contain dots
            meta = {"Date": None} if ext == "svg" else ({"CreationDate": None} if ext == "pdf" else None)
            fig.savefig(path, dpi=dpi, bbox_inches="tight", metadata=meta)
            out.append(path)
    return out


def copy_figures(written: list[Path], renames: dict[str, Path]) -> list[Path]:
    """Copy figure files already written under another stem (all their formats), without drawing again.

    ``renames`` maps a written stem's name to the new stem (path without extension).
    """
    import shutil

    out = []
    for path in written:
        new = renames.get(path.stem)
        if new is not None:
            target = Path(new).parent / f"{Path(new).name}{path.suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            out.append(target)
    return out


#: Above this many foci the glass brain shows their density, not one marker per focus: thousands of
#: overlapping markers hide each other (and take most of stage 0's run time to draw and save as vectors).
FOCI_DENSITY_ABOVE = 2000

#: FWHM (mm) of the Gaussian that smooths the focus counts of the density glass brain.
FOCI_DENSITY_FWHM = 8.0


def foci_density_image(foci: pd.DataFrame, fwhm: float = FOCI_DENSITY_FWHM):
    """Smoothed density of MNI foci on NiMARE's MNI152 2 mm grid, in foci per cm³.

    Each focus adds one to the voxel holding it; the counts are smoothed with a
    Gaussian of ``fwhm`` mm (:func:`nilearn.image.smooth_img`, which keeps the
    total away from the grid's edge) and divided by the voxel volume.

    Parameters
    ----------
    foci : pandas.DataFrame
        ``x``, ``y``, ``z`` in MNI mm.
    fwhm : float
        Smoothing kernel, mm.

    Returns
    -------
    img : nibabel.Nifti1Image
        Foci per cm³.
    n_outside : int
        Foci outside the grid (not counted; the caption says how many).
    """
    xyz = np.ascontiguousarray(foci[["x", "y", "z"]].to_numpy(float)).reshape(-1, 3)
    import nibabel as nib

    # The figure and its caption ask for the same density: computed once per set of coordinates (the caller
    # gets its own copy of the array).
    img, n_outside = _density(xyz.tobytes(), float(fwhm))
    return nib.Nifti1Image(np.array(img.dataobj), img.affine), n_outside


@functools.lru_cache(maxsize=2)
def _density(xyz_bytes: bytes, fwhm: float):
    import nibabel as nib
    from nibabel.affines import apply_affine, voxel_sizes
    from nilearn.image import smooth_img

    from painmeta.coords import brain_mask

    mask, affine = brain_mask()
    xyz = np.frombuffer(xyz_bytes, dtype=np.float64).reshape(-1, 3)
    ijk = np.rint(apply_affine(np.linalg.inv(affine), xyz)).astype(int) if len(xyz) else np.zeros((0, 3), int)
    inside = np.all((ijk >= 0) & (ijk < np.array(mask.shape)), axis=1)
    counts = np.zeros(mask.shape, dtype=np.float64)
    np.add.at(counts, tuple(ijk[inside].T), 1.0)
    per_cm3 = 1000.0 / float(np.prod(voxel_sizes(affine)))
    smoothed = smooth_img(nib.Nifti1Image(counts, affine), fwhm)
    return nib.Nifti1Image(np.asarray(smoothed.dataobj) * per_cm3, affine), int((~inside).sum())


def foci_glass_brain(foci: pd.DataFrame, flagged: set[str] | None = None, title: str = "",
                     colour_by: str = "experiment_id", density_above: int = FOCI_DENSITY_ABOVE,
                     fwhm: float = FOCI_DENSITY_FWHM):
    """Glass brain of MNI foci: one marker per focus, or their density when there are many.

    With at most ``density_above`` foci, each focus is a marker, one colour per
    group, QA-flagged foci as black crosses. With more, markers would hide each
    other: the figure shows the smoothed focus density
    (:func:`foci_density_image`, maximum-intensity projection) and the flagged
    foci as black crosses on top. :func:`foci_glass_brain_caption` says which.

    Parameters
    ----------
    foci : pandas.DataFrame
        ``focus_id``, ``x``, ``y``, ``z`` and the ``colour_by`` column.
    flagged : set of str, optional
        Focus ids with a QA error, drawn as black crosses.
    title : str
    colour_by : str
        Column whose values get distinct colours (Okabe-Ito, cycled); markers only.
    density_above : int
        Largest number of foci drawn as markers.
    fwhm : float
        Smoothing of the density, mm.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from nilearn import plotting

    flagged = flagged or set()
    fig = plt.figure(figsize=(10, 3.6))
    handles = []
    if len(foci) > density_above:
        img, _ = foci_density_image(foci, fwhm)
        vmax = float(np.max(img.dataobj))
        # Viridis is perceptually uniform and colour-blind safe; the threshold keeps the faint tail of the
        # Gaussian from greying the whole brain.
        title = f"{title} · density, foci per cm³" if title else "density, foci per cm³"
        display = plotting.plot_glass_brain(img, display_mode="lyrz", figure=fig, title=title,
                                            cmap="viridis", plot_abs=False, colorbar=True, vmin=0, vmax=vmax,
                                            threshold=0.05 * vmax, cbar_tick_format="%.2g")
    else:
        display = plotting.plot_glass_brain(None, display_mode="lyrz", figure=fig, title=title or None)
        groups = list(dict.fromkeys(foci[colour_by]))
        for i, group in enumerate(groups):
            sub = foci[(foci[colour_by] == group) & ~foci["focus_id"].isin(flagged)]
            colour = OKABE_ITO[i % len(OKABE_ITO)]
            if len(sub):
                display.add_markers(sub[["x", "y", "z"]].to_numpy(float), marker_color=colour, marker_size=30)
            handles.append(plt.Line2D([], [], marker="o", ls="", color=colour, label=str(group)))
    bad = foci[foci["focus_id"].isin(flagged)]
    if len(bad):
        display.add_markers(bad[["x", "y", "z"]].to_numpy(float), marker_color="black", marker_size=60,
                            marker="x")
        handles.append(plt.Line2D([], [], marker="x", ls="", color="black", label="QA error"))
    if handles and len(handles) <= 12:
        fig.legend(handles=handles, loc="lower center", ncol=min(4, len(handles)), fontsize=7, frameon=False,
                   bbox_to_anchor=(0.5, -0.12))
    return fig


def foci_glass_brain_caption(foci: pd.DataFrame, flagged: set[str] | None = None, colour_by: str = "experiment_id",
                             density_above: int = FOCI_DENSITY_ABOVE, fwhm: float = FOCI_DENSITY_FWHM) -> str:
    """Caption (plain text) of :func:`foci_glass_brain` with the same arguments: what the figure draws."""
    n, n_bad = len(foci), len(set(foci["focus_id"]) & set(flagged or ()))
    crosses = f" Black crosses: {n_bad} {'focus' if n_bad == 1 else 'foci'} with a QA error." if n_bad else ""
    if n > density_above:
        _, n_out = foci_density_image(foci, fwhm)
        outside = (f" {n_out} {'focus lies' if n_out == 1 else 'foci lie'} outside the MNI grid and "
                   f"{'is' if n_out == 1 else 'are'} not counted." if n_out else "")
        return (f"Density of all {n:,} foci, not one marker per focus (more than {density_above:,} markers would "
                f"hide each other): foci per cm³ after Gaussian smoothing (FWHM {fwhm:g} mm), maximum-intensity "
                f"projection; values below 5% of the maximum are not drawn.{outside}{crosses}")
    groups = foci[colour_by].nunique() if n else 0
    repeat = f"; colours repeat after {len(OKABE_ITO)}" if groups > len(OKABE_ITO) else ""
    return (f"One marker per focus ({n:,} foci), one colour per {colour_by.replace('_id', '').replace('_', ' ')} "
            f"({groups}{repeat}).{crosses}")


def empty_axes_message(ax: plt.Axes, text: str) -> None:
    """Write a centred message on empty axes (e.g. 'no cluster survived')."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=11)
    ax.set_axis_off()


__all__ = ["OKABE_ITO", "DIRECTION_COLOURS", "FONT", "save_figure", "publish", "foci_glass_brain",
           "foci_glass_brain_caption", "foci_density_image", "FOCI_DENSITY_ABOVE", "FOCI_DENSITY_FWHM",
           "empty_axes_message", "text_width", "wrap_text", "inch_canvas"]


def publish(fig: plt.Figure, stem: str | Path, **kwargs) -> list[Path]:
    """Save a figure (PNG + SVG + PDF) and show it once in a notebook.

    Figures built on a bare :class:`~matplotlib.figure.Figure` are not shown by
    the inline backend on their own, and pyplot figures would be shown twice;
    this displays exactly once and closes the figure.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    stem : path-like
        Output path without extension.
    **kwargs
        Passed to :func:`save_figure`.

    Returns
    -------
    list of pathlib.Path
    """
    files = save_figure(fig, stem, **kwargs)
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            display(fig)
    except ImportError:  # pragma: no cover - IPython is part of the pinned stack
        pass
    plt.close(fig)
    return files


# --------------------------------------------------------------------------- text layout in inches
# Shared by the ROBINS-I and PRISMA figures, which lay text out on an inch grid (exact sizes, no tight_layout).

#: Font of the inch-grid figures (ships with matplotlib, so widths are the same on every machine).
FONT = "DejaVu Sans"


@functools.lru_cache(maxsize=8192)
def text_width(s: str, size: float, weight: str = "normal") -> float:
    """Width of ``s`` in inches at ``size`` points in :data:`FONT`, spaces included (renderer-independent)."""
    if not s:
        return 0.0
    fp = FontProperties(family=FONT, weight=weight, size=size)
    return text_to_path.get_text_width_height_descent(s, fp, ismath=False)[0] / 72.0


def wrap_text(text: str, width: float, size: float, weight: str = "normal") -> list[str]:
    """Greedy word wrap of ``text`` to ``width`` inches at ``size`` points; keeps explicit newlines."""
    lines: list[str] = []
    for para in text.split("\n"):
        current = ""
        for word in para.split(" "):
            trial = f"{current} {word}" if current else word
            if current and text_width(trial, size, weight) > width:
                lines.append(current)
                current = word
            else:
                current = trial
        lines.append(current)
    return lines


def inch_canvas(width: float, height: float) -> tuple[Figure, Axes]:
    """A figure with one axes covering it, data units = inches (exact layout, no tight_layout surprises)."""
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    return fig, ax
