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

Command line: ``python -m painmeta validate --dataset NAME`` and
``python -m painmeta extract --dataset NAME``.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from painmeta import coords
from painmeta.config import DatasetConfig, load_config
from painmeta.errors import InputError
from painmeta.paths import DatasetPaths, write_tables
from painmeta.csvio import read_table
from painmeta.schemas import BOOL_TRUE, SCHEMAS, Problem, run_schema

TABLES = ("studies", "experiments", "foci", "findings")


# --------------------------------------------------------------------------- reading


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
    # Raw tables are indexed by line - 2 (see painmeta.csvio.read_table).
    for table in require:
        df, problems = read_table(folder / f"{table}.csv")
        raw.problems.extend(problems)
        if df is None:
            continue
        raw.problems.extend(run_schema(table, df, folder / f"{table}.csv"))
        raw.tables[table] = df
    raw.problems.extend(cross_checks(raw.tables, folder))
    return raw


#: Files a dataset folder may hold besides the four core tables (all optional).
OPTIONAL_FILES = ("robins_i.csv", "prisma.yaml", "reported.yaml", "review_implied_counts.csv")
#: Not read by any stage, but expected in a dataset folder (no note about them).
_QUIET = {"dataset.yaml", "sleuth", "source", "README.md", "README.txt", "LICENSE", "LICENSE.txt", "SOURCE.md", "NOTES.md"}


def _problems_of(exc: InputError, file: Path) -> list[Problem | str]:
    """The problems an InputError carries (its message lines when it has none)."""
    if exc.problems:
        return list(exc.problems)
    lines = [ln.strip().removeprefix("- ") for ln in str(exc).splitlines()]
    lines = [ln for ln in lines if ln and not re.match(r"^\d+ problems? (found|in )", ln)]
    return [ln if str(file) in ln else f"{file}: {ln}" for ln in lines] or [f"{file}: {exc}"]


def _model_filter_problems(config: DatasetConfig, experiments: pd.DataFrame, cfg_file: Path,
                           cfg_lines: dict) -> list[Problem]:
    """A model filter value that no experiment has would silently select nothing."""
    problems = []
    if experiments is None or not {"contrast_type", "direction"} <= set(experiments.columns):
        return problems
    all_ids = set(experiments["experiment_id"].dropna()) if "experiment_id" in experiments else set()
    if "include" in experiments:  # excluded experiments never enter a model
        experiments = experiments[_truthy(experiments["include"])]
    have_types = set(experiments["contrast_type"].dropna())
    for name, model in config.ale.models.items():
        for key, values, column, have in (
                ("contrast_types", model.contrast_types, "contrast_type", have_types),
                ("directions", model.directions or [], "direction", None)):
            if have is None:  # directions: among the model's contrast types
                have = set(experiments.loc[experiments["contrast_type"].isin(model.contrast_types),
                                           "direction"].dropna())
            for value in values:
                if value not in have:
                    loc = ("ale", "models", name, key)
                    among = f" among its contrast types {model.contrast_types}" if key == "directions" else ""
                    problems.append(Problem(
                        str(cfg_file), cfg_lines.get(loc) or cfg_lines.get(loc[:3]), ".".join(loc), value,
                        f"no included experiment in experiments.csv has {column} {value!r}{among} (present: "
                        f"{', '.join(sorted(have)) or 'none'}); fix the filter or the table", label="key"))
    known = set(experiments["experiment_id"].dropna()) if "experiment_id" in experiments else set()
    for name, model in config.ale.models.items():
        for i, eid in enumerate(model.experiments or []):
            if eid not in known:
                loc = ("ale", "models", name, "experiments", i)
                problems.append(Problem(str(cfg_file), cfg_lines.get(loc) or cfg_lines.get(loc[:4]),
                                        ".".join(map(str, loc[:4])), eid,
                                        "no included experiment in experiments.csv has this experiment_id; "
                                        "correct the id", label="key"))
    for i, eid in enumerate(config.roi.exclude_experiments):
        if eid not in all_ids:
            loc = ("roi", "exclude_experiments", i)
            problems.append(Problem(str(cfg_file), cfg_lines.get(loc), "roi.exclude_experiments", eid,
                                    "no such experiment_id in experiments.csv; correct the id", label="key"))
    return problems


