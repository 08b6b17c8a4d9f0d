"""Dataset configuration: one validated YAML file per dataset.

``data/raw/<dataset>/dataset.yaml`` is the single source of truth for a
dataset's parameters (networks, lookup table, ALE settings, seeds, models).
Notebooks receive only the dataset name and optional overrides from Papermill;
:func:`load_config` applies the overrides on top of the file and validates the
result, so a typo in an override fails as loudly as a typo in the file.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from painmeta.errors import InputError
from painmeta.paths import DATASET_NAME_PATTERN, DatasetPaths, dataset_paths, project_root
from painmeta.schemas import CONTRAST_TYPES, Problem
from painmeta.schemas import DIRECTIONS as TABLE_DIRECTIONS
from painmeta.yamlio import load_yaml, validation_problems

#: Direction codes used in every table. Display labels come from the config.
DIRECTIONS = (
    "patients>controls",
    "patients<controls",
    "positive_association",
    "negative_association",
    "mixed",
    "unknown",
)


#: Seeds feed numpy's generators: whole numbers 0 .. 2**32 - 1.
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
#: A name that becomes part of file names (model names): no path characters.
SafeName = Annotated[str, Field(pattern=DATASET_NAME_PATTERN)]
ContrastType = Literal[CONTRAST_TYPES]  # type: ignore[valid-type]
Direction = Literal[TABLE_DIRECTIONS]  # type: ignore[valid-type]
#: A Dask scheduler address (same rule as painmeta.ale.executor).
_SCHEDULER_ADDRESS = re.compile(r"^(tcp|tls|ws|wss|ucx)://[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Network(_Strict):
    """One predefined ROI category (network)."""

    key: str
    label: str


#: Primary inference of an ALE model (which FWE correction decides "surviving").
ALE_INFERENCE = Literal["cluster_size", "cluster_mass", "voxel"]
#: Where a focus's kernel is centred: nearest voxel (NiMARE) or exact coordinate (GingerALE).
FOCUS_PLACEMENT = Literal["voxel", "exact"]


class ALEModelConfig(_Strict):
    """One ALE model: which experiments enter and how many Monte Carlo iterations.

    ``inference``, ``focus_placement`` and ``pool_subject_groups`` override the
    dataset-wide values of :class:`ALEConfig` for this model (None = inherit).
    """

    contrast_types: list[ContrastType] = Field(default_factory=lambda: ["between_group"], min_length=1)
    directions: list[Direction] | None = None  # None = any direction
    # Only these experiment ids (None = every experiment that passes the other filters): a subset
    # such as one Sleuth file of a published analysis, or a sensitivity variant of one experiment.
    experiments: list[str] | None = None
    n_iters: int = Field(default=1000, ge=1, le=1_000_000)
    description: str = ""
    inference: ALE_INFERENCE | None = None
    focus_placement: FOCUS_PLACEMENT | None = None
    pool_subject_groups: bool | None = None


class ExecutorConfig(_Strict):
    """Where seeded Monte Carlo blocks run (:mod:`painmeta.ale.executor`); results never depend on it.

    ``scheduler``: ``null`` / ``"inprocess"`` (default, this process), ``"local"``
    (a Dask ``LocalCluster`` of ``n_workers`` processes) or a scheduler address
    ``"tcp://HOST:PORT"``. A plain string is accepted for the whole section
    (``executor: local``).
    """

    scheduler: str | None = None
    n_workers: int | None = Field(default=None, ge=1, le=4096)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return {"scheduler": value}
        return value

    @field_validator("scheduler")
    @classmethod
    def _known_scheduler(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip()
        if len(text) > 200:
            raise ValueError("scheduler is too long (at most 200 characters)")
        if text.lower() in ("", "inprocess", "in-process", "none", "local"):
            return text.lower() or None
        if not _SCHEDULER_ADDRESS.match(text):
            raise ValueError(
                f"unknown scheduler {text[:80]!r}: use inprocess, local or an address such as tcp://127.0.0.1:8786"
            )
        return text


class ALEContrastConfig(_Strict):
    """A subtraction / conjunction between two models (``ale.contrasts.<name>``)."""

    a: str
    b: str
    n_iters: int = Field(default=10000, ge=1, le=1_000_000)
    voxel_thresh: float = Field(default=0.001, gt=0, lt=1)  # two-sided, on the subtraction
    min_cluster_mm3: float = Field(default=200.0, ge=0)
    group_n_iters: int | None = Field(default=None, ge=1, le=1_000_000)  # each model's own ALE (default: the model's)
    description: str = ""


class ALEFSNConfig(_Strict):
    """Fail-safe N of significant clusters (``ale.fsn``; Acar et al. 2018)."""

    enabled: bool = False
    # Which models get it (default: every model with a significant cluster); refits are costly.
    models: list[SafeName] | None = None
    n_drawers: int = Field(default=10, ge=1, le=10_000)
    max_factor: float = Field(default=5.0, gt=0)
    n_iters: int | None = Field(default=None, ge=1, le=1_000_000)  # per refit (default: the model's)
    # Significance level of the refits (default: the model's ale.cluster_alpha), for reproducing a
    # published fail-safe N whose code judged survival at another level than its tables say.
    cluster_alpha: float | None = Field(default=None, gt=0, lt=1)
    method: Literal["bisect", "scan"] = "bisect"


class ALEPowerConfig(_Strict):
    """ALE power analysis by simulation (``ale.power``; :mod:`painmeta.ale.power`).

    The design (sample sizes, foci counts per experiment) is, in this order:
    ``subjects`` / ``foci_per_experiment`` (lists, one value per design
    experiment; ``design_label`` names it), else the ALE model ``model``
    (default: the first model that runs), else 20 subjects and 10 foci.
    ``seed`` defaults to ``ale.seed``.
    """

    enabled: bool = False
    model: str | None = None
    design_label: str | None = Field(default=None, max_length=120)
    n_experiments: list[int] = Field(default_factory=lambda: [3, 5, 10, 17, 25, 40], min_length=1, max_length=50)
    effect_shares: list[float] = Field(default_factory=lambda: [0.4], min_length=1, max_length=10)
    subjects: list[int] | None = Field(default=None, min_length=1, max_length=1000)
    foci_per_experiment: list[int] | None = Field(default=None, min_length=1, max_length=1000)
    jitter_mm: float = Field(default=4.0, ge=0, le=30)
    location: list[float] = Field(default_factory=lambda: [38.0, 20.0, -4.0], min_length=3, max_length=3)
    hit_radius_mm: float = Field(default=8.0, ge=0, le=50)
    n_sims: int = Field(default=200, ge=1, le=100000)
    n_iters: int = Field(default=1000, ge=20, le=1000000)
    seed: Seed | None = None

    @field_validator("n_experiments")
    @classmethod
    def _k_at_least_two(cls, value: list[int]) -> list[int]:
        if any(k < 2 or k > 10000 for k in value):
            raise ValueError(f"every number of experiments must be between 2 and 10000, got {value}")
        return value

    @field_validator("subjects", "foci_per_experiment")
    @classmethod
    def _positive(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(v < 1 or v > 100000 for v in value):
            raise ValueError(f"must be positive whole numbers, got {value}")
        return value

    @model_validator(mode="after")
    def _same_design(self) -> "ALEPowerConfig":
        s, f = self.subjects, self.foci_per_experiment
        if (s is None) != (f is None) or (s is not None and f is not None and len(s) != len(f)):
            raise ValueError("subjects and foci_per_experiment must both be given, one value per design experiment")
        return self

    @field_validator("effect_shares")
    @classmethod
    def _shares(cls, value: list[float]) -> list[float]:
        if any(not 0 < v <= 1 for v in value):
            raise ValueError(f"effect shares must be in (0, 1], got {value}")
        return value


class ALEConfig(_Strict):
    """ALE parameters (ANALYSIS.md section 2).

    ``inference``: the FWE correction a model reports as primary -
    ``cluster_size`` (the review's cluster-level FWE on size), ``cluster_mass``
    or ``voxel`` (voxel-level FWE); all three come from the same Monte Carlo
    null and are always written. ``focus_placement``: ``voxel`` (NiMARE; the
    cross-check is bit-exact) or ``exact`` (GingerALE: kernels centred at the
    reported coordinate; in-house engine only). ``pool_subject_groups``:
    experiments of one model that share a ``subject_group`` in
    experiments.csv enter as one experiment (Turkeltaub et al. 2012).
    """

    kernel: Literal["sample_size"] = "sample_size"
    inference: ALE_INFERENCE = "cluster_size"
    focus_placement: FOCUS_PLACEMENT = "voxel"
    pool_subject_groups: bool = True
    voxel_thresh: float = Field(default=0.001, gt=0, lt=1)
    cluster_alpha: float = Field(default=0.05, gt=0, lt=1)
    min_experiments: int = Field(default=2, ge=1, le=100_000)
    recommended_experiments: int = Field(default=17, ge=1, le=100_000)
    seed: Seed = 0
    include_unverified: bool = True
    n_cores: int = Field(default=2, ge=1, le=1024)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    # Primary engine of the ALE stage (the other one cross-checks it).
    engine: Literal["nimare", "inhouse"] = "nimare"
    # Cross-check budget for very large datasets: NiMARE runs only this many
    # iterations, compared exactly with the in-house engine on the same draws;
    # the in-house analysis keeps all of a model's iterations (needs engine: inhouse).
    crosscheck_max_iters: int | None = Field(default=None, ge=10, le=1_000_000)
    power: ALEPowerConfig = Field(default_factory=ALEPowerConfig)
    # Names become file names: SafeName's pattern (the loader turns its message into
    # "letters, digits ..." on the offending line).
    models: dict[SafeName, ALEModelConfig] = Field(default_factory=dict)
    contrasts: dict[SafeName, ALEContrastConfig] = Field(default_factory=dict)
    fsn: ALEFSNConfig = Field(default_factory=ALEFSNConfig)

    @model_validator(mode="after")
    def _contrasts_name_models(self) -> "ALEConfig":
        for name, c in self.contrasts.items():
            for side in (c.a, c.b):
                if side not in self.models:
                    raise ValueError(f"ale.contrasts.{name}: '{side}' is not a model of ale.models "
                                     f"({', '.join(self.models) or 'none'})")
            if c.a == c.b:
                raise ValueError(f"ale.contrasts.{name}: a and b must be different models")
        for m in self.fsn.models or []:
            if m not in self.models:
                raise ValueError(f"ale.fsn.models: '{m}' is not a model of ale.models "
                                 f"({', '.join(self.models) or 'none'})")
        if self.crosscheck_max_iters is not None and self.engine != "inhouse":
            # The budget cuts NiMARE's iterations; with NiMARE as the primary engine it would cut the result.
            raise ValueError("ale.crosscheck_max_iters needs ale.engine: inhouse (the budget limits the "
                             "cross-checking NiMARE run; with engine nimare remove the key)")
        return self


class ROIConfig(_Strict):
    """ROI synthesis rules (ANALYSIS.md section 3)."""

    contrast_types: list[ContrastType] = Field(
        default_factory=lambda: ["between_group", "correlation", "within_group"])
    # How a finding's direction is coded in the matrices: between-group directions are
    # kept; associations with symptom severity are read as "higher/lower with more
    # CIPN", as the review coded perfusion and connectivity correlations.
    direction_map: dict[str, str] = Field(default_factory=lambda: {
        "patients>controls": "patients>controls",
        "patients<controls": "patients<controls",
        "positive_association": "patients>controls",
        "negative_association": "patients<controls",
        "activation": "patients>controls",
    })
    exclude_experiments: list[str] = Field(default_factory=list)
    atlas_distance_mm: float = Field(default=10.0, gt=0)


class ProportionsConfig(_Strict):
    """Proportion meta-analysis settings (ANALYSIS.md section 4)."""

    levels: list[Literal["experiment", "study"]] = Field(default_factory=lambda: ["experiment", "study"])
    ci_level: float = Field(default=0.95, gt=0, lt=1)
    subgroups: list[str] = Field(default_factory=lambda: ["patients>controls", "patients<controls"])


class Labels(_Strict):
    """Display words for the two groups."""

    patients: str = "patients"
    controls: str = "controls"


#: What a dataset is for; the report's wording and key findings depend on it.
ROLES = ("review", "positive_control", "published", "database", "other")


class DatasetConfig(_Strict):
    """Validated content of ``dataset.yaml``.

    The prose the report shows about a dataset comes from here, never from
    code: ``title`` and ``description`` (one paragraph), ``question`` (what the
    meta-analysis asks), ``overview`` (Markdown: what the data are and where
    they come from) and ``missing`` (Markdown: what is missing or assumed and
    what that prevents). ``role`` says what the dataset is for (a review
    being rebuilt, a positive control expected to converge, a published
    analysis to reproduce, a coordinate database, anything else).
    """

    name: SafeName
    title: str
    description: str = ""
    question: str = ""
    overview: str = ""
    missing: str = ""
    role: Literal[ROLES] = "other"  # type: ignore[valid-type]
    source: Literal["tables", "nimare_json"] = "tables"
    nimare_json: str | None = None
    labels: Labels = Field(default_factory=Labels)
    networks: list[Network]
    roi_lookup: str | None = None
    ale: ALEConfig = Field(default_factory=ALEConfig)
    roi: ROIConfig = Field(default_factory=ROIConfig)
    proportions: ProportionsConfig = Field(default_factory=ProportionsConfig)
    seed: Seed = 0
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("roi_lookup")
    @classmethod
    def _relative_lookup(cls, value: str | None) -> str | None:
        # The lookup is read from the project: a path that leaves it (absolute,
        # '..', a drive) could make a dataset read any file on the machine.
        if value is None:
            return value
        pure = PurePosixPath(value.replace("\\", "/"))
        if pure.is_absolute() or ".." in pure.parts or re.match(r"^[A-Za-z]:", value) or not pure.parts:
            raise ValueError("must be a path relative to the project root that stays inside it "
                             "(e.g. data/lookups/region_network_v1.csv)")
        return value

    @field_validator("nimare_json")
    @classmethod
    def _plain_resource(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*\.json", value):
            raise ValueError("must be the file name of a JSON file in NiMARE's resources folder "
                             "(e.g. nidm_pain_dset.json), not a path")
        return value

    @field_validator("networks")
    @classmethod
    def _unique_networks(cls, value: list[Network]) -> list[Network]:
        keys = [n.key for n in value]
        if len(set(keys)) != len(keys):
            raise ValueError(f"network keys must be unique, got {keys}")
        if not value:
            raise ValueError("list at least one network")
        return value

    @property
    def network_keys(self) -> list[str]:
        """Network keys in display order."""
        return [n.key for n in self.networks]

    @property
    def network_labels(self) -> dict[str, str]:
        """Mapping from network key to display label."""
        return {n.key: n.label for n in self.networks}

    def direction_label(self, code: str) -> str:
        """Human label for a direction code, in this dataset's group words."""
        p, c = self.labels.patients, self.labels.controls
        return {
            "patients>controls": f"{p} > {c}",
            "patients<controls": f"{p} < {c}",
            "positive_association": "positive association",
            "negative_association": "negative association",
            "mixed": "mixed",
            "unknown": "unknown",
        }.get(code, code)


def _deep_update(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_update(out[key], value)
        else:
            out[key] = value
    return out


#: How to fix the commonest pydantic errors, by error type.
_HINTS = {
    "extra_forbidden": "unknown key; check its spelling against docs/TABLES.md (dataset.yaml keys)",
    "missing": "this key is required",
    "int_type": "write a whole number",
    "int_parsing": "write a whole number",
    "int_from_float": "write a whole number",
    "float_parsing": "write a number",
    "bool_parsing": "write true or false",
    "literal_error": "not an allowed value",
    "string_pattern_mismatch": "use letters, digits, '_' and '-' only (it becomes part of file names)",
    "greater_than_equal": "too small",
    "less_than_equal": "too large",
    "dict_type": "write a mapping (key: value lines)",
    "list_type": "write a list ([a, b] or '- a' lines)",
    "model_type": "write a mapping of the keys listed in docs/TABLES.md",
}


def load_config(
    dataset: str,
    overrides: dict[str, Any] | None = None,
    root: Path | str | None = None,
) -> tuple[DatasetConfig, DatasetPaths]:
    """Load and validate a dataset's ``dataset.yaml``.

    Parameters
    ----------
    dataset : str
        Dataset name (``"cipn"``); never a path (see
        :func:`painmeta.paths.check_dataset_name`).
    overrides : dict, optional
        Nested values that replace those of the file (e.g. from Papermill:
        ``{"ale": {"seed": 7}}``). Validated like the file; an error in them
        is reported as an override error.
    root : path-like, optional
        Project root.

    Returns
    -------
    config : DatasetConfig
    paths : DatasetPaths

    Raises
    ------
    InputError
        If the name is invalid, the file is missing, unreadable (bounded YAML
        reader: see :mod:`painmeta.yamlio`) or does not validate, or ``name``
        differs from the folder name; the message names the file, the line
        and each offending key, and its ``problems`` list them.
    """
    paths = dataset_paths(dataset, root=root)
    if not paths.raw.is_dir():
        raise InputError(
            f"{paths.raw}: no dataset named {paths.name!r} (no such folder). Create one with "
            f"'python -m painmeta new-dataset {paths.name}' or check the name.")
    return config_from_folder(paths.raw, overrides, root), paths


def config_from_folder(folder: Path, overrides: dict[str, Any] | None = None,
                       root: Path | str | None = None) -> DatasetConfig:
    """Load and validate ``<folder>/dataset.yaml`` of a dataset folder, wherever it is.

    :func:`load_config` resolves a dataset name and calls this; tools that
    build a dataset (and tests) call it on a folder before it is installed
    under ``data/raw/``. The folder's name must be a valid dataset name and
    equal the file's ``name``. Nothing is written.

    Parameters
    ----------
    folder : pathlib.Path
    overrides : dict, optional
    root : path-like, optional
        Project root (for ``roi_lookup``).

    Returns
    -------
    DatasetConfig

    Raises
    ------
    InputError
        As :func:`load_config`.
    """
    from painmeta.paths import check_dataset_name

    folder = Path(folder)
    folder_name = check_dataset_name(folder.name)
    cfg_file = folder / "dataset.yaml"
    if not cfg_file.is_file():
        raise InputError(
            f"{cfg_file}: dataset config not found. Each dataset needs "
            f"data/raw/<dataset>/dataset.yaml ('python -m painmeta new-dataset NAME' writes a commented one).")
    doc = load_yaml(cfg_file)
    raw = doc.data if doc.data is not None else {}
    if not isinstance(raw, dict):
        _raise([Problem(str(cfg_file), 1, None, "", "the file must be a mapping of keys (name: ..., title: ...)")])
    if overrides is not None and not isinstance(overrides, dict):
        _raise([Problem("config_overrides", None, None, str(overrides)[:80],
                        "config_overrides must be a mapping such as {\"ale\": {\"seed\": 7}}")])
    if overrides:
        raw = _deep_update(raw, overrides)
    try:
        config = DatasetConfig.model_validate(raw)
    except ValidationError as exc:
        _raise(validation_problems(doc, exc, _HINTS, overrides=overrides or None))
    problems = []
    if config.name != folder_name:
        where = "config_overrides" if overrides and "name" in overrides else str(cfg_file)
        problems.append(Problem(where, doc.line_of(("name",)) if where == str(cfg_file) else None, "name",
                                config.name, f"must equal the dataset's folder name {folder_name!r}; "
                                             "rename the folder or change 'name'", label="key"))
    if config.roi_lookup:
        # The validator above keeps the path inside the project lexically (relative, no '..');
        # links the project's owner put in the tree (e.g. a shared data/lookups) are followed.
        base = Path(root).resolve() if root else project_root()
        target = base / config.roi_lookup
        if not target.is_file():
            problems.append(Problem(str(cfg_file), doc.line_of(("roi_lookup",)), "roi_lookup", config.roi_lookup,
                                    "file not found; give a path relative to the project root, e.g. "
                                    "data/lookups/region_network_v1.csv", label="key"))
    _raise(problems)
    return config


def _raise(problems: list[Problem]) -> None:
    if problems:
        head = f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in the dataset config:"
        raise InputError("\n".join([head, *(f"  - {p}" for p in problems)]), problems)
