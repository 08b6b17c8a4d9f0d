"""The co-author report: ``outputs/<dataset>/report/index.html``.

The index says what the dataset is (its prose comes from ``dataset.yaml`` and an
optional ``NOTES.md``, never from code), gives the key findings in plain words
(each computed from a stage's outputs, and only when that stage produced
them), links every rendered stage page under a readable title, shows the key
figures (embedded, so the page opens from disk with no network) and a
build-info table: the parameters each stage actually used (marked when they
were overridden), seeds, run times, package versions and the SHA-256 of every
raw input file. Everything from data is escaped (:mod:`painmeta.display`).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import platform
import re
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from painmeta.config import DatasetConfig, load_config
from painmeta.display import TABLE_CSS, format_value, markdown_html, table_html
from painmeta.paths import DatasetPaths, project_root

#: Packages whose versions go into the build-info table.
PACKAGES = ("painmeta", "nimare", "nilearn", "numpy", "scipy", "pandas", "pandera", "statsmodels",
            "matplotlib", "seaborn", "numba", "papermill", "nbconvert")

#: Key figures shown on the index, by stage folder and file stem, in order.
KEY_FIGURES = (
    ("extraction", "foci_glass_brain", "Foci (MNI) with QA errors marked"),
    ("ale", "ale_glass_brain", "ALE glass brain (its title says which map)"),
    ("roi", "roi_matrix_experiment", "Experiment-level ROI matrix"),
    ("roi", "roi_matrix_study", "Study-level ROI matrix"),
    ("proportions", "forest_experiment_overall", "Experiment-level proportions"),
    ("quality", "robins_traffic_light", "ROBINS-I traffic-light plot"),
    ("quality", "prisma_flow", "PRISMA 2020 flow"),
)

#: Longest NOTES.md rendered on the index (characters); a longer file is cut with a note saying so.
NOTES_MAX_CHARS = 100_000

#: What each role means, in one phrase for the page header.
ROLE_PHRASES = {
    "review": "a systematic review rebuilt from its extraction tables",
    "positive_control": "a positive control: convergence is expected here",
    "published": "a published analysis reproduced from its public input",
    "database": "a coordinate database",
    "other": "a dataset",
}

#: Who reports the numbers the audit compares with, by role ("numbers the source reports" by default).
SOURCE_NOUNS = {
    "review": "the review",
    "published": "the paper",
}


def source_noun(role: str) -> str:
    """Who reported the audited numbers, in the words of the dataset's ``role`` (``"the source"`` by default)."""
    return SOURCE_NOUNS.get(role, "the source")


# --------------------------------------------------------------------------- inputs and environment


def sha256(path: Path) -> str:
    """SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def input_checksums(paths: DatasetPaths) -> pd.DataFrame:
    """SHA-256 of every file under the dataset's raw folder and the lookups."""
    root = project_root()
    files = sorted(p for p in paths.raw.rglob("*") if p.is_file())
    files += sorted(p for p in (root / "data" / "lookups").glob("*") if p.is_file())
    rows = []
    for p in files:
        try:
            shown = str(p.relative_to(root))
        except ValueError:
            shown = str(p)
        rows.append({"file": shown, "bytes": p.stat().st_size, "sha256": sha256(p)})
    return pd.DataFrame(rows, columns=["file", "bytes", "sha256"])


def package_versions() -> pd.DataFrame:
    """Installed versions of the packages that determine the results."""
    rows = [{"package": "python", "version": platform.python_version()}]
    for name in PACKAGES:
        try:
            rows.append({"package": name, "version": version(name)})
        except PackageNotFoundError:
            rows.append({"package": name, "version": "not installed"})
    return pd.DataFrame(rows)


def stage_pages(paths: DatasetPaths) -> list[Path]:
    """Rendered stage pages present in the report folder, in stage order."""
    report = paths.outputs / "report"
    return sorted(p for p in report.glob("[0-9][0-9]_*.html"))


