"""Start a dataset: ``python -m painmeta new-dataset NAME [--from-sleuth FILE ...]``.

Without files it writes an empty scaffold: every table with its header and a
commented ``dataset.yaml`` to fill in. With GingerALE/Sleuth files it builds
the tables from them:

* the files are copied into ``data/raw/NAME/sleuth/`` so every source stays
  resolvable from the dataset itself;
* ``experiments.csv``: one row per Sleuth experiment (its ``//`` name lines,
  joined), ``n_ale`` from ``// Subjects=``, contrast type ``within_group``
  unless ``--contrast-type`` says otherwise, direction ``unknown``,
  modality ``unknown`` (a Sleuth file says neither);
* ``studies.csv``: one row per study, the label before the first ``:`` of
  the experiment names (the GingerALE "Study: contrast" convention; a name
  without ``:`` is its own study);
* ``foci.csv``: one row per coordinate, as written in the file (Talairach
  foci stay Talairach; the extraction stage converts them with the transform
  recorded in ``studies.csv``, ``tal2icbm_other`` as GingerALE);
* ``findings.csv``: header only (Sleuth files hold no region-level findings);
* ``dataset.yaml``: one ALE model per Sleuth file (or per ``// Reference=``
  block of a file), cluster-forming p < 0.001, cluster-level FWE 0.05,
  1,000 Monte Carlo iterations, seed 0, role ``other``, and title/question
  placeholders that say they are placeholders.

Every row's ``source`` names the copied file and the line(s). Nothing is
invented: what a Sleuth file does not say is left empty or marked unknown and
``evidence`` is ``unverified`` (not checked against the papers). An existing
dataset is never overwritten. The new dataset is validated before the
command reports success; if validation fails the folder is removed again.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from painmeta.errors import InputError
from painmeta.paths import dataset_paths
from painmeta.schemas import CONTRAST_TYPES, SCHEMAS

#: Monte Carlo iterations written into a new dataset's models (GingerALE's usual
#: 1,000; raise to 10,000 for a publication, see docs/TABLES.md).
DEFAULT_N_ITERS = 1000
DEFAULT_SEED = 0
#: The five networks of the project's ROI synthesis and the lookup that maps regions to them.
DEFAULT_NETWORKS = (
    ("brainstem_pag", "Brainstem/PAG"),
    ("cerebellum", "Cerebellum"),
    ("dmn", "Default mode network"),
    ("prefrontal", "Lateral/medial PFC (executive)"),
    ("sensorimotor", "Primary sensorimotor (S1/M1)"),
)
DEFAULT_LOOKUP = "data/lookups/region_network_v1.csv"
PLACEHOLDER = "PLACEHOLDER"
TABLE_COLUMNS = {name: list(SCHEMAS[name].columns) for name in ("studies", "experiments", "foci", "findings")}
_YEAR = re.compile(r"(?<![0-9])(19[5-9][0-9]|20[0-9][0-9])(?![0-9])")


@dataclass
class _Model:
    name: str
    file: str
    space: str
    experiments: list[str]
    n_foci: int
    n_subjects: int


def _slug(text: str, used: set[str], prefix: str) -> str:
    """An id (letters, digits, '_', '.', '-'; starts with a letter) unique within ``used``."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-")[:60] or prefix
    if not base[0].isalpha():
        base = f"{prefix}_{base}"
    slug, k = base, 2
    while slug in used:
        slug, k = f"{base}_{k}", k + 1
    used.add(slug)
    return slug


