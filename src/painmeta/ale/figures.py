"""ALE figures: coronal montage with foci, glass brain, Monte Carlo null distributions.

Backgrounds use the MNI152 2 mm T1 template that ships inside the NiMARE wheel
(no download). Colour maps are perceptually uniform and colour-blind-safe
(``cividis`` for ALE), foci use the Okabe-Ito palette.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import pandas as pd

from painmeta.plotting import OKABE_ITO

#: The review's coronal range (its Figure 4): y from -102 to +88 mm.
CORONAL_RANGE = (-102, 88)


def template_img() -> nib.Nifti1Image:
    """MNI152 (NLin6Asym) 2 mm T1 shipped with NiMARE."""
    from pathlib import Path

    from nimare.utils import get_resource_path

    return nib.load(Path(get_resource_path()) / "templates" / "tpl-MNI152NLin6Asym_res-02_T1w.nii.gz")


def descriptive_ale(foci: pd.DataFrame, sample_sizes: Mapping[str, float]) -> nib.Nifti1Image:
    """Unthresholded ALE map of any set of foci (descriptive; no inference).

    Used where no model can be run (e.g. a single experiment): the map shows
    where the kernels put probability mass, which is what the review's slice
    figure displayed.

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


def coronal_montage(stat_img: nib.Nifti1Image | None, foci: pd.DataFrame | None = None, title: str = "",
                    y_range: tuple[int, int] = CORONAL_RANGE, step: int = 10, per_row: int = 5,
                    colour_by: str = "experiment_id", vmax: float | None = None) -> plt.Figure:
    """Coronal slices from ``y_range`` with the ALE map and the foci near each slice.

    A focus is drawn on a slice when it lies within half a step of it (so
    each focus appears once), coloured by ``colour_by``.

    Parameters
    ----------
    stat_img : nibabel image or None
        Map to overlay (None: template and foci only).
    foci : pandas.DataFrame, optional
        ``x, y, z`` and ``colour_by`` columns.
    title : str
    y_range : (int, int)
        First and last slice (mm).
    step : int
        Slice spacing (mm).
    per_row : int
        Slices per row.
    colour_by : str
    vmax : float, optional
        Upper end of the colour scale (default: map maximum).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from nilearn import plotting

    cuts = list(range(y_range[0], y_range[1] + 1, step))
    rows = int(np.ceil(len(cuts) / per_row))
    fig, axes = plt.subplots(rows, 1, figsize=(2.2 * per_row, 2.3 * rows + 0.6))
    fig.subplots_adjust(left=0.01, right=0.99, top=1 - 0.55 / (2.3 * rows + 0.6), bottom=0.3 / (2.3 * rows + 0.6),
                        hspace=0.04)
    axes = np.atleast_1d(axes)
    bg = template_img()
    groups = list(dict.fromkeys(foci[colour_by])) if foci is not None and len(foci) else []
    colours = {g: OKABE_ITO[i % len(OKABE_ITO)] for i, g in enumerate(groups)}
    if stat_img is not None:
        data = np.asarray(stat_img.dataobj)
        vmax = vmax or float(np.nanmax(data)) or 1.0
    for r, ax in enumerate(axes):
        row_cuts = cuts[r * per_row:(r + 1) * per_row]
        if stat_img is not None:
            display = plotting.plot_stat_map(stat_img, bg_img=bg, display_mode="y", cut_coords=row_cuts, axes=ax,
                                             cmap="cividis", vmax=vmax, threshold=vmax * 1e-3,
                                             colorbar=r == 0, annotate=True, draw_cross=False, black_bg=False)
        else:
            display = plotting.plot_anat(bg, display_mode="y", cut_coords=row_cuts, axes=ax, annotate=True,
                                         draw_cross=False, black_bg=False)
        if foci is not None and len(foci):
            for cut in row_cuts:
                near = foci[(foci["y"] - cut).abs() <= step / 2]
                if near.empty:
                    continue
                cut_ax = display.axes[cut].ax
                for g, sub in near.groupby(colour_by, sort=False):
                    cut_ax.scatter(sub["x"], sub["z"], s=28, c=colours[g], edgecolors="black", linewidths=0.6,
                                   zorder=10)
    if groups:
        handles = [plt.Line2D([], [], marker="o", ls="", color=colours[g], markeredgecolor="black", label=str(g))
                   for g in groups]
        fig.legend(handles=handles, loc="lower center", ncol=min(4, len(handles)), fontsize=8, frameon=False)
    fig.suptitle(title + f"\ncoronal slices y = {y_range[0]} to {y_range[1]} mm every {step} mm; "
                 f"foci shown on the nearest slice", fontsize=10)
    return fig


def glass_brain(stat_img: nib.Nifti1Image, foci: pd.DataFrame | None = None, title: str = "") -> plt.Figure:
    """Glass brain of an (unthresholded) ALE map, with the foci as dots.

    Parameters
    ----------
    stat_img : nibabel image
    foci : pandas.DataFrame, optional
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    from nilearn import plotting

    fig = plt.figure(figsize=(10, 3.6))
    vmax = float(np.nanmax(np.asarray(stat_img.dataobj))) or 1.0
    # Values below 10% of the maximum are left transparent so the glass brain stays readable.
    display = plotting.plot_glass_brain(stat_img, display_mode="lyrz", figure=fig, cmap="cividis", colorbar=True,
                                        title=title or None, plot_abs=False, threshold=0.1 * vmax, vmax=vmax,
                                        vmin=0)
    if foci is not None and len(foci):
        size = 12 if len(foci) <= 50 else 4
        display.add_markers(foci[["x", "y", "z"]].to_numpy(float), marker_color="#D55E00", marker_size=size)
    return fig


