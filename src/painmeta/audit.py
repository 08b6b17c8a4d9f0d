"""Reproduction audit: every number a paper reports beside what the data allow us to recompute.

``data/raw/<dataset>/reported.yaml`` (optional; format in docs/TABLES.md) holds a paper's numbers:
``items`` (scalars, ranges, proportions, each with a ``kind`` that says how to recompute it),
``cluster_tables`` (published ALE cluster tables, compared cluster by cluster with this pipeline's
clusters of the same model: :mod:`painmeta.reproduction`) and ``maps`` (published unthresholded maps,
compared voxel by voxel). :func:`audit` returns one row per item with

- ``recomputed``: the value computed here from ``data/raw`` by code in ``src`` (ALE values come from the
  ALE stage's outputs, ``outputs/<dataset>/ale/<model>/summary.json``, never from a formula);
- ``status``, one of :data:`STATUSES`:

  * ``match``: recomputed from the data and equal at the printed precision;
  * ``consistent by construction``: equal, but only because the value was copied into the config or the
    tables (a setting, a count of rows we entered from the paper's own list), is a software constant, or
    follows from a formula of copied inputs. It shows the transcription is right, not that a result
    reproduces, and the headline never counts it as a match;
  * ``mismatch``: recomputed and different;
  * ``not reproducible``: the inputs needed are not public (the reason says which);
  * ``not compared``: the audit lists it but does not judge it (below a stated size floor, or the
    analysis has not run here);
- ``reason``: one line saying why;
- ``engine_check``: for proportions and heterogeneity, the same engine run on the counts the paper's
  numbers imply (``review_implied_counts.csv``), which shows whether our statistics reproduce the
  paper's where its inputs are known.

:func:`inconsistencies` lists the paper's internal contradictions, each computed from the data (the few
that can only be read, not computed, come from an item's ``inconsistency`` in ``reported.yaml``).

Reported values are compared at the precision they are printed with (two decimals for proportions, four
for p-values, two significant digits for ALE values), because that is all a paper gives.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from painmeta.errors import InputError

MATCH = "match"
BY_CONSTRUCTION = "consistent by construction"
MISMATCH = "mismatch"
NOT_REPRODUCIBLE = "not reproducible"
NOT_COMPARED = "not compared"
#: Every status, in display order. Only ``match`` counts as reproduced.
STATUSES = (MATCH, BY_CONSTRUCTION, MISMATCH, NOT_REPRODUCIBLE, NOT_COMPARED)
#: Kept for callers of the old name; the reason says that the inputs are not public.
NOT_PUBLIC = NOT_REPRODUCIBLE

_KINDS = {
    "prisma", "studies", "population", "ale_public", "ale_participants", "ale_mask", "ale_fwhm",
    "ale_summary", "not_public", "ale_inputs_needed", "config", "proportion", "heterogeneity",
}
#: summary.json keys an ``ale_summary`` item may name.
SUMMARY_KEYS = {
    "n_experiments", "n_foci", "n_subjects", "fwhm_min_mm", "fwhm_max_mm", "ale_min", "ale_max", "p_min",
    "z_max", "cluster_forming_ale", "cluster_size_threshold_vox", "cluster_size_threshold_mm3",
    "n_clusters_supra", "n_clusters_significant",
}
_MAX_KEYS = {"ale_max", "z_max", "n_clusters_significant", "n_clusters_supra", "fwhm_max_mm"}


# --------------------------------------------------------------------------- loading


def _read_yaml(path: Path) -> Any:
    # The project's bounded reader: no aliases, duplicate keys refused, bad bytes located.
    from painmeta.yamlio import load_yaml

    return load_yaml(path).data


def _check_cluster_table(where: str, table: Any, problems: list[str]) -> None:
    if not isinstance(table, dict):
        problems.append(f"{where}: must be a mapping with id, what, where, model, clusters")
        return
    for key in ("id", "what", "where", "model", "clusters"):
        if key not in table:
            problems.append(f"{where}: key '{key}' is missing")
    if "fsn_counts" in table:
        from painmeta.reproduction import FSN_COUNTS

        if table["fsn_counts"] not in FSN_COUNTS:
            problems.append(f"{where}: 'fsn_counts' must be one of {', '.join(FSN_COUNTS)} (how the published "
                            "fail-safe N counts; see docs/TABLES.md)")
    k = table.get("fsn_k_max")
    if k is not None and not (isinstance(k, int) and not isinstance(k, bool) and k >= 1):
        problems.append(f"{where}: 'fsn_k_max' must be a whole number >= 1 (the most null experiments a published "
                        "file drawer held)")
    clusters = table.get("clusters")
    if not isinstance(clusters, list) or not clusters:
        problems.append(f"{where}: 'clusters' must be a non-empty list")
        return
    for j, c in enumerate(clusters, 1):
        cw = f"{where}, cluster {j}"
        if not isinstance(c, dict):
            problems.append(f"{cw}: must be a mapping with cluster, volume_mm3, peak")
            continue
        for key in ("volume_mm3", "peak"):
            if key not in c:
                problems.append(f"{cw}: key '{key}' is missing")
        peak = c.get("peak")
        if "peak" in c and not (isinstance(peak, list) and len(peak) == 3
                                and all(isinstance(v, (int, float)) and abs(v) <= 150 for v in peak)):
            problems.append(f"{cw}: 'peak' must be [x, y, z] in MNI mm (|value| <= 150)")
        vol = c.get("volume_mm3")
        if "volume_mm3" in c and not (isinstance(vol, (int, float)) and vol > 0):
            problems.append(f"{cw}: 'volume_mm3' must be a positive number")
        fm, ci = c.get("fsn_mean"), c.get("fsn_ci")
        if fm is not None and not (isinstance(fm, (int, float)) and not isinstance(fm, bool) and fm >= 0):
            problems.append(f"{cw}: 'fsn_mean' must be a number >= 0 (the published mean fail-safe N)")
        if ci is not None and not (isinstance(ci, list) and len(ci) == 2
                                   and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in ci)
                                   and ci[0] <= ci[1]):
            problems.append(f"{cw}: 'fsn_ci' must be [lower, upper] (numbers, lower <= upper)")


def load_reported(path: Path | str) -> list[dict[str, Any]]:
    """Load and validate ``reported.yaml``; return its scalar ``items``.

    Use :func:`load_reported_all` for the cluster tables and maps as well.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    list of dict
        The ``items`` (may be empty when the file holds only cluster tables).

    Raises
    ------
    InputError
        Naming the item (by position and id) and the key that is wrong.
    """
    return load_reported_all(path)["items"]


def reported_cluster_tables(raw: Path | str) -> list[dict[str, Any]]:
    """The validated cluster tables of a dataset folder's ``reported.yaml``; empty when it has none."""
    path = Path(raw) / "reported.yaml"
    return load_reported_all(path)["cluster_tables"] if path.is_file() else []


