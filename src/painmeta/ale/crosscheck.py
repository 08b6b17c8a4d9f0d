"""Cross-check the in-house ALE engine against NiMARE.

Three runs per model (focus placement ``voxel``: NiMARE has no other):

1. NiMARE (the reference), seeded.
2. In-house fed **NiMARE's own random foci** (regenerated from NiMARE's
   seeded generator, :func:`painmeta.ale.nimare_engine.fwe_draws`), with the
   foci in NiMARE's coordinate order. Everything must then agree exactly:
   maps, cluster-forming threshold, clusters, and the per-iteration null.
3. In-house with its **own random stream** (same seed, different generator,
   so statistically independent of run 1). The Monte Carlo nulls must be
   indistinguishable: two-sample Kolmogorov-Smirnov test and the 95th
   percentiles (the quantiles cluster-level inference uses).

Every row of the table states the tolerance and why it is what it is.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from painmeta.ale import inhouse as ih
from painmeta.ale.problem import make_problem
from painmeta.ale import nimare_engine as ne
from painmeta.ale.results import ALEResult

TABLE_COLUMNS = ["model", "check", "nimare", "inhouse", "difference", "tolerance", "passed", "why"]
#: KS significance level below which the two nulls are declared different. Under
#: equal distributions the KS p is uniform, so 0.001 means one false alarm per
#: thousand comparisons, while a real discrepancy gives p far below it.
KS_ALPHA = 0.001
#: Allowed |difference| of 95th percentiles in bootstrap SEs (two-sided 0.1 %).
Q95_SE = 3.29
#: Bootstrap resamples for the standard error of a 95th-percentile difference.
N_BOOT = 500


@dataclass(eq=False)
class CrossCheck:
    """Outcome of :func:`crosscheck`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per check (:data:`TABLE_COLUMNS`).
    nimare : ALEResult
        Reference run.
    inhouse : ALEResult
        In-house run on NiMARE's random foci (identical-draw run).
    inhouse_independent : pandas.DataFrame
        In-house null from its own random stream.
    inhouse_full : ALEResult or None
        With a cross-check budget (``max_iters`` < ``n_iters``): the in-house
        analysis with all ``n_iters`` iterations of its own stream (the result
        to report); None otherwise.
    """

    table: pd.DataFrame
    nimare: ALEResult
    inhouse: ALEResult
    inhouse_independent: pd.DataFrame
    inhouse_full: ALEResult | None = None

    @property
    def passed(self) -> bool:
        return bool(self.table["passed"].all())


def _row(model: str, check: str, a: Any, b: Any, diff: Any, tol: str, ok: bool, why: str) -> dict[str, Any]:
    return {"model": model, "check": check, "nimare": a, "inhouse": b, "difference": diff,
            "tolerance": tol, "passed": bool(ok), "why": why}


def _q95_check(a: np.ndarray, b: np.ndarray, seed: int) -> tuple[float, float, float, float]:
    """95th percentiles, their difference and a bootstrap SE of the difference."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    qa, qb = float(np.quantile(a, 0.95)), float(np.quantile(b, 0.95))
    rng = np.random.default_rng(seed)
    diffs = np.empty(N_BOOT)
    for i in range(N_BOOT):
        diffs[i] = np.quantile(rng.choice(a, a.size), 0.95) - np.quantile(rng.choice(b, b.size), 0.95)
    return qa, qb, qa - qb, float(np.std(diffs, ddof=1))


