"""Independent ALE engine: numpy, scipy and numba only (no NiMARE code).

What it computes, in the order of an analysis:

1. **MA maps** (:func:`ma_map`): every focus is replaced by its experiment's
   sample-size kernel (:mod:`painmeta.ale.kernel`); within an experiment the
   maps of its foci are combined by the voxel-wise maximum (Turkeltaub et al.
   2012, non-additive), so one experiment cannot create convergence alone.
2. **ALE** (:func:`ale_map`): the union ``1 - prod_e (1 - MA_e)`` across
   experiments, evaluated as ``1 - exp(sum_e log1p(-MA_e))``.
3. **Analytic voxel null** (:func:`analytic_null`): the distribution of ALE
   under spatial independence, obtained as in GingerALE (Eickhoff et al. 2012)
   by convolving each experiment's MA histogram (non-zero values plus the
   zero voxels of the mask) on a grid of 1e-5. Voxel p-values
   (:func:`p_from_null`) are upper-tail probabilities read at the nearest
   bin; the cluster-forming ALE value (:func:`threshold_from_null`) is the
   last bin whose tail probability still exceeds the cluster-forming p.
4. **Monte Carlo cluster null** (:func:`null_statistics`): every focus is
   moved to a uniformly drawn in-mask voxel, ALE is recomputed, thresholded
   at the cluster-forming value and labelled with face (6-) connectivity;
   each iteration yields the maximum ALE, the largest cluster (voxels) and
   the largest cluster mass (sum of ALE minus the threshold).

Conventions matched to NiMARE 0.22.1 so that the two engines agree exactly
(the cross-check in :mod:`painmeta.ale.crosscheck` verifies each one):

* mm -> voxel with the inverse affine and round-half-to-even (``np.rint``);
* MA values in float32; the observed ALE takes ``log1p`` in float32 (as
  NiMARE's sparse path does) and the Monte Carlo ALE in float64 (as NiMARE's
  fused permutation path does); both accumulate in float64 in experiment
  order and store ALE as float32;
* histogram grid: bin centres ``round(arange(0, max + 1.5e-5, 1e-5), 5)``
  where ``max`` is the largest attainable ALE from the experiments' maximum MA
  values rounded up to the grid (computed in float32 as NiMARE does);
  nearest-bin assignment with ties away from zero;
* the random foci are in-mask voxels drawn uniformly and independently for
  each focus and iteration; cluster mass accumulates in raster order;
  statistics are stored as NiMARE stores them (ALE and mass in float32).

Speed: the Monte Carlo null is computed sparsely. Only voxels inside the
kernel windows of the random foci can have ALE > 0, and only a few of those
matter: the supra-threshold voxels and the maximum. Per iteration:

1. an upper bound ``S + slack`` on ALE is formed: ``S`` sums, in float32,
   every focus's kernel values >= tau (the kernel core) in a scratch grid (the
   mask's bounding box padded by the widest kernel, so no bounds checks; small
   enough that both threads' grids stay in cache), and ``slack`` is the sum
   over foci of their largest omitted tail value (tau is chosen so that slack
   <= 1/4 of the smallest cut). Since ALE <= sum_e MA_e <= sum of all kernel
   values <= S + slack, skipping the tails (most of the 17^3 window) is safe;
2. one pass over the same windows collects in-mask voxels with
   ``S + slack >= min(threshold, smallest kernel peak) - margin`` and clears
   the grid;
3. the exact ALE at the voxel with the largest ``S`` is a lower bound on the
   iteration's maximum, so only candidates with
   ``S + slack >= min(threshold, that value) - margin`` can be supra-threshold or the
   maximum; their exact ALE is recomputed from the foci in NiMARE's arithmetic;
4. supra-threshold voxels are labelled by union-find over face neighbours
   inside this set - the same components as labelling the full volume, since
   every other voxel is below threshold - and cluster mass is summed in
   raster order.

Margins: every cut ``v`` is lowered to ``v (1 - 2**-20) - 1e-8`` - sixteen
float32 ulps of ``v`` plus an absolute 1e-8, far more than the float32
rounding of a stored ALE value (half an ulp) - and then by a factor
``1 - 2 * n_foci * 2**-24`` to cover float32 summation of ``S``. Margins only add candidates;
they cannot drop a voxel that matters. Iterations run in parallel over numba
threads with per-thread scratch; results are indexed by iteration, so they do
not depend on the number of threads (tested).
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import nibabel as nib
import numba
import numpy as np
import pandas as pd
from numba import njit, prange
from scipy import ndimage, special

from painmeta.ale.kernel import ALEKernel, ale_kernel
from painmeta.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from painmeta.ale.results import ALEResult

#: Histogram grid resolution for the analytic null (ALE units), as GingerALE/NiMARE.
HIST_STEP_INV = 100000
#: Safety margins for the sparse candidate test (see module docstring): absolute
#: (ALE units) and relative (16 float32 ulps, covering float32 rounding of ALE).
CANDIDATE_MARGIN = 1e-8
REL_MARGIN = 2.0**-20
#: Share of the smallest relevant cut given up to kernel tails that are not
#: scattered in the Monte Carlo bound (see :func:`null_statistics`).
SLACK_SHARE = 0.25
#: Iterations per parallel batch (progress-bar granularity).
BATCH_ITERS = 256

MASK_FILENAME = "tpl-MNI152NLin6Asym_res-02_desc-brain_mask.nii.gz"


# --------------------------------------------------------------------------- mask
def default_mask_path() -> Path:
    """Path of the MNI152 2 mm brain mask shipped in the NiMARE wheel.

    Only the data file is used (read with nibabel); no NiMARE code runs. It is
    the GingerALE-style mask, 91 x 109 x 91 voxels with 228,483 in the brain.
    """
    spec = importlib.util.find_spec("nimare")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("NiMARE is not installed: the MNI152 2 mm mask file ships with it.")
    path = Path(list(spec.submodule_search_locations)[0]) / "resources" / "templates" / MASK_FILENAME
    if not path.is_file():
        raise InputError(f"{path}: MNI152 2 mm mask not found in the NiMARE installation.")
    return path


@dataclass(frozen=True, eq=False)
class MaskGeometry:
    """Analysis mask and the index maps the engine needs.

    Attributes
    ----------
    data : numpy.ndarray
        Boolean 3-D mask.
    affine : numpy.ndarray
        Voxel-to-mm affine.
    zooms : tuple of float
        Voxel sizes (mm).
    flat_to_masked : numpy.ndarray
        int32 map from C-order flat voxel index to masked index (-1 outside).
    inmask_ijk : numpy.ndarray
        ``(V, 3)`` int32 voxel indices of in-mask voxels, in C order; the
        space random foci are drawn from.
    """

    data: np.ndarray
    affine: np.ndarray
    zooms: tuple[float, float, float]
    flat_to_masked: np.ndarray
    inmask_ijk: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.data.shape)  # type: ignore[return-value]

    @property
    def n_voxels(self) -> int:
        return int(self.inmask_ijk.shape[0])

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.zooms))

    def unmask(self, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Place a masked vector back into a 3-D volume."""
        out = np.full(self.shape, fill, dtype=values.dtype)
        out[self.data] = values
        return out

    def to_img(self, values: np.ndarray, dtype: type = np.float32) -> nib.Nifti1Image:
        """Masked vector -> NIfTI image on the mask grid."""
        vol = self.unmask(np.asarray(values)).astype(dtype)
        img = nib.Nifti1Image(vol, self.affine)
        img.header.set_data_dtype(dtype)
        return img

    def vox2mm(self, ijk: np.ndarray) -> np.ndarray:
        ijk = np.atleast_2d(np.asarray(ijk, dtype=np.float64))
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def mm2vox(self, xyz: np.ndarray) -> np.ndarray:
        """mm -> nearest voxel (round half to even, as ``np.round``)."""
        inv = np.linalg.inv(self.affine)
        xyz = np.atleast_2d(np.asarray(xyz, dtype=np.float64))
        with np.errstate(invalid="ignore"):
            return np.rint(np.dot(xyz, inv[:3, :3].T) + inv[:3, 3]).astype(np.int64)


