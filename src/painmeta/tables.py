"""Publication tables built from the processed extraction tables.

The review's Table 1 (study characteristics) and Table 2 (imaging details) are
not public; these functions rebuild them from ``studies.csv`` and
``experiments.csv`` so that every cell traces back to a row with a source.
"""

from __future__ import annotations

import pandas as pd

NOT_PUBLIC = ("not extracted", "unknown", "not public")


def _fmt_n(value: object) -> str:
    return "" if pd.isna(value) else str(int(value))


def table1_characteristics(studies: pd.DataFrame) -> pd.DataFrame:
    """Study characteristics (the review's Table 1), one row per publication.

    Parameters
    ----------
    studies : pandas.DataFrame
        Processed ``studies.csv``.

    Returns
    -------
    pandas.DataFrame
    """
    out = pd.DataFrame({
        "Study": studies["first_author"].fillna("") + " " + studies["year"].map(_fmt_n),
        "Population": studies["population"],
        "Cancer": studies["cancer_type"],
        "Chemotherapy": studies["chemotherapy"],
        "Patients (n)": studies["n_patients"].map(_fmt_n),
        "Controls (n)": studies["n_controls"].map(_fmt_n),
        "Control group": studies["control_type"],
        "Design": studies["design"],
        "Symptom measure": studies["cipn_measure"],
        "Syntheses": studies["syntheses"].str.replace(";", ", "),
        "Source": studies["source"],
    })
    return out.fillna("")


def table2_imaging(studies: pd.DataFrame, experiments: pd.DataFrame) -> pd.DataFrame:
    """Imaging details (the review's Table 2), one row per publication.

    Parameters
    ----------
    studies, experiments : pandas.DataFrame
        Processed tables.

    Returns
    -------
    pandas.DataFrame
        Modality, scanner, analysis, seeds, number of contrasts and foci.
    """
    by_study = experiments.groupby("study_id")
    seeds = by_study["seed_region"].agg(lambda s: "; ".join(sorted(set(s.dropna()))))
    n_contrasts = by_study.size()
    n_foci = by_study["n_foci"].sum()
    directions = by_study["direction"].agg(lambda s: ", ".join(sorted(set(s))))
    out = pd.DataFrame({
        "Study": studies["first_author"].fillna("") + " " + studies["year"].map(_fmt_n),
        "Modality": studies["modality"],
        "Scanner": studies["scanner"],
        "Analysis": studies["analysis"],
        "Seed regions": studies["study_id"].map(seeds).fillna(""),
        "Contrasts (n)": studies["study_id"].map(n_contrasts).fillna(0).astype(int),
        "Directions": studies["study_id"].map(directions).fillna(""),
        "Public foci (n)": studies["study_id"].map(n_foci).fillna(0).astype(int),
    })
    return out.fillna("")


def missing_record(studies: pd.DataFrame, experiments: pd.DataFrame) -> pd.DataFrame:
    """What is missing from the public record, per study.

    Parameters
    ----------
    studies, experiments : pandas.DataFrame
        Processed tables.

    Returns
    -------
    pandas.DataFrame
        One row per study: fields not extracted, contrasts without coordinates,
        contrasts whose assignment is unverified or inferred, and a plain-words
        summary.
    """
    rows = []
    fields = ["chemotherapy", "n_patients", "n_controls", "scanner", "analysis", "cipn_measure", "modality"]
    for _, st in studies.iterrows():
        exps = experiments[experiments["study_id"] == st["study_id"]]
        missing_fields = [f for f in fields if pd.isna(st.get(f)) or str(st.get(f)).lower().startswith(NOT_PUBLIC)]
        no_coords = exps.loc[exps["n_foci"] == 0, "experiment_id"].tolist()
        unverified = exps.loc[exps["evidence"] != "verified", "experiment_id"].tolist()
        parts = []
        if not bool(st["identified"]):
            parts.append("study not identified: nothing can be extracted")
        if len(exps) == 0 and bool(st["identified"]):
            parts.append("no contrast-level finding recovered")
        if no_coords:
            parts.append(f"{len(no_coords)} of {len(exps)} contrasts have no public coordinates")
        if unverified:
            parts.append(f"{len(unverified)} contrast(s) unverified or inferred")
        if missing_fields:
            parts.append("not extracted: " + ", ".join(missing_fields))
        rows.append({
            "study_id": st["study_id"],
            "contrasts": len(exps),
            "contrasts_with_foci": int((exps["n_foci"] > 0).sum()),
            "unverified_or_inferred": "; ".join(unverified),
            "fields_not_extracted": ", ".join(missing_fields),
            "summary": "; ".join(parts) if parts else "complete",
        })
    return pd.DataFrame(rows)