def null_distributions(nulls: pd.DataFrame, thresholds: pd.DataFrame | None = None,
                       alpha: float = 0.05) -> plt.Figure:
    """Histograms of the Monte Carlo null (max ALE, max cluster size, max cluster mass) per model and engine.

    Parameters
    ----------
    nulls : pandas.DataFrame
        Columns ``model, engine, max_ale, max_cluster_size, max_cluster_mass``.
    thresholds : pandas.DataFrame, optional
        Unused placeholder for observed values (``model, statistic, value``) drawn as solid lines.
    alpha : float
        The (1 - alpha) quantile is drawn as a dashed line: the FWE threshold.

    Returns
    -------
    matplotlib.figure.Figure
    """
    stats = [("max_ale", "max ALE"), ("max_cluster_size", "max cluster size (voxels)"),
             ("max_cluster_mass", "max cluster mass")]
    models = list(dict.fromkeys(nulls["model"]))
    engines = list(dict.fromkeys(nulls["engine"]))
    colours = {e: OKABE_ITO[i * 4 % len(OKABE_ITO)] for i, e in enumerate(engines)}
    fig, axes = plt.subplots(len(models), 3, figsize=(11, 2.6 * len(models)), squeeze=False)
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
                ax.axvline(np.quantile(v, 1 - alpha), color=colours[engine], ls="--", lw=1.2)
                if thresholds is not None:
                    obs = thresholds[(thresholds["model"] == model) & (thresholds["statistic"] == col)]
                    for value in obs["value"]:
                        ax.axvline(value, color="black", lw=1.2)
            ax.set_xlabel(label)
            ax.set_ylabel("iterations" if j == 0 else "")
            if j == 0:
                ax.set_title(f"{model}", loc="left", fontsize=10)
            if i == 0 and j == 2:
                ax.legend(fontsize=8, frameon=False)
    fig.suptitle(f"Monte Carlo null distributions (dashed: {100 * (1 - alpha):.0f}th percentile = FWE threshold)",
                 fontsize=10)
    fig.tight_layout()
    return fig


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
