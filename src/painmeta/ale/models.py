"""ALE models from the processed extraction tables, and running them.

A *model* is a set of experiments analysed together (e.g. "all between-group
experiments", "CIPN > control only"). :func:`build_models` applies the
dataset config to ``experiments.csv`` / ``foci_mni.csv``; a model with too few
usable experiments is returned *skipped* with the reason, never an exception.
:func:`analyze` runs every runnable model (one or both engines, optional
cross-check) and returns plain DataFrames for the notebook.

Selection rule for a model (ANALYSIS.md section 2, the contract with the
extraction stage): an experiment enters when ``contrast_type`` is one of the
model's contrast types, (if the model lists directions) ``direction`` is one
of them, ``in_ale`` is true, its evidence is not ``unverified`` unless
``include_unverified``, it has an ``n_ale`` (positive whole number) and at
least one focus. Experiments of the model's contrast types that fail a rule
are listed in ``ALEModel.excluded`` with the reason.

Subject-group pooling (Turkeltaub et al. 2012): experiments of one model that
share participants - the same ``subject_group`` in ``experiments.csv`` - enter
as **one** experiment, so one sample cannot create convergence with itself.
The pooled experiment's id is the group's name; its foci are all the foci of
its contrasts, and (as for any experiment) its MA map is the voxel-wise maximum
over them. Its sample size is the **smallest** n among the pooled contrasts:
when the contrasts list the same n (the usual case: the same participants),
that n; when they differ (e.g. a few participants dropped from one analysis),
the smallest is the number of participants every contrast is known to include,
and its wider kernel never claims more spatial precision than any contributing
contrast has. The model table reports the number of experiments after pooling
and which contrasts were pooled. Pooling is on by default
(``ale.pool_subject_groups``; per model ``pool_subject_groups``).
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from painmeta.ale.inference import CLUSTER_COLUMNS
from painmeta.ale.results import ALEResult
from painmeta.errors import InputError

ENGINES = ("nimare", "inhouse")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0", ""}


@dataclass
class ALEModel:
    """One ALE model, ready to run or skipped.

    Attributes
    ----------
    name, description : str
    experiment_ids : list of str
        Experiments entering the model (sorted).
    foci : pandas.DataFrame
        ``experiment_id, x, y, z`` (MNI mm) plus any provenance columns.
    sample_sizes : dict
        Experiment -> n_ale (patients entering ALE).
    n_iters : int
        Monte Carlo iterations.
    skipped : bool
    reason : str
        Why the model was skipped ("" when it runs).
    warnings : list of str
        Caveats for a model that runs (too few experiments for power,
        unverified coordinates, ...).
    excluded : pandas.DataFrame
        Candidate experiments left out, with the reason (``experiment_id, reason``).
    inference : str
        Primary inference (``cluster_size``, ``cluster_mass`` or ``voxel``).
    focus_placement : str
        ``voxel`` or ``exact``.
    pooled : dict
        Pooled experiment id -> the contrasts (experiment ids of
        experiments.csv) pooled into it; only groups of two or more.
    n_contrasts : int
        Experiments (contrasts) selected before pooling.
    """

    name: str
    description: str
    experiment_ids: list[str]
    foci: pd.DataFrame
    sample_sizes: dict[str, int]
    n_iters: int
    skipped: bool = False
    reason: str = ""
    warnings: list[str] = field(default_factory=list)
    excluded: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["experiment_id", "reason"]))
    inference: str = "cluster_size"
    focus_placement: str = "voxel"
    pooled: dict[str, list[str]] = field(default_factory=dict)
    n_contrasts: int | None = None

    @property
    def n_experiments(self) -> int:
        return len(self.experiment_ids)

    @property
    def n_foci(self) -> int:
        return int(len(self.foci))

    @property
    def n_subjects(self) -> int:
        return int(sum(self.sample_sizes.values()))


def _as_bool(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE or text == "nan":
        return False
    raise InputError(f"in_ale value {value!r} is not a boolean (use true/false)")


def _as_n(value: Any) -> int | None:
    """Positive whole number or None (missing / invalid)."""
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if not np.isfinite(v) or v <= 0 or v != int(v):
        return None
    return int(v)


def _cfg(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _model_setting(model_cfg: Any, ale_config: Any, key: str, default: Any) -> Any:
    """A per-model setting, else the dataset-wide one, else ``default``."""
    value = _cfg(model_cfg, key, None)
    if value is None:
        value = _cfg(ale_config, key, None)
    return default if value is None else value


def subject_groups(exps: pd.DataFrame) -> dict[str, str]:
    """Experiment id -> subject group, for rows with a non-empty ``subject_group``."""
    if "subject_group" not in exps.columns:
        return {}
    out = {}
    for eid, group in zip(exps["experiment_id"], exps["subject_group"]):
        if group is None or (isinstance(group, float) and np.isnan(group)):
            continue
        text = str(group).strip()
        if text and text.lower() != "nan":
            out[str(eid)] = text
    return out


def _pool(
    keep: list[str], sizes: dict[str, int], foci: pd.DataFrame, groups: Mapping[str, str]
) -> tuple[list[str], dict[str, int], pd.DataFrame, dict[str, list[str]], list[str]]:
    """Pool the model's experiments that share a subject group (see the module docstring).

    Returns the experiment ids after pooling (sorted), their sample sizes, the
    foci relabelled to the pooled ids (the original id kept in ``contrast_id``),
    the pooled groups (id -> contrasts) and notes for the model's warnings.
    """
    members: dict[str, list[str]] = {}
    for eid in keep:
        if eid in groups:
            members.setdefault(groups[eid], []).append(eid)
    pooled = {g: sorted(m) for g, m in members.items() if len(m) > 1}
    if not pooled:
        return keep, sizes, foci, {}, []
    new_id = {eid: eid for eid in keep}
    for g, m in pooled.items():
        if g in set(keep) - set(m):
            raise InputError(
                f"experiments.csv: subject_group {g!r} is also the experiment_id of an experiment outside "
                "that group. Fix: give the subject group a name that is not an experiment id."
            )
        for eid in m:
            new_id[eid] = g
    notes = []
    new_sizes: dict[str, int] = {}
    for eid in keep:
        nid = new_id[eid]
        if nid in pooled:
            ns = [sizes[m] for m in pooled[nid]]
            new_sizes[nid] = min(ns)
        else:
            new_sizes[nid] = sizes[eid]
    for g, m in pooled.items():
        ns = sorted({sizes[e] for e in m})
        text = f"pooled {len(m)} contrasts of subject group '{g}' into one experiment ({', '.join(m)})"
        if len(ns) > 1:
            text += f"; they list n = {', '.join(map(str, ns))}, the smallest ({ns[0]}) is used"
        notes.append(text)
    foci = foci.copy()
    foci.insert(1, "contrast_id", foci["experiment_id"])
    foci["experiment_id"] = foci["experiment_id"].map(new_id)
    return sorted(new_sizes), {k: new_sizes[k] for k in sorted(new_sizes)}, foci, pooled, notes


def build_models(experiments: pd.DataFrame, foci: pd.DataFrame, ale_config: Any) -> list[ALEModel]:
    """Build the configured ALE models from the processed tables.

    Parameters
    ----------
    experiments : pandas.DataFrame
        ``experiments.csv`` (columns experiment_id, contrast_type, direction,
        n_ale, in_ale, evidence, ...).
    foci : pandas.DataFrame
        ``foci_mni.csv`` (columns experiment_id, x, y, z in MNI mm, ...).
    ale_config : painmeta.config.ALEConfig or mapping
        ``config.ale`` (min_experiments, recommended_experiments,
        include_unverified, inference, focus_placement, pool_subject_groups,
        models: name -> {contrast_types, directions,
        experiments (optional list of ids), n_iters, description,
        inference, focus_placement, pool_subject_groups}).

    Returns
    -------
    list of ALEModel
        One per configured model, in config order; models with fewer than
        ``min_experiments`` usable experiments are ``skipped`` with a reason.
    """
    need = {"experiment_id", "contrast_type", "direction", "n_ale", "in_ale"}
    missing = need - set(experiments.columns)
    if missing:
        raise InputError(f"experiments table lacks column(s) {sorted(missing)}")
    missing = {"experiment_id", "x", "y", "z"} - set(foci.columns)
    if missing:
        raise InputError(f"foci table lacks column(s) {sorted(missing)}")
    exps = experiments.copy()
    exps["experiment_id"] = exps["experiment_id"].astype(str)
    if exps["experiment_id"].duplicated().any():
        dup = sorted(set(exps.loc[exps["experiment_id"].duplicated(), "experiment_id"]))
        raise InputError(f"experiments table has duplicate experiment_id(s): {dup}")
    foci = foci.copy()
    foci["experiment_id"] = foci["experiment_id"].astype(str)
    unknown = sorted(set(foci["experiment_id"]) - set(exps["experiment_id"]))
    if unknown:
        raise InputError(f"foci refer to experiment(s) missing from experiments table: {unknown}")
    n_foci = foci.groupby("experiment_id").size()

    min_exp = int(_cfg(ale_config, "min_experiments", 2))
    rec_exp = int(_cfg(ale_config, "recommended_experiments", 17))
    incl_unver = bool(_cfg(ale_config, "include_unverified", True))
    models_cfg = _cfg(ale_config, "models", {}) or {}
    groups = subject_groups(exps)
    out: list[ALEModel] = []
    for name, mc in models_cfg.items():
        ctypes = list(_cfg(mc, "contrast_types", ["between_group"]))
        dirs = _cfg(mc, "directions", None)
        n_iters = int(_cfg(mc, "n_iters", 1000))
        desc = str(_cfg(mc, "description", "") or "")
        inference = _model_setting(mc, ale_config, "inference", "cluster_size")
        placement = _model_setting(mc, ale_config, "focus_placement", "voxel")
        pool = bool(_model_setting(mc, ale_config, "pool_subject_groups", True))
        cand = exps[exps["contrast_type"].isin(ctypes)]
        excluded: list[tuple[str, str]] = []
        only = _cfg(mc, "experiments", None)
        if only is not None:
            unknown_ids = sorted(set(only) - set(exps["experiment_id"]))
            if unknown_ids:
                raise InputError(f"ALE model '{name}': experiments {unknown_ids} are not in experiments.csv")
            cand = cand[cand["experiment_id"].isin(list(only))]
        if dirs is not None:
            off = cand[~cand["direction"].isin(list(dirs))]
            excluded += [(e, f"direction '{d}' (model takes {', '.join(dirs)})")
                         for e, d in zip(off["experiment_id"], off["direction"])]
            cand = cand[cand["direction"].isin(list(dirs))]
        keep: list[str] = []
        sizes: dict[str, int] = {}
        unverified: list[str] = []
        for _, row in cand.sort_values("experiment_id").iterrows():
            eid = row["experiment_id"]
            evidence = str(row.get("evidence", "") or "").strip().lower()
            n = _as_n(row["n_ale"])
            if not _as_bool(row["in_ale"]):
                excluded.append((eid, "not entered into ALE (in_ale = false)"))
            elif evidence == "unverified" and not incl_unver:
                excluded.append((eid, "unverified experiment assignment (ale.include_unverified = false)"))
            elif n is None:
                excluded.append((eid, f"no usable sample size (n_ale = {row['n_ale']!r})"))
            elif int(n_foci.get(eid, 0)) == 0:
                excluded.append((eid, "no coordinates public"))
            else:
                keep.append(eid)
                sizes[eid] = n
                if evidence == "unverified":
                    unverified.append(eid)
        mfoci = foci[foci["experiment_id"].isin(keep)].reset_index(drop=True)
        n_contrasts = len(keep)
        pooled: dict[str, list[str]] = {}
        pool_notes: list[str] = []
        if pool and groups:
            keep, sizes, mfoci, pooled, pool_notes = _pool(keep, sizes, mfoci, groups)
        model = ALEModel(
            name=name,
            description=desc,
            experiment_ids=keep,
            foci=mfoci,
            sample_sizes=sizes,
            n_iters=n_iters,
            excluded=pd.DataFrame(sorted(excluded), columns=["experiment_id", "reason"]),
            inference=str(inference),
            focus_placement=str(placement),
            pooled=pooled,
            n_contrasts=n_contrasts,
        )
        model.warnings.extend(pool_notes)
        n = len(keep)
        if n < min_exp:
            which = f" ({', '.join(keep)})" if keep else ""
            after = (f" after pooling {n_contrasts} contrasts that share participants"
                     if pooled else "")
            model.skipped = True
            model.reason = (
                f"{n} usable experiment{'s' if n != 1 else ''}{which}{after} of {len(cand)} candidate"
                f"{'s' if len(cand) != 1 else ''}; ALE needs at least {min_exp} "
                "(convergence across experiments)"
            )
        else:
            if n < rec_exp:
                model.warnings.append(
                    f"only {n} experiments; at least {rec_exp} are recommended for adequate power "
                    "(Eickhoff et al. 2016), so results are descriptive"
                )
            if unverified:
                model.warnings.append(
                    f"experiment assignment unverified for: {', '.join(unverified)}"
                )
        out.append(model)
    return out


# --------------------------------------------------------------------- running
def run_model(
    model: ALEModel,
    engine: str = "nimare",
    seed: int = 0,
    voxel_thresh: float = 0.001,
    cluster_alpha: float = 0.05,
    n_cores: int = 2,
    n_iters: int | None = None,
    contributions: bool = True,
    progress: bool = False,
    executor: Any = None,
) -> ALEResult:
    """Run one (non-skipped) model with an engine.

    Parameters
    ----------
    model : ALEModel
    engine : {"nimare", "inhouse"}
    seed : int
        Monte Carlo seed (NiMARE ``random_state`` / in-house stream).
    voxel_thresh, cluster_alpha : float
        Cluster-forming p and cluster-level FWE alpha.
    n_cores : int
        Cores for the Monte Carlo.
    n_iters : int, optional
        Override the model's iterations.
    contributions : bool
        Jackknife and focus-counter tables for significant clusters.
    progress : bool
        Progress bars (terminal / JupyterLab only; never in rendered pages).

    The model's ``inference`` and ``focus_placement`` are passed to the engine;
    NiMARE refuses ``focus_placement: exact`` (in-house only).
    executor : Executor or scheduler spec, optional
        Where the in-house Monte Carlo runs (:mod:`painmeta.ale.executor`);
        NiMARE always runs in-process with ``n_cores``.

    Raises
    ------
    InputError
        Model skipped, unknown engine, or exact placement asked of NiMARE.
    """
    if model.skipped:
        raise InputError(f"model '{model.name}' was not run: {model.reason}")
    iters = int(n_iters or model.n_iters)
    kw = dict(
        foci=model.foci[["experiment_id", "x", "y", "z"]],
        sample_sizes=model.sample_sizes,
        n_iters=iters,
        seed=int(seed),
        voxel_thresh=voxel_thresh,
        cluster_alpha=cluster_alpha,
        n_cores=n_cores,
        name=model.name,
        contributions=contributions,
        inference=model.inference,
        focus_placement=model.focus_placement,
        progress=progress,
    )
    if engine == "nimare":
        from painmeta.ale.nimare_engine import run_nimare

        result = run_nimare(**kw)
    elif engine == "inhouse":
        from painmeta.ale.inhouse import run_inhouse

        result = run_inhouse(**kw, executor=executor)
    else:
        raise InputError(f"unknown engine {engine!r}; use one of {ENGINES}")
    result.notes.extend(model.warnings)
    result.pooled = dict(model.pooled)
    return result


def model_table(models: Sequence[ALEModel], results: Mapping[str, ALEResult] | None = None) -> pd.DataFrame:
    """One row per model: status, inputs and the review's summary numbers."""
    results = results or {}
    rows = []
    for m in models:
        row: dict[str, Any] = {
            "model": m.name,
            "description": m.description,
            "status": "skipped" if m.skipped else ("run" if m.name in results else "not run"),
            "reason": m.reason,
            "warnings": "; ".join(m.warnings),
            "n_experiments": m.n_experiments,
            "n_contrasts": m.n_contrasts if m.n_contrasts is not None else m.n_experiments,
            "pooled": "; ".join(f"{g} = {' + '.join(c)}" for g, c in m.pooled.items()),
            "n_foci": m.n_foci,
            "n_subjects": m.n_subjects,
            "experiments": ", ".join(m.experiment_ids),
            "excluded": "; ".join(f"{e}: {r}" for e, r in m.excluded.itertuples(index=False)),
            "n_iters": m.n_iters,
            "inference": m.inference,
            "focus_placement": m.focus_placement,
        }
        res = results.get(m.name)
        if res is not None:
            s = res.summary()
            for key in (
                "engine", "fwhm_min_mm", "fwhm_max_mm", "ale_min", "ale_max", "p_min",
                "cluster_forming_ale", "cluster_size_threshold_vox", "cluster_size_threshold_mm3",
                "cluster_mass_threshold", "vfwe_ale_threshold", "n_clusters_supra", "n_clusters_significant",
                "n_clusters_significant_size", "n_clusters_significant_mass", "n_clusters_significant_voxel",
                "n_voxels_vfwe", "seed", "run_time_s",
            ):
                row[key] = s[key]
            row["n_iters"] = s["n_iters"]
        rows.append(row)
    return pd.DataFrame(rows)


