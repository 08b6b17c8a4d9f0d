"""Engine-neutral inference: analytic null, p and z, thresholds, clusters and cluster tables.

1. **Analytic voxel null** (:func:`analytic_null`): the distribution of ALE
   under spatial independence, obtained as in GingerALE (Eickhoff et al. 2012)
   by convolving each experiment's MA histogram (non-zero values plus the
   zero voxels of the mask) on a grid of 1e-5. Voxel p-values
   (:func:`p_from_null`) are upper-tail probabilities read at the nearest
   bin; the cluster-forming ALE value (:func:`threshold_from_null`) is the
   last bin whose tail probability still exceeds the cluster-forming p.
2. **Monte Carlo p-values** (:func:`null_to_p`, :func:`significant`,
   :func:`min_significant_size`) from a null of per-iteration maxima, whichever
   engine produced it.
3. **Clusters** (:func:`label_clusters`, :func:`cluster_masses`,
   :func:`cluster_table`): face-connected (6-neighbour) components of
   supra-threshold voxels, described as the papers print them.

Histogram conventions match NiMARE 0.22.1: bin centres
``round(arange(0, max + 1.5e-5, 1e-5), 5)`` where ``max`` is the largest
attainable ALE from the experiments' maximum MA values rounded up to the grid
(computed in float32 as NiMARE does); nearest-bin assignment with ties away
from zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit
from scipy import ndimage, special

from painmeta.ale.geometry import MaskGeometry
from painmeta.ale.problem import ALEProblem, ale_map, ma_map

#: Inference methods a model can report as primary (``ale.inference``).
INFERENCE_METHODS = ("cluster_size", "cluster_mass", "voxel")
#: Short names used in file names and p-value columns.
METHOD_SHORT = {"cluster_size": "size", "cluster_mass": "mass", "voxel": "voxel"}

#: Columns of every cluster table (empty tables keep them). Coordinates are MNI mm:
#: ``peak_*`` the voxel with the largest ALE, ``center_*`` the centroid of the
#: cluster's voxels, ``com_*`` the ALE-weighted centre of mass (GingerALE's
#: "weighted center"). ``peak_zscore`` / ``mean_zscore`` are the analytic-null z
#: values (``peak_z`` is a coordinate). ``p_fwe_voxel`` is the smallest
#: voxel-level FWE p in the cluster and ``n_voxels_vfwe`` how many of its voxels
#: survive voxel-level FWE. ``significant`` follows the model's primary inference
#: (``inference``); ``significant_size/mass/voxel`` give all three. ``label_peak``
#: and ``labels`` use AAL, ``*_ho`` Harvard-Oxford cortical
#: (:mod:`painmeta.ale.labels`).
CLUSTER_COLUMNS = [
    "cluster_id",
    "n_voxels",
    "volume_mm3",
    "mass",
    "peak_ale",
    "peak_zscore",
    "mean_ale",
    "mean_zscore",
    "peak_x",
    "peak_y",
    "peak_z",
    "center_x",
    "center_y",
    "center_z",
    "com_x",
    "com_y",
    "com_z",
    "p_fwe_size",
    "p_fwe_mass",
    "p_fwe_voxel",
    "n_voxels_vfwe",
    "significant",
    "significant_size",
    "significant_mass",
    "significant_voxel",
    "inference",
    "label_peak",
    "labels",
    "label_peak_ho",
    "labels_ho",
]
#: Histogram grid resolution for the analytic null (ALE units), as GingerALE/NiMARE.
HIST_STEP_INV = 100000


@njit(cache=True)
def _nearest_bin(value, inv_step, n_bins):  # pragma: no cover - numba
    scaled = value * inv_step
    fl = np.floor(scaled)
    idx = int(fl) + int(scaled - fl >= 0.5)  # ties away from zero
    if idx < 0:
        return 0
    if idx >= n_bins:
        return n_bins - 1
    return idx


@njit(cache=True)
def _experiment_hist(values, n_zero, recip, inv_step, n_bins):  # pragma: no cover - numba
    h = np.zeros(n_bins, dtype=np.float64)
    for v in values:
        h[_nearest_bin(np.float64(v), inv_step, n_bins)] += 1.0
    h[0] += n_zero
    h *= recip
    return h


@njit(cache=True)
def _combine_hist(ale_idx, ale_p, exp_idx, exp_p, centres, inv_step, n_bins):  # pragma: no cover
    out = np.zeros(n_bins, dtype=np.float64)
    for a in range(exp_idx.shape[0]):
        one_minus = 1.0 - centres[exp_idx[a]]
        pa = exp_p[a]
        for b in range(ale_idx.shape[0]):
            score = 1.0 - one_minus * (1.0 - centres[ale_idx[b]])
            out[_nearest_bin(score, inv_step, n_bins)] += pa * ale_p[b]
    return out


@dataclass(frozen=True)
class AnalyticNull:
    """Histogram null of ALE under spatial independence.

    Attributes
    ----------
    bins : numpy.ndarray
        Bin centres (ALE units, step 1e-5).
    weights : numpy.ndarray
        Probability mass per bin (sums to 1 up to rounding).
    """

    bins: np.ndarray
    weights: np.ndarray


def histogram_bins(max_ma: np.ndarray) -> np.ndarray:
    """Bin centres covering the largest attainable ALE.

    ``max_ma`` are the experiments' maximum MA values (float32). Rounded up to
    the grid and combined in float32, as NiMARE does, so both engines build a
    grid of the same length.
    """
    step = 1 / HIST_STEP_INV
    max_ma = np.ceil(np.asarray(max_ma, dtype=np.float32) * HIST_STEP_INV) / HIST_STEP_INV
    max_possible = 1.0 - np.prod(1.0 - max_ma, axis=0)
    return np.round(np.arange(0, max_possible + (1.5 * step), step), 5)


def analytic_null(problem: ALEProblem) -> AnalyticNull:
    """Analytic (GingerALE) null histogram of ALE values for this problem."""
    n_vox = problem.mask.n_voxels
    per_exp = []
    for e in range(problem.n_experiments):
        ma, cols = ma_map(problem, e)
        per_exp.append(ma[cols])
    max_ma = np.array([v.max() if v.size else 0.0 for v in per_exp], dtype=np.float32)
    bins = histogram_bins(max_ma)
    centres = bins.astype(np.float64)
    inv_step = 1 / (centres[1] - centres[0])
    n_bins = centres.shape[0]
    recip = 1.0 / n_vox
    hist = None
    for vals in per_exp:
        h = _experiment_hist(vals, float(n_vox - vals.shape[0]), recip, inv_step, n_bins)
        if hist is None:
            hist = h
            continue
        ai = np.nonzero(hist > 0)[0]
        ei = np.nonzero(h > 0)[0]
        hist = _combine_hist(ai, hist[ai], ei, h[ei], centres, inv_step, n_bins)
    assert hist is not None
    return AnalyticNull(bins, hist)


def _round_half_away(x: np.ndarray) -> np.ndarray:
    r = np.round(x)
    ties = np.abs(x - r) == 0.5
    r[ties] = np.ceil(x[ties])
    return r.astype(np.int64)


def p_from_null(ale: np.ndarray, null: AnalyticNull) -> np.ndarray:
    """Voxel-wise upper-tail p-values of ALE values against the analytic null.

    p is the null probability of a value in the nearest bin or above; ALE = 0
    gives 1, and p never drops below the smallest non-zero tail probability.
    """
    bins, w = null.bins, null.weights
    inv_step = 1 / (bins[1] - bins[0])
    tail = w / np.sum(w)
    tail = np.cumsum(tail[::-1])[::-1]
    tail /= np.max(tail)
    smallest = np.min(tail[tail != 0])
    ale = np.asarray(ale)
    p = np.ones(ale.shape, dtype=np.float64)
    pos = np.nonzero(ale > 0)[0]
    idx = _round_half_away(ale[pos] * inv_step)
    idx[idx >= len(bins)] = len(bins) - 1
    p[pos] = tail[idx]
    return np.maximum(smallest, np.minimum(p, 1.0))


def threshold_from_null(null: AnalyticNull, p: float) -> float:
    """Cluster-forming ALE value for voxel-wise p (e.g. 0.001).

    Returns the bin centre just below the first bin whose tail probability is
    <= p, i.e. the last value that is still more probable than p; voxels
    strictly above it are supra-threshold. Conservative by at most one bin.
    """
    w = np.asarray(null.weights, dtype=np.float64)
    if w.sum() <= 0:
        return float(null.bins[0])
    tail = np.cumsum(w[::-1])[::-1]
    tail /= tail[0]
    below = np.flatnonzero(tail <= p)
    if below.size == 0:
        return float(null.bins[-1])
    return float(null.bins[max(0, below[0] - 1)])


def p_to_z(p: np.ndarray) -> np.ndarray:
    """One-tailed z for p (via log p, no underflow); p = 1 gives 0."""
    p = np.clip(np.asarray(p, dtype=np.float64), np.finfo(np.float64).tiny, 1.0)
    return np.maximum(-special.ndtri_exp(np.log(p)), 0.0)


def null_to_p(values: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Monte Carlo upper-tail p: share of null values >= value, within [1/n, 1 - 1/n]."""
    null = np.sort(np.asarray(null))
    values = np.atleast_1d(np.asarray(values))
    n = len(null)
    p = 1 - np.searchsorted(null, values, side="left").astype(float) / n
    return np.clip(p, 1.0 / n, 1.0 - 1.0 / n)


def significant(p: np.ndarray | float, alpha: float) -> np.ndarray:
    """``p < alpha``, robust to float noise in Monte Carlo p-values.

    Monte Carlo p-values are multiples of 1/n computed as ``1 - k/n``; a value
    that equals alpha in exact arithmetic (e.g. 40/800) can land an ulp either
    side of it, so the comparison allows a relative 1e-9.
    """
    return np.asarray(p) < alpha * (1 - 1e-9)


def min_significant_size(null_sizes: np.ndarray, alpha: float) -> int | None:
    """Smallest cluster size (voxels) whose FWE p is below ``alpha``.

    Uses :func:`null_to_p`, so the rule "p < alpha" and this threshold always
    agree. None when no size can reach p < alpha (fewer than 1/alpha iterations).
    """
    null_sizes = np.asarray(null_sizes)
    if len(null_sizes) == 0:
        return None
    top = int(np.max(null_sizes)) + 1
    cands = np.arange(1, top + 1)
    p = null_to_p(cands, null_sizes)
    ok = np.flatnonzero(significant(p, alpha))
    return int(cands[ok[0]]) if ok.size else None


def fwe_cutoff(null: np.ndarray, alpha: float) -> float | None:
    """Value a statistic must exceed for Monte Carlo FWE ``p < alpha``.

    The exact counterpart of :func:`null_to_p` plus :func:`significant`: a value
    ``v`` is significant if and only if ``v > fwe_cutoff(null, alpha)``. With
    ``n`` iterations and ``c`` the largest count with ``c / n < alpha``, the
    cutoff is the ``(c + 1)``-th largest null value (ties included): ``v``
    above it has at most ``c`` null values ``>= v``. This is how NiMARE's
    voxel-level FWE map (``null_to_p(stat, max_stat_null, "upper")``) turns into
    an ALE threshold, without interpolating quantiles.

    Returns
    -------
    float or None
        None when no value can reach ``p < alpha`` (``1 / n >= alpha``: too few
        iterations) or the null is empty.
    """
    values = np.sort(np.asarray(null, dtype=np.float64))
    n = len(values)
    if n == 0:
        return None
    counts = np.arange(n + 1)
    ok = np.flatnonzero(significant(np.maximum(counts, 1) / n, alpha))
    if ok.size == 0:
        return None
    c = int(ok[-1])
    if c >= n:  # pragma: no cover - alpha > 1 is refused by the config
        return float("-inf")
    return float(values[n - 1 - c])


