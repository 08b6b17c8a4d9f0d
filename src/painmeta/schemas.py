"""Table schemas (pandera) for the extraction tables, and user-facing messages.

Every raw table is read as text and validated here with pandera in *lazy* mode,
so one pass reports every problem. Each pandera failure is turned into a
:class:`Problem` naming the file, the row as a spreadsheet user sees it (the
header is line 1, the first data row line 2), the column, the bad value, and a
hint on how to fix it. Cross-table checks (unknown ids, duplicates across
columns) are added by :mod:`painmeta.extraction`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
MODALITIES = ("task fMRI", "rs-fMRI", "perfusion", "VBM", "DTI", "PET")
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
    """

    file: str
    line: int | None
    column: str | None
    value: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.column:
            where += f", column '{self.column}'"
        value = f" (value: {self.value!r})" if self.value != "" else ""
        return f"{where}: {self.message}{value}"


def _is_bool_text(s: pd.Series) -> pd.Series:
    return s.str.lower().isin(BOOL_TRUE + BOOL_FALSE)


def _is_int_text(s: pd.Series) -> pd.Series:
    return s.str.fullmatch(r"[+-]?\d+")


def _is_float_text(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce").notna()


def _in_range(lo: float, hi: float):
    def check(s: pd.Series) -> pd.Series:
        v = pd.to_numeric(s, errors="coerce")
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
    "is_int": "write a whole number (no decimals, no text)",
    "is_number": "write a number in mm or the statistic's units (a '.' decimal point, no text)",
    "coordinate_range": "coordinates are in mm and must lie within +/-150; check the sign, units and column order (x, y, z)",
    "year_range": "write the four-digit publication year",
    "positive": "must be at least 1",
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
_POS = pa.Check(lambda s: pd.to_numeric(s, errors="coerce").fillna(1) >= 1, name="positive")
_COORD = pa.Check(_in_range(-150, 150), element_wise=False, name="coordinate_range")

STUDIES = pa.DataFrameSchema(
    {
        "study_id": _text(checks=[_ID], unique=True),
        "first_author": _text(),
        "year": _text(nullable=True, checks=[_INT, pa.Check(_in_range(1950, 2100), name="year_range")]),
        "journal": _text(nullable=True),
        "doi": _text(nullable=True),
        "pmid": _text(nullable=True, checks=[_INT]),
        "identified": _text(checks=[_BOOL]),
        "population": _text(),
        "cancer_type": _text(),
        "chemotherapy": _text(nullable=True),
        "n_patients": _text(nullable=True, checks=[_INT, _POS]),
        "n_controls": _text(nullable=True, checks=[_INT, _POS]),
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
        "n_ale": _text(nullable=True, checks=[_INT, _POS]),
        "space": _text(nullable=True, checks=[_enum(SPACES, "space")]),
        "include": _text(checks=[_BOOL]),
        "exclude_reason": _text(nullable=True),
        "evidence": _text(checks=[_enum(EVIDENCE, "evidence")]),
        "evidence_note": _text(nullable=True),
        "source": _text(),
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
        "cluster_size": _text(nullable=True, checks=[_INT, _POS]),
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

#: Table name -> schema, in the order tables are validated.
SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "studies": STUDIES,
    "experiments": EXPERIMENTS,
    "foci": FOCI,
    "findings": FINDINGS,
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
            shown = "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
            problems.append(Problem(str(path), line, column, shown, hint))
    problems.sort(key=lambda p: (p.line or 0, p.column or ""))
    return problems