def stage_title(stage: str, root: Path | None = None) -> str:
    """Readable title of a stage: the first ``# `` heading of its notebook source.

    ``notebooks/01_ale.py`` starts with ``# # Stage 1 · Activation likelihood
    estimation (ALE)``; without a heading, ``01_ale`` becomes ``Stage 1 · Ale``.
    """
    source = (root or project_root()) / "notebooks" / f"{stage}.py"
    if source.is_file():
        for line in source.read_text(encoding="utf-8").splitlines():
            m = re.match(r"#\s+#\s+(.+)", line)
            if m:
                return m.group(1).strip()
    num, _, name = stage.partition("_")
    return f"Stage {int(num) if num.isdigit() else num} · {name.replace('_', ' ').capitalize()}"


def stage_params(paths: DatasetPaths) -> dict[str, dict[str, Any]]:
    """Parameters each stage actually used: ``outputs/<dataset>/notebooks/<stage>.params.json``.

    ``run_stage`` writes ``{"stage", "dataset", "parameters", "config_overrides",
    "overridden", "effective_config"}`` for each stage it runs. Unreadable files
    are reported as such (``{"error": ...}``), never skipped silently.
    """
    out: dict[str, dict[str, Any]] = {}
    for f in sorted((paths.outputs / "notebooks").glob("*.params.json")):
        stage = f.name[: -len(".params.json")]
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
            out[stage] = data if isinstance(data, dict) else {"error": "not a JSON object"}
        except (OSError, ValueError) as exc:
            out[stage] = {"error": f"unreadable ({exc.__class__.__name__})"}
    return out


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def _compact(value: Any) -> str:
    if value in (None, {}, []):
        return "none"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return format_value(value)


