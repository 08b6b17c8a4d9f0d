"""Table schemas (pandera) for the extraction tables, and user-facing messages.

Every raw table is read as text and validated here with pandera in *lazy* mode,
so one pass reports every problem. Each pandera failure is turned into a
:class:`Problem` naming the file, the row as a spreadsheet user sees it (the
header is line 1, the first data row line 2), the column, the bad value, and a
hint on how to fix it. Cross-table checks (unknown ids, duplicates across
columns) are added by :mod:`painmeta.extraction`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

CONTRAST_TYPES = ("between_group", "correlation", "within_group")
DIRECTIONS = (
    "patients>controls",
    "patients<controls",
    "positive_association",
    "negative_association",
    "activation",
    "mixed",
    "unknown",
)
MODALITIES = ("task fMRI", "rs-fMRI", "perfusion", "VBM", "DTI", "PET", "unknown")
SPACES = ("MNI", "TAL")
EVIDENCE = ("verified", "inferred", "unverified", "secondary")  # secondary: read from another analysis's data
HEMISPHERES = ("left", "right", "midline", "bilateral")
STAT_TYPES = ("t", "z", "F", "p")
SYNTHESES = ("narrative", "roi", "ale")
TAL_TRANSFORMS = ("tal2icbm_spm", "tal2icbm_fsl", "tal2icbm_other")
BOOL_TRUE = ("true", "yes", "1")
BOOL_FALSE = ("false", "no", "0")

_ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_.\-]*$"


@dataclass(frozen=True)
class Problem:
    """One validation problem, located as a spreadsheet user would look for it.

    Attributes
    ----------
    file : str
        Path of the table.
    line : int or None
        Spreadsheet line (header = 1); None for whole-file or column problems.
    column : str or None
        Column name; None for whole-file problems.
    value : str
        The offending value ('' when not applicable).
    message : str
        What is wrong and how to fix it.
    label : str
        What ``column`` names: ``"column"`` in a table, ``"key"`` in a YAML file.
    """

    file: str
    line: int | None
    column: str | None
    value: str
    message: str
    label: str = "column"

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.column:
            where += f", {self.label} '{self.column}'"
        value = f" (value: {self.value!r})" if self.value != "" else ""
        return f"{where}: {self.message}{value}"


def _is_bool_text(s: pd.Series) -> pd.Series:
    return s.str.lower().isin(BOOL_TRUE + BOOL_FALSE)


# ASCII digits only: Python's \d (and float()) also accept other scripts' digits
# (full-width "１２", Arabic-Indic ...), which pandas then silently turns into NA.
_INT_TEXT = r"[+-]?[0-9]+"
_FLOAT_TEXT = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
#: Largest count accepted for a sample size (per experiment or arm).
MAX_SUBJECTS = 100_000


def _is_int_text(s: pd.Series) -> pd.Series:
    return s.str.fullmatch(_INT_TEXT)


def _is_float_text(s: pd.Series) -> pd.Series:
    ok = s.str.fullmatch(_FLOAT_TEXT).fillna(False).astype(bool)
    return ok & np.isfinite(pd.to_numeric(s.where(ok), errors="coerce").astype(float)).fillna(False)


def _int_between(lo: int, hi: int):
    def ok(value: object) -> bool:
        text = str(value).strip()
        if not re.fullmatch(_INT_TEXT, text):
            return True  # not a whole number at all: the is_int check reports it
        return len(text.lstrip("+-")) <= 15 and lo <= int(text) <= hi

    def check(s: pd.Series) -> pd.Series:
        return s.map(ok).astype(bool)

    return check


def _in_range(lo: float, hi: float):
    def check(s: pd.Series) -> pd.Series:
        v = pd.to_numeric(s.where(s.str.fullmatch(_FLOAT_TEXT).fillna(False).astype(bool)), errors="coerce")
        return v.isna() | v.between(lo, hi)

    return check


def _subset_of(allowed: tuple[str, ...]):
    def check(s: pd.Series) -> pd.Series:
        return s.map(lambda v: all(p.strip() in allowed for p in str(v).split(";") if p.strip()))

    return check


# Hints, keyed by the pandera check name, say how to fix a failure.
_HINTS: dict[str, str] = {
    "not_nullable": "this cell must not be empty; fill it in",
    "id_pattern": "ids start with a letter and use letters, digits, '_', '.', '-' only",
    "is_bool": "write true or false",
    "is_int": "write a whole number with the digits 0-9 (no decimals, no text)",
    "is_number": "write a number in mm or the statistic's units (digits 0-9, a '.' decimal point, no text)",
    "count_range": f"a sample size is a whole number from 1 to {MAX_SUBJECTS:,}",
    "cluster_size_range": "a cluster size is a whole number from 1 to 10,000,000 (voxels or mm3)",
    "pmid_range": "a PubMed id is a whole number from 1 to 999,999,999",
    "coordinate_range": "coordinates are in mm and must lie within +/-150; check the sign, units and column order (x, y, z)",
    "year_range": "write the four-digit publication year",
    "field_uniqueness": "each id must appear once; rename or remove the duplicate row",
    "syntheses": f"list any of {', '.join(SYNTHESES)} separated by ';'",
}


def _enum(allowed: tuple[str, ...], name: str) -> pa.Check:
    return pa.Check.isin(list(allowed), name=name, error=f"must be one of: {', '.join(allowed)}")


def _text(nullable: bool = False, checks: list[pa.Check] | None = None, unique: bool = False) -> pa.Column:
    # Tables are read as text with empty cells as NA; types are checked on the text
    # so that the bad cell itself can be shown to the user.
    return pa.Column(str, nullable=nullable, checks=checks or [], unique=unique, required=True)


def _opt(checks: list[pa.Check] | None = None) -> pa.Column:
    return pa.Column(str, nullable=True, checks=checks or [], required=False)


_ID = pa.Check.str_matches(_ID_PATTERN, name="id_pattern")
_BOOL = pa.Check(_is_bool_text, element_wise=False, name="is_bool")
_INT = pa.Check(_is_int_text, element_wise=False, name="is_int")
_NUM = pa.Check(_is_float_text, element_wise=False, name="is_number")
_COUNT = pa.Check(_int_between(1, MAX_SUBJECTS), element_wise=False, name="count_range")
_CLUSTER = pa.Check(_int_between(1, 10_000_000), element_wise=False, name="cluster_size_range")
_PMID = pa.Check(_int_between(1, 999_999_999), element_wise=False, name="pmid_range")
_COORD = pa.Check(_in_range(-150, 150), element_wise=False, name="coordinate_range")

STUDIES = pa.DataFrameSchema(
    {
        "study_id": _text(checks=[_ID], unique=True),
        "first_author": _text(),
        "year": _text(nullable=True, checks=[_INT, pa.Check(_in_range(1950, 2100), name="year_range")]),
        "journal": _text(nullable=True),
        "doi": _text(nullable=True),
        "pmid": _text(nullable=True, checks=[_INT, _PMID]),
        "identified": _text(checks=[_BOOL]),
        "population": _text(),
        "cancer_type": _text(),
        "chemotherapy": _text(nullable=True),
        "n_patients": _text(nullable=True, checks=[_INT, _COUNT]),
        "n_controls": _text(nullable=True, checks=[_INT, _COUNT]),
        "control_type": _text(nullable=True),
        "design": _text(nullable=True),
        "modality": _text(nullable=True),
        "scanner": _text(nullable=True),
        "analysis": _text(nullable=True),
        "cipn_measure": _text(nullable=True),
        "syntheses": _text(checks=[pa.Check(_subset_of(SYNTHESES), element_wise=False, name="syntheses")]),
        "evidence": _text(checks=[_enum(EVIDENCE, "evidence")]),
        "note": _text(nullable=True),
        "source": _text(),
        "tal_transform": _opt([_enum(TAL_TRANSFORMS, "tal_transform")]),
    },
    strict=False,
    name="studies.csv",
)

EXPERIMENTS = pa.DataFrameSchema(
    {
        "experiment_id": _text(checks=[_ID], unique=True),
        "study_id": _text(),
        "contrast": _text(),
        "contrast_type": _text(checks=[_enum(CONTRAST_TYPES, "contrast_type")]),
        "direction": _text(checks=[_enum(DIRECTIONS, "direction")]),
        "modality": _text(checks=[_enum(MODALITIES, "modality")]),
        "seed_region": _text(nullable=True),
        "n_ale": _text(nullable=True, checks=[_INT, _COUNT]),
        "space": _text(nullable=True, checks=[_enum(SPACES, "space")]),
        "include": _text(checks=[_BOOL]),
        "exclude_reason": _text(nullable=True),
        "evidence": _text(checks=[_enum(EVIDENCE, "evidence")]),
        "evidence_note": _text(nullable=True),
        "source": _text(),
        # Experiments sharing participants share a name; ALE pools them (Turkeltaub 2012).
        "subject_group": _opt([_ID]),
    },
    strict=False,
    name="experiments.csv",
)

FOCI = pa.DataFrameSchema(
    {
        "focus_id": _text(checks=[_ID], unique=True),
        "experiment_id": _text(),
        "x": _text(checks=[_NUM, _COORD]),
        "y": _text(checks=[_NUM, _COORD]),
        "z": _text(checks=[_NUM, _COORD]),
        "space": _text(checks=[_enum(SPACES, "space")]),
        "label": _text(nullable=True),
        "hemisphere": _text(nullable=True, checks=[_enum(HEMISPHERES, "hemisphere")]),
        "stat_type": _text(nullable=True, checks=[_enum(STAT_TYPES, "stat_type")]),
        "stat_value": _text(nullable=True, checks=[_NUM]),
        "cluster_size": _text(nullable=True, checks=[_INT, _CLUSTER]),
        "evidence": _text(checks=[_enum(EVIDENCE, "evidence")]),
        "note": _text(nullable=True),
        "source": _text(),
    },
    strict=False,
    name="foci.csv",
)

FINDINGS = pa.DataFrameSchema(
    {
        "finding_id": _text(checks=[_ID], unique=True),
        "experiment_id": _text(),
        "region": _text(),
        "hemisphere": _text(nullable=True, checks=[_enum(HEMISPHERES, "hemisphere")]),
        "direction": _text(checks=[_enum(DIRECTIONS, "direction")]),
        "focus_id": _text(nullable=True),
        "evidence": _text(checks=[_enum(EVIDENCE, "evidence")]),
        "note": _text(nullable=True),
        "source": _text(),
    },
    strict=False,
    name="findings.csv",
)

#: Bases of a review-implied count (how it was derived from the review's numbers).
IMPLIED_BASES = ("proportion_and_ci", "pooled_tau0", "sum_of_network_rows")
_PROPORTION = pa.Check(_in_range(0, 1), element_wise=False, name="proportion_range")
_HINTS["proportion_range"] = "a proportion or confidence limit lies between 0 and 1"
_HINTS["count_or_zero_range"] = f"events is a whole number from 0 to {MAX_SUBJECTS:,}"

#: ``review_implied_counts.csv`` (optional): counts a review's reported proportions imply.
IMPLIED = pa.DataFrameSchema(
    {
        "item_id": _text(checks=[_ID], unique=True),
        "level": _text(checks=[_enum(("experiment", "study"), "level")]),
        "subgroup": _text(checks=[_enum(("overall", "patients>controls", "patients<controls"), "subgroup")]),
        "network": _text(),
        "events": _text(checks=[_INT, pa.Check(_int_between(0, MAX_SUBJECTS), element_wise=False,
                                               name="count_or_zero_range")]),
        "n": _text(checks=[_INT, _COUNT]),
        "basis": _text(checks=[_enum(IMPLIED_BASES, "basis")]),
        "reported_proportion": _text(nullable=True, checks=[_NUM, _PROPORTION]),
        "reported_ci_lower": _text(nullable=True, checks=[_NUM, _PROPORTION]),
        "reported_ci_upper": _text(nullable=True, checks=[_NUM, _PROPORTION]),
        "where": _text(),
        "derivation": _text(),
        "note": _text(nullable=True),
    },
    strict=False,
    name="review_implied_counts.csv",
)

#: Table name -> schema, in the order tables are validated.
SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "studies": STUDIES,
    "experiments": EXPERIMENTS,
    "foci": FOCI,
    "findings": FINDINGS,
    "review_implied_counts": IMPLIED,
}


def run_schema(table: str, df: pd.DataFrame, path: Path | str) -> list[Problem]:
    """Validate one text table against its schema and return every problem.

    Parameters
    ----------
    table : str
        Key of :data:`SCHEMAS` (``"studies"``, ``"experiments"``, ...).
    df : pandas.DataFrame
        The table as read by :func:`painmeta.extraction.read_table` (all text,
        empty cells as NA, default RangeIndex so that line = index + 2).
    path : path-like
        File path, for the messages.

    Returns
    -------
    list of Problem
        Empty when the table is valid.
    """
    schema = SCHEMAS[table]
    problems: list[Problem] = []
    missing = [c for c, col in schema.columns.items() if col.required and c not in df.columns]
    for col in missing:
        problems.append(
            Problem(str(path), 1, col, "", f"required column is missing; add a column named '{col}' to the header")
        )
    present = schema.remove_columns(missing) if missing else schema
    try:
        present.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        fc = exc.failure_cases
        for _, row in fc.iterrows():
            column = row.get("column")
            check = str(row.get("check"))
            idx = row.get("index")
            value = row.get("failure_case")
            if check == "column_in_dataframe":
                continue  # reported above, with a friendlier message
            if check.startswith("not_nullable"):
                key = "not_nullable"
            elif "field_uniqueness" in check or "unique" in check:
                key = "field_uniqueness"
            else:
                key = check.split("(")[0]
            # Enumeration checks report their own message, which lists the allowed values.
            hint = _HINTS.get(key) or (check if check.startswith("must be") else f"failed check {check}")
            line = int(idx) + 2 if pd.notna(idx) else None
            shown = "" if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)) else str(value)
            problems.append(Problem(str(path), line, column, shown, hint))
    problems.sort(key=lambda p: (p.line or 0, p.column or ""))
    return problems
