"""Extraction stage: read, validate and process a dataset's tables.

``data/raw/<dataset>/`` holds ``studies.csv``, ``experiments.csv``,
``foci.csv`` and ``findings.csv`` (plus ``robins_i.csv``, ``prisma.yaml`` and
``reported.yaml`` for later stages), or, for ``source: nimare_json``, a pointer
to a NiMARE dataset that ships in a wheel. Processing:

1. read every table as text and validate it (:mod:`painmeta.schemas`), plus
   cross-table checks (unknown ids, duplicate foci, space mismatches); every
   problem of every table is reported in one pass;
2. drop rows only by rule, each with its reason in ``exclusions.csv``:
   experiments marked ``include = false`` and the foci/findings that belong
   to them;
3. convert Talairach foci to MNI (Lancaster 2007, transform per study);
4. coordinate QA (:func:`painmeta.coords.qa_foci`), flags in ``qa_flags.csv``;
5. write tidy processed tables, Sleuth files per model and space, and a
   NiMARE dataset.

Command line: ``python -m painmeta validate data/raw/<dataset>`` and
``python -m painmeta extract <dataset>``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from painmeta import coords
from painmeta.config import DatasetConfig, load_config
from painmeta.errors import InputError
from painmeta.paths import DatasetPaths, write_tables
from painmeta.schemas import BOOL_TRUE, SCHEMAS, Problem, run_schema

TABLES = ("studies", "experiments", "foci", "findings")
_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}


# --------------------------------------------------------------------------- reading


def read_table(path: Path) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Read a CSV table as text, checking encoding and delimiter first.

    Parameters
    ----------
    path : pathlib.Path
        The CSV file.

    Returns
    -------
    table : pandas.DataFrame or None
        All columns as text, empty cells as NA; None when the file cannot be
        read at all.
    problems : list of Problem
        File-level problems (missing, empty, not UTF-8, wrong delimiter).
    """
    name = str(path)
    if not path.is_file():
        return None, [Problem(name, None, None, "", "file not found; create it (see docs/TABLES.md for the columns)")]
    raw = path.read_bytes()
    if not raw.strip():
        return None, [Problem(name, None, None, "", "file is empty; it needs at least a header row")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [
            Problem(name, line, None, "",
                    f"file is not UTF-8 (byte {raw[exc.start]:#x}); re-save it as 'CSV UTF-8' in your spreadsheet program")
        ]
    header = text.splitlines()[0]
    if "," not in header:
        used = next((label for d, label in _DELIMITERS.items() if d in header), None)
        hint = f"it looks {used}-separated" if used else "the header has no commas"
        return None, [Problem(name, 1, None, "", f"{hint}; save the table as comma-separated values (CSV)")]
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
    except pd.errors.ParserError as exc:
        return None, [Problem(name, None, None, "", f"not a well-formed CSV ({exc}); check quoting of cells with commas")]
    problems: list[Problem] = []
    # A row with more cells than the header shows up as an unnamed column.
    extra = [c for c in df.columns if str(c).startswith("Unnamed")]
    for col in extra:
        for idx in df.index[df[col].notna()]:
            problems.append(Problem(name, int(idx) + 2, None, "",
                                    "row has more cells than the header; quote cells that contain commas"))
    df = df.drop(columns=extra)
    df.columns = [str(c).strip() for c in df.columns]
    for col in df.columns:
        df[col] = df[col].str.strip().replace("", pd.NA)
    return df.reset_index(drop=True), problems


def _truthy(series: pd.Series) -> pd.Series:
    return series.fillna("").str.lower().isin(BOOL_TRUE)


def _line(df: pd.DataFrame, idx: int) -> int:
    return int(idx) + 2


# --------------------------------------------------------------------------- validation


@dataclass
class RawTables:
    """Validated raw tables of one dataset (all text), with their files."""

    folder: Path
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def file(self, table: str) -> Path:
        """Path of a table's CSV file."""
        return self.folder / f"{table}.csv"


def cross_checks(tables: dict[str, pd.DataFrame], folder: Path) -> list[Problem]:
    """Referential integrity, duplicates and consistency across tables.

    Parameters
    ----------
    tables : dict of str to DataFrame
        Tables that passed reading (schemas may still have failed).
    folder : pathlib.Path
        Raw folder, for the messages.

    Returns
    -------
    list of Problem
    """
    problems: list[Problem] = []
    studies = tables.get("studies")
    experiments = tables.get("experiments")
    foci = tables.get("foci")
    findings = tables.get("findings")

    def fk(child: pd.DataFrame | None, table: str, col: str, parent: pd.DataFrame | None,
           parent_table: str, parent_col: str, optional: bool = False) -> None:
        if child is None or parent is None or col not in child or parent_col not in parent:
            return
        known = set(parent[parent_col].dropna())
        for idx, value in child[col].items():
            if pd.isna(value):
                continue
            if value not in known:
                problems.append(Problem(
                    str(folder / f"{table}.csv"), _line(child, idx), col, str(value),
                    f"unknown {parent_col}: no row of {parent_table}.csv has it; add that row there or correct the id"))

    fk(experiments, "experiments", "study_id", studies, "studies", "study_id")
    fk(foci, "foci", "experiment_id", experiments, "experiments", "experiment_id")
    fk(findings, "findings", "experiment_id", experiments, "experiments", "experiment_id")
    fk(findings, "findings", "focus_id", foci, "foci", "focus_id", optional=True)

    if foci is not None and {"experiment_id", "x", "y", "z"} <= set(foci.columns):
        num = foci[["x", "y", "z"]].apply(pd.to_numeric, errors="coerce")
        key = pd.Series([f"{e}|{x:.3f},{y:.3f},{z:.3f}" for e, x, y, z in
                         zip(foci["experiment_id"], num["x"], num["y"], num["z"])], index=foci.index)
        dup = key.duplicated(keep="first") & num.notna().all(axis=1)
        for idx in foci.index[dup]:
            first = int(foci.index[key == key[idx]][0])
            problems.append(Problem(
                str(folder / "foci.csv"), _line(foci, idx), "x, y, z",
                f"{foci.at[idx, 'x']}, {foci.at[idx, 'y']}, {foci.at[idx, 'z']}",
                f"duplicate focus: same experiment and coordinates as line {_line(foci, first)}; delete one of them"))
    if foci is not None and experiments is not None and {"space", "experiment_id"} <= set(foci.columns) \
            and {"space", "experiment_id"} <= set(experiments.columns):
        exp_space = experiments.set_index("experiment_id")["space"].dropna().to_dict()
        for idx, row in foci.iterrows():
            want = exp_space.get(row["experiment_id"])
            if want and row["space"] in ("MNI", "TAL") and row["space"] != want:
                problems.append(Problem(
                    str(folder / "foci.csv"), _line(foci, idx), "space", str(row["space"]),
                    f"experiment {row['experiment_id']} is in {want} space (experiments.csv); "
                    "make the two agree"))
    if experiments is not None and {"include", "exclude_reason"} <= set(experiments.columns):
        excluded = ~_truthy(experiments["include"]) & experiments["include"].notna()
        for idx in experiments.index[excluded & experiments["exclude_reason"].isna()]:
            problems.append(Problem(
                str(folder / "experiments.csv"), _line(experiments, idx), "exclude_reason", "",
                "include is false, so say why in exclude_reason (nothing is dropped without a reason)"))
    return problems


def load_raw(folder: Path | str, require: tuple[str, ...] = TABLES) -> RawTables:
    """Read and validate every table of a raw dataset folder.

    Parameters
    ----------
    folder : path-like
        ``data/raw/<dataset>``.
    require : tuple of str
        Tables that must exist.

    Returns
    -------
    RawTables
        Tables and the full list of problems (empty when valid).
    """
    folder = Path(folder)
    raw = RawTables(folder=folder)
    for table in require:
        df, problems = read_table(folder / f"{table}.csv")
        raw.problems.extend(problems)
        if df is None:
            continue
        raw.problems.extend(run_schema(table, df, folder / f"{table}.csv"))
        raw.tables[table] = df
    raw.problems.extend(cross_checks(raw.tables, folder))
    return raw


def validate(folder: Path | str) -> list[Problem]:
    """Validate a raw dataset folder; return every problem (empty = valid).

    Parameters
    ----------
    folder : path-like
        ``data/raw/<dataset>``.

    Returns
    -------
    list of Problem
    """
    folder = Path(folder)
    cfg_file = folder / "dataset.yaml"
    if cfg_file.is_file():
        try:
            config, _ = load_config(folder)
        except InputError as exc:
            return [Problem(str(cfg_file), None, None, "", str(exc))]
        if config.source == "nimare_json":
            return []  # tables are generated from a shipped, already-validated dataset
    return load_raw(folder).problems


def format_problems(problems: list[Problem]) -> str:
    """One line per problem, with a count header."""
    head = f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found:"
    return "\n".join([head, *(f"  - {p}" for p in problems)])


# --------------------------------------------------------------------------- nimare_json source


def tables_from_nimare(json_name: str) -> dict[str, pd.DataFrame]:
    """Build extraction tables from a NiMARE dataset JSON that ships in the wheel.

    Parameters
    ----------
    json_name : str
        File name under ``nimare/resources`` (e.g. ``nidm_pain_dset.json``).

    Returns
    -------
    dict of str to DataFrame
        ``studies``, ``experiments``, ``foci`` (text, like raw tables) and an
        empty ``findings``.
    """
    from nimare.utils import get_resource_path

    path = Path(get_resource_path()) / json_name
    data = json.loads(path.read_text())
    source = f"NiMARE {_version('nimare')} wheel: nimare/resources/{json_name}"
    studies, experiments, foci = [], [], []
    for study_id, study in data.items():
        sid = study_id.replace(".", "_")
        for contrast_id, contrast in study.get("contrasts", {}).items():
            eid = f"{sid}-{contrast_id}"
            c = contrast.get("coords", {})
            n = (contrast.get("metadata", {}) or {}).get("sample_sizes") or [None]
            space = "TAL" if "tal" in str(c.get("space", "mni")).lower() else "MNI"
            experiments.append({
                "experiment_id": eid, "study_id": sid, "contrast": f"{study_id} contrast {contrast_id}",
                "contrast_type": "within_group", "direction": "activation", "modality": "task fMRI",
                "seed_region": None, "n_ale": str(int(n[0])) if n[0] else None, "space": space,
                "include": "true", "exclude_reason": None, "evidence": "verified",
                "evidence_note": "NIDM-Results pain study shipped as NiMARE's example", "source": source,
            })
            for i, (x, y, z) in enumerate(zip(c.get("x", []), c.get("y", []), c.get("z", [])), 1):
                foci.append({
                    "focus_id": f"{eid}_{i:03d}", "experiment_id": eid, "x": repr(float(x)), "y": repr(float(y)),
                    "z": repr(float(z)), "space": space, "label": None, "hemisphere": None, "stat_type": None,
                    "stat_value": None, "cluster_size": None, "evidence": "verified", "note": None, "source": source,
                })
        studies.append({
            "study_id": sid, "first_author": study_id, "year": None, "journal": None, "doi": None, "pmid": None,
            "identified": "true", "population": "healthy volunteers (pain task)", "cancer_type": "none",
            "chemotherapy": None, "n_patients": experiments[-1]["n_ale"] if experiments else None,
            "n_controls": None, "control_type": None, "design": "single-group task fMRI",
            "modality": "task fMRI", "scanner": None, "analysis": "NIDM-Results export", "cipn_measure": None,
            "syntheses": "ale", "evidence": "verified", "note": None, "source": source, "tal_transform": None,
        })
    out = {
        "studies": pd.DataFrame(studies),
        "experiments": pd.DataFrame(experiments),
        "foci": pd.DataFrame(foci),
        "findings": pd.DataFrame(columns=list(SCHEMAS["findings"].columns)),
    }
    return {k: v.astype("string").astype(object).where(v.notna(), pd.NA) for k, v in out.items()}


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


# --------------------------------------------------------------------------- processing


@dataclass
class Extraction:
    """Processed tables of one dataset.

    Attributes
    ----------
    studies, experiments, foci, findings : pandas.DataFrame
        Typed, tidy tables; ``foci`` holds MNI coordinates (``x, y, z``) next to
        the reported ones (``x_reported`` ...), with the transform used.
    exclusions : pandas.DataFrame
        One row per raw row not carried into the processed tables, with reason.
    qa_lookup, qa_flags : pandas.DataFrame
        Atlas lookups per focus and QA flags (see :func:`painmeta.coords.qa_foci`).
    raw_counts : dict of str to int
        Rows per raw table, for the accounting check.
    """

    studies: pd.DataFrame
    experiments: pd.DataFrame
    foci: pd.DataFrame
    findings: pd.DataFrame
    exclusions: pd.DataFrame
    qa_lookup: pd.DataFrame
    qa_flags: pd.DataFrame
    raw_counts: dict[str, int]

    def accounting(self) -> pd.DataFrame:
        """Raw rows = processed rows + excluded rows, per table."""
        rows = []
        for table in TABLES:
            processed = len(getattr(self, table))
            excluded = int((self.exclusions["table"] == table).sum()) if len(self.exclusions) else 0
            raw = self.raw_counts.get(table, 0)
            rows.append({"table": table, "raw_rows": raw, "processed_rows": processed,
                         "excluded_rows": excluded, "accounted": raw == processed + excluded})
        return pd.DataFrame(rows)


def _to_int(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce").astype("Int64")


def process(tables: dict[str, pd.DataFrame], config: DatasetConfig) -> Extraction:
    """Turn validated text tables into typed processed tables.

    Parameters
    ----------
    tables : dict of str to DataFrame
        Valid raw tables (text).
    config : DatasetConfig
        Dataset config (ALE inclusion of unverified experiments).

    Returns
    -------
    Extraction
    """
    studies = tables["studies"].copy()
    experiments = tables["experiments"].copy()
    foci = tables["foci"].copy()
    findings = tables["findings"].copy()
    raw_counts = {t: len(tables[t]) for t in TABLES}
    excl: list[dict] = []

    # Typed columns.
    studies["identified"] = _truthy(studies["identified"])
    for col in ("year", "n_patients", "n_controls"):
        studies[col] = _to_int(studies[col])
    if "tal_transform" not in studies:
        studies["tal_transform"] = pd.NA
    experiments["include"] = _truthy(experiments["include"])
    experiments["n_ale"] = _to_int(experiments["n_ale"])
    for col in ("x", "y", "z", "stat_value"):
        foci[col] = pd.to_numeric(foci[col], errors="coerce").astype(float)
    foci["cluster_size"] = _to_int(foci["cluster_size"])
    for df in (experiments, foci, findings):
        df.insert(0, "raw_line", np.arange(len(df)) + 2)
    studies.insert(0, "raw_line", np.arange(len(studies)) + 2)

    # Excluded experiments take their foci and findings with them, logged.
    dropped = experiments[~experiments["include"]]
    for _, row in dropped.iterrows():
        excl.append({"table": "experiments", "raw_line": row["raw_line"], "id": row["experiment_id"],
                     "reason": row["exclude_reason"]})
    dropped_ids = set(dropped["experiment_id"])
    for table, df, id_col in (("foci", foci, "focus_id"), ("findings", findings, "finding_id")):
        for _, row in df[df["experiment_id"].isin(dropped_ids)].iterrows():
            excl.append({"table": table, "raw_line": row["raw_line"], "id": row[id_col],
                         "reason": f"belongs to excluded experiment {row['experiment_id']}"})
    experiments = experiments[experiments["include"]].reset_index(drop=True)
    foci = foci[~foci["experiment_id"].isin(dropped_ids)].reset_index(drop=True)
    findings = findings[~findings["experiment_id"].isin(dropped_ids)].reset_index(drop=True)

    # Talairach -> MNI, transform recorded per study.
    foci = foci.merge(experiments[["experiment_id", "study_id"]], on="experiment_id", how="left")
    transform_of = studies.set_index("study_id")["tal_transform"].fillna(coords.DEFAULT_TAL_TRANSFORM)
    foci["space_reported"] = foci["space"]
    for c in ("x", "y", "z"):
        foci[f"{c}_reported"] = foci[c]
    foci["transform"] = "none (reported in MNI)"
    is_tal = foci["space"] == "TAL"
    for study_id, idx in foci[is_tal].groupby("study_id").groups.items():
        transform = str(transform_of.get(study_id, coords.DEFAULT_TAL_TRANSFORM))
        mni = coords.tal2mni(foci.loc[idx, ["x", "y", "z"]].to_numpy(), transform)
        foci.loc[idx, ["x", "y", "z"]] = np.round(mni, 2)
        foci.loc[idx, "transform"] = f"{transform} (Lancaster 2007, inverse of icbm2tal)"
    foci["space"] = "MNI"

    # Experiment-level summaries used downstream.
    n_foci = foci.groupby("experiment_id").size()
    experiments["n_foci"] = experiments["experiment_id"].map(n_foci).fillna(0).astype(int)
    n_find = findings.groupby("experiment_id").size()
    experiments["n_findings"] = experiments["experiment_id"].map(n_find).fillna(0).astype(int)
    unverified_ok = config.ale.include_unverified
    reasons = []
    for _, row in experiments.iterrows():
        if row["n_foci"] == 0:
            reasons.append("no public coordinates")
        elif pd.isna(row["n_ale"]):
            reasons.append("no sample size for ALE")
        elif row["evidence"] == "unverified" and not unverified_ok:
            reasons.append("unverified contrast assignment (ale.include_unverified is false)")
        else:
            reasons.append("")
    experiments["ale_note"] = reasons
    experiments["in_ale"] = experiments["ale_note"] == ""

    qa_lookup, qa_flags = coords.qa_foci(foci)
    if len(qa_flags):
        qa_flags = qa_flags.merge(
            foci[["focus_id", "experiment_id", "study_id", "x", "y", "z", "label", "hemisphere", "source"]],
            on="focus_id", how="left")
    exclusions = pd.DataFrame(excl, columns=["table", "raw_line", "id", "reason"])
    return Extraction(studies, experiments, foci, findings, exclusions, qa_lookup, qa_flags, raw_counts)


def extract(dataset: str | Path, overrides: dict | None = None) -> tuple[Extraction, DatasetConfig, DatasetPaths]:
    """Load, validate and process a dataset (no files written).

    Parameters
    ----------
    dataset : str or path-like
        Dataset name or raw folder.
    overrides : dict, optional
        Config overrides.

    Returns
    -------
    extraction : Extraction
    config : DatasetConfig
    paths : DatasetPaths

    Raises
    ------
    InputError
        With every validation problem, when the tables are invalid.
    """
    config, paths = load_config(dataset, overrides)
    if config.source == "nimare_json":
        if not config.nimare_json:
            raise InputError(f"{paths.raw / 'dataset.yaml'}: source is nimare_json but 'nimare_json' is not set")
        tables = tables_from_nimare(config.nimare_json)
    else:
        raw = load_raw(paths.raw)
        if raw.problems:
            raise InputError(format_problems(raw.problems), raw.problems)
        tables = raw.tables
    return process(tables, config), config, paths


# --------------------------------------------------------------------------- writing


def to_nimare_dict(foci: pd.DataFrame, experiments: pd.DataFrame) -> dict:
    """NiMARE dataset dictionary (``Dataset(dict)``) of the ALE-eligible experiments.

    Parameters
    ----------
    foci : pandas.DataFrame
        Processed MNI foci.
    experiments : pandas.DataFrame
        Processed experiments (``in_ale``, ``n_ale``).

    Returns
    -------
    dict
        ``{study: {"contrasts": {experiment: {"coords": ..., "metadata": ...}}}}``.
    """
    out: dict = {}
    eligible = experiments[experiments["in_ale"]]
    for _, exp in eligible.iterrows():
        sub = foci[foci["experiment_id"] == exp["experiment_id"]]
        out.setdefault(exp["study_id"], {"contrasts": {}})["contrasts"][exp["experiment_id"]] = {
            "coords": {"space": "MNI", "x": sub["x"].tolist(), "y": sub["y"].tolist(), "z": sub["z"].tolist()},
            "metadata": {"sample_sizes": [int(exp["n_ale"])], "direction": exp["direction"],
                         "contrast_type": exp["contrast_type"], "evidence": exp["evidence"]},
        }
    return out


def write_outputs(ext: Extraction, config: DatasetConfig, paths: DatasetPaths) -> dict[str, Path]:
    """Write processed tables, QA, exclusion log, Sleuth files and NiMARE dataset.

    Parameters
    ----------
    ext : Extraction
    config : DatasetConfig
    paths : DatasetPaths

    Returns
    -------
    dict of str to Path
        What was written.
    """
    out = paths.processed
    written = write_tables(out, {
        "studies.csv": ext.studies, "experiments.csv": ext.experiments, "foci_mni.csv": ext.foci,
        "findings.csv": ext.findings, "exclusions.csv": ext.exclusions, "qa_lookup.csv": ext.qa_lookup,
        "qa_flags.csv": ext.qa_flags, "accounting.csv": ext.accounting(),
    })

    nimare_path = out / "nimare_dataset.json"
    nimare_path.write_text(json.dumps(to_nimare_dict(ext.foci, ext.experiments), indent=1, sort_keys=True))
    written["nimare_dataset.json"] = nimare_path
    written.update(write_sleuth_exports(ext, config, out / "sleuth"))
    return written


def write_sleuth_exports(ext: Extraction, config: DatasetConfig, folder: Path) -> dict[str, Path]:
    """One GingerALE Sleuth file per ALE model and coordinate space.

    The MNI file holds every focus of the model in MNI (converted where
    needed); a TAL file is written too when any focus was reported in
    Talairach, holding those foci as reported, so GingerALE users can apply
    their own transform. Models with no eligible experiment write nothing and
    are listed in ``sleuth/README.txt``.

    Parameters
    ----------
    ext : Extraction
    config : DatasetConfig
    folder : pathlib.Path

    Returns
    -------
    dict of str to Path
    """
    from painmeta.ale.models import build_models
    from painmeta.sleuth import write_sleuth

    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.txt"):
        old.unlink()
    written: dict[str, Path] = {}
    notes = []
    models = build_models(ext.experiments, ext.foci, config.ale)
    for model in models:
        if not model.experiment_ids:
            notes.append(f"{model.name}: no experiment with coordinates ({model.reason})")
            continue
        foci = ext.foci[ext.foci["experiment_id"].isin(model.experiment_ids)]
        path = folder / f"{model.name}_MNI.txt"
        write_sleuth(foci[["experiment_id", "x", "y", "z"]], model.sample_sizes, path, space="MNI")
        written[f"sleuth/{path.name}"] = path
        tal = foci[foci["space_reported"] == "TAL"]
        if len(tal):
            tal = tal.assign(x=tal["x_reported"], y=tal["y_reported"], z=tal["z_reported"])
            path = folder / f"{model.name}_TAL.txt"
            write_sleuth(tal[["experiment_id", "x", "y", "z"]], model.sample_sizes, path, space="TAL")
            written[f"sleuth/{path.name}"] = path
        notes.append(f"{model.name}: {len(model.experiment_ids)} experiments, {len(foci)} foci"
                     + (f" (model itself skipped: {model.reason})" if model.skipped else ""))
    (folder / "README.txt").write_text(
        "Sleuth files written by `python -m painmeta extract`, one per ALE model and space.\n"
        + "\n".join(notes) + "\n")
    return written


# --------------------------------------------------------------------------- CLI


def _cmd_validate(args: argparse.Namespace) -> int:
    problems = validate(Path(args.folder))
    if problems:
        raise InputError(format_problems(problems))
    print(f"{args.folder}: all tables valid")
    return 0


def _cmd_extract(args: argparse.Namespace) -> int:
    ext, config, paths = extract(args.dataset)
    written = write_outputs(ext, config, paths)
    for name in written:
        print(f"wrote {paths.processed / name}")
    acc = ext.accounting()
    print(acc.to_string(index=False))
    if len(ext.qa_flags):
        print(f"{len(ext.qa_flags)} coordinate QA flag(s): see {paths.processed / 'qa_flags.csv'}")
    return 0 if bool(acc["accounted"].all()) else 1


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add the ``validate`` and ``extract`` commands."""
    p = sub.add_parser("validate", help="validate the tables of a raw dataset folder",
                       description="Validate every table of data/raw/<dataset>; print every problem "
                                   "with file, line and column; exit 2 when any is found.")
    p.add_argument("folder", help="raw dataset folder, e.g. data/raw/cipn")
    p.set_defaults(func=_cmd_validate)
    p = sub.add_parser("extract", help="process a dataset into data/processed/<dataset>/")
    p.add_argument("dataset", help="dataset name (cipn, cancer_pain, nidm_pain) or raw folder")
    p.set_defaults(func=_cmd_extract)
