"""Benchmark problems for the ALE Monte Carlo null, from 3 to ~350 experiments.

======================  ===========  =====  ==============================================
name                    experiments  foci   source
======================  ===========  =====  ==============================================
``cipn``                3            11     CIPN-sized synthetic problem (n = 12 / 20 / 13)
``nidm_pain``           21           267    NiMARE's nidm_pain (ships in the wheel)
``enge2021``            50           687    Enge et al. 2021 ``sleuth_all.txt`` (published)
``neuroquery_pain60``   60           ~2.2k  the 60 NeuroQuery articles with most "pain"
``neuroquery_pain``     350          13630  NeuroQuery articles counting "pain" >= 3
======================  ===========  =====  ==============================================

The large problems are read from the project's datasets when they exist
(``data/raw/enge2021_semantic``, ``data/raw/neuroquery_pain``) and otherwise
from the shared source folders given by ``--shared`` (default
``/work/shared/data``); a problem whose input is missing is skipped with a
message. NeuroQuery has no sample sizes: every article gets
:data:`NEUROQUERY_N` subjects (the assumption ``neuroquery_pain`` states).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PAINMETA_SHARED", "/work/shared/data"))
#: Subjects per NeuroQuery article (the database has none; an assumption).
NEUROQUERY_N = 20
#: Abstract term-count rule of the NeuroQuery pain selection.
PAIN_MIN_COUNT = 3

PROBLEMS = ("cipn", "nidm_pain", "enge2021", "neuroquery_pain60", "neuroquery_pain")


class MissingInput(RuntimeError):
    """The problem's input files are not on this machine."""


def _cipn():
    rows = [("boland", 4, 24, 23), ("boland", -50, 13, -8), ("boland", -30, -67, -20), ("boland", 44, 20, -9),
            ("liu", -40, -20, 50), ("liu", 20, -20, 0), ("liu", 0, -30, -10), ("liu", 44, 10, 20),
            ("smith", 2, -54, 30), ("smith", 0, 50, 0), ("smith", -30, -70, 40)]
    foci = pd.DataFrame(rows, columns=["experiment_id", "x", "y", "z"]).astype({"x": float, "y": float, "z": float})
    return foci, {"boland": 12, "liu": 20, "smith": 13}


def _nidm():
    from painmeta.ale.models import nidm_pain_model

    model = nidm_pain_model()
    return model.foci[["experiment_id", "x", "y", "z"]], model.sample_sizes


def _enge():
    from painmeta.sleuth import read_sleuth

    for path in (ROOT / "data/raw/enge2021_semantic/sleuth_all.txt", SHARED / "published/enge2021/sleuth_all.txt"):
        if path.is_file():
            data = read_sleuth([path])
            if data.space != "MNI":
                data = data.to_mni()
            return data.foci[["experiment_id", "x", "y", "z"]], dict(data.sample_sizes)
    raise MissingInput("Enge 2021 sleuth_all.txt (data/raw/enge2021_semantic or --shared)")


def neuroquery_pain_tables(n_articles: int | None = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """NeuroQuery articles whose abstract counts "pain" >= 3, one experiment each.

    ``n_articles`` keeps the articles with the most "pain" mentions (ties: lower PMID).
    """
    raw = ROOT / "data/raw/neuroquery_pain"
    if n_articles is None and (raw / "foci.csv").is_file() and (raw / "experiments.csv").is_file():
        foci = pd.read_csv(raw / "foci.csv", dtype={"experiment_id": str})
        exps = pd.read_csv(raw / "experiments.csv", dtype={"experiment_id": str})
        n = dict(zip(exps["experiment_id"], exps["n_ale"].astype(int)))
        return foci[["experiment_id", "x", "y", "z"]], n
    import scipy.sparse as sp

    d = SHARED / "neuroquery"
    names = ("data-neuroquery_version-1_vocab-neuroquery7547_source-abstract_type-count_features.npz",
             "data-neuroquery_version-1_vocab-neuroquery7547_vocabulary.txt",
             "data-neuroquery_version-1_metadata.tsv.gz", "data-neuroquery_version-1_coordinates.tsv.gz")
    if not all((d / n).is_file() for n in names):
        raise MissingInput(f"NeuroQuery files in {d}")
    counts = sp.load_npz(d / names[0])
    vocab = (d / names[1]).read_text().split("\n")
    meta = pd.read_csv(d / names[2], sep="\t")
    pain = np.asarray(counts[:, vocab.index("pain")].todense()).ravel()
    sel = meta.assign(pain=pain)[pain >= PAIN_MIN_COUNT]
    if n_articles is not None:
        sel = sel.sort_values(["pain", "id"], ascending=[False, True]).head(n_articles)
    coords = pd.read_csv(d / names[3], sep="\t")
    coords = coords[coords["id"].isin(sel["id"])]
    foci = pd.DataFrame({"experiment_id": coords["id"].astype(str), "x": coords["x"].astype(float),
                         "y": coords["y"].astype(float), "z": coords["z"].astype(float)}).reset_index(drop=True)
    return foci, {e: NEUROQUERY_N for e in sorted(set(foci["experiment_id"]))}


def load(name: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """``(foci, sample_sizes)`` of a benchmark problem (raises :class:`MissingInput`)."""
    if name == "cipn":
        return _cipn()
    if name == "nidm_pain":
        return _nidm()
    if name == "enge2021":
        return _enge()
    if name == "neuroquery_pain60":
        return neuroquery_pain_tables(60)
    if name == "neuroquery_pain":
        return neuroquery_pain_tables()
    raise ValueError(f"unknown problem {name!r}; choose from {PROBLEMS}")