def cluster_tables(results: Mapping[str, ALEResult], significant_only: bool = True) -> pd.DataFrame:
    """Cluster tables of all models stacked, with ``model`` and ``engine`` columns."""
    parts = []
    for name, res in results.items():
        tab = res.clusters if significant_only else res.clusters_all
        tab = tab.copy()
        tab.insert(0, "engine", res.engine)
        tab.insert(0, "model", name)
        parts.append(tab)
    if not parts:
        return pd.DataFrame(columns=["model", "engine"] + CLUSTER_COLUMNS)
    return pd.concat(parts, ignore_index=True)


def null_tables(results: Mapping[str, ALEResult]) -> pd.DataFrame:
    """Monte Carlo nulls of all models (long: model, engine, iteration, statistics)."""
    parts = []
    for name, res in results.items():
        tab = res.null.copy()
        tab.insert(0, "iteration", np.arange(len(tab)))
        tab.insert(0, "engine", res.engine)
        tab.insert(0, "model", name)
        parts.append(tab)
    if not parts:
        return pd.DataFrame(columns=["model", "engine", "iteration", "max_ale", "max_cluster_size", "max_cluster_mass"])
    return pd.concat(parts, ignore_index=True)


def contribution_tables(results: Mapping[str, ALEResult]) -> pd.DataFrame:
    """Jackknife and focus-count contributions, long format (model, kind, experiment, cluster, value)."""
    rows = []
    for name, res in results.items():
        for kind, tab in res.contributions.items():
            for _, r in tab.iterrows():
                for col in tab.columns[1:]:
                    rows.append((name, res.engine, kind, r["experiment_id"], int(str(col).split("_")[-1]), float(r[col])))
    return pd.DataFrame(rows, columns=["model", "engine", "kind", "experiment_id", "cluster_id", "value"])


