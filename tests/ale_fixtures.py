"""Small synthetic ALE inputs shared by the ALE tests (not a test module)."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
