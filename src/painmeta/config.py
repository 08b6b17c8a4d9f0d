"""Dataset configuration: one validated YAML file per dataset.

``data/raw/<dataset>/dataset.yaml`` is the single source of truth for a
dataset's parameters (networks, lookup table, ALE settings, seeds, models).
Notebooks receive only the dataset name and optional overrides from Papermill;
:func:`load_config` applies the overrides on top of the file and validates the
result, so a typo in an override fails as loudly as a typo in the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from painmeta.errors import InputError
from painmeta.paths import DatasetPaths, dataset_paths

#: Direction codes used in every table. Display labels come from the config.
DIRECTIONS = (
    "patients>controls",
    "patients<controls",
    "positive_association",
    "negative_association",
    "mixed",
    "unknown",
)


#: A Dask scheduler address (same rule as painmeta.ale.executor).
_SCHEDULER_ADDRESS = re.compile(r"^(tcp|tls|ws|wss|ucx)://[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Network(_Strict):
    """One predefined ROI category (network)."""

    key: str
    label: str


class ALEModelConfig(_Strict):
    """One ALE model: which experiments enter and how many Monte Carlo iterations."""

    contrast_types: list[str] = Field(default_factory=lambda: ["between_group"])
    directions: list[str] | None = None  # None = any direction
    # Only these experiment ids (None = every experiment that passes the other filters): a subset
    # such as one Sleuth file of a published analysis, or a sensitivity variant of one experiment.
    experiments: list[str] | None = None
    n_iters: int = Field(default=1000, ge=1)
    description: str = ""


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
    n_iters: int = Field(default=10000, ge=1)
    voxel_thresh: float = Field(default=0.001, gt=0, lt=1)  # two-sided, on the subtraction
    min_cluster_mm3: float = Field(default=200.0, ge=0)
    group_n_iters: int | None = Field(default=None, ge=1)  # each model's own ALE (default: the model's)
    description: str = ""


class ALEFSNConfig(_Strict):
    """Fail-safe N of significant clusters (``ale.fsn``; Acar et al. 2018)."""

    enabled: bool = False
    n_drawers: int = Field(default=10, ge=1)
    max_factor: float = Field(default=5.0, gt=0)
    n_iters: int | None = Field(default=None, ge=1)  # per refit (default: the model's)
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
    seed: int | None = Field(default=None, ge=0)

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
    """ALE parameters (ANALYSIS.md section 2)."""

    kernel: Literal["sample_size"] = "sample_size"
    voxel_thresh: float = Field(default=0.001, gt=0, lt=1)
    cluster_alpha: float = Field(default=0.05, gt=0, lt=1)
    min_experiments: int = Field(default=2, ge=1)
    recommended_experiments: int = Field(default=17, ge=1)
    seed: int = 0
    include_unverified: bool = True
    n_cores: int = Field(default=2, ge=1)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    # Primary engine of the ALE stage (the other one cross-checks it).
    engine: Literal["nimare", "inhouse"] = "nimare"
    # Cross-check budget for very large datasets: NiMARE runs only this many
    # iterations, compared exactly with the in-house engine on the same draws;
    # the in-house analysis keeps all of a model's iterations (needs engine: inhouse).
    crosscheck_max_iters: int | None = Field(default=None, ge=10)
    power: ALEPowerConfig = Field(default_factory=ALEPowerConfig)
    models: dict[str, ALEModelConfig] = Field(default_factory=dict)
    contrasts: dict[str, ALEContrastConfig] = Field(default_factory=dict)
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
        return self


class ROIConfig(_Strict):
    """ROI synthesis rules (ANALYSIS.md section 3)."""

    contrast_types: list[str] = Field(
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

    name: str
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
    seed: int = 0
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("networks")
    @classmethod
    def _unique_networks(cls, value: list[Network]) -> list[Network]:
        keys = [n.key for n in value]
        if len(set(keys)) != len(keys):
            raise ValueError(f"network keys must be unique, got {keys}")
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


def load_config(
    dataset: str | Path,
    overrides: dict[str, Any] | None = None,
    root: Path | str | None = None,
) -> tuple[DatasetConfig, DatasetPaths]:
    """Load and validate a dataset's ``dataset.yaml``.

    Parameters
    ----------
    dataset : str or path-like
        Dataset name (``"cipn"``) or path to its raw folder.
    overrides : dict, optional
        Nested values that replace those of the file (e.g. from Papermill:
        ``{"ale": {"seed": 7}}``).
    root : path-like, optional
        Project root.

    Returns
    -------
    config : DatasetConfig
    paths : DatasetPaths

    Raises
    ------
    InputError
        If the file is missing or does not validate; the message names the
        file and each offending key.
    """
    paths = dataset_paths(dataset, root=root)
    cfg_file = paths.raw / "dataset.yaml"
    if not cfg_file.is_file():
        raise InputError(
            f"{cfg_file}: dataset config not found. Each dataset needs "
            "data/raw/<dataset>/dataset.yaml (copy data/raw/cipn/dataset.yaml as a start)."
        )
    try:
        raw = yaml.safe_load(cfg_file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{cfg_file}: not valid YAML ({exc}).") from exc
    if overrides:
        raw = _deep_update(raw, overrides)
    try:
        config = DatasetConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [
            f"{cfg_file}: key '{'.'.join(str(p) for p in err['loc'])}': {err['msg']}"
            for err in exc.errors()
        ]
        raise InputError("\n".join(lines)) from exc
    return config, paths
