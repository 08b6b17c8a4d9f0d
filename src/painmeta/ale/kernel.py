"""ALE kernel: sample-size-dependent Gaussian (Eickhoff et al. 2009).

Each focus is blurred with a 3-D Gaussian whose width reflects spatial
uncertainty: between-template uncertainty (5.7 mm between matching points)
and between-subject uncertainty (11.6 mm), the latter shrinking with the
square root of the experiment's sample size::

    u_templates = 5.7  / (2 sqrt(2/pi)) * sqrt(8 ln 2)
    u_subjects  = 11.6 / (2 sqrt(2/pi)) * sqrt(8 ln 2) / sqrt(n)
    FWHM        = sqrt(u_subjects**2 + u_templates**2)          [mm]

This module is written independently of NiMARE but reproduces the
conventions of NiMARE's ``ALEKernel`` (0.22.1) bit for bit, so that both
engines give identical modelled-activation (MA) values:

* the voxel size is the geometric mean of the NIfTI zooms, computed in
  float32 as the header stores them (``sqrt(prod(zooms))``);
* sigma in voxels is ``FWHM_vox * sqrt(2) / (2 sqrt(2 ln 2))`` evaluated in
  that order;
* the kernel is a unit impulse in a 31-voxel cube filtered by a separable
  Gaussian truncated at 4 sigma (``scipy.ndimage.gaussian_filter`` defaults),
  i.e. the outer product of normalised 1-D weights;
* the cube is cropped (same extent on all axes) to the planes along the first
  axis holding values above machine epsilon, and every remaining positive
  entry is part of the support;
* MA values are stored in float32, as NiMARE stores them.

For a 2 mm grid: n = 12 gives FWHM 9.76 mm, n = 13 9.66 mm, n = 20 9.24 mm
(the review's range "9.24-9.76 mm" is n = 20 ... n = 12); the peak MA value of
an isolated n = 20 focus is 0.0084046, the review's maximum ALE.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: Between-template uncertainty (mm), Eickhoff et al. 2009.
TEMPLATE_UNCERTAINTY_MM = 5.7
#: Between-subject uncertainty (mm) for a single subject, Eickhoff et al. 2009.
SUBJECT_UNCERTAINTY_MM = 11.6
#: Side of the cube the impulse is filtered in (as NiMARE).
_CUBE = 31
#: Gaussian truncation in standard deviations (scipy.ndimage default).
_TRUNCATE = 4.0


def fwhm_from_sample_size(sample_size: float) -> float:
    """Kernel FWHM in mm for an experiment with ``sample_size`` subjects.

    Parameters
    ----------
    sample_size : float
        Number of subjects (patients entering ALE). Must be positive.

    Returns
    -------
    float
        Full width at half maximum in millimetres.

    Examples
    --------
    >>> round(fwhm_from_sample_size(20), 2), round(fwhm_from_sample_size(12), 2)
    (9.24, 9.76)
    """
    if not sample_size > 0:
        raise ValueError(f"sample size must be positive, got {sample_size!r}")
    # Operation order mirrors NiMARE's get_ale_kernel so the float64 result is identical.
    u_templates = TEMPLATE_UNCERTAINTY_MM / (2.0 * np.sqrt(2.0 / np.pi)) * np.sqrt(8.0 * np.log(2.0))
    u_subjects = (
        SUBJECT_UNCERTAINTY_MM / (2 * np.sqrt(2 / np.pi)) * np.sqrt(8 * np.log(2))
    ) / np.sqrt(sample_size)
    return float(np.sqrt(u_subjects**2 + u_templates**2))


def voxel_size_mm(zooms: tuple[float, ...] | np.ndarray) -> float:
    """Isotropic voxel size used for the kernel: ``sqrt(prod(zooms))`` in float32.

    For a 2 mm grid this is ``sqrt(8)`` rounded to float32, which is how NiMARE
    converts FWHM to voxels; keeping the float32 rounding keeps sigma identical.
    """
    z = np.asarray(zooms[:3], dtype=np.float32)
    return float(np.sqrt(np.prod(z)))


def sigma_voxels(fwhm_mm: float, zooms: tuple[float, ...] | np.ndarray = (2.0, 2.0, 2.0)) -> float:
    """Gaussian standard deviation in voxels for a FWHM in mm."""
    fwhm_vox = fwhm_mm / voxel_size_mm(zooms)
    return float(fwhm_vox * np.sqrt(2.0) / (np.sqrt(2.0 * np.log(2.0)) * 2.0))


def _gaussian_weights(sigma: float, truncate: float = _TRUNCATE) -> np.ndarray:
    """Normalised 1-D Gaussian weights, radius ``int(truncate * sigma + 0.5)``."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    return phi / phi.sum()


