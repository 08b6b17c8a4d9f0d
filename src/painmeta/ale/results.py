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
from painmeta.ale.inference import (
    INFERENCE_METHODS,
    METHOD_SHORT,
    cluster_p_map,
    fwe_cutoff,
    min_significant_size,
    significant,
)

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
    inference : {"cluster_size", "cluster_mass", "voxel"}
        The primary inference: it decides ``clusters_all.significant``, the
        surviving clusters (:attr:`clusters`) and ``clusters.nii.gz``.
    focus_placement : {"voxel", "exact"}
        Where the observed kernels were centred (:mod:`painmeta.ale.problem`).
    p_vfwe : numpy.ndarray or None
        Masked voxel-level FWE p map (Monte Carlo null of the maximum ALE),
        computed by the engine.
    pooled : dict
        Pooled experiment id -> the contrasts pooled into it (subject groups).
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
    inference: str = "cluster_size"
    focus_placement: str = "voxel"
    p_vfwe: np.ndarray | None = None
    pooled: dict[str, list[str]] = field(default_factory=dict)

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
    def cluster_mass_threshold(self) -> float | None:
        """Cluster mass that FWE ``p < alpha`` requires (a cluster must exceed it)."""
        return fwe_cutoff(self.null["max_cluster_mass"].to_numpy(), self.cluster_alpha)

    @property
    def vfwe_ale_threshold(self) -> float | None:
        """ALE a voxel must exceed for voxel-level FWE ``p < alpha`` (:func:`~painmeta.ale.inference.fwe_cutoff`)."""
        return fwe_cutoff(self.null["max_ale"].to_numpy(), self.cluster_alpha)

    def surviving(self, method: str | None = None) -> np.ndarray:
        """Masked boolean vector of voxels that survive FWE under ``method`` (default: the primary).

        ``cluster_size`` / ``cluster_mass``: every voxel of a cluster whose size /
        mass FWE p is below alpha. ``voxel``: every voxel whose voxel-level FWE p
        is below alpha.
        """
        method = method or self.inference
        if method not in INFERENCE_METHODS:
            raise ValueError(f"method must be one of {INFERENCE_METHODS}, got {method!r}")
        if method == "voxel":
            if self.p_vfwe is None:
                return np.zeros(self.mask.n_voxels, dtype=bool)
            return np.asarray(significant(self.p_vfwe, self.cluster_alpha), dtype=bool)
        col = f"significant_{METHOD_SHORT[method]}"
        if self.clusters_all.empty:
            return np.zeros(self.mask.n_voxels, dtype=bool)
        keep = self.clusters_all.loc[self.clusters_all[col].astype(bool), "cluster_id"].astype(int).tolist()
        return np.isin(self.label_map[self.mask.data], keep)

    def fwe_p(self, method: str) -> np.ndarray:
        """Masked FWE p map under ``method``: cluster p for cluster voxels (1 elsewhere) or voxel p."""
        if method == "voxel":
            return np.ones(self.mask.n_voxels) if self.p_vfwe is None else np.asarray(self.p_vfwe, dtype=np.float64)
        col = f"p_fwe_{METHOD_SHORT[method]}"
        lab = self.label_map[self.mask.data]
        if self.clusters_all.empty:
            return np.ones(self.mask.n_voxels)
        p = np.ones(int(self.clusters_all["cluster_id"].max()))
        p[self.clusters_all["cluster_id"].astype(int).to_numpy() - 1] = self.clusters_all[col].to_numpy(float)
        return cluster_p_map(lab, p)

    @property
    def significant_label_map(self) -> np.ndarray:
        """Label map restricted to the voxels surviving the primary inference."""
        keep = self.mask.unmask(self.surviving()).astype(bool)
        return np.where(keep, self.label_map, 0).astype(np.int32)

    @property
    def maps(self) -> dict[str, nib.Nifti1Image]:
        """NIfTI images.

        ``ale``, ``p``, ``z`` (unthresholded; p and z from the analytic null),
        ``clusters`` (labels of the voxels surviving the primary inference),
        and for each inference method ``ale_fwe-<size|mass|voxel>`` (ALE where
        the voxel survives that FWE correction, 0 elsewhere) and
        ``logp_fwe-<size|mass|voxel>`` (-log10 of the FWE p; cluster maps are
        0 outside supra-threshold clusters).
        """
        m = self.mask
        out = {
            "ale": m.to_img(self.ale, np.float32),
            "p": m.to_img(self.p, np.float32),
            "z": m.to_img(self.z, np.float32),
        }
        img = nib.Nifti1Image(self.significant_label_map, m.affine)
        img.header.set_data_dtype(np.int32)
        out["clusters"] = img
        for method in INFERENCE_METHODS:
            short = METHOD_SHORT[method]
            keep = self.surviving(method)
            out[f"ale_fwe-{short}"] = m.to_img(np.where(keep, self.ale, 0).astype(np.float32), np.float32)
            with np.errstate(divide="ignore"):
                logp = -np.log10(np.clip(self.fwe_p(method), np.finfo(np.float64).tiny, 1.0))
            out[f"logp_fwe-{short}"] = m.to_img(np.maximum(logp, 0.0).astype(np.float32), np.float32)
        return out

    def summary(self) -> dict[str, Any]:
        """The numbers the review reports, plus provenance."""
        ale = np.asarray(self.ale, dtype=np.float64)
        k = self.cluster_size_threshold
        vox = self.mask.voxel_volume_mm3
        fw = list(self.fwhm.values())
        vfwe = self.vfwe_ale_threshold
        mass_thr = self.cluster_mass_threshold
        table = self.clusters_all
        n_sig = {
            short: int(table[f"significant_{short}"].astype(bool).sum()) if len(table) else 0
            for short in METHOD_SHORT.values()
        }
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
            "cluster_mass_threshold": mass_thr,
            "inference": self.inference,
            "focus_placement": self.focus_placement,
            "n_clusters_supra": int(len(self.clusters_all)),
            "n_clusters_significant": int(len(self.clusters)),
            "n_clusters_significant_size": n_sig["size"],
            "n_clusters_significant_mass": n_sig["mass"],
            "n_clusters_significant_voxel": n_sig["voxel"],
            "n_voxels_vfwe": int(self.surviving("voxel").sum()),
            "pooled": {k: list(v) for k, v in self.pooled.items()},
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

        Files: every image of :attr:`maps` as ``<key>.nii.gz`` (``ale``, ``p``,
        ``z``, ``clusters``, ``ale_fwe-{size,mass,voxel}``,
        ``logp_fwe-{size,mass,voxel}``), ``clusters.csv`` (clusters surviving
        the primary inference; header only when none survives),
        ``clusters_all.csv``, ``null.csv``, ``summary.json`` and, when
        computed, ``contrib_<kind>.csv``.
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