def voxel_fwe_p(ale: np.ndarray, null_max_ale: np.ndarray) -> np.ndarray:
    """Voxel-level FWE p of every voxel: :func:`null_to_p` of its ALE against the per-iteration maxima.

    NiMARE's ``FWECorrector(method="montecarlo")`` computes its
    ``logp_level-voxel`` map the same way (``null_to_p(stat, max_ale_null,
    "upper")``), so both engines agree exactly on identical nulls.
    """
    ale = np.asarray(ale)
    if len(null_max_ale) == 0:
        return np.ones(ale.shape)
    uniq, inv = np.unique(ale, return_inverse=True)
    return null_to_p(uniq, null_max_ale)[inv].reshape(ale.shape)


def cluster_p_map(labels_masked: np.ndarray, p_per_label: np.ndarray) -> np.ndarray:
    """Voxel map of cluster-level p (1 outside clusters), masked vector."""
    out = np.ones(labels_masked.shape, dtype=np.float64)
    inside = labels_masked > 0
    if np.any(inside):
        out[inside] = np.asarray(p_per_label, dtype=np.float64)[labels_masked[inside] - 1]
    return out


@dataclass(eq=False)
class ObservedFit:
    """Observed ALE with its analytic null (no Monte Carlo yet)."""

    problem: ALEProblem
    ale: np.ndarray  # float32 masked
    null: AnalyticNull
    p: np.ndarray
    z: np.ndarray
    ale_threshold: float
    voxel_thresh: float


