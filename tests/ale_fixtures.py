"""Small synthetic ALE inputs shared by the ALE tests (not a test module)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from painmeta.ale import problem as pb

#: A CIPN-sized problem: 3 experiments, 11 foci, n = 12 / 20 / 13.
CIPN_FOCI = {
    "boland": [(4, 24, 23), (-50, 13, -8), (-30, -67, -20), (44, 20, -9)],
    "liu": [(-40, -20, 50), (20, -20, 0), (0, -30, -10), (44, 10, 20)],
    "smith": [(2, -54, 30), (0, 50, 0), (-30, -70, 40)],
}
CIPN_N = {"boland": 12, "liu": 20, "smith": 13}


def cipn_like() -> tuple[pd.DataFrame, dict[str, int]]:
    rows = [(e, *xyz) for e, pts in CIPN_FOCI.items() for xyz in pts]
    return pd.DataFrame(rows, columns=["experiment_id", "x", "y", "z"]).astype({"x": float, "y": float, "z": float}), dict(CIPN_N)


def convergent(n_exp: int = 10, seed: int = 5) -> tuple[pd.DataFrame, dict[str, int]]:
    """``n_exp`` experiments sharing a focus near (40, 4, 2) plus scattered foci."""
    rng = np.random.default_rng(seed)
    rows = []
    sizes = {}
    for e in range(n_exp):
        eid = f"exp{e:02d}"
        sizes[eid] = int(rng.integers(10, 30))
        centre = np.array([40.0, 4.0, 2.0]) + rng.integers(-2, 3, size=3) * 2
        rows.append((eid, *centre))
        for _ in range(int(rng.integers(1, 4))):
            other = rng.integers([-60, -90, -30], [60, 60, 60]) // 2 * 2
            rows.append((eid, *other.astype(float)))
    return pd.DataFrame(rows, columns=["experiment_id", "x", "y", "z"]), sizes


#: Convergence centres of :func:`enge_like` (MNI mm): left IFG, SMA, left fusiform, right insula, left MTG.
ENGE_LIKE_CENTRES = [(-44, 18, 24), (-4, 16, 50), (-40, -52, -20), (36, 22, -6), (-52, -38, 4)]


def enge_like(n_exp: int = 50, seed: int = 1234) -> tuple[pd.DataFrame, dict[str, int]]:
    """A dataset shaped like Enge et al. 2021's main ALE: 50 experiments, ~14 foci each, n ~ 20.

    Each experiment reports near two or three of five convergence centres (jittered by a few mm, odd and even
    millimetres alike) plus scattered foci, so several clusters survive.
    """
    rng = np.random.default_rng(seed)
    rows, sizes = [], {}
    for e in range(n_exp):
        eid = f"study{e:02d}"
        sizes[eid] = int(rng.integers(8, 45))
        for c in rng.choice(len(ENGE_LIKE_CENTRES), size=int(rng.integers(2, 4)), replace=False):
            rows.append((eid, *(np.array(ENGE_LIKE_CENTRES[c]) + rng.integers(-5, 6, size=3))))
        for _ in range(int(rng.integers(8, 14))):
            rows.append((eid, *rng.integers([-64, -100, -40], [64, 60, 72])))
    frame = pd.DataFrame(rows, columns=["experiment_id", "x", "y", "z"]).astype({"x": float, "y": float, "z": float})
    return frame, sizes


def whole_volume_null(problem: pb.ALEProblem, draws: np.ndarray, thr: float) -> pd.DataFrame:
    """The null statistics straight from the definition: full ALE map, scipy labelling (slow; a few iterations).

    The reference the in-house sampler is held against (test_ale_sampler, test_ale_engines).
    """
    geom = problem.mask
    rows = []
    for d in draws:
        foci = pd.DataFrame(geom.vox2mm(geom.inmask_ijk[d]), columns=["x", "y", "z"])
        foci.insert(0, "experiment_id", [problem.experiment_ids[e] for e in problem.focus_exp])
        p = pb.make_problem(foci, dict(zip(problem.experiment_ids, problem.sample_sizes)),
                            experiment_order=problem.experiment_ids)
        log_sums = np.zeros(geom.n_voxels)
        for e in range(p.n_experiments):
            ma, cols = pb.ma_map(p, e)
            log_sums[cols] += np.log1p(-ma[cols].astype(np.float64))
        ale = (1.0 - np.exp(log_sums)).astype(np.float32)
        vol = geom.unmask(ale).astype(np.float64)
        labels, n = ndimage.label(vol > thr, ndimage.generate_binary_structure(3, 1))
        sizes = np.bincount(labels.ravel())[1:]
        masses = ndimage.sum(np.where(vol > thr, vol - thr, 0), labels, np.arange(1, n + 1)) if n else [0.0]
        rows.append((ale.max(), sizes.max() if n else 0, np.float32(np.max(masses))))
    return pd.DataFrame(rows, columns=["max_ale", "max_cluster_size", "max_cluster_mass"])
