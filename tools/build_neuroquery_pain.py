#!/usr/bin/env python
"""Build ``data/raw/neuroquery_pain/`` from the NeuroQuery v1 coordinate database.

NeuroQuery (Dockès et al., eLife 2020;9:e53385; github.com/neuroquery/neuroquery_data,
commit 4580f86, BSD 3-Clause) holds peak coordinates automatically extracted from the
tables of 13,459 neuroimaging articles, the articles' PubMed ids and titles, and the
term counts of each abstract. This script selects the articles whose abstract counts
the vocabulary term "pain" at least ``--min-count`` times and writes them in the
project's table format, one experiment per article (all of an article's tables pooled),
with a fixed sample size that is an assumption (the database has none).

Every file of the output folder is written by this script, so the folder can be rebuilt
byte for byte::

    .venv/bin/python tools/build_neuroquery_pain.py --source DIR

Checks made on the way (the build stops with a message naming the file when one fails):

* each source file is the one of NeuroQuery commit 4580f86 (git blob id);
* the rows of the abstract term-count matrix are in metadata order: the matrix has one
  row per metadata row, and the terms of each article's *title* are found in its own
  abstract row far more often than in a neighbour's (a shifted order would not be);
* peaks: a coordinate that is not a number or lies beyond +/-150 mm is dropped; an
  article's table that repeats an earlier table of the same article peak for peak is
  dropped (NeuroQuery extracted some articles' tables twice, under two table ids); a
  peak repeating an earlier peak of the same article (same x, y, z) is dropped. Every
  dropped peak is listed in ``build_exclusions.csv`` with its reason;
* the written tables pass the project's validation (``python -m painmeta validate``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

ROOT = Path(__file__).resolve().parents[1]
DATASET = "neuroquery_pain"
TERM = "pain"
COMMIT = "4580f86267fb7c14ac1f601e298cbed898d79f2d"
SHORT = COMMIT[:7]
REPO_URL = "https://github.com/neuroquery/neuroquery_data"
CITATION = ("Dockès J, Poldrack RA, Primet R, Gözükan H, Yarkoni T, Suchanek F, Thirion B, Varoquaux G. "
            "NeuroQuery, comprehensive meta-analysis of human brain mapping. eLife 2020;9:e53385. "
            "doi:10.7554/eLife.53385")
#: Source files (under ``data/`` at commit 4580f86) with their git blob ids, so a build
#: from any other version of the database fails instead of silently differing.
SOURCE_FILES = {
    "coordinates": ("data-neuroquery_version-1_coordinates.tsv.gz", "255b5549c3894f4a34694d872763a254d532a286"),
    "metadata": ("data-neuroquery_version-1_metadata.tsv.gz", "005670cb31a978406d7aea6934cac28ef2b3a500"),
    "counts": ("data-neuroquery_version-1_vocab-neuroquery7547_source-abstract_type-count_features.npz",
               "3181153d40dd79f9c2a87ad8fb94bdfa798e4676"),
    "vocabulary": ("data-neuroquery_version-1_vocab-neuroquery7547_vocabulary.txt",
                   "0e5e9e0216b57050f116dfe6f51b7ecf7b2ec316"),
    "license": ("LICENSE", "b1dc221b1b741554728a38fbdfc01c5b8bc93143"),
}
#: The project's MNI152 2 mm brain mask (91 x 109 x 91), in the NiMARE wheel.
TEMPLATE = "tpl-MNI152NLin6Asym_res-02_desc-brain_mask.nii.gz"
#: Validation range of the project's tables (painmeta.schemas): |coordinate| <= 150 mm.
COORD_LIMIT = 150.0
#: Row-order check thresholds: measured 0.66 of title terms found in the article's own
#: abstract row versus 0.11 in a shifted row; a misaligned matrix would give ~0.11 for both.
MIN_ALIGNED_HIT = 0.5
MIN_ALIGNED_RATIO = 3.0
#: experiments.csv `modality`: the database has none (its articles include fMRI, PET, VBM,
#: EEG/MEG source analyses ...), and the schema's `unknown` says so.
MODALITY_PLACEHOLDER = "unknown"


class BuildError(Exception):
    """A problem with the source files or the build; printed without a traceback."""


# --------------------------------------------------------------------------- reading


def git_blob_id(path: Path) -> str:
    """Git blob id (SHA-1 of ``blob <size>\\0<content>``) of a file, as ``git hash-object`` prints."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def check_source(source: Path) -> dict[str, Path]:
    """Paths of the source files, after checking they are NeuroQuery commit 4580f86's."""
    if not source.is_dir():
        raise BuildError(
            f"{source}: NeuroQuery source folder not found. Get the files listed in tools/build_neuroquery_pain.py "
            f"(SOURCE_FILES) from {REPO_URL} (commit {SHORT}, folder data/, plus LICENSE) and pass --source DIR, "
            "or set PAINMETA_NEUROQUERY_SOURCE.")
    paths, problems = {}, []
    for key, (name, blob) in SOURCE_FILES.items():
        path = source / name
        if not path.is_file():
            problems.append(f"{path}: file missing")
        elif git_blob_id(path) != blob:
            problems.append(f"{path}: content differs from NeuroQuery commit {SHORT} (expected git blob {blob})")
        paths[key] = path
    if problems:
        raise BuildError("\n".join(problems))
    return paths