def load_reported_all(path: Path | str) -> dict[str, Any]:
    """Load and validate every part of ``reported.yaml``.

    Returns
    -------
    dict
        ``paper`` (str), ``items``, ``cluster_tables``, ``maps`` (lists, possibly empty).

    Raises
    ------
    InputError
        One line per problem, naming the part, the entry (position and id) and the key.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: not found; the audit needs the paper's reported numbers")
    data = _read_yaml(path) or {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: must be a mapping with 'items', 'cluster_tables' and/or 'maps'")
    unknown = set(data) - {"paper", "review", "items", "cluster_tables", "maps"}
    problems: list[str] = [f"{path}: unknown top-level key '{k}' (use paper, items, cluster_tables, maps)"
                           for k in sorted(map(str, unknown))]
    items = data.get("items") or []
    tables = data.get("cluster_tables") or []
    maps = data.get("maps") or []
    for key, value in (("items", items), ("cluster_tables", tables), ("maps", maps)):
        if not isinstance(value, list):
            problems.append(f"{path}: '{key}' must be a list")
    if problems:
        raise InputError("\n".join(problems))
    if not (items or tables or maps):
        raise InputError(f"{path}: needs at least one entry under 'items', 'cluster_tables' or 'maps'")
    seen: set = set()
    for i, item in enumerate(items, 1):
        where = f"{path}, item {i}"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be a mapping with id, what, value, where, kind")
            continue
        where += f" ('{item.get('id', '?')}')"
        for key in ("id", "what", "value", "where", "kind"):
            if key not in item:
                problems.append(f"{where}: key '{key}' is missing")
        kind = item.get("kind")
        if kind not in _KINDS:
            problems.append(f"{where}: kind '{kind}' is not one of {sorted(_KINDS)}")
        if item.get("id") in seen:
            problems.append(f"{where}: id is used twice; ids must be unique")
        seen.add(item.get("id"))
        if kind == "proportion" and not ({"network", "subgroup"} & set(item)):
            problems.append(f"{where}: a proportion needs 'network' or 'subgroup'")
        if kind == "ale_summary":
            if item.get("key") not in SUMMARY_KEYS:
                problems.append(f"{where}: an ale_summary needs 'key', one of {sorted(SUMMARY_KEYS)}")
            if not ({"model", "models"} & set(item)):
                problems.append(f"{where}: an ale_summary needs 'model' (one) or 'models' (a list, or 'all')")
        stated = item.get("inconsistency")
        if stated is not None and not (isinstance(stated, dict) and set(stated) <= {"issue", "evidence", "consequence"}
                                       and all(isinstance(stated.get(k), str) and stated[k].strip()
                                               for k in ("issue", "consequence"))
                                       and isinstance(stated.get("evidence", ""), str)):
            problems.append(f"{where}: 'inconsistency' must be a mapping with text 'issue' and 'consequence' "
                            "(and optionally 'evidence')")
        if kind == "config" and not isinstance(item.get("key"), str):
            problems.append(f"{where}: a config item needs 'key', the dotted path in dataset.yaml "
                            "(e.g. ale.models.all.n_iters)")
    for i, table in enumerate(tables, 1):
        where = f"{path}, cluster table {i}" + (f" ('{table.get('id')}')" if isinstance(table, dict) else "")
        _check_cluster_table(where, table, problems)
        if isinstance(table, dict):
            if table.get("id") in seen:
                problems.append(f"{where}: id is used twice; ids must be unique")
            seen.add(table.get("id"))
    for i, m in enumerate(maps, 1):
        where = f"{path}, map {i}"
        if not isinstance(m, dict):
            problems.append(f"{where}: must be a mapping with id, what, model, file")
            continue
        for key in ("id", "what", "model", "file"):
            if key not in m:
                problems.append(f"{where}: key '{key}' is missing")
        if m.get("emulate") not in (None, "nimare_0.0.9"):
            problems.append(f"{where}: 'emulate' must be nimare_0.0.9 (the only software emulation known)")
        f = str(m.get("file", ""))
        if f.startswith("/") or ".." in Path(f).parts:
            problems.append(f"{where}: 'file' must be a path inside the dataset folder")
        elif "file" in m and not (path.parent / f).is_file():
            problems.append(f"{where}: file '{f}' not found in {path.parent}")
    if problems:
        raise InputError("\n".join(problems))
    return {"paper": str(data.get("paper") or data.get("review") or ""), "items": items,
            "cluster_tables": tables, "maps": maps}


# --------------------------------------------------------------------------- comparisons


def _decimals(value: float) -> int:
    """Decimals in a number's shortest repr (YAML drops trailing zeros, so callers use at least 2)."""
    exp = Decimal(repr(value)).as_tuple().exponent
    return max(-int(exp), 0) if isinstance(exp, int) else 0


