"""ROI synthesis: reported regions mapped into five networks, study- and experiment-level matrices.

The ROI synthesis (ANALYSIS.md section 3) maps every reported region into the dataset's predefined
categories (in the shipped datasets five: brainstem/periaqueductal grey; cerebellum; default mode network =
cingulate and posterior midline cortices; lateral/medial prefrontal cortex; primary sensorimotor cortex S1/M1), never
counts a seed region as a target, and draws two matrices: one row per contrast ("experiment") and one
row per publication (contrasts merged). This module rebuilds both from ``findings.csv``.

How a region becomes a network
------------------------------
``data/lookups/region_network_v1.csv`` (path from ``roi_lookup`` in ``dataset.yaml``) is an ordered
list of rules. Each rule has a case-insensitive regular expression that is searched in the reported
region (lower-cased, underscores as spaces); the rule with the lowest ``order`` that matches decides.
Order matters: rules for structures outside the five networks come first where a broader pattern
would otherwise catch them (``cingulum`` before ``cingul``, ``frontal operculum`` before ``frontal``,
SII before ``somatosensory``). Every rule lists ``examples`` that must be caught by that rule and no
earlier one; :func:`load_lookup` checks them, so a reordering that shadows a rule fails loudly. A
region that no rule matches is ``unmapped`` and reported, never guessed. ``network = none`` is a
decision (the structure is outside the five categories), with its rationale. The optional
``alternative`` column holds the network under another defensible reading (the review's own
section 3.3 groups the medial PFC and inferior parietal lobule with the DMN); :meth:`Lookup.alternative`
applies it for a sensitivity analysis.

Atlas cross-check
-----------------
Where a finding links to a peak (``focus_id``), the peak's AAL label is mapped to a network through
``data/lookups/aal_network_v1.csv`` (AAL label -> region rule -> network, so both paths share the
same category decisions). ``agree``: same network at the peak; ``near``: the lookup's network lies
within ``roi.atlas_distance_mm`` of the peak (for a finding outside the five networks: the AAL parcels of
its own rule, e.g. temporal cortex for "inferior temporal gyrus"); ``disagree``: farther; ``no_atlas_label``: the peak
lies outside every AAL parcel (brainstem, white matter, outside the brain) and farther than the
tolerance from the lookup's network (AAL has no brainstem parcel, so brainstem findings end here);
``no_coordinate``: the finding has no peak. Disagreements are listed; the lookup decides.

Cells
-----
``patients>controls``, ``patients<controls``, ``both`` (findings in both directions),
``direction_unknown`` (implicated, but the source gives no direction) or ``none``. A finding's
direction enters through ``roi.direction_map`` (associations with symptom severity are read as
higher/lower with more CIPN, as the review coded them). Experiments with no usable region-level
finding are *not* rows of ``none``: they are listed as not assessable, with the reason.

Counts (for the proportion meta-analysis)
-----------------------------------------
Per network: events = rows implicating it, n = all rows of the matrix. Directional subgroups count
rows whose cell includes that direction (``both`` counts in each) over the same n.
"""

from __future__ import annotations

import argparse
import math
import re
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from painmeta.config import DatasetConfig
from painmeta.errors import InputError
from painmeta.paths import DatasetPaths, dataset_paths, project_root, write_tables
from painmeta.schemas import Problem

# --------------------------------------------------------------------------- vocabulary

NONE = "none"
UNMAPPED = "unmapped"
UP = "patients>controls"
DOWN = "patients<controls"
BOTH = "both"
UNKNOWN = "direction_unknown"
#: Cell codes, from most to least informative.
CELL_CODES = (UP, DOWN, BOTH, UNKNOWN, NONE)
#: Subgroups of :func:`counts` (``overall`` = any direction).
SUBGROUPS = ("overall", UP, DOWN)

LOOKUP_COLUMNS = ("order", "rule_id", "pattern", "network", "structure", "examples", "rationale", "basis",
                  "alternative", "version")
AAL_COLUMNS = ("aal_label", "region_rule_id", "network", "rationale", "version")
#: AAL label -> network table (project-relative). Not yet a config key (see module docstring).
AAL_LOOKUP = "data/lookups/aal_network_v1.csv"
#: Counts implied by a review's reported proportions, per dataset (optional file in the raw folder).
REVIEW_IMPLIED_FILE = "review_implied_counts.csv"
IMPLIED_COLUMNS = ("item_id", "level", "subgroup", "network", "events", "n", "basis", "reported_proportion",
                   "reported_ci_lower", "reported_ci_upper", "where", "derivation", "note")

#: Short words for the not-assessable statuses (figure footnotes).
STATUS_TEXT = {
    "excluded_by_config": "excluded in dataset.yaml",
    "contrast_type_not_in_roi": "contrast type not in ROI",
    "study_not_in_roi": "not in ROI synthesis",
    "no_public_finding": "no public finding",
    "seed_only": "seed region only",
    "unmapped_only": "region(s) not in lookup",
    "no_contrast": "no contrast extracted",
    "no_assessable_contrast": "no assessable contrast",
}
#: Cell glyphs: direction is encoded by a mark as well as a colour, so the figure reads in greyscale.
CELL_MARK = {UP: "\u2191", DOWN: "\u2193", BOTH: "\u2191\u2193", UNKNOWN: "?", NONE: ""}


def normalise_region(text: object) -> str:
    """Lower-case a reported region, underscores as spaces, single spaces.

    Parameters
    ----------
    text : object
        Region as reported (NA gives '').

    Returns
    -------
    str
    """
    if text is None or (not isinstance(text, str) and pd.isna(text)):
        return ""
    return re.sub(r"\s+", " ", str(text).replace("_", " ")).strip().lower()


def _text(value: object) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _join(values: Iterable[object], sep: str = "; ") -> str:
    """Join unique non-empty values, keeping first-seen order."""
    return sep.join(dict.fromkeys(v for v in (_text(x) for x in values) if v))


# --------------------------------------------------------------------------- lookup


@dataclass
class Lookup:
    """Ordered region -> network rules (first match wins).

    Attributes
    ----------
    rules : pandas.DataFrame
        Columns :data:`LOOKUP_COLUMNS` plus ``line`` (line in the CSV file), sorted by ``order``.
    path : pathlib.Path or None
        File the rules came from.
    version : str
        The rules' version (one per file).
    changes : tuple of (rule_id, old, new)
        Reassignments applied on top of the file (sensitivity analyses); empty for the file as is.
    """

    rules: pd.DataFrame
    path: Path | None = None
    version: str = ""
    changes: tuple[tuple[str, str, str], ...] = ()
    _compiled: list[tuple[str, re.Pattern[str], str]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._compiled = [(r.rule_id, re.compile(r.pattern, re.IGNORECASE), r.network)
                          for r in self.rules.itertuples(index=False)]

    def match(self, region: object) -> tuple[str | None, str]:
        """Rule id and network of a reported region (``(None, 'unmapped')`` when no rule matches)."""
        text = normalise_region(region)
        if not text:
            return None, UNMAPPED
        for rule_id, pattern, network in self._compiled:
            if pattern.search(text):
                return rule_id, network
        return None, UNMAPPED

    def network_of(self, rule_id: str) -> str:
        """Network a rule assigns."""
        hit = self.rules.loc[self.rules["rule_id"] == rule_id, "network"]
        if hit.empty:
            raise KeyError(f"no rule {rule_id!r} in {self.path}")
        return str(hit.iloc[0])

    @property
    def label(self) -> str:
        """Version string with any reassignments, e.g. ``v1`` or ``v1 + mpfc->dmn``."""
        if not self.changes:
            return self.version
        return self.version + " + " + ", ".join(f"{r}->{new}" for r, _, new in self.changes)

    def reassign(self, changes: Mapping[str, str]) -> Lookup:
        """A copy with some rules sent to another network (for sensitivity analyses only).

        Parameters
        ----------
        changes : mapping of rule_id to network

        Returns
        -------
        Lookup
            Same order and patterns; ``changes`` records what differs from the file.
        """
        rules = self.rules.copy()
        done = list(self.changes)
        for rule_id, network in changes.items():
            mask = rules["rule_id"] == rule_id
            if not mask.any():
                raise InputError(f"{self.path}: no rule {rule_id!r} to reassign")
            old = str(rules.loc[mask, "network"].iloc[0])
            rules.loc[mask, "network"] = network
            done.append((rule_id, old, network))
        return Lookup(rules, self.path, self.version, tuple(done))

    def alternative(self) -> Lookup:
        """A copy with every rule that has an ``alternative`` network reassigned to it."""
        alt = self.rules[self.rules["alternative"].fillna("") != ""]
        return self.reassign(dict(zip(alt["rule_id"], alt["alternative"])))

    def table(self) -> pd.DataFrame:
        """The rules for display, in the order they are tried."""
        cols = ["order", "rule_id", "network", "structure", "pattern", "examples", "rationale", "alternative",
                "basis", "version"]
        return self.rules[cols].reset_index(drop=True)


def lookup_path(config: DatasetConfig) -> Path:
    """Absolute path of the dataset's region lookup (``roi_lookup`` in ``dataset.yaml``)."""
    if not config.roi_lookup:
        raise InputError(f"dataset '{config.name}': dataset.yaml has no 'roi_lookup' "
                         "(e.g. roi_lookup: data/lookups/region_network_v1.csv)")
    path = Path(config.roi_lookup)
    return path if path.is_absolute() else project_root() / path


def _read_text_csv(path: Path, columns: tuple[str, ...], what: str) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"{path}: {what} not found")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable UTF-8 CSV ({exc})") from exc
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(columns)}")
    for col in df.columns:
        df[col] = df[col].astype(str).str.strip()
    df.insert(0, "line", np.arange(len(df)) + 2)
    return df