@dataclass
class Source:
    """The NeuroQuery files, read."""

    metadata: pd.DataFrame  # id, title (text), in file order
    counts: sparse.csr_matrix  # abstracts x vocabulary term counts
    vocabulary: list[str]
    coordinates: pd.DataFrame  # id, table_id, table_name, x, y, z (text) + line (file line, header = 1)


def read_source(paths: dict[str, Path]) -> Source:
    """Read the four NeuroQuery files (all text columns kept as text)."""
    meta = pd.read_csv(paths["metadata"], sep="\t", dtype=str, keep_default_na=False)
    coords = pd.read_csv(paths["coordinates"], sep="\t", dtype=str, keep_default_na=False)
    for name, df, cols in (("metadata", meta, ["id", "title"]),
                           ("coordinates", coords, ["id", "table_id", "table_name", "x", "y", "z"])):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise BuildError(f"{paths[name]}: columns {missing} missing (found {list(df.columns)})")
    # Some quoted cells (titles, a few table names) hold line breaks: a record's line in the
    # file (header = 1) counts the breaks of the records before it.
    breaks = coords.apply(lambda s: s.str.count("\n")).sum(axis=1).to_numpy()
    coords["line"] = 2 + np.arange(len(coords)) + np.concatenate([[0], np.cumsum(breaks)[:-1]])
    counts = sparse.load_npz(paths["counts"]).tocsr()
    vocab = paths["vocabulary"].read_text(encoding="utf-8").split("\n")
    if vocab and vocab[-1] == "":
        vocab = vocab[:-1]
    return Source(meta, counts, vocab, coords)


# --------------------------------------------------------------------------- checks


def _title_terms(title: str, index: dict[str, int], max_n: int) -> set[int]:
    words = re.findall(r"\w+", title.lower())
    found = set()
    for n in range(1, max_n + 1):
        for i in range(len(words) - n + 1):
            j = index.get(" ".join(words[i:i + n]))
            if j is not None:
                found.add(j)
    return found


def check_row_order(src: Source, selected: np.ndarray) -> dict[str, float | int]:
    """Check that the term-count rows are in metadata order; return the evidence.

    The matrix has no id column. Each article's title is tokenised into vocabulary terms;
    a title's terms mostly occur in its own abstract, rarely in another article's. The
    fraction found in the same-index abstract row is compared with the fraction found
    one row further (any misalignment of the two files would make them equal). For the
    selected articles, the abstract row that shares the most (IDF-weighted) terms with
    the title is also located among all rows.
    """
    meta, counts = src.metadata, src.counts
    problems = []
    if not meta["id"].is_unique:
        problems.append("metadata ids are not unique")
    if not meta["id"].str.fullmatch(r"[0-9]+").all():
        problems.append("metadata ids are not all PubMed ids (digits)")
    if counts.shape != (len(meta), len(src.vocabulary)):
        problems.append(f"term-count matrix is {counts.shape[0]} x {counts.shape[1]}, metadata has {len(meta)} rows "
                        f"and the vocabulary {len(src.vocabulary)} terms")
    if problems:
        raise BuildError("row-order check: " + "; ".join(problems))
    index = {t: i for i, t in enumerate(src.vocabulary)}
    max_n = max(len(t.split()) for t in src.vocabulary)
    rows, cols = [], []
    for r, title in enumerate(meta["title"]):
        terms = sorted(_title_terms(title, index, max_n))
        rows += [r] * len(terms)
        cols += terms
    titles = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=counts.shape)
    present = (counts > 0).astype(np.float64).tocsr()
    n_terms = float(titles.sum())
    aligned = float(titles.multiply(present).sum()) / n_terms
    shifted = float(titles.multiply(present[np.roll(np.arange(present.shape[0]), 1)]).sum()) / n_terms
    if aligned < MIN_ALIGNED_HIT or aligned < MIN_ALIGNED_RATIO * shifted:
        raise BuildError(
            f"row-order check failed: {aligned:.3f} of title terms occur in the same-index abstract row, "
            f"{shifted:.3f} one row off; the term-count matrix does not follow the metadata order")
    # Best-matching abstract of each selected title, IDF-weighted, normalised by abstract length.
    df = np.asarray(present.sum(axis=0)).ravel()
    idf = np.log((1.0 + present.shape[0]) / (1.0 + df))
    norm = 1.0 / np.sqrt(np.maximum(np.asarray(present.getnnz(axis=1)), 1))
    scores = (titles[selected].multiply(idf[None, :]).tocsr() @ present.multiply(norm[:, None]).tocsr().T).toarray()
    has_terms = np.asarray(titles[selected].getnnz(axis=1)) > 0
    own_best = int(((scores.argmax(axis=1) == selected) & has_terms).sum())
    return {"aligned": aligned, "shifted": shifted, "own_best": own_best, "with_terms": int(has_terms.sum()),
            "n_rows": int(counts.shape[0])}