_MASK_CACHE: dict[str, MaskGeometry] = {}


def load_mask(mask: "str | Path | nib.Nifti1Image | MaskGeometry | None" = None) -> MaskGeometry:
    """Load a mask (default: MNI152 2 mm, 228,483 voxels) as :class:`MaskGeometry`."""
    if isinstance(mask, MaskGeometry):
        return mask
    key = None
    if mask is None or isinstance(mask, (str, Path)):
        path = Path(mask) if mask is not None else default_mask_path()
        key = str(path.resolve())
        if key in _MASK_CACHE:
            return _MASK_CACHE[key]
        img = nib.load(str(path))
    else:
        img = mask
    data = np.asanyarray(img.dataobj) > 0
    flat = data.reshape(-1)
    f2m = np.full(flat.shape[0], -1, dtype=np.int32)
    f2m[flat] = np.arange(int(flat.sum()), dtype=np.int32)
    ijk = np.ascontiguousarray(np.vstack(np.nonzero(data)).T.astype(np.int32))
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    geom = MaskGeometry(data, np.asarray(img.affine, dtype=np.float64), zooms, f2m, ijk)  # type: ignore[arg-type]
    if key is not None:
        _MASK_CACHE[key] = geom
    return geom


# ----------------------------------------------------------------------- problem
@dataclass(eq=False)
class ALEProblem:
    """Foci, sample sizes and kernels of one ALE model, in a fixed experiment order.

    Build with :func:`make_problem`. Foci are grouped by experiment (in
    ``experiment_ids`` order) and keep their input order within an experiment.
    """

    experiment_ids: list[str]
    sample_sizes: np.ndarray  # float64, one per experiment
    foci_xyz: np.ndarray  # (F, 3) float64 mm
    foci_ijk: np.ndarray  # (F, 3) int32 voxel
    focus_exp: np.ndarray  # (F,) int32 experiment index
    exp_offsets: np.ndarray  # (E + 1,) int64
    kernels: list[ALEKernel]
    exp_kernel: np.ndarray  # (E,) int64 index into kernels
    mask: MaskGeometry

    @property
    def n_experiments(self) -> int:
        return len(self.experiment_ids)

    @property
    def n_foci(self) -> int:
        return int(self.foci_ijk.shape[0])

    @property
    def fwhm(self) -> np.ndarray:
        """FWHM (mm) per experiment."""
        return np.array([self.kernels[k].fwhm_mm for k in self.exp_kernel])

    def foci_per_experiment(self) -> np.ndarray:
        return np.diff(self.exp_offsets)


