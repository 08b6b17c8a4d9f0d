"""Figures of the comparison and robustness analyses: subtraction/conjunction, fail-safe N, leave-one-out."""

from __future__ import annotations

import warnings
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

#: Okabe-Ito colours (colour-blind safe).
OKABE_ITO = {"orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73", "blue": "#0072B2",
             "vermillion": "#D55E00", "purple": "#CC79A7", "grey": "#999999"}


def contrast_figure(result: Any, n_cuts: int = 7) -> plt.Figure:
    """Thresholded subtraction z (A > B red, B > A blue) and the conjunction, on the same axial slices."""
    from nilearn import plotting
    from nilearn.plotting import find_cut_slices

    m = result.mask
    z_img = m.to_img(result.z_thresh, np.float32)
    conj_img = m.to_img(result.conj, np.float32)
    has_sub = bool(np.any(result.z_thresh))
    has_conj = bool(np.any(result.conj))
    if has_sub or has_conj:
        ref = m.to_img(np.abs(result.z_thresh) / max(np.abs(result.z_thresh).max(), 1e-12)
                       + (result.conj > 0), np.float32)
        cuts = sorted(find_cut_slices(ref, direction="z", n_cuts=n_cuts))
    else:
        cuts = list(np.linspace(-40, 60, n_cuts))
    fig, axes = plt.subplots(2, 1, figsize=(11, 5.2))
    warnings.filterwarnings("ignore", message="empty mask")  # an empty map is a result here, drawn as such
    zmax = float(np.max(np.abs(result.z_thresh))) if has_sub else 4.0
    a, b = result.label_a, result.label_b
    plotting.plot_stat_map(
        z_img, display_mode="z", cut_coords=cuts, axes=axes[0], cmap="RdBu_r", vmax=max(zmax, 3.5),
        colorbar=True, draw_cross=False, annotate=True,
        title=f"Subtraction z: {a} > {b} red, {b} > {a} blue" + ("" if has_sub else " (no cluster)"),
    )
    plotting.plot_stat_map(
        conj_img, display_mode="z", cut_coords=cuts, axes=axes[1], cmap="viridis", colorbar=True,
        draw_cross=False, vmax=float(result.conj.max()) if has_conj else 0.05, symmetric_cbar=False,
        title="Conjunction ALE" + ("" if has_conj else " (no voxel in both)"),
    )
    fig.text(0.01, 0.005, f"subtraction: two-sided p < {result.voxel_thresh:g}, clusters >= {result.min_cluster_mm3:g} "
             f"mm3; conjunction: minimum of both sets' ALE inside clusters significant at cluster-level FWE "
             f"p < {result.cluster_alpha:g}", fontsize=8)
    return fig


def fsn_figure(summary: pd.DataFrame, n_experiments: int, k_max: int, title: str = "") -> plt.Figure:
    """Mean fail-safe N per cluster with its 95% CI over file drawers; reference lines at E and k_max."""
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * max(len(summary), 3) + 2.2))
    y = np.arange(len(summary))[::-1]
    lo = (summary["mean"] - summary["ci_lower"]).fillna(0).to_numpy()
    hi = (summary["ci_upper"] - summary["mean"]).fillna(0).to_numpy()
    ax.errorbar(summary["mean"], y, xerr=[lo, hi], fmt="o", color=OKABE_ITO["blue"], ecolor=OKABE_ITO["blue"],
                capsize=3, label="mean over drawers, 95% CI")
    ax.scatter(summary["min"], y, marker="|", color=OKABE_ITO["grey"], label="min / max over drawers")
    ax.scatter(summary["max"], y, marker="|", color=OKABE_ITO["grey"])
    ax.axvline(n_experiments, color=OKABE_ITO["vermillion"], ls="--", lw=1, label=f"{n_experiments} real experiments")
    ax.axvline(k_max, color=OKABE_ITO["grey"], ls=":", lw=1, label=f"k_max = {k_max} (censored)")
    ax.set_yticks(y)
    ax.set_yticklabels([f"cluster {int(c)}" for c in summary["cluster_id"]])
    ax.set_xlabel("fail-safe N (null experiments added while the cluster stays significant)")
    ax.set_xlim(-0.5, k_max * 1.05 + 1)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=7, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def loo_figure(table: pd.DataFrame, title: str = "") -> plt.Figure:
    """Experiment x cluster heat map of the size change without each experiment; X where it no longer survives."""
    piv = table.pivot(index="experiment_id", columns="cluster_id", values="size_change_pct")
    surv = table.pivot(index="experiment_id", columns="cluster_id", values="survives")
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * piv.shape[1] + 2.2, 0.22 * piv.shape[0] + 1.6))
    lim = max(5.0, float(np.nanmax(np.abs(piv.to_numpy()))))
    im = ax.imshow(piv.to_numpy(), cmap="PuOr", vmin=-lim, vmax=lim, aspect="auto")
    for (i, j), ok in np.ndenumerate(surv.to_numpy()):
        if not ok:
            ax.text(j, i, "x", ha="center", va="center", fontsize=8, color="black")
    ax.set_xticks(range(piv.shape[1]))
    ax.set_xticklabels([f"cl. {c}" for c in piv.columns], fontsize=8)
    ax.set_yticks(range(piv.shape[0]))
    ax.set_yticklabels(piv.index, fontsize=7)
    ax.set_xlabel("cluster")
    ax.set_ylabel("experiment left out")
    cb = fig.colorbar(im, ax=ax, fraction=0.05)
    cb.set_label("cluster size change without the experiment (%)")
    ax.set_title(title or "Leave-one-experiment-out (x: no longer significant)", fontsize=9)
    fig.tight_layout()
    return fig


__all__ = ["contrast_figure", "fsn_figure", "loo_figure"]
