"""ALE figures: slice montages with foci, surviving clusters, glass brains, null distributions, viewers.

Backgrounds use the MNI152 2 mm T1 template that ships inside the NiMARE wheel
(no download). ALE uses ColorBrewer's sequential ``YlOrRd`` (colour-blind
safe, light = low, dark = high, readable on the grey template and on the
white glass brain alike); foci use the Okabe-Ito palette when there are at most
eight groups and one colour (blue) otherwise (eight colours cannot tell more groups
apart, and a legend of dozens of entries hides the slices). Every colour bar
is labelled; slices are chosen where the map or the foci are, so no panel is
empty.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib import patheffects
from matplotlib import ticker

from painmeta.plotting import OKABE_ITO

#: Colour map of ALE values.
ALE_CMAP = "YlOrRd"
#: Single colour of foci when there are more groups than palette colours (Okabe-Ito blue).
FOCI_COLOUR = "#0072B2"
#: Outline colour of surviving clusters on the unthresholded maps (Okabe-Ito bluish green).
OUTLINE_COLOUR = "#009E73"
#: Share of the maximum below which the unthresholded ALE is drawn transparent
#: (the map is non-zero wherever any kernel reaches; drawing all of it floods the slices).
DISPLAY_FRACTION = 0.1


@contextmanager
def _frozen_gc() -> Iterator[None]:
    """Make nilearn's per-call ``gc.collect()`` cheap while figures are drawn.

    nilearn calls ``gc.collect()`` every time it reads image data (several
    times per slice); in a process holding large results a full collection
    takes most of a second, so a 20-slice montage took two minutes.
    ``gc.freeze()`` moves the objects alive now out of the collector's
    generations for the duration (unfrozen afterwards), which makes those
    calls cheap without changing what gets freed. Drawing code calls
    ``gc.freeze()`` again after each panel, so the objects of earlier panels
    (and modules nilearn imports lazily) are not rescanned either.
    """
    import nilearn.plotting  # noqa: F401 - import before freezing

    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def template_img() -> nib.Nifti1Image:
    """MNI152 (NLin6Asym) 2 mm T1 shipped with NiMARE."""
    from pathlib import Path

    from nimare.utils import get_resource_path

    return nib.load(Path(get_resource_path()) / "templates" / "tpl-MNI152NLin6Asym_res-02_T1w.nii.gz")


def descriptive_ale(foci: pd.DataFrame, sample_sizes: Mapping[str, float]) -> nib.Nifti1Image:
    """Unthresholded ALE map of any set of foci (descriptive; no inference).

    Used where no model can be run (e.g. a single experiment): the map shows
    where the kernels put probability mass.

    Parameters
    ----------
    foci : pandas.DataFrame
        ``experiment_id, x, y, z`` (MNI mm).
    sample_sizes : mapping
        Experiment -> subjects.

    Returns
    -------
    nibabel.Nifti1Image
    """
    from painmeta.ale.problem import ale_map, make_problem

    problem = make_problem(foci, sample_sizes)
    return problem.mask.to_img(ale_map(problem), np.float32)


def _mask_extent_mm(axis: int) -> tuple[float, float]:
    """Extent (mm) of the MNI152 2 mm brain mask along one axis."""
    from painmeta.ale.geometry import load_mask

    geom = load_mask()
    xyz = geom.vox2mm(geom.inmask_ijk[[np.argmin(geom.inmask_ijk[:, axis]), np.argmax(geom.inmask_ijk[:, axis])]])
    return float(np.min(xyz[:, axis])), float(np.max(xyz[:, axis]))


def choose_cuts(stat_img: nib.Nifti1Image | None, foci: pd.DataFrame | None, axis: int = 1, step: int = 10,
                threshold: float = 0.0, max_cuts: int = 30) -> list[int]:
    """Slice positions (mm) every ``step`` mm where the map (above ``threshold``) or a focus is.

    Slices lie inside the brain mask's extent and on the ``step`` grid through
    0; a slice is kept when the map exceeds ``threshold`` on the slice itself
    or a focus lies within half a step of it (foci are drawn on their nearest
    slice), so no slice is empty. At most
    ``max_cuts`` slices (the step doubles until they fit).

    Parameters
    ----------
    stat_img : nibabel image or None
    foci : pandas.DataFrame or None
        ``x, y, z`` columns (mm).
    axis : int
        0 = sagittal (x), 1 = coronal (y), 2 = axial (z).
    step : int
        Spacing in mm.
    threshold : float
        Map values at or below it do not count.
    max_cuts : int

    Returns
    -------
    list of int
    """
    lo, hi = _mask_extent_mm(axis)
    map_pos = np.zeros(0)
    foci_pos = np.zeros(0)
    voxel = 1.0
    if stat_img is not None:
        data = np.asarray(stat_img.dataobj)
        ijk = np.argwhere(data > threshold)
        voxel = float(abs(stat_img.affine[axis, axis])) or 1.0
        if ijk.size:
            map_pos = (ijk @ stat_img.affine[:3, :3].T + stat_img.affine[:3, 3])[:, axis]
    if foci is not None and len(foci):
        foci_pos = foci[["x", "y", "z"]].to_numpy(float)[:, axis]
    if not map_pos.size and not foci_pos.size:
        return []
    while True:
        grid = np.arange(np.ceil(lo / step) * step, np.floor(hi / step) * step + 1, step)
        # the map counts only where it is drawn on the slice itself (nearest voxel plane); a focus is drawn
        # on the slice within half a step of it
        keep = [int(g) for g in grid
                if np.any(np.abs(map_pos - g) < voxel / 2 + 1e-6) or np.any(np.abs(foci_pos - g) <= step / 2)]
        if len(keep) <= max_cuts:
            return keep
        step *= 2


def _foci_colours(foci: pd.DataFrame | None, colour_by: str) -> tuple[dict, list]:
    """Colour per group (Okabe-Ito for up to 8 groups, one colour otherwise) and legend handles."""
    if foci is None or not len(foci):
        return {}, []
    groups = list(dict.fromkeys(foci[colour_by])) if colour_by in foci.columns else []
    if 0 < len(groups) <= len(OKABE_ITO):
        colours = {g: OKABE_ITO[i] for i, g in enumerate(groups)}
        handles = [plt.Line2D([], [], marker="o", ls="", color=colours[g], markeredgecolor="black", label=str(g))
                   for g in groups]
        return colours, handles
    colours = {g: FOCI_COLOUR for g in groups}
    noun = {"study_id": "studies", "experiment_id": "experiments"}.get(colour_by, f"values of {colour_by}")
    label = f"foci (n = {len(foci)}, {len(groups)} {noun})" if groups else f"foci (n = {len(foci)})"
    handles = [plt.Line2D([], [], marker="o", ls="", color=FOCI_COLOUR, markeredgecolor="black", label=label)]
    return colours, handles


def _colourbar(fig: plt.Figure, rect: Sequence[float], vmin: float, vmax: float, label: str,
               cmap: str = ALE_CMAP, hidden_below: float | None = None) -> None:
    """A labelled vertical colour bar with a few well-spaced ticks.

    ``hidden_below`` greys out the part of the scale that is not drawn.
    """
    cax = fig.add_axes(rect)
    sm = plt.cm.ScalarMappable(norm=mcolors.Normalize(vmin=vmin, vmax=vmax), cmap=cmap)
    cb = fig.colorbar(sm, cax=cax)
    cb.locator = ticker.MaxNLocator(nbins=4)
    cb.formatter = ticker.FormatStrFormatter("%.3g")
    cb.update_ticks()
    cb.set_label(label, fontsize=9)
    cax.tick_params(labelsize=8)
    if hidden_below is not None and hidden_below > vmin:
        cax.axhspan(vmin, hidden_below, color="white", alpha=0.85, hatch="///", lw=0)


def _grid(n: int, per_row: int, panel_w: float, panel_h: float, top: float = 0.7, right: float = 0.9):
    """Figure with ``n`` equal panels in rows of ``per_row`` and room for a colour bar on the right."""
    rows = max(1, int(np.ceil(n / per_row)))
    cols = min(per_row, max(n, 1))
    width = cols * panel_w + right
    height = rows * panel_h + top
    fig = plt.figure(figsize=(width, height))
    axes = []
    for i in range(n):
        r, c = divmod(i, per_row)
        rect = [c * panel_w / width, 1 - (top + (r + 1) * panel_h) / height, panel_w / width, panel_h / height]
        axes.append(fig.add_axes(rect))
    return fig, axes, (width, height, rows)


def _with_frozen_gc(func):
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with _frozen_gc():
            return func(*args, **kwargs)

    return wrapper


@_with_frozen_gc
def coronal_montage(stat_img: nib.Nifti1Image | None, foci: pd.DataFrame | None = None, title: str = "",
                    cuts: Sequence[int] | None = None, step: int = 10, per_row: int = 6,
                    colour_by: str = "experiment_id", vmax: float | None = None,
                    outline_img: nib.Nifti1Image | None = None, cbar_label: str = "ALE",
                    display_fraction: float = DISPLAY_FRACTION) -> plt.Figure:
    """Coronal slices with the ALE map, the foci near each slice and outlines of surviving clusters.

    Slices (``cuts``, default :func:`choose_cuts`) are where the map or the
    foci are. A focus is drawn on the slice within half a step of it, so each
    focus appears once. Map values below ``display_fraction`` of the maximum
    are transparent.

    Parameters
    ----------
    stat_img : nibabel image or None
        Map to overlay (None: template and foci only).
    foci : pandas.DataFrame, optional
        ``x, y, z`` and ``colour_by`` columns.
    title : str
    cuts : sequence of int, optional
        Slice positions (mm).
    step : int
        Slice spacing (mm) for the default cuts and the foci-to-slice rule.
    per_row : int
    colour_by : str
        Column grouping the foci (one colour each when at most 8 groups).
    vmax : float, optional
        Upper end of the colour scale (default: map maximum).
    outline_img : nibabel image, optional
        Binary/label map whose outline is drawn (surviving clusters).
    cbar_label : str
    display_fraction : float

    Returns
    -------
    matplotlib.figure.Figure
    """
    from nilearn import plotting

    threshold = 0.0
    if stat_img is not None:
        data = np.asarray(stat_img.dataobj)
        vmax = vmax or float(np.nanmax(data)) or 1.0
        threshold = display_fraction * vmax
    cuts = list(cuts) if cuts is not None else choose_cuts(stat_img, foci, axis=1, step=step, threshold=threshold)
    if not cuts:
        cuts = [0]
    fig, axes, (width, height, rows) = _grid(len(cuts), per_row, 1.9, 2.0, top=0.75)
    bg = template_img()
    colours, handles = _foci_colours(foci, colour_by)
    for cut, ax in zip(cuts, axes):
        if stat_img is not None:
            display = plotting.plot_stat_map(stat_img, bg_img=bg, display_mode="y", cut_coords=[cut], axes=ax,
                                             cmap=ALE_CMAP, vmin=0, vmax=vmax, threshold=threshold, colorbar=False,
                                             annotate=False, draw_cross=False, black_bg=False,
                                             symmetric_cbar=False)
        else:
            display = plotting.plot_anat(bg, display_mode="y", cut_coords=[cut], axes=ax, annotate=False,
                                         draw_cross=False, black_bg=False)
        if outline_img is not None and np.any(np.asarray(outline_img.dataobj) > 0):
            binary = nib.Nifti1Image((np.asarray(outline_img.dataobj) > 0).astype(np.float32), outline_img.affine)
            display.add_contours(binary, levels=[0.5], colors=[OUTLINE_COLOUR], linewidths=1.2)
        cut_ax = display.axes[cut].ax
        if foci is not None and len(foci):
            near = foci[(foci["y"] - cut).abs() <= step / 2]
            for g, sub in near.groupby(colour_by, sort=False):
                cut_ax.scatter(sub["x"], sub["z"], s=16, c=colours.get(g, FOCI_COLOUR), edgecolors="black",
                               linewidths=0.5, zorder=10)
        gc.freeze()  # see _frozen_gc
        cut_ax.text(0.02, 0.02, f"y = {cut}", transform=cut_ax.transAxes, fontsize=8, color="black",
                    bbox=dict(facecolor="white", edgecolor="none", alpha=0.7, pad=1))
        cut_ax.text(0.02, 0.92, "L", transform=cut_ax.transAxes, fontsize=7)
        cut_ax.text(0.93, 0.92, "R", transform=cut_ax.transAxes, fontsize=7)
    if stat_img is not None:
        _colourbar(fig, [(width - 0.6) / width, 0.25, 0.12 / width, 0.5], 0.0, vmax, cbar_label,
                   hidden_below=threshold)
    if outline_img is not None and np.any(np.asarray(outline_img.dataobj) > 0):
        handles = handles + [plt.Line2D([], [], color=OUTLINE_COLOUR, lw=1.5, label="surviving clusters")]
    if handles:
        fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(4, len(handles)),
                   fontsize=8, frameon=False)
    shown = "" if stat_img is None else f"; ALE below {100 * display_fraction:.0f}% of its maximum not drawn"
    fig.suptitle(f"{title}\ncoronal slices every {step} mm where there are foci or ALE{shown}; "
                 "foci on their nearest slice", fontsize=9, y=1 - 0.1 / height)
    return fig


@_with_frozen_gc
def surviving_clusters(thresholded_img: nib.Nifti1Image, clusters: pd.DataFrame, title: str = "",
                       cbar_label: str = "ALE", per_row: int = 5, max_slices: int = 10) -> plt.Figure | None:
    """Thresholded map of the surviving clusters: glass brain plus axial slices through each cluster peak.

    Parameters
    ----------
    thresholded_img : nibabel image
        ALE where the voxel survives FWE, 0 elsewhere.
    clusters : pandas.DataFrame
        Surviving clusters (``cluster_id, peak_x, peak_y, peak_z``).
    title : str
    cbar_label : str
    per_row : int
    max_slices : int
        At most this many axial slices (the peaks of the largest clusters).

    Returns
    -------
    matplotlib.figure.Figure or None
        None when nothing survives (say so in the page instead).
    """
    from nilearn import plotting

    data = np.asarray(thresholded_img.dataobj)
    if clusters is None or clusters.empty or not np.any(data > 0):
        return None
    vmax = float(np.max(data))
    # Colours span 0..max so the weakest surviving voxel is a clear orange, not a faint yellow.
    shown = float(np.min(data[data > 0])) * 0.999
    vmin = 0.0
    zs = list(dict.fromkeys(int(z) for z in clusters["peak_z"].head(max_slices)))
    n_slices = len(zs)
    panel_w, panel_h, glass_h, top, right = 2.1, 2.3, 2.6, 0.6, 0.9
    cols = min(per_row, n_slices)
    rows = int(np.ceil(n_slices / per_row))
    width = max(cols * panel_w, 8.0) + right
    height = top + glass_h + rows * panel_h
    fig = plt.figure(figsize=(width, height))
    gax = fig.add_axes([0, 1 - (top + glass_h) / height, (width - right) / width, glass_h / height])
    glass = plotting.plot_glass_brain(thresholded_img, display_mode="lyrz", axes=gax, cmap=ALE_CMAP, colorbar=False,
                                      plot_abs=False, threshold=shown, vmin=vmin, vmax=vmax, alpha=0.9,
                                      annotate=False, black_bg=False)
    for direction, ax in glass.axes.items():
        dims = {"x": (1, 2), "y": (0, 2), "z": (0, 1), "l": (1, 2), "r": (1, 2)}[direction]
        for _, row in clusters.iterrows():
            xyz = row[["peak_x", "peak_y", "peak_z"]].to_numpy(float)
            if direction in ("l", "r") and (xyz[0] > 0) == (direction == "l"):
                continue
            ax.ax.annotate(str(int(row["cluster_id"])), (xyz[dims[0]], xyz[dims[1]]), xytext=(7, 7),
                           textcoords="offset points", fontsize=8, color="black", weight="bold",
                           path_effects=[patheffects.withStroke(linewidth=2.5, foreground="white")])
    for i, z in enumerate(zs):
        r, c = divmod(i, per_row)
        rect = [c * panel_w / width, 1 - (top + glass_h + (r + 1) * panel_h) / height, panel_w / width,
                panel_h / height]
        ax = fig.add_axes(rect)
        display = plotting.plot_stat_map(thresholded_img, bg_img=template_img(), display_mode="z", cut_coords=[z],
                                         axes=ax, cmap=ALE_CMAP, vmin=vmin, vmax=vmax, threshold=shown,
                                         colorbar=False, annotate=False, draw_cross=False, black_bg=False,
                                         symmetric_cbar=False)
        gc.freeze()  # see _frozen_gc
        cut_ax = display.axes[z].ax
        ids = ", ".join(str(int(c)) for c in clusters.loc[clusters["peak_z"].astype(int) == z, "cluster_id"])
        cut_ax.text(0.02, 0.02, f"z = {z} (cluster {ids})", transform=cut_ax.transAxes, fontsize=7,
                    bbox=dict(facecolor="white", edgecolor="none", alpha=0.7, pad=1))
        cut_ax.text(0.02, 0.92, "L", transform=cut_ax.transAxes, fontsize=7)
        cut_ax.text(0.93, 0.92, "R", transform=cut_ax.transAxes, fontsize=7)
    _colourbar(fig, [(width - 0.6) / width, 0.2, 0.12 / width, 0.6], vmin, vmax, cbar_label, hidden_below=shown)
    fig.suptitle(title, fontsize=9, y=1 - 0.1 / height)
    return fig


@_with_frozen_gc
def glass_brain(stat_img: nib.Nifti1Image, foci: pd.DataFrame | None = None, title: str = "",
                cbar_label: str = "ALE", display_fraction: float = DISPLAY_FRACTION) -> plt.Figure:
    """Glass brain of an (unthresholded) ALE map, with the foci as dots.

    Parameters
    ----------
    stat_img : nibabel image
    foci : pandas.DataFrame, optional
    title : str
    cbar_label : str
    display_fraction : float
        Values below this share of the maximum are transparent.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from nilearn import plotting

    fig = plt.figure(figsize=(10, 3.4))
    vmax = float(np.nanmax(np.asarray(stat_img.dataobj))) or 1.0
    ax = fig.add_axes([0, 0, 0.92, 0.88])
    display = plotting.plot_glass_brain(stat_img, display_mode="lyrz", axes=ax, cmap=ALE_CMAP, colorbar=False,
                                        plot_abs=False, threshold=display_fraction * vmax, vmax=vmax,
                                        vmin=0, alpha=0.9, annotate=False, black_bg=False)
    if foci is not None and len(foci):
        size = 12 if len(foci) <= 50 else 4
        display.add_markers(foci[["x", "y", "z"]].to_numpy(float), marker_color=FOCI_COLOUR, marker_size=size)
    _colourbar(fig, [0.935, 0.15, 0.012, 0.6], 0.0, vmax, cbar_label, hidden_below=display_fraction * vmax)
    fig.suptitle(f"{title}\nALE below {100 * display_fraction:.0f}% of its maximum not drawn"
                 + ("; dots: foci" if foci is not None and len(foci) else ""), fontsize=9)
    return fig


