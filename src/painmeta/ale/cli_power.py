"""``python -m painmeta ale-power``: how often would ALE detect a true convergence?

::

    python -m painmeta ale-power --n-experiments 3,5,10,17 --n-sims 200 --n-iters 1000 --seed 1 --out DIR \\
        [--subjects 20] [--foci 10] [--effect-share 0.4[,1.0]] [--jitter-mm 4] [--location 38,20,-4] \\
        [--hit-radius-mm 8] [--voxel-thresh 0.001] [--cluster-alpha 0.05] \\
        [--dataset NAME [--model NAME]] [--scheduler local|tcp://HOST:PORT] [--n-cores 2]

Defaults (stated in ``power.csv`` and ``scenario.json``): 20 subjects and 10
foci per experiment, the true effect in 40% of experiments, 4 mm jitter per
axis around MNI (38, 20, -4), detection within 8 mm, p < 0.001 cluster-forming,
cluster-level FWE p < 0.05. ``--subjects`` / ``--foci`` take one value or a
comma list (a design, cycled for larger k); ``--dataset`` takes the design of
a processed dataset's model (its sample sizes and foci counts) instead.
Writes ``power.csv`` (``n_experiments, power, ci_low, ci_high`` and the
scenario's parameters), ``simulations.csv``, ``scenario.json`` and
``power.png/.svg/.pdf`` (see :mod:`painmeta.ale.power`).
"""

from __future__ import annotations

import argparse
from typing import Any

from painmeta.ale.cli import _positive_int, _probability
from painmeta.errors import InputError


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers separated by commas (e.g. 3,5,10,17)") from None
    if not values or len(values) > 200 or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give 1-200 positive whole numbers separated by commas")
    return values


def _share_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give shares such as 0.4 or 0.2,0.4,1") from None
    if not values or len(values) > 10 or any(not 0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give 1-10 shares in (0, 1] separated by commas")
    return values


def _location(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give x,y,z in MNI mm (e.g. 38,20,-4)") from None
    if len(values) != 3 or any(abs(v) > 150 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give three MNI coordinates in mm (e.g. 38,20,-4)")
    return values  # type: ignore[return-value]


def _mm(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 50:
        raise argparse.ArgumentTypeError(f"must be between 0 and 50 mm, got {value}")
    return value


def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``ale-power`` sub-command."""
    from painmeta.ale import power as pw

    p = subparsers.add_parser(
        "ale-power",
        help="ALE power analysis by simulation (detection probability against the number of experiments)",
        description=(
            "Simulate meta-analyses with a true effect at one location in a share of experiments (jittered) and "
            "random foci elsewhere; run cluster-level FWE inference; report the detection probability with a "
            "Clopper-Pearson 95% CI per number of experiments."
        ),
    )
    p.add_argument("--n-experiments", type=_int_list, default=list(pw.DEFAULT_N_EXPERIMENTS), metavar="K,K,...",
                   help="numbers of experiments to simulate (default 3,5,10,17,25,40)")
    p.add_argument("--n-sims", type=_positive_int, default=200, help="simulated meta-analyses per k (default 200)")
    p.add_argument("--n-iters", type=_positive_int, default=1000,
                   help="Monte Carlo iterations of each configuration's null (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--subjects", type=_int_list, default=[pw.DEFAULT_SUBJECTS], metavar="N[,N...]",
                   help=f"subjects per experiment, or a design list (default {pw.DEFAULT_SUBJECTS})")
    p.add_argument("--foci", type=_int_list, default=[pw.DEFAULT_FOCI], metavar="F[,F...]",
                   help=f"foci per experiment, or a design list (default {pw.DEFAULT_FOCI})")
    p.add_argument("--effect-share", type=_share_list, default=list(pw.DEFAULT_EFFECT_SHARES), metavar="S[,S...]",
                   help="share of experiments with the true effect; a list gives one curve each (default 0.4)")
    p.add_argument("--jitter-mm", type=_mm, default=pw.DEFAULT_JITTER_MM,
                   help="SD of the effect focus around the location, per axis, mm (default 4)")
    p.add_argument("--location", type=_location, default=pw.DEFAULT_LOCATION, metavar="X,Y,Z",
                   help="true effect location, MNI mm (default 38,20,-4)")
    p.add_argument("--hit-radius-mm", type=_mm, default=pw.DEFAULT_HIT_RADIUS_MM,
                   help="a significant cluster within this distance detects the effect (default 8)")
    p.add_argument("--voxel-thresh", type=_probability, default=0.001, help="cluster-forming p (default 0.001)")
    p.add_argument("--cluster-alpha", type=_probability, default=0.05, help="cluster-level FWE alpha (default 0.05)")
    p.add_argument("--dataset", metavar="NAME", help="take the design (sizes, foci counts) from a processed dataset")
    p.add_argument("--model", metavar="NAME", help="model of --dataset (default: its first model that runs)")
    p.add_argument("--n-cores", type=_positive_int, default=None, help="threads for the Monte Carlo (default 2)")
    p.add_argument("--scheduler", default=None, metavar="SPEC",
                   help="inprocess (default), local, or tcp://HOST:PORT: where simulations run (same results)")
    p.add_argument("--n-workers", type=_positive_int, default=None, help="workers of --scheduler local")
    p.add_argument("--progress", action="store_true", help="progress bar")
    p.set_defaults(func=run_cli)
    return p


def _design(args: argparse.Namespace, common: dict) -> Any:
    from painmeta.ale import power as pw

    if args.dataset is None:
        if len(args.subjects) > 1 and len(args.foci) == 1:
            args.foci = args.foci * len(args.subjects)
        if len(args.foci) > 1 and len(args.subjects) == 1:
            args.subjects = args.subjects * len(args.foci)
        if len(args.subjects) != len(args.foci):
            raise InputError("--subjects and --foci lists must have the same length (one value per design experiment)")
        return pw.PowerScenario(n_experiments=args.n_experiments, subjects=args.subjects, foci=args.foci,
                                **common)
    from painmeta.ale.models import build_models, load_dataset

    config, exps, foci = load_dataset(args.dataset)
    models = build_models(exps, foci, config.ale)
    runnable = [m for m in models if not m.skipped]
    if args.model is not None:
        chosen = [m for m in models if m.name == args.model]
        if not chosen:
            raise InputError(f"dataset '{args.dataset}' has no ALE model '{args.model}'; "
                             f"models: {', '.join(m.name for m in models)}")
        model = chosen[0]
    elif runnable:
        model = runnable[0]
    else:
        raise InputError(f"dataset '{args.dataset}' has no ALE model with enough experiments to take a design from")
    return pw.scenario_from_model(model, args.n_experiments, design=f"{args.dataset}/{model.name}", **common)


def run_cli(args: argparse.Namespace) -> int:
    from painmeta.ale import power as pw
    from painmeta.ale.cli import _executor

    common = dict(effect_shares=args.effect_share, jitter_mm=args.jitter_mm, location=tuple(args.location),
                  hit_radius_mm=args.hit_radius_mm, n_sims=args.n_sims, n_iters=args.n_iters, seed=args.seed,
                  voxel_thresh=args.voxel_thresh, cluster_alpha=args.cluster_alpha)
    scenario = _design(args, common)
    with _executor(args) as ex:
        result = pw.run_power(scenario, n_threads=args.n_cores or 2, executor=ex, progress=args.progress)
    result.save(args.out)
    show = result.table[["n_experiments", "effect_share", "n_effect", "power", "ci_low", "ci_high",
                         "fwe_elsewhere"]]
    print(show.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(pw.compare_with_eickhoff(result.table))
    print(f"outputs in {args.out}")
    return 0