def same_at_precision(reported: float, recomputed: float, decimals: int | None = None) -> bool:
    """Whether ``recomputed`` rounds to ``reported`` at the printed precision.

    Parameters
    ----------
    reported, recomputed : float
    decimals : int, optional
        Decimal places of the printed value (default: inferred, at least 2).

    Returns
    -------
    bool
    """
    if recomputed is None or (isinstance(recomputed, float) and math.isnan(recomputed)):
        return False
    d = max(_decimals(reported), 2) if decimals is None else decimals
    # Half a unit in the last printed place, plus float slack.
    return abs(recomputed - reported) <= 0.5 * 10 ** (-d) + 1e-12


def _same_sig(reported: float, recomputed: float, sig: int = 2) -> bool:
    if reported == 0:
        return recomputed == 0
    scale = 10 ** (math.floor(math.log10(abs(reported))) - sig + 1)
    return abs(recomputed - reported) <= 0.5 * scale + 1e-15


@dataclass
class AuditContext:
    """Everything the audit recomputes from, built once per dataset."""

    config: Any
    paths: Any
    ext: Any
    roi: Any
    analyses: dict
    implied: pd.DataFrame | None
    prisma_checks: pd.DataFrame | None
    ale: dict = field(default_factory=dict)
    ale_models: pd.DataFrame | None = None

    def ale_dir(self) -> Path:
        """``outputs/<dataset>/ale`` (the ALE stage's outputs)."""
        return self.paths.outputs / "ale"


def build_context(dataset: str, overrides: dict | None = None) -> AuditContext:
    """Recompute the inputs of the audit: extraction, ROI matrices, proportions, PRISMA checks.

    ALE values are read from the ALE stage's outputs (``outputs/<dataset>/ale/``): run that stage first.

    Parameters
    ----------
    dataset : str
    overrides : dict, optional
        Config overrides.

    Returns
    -------
    AuditContext
    """
    from painmeta import extraction, proportions, roi

    ext, config, paths = extraction.extract(dataset, overrides)
    result = roi.synthesise(ext, config)
    analyses = proportions.analyse_levels(result.counts, config)
    implied = roi.implied_review_counts(dataset) if (paths.raw / "review_implied_counts.csv").is_file() else None
    checks = None
    if (paths.raw / "prisma.yaml").is_file():
        from painmeta import prisma

        checks = prisma.check_arithmetic(prisma.load_prisma(paths.raw / "prisma.yaml"))
    from painmeta.reproduction import load_ale_outputs

    ale_dir = paths.outputs / "ale"
    models_csv = ale_dir / "models.csv"
    return AuditContext(config, paths, ext, result, analyses, implied, checks,
                        ale=load_ale_outputs(ale_dir),
                        ale_models=pd.read_csv(models_csv) if models_csv.is_file() else None)


def _implied_result(ctx: AuditContext, level: str, subgroup: str):
    """metaprop on the paper-implied per-network counts of one level (overall only)."""
    from painmeta.proportions import metaprop

    if ctx.implied is None:
        return None
    rows = ctx.implied[(ctx.implied["level"] == level) & (ctx.implied["subgroup"] == subgroup)
                       & (ctx.implied["network"] != "all")]
    if rows.empty:
        return None
    return metaprop(rows["events"].astype(int), rows["n"].astype(int), labels=rows["network"].tolist())


def study_variant_counts(ctx: AuditContext) -> tuple[list[int], list[int], list[str]] | None:
    """The implied study-level counts with the most frequent network raised to every study.

    A paper's per-network proportions and its pooled overall proportion may not
    agree: the variant tests whether one network counted in every study (the
    first of the most frequent, raised to ``n/n``) reproduces the pooled value.
    Which network is not knowable; the pooled result is the same whichever of
    the tied networks it is (the rows are exchangeable in the GLMM).

    Returns
    -------
    (events, totals, networks) or None when the dataset has no implied counts.
    """
    if ctx.implied is None:
        return None
    text = ctx.implied[(ctx.implied["level"] == "study") & (ctx.implied["subgroup"] == "overall")
                       & (ctx.implied["network"] != "all")]
    if text.empty:
        return None
    events = text["events"].astype(int).tolist()
    totals = text["n"].astype(int).tolist()
    i = events.index(max(events))
    events[i] = totals[i]
    return events, totals, text["network"].tolist()


