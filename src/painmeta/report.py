"""The co-author report: ``outputs/<dataset>/report/index.html``.

The index links every rendered stage page, shows the key figures (embedded, so
the page opens from disk with no network) and a build-info table: package
versions, seeds and parameters from the dataset config, per-stage run times,
and the SHA-256 of every raw input file.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import platform
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

from painmeta.config import load_config
from painmeta.paths import DatasetPaths, project_root

#: Packages whose versions go into the build-info table.
PACKAGES = ("painmeta", "nimare", "nilearn", "numpy", "scipy", "pandas", "pandera", "statsmodels",
            "matplotlib", "seaborn", "numba", "papermill", "nbconvert")

#: Key figures shown on the index, by stage folder and file stem, in order.
KEY_FIGURES = (
    ("extraction", "foci_glass_brain", "Public foci (MNI) with QA errors marked"),
    ("ale", "ale_glass_brain", "ALE map (unthresholded)"),
    ("roi", "roi_matrix_experiment", "Experiment-level ROI matrix"),
    ("roi", "roi_matrix_study", "Study-level ROI matrix"),
    ("proportions", "forest_experiment_overall", "Experiment-level proportions"),
    ("quality", "robins_traffic_light", "ROBINS-I traffic-light plot"),
    ("quality", "prisma_flow", "PRISMA 2020 flow"),
)


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
    return pd.DataFrame(rows)


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


def _img_tag(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, escape=True, border=0, classes="pm-table")


def overview_section(config, paths: DatasetPaths) -> str:
    """Question, data and what could (not) be reproduced, from the processed tables."""
    parts = [
        "<p><b>Question.</b> Do MRI studies of chemotherapy-induced peripheral neuropathy (CIPN) and cancer pain "
        "converge on common brain regions or networks? Three syntheses are rebuilt from extraction tables: "
        "voxelwise ALE, a five-network ROI synthesis, and a proportion meta-analysis of ROI involvement, with "
        "ROBINS-I risk of bias and a PRISMA flow.</p>",
        "<p><b>Datasets.</b> <code>cipn</code> (the review's five studies, rebuilt from public sources), "
        "<code>cancer_pain</code> (the wider cancer-pain literature), <code>nidm_pain</code> (positive control "
        "shipped with NiMARE). This page: <code>" + html.escape(config.name) + "</code>.</p>",
    ]
    proc = paths.processed
    exp_file, foci_file = proc / "experiments.csv", proc / "foci_mni.csv"
    if exp_file.is_file() and foci_file.is_file():
        exp, foci = pd.read_csv(exp_file), pd.read_csv(foci_file)
        parts.append(
            f"<p><b>Data.</b> {exp['study_id'].nunique()} studies with {len(exp)} contrasts; "
            f"{int((exp['n_foci'] > 0).sum())} contrasts have public coordinates ({len(foci)} foci); "
            f"{int((exp['evidence'] != 'verified').sum())} contrasts are inferred or unverified.</p>")
    audit_file = proc / "audit.csv"
    if audit_file.is_file():
        audit = pd.read_csv(audit_file)
        counts = audit["status"].value_counts()
        parts.append(
            "<p><b>Reproduction.</b> Of " + str(len(audit)) + " numbers the review reports, "
            + ", ".join(f"{int(n)} {html.escape(k)}" for k, n in counts.items())
            + ". See the audit stage for each number with its reason.</p>")
        inc_file = proc / "audit_inconsistencies.csv"
        if inc_file.is_file():
            inc = pd.read_csv(inc_file)
            if len(inc):
                parts.append("<p><b>Internal inconsistencies of the review:</b></p><ul>" + "".join(
                    f"<li>{html.escape(r.issue)}: {html.escape(str(r.evidence))}</li>" for r in inc.itertuples())
                    + "</ul>")
    return "".join(parts)


def build_index(dataset: str, extra_sections: list[tuple[str, str]] | None = None) -> Path:
    """Write ``outputs/<dataset>/report/index.html``.

    Parameters
    ----------
    dataset : str
        Dataset name.
    extra_sections : list of (title, html), optional
        Further sections (e.g. the audit summary) placed after the overview.

    Returns
    -------
    pathlib.Path
        The index file.
    """
    config, paths = load_config(dataset)
    report = paths.outputs / "report"
    report.mkdir(parents=True, exist_ok=True)
    timings_file = paths.outputs / "notebooks" / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.is_file() else {}

    pages = stage_pages(paths)
    page_rows = "".join(
        f'<li><a href="{p.name}">{html.escape(p.stem)}</a>'
        f' <span class="pm-muted">({timings.get(p.stem, "?")} s)</span></li>'
        for p in pages
    ) or "<li>No stage has been rendered yet: run <code>make all</code>.</li>"

    figures = []
    for stage, stem, caption in KEY_FIGURES:
        png = paths.outputs / stage / f"{stem}.png"
        if png.is_file():
            figures.append(f"<figure>{_img_tag(png, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>")

    params = pd.DataFrame([
        {"parameter": "dataset", "value": config.name},
        {"parameter": "seed", "value": config.seed},
        {"parameter": "ale.seed", "value": config.ale.seed},
        {"parameter": "ale.voxel_thresh", "value": config.ale.voxel_thresh},
        {"parameter": "ale.cluster_alpha", "value": config.ale.cluster_alpha},
        {"parameter": "ale.include_unverified", "value": config.ale.include_unverified},
        *({"parameter": f"ale.models.{k}.n_iters", "value": m.n_iters} for k, m in config.ale.models.items()),
        {"parameter": "roi_lookup", "value": config.roi_lookup},
    ])
    timing_df = pd.DataFrame([{"stage": k, "seconds": v} for k, v in sorted(timings.items())])
    all_sections = [("Overview", overview_section(config, paths)), *(extra_sections or [])]
    sections = "".join(f"<h2>{html.escape(t)}</h2>{body}" for t, body in all_sections)
    built = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>painmeta report: {html.escape(config.name)}</title>
<style>
 body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
 h1 {{ font-size: 1.6em; }} h2 {{ border-bottom: 1px solid #ddd; padding-bottom: .2em; }}
 .pm-muted {{ color: #777; font-size: .9em; }}
 .pm-table {{ border-collapse: collapse; font-size: .85em; }}
 .pm-table th, .pm-table td {{ border-bottom: 1px solid #eee; padding: 3px 8px; text-align: left; }}
 figure {{ margin: 1em 0; }} figure img {{ max-width: 100%; border: 1px solid #eee; }}
 figcaption {{ color: #555; font-size: .9em; }}
 code {{ background: #f5f5f5; padding: 0 3px; }}
</style></head>
<body>
<h1>{html.escape(config.title)}</h1>
<p>{html.escape(config.description)}</p>
<p class="pm-muted">Dataset <code>{html.escape(config.name)}</code> · built {built} ·
rebuild with <code>make all DATASET={html.escape(config.name)}</code></p>
{sections}
<h2>Stages</h2><ol>{page_rows}</ol>
<h2>Key figures</h2>{''.join(figures) or '<p>No figure yet.</p>'}
<h2>Build information</h2>
<h3>Parameters (from data/raw/{html.escape(config.name)}/dataset.yaml)</h3>{_table(params)}
<h3>Stage run times</h3>{_table(timing_df) if len(timing_df) else '<p>none recorded</p>'}
<h3>Package versions</h3>{_table(package_versions())}
<h3>Inputs (SHA-256)</h3>{_table(input_checksums(paths))}
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