def compare_results(
    ref: ALEResult,
    test: ALEResult,
    model: str,
    independent_null: pd.DataFrame | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Compare two :class:`ALEResult` objects (NiMARE reference vs in-house).

    ``test`` must have been run on ``ref``'s random foci for the exact null
    checks; ``independent_null`` (optional) is an in-house null from its own
    stream for the distributional checks.
    """
    rows = []
    # maps ------------------------------------------------------------------
    d_ale = float(np.max(np.abs(ref.ale.astype(np.float64) - test.ale.astype(np.float64))))
    rows.append(_row(model, "ALE map: max |difference|", float(ref.ale.max()), float(test.ale.max()), d_ale,
                     "<= 1e-6", d_ale <= 1e-6,
                     "same kernel values (float32) and per-experiment maxima; only the float summation "
                     "order could differ; 1e-6 is far below the cluster-forming ALE (~1e-2)"))
    p_ref = ref.p.astype(np.float32)
    p_test = test.p.astype(np.float32)
    n_p = int(np.sum(p_ref != p_test))
    rows.append(_row(model, "p map: voxels that differ (float32)", float(p_ref.min()), float(p_test.min()), n_p,
                     "0 voxels", n_p == 0,
                     "identical analytic-null histogram and nearest-bin lookup; NiMARE stores p in float32, "
                     "so the comparison is at float32"))
    d_z = float(np.max(np.abs(ref.z.astype(np.float32).astype(np.float64) - test.z.astype(np.float32).astype(np.float64))))
    rows.append(_row(model, "z map: max |difference| (float32)", float(ref.z.max()), float(test.z.max()), d_z,
                     "<= 1e-6", d_z <= 1e-6,
                     "z = Phi^-1(1 - p) from equal p; float32 storage rounds z (< 1e-6 for z < 8)"))
    rows.append(_row(model, "cluster-forming ALE value", ref.ale_threshold, test.ale_threshold,
                     ref.ale_threshold - test.ale_threshold, "exact", ref.ale_threshold == test.ale_threshold,
                     "read from the same histogram bins at p = voxel_thresh"))
    # clusters --------------------------------------------------------------
    ca, cb = ref.clusters_all, test.clusters_all
    rows.append(_row(model, "supra-threshold clusters: number", len(ca), len(cb), len(ca) - len(cb), "exact",
                     len(ca) == len(cb), "same map, threshold and face connectivity"))
    if len(ca) == len(cb) and len(ca):
        same_sizes = bool(np.array_equal(ca["n_voxels"].to_numpy(), cb["n_voxels"].to_numpy()))
        rows.append(_row(model, "cluster sizes (voxels)", ca["n_voxels"].tolist(), cb["n_voxels"].tolist(), None,
                         "exact", same_sizes, "clusters are sets of voxels; same set, same size"))
        peaks_ok = bool(np.array_equal(ca[["peak_x", "peak_y", "peak_z"]].to_numpy(),
                                       cb[["peak_x", "peak_y", "peak_z"]].to_numpy()))
        rows.append(_row(model, "cluster peaks (mm)", None, None, None, "exact", peaks_ok,
                         "peak voxel of identical ALE values"))
        labels_ok = bool(np.array_equal(ref.label_map, test.label_map))
        rows.append(_row(model, "cluster label maps", None, None, None, "identical voxels", labels_ok,
                         "each cluster covers exactly the same voxels"))
        d_mass = float(np.max(np.abs(ca["mass"].to_numpy() - cb["mass"].to_numpy())))
        rows.append(_row(model, "cluster masses: max |difference|", None, None, d_mass, "<= 1e-9", d_mass <= 1e-9,
                         "float64 sums of identical float32 values"))
        for col in ("p_fwe_size", "p_fwe_mass"):
            d = float(np.max(np.abs(ca[col].to_numpy() - cb[col].to_numpy())))
            rows.append(_row(model, f"cluster {col}: max |difference|", ca[col].tolist(), cb[col].tolist(), d,
                             "exact (identical nulls)", d == 0.0,
                             "FWE p from the same statistic and identical per-iteration nulls"))
        for col in ("p_fwe_voxel", "n_voxels_vfwe"):
            d = float(np.max(np.abs(ca[col].to_numpy(float) - cb[col].to_numpy(float))))
            rows.append(_row(model, f"cluster {col}: max |difference|", ca[col].tolist(), cb[col].tolist(), d,
                             "exact (identical nulls)", d == 0.0,
                             "smallest voxel-level FWE p in the cluster / its surviving voxels, from identical maps"))
        desc = ["peak_zscore", "mean_ale", "mean_zscore", "com_x", "com_y", "com_z"]
        d = float(np.max(np.abs(ca[desc].to_numpy(float) - cb[desc].to_numpy(float))))
        rows.append(_row(model, "cluster peak/mean z, mean ALE, centre of mass: max |difference|", None, None, d,
                         "<= 1e-6", d <= 1e-6, "descriptive statistics of identical voxels of identical maps"))
        lab_ok = bool(ca[["label_peak", "labels", "label_peak_ho", "labels_ho"]].equals(
            cb[["label_peak", "labels", "label_peak_ho", "labels_ho"]]))
        rows.append(_row(model, "cluster atlas labels (AAL, Harvard-Oxford)", None, None, None, "identical", lab_ok,
                         "same voxels looked up in the same atlases"))
        sig_ok = bool(np.array_equal(ca["significant"].to_numpy(bool), cb["significant"].to_numpy(bool)))
        rows.append(_row(model, "significant clusters", int(ca["significant"].sum()), int(cb["significant"].sum()),
                         None, "exact", sig_ok, "follows from equal sizes and equal nulls"))
    # voxel-level and cluster-mass FWE (same Monte Carlo loop) ----------------
    if ref.p_vfwe is not None and test.p_vfwe is not None:
        n_v = int(np.sum(np.asarray(ref.p_vfwe) != np.asarray(test.p_vfwe)))
        rows.append(_row(model, "voxel-level FWE p map: voxels that differ", float(np.min(ref.p_vfwe)),
                         float(np.min(test.p_vfwe)), n_v, "0 voxels", n_v == 0,
                         "null_to_p of identical ALE values against identical per-iteration maxima "
                         "(NiMARE's FWECorrector rule)"))
    for label, a, b in (("voxel-level FWE ALE threshold", ref.vfwe_ale_threshold, test.vfwe_ale_threshold),
                        ("cluster-mass FWE threshold", ref.cluster_mass_threshold, test.cluster_mass_threshold)):
        same = (a is None and b is None) or (a is not None and b is not None and a == b)
        rows.append(_row(model, label, a, b, None if not (a is not None and b is not None) else a - b, "exact", same,
                         "the value a statistic must exceed for FWE p < alpha, read off identical nulls"))
    for method in ("cluster_size", "cluster_mass", "voxel"):
        sa, sb = ref.surviving(method), test.surviving(method)
        n_s = int(np.sum(sa != sb))
        rows.append(_row(model, f"thresholded map ({method} FWE): voxels that differ", int(sa.sum()), int(sb.sum()),
                         n_s, "0 voxels", n_s == 0,
                         "same clusters and same p-values, so the same voxels survive"))
    native = getattr(ref.native, "maps", None)
    if native is not None:
        from painmeta.ale.nimare_engine import LOGP_MASS, LOGP_SIZE, LOGP_VOXEL

        lab = test.label_map[test.mask.data] > 0
        for key, method, where in ((LOGP_VOXEL, "voxel", None), (LOGP_SIZE, "cluster_size", lab),
                                   (LOGP_MASS, "cluster_mass", lab)):
            if key not in native:
                continue
            theirs = np.asarray(native[key], dtype=np.float64)
            ours = -np.log10(test.fwe_p(method)).astype(np.float32).astype(np.float64)
            sel = np.ones(theirs.shape, bool) if where is None else where
            d = float(np.max(np.abs(theirs[sel] - ours[sel]))) if np.any(sel) else 0.0
            rows.append(_row(model, f"in-house -log10 p ({method} FWE) vs NiMARE's {key.split('_corr')[0]} map",
                             None, None, d, "<= 1e-5", d <= 1e-5,
                             "NiMARE's own corrected map (float32 -log10 p); cluster maps compared inside "
                             "supra-threshold clusters (NiMARE gives background p = 1 - 1/n, ours 1)"))
    # null, identical draws ---------------------------------------------------
    n_iter_ok = len(ref.null) == len(test.null)
    for col in ("max_ale", "max_cluster_size", "max_cluster_mass"):
        a = ref.null[col].to_numpy()
        b = test.null[col].to_numpy()
        if n_iter_ok:
            n_diff = int(np.sum(a.astype(np.float64) != b.astype(np.float64)))
            d = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if len(a) else 0.0
        else:
            n_diff, d = -1, float("nan")
        rows.append(_row(model, f"null {col}, same random foci: iterations that differ", len(a), len(b),
                         n_diff, "0 iterations", n_iter_ok and n_diff == 0,
                         f"same foci, same arithmetic (NiMARE stores {col} as float32); max |diff| = {d:.3g}"))
    # contributions -------------------------------------------------------------
    for kind, tol, why in (("jackknife", 1e-5, "means of float32 ratios; NiMARE stores them in float32"),
                           ("focus_counter", 0.0, "integer counts of foci within one voxel of a cluster")):
        ta, tb = ref.contributions.get(kind), test.contributions.get(kind)
        if ta is None or tb is None:
            continue
        cols = [c for c in ta.columns if c != "experiment_id"]
        ok = list(tb.columns) == list(ta.columns) and list(ta["experiment_id"]) == list(tb["experiment_id"])
        d = float(np.max(np.abs(ta[cols].to_numpy(float) - tb[cols].to_numpy(float)))) if ok and cols else float("nan")
        rows.append(_row(model, f"contributions ({kind}): max |difference|", None, None, d, f"<= {tol:g}",
                         ok and d <= tol, why))
    # null, independent streams -------------------------------------------------
    if independent_null is not None and len(independent_null) > 1 and len(ref.null) > 1:
        for i, col in enumerate(("max_ale", "max_cluster_size", "max_cluster_mass")):
            a = ref.null[col].to_numpy(np.float64)
            b = independent_null[col].to_numpy(np.float64)
            with warnings.catch_warnings():
                # Ties (e.g. every iteration's largest cluster is one isolated kernel) make
                # the exact KS distribution unavailable; SciPy then uses the asymptotic one.
                warnings.simplefilter("ignore", RuntimeWarning)
                ks = stats.ks_2samp(a, b)
            rows.append(_row(model, f"null {col}, independent streams: KS test p", float(np.mean(a)),
                             float(np.mean(b)), float(ks.statistic), f"p >= {KS_ALPHA}",
                             ks.pvalue >= KS_ALPHA,
                             f"two-sample KS (D shown as difference, p = {ks.pvalue:.3g}); independent "
                             "Monte Carlo streams of the same null should not be distinguishable"))
            qa, qb, dq, se = _q95_check(a, b, seed + i)
            tol = Q95_SE * se
            rows.append(_row(model, f"null {col}, independent streams: 95th percentile", qa, qb, dq,
                             f"|diff| <= {Q95_SE} bootstrap SE ({tol:.3g})", abs(dq) <= tol,
                             "the 95th percentile sets the FWE thresholds; allowed Monte Carlo error is "
                             f"{Q95_SE} SE (two-sided 0.1 %; bootstrap, {N_BOOT} resamples, seeded)"))
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def crosscheck(
    foci: pd.DataFrame,
    sample_sizes: Mapping[str, float],
    n_iters: int,
    seed: int,
    voxel_thresh: float = 0.001,
    cluster_alpha: float = 0.05,
    n_cores: int = 2,
    name: str = "model",
    contributions: bool = True,
    inference: str = "cluster_size",
    progress: bool = False,
    executor: Any = None,
    max_iters: int | None = None,
) -> CrossCheck:
    """Run both engines on one model and compare them (see module docstring).

    Parameters
    ----------
    foci : pandas.DataFrame
        ``experiment_id, x, y, z`` (MNI mm).
    sample_sizes : mapping
        Experiment -> n_ale.
    n_iters, seed : int
        Monte Carlo iterations and seed (shared by both engines).
    voxel_thresh, cluster_alpha : float
    n_cores : int
    name : str
        Model name for the table.
    contributions : bool
        Also compare jackknife / focus-count tables.
    inference : {"cluster_size", "cluster_mass", "voxel"}
        Primary inference of both runs (all three are compared either way).
    progress : bool
        Show NiMARE's progress bars.
    executor : Executor or scheduler spec, optional
        Where the in-house independent-stream null runs (:mod:`painmeta.ale.executor`).
    max_iters : int, optional
        Cross-check budget for very large datasets (``ale.crosscheck_max_iters``):
        NiMARE, and the in-house engine on NiMARE's draws, run only the first
        ``max_iters`` iterations of NiMARE's stream. On identical draws every
        iteration must agree exactly, so the comparison stays exact on that
        subset; the in-house analysis is then run in full (``n_iters`` of its
        own stream: ``CrossCheck.inhouse_full``, the result to report), its
        null is the independent one, and NiMARE's contribution tables are not
        computed (they cost as much as the whole NiMARE run again).

    Returns
    -------
    CrossCheck
    """
    # With a budget, the in-house analysis to report is always its own full run (own stream, all
    # iterations), whether or not the budget cuts NiMARE's iterations: the result then does not
    # depend on n_iters relative to the budget, and NiMARE's contributions are never computed.
    budget = max_iters is not None
    m = min(int(max_iters), int(n_iters)) if budget else int(n_iters)
    ref = ne.run_nimare(foci, sample_sizes, m, seed, voxel_thresh, cluster_alpha, n_cores, name,
                        contributions=contributions and not budget, inference=inference, progress=progress)
    est = ref.native.estimator
    coords = est.inputs_["coordinates"]
    id_map = {v: k for k, v in ne.nimare_ids(ref.experiment_ids).items()}
    # NiMARE reorders foci within an experiment; follow its row order so that
    # draw f of an iteration goes to the same focus in both engines.
    nim_foci = pd.DataFrame({"experiment_id": coords["id"].map(id_map).to_numpy(),
                             "x": coords["x"].to_numpy(float), "y": coords["y"].to_numpy(float),
                             "z": coords["z"].to_numpy(float)})
    problem = make_problem(nim_foci, sample_sizes, experiment_order=ref.experiment_ids)
    same_ijk = bool(np.array_equal(problem.foci_ijk, coords[["i", "j", "k"]].to_numpy()))
    draws = ne.fwe_draws(seed, problem.n_foci, m, problem.mask.n_voxels)
    test = ih.run_inhouse(nim_foci, sample_sizes, m, seed, voxel_thresh, cluster_alpha, n_cores, name,
                          contributions=contributions and not budget, experiment_order=ref.experiment_ids,
                          draws=draws, inference=inference)
    full = None
    if budget:
        # the analysis to report: all iterations of the in-house stream, input focus order (as run_model)
        full = ih.run_inhouse(foci, sample_sizes, n_iters, seed, voxel_thresh, cluster_alpha, n_cores, name,
                              contributions=contributions, executor=executor, inference=inference,
                              progress=progress)
        indep = full.null
    else:
        indep = ih.null_statistics(problem, test.ale_threshold, n_iters, seed, n_threads=n_cores, executor=executor)
    table = compare_results(ref, test, name, indep, seed)
    head = [_row(name, "focus voxel indices (NiMARE order)", None, None, None, "exact", same_ijk,
                 "both engines round mm to voxels the same way (half to even)")]
    if budget:
        head.append(_row(name, "cross-check budget (iterations on identical draws)", m, int(n_iters), None,
                         f"first {m} of {n_iters}", True,
                         f"ale.crosscheck_max_iters: NiMARE and the in-house engine ran the first {m} iterations "
                         "of NiMARE's stream; on identical draws every iteration must agree exactly, so the subset "
                         f"is still an exact check. The reported in-house analysis uses all {n_iters} iterations of "
                         "its own stream (compared with NiMARE's below); NiMARE's contribution tables were not "
                         "computed"))
    table = pd.concat([pd.DataFrame(head, columns=TABLE_COLUMNS), table], ignore_index=True)
    test.notes.append(
        f"Monte Carlo foci taken from NiMARE's stream (seed {seed}) for the bit-level comparison"
    )
    return CrossCheck(table, ref, test, indep, full)