def _ale_studies(ctx: AuditContext) -> pd.DataFrame:
    st = ctx.ext.studies
    return st[st["syntheses"].str.contains("ale", na=False)]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "–".join(_fmt(v) for v in value)
    return str(value)


def _row(item: dict, recomputed: Any, status: str, reason: str, engine: str = "") -> dict[str, Any]:
    value = item["value"]
    reported = _fmt(value) + (f" ({_fmt(item['ci'])})" if item.get("ci") else "")
    return {"id": item["id"], "what": item["what"], "where": item["where"], "reported": reported,
            "recomputed": recomputed, "status": status, "reason": reason, "engine_check": engine}


def _audit_item(item: dict, ctx: AuditContext) -> dict[str, Any]:  # noqa: C901 - one branch per kind
    kind, value, iid = item["kind"], item["value"], item["id"]
    ext = ctx.ext

    if kind == "prisma":
        if iid == "records_identified" and ctx.prisma_checks is not None:
            chk = ctx.prisma_checks.set_index("check").loc["records_identified"]
            observed = int(chk["observed"])
            # The sum of the paper's own per-source counts: arithmetic on transcribed numbers.
            status = BY_CONSTRUCTION if observed == value else MISMATCH
            return _row(item, observed, status,
                        f"sum of the paper's own per-source counts ({chk['relation']})" if status == MISMATCH
                        else "sum of the paper's own per-source counts (arithmetic on transcribed numbers)")
        return _row(item, None, NOT_REPRODUCIBLE,
                    "inputs not public: database exports and screening records; the search cannot be re-counted")

    if kind == "studies":
        # studies.csv lists the studies the paper names, and `syntheses` codes what its text says each
        # entered: counting them re-reads our transcription of the paper, not independent data.
        if iid == "studies_included":
            n = len(ext.studies)
            return _row(item, n, BY_CONSTRUCTION if n == value else MISMATCH,
                        f"rows of studies.csv, entered from the paper's own list "
                        f"({int((~ext.studies['identified']).sum())} unidentified)")
        quant = ext.studies["syntheses"].str.contains("roi|ale", na=False)
        n = int(quant.sum())
        return _row(item, n, BY_CONSTRUCTION if n == value else MISMATCH,
                    "studies coded (from the paper's text) as entering ROI or ALE: "
                    + ", ".join(ext.studies.loc[quant, "study_id"]))

    if kind == "population":
        identified = ext.studies[ext.studies["identified"]]
        found = sorted(set(identified["cancer_type"]))
        ok = found == [value]
        others = identified.loc[identified["cancer_type"] != value, ["study_id", "cancer_type"]]
        return _row(item, "; ".join(found), MATCH if ok else MISMATCH,
                    "all identified studies, from their own abstracts" if ok else
                    "not all (primary abstracts): "
                    + ", ".join(f"{r.study_id} ({r.cancer_type})" for r in others.itertuples()))

    if kind == "ale_public":
        in_ale = ext.experiments[ext.experiments["in_ale"]]
        if iid == "ale_datasets":
            got = int(in_ale["study_id"].nunique())
            what = f"{got} stud(ies) with public coordinates ({', '.join(sorted(set(in_ale['study_id'])))})"
        else:
            got = int(ext.foci["experiment_id"].isin(in_ale["experiment_id"]).sum())
            by_ev = ext.foci.loc[ext.foci["experiment_id"].isin(in_ale["experiment_id"]), "evidence"].value_counts()
            what = f"{got} public foci (" + ", ".join(f"{n} {k}" for k, n in by_ev.items()) + ")"
        status = MATCH if got == value else NOT_REPRODUCIBLE
        return _row(item, got, status, what + ("" if status == MATCH else
                                               "; inputs not public: the other studies' coordinates"))

    if kind == "ale_participants":
        ale = _ale_studies(ctx)
        n_ale = ext.experiments.groupby("study_id")["n_ale"].max()
        parts = [(s, int(n_ale.get(s))) for s in ale["study_id"] if pd.notna(n_ale.get(s))]
        total = sum(n for _, n in parts)
        return _row(item, total, MATCH if total == value else MISMATCH,
                    "patients entering ALE, from the primary studies' abstracts: "
                    + " + ".join(f"{s} {n}" for s, n in parts))

    if kind == "ale_mask":
        from painmeta.coords import brain_mask

        mask, _ = brain_mask()
        n = int(mask.sum())
        return _row(item, n, BY_CONSTRUCTION if n == value else MISMATCH,
                    "a software constant: NiMARE's MNI152 2 mm mask (shipped in the wheel), not a result")

    if kind == "ale_fwhm":
        from painmeta.ale.kernel import fwhm_from_sample_size

        ale = _ale_studies(ctx)
        n_ale = ext.experiments[ext.experiments["study_id"].isin(ale["study_id"])]["n_ale"].dropna().astype(int)
        if n_ale.empty:
            return _row(item, None, NOT_REPRODUCIBLE, "inputs not public: no sample size of an ALE study")
        fwhms = sorted(fwhm_from_sample_size(n) for n in set(n_ale))
        lo, hi = round(fwhms[0], 2), round(fwhms[-1], 2)
        ok = same_at_precision(value[0], lo) and same_at_precision(value[1], hi)
        by_n = ", ".join(f"n={n}: {fwhm_from_sample_size(n):.2f} mm" for n in sorted(set(n_ale)))
        if not ok:
            # The paper's endpoints may come from a subset of sample sizes: check they are kernel values.
            ends = {round(fwhm_from_sample_size(n), 2) for n in set(n_ale)}
            ok = value[0] in ends and value[1] in ends
        return _row(item, f"{lo}–{hi}", BY_CONSTRUCTION if ok else MISMATCH,
                    f"a formula of the sample sizes (Eickhoff 2009 kernel: {by_n}); it checks which n the paper "
                    "used, not a result of the data")

    if kind == "ale_summary":
        return _audit_ale_summary(item, ctx)

    if kind in ("not_public", "ale_inputs_needed"):
        return _row(item, None, NOT_REPRODUCIBLE, "inputs not public: " + str(
            item.get("needs") or "the value depends on inputs the paper does not publish"))

    if kind == "config":
        got = _config_value(ctx.config, item["key"])
        same = got == value or (isinstance(got, float) and isinstance(value, (int, float))
                                and math.isclose(got, value))
        return _row(item, got, BY_CONSTRUCTION if same else MISMATCH,
                    f"dataset.yaml '{item['key']}' transcribes the paper's setting (a parameter, not a result)")

    if kind in ("proportion", "heterogeneity"):
        return _audit_pooled(item, ctx)

    raise InputError(f"reported.yaml item '{iid}': unknown kind {kind}")  # pragma: no cover (validated)