@dataclass
class ALEAnalysis:
    """Everything the ALE notebook shows, as DataFrames plus the raw results.

    Attributes
    ----------
    models : list of ALEModel
    results : dict
        Engine -> {model name -> ALEResult}. With ``focus_placement: exact`` the
        in-house entry is the exact-placement run (NiMARE's is voxel placement).
    primary : dict
        Model name -> the result the model reports (the primary engine's, or the
        in-house engine's for exact placement, which NiMARE cannot do).
    summary : pandas.DataFrame
        :func:`model_table` of the primary results.
    clusters : pandas.DataFrame
        Surviving clusters of every model (primary results).
    nulls : pandas.DataFrame
        Monte Carlo nulls (all engines run).
    contributions : pandas.DataFrame
        Jackknife / focus counts (primary results).
    crosscheck : pandas.DataFrame
        Engine agreement per model (empty when not requested).
    placement : pandas.DataFrame
        Per model: how much the map and clusters move between voxel and
        exact focus placement (:func:`placement_movement`; with
        ``placement_check`` or exact-placement models).
    """

    models: list[ALEModel]
    results: dict[str, dict[str, ALEResult]]
    summary: pd.DataFrame
    clusters: pd.DataFrame
    nulls: pd.DataFrame
    contributions: pd.DataFrame
    crosscheck: pd.DataFrame
    primary: dict[str, ALEResult] = field(default_factory=dict)
    placement: pd.DataFrame = field(default_factory=pd.DataFrame)