def make_problem(
    foci: pd.DataFrame,
    sample_sizes: Mapping[str, float],
    mask: "MaskGeometry | str | Path | nib.Nifti1Image | None" = None,
    experiment_order: Sequence[str] | None = None,
) -> ALEProblem:
    """Assemble an :class:`ALEProblem` from a foci table and sample sizes.

    Parameters
    ----------
    foci : pandas.DataFrame
        Columns ``experiment_id, x, y, z`` (MNI mm).
    sample_sizes : mapping
        Experiment id -> subjects entering ALE (``n_ale``); positive integers.
    mask : optional
        Analysis mask (default MNI152 2 mm).
    experiment_order : sequence of str, optional
        Order of experiments (default: sorted ids). The order fixes the float
        summation order of the ALE union, so engines compared bit for bit must
        use the same order.

    Raises
    ------
    InputError
        Missing columns, non-finite coordinates, or an experiment without a
        positive sample size.
    """
    missing = {"experiment_id", "x", "y", "z"} - set(foci.columns)
    if missing:
        raise InputError(f"foci table lacks column(s) {sorted(missing)}")
    geom = load_mask(mask)
    ids = [str(e) for e in foci["experiment_id"]]
    order = list(experiment_order) if experiment_order is not None else sorted(set(ids))
    if set(order) != set(ids):
        raise InputError("experiment_order must list exactly the experiments of the foci table")
    xyz_all = foci[["x", "y", "z"]].to_numpy(dtype=np.float64)
    if not np.isfinite(xyz_all).all():
        raise InputError("foci table has missing or non-finite coordinates")
    pos = {e: i for i, e in enumerate(order)}
    exp_idx_all = np.array([pos[e] for e in ids], dtype=np.int64)
    sort = np.argsort(exp_idx_all, kind="stable")
    xyz = xyz_all[sort]
    focus_exp = exp_idx_all[sort].astype(np.int32)
    counts = np.bincount(focus_exp, minlength=len(order))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    n = np.empty(len(order))
    for i, e in enumerate(order):
        if e not in sample_sizes or sample_sizes[e] is None or not np.isfinite(float(sample_sizes[e])):
            raise InputError(f"experiment '{e}' has no sample size (n_ale)")
        value = float(sample_sizes[e])
        if value <= 0 or value != round(value):
            raise InputError(f"experiment '{e}': sample size must be a positive integer, got {value}")
        n[i] = value
    uniq = sorted(set(n.tolist()))
    kernels = [ale_kernel(sample_size=v, zooms=geom.zooms) for v in uniq]
    exp_kernel = np.array([uniq.index(v) for v in n], dtype=np.int64)
    ijk = geom.mm2vox(xyz).astype(np.int32)
    return ALEProblem(order, n, xyz, ijk, focus_exp, offsets, kernels, exp_kernel, geom)


# ------------------------------------------------------------------ MA and ALE
@njit(cache=True)
def _study_ma(ijk, lo, hi, offsets, values, shape, f2m, ma, touched):  # pragma: no cover - numba
    """Max-combine one experiment's kernels into ``ma``; return touched masked indices."""
    n_max = (hi - lo) * offsets.shape[0]
    cols = np.empty(n_max, dtype=np.int64)
    n = 0
    sy = shape[2]
    sx = shape[1] * shape[2]
    for p in range(lo, hi):
        for m in range(offsets.shape[0]):
            i = ijk[p, 0] + offsets[m, 0]
            j = ijk[p, 1] + offsets[m, 1]
            k = ijk[p, 2] + offsets[m, 2]
            if i < 0 or j < 0 or k < 0 or i >= shape[0] or j >= shape[1] or k >= shape[2]:
                continue
            c = f2m[i * sx + j * sy + k]
            if c < 0:
                continue
            v = values[m]
            if touched[c] == 0:
                touched[c] = 1
                ma[c] = v
                cols[n] = c
                n += 1
            elif v > ma[c]:
                ma[c] = v
    return cols[:n]


