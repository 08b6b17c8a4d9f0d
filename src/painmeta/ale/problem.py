"""An ALE problem: foci, sample sizes and kernels of one model, its MA maps and the ALE union.

1. **MA maps** (:func:`ma_map`): every focus is replaced by its experiment's
   sample-size kernel (:mod:`painmeta.ale.kernel`); within an experiment the
   maps of its foci are combined by the voxel-wise maximum (Turkeltaub et al.
   2012, non-additive), so one experiment cannot create convergence alone.
2. **ALE** (:func:`ale_map`): the union ``1 - prod_e (1 - MA_e)`` across
   experiments, evaluated as ``1 - exp(sum_e log1p(-MA_e))``.

**Focus placement** (``focus_placement``): ``"voxel"`` (default) centres each
kernel on the focus's nearest voxel (``np.rint``, half to even), as NiMARE
0.22.1 does, so the engines agree bit for bit. ``"exact"`` centres the Gaussian
at the reported coordinate itself, as GingerALE does
(:func:`painmeta.ale.kernel.subvoxel_kernel`): a focus on a voxel centre gets
exactly the ``voxel`` kernel, a focus half-way between voxels a kernel
symmetric about that point, and every kernel keeps unit total mass.

Conventions matched to NiMARE 0.22.1 so that engines agree exactly: MA values
in float32; the observed ALE takes ``log1p`` in float32 (as NiMARE's sparse
path does), accumulates in float64 in experiment order and stores ALE as
float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import nibabel as nib
import numpy as np
import pandas as pd
from numba import njit

from painmeta.ale.geometry import MaskGeometry, load_mask
from painmeta.ale.kernel import ALEKernel, ale_kernel, subvoxel_kernel
from painmeta.errors import InputError

#: Where a focus's kernel is centred (see the module docstring).
FOCUS_PLACEMENTS = ("voxel", "exact")


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
    focus_placement: str = "voxel"
    foci_shift: np.ndarray | None = None  # (F, 3) float64 voxels, focus - nearest voxel centre

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
    focus_placement: str = "voxel",
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
    focus_placement : {"voxel", "exact"}
        Kernel centre: the nearest voxel (NiMARE) or the exact coordinate
        (GingerALE); see the module docstring.

    Raises
    ------
    InputError
        Missing columns, non-finite coordinates, or an experiment without a
        positive sample size.
    """
    if focus_placement not in FOCUS_PLACEMENTS:
        raise InputError(f"focus_placement must be one of {FOCUS_PLACEMENTS}, got {focus_placement!r}")
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
    shift = None
    if focus_placement == "exact":
        inv = np.linalg.inv(geom.affine)
        shift = xyz @ inv[:3, :3].T + inv[:3, 3] - ijk
    return ALEProblem(order, n, xyz, ijk, focus_exp, offsets, kernels, exp_kernel, geom, focus_placement, shift)


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


def _exact_ma(problem: ALEProblem, exp_index: int) -> tuple[np.ndarray, np.ndarray]:
    """MA map of one experiment with every kernel centred at its exact coordinate.

    Plain numpy (observed maps only: a few hundred foci at most); the Monte
    Carlo null never calls it.
    """
    geom = problem.mask
    kern = problem.kernels[problem.exp_kernel[exp_index]]
    assert problem.foci_shift is not None
    shape = np.asarray(geom.shape)
    strides = np.array([shape[1] * shape[2], shape[2], 1])
    ma = np.zeros(geom.n_voxels, dtype=np.float32)
    cols_all = []
    for f in range(int(problem.exp_offsets[exp_index]), int(problem.exp_offsets[exp_index + 1])):
        offsets, values = subvoxel_kernel(kern, problem.foci_shift[f])
        ijk = problem.foci_ijk[f].astype(np.int64) + offsets
        inb = np.all((ijk >= 0) & (ijk < shape), axis=1)
        cols = geom.flat_to_masked[ijk[inb] @ strides]
        vals = values[inb]
        keep = cols >= 0
        cols, vals = cols[keep], vals[keep]
        np.maximum.at(ma, cols, vals)  # Turkeltaub: maximum over the experiment's foci
        cols_all.append(cols)
    cols = np.unique(np.concatenate(cols_all)) if cols_all else np.zeros(0, dtype=np.int64)
    return ma, cols.astype(np.int64)


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
    if problem.focus_placement == "exact":
        return _exact_ma(problem, exp_index)
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


__all__ = ["FOCUS_PLACEMENTS", "ALEProblem", "ale_map", "ma_map", "make_problem"]
