"""Contribution analyses of significant clusters: jackknife and focus counter.

Both take an :class:`~painmeta.ale.problem.ALEProblem` and a cluster label map
from any engine, so they run on the in-house engine's shared precomputation.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from painmeta.ale.problem import ALEProblem, ale_map


def jackknife(problem: ALEProblem, ale: np.ndarray, labels: np.ndarray, cluster_ids: Sequence[int]) -> pd.DataFrame:
    """Leave-one-experiment-out contribution per cluster.

    For each experiment, ALE is recomputed without it; the contribution to a
    cluster is the mean over its voxels of ``1 - ALE_without / ALE``.
    """
    geom = problem.mask
    lab_vec = labels[geom.data]
    rows = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for e, exp in enumerate(problem.experiment_ids):
            without = ale_map(problem, exclude=e)
            prop = 1 - np.nan_to_num(np.true_divide(without, ale))
            rows.append([exp] + [float(np.mean(prop[lab_vec == c])) for c in cluster_ids])
    return pd.DataFrame(rows, columns=["experiment_id"] + [f"cluster_{c}" for c in cluster_ids])


def focus_counts(problem: ALEProblem, labels: np.ndarray, cluster_ids: Sequence[int]) -> pd.DataFrame:
    """Foci of each experiment lying within one voxel of each cluster.

    Foci are placed at their unrounded voxel position; a focus counts toward a
    cluster when one of its voxels is less than one voxel (Euclidean) away.
    """
    geom = problem.mask
    inv = np.linalg.inv(geom.affine)
    offs = np.stack(np.meshgrid(*([np.arange(-1, 2)] * 3), indexing="ij"), axis=-1).reshape(-1, 3)
    rows = []
    for e, exp in enumerate(problem.experiment_ids):
        counts = dict.fromkeys(cluster_ids, 0)
        lo, hi = problem.exp_offsets[e], problem.exp_offsets[e + 1]
        for xyz in problem.foci_xyz[lo:hi]:
            pos = xyz @ inv[:3, :3].T + inv[:3, 3]
            cand = np.floor(pos).astype(np.int64) + offs
            near = np.sum((cand - pos) ** 2, axis=1) < 1.0
            inb = np.all((cand >= 0) & (cand < np.array(geom.shape)), axis=1)
            sel = cand[near & inb]
            hit = set(int(v) for v in labels[tuple(sel.T)] if v > 0)
            for c in hit:
                if c in counts:
                    counts[c] += 1
        rows.append([exp] + [counts[c] for c in cluster_ids])
    return pd.DataFrame(rows, columns=["experiment_id"] + [f"cluster_{c}" for c in cluster_ids])


__all__ = ["focus_counts", "jackknife"]