def _implied_problems(path: Path, config: DatasetConfig | None) -> list[Problem]:
    df, problems = read_table(path)
    if df is None:
        return problems
    problems += run_schema("review_implied_counts", df, path)
    if problems:
        return problems
    nets = set(config.network_keys) | {"all"} if config is not None else None
    for idx, row in df.iterrows():
        if nets is not None and row["network"] not in nets:
            problems.append(Problem(str(path), int(idx) + 2, "network", row["network"],
                                    f"unknown network; use one of {', '.join(sorted(nets))} (dataset.yaml networks)"))
        if int(row["events"]) > int(row["n"]):
            problems.append(Problem(str(path), int(idx) + 2, "events", row["events"],
                                    f"events cannot exceed n ({row['n']})"))
    return problems


def validate(dataset: str | Path) -> list[Problem | str]:
    """Validate every file of a dataset; return every problem (empty = valid).

    Checks ``dataset.yaml`` (bounded YAML, schema, name = folder, lookup path
    inside the project, model filters that match experiments), the four
    core tables and their cross-references, and the optional files when
    present: ``robins_i.csv`` (levels, domains, evidence, studies known in
    studies.csv), ``prisma.yaml``, ``reported.yaml`` and
    ``review_implied_counts.csv``, plus the ROI lookup the config names.

    Parameters
    ----------
    dataset : str or pathlib.Path
        A dataset name (``data/raw/<dataset>``; a string is always a name,
        never a path), or a :class:`pathlib.Path` to a dataset folder that is
        not installed under ``data/raw`` yet (a build tool checking its
        output). Validation reads only; it writes nothing.

    Returns
    -------
    list of Problem or str
        One entry per problem, each naming file, line and column or key.
    """
    if isinstance(dataset, Path):
        return validate_folder(dataset)
    from painmeta.paths import dataset_paths

    try:
        paths = dataset_paths(dataset)
    except InputError as exc:
        return [str(exc)]
    if not paths.raw.is_dir():
        return [f"{paths.raw}: no dataset named {dataset!r} (no such folder); create one with "
                f"'python -m painmeta new-dataset {dataset}'"]
    return validate_folder(paths.raw)


def validate_folder(folder: Path) -> list[Problem | str]:
    """Validate a dataset folder wherever it is (see :func:`validate`); its name is the folder's name."""
    from painmeta.config import config_from_folder

    folder = Path(folder)
    cfg_file = folder / "dataset.yaml"
    problems: list[Problem | str] = []
    config: DatasetConfig | None = None
    try:
        config = config_from_folder(folder)
    except InputError as exc:
        problems += _problems_of(exc, cfg_file)
    tables: dict[str, pd.DataFrame] = {}
    if config is not None and config.source == "nimare_json":
        from nimare.utils import get_resource_path

        resource = Path(get_resource_path()) / str(config.nimare_json)
        if not config.nimare_json or not resource.is_file():
            problems.append(Problem(str(cfg_file), None, "nimare_json", str(config.nimare_json or ""),
                                    "source is nimare_json: name a JSON file that ships in nimare/resources",
                                    label="key"))
        else:
            tables = tables_from_nimare(config.nimare_json)
    else:
        raw = load_raw(folder)
        problems += raw.problems
        tables = raw.tables
    if config is not None:
        from painmeta.yamlio import load_yaml

        cfg_lines = load_yaml(cfg_file).lines
        problems += _model_filter_problems(config, tables.get("experiments"), cfg_file, cfg_lines)
        if config.roi_lookup:
            from painmeta import roi

            try:
                roi.load_lookup(roi.lookup_path(config), config.network_keys)
            except InputError as exc:
                problems += _problems_of(exc, roi.lookup_path(config))
    # Optional files: checked whenever present, with the same file/line/column messages.
    rob = folder / "robins_i.csv"
    if rob.is_file():
        from painmeta import quality

        try:
            rob_df = quality.load_robins_i(rob)
            studies = tables.get("studies")
            if studies is not None and "study_id" in studies:
                known = set(studies["study_id"].dropna())
                for sid in dict.fromkeys(rob_df["study_id"]):
                    if sid not in known:
                        line = int(rob_df.index[rob_df["study_id"] == sid][0]) + 2
                        problems.append(Problem(str(rob), line, "study_id", sid,
                                                "unknown study: no row of studies.csv has it; use the study_id "
                                                "from studies.csv"))
        except InputError as exc:
            problems += _problems_of(exc, rob)
    if (folder / "prisma.yaml").is_file():
        from painmeta import prisma

        try:
            prisma.load_prisma(folder / "prisma.yaml")
        except InputError as exc:
            problems += _problems_of(exc, folder / "prisma.yaml")
    if (folder / "reported.yaml").is_file():
        from painmeta import audit

        try:
            audit.load_reported(folder / "reported.yaml")
        except InputError as exc:
            problems += _problems_of(exc, folder / "reported.yaml")
    implied = folder / "review_implied_counts.csv"
    if implied.is_file():
        problems += _implied_problems(implied, config)
    return problems


