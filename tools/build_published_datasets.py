"""Derive the extraction tables of the published-analysis datasets from their committed source files.

Each dataset keeps its untouched inputs under ``data/raw/<dataset>/source/`` (with licence and citation);
this script turns them into ``studies.csv``, ``experiments.csv``, ``foci.csv`` and ``findings.csv`` (header
only: these papers report no region-level findings), with every row's ``source`` naming the file and line.
It also writes the model lists derived from the source files (the ``knowledge`` subset of Enge 2021) into
``dataset.yaml`` between marker comments, so the subset is never typed by hand.

Usage::

    python tools/build_published_datasets.py            # rebuild both
    python tools/build_published_datasets.py --check    # exit 1 if a committed table differs

Re-running it on unchanged sources gives byte-identical tables.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from painmeta.sleuth import read_sleuth  # noqa: E402

STUDY_COLS = ["study_id", "first_author", "year", "journal", "doi", "pmid", "identified", "population",
              "cancer_type", "chemotherapy", "n_patients", "n_controls", "control_type", "design", "modality",
              "scanner", "analysis", "cipn_measure", "syntheses", "evidence", "note", "source", "tal_transform"]
EXP_COLS = ["experiment_id", "study_id", "contrast", "contrast_type", "direction", "modality", "seed_region",
            "n_ale", "space", "include", "exclude_reason", "evidence", "evidence_note", "source"]
FOCI_COLS = ["focus_id", "experiment_id", "x", "y", "z", "space", "label", "hemisphere", "stat_type",
             "stat_value", "cluster_size", "evidence", "note", "source"]
FINDING_COLS = ["finding_id", "experiment_id", "region", "hemisphere", "direction", "focus_id", "evidence",
                "note", "source"]

ENGE_REPO = "SkeideLab/meta_semantics commit de53184be0ae98ab121a47d5d8e347a0a5e83fa8 (MIT)"
XU_REPO = "PennLINC/Xu_fMRIChronicPain commit 8358d681170794f04dbd0d8d6392098558be6d73"


def _csv(rows: list[dict], cols: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({c: "" if r.get(c) is None else r.get(c) for c in cols})
    return buf.getvalue()


def _lines(lines) -> str:
    """'line 7', 'lines 7-9' or 'lines 7-8, 95' for the (possibly scattered) file lines of a group of rows."""
    nums = sorted(int(v) for v in lines)
    runs, start = [], nums[0]
    for a, b in zip(nums, nums[1:] + [None]):
        if b != a + 1:
            runs.append(f"{start}" if start == a else f"{start}-{a}")
            start = b
    return ("line " if len(nums) == 1 else "lines ") + ", ".join(runs)


DUP_NOTE = ("entered twice in the source ({lines}); kept once here: a repeated peak cannot change its "
            "experiment's modelled-activation map (the maximum over its foci), and the tables allow no duplicates")


def _dedupe(rows: list[dict], key: tuple[str, ...] = ("experiment_id", "x", "y", "z")) -> list[dict]:
    """Drop exact repeats of a focus within an experiment, noting them on the kept row (nothing silent)."""
    kept: dict[tuple, dict] = {}
    for r in rows:
        k = tuple(str(r[c]) for c in key)
        if k in kept:
            first = kept[k]
            first.setdefault("_lines", [first["source"]]).append(r["source"])
            first["note"] = "; ".join(x for x in (first.get("_base_note"),
                                                   DUP_NOTE.format(lines=" and ".join(first["_lines"]))) if x)
        else:
            r["_base_note"] = r.get("note")
            kept[k] = r
    return list(kept.values())


def _num(v: float) -> str:
    return f"{float(v):.3f}".rstrip("0").rstrip(".")


# --------------------------------------------------------------------------- Enge 2021


def enge() -> dict[str, str]:
    """Tables of ``enge2021_semantic`` from ``source/sleuth_all.txt`` (and the knowledge subset)."""
    folder = ROOT / "data/raw/enge2021_semantic"
    src = folder / "source"
    data = read_sleuth(src / "sleuth_all.txt")
    know = read_sleuth(src / "sleuth_knowledge.txt")
    other = read_sleuth(src / "sleuth_not_knowledge.txt")
    if sorted(know.experiment_ids + other.experiment_ids) != sorted(data.experiment_ids):
        raise SystemExit("sleuth_knowledge.txt and sleuth_not_knowledge.txt do not split sleuth_all.txt")
    # Each subset must be a subset: same experiments with the same foci and sample sizes.
    for eid, part in [(e, know) for e in know.experiment_ids] + [(e, other) for e in other.experiment_ids]:
        a = data.foci[data.foci["experiment_id"] == eid][["x", "y", "z"]].to_numpy()
        b = part.foci[part.foci["experiment_id"] == eid][["x", "y", "z"]].to_numpy()
        if eid not in data.sample_sizes or a.shape != b.shape or (abs(a - b) > 1e-9).any() \
                or data.sample_sizes[eid] != part.sample_sizes[eid]:
            raise SystemExit(f"{part.files[0].name}: experiment {eid} differs from sleuth_all.txt")
    studies, exps, foci = [], [], []
    for eid in data.experiment_ids:
        sub = data.foci[data.foci["experiment_id"] == eid]
        first_line = int(sub["line"].min())
        m = re.match(r"([a-z]+?)(\d{4})", eid)
        author, year = (m.group(1).capitalize(), m.group(2)) if m else (eid, None)
        sid = re.sub(r"[^A-Za-z0-9_.-]", "_", eid)
        where = f"source/sleuth_all.txt {_lines(range(first_line - 2, int(sub['line'].max()) + 1))}; {ENGE_REPO}"
        studies.append({
            "study_id": sid, "first_author": author, "year": year, "identified": "true",
            "population": "typically developing children and adolescents", "cancer_type": "none",
            "n_patients": data.sample_sizes[eid], "design": "single-group task fMRI", "modality": "task fMRI",
            "analysis": "semantic task > control contrast, as selected by Enge et al. 2021",
            "syntheses": "ale", "evidence": "verified",
            "note": "One row per Sleuth experiment: the Sleuth file does not say which experiments share an "
                    "article or participants, so each experiment is its own study here (as in the paper's ALE).",
            "source": where,
        })
        exps.append({
            "experiment_id": sid, "study_id": sid, "contrast": f"{eid}: semantic > control (Sleuth label)",
            "contrast_type": "within_group", "direction": "activation", "modality": "task fMRI",
            "n_ale": data.sample_sizes[eid], "space": "MNI", "include": "true", "evidence": "verified",
            "evidence_note": "Coordinates and sample size as the authors entered them into their ALE (MNI; their "
                             "code converted Talairach peaks beforehand).",
            "source": where,
        })
        for k, r in enumerate(sub.itertuples(), 1):
            foci.append({
                "focus_id": f"{sid}_{k:03d}", "experiment_id": sid, "x": _num(r.x), "y": _num(r.y),
                "z": _num(r.z), "space": "MNI", "evidence": "verified",
                "source": f"source/sleuth_all.txt line {r.line}",
            })
    knowledge = [re.sub(r"[^A-Za-z0-9_.-]", "_", e) for e in know.experiment_ids]
    not_knowledge = [re.sub(r"[^A-Za-z0-9_.-]", "_", e) for e in other.experiment_ids]
    return {
        "studies.csv": _csv(studies, STUDY_COLS),
        "experiments.csv": _csv(exps, EXP_COLS),
        "foci.csv": _csv(_dedupe(foci), FOCI_COLS),
        "findings.csv": _csv([], FINDING_COLS),
        "__models__": [_yaml_list("knowledge", knowledge, "sleuth_knowledge.txt"),
                       _yaml_list("not_knowledge", not_knowledge, "sleuth_not_knowledge.txt")],
        "reported.yaml": enge_reported(),
    }


def _fsn_by_peak(summary: Path, drawers: Path) -> dict[tuple[int, int, int], dict]:
    """The published fail-safe N per cluster peak.

    ``summary`` (all_mean_fsn.csv) numbers clusters as the FSN script's table did (by peak z), which is not the
    cluster table's order (by size); the per-drawer files carry each cluster's peak, so they give the link. The
    per-drawer values must reproduce the summary's mean and SD, or the join is wrong.
    """
    summ = pd.read_csv(summary).set_index("Cluster ID")
    files = sorted(drawers.glob("filedrawer*_all_fsn.tsv"))
    if len(files) != int(summ["count"].iloc[0]):
        raise SystemExit(f"{drawers}: {len(files)} file drawers, the summary counts {int(summ['count'].iloc[0])}")
    per = pd.concat([pd.read_csv(f, sep="\t").assign(drawer=f.name) for f in files], ignore_index=True)
    out = {}
    for cid, g in per.groupby("Cluster ID"):
        peaks = {tuple(int(v) for v in row) for row in g[["X", "Y", "Z"]].to_numpy()}
        if len(peaks) != 1:
            raise SystemExit(f"{drawers}: cluster {cid} has different peaks across drawers: {sorted(peaks)}")
        vals = g["FSN"].to_numpy(float)
        row = summ.loc[cid]
        if round(vals.mean(), 3) != round(float(row["mean"]), 3) or round(vals.std(ddof=1), 3) != round(
                float(row["std"]), 3):
            raise SystemExit(f"{summary}: cluster {cid}: the drawers give mean {vals.mean():.3f}, SD "
                             f"{vals.std(ddof=1):.3f}; the summary says {row['mean']}, {row['std']}")
        out[peaks.pop()] = {"fsn_mean": float(row["mean"]), "fsn_ci": [float(row["ci_lower"]), float(row["ci_upper"])]}
    return out


def _clusters_from_tsv(path: Path, fsn: dict[tuple[int, int, int], dict] | None = None) -> list[dict]:
    """A published cluster table (the authors' table script's TSV) as reported.yaml cluster entries."""
    tab = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    out = []
    for r in tab.to_dict("records"):
        c = {"cluster": int(r["Cluster #"]), "volume_mm3": int(r["Size (mm3)"].replace(",", "")),
             "peak": [int(float(r["Peak X"])), int(float(r["Peak Y"])), int(float(r["Peak Z"]))]}
        for col, key in (("Peak ALE", "peak_ale"), ("Peak z", "peak_z"), ("Mean ALE", "mean_ale"),
                         ("Mean z", "mean_z")):
            if r.get(col, "") != "":
                c[key] = float(r[col])
        c["peak_label"] = r["Peak label"]
        c["labels"] = r["Cluster labels"]
        if fsn is not None and tuple(c["peak"]) in fsn:
            c.update(fsn[tuple(c["peak"])])
        out.append(c)
    if fsn is not None and len({tuple(c["peak"]) for c in out} & set(fsn)) != len(fsn):
        raise SystemExit(f"{path}: not every fail-safe N peak is a peak of this table")
    return out


SPLIT_NOTE = ("the table's 88 mm³ cluster 8 is part of its cluster 1, split off by the table script's "
              "6-connectivity relabelling (NOTES.md); the audit's cluster table locates it")


def enge_reported() -> str:
    """``reported.yaml`` of enge2021_semantic: the paper's numbers, its cluster tables (from the TSVs) and map."""
    import yaml

    src = ROOT / "data/raw/enge2021_semantic/source"
    all_tab = _clusters_from_tsv(src / "published_table_all.tsv",
                                 _fsn_by_peak(src / "published_fsn_all.csv", src / "fsn_all"))
    know_tab = _clusters_from_tsv(src / "published_table_knowledge.tsv")
    sub_tab = _clusters_from_tsv(src / "published_table_subtraction_knowledge.tsv")
    w = "Enge 2021, methods (source/SOURCE.md)"
    items = [
        {"id": "all_experiments", "what": "Experiments in the main ALE", "value": 50, "where": w,
         "kind": "ale_summary", "model": "all", "key": "n_experiments"},
        {"id": "all_foci", "what": "Foci in the main ALE", "value": 687, "where": w, "kind": "ale_summary",
         "model": "all", "key": "n_foci",
         "note": "one focus is entered twice in the Sleuth file (lee2011vis); the tables keep it once"},
        {"id": "all_subjects", "what": "Children in the main ALE", "value": 1018, "where": w,
         "kind": "ale_summary", "model": "all", "key": "n_subjects"},
        {"id": "all_clusters", "what": "Significant clusters, main ALE (cluster-level FWE p < 0.01)",
         "value": len(all_tab), "where": "Table 2 (source/published_table_all.tsv)", "kind": "ale_summary",
         "model": "all", "key": "n_clusters_significant", "note": SPLIT_NOTE},
        {"id": "all_ale_max", "what": "Largest peak ALE, main ALE", "value": max(c["peak_ale"] for c in all_tab),
         "where": "Table 2", "kind": "ale_summary", "model": "all", "key": "ale_max", "decimals": 3,
         "note": "NiMARE 0.0.9 placed foci by truncation; with its placement this engine gives the published map "
                 "(the audit's map comparison)"},
        {"id": "all_clusters_10k", "what": "Significant clusters, main ALE, 10,000 iterations (the paper ran 1,000)",
         "value": len(all_tab), "where": "Table 2", "kind": "ale_summary", "model": "all_10k",
         "key": "n_clusters_significant", "note": SPLIT_NOTE},
        {"id": "knowledge_experiments", "what": "Experiments, knowledge subset", "value": 21, "where": w,
         "kind": "ale_summary", "model": "knowledge", "key": "n_experiments"},
        {"id": "knowledge_foci", "what": "Foci, knowledge subset", "value": 262, "where": w, "kind": "ale_summary",
         "model": "knowledge", "key": "n_foci"},
        {"id": "knowledge_clusters", "what": "Significant clusters, knowledge subset", "value": len(know_tab),
         "where": "Table 3 (source/published_table_knowledge.tsv)", "kind": "ale_summary", "model": "knowledge",
         "key": "n_clusters_significant",
         "note": "the table's 128 mm³ cluster 4 lies inside our cluster of the left IFG (the audit's cluster table)"},
        {"id": "knowledge_ale_max", "what": "Largest peak ALE, knowledge subset",
         "value": max(c["peak_ale"] for c in know_tab), "where": "Table 3", "kind": "ale_summary",
         "model": "knowledge", "key": "ale_max", "decimals": 3},
        {"id": "voxel_thresh", "what": "Cluster-forming threshold (voxel p)", "value": 0.001, "where": w,
         "kind": "config", "key": "ale.voxel_thresh"},
        {"id": "cluster_alpha", "what": "Cluster-level FWE alpha", "value": 0.01, "where": w, "kind": "config",
         "key": "ale.cluster_alpha"},
        {"id": "n_iters", "what": "Monte Carlo iterations", "value": 1000, "where": w, "kind": "config",
         "key": "ale.models.all.n_iters"},
    ]
    tables = [
        {"id": "all", "what": "Main ALE: clusters at cluster-level FWE p < 0.01", "model": "all",
         "where": "Table 2 (source/published_table_all.tsv); fail-safe N: source/published_fsn_all.csv, "
                  "joined by peak through source/fsn_all/",
         # The authors' code (nb06_fsn.py) starts each voxel's count at 1 for the original analysis and adds
         # one per null experiment survived: the largest k survived, plus one, at most k_max = 5 x 50.
         "min_volume_mm3": 200, "fsn_counts": "last_k_plus_one", "fsn_k_max": 250, "clusters": all_tab},
        {"id": "knowledge", "what": "Knowledge subset: clusters at cluster-level FWE p < 0.01", "model": "knowledge",
         "where": "Table 3 (source/published_table_knowledge.tsv)", "min_volume_mm3": 200, "clusters": know_tab},
        {"id": "subtraction_knowledge", "what": "Knowledge > (relatedness + objects), voxel p < 0.001, 200 mm³",
         "model": "contrast-knowledge_vs_other", "direction": "knowledge > not_knowledge",
         "where": "Table 4 (source/published_table_subtraction_knowledge.tsv)",
         "min_volume_mm3": 200, "clusters": sub_tab},
    ]
    maps = [{"id": "all_map", "what": "Unthresholded ALE map of the main analysis (NiMARE 0.0.9)", "model": "all",
             "file": "source/published_ale_all_stat.nii.gz", "where": "results/ale/all_stat.nii.gz (repository)",
             "emulate": "nimare_0.0.9"}]
    head = ("# Derived by tools/build_published_datasets.py from source/published_table_*.tsv,\n"
            "# source/published_fsn_all.csv and source/fsn_all/ (the paper's tables as the authors' code wrote\n"
            "# them; fail-safe N joined to Table 2 by peak coordinate); do not edit.\n"
            "# Format: docs/TABLES.md (reported.yaml).\n")
    body = {"paper": "Enge A, Abdel Rahman R, Skeide MA. A meta-analysis of fMRI studies of semantic cognition in "
                     "children. NeuroImage 2021;241:118436",
            "items": items, "cluster_tables": tables, "maps": maps}
    return head + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=110, default_flow_style=None)