def null_distributions(nulls: pd.DataFrame, thresholds: pd.DataFrame | None = None,
                       alpha: float = 0.05) -> plt.Figure:
    """Histograms of the Monte Carlo null (max ALE, max cluster size, max cluster mass) per model and engine.

    Parameters
    ----------
    nulls : pandas.DataFrame
        Columns ``model, engine, max_ale, max_cluster_size, max_cluster_mass``.
    thresholds : pandas.DataFrame, optional
        Observed values (``model, statistic, value``) drawn as solid black lines
        (e.g. the largest observed cluster).
    alpha : float
        The FWE cutoff (:func:`~painmeta.ale.inference.fwe_cutoff`: the value a
        statistic must exceed for p < alpha) is drawn as a dashed line.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from painmeta.ale.inference import fwe_cutoff

    stats = [("max_ale", "max ALE"), ("max_cluster_size", "max cluster size (voxels)"),
             ("max_cluster_mass", "max cluster mass")]
    models = list(dict.fromkeys(nulls["model"]))
    engines = list(dict.fromkeys(nulls["engine"]))
    colours = {e: OKABE_ITO[(i * 4) % len(OKABE_ITO)] for i, e in enumerate(engines)}
    fig, axes = plt.subplots(len(models), 3, figsize=(11, 2.7 * len(models) + 0.4), squeeze=False)
    for i, model in enumerate(models):
        for j, (col, label) in enumerate(stats):
            ax = axes[i, j]
            for engine in engines:
                v = nulls.loc[(nulls["model"] == model) & (nulls["engine"] == engine), col].to_numpy(float)
                if v.size == 0:
                    continue
                # First engine filled, the others as outlines, so identical nulls visibly coincide.
                first = engine == engines[0]
                ax.hist(v, bins=40, alpha=0.6 if first else 1.0, color=colours[engine], label=f"{engine} (n={v.size})",
                        histtype="stepfilled" if first else "step", lw=1.4)
                cut = fwe_cutoff(v, alpha)
                if cut is not None:
                    ax.axvline(cut, color=colours[engine], ls="--", lw=1.2)
            if thresholds is not None:
                obs = thresholds[(thresholds["model"] == model) & (thresholds["statistic"] == col)]
                for value in obs["value"]:
                    ax.axvline(value, color="black", lw=1.2)
            ax.set_xlabel(label, fontsize=9)
            ax.set_ylabel("iterations" if j == 0 else "", fontsize=9)
            ax.xaxis.set_major_locator(ticker.MaxNLocator(nbins=4))
            ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%.3g"))
            ax.tick_params(labelsize=8)
            if j == 0:
                ax.set_title(f"{model}", loc="left", fontsize=10)
            if i == 0 and j == 2:
                handles, labels = ax.get_legend_handles_labels()
                handles += [plt.Line2D([], [], color="grey", ls="--", label=f"FWE cutoff (p < {alpha:g})")]
                if thresholds is not None:
                    handles += [plt.Line2D([], [], color="black", label="observed")]
                ax.legend(handles=handles, fontsize=7, frameon=False)
    fig.suptitle("Monte Carlo null distributions of the per-iteration maxima", fontsize=10)
    fig.tight_layout()
    return fig


def observed_statistics(results: Mapping[str, object]) -> pd.DataFrame:
    """Observed maximum ALE, largest cluster and largest cluster mass per model (for :func:`null_distributions`)."""
    rows = []
    for name, res in results.items():
        ale = np.asarray(res.ale)  # type: ignore[attr-defined]
        rows.append((name, "max_ale", float(ale.max())))
        table = res.clusters_all  # type: ignore[attr-defined]
        if len(table):
            rows.append((name, "max_cluster_size", float(table["n_voxels"].max())))
            rows.append((name, "max_cluster_mass", float(table["mass"].max())))
    return pd.DataFrame(rows, columns=["model", "statistic", "value"])


@_with_frozen_gc
def interactive_view(stat_img: nib.Nifti1Image, title: str = "", threshold: float | None = None,
                     vmax: float | None = None):
    """nilearn ``view_img`` of a map on the shipped template: a self-contained, offline HTML viewer.

    nilearn inlines its JavaScript (jQuery, brainsprite) and the images, so the
    page needs no network (tested: no ``http`` source in the HTML).

    Parameters
    ----------
    stat_img : nibabel image
    title : str
    threshold : float, optional
        Values at or below are transparent (default: 10 % of the maximum).
    vmax : float, optional

    Returns
    -------
    nilearn.plotting.html_stat_map.StatMapView
        :func:`viewer_html` embeds it in a notebook; ``.save_as_html(path)`` writes a file.
    """
    from nilearn import plotting

    data = np.asarray(stat_img.dataobj)
    vmax = vmax or float(np.nanmax(data)) or 1.0
    thr = DISPLAY_FRACTION * vmax if threshold is None else threshold
    return plotting.view_img(stat_img, bg_img=template_img(), threshold=thr, vmax=vmax, vmin=0,
                             cmap=ALE_CMAP, symmetric_cmap=False, title=title, black_bg=False, colorbar=True)


def viewer_html(view, width: int = 900, height: int = 420) -> str:
    """HTML that embeds a nilearn view in a page: its self-contained document in an ``iframe`` ``srcdoc``.

    Wrapped in a ``div`` (IPython warns about bare iframes).
    """
    return f'<div class="pm-viewer">{view.get_iframe(width=width, height=height)}</div>'


def kernel_table(sample_sizes: Sequence[int]) -> pd.DataFrame:
    """FWHM and peak MA value of the Eickhoff (2009) kernel per sample size.

    Parameters
    ----------
    sample_sizes : sequence of int

    Returns
    -------
    pandas.DataFrame
        ``n, fwhm_mm, peak_ma`` (peak = ALE of an isolated focus).
    """
    from painmeta.ale.kernel import ale_kernel

    rows = []
    for n in sorted(set(int(s) for s in sample_sizes)):
        k = ale_kernel(sample_size=n)
        rows.append({"n": n, "fwhm_mm": round(k.fwhm_mm, 4), "peak_ma": k.peak})
    return pd.DataFrame(rows)