def placement_movement(voxel: ALEResult, exact: ALEResult, model: str = "") -> dict[str, Any]:
    """How much exact focus placement moves a model's map and clusters against voxel placement.

    Returns max |ALE difference|, Pearson r over voxels where either map is
    non-zero, cluster counts, and for each voxel-placement surviving cluster the
    nearest exact-placement surviving cluster's peak shift (mm) and size change
    (voxels).
    """
    a = voxel.ale.astype(np.float64)
    b = exact.ale.astype(np.float64)
    nz = (a > 0) | (b > 0)
    r = float(np.corrcoef(a[nz], b[nz])[0, 1]) if nz.sum() > 2 else float("nan")
    ca, cb = voxel.clusters, exact.clusters
    shifts, dsize = [], []
    if len(ca) and len(cb):
        pb = cb[["peak_x", "peak_y", "peak_z"]].to_numpy(float)
        for _, row in ca.iterrows():
            d = np.sqrt(((pb - row[["peak_x", "peak_y", "peak_z"]].to_numpy(float)) ** 2).sum(axis=1))
            j = int(np.argmin(d))
            shifts.append(float(d[j]))
            dsize.append(int(cb.iloc[j]["n_voxels"]) - int(row["n_voxels"]))
    return {
        "model": model,
        "max_abs_ale_diff": float(np.max(np.abs(a - b))),
        "ale_max_voxel": float(a.max()),
        "ale_max_exact": float(b.max()),
        "r_ale": r,
        "cluster_forming_ale_voxel": voxel.ale_threshold,
        "cluster_forming_ale_exact": exact.ale_threshold,
        "n_supra_voxel": int(len(voxel.clusters_all)),
        "n_supra_exact": int(len(exact.clusters_all)),
        "n_surviving_voxel": int(len(ca)),
        "n_surviving_exact": int(len(cb)),
        "peak_shift_mm_max": max(shifts) if shifts else float("nan"),
        "peak_shifts_mm": ", ".join(f"{v:.1f}" for v in shifts),
        "size_changes_vox": ", ".join(f"{v:+d}" for v in dsize),
    }