def _raise(problems: list[Problem], what: str) -> None:
    if problems:
        head = f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in the {what}:"
        raise InputError("\n".join([head, *(f"  - {p}" for p in problems)]), problems)


def load_lookup(path: Path | str, networks: Iterable[str]) -> Lookup:
    """Read and validate the region -> network rules.

    Parameters
    ----------
    path : path-like
        The CSV (columns :data:`LOOKUP_COLUMNS`).
    networks : iterable of str
        Allowed network keys (the dataset's networks); ``none`` is always allowed.

    Returns
    -------
    Lookup

    Raises
    ------
    InputError
        Listing every problem with file, line and column: missing values, duplicate ids or orders,
        invalid regular expressions, unknown networks, several versions, and examples that an earlier
        rule catches (order mistakes).
    """
    path = Path(path)
    df = _read_text_csv(path, LOOKUP_COLUMNS, "ROI lookup table")
    name = str(path)
    allowed = set(networks) | {NONE}
    problems: list[Problem] = []
    for col in ("order", "rule_id", "pattern", "network", "rationale", "version"):
        for _, row in df[df[col] == ""].iterrows():
            problems.append(Problem(name, int(row["line"]), col, "", f"{col} is empty; every rule needs it"))
    orders = pd.to_numeric(df["order"], errors="coerce")
    for idx in df.index[orders.isna() & (df["order"] != "")]:
        problems.append(Problem(name, int(df.at[idx, "line"]), "order", df.at[idx, "order"],
                                "order must be a whole number"))
    for col, series in (("rule_id", df["rule_id"]), ("order", df["order"])):
        dup = series.duplicated(keep="first") & (series != "")
        for idx in df.index[dup]:
            first = int(df.loc[series == series[idx], "line"].iloc[0])
            problems.append(Problem(name, int(df.at[idx, "line"]), col, series[idx],
                                    f"duplicate {col} (first on line {first}); each rule needs its own"))
    compiled: dict[int, re.Pattern[str]] = {}
    for idx, row in df.iterrows():
        try:
            compiled[idx] = re.compile(row["pattern"], re.IGNORECASE)
        except re.error as exc:
            problems.append(Problem(name, int(row["line"]), "pattern", row["pattern"],
                                    f"not a valid regular expression ({exc})"))
        for col in ("network", "alternative"):
            value = row[col]
            if value and value not in allowed:
                problems.append(Problem(name, int(row["line"]), col, value,
                                        f"unknown network; use one of {', '.join(sorted(allowed))}"))
    versions = sorted(set(df["version"]) - {""})
    if len(versions) > 1:
        problems.append(Problem(name, None, "version", ", ".join(versions),
                                "one lookup file holds one version; split the file or make the versions agree"))
    _raise(problems, "ROI lookup")

    df["order"] = orders.astype(int)
    df = df.sort_values("order", kind="stable").reset_index(drop=True)
    lookup = Lookup(df, path, versions[0] if versions else "")
    # Examples document each rule and guard its position: an earlier rule must not shadow them.
    for _, row in df.iterrows():
        for example in (e.strip() for e in row["examples"].split(";")):
            if not example:
                continue
            rule_id, _ = lookup.match(example)
            if rule_id != row["rule_id"]:
                if rule_id is None:
                    got = "no rule"
                else:
                    got = f"rule '{rule_id}' (line {int(df.loc[df['rule_id'] == rule_id, 'line'].iloc[0])})"
                problems.append(Problem(name, int(row["line"]), "examples", example,
                                        f"example of rule '{row['rule_id']}' is caught first by {got}; "
                                        "reorder the rules or narrow the earlier pattern"))
    _raise(problems, "ROI lookup")
    return lookup


def load_atlas_lookup(path: Path | str, lookup: Lookup, atlas_labels: Iterable[str] | None = None) -> pd.DataFrame:
    """Read and validate the AAL label -> network table.

    Parameters
    ----------
    path : path-like
        The CSV (columns :data:`AAL_COLUMNS`).
    lookup : Lookup
        Region rules: each ``region_rule_id`` must exist and give the same network.
    atlas_labels : iterable of str, optional
        Every label of the atlas (default: the shipped AAL); each must appear exactly once.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``aal_label``.
    """
    from painmeta.coords import load_atlas

    path = Path(path)
    df = _read_text_csv(path, AAL_COLUMNS, "AAL network table")
    name = str(path)
    labels = set(atlas_labels) if atlas_labels is not None else set(load_atlas("aal").labels.values())
    # Check against the rules as in their file, also when a sensitivity copy reassigned some of them.
    file_network = dict(zip(lookup.rules["rule_id"], lookup.rules["network"]))
    for rule_id, old, _ in reversed(lookup.changes):
        file_network[rule_id] = old
    allowed = set(file_network.values()) | set(lookup.rules["network"]) | {NONE}
    problems: list[Problem] = []
    for idx in df.index[df["aal_label"].duplicated(keep="first")]:
        problems.append(Problem(name, int(df.at[idx, "line"]), "aal_label", df.at[idx, "aal_label"], "duplicate label"))
    for _, row in df.iterrows():
        if row["aal_label"] not in labels:
            problems.append(Problem(name, int(row["line"]), "aal_label", row["aal_label"],
                                    "not a label of the AAL atlas"))
        if row["network"] not in allowed:
            problems.append(Problem(name, int(row["line"]), "network", row["network"], "unknown network"))
        rule = row["region_rule_id"]
        if rule:
            if rule not in file_network:
                problems.append(Problem(name, int(row["line"]), "region_rule_id", rule,
                                        f"no such rule in {lookup.path}"))
            elif file_network[rule] != row["network"]:
                problems.append(Problem(name, int(row["line"]), "network", row["network"],
                                        f"rule '{rule}' gives '{file_network[rule]}'; make them agree"))
    for label in sorted(labels - set(df["aal_label"])):
        problems.append(Problem(name, None, "aal_label", label, "AAL label missing from the table; add a row"))
    _raise(problems, "AAL network table")
    return df.set_index("aal_label")


# --------------------------------------------------------------------------- atlas check


