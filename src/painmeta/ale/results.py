"""Engine-neutral ALE result: maps, cluster tables, null table, summary, files.

Both engines (:mod:`painmeta.ale.inhouse`, :mod:`painmeta.ale.nimare_engine`)
return an :class:`ALEResult`, so the CLI, the notebook and the cross-check
treat them alike. Each engine computes its own numbers (ALE, p, threshold,
null, cluster p-values); this module only formats them.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from painmeta.ale.geometry import MaskGeometry
from painmeta.ale.inference import min_significant_size

NULL_COLUMNS = ["max_ale", "max_cluster_size", "max_cluster_mass"]


def versions() -> dict[str, str]:
    """Versions of the packages an ALE result depends on."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("painmeta", "nimare", "numpy", "scipy", "numba", "nibabel", "pandas", "nilearn"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:  # pragma: no cover
            out[pkg] = "not installed"
    return out


@dataclass(eq=False)
class ALEResult:
    """Result of one ALE model run by one engine.

    Attributes
    ----------
    name, engine : str
        Model name and engine (``"nimare"`` or ``"inhouse"``).
    experiment_ids : list of str
        Experiments in the engine's order.
    sample_sizes : dict
        Experiment -> subjects (n_ale).
    n_foci : int
    fwhm : dict
        Experiment -> kernel FWHM (mm).
    mask : MaskGeometry
    ale, p, z : numpy.ndarray
        Masked vectors (ALE float32, p and z float64).
    ale_threshold : float
        Cluster-forming ALE value (from the analytic null at ``voxel_thresh``).
    voxel_thresh, cluster_alpha : float
    null : pandas.DataFrame
        One row per Monte Carlo iteration (:data:`NULL_COLUMNS`).
    clusters_all : pandas.DataFrame
        Every supra-threshold cluster (:data:`CLUSTER_COLUMNS`).
    label_map : numpy.ndarray
        3-D int32 labels matching ``clusters_all.cluster_id``.
    seed, n_iters : int
    timings : dict
        Seconds per step (``fit``, ``null``, ``total``).
    contributions : dict of DataFrame
        ``jackknife`` and ``focus_counter`` tables (rows = experiments,
        columns = significant clusters), when computed.
    native : object
        Engine-specific object (NiMARE's corrected ``MetaResult``), or None.
    notes : list of str
    """

    name: str
    engine: str
    experiment_ids: list[str]
    sample_sizes: dict[str, float]
    n_foci: int
    fwhm: dict[str, float]
    mask: MaskGeometry
    ale: np.ndarray
    p: np.ndarray
    z: np.ndarray
    ale_threshold: float
    voxel_thresh: float
    cluster_alpha: float
    null: pd.DataFrame
    clusters_all: pd.DataFrame
    label_map: np.ndarray
    seed: int
    n_iters: int
    timings: dict[str, float] = field(default_factory=dict)
    contributions: dict[str, pd.DataFrame] = field(default_factory=dict)
    native: Any = None
    notes: list[str] = field(default_factory=list)

    # -- derived ---------------------------------------------------------
    @property
    def clusters(self) -> pd.DataFrame:
        """Clusters surviving cluster-level FWE (may be empty: a result too)."""
        if self.clusters_all.empty:
            return self.clusters_all.copy()
        return self.clusters_all[self.clusters_all["significant"].astype(bool)].reset_index(drop=True)

    @property
    def cluster_size_threshold(self) -> int | None:
        """Smallest cluster (voxels) with FWE p < alpha under the Monte Carlo null."""
        return min_significant_size(self.null["max_cluster_size"].to_numpy(), self.cluster_alpha)

    @property
    def significant_label_map(self) -> np.ndarray:
        """Label map restricted to significant clusters."""
        keep = set(self.clusters["cluster_id"].astype(int))
        out = np.where(np.isin(self.label_map, list(keep)), self.label_map, 0)
        return out.astype(np.int32)

    @property
    def maps(self) -> dict[str, nib.Nifti1Image]:
        """NIfTI images: ``ale``, ``p``, ``z`` (unthresholded) and ``clusters`` (labels)."""
        m = self.mask
        out = {
            "ale": m.to_img(self.ale, np.float32),
            "p": m.to_img(self.p, np.float32),
            "z": m.to_img(self.z, np.float32),
        }
        img = nib.Nifti1Image(self.significant_label_map, m.affine)
        img.header.set_data_dtype(np.int32)
        out["clusters"] = img
        return out

    def summary(self) -> dict[str, Any]:
        """The numbers the review reports, plus provenance."""
        ale = np.asarray(self.ale, dtype=np.float64)
        k = self.cluster_size_threshold
        vox = self.mask.voxel_volume_mm3
        fw = list(self.fwhm.values())
        vfwe = float(np.quantile(self.null["max_ale"], 1 - self.cluster_alpha)) if len(self.null) else float("nan")
        return {
            "model": self.name,
            "engine": self.engine,
            "n_experiments": len(self.experiment_ids),
            "n_foci": int(self.n_foci),
            "n_subjects": int(sum(self.sample_sizes.values())),
            "fwhm_min_mm": float(min(fw)),
            "fwhm_max_mm": float(max(fw)),
            "ale_min": float(ale.min()),
            "ale_max": float(ale.max()),
            "p_min": float(np.min(self.p)),
            "z_max": float(np.max(self.z)),
            "voxel_thresh": float(self.voxel_thresh),
            "cluster_forming_ale": float(self.ale_threshold),
            "cluster_alpha": float(self.cluster_alpha),
            "cluster_size_threshold_vox": k,
            "cluster_size_threshold_mm3": None if k is None else float(k * vox),
            "vfwe_ale_threshold": vfwe,
            "n_clusters_supra": int(len(self.clusters_all)),
            "n_clusters_significant": int(len(self.clusters)),
            "n_iters": int(self.n_iters),
            "seed": int(self.seed),
            "mask_voxels": int(self.mask.n_voxels),
            "run_time_s": float(self.timings.get("total", float("nan"))),
            "null_time_s": float(self.timings.get("null", float("nan"))),
            "versions": versions(),
            "notes": list(self.notes),
        }

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write maps, tables and ``summary.json`` to ``out_dir``.

        Files: ``ale.nii.gz``, ``p.nii.gz``, ``z.nii.gz``, ``clusters.nii.gz``,
        ``clusters.csv`` (significant clusters; header only when none
        survives), ``clusters_all.csv``, ``null.csv``, ``summary.json`` and,
        when computed, ``contrib_<kind>.csv``.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        for key, img in self.maps.items():
            paths[key] = out / f"{key}.nii.gz"
            nib.save(img, paths[key])
        paths["clusters_csv"] = out / "clusters.csv"
        self.clusters.to_csv(paths["clusters_csv"], index=False)
        paths["clusters_all_csv"] = out / "clusters_all.csv"
        self.clusters_all.to_csv(paths["clusters_all_csv"], index=False)
        paths["null_csv"] = out / "null.csv"
        null = self.null.copy()
        null.insert(0, "iteration", np.arange(len(null)))
        null.to_csv(paths["null_csv"], index=False, float_format="%.9g")
        for kind, table in self.contributions.items():
            paths[f"contrib_{kind}"] = out / f"contrib_{kind}.csv"
            table.to_csv(paths[f"contrib_{kind}"], index=False)
        paths["summary"] = out / "summary.json"
        paths["summary"].write_text(json.dumps(_jsonable(self.summary()), indent=2) + "\n", encoding="utf-8")
        return paths


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj

