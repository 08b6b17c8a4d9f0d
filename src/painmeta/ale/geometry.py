"""Analysis mask and voxel geometry: the MNI152 2 mm brain mask and mm <-> voxel.

Only the mask's data file is used (read with nibabel); no NiMARE code runs. The
mask is the GingerALE-style MNI152 2 mm brain mask shipped in the NiMARE wheel:
91 x 109 x 91 voxels, 228,483 in the brain. mm -> voxel rounds half to even
(``np.rint``), as NiMARE 0.22.1 does.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from painmeta.errors import InputError

MASK_FILENAME = "tpl-MNI152NLin6Asym_res-02_desc-brain_mask.nii.gz"


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


__all__ = ["MASK_FILENAME", "MaskGeometry", "default_mask_path", "load_mask"]