@dataclass(frozen=True)
class ALEKernel:
    """A sample-size-specific ALE kernel on a voxel grid.

    Attributes
    ----------
    sample_size : float or None
        Subjects the kernel was derived from (None when built from a FWHM).
    fwhm_mm : float
        Full width at half maximum in mm.
    sigma_vox : float
        Gaussian standard deviation in voxels.
    cube : numpy.ndarray
        Cropped kernel values (float64), shape ``(L, L, L)`` with ``L`` odd.
    offsets : numpy.ndarray
        ``(K, 3)`` int32 voxel offsets of the support relative to the focus.
    values : numpy.ndarray
        ``(K,)`` float32 MA values at ``offsets`` (the values every engine uses).
    """

    sample_size: float | None
    fwhm_mm: float
    sigma_vox: float
    cube: np.ndarray
    offsets: np.ndarray
    values: np.ndarray

    @property
    def radius(self) -> int:
        """Half-width of the support cube in voxels."""
        return (self.cube.shape[0] - 1) // 2

    @property
    def peak(self) -> float:
        """Largest MA value (at the focus itself), as float32 -> float."""
        return float(self.values.max())

    @property
    def cube32(self) -> np.ndarray:
        """The cube as float32 with non-support entries set to zero."""
        out = np.zeros(self.cube.shape, dtype=np.float32)
        r = self.radius
        out[tuple((self.offsets + r).T)] = self.values
        return out