def ma_map(problem: ALEProblem, exp_index: int) -> tuple[np.ndarray, np.ndarray]:
    """MA map of one experiment.

    Returns
    -------
    ma : numpy.ndarray
        float32 masked vector.
    cols : numpy.ndarray
        Masked indices touched by the experiment's kernels (its support;
        values there are > 0 except for float32 underflow at kernel corners).
    """
    geom = problem.mask
    kern = problem.kernels[problem.exp_kernel[exp_index]]
    ma = np.zeros(geom.n_voxels, dtype=np.float32)
    touched = np.zeros(geom.n_voxels, dtype=np.uint8)
    cols = _study_ma(
        problem.foci_ijk,
        int(problem.exp_offsets[exp_index]),
        int(problem.exp_offsets[exp_index + 1]),
        kern.offsets,
        kern.values,
        np.asarray(geom.shape, dtype=np.int64),
        geom.flat_to_masked,
        ma,
        touched,
    )
    return ma, np.sort(cols)


def ale_map(problem: ALEProblem, exclude: int | None = None) -> np.ndarray:
    """ALE values (float32 masked vector); ``exclude`` leaves one experiment out."""
    log_sums = np.zeros(problem.mask.n_voxels, dtype=np.float64)
    for e in range(problem.n_experiments):
        if e == exclude:
            continue
        ma, cols = ma_map(problem, e)
        # log1p in float32, accumulated in float64: NiMARE's sparse observed path.
        log_sums[cols] += np.log1p(-ma[cols]).astype(np.float64)
    return (1.0 - np.exp(log_sums)).astype(np.float32)


# ------------------------------------------------------------- analytic null
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


# ---------------------------------------------------------- Monte Carlo null
@njit(cache=True, nogil=True)
def _find(parent, a):  # pragma: no cover - numba
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@njit(cache=True, nogil=True)
def _exact_ale(idx, org, psz, psy, fijk, exp_offsets, exp_kernel, cubes32, support, k_radius):  # pragma: no cover
    """ALE at padded index ``idx`` in NiMARE's fused-permutation arithmetic.

    Per experiment: float32 maximum of its foci's kernel values reaching the
    voxel; then ``log1p`` in float64, summed in experiment order;
    ``1 - exp(sum)`` stored as float32.
    """
    i = idx // psy + org[0]
    rem = idx % psy
    j = rem // psz + org[1]
    k = rem % psz + org[2]
    log_sum = 0.0
    for e in range(exp_offsets.shape[0] - 1):
        kk = exp_kernel[e]
        r = k_radius[kk]
        best = np.float32(0.0)
        hit = False
        for f in range(exp_offsets[e], exp_offsets[e + 1]):
            di = i - fijk[f, 0]
            dj = j - fijk[f, 1]
            dk = k - fijk[f, 2]
            if di < -r or di > r or dj < -r or dj > r or dk < -r or dk > r:
                continue
            if not support[kk, di + r, dj + r, dk + r]:
                continue
            val = cubes32[kk, di + r, dj + r, dk + r]
            if not hit:
                hit = True
                best = val
            elif val > best:
                best = val
        if hit:
            log_sum += np.log1p(-np.float64(best))
    return np.float32(1.0 - np.exp(log_sum))