# --------------------------------------------------------------------------- Xu 2021

_CONTRASTS = {
    "pain_pat_con": ("patients>controls", "chronic pain patients > healthy controls, noxious stimulation"),
    "pain_con_pat": ("patients<controls", "healthy controls > chronic pain patients, noxious stimulation"),
}


def xu() -> dict[str, str]:
    """Tables of ``xu2021_chronic_pain`` from ``source/foci.csv``."""
    folder = ROOT / "data/raw/xu2021_chronic_pain"
    src = folder / "source" / "foci.csv"
    raw = pd.read_csv(src, dtype=str, keep_default_na=False)
    raw["line"] = range(2, len(raw) + 2)
    studies, exps, foci = [], [], []
    for article, art in raw.groupby("experiment", sort=True):
        sid = re.sub(r"[^A-Za-z0-9]", "", article.replace(" ", ""))
        m = re.match(r"(.+?) (\d{4})", article)
        spaces = set(art["space"])
        if len(spaces) != 1:
            raise SystemExit(f"{src}: {article} mixes spaces {spaces}")
        tal = spaces == {"Tal"}
        n_by_contrast = art.groupby("contrast")["n"].first().astype(int)
        studies.append({
            "study_id": sid, "first_author": m.group(1) if m else article, "year": m.group(2) if m else None,
            "identified": "true", "population": "adults with chronic pain (condition as in Xu 2021 Table 1)",
            "cancer_type": "CIPN (multiple myeloma)" if sid == "Boland2014" else "none",
            "n_patients": int(n_by_contrast.max()), "design": "case-control task fMRI",
            "modality": "task fMRI", "analysis": "noxious stimulation, patients vs controls",
            "syntheses": "ale", "evidence": "verified",
            "note": ("n is the file's value (probably patients only; see NOTES.md)"
                     + ("; different n per contrast: " + ", ".join(f"{c} {n}" for c, n in n_by_contrast.items())
                        if n_by_contrast.nunique() > 1 else "")),
            "source": f"source/foci.csv {_lines(art['line'])}; {XU_REPO}, "
                      "ale/painCoords_20200113.xls",
            "tal_transform": "tal2icbm_spm" if tal else None,
        })
        for contrast, rows in art.groupby("contrast", sort=False):
            direction, text = _CONTRASTS[contrast]
            eid = f"{sid}_{'gt' if direction == 'patients>controls' else 'lt'}"
            exps.append({
                "experiment_id": eid, "study_id": sid, "contrast": f"{text} ({contrast})",
                "contrast_type": "between_group", "direction": direction, "modality": "task fMRI",
                "n_ale": int(rows["n"].iloc[0]), "space": "TAL" if tal else "MNI", "include": "true",
                "evidence": "verified",
                "evidence_note": "Contrast and n as coded by Xu et al. (n probably patients only; see NOTES.md)",
                "source": f"source/foci.csv {_lines(rows['line'])}",
            })
            for k, r in enumerate(rows.itertuples(), 1):
                foci.append({
                    "focus_id": f"{eid}_{k:02d}", "experiment_id": eid, "x": r.x, "y": r.y, "z": r.z,
                    "space": "TAL" if tal else "MNI", "evidence": "verified",
                    "note": "Talairach; converted with tal2icbm_spm as the authors did (my_tal2icbm_spm.m)"
                            if tal else None,
                    "source": f"source/foci.csv line {r.line}",
                })
    return {
        "studies.csv": _csv(studies, STUDY_COLS),
        "experiments.csv": _csv(exps, EXP_COLS),
        "foci.csv": _csv(_dedupe(foci), FOCI_COLS),
        "findings.csv": _csv([], FINDING_COLS),
    }


