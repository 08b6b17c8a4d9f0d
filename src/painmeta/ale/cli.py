"""``python -m painmeta ale``: run ALE on Sleuth files or on a dataset's models.

Sleuth mode (one model from GingerALE text files)::

    python -m painmeta ale --sleuth a.txt [b.txt ...] --out DIR --n-iters 1000 \\
        --seed 1 --engine nimare|inhouse [--voxel-thresh 0.001] [--cluster-alpha 0.05] [--n-cores 2]

writes ``ale.nii.gz``, ``p.nii.gz``, ``z.nii.gz``, ``clusters.nii.gz``,
thresholded maps for each inference (``ale_fwe-size``, ``ale_fwe-mass``,
``ale_fwe-voxel``) with their -log10 FWE p maps (``logp_fwe-*``),
``clusters.csv`` (clusters surviving the primary inference; header only when
none survives), ``clusters_all.csv``, ``null.csv`` (one row per iteration),
``summary.json`` and contribution tables when clusters survive.

``--inference cluster_size|cluster_mass|voxel`` picks the primary FWE
correction (default cluster_size); ``--focus-placement exact`` centres kernels
at the exact coordinates (GingerALE; in-house engine only).

Dataset mode (every configured model of ``data/processed/<dataset>``)::

    python -m painmeta ale --dataset cipn --out DIR [--engine ...] [--crosscheck] [--n-iters N]

writes one folder per model plus ``models.csv`` (and ``crosscheck.csv``).

``--scheduler local|tcp://HOST:PORT`` runs the in-house Monte Carlo on Dask
(default: in-process, or the dataset config's ``ale.executor``); results are
byte-identical wherever it runs (docs/DASK.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, get_args

import numpy as np

from painmeta.config import ALE_INFERENCE, FOCUS_PLACEMENT
from painmeta.errors import InputError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {value}")
    return value


def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``ale`` sub-command to the top-level parser."""
    p = subparsers.add_parser(
        "ale",
        help="activation likelihood estimation (NiMARE or in-house engine)",
        description=(
            "ALE with sample-size kernels (Eickhoff 2009), non-additive MA (Turkeltaub 2012), "
            "MNI152 2 mm mask, cluster-forming p < voxel-thresh and Monte Carlo cluster-level FWE."
        ),
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--sleuth", nargs="+", metavar="FILE", help="GingerALE Sleuth text file(s), one model")
    from painmeta.cli import dataset_name, output_dir, safe_name, seed_value

    src.add_argument("--dataset", metavar="NAME", type=dataset_name,
                     help="run every configured model of a processed dataset (a name under data/raw/)")
    p.add_argument("--out", required=True, metavar="DIR", type=output_dir,
                   help="output folder (created; must not be an existing file)")
    p.add_argument("--n-iters", type=_positive_int, default=None,
                   help="Monte Carlo iterations (required with --sleuth; overrides the config with --dataset)")
    p.add_argument("--seed", type=seed_value, default=None,
                   help="Monte Carlo seed, 0 .. 2**32-1 (default 0, or the dataset config's)")
    p.add_argument("--engine", choices=("nimare", "inhouse"), default=None,
                   help="primary ALE engine (default: nimare; dataset mode: the config's ale.engine)")
    p.add_argument("--voxel-thresh", type=_probability, default=None, help="cluster-forming p (default 0.001)")
    p.add_argument("--cluster-alpha", type=_probability, default=None, help="cluster-level FWE alpha (default 0.05)")
    p.add_argument("--n-cores", type=_positive_int, default=None, help="cores for the Monte Carlo (default 2)")
    p.add_argument("--name", default=None, type=safe_name,
                   help="model name in outputs (Sleuth mode; letters, digits, '_', '-'; default: first file's stem)")
    p.add_argument("--no-contributions", action="store_true", help="skip jackknife / focus-count tables")
    p.add_argument("--inference", choices=get_args(ALE_INFERENCE), default=None,
                   help="primary FWE correction that decides the surviving clusters "
                        "(default cluster_size, or the dataset config's); all three are always written")
    p.add_argument("--focus-placement", choices=get_args(FOCUS_PLACEMENT), default=None,
                   help="kernel centre: nearest voxel (NiMARE, default) or the exact coordinate "
                        "(GingerALE; in-house engine only)")
    p.add_argument("--crosscheck", action="store_true", help="dataset mode: run both engines and compare")
    p.add_argument("--progress", action="store_true", help="progress bar (in-house engine)")
    p.add_argument("--scheduler", default=None, metavar="SPEC",
                   help="where the in-house Monte Carlo runs: inprocess (default), local (a Dask LocalCluster) "
                        "or a Dask scheduler address tcp://HOST:PORT; results are identical whatever it is "
                        "(dataset mode default: the config's ale.executor)")
    p.add_argument("--n-workers", type=_positive_int, default=None,
                   help="workers of --scheduler local (default: CPU count)")
    p.add_argument("--fsn", action="store_true",
                   help="fail-safe N of significant clusters (Acar 2018; in-house refits; dataset mode: also "
                        "when the config's ale.fsn.enabled is true)")
    p.add_argument("--fsn-drawers", type=_positive_int, default=None, help="file drawers (default 10 / config)")
    p.add_argument("--fsn-max-factor", type=float, default=None,
                   help="at most this many times the experiments as null experiments (default 5 / config)")
    p.add_argument("--fsn-n-iters", type=_positive_int, default=None,
                   help="Monte Carlo iterations per FSN refit (default: the model's)")
    p.add_argument("--fsn-alpha", type=_probability, default=None,
                   help="significance level of the FSN refits (default: the analysis' cluster alpha / the "
                        "config's ale.fsn.cluster_alpha)")
    p.add_argument("--no-contrasts", action="store_true", help="dataset mode: skip the config's ale.contrasts")
    p.set_defaults(func=run_cli)
    return p


def _mask_check(foci_xyz: np.ndarray) -> int:
    """Number of foci whose voxel lies outside the MNI152 2 mm brain mask."""
    from painmeta.ale.geometry import load_mask

    geom = load_mask()
    ijk = geom.mm2vox(foci_xyz)
    inside = np.all((ijk >= 0) & (ijk < np.array(geom.shape)), axis=1)
    ok = np.zeros(len(ijk), dtype=bool)
    ok[inside] = geom.data[tuple(ijk[inside].T)]
    return int((~ok).sum())


def run_sleuth(args: argparse.Namespace) -> int:
    """Sleuth mode: read files, run one model, write outputs."""
    from painmeta.ale.models import run_model, ALEModel
    from painmeta.sleuth import read_sleuth

    if args.n_iters is None:
        raise InputError("--n-iters is required with --sleuth (e.g. --n-iters 1000)")
    data = read_sleuth(args.sleuth)
    notes = []
    if data.space != "MNI":
        notes.append("Talairach foci converted to MNI (inverse Lancaster icbm_other transform)")
        data = data.to_mni()
    if data.n_experiments < 2:
        raise InputError(
            f"{', '.join(map(str, data.files))}: {data.n_experiments} experiment; ALE needs at least 2 "
            "(it measures convergence across experiments). Fix: add experiments."
        )
    outside = _mask_check(data.foci[["x", "y", "z"]].to_numpy(float))
    if outside:
        notes.append(f"{outside} focus/foci outside the MNI152 2 mm brain mask (kept; their kernels reach the brain)")
    name = args.name or Path(args.sleuth[0]).stem
    model = ALEModel(
        name=name, description=f"Sleuth: {', '.join(map(str, args.sleuth))}",
        experiment_ids=sorted(data.sample_sizes), foci=data.foci, sample_sizes=data.sample_sizes,
        n_iters=args.n_iters, warnings=notes, inference=args.inference or "cluster_size",
        focus_placement=args.focus_placement or "voxel",
    )
    with _executor(args) as ex:
        result = run_model(
            model, engine=args.engine or "nimare", seed=0 if args.seed is None else args.seed,
            voxel_thresh=args.voxel_thresh or 0.001, cluster_alpha=args.cluster_alpha or 0.05,
            n_cores=args.n_cores or 2, contributions=not args.no_contributions, progress=args.progress,
            executor=ex,
        )
    fsn = None
    if args.fsn:
        from painmeta.ale.fsn import attach_fsn

        with _executor(args) as ex:
            fsn = attach_fsn(result, data.foci, data.sample_sizes, n_drawers=args.fsn_drawers or 10,
                             max_factor=args.fsn_max_factor or 5.0, n_iters=args.fsn_n_iters,
                             n_threads=args.n_cores or 2, executor=ex, cluster_alpha=args.fsn_alpha)
    result.save(args.out)
    if fsn is not None:
        fsn.save(args.out)
    _print_summary(result.summary(), args.out)
    return 0


def run_dataset(args: argparse.Namespace) -> int:
    """Dataset mode: every configured model, one folder each, plus tables."""
    from painmeta.ale.models import analyze, load_dataset, save_analysis, subject_groups

    overrides: dict[str, Any] = {"ale": {}}
    for key, value in (("seed", args.seed), ("voxel_thresh", args.voxel_thresh),
                       ("cluster_alpha", args.cluster_alpha), ("n_cores", args.n_cores),
                       ("inference", args.inference), ("focus_placement", args.focus_placement)):
        if value is not None:
            overrides["ale"][key] = value
    if args.scheduler is not None:
        overrides["ale"]["executor"] = {"scheduler": args.scheduler, "n_workers": args.n_workers}
    config, exps, foci = load_dataset(args.dataset, overrides if overrides["ale"] else None)
    # A flag given on the command line applies to every model, over per-model settings.
    for model_cfg in config.ale.models.values():
        for key in ("inference", "focus_placement"):
            if getattr(args, key) is not None:
                setattr(model_cfg, key, getattr(args, key))
    engine = args.engine or config.ale.engine
    with _executor(args, config.ale.executor) as ex:
        analysis = analyze(exps, foci, config.ale, engine=engine, crosscheck=args.crosscheck,
                           n_iters=args.n_iters, contributions=not args.no_contributions, progress=args.progress,
                           executor=ex)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fsn_cfg = config.ale.fsn
    fsn_res: dict[str, Any] = {}
    if args.fsn or fsn_cfg.enabled:
        from painmeta.ale.fsn import attach_fsn

        from painmeta.audit import reported_cluster_tables
        from painmeta.paths import dataset_paths
        from painmeta.reproduction import published_fsn_points

        models = {m.name: m for m in analysis.models}
        # --fsn asks for every model; otherwise the config's ale.fsn.models (default every model)
        wanted = None if args.fsn else fsn_cfg.models
        tables = reported_cluster_tables(dataset_paths(args.dataset).raw)
        # the result each model reports (the primary engine's, or in-house for exact placement)
        with _executor(args, config.ale.executor) as ex:
            for name, res in analysis.primary.items():
                if wanted is not None and name not in wanted:
                    continue
                points = published_fsn_points(tables, name)  # a paper's FSN peaks, for the audit
                fsn_res[name] = attach_fsn(res, models[name].foci, models[name].sample_sizes,
                                           points=points if len(points) else None,
                                           n_drawers=args.fsn_drawers or fsn_cfg.n_drawers,
                                           max_factor=args.fsn_max_factor or fsn_cfg.max_factor,
                                           n_iters=args.fsn_n_iters or fsn_cfg.n_iters or args.n_iters,
                                           method=fsn_cfg.method, n_threads=args.n_cores or config.ale.n_cores,
                                           executor=ex, cluster_alpha=args.fsn_alpha or fsn_cfg.cluster_alpha)
    if config.ale.contrasts and not args.no_contrasts:
        from painmeta.ale.contrast import run_dataset_contrasts

        contrasts, ctable = run_dataset_contrasts(
            # in-house subtraction whatever the primary engine: it keeps exact ties (see notebooks/01_ale.py)
            analysis.models, config.ale, analysis.primary, engine="inhouse",
            seed=config.ale.seed, n_cores=args.n_cores or config.ale.n_cores, n_iters=args.n_iters,
            subject_groups=subject_groups(exps))
        for cname, cres in contrasts.items():
            cres.save(out / f"contrast-{cname}")
        ctable.to_csv(out / "contrasts.csv", index=False)
        for _, row in ctable.iterrows():
            print(f"contrast {row['contrast']}: {row['status']}" + (f": {row['reason']}" if row["reason"] else ""))
    save_analysis(analysis, out, crosscheck=args.crosscheck)
    from painmeta.ale.fsn import clear_outputs

    for m in analysis.models:  # no fail-safe N left from a previous run with other settings
        clear_outputs(out / m.name)
    for name, fres in fsn_res.items():
        if fres is not None:
            fres.save(out / name)
    for _, row in analysis.summary.iterrows():
        status = row["status"] if row["status"] != "skipped" else f"skipped: {row['reason']}"
        print(f"{row['model']}: {status}")
    if args.crosscheck and not analysis.crosscheck["passed"].all():
        print("cross-check FAILED; see crosscheck.csv", file=sys.stderr)
        return 1
    return 0


def _executor(args: argparse.Namespace, config_spec: Any = None) -> Any:
    """The executor for ``--scheduler`` (or the config's ``ale.executor``); use with ``with``."""
    from painmeta.ale.executor import get_executor

    if args.scheduler is not None:
        from painmeta.config import ExecutorConfig

        try:  # same validation as the config key
            spec = ExecutorConfig(scheduler=args.scheduler, n_workers=args.n_workers)
        except ValueError as exc:
            raise InputError(f"--scheduler {args.scheduler[:80]!r}: {exc.errors()[0]['msg']}") from None
        return get_executor(spec)
    return get_executor(config_spec)


def _print_summary(summary: dict[str, Any], out: str) -> None:
    keys = ("engine", "n_experiments", "n_foci", "n_subjects", "ale_max", "p_min", "cluster_forming_ale",
            "cluster_size_threshold_mm3", "vfwe_ale_threshold", "inference", "focus_placement",
            "n_clusters_significant", "run_time_s")
    print(json.dumps({k: summary[k] for k in keys}, indent=1))
    print(f"outputs in {out}")


def run_cli(args: argparse.Namespace) -> int:
    """Entry point set as ``func`` on the ``ale`` parser."""
    if args.sleuth:
        return run_sleuth(args)
    return run_dataset(args)