@njit(cache=True, nogil=True)
def _one_iteration(
    draw, inmask_ijk, focus_exp, exp_offsets, exp_kernel,
    k_delta, k_val32, k_starts, cubes32, support, k_radius,
    org, pshape, mask_pad, thr, cut, margin, shrink, slack, S, lab, cand, cand_s, fijk,
):  # pragma: no cover - numba
    n_foci = draw.shape[0]
    psz = pshape[2]
    psy = pshape[1] * pshape[2]
    # 1. scatter the float32 core sum S (kernel values >= tau; the tails add at
    #    most ``slack`` to any voxel, so S + slack bounds the full sum)
    for f in range(n_foci):
        v = draw[f]
        fijk[f, 0] = inmask_ijk[v, 0]
        fijk[f, 1] = inmask_ijk[v, 1]
        fijk[f, 2] = inmask_ijk[v, 2]
        base = (fijk[f, 0] - org[0]) * psy + (fijk[f, 1] - org[1]) * psz + (fijk[f, 2] - org[2])
        kk = exp_kernel[focus_exp[f]]
        for m in range(k_starts[kk], k_starts[kk + 1]):
            S[base + k_delta[m]] += k_val32[m]
    # 2. collect in-mask candidates (S >= static cut) and reset the scratch
    #    volume in the same pass; remember the voxel with the largest bound
    n_cand = 0
    s_best = np.float32(-1.0)
    i_best = -1
    for f in range(n_foci):
        base = (fijk[f, 0] - org[0]) * psy + (fijk[f, 1] - org[1]) * psz + (fijk[f, 2] - org[2])
        kk = exp_kernel[focus_exp[f]]
        for m in range(k_starts[kk], k_starts[kk + 1]):
            idx = base + k_delta[m]
            sv = S[idx]
            if sv != 0.0:
                S[idx] = 0.0
                if sv >= cut and mask_pad[idx]:
                    cand[n_cand] = idx
                    cand_s[n_cand] = sv
                    n_cand += 1
                    if sv > s_best:
                        s_best = sv
                        i_best = idx
    if n_cand == 0:
        return np.float32(0.0), 0, 0.0
    # 3. a per-iteration lower bound on the maximum (exact ALE where the bound
    #    peaks) narrows the candidates that could hold the maximum
    lower = np.float64(_exact_ale(i_best, org, psz, psy, fijk, exp_offsets, exp_kernel, cubes32, support, k_radius))
    v = min(thr, lower)
    cut2 = (v * (1.0 - REL_MARGIN) - margin) * shrink - slack
    max_ale = np.float32(0.0)
    above_idx = np.empty(n_cand, dtype=np.int64)
    above_val = np.empty(n_cand, dtype=np.float32)
    n_above = 0
    for c in range(n_cand):
        if cand_s[c] < cut2:
            continue
        idx = cand[c]
        ale = _exact_ale(idx, org, psz, psy, fijk, exp_offsets, exp_kernel, cubes32, support, k_radius)
        if ale > max_ale:
            max_ale = ale
        if np.float64(ale) > thr:
            above_idx[n_above] = idx
            above_val[n_above] = ale
            n_above += 1
    if n_above == 0:
        return max_ale, 0, 0.0
    # 4. face-connected components among supra-threshold voxels (union-find;
    #    forward neighbours suffice because adjacency is symmetric)
    order = np.argsort(above_idx[:n_above])  # raster order = NiMARE's summation order
    parent = np.arange(n_above)
    for a in range(n_above):
        lab[above_idx[a]] = a + 1
    for a in range(n_above):
        idx = above_idx[a]
        for d in (1, psz, psy):
            b = lab[idx + d] - 1
            if b >= 0:
                ra = _find(parent, a)
                rb = _find(parent, b)
                if ra != rb:
                    if ra < rb:
                        parent[rb] = ra
                    else:
                        parent[ra] = rb
    sizes = np.zeros(n_above, dtype=np.int64)
    mass = np.zeros(n_above, dtype=np.float64)
    for t in range(n_above):
        a = order[t]
        root = _find(parent, a)
        sizes[root] += 1
        mass[root] += np.float64(above_val[a]) - thr
        lab[above_idx[a]] = 0
    return max_ale, sizes.max(), mass.max()


@njit(parallel=True, cache=True)
def _null_batch(
    draws, inmask_ijk, focus_exp, exp_offsets, exp_kernel,
    k_delta, k_val32, k_starts, cubes32, support, k_radius,
    org, pshape, mask_pad, thr, cut, margin, shrink, slack, S_buf, lab_buf, cand_buf, cands_buf, fijk_buf,
    out_max, out_size, out_mass,
):  # pragma: no cover - numba
    n_iter = draws.shape[0]
    n_chunks = S_buf.shape[0]
    for c in prange(n_chunks):
        lo = (n_iter * c) // n_chunks
        hi = (n_iter * (c + 1)) // n_chunks
        for it in range(lo, hi):
            mx, sz, ms = _one_iteration(
                draws[it], inmask_ijk, focus_exp, exp_offsets, exp_kernel,
                k_delta, k_val32, k_starts, cubes32, support, k_radius,
                org, pshape, mask_pad, thr, cut, margin, shrink, slack, S_buf[c],
                lab_buf[c], cand_buf[c], cands_buf[c], fijk_buf[c],
            )
            out_max[it] = mx
            out_size[it] = sz
            out_mass[it] = ms


@dataclass(eq=False)
class _NullPlan:
    """Loop invariants of a Monte Carlo run (built once per problem)."""

    k_delta: np.ndarray
    k_val32: np.ndarray
    k_starts: np.ndarray
    cubes32: np.ndarray
    support: np.ndarray
    k_radius: np.ndarray
    origin: np.ndarray
    pshape: np.ndarray
    mask_pad: np.ndarray
    cut_peak: float
    slack: float = 0.0


