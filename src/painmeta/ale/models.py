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
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
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
        include_unverified, models: name -> {contrast_types, directions,
        experiments (optional list of ids), n_iters, description}).

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
    out: list[ALEModel] = []
    for name, mc in models_cfg.items():
        ctypes = list(_cfg(mc, "contrast_types", ["between_group"]))
        dirs = _cfg(mc, "directions", None)
        n_iters = int(_cfg(mc, "n_iters", 1000))
        desc = str(_cfg(mc, "description", "") or "")
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
        model = ALEModel(
            name=name,
            description=desc,
            experiment_ids=keep,
            foci=mfoci,
            sample_sizes=sizes,
            n_iters=n_iters,
            excluded=pd.DataFrame(sorted(excluded), columns=["experiment_id", "reason"]),
        )
        n = len(keep)
        if n < min_exp:
            which = f" ({', '.join(keep)})" if keep else ""
            model.skipped = True
            model.reason = (
                f"{n} usable experiment{'s' if n != 1 else ''}{which} of {len(cand)} candidate"
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
    executor : Executor or scheduler spec, optional
        Where the in-house Monte Carlo runs (:mod:`painmeta.ale.executor`);
        NiMARE always runs in-process with ``n_cores``.

    Raises
    ------
    InputError
        Model skipped or unknown engine.
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
    )
    if engine == "nimare":
        from painmeta.ale.nimare_engine import run_nimare

        result = run_nimare(**kw)
    elif engine == "inhouse":
        from painmeta.ale.inhouse import run_inhouse

        result = run_inhouse(**kw, progress=progress, executor=executor)
    else:
        raise InputError(f"unknown engine {engine!r}; use one of {ENGINES}")
    result.notes.extend(model.warnings)
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
            "n_foci": m.n_foci,
            "n_subjects": m.n_subjects,
            "experiments": ", ".join(m.experiment_ids),
            "excluded": "; ".join(f"{e}: {r}" for e, r in m.excluded.itertuples(index=False)),
            "n_iters": m.n_iters,
        }
        res = results.get(m.name)
        if res is not None:
            s = res.summary()
            for key in (
                "engine", "fwhm_min_mm", "fwhm_max_mm", "ale_min", "ale_max", "p_min",
                "cluster_forming_ale", "cluster_size_threshold_vox", "cluster_size_threshold_mm3",
                "n_clusters_supra", "n_clusters_significant", "seed", "run_time_s",
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
        Engine -> {model name -> ALEResult}.
    summary : pandas.DataFrame
        :func:`model_table` for the primary engine.
    clusters : pandas.DataFrame
        Significant clusters of every model (primary engine).
    nulls : pandas.DataFrame
        Monte Carlo nulls (all engines run).
    contributions : pandas.DataFrame
        Jackknife / focus counts (primary engine).
    crosscheck : pandas.DataFrame
        Engine agreement per model (empty when not requested).
    """

    models: list[ALEModel]
    results: dict[str, dict[str, ALEResult]]
    summary: pd.DataFrame
    clusters: pd.DataFrame
    nulls: pd.DataFrame
    contributions: pd.DataFrame
    crosscheck: pd.DataFrame


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
    executor: Any = None,
) -> ALEAnalysis:
    """Build and run every model; optionally cross-check the two engines.

    Parameters
    ----------
    experiments, foci, ale_config
        See :func:`build_models`.
    engine : {"nimare", "inhouse"}
        Primary engine (its results fill ``summary``/``clusters``).
    crosscheck : bool
        Also run the other engine on every model and compare
        (:func:`painmeta.ale.crosscheck.crosscheck`). With ``engine="inhouse"``
        and ``ale_config.crosscheck_max_iters``, NiMARE runs only that many
        iterations (an exact check on identical draws) and the in-house result
        keeps all of the model's iterations.
    n_iters : int, optional
        Override every model's Monte Carlo iterations (e.g. quick runs).
    seed, n_cores : int, optional
        Default to ``ale_config.seed`` / ``ale_config.n_cores``.
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
    checks = []
    from painmeta.ale.executor import get_executor

    spec = _cfg(ale_config, "executor", None) if executor is None else executor
    # A cross-check budget only makes sense when the in-house engine gives the result.
    budget = _cfg(ale_config, "crosscheck_max_iters", None) if engine == "inhouse" else None
    ex = get_executor(spec)  # one cluster for every model, closed below if made here
    try:
        for m in models:
            if m.skipped:
                continue
            if crosscheck:
                cc = xc.crosscheck(
                    m.foci[["experiment_id", "x", "y", "z"]], m.sample_sizes, int(n_iters or m.n_iters), seed,
                    voxel_thresh=vt, cluster_alpha=ca, n_cores=n_cores, name=m.name, contributions=contributions,
                    executor=ex, max_iters=budget,
                )
                inhouse_res = cc.inhouse_full if cc.inhouse_full is not None else cc.inhouse
                for key, res in (("nimare", cc.nimare), ("inhouse", inhouse_res)):
                    res.notes.extend(w for w in m.warnings if w not in res.notes)
                    results.setdefault(key, {})[m.name] = res
                checks.append(cc.table)
            else:
                results[engine][m.name] = run_model(
                    m, engine, seed, vt, ca, n_cores, n_iters, contributions, progress, executor=ex
                )
    finally:
        if ex is not executor:
            ex.close()
    primary = results.get(engine, {})
    nulls = pd.concat([null_tables(r) for r in results.values()], ignore_index=True)
    return ALEAnalysis(
        models=models,
        results=results,
        summary=model_table(models, primary),
        clusters=cluster_tables(primary),
        nulls=nulls,
        contributions=contribution_tables(primary),
        crosscheck=pd.concat(checks, ignore_index=True) if checks else pd.DataFrame(columns=xc.TABLE_COLUMNS),
    )


# ------------------------------------------------------------------ inputs
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