def fit_observed(problem: ALEProblem, voxel_thresh: float = 0.001) -> ObservedFit:
    """ALE map, analytic-null p and z maps, and the cluster-forming ALE value."""
    ale = ale_map(problem)
    null = analytic_null(problem)
    p = p_from_null(ale, null)
    return ObservedFit(problem, ale, null, p, p_to_z(p), threshold_from_null(null, voxel_thresh), voxel_thresh)


def label_clusters(ale: np.ndarray, threshold: float, mask: MaskGeometry) -> tuple[np.ndarray, int]:
    """Face-connected clusters of voxels with ALE strictly above ``threshold``."""
    vol = mask.unmask(np.asarray(ale, dtype=np.float32))
    structure = ndimage.generate_binary_structure(3, 1)
    labels, n = ndimage.label(vol.astype(np.float64) > threshold, structure)
    return labels.astype(np.int32), int(n)


def cluster_masses(ale: np.ndarray, labels: np.ndarray, n: int, threshold: float, mask: MaskGeometry) -> np.ndarray:
    """Mass (sum of ALE - threshold, float64, raster order) of clusters 1..n."""
    vol = mask.unmask(np.asarray(ale, dtype=np.float32))
    out = np.zeros(n + 1)
    for lab in range(1, n + 1):
        out[lab] = np.sum(vol[labels == lab] - np.float64(threshold))
    return out[1:]


