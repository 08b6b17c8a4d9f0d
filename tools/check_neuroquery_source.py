#!/usr/bin/env python
"""One-off checks of the NeuroQuery v1 source quoted in data/raw/neuroquery_pain/SOURCE.md.

1. Row order (``--pmids``): the neuroquery_data repository's ``data-neuroquery_version-1_pmids.txt``
   at commit 2606c07 (``git show 2606c07:data/data-neuroquery_version-1_pmids.txt``), which sits
   beside the same abstract term-count file as commit 4580f86, lists the PMID of each matrix row;
   compare it with the metadata order.
2. Coordinate space (``--neurosynth``): does NeuroQuery v1 convert Talairach coordinates to MNI?

NeuroQuery's files have no coordinate-space column. Neurosynth v7
(github.com/neurosynth/neurosynth-data, commit 209c33c, ODbL) guesses each article's space
from its text and stores the coordinates as extracted. For the articles both databases hold,
this script compares NeuroQuery's peaks with Neurosynth's raw peaks and with those peaks
converted Talairach -> MNI (Lancaster 2007, ``tal2icbm_other``, rounded to whole mm): if
NeuroQuery converted Talairach articles, their peaks would match the converted values.
It also counts, for the articles ``tools/build_neuroquery_pain.py`` selects, how many
Neurosynth marks as Talairach. The result is quoted in data/raw/neuroquery_pain/SOURCE.md;
Neurosynth data are not committed::

    .venv/bin/python tools/check_neuroquery_source.py --source NQ_DIR --pmids PMIDS_TXT --neurosynth NS_DIR

``NS_DIR`` holds ``data-neurosynth_version-7_coordinates.tsv.gz`` and
``data-neurosynth_version-7_metadata.tsv.gz``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_neuroquery_pain as nq  # noqa: E402

from painmeta.coords import tal2mni  # noqa: E402

#: An article "matches" when at least this fraction of its NeuroQuery peaks are in the other set.
MATCH = 0.8


def _peak_sets(df: pd.DataFrame, ids: set[str], convert: bool = False) -> dict[str, set]:
    out = {}
    for pmid, g in df[df["id"].isin(ids)].groupby("id"):
        xyz = g[["x", "y", "z"]].to_numpy(float)
        xyz = np.round(tal2mni(xyz), 0) if convert else np.round(xyz, 1)
        out[pmid] = set(map(tuple, xyz.tolist()))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=None, help="NeuroQuery v1 folder (as for the builder)")
    parser.add_argument("--pmids", type=Path, default=None,
                        help="data-neuroquery_version-1_pmids.txt from neuroquery_data commit 2606c07")
    parser.add_argument("--neurosynth", type=Path, default=None, help="folder with Neurosynth v7 files")
    parser.add_argument("--min-count", type=int, default=3, help="selection rule of the builder (default 3)")
    args = parser.parse_args(argv)
    try:
        src = nq.read_source(nq.check_source(args.source or nq.default_source()))
    except nq.BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.pmids is not None:
        listed = args.pmids.read_text(encoding="utf-8").split()
        same = listed == src.metadata["id"].tolist()
        print(f"row order: {args.pmids} lists {len(listed)} PMIDs; metadata has {len(src.metadata)}; "
              f"same order: {same}")
    if args.neurosynth is None:
        return 0
    ns_coords = pd.read_csv(args.neurosynth / "data-neurosynth_version-7_coordinates.tsv.gz", sep="\t",
                            dtype={"id": str})
    ns_meta = pd.read_csv(args.neurosynth / "data-neurosynth_version-7_metadata.tsv.gz", sep="\t",
                          dtype={"id": str}).set_index("id")
    nq_coords = src.coordinates.assign(**{c: pd.to_numeric(src.coordinates[c], errors="coerce")
                                          for c in ("x", "y", "z")}).dropna(subset=["x", "y", "z"])
    shared = set(nq_coords["id"]) & set(ns_coords["id"])
    space = ns_meta["space"]
    tal = {i for i in shared if space.get(i) == "TAL"}
    a, raw, conv = _peak_sets(nq_coords, tal), _peak_sets(ns_coords, tal), _peak_sets(ns_coords, tal, convert=True)
    same_raw = sum(len(a[i] & raw[i]) >= MATCH * len(a[i]) for i in tal)
    same_conv = sum(len(a[i] & conv[i]) >= MATCH * len(a[i]) for i in tal)
    tal_peaks = nq_coords[nq_coords["id"].isin(tal)][["x", "y", "z"]].to_numpy(float)
    whole = float(np.mean(np.all(tal_peaks == np.round(tal_peaks), axis=1)))
    print(f"articles in both databases: {len(shared)}; marked Talairach by Neurosynth: {len(tal)}")
    print(f"  NeuroQuery peaks match Neurosynth's stored peaks (>= {MATCH:.0%} of peaks): {same_raw}")
    print(f"  ... match them converted Talairach -> MNI (tal2icbm_other, whole mm): {same_conv}")
    print(f"  whole-number coordinates among NeuroQuery's peaks of these articles: {whole:.1%}")

    selected, _ = nq.select_articles(src, args.min_count)
    pmids = src.metadata["id"].iloc[selected]
    flag = pmids.map(space).fillna("not in Neurosynth v7")
    print(f"selected articles (abstract counts '{nq.TERM}' >= {args.min_count}): {len(pmids)}")
    for value, n in flag.value_counts().items():
        print(f"  Neurosynth space {value}: {n}")
    sel = nq_coords[nq_coords["id"].isin(set(pmids))][["x", "y", "z"]].to_numpy(float)
    shift = np.linalg.norm(tal2mni(sel) - sel, axis=1)
    print(f"  distance a selected peak would move if it were Talairach (tal2icbm_other): median {np.median(shift):.1f} "
          f"mm, 95th percentile {np.percentile(shift, 95):.1f} mm")
    return 0


if __name__ == "__main__":
    sys.exit(main())