# --------------------------------------------------------------------------- writing

BEGIN, END = "# >>> derived by tools/build_published_datasets.py", "# <<< derived"


def _yaml_list(model: str, ids: list[str], file: str) -> tuple[str, str]:
    body = "\n".join(f"        - {i}" for i in ids)
    return model, f"{BEGIN} (model '{model}': experiments of source/{file})\n{body}\n      {END}"


def _splice(text: str, model: str, block: str) -> str:
    pat = re.compile(re.escape(BEGIN) + rf" \(model '{model}'.*?" + re.escape(END), re.S)
    if not pat.search(text):
        raise SystemExit(f"dataset.yaml lacks the marker block for model '{model}'")
    return pat.sub(lambda _: block, text)


def build(check: bool = False) -> int:
    changed = []
    for name, fn in (("enge2021_semantic", enge), ("xu2021_chronic_pain", xu)):
        folder = ROOT / "data/raw" / name
        for fname, content in fn().items():
            if fname == "__models__":
                path = folder / "dataset.yaml"
                text = path.read_text(encoding="utf-8")
                for model, block in content:
                    text = _splice(text, model, block)
                content = text
            else:
                path = folder / fname
            old = path.read_text(encoding="utf-8") if path.is_file() else None
            if old != content:
                changed.append(str(path.relative_to(ROOT)))
                if not check:
                    path.write_text(content, encoding="utf-8")
    for c in changed:
        print(("differs: " if check else "wrote: ") + c)
    return 1 if (check and changed) else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 when a table would change")
    raise SystemExit(build(ap.parse_args().check))