def cluster_table(
    ale: np.ndarray,
    labels: np.ndarray,
    n_labels: int,
    threshold: float,
    mask: MaskGeometry,
    p_size: np.ndarray,
    p_mass: np.ndarray,
    masses: np.ndarray,
    alpha: float,
    *,
    z: np.ndarray | None = None,
    p_voxel: np.ndarray | None = None,
    inference: str = "cluster_size",
    atlases: bool = True,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Describe supra-threshold clusters as the papers print them; renumber them by size (largest = 1).

    Parameters
    ----------
    ale : numpy.ndarray
        Masked ALE vector.
    labels : numpy.ndarray
        3-D labels 1..n_labels from the engine's own labelling.
    threshold : float
        Cluster-forming ALE value.
    p_size, p_mass, masses : numpy.ndarray
        Per label (index 0 = label 1): FWE p by size, by mass, and mass.
    alpha : float
        FWE alpha; a cluster is significant when its p is below it (see
        :func:`significant`).
    z : numpy.ndarray, optional
        Masked analytic-null z map (peak and mean z; NaN when not given).
    p_voxel : numpy.ndarray, optional
        Masked voxel-level FWE p map (:func:`voxel_fwe_p`); NaN / 0 when not given.
    inference : {"cluster_size", "cluster_mass", "voxel"}
        Which p decides ``significant``. With ``"voxel"`` a cluster is
        significant when at least one of its voxels survives voxel-level FWE.
    atlases : bool
        Add the atlas label columns (:mod:`painmeta.ale.labels`).

    Returns
    -------
    table : pandas.DataFrame
        One row per cluster (columns :data:`CLUSTER_COLUMNS`), ties in size
        broken by peak ALE.
    relabelled : numpy.ndarray
        Labels renumbered to match ``cluster_id``.
    """
    if inference not in INFERENCE_METHODS:
        raise ValueError(f"inference must be one of {INFERENCE_METHODS}, got {inference!r}")
    vol = mask.unmask(np.asarray(ale, dtype=np.float32))
    # z as stored in the NIfTI maps (float32; NiMARE keeps it so), so both engines describe identical values.
    zvol = (mask.unmask(np.asarray(z, dtype=np.float32).astype(np.float64), fill=np.nan)
            if z is not None else None)
    pvol = mask.unmask(np.asarray(p_voxel, dtype=np.float64), fill=1.0) if p_voxel is not None else None
    rows = []
    for lab in range(1, n_labels + 1):
        ijk = np.argwhere(labels == lab)  # C order
        vals = vol[tuple(ijk.T)]
        top = int(np.argmax(vals))
        xyz = mask.vox2mm(ijk)
        peak_xyz = xyz[top]
        centre = xyz.mean(axis=0)
        w = vals.astype(np.float64)
        com = (xyz * w[:, None]).sum(axis=0) / w.sum()
        zvals = zvol[tuple(ijk.T)] if zvol is not None else np.full(len(ijk), np.nan)
        pv = pvol[tuple(ijk.T)] if pvol is not None else None
        ps, pm = float(p_size[lab - 1]), float(p_mass[lab - 1])
        row = {
            "label": lab,
            "n_voxels": int(len(ijk)),
            "volume_mm3": float(len(ijk) * mask.voxel_volume_mm3),
            "mass": float(masses[lab - 1]),
            "peak_ale": float(vals[top]),
            "peak_zscore": float(zvals[top]),
            "mean_ale": float(np.mean(w)),
            "mean_zscore": float(np.mean(zvals, dtype=np.float64)),
            "peak_x": float(peak_xyz[0]),
            "peak_y": float(peak_xyz[1]),
            "peak_z": float(peak_xyz[2]),
            "center_x": float(centre[0]),
            "center_y": float(centre[1]),
            "center_z": float(centre[2]),
            "com_x": float(com[0]),
            "com_y": float(com[1]),
            "com_z": float(com[2]),
            "p_fwe_size": ps,
            "p_fwe_mass": pm,
            "p_fwe_voxel": float(np.min(pv)) if pv is not None else float("nan"),
            "n_voxels_vfwe": int(np.sum(significant(pv, alpha))) if pv is not None else 0,
        }
        row["significant_size"] = bool(significant(ps, alpha))
        row["significant_mass"] = bool(significant(pm, alpha))
        row["significant_voxel"] = bool(row["n_voxels_vfwe"] > 0)
        row["significant"] = row[f"significant_{METHOD_SHORT[inference]}"]
        row["inference"] = inference
        if atlases:
            from painmeta.ale.labels import ATLASES, label_points, label_shares

            for atlas, suffix in ATLASES.items():
                row[f"label_peak{suffix}"] = label_points(peak_xyz[None, :], atlas)[0]
                row[f"labels{suffix}"] = label_shares(xyz, atlas)
        else:
            for suffix in ("", "_ho"):
                row[f"label_peak{suffix}"] = ""
                row[f"labels{suffix}"] = ""
        rows.append(row)
    relabelled = np.zeros(labels.shape, dtype=np.int32)
    if not rows:
        return empty_cluster_table(), relabelled
    table = pd.DataFrame(rows).sort_values(
        ["n_voxels", "peak_ale", "peak_x", "peak_y", "peak_z"], ascending=[False, False, True, True, True]
    )
    table.insert(0, "cluster_id", np.arange(1, len(table) + 1))
    for new, old in zip(table["cluster_id"], table["label"]):
        relabelled[labels == old] = new
    table = table.drop(columns="label").reset_index(drop=True)
    return table[CLUSTER_COLUMNS], relabelled


def empty_cluster_table() -> pd.DataFrame:
    """A cluster table with no rows and the columns of :data:`CLUSTER_COLUMNS`."""
    return pd.DataFrame(columns=CLUSTER_COLUMNS)


__all__ = [
    "CLUSTER_COLUMNS",
    "INFERENCE_METHODS",
    "METHOD_SHORT",
    "cluster_p_map",
    "empty_cluster_table",
    "fwe_cutoff",
    "voxel_fwe_p",
    "AnalyticNull",
    "ObservedFit",
    "analytic_null",
    "cluster_masses",
    "cluster_table",
    "fit_observed",
    "histogram_bins",
    "label_clusters",
    "min_significant_size",
    "null_to_p",
    "p_from_null",
    "p_to_z",
    "significant",
    "threshold_from_null",
]