class _AtlasNetworks:
    """AAL network at a peak and distance to the nearest voxel of a network (lazy, per network)."""

    def __init__(self, aal_table: pd.DataFrame, lookup: Lookup) -> None:
        from painmeta.coords import load_atlas

        self.atlas = load_atlas("aal")
        self.network_of_label: dict[str, str] = {}
        self.rule_of_label: dict[str, str] = {}
        for label, row in aal_table.iterrows():
            rule = row["region_rule_id"]
            # Follow the region rules so that a sensitivity reassignment moves the atlas side too.
            self.network_of_label[str(label)] = lookup.network_of(rule) if rule else str(row["network"])
            self.rule_of_label[str(label)] = rule
        self._world: dict[tuple[str, str], np.ndarray] = {}

    def label_network(self, xyz: np.ndarray) -> tuple[str, str]:
        label = self.atlas.label_at(np.asarray(xyz, float))[0]
        return label, (self.network_of_label.get(label, UNMAPPED) if label else "")

    def distance(self, xyz: np.ndarray, network: str, rule_id: str = "") -> float:
        """Distance (mm) to the nearest voxel of a network.

        For a finding outside the five networks, "any voxel outside the networks" is almost always close, so
        the distance is taken to the AAL parcels of the finding's own rule where the rule has any.
        """
        key = ("rule", rule_id) if network == NONE and rule_id in self.rule_of_label.values() else ("net", network)
        if key not in self._world:
            table = self.rule_of_label if key[0] == "rule" else self.network_of_label
            values = [v for v, lab in self.atlas.labels.items() if table.get(lab) == key[1]]
            idx = np.argwhere(np.isin(self.atlas.data, values))
            self._world[key] = idx @ self.atlas.affine[:3, :3].T + self.atlas.affine[:3, 3]
        world = self._world[key]
        if len(world) == 0:
            return math.inf
        return float(np.min(np.linalg.norm(world - np.asarray(xyz, float), axis=1)))


# --------------------------------------------------------------------------- mapping


def _seed_parts(seed: object) -> list[str]:
    return [s.strip() for s in _text(seed).split(";") if s.strip()]