def analyze(
    experiments: pd.DataFrame,
    foci: pd.DataFrame,
    ale_config: Any,
    engine: str = "nimare",
    crosscheck: bool = True,
    n_iters: int | None = None,
    seed: int | None = None,
    n_cores: int | None = None,
    contributions: bool = True,
    progress: bool = False,
    placement_check: bool = True,
    executor: Any = None,
) -> ALEAnalysis:
    """Build and run every model; optionally cross-check the two engines.

    Parameters
    ----------
    experiments, foci, ale_config
        See :func:`build_models`.
    engine : {"nimare", "inhouse"}
        Primary engine (its results fill ``summary``/``clusters``). Models with
        ``focus_placement: exact`` report the in-house engine's exact-placement
        run whatever ``engine`` says (NiMARE cannot place foci off voxels).
    crosscheck : bool
        Also run the other engine on every model and compare
        (:func:`painmeta.ale.crosscheck.crosscheck`, voxel placement). For an
        exact-placement model the voxel-placement in-house run is compared with
        the exact one in ``placement``. With ``engine="inhouse"`` and
        ``ale_config.crosscheck_max_iters``, NiMARE runs only that many
        iterations (an exact check on identical draws) and the in-house result
        keeps all of the model's iterations.
    n_iters : int, optional
        Override every model's Monte Carlo iterations (e.g. quick runs).
    seed, n_cores : int, optional
        Default to ``ale_config.seed`` / ``ale_config.n_cores``.
    progress : bool
        Progress bars (terminal / JupyterLab; keep False for rendered pages).
    placement_check : bool
        For voxel-placement models, also run the in-house engine with exact
        placement and report how far the map and clusters move
        (``placement``; GingerALE parity).
    executor : Executor or scheduler spec, optional
        Where in-house Monte Carlo blocks run; default ``ale_config.executor``
        (in-process unless the config names a scheduler).
    """
    from painmeta.ale import crosscheck as xc

    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; use one of {ENGINES}")
    models = build_models(experiments, foci, ale_config)
    seed = int(_cfg(ale_config, "seed", 0) if seed is None else seed)
    n_cores = int(_cfg(ale_config, "n_cores", 2) if n_cores is None else n_cores)
    vt = float(_cfg(ale_config, "voxel_thresh", 0.001))
    ca = float(_cfg(ale_config, "cluster_alpha", 0.05))
    results: dict[str, dict[str, ALEResult]] = {engine: {}}
    primary: dict[str, ALEResult] = {}
    checks = []
    moves = []
    from painmeta.ale.executor import get_executor

    spec = _cfg(ale_config, "executor", None) if executor is None else executor
    # A cross-check budget only makes sense when the in-house engine gives the result.
    budget = _cfg(ale_config, "crosscheck_max_iters", None) if engine == "inhouse" else None
    ex = get_executor(spec)  # one cluster for every model, closed below if made here
    try:
        for m in models:
            if m.skipped:
                continue
            exact = m.focus_placement == "exact"
            if crosscheck:
                cc = xc.crosscheck(
                    m.foci[["experiment_id", "x", "y", "z"]], m.sample_sizes, int(n_iters or m.n_iters), seed,
                    voxel_thresh=vt, cluster_alpha=ca, n_cores=n_cores, name=m.name, contributions=contributions,
                    inference=m.inference, progress=progress, executor=ex, max_iters=budget,
                )
                inhouse_res = cc.inhouse_full if cc.inhouse_full is not None else cc.inhouse
                for key, res in (("nimare", cc.nimare), ("inhouse", inhouse_res)):
                    res.notes.extend(w for w in m.warnings if w not in res.notes)
                    res.pooled = dict(m.pooled)
                    results.setdefault(key, {})[m.name] = res
                checks.append(cc.table)
                primary[m.name] = results[engine][m.name]
            elif not exact:
                primary[m.name] = results[engine][m.name] = run_model(
                    m, engine, seed, vt, ca, n_cores, n_iters, contributions, progress, executor=ex
                )
            if exact:
                res = run_model(m, "inhouse", seed, vt, ca, n_cores, n_iters, contributions, progress, executor=ex)
                res.notes.append("kernels centred at the exact reported coordinates (focus_placement: exact, "
                                 "in-house engine; the engine cross-check uses voxel placement)")
                voxel_run = results.get("inhouse", {}).get(m.name) or results.get(engine, {}).get(m.name)
                if voxel_run is not None:
                    moves.append(placement_movement(voxel_run, res, m.name))
                results.setdefault("inhouse", {})[m.name] = res
                primary[m.name] = res
            elif placement_check:
                exact_model = replace(m, focus_placement="exact")
                res = run_model(exact_model, "inhouse", seed, vt, ca, n_cores, n_iters, False, progress,
                                executor=ex)
                moves.append(placement_movement(primary[m.name], res, m.name))
    finally:
        if ex is not executor:
            ex.close()
    nulls = pd.concat([null_tables(r) for r in results.values()], ignore_index=True)
    return ALEAnalysis(
        models=models,
        results=results,
        summary=model_table(models, primary),
        clusters=cluster_tables(primary),
        nulls=nulls,
        contributions=contribution_tables(primary),
        crosscheck=pd.concat(checks, ignore_index=True) if checks else pd.DataFrame(columns=xc.TABLE_COLUMNS),
        primary=primary,
        placement=pd.DataFrame(moves),
    )