def _config_value(config: Any, dotted: str) -> Any:
    """Value at a dotted path of the validated config (``ale.models.all.n_iters``); None if absent."""
    obj: Any = config
    for part in dotted.split("."):
        if isinstance(obj, dict):
            obj = obj.get(part)
        else:
            obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _model_status_reason(ctx: AuditContext, model: str) -> str:
    """Why a model has no outputs: skipped (with the ALE stage's reason) or the stage has not run."""
    if ctx.ale_models is None:
        return "the ALE stage has not run (make ale)"
    row = ctx.ale_models[ctx.ale_models["model"] == model]
    if row.empty:
        return f"model '{model}' is not configured"
    reason = row.iloc[0].get("reason")
    return f"model '{model}' was {row.iloc[0]['status']}" + (f": {reason}" if isinstance(reason, str) and reason
                                                              else "")


def _audit_ale_summary(item: dict, ctx: AuditContext) -> dict[str, Any]:
    """A number from the ALE stage's summary.json of one model (or the extreme over several)."""
    key, value = item["key"], item["value"]
    names = item.get("models", [item.get("model")])
    if names == "all":
        names = list(ctx.ale_models["model"]) if ctx.ale_models is not None else []
    have = {n: ctx.ale[n].summary[key] for n in names if n in ctx.ale and ctx.ale[n].summary.get(key) is not None}
    missing = [n for n in names if n not in have]
    if not have:
        why = "; ".join(_model_status_reason(ctx, n) for n in names) or "no ALE model is configured"
        if item.get("partial_inputs") and ctx.ale_models is not None:
            return _row(item, None, NOT_REPRODUCIBLE, f"inputs not public: {item['partial_inputs']}; {why}")
        return _row(item, None, NOT_COMPARED, why)
    pick = max if key in _MAX_KEYS else min
    model = pick(have, key=have.get) if len(have) > 1 else next(iter(have))
    got = have[model]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"reported.yaml item '{item['id']}': an ale_summary value must be a number")
    if isinstance(value, int) and float(got) == int(got):
        ok, shown = int(got) == value, int(got)
    elif "decimals" in item:
        ok, shown = same_at_precision(value, float(got), int(item["decimals"])), float(got)
    else:
        ok, shown = _same_sig(value, float(got), int(item.get("sig", 2))), float(got)
    where = f"model '{model}'" + (f" (largest of {', '.join(have)})" if len(have) > 1 else "")
    reason = f"{key} from the ALE stage's outputs, {where}"
    if missing:
        reason += "; models that did not run (the ALE stage says why): " + ", ".join(missing)
    if item.get("note"):
        reason += f"; {item['note']}"
    if item.get("partial_inputs"):
        # Our models run on a subset of the paper's inputs: a value is shown, never judged.
        return _row(item, shown, NOT_REPRODUCIBLE,
                    f"inputs not public: {item['partial_inputs']}; here {reason} ("
                    f"{'equal' if ok else 'different'} at the printed precision, from different inputs)")
    if not ok and len(have) < len(names):
        return _row(item, shown, NOT_COMPARED, reason + " (the models that did not run could change it)")
    return _row(item, shown, MATCH if ok else MISMATCH, reason)


def _het_value(res: Any, item_id: str) -> float | None:
    """I2 (%), tau or Wald-Q p of a metaprop result, by reported.yaml id."""
    if res is None:
        return None
    het = res.heterogeneity
    return {"het_i2": het.I2, "het_tau": het.tau, "het_p": het.p}[item_id]