def select_articles(src: Source, min_count: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (metadata order) of articles whose abstract counts TERM >= min_count, and the counts."""
    if TERM not in src.vocabulary:
        raise BuildError(f"vocabulary has no term {TERM!r}")
    col = src.vocabulary.index(TERM)
    term_counts = np.asarray(src.counts[:, col].todense()).ravel()
    return np.flatnonzero(term_counts >= min_count), term_counts


# --------------------------------------------------------------------------- tables


def _clean(text: str) -> str:
    # Source titles and table names hold line breaks and non-breaking spaces.
    return re.sub(r"\s+", " ", text).strip()


def study_id(pmid: str) -> str:
    return f"PMID{pmid}"


def _name_key(name: str) -> str:
    # "Table 2", "Table\xa02", "TABLE 2" and "Table.2" name the same table.
    return re.sub(r"[^0-9a-z]", "", name.lower())


@dataclass
class _Table:
    table_id: str
    name: str
    rows: list[int]  # positions in the article's rows
    peaks: list[tuple]  # rounded (x, y, z), None where not numeric
    twin: str = ""  # table_id of the earlier table this one repeats or re-extracts
    kind: str = ""  # "", "repeated_table" or "second_extraction"
    shared: int = 0


def _classify_tables(tables: list[_Table]) -> None:
    """Mark tables that repeat an earlier table of the same article.

    ``repeated_table``: the same peaks in the same order as an earlier table (NeuroQuery
    extracted some articles' tables twice, under ids like ``tbl1``/``t0005`` and ``T1``).
    ``second_extraction``: same table name as an earlier table and at least half of the
    smaller one's peaks shared, but not identical: the two extractions of one table
    disagree in some rows (sign or digit differences, rows missing from one of them).
    """
    for i, t in enumerate(tables):
        for first in tables[:i]:
            if first.kind:
                continue
            if t.peaks == first.peaks:
                t.twin, t.kind, t.shared = first.table_id, "repeated_table", len(t.peaks)
                break
            if _name_key(t.name) == _name_key(first.name):
                a, b = set(t.peaks) - {None}, set(first.peaks) - {None}
                shared = len(a & b)
                if a and b and shared >= 0.5 * min(len(a), len(b)):
                    t.twin, t.kind, t.shared = first.table_id, "second_extraction", shared
                    break


def build_foci(src: Source, pmids: list[str], box: tuple[np.ndarray, np.ndarray]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Foci of the selected articles and the peaks dropped, with reasons.

    Focus ids are ``PMID<id>_<k>`` with k the peak's position (1-based) among the
    article's rows of the coordinates file, so a dropped peak keeps its would-be id.
    Rules, in order: a coordinate that is not a number or lies beyond +/-150 mm is
    dropped; a table that repeats an earlier table of the article peak for peak, or is
    a second extraction of it (see :func:`_classify_tables`), is dropped whole (the
    earlier extraction is kept; its peaks that the second extraction lacks are noted);
    a peak repeating an earlier kept peak of the article (same x, y, z) is dropped.
    """
    lo, hi = box
    coords = src.coordinates[src.coordinates["id"].isin(set(pmids))].copy()
    order = {p: i for i, p in enumerate(pmids)}
    coords["article_order"] = coords["id"].map(order)
    coords = coords.sort_values(["article_order", "line"], kind="stable")
    num = coords[["x", "y", "z"]].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    coords["_i"] = np.arange(len(coords))
    kept, dropped = [], []
    for pmid, art in coords.groupby("id", sort=False):
        sid = study_id(pmid)
        if len(art) >= 10000:
            raise BuildError(f"article {pmid} has {len(art)} peaks; focus ids allow 9999")
        recs = art.to_dict("records")
        xyz = num[art["_i"].to_numpy()]
        ok = np.isfinite(xyz).all(axis=1)
        peaks = [tuple(np.round(v, 6).tolist()) if good else None for v, good in zip(xyz, ok)]
        tables: dict[str, _Table] = {}
        for pos, r in enumerate(recs):
            t = tables.setdefault(r["table_id"], _Table(r["table_id"], _clean(r["table_name"]), [], []))
            t.rows.append(pos)
            t.peaks.append(peaks[pos])
        _classify_tables(list(tables.values()))
        # Peaks of a kept table missing from its second extraction, for a note.
        missing_in_twin: dict[int, str] = {}
        for t in tables.values():
            if t.kind == "second_extraction":
                first = tables[t.twin]
                for pos in first.rows:
                    if peaks[pos] is not None and peaks[pos] not in set(t.peaks):
                        missing_in_twin[pos] = t.table_id
        seen: dict[tuple, tuple[str, str]] = {}
        for pos, r in enumerate(recs):
            fid = f"{sid}_{pos + 1:04d}"
            t = tables[r["table_id"]]
            base = {"focus_id": fid, "pmid": pmid, "source_line": r["line"], "table_id": r["table_id"],
                    "table_name": t.name, "x": r["x"], "y": r["y"], "z": r["z"]}
            v, key = xyz[pos], peaks[pos]
            if key is None:
                dropped.append({**base, "reason_code": "not_a_number", "kept_focus_id": "",
                                "reason": "a coordinate is not a number"})
                continue
            if np.any(np.abs(v) > COORD_LIMIT):
                dropped.append({**base, "reason_code": "beyond_150mm", "kept_focus_id": "",
                                "reason": f"a coordinate lies beyond +/-{COORD_LIMIT:g} mm: not a brain coordinate"})
                continue
            if t.kind:
                first = tables[t.twin]
                kept_id = seen.get(key, ("", ""))[0]
                what = (f"table {t.table_id} ({t.name}) repeats table {first.table_id} ({first.name}) of this "
                        f"article peak for peak ({len(t.peaks)} peaks): the database extracted it twice"
                        if t.kind == "repeated_table" else
                        f"table {t.table_id} ({t.name}) is a second extraction of table {first.table_id} "
                        f"({first.name}): {t.shared} of its {len(t.peaks)} peaks are in the kept extraction")
                if t.kind == "second_extraction" and key not in set(first.peaks):
                    what += ("; this peak is not: the two extractions disagree here and only the article can "
                             "say which is right")
                dropped.append({**base, "reason_code": t.kind, "kept_focus_id": kept_id, "reason": what})
                continue
            if key in seen:
                kept_id, kept_table = seen[key]
                dropped.append({**base, "reason_code": "repeated_peak", "kept_focus_id": kept_id,
                                "reason": f"same x, y, z as {kept_id} (table {kept_table}); the article's tables "
                                          "are pooled into one experiment, where a repeated peak adds nothing to "
                                          "the non-additive MA map"})
                continue
            seen[key] = (fid, r["table_id"])
            notes = []
            if not np.all((v >= lo) & (v <= hi)):
                notes.append("outside the MNI152 2 mm template volume (kept; coordinate QA flags it)")
            if pos in missing_in_twin:
                notes.append(f"not in the database's second extraction of this table ({missing_in_twin[pos]}): "
                             "the two extractions disagree here")
            kept.append({
                "focus_id": fid, "experiment_id": f"{sid}_all", "x": r["x"], "y": r["y"], "z": r["z"],
                "space": "MNI", "label": "", "hemisphere": "", "stat_type": "", "stat_value": "", "cluster_size": "",
                "evidence": "unverified", "note": "; ".join(notes),
                "source": f"NeuroQuery v1 (commit {SHORT}) coordinates, table_id {r['table_id']} ({t.name})",
            })
    foci_cols = ["focus_id", "experiment_id", "x", "y", "z", "space", "label", "hemisphere", "stat_type",
                 "stat_value", "cluster_size", "evidence", "note", "source"]
    excl_cols = ["focus_id", "pmid", "source_line", "table_id", "table_name", "x", "y", "z", "reason_code",
                 "kept_focus_id", "reason"]
    return pd.DataFrame(kept, columns=foci_cols), pd.DataFrame(dropped, columns=excl_cols)


def build_studies(src: Source, selected: np.ndarray, term_counts: np.ndarray) -> pd.DataFrame:
    meta = src.metadata.iloc[selected]
    rows = []
    for (pos, (_, m)) in zip(selected, meta.iterrows()):
        rows.append({
            "study_id": study_id(m["id"]), "first_author": "unknown", "year": "", "journal": "", "doi": "",
            "pmid": m["id"], "title": _clean(m["title"]), "identified": "true", "population": "unknown",
            "cancer_type": "unknown", "chemotherapy": "", "n_patients": "", "n_controls": "", "control_type": "",
            "design": "", "modality": "", "scanner": "", "analysis": "", "cipn_measure": "", "syntheses": "ale",
            "evidence": "unverified",
            "note": (f"abstract counts '{TERM}' {int(term_counts[pos])} times; PMID and title from the database, "
                     "not checked against PubMed; authors, year, population and design are not in the source"),
            "source": f"NeuroQuery v1 (commit {SHORT}) metadata and abstract term counts, PMID {m['id']}",
        })
    return pd.DataFrame(rows)


def build_experiments(studies: pd.DataFrame, n_subjects: int) -> pd.DataFrame:
    note = (f"One experiment per article: all peaks of all its tables pooled, whatever their contrast or sign. "
            f"n_ale = {n_subjects} is an assumption (the database has no sample sizes). Space MNI is assumed "
            f"(the database stores coordinates as printed, without a space). modality is not in the source "
            f"('{MODALITY_PLACEHOLDER}').")
    return pd.DataFrame({
        "experiment_id": studies["study_id"] + "_all", "study_id": studies["study_id"],
        "contrast": "all reported peaks (NeuroQuery tables pooled)", "contrast_type": "within_group",
        "direction": "unknown", "modality": MODALITY_PLACEHOLDER, "seed_region": "", "n_ale": str(n_subjects),
        "space": "MNI", "include": "true", "exclude_reason": "", "evidence": "inferred", "evidence_note": note,
        "source": studies["source"].str.replace("metadata and abstract term counts", "coordinates", regex=False),
    })


FINDINGS_COLUMNS = ["finding_id", "experiment_id", "region", "hemisphere", "direction", "focus_id", "evidence",
                    "note", "source"]


# --------------------------------------------------------------------------- prose


def _n(value: int) -> str:
    return f"{value:,}"


def dataset_yaml(facts: dict) -> str:
    """The dataset config (prose keys are Markdown)."""
    n_art, n_foci, n_sub, min_count = facts["articles"], facts["foci"], facts["n_subjects"], facts["min_count"]
    return f"""\
# Generated by tools/build_neuroquery_pain.py: edit the script and rebuild, not this file.
# NeuroQuery v1 ({REPO_URL}, commit {SHORT}; BSD 3-Clause, see LICENSE and SOURCE.md).
name: {DATASET}
title: "NeuroQuery pain articles: {_n(n_art)} articles, one pooled experiment each"
description: >
  Articles of the NeuroQuery v1 database whose abstract counts the term "{TERM}" at least
  {min_count} times, with every peak automatically extracted from their tables (MNI assumed).
  A large real coordinate set for scale, not a systematic review: no contrasts, no sample sizes.
role: database
question: >
  Where do peaks reported by pain-related neuroimaging articles converge, when every
  article's tables are pooled and each article counts once?
overview: |
  **Source.** NeuroQuery v1 (Dockès et al., eLife 2020;9:e53385), a database of peak
  coordinates extracted automatically from the tables of 13,459 neuroimaging articles,
  with each abstract's term counts ({REPO_URL}, commit {SHORT}, BSD 3-Clause).

  **Selection.** An article enters when its abstract counts the vocabulary term "{TERM}"
  at least {min_count} times: {_n(n_art)} articles. Of their {_n(facts["source_peaks"])} peaks,
  {_n(n_foci)} remain after removing {_n(facts["excluded"])} duplicates (tables the database
  extracted twice, peaks repeated across an article's tables; each listed with its reason in
  `build_exclusions.csv`).
  The rule selects pain research of every kind (experimental pain in healthy volunteers,
  clinical pain conditions, empathy for pain, placebo analgesia ...); it is a text-mining
  rule, not a question-specific systematic search.

  **Coding.** One experiment per article (all its tables pooled, `within_group`, direction
  `unknown`), each with the same assumed sample size, n = {n_sub}. Built by
  `tools/build_neuroquery_pain.py`; `SOURCE.md` gives the checks and the counts.

  **What it can show.** Where the peaks that pain-related articles report concentrate, each
  article weighing once: a description of the literature's reporting at scale, a reference
  map to hold a small meta-analysis against, and a realistic workload (hundreds of
  experiments, thousands of foci) for the pipeline and its engines.
missing: |
  What this database meta-analysis **cannot** claim, and why:

  - **No contrasts.** Coordinates are extracted automatically from article tables; a table's
    contrast, its sign (activation or deactivation, patients > controls or the reverse) and
    its statistic are not recorded. Pooling all tables of an article mixes increases,
    decreases, group differences, correlations and conjunctions. A convergence is "peaks are
    often reported here", not "pain activates this region".
  - **Fixed, assumed sample size.** The database has no sample sizes; every experiment enters
    with n = {n_sub}. The kernel width (and so the ALE values) would differ with the true n.
  - **Pain studies of all kinds.** The abstract term rule mixes experimental pain, clinical
    pain conditions, empathy for pain, analgesia and articles that merely discuss pain. The
    rule is a text-mining selection, not eligibility criteria; no article was screened.
  - **Coordinate space assumed MNI.** NeuroQuery stores coordinates as printed, with no space
    field and no Talairach conversion (compared with Neurosynth v7, see `SOURCE.md`); peaks of
    articles that report Talairach coordinates are misplaced by several millimetres.
  - **Extraction errors** stay in: misread or partial tables, peaks from tables that are not
    results (e.g. regions of interest, seeds), coordinates outside the brain (flagged by QA).
    Where the database extracted a table twice and the copies disagree, one copy is kept
    unchecked (`build_exclusions.csv` lists the other).
  - **Coverage.** The database is a frozen snapshot (highest PMID selected: {facts["max_pmid"]}) of
    the articles whose full text NeuroQuery could obtain and whose tables it could parse: the
    pain literature is covered partially, and not at random.
  - **Dependence.** One experiment per article handles within-article dependence, but several
    articles may report the same participants (cohort overlap is not known here).
  - **Not available:** study characteristics (authors, year, population, modality, design),
    region-level findings for the ROI synthesis, risk of bias, a PRISMA flow, and published
    results to audit (`experiments.csv` says modality "{MODALITY_PLACEHOLDER}").
source: tables
labels:
  patients: participants
  controls: baseline
networks:
  - {{key: brainstem_pag, label: "Brainstem/PAG"}}
  - {{key: cerebellum, label: "Cerebellum"}}
  - {{key: dmn, label: "Default mode network"}}
  - {{key: prefrontal, label: "Lateral/medial PFC (executive)"}}
  - {{key: sensorimotor, label: "Primary sensorimotor (S1/M1)"}}
roi_lookup: data/lookups/region_network_v1.csv
seed: 20200304
ale:
  kernel: sample_size
  voxel_thresh: 0.001        # cluster-forming threshold, p < 0.001 uncorrected
  cluster_alpha: 0.05        # cluster-level FWE
  min_experiments: 2
  recommended_experiments: 17
  seed: 20200304
  include_unverified: true   # every peak is automatically extracted (foci evidence: unverified)
  n_cores: 2
  engine: inhouse            # primary engine at this size (NiMARE takes about a second per Monte Carlo iteration here)
  crosscheck_max_iters: 100  # NiMARE cross-checks the first 100 iterations on identical draws (exact); in-house runs all
  models:
    all:
      description: "All articles, every reported peak (tables pooled, n = {n_sub} assumed)"
      contrast_types: [within_group]
      n_iters: 1000          # 10,000 is the publication setting; 1,000 keeps the stage affordable here
extra:
  build:
    script: tools/build_neuroquery_pain.py
    source: "NeuroQuery v1, {REPO_URL}, commit {COMMIT}"
    term: {TERM}
    min_count: {min_count}
    n_subjects: {n_sub}  # assumed sample size of every experiment (the database has none)
    space: MNI  # assumed (the database has no space field)
"""


def source_md(facts: dict) -> str:
    """SOURCE.md: citation, licence, rule, checks and counts."""
    ro = facts["row_order"]
    # Measured once for the default rule with tools/check_neuroquery_source.py (needs Neurosynth v7).
    if (facts["min_count"], facts["articles"]) == (3, 350):
        selection_space = ("For the default rule (abstract counts `pain` >= 3), Neurosynth flags 35 of the 350 "
                           "articles as Talairach, 156 as MNI and 22 as unknown; 137 are not in Neurosynth v7. A "
                           "selected peak would move by a median 6.0 mm (95th percentile 9.6 mm) under the "
                           "Lancaster conversion.")
    else:
        selection_space = ("How many of this selection's articles Neurosynth flags as Talairach was not checked; "
                           "run the check script below.")
    excl = facts["excluded_by_reason"]
    outside = facts["outside_box"]
    reason_rows = "\n".join(f"| excluded: {code} | {_n(n)} |" for code, n in excl.items()) or "| excluded | 0 |"
    if len(outside):
        out_rows = "\n".join(f"| {r.focus_id} | {r.x} | {r.y} | {r.z} |" for r in outside.itertuples())
        outside_text = (f"{len(outside)} kept peaks lie outside the MNI152 2 mm template volume "
                        f"(x {facts['box'][0][0]:g}..{facts['box'][1][0]:g}, y {facts['box'][0][1]:g}.."
                        f"{facts['box'][1][1]:g}, z {facts['box'][0][2]:g}..{facts['box'][1][2]:g} mm). They are "
                        "kept as printed (within the project's +/-150 mm range) and stage 0's coordinate QA flags "
                        "them:\n\n| focus_id | x | y | z |\n|---|---|---|---|\n" + out_rows)
    else:
        outside_text = "No kept peak lies outside the MNI152 2 mm template volume."
    return f"""\
# neuroquery_pain: source, licence, rule and counts

Generated by `tools/build_neuroquery_pain.py`; rebuild the whole folder with

    .venv/bin/python tools/build_neuroquery_pain.py --source DIR --min-count {facts["min_count"]} --n-subjects {facts["n_subjects"]}

where `DIR` holds the NeuroQuery files below (default `../shared/data/neuroquery` from the project
root, or `$PAINMETA_NEUROQUERY_SOURCE`).

## Source and licence

- Database: NeuroQuery v1, {REPO_URL}, commit {COMMIT}, folder `data/`.
- Citation: {CITATION}.
- Licence: BSD 3-Clause, copyright (c) 2019 jeromedockes; the licence text is in `LICENSE`
  (copied unchanged). The tables here are a derived subset; keep `LICENSE` and this citation
  with them.

Files read (each checked against its git blob id at commit {SHORT}):

| file | git blob |
|---|---|
""" + "\n".join(f"| `{name}` | `{blob}` |" for name, blob in SOURCE_FILES.values()) + f"""

## Selection rule

An article is selected when its abstract's count of the vocabulary term `{TERM}`
(`vocab-neuroquery7547`, `source-abstract`, `type-count`) is at least {facts["min_count"]}.
Every peak of every table of a selected article is taken (no contrast or sign is recorded).

Row order of the term counts: the matrix has no id column; it has {_n(ro["n_rows"])} rows, one per
metadata row. Tokenising each title into vocabulary terms, {ro["aligned"]:.3f} of title terms occur in
the same-index abstract row against {ro["shifted"]:.3f} one row off; and for {ro["own_best"]} of the
{ro["with_terms"]} selected articles with a vocabulary term in their title, the abstract row sharing the
most (IDF-weighted) title terms among all {_n(ro["n_rows"])} rows is the article's own (chance: 1 in
{_n(ro["n_rows"])}). The build stops unless the first fraction is at least {MIN_ALIGNED_HIT} and
{MIN_ALIGNED_RATIO:g} times the second. (Checked once more outside this script, with
`tools/check_neuroquery_source.py --pmids`: the repository's `data-neuroquery_version-1_pmids.txt` at commit 2606c07,
which sits beside this same term-count file, lists the PMIDs in exactly the metadata order. NiMARE's
`convert_neurosynth_to_dataset` makes the same assumption for these files.)

## Counts

| quantity | value |
|---|---|
| articles in the database | {_n(ro["n_rows"])} |
| articles selected | {_n(facts["articles"])} |
| peaks of the selected articles in the database | {_n(facts["source_peaks"])} |
{reason_rows}
| foci (foci.csv) | {_n(facts["foci"])} |
| experiments (experiments.csv) | {_n(facts["articles"])} |
| assumed sample size per experiment | {facts["n_subjects"]} |

## Dropped peaks (`build_exclusions.csv`)

Every dropped peak is a row of `build_exclusions.csv` with the focus id it would have had, its
line in the coordinates file, its table and the reason:

- `repeated_table`: NeuroQuery extracted some articles' tables twice, under two table ids
  (typically `tbl1`/`t0005` and `T1` for the same "Table 1"), giving the same peaks in the same
  order. The later copy is dropped; the earlier one (in file order) is kept.
- `second_extraction`: a later table with the same name as an earlier one of the article
  (case, spaces, no-break spaces and punctuation ignored: "Table 2" = "TABLE 2" = "Table.2") sharing at least half of the
  smaller table's peaks, but not peak for peak: the two extractions of one table disagree in
  a few rows (a sign, a digit, a row missing from one copy). The earlier extraction is kept
  whole and the later one dropped whole, so the experiment holds one copy of the table; the
  dropped peaks that the kept copy lacks say so in their reason, and the kept peaks that the
  dropped copy lacks say so in their `note` in `foci.csv`. Which copy is right can only be
  checked in the article.
- `repeated_peak`: the same (x, y, z) appears in two different tables of one article (e.g. two
  contrasts sharing a peak). With all tables pooled into one experiment, the repeat adds nothing:
  the modelled-activation map of an experiment is the voxelwise maximum over its peaks
  (Turkeltaub et al. 2012), so ALE maps and clusters are identical with or without it; keeping
  it would only inflate the focus count (and the project's validation refuses duplicate peaks
  within an experiment).
- `beyond_150mm`, `not_a_number`: coordinates that cannot be brain coordinates.

{outside_text}

## Coordinate space

The database has no space column, and the evidence is that NeuroQuery stores coordinates as
printed in the articles' tables, without converting Talairach ones. Neurosynth v7
(github.com/neurosynth/neurosynth-data, commit 209c33c) flags each article's space by a text
heuristic and stores unconverted coordinates (NiMARE converts its Talairach articles on load).
Of the 1,335 articles that both databases hold and that Neurosynth flags as Talairach,
NeuroQuery's peaks equal Neurosynth's stored peaks for 1,258 (80 % or more of peaks identical)
and equal them converted to MNI (Lancaster 2007 `tal2icbm_other`, whole mm) for none; 92.5 % of
these articles' NeuroQuery coordinates are whole numbers, which an affine conversion would not
leave. {selection_space} (One-off check, reproducible with `tools/check_neuroquery_source.py`;
Neurosynth data, ODbL, are not part of this folder.)

Every focus is written as MNI: an assumption that misplaces the peaks of articles that reported
Talairach coordinates by several millimetres.

## Fixed sample size

NeuroQuery records no sample sizes. Every experiment has `n_ale = {facts["n_subjects"]}`, an assumption
stated in `dataset.yaml` (`extra.build.n_subjects`) and in each experiment's `evidence_note`.
"""


# --------------------------------------------------------------------------- main


def template_box() -> tuple[np.ndarray, np.ndarray]:
    """World-coordinate bounds (mm) of the MNI152 2 mm template grid the project uses.

    Read from the mask file in the NiMARE wheel (header only, with nibabel): importing
    NiMARE itself takes seconds and runs none of its code we need.
    """
    import importlib.util

    import nibabel as nib

    spec = importlib.util.find_spec("nimare")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError("NiMARE is not installed: the MNI152 2 mm template ships with it (make venv)")
    path = Path(list(spec.submodule_search_locations)[0]) / "resources" / "templates" / TEMPLATE
    img = nib.load(path)
    corners = np.array([[0, 0, 0], np.array(img.shape[:3]) - 1], dtype=float)
    world = corners @ img.affine[:3, :3].T + img.affine[:3, 3]
    return world.min(axis=0), world.max(axis=0)


def build(source: Path, out: Path, min_count: int = 3, n_subjects: int = 20) -> dict:
    """Build the dataset folder; return the facts written to SOURCE.md."""
    if min_count < 1:
        raise BuildError(f"--min-count must be at least 1 (got {min_count})")
    if not 1 <= n_subjects <= 100000:
        raise BuildError(f"--n-subjects must be a whole number from 1 to 100000 (got {n_subjects})")
    paths = check_source(source)
    src = read_source(paths)
    selected, term_counts = select_articles(src, min_count)
    row_order = check_row_order(src, selected)
    unknown = set(src.coordinates["id"]) - set(src.metadata["id"])
    if unknown:
        raise BuildError(f"{paths['coordinates']}: {len(unknown)} article ids are not in the metadata")
    pmids = src.metadata["id"].iloc[selected].tolist()
    box = template_box()
    foci, excluded = build_foci(src, pmids, box)
    studies = build_studies(src, selected, term_counts)
    experiments = build_experiments(studies, n_subjects)
    source_peaks = int(src.coordinates["id"].isin(set(pmids)).sum())
    assert source_peaks == len(foci) + len(excluded), "every source peak is kept or excluded"
    xyz = foci[["x", "y", "z"]].astype(float).to_numpy()
    outside = foci[~np.all((xyz >= box[0]) & (xyz <= box[1]), axis=1)]
    facts = {
        "min_count": min_count, "n_subjects": n_subjects, "articles": len(studies), "foci": len(foci),
        "source_peaks": source_peaks, "excluded": len(excluded), "max_pmid": max(pmids, key=int),
        "excluded_by_reason": excluded["reason_code"].value_counts().sort_index().to_dict(),
        "row_order": row_order, "outside_box": outside, "box": box,
    }
    out.mkdir(parents=True, exist_ok=True)
    tables = {"studies.csv": studies, "experiments.csv": experiments, "foci.csv": foci,
              "findings.csv": pd.DataFrame(columns=FINDINGS_COLUMNS), "build_exclusions.csv": excluded}
    for name, df in tables.items():
        df.to_csv(out / name, index=False, lineterminator="\n")
    (out / "dataset.yaml").write_text(dataset_yaml(facts), encoding="utf-8")
    (out / "SOURCE.md").write_text(source_md(facts), encoding="utf-8")
    shutil.copyfile(paths["license"], out / "LICENSE")

    from painmeta.extraction import format_problems, validate

    problems = validate(out)
    if problems:
        raise BuildError("the written tables do not validate:\n" + format_problems(problems))
    return facts


def default_source() -> Path:
    env = os.environ.get("PAINMETA_NEUROQUERY_SOURCE")
    return Path(env) if env else ROOT.parent / "shared" / "data" / "neuroquery"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build data/raw/neuroquery_pain from the NeuroQuery v1 database (see the module docstring).")
    parser.add_argument("--source", type=Path, default=None,
                        help="folder with the NeuroQuery v1 files (default: $PAINMETA_NEUROQUERY_SOURCE, else "
                             "../shared/data/neuroquery from the project root)")
    parser.add_argument("--min-count", type=int, default=3,
                        help=f"minimum count of the term '{TERM}' in an article's abstract (default 3)")
    parser.add_argument("--n-subjects", type=int, default=20,
                        help="sample size assumed for every experiment (default 20; the database has none)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output folder (default data/raw/{DATASET} under the project root)")
    args = parser.parse_args(argv)
    source = args.source if args.source is not None else default_source()
    out = args.out if args.out is not None else ROOT / "data" / "raw" / DATASET
    try:
        facts = build(source, out, args.min_count, args.n_subjects)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}: {facts['articles']} articles, {facts['foci']} foci, {facts['excluded']} peaks excluded "
          f"({', '.join(f'{k}: {v}' for k, v in facts['excluded_by_reason'].items()) or 'none'}), "
          f"{len(facts['outside_box'])} outside the template volume")
    return 0


if __name__ == "__main__":
    sys.exit(main())
