"""Fail-safe N of ALE clusters (Acar et al. 2018): how many null experiments a cluster survives.

A *file drawer* is a sequence of null experiments, each built like the real
ones but without convergence (as in Acar et al.'s R code and Enge et al. 2021):
its sample size and its number of foci are drawn with replacement from the
real experiments, its foci are distinct voxels drawn uniformly from the
sample space (see :data:`SAMPLE_SPACES`). Null experiment ``k`` of a drawer
is the same whatever ``k_max`` is, so the analyses with ``k`` and ``k + 1``
null experiments are nested, as in the papers.

For each significant cluster, survival at ``k`` means: the cluster's peak
voxel (of the original analysis) lies in a cluster that is significant at
cluster-level FWE after adding the drawer's first ``k`` null experiments
(refit: ALE, analytic null, cluster-forming threshold and its own Monte Carlo
null, in-house engine). The cluster's **fail-safe N** in one drawer is the
largest ``m <= k_max`` such that it survives every ``k = 1..m`` (0 if it fails
at ``k = 1``; ``k_max`` if it never fails). Enge et al.'s code counts one more
(``m + 1``: its voxel map starts at 1 for the original analysis) and stops at
``k_max - 1``; :func:`enge_convention` converts.

Cost. Every ``k`` needs its own Monte Carlo null (the null depends on the
experiments), so scanning ``k = 1..k_max`` costs ``k_max`` refits per drawer.
``method="bisect"`` assumes that survival, once lost, is not regained as more
null experiments are added, and finds every cluster's last surviving ``k`` by
bisection over one shared set of refits (``O(n_clusters log k_max)``). The
assumption fails only where Monte Carlo noise makes survival flicker near the
boundary; the bisection's answer is then lowered to the first failure that
any of the drawer's refits saw (:func:`first_failure_bound`), an upper bound
on the exact value. ``method="scan"`` is the exact first-failure rule, and
the test suite compares the two; :meth:`FSNResult.non_monotone` lists the
flicker the refits saw.
"""

from __future__ import annotations

import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage

from painmeta.ale.inference import (
    METHOD_SHORT,
    cluster_masses,
    fit_observed,
    label_clusters,
    null_to_p,
    significant,
)
from painmeta.ale.problem import ALEProblem, make_problem

#: Where null foci are drawn. ``"mask"``: every in-mask voxel of the analysis
#: mask (MNI152 2 mm, 228,483 voxels). This is what Enge et al. 2021 drew from:
#: their code asks NiMARE 0.0.9 for ``get_template("ale_2mm", mask="gm")``, and
#: that version returns the same GingerALE brain mask for every ``mask`` value of
#: ``ale_2mm`` (checked against NiMARE 0.0.9's source and its mask file: identical
#: voxels). Acar et al. drew from GingerALE's grey-matter template (Grey10), which
#: NiMARE 0.22.1 does not ship; a grey-matter space puts null foci where real
#: foci are (cortex), so null experiments overlap real clusters more often and
#: FSN comes out lower than with the brain mask.
SAMPLE_SPACES = ("mask",)
#: Columns of the FSN table (one row per drawer and cluster).
FSN_COLUMNS = ["drawer", "cluster_id", "fail_safe_n", "censored", "n_refits"]
#: Columns of the refits' survival table (``fsn_refits.csv``; ``point`` instead of ``cluster_id`` for points).
EVALUATION_COLUMNS = ["drawer", "k", "cluster_id", "significant"]
#: Columns of the FSN table at further points (one row per drawer and point; ``k_max`` for conversions).
POINT_COLUMNS = ["drawer", "point", "x", "y", "z", "fail_safe_n", "censored", "k_max"]