def _audit_pooled(item: dict, ctx: AuditContext) -> dict[str, Any]:
    value = item["value"]
    level = item.get("level", "study")
    network = item.get("network")
    subgroup = item.get("subgroup", "overall")
    la = ctx.analyses.get(level)

    def pick(res, net):
        if res is None:
            return None
        if net is None:
            return res.random
        for row in res.rows:
            if row.label == ctx.config.network_labels.get(net, net) or row.label == net:
                return row
        return None

    # 1) From the public data.
    if item["kind"] == "heterogeneity":
        res = la.overall if la else None
        got = _het_value(res, item["id"])
        decimals = 4 if item["id"] == "het_p" else 1
    else:
        if la is None or la.overall is None:
            res = None
        elif subgroup == "overall" or network is not None:
            res = la.overall
        else:
            res = la.subgroups.groups.get(subgroup) if la.subgroups else None
        est = pick(res, network)
        got = getattr(est, "proportion", None)
        decimals = 2
    public_ok = got is not None and same_at_precision(value, got, decimals)
    if public_ok:
        status, reason = MATCH, "recomputed from the public findings"
    else:
        status = NOT_REPRODUCIBLE
        reason = ("inputs not public: the paper's ROI matrices; ours from public findings give "
                  + (f"{got:.{decimals}f}" if got is not None else "nothing"))
    # 2) The engine on the counts the paper's numbers imply.
    engine = ""
    if ctx.implied is not None:
        if item["kind"] == "heterogeneity":
            from painmeta.proportions import metaprop

            variant = study_variant_counts(ctx)
            eng = _het_value(metaprop(variant[0], variant[1]) if variant else None, item["id"])
        else:
            if network is None and subgroup == "overall":
                imp = _implied_result(ctx, level, "overall")
                eng = imp.random.proportion if imp else None
            elif network is not None:
                row = pick(_implied_result(ctx, level, "overall"), network)
                eng = row.proportion if row else None
            else:
                # Only the direction-specific totals are implied, not their split over networks,
                # so the engine cannot re-pool them: compare the implied total proportion.
                imp_row = ctx.implied[(ctx.implied["level"] == level) & (ctx.implied["subgroup"] == subgroup)
                                      & (ctx.implied["network"] == "all")]
                eng = (float(imp_row["events"].iloc[0]) / float(imp_row["n"].iloc[0])) if len(imp_row) else None
        if eng is not None:
            ok = same_at_precision(value, eng, decimals)
            ci = item.get("ci")
            source = (f"the study-level counts with {_variant_words(variant)}" if item["kind"] == "heterogeneity"
                      else "the implied counts")
            engine = f"{'match' if ok else 'mismatch'}: {eng:.{decimals}f} from {source}"
            if ci and item["kind"] == "proportion" and network is None and subgroup == "overall":
                imp = _implied_result(ctx, level, "overall")
                ci_ok = same_at_precision(ci[0], imp.random.lower) and same_at_precision(ci[1], imp.random.upper)
                engine += f", CI {imp.random.lower:.2f}–{imp.random.upper:.2f} ({'match' if ci_ok else 'mismatch'})"
                variant = study_variant_counts(ctx) if level == "study" else None
                if variant and not ok:
                    from painmeta.proportions import metaprop

                    v = metaprop(variant[0], variant[1]).random
                    v_ok = same_at_precision(value, v.proportion) and same_at_precision(ci[0], v.lower) \
                        and same_at_precision(ci[1], v.upper)
                    engine += (f"; with {_variant_words(variant)}: "
                               f"{v.proportion:.2f} ({v.lower:.2f}–{v.upper:.2f}) ({'match' if v_ok else 'mismatch'})")
    return _row(item, None if got is None else round(got, 4), status, reason, engine)


AUDIT_COLUMNS = ["id", "what", "where", "reported", "recomputed", "status", "reason", "engine_check"]


def has_reported(ctx: AuditContext) -> bool:
    """Whether the dataset carries a ``reported.yaml`` (without one there is nothing to audit)."""
    return (ctx.paths.raw / "reported.yaml").is_file()


def audit(ctx: AuditContext) -> pd.DataFrame:
    """Audit every reported scalar of a dataset (``items`` of ``reported.yaml``).

    Parameters
    ----------
    ctx : AuditContext
        From :func:`build_context`.

    Returns
    -------
    pandas.DataFrame
        Columns ``id, what, where, reported, recomputed, status, reason, engine_check`` (no rows when the
        file holds only cluster tables or maps).
    """
    items = load_reported(ctx.paths.raw / "reported.yaml")
    rows = [_audit_item(item, ctx) for item in items]
    for r in rows:  # whole numbers stay whole (a count is not 50.0); the column mixes numbers and text
        v = r["recomputed"]
        if isinstance(v, float) and math.isfinite(v) and v == int(v) and abs(v) < 1e15 and "." not in str(
                r["reported"]):
            r["recomputed"] = int(v)
    return pd.DataFrame(rows, columns=AUDIT_COLUMNS, dtype=object)


def cluster_comparison(ctx: AuditContext) -> pd.DataFrame:
    """Every published cluster table beside this pipeline's clusters (:func:`painmeta.reproduction.match_clusters`).

    Returns
    -------
    pandas.DataFrame
        One row per published cluster (and per unmatched cluster of ours), with its table's id; empty
        when ``reported.yaml`` has no cluster tables.
    """
    from painmeta.reproduction import CLUSTER_MATCH_COLUMNS, match_clusters

    from painmeta.reproduction import ContrastOutput

    tables = load_reported_all(ctx.paths.raw / "reported.yaml")["cluster_tables"]
    parts = []
    for t in tables:
        output = ctx.ale.get(t["model"])
        folder = ctx.ale_dir() / str(t["model"])
        if str(t["model"]).startswith("contrast-") and (folder / "clusters.csv").is_file():
            output = ContrastOutput(t["model"], folder, t.get("direction"))
        parts.append(match_clusters(t, output))
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CLUSTER_MATCH_COLUMNS)