def _null_plan(problem: ALEProblem, tau: float = 0.0) -> _NullPlan:
    """Loop invariants; kernel windows keep only values >= ``tau`` (the core)."""
    geom = problem.mask
    pad = max(k.radius for k in problem.kernels) + 1
    # Scratch grid = bounding box of the mask plus the widest kernel (+1 so
    # face neighbours of any in-mask voxel exist); random foci are in-mask, so
    # every kernel window fits without bounds checks. A smaller grid keeps
    # both threads' scratch volumes in cache.
    lo = geom.inmask_ijk.min(axis=0).astype(np.int64) - pad
    hi = geom.inmask_ijk.max(axis=0).astype(np.int64) + pad
    pshape = (hi - lo + 1).astype(np.int64)
    psz, psy = pshape[2], pshape[1] * pshape[2]
    deltas, vals, starts = [], [], [0]
    lmax = 2 * max(k.radius for k in problem.kernels) + 1
    cubes = np.zeros((len(problem.kernels), lmax, lmax, lmax), dtype=np.float32)
    support = np.zeros(cubes.shape, dtype=np.bool_)
    radius = np.zeros(len(problem.kernels), dtype=np.int64)
    tail_max = np.zeros(len(problem.kernels))
    for q, k in enumerate(problem.kernels):
        off = k.offsets.astype(np.int64)
        core = k.values >= tau
        core[np.argmax(k.values)] = True  # the focus voxel itself is always scattered
        tail_max[q] = float(k.values[~core].max()) if (~core).any() else 0.0
        deltas.append(off[core, 0] * psy + off[core, 1] * psz + off[core, 2])
        vals.append(k.values[core].astype(np.float32))
        starts.append(starts[-1] + int(core.sum()))
        r = k.radius
        radius[q] = r
        cubes[q][tuple((off + r).T)] = k.values
        support[q][tuple((off + r).T)] = True
    mask_pad = np.zeros(tuple(pshape), dtype=np.bool_)
    ijk = geom.inmask_ijk.astype(np.int64) - lo
    mask_pad[tuple(ijk.T)] = True
    # Lower bound on every iteration's maximum ALE: the smallest kernel peak
    # among experiments with foci (the focus voxel itself, always in-mask).
    has_foci = problem.foci_per_experiment() > 0
    peaks = [problem.kernels[problem.exp_kernel[e]].peak for e in range(problem.n_experiments) if has_foci[e]]
    n_per_exp = problem.foci_per_experiment()
    slack = float(sum(n_per_exp[e] * tail_max[problem.exp_kernel[e]] for e in range(problem.n_experiments)))
    return _NullPlan(
        np.concatenate(deltas),
        np.concatenate(vals),
        np.asarray(starts, dtype=np.int64),
        cubes,
        support,
        radius,
        lo,
        pshape,
        mask_pad.reshape(-1),
        float(min(peaks)) if peaks else 0.0,
        slack,
    )


def draw_null_foci(problem: ALEProblem, n_iters: int, seed: int) -> np.ndarray:
    """Random foci for the Monte Carlo null (the in-house stream).

    Each focus of each iteration is an independent uniform draw among the
    in-mask voxels (``numpy.random.default_rng(seed)``).

    Returns
    -------
    numpy.ndarray
        ``(n_iters, n_foci)`` int64 indices into ``problem.mask.inmask_ijk``,
        focus order as in ``problem``.
    """
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    return rng.integers(0, problem.mask.n_voxels, size=(int(n_iters), problem.n_foci), dtype=np.int64)


def null_statistics(
    problem: ALEProblem,
    ale_threshold: float,
    n_iters: int | None = None,
    seed: int | None = None,
    draws: np.ndarray | None = None,
    n_threads: int | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Monte Carlo cluster null: one row per iteration.

    Parameters
    ----------
    problem : ALEProblem
    ale_threshold : float
        Cluster-forming ALE value (voxels strictly above it are supra-threshold).
    n_iters, seed : int
        Number of iterations and seed for :func:`draw_null_foci`; ignored when
        ``draws`` is given.
    draws : numpy.ndarray, optional
        Explicit random foci, ``(n_iters, n_foci)`` indices into
        ``problem.mask.inmask_ijk``. Feeding NiMARE's own draws here is how
        per-iteration equality with NiMARE is tested.
    n_threads : int, optional
        numba threads (default: all configured, ``NUMBA_NUM_THREADS``).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    pandas.DataFrame
        Columns ``max_ale`` (float32), ``max_cluster_size`` (voxels, int64),
        ``max_cluster_mass`` (float32; accumulated in float64, stored in
        float32 like NiMARE).
    """
    if draws is None:
        if n_iters is None or seed is None:
            raise ValueError("give draws, or n_iters and seed")
        draws = draw_null_foci(problem, n_iters, seed)
    draws = np.ascontiguousarray(draws, dtype=np.int64)
    if draws.ndim != 2 or draws.shape[1] != problem.n_foci:
        raise ValueError(f"draws must be (n_iters, {problem.n_foci}), got {draws.shape}")
    if draws.size and (draws.min() < 0 or draws.max() >= problem.mask.n_voxels):
        raise ValueError("draws must index in-mask voxels")
    n = draws.shape[0]
    thr = float(ale_threshold)
    # Kernel tails (values < tau) are not scattered: they add at most
    # slack = sum over foci of the largest tail value <= SLACK_SHARE * v to any
    # voxel's bound, so the candidate cuts are lowered by slack. Fewer window
    # voxels per focus, a few more candidates; exactness is unaffected.
    peak_min = min(k.peak for k in problem.kernels)
    tau = SLACK_SHARE * min(thr, peak_min) / max(problem.n_foci, 1)
    plan = _null_plan(problem, tau)
    # S is summed in float32: a sum of k non-negative terms is off by at most
    # (k - 1) * 2**-24 relative, so every cut is lowered by twice that for k = n_foci.
    shrink = 1.0 - 2.0 * max(problem.n_foci, 1) * 2.0**-24
    v = min(thr, plan.cut_peak)
    cut = (v * (1.0 - REL_MARGIN) - CANDIDATE_MARGIN) * shrink - plan.slack
    threads = int(n_threads or numba.config.NUMBA_NUM_THREADS)
    threads = max(1, min(threads, numba.config.NUMBA_NUM_THREADS))
    n_visits = int(sum(problem.kernels[problem.exp_kernel[e]].offsets.shape[0] * c
                       for e, c in enumerate(problem.foci_per_experiment())))
    psize = int(np.prod(plan.pshape))
    S_buf = np.zeros((threads, psize), dtype=np.float32)
    lab_buf = np.zeros((threads, psize), dtype=np.int32)
    cand_buf = np.empty((threads, max(n_visits, 1)), dtype=np.int64)
    cands_buf = np.empty((threads, max(n_visits, 1)), dtype=np.float32)
    fijk_buf = np.empty((threads, max(problem.n_foci, 1), 3), dtype=np.int64)
    out_max = np.zeros(n, dtype=np.float32)
    out_size = np.zeros(n, dtype=np.int64)
    out_mass = np.zeros(n, dtype=np.float64)
    inmask = problem.mask.inmask_ijk.astype(np.int64)
    focus_exp = problem.focus_exp.astype(np.int64)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="in-house Monte Carlo", unit="it")
    prev = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        for lo in range(0, n, BATCH_ITERS * threads):
            hi = min(n, lo + BATCH_ITERS * threads)
            _null_batch(
                draws[lo:hi], inmask, focus_exp, problem.exp_offsets, problem.exp_kernel,
                plan.k_delta, plan.k_val32, plan.k_starts, plan.cubes32, plan.support, plan.k_radius,
                plan.origin, plan.pshape, plan.mask_pad, thr, np.float32(cut), CANDIDATE_MARGIN, shrink, plan.slack,
                S_buf, lab_buf, cand_buf, cands_buf, fijk_buf,
                out_max[lo:hi], out_size[lo:hi], out_mass[lo:hi],
            )
            if bar is not None:
                bar.update(hi - lo)
    finally:
        numba.set_num_threads(prev)
        if bar is not None:
            bar.close()
    return pd.DataFrame(
        {
            "max_ale": out_max,
            "max_cluster_size": out_size,
            "max_cluster_mass": out_mass.astype(np.float32),
        }
    )


# ------------------------------------------------------------- observed fit
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


def jackknife(problem: ALEProblem, ale: np.ndarray, labels: np.ndarray, cluster_ids: Sequence[int]) -> pd.DataFrame:
    """Leave-one-experiment-out contribution per cluster.

    For each experiment, ALE is recomputed without it; the contribution to a
    cluster is the mean over its voxels of ``1 - ALE_without / ALE``.
    """
    geom = problem.mask
    lab_vec = labels[geom.data]
    rows = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for e, exp in enumerate(problem.experiment_ids):
            without = ale_map(problem, exclude=e)
            prop = 1 - np.nan_to_num(np.true_divide(without, ale))
            rows.append([exp] + [float(np.mean(prop[lab_vec == c])) for c in cluster_ids])
    return pd.DataFrame(rows, columns=["experiment_id"] + [f"cluster_{c}" for c in cluster_ids])


def focus_counts(problem: ALEProblem, labels: np.ndarray, cluster_ids: Sequence[int]) -> pd.DataFrame:
    """Foci of each experiment lying within one voxel of each cluster.

    Foci are placed at their unrounded voxel position; a focus counts toward a
    cluster when one of its voxels is less than one voxel (Euclidean) away.
    """
    geom = problem.mask
    inv = np.linalg.inv(geom.affine)
    offs = np.stack(np.meshgrid(*([np.arange(-1, 2)] * 3), indexing="ij"), axis=-1).reshape(-1, 3)
    rows = []
    for e, exp in enumerate(problem.experiment_ids):
        counts = dict.fromkeys(cluster_ids, 0)
        lo, hi = problem.exp_offsets[e], problem.exp_offsets[e + 1]
        for xyz in problem.foci_xyz[lo:hi]:
            pos = xyz @ inv[:3, :3].T + inv[:3, 3]
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


def numba_threads() -> int:
    """numba threads available (``NUMBA_NUM_THREADS``, default: CPU count)."""
    return int(numba.config.NUMBA_NUM_THREADS)


__all__ = [
    "ALEProblem",
    "AnalyticNull",
    "MaskGeometry",
    "ObservedFit",
    "ale_map",
    "run_inhouse",
    "analytic_null",
    "cluster_masses",
    "default_mask_path",
    "draw_null_foci",
    "fit_observed",
    "focus_counts",
    "histogram_bins",
    "jackknife",
    "label_clusters",
    "load_mask",
    "ma_map",
    "make_problem",
    "min_significant_size",
    "null_statistics",
    "null_to_p",
    "numba_threads",
    "p_from_null",
    "p_to_z",
    "significant",
    "threshold_from_null",
]


def run_inhouse(
    foci: pd.DataFrame,
    sample_sizes: Mapping[str, float],
    n_iters: int,
    seed: int,
    voxel_thresh: float = 0.001,
    cluster_alpha: float = 0.05,
    n_cores: int | None = None,
    name: str = "ale",
    contributions: bool = True,
    experiment_order: Sequence[str] | None = None,
    draws: np.ndarray | None = None,
    progress: bool = False,
) -> "ALEResult":
    """Run the whole ALE with the in-house engine; return an ``ALEResult``.

    Parameters
    ----------
    foci, sample_sizes, experiment_order
        See :func:`make_problem`.
    n_iters, seed : int
        Monte Carlo iterations and seed of the in-house random stream
        (:func:`draw_null_foci`); ``draws`` overrides both.
    voxel_thresh, cluster_alpha : float
        Cluster-forming voxel p and cluster-level FWE alpha.
    n_cores : int, optional
        numba threads for the null.
    contributions : bool
        Compute jackknife and focus-count tables for significant clusters.
    """
    from painmeta.ale.results import ALEResult, cluster_table

    t0 = time.perf_counter()
    problem = make_problem(foci, sample_sizes, experiment_order=experiment_order)
    obs = fit_observed(problem, voxel_thresh)
    t1 = time.perf_counter()
    null = null_statistics(problem, obs.ale_threshold, n_iters, seed, draws=draws, n_threads=n_cores, progress=progress)
    t2 = time.perf_counter()
    geom = problem.mask
    labels, n = label_clusters(obs.ale, obs.ale_threshold, geom)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    masses = cluster_masses(obs.ale, labels, n, obs.ale_threshold, geom)
    p_size = null_to_p(sizes, null["max_cluster_size"].to_numpy()) if n else np.zeros(0)
    p_mass = null_to_p(masses, null["max_cluster_mass"].to_numpy()) if n else np.zeros(0)
    table, relabelled = cluster_table(obs.ale, labels, n, obs.ale_threshold, geom, p_size, p_mass, masses, cluster_alpha)
    contrib: dict[str, pd.DataFrame] = {}
    sig = [int(c) for c in table.loc[table["significant"].astype(bool), "cluster_id"]] if n else []
    if contributions and sig:
        contrib["jackknife"] = jackknife(problem, obs.ale, relabelled, sig)
        contrib["focus_counter"] = focus_counts(problem, relabelled, sig)
    return ALEResult(
        name=name,
        engine="inhouse",
        experiment_ids=list(problem.experiment_ids),
        sample_sizes=dict(zip(problem.experiment_ids, problem.sample_sizes.tolist())),
        n_foci=problem.n_foci,
        fwhm=dict(zip(problem.experiment_ids, problem.fwhm.tolist())),
        mask=geom,
        ale=obs.ale,
        p=obs.p,
        z=obs.z,
        ale_threshold=obs.ale_threshold,
        voxel_thresh=voxel_thresh,
        cluster_alpha=cluster_alpha,
        null=null,
        clusters_all=table,
        label_map=relabelled,
        seed=int(seed),
        n_iters=int(len(null)),
        timings={"fit": t1 - t0, "null": t2 - t1, "total": time.perf_counter() - t0},
        contributions=contrib,
    )