@dataclass(eq=False)
class NullDrawer:
    """``k_max`` null experiments: foci (MNI mm) and sample sizes, ids ``null0001`` ..."""

    foci: pd.DataFrame
    sample_sizes: dict[str, int]
    order: list[str]

    def first(self, k: int) -> tuple[pd.DataFrame, dict[str, int], list[str]]:
        ids = self.order[:k]
        keep = self.foci["experiment_id"].isin(ids)
        return self.foci[keep], {e: self.sample_sizes[e] for e in ids}, ids


def null_drawer(problem: ALEProblem, k_max: int, seed: int | np.random.SeedSequence) -> NullDrawer:
    """Draw one file drawer of ``k_max`` null experiments shaped like ``problem``'s.

    Sample sizes and foci counts are resampled with replacement from the real
    experiments; foci are distinct in-mask voxels (voxel centres), uniform.
    """
    rng = np.random.default_rng(seed)
    sizes = problem.sample_sizes.astype(int)
    counts = problem.foci_per_experiment().astype(int)
    n_vox = problem.mask.n_voxels
    rows = []
    sample_sizes: dict[str, int] = {}
    order = []
    width = max(4, len(str(k_max)))
    for i in range(int(k_max)):
        eid = f"null{i + 1:0{width}d}"
        order.append(eid)
        sample_sizes[eid] = int(sizes[rng.integers(len(sizes))])
        n_foci = int(counts[rng.integers(len(counts))])
        vox = rng.choice(n_vox, size=n_foci, replace=False)
        xyz = problem.mask.vox2mm(problem.mask.inmask_ijk[vox])
        rows.extend((eid, *p) for p in xyz)
    foci = pd.DataFrame(rows, columns=["experiment_id", "x", "y", "z"])
    return NullDrawer(foci, sample_sizes, order)


def surviving(
    foci: pd.DataFrame,
    sample_sizes: Mapping[str, float],
    order: Sequence[str],
    peaks_ijk: np.ndarray,
    n_iters: int,
    seed: int,
    voxel_thresh: float = 0.001,
    cluster_alpha: float = 0.05,
    n_threads: int | None = None,
    inference: str = "cluster_size",
    focus_placement: str = "voxel",
    executor: Any = None,
) -> np.ndarray:
    """Refit (in-house engine) and tell, per peak voxel, whether it lies in a significant cluster.

    Significance as the original analysis judged it (``inference``: cluster
    size, cluster mass, or voxel level - the cluster holds a voxel whose ALE
    reaches voxel-level FWE ``p < cluster_alpha``) against the refit's own Monte
    Carlo null, with the original focus placement.
    """
    from painmeta.ale.inhouse import null_statistics

    problem = make_problem(foci, sample_sizes, experiment_order=list(order), focus_placement=focus_placement)
    obs = fit_observed(problem, voxel_thresh)
    labels, n = label_clusters(obs.ale, obs.ale_threshold, problem.mask)
    peak_labels = labels[tuple(np.asarray(peaks_ijk).T)]
    if n == 0 or not np.any(peak_labels):
        return np.zeros(len(peaks_ijk), dtype=bool)
    null = null_statistics(problem, obs.ale_threshold, n_iters, seed, n_threads=n_threads, executor=executor)
    p = np.ones(n + 1)
    if inference == "cluster_size":
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        p[1:] = null_to_p(sizes[1:], null["max_cluster_size"].to_numpy())
    elif inference == "cluster_mass":
        masses = cluster_masses(obs.ale, labels, n, obs.ale_threshold, problem.mask)
        p[1:] = null_to_p(masses, null["max_cluster_mass"].to_numpy())
    elif inference == "voxel":
        vol = problem.mask.unmask(np.asarray(obs.ale, dtype=np.float32))
        peaks = np.asarray(ndimage.maximum(vol, labels, index=np.arange(1, n + 1)), dtype=np.float32)
        p[1:] = null_to_p(peaks, null["max_ale"].to_numpy())
    else:
        raise ValueError(f"unknown inference {inference!r}")
    ok = significant(p, cluster_alpha)
    ok[0] = False
    return ok[peak_labels]


