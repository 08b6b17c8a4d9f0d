"""``python -m painmeta ale-contrast``: subtraction and conjunction ALE of two Sleuth sets.

::

    python -m painmeta ale-contrast --sleuth-a A.txt [A2.txt ...] --sleuth-b B.txt [...] \\
        --out DIR --n-iters 10000 --seed 1 [--engine nimare|inhouse] [--voxel-thresh 0.001] \\
        [--min-cluster-mm3 200] [--group-n-iters N] [--cluster-alpha 0.05] [--label-a A --label-b B]

Writes (labels default to ``A`` and ``B``):

* ``z_A_minus_B.nii.gz``, ``z_B_minus_A.nii.gz``: unthresholded signed z of the
  label-permutation subtraction (two-sided p, NiMARE ``ALESubtraction``'s
  convention; the second is the negative of the first);
* ``z_thresholded_A_vs_B.nii.gz``: two-sided voxel p < ``--voxel-thresh`` and
  clusters of at least ``--min-cluster-mm3`` (defaults: Enge et al. 2021,
  p < 0.001, 200 mm^3), positive where A > B;
* ``ale_conj.nii.gz``: conjunction, the voxel-wise minimum of the two sets'
  own ALE maps thresholded at cluster-level FWE (``--cluster-alpha``,
  cluster-forming ``--group-voxel-thresh``);
* ``clusters.csv`` (subtraction clusters both ways, conjunction clusters),
  ``p_A_vs_B.nii.gz``, ``ale_difference_A_vs_B.nii.gz``,
  ``null_subtraction.csv``, ``summary.json`` and each set's ALE in ``group-A/``,
  ``group-B/``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from painmeta.ale.cli import _mask_check, _positive_int, _probability
from painmeta.errors import InputError

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


def _label(text: str) -> str:
    if not _LABEL.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r}: use 1-40 letters, digits, '_' or '-' (it becomes part of file names)")
    return text


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``ale-contrast`` sub-command."""
    p = subparsers.add_parser(
        "ale-contrast",
        help="subtraction (A - B, B - A) and conjunction ALE of two sets of experiments",
        description=(
            "Label-permutation ALE subtraction (as NiMARE's ALESubtraction / GingerALE contrast), "
            "thresholded at two-sided voxel p and a minimum cluster extent, and the conjunction of "
            "both sets' cluster-level FWE thresholded ALE maps (voxel-wise minimum)."
        ),
    )
    p.add_argument("--sleuth-a", nargs="+", required=True, metavar="FILE", help="Sleuth file(s) of set A")
    p.add_argument("--sleuth-b", nargs="+", required=True, metavar="FILE", help="Sleuth file(s) of set B")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--n-iters", type=_positive_int, required=True, help="label permutations (e.g. 10000)")
    p.add_argument("--seed", type=int, default=0, help="seed of permutations and Monte Carlo nulls (default 0)")
    p.add_argument("--engine", choices=("nimare", "inhouse"), default="nimare")
    p.add_argument("--voxel-thresh", type=_probability, default=0.001,
                   help="two-sided voxel p for the subtraction (default 0.001)")
    p.add_argument("--min-cluster-mm3", type=_non_negative, default=200.0,
                   help="minimum subtraction cluster extent in mm^3 (default 200 = 25 voxels)")
    p.add_argument("--group-n-iters", type=_positive_int, default=None,
                   help="Monte Carlo iterations of each set's own ALE (default: --n-iters)")
    p.add_argument("--group-voxel-thresh", type=_probability, default=0.001,
                   help="cluster-forming p of each set's ALE (default 0.001)")
    p.add_argument("--cluster-alpha", type=_probability, default=0.05,
                   help="cluster-level FWE alpha of each set's ALE (default 0.05)")
    p.add_argument("--label-a", type=_label, default="A", help="name of set A in file names (default A)")
    p.add_argument("--label-b", type=_label, default="B", help="name of set B in file names (default B)")
    p.add_argument("--arithmetic", choices=("exact", "nimare"), default="exact",
                   help="in-house engine: 'exact' keeps exact ties between permuted and observed differences "
                        "(default); 'nimare' reproduces NiMARE 0.22.1 bit for bit, including its float32/float64 "
                        "tie-breaking")
    p.add_argument("--n-cores", type=_positive_int, default=2, help="threads / cores (default 2)")
    p.add_argument("--progress", action="store_true", help="progress bars (in-house engine)")
    p.set_defaults(func=run_cli)
    return p


def _read_set(files: list[str], which: str) -> tuple[Any, list[str]]:
    from painmeta.sleuth import read_sleuth

    data = read_sleuth(files)
    notes = []
    if data.space != "MNI":
        notes.append(f"set {which}: Talairach foci converted to MNI (inverse Lancaster icbm_other transform)")
        data = data.to_mni()
    if data.n_experiments < 2:
        raise InputError(
            f"{', '.join(map(str, data.files))}: set {which} has {data.n_experiments} experiment; each set needs "
            "at least 2 (its own ALE makes the conjunction). Fix: add experiments to the set."
        )
    outside = _mask_check(data.foci[["x", "y", "z"]].to_numpy(float))
    if outside:
        notes.append(f"set {which}: {outside} focus/foci outside the MNI152 2 mm brain mask (kept)")
    return data, notes


def run_cli(args: argparse.Namespace) -> int:
    """Entry point of ``ale-contrast``."""
    from painmeta.ale.contrast import run_contrast

    if args.label_a == args.label_b:
        raise InputError("--label-a and --label-b must differ (they name the output files)")
    a, notes_a = _read_set(args.sleuth_a, args.label_a)
    b, notes_b = _read_set(args.sleuth_b, args.label_b)
    res = run_contrast(
        a.foci, a.sample_sizes, b.foci, b.sample_sizes, n_iters=args.n_iters, seed=args.seed, engine=args.engine,
        name=f"{args.label_a}_vs_{args.label_b}", label_a=args.label_a, label_b=args.label_b,
        voxel_thresh=args.voxel_thresh, min_cluster_mm3=args.min_cluster_mm3, group_n_iters=args.group_n_iters,
        group_voxel_thresh=args.group_voxel_thresh, cluster_alpha=args.cluster_alpha, n_cores=args.n_cores,
        progress=args.progress, arithmetic=args.arithmetic,
    )
    res.notes[:0] = notes_a + notes_b
    res.save(args.out)
    s = res.summary()
    keys = ("engine", "n_experiments_a", "n_experiments_b", "n_iters", "z_threshold", "min_cluster_mm3",
            "n_clusters_a_gt_b", "n_clusters_b_gt_a", "n_clusters_conjunction", "notes")
    print(json.dumps({k: s[k] for k in keys}, indent=1))
    print(f"outputs in {Path(args.out)}")
    return 0