def map_findings(
    findings: pd.DataFrame,
    experiments: pd.DataFrame,
    foci: pd.DataFrame,
    config: DatasetConfig,
    *,
    lookup: Lookup | None = None,
    atlas_table: pd.DataFrame | None = None,
    qa_flags: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Map each region-level finding to a network, flag seeds and cross-check with the atlas.

    Parameters
    ----------
    findings, experiments, foci : pandas.DataFrame
        Processed tables (:class:`painmeta.extraction.Extraction`).
    config : DatasetConfig
        Networks, ``roi.direction_map`` and ``roi.atlas_distance_mm``.
    lookup : Lookup, optional
        Region rules (default: the file named by ``roi_lookup``).
    atlas_table : pandas.DataFrame, optional
        AAL label -> network (default: :data:`AAL_LOOKUP`).
    qa_flags : pandas.DataFrame, optional
        Coordinate QA flags of the extraction stage, shown beside linked peaks.

    Returns
    -------
    pandas.DataFrame
        One row per finding: ``rule_id``, ``network``, ``role`` (``target``, ``seed`` (never counted),
        ``outside`` (network none), ``unmapped``), ``counts`` (enters the matrix), ``matrix_direction``,
        the atlas check (``aal_label``, ``atlas_network``, ``atlas_status``, ``atlas_mm``) and provenance
        (``evidence``, ``source``, ``findings_line``).
    """
    lookup = lookup or load_lookup(lookup_path(config), config.network_keys)
    labels = config.network_labels
    cols = ["finding_id", "experiment_id", "study_id", "region", "hemisphere", "direction", "matrix_direction",
            "rule_id", "network", "network_label", "structure", "role", "counts", "seed_region", "focus_id",
            "x", "y", "z", "aal_label", "atlas_network", "atlas_status", "atlas_mm", "focus_qa", "evidence",
            "note", "source", "findings_line", "lookup_version"]
    if findings is None or len(findings) == 0:
        return pd.DataFrame(columns=cols)
    if atlas_table is None:
        atlas_table = load_atlas_lookup(project_root() / AAL_LOOKUP, lookup)
    atlas = _AtlasNetworks(atlas_table, lookup)
    exp = experiments.set_index("experiment_id")
    focus_xyz = foci.set_index("focus_id")[["x", "y", "z"]] if len(foci) else pd.DataFrame(columns=["x", "y", "z"])
    qa_text: dict[str, str] = {}
    if qa_flags is not None and len(qa_flags):
        for fid, grp in qa_flags.groupby("focus_id"):
            qa_text[str(fid)] = "; ".join(f"{c} ({s})" for c, s in zip(grp["check"], grp["severity"]))
    structure = dict(zip(lookup.rules["rule_id"], lookup.rules["structure"]))
    direction_map = config.roi.direction_map
    tol = config.roi.atlas_distance_mm

    rows = []
    for rec in findings.itertuples(index=False):
        e = exp.loc[rec.experiment_id] if rec.experiment_id in exp.index else None
        seed = _text(e["seed_region"]) if e is not None else ""
        rule_id, network = lookup.match(rec.region)
        # A seed is never a target: same text as the seed, or caught by the same (single-structure) rule.
        seed_rules = {lookup.match(s)[0] for s in _seed_parts(seed)} - {None}
        seed_texts = {normalise_region(s) for s in _seed_parts(seed)}
        is_seed = bool(seed) and (normalise_region(rec.region) in seed_texts
                                  or (rule_id is not None and rule_id in seed_rules))
        if is_seed:
            role = "seed"
        elif network == UNMAPPED:
            role = UNMAPPED
        elif network == NONE:
            role = "outside"
        else:
            role = "target"
        direction = _text(rec.direction)
        matrix_direction = direction_map.get(direction, BOTH if direction == "mixed" else UNKNOWN)

        focus_id = _text(rec.focus_id)
        x = y = z = math.nan
        aal_label = atlas_network = ""
        atlas_mm = math.nan
        if not focus_id or focus_id not in focus_xyz.index:
            status = "no_coordinate"
        else:
            x, y, z = (float(v) for v in focus_xyz.loc[focus_id])
            aal_label, atlas_network = atlas.label_network(np.array([x, y, z]))
            if network == UNMAPPED:
                status = UNMAPPED
            elif aal_label and atlas_network == network:
                status, atlas_mm = "agree", 0.0
            else:
                # Off-network or unlabelled peak (white matter, brainstem, outside the brain): how far is
                # the lookup's network? Within tolerance it is a near miss, not a disagreement.
                atlas_mm = round(atlas.distance(np.array([x, y, z]), network, rule_id or ""), 1)
                if atlas_mm <= tol:
                    status = "near"
                else:
                    status = "disagree" if aal_label else "no_atlas_label"
        rows.append({
            "finding_id": rec.finding_id, "experiment_id": rec.experiment_id,
            "study_id": _text(e["study_id"]) if e is not None else "",
            "region": rec.region, "hemisphere": _text(rec.hemisphere), "direction": direction,
            "matrix_direction": matrix_direction, "rule_id": rule_id or "", "network": network,
            "network_label": labels.get(network, network), "structure": structure.get(rule_id, ""),
            "role": role, "counts": role == "target", "seed_region": seed, "focus_id": focus_id,
            "x": x, "y": y, "z": z, "aal_label": aal_label, "atlas_network": atlas_network,
            "atlas_status": status, "atlas_mm": atlas_mm, "focus_qa": qa_text.get(focus_id, ""),
            "evidence": _text(rec.evidence), "note": _text(rec.note), "source": _text(rec.source),
            "findings_line": getattr(rec, "raw_line", None), "lookup_version": lookup.label,
        })
    return pd.DataFrame(rows, columns=cols)


def atlas_disagreements(mapped: pd.DataFrame) -> pd.DataFrame:
    """Findings whose peak's atlas network differs from the lookup's (the lookup decides).

    Parameters
    ----------
    mapped : pandas.DataFrame
        Output of :func:`map_findings`.

    Returns
    -------
    pandas.DataFrame
        Rows with ``atlas_status`` ``disagree``, ``near`` or ``no_atlas_label``, with the decision
        taken (the lookup's network).
    """
    cols = ["finding_id", "experiment_id", "region", "rule_id", "network", "focus_id", "x", "y", "z", "aal_label",
            "atlas_network", "atlas_status", "atlas_mm", "focus_qa", "decision", "source"]
    sub = mapped[mapped["atlas_status"].isin(["disagree", "near", "no_atlas_label"])].copy()
    if sub.empty:
        return pd.DataFrame(columns=cols)
    sub["decision"] = "lookup kept: " + sub["network"].astype(str) + " (rule " + sub["rule_id"].astype(str) + ")"
    return sub[cols].reset_index(drop=True)


# --------------------------------------------------------------------------- matrices


@dataclass
class ROIMatrix:
    """One ROI matrix with its traceable cells.

    Attributes
    ----------
    level : {"experiment", "study"}
    networks : list of str
        Network keys in display order.
    labels : dict of str to str
        Network display labels.
    table : pandas.DataFrame
        One row per entry (contrast or study): descriptive columns, then one column per network holding a
        cell code (:data:`CELL_CODES`).
    cells : pandas.DataFrame
        Long form: one row per entry x network with the finding, focus and experiment ids, rules, regions and
        sources behind the cell.
    not_assessable : pandas.DataFrame
        Entries that are not rows of the matrix, with ``status`` and ``reason``.
    """

    level: str
    networks: list[str]
    labels: dict[str, str]
    table: pd.DataFrame
    cells: pd.DataFrame
    not_assessable: pd.DataFrame

    @property
    def id_column(self) -> str:
        """Column identifying an entry: ``experiment_id`` or ``study_id``."""
        return "experiment_id" if self.level == "experiment" else "study_id"

    @property
    def n(self) -> int:
        """Entries in the matrix (the denominator of every proportion)."""
        return len(self.table)

    def codes(self) -> pd.DataFrame:
        """Entry x network cell codes (index = entry id)."""
        return self.table.set_index(self.id_column)[self.networks]

    def display(self) -> pd.DataFrame:
        """The matrix for reading: entry label, annotation column and arrows under network labels."""
        lead = ["label", "modality", "contrast_type"] if self.level == "experiment" else \
            ["label", "n_contrasts", "contrasts_not_assessable"]
        out = self.table[[self.id_column, *lead]].copy()
        for key in self.networks:
            out[self.labels[key]] = self.table[key].map(CELL_MARK)
        return out.set_index(self.id_column)


def combine_directions(directions: Iterable[str]) -> str:
    """Cell code for the mapped directions of the findings in one cell.

    Parameters
    ----------
    directions : iterable of str
        ``patients>controls``, ``patients<controls``, ``both`` or unknown values.

    Returns
    -------
    str
        ``none`` for no finding; ``both`` when both directions occur; ``direction_unknown`` when no finding
        has a known direction. A finding without direction does not change a known one.
    """
    found = set(directions)
    if not found:
        return NONE
    up = UP in found or BOTH in found
    down = DOWN in found or BOTH in found
    if up and down:
        return BOTH
    if up:
        return UP
    if down:
        return DOWN
    return UNKNOWN


def _study_labels(studies: pd.DataFrame | None) -> dict[str, str]:
    """Short study labels ("Alpha 2020"); initials are kept where surnames and years collide."""
    out: dict[str, str] = {}
    if studies is None or studies.empty:
        return out
    full: dict[str, str] = {}
    for rec in studies.itertuples(index=False):
        author = _text(getattr(rec, "first_author", ""))
        year = getattr(rec, "year", None)
        year_text = f" {int(year)}" if year is not None and not pd.isna(year) else ""
        if author and author.lower() != "unidentified":
            out[rec.study_id] = author.split()[0] + year_text
            full[rec.study_id] = author + year_text
        else:
            out[rec.study_id] = full[rec.study_id] = str(rec.study_id)
    clash = pd.Series(out).duplicated(keep=False)
    for sid in clash[clash].index:
        out[sid] = full[sid]
    return out


def _in_roi(studies: pd.DataFrame | None) -> dict[str, bool]:
    if studies is None or studies.empty or "syntheses" not in studies:
        return {}
    return {s: "roi" in [p.strip().lower() for p in _text(v).split(";")]
            for s, v in zip(studies["study_id"], studies["syntheses"])}


def _cell_rows(level: str, entry: str, study: str, networks: list[str], labels: dict[str, str],
               hits: pd.DataFrame, seeds: pd.DataFrame, experiment_col: pd.Series | None = None) -> list[dict]:
    rows = []
    for key in networks:
        sub = hits[hits["network"] == key]
        rows.append({
            "level": level, "entry_id": entry, "study_id": study, "network": key, "network_label": labels[key],
            "cell": combine_directions(sub["matrix_direction"]),
            "n_findings": len(sub),
            "finding_ids": _join(sub["finding_id"]),
            "experiment_ids": _join(sub["experiment_id"]),
            "focus_ids": _join(sub["focus_id"]),
            "rule_ids": _join(sub["rule_id"]),
            "regions": _join(sub["region"]),
            "directions": _join(sub["direction"]),
            "findings_lines": _join(sub["findings_line"]),
            "evidence": _join(sub["evidence"]),
            "sources": _join(sub["source"], " | "),
            "seed_findings_excluded": _join(seeds.loc[seeds["network"] == key, "finding_id"]),
        })
    return rows


def experiment_matrix(mapped: pd.DataFrame, experiments: pd.DataFrame, config: DatasetConfig,
                      studies: pd.DataFrame | None = None, lookup: Lookup | None = None) -> ROIMatrix:
    """Experiment-level matrix: one row per contrast with at least one usable region-level finding.

    Parameters
    ----------
    mapped : pandas.DataFrame
        Output of :func:`map_findings`.
    experiments : pandas.DataFrame
        Processed experiments (every included contrast is either a row or listed as not assessable).
    config : DatasetConfig
        Networks and ``roi`` settings (``contrast_types``, ``exclude_experiments``).
    studies : pandas.DataFrame, optional
        For labels ("Alpha 2020") and the ``syntheses`` column (a study not marked ``roi`` does not enter).
    lookup : Lookup, optional
        To mark the seed region's network in the figure (default: the dataset's lookup).

    Returns
    -------
    ROIMatrix
    """
    lookup = lookup or load_lookup(lookup_path(config), config.network_keys)
    networks, labels = config.network_keys, config.network_labels
    names = _study_labels(studies)
    in_roi = _in_roi(studies)
    rows, cells, out = [], [], []
    for e in experiments.itertuples(index=False):
        eid, sid = e.experiment_id, e.study_id
        own = mapped[mapped["experiment_id"] == eid] if len(mapped) else mapped
        targets = own[own["role"] == "target"] if len(own) else own
        assessable_findings = own[own["role"].isin(["target", "outside"])] if len(own) else own
        status = reason = ""
        if eid in config.roi.exclude_experiments:
            status, reason = "excluded_by_config", "listed in roi.exclude_experiments of dataset.yaml"
        elif e.contrast_type not in config.roi.contrast_types:
            status = "contrast_type_not_in_roi"
            reason = (f"contrast type '{e.contrast_type}' is not in roi.contrast_types "
                      f"({', '.join(config.roi.contrast_types)})")
        elif in_roi and not in_roi.get(sid, True):
            status = "study_not_in_roi"
            reason = f"study {sid} is not marked for the ROI synthesis (studies.csv syntheses)"
            if own.empty:
                reason += "; it has no region-level finding either"
        elif own.empty:
            status = "no_public_finding"
            reason = "no region-level finding is public for this contrast"
            note = _text(getattr(e, "evidence_note", ""))
            if note:
                reason += f" ({note})"
        elif assessable_findings.empty:
            kinds = own["role"].unique().tolist()
            if kinds == ["seed"]:
                status = "seed_only"
                reason = f"its only finding(s) are the seed region ({_join(own['region'])}), never a target"
            else:
                status = "unmapped_only"
                regions = _join(own.loc[own["role"] == UNMAPPED, "region"])
                reason = f"no lookup rule covers its region(s): {regions}; add a rule"
        if status:
            out.append({"level": "experiment", "id": eid, "study_id": sid,
                        "label": f"{names.get(sid, sid)}: {e.contrast}",
                        "status": status, "reason": reason, "n_findings": len(own)})
            continue
        seeds = own[own["role"] == "seed"]
        seed_networks = sorted({lookup.match(s)[1] for s in _seed_parts(e.seed_region)} & set(networks))
        row = {
            "experiment_id": eid, "study_id": sid, "label": f"{names.get(sid, sid)}: {e.contrast}",
            "study_label": names.get(sid, sid), "contrast": e.contrast, "contrast_type": e.contrast_type,
            "direction": e.direction, "modality": _text(e.modality), "seed_region": _text(e.seed_region),
            "seed_networks": ";".join(seed_networks), "evidence": _text(e.evidence),
            "n_findings": len(own), "n_targets": len(targets),
            "outside_networks": _join(f"{r} ({rid})" for r, rid in zip(own.loc[own["role"] == "outside", "region"],
                                                                       own.loc[own["role"] == "outside", "rule_id"])),
            "seed_findings": _join(seeds["region"]),
            "unmapped_regions": _join(own.loc[own["role"] == UNMAPPED, "region"]),
        }
        new_cells = _cell_rows("experiment", eid, sid, networks, labels, targets, seeds)
        for c in new_cells:
            row[c["network"]] = c["cell"]
        rows.append(row)
        cells.extend(new_cells)
    table_cols = ["experiment_id", "study_id", "label", "study_label", "contrast", "contrast_type", "direction",
                  "modality", "seed_region", "seed_networks", "evidence", "n_findings", "n_targets", "outside_networks",
                  "seed_findings", "unmapped_regions", *networks]
    return ROIMatrix(
        "experiment", networks, labels,
        pd.DataFrame(rows, columns=table_cols),
        pd.DataFrame(cells, columns=_CELL_COLUMNS),
        pd.DataFrame(out, columns=_NA_COLUMNS),
    )


_CELL_COLUMNS = ["level", "entry_id", "study_id", "network", "network_label", "cell", "n_findings", "finding_ids",
                 "experiment_ids", "focus_ids", "rule_ids", "regions", "directions", "findings_lines", "evidence",
                 "sources", "seed_findings_excluded"]
_NA_COLUMNS = ["level", "id", "study_id", "label", "status", "reason", "n_findings"]


def study_matrix(exp: ROIMatrix, mapped: pd.DataFrame, config: DatasetConfig,
                 studies: pd.DataFrame | None = None) -> ROIMatrix:
    """Study-level matrix: the assessable contrasts of one publication merged into one row.

    Parameters
    ----------
    exp : ROIMatrix
        The experiment-level matrix.
    mapped : pandas.DataFrame
        Output of :func:`map_findings` (cells are rebuilt from the findings so that they stay traceable).
    config : DatasetConfig
    studies : pandas.DataFrame, optional
        Every publication; those without an assessable contrast are listed as not assessable.

    Returns
    -------
    ROIMatrix
        Cells: ``patients>controls`` / ``patients<controls`` (involved, one direction), ``both``,
        ``direction_unknown`` or ``none`` (not involved).
    """
    networks, labels = config.network_keys, config.network_labels
    names = _study_labels(studies)
    in_roi = _in_roi(studies)
    rows, cells, out = [], [], []
    order = list(dict.fromkeys(exp.table["study_id"]))
    exp_na = exp.not_assessable
    for sid in order:
        contrasts = exp.table[exp.table["study_id"] == sid]
        ids = contrasts["experiment_id"].tolist()
        own = mapped[mapped["experiment_id"].isin(ids)]
        targets = own[own["role"] == "target"]
        seeds = own[own["role"] == "seed"]
        left_out = exp_na.loc[exp_na["study_id"] == sid, "id"].tolist() if len(exp_na) else []
        row = {
            "study_id": sid, "label": names.get(sid, sid), "n_contrasts": len(ids), "contrasts": "; ".join(ids),
            "contrasts_not_assessable": "; ".join(left_out), "modalities": _join(contrasts["modality"]),
        }
        new_cells = _cell_rows("study", sid, sid, networks, labels, targets, seeds)
        for c in new_cells:
            row[c["network"]] = c["cell"]
        rows.append(row)
        cells.extend(new_cells)
    known = list(studies["study_id"]) if studies is not None and len(studies) else []
    for sid in list(dict.fromkeys(known + (exp_na["study_id"].tolist() if len(exp_na) else []))):
        if sid in order:
            continue
        n_contrasts = int((exp_na["study_id"] == sid).sum()) if len(exp_na) else 0
        if in_roi and not in_roi.get(sid, True):
            status, reason = "study_not_in_roi", "not marked for the ROI synthesis (studies.csv syntheses)"
        elif n_contrasts == 0:
            status, reason = "no_contrast", "no contrast extracted for this study"
        else:
            status = "no_assessable_contrast"
            reason = f"none of its {n_contrasts} contrast(s) has a usable public region-level finding"
        out.append({"level": "study", "id": sid, "study_id": sid, "label": names.get(sid, sid), "status": status,
                    "reason": reason, "n_findings": int((mapped["study_id"] == sid).sum()) if len(mapped) else 0})
    table_cols = ["study_id", "label", "n_contrasts", "contrasts", "contrasts_not_assessable", "modalities", *networks]
    return ROIMatrix("study", networks, labels, pd.DataFrame(rows, columns=table_cols),
                     pd.DataFrame(cells, columns=_CELL_COLUMNS), pd.DataFrame(out, columns=_NA_COLUMNS))


# --------------------------------------------------------------------------- counts


def counts(matrix: ROIMatrix) -> pd.DataFrame:
    """Events and totals per network, overall and per direction (input of the proportion meta-analysis).

    Parameters
    ----------
    matrix : ROIMatrix

    Returns
    -------
    pandas.DataFrame
        Long form, one row per subgroup x network: ``level``, ``subgroup`` (``overall``,
        ``patients>controls``, ``patients<controls``), ``network``, ``label``, ``order`` (display order),
        ``events`` (entries implicating the network; in a directional subgroup, entries whose cell includes
        that direction), ``n`` (all entries of the matrix), ``proportion`` (NaN when n = 0) and ``entries``
        (ids of the entries counted).
    """
    codes = matrix.codes() if matrix.n else pd.DataFrame(columns=matrix.networks)
    rows = []
    wanted = {"overall": {UP, DOWN, BOTH, UNKNOWN}, UP: {UP, BOTH}, DOWN: {DOWN, BOTH}}
    for subgroup in SUBGROUPS:
        for order, key in enumerate(matrix.networks):
            hit = codes.index[codes[key].isin(wanted[subgroup])].tolist() if matrix.n else []
            n = matrix.n
            rows.append({"level": matrix.level, "subgroup": subgroup, "network": key, "label": matrix.labels[key],
                         "order": order, "events": len(hit), "n": n,
                         "proportion": len(hit) / n if n else math.nan, "entries": "; ".join(hit)})
    return pd.DataFrame(rows)


def counts_wide(table: pd.DataFrame) -> pd.DataFrame:
    """Counts as "k/n", networks as rows and level x subgroup as columns (for reading).

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`counts` (one or both levels).

    Returns
    -------
    pandas.DataFrame
    """
    if table.empty:
        return pd.DataFrame()
    t = table.assign(kn=table["events"].astype(str) + "/" + table["n"].astype(str))
    wide = t.pivot_table(index=["order", "label"], columns=["level", "subgroup"], values="kn", aggfunc="first")
    levels = [lv for lv in ("experiment", "study") if lv in set(table["level"])]
    wide = wide.reindex(columns=[(lv, sg) for lv in levels for sg in SUBGROUPS])
    return wide.droplevel("order")


# --------------------------------------------------------------------------- the review's implied counts


def implied_review_counts(dataset: str | Path = "cipn") -> pd.DataFrame:
    """Counts implied by a review's reported proportions (``data/raw/<dataset>/review_implied_counts.csv``).

    The file holds derived values (each row says how), never numbers the review printed as counts. Each
    row is re-checked here: a Clopper-Pearson interval for per-network rows (``proportion_and_ci``) and a
    Wald interval on the logit scale for pooled rows (``pooled_tau0``; with tau = 0 the GLMM estimate is
    total events / total n), both compared with the reported values at two decimals.

    Parameters
    ----------
    dataset : str or path-like
        Dataset name or raw folder.

    Returns
    -------
    pandas.DataFrame
        The file's columns plus ``proportion`` (events / n), ``check_lower``, ``check_upper`` and
        ``reproduces`` (True / False, NA when nothing was reported to compare). Empty (with the columns)
        when the dataset has no such file.
    """
    from scipy import stats

    path = dataset_paths(dataset).raw / REVIEW_IMPLIED_FILE
    extra = ["proportion", "check_lower", "check_upper", "reproduces"]
    if not path.is_file():
        return pd.DataFrame(columns=[*IMPLIED_COLUMNS, *extra])
    df = _read_text_csv(path, IMPLIED_COLUMNS, "review-implied counts")
    problems: list[Problem] = []
    for col in ("events", "n"):
        bad = pd.to_numeric(df[col], errors="coerce").isna()
        for idx in df.index[bad]:
            problems.append(Problem(str(path), int(df.at[idx, "line"]), col, df.at[idx, col], "must be a whole number"))
    _raise(problems, "review-implied counts")
    df["events"] = df["events"].astype(int)
    df["n"] = df["n"].astype(int)
    for col in ("reported_proportion", "reported_ci_lower", "reported_ci_upper"):
        df[col] = pd.to_numeric(df[col].replace("", np.nan), errors="coerce")
    for idx in df.index[(df["events"] < 0) | (df["events"] > df["n"]) | (df["n"] <= 0)]:
        problems.append(Problem(str(path), int(df.at[idx, "line"]), "events", str(df.at[idx, "events"]),
                                "events must lie between 0 and n (n > 0)"))
    _raise(problems, "review-implied counts")
    df["proportion"] = df["events"] / df["n"]
    lows, highs, ok = [], [], []
    for rec in df.itertuples(index=False):
        x, n = rec.events, rec.n
        if rec.basis == "proportion_and_ci":
            lo = 0.0 if x == 0 else float(stats.beta.ppf(0.025, x, n - x + 1))
            hi = 1.0 if x == n else float(stats.beta.ppf(0.975, x + 1, n - x))
        elif rec.basis == "pooled_tau0" and 0 < x < n:
            p = x / n
            se = math.sqrt(1 / (n * p * (1 - p)))
            logit = math.log(p / (1 - p))
            lo, hi = (1 / (1 + math.exp(-(logit + s * 1.959963984540054 * se))) for s in (-1, 1))
        else:
            lo = hi = math.nan
        lows.append(lo)
        highs.append(hi)
        checks = []
        if not pd.isna(rec.reported_proportion):
            checks.append(round(x / n, 2) == round(rec.reported_proportion, 2))
        if not pd.isna(rec.reported_ci_lower) and not math.isnan(lo):
            checks.append(round(lo, 2) == round(rec.reported_ci_lower, 2)
                          and round(hi, 2) == round(rec.reported_ci_upper, 2))
        ok.append(all(checks) if checks else pd.NA)
    df["check_lower"], df["check_upper"], df["reproduces"] = lows, highs, ok
    return df.drop(columns=["line"])


def compare_with_review(result: ROIResult, implied: pd.DataFrame) -> pd.DataFrame:
    """Our counts beside the counts a review's numbers imply.

    Parameters
    ----------
    result : ROIResult
    implied : pandas.DataFrame
        Output of :func:`implied_review_counts`.

    Returns
    -------
    pandas.DataFrame
        One row per implied item: ``level``, ``subgroup``, ``network``, ``ours_events``, ``ours_n``,
        ``ours`` ("k/n"), ``review`` ("k/n"), ``review_basis``, ``same_counts`` and ``same_proportion``.
        Rows with network ``all`` sum events over the five networks and n over all cells (entries x 5).
    """
    if implied is None or implied.empty:
        return pd.DataFrame()
    c = result.counts
    rows = []
    for rec in implied.itertuples(index=False):
        sub = c[(c["level"] == rec.level) & (c["subgroup"] == rec.subgroup)]
        if rec.network == "all":
            events, n = int(sub["events"].sum()), int(sub["n"].sum())
            label = "all networks (cells)"
        else:
            hit = sub[sub["network"] == rec.network]
            events, n = (int(hit["events"].iloc[0]), int(hit["n"].iloc[0])) if len(hit) else (0, 0)
            label = str(hit["label"].iloc[0]) if len(hit) else rec.network
        rows.append({
            "item_id": rec.item_id, "level": rec.level, "subgroup": rec.subgroup, "network": rec.network,
            "label": label,
            "ours_events": events, "ours_n": n, "ours": f"{events}/{n}",
            "ours_proportion": events / n if n else math.nan,
            "review_events": rec.events, "review_n": rec.n, "review": f"{rec.events}/{rec.n}",
            "review_proportion": rec.events / rec.n, "review_basis": rec.basis,
            "same_counts": events == rec.events and n == rec.n,
            "same_proportion": bool(n) and round(events / n, 2) == round(rec.events / rec.n, 2),
        })
    return pd.DataFrame(rows)


def explain_differences(result: ROIResult, comparison: pd.DataFrame, implied: pd.DataFrame) -> list[str]:
    """Plain-words reasons for each difference between our counts and the review's implied counts.

    Parameters
    ----------
    result : ROIResult
    comparison : pandas.DataFrame
        Output of :func:`compare_with_review`.
    implied : pandas.DataFrame
        Output of :func:`implied_review_counts` (its notes say what is not public).

    Returns
    -------
    list of str
        One sentence (markdown) per point; empty when there is nothing to compare.
    """
    if comparison.empty:
        return []
    out: list[str] = []
    notes = dict(zip(implied["item_id"], implied["note"]))
    rules = result.lookup.rules.set_index("rule_id")
    for level, matrix in (("experiment", result.experiment), ("study", result.study)):
        comp = comparison[comparison["level"] == level]
        if comp.empty:
            continue
        word = "contrasts" if level == "experiment" else "studies"
        per_net = comp[(comp["subgroup"] == "overall") & (comp["network"] != "all")]
        review_n = sorted(set(per_net["review_n"]))
        na = matrix.not_assessable
        na_text = "; ".join(f"{r.label} ({STATUS_TEXT.get(r.status, r.status)})" for r in na.itertuples(index=False))
        if review_n and review_n != [matrix.n]:
            implied_n = ", ".join(map(str, review_n))
            first_note = _text(next((notes[i] for i in per_net["item_id"] if _text(notes.get(i))), ""))
            out.append(f"**{level.capitalize()} level, denominator:** our matrix has {matrix.n} {word} with a "
                       f"usable public region-level finding; the review's proportions imply n = {implied_n}. "
                       "Equal counts would therefore still be different proportions. "
                       + (f"Not assessable here: {na_text}. " if na_text else "")
                       + first_note)
        for rec in per_net.itertuples(index=False):
            if rec.same_counts:
                continue
            cell_rows = matrix.cells[(matrix.cells["network"] == rec.network) & (matrix.cells["cell"] != NONE)]
            rule_ids = sorted({r for ids in cell_rows["rule_ids"] for r in ids.split("; ") if r})
            bits = [f"**{rec.label}** ({level} level): ours {rec.ours}, review {rec.review}."]
            if rec.ours_events == 0 and rec.review_events > 0:
                bits.append("No public finding maps to this network, so the review's cell(s) must rest on results "
                            "that are not in the public record.")
            elif rec.ours_events > 0:
                entries = "; ".join(cell_rows["entry_id"])
                bits.append(f"Ours come from {entries} (rules: {', '.join(rule_ids)}).")
                alt = [r for r in rule_ids if r in rules.index and _text(rules.at[r, "alternative"])]
                if alt:
                    bits.append("Rule(s) " + ", ".join(alt) + " are judgement calls with an alternative network ("
                                + ", ".join(f"{r} -> {rules.at[r, 'alternative']}" for r in alt)
                                + "); see the sensitivity analysis.")
            out.append(" ".join(bits))
        for rec in comp[comp["network"] == "all"].itertuples(index=False):
            if not rec.same_counts:
                sub = "any direction" if rec.subgroup == "overall" else rec.subgroup
                extra = _text(notes.get(rec.item_id, ""))
                out.append(f"**{level.capitalize()} level, all cells ({sub}):** ours {rec.ours}, review {rec.review} "
                           f"({rec.review_basis.replace('_', ' ')}). {extra}".strip())
    return out


# --------------------------------------------------------------------------- whole synthesis


@dataclass
class ROIResult:
    """Everything the ROI stage produces for one dataset.

    Attributes
    ----------
    lookup : Lookup
    findings : pandas.DataFrame
        Mapped findings (:func:`map_findings`).
    experiment, study : ROIMatrix
    counts : pandas.DataFrame
        :func:`counts` of both matrices.
    disagreements : pandas.DataFrame
        :func:`atlas_disagreements`.
    """

    lookup: Lookup
    findings: pd.DataFrame
    experiment: ROIMatrix
    study: ROIMatrix
    counts: pd.DataFrame
    disagreements: pd.DataFrame

    @property
    def not_assessable(self) -> pd.DataFrame:
        """Not-assessable contrasts and studies, both levels."""
        parts = [m.not_assessable for m in (self.experiment, self.study) if len(m.not_assessable)]
        return pd.concat(parts, ignore_index=True) if parts else self.experiment.not_assessable.copy()

    @property
    def cells(self) -> pd.DataFrame:
        """Traceable cells of both matrices."""
        parts = [m.cells for m in (self.experiment, self.study) if len(m.cells)]
        return pd.concat(parts, ignore_index=True) if parts else self.experiment.cells.copy()

    @property
    def unmapped(self) -> pd.DataFrame:
        """Findings whose region no rule covers (add a rule)."""
        return self.findings[self.findings["role"] == UNMAPPED]


def synthesise(ext, config: DatasetConfig, lookup: Lookup | None = None,
               atlas_table: pd.DataFrame | None = None) -> ROIResult:
    """Run the ROI synthesis on processed extraction tables.

    Parameters
    ----------
    ext : painmeta.extraction.Extraction
    config : DatasetConfig
    lookup : Lookup, optional
        Region rules (default: the dataset's ``roi_lookup``); pass ``lookup.alternative()`` or
        ``lookup.reassign(...)`` for a sensitivity analysis.
    atlas_table : pandas.DataFrame, optional
        AAL label -> network (default: :data:`AAL_LOOKUP`).

    Returns
    -------
    ROIResult
    """
    lookup = lookup or load_lookup(lookup_path(config), config.network_keys)
    if atlas_table is None and len(ext.findings):
        atlas_table = load_atlas_lookup(project_root() / AAL_LOOKUP, lookup)
    mapped = map_findings(ext.findings, ext.experiments, ext.foci, config, lookup=lookup, atlas_table=atlas_table,
                          qa_flags=getattr(ext, "qa_flags", None))
    exp = experiment_matrix(mapped, ext.experiments, config, ext.studies, lookup=lookup)
    study = study_matrix(exp, mapped, config, ext.studies)
    both = pd.concat([counts(exp), counts(study)], ignore_index=True)
    return ROIResult(lookup, mapped, exp, study, both, atlas_disagreements(mapped))


def sensitivity(ext, config: DatasetConfig, scenarios: Mapping[str, tuple[Lookup, dict | None]]) -> pd.DataFrame:
    """Overall counts per network under alternative lookups and ROI settings.

    Parameters
    ----------
    ext : painmeta.extraction.Extraction
    config : DatasetConfig
    scenarios : mapping of name to (Lookup, roi overrides or None)
        E.g. ``{"v1": (lookup, None), "v1 + alternatives": (lookup.alternative(), None),
        "between-group only": (lookup, {"contrast_types": ["between_group"]})}``.

    Returns
    -------
    pandas.DataFrame
        One row per scenario x level: "k/n" per network (display labels) and the lookup version used.
    """
    rows = []
    for name, (lk, roi_overrides) in scenarios.items():
        cfg = config
        if roi_overrides:
            cfg = config.model_copy(update={"roi": config.roi.model_copy(update=roi_overrides)})
        res = synthesise(ext, cfg, lookup=lk)
        for level in ("experiment", "study"):
            sub = res.counts[(res.counts["level"] == level) & (res.counts["subgroup"] == "overall")]
            row = {"scenario": name, "level": level, "lookup": lk.label}
            row.update({r.label: f"{r.events}/{r.n}" for r in sub.itertuples(index=False)})
            up = res.counts[(res.counts["level"] == level) & (res.counts["subgroup"] == UP)]["events"].sum()
            down = res.counts[(res.counts["level"] == level) & (res.counts["subgroup"] == DOWN)]["events"].sum()
            row["cells up / down"] = f"{up} / {down}"
            rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- figures

_MODALITY_COLOURS = ("#B3E0CF", "#FAF3A6", "#BBE1F6", "#F0C9DE", "#F5D999", "#D9D9D9")


def _text_colour(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "white"


def _cell_colours() -> dict[str, str]:
    from painmeta.plotting import DIRECTION_COLOURS

    return {UP: DIRECTION_COLOURS["patients>controls"], DOWN: DIRECTION_COLOURS["patients<controls"],
            BOTH: DIRECTION_COLOURS["mixed"], UNKNOWN: "#BDBDBD", NONE: "#FFFFFF"}


def plot_matrix(matrix: ROIMatrix, config: DatasetConfig, title: str | None = None):
    """Draw an ROI matrix: rows = entries, columns = networks in config order.

    Direction is coded twice (colour and an arrow), so the figure also reads in greyscale and with
    colour-vision deficiency; a seed region's network is hatched; the experiment level has a modality
    column, the study level the number of contrasts merged; k/n under each column is the count that
    enters the proportion meta-analysis. Entries left out are named in the footnote.

    Parameters
    ----------
    matrix : ROIMatrix
    config : DatasetConfig
        Group words for the legend and the dataset name for the title.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    from painmeta.plotting import empty_axes_message

    level = matrix.level
    entries = "contrasts" if level == "experiment" else "studies"
    if title is None:
        title = f"{config.name}: {level}-level ROI matrix ({matrix.n} {entries})"
    if matrix.n == 0:
        fig, ax = plt.subplots(figsize=(7.5, 2.0))
        n_na = len(matrix.not_assessable)
        why = ("this dataset has no region-level finding" if n_na == 0 else
               f"none of its {n_na} {entries} has a usable region-level finding (see roi_not_assessable.csv)")
        empty_axes_message(ax, f"{title}\n\nThe matrix is empty: {why}.")
        return fig

    colours = _cell_colours()
    table = matrix.table.reset_index(drop=True)
    nets = matrix.networks
    n_rows, n_cols = len(table), len(nets)
    p_word, c_word = config.labels.patients, config.labels.controls

    # Geometry in inches: labels | annotation column | cells | legend.
    row_labels = [textwrap.fill(str(t), 56) for t in table["label"]]
    max_lines = max(lab.count("\n") + 1 for lab in row_labels)
    row_h = 0.36 + 0.16 * (max_lines - 1)
    count_caption = f"{entries} implicating the network / all"
    label_w = 0.3 + 0.066 * max(len(count_caption), *(len(line) for lab in row_labels for line in lab.split("\n")))
    ann_w = 1.15 if level == "experiment" else 0.95
    cell_w = 1.0
    legend_w = 2.7
    grid_w = ann_w + cell_w * n_cols
    head_h, title_h, count_h = 0.72, 0.42, 0.34
    na = matrix.not_assessable
    footnotes = ["Associations with symptom severity enter as \u2191 (positive) or \u2193 (negative), as set by "
                 "roi.direction_map in dataset.yaml."] if level == "experiment" else []
    if len(na):
        reason = "no usable public region-level finding" if level == "experiment" else "no assessable contrast"
        footnotes.append(f"Not in the matrix ({reason}): " + "; ".join(
            f"{r.label} [{STATUS_TEXT.get(str(r.status), str(r.status))}]" for r in na.itertuples(index=False)) + ".")
    width = label_w + grid_w + legend_w + 0.2
    foot_lines = [textwrap.fill(f, int((width - 0.3) * 14.5)) for f in footnotes]
    foot_h = 0.1 + 0.15 * sum(f.count("\n") + 1 for f in foot_lines)
    grid_h = row_h * n_rows
    height = title_h + head_h + grid_h + count_h + foot_h
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes([label_w / width, (count_h + foot_h) / height, grid_w / width, grid_h / height])
    ax.set_xlim(-ann_w, n_cols)
    ax.set_ylim(n_rows, 0)
    ax.set_axis_off()

    modality_colour: dict[str, str] = {}
    if level == "experiment":
        for m in dict.fromkeys(table["modality"]):
            modality_colour[m] = _MODALITY_COLOURS[len(modality_colour) % len(_MODALITY_COLOURS)]
    pad_x, pad_y = 0.04, 0.07
    for i, rec in table.iterrows():
        ax.text(-ann_w - 0.12, i + 0.5, row_labels[i], ha="right", va="center", fontsize=8.5)
        if level == "experiment":
            m = str(rec["modality"])
            ax.add_patch(Rectangle((-ann_w + pad_x, i + pad_y), ann_w - 0.2, 1 - 2 * pad_y,
                                   facecolor=modality_colour[m], edgecolor="none"))
            ax.text(-ann_w + pad_x + (ann_w - 0.2) / 2, i + 0.5, m, ha="center", va="center", fontsize=8)
        else:
            shown = str(rec["n_contrasts"])
            left_out = [c for c in str(rec.get("contrasts_not_assessable", "") or "").split("; ") if c]
            if left_out:
                shown += f" (+{len(left_out)} n/a)"
            ax.text(-ann_w / 2 - 0.06, i + 0.5, shown, ha="center", va="center", fontsize=8.5)
        seed_nets = set(str(rec.get("seed_networks", "") or "").split(";")) - {""}
        for j, key in enumerate(nets):
            code = rec[key]
            face = colours[code]
            box = (j + pad_x, i + pad_y)
            ax.add_patch(Rectangle(box, cell_w - 2 * pad_x, 1 - 2 * pad_y, facecolor=face,
                                   edgecolor="#9E9E9E" if code == NONE else face, linewidth=0.6))
            if key in seed_nets and code == NONE:
                ax.add_patch(Rectangle(box, cell_w - 2 * pad_x, 1 - 2 * pad_y, facecolor="none",
                                       edgecolor="#B0B0B0", hatch="////", linewidth=0.6))
                ax.text(j + 0.5, i + 0.5, "seed", ha="center", va="center", fontsize=7.5, color="#424242",
                        bbox=dict(boxstyle="square,pad=0.15", facecolor="white", edgecolor="none"))
            if CELL_MARK[code]:
                ax.text(j + 0.5, i + 0.5, CELL_MARK[code], ha="center", va="center", fontsize=12,
                        fontweight="bold", color=_text_colour(face))
    if level == "experiment":  # rules between publications
        studies = table["study_id"].tolist()
        for i in range(1, n_rows):
            if studies[i] != studies[i - 1]:
                ax.plot([-ann_w - label_w / cell_w + 0.1, n_cols], [i, i], color="#757575", lw=0.7, clip_on=False)
    overall = counts(matrix)
    overall = overall[overall["subgroup"] == "overall"].set_index("network")
    head_y = -0.12 * (1 / row_h)  # a little above the grid, in row units
    for j, key in enumerate(nets):
        head = textwrap.fill(matrix.labels[key], 15, break_long_words=False)
        ax.text(j + 0.5, head_y, head, ha="center", va="bottom", fontsize=8.5,
                fontweight="bold")
        ax.text(j + 0.5, n_rows + 0.1 / row_h, f"{int(overall.at[key, 'events'])}/{int(overall.at[key, 'n'])}",
                ha="center", va="top", fontsize=9)
    ax.text(-ann_w / 2 - 0.06, head_y, "Modality" if level == "experiment" else "Contrasts\nmerged", ha="center",
            va="bottom", fontsize=8.5, fontweight="bold")
    ax.text(-ann_w - 0.12, n_rows + 0.1 / row_h, count_caption, ha="right", va="top",
            fontsize=8, style="italic")
    fig.text(0.1 / width, 1 - 0.12 / height, title, ha="left", va="top", fontsize=11, fontweight="bold")

    word = "involved, " if level == "study" else ""
    legend_items = [
        (UP, Patch(facecolor=colours[UP], label=f"\u2191 {word}{p_word} > {c_word}")),
        (DOWN, Patch(facecolor=colours[DOWN], label=f"\u2193 {word}{p_word} < {c_word}")),
        (BOTH, Patch(facecolor=colours[BOTH], label=f"\u2191\u2193 {word}both directions")),
        (UNKNOWN, Patch(facecolor=colours[UNKNOWN], label=f"? {word}direction not given")),
        (NONE, Patch(facecolor="white", edgecolor="#9E9E9E", label="not implicated")),
    ]
    present = set(np.unique(table[nets].to_numpy()))
    handles = [h for code, h in legend_items if code in present or code in (UP, DOWN, NONE)]
    if level == "experiment" and table["seed_networks"].fillna("").ne("").any():
        handles.append(Patch(facecolor="white", edgecolor="#B0B0B0", hatch="////", label="seed region (not a target)"))
    leg_x = (label_w + grid_w + 0.25) / width
    top = 1 - (title_h + head_h * 0.35) / height
    leg = fig.legend(handles=handles, title="Cell", loc="upper left", bbox_to_anchor=(leg_x, top), fontsize=8,
                     title_fontsize=8.5, frameon=False, handlelength=1.6, handleheight=1.1, alignment="left")
    if level == "experiment":
        fig.canvas.draw()
        bbox = leg.get_window_extent().transformed(fig.transFigure.inverted())
        mh = [Patch(facecolor=col, label=m) for m, col in modality_colour.items()]
        fig.legend(handles=mh, title="Modality", loc="upper left", bbox_to_anchor=(leg_x, bbox.y0 - 0.15 / height),
                   fontsize=8, title_fontsize=8.5, frameon=False, handlelength=1.6, handleheight=1.1, alignment="left")
    y = foot_h - 0.08
    for f in foot_lines:
        fig.text(0.1 / width, y / height, f, ha="left", va="top", fontsize=7.5, color="#424242")
        y -= 0.15 * (f.count("\n") + 1)
    return fig


# --------------------------------------------------------------------------- outputs and CLI


def write_outputs(result: ROIResult, config: DatasetConfig, paths: DatasetPaths, figures: bool = True,
                  implied: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write the processed ROI tables and (by default) the two matrix figures.

    Parameters
    ----------
    result : ROIResult
    config : DatasetConfig
    paths : DatasetPaths
    figures : bool
        Also draw ``roi_matrix_experiment`` and ``roi_matrix_study`` (PNG, SVG, PDF) into
        ``outputs/<dataset>/roi/``.
    implied : pandas.DataFrame, optional
        The review's implied counts; when given and non-empty, ``roi_review_comparison.csv`` is written too.

    Returns
    -------
    dict of str to Path
    """
    import matplotlib.pyplot as plt

    from painmeta.plotting import save_figure

    tables = {
        "roi_findings.csv": result.findings, "roi_cells.csv": result.cells,
        "roi_matrix_experiment.csv": result.experiment.table, "roi_matrix_study.csv": result.study.table,
        "roi_counts.csv": result.counts, "roi_not_assessable.csv": result.not_assessable,
        "roi_atlas_disagreements.csv": result.disagreements,
    }
    if implied is not None and not implied.empty:
        tables["roi_review_comparison.csv"] = compare_with_review(result, implied)
    written = write_tables(paths.processed, tables)
    if figures:
        stage = paths.stage("roi")
        for matrix, stem in ((result.experiment, "roi_matrix_experiment"), (result.study, "roi_matrix_study")):
            fig = plot_matrix(matrix, config)
            for p in save_figure(fig, stage / stem):
                written[f"roi/{p.name}"] = p
            plt.close(fig)
    return written


def _cmd_roi(args: argparse.Namespace) -> int:
    from painmeta.extraction import extract

    ext, config, paths = extract(args.dataset)
    result = synthesise(ext, config)
    implied = implied_review_counts(args.dataset)
    written = write_outputs(result, config, paths, figures=not args.no_figures, implied=implied)
    for path in written.values():
        print(f"wrote {path}")
    overall = result.counts[result.counts["subgroup"] == "overall"]
    print(overall[["level", "label", "events", "n"]].to_string(index=False))
    if len(result.not_assessable):
        print(f"{len(result.not_assessable)} not-assessable entr(ies): see roi_not_assessable.csv")
    if len(result.unmapped):
        print(f"warning: {len(result.unmapped)} finding(s) with no lookup rule: "
              + _join(result.unmapped["region"]))
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add the ``roi`` command."""
    p = sub.add_parser("roi", help="ROI synthesis: map regions to networks, write matrices, counts and figures",
                       description="Map every region-level finding to the five networks with the dataset's lookup, "
                                   "build the experiment- and study-level matrices, and write tables to "
                                   "data/processed/<dataset>/ and figures to outputs/<dataset>/roi/.")
    p.add_argument("dataset", help="dataset name (cipn, cancer_pain, nidm_pain) or raw folder")
    p.add_argument("--no-figures", action="store_true", help="write the tables only")
    p.set_defaults(func=_cmd_roi)


__all__ = [
    "CELL_CODES", "SUBGROUPS", "Lookup", "ROIMatrix", "ROIResult", "load_lookup", "load_atlas_lookup", "lookup_path",
    "normalise_region", "map_findings", "atlas_disagreements", "combine_directions", "experiment_matrix",
    "study_matrix", "counts", "counts_wide", "implied_review_counts", "compare_with_review", "explain_differences",
    "synthesise",
    "sensitivity", "plot_matrix", "write_outputs", "register_cli",
]