@dataclass(eq=False)
class FSNResult:
    """Fail-safe N per drawer and cluster, and its summary."""

    table: pd.DataFrame  # FSN_COLUMNS
    k_max: int
    n_drawers: int
    method: str
    n_iters: int
    seed: int
    timings: dict[str, float] = field(default_factory=dict)
    evaluations: pd.DataFrame | None = None  # drawer, k, cluster survival
    cluster_alpha: float | None = None  # significance level of the refits
    # Fail-safe N at further points (for example a paper's published peaks), from the same refits:
    # POINT_COLUMNS, one row per drawer and point.
    points: pd.DataFrame | None = None
    point_evaluations: pd.DataFrame | None = None  # drawer, k, point, significant

    def save(self, folder: "str | Path") -> None:
        """Write ``fsn.csv`` (per drawer), ``fsn_summary.csv``, ``fsn_refits.csv`` (every refit's survival)
        and, when points were asked for, ``fsn_points.csv``."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        self.table.to_csv(out / "fsn.csv", index=False)
        summ = self.summary()
        summ.insert(1, "k_max", self.k_max)
        summ.to_csv(out / "fsn_summary.csv", index=False)
        if self.evaluations is not None:
            self.evaluations.to_csv(out / "fsn_refits.csv", index=False)
        if self.points is not None:
            self.points.to_csv(out / "fsn_points.csv", index=False)
        if self.point_evaluations is not None:
            self.point_evaluations.to_csv(out / "fsn_points_refits.csv", index=False)

    def non_monotone(self, points: bool = False) -> pd.DataFrame:
        """Drawer-cluster (or, with ``points``, drawer-point) pairs whose refits contradict the bisection.

        A cluster that is not significant after ``k1`` null experiments but is again after some ``k2 > k1``
        (Monte Carlo noise near the boundary): there the bisection's answer can differ from the scan's
        first failure. Columns ``drawer``, ``cluster_id`` (or ``point``), ``lost_at``, ``back_at``; empty
        when every evaluated sequence is monotone.
        """
        key = "point" if points else "cluster_id"
        rows = []
        ev = self.point_evaluations if points else self.evaluations
        if ev is not None and len(ev):
            for (d, c), g in ev.sort_values("k").groupby(["drawer", key], sort=True):
                sig = g["significant"].astype(bool).to_numpy()
                ks = g["k"].to_numpy()
                lost = np.flatnonzero(~sig)
                if len(lost) and sig[lost[0]:].any():
                    rows.append({"drawer": d, key: c, "lost_at": int(ks[lost[0]]),
                                 "back_at": int(ks[lost[0]:][sig[lost[0]:]][0])})
        return pd.DataFrame(rows, columns=["drawer", key, "lost_at", "back_at"])

    def summary(self) -> pd.DataFrame:
        """Per cluster: mean, SD, SE and normal 95% CI over drawers (Enge's summary)."""
        g = self.table.groupby("cluster_id")["fail_safe_n"]
        out = g.agg(["mean", "count", "std", "min", "max"]).reset_index()
        out["se"] = out["std"] / np.sqrt(out["count"])
        out["ci_lower"] = out["mean"] - 1.959964 * out["se"]
        out["ci_upper"] = out["mean"] + 1.959964 * out["se"]
        out["censored_drawers"] = self.table.groupby("cluster_id")["censored"].sum().to_numpy()
        return out


def _fsn_one_drawer(
    evaluate: Callable[[int], np.ndarray], n_clusters: int, k_max: int, method: str
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Largest ``m`` with survival at all ``k <= m`` (scan) or at the bisection boundary."""
    cache: dict[int, np.ndarray] = {}

    def surv(k: int) -> np.ndarray:
        if k not in cache:
            cache[k] = evaluate(k)
        return cache[k]

    if method == "scan":
        fsn = np.full(n_clusters, k_max)
        alive = np.ones(n_clusters, dtype=bool)
        for k in range(1, k_max + 1):
            s = surv(k)
            newly = alive & ~s
            fsn[newly] = k - 1
            alive &= s
            if not alive.any():
                break
        return fsn, cache
    # bisection: lo = last k known to survive, hi = first k known to fail (k_max + 1 = never)
    lo = np.zeros(n_clusters, dtype=np.int64)
    hi = np.full(n_clusters, k_max + 1, dtype=np.int64)
    while True:
        open_ = hi - lo > 1
        if not open_.any():
            break
        # evaluate the midpoint of the widest open interval; every cluster learns from it
        c = int(np.argmax(np.where(open_, hi - lo, -1)))
        k = int((lo[c] + hi[c]) // 2)
        s = surv(k)
        upd_lo = s & (k > lo) & (k < hi)
        upd_hi = ~s & (k < hi) & (k > lo)
        lo[upd_lo] = k
        hi[upd_hi] = k
    return first_failure_bound(lo, cache), cache


def first_failure_bound(fsn: np.ndarray, refits: Mapping[int, np.ndarray]) -> np.ndarray:
    """Lower each value to one below the first ``k`` at which any refit of the drawer saw it fail.

    The fail-safe N is the last ``k`` before the *first* failure. Bisection pins one boundary per cluster and
    ignores failures seen below it in refits made for other clusters, which happen where Monte Carlo noise
    makes survival flicker; the scan's value can be no larger than the first failure seen minus one. So this
    bound is an upper bound on the scan's answer and never above the bisection's. ``refits``: ``k`` ->
    per-cluster survival, as the search evaluated them.
    """
    out = np.array(fsn, copy=True)
    for k in sorted(refits):
        failed = ~np.asarray(refits[k], dtype=bool)
        out[failed] = np.minimum(out[failed], k - 1)
    return out


def k_max_for(n_experiments: int, max_factor: float) -> int:
    """Most null experiments a drawer holds: ``round(max_factor * n_experiments)`` (Enge: 5 x 50 = 250)."""
    return int(round(max_factor * n_experiments))


#: Files the fail-safe N of a model writes into its folder (removed before a new run, so none is left stale).
OUTPUT_FILES = ("fsn.csv", "fsn_summary.csv", "fsn_refits.csv", "fsn_points.csv", "fsn_points_refits.csv")


def clear_outputs(folder: "str | Path") -> None:
    """Remove a previous run's fail-safe N files from a model's folder (:data:`OUTPUT_FILES`)."""
    for name in OUTPUT_FILES:
        (Path(folder) / name).unlink(missing_ok=True)


def fail_safe_n(
    foci: pd.DataFrame,
    sample_sizes: Mapping[str, float],
    peaks_xyz: np.ndarray,
    n_drawers: int = 10,
    max_factor: float = 5.0,
    n_iters: int = 1000,
    seed: int = 0,
    voxel_thresh: float = 0.001,
    cluster_alpha: float = 0.05,
    method: str = "bisect",
    k_max: int | None = None,
    n_threads: int | None = None,
    experiment_order: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
    inference: str = "cluster_size",
    focus_placement: str = "voxel",
    executor: Any = None,
) -> FSNResult:
    """Fail-safe N of clusters given by their peak coordinates.

    Parameters
    ----------
    foci, sample_sizes, experiment_order
        The real experiments (see :func:`painmeta.ale.problem.make_problem`).
    peaks_xyz : numpy.ndarray
        ``(n_clusters, 3)`` MNI mm of each significant cluster's peak.
    n_drawers : int
        Independent file drawers (Enge: 10).
    max_factor : float
        ``k_max = round(max_factor * n_experiments)`` unless ``k_max`` is given
        (Enge: 5).
    n_iters, seed : int
        Monte Carlo iterations of every refit; ``seed`` seeds the drawers
        (``SeedSequence(seed).spawn(n_drawers)``) and the refits' Monte Carlo.
    method : {"bisect", "scan"}
    inference, focus_placement : str
        How the original analysis judged significance and placed foci; every
        refit does the same (:func:`surviving`).
    executor : Executor or scheduler spec, optional
        Where each refit's Monte Carlo null runs (:mod:`painmeta.ale.executor`;
        default in-process). Results are identical wherever it runs.
    """
    if method not in ("bisect", "scan"):
        raise ValueError("method must be 'bisect' or 'scan'")
    t0 = time.perf_counter()
    order = list(experiment_order) if experiment_order is not None else sorted(set(map(str, foci["experiment_id"])))
    real = make_problem(foci, sample_sizes, experiment_order=order, focus_placement=focus_placement)
    kmax = int(k_max if k_max is not None else k_max_for(real.n_experiments, max_factor))
    peaks_ijk = real.mask.mm2vox(np.asarray(peaks_xyz, dtype=float).reshape(-1, 3))
    n_cl = len(peaks_ijk)
    children = np.random.SeedSequence(int(seed)).spawn(int(n_drawers))
    rows, evals = [], []
    base = foci[["experiment_id", "x", "y", "z"]].astype({"experiment_id": str})
    from painmeta.ale.executor import get_executor

    ex = get_executor(executor)  # one cluster for every refit, closed below if made here
    try:
        for d, child in enumerate(children):
            drawer = null_drawer(real, kmax, child)
            mc_seed = int(np.random.SeedSequence([int(seed), d, 1]).generate_state(1)[0])

            def evaluate(k: int, drawer: NullDrawer = drawer, mc_seed: int = mc_seed) -> np.ndarray:
                nf, ns, nids = drawer.first(k)
                allf = pd.concat([base, nf], ignore_index=True)
                sizes = {**{str(e): v for e, v in sample_sizes.items()}, **ns}
                out = surviving(allf, sizes, order + nids, peaks_ijk, n_iters, mc_seed, voxel_thresh,
                                cluster_alpha, n_threads, inference=inference,
                                focus_placement=focus_placement, executor=ex)
                if progress is not None:
                    progress(f"drawer {d + 1}/{n_drawers}: k = {k}: {int(out.sum())}/{n_cl} clusters significant")
                return out

            fsn, cache = _fsn_one_drawer(evaluate, n_cl, kmax, method) if n_cl else (np.zeros(0, int), {})
            for c in range(n_cl):
                rows.append({"drawer": d + 1, "cluster_id": c + 1, "fail_safe_n": int(fsn[c]),
                             "censored": bool(fsn[c] >= kmax), "n_refits": len(cache)})
            for k, s in sorted(cache.items()):
                for c in range(n_cl):
                    evals.append({"drawer": d + 1, "k": k, "cluster_id": c + 1, "significant": bool(s[c])})
    finally:
        if ex is not executor:
            ex.close()
    table = pd.DataFrame(rows, columns=FSN_COLUMNS)
    return FSNResult(table, kmax, int(n_drawers), method, int(n_iters), int(seed),
                     {"total": time.perf_counter() - t0}, pd.DataFrame(evals))


def enge_convention(fsn: np.ndarray | pd.Series, k_max: int) -> np.ndarray:
    """Enge et al. 2021's count for the same survival: ``m + 1``, at most ``k_max``."""
    return np.minimum(np.asarray(fsn) + 1, k_max)


__all__ = [
    "EVALUATION_COLUMNS",
    "FSN_COLUMNS",
    "POINT_COLUMNS",
    "FSNResult",
    "NullDrawer",
    "enge_convention",
    "fail_safe_n",
    "first_failure_bound",
    "null_drawer",
    "surviving",
    "attach_fsn",
    "clear_outputs",
    "k_max_for",
    "OUTPUT_FILES",
]


def attach_fsn(
    result: "object",
    foci: pd.DataFrame,
    sample_sizes: Mapping[str, float],
    n_drawers: int = 10,
    max_factor: float = 5.0,
    n_iters: int | None = None,
    seed: int | None = None,
    method: str = "bisect",
    n_threads: int | None = None,
    executor: Any = None,
    cluster_alpha: float | None = None,
    points: pd.DataFrame | None = None,
) -> FSNResult | None:
    """Fail-safe N of an :class:`~painmeta.ale.results.ALEResult`'s significant clusters.

    Adds column ``fail_safe_n`` (mean over drawers; empty for clusters that are
    not significant) to ``result.clusters_all`` and returns the
    :class:`FSNResult` (cluster ids = the result's; write it with
    :meth:`FSNResult.save` beside the result's files). Refits use the
    result's voxel threshold, experiment order and, unless given, its cluster
    alpha, Monte Carlo iterations and seed. Returns None when no cluster is
    significant.

    Parameters
    ----------
    cluster_alpha : float, optional
        Significance level of the refits (default: the result's).
    points : pandas.DataFrame, optional
        Further points (columns ``point``, ``x``, ``y``, ``z``; MNI mm) whose
        fail-safe N is read off the same refits, as :attr:`FSNResult.points`:
        the survival of the cluster that holds the point's voxel. A point
        outside every cluster that is significant at ``cluster_alpha`` gets
        NaN and no refit (nothing to survive). Used to compare with a paper's
        fail-safe N at its own peaks. The bisection may need a few refits
        more to pin a point's boundary; ``n_refits`` in the table counts
        them too.
    """
    res = result  # duck-typed ALEResult (this layer does not import results)
    table = res.clusters_all
    sig = table[table["significant"].astype(bool)] if len(table) else table
    if "fail_safe_n" not in table.columns:
        table["fail_safe_n"] = np.nan
    if sig.empty:
        return None
    alpha = float(res.cluster_alpha if cluster_alpha is None else cluster_alpha)
    inference = getattr(res, "inference", "cluster_size")
    # Only what is significant at the refits' alpha to begin with can survive null experiments: a cluster whose
    # p does not reach a stricter FSN alpha, or a point outside every significant cluster, gets no fail-safe N
    # (NaN) and costs no refit. (Counted from 1 it would look like "lost at the first null experiment".)
    pcol = f"p_fwe_{METHOD_SHORT[inference]}"  # the cluster table's p column of that inference
    at_alpha = (significant(sig[pcol].to_numpy(float), alpha) if pcol in sig.columns
                else np.ones(len(sig), dtype=bool))
    ids = sig["cluster_id"].to_numpy()
    peaks = sig[["peak_x", "peak_y", "peak_z"]].to_numpy(float)[at_alpha]
    refit_ids = ids[at_alpha]
    n_sig = len(peaks)
    point_rows = np.zeros(0, dtype=int)
    if points is not None and len(points):
        xyz = points[["x", "y", "z"]].to_numpy(float)
        ijk = res.mask.mm2vox(xyz)
        inside = np.all((ijk >= 0) & (ijk < np.asarray(res.label_map.shape)), axis=1)
        lab = np.zeros(len(points), dtype=np.int64)
        lab[inside] = res.label_map[tuple(ijk[inside].T)]
        point_rows = np.flatnonzero(np.isin(lab, refit_ids))
        # Same refits: every point is one more voxel whose survival each refit reads (bisection may need a few
        # more refits to pin its boundary).
        peaks = np.vstack([peaks, xyz[point_rows]])
    out = fail_safe_n(
        foci, sample_sizes, peaks, n_drawers=n_drawers,
        max_factor=max_factor, n_iters=int(n_iters or res.n_iters), seed=int(res.seed if seed is None else seed),
        voxel_thresh=res.voxel_thresh, cluster_alpha=alpha, method=method, n_threads=n_threads,
        experiment_order=res.experiment_ids, inference=inference,
        focus_placement=getattr(res, "focus_placement", "voxel"), executor=executor,
    ) if n_sig else None
    if out is None:  # nothing significant at the refits' alpha: an empty result with the same shape
        out = FSNResult(pd.DataFrame(columns=FSN_COLUMNS), k_max_for(len(res.experiment_ids), max_factor),
                        int(n_drawers), method, int(n_iters or res.n_iters), int(res.seed if seed is None else seed),
                        evaluations=pd.DataFrame(columns=EVALUATION_COLUMNS))
    out.cluster_alpha = alpha
    tab, ev = out.table, out.evaluations if out.evaluations is not None else pd.DataFrame(columns=EVALUATION_COLUMNS)
    is_pt = tab["cluster_id"].astype(int) > n_sig
    is_pt_ev = ev["cluster_id"].astype(int) > n_sig
    if points is not None and len(points):
        pt = tab[is_pt].copy()
        j = point_rows[pt["cluster_id"].to_numpy(int) - n_sig - 1]
        pt.insert(1, "point", points["point"].astype(str).to_numpy()[j])
        for a in "xyz":
            pt[a] = points[a].to_numpy(float)[j]
        pt["k_max"] = out.k_max
        skipped = np.setdiff1d(np.arange(len(points)), point_rows)
        none = pd.DataFrame([{"drawer": d + 1, "point": str(points["point"].iloc[i]), "x": float(points["x"].iloc[i]),
                              "y": float(points["y"].iloc[i]), "z": float(points["z"].iloc[i]),
                              "fail_safe_n": np.nan, "censored": False, "k_max": out.k_max}
                             for i in skipped for d in range(int(n_drawers))])
        out.points = pd.concat([pt[POINT_COLUMNS], none.reindex(columns=POINT_COLUMNS)] if len(none) else
                               [pt[POINT_COLUMNS]], ignore_index=True).sort_values(["drawer", "point"],
                                                                                 kind="stable").reset_index(drop=True)
        pe = ev[is_pt_ev].copy()
        pe.insert(2, "point", points["point"].astype(str).to_numpy()[point_rows[pe["cluster_id"].to_numpy(int)
                                                                                 - n_sig - 1]])
        out.point_evaluations = pe.drop(columns="cluster_id").reset_index(drop=True)
    tab = tab[~is_pt].copy()
    tab["cluster_id"] = refit_ids[tab["cluster_id"].to_numpy(int) - 1]
    not_refit = ids[~at_alpha]
    if len(not_refit):
        tab = pd.concat([tab, pd.DataFrame([{"drawer": d + 1, "cluster_id": c, "fail_safe_n": np.nan,
                                             "censored": False, "n_refits": 0}
                                            for d in range(int(n_drawers)) for c in not_refit])],
                        ignore_index=True).sort_values(["drawer", "cluster_id"], kind="stable")
    out.table = tab.reset_index(drop=True)
    ev = ev[~is_pt_ev].copy()
    ev["cluster_id"] = refit_ids[ev["cluster_id"].to_numpy(int) - 1] if len(ev) else ev["cluster_id"]
    out.evaluations = ev.reset_index(drop=True)
    summ = out.summary()
    table["fail_safe_n"] = table["cluster_id"].map(dict(zip(summ["cluster_id"], summ["mean"])))
    res.notes.append(
        f"fail-safe N: {n_drawers} file drawers of up to {out.k_max} null experiments "
        f"({method}, {out.n_iters} Monte Carlo iterations per refit, null foci uniform in the brain mask; "
        f"significance by {inference} at alpha {alpha:g}"
        + (", as the analysis)" if alpha == float(res.cluster_alpha) else f"; the analysis used {res.cluster_alpha:g})")
        + (f"; cluster(s) {', '.join(map(str, not_refit))} not significant at that alpha: no fail-safe N"
           if len(not_refit) else ""))
    return out