def _kernel_from_sigma(sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w = _gaussian_weights(sigma)
    radius = (len(w) - 1) // 2
    half = (_CUBE - 1) // 2
    if radius > half:  # the 31-voxel cube truncates very wide kernels
        w = w[radius - half : radius + half + 1]
    # Same product order as filtering axis 0, then 1, then 2: (w_i * w_j) * w_k.
    cube = np.multiply.outer(np.multiply.outer(w, w), w)
    eps = np.spacing(1)
    planes = np.nonzero((cube > eps).any(axis=(1, 2)))[0]
    lo, hi = int(planes.min()), int(planes.max())
    cube = cube[lo : hi + 1, lo : hi + 1, lo : hi + 1]
    centre = np.floor(np.array(cube.shape) / 2.0).astype(np.int32)
    idx = np.array(np.nonzero(cube > 0), dtype=np.int32)
    offsets = np.ascontiguousarray((idx - centre[:, None]).T, dtype=np.int32)
    values = cube[tuple(idx)].astype(np.float32)
    return cube, offsets, values


@lru_cache(maxsize=256)
def _cached_kernel(sample_size: float | None, fwhm: float | None, zooms: tuple[float, ...]) -> ALEKernel:
    if sample_size is not None:
        fwhm = fwhm_from_sample_size(sample_size)
    assert fwhm is not None
    sigma = sigma_voxels(fwhm, zooms)
    cube, offsets, values = _kernel_from_sigma(sigma)
    for arr in (cube, offsets, values):
        arr.setflags(write=False)
    return ALEKernel(sample_size, float(fwhm), sigma, cube, offsets, values)


def ale_kernel(
    sample_size: float | None = None,
    fwhm: float | None = None,
    zooms: tuple[float, ...] | np.ndarray = (2.0, 2.0, 2.0),
) -> ALEKernel:
    """Build (and cache) the ALE kernel for a sample size or a fixed FWHM.

    Parameters
    ----------
    sample_size : float, optional
        Subjects in the experiment; the FWHM follows Eickhoff et al. 2009.
    fwhm : float, optional
        Fixed FWHM in mm (mutually exclusive with ``sample_size``).
    zooms : sequence of float
        Voxel dimensions in mm (default 2 mm isotropic).

    Returns
    -------
    ALEKernel
    """
    if (sample_size is None) == (fwhm is None):
        raise ValueError("give exactly one of sample_size and fwhm")
    key_zooms = tuple(float(z) for z in np.asarray(zooms, dtype=np.float32)[:3])
    return _cached_kernel(
        None if sample_size is None else float(sample_size),
        None if fwhm is None else float(fwhm),
        key_zooms,
    )


def _shifted_weights(sigma: float, shift: float, truncate: float = _TRUNCATE) -> tuple[np.ndarray, np.ndarray]:
    """1-D Gaussian weights centred ``shift`` voxels off the voxel centre.

    The window keeps the integer offsets ``j`` with ``|j - shift| <= radius + 1/2``
    (``radius = int(truncate * sigma + 0.5)`` as for the centred kernel), i.e. the
    same truncation distance measured from the true centre; the weights are
    normalised to sum to one over the window. ``shift = 0`` gives exactly
    :func:`_gaussian_weights` (same window, same arithmetic, same bits).

    Returns
    -------
    j : numpy.ndarray
        Integer offsets of the window.
    w : numpy.ndarray
        Normalised weights (float64).
    """
    radius = int(truncate * float(sigma) + 0.5)
    j = np.arange(-radius - 1, radius + 2)
    j = j[np.abs(j - shift) <= radius + 0.5]
    x = j - float(shift)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    return j, phi / phi.sum()


@lru_cache(maxsize=4096)
def _cached_subvoxel(sigma: float, shift: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    axes = [_shifted_weights(sigma, d) for d in shift]
    (j0, w0), (j1, w1), (j2, w2) = axes
    # Same product order as the centred kernel: (w_i * w_j) * w_k.
    cube = np.multiply.outer(np.multiply.outer(w0, w1), w2)
    eps = np.spacing(1)
    # Crop each axis to the planes holding values above machine epsilon (the
    # centred kernel's rule, applied per axis because the shifts differ).
    keep = []
    for axis, (j, w) in enumerate(axes):
        others = [a[1].max() for b, a in enumerate(axes) if b != axis]
        keep.append(np.nonzero(w * others[0] * others[1] > eps)[0])
    if len(set(shift)) == 1:
        # Identical axes: one extent for all, exactly as the centred kernel is cropped.
        planes = np.nonzero((cube > eps).any(axis=(1, 2)))[0]
        keep = [planes, planes, planes]
    sub = cube[np.ix_(keep[0], keep[1], keep[2])]
    idx = np.array(np.nonzero(sub > 0))
    offsets = np.stack([j0[keep[0]][idx[0]], j1[keep[1]][idx[1]], j2[keep[2]][idx[2]]], axis=1).astype(np.int32)
    values = sub[tuple(idx)].astype(np.float32)
    offsets.setflags(write=False)
    values.setflags(write=False)
    return offsets, values


def subvoxel_kernel(kernel: ALEKernel, shift: "tuple[float, float, float] | np.ndarray") -> tuple[np.ndarray, np.ndarray]:
    """The kernel of ``kernel``'s width centred at a sub-voxel position (``focus_placement: exact``).

    GingerALE centres each Gaussian at the exact reported coordinate instead of
    the nearest voxel centre. Here the Gaussian of the same sigma is centred
    ``shift`` voxels (per axis, each in [-1/2, 1/2]) away from the focus's
    nearest voxel and sampled at the voxel centres; each axis is truncated at
    the same distance from the true centre and normalised to sum to one, so the
    total MA mass on an unbounded grid is exactly one for every shift (as for
    the centred kernel). ``shift = (0, 0, 0)`` reproduces the centred kernel
    bit for bit.

    Parameters
    ----------
    kernel : ALEKernel
        Centred kernel (gives sigma).
    shift : sequence of 3 floats
        Focus position minus its nearest voxel centre, in voxels.

    Returns
    -------
    offsets : numpy.ndarray
        ``(K, 3)`` int32 offsets relative to the nearest voxel.
    values : numpy.ndarray
        ``(K,)`` float32 MA values.
    """
    d = tuple(float(v) for v in np.asarray(shift, dtype=np.float64).reshape(3))
    if any(abs(v) > 0.5 + 1e-9 for v in d):
        raise ValueError(f"sub-voxel shift must lie within [-0.5, 0.5] per axis, got {d}")
    if d == (0.0, 0.0, 0.0):
        return kernel.offsets, kernel.values
    return _cached_subvoxel(float(kernel.sigma_vox), d)


def fwhm_table(sample_sizes: dict[str, float] | list[float]) -> "dict[str, float] | list[float]":
    """FWHM (mm) for each sample size; keeps the container type (dict or list)."""
    if isinstance(sample_sizes, dict):
        return {k: fwhm_from_sample_size(v) for k, v in sample_sizes.items()}
    return [fwhm_from_sample_size(v) for v in sample_sizes]