def fsn_comparison(ctx: AuditContext) -> pd.DataFrame:
    """Every published fail-safe N beside ours at the same peak (:func:`painmeta.reproduction.compare_fsn`).

    Returns
    -------
    pandas.DataFrame
        One row per published cluster with a fail-safe N; empty when no table has one.
    """
    from painmeta.reproduction import FSN_COLUMNS, compare_fsn

    parts = [compare_fsn(t, ctx.ale.get(t["model"]))
             for t in load_reported_all(ctx.paths.raw / "reported.yaml")["cluster_tables"]]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=FSN_COLUMNS)


def map_comparisons(ctx: AuditContext) -> list[dict[str, Any]]:
    """Published unthresholded maps against ours, voxel by voxel (:func:`painmeta.reproduction.compare_maps`).

    Returns
    -------
    list of dict
        Per ``maps`` entry: its ``id``, ``what``, ``model``, ``file`` and either ``stats`` (the comparison) with
        ``ours``/``published`` images, or ``reason`` when our model has no map.
    """
    import nibabel as nib

    from painmeta.coords import brain_mask
    from painmeta.reproduction import compare_maps

    out = []
    for m in load_reported_all(ctx.paths.raw / "reported.yaml")["maps"]:
        entry = dict(m)
        ours = ctx.ale.get(m["model"])
        img = ours.image("ale") if ours is not None else None
        if img is None:
            entry["reason"] = _model_status_reason(ctx, m["model"])
            out.append(entry)
            continue
        pub = nib.load(ctx.paths.raw / m["file"])
        mask, affine = brain_mask()
        canon = nib.as_closest_canonical(img)
        if mask.shape == canon.shape[:3] and nib.affines.voxel_sizes(affine).tolist() == [2.0, 2.0, 2.0]:
            entry["stats"] = compare_maps(img, pub, mask.astype(bool))
        else:  # pragma: no cover - the project's maps are on the mask grid
            entry["stats"] = compare_maps(img, pub)
        entry["ours"], entry["published"] = img, pub
        if m.get("emulate") == "nimare_0.0.9":
            # Same engine, foci placed as NiMARE 0.0.9 placed them: if this matches the published map, the
            # difference above is the focus placement, not the method.
            from painmeta.ale.models import build_models
            from painmeta.reproduction import nimare009_placement, observed_ale_image

            model = {b.name: b for b in build_models(ctx.ext.experiments, ctx.ext.foci, ctx.config.ale)}[m["model"]]
            emulated = observed_ale_image(nimare009_placement(model.foci), model.sample_sizes)
            entry["emulated_stats"] = compare_maps(emulated, pub, mask.astype(bool))
        out.append(entry)
    return out


def headline(table: pd.DataFrame, clusters: pd.DataFrame | None = None, fsn: pd.DataFrame | None = None) -> str:
    """One sentence: how many reported numbers (published clusters, published fail-safe Ns) are recomputed
    and matching.

    Only ``match`` counts; the other statuses are listed after it.
    """
    parts = []
    for what, t in (("reported numbers", table), ("published clusters", clusters),
                    ("published fail-safe Ns", fsn)):
        if t is None or not len(t):
            continue
        t = t[t["status"].notna()]
        if what == "published clusters":
            t = t[t["published_cluster"].notna()]
        counts = t["status"].value_counts()
        rest = ", ".join(f"{int(counts[s])} {s}" for s in STATUSES[1:] if counts.get(s, 0))
        parts.append(f"**{int(counts.get(MATCH, 0))} of {len(t)}** {what} recomputed here and matching"
                     + (f" ({rest})" if rest else ""))
    return "; ".join(parts) + "." if parts else "Nothing to compare."


def _variant_words(variant: tuple[list[int], list[int], list[str]]) -> str:
    """How :func:`study_variant_counts` changed the counts, in words: "one most frequent network at 3/3 (9/15)"."""
    events, totals, _ = variant
    i = next(k for k, (e, n) in enumerate(zip(events, totals)) if e == n)
    return f"one most frequent network at {totals[i]}/{totals[i]} ({sum(events)}/{sum(totals)})"


