"""Reproduction audit: every number the review reports beside what the data allow us to recompute.

``data/raw/<dataset>/reported.yaml`` lists the review's numbers, each with a
``kind`` that says how to recompute it. :func:`audit` returns one row per
number with

- ``recomputed``: the value computed here from ``data/raw`` by code in ``src``;
- ``status``: ``match``, ``mismatch`` or ``not reproducible (inputs not public)``;
- ``reason``: one line saying why;
- ``engine_check``: for proportions and heterogeneity, the same engine run on
  the counts the review's numbers imply (``review_implied_counts.csv``), which
  shows whether our statistics reproduce the review's where its inputs are known.

:func:`inconsistencies` lists the review's internal contradictions, each
computed from the data rather than asserted.

Reported values are compared at the precision they are printed with (two
decimals for proportions, four for p-values, two significant digits for the
ALE maximum), because that is all the review gives.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from painmeta.errors import InputError

MATCH = "match"
MISMATCH = "mismatch"
NOT_PUBLIC = "not reproducible (inputs not public)"
STATUSES = (MATCH, MISMATCH, NOT_PUBLIC)

_KINDS = {
    "prisma", "studies", "population", "ale_public", "ale_participants", "ale_mask", "ale_fwhm", "ale_max",
    "ale_inputs_needed", "config", "proportion", "heterogeneity",
}


# --------------------------------------------------------------------------- loading


def load_reported(path: Path | str) -> list[dict[str, Any]]:
    """Load and validate ``reported.yaml``.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    list of dict
        The ``items``.

    Raises
    ------
    InputError
        Naming the item (by position and id) and the key that is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: not found; the audit needs the review's reported numbers")
    from painmeta.yamlio import load_yaml  # bounded: no aliases, duplicate keys, bad bytes

    data = load_yaml(path).data or {}
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise InputError(f"{path}: needs a non-empty list under 'items'")
    problems, seen = [], set()
    for i, item in enumerate(items, 1):
        where = f"{path}, item {i}"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be a mapping with id, what, value, where, kind")
            continue
        where += f" ('{item.get('id', '?')}')"
        for key in ("id", "what", "value", "where", "kind"):
            if key not in item:
                problems.append(f"{where}: key '{key}' is missing")
        if item.get("kind") not in _KINDS:
            problems.append(f"{where}: kind '{item.get('kind')}' is not one of {sorted(_KINDS)}")
        if item.get("id") in seen:
            problems.append(f"{where}: id is used twice; ids must be unique")
        seen.add(item.get("id"))
        if item.get("kind") == "proportion" and not ({"network", "subgroup"} & set(item)):
            problems.append(f"{where}: a proportion needs 'network' or 'subgroup'")
    if problems:
        raise InputError("\n".join(problems))
    return items


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