def _model_name(text: str, used: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_-")[:56] or "model"
    if not base[0].isalnum():
        base = f"m{base}"
    name, k = base, 2
    while name in used:
        name, k = f"{base}_{k}", k + 1
    used.add(name)
    return name


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _q(text: str) -> str:
    """A YAML double-quoted scalar."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def _block(text: str, indent: int = 2) -> str:
    pad = " " * indent
    return "|\n" + "\n".join(pad + line if line else "" for line in text.splitlines()) + "\n"


def _networks_yaml() -> str:
    return "".join(f"  - {{key: {k}, label: {_q(v)}}}\n" for k, v in DEFAULT_NETWORKS)


def _config_text(name: str, models: list[_Model], contrast_type: str, overview: str, missing: str,
                 command: str) -> str:
    lines = [
        f"# Dataset config of '{name}': the single source of truth for its parameters.",
        f"# Written by: {command}",
        "# Edit freely; `python -m painmeta validate --dataset " + name + "` checks it. Keys: docs/TABLES.md.",
        f"name: {name}  # must equal the folder name",
        f"title: {_q(f'{PLACEHOLDER}: title of this meta-analysis (edit data/raw/{name}/dataset.yaml)')}",
        f"description: {_q(f'{PLACEHOLDER}: one paragraph on what this dataset is (edit dataset.yaml)')}",
        f"question: {_q(f'{PLACEHOLDER}: the question this meta-analysis asks (edit dataset.yaml)')}",
        "overview: " + _block(overview).rstrip("\n"),
        "missing: " + _block(missing).rstrip("\n"),
        "role: other  # review | positive_control | published | database | other",
        "source: tables",
        "labels: {patients: patients, controls: controls}  # words for the two groups in the report",
        "# The five ROI categories of the project's synthesis, and the lookup that maps regions to them.",
        "networks:",
        _networks_yaml().rstrip("\n"),
        f"roi_lookup: {DEFAULT_LOOKUP}",
        f"seed: {DEFAULT_SEED}",
        "ale:",
        "  kernel: sample_size        # Eickhoff 2009 sample-size-dependent FWHM",
        "  voxel_thresh: 0.001        # cluster-forming threshold, p < 0.001 uncorrected",
        "  cluster_alpha: 0.05        # cluster-level FWE",
        "  min_experiments: 2         # ALE needs convergence across >= 2 experiments",
        "  recommended_experiments: 17  # Eickhoff et al. 2016: ~17-20 experiments for power",
        f"  seed: {DEFAULT_SEED}                    # Monte Carlo seed (any whole number 0 .. 2**32-1)",
        "  include_unverified: true   # experiments are 'unverified' until checked against the papers",
        "  n_cores: 2",
    ]
    if models:
        lines.append("  models:                    # one per Sleuth file (or // Reference block)")
        for m in models:
            lines.append(f"    {m.name}:")
            desc = f"{m.file}: {_plural(len(m.experiments), 'experiment')}, {_plural(m.n_foci, 'focus', 'foci')}"
            lines.append(f"      description: {_q(desc)}")
            lines.append(f"      contrast_types: [{contrast_type}]")
            if len(models) > 1:
                lines.append("      experiments:")
                lines += [f"        - {e}" for e in m.experiments]
            lines.append(f"      n_iters: {DEFAULT_N_ITERS}"
                         "           # Monte Carlo iterations (10000 for a publication)")
    else:
        lines += [
            "  models: {}                 # add one entry per ALE model, e.g.:",
            "  #  all_between:",
            "  #    description: \"All between-group experiments\"",
            "  #    contrast_types: [between_group]",
            "  #    directions: [\"patients>controls\"]   # optional; omit for any direction",
            f"  #    n_iters: {DEFAULT_N_ITERS}",
        ]
    return "\n".join(lines) + "\n"


def _write_tables(folder: Path, tables: dict[str, list[dict]]) -> None:
    from painmeta.paths import write_tables

    frames = {f"{name}.csv": pd.DataFrame(rows, columns=TABLE_COLUMNS[name]) for name, rows in tables.items()}
    write_tables(folder, frames)


def _from_sleuth(files: list[Path], target: Path, contrast_type: str
                 ) -> tuple[dict[str, list[dict]], list[_Model], list[str]]:
    """Tables, models and notes from Sleuth files (already checked to exist)."""
    from painmeta.sleuth import _fmt, read_sleuth_blocks

    names = [f.name for f in files]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"two Sleuth files share the name {dup[0]!r}; they are copied into "
                         "data/raw/NAME/sleuth/ side by side. Fix: rename one of them.")
    used_names: dict[str, tuple[Path, int]] = {}
    studies: list[dict] = []
    experiments: list[dict] = []
    foci: list[dict] = []
    models: list[_Model] = []
    study_ids: dict[str, str] = {}
    used_ids: set[str] = set()
    used_study_ids: set[str] = set()
    used_models: set[str] = set()
    notes: list[str] = []
    for path in files:
        rel = f"sleuth/{path.name}"
        blocks = read_sleuth_blocks(path, used_names)
        for b, block in enumerate(blocks, 1):
            label = path.stem if len(blocks) == 1 else f"{path.stem}_block{b}"
            space = "TAL" if block.space == "Talairach" else "MNI"
            model_exps: list[str] = []
            n_kept = 0
            for exp_name in block.experiment_ids:
                rows = block.foci[block.foci["experiment_id"] == exp_name]
                # From the experiment's first '//' name line to its last coordinate.
                first, last = int(used_names[exp_name][1]), int(rows["line"].max())
                study_label = exp_name.split(":", 1)[0].strip() if ":" in exp_name else exp_name
                if study_label not in study_ids:
                    sid = _slug(study_label, used_study_ids, "S")
                    study_ids[study_label] = sid
                    years = sorted(set(_YEAR.findall(study_label)))
                    year = years[0] if len(years) == 1 else None
                    studies.append({
                        "study_id": sid, "first_author": study_label, "year": year,
                        "identified": "true",
                        "population": "unknown (not stated in the Sleuth file)",
                        "cancer_type": "unknown (not stated in the Sleuth file)",
                        "syntheses": "ale", "evidence": "unverified",
                        "note": ("study label as written in the Sleuth file (first_author holds the whole label"
                                 + ("; year read from it" if year else "") + "); not checked against the paper"),
                        "source": f"{rel}, experiment at line {first}",  # its first '//' name line
                        "tal_transform": "tal2icbm_other" if space == "TAL" else None,
                    })
                elif space == "TAL":
                    row = next(s for s in studies if s["study_id"] == study_ids[study_label])
                    row["tal_transform"] = "tal2icbm_other"
                eid = _slug(exp_name, used_ids, "E")
                model_exps.append(eid)
                experiments.append({
                    "experiment_id": eid, "study_id": study_ids[study_label], "contrast": exp_name,
                    "contrast_type": contrast_type, "direction": "unknown", "modality": "unknown",
                    "n_ale": str(block.sample_sizes[exp_name]), "space": space, "include": "true",
                    "evidence": "unverified",
                    "evidence_note": (f"from a Sleuth file: contrast_type {contrast_type!r} set by new-dataset, "
                                      "direction and modality not stated; check against the paper"),
                    "source": f"{rel}, lines {first}-{last} (Subjects={block.sample_sizes[exp_name]})",
                })
                seen: dict[tuple[float, float, float], int] = {}
                repeats = []
                k = 0
                for rec in rows.itertuples(index=False):
                    xyz = (round(rec.x, 3), round(rec.y, 3), round(rec.z, 3))
                    if xyz in seen:
                        # The tables refuse a focus listed twice in one experiment. Leave the repeat
                        # out, and say so: under the non-additive MA (max over an experiment's foci)
                        # a repeated focus does not change any map.
                        repeats.append(f"line {int(rec.line)} repeats line {seen[xyz]} "
                                       f"({_fmt(rec.x)} {_fmt(rec.y)} {_fmt(rec.z)})")
                        continue
                    seen[xyz] = int(rec.line)
                    k += 1
                    n_kept += 1
                    foci.append({
                        "focus_id": f"{eid}_{k:03d}", "experiment_id": eid, "x": _fmt(rec.x), "y": _fmt(rec.y),
                        "z": _fmt(rec.z), "space": space, "evidence": "unverified",
                        "source": f"{rel}, line {int(rec.line)}",
                    })
                if repeats:
                    experiments[-1]["evidence_note"] += ("; left out as a repeated focus of this experiment: "
                                                         + "; ".join(repeats))
                    notes.append(f"{rel}, experiment {exp_name!r}: " + "; ".join(repeats)
                                 + " - left out (a focus listed twice; it changes no ALE map)")
            models.append(_Model(_model_name(label, used_models), rel + (f" block {b}" if len(blocks) > 1 else ""),
                                 space, model_exps, n_kept,
                                 int(sum(block.sample_sizes.values()))))
            if space == "TAL":
                notes.append(f"{rel}{f' block {b}' if len(blocks) > 1 else ''}: Talairach; the extraction stage "
                             "converts its foci to MNI with the inverse Lancaster transform (tal2icbm_other, as "
                             "GingerALE), recorded in studies.csv and in the processed foci")
    return {"studies": studies, "experiments": experiments, "foci": foci, "findings": []}, models, notes


def new_dataset(name: str, sleuth_files: list[str | Path] | None = None,
                contrast_type: str = "within_group", command: str | None = None) -> Path:
    """Create ``data/raw/<name>/`` and return it; see :func:`create_dataset`."""
    return create_dataset(name, sleuth_files, contrast_type, command)[0]


def create_dataset(name: str, sleuth_files: list[str | Path] | None = None,
                   contrast_type: str = "within_group", command: str | None = None) -> tuple[Path, list[str]]:
    """Create ``data/raw/<name>/``: an empty scaffold, or tables built from Sleuth files.

    Parameters
    ----------
    name : str
        Dataset name (a name, not a path; see :func:`painmeta.paths.check_dataset_name`).
    sleuth_files : list of path-like, optional
        GingerALE/Sleuth text files; none gives an empty scaffold.
    contrast_type : str
        Contrast type of every experiment (one of :data:`painmeta.schemas.CONTRAST_TYPES`).
    command : str, optional
        The command line, recorded in ``dataset.yaml`` and ``README.md``.

    Returns
    -------
    folder : pathlib.Path
        The new raw folder.
    notes : list of str
        What the user should know (Talairach blocks, foci listed twice and left out); also written
        into ``dataset.yaml`` (overview) and ``README.md``.

    Raises
    ------
    InputError
        Invalid name, existing dataset, unreadable or invalid Sleuth file (file
        and line), or a dataset that does not validate.
    """
    paths = dataset_paths(name)
    if contrast_type not in CONTRAST_TYPES:
        raise InputError(f"contrast type {contrast_type!r} is not one of {', '.join(CONTRAST_TYPES)}")
    target = paths.raw
    if target.exists() or target.is_symlink():
        raise InputError(f"{target}: dataset {name!r} already exists; new-dataset never overwrites. Fix: choose "
                         "another name, or delete that folder yourself if you mean to start again.")
    files = [Path(f) for f in (sleuth_files or [])]
    for f in files:
        if not f.is_file():
            raise InputError(f"{f}: Sleuth file not found. Fix: check the path.")
    command = command or f"python -m painmeta new-dataset {name}"
    if files:
        tables, models, notes = _from_sleuth(files, target, contrast_type)  # validates before anything is written
        n_exp, n_foci = len(tables["experiments"]), len(tables["foci"])
        overview = (f"Built by `painmeta new-dataset` from {len(files)} GingerALE/Sleuth file(s) "
                    f"({', '.join(f'`sleuth/{f.name}`' for f in files)}): {len(tables['studies'])} studies, "
                    f"{n_exp} experiments, {n_foci} foci. Every row's source names the file and line.")
        if notes:
            overview += "\n\n" + "\n".join(f"- {n}" for n in notes)
        missing = ("A Sleuth file holds coordinates and sample sizes only. Not given, so left empty or unknown: "
                   "study characteristics (population, design, group sizes), each experiment's contrast type "
                   f"(set to `{contrast_type}` for all by new-dataset), direction and modality (`unknown`), "
                   "region-level findings (so no ROI synthesis or proportions), risk of bias, PRISMA counts and "
                   "reported results. Studies are grouped by the label before ':' in the experiment names; "
                   "experiments of one paper with different labels count as different studies until merged in "
                   "studies.csv. Nothing here is checked against the papers (evidence: unverified).")
    else:
        tables = {t: [] for t in TABLE_COLUMNS}
        models, notes = [], []
        overview = f"{PLACEHOLDER}: what the data are and where they come from (Markdown)."
        missing = f"{PLACEHOLDER}: what is missing or assumed, and what that prevents (Markdown)."
    target.mkdir(parents=True)
    try:
        if files:
            (target / "sleuth").mkdir()
            for f in files:
                shutil.copyfile(f, target / "sleuth" / f.name)
        _write_tables(target, tables)
        (target / "dataset.yaml").write_text(_config_text(name, models, contrast_type, overview, missing, command),
                                             encoding="utf-8")
        readme = [f"# Dataset `{name}`", "", f"Created with `{command}`.", ""]
        if files:
            readme += ["Sleuth files copied here (SHA-256):", ""]
            readme += [f"- `sleuth/{f.name}` {_sha256(target / 'sleuth' / f.name)}" for f in files]
            readme += [""]
        if notes:
            readme += ["Notes:", "", *(f"- {n}" for n in notes), ""]
        readme += ["Fill in the tables (docs/TABLES.md) and dataset.yaml, then run",
                   f"`python -m painmeta validate --dataset {name}` and `make all DATASET={name}`.", ""]
        (target / "README.md").write_text("\n".join(readme), encoding="utf-8")
        from painmeta.extraction import format_problems, validate

        problems = validate(name)
        if problems:
            raise InputError(f"the new dataset does not validate (nothing kept):\n{format_problems(problems)}",
                             problems)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # we created it above: nothing else is in it
        raise
    return target, notes


def _cmd_new_dataset(args: argparse.Namespace) -> int:
    if not args.dataset:
        raise InputError("give the new dataset's name: python -m painmeta new-dataset NAME [--from-sleuth FILE ...]")
    parts = ["python -m painmeta new-dataset", args.dataset]
    if args.from_sleuth:
        parts += ["--from-sleuth", *(Path(f).name for f in args.from_sleuth)]
    if args.contrast_type != "within_group":
        parts += ["--contrast-type", args.contrast_type]
    target, notes = create_dataset(args.dataset, args.from_sleuth, args.contrast_type, command=" ".join(parts))
    print(f"created {target}")
    for note in notes:
        print(f"note: {note}")
    for p in sorted(target.rglob("*")):
        if p.is_file():
            print(f"  {p.relative_to(target)}")
    print(f"next: edit {target / 'dataset.yaml'} (title, question), check the tables, then "
          f"'python -m painmeta validate --dataset {args.dataset}' and 'make all DATASET={args.dataset}'")
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add the ``new-dataset`` command."""
    from painmeta.cli import add_dataset_argument

    p = sub.add_parser(
        "new-dataset", help="start data/raw/NAME/: empty scaffold, or tables from GingerALE/Sleuth files",
        description="Create data/raw/NAME/ with every table and a commented dataset.yaml. With --from-sleuth, "
                    "build studies/experiments/foci from GingerALE Sleuth files (copied into the dataset's "
                    "sleuth/ folder; every row's source names file and line) and one ALE model per file. "
                    "Never overwrites an existing dataset.")
    add_dataset_argument(p, default=None, legacy_positional=True)
    p.add_argument("--from-sleuth", nargs="+", metavar="FILE", default=None,
                   help="GingerALE/Sleuth text file(s): '// Reference=MNI|Talairach', then per experiment "
                        "'// name' line(s), '// Subjects=N' and 'x y z' lines")
    p.add_argument("--contrast-type", choices=CONTRAST_TYPES, default="within_group",
                   help="contrast type of every experiment (a Sleuth file does not say; default: within_group)")
    p.set_defaults(func=_cmd_new_dataset)
