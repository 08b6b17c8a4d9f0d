"""Contribution analyses of significant clusters: jackknife, focus counter, leave-one-out stability.

All take an :class:`~painmeta.ale.problem.ALEProblem` and a cluster label map
from any engine, so they run on the in-house engine's shared precomputation.

Shared precomputation (:class:`LeaveOneOut`). ALE is ``1 - exp(L)`` with
``L = sum_e log1p(-MA_e)``; leaving experiment ``e`` out changes ``L`` only on
``e``'s kernel support, where it becomes ``L - log1p(-MA_e)``. So every
leave-one-out map costs one pass over one experiment's support instead of a
refit over all experiments (``O(E)`` MA maps instead of ``O(E^2)``).
Floating point: ``L - x`` differs from a fresh sum without ``x`` by a few
float64 ulps of ``L`` (|L| < 10, so < 1e-14); after storage in float32 an
ALE value can move by one float32 ulp (relative 6e-8), so a jackknife
proportion ``1 - ALE_without / ALE`` moves by < 1e-6. That, not 0, is the
tolerance against refits (NiMARE's ``Jackknife`` refits), and it is tested.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from scipy import ndimage

from painmeta.ale.problem import ALEProblem, ale_map, ma_map


class LeaveOneOut:
    """Total log-sum and every experiment's support: leave-one-out ALE without refits.

    Parameters
    ----------
    problem : ALEProblem

    Attributes
    ----------
    log_sum : numpy.ndarray
        ``sum_e log1p(-MA_e)`` (float64, masked; log1p in float32 as the
        observed ALE of :func:`painmeta.ale.problem.ale_map`).
    ale : numpy.ndarray
        ``1 - exp(log_sum)`` as float32: identical to ``ale_map(problem)``.
    """

    def __init__(self, problem: ALEProblem) -> None:
        self.problem = problem
        n = problem.mask.n_voxels
        self.log_sum = np.zeros(n, dtype=np.float64)
        self.cols: list[np.ndarray] = []
        self.logs: list[np.ndarray] = []
        for e in range(problem.n_experiments):
            ma, cols = ma_map(problem, e)
            lg = np.log1p(-ma[cols]).astype(np.float64)
            self.log_sum[cols] += lg
            self.cols.append(cols)
            self.logs.append(lg)
        self.ale = (1.0 - np.exp(self.log_sum)).astype(np.float32)

    def without(self, e: int) -> tuple[np.ndarray, np.ndarray]:
        """ALE without experiment ``e`` on its support: ``(masked indices, float32 values)``."""
        cols = self.cols[e]
        return cols, (1.0 - np.exp(self.log_sum[cols] - self.logs[e])).astype(np.float32)

    def ale_without(self, e: int) -> np.ndarray:
        """Full masked ALE map (float32) without experiment ``e``."""
        out = self.ale.copy()
        cols, vals = self.without(e)
        out[cols] = vals
        return out


def jackknife(
    problem: ALEProblem,
    ale: np.ndarray,
    labels: np.ndarray,
    cluster_ids: Sequence[int],
    loo: LeaveOneOut | None = None,
) -> pd.DataFrame:
    """Leave-one-experiment-out contribution per cluster.

    For each experiment, ALE without it (:class:`LeaveOneOut`); the
    contribution to a cluster is the mean over its voxels of
    ``1 - ALE_without / ALE`` (0 outside the experiment's support).
    """
    geom = problem.mask
    lab_vec = labels[geom.data]
    loo = loo or LeaveOneOut(problem)
    ale = np.asarray(ale)
    sizes = {c: int(np.sum(lab_vec == c)) for c in cluster_ids}
    rows = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for e, exp in enumerate(problem.experiment_ids):
            cols, vals = loo.without(e)
            lab = lab_vec[cols]
            prop = 1 - np.nan_to_num(np.true_divide(vals, ale[cols]))
            rows.append([exp] + [float(np.sum(prop[lab == c]) / sizes[c]) if sizes[c] else float("nan")
                                 for c in cluster_ids])
    return pd.DataFrame(rows, columns=["experiment_id"] + [f"cluster_{c}" for c in cluster_ids])


def jackknife_refit(problem: ALEProblem, ale: np.ndarray, labels: np.ndarray, cluster_ids: Sequence[int]) -> pd.DataFrame:
    """The same contributions by refitting ALE without each experiment (reference for tests; O(E^2))."""
    geom = problem.mask
    lab_vec = labels[geom.data]
    rows = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for e, exp in enumerate(problem.experiment_ids):
            without = ale_map(problem, exclude=e)
            prop = 1 - np.nan_to_num(np.true_divide(without, ale))
            rows.append([exp] + [float(np.mean(prop[lab_vec == c])) for c in cluster_ids])
    return pd.DataFrame(rows, columns=["experiment_id"] + [f"cluster_{c}" for c in cluster_ids])


#: Columns of the leave-one-out stability table.
LOO_COLUMNS = [
    "experiment_id", "cluster_id", "survives", "n_voxels", "n_voxels_without", "size_change_pct",
    "peak_ale", "peak_ale_without", "peak_shift_mm", "cluster_forming_ale_without", "threshold_source",
    "critical_size",
]
#: Up to this many experiments each leave-one-out map gets its own analytic null (one convolution of E - 1
#: histograms each, O(E^2) in all); above it the full model's cluster-forming value is reused.
OWN_THRESHOLD_MAX_EXPERIMENTS = 100


def leave_one_out_stability(
    problem: ALEProblem,
    labels: np.ndarray,
    cluster_ids: Sequence[int],
    critical_size: int | None,
    voxel_thresh: float = 0.001,
    loo: LeaveOneOut | None = None,
    own_threshold: bool | None = None,
    full_threshold: float | None = None,
    inference: str = "cluster_size",
    critical_mass: float | None = None,
    critical_ale: float | None = None,
) -> pd.DataFrame:
    """Experiment x cluster: does each significant cluster survive without each experiment?

    Without experiment ``e``: ALE from :class:`LeaveOneOut`, its own analytic
    null and cluster-forming value at ``voxel_thresh``, face-connected
    clusters. The cluster "without e" is the one holding the original peak
    voxel (else the one overlapping the original cluster most). It survives
    when its size reaches ``critical_size``, the smallest significant size of
    the full model's Monte Carlo null (one null for all leave-one-out maps:
    removing one experiment changes the null little, and a Monte Carlo null per
    experiment would cost ``E`` nulls; stated in the table).

    ``own_threshold`` (default: only up to :data:`OWN_THRESHOLD_MAX_EXPERIMENTS`
    experiments) chooses between each map's own cluster-forming value and the
    full model's (``full_threshold``, computed when not given); column
    ``threshold_source`` says which.

    ``inference`` is the model's primary FWE correction, and survival is judged
    the same way: ``cluster_size`` - size at least ``critical_size``;
    ``cluster_mass`` - mass (sum of ALE above the cluster-forming value) above
    ``critical_mass``; ``voxel`` - the cluster's peak ALE above
    ``critical_ale`` (the voxel-level FWE cutoff). All three cutoffs come from
    the full model's Monte Carlo null.
    """
    from painmeta.ale.inference import analytic_null, threshold_from_null

    if inference not in ("cluster_size", "cluster_mass", "voxel"):
        raise ValueError(f"unknown inference {inference!r}")

    def _survives(n_vox: int, mass: float, peak: float) -> bool:
        if inference == "cluster_size":
            return bool(critical_size is not None and n_vox >= critical_size)
        if inference == "cluster_mass":
            return bool(critical_mass is not None and n_vox > 0 and mass > critical_mass)
        return bool(critical_ale is not None and n_vox > 0 and peak > critical_ale)

    geom = problem.mask
    loo = loo or LeaveOneOut(problem)
    full = geom.unmask(loo.ale)
    structure = ndimage.generate_binary_structure(3, 1)
    info = {}
    for c in cluster_ids:
        ijk = np.argwhere(labels == c)
        vals = full[tuple(ijk.T)]
        top = ijk[int(np.argmax(vals))]
        info[c] = (ijk, len(ijk), float(vals.max()), top, geom.vox2mm(top[None])[0])
    if own_threshold is None:
        own_threshold = problem.n_experiments <= OWN_THRESHOLD_MAX_EXPERIMENTS
    if not own_threshold and full_threshold is None:
        full_threshold = threshold_from_null(analytic_null(problem), voxel_thresh)
    source = "own analytic null" if own_threshold else "full model's (reused)"
    lab_vec = labels[geom.data]
    in_clusters = np.isin(lab_vec, list(cluster_ids))
    rows = []
    for e, exp in enumerate(problem.experiment_ids):
        if not own_threshold and not in_clusters[loo.cols[e]].any():
            # Same threshold and the experiment reaches no cluster voxel: every cluster is unchanged (ALE differs
            # only on the experiment's support), so no relabelling is needed.
            for c in cluster_ids:
                ijk, n0, peak0, top, top_mm = info[c]
                mass0 = float(np.sum(full[tuple(ijk.T)].astype(np.float64) - float(full_threshold)))
                rows.append({
                    "experiment_id": exp, "cluster_id": int(c),
                    "survives": _survives(n0, mass0, peak0),
                    "n_voxels": n0, "n_voxels_without": n0, "size_change_pct": 0.0, "peak_ale": peak0,
                    "peak_ale_without": peak0, "peak_shift_mm": 0.0, "cluster_forming_ale_without": float(full_threshold),
                    "threshold_source": source, "critical_size": critical_size,
                })
            continue
        if own_threshold:
            sub = _drop_experiment(problem, e)
            thr = threshold_from_null(analytic_null(sub), voxel_thresh) if sub.n_experiments else np.inf
        else:
            thr = float(full_threshold)
        vol = geom.unmask(loo.ale_without(e))
        lab, _ = ndimage.label(vol.astype(np.float64) > thr, structure)
        for c in cluster_ids:
            ijk, n0, peak0, top, top_mm = info[c]
            hit = int(lab[tuple(top)])
            if hit == 0:
                over = lab[tuple(ijk.T)]
                over = over[over > 0]
                hit = int(np.bincount(over).argmax()) if over.size else 0
            if hit:
                vox = np.argwhere(lab == hit)
                vv = vol[tuple(vox.T)]
                t = vox[int(np.argmax(vv))]
                n1, pk, shift = len(vox), float(vv.max()), float(np.linalg.norm(geom.vox2mm(t[None])[0] - top_mm))
                m1 = float(np.sum(vv.astype(np.float64) - float(thr)))
            else:
                n1, pk, shift, m1 = 0, float(vol[tuple(top)]), float("nan"), 0.0
            rows.append({
                "experiment_id": exp, "cluster_id": int(c),
                "survives": _survives(n1, m1, pk),
                "n_voxels": n0, "n_voxels_without": n1, "size_change_pct": 100.0 * (n1 - n0) / n0,
                "peak_ale": peak0, "peak_ale_without": pk, "peak_shift_mm": shift,
                "cluster_forming_ale_without": float(thr), "threshold_source": source,
                "critical_size": critical_size,
            })
    return pd.DataFrame(rows, columns=LOO_COLUMNS)


def _drop_experiment(problem: ALEProblem, e: int) -> ALEProblem:
    """The problem without experiment ``e`` (kernels and foci of the others unchanged)."""
    keep = np.ones(problem.n_foci, dtype=bool)
    keep[problem.exp_offsets[e]:problem.exp_offsets[e + 1]] = False
    counts = np.delete(problem.foci_per_experiment(), e)
    exp_map = np.delete(np.arange(problem.n_experiments), e)
    new_index = np.full(problem.n_experiments, -1)
    new_index[exp_map] = np.arange(len(exp_map))
    return ALEProblem(
        [x for i, x in enumerate(problem.experiment_ids) if i != e],
        np.delete(problem.sample_sizes, e),
        problem.foci_xyz[keep], problem.foci_ijk[keep],
        new_index[problem.focus_exp[keep]].astype(np.int32),
        np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        problem.kernels, np.delete(problem.exp_kernel, e), problem.mask,
        problem.focus_placement, None if problem.foci_shift is None else problem.foci_shift[keep],
    )


def focus_counts(problem: ALEProblem, labels: np.ndarray, cluster_ids: Sequence[int]) -> pd.DataFrame:
    """Foci of each experiment lying within one voxel of each cluster.

    A focus counts toward a cluster when one of the cluster's voxels is less
    than one voxel (Euclidean) away from it (NiMARE's ``FocusCounter`` rule).
    The focus sits where the analysis placed it: its nearest voxel with
    ``focus_placement: voxel`` (NiMARE rounds the same way, so the cross-check
    is exact; the focus then counts when its own voxel is in the cluster), its
    unrounded position with ``exact``.
    """
    geom = problem.mask
    inv = np.linalg.inv(geom.affine)
    exact = getattr(problem, "focus_placement", "voxel") == "exact"
    offs = np.stack(np.meshgrid(*([np.arange(-1, 2)] * 3), indexing="ij"), axis=-1).reshape(-1, 3)
    rows = []
    for e, exp in enumerate(problem.experiment_ids):
        counts = dict.fromkeys(cluster_ids, 0)
        lo, hi = problem.exp_offsets[e], problem.exp_offsets[e + 1]
        for xyz, ijk in zip(problem.foci_xyz[lo:hi], problem.foci_ijk[lo:hi]):
            pos = xyz @ inv[:3, :3].T + inv[:3, 3] if exact else ijk.astype(np.float64)
            cand = np.floor(pos).astype(np.int64) + offs
            near = np.sum((cand - pos) ** 2, axis=1) < 1.0
            inb = np.all((cand >= 0) & (cand < np.array(geom.shape)), axis=1)
            sel = cand[near & inb]
            hit = set(int(v) for v in labels[tuple(sel.T)] if v > 0)
            for c in hit:
                if c in counts:
                    counts[c] += 1
        rows.append([exp] + [counts[c] for c in cluster_ids])
    return pd.DataFrame(rows, columns=["experiment_id"] + [f"cluster_{c}" for c in cluster_ids])


__all__ = [
    "LOO_COLUMNS",
    "LeaveOneOut",
    "focus_counts",
    "jackknife",
    "jackknife_refit",
    "leave_one_out_stability",
]