#: Cluster-table columns shown to readers, with their headers (as the papers print them).
DISPLAY_COLUMNS = {
    "cluster_id": "Cluster",
    "volume_mm3": "Size (mm³)",
    "peak_x": "Peak x",
    "peak_y": "Peak y",
    "peak_z": "Peak z",
    "com_x": "CoM x",
    "com_y": "CoM y",
    "com_z": "CoM z",
    "peak_ale": "Peak ALE",
    "peak_zscore": "Peak Z",
    "mean_ale": "Mean ALE",
    "mean_zscore": "Mean Z",
    "p_fwe_size": "p FWE (size)",
    "p_fwe_mass": "p FWE (mass)",
    "p_fwe_voxel": "p FWE (voxel, min)",
    "label_peak": "Peak label (AAL)",
    "labels": "Cluster labels (AAL, share of voxels)",
    "label_peak_ho": "Peak label (Harvard-Oxford)",
}


def cluster_display_table(clusters: pd.DataFrame) -> pd.DataFrame:
    """A cluster table for people: the papers' columns with readable headers and rounded numbers.

    Coordinates in mm (centre of mass to 1 decimal), ALE to 4 decimals, z to
    2, p-values to 3 significant digits; the machine-readable table with every
    column is ``clusters.csv``.
    """
    cols = [c for c in DISPLAY_COLUMNS if c in clusters.columns]
    out = clusters[cols].copy()
    for c in ("cluster_id", "peak_x", "peak_y", "peak_z"):
        if c in out:
            out[c] = out[c].astype(int)
    if "volume_mm3" in out:
        out["volume_mm3"] = out["volume_mm3"].round(0).astype(int)
    for c, nd in (("com_x", 1), ("com_y", 1), ("com_z", 1), ("peak_ale", 4), ("mean_ale", 4),
                  ("peak_zscore", 2), ("mean_zscore", 2)):
        if c in out:
            out[c] = out[c].astype(float).round(nd)
    for c in ("p_fwe_size", "p_fwe_mass", "p_fwe_voxel"):
        if c in out:
            out[c] = [float(f"{v:.3g}") for v in out[c].astype(float)]
    return out.rename(columns=DISPLAY_COLUMNS)