def params_table(config: DatasetConfig, params: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per stage: Papermill parameters, config overrides, whether overridden, values that differ."""
    base = _flatten(config.model_dump(mode="json"))
    rows = []
    for stage, p in params.items():
        if "error" in p:
            rows.append({"stage": stage, "parameters": p["error"], "config_overrides": "", "overridden": None,
                         "differs_from_dataset_yaml": ""})
            continue
        effective = _flatten(p.get("effective_config") or {})
        diffs = [f"{k}: {_compact(base.get(k))} → {_compact(v)}" for k, v in sorted(effective.items())
                 if k in base and base.get(k) != v]
        diffs += [f"{k}: (absent) → {_compact(v)}" for k, v in sorted(effective.items()) if k not in base]
        rows.append({
            "stage": stage,
            # "passed" (what the build passed) when run_stage records it, else every parameter used.
            "parameters": _compact({k: v for k, v in (p.get("passed", p.get("parameters")) or {}).items()
                                    if k != "dataset"}),
            "config_overrides": _compact(p.get("config_overrides")),
            "overridden": bool(p.get("overridden")),
            "differs_from_dataset_yaml": "; ".join(diffs) or "nothing",
        })
    return pd.DataFrame(rows, columns=["stage", "parameters", "config_overrides", "overridden",
                                       "differs_from_dataset_yaml"])


# --------------------------------------------------------------------------- key findings


def _read_csv(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError):
        return None


def ale_outcomes(paths: DatasetPaths) -> pd.DataFrame | None:
    """Per ALE model: status, reason, experiments, significant clusters and iterations.

    Read from the ALE stage's ``outputs/<dataset>/ale/models.csv`` and each run
    model's ``<model>/summary.json`` (``n_clusters_significant``). None when the
    ALE stage has not written ``models.csv``.
    """
    ale_dir = paths.outputs / "ale"
    models = _read_csv(ale_dir / "models.csv")
    if models is None or "model" not in models.columns:
        return None
    rows = []
    for r in models.to_dict("records"):
        row = {"model": str(r["model"]), "status": str(r.get("status", "")), "reason": r.get("reason"),
               "n_experiments": r.get("n_experiments"), "n_clusters": None, "n_iters": r.get("n_iters")}
        summary = ale_dir / row["model"] / "summary.json"
        if row["status"] == "run" and summary.is_file():
            try:
                s = json.loads(summary.read_text(encoding="utf-8"))
                row["n_clusters"] = int(s["n_clusters_significant"])
                row["n_iters"] = s.get("n_iters", row["n_iters"])
                row["n_experiments"] = s.get("n_experiments", row["n_experiments"])
            except (OSError, ValueError, KeyError, TypeError):
                row["status"] = "run (summary unreadable)"
        rows.append(row)
    return pd.DataFrame(rows)


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def ale_finding(outcomes: pd.DataFrame) -> str:
    """One line: clusters surviving per model, or why a model did not run."""
    parts = []
    for r in outcomes.itertuples():
        if r.n_clusters is not None and pd.notna(r.n_clusters):
            n_exp = int(r.n_experiments) if pd.notna(r.n_experiments) else None
            iters = f", {int(r.n_iters)} Monte Carlo iterations" if pd.notna(r.n_iters) else ""
            parts.append(f"{r.model}: {_plural(int(r.n_clusters), 'cluster')} survived cluster-level FWE "
                         f"correction ({_plural(n_exp, 'experiment') if n_exp is not None else '? experiments'}"
                         f"{iters})")
        else:
            # The first clause of the ALE stage's reason says it; the page of the stage has the rest.
            reason = format_value(r.reason, "no reason recorded").split(";")[0].strip()
            parts.append(f"{r.model}: not run ({reason})")
    return "; ".join(parts) + "."


def positive_control_sentence(outcomes: pd.DataFrame | None) -> str:
    """Whether the positive control found convergence, from the ALE stage's outputs."""
    if outcomes is None:
        return ("Positive control: the ALE stage has not produced results yet, so whether it finds convergence "
                "is not known.")
    ran = outcomes[outcomes["n_clusters"].notna()]
    if ran.empty:
        return ("Positive control: no ALE model ran, so convergence could not be tested: the engines are not "
                "shown to detect convergence here.")
    hits = ran[ran["n_clusters"] > 0]
    if len(hits):
        models = ", ".join(f"{r.model} ({_plural(int(r.n_clusters), 'cluster')})" for r in hits.itertuples())
        return f"Positive control: convergence was found, as expected — significant clusters in {models}."
    return ("Positive control: convergence was NOT found — no cluster survived in any model that ran "
            f"({', '.join(ran['model'])}); the engines did not detect what they should here.")


def roi_finding(paths: DatasetPaths, config: DatasetConfig) -> str | None:
    """One line: the networks most often implicated (experiment level if present, else study level)."""
    counts = _read_csv(paths.processed / "roi_counts.csv")
    if counts is None or not {"level", "subgroup", "events", "n"} <= set(counts.columns):
        return None
    overall = counts[counts["subgroup"] == "overall"]
    for level, unit in (("experiment", "contrasts"), ("study", "studies")):
        sub = overall[overall["level"] == level]
        if sub.empty:
            continue
        n = int(sub["n"].max())
        if n == 0:
            return f"ROI synthesis: no {unit} could be assessed, so no network can be said to be implicated."
        top = int(sub["events"].max())
        if top == 0:
            return f"ROI synthesis: no network was implicated in any of {n} {unit}."
        label_col = "label" if "label" in sub.columns else "network"
        names = [str(x) for x in sub.loc[sub["events"] == top, label_col]]
        return (f"ROI synthesis: most often implicated — {', '.join(names)} ({top} of {n} {unit}"
                f"{' each' if len(names) > 1 else ''}).")
    return None


def proportions_finding(paths: DatasetPaths) -> str | None:
    """One line: the pooled proportion of network involvement per level, with its 95% CI."""
    summary = _read_csv(paths.processed / "proportions_summary.csv")
    if summary is None or not {"level", "subgroup", "pooled", "lower", "upper"} <= set(summary.columns):
        return None
    rows = summary[(summary["subgroup"] == "overall") & summary["pooled"].notna()]
    if rows.empty:
        return "Proportion meta-analysis: nothing was pooled (see its page for why)."
    parts = []
    for r in rows.itertuples():
        cells = f", {int(r.events)}/{int(r.total)} cells" if hasattr(r, "events") and pd.notna(r.events) else ""
        parts.append(f"{r.level} level {format_value(round(r.pooled, 2))} (95% CI {format_value(round(r.lower, 2))}"
                     f"–{format_value(round(r.upper, 2))}{cells})")
    return "Proportion meta-analysis: pooled share of networks involved — " + "; ".join(parts) + "."


def audit_statuses() -> tuple[tuple[str, ...], str]:
    """The audit's status names in order and the one that counts as reproduced."""
    try:
        from painmeta import audit

        return tuple(audit.STATUSES), getattr(audit, "MATCH", "match")
    except ImportError:  # pragma: no cover - audit is part of the package
        return ("match",), "match"


def audit_finding(paths: DatasetPaths, role: str = "other") -> str | None:
    """One line: how many reported numbers were reproduced (``match`` only) and the other statuses.

    ``role`` (the dataset's) names who reported them: :func:`source_noun`.
    """
    table = _read_csv(paths.processed / "audit.csv")
    if table is None or "status" not in table.columns:
        return None
    statuses, match = audit_statuses()
    counts = table["status"].value_counts()
    order = [s for s in statuses if s in counts.index] + [s for s in counts.index if s not in statuses]
    n_match = int(counts.get(match, 0))
    others = [f"{int(counts[s])} {s}" for s in order if s != match]
    return (f"Audit: {n_match} of {len(table)} numbers {source_noun(role)} reports reproduced (recomputed and "
            "matching)"
            + (f"; {', '.join(others)}" if others else "") + ".")


def key_findings(config: DatasetConfig, paths: DatasetPaths) -> list[str]:
    """Plain-language key findings, one line per stage that produced its outputs (plain text, unescaped)."""
    lines = []
    outcomes = ale_outcomes(paths)
    if config.role == "positive_control":
        lines.append(positive_control_sentence(outcomes))
    if outcomes is not None and len(outcomes):
        lines.append("ALE: " + ale_finding(outcomes))
    for line in (roi_finding(paths, config), proportions_finding(paths), audit_finding(paths, config.role)):
        if line:
            lines.append(line)
    return lines


# --------------------------------------------------------------------------- sections


def _img_tag(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _md_section(title: str, text: str) -> str:
    return f"<h2>{html.escape(title)}</h2>{markdown_html(text)}" if text and text.strip() else ""


def notes_section(paths: DatasetPaths) -> str:
    """``data/raw/<dataset>/NOTES.md`` rendered (escaped), when present."""
    notes = paths.raw / "NOTES.md"
    if not notes.is_file():
        return ""
    text = notes.read_text(encoding="utf-8", errors="replace")
    cut = ""
    if len(text) > NOTES_MAX_CHARS:
        cut = (f'<p class="pm-muted">NOTES.md has {len(text):,} characters; the first {NOTES_MAX_CHARS:,} are '
               f"shown. The whole file is in data/raw/{html.escape(paths.name)}/NOTES.md.</p>")
        text = text[:NOTES_MAX_CHARS]
    return f'<h2>Notes</h2><div class="pm-notes">{markdown_html(text)}</div>{cut}'


def overview_section(config: DatasetConfig, paths: DatasetPaths) -> str:
    """Question, overview and what is missing (from ``dataset.yaml``), and what the processed tables hold."""
    parts = [
        _md_section("Question", config.question),
        _md_section("About the data", config.overview),
    ]
    proc = paths.processed
    exp, foci, studies = (_read_csv(proc / f) for f in ("experiments.csv", "foci_mni.csv", "studies.csv"))
    if exp is not None and foci is not None and {"study_id", "n_foci", "evidence"} <= set(exp.columns):
        n_studies = len(studies) if studies is not None else exp["study_id"].nunique()
        parts.append(
            f"<p><b>In the tables.</b> {_plural(n_studies, 'study', 'studies')} with "
            f"{_plural(len(exp), 'contrast')}; {int((exp['n_foci'] > 0).sum())} contrasts have coordinates "
            f"({_plural(len(foci), 'focus', 'foci')}); {int((exp['evidence'] != 'verified').sum())} contrasts are "
            f"inferred or unverified.</p>")
    parts.append(_md_section("What is missing", config.missing))
    return "".join(parts)


def inconsistencies_section(paths: DatasetPaths, role: str = "other") -> str:
    """The internal inconsistencies the audit computed, when it found any."""
    inc = _read_csv(paths.processed / "audit_inconsistencies.csv")
    if inc is None or inc.empty:
        return ""
    return (f"<h2>Internal inconsistencies of the numbers {html.escape(source_noun(role))} reports</h2>"
            + table_html(inc, note="Each computed from the data by the audit stage; see its page."))


def build_badges(params: dict[str, dict[str, Any]]) -> str:
    """Warnings at the top of the page when stages ran with overrides or in quick mode."""
    overridden = [s for s, p in params.items() if p.get("overridden")]
    quick = [s for s, p in params.items() if (p.get("parameters") or {}).get("quick")]
    out = []
    if overridden:
        out.append(f'<p class="pm-badge pm-warn"><b>Overridden build.</b> {html.escape(", ".join(overridden))} '
                   "ran with parameters other than the defaults (dataset.yaml and the notebooks' parameters); the "
                   "values are listed under Build information. Rebuild without overrides for the dataset's own "
                   "results.</p>")
    if quick:
        out.append(f'<p class="pm-badge pm-warn"><b>Quick build.</b> {html.escape(", ".join(quick))} ran in quick '
                   "mode (few Monte Carlo iterations): fine for checking the pipeline, not for reporting.</p>")
    return "".join(out)


# --------------------------------------------------------------------------- page


PAGE_CSS = """
 body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222;
        line-height: 1.45; }
 h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.6em; }
 .pm-muted { color: #666; font-size: .9em; }
 .pm-badge { padding: .5em .8em; border-radius: 4px; }
 .pm-warn { background: #fff4e0; border: 1px solid #e6a23c; }
 .pm-findings li { margin: .25em 0; }
 .pm-stages li { margin: .2em 0; }
 figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
 figcaption { color: #555; font-size: .9em; }
 code { background: #f5f5f5; padding: 0 3px; }
"""


def build_index(dataset: str, extra_sections: list[tuple[str, str]] | None = None) -> Path:
    """Write ``outputs/<dataset>/report/index.html``.

    Parameters
    ----------
    dataset : str
        Dataset name.
    extra_sections : list of (title, html), optional
        Further sections placed after the overview; ``html`` must already be
        safe (built with :mod:`painmeta.display`).

    Returns
    -------
    pathlib.Path
        The index file.
    """
    config, paths = load_config(dataset)
    root = project_root()
    report = paths.outputs / "report"
    report.mkdir(parents=True, exist_ok=True)
    timings_file = paths.outputs / "notebooks" / "timings.json"
    try:
        timings = json.loads(timings_file.read_text()) if timings_file.is_file() else {}
    except ValueError:
        timings = {}
    params = stage_params(paths)

    pages = stage_pages(paths)
    page_rows = "".join(
        f'<li><a href="{html.escape(p.name)}">{html.escape(stage_title(p.stem, root))}</a>'
        f' <span class="pm-muted">({html.escape(format_value(timings.get(p.stem), "?"))} s'
        + ("; overridden" if params.get(p.stem, {}).get("overridden") else "")
        + ("; quick" if (params.get(p.stem, {}).get("parameters") or {}).get("quick") else "")
        + ")</span></li>"
        for p in pages
    ) or f"<li>No stage has been rendered yet: run <code>make all DATASET={html.escape(config.name)}</code>.</li>"

    findings = key_findings(config, paths)
    findings_html = ("<ul class=\"pm-findings\">" + "".join(f"<li>{html.escape(f)}</li>" for f in findings)
                     + "</ul>") if findings else "<p>No stage has produced results yet.</p>"

    figures = []
    for stage, stem, caption in KEY_FIGURES:
        png = paths.outputs / stage / f"{stem}.png"
        if png.is_file():
            figures.append(f"<figure>{_img_tag(png, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>")

    base_params = pd.DataFrame([
        {"parameter": "dataset", "value": config.name},
        {"parameter": "role", "value": config.role},
        {"parameter": "seed", "value": config.seed},
        {"parameter": "ale.seed", "value": config.ale.seed},
        {"parameter": "ale.voxel_thresh", "value": config.ale.voxel_thresh},
        {"parameter": "ale.cluster_alpha", "value": config.ale.cluster_alpha},
        {"parameter": "ale.include_unverified", "value": config.ale.include_unverified},
        *({"parameter": f"ale.models.{k}.n_iters", "value": m.n_iters} for k, m in config.ale.models.items()),
        {"parameter": "roi_lookup", "value": config.roi_lookup},
    ])
    timing_df = pd.DataFrame([{"stage": stage_title(k, root), "seconds": v} for k, v in sorted(timings.items())],
                             columns=["stage", "seconds"])
    extra = "".join(f"<h2>{html.escape(t)}</h2>{body}" for t, body in (extra_sections or []))
    built = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    name = html.escape(config.name)
    description = markdown_html(config.description) if config.description.strip() else ""
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>painmeta report: {name}</title>
<style>{PAGE_CSS}{TABLE_CSS}</style></head>
<body>
<h1>{html.escape(config.title)}</h1>
{description}
<p class="pm-muted">Dataset <code>{name}</code>, {html.escape(ROLE_PHRASES.get(config.role, "a dataset"))} · built {built} ·
rebuild with <code>make all DATASET={name}</code></p>
{build_badges(params)}
<h2>Key findings</h2>{findings_html}
{overview_section(config, paths)}
{notes_section(paths)}
{extra}
{inconsistencies_section(paths, config.role)}
<h2>Stages</h2><ol class="pm-stages">{page_rows}</ol>
<h2>Key figures</h2>{''.join(figures) or '<p>No figure yet.</p>'}
<h2>Build information</h2>
<h3>Parameters in data/raw/{name}/dataset.yaml</h3>{table_html(base_params)}
<h3>Parameters each stage used</h3>{table_html(params_table(config, params), empty="No stage recorded its parameters (stages run before parameters were recorded, or none has run).", colours={"overridden": {True: "#fddbc7"}})}
<h3>Stage run times</h3>{table_html(timing_df, empty="No run time recorded.")}
<h3>Package versions</h3>{table_html(package_versions())}
<h3>Inputs (SHA-256)</h3>{table_html(input_checksums(paths), headers={"bytes": "Bytes"})}
</body></html>
"""
    index = report / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def _cmd_report(args: argparse.Namespace) -> int:
    index = build_index(args.dataset)
    print(f"wrote {index}")
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add the ``report`` command."""
    from painmeta.cli import add_dataset_argument

    p = sub.add_parser("report", help="write outputs/<dataset>/report/index.html",
                       description="Write the report index linking every rendered stage page, with key figures "
                                   "and a build-info table.")
    add_dataset_argument(p)
    p.set_defaults(func=_cmd_report)