def unread_files(dataset: str) -> list[str]:
    """Files in a dataset folder that no stage reads (typos such as ``robins.csv`` show up here)."""
    from painmeta.paths import dataset_paths

    folder = dataset_paths(dataset).raw
    known = {f"{t}.csv" for t in TABLES} | set(OPTIONAL_FILES) | _QUIET
    return sorted(p.name for p in folder.iterdir() if p.name not in known and not p.name.startswith(".")) \
        if folder.is_dir() else []


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
    # Raw tables are indexed by line - 2 (see read_table); built tables by position.
    for df in (studies, experiments, foci, findings):
        df.insert(0, "raw_line", np.asarray(df.index, dtype=int) + 2)

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


def extract(dataset: str, overrides: dict | None = None) -> tuple[Extraction, DatasetConfig, DatasetPaths]:
    """Load, validate and process a dataset (no files written).

    Parameters
    ----------
    dataset : str
        Dataset name.
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
    problems = validate(args.dataset)
    if problems:
        raise InputError(format_problems(problems), problems)
    from painmeta.paths import dataset_paths

    folder = dataset_paths(args.dataset).raw
    present = [f"{t}.csv" for t in TABLES if (folder / f"{t}.csv").is_file()]
    present += [f for f in OPTIONAL_FILES if (folder / f).is_file()]
    print(f"{args.dataset}: all files valid (dataset.yaml, {', '.join(present) or 'tables from nimare_json'})")
    for name in unread_files(args.dataset):
        print(f"note: {folder / name} is not read by any stage "
              "(fine for notes; if it should be a dataset file, check its name)")
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
    from painmeta.cli import add_dataset_argument

    p = sub.add_parser("validate", help="check every file of a dataset (tables, YAML, optional files)",
                       description="Validate every file of data/raw/<dataset>: dataset.yaml, the four tables, "
                                   "and robins_i.csv, prisma.yaml, reported.yaml, review_implied_counts.csv when "
                                   "present. Print every problem with file, line and column (or key); exit 2 "
                                   "when any is found.")
    add_dataset_argument(p, legacy_positional=True)
    p.set_defaults(func=_cmd_validate)
    p = sub.add_parser("extract", help="process a dataset into data/processed/<dataset>/",
                       description="Validate and process a dataset's tables: exclusions, Talairach to MNI, "
                                   "coordinate QA, processed tables, Sleuth files and a NiMARE dataset.")
    add_dataset_argument(p, legacy_positional=True)
    p.set_defaults(func=_cmd_extract)