def save_analysis(analysis: ALEAnalysis, out: str | Path, crosscheck: bool = True) -> dict[str, Path]:
    """Write every model's result and the stage tables.

    Each model's reported (primary) result goes to ``out/<model>/``; other
    engines' runs of it to ``out/<model>/engine-<engine>/``. Stage tables:
    ``models.csv``, ``clusters.csv`` (surviving clusters), ``null.csv`` (every
    engine), ``crosscheck.csv`` (when cross-checked) and ``placement.csv``
    (exact vs voxel focus placement, when any model uses exact placement).

    Returns
    -------
    dict
        Table name -> path.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for engine, results in analysis.results.items():
        for name, res in results.items():
            primary = analysis.primary.get(name) is res
            res.save(out / name if primary else out / name / f"engine-{engine}")
    paths = {"models": out / "models.csv", "clusters": out / "clusters.csv", "null": out / "null.csv"}
    analysis.summary.to_csv(paths["models"], index=False)
    analysis.clusters.to_csv(paths["clusters"], index=False)
    analysis.nulls.to_csv(paths["null"], index=False)
    if crosscheck:
        paths["crosscheck"] = out / "crosscheck.csv"
        analysis.crosscheck.to_csv(paths["crosscheck"], index=False)
    if len(analysis.placement):
        paths["placement"] = out / "placement.csv"
        analysis.placement.to_csv(paths["placement"], index=False)
    return paths


# ------------------------------------------------------------------ inputs
def reported_ale_items(path: str | Path) -> pd.DataFrame:
    """The ALE numbers a dataset's ``reported.yaml`` holds (items whose ``kind`` starts with ``ale``).

    Returns
    -------
    pandas.DataFrame
        ``id, what, reported, where`` (values as transcribed; the audit stage
        recomputes them). Empty when the file has none.
    """
    from painmeta.audit import load_reported  # bounded, validated YAML reader (lazy: audit imports ale)

    items = load_reported(Path(path))
    rows = []
    for item in items:
        if not isinstance(item, dict) or not str(item.get("kind", "")).startswith("ale"):
            continue
        value = item.get("value")
        shown = "–".join(str(v) for v in value) if isinstance(value, list) else str(value)
        rows.append({"id": str(item.get("id", "")), "what": str(item.get("what", "")), "reported": shown,
                     "where": str(item.get("where", ""))})
    return pd.DataFrame(rows, columns=["id", "what", "reported", "where"])


def load_tables(processed: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read ``experiments.csv`` and ``foci_mni.csv`` from a processed folder."""
    folder = Path(processed)
    out = []
    for fname in ("experiments.csv", "foci_mni.csv"):
        path = folder / fname
        if not path.is_file():
            raise InputError(f"{path}: not found. Fix: run the extraction stage first (make extraction).")
        out.append(pd.read_csv(path, dtype={"experiment_id": str, "study_id": str}, keep_default_na=True))
    return out[0], out[1]