def build_context(dataset: str, overrides: dict | None = None) -> AuditContext:
    """Recompute the inputs of the audit: extraction, ROI matrices, proportions, PRISMA checks.

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
    return AuditContext(config, paths, ext, result, analyses, implied, checks)


def _implied_result(ctx: AuditContext, level: str, subgroup: str):
    """metaprop on the review-implied per-network counts of one level (overall only)."""
    from painmeta.proportions import metaprop

    if ctx.implied is None:
        return None
    rows = ctx.implied[(ctx.implied["level"] == level) & (ctx.implied["subgroup"] == subgroup)
                       & (ctx.implied["network"] != "all")]
    if rows.empty:
        return None
    return metaprop(rows["events"].astype(int), rows["n"].astype(int), labels=rows["network"].tolist())


def study_variant_counts(ctx: AuditContext) -> tuple[list[int], list[int], list[str]] | None:
    """The study-level counts that reproduce the review's reported overall (one 2/3 network at 3/3).

    The text gives 2/3, 2/3, 2/3, 1/3, 1/3 (8/15); the reported overall 0.60
    (0.35-0.81) and heterogeneity p = 0.8646 are produced by 9/15 with one of
    the 2/3 networks at 3/3. Which network is not knowable; the pooled result
    is the same whichever it is (the rows are exchangeable in the GLMM).

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
    ext, config = ctx.ext, ctx.config

    if kind == "prisma":
        if iid == "records_identified" and ctx.prisma_checks is not None:
            chk = ctx.prisma_checks.set_index("check").loc["records_identified"]
            observed = int(chk["observed"])
            status = MATCH if observed == value else MISMATCH
            return _row(item, observed, status,
                        "sum of the review's own per-database counts (1150 + 1312 + 24)" if status == MISMATCH
                        else "sum of the per-database counts")
        return _row(item, None, NOT_PUBLIC,
                    "database exports and screening records are not public; the search cannot be re-counted")

    if kind == "studies":
        if iid == "studies_included":
            n = len(ext.studies)
            return _row(item, n, MATCH if n == value else MISMATCH,
                        f"rows of studies.csv ({int((~ext.studies['identified']).sum())} unidentified)")
        quant = ext.studies["syntheses"].str.contains("roi|ale", na=False)
        n = int(quant.sum())
        return _row(item, n, MATCH if n == value else MISMATCH,
                    "studies entering a quantitative synthesis (ROI or ALE): "
                    + ", ".join(ext.studies.loc[quant, "study_id"]))

    if kind == "population":
        identified = ext.studies[ext.studies["identified"]]
        found = sorted(set(identified["cancer_type"]))
        ok = found == [value]
        others = identified.loc[identified["cancer_type"] != value, ["study_id", "cancer_type"]]
        return _row(item, "; ".join(found), MATCH if ok else MISMATCH,
                    "all identified studies" if ok else
                    "not all: " + ", ".join(f"{r.study_id} ({r.cancer_type})" for r in others.itertuples()))

    if kind == "ale_public":
        in_ale = ext.experiments[ext.experiments["in_ale"]]
        if iid == "ale_datasets":
            got = int(in_ale["study_id"].nunique())
            what = f"{got} stud(ies) with public coordinates ({', '.join(sorted(set(in_ale['study_id'])))})"
        else:
            got = int(ext.foci["experiment_id"].isin(in_ale["experiment_id"]).sum())
            unverified = int((ext.foci["evidence"] == "unverified").sum())
            what = f"{got} public foci, {unverified} with unverified contrast assignment"
        status = MATCH if got == value else NOT_PUBLIC
        return _row(item, got, status, what + ("" if status == MATCH else
                                               "; the other studies' coordinates are not public"))

    if kind == "ale_participants":
        ale = _ale_studies(ctx)
        n_ale = ext.experiments.groupby("study_id")["n_ale"].max()
        parts = [(s, int(n_ale.get(s))) for s in ale["study_id"] if pd.notna(n_ale.get(s))]
        total = sum(n for _, n in parts)
        return _row(item, total, MATCH if total == value else MISMATCH,
                    "patients entering ALE: " + " + ".join(f"{s} {n}" for s, n in parts))

    if kind == "ale_mask":
        from painmeta.coords import brain_mask

        mask, _ = brain_mask()
        n = int(mask.sum())
        return _row(item, n, MATCH if n == value else MISMATCH, "NiMARE's MNI152 2 mm mask (shipped in the wheel)")

    if kind == "ale_fwhm":
        from painmeta.ale.kernel import fwhm_from_sample_size

        ale = _ale_studies(ctx)
        n_ale = ext.experiments[ext.experiments["study_id"].isin(ale["study_id"])]["n_ale"].dropna().astype(int)
        fwhms = sorted(fwhm_from_sample_size(n) for n in set(n_ale))
        lo, hi = round(fwhms[0], 2), round(fwhms[-1], 2)
        # The review's range is that of the experiments it used; ours spans every ALE study's n.
        ok = same_at_precision(value[0], lo) and same_at_precision(value[1], hi)
        by_n = ", ".join(f"n={n}: {fwhm_from_sample_size(n):.2f} mm" for n in sorted(set(n_ale)))
        if not ok:
            # The review's endpoints may come from a subset of sample sizes: check they are kernel values.
            ends = {round(fwhm_from_sample_size(n), 2) for n in set(n_ale)}
            ok = value[0] in ends and value[1] in ends
        return _row(item, f"{lo}–{hi}", MATCH if ok else MISMATCH, f"Eickhoff 2009 kernel ({by_n})")

    if kind == "ale_max":
        from painmeta.ale.kernel import ale_kernel

        peak = ale_kernel(sample_size=20).peak
        return _row(item, round(peak, 6), MATCH if _same_sig(value, peak) else MISMATCH,
                    "peak MA of one isolated focus with the n = 20 kernel: no two experiments overlapped")

    if kind == "ale_inputs_needed":
        return _row(item, None, NOT_PUBLIC,
                    "depends on the review's 11 foci and their contrasts; only Boland's 10 peaks are public, "
                    "with unverified contrast assignment")

    if kind == "config":
        model = {"ale_iters_increase": "increase", "ale_iters_decrease": "decrease"}.get(iid)
        got = config.ale.models[model].n_iters if model in config.ale.models else None
        return _row(item, got, MATCH if got == value else MISMATCH,
                    "dataset.yaml transcribes the review's setting (a parameter, not a result)")

    if kind in ("proportion", "heterogeneity"):
        return _audit_pooled(item, ctx)

    raise InputError(f"reported.yaml item '{iid}': unknown kind {kind}")  # pragma: no cover (validated)


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
        status = NOT_PUBLIC
        reason = ("the review's ROI matrices are not public; ours from public findings give "
                  + (f"{got:.{decimals}f}" if got is not None else "nothing"))
    # 2) The engine on the counts the review's numbers imply.
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
            source = ("the study-level counts with one network at 3/3 (9/15)" if item["kind"] == "heterogeneity"
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
                    engine += (f"; with one network at 3/3 ({sum(variant[0])}/{sum(variant[1])}): "
                               f"{v.proportion:.2f} ({v.lower:.2f}–{v.upper:.2f}) ({'match' if v_ok else 'mismatch'})")
    return _row(item, None if got is None else round(got, 4), status, reason, engine)


def audit(ctx: AuditContext) -> pd.DataFrame:
    """Audit every reported number of a dataset.

    Parameters
    ----------
    ctx : AuditContext
        From :func:`build_context`.

    Returns
    -------
    pandas.DataFrame
        Columns ``id, what, where, reported, recomputed, status, reason, engine_check``.
    """
    items = load_reported(ctx.paths.raw / "reported.yaml")
    return pd.DataFrame([_audit_item(item, ctx) for item in items])


def inconsistencies(ctx: AuditContext) -> pd.DataFrame:
    """The review's internal inconsistencies, each computed from the data.

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
    if ctx.implied is not None:
        text = ctx.implied[(ctx.implied["level"] == "study") & (ctx.implied["subgroup"] == "overall")
                           & (ctx.implied["network"] != "all")]
        text_counts = text["events"].astype(int).tolist()
        n = text["n"].astype(int).tolist()
        res_text = metaprop(text_counts, n)
        reported = items.get("study_overall", {})
        variant = study_variant_counts(ctx)
        if variant:
            res_var = metaprop(variant[0], variant[1])
            rows.append({
                "issue": "Study-level overall proportion vs the per-network proportions in the text",
                "evidence": (f"text: {'+'.join(map(str, text_counts))} = {sum(text_counts)}/{sum(n)} → pooled "
                             f"{res_text.random.proportion:.2f} ({res_text.random.lower:.2f}–"
                             f"{res_text.random.upper:.2f}), heterogeneity p {res_text.heterogeneity.p:.4f}; "
                             f"reported {reported.get('value')} ({'–'.join(map(str, reported.get('ci', [])))}), "
                             f"p {items.get('het_p', {}).get('value')}; {'+'.join(map(str, variant[0]))} = "
                             f"{sum(variant[0])}/{sum(variant[1])} gives {res_var.random.proportion:.2f} "
                             f"({res_var.random.lower:.2f}–{res_var.random.upper:.2f}), "
                             f"p {res_var.heterogeneity.p:.4f}"),
                "consequence": "one network must have been 3/3 in the analysis although the text gives three "
                               "networks at 0.67; the study-level numbers cannot all be right",
            })
    pop = items.get("population")
    if pop:
        identified = ctx.ext.studies[ctx.ext.studies["identified"]]
        other = identified[identified["cancer_type"] != pop["value"]]
        if len(other):
            rows.append({"issue": f"Population described as all {pop['value']}",
                         "evidence": "; ".join(f"{r.study_id}: {r.cancer_type}" for r in other.itertuples()),
                         "consequence": "the generalisability statement (breast cancer only) does not hold"})
    part = items.get("ale_participants")
    if part:
        total_all = ctx.ext.studies["n_patients"].dropna().astype(int)
        rows.append({"issue": "'Five studies enrolling 45 patients' vs 45 ALE participants from three datasets",
                     "evidence": f"45 = patients of the three ALE studies; the identified studies alone enrolled "
                                 f"{int(total_all.sum())} patients ({' + '.join(map(str, total_all))})",
                     "consequence": "45 is the ALE sample, not the review's enrolment"})
    het = items.get("het_p")
    if het and str(het.get("where", "")).startswith("3.3"):
        rows.append({"issue": "Heterogeneity reported in the ALE section",
                     "evidence": f"I² = 0%, τ = 0, p = {het['value']} 'across models' (section 3.3)",
                     "consequence": "these are proportion-meta-analysis statistics (study level), not ALE ones"})
    return pd.DataFrame(rows, columns=["issue", "evidence", "consequence"])


def status_counts(table: pd.DataFrame) -> pd.DataFrame:
    """How many reported numbers have each status."""
    return table["status"].value_counts().reindex(STATUSES, fill_value=0).rename_axis("status").reset_index(
        name="n")


def _cmd_audit(args: argparse.Namespace) -> int:
    ctx = build_context(args.dataset)
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

    p = sub.add_parser("audit", help="compare the review's reported numbers with recomputed ones",
                       description="Compare every number in data/raw/<dataset>/reported.yaml with the value "
                                   "recomputed from the data; write audit.csv to data/processed/<dataset>/.")
    add_dataset_argument(p, legacy_positional=True)
    p.set_defaults(func=_cmd_audit)