def inconsistencies(ctx: AuditContext) -> pd.DataFrame:
    """The paper's internal inconsistencies, each computed from the data.

    The checks are generic; a row appears only when the data show the contradiction:

    - PRISMA arithmetic the PRISMA checks flag;
    - a pooled study-level proportion (item ``study_overall``) that the per-network implied counts do not
      give, beside the variant with one most frequent network in every study (:func:`study_variant_counts`);
    - a ``population`` item that not every identified study fits;
    - an ``ale_participants`` item that equals the ALE sample but not the patients the identified studies
      enrolled;
    - any item with an ``inconsistency`` (``issue``, ``consequence``, optional ``evidence``) in
      ``reported.yaml``: a contradiction that can be read in the paper but not computed (its evidence says
      so). Dataset-specific wording lives there, never here.

    Parameters
    ----------
    ctx : AuditContext

    Returns
    -------
    pandas.DataFrame
        Columns ``issue, evidence, consequence``.
    """
    from painmeta.proportions import metaprop

    rows = []
    items = {i["id"]: i for i in load_reported(ctx.paths.raw / "reported.yaml")}
    if ctx.prisma_checks is not None:
        flagged = ctx.prisma_checks[ctx.prisma_checks["status"] == "flag"]
        for r in flagged.itertuples():
            rows.append({"issue": f"PRISMA arithmetic: {r.description}", "evidence": r.relation,
                         "consequence": "the record counts cannot all be right; shown as reported, not corrected"})
    reported = items.get("study_overall")
    variant = study_variant_counts(ctx)
    if reported and variant and isinstance(reported.get("value"), (int, float)):
        text = ctx.implied[(ctx.implied["level"] == "study") & (ctx.implied["subgroup"] == "overall")
                           & (ctx.implied["network"] != "all")]
        text_counts = text["events"].astype(int).tolist()
        n = text["n"].astype(int).tolist()
        res_text = metaprop(text_counts, n)
        res_var = metaprop(variant[0], variant[1])
        value = reported["value"]
        if not same_at_precision(value, res_text.random.proportion):
            gives = same_at_precision(value, res_var.random.proportion)
            rows.append({
                "issue": "Pooled study-level proportion vs the per-network proportions",
                "evidence": (f"per network: {'+'.join(map(str, text_counts))} = {sum(text_counts)}/{sum(n)} → pooled "
                             f"{res_text.random.proportion:.2f} ({res_text.random.lower:.2f}–"
                             f"{res_text.random.upper:.2f}), heterogeneity p {res_text.heterogeneity.p:.4f}; "
                             f"reported {value} ({'–'.join(map(str, reported.get('ci', [])))}), "
                             f"p {items.get('het_p', {}).get('value')}; {'+'.join(map(str, variant[0]))} = "
                             f"{sum(variant[0])}/{sum(variant[1])} gives {res_var.random.proportion:.2f} "
                             f"({res_var.random.lower:.2f}–{res_var.random.upper:.2f}), "
                             f"p {res_var.heterogeneity.p:.4f}"),
                "consequence": (f"the per-network proportions do not give the reported pooled {value}"
                                + (f"; {_variant_words(variant)} does, so the analysis must have counted it "
                                   "although the per-network proportions do not" if gives else "")
                                + ": the study-level numbers cannot all be right"),
            })
    pop = items.get("population")
    if pop:
        identified = ctx.ext.studies[ctx.ext.studies["identified"]]
        other = identified[identified["cancer_type"] != pop["value"]]
        if len(other):
            rows.append({"issue": f"Population described as all {pop['value']}",
                         "evidence": "; ".join(f"{r.study_id}: {r.cancer_type}" for r in other.itertuples()),
                         "consequence": f"the statement that every included study is {pop['value']} does not "
                                        "hold, nor any generalisation that rests on it"})
    part = items.get("ale_participants")
    if part and isinstance(part.get("value"), int):
        ale = _ale_studies(ctx)
        n_ale = ctx.ext.experiments.groupby("study_id")["n_ale"].max()
        in_ale = [(s, int(n_ale.get(s))) for s in ale["study_id"] if pd.notna(n_ale.get(s))]
        total_ale = sum(k for _, k in in_ale)
        enrolled = ctx.ext.studies.loc[ctx.ext.studies["identified"], "n_patients"].dropna().astype(int)
        if in_ale and len(enrolled) and total_ale == part["value"] != int(enrolled.sum()):
            rows.append({"issue": f"{part['what']}: {part['value']}",
                         "evidence": f"{total_ale} = patients of the {len(in_ale)} ALE studies "
                                     f"({' + '.join(str(k) for _, k in in_ale)}); the identified studies enrolled "
                                     f"{int(enrolled.sum())} patients ({' + '.join(map(str, enrolled))})",
                         "consequence": f"{part['value']} is the ALE sample, not the number of patients the "
                                        "included studies enrolled"})
    for iid, item in items.items():
        stated = item.get("inconsistency")
        if stated:
            evidence = stated.get("evidence") or f"{item['what']} = {_fmt(item['value'])} (section {item['where']})"
            rows.append({"issue": str(stated["issue"]),
                         "evidence": f"{evidence} [read in the paper, not computed: reported.yaml item {iid}]",
                         "consequence": str(stated["consequence"])})
    return pd.DataFrame(rows, columns=["issue", "evidence", "consequence"])


def status_counts(table: pd.DataFrame) -> pd.DataFrame:
    """How many reported numbers have each status."""
    return table["status"].value_counts().reindex(STATUSES, fill_value=0).rename_axis("status").reset_index(
        name="n")


def _cmd_audit(args: argparse.Namespace) -> int:
    ctx = build_context(args.dataset)
    if not has_reported(ctx):
        print(f"{ctx.config.name}: no reported.yaml, so there is nothing to audit")
        return 0
    table = audit(ctx)
    out = ctx.paths.processed
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "audit.csv", index=False)
    inconsistencies(ctx).to_csv(out / "audit_inconsistencies.csv", index=False)
    print(status_counts(table).to_string(index=False))
    print(f"wrote {out / 'audit.csv'}")
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add the ``audit`` command."""
    from painmeta.cli import add_dataset_argument

    p = sub.add_parser("audit", help="compare a paper's reported numbers with recomputed ones",
                       description="Compare every number in data/raw/<dataset>/reported.yaml with the value "
                                   "recomputed from the data; write audit.csv to data/processed/<dataset>/.")
    add_dataset_argument(p, legacy_positional=True)
    p.set_defaults(func=_cmd_audit)