def load_dataset(dataset: str | Path, overrides: Mapping[str, Any] | None = None) -> tuple[Any, pd.DataFrame, pd.DataFrame]:
    """Config plus processed tables of a dataset: ``(config, experiments, foci)``."""
    from painmeta.config import load_config

    config, paths = load_config(dataset, overrides=dict(overrides) if overrides else None)
    exps, foci = load_tables(paths.processed)
    return config, exps, foci


def nidm_pain_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The 21 nidm_pain studies shipped with NiMARE as (experiments, foci) tables.

    Positive control in the extraction contract's format: one within-group
    (pain > baseline) experiment per study, ``n_ale`` = its sample size,
    ``in_ale`` true, evidence ``verified``. Reads the JSON file directly.
    """
    spec = importlib.util.find_spec("nimare")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("NiMARE is not installed: nidm_pain_dset.json ships with it.")
    path = Path(list(spec.submodule_search_locations)[0]) / "resources" / "nidm_pain_dset.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    exps, foci = [], []
    for study, sdata in data.items():
        for contrast, cdata in sdata["contrasts"].items():
            eid = f"{study.replace('.nidm', '')}-{contrast}"
            coords = cdata["coords"]
            if coords.get("space", "MNI") != "MNI":  # pragma: no cover - the file is MNI
                raise InputError(f"{path}: {eid} not in MNI space")
            exps.append(
                {
                    "experiment_id": eid, "study_id": study, "contrast": "pain > baseline",
                    "contrast_type": "within_group", "direction": "unknown", "modality": "task fMRI",
                    "seed_region": "", "n_ale": int(cdata["metadata"]["sample_sizes"][0]), "in_ale": True,
                    "evidence": "verified", "source": "NiMARE nidm_pain_dset.json",
                }
            )
            for k, (x, y, z) in enumerate(zip(coords["x"], coords["y"], coords["z"])):
                foci.append({"focus_id": f"{eid}_{k + 1:02d}", "experiment_id": eid, "study_id": study,
                             "x": float(x), "y": float(y), "z": float(z)})
    return pd.DataFrame(exps), pd.DataFrame(foci)


def nidm_pain_model(n_iters: int = 1000) -> ALEModel:
    """The positive-control model: all 21 nidm_pain experiments."""
    exps, foci = nidm_pain_tables()
    cfg = {"min_experiments": 2, "recommended_experiments": 17, "include_unverified": True,
           "models": {"nidm_pain": {"contrast_types": ["within_group"], "n_iters": n_iters,
                                    "description": "21 pain fMRI studies (NiMARE nidm_pain positive control)"}}}
    return build_models(exps, foci, cfg)[0]
