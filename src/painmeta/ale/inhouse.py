"""Independent ALE engine's Monte Carlo cluster null (numpy and numba only; no NiMARE code).

The engine is assembled from the layers below it: :mod:`~painmeta.ale.kernel`
(sample-size kernels), :mod:`~painmeta.ale.geometry` (mask), :mod:`~painmeta.ale.problem`
(MA maps and the ALE union), :mod:`~painmeta.ale.inference` (analytic null, p/z,
thresholds, clusters) and :mod:`~painmeta.ale.contributions`. This module adds
what is specific to it: the Monte Carlo cluster null (:func:`null_statistics`)
and :func:`run_inhouse`, which runs a whole analysis and returns an
:class:`~painmeta.ale.results.ALEResult`.

**Monte Carlo cluster null**: every focus is moved to a uniformly drawn in-mask
voxel, ALE is recomputed, thresholded at the cluster-forming value and labelled
with face (6-) connectivity; each iteration yields the maximum ALE, the largest
cluster (voxels) and the largest cluster mass (sum of ALE minus the threshold).
Conventions matched to NiMARE 0.22.1: the Monte Carlo ALE takes ``log1p`` in
float64 (as NiMARE's fused permutation path does); the random foci are in-mask
voxels drawn uniformly and independently for each focus and iteration; cluster
mass accumulates in raster order; statistics are stored as NiMARE stores them
(ALE and mass in float32).

Speed: only a few voxels of an iteration matter - the supra-threshold
voxels and the maximum - and an upper bound on ALE finds them without
computing the whole volume. ALE <= sum_e MA_e <= sum_f k_f(v) (the sum of
every focus's kernel value) and, since -log(1 - ALE) <= sum_f k_f / (1 - kmax),
a voxel can reach ALE v only if ``sum_f k_f(v) >= max(v, (1 - kmax) (-log(1 - v)))``
(:func:`_cut`). Per iteration:

1. **bound** - one of two upper bounds on ``sum_f k_f``, chosen per problem by
   the work it is expected to take (``method="auto"``; results are identical):

   * *sparse* (up to a few thousand foci): each focus adds the largest value
     of its kernel in every coarse cell of 2 x 2 x 2 voxels its window meets
     (a grid small enough to stay in cache); kernel values >= the cut itself
     stay on the fine grid (the core) and values below ``tau_far`` (so small
     that their sum over all foci is at most 10 % of the smallest cut) form one
     global slack. Kernels of similar peak share one bound kernel (their
     pointwise maximum);
   * *dense* (many foci, where windows overlap everywhere): the exact sum of
     separable kernels ``w_i w_j w_k`` (1-D weights rounded up) by three
     1-D passes over contiguous float32 rows, which the compiler vectorises;

2. **candidates** - voxels whose bound reaches the cut of the threshold. The
   exact ALE where the bound peaks is a lower bound on the iteration's
   maximum; if it is below the threshold, candidates are taken again at its
   own cut (the maximum must be among them);
3. **exact ALE** at the candidates, in NiMARE's arithmetic: per experiment the
   largest float32 kernel value reaching the voxel, ``log1p(-MA)`` in float64
   (precomputed per kernel value, one octant of the symmetric kernel), summed
   in experiment order. Foci are indexed by 8^3 buckets; candidates are
   taken tile by tile (2 x 2 x 16 voxels), the foci near a tile gathered once,
   and consecutive candidates along k evaluated together as runs;
4. supra-threshold voxels are labelled by union-find over face neighbours
   inside this set - the same components as labelling the full volume, since
   every other voxel is below threshold - and cluster mass is summed in
   raster order.

Margins: every cut ``v`` is lowered to ``v (1 - 2**-20) - 1e-8`` - sixteen
float32 ulps of ``v`` plus an absolute 1e-8, far more than the float32
rounding of a stored ALE value (half an ulp) - and then by a factor
``1 - 2 (2 n_foci + 1) 2**-24`` to cover float32 summation of the bound.
Margins only add candidates; they cannot drop a voxel that matters. Iterations
run in parallel over numba threads with per-thread scratch; results are
indexed by iteration, so they do not depend on the number of threads (tested),
and both bounds give the same statistics bit for bit (tested).

Floor and cost: an iteration costs about (foci x coarse cells per kernel) for
the sparse bound, or a few passes over the in-mask rows for the dense one,
plus (candidates x foci reaching each) for the exact ALE; ``bench/bench_ale.py``
reports both against NiMARE.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

import numba
import numpy as np
import pandas as pd
from numba import njit, prange

from painmeta.ale.executor import BLOCK_SIZE, Block, Executor, block_rng, get_executor, map_blocks, split_blocks
from painmeta.ale.inference import (
    cluster_masses,
    cluster_table,
    fit_observed,
    label_clusters,
    null_to_p,
    voxel_fwe_p,
)
from painmeta.ale.problem import ALEProblem, make_problem

if TYPE_CHECKING:  # pragma: no cover
    from painmeta.ale.results import ALEResult

#: Safety margins for the candidate tests (see module docstring): absolute
#: (ALE units) and relative (16 float32 ulps, covering float32 rounding of ALE).
CANDIDATE_MARGIN = 1e-8
REL_MARGIN = 2.0**-20
#: Side (voxels) of the buckets that index random foci for exact ALE.
BUCKET = 8
#: Up to this many foci, exact ALE loops over all of them (one bucket).
LINEAR_FOCI = 32
#: Kernels whose peaks differ by at most this factor share one bound kernel (sparse bound).
GROUP_RATIO = 1.08
#: Few foci: kernel tails are bounded by one global slack, at most this share of the smallest cut.
SLACK_SHARE = 0.1
#: Sparse bound: kernel values >= cut / CORE_DIVISOR form a focus's core, summed
#: voxel by voxel; smaller values (the tail) are bounded per coarse cell.
CORE_DIVISOR = 1.0
#: Side (voxels) of the coarse cells that bound kernel tails (sparse bound).
TAIL_CELL = 2
#: Longest run of consecutive voxels evaluated together by exact ALE.
RUN_MAX = 32
#: k-extent of the tiles (2 x 2 x TILE_K voxels) whose foci are gathered once for exact ALE.
TILE_K = 16
#: Iterations per parallel batch when explicit draws are given (progress-bar granularity).
BATCH_ITERS = 256
#: Methods of the upper bound (see module docstring); "auto" picks by estimated work.
METHODS = ("auto", "sparse", "dense")
#: Work units of the dense (separable) bound relative to a scattered voxel: its
#: loops run over contiguous float32 rows, which the compiler vectorises (measured
#: on the benchmark problems, bench/bench_ale.py).
DENSE_UNIT_COST = 0.25


# ---------------------------------------------------------- Monte Carlo null
@njit(cache=True, nogil=True)
def _find(parent, a):  # pragma: no cover - numba
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@njit(cache=True)
def _log_table(cubes32):  # pragma: no cover - numba
    """``log1p(-MA)`` in float64 for every kernel value (the arithmetic of the union)."""
    out = np.zeros(cubes32.shape, dtype=np.float64)
    flat_in = cubes32.reshape(-1)
    flat_out = out.reshape(-1)
    for m in range(flat_in.shape[0]):
        flat_out[m] = np.log1p(-np.float64(flat_in[m]))
    return out


@njit(cache=True, nogil=True)
def _cut(v, kmax, shrink):  # pragma: no cover - numba
    """Smallest bound ``sum_f k_f(v)`` a voxel with ALE >= v can have, lowered by the margins.

    ALE <= sum_e MA_e (union bound) and -log(1 - ALE) = sum_e -log(1 - MA_e)
    <= sum_e MA_e / (1 - kmax), so ALE >= v needs sum_f k_f >= max(v, (1 - kmax) * -log(1 - v)).
    """
    w = v * (1.0 - REL_MARGIN) - CANDIDATE_MARGIN
    if w <= 0.0:
        return 0.0
    return max(w, (1.0 - kmax) * -np.log1p(-w)) * shrink


@njit(cache=True, nogil=True)
def _bucket_foci(fpad, f_kernel, f_exp, bsize, bshape, b_start, b_fill, b_list):  # pragma: no cover - numba
    """Counting sort of the foci into buckets of ``bsize``^3 voxels.

    ``b_list`` rows are ``(i, j, k, kernel, experiment)`` in bucket order, so
    the buckets of one (i, j) column form one contiguous run.
    """
    nb = bshape[0] * bshape[1] * bshape[2]
    for b in range(nb + 1):
        b_start[b] = 0
    for f in range(fpad.shape[0]):
        b = ((fpad[f, 0] // bsize) * bshape[1] + fpad[f, 1] // bsize) * bshape[2] + fpad[f, 2] // bsize
        b_start[b + 1] += 1
    for b in range(nb):
        b_start[b + 1] += b_start[b]
        b_fill[b] = b_start[b]
    for f in range(fpad.shape[0]):
        b = ((fpad[f, 0] // bsize) * bshape[1] + fpad[f, 1] // bsize) * bshape[2] + fpad[f, 2] // bsize
        t = b_fill[b]
        b_list[t, 0] = fpad[f, 0]
        b_list[t, 1] = fpad[f, 1]
        b_list[t, 2] = fpad[f, 2]
        b_list[t, 3] = f_kernel[f]
        b_list[t, 4] = f_exp[f]
        b_fill[b] += 1


@njit(cache=True, nogil=True)
def _gather(i0, i1, j0, j1, k0, k1, rmax, bsize, bshape, b_start, b_list, k_radius, g_list):
    # pragma: no cover - numba
    """Foci whose kernel window can reach the box ``[i0, i1] x [j0, j1] x [k0, k1]``; returns their number."""
    bi0 = max(i0 - rmax, 0) // bsize
    bi1 = min((i1 + rmax) // bsize, bshape[0] - 1)
    bj0 = max(j0 - rmax, 0) // bsize
    bj1 = min((j1 + rmax) // bsize, bshape[1] - 1)
    bk0 = max(k0 - rmax, 0) // bsize
    bk1 = min((k1 + rmax) // bsize, bshape[2] - 1)
    n = 0
    for bi in range(bi0, bi1 + 1):
        for bj in range(bj0, bj1 + 1):
            base = (bi * bshape[1] + bj) * bshape[2]
            for t in range(b_start[base + bk0], b_start[base + bk1 + 1]):
                r = k_radius[b_list[t, 3]]
                if (b_list[t, 0] + r < i0 or b_list[t, 0] - r > i1 or b_list[t, 1] + r < j0
                        or b_list[t, 1] - r > j1 or b_list[t, 2] + r < k0 or b_list[t, 2] - r > k1):
                    continue
                for c in range(5):
                    g_list[n, c] = b_list[t, c]
                n += 1
    return n


@njit(cache=True, nogil=True)
def _exact_runs(cand, n, pshape, rmax, bsize, bshape, b_start, b_list, k_radius, logcube, g_list, rowm, acc, out):
    # pragma: no cover - numba
    """Exact ALE of the candidates ``cand[:n]`` into ``out[:n]`` (see :func:`_exact`).

    ``cand`` holds ``tile * psize + idx``, sorted (:func:`_tile_order`): tiles
    of 2 x 2 x TILE_K voxels, raster order inside a tile. The foci that can
    reach a tile are gathered once; consecutive voxels along k form runs (at
    most RUN_MAX long). Per run, each gathered focus updates the
    per-experiment maxima (as smallest logs in ``rowm[e, v]``) over the
    voxels its window covers; each voxel's logs are then summed in experiment
    order, so every voxel gets exactly the arithmetic of :func:`_exact`.
    """
    psz = pshape[2]
    psy = pshape[1] * pshape[2]
    psize = pshape[0] * psy
    n_exp = rowm.shape[0] // RUN_MAX
    g_tile = -1
    n_g = 0
    c = 0
    while c < n:
        tile = cand[c] // psize
        idx0 = cand[c] - tile * psize
        L = 1
        while c + L < n and L < RUN_MAX and cand[c + L] == cand[c] + L:
            L += 1
        pi = idx0 // psy
        rem = idx0 - pi * psy
        pj = rem // psz
        pk0 = rem - pj * psz
        pk1 = pk0 + L - 1
        if tile != g_tile:
            g_tile = tile
            i0 = (pi // 2) * 2
            j0 = (pj // 2) * 2
            k0 = (pk0 // TILE_K) * TILE_K
            n_g = _gather(i0, i0 + 1, j0, j0 + 1, k0, k0 + TILE_K - 1, rmax, bsize, bshape, b_start, b_list,
                          k_radius, g_list)
        e_lo = n_exp
        e_hi = -1
        for t in range(n_g):
            kk = g_list[t, 3]
            r = k_radius[kk]
            di = abs(pi - g_list[t, 0])
            if di > r:
                continue
            dj = abs(pj - g_list[t, 1])
            if dj > r:
                continue
            fk = g_list[t, 2]
            a = max(pk0, fk - r)
            b = min(pk1, fk + r)
            if a > b:
                continue
            e = g_list[t, 4]
            base = e * RUN_MAX - pk0
            for k in range(a, b + 1):
                val = logcube[kk, di, dj, abs(k - fk)]
                if val < rowm[base + k]:
                    rowm[base + k] = val
            if e < e_lo:
                e_lo = e
            if e > e_hi:
                e_hi = e
        for v in range(L):
            acc[v] = 0.0
        for e in range(e_lo, e_hi + 1):
            off = e * RUN_MAX
            for v in range(L):
                acc[v] += rowm[off + v]
                rowm[off + v] = 0.0
        for v in range(L):
            out[c + v] = np.float32(1.0 - np.exp(acc[v]))
        c += L


@njit(cache=True, nogil=True)
def _tile_order(cand, m, pshape):  # pragma: no cover - numba
    """Replace the padded indices ``cand[:m]`` by ``tile * psize + idx`` and sort them (see :func:`_exact_runs`)."""
    psz = pshape[2]
    psy = pshape[1] * pshape[2]
    psize = pshape[0] * psy
    tj = (pshape[1] + 1) // 2
    tk = (pshape[2] + TILE_K - 1) // TILE_K
    for c in range(m):
        idx = cand[c]
        pi = idx // psy
        rem = idx - pi * psy
        pj = rem // psz
        pk = rem - pj * psz
        tile = ((pi // 2) * tj + pj // 2) * tk + pk // TILE_K
        cand[c] = tile * psize + idx
    cand[:m].sort()


@njit(cache=True, nogil=True)
def _exact(idx, pshape, k_radius, logcube, rmax, bsize, bshape, b_start, b_list, row):  # pragma: no cover
    """ALE at padded index ``idx`` in NiMARE's fused-permutation arithmetic.

    Per experiment the largest kernel value reaching the voxel (float32 MA),
    ``log1p(-MA)`` in float64 (looked up in one octant of the kernel: the smallest log), summed in
    experiment order, ``1 - exp(sum)`` stored as float32. Only foci in
    buckets within the widest kernel radius are visited; experiments that do
    not reach the voxel add 0.0, which leaves a float sum unchanged.
    """
    psz = pshape[2]
    psy = pshape[1] * pshape[2]
    pi = idx // psy
    rem = idx - pi * psy
    pj = rem // psz
    pk = rem - pj * psz
    bi0 = max(pi - rmax, 0) // bsize
    bi1 = min((pi + rmax) // bsize, bshape[0] - 1)
    bj0 = max(pj - rmax, 0) // bsize
    bj1 = min((pj + rmax) // bsize, bshape[1] - 1)
    bk0 = max(pk - rmax, 0) // bsize
    bk1 = min((pk + rmax) // bsize, bshape[2] - 1)
    e_lo = row.shape[0]
    e_hi = -1
    for bi in range(bi0, bi1 + 1):
        for bj in range(bj0, bj1 + 1):
            base = (bi * bshape[1] + bj) * bshape[2]
            for t in range(b_start[base + bk0], b_start[base + bk1 + 1]):
                kk = b_list[t, 3]
                r = k_radius[kk]
                di = pi - b_list[t, 0]
                if di < -r or di > r:
                    continue
                dj = pj - b_list[t, 1]
                if dj < -r or dj > r:
                    continue
                dk = pk - b_list[t, 2]
                if dk < -r or dk > r:
                    continue
                val = logcube[kk, abs(di), abs(dj), abs(dk)]
                if val < 0.0:
                    e = b_list[t, 4]
                    if val < row[e]:
                        row[e] = val
                    if e < e_lo:
                        e_lo = e
                    if e > e_hi:
                        e_hi = e
    s = 0.0
    for e in range(e_lo, e_hi + 1):
        s += row[e]
        row[e] = 0.0
    return np.float32(1.0 - np.exp(s))


@njit(cache=True, nogil=True)
def _sparse_rescan(fpad, f_group, pshape, mask_pad, c_delta, c_starts, cut, S, lab, cand, cand_b, n_cand):
    # pragma: no cover - numba
    """Add core voxels with bound >= ``cut`` (``S`` holds minus the bound at visited voxels)."""
    psz = pshape[2]
    psy = pshape[1] * pshape[2]
    for f in range(fpad.shape[0]):
        base = fpad[f, 0] * psy + fpad[f, 1] * psz + fpad[f, 2]
        kk = f_group[f]
        for m in range(c_starts[kk], c_starts[kk + 1]):
            idx = base + c_delta[m]
            b = -S[idx]
            if b >= cut and lab[idx] == 0 and mask_pad[idx]:
                cand[n_cand] = idx
                cand_b[n_cand] = b
                lab[idx] = -1
                n_cand += 1
    return n_cand


@njit(cache=True, nogil=True)
def _sparse_candidates(
    fpad, f_kernel, f_group, pshape, cshape, mask_pad, c_delta, c_val, c_cdelta, c_starts, t_delta, t_val, t_starts,
    cut_thr, kmax, shrink, slack, peak_min, S, T, lab, cells, cand, cand_b,
    k_radius, logcube, rmax, bsize, bshape, b_start, b_list, row,
):  # pragma: no cover - numba
    """Sparse bound: kernel cores voxel by voxel, tails per coarse cell.

    The bound at voxel v is ``S(v) + T(cell of v)``: ``S`` sums the kernel
    values >= tau (each focus's core) in float32 on the fine grid; ``T`` sums,
    per coarse cell of TAIL_CELL^3 voxels, each focus's largest value < tau in
    that cell. Voxels outside every core are bounded by T alone, so whole
    cells with T >= cut are candidates. With few foci the tails need no grid:
    ``slack`` (the sum over foci of their largest tail value, at most
    SLACK_SHARE of the smallest cut) bounds them everywhere and the tables are
    empty; every cut is then lowered by ``slack``. Candidates are taken at the
    threshold's cut and, if the exact ALE where the bound peaks is below the
    threshold, again at that value's cut. Returns ``(n_cand, lower)``
    (``lower``: that exact ALE, a lower bound on the maximum); leaves S, T and
    lab zero.
    """
    psz = pshape[2]
    psy = pshape[1] * pshape[2]
    csz = cshape[2]
    csy = cshape[1] * cshape[2]
    n_sub = TAIL_CELL * TAIL_CELL * TAIL_CELL
    n_cells = 0
    for f in range(fpad.shape[0]):
        pi, pj, pk = fpad[f, 0], fpad[f, 1], fpad[f, 2]
        base = pi * psy + pj * psz + pk
        kk = f_group[f]
        for m in range(c_starts[kk], c_starts[kk + 1]):
            S[base + c_delta[m]] += c_val[m]
        sub = ((pi % TAIL_CELL) * TAIL_CELL + pj % TAIL_CELL) * TAIL_CELL + pk % TAIL_CELL
        cbase = (pi // TAIL_CELL) * csy + (pj // TAIL_CELL) * csz + pk // TAIL_CELL
        g = kk * n_sub + sub
        for m in range(t_starts[g], t_starts[g + 1]):
            c = cbase + t_delta[m]
            if T[c] == 0.0:
                cells[n_cells] = c
                n_cells += 1
            T[c] += t_val[m]
    # bounds at core voxels, stored as -bound (marks the voxel visited); candidates at
    # the threshold's cut; the voxel with the largest bound
    cut_thr = np.float32(cut_thr - slack)
    best = np.float32(-1.0)
    i_best = -1
    n_cand = 0
    for f in range(fpad.shape[0]):
        pi, pj, pk = fpad[f, 0], fpad[f, 1], fpad[f, 2]
        base = pi * psy + pj * psz + pk
        kk = f_group[f]
        sub = ((pi % TAIL_CELL) * TAIL_CELL + pj % TAIL_CELL) * TAIL_CELL + pk % TAIL_CELL
        cbase = (pi // TAIL_CELL) * csy + (pj // TAIL_CELL) * csz + pk // TAIL_CELL
        c0 = c_starts[kk]
        n_core = c_starts[kk + 1] - c0
        cd0 = c0 * n_sub + sub * n_core
        for m in range(n_core):
            idx = base + c_delta[c0 + m]
            sv = S[idx]
            if sv > 0.0:
                b = sv + T[cbase + c_cdelta[cd0 + m]]
                S[idx] = -b
                if mask_pad[idx]:
                    if b > best:
                        best = b
                        i_best = idx
                    if b >= cut_thr:
                        cand[n_cand] = idx
                        cand_b[n_cand] = b
                        lab[idx] = -1
                        n_cand += 1
    lower = peak_min  # the focus voxel itself: every iteration's maximum is at least this
    cut = cut_thr
    if i_best >= 0:
        lower = max(lower, np.float64(_exact(i_best, pshape, k_radius, logcube, rmax, bsize,
                                             bshape, b_start, b_list, row)))
        cut_low = np.float32(_cut(lower, kmax, shrink) - slack)
        if cut_low < cut_thr:
            cut = cut_low
            n_cand = _sparse_rescan(fpad, f_group, pshape, mask_pad, c_delta, c_starts, cut, S, lab, cand,
                                    cand_b, n_cand)
    # voxels outside every core (S == 0) are bounded by T alone; core voxels of a
    # cell with T >= cut have S + T >= cut and are already candidates
    for q in range(n_cells):
        c = cells[q]
        tv = T[c]
        T[c] = 0.0
        if tv >= cut:
            ci = c // csy
            cj = (c - ci * csy) // csz
            ck = c - ci * csy - cj * csz
            for i in range(ci * TAIL_CELL, min((ci + 1) * TAIL_CELL, pshape[0])):
                for j in range(cj * TAIL_CELL, min((cj + 1) * TAIL_CELL, pshape[1])):
                    for k in range(ck * TAIL_CELL, min((ck + 1) * TAIL_CELL, pshape[2])):
                        idx = i * psy + j * psz + k
                        if S[idx] == 0.0 and mask_pad[idx] and lab[idx] == 0:
                            cand[n_cand] = idx
                            cand_b[n_cand] = tv
                            lab[idx] = -1
                            n_cand += 1
    for f in range(fpad.shape[0]):
        base = fpad[f, 0] * psy + fpad[f, 1] * psz + fpad[f, 2]
        kk = f_group[f]
        for m in range(c_starts[kk], c_starts[kk + 1]):
            S[base + c_delta[m]] = 0.0
    for c in range(n_cand):
        lab[cand[c]] = 0
    return n_cand, lower


@njit(cache=True, nogil=True)
def _dense_scan(rows_i, rows_j, rows_k0, rows_k1, pshape, mask_pad, E, R, A2, a2_flag, a2_k0, a2_k1,
                cut, srow, cand, cand_b):  # pragma: no cover - numba
    """Pass 3 of the dense bound (along i) fused with the candidate scan over in-mask rows.

    Returns ``(n_cand, index of the largest bound over all scanned in-mask
    voxels, that bound)``.
    """
    psz = pshape[2]
    psy = pshape[1] * pshape[2]
    n_cand = 0
    best = np.float32(-1.0)
    i_best = -1
    for q in range(rows_i.shape[0]):
        i = rows_i[q]
        j = rows_j[q]
        k0 = rows_k0[q]
        k1 = rows_k1[q]
        lo = k1 + 1
        hi = k0 - 1
        for t in range(-R, R + 1):
            line = (i + t) * pshape[1] + j
            if a2_flag[line]:
                lo = min(lo, max(k0, a2_k0[line]))
                hi = max(hi, min(k1, a2_k1[line]))
        if lo > hi:
            continue
        for k in range(lo, hi + 1):
            srow[k] = 0.0
        for t in range(-R, R + 1):
            line = (i + t) * pshape[1] + j
            if a2_flag[line]:
                w = E[t + R]
                a = max(lo, a2_k0[line])
                b = min(hi, a2_k1[line])
                src = line * psz
                for k in range(a, b + 1):
                    srow[k] += w * A2[src + k]
        base = i * psy + j * psz
        for k in range(lo, hi + 1):
            sv = srow[k]
            if mask_pad[base + k]:
                if sv > best:
                    best = sv
                    i_best = base + k
                if sv >= cut:
                    cand[n_cand] = base + k
                    cand_b[n_cand] = sv
                    n_cand += 1
    return n_cand, i_best, best


@njit(cache=True, nogil=True)
def _dense_candidates(
    fpad, f_kernel, pshape, mask_pad, w_own, E, R, rows_i, rows_j, rows_k0, rows_k1,
    A1, l_flag, l_k0, l_k1, lines, A2, a2_flag, a2_k0, a2_k1, a2_lines, srow,
    cut_thr, kmax, shrink, k_radius, logcube, rmax, bsize, bshape, b_start, b_list, row, cand, cand_b,
):  # pragma: no cover - numba
    """Dense bound: the sum of all kernels by a separable convolution (three 1-D passes).

    Pass 1 (along k) adds each focus's own 1-D weights to its line; passes 2
    (along j) and 3 (along i) use the envelope ``E`` of every kernel's 1-D
    weights, so the result bounds sum_f k_f(v) for kernels of any width.
    Candidates: in-mask voxels with bound >= the cut of the threshold; if the
    exact ALE where the bound peaks is below the threshold (the iteration's
    maximum lies below it), the scan is repeated with that value's cut.
    Returns ``(n_cand, lower)`` (``lower``: that exact ALE, a lower bound on
    the maximum); leaves the scratch zero.
    """
    psz = pshape[2]
    P1 = pshape[1]
    n_lines = 0
    for f in range(fpad.shape[0]):
        pi, pj, pk = fpad[f, 0], fpad[f, 1], fpad[f, 2]
        line = pi * P1 + pj
        if not l_flag[line]:
            l_flag[line] = True
            l_k0[line] = pk - R
            l_k1[line] = pk + R
            lines[n_lines] = line
            n_lines += 1
        else:
            l_k0[line] = min(l_k0[line], pk - R)
            l_k1[line] = max(l_k1[line], pk + R)
        kk = f_kernel[f]
        base = line * psz + pk - R
        for t in range(2 * R + 1):
            A1[base + t] += w_own[kk, t]
    # pass 2 (along j), scatter form: line (i, j) feeds rows (i, j - R .. j + R)
    n_a2 = 0
    for q in range(n_lines):
        line = lines[q]
        k0 = l_k0[line]
        k1 = l_k1[line]
        src = line * psz
        for t in range(-R, R + 1):
            out = line - t
            if not a2_flag[out]:
                a2_flag[out] = True
                a2_k0[out] = k0
                a2_k1[out] = k1
                a2_lines[n_a2] = out
                n_a2 += 1
                dst = out * psz
                w = E[t + R]
                for k in range(k0, k1 + 1):
                    A2[dst + k] = w * A1[src + k]
            else:
                o0 = a2_k0[out]
                o1 = a2_k1[out]
                dst = out * psz
                if k0 < o0:  # widen the row: clear the new part first
                    for k in range(k0, o0):
                        A2[dst + k] = 0.0
                    a2_k0[out] = k0
                if k1 > o1:
                    for k in range(o1 + 1, k1 + 1):
                        A2[dst + k] = 0.0
                    a2_k1[out] = k1
                w = E[t + R]
                for k in range(k0, k1 + 1):
                    A2[dst + k] += w * A1[src + k]
    for q in range(n_lines):
        line = lines[q]
        for k in range(l_k0[line], l_k1[line] + 1):
            A1[line * psz + k] = 0.0
        l_flag[line] = False
    n_cand, i_best, best = _dense_scan(rows_i, rows_j, rows_k0, rows_k1, pshape, mask_pad, E, R, A2, a2_flag,
                                       a2_k0, a2_k1, cut_thr, srow, cand, cand_b)
    lower = 0.0
    if i_best >= 0:
        lower = np.float64(_exact(i_best, pshape, k_radius, logcube, rmax, bsize, bshape,
                                  b_start, b_list, row))
        cut_low = np.float32(_cut(lower, kmax, shrink))
        if cut_low < cut_thr:
            n_cand, i_best, best = _dense_scan(rows_i, rows_j, rows_k0, rows_k1, pshape, mask_pad, E, R, A2,
                                               a2_flag, a2_k0, a2_k1, cut_low, srow, cand, cand_b)
    for q in range(n_a2):
        out = a2_lines[q]
        for k in range(a2_k0[out], a2_k1[out] + 1):
            A2[out * psz + k] = 0.0
        a2_flag[out] = False
    return n_cand, lower


@njit(cache=True, nogil=True)
def _one_iteration(draw, dense, inv, scr):  # pragma: no cover - numba
    """Statistics of one iteration: ``(max ALE, largest cluster, largest mass)``.

    ``inv``: loop invariants (:meth:`_NullPlan.invariants`); ``scr``: one
    thread's scratch (:meth:`_NullJob.scratch`), zero on entry and exit.
    """
    (inmask_ijk, org, pshape, mask_pad, f_kernel, f_group, f_exp, k_radius, logcube, kmax, rmax, bsize, bshape,
     thr, shrink, slack, peak_min, cshape, c_delta, c_val, c_cdelta, c_starts, t_delta, t_val, t_starts,
     w_own, E, R, rows_i, rows_j, rows_k0, rows_k1) = inv
    (S, T, lab, cells, cand, cand_b, fpad, b_start, b_fill, b_list, row, g_list, rowm, acc,
     A1, l_flag, l_k0, l_k1, lines, A2, a2_flag, a2_k0, a2_k1, a2_lines, srow) = scr
    for f in range(draw.shape[0]):
        v = draw[f]
        fpad[f, 0] = inmask_ijk[v, 0] - org[0]
        fpad[f, 1] = inmask_ijk[v, 1] - org[1]
        fpad[f, 2] = inmask_ijk[v, 2] - org[2]
    _bucket_foci(fpad, f_kernel, f_exp, bsize, bshape, b_start, b_fill, b_list)
    cut_thr = np.float32(_cut(thr, kmax, shrink))
    if dense:
        n_cand, lower = _dense_candidates(
            fpad, f_kernel, pshape, mask_pad, w_own, E, R, rows_i, rows_j, rows_k0, rows_k1,
            A1, l_flag, l_k0, l_k1, lines, A2, a2_flag, a2_k0, a2_k1, a2_lines, srow,
            cut_thr, kmax, shrink, k_radius, logcube, rmax, bsize, bshape, b_start, b_list, row, cand, cand_b,
        )
    else:
        n_cand, lower = _sparse_candidates(
            fpad, f_kernel, f_group, pshape, cshape, mask_pad, c_delta, c_val, c_cdelta, c_starts, t_delta, t_val, t_starts,
            cut_thr, kmax, shrink, slack, peak_min, S, T, lab, cells, cand, cand_b,
            k_radius, logcube, rmax, bsize, bshape, b_start, b_list, row,
        )
    if n_cand == 0:
        return np.float32(0.0), 0, 0.0
    cut2 = _cut(min(thr, lower), kmax, shrink)
    # candidates that can hold the maximum or exceed the threshold, in raster order
    m = 0
    for c in range(n_cand):
        if cand_b[c] + slack >= cut2:
            cand[m] = cand[c]
            m += 1
    _tile_order(cand, m, pshape)
    _exact_runs(cand, m, pshape, rmax, bsize, bshape, b_start, b_list, k_radius, logcube, g_list, rowm, acc, cand_b)
    psize = pshape[0] * pshape[1] * pshape[2]
    max_ale = np.float32(0.0)
    n_above = 0
    for c in range(m):
        ale = cand_b[c]
        if ale > max_ale:
            max_ale = ale
        if np.float64(ale) > thr:
            cand[n_above] = cand[c] % psize  # the front of the list is already visited
            cand_b[n_above] = ale
            n_above += 1
    if n_above == 0:
        return max_ale, 0, 0.0
    # raster order (NiMARE's summation order of cluster mass)
    order = np.argsort(cand[:n_above])
    above_val = cand_b[:n_above][order]
    cand[:n_above] = cand[:n_above][order]
    cand_b[:n_above] = above_val
    # Face-connected components among supra-threshold voxels (union-find;
    # forward neighbours suffice because adjacency is symmetric). Every other
    # voxel is below threshold, so these are the components of the full volume.
    above_idx = cand[:n_above]  # raster order = NiMARE's summation order of cluster mass
    parent = np.arange(n_above)
    psz = pshape[2]
    psy = pshape[1] * pshape[2]
    for a in range(n_above):
        lab[above_idx[a]] = a + 1
    for a in range(n_above):
        idx = above_idx[a]
        for d in (1, psz, psy):
            b = lab[idx + d] - 1
            if b >= 0:
                ra = _find(parent, a)
                rb = _find(parent, b)
                if ra != rb:
                    if ra < rb:
                        parent[rb] = ra
                    else:
                        parent[ra] = rb
    sizes = np.zeros(n_above, dtype=np.int64)
    mass = np.zeros(n_above, dtype=np.float64)
    for a in range(n_above):
        root = _find(parent, a)
        sizes[root] += 1
        mass[root] += np.float64(cand_b[a]) - thr
        lab[above_idx[a]] = 0
    return max_ale, sizes.max(), mass.max()


@njit(cache=True, nogil=True)
def _run_serial(draws, dense, inv, scr, out_max, out_size, out_mass):  # pragma: no cover - numba
    """Iterations one after the other on one thread (no numba parallel layer:
    safe when several Dask worker threads call it at once)."""
    for it in range(draws.shape[0]):
        mx, sz, ms = _one_iteration(draws[it], dense, inv, scr)
        out_max[it] = mx
        out_size[it] = sz
        out_mass[it] = ms


@njit(parallel=True, cache=True)
def _run_parallel(draws, dense, inv, scr, out_max, out_size, out_mass):  # pragma: no cover - numba
    """Iterations split into one contiguous run per thread, each with its own
    scratch (``scr`` holds one row per thread); results are indexed by
    iteration, so they do not depend on the number of threads."""
    n_iter = draws.shape[0]
    n_chunks = scr[0].shape[0]
    for c in prange(n_chunks):
        mine = (scr[0][c], scr[1][c], scr[2][c], scr[3][c], scr[4][c], scr[5][c], scr[6][c], scr[7][c],
                scr[8][c], scr[9][c], scr[10][c], scr[11][c], scr[12][c], scr[13][c], scr[14][c], scr[15][c],
                scr[16][c], scr[17][c], scr[18][c], scr[19][c], scr[20][c], scr[21][c], scr[22][c], scr[23][c],
                scr[24][c])
        lo = (n_iter * c) // n_chunks
        hi = (n_iter * (c + 1)) // n_chunks
        for it in range(lo, hi):
            mx, sz, ms = _one_iteration(draws[it], dense, inv, mine)
            out_max[it] = mx
            out_size[it] = sz
            out_mass[it] = ms


@dataclass(eq=False)
class _NullPlan:
    """Loop invariants of a Monte Carlo run (built once per problem and threshold)."""

    origin: np.ndarray
    pshape: np.ndarray
    mask_pad: np.ndarray
    kmax: float
    rmax: int
    k_group: np.ndarray
    bsize: int
    bshape: np.ndarray
    logcube: np.ndarray
    k_radius: np.ndarray
    shrink: float
    dense: bool
    # sparse bound: cores (fine grid) and tails (coarse cells, or a global slack) per kernel
    slack: float
    peak_min: float
    cshape: np.ndarray
    c_delta: np.ndarray
    c_val: np.ndarray
    c_cdelta: np.ndarray
    c_starts: np.ndarray
    t_delta: np.ndarray
    t_val: np.ndarray
    t_starts: np.ndarray
    # dense bound
    w_own: np.ndarray
    envelope: np.ndarray
    rows: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    work: dict

    def invariants(self, inmask: np.ndarray, f_kernel: np.ndarray, f_exp: np.ndarray, thr: float) -> tuple:
        """The tuple :func:`_one_iteration` unpacks."""
        R = (self.envelope.shape[0] - 1) // 2
        return (inmask, self.origin, self.pshape, self.mask_pad, f_kernel, self.k_group[f_kernel], f_exp,
                self.k_radius, self.logcube,
                float(self.kmax), int(self.rmax), int(self.bsize), self.bshape, float(thr), float(self.shrink),
                float(self.slack), float(self.peak_min), self.cshape, self.c_delta, self.c_val, self.c_cdelta, self.c_starts, self.t_delta, self.t_val,
                self.t_starts, self.w_own, self.envelope, int(R), *self.rows)


def _one_d_weights(kernel) -> np.ndarray:
    """float32 1-D weights ``w`` with ``w_i w_j w_k >= MA value`` at every kernel offset (rounded up)."""
    from painmeta.ale.kernel import _gaussian_weights

    r = kernel.radius
    w = _gaussian_weights(kernel.sigma_vox)
    c = (len(w) - 1) // 2
    w = w[c - r:c + r + 1] if c >= r else np.pad(w, (r - c, r - c))
    w32 = np.nextafter(w.astype(np.float32), np.float32(np.inf))
    off = kernel.offsets.astype(np.int64) + r
    prod = w32[off[:, 0]].astype(np.float64) * w32[off[:, 1]] * w32[off[:, 2]]
    ratio = float(np.max(kernel.values.astype(np.float64) / np.maximum(prod, 1e-300)))
    if ratio > 1.0:  # never seen: the cube is the outer product of these weights
        w32 = (w32 * np.float32(ratio ** (1.0 / 3.0) * (1 + 1e-6))).astype(np.float32)
    return w32


def _null_plan(problem: ALEProblem, ale_threshold: float, method: str = "auto") -> _NullPlan:
    """Loop invariants of both bounds, and the choice between them (see module docstring)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    geom = problem.mask
    thr = float(ale_threshold)
    rmax = max(k.radius for k in problem.kernels)
    pad = rmax + 1
    # Scratch grid = bounding box of the mask plus the widest kernel (+1 so
    # face neighbours of any in-mask voxel exist); random foci are in-mask, so
    # every kernel window fits without bounds checks.
    lo = geom.inmask_ijk.min(axis=0).astype(np.int64) - pad
    hi = geom.inmask_ijk.max(axis=0).astype(np.int64) + pad
    pshape = (hi - lo + 1).astype(np.int64)
    psz, psy = int(pshape[2]), int(pshape[1] * pshape[2])
    n_k = len(problem.kernels)
    R = rmax
    lmax = 2 * R + 1
    cubes = np.zeros((n_k, lmax, lmax, lmax), dtype=np.float32)
    radius = np.zeros(n_k, dtype=np.int64)
    w_own = np.zeros((n_k, lmax), dtype=np.float32)
    for q, k in enumerate(problem.kernels):
        r = k.radius
        radius[q] = r
        cubes[q][tuple((k.offsets.astype(np.int64) + r).T)] = k.values
        w_own[q, R - r:R + r + 1] = _one_d_weights(k)  # float32, >= the kernel's 1-D factors
    # log1p(-MA) per kernel value, one octant (kernels are mirror-symmetric on each
    # axis: products of symmetric 1-D weights), so the table stays in cache
    octant = np.zeros((n_k, R + 1, R + 1, R + 1), dtype=np.float32)
    for q, k in enumerate(problem.kernels):
        r = k.radius
        cube = cubes[q, :2 * r + 1, :2 * r + 1, :2 * r + 1]
        if not all(np.array_equal(cube, np.flip(cube, axis=a)) for a in range(3)):
            raise AssertionError("ALE kernel is not mirror-symmetric")  # pragma: no cover - by construction
        octant[q, :r + 1, :r + 1, :r + 1] = cube[r:, r:, r:]
    logcube = _log_table(octant)
    mask_pad = np.zeros(tuple(pshape), dtype=np.bool_)
    ijk = geom.inmask_ijk.astype(np.int64) - lo
    mask_pad[tuple(ijk.T)] = True
    has_foci = problem.foci_per_experiment() > 0
    peaks = [problem.kernels[problem.exp_kernel[e]].peak for e in range(problem.n_experiments) if has_foci[e]]
    kmax = float(max(peaks)) if peaks else 0.0
    # float32 sums of at most 2 n_foci + 1 non-negative terms
    shrink = 1.0 - 2.0 * (2 * max(problem.n_foci, 1) + 1) * 2.0**-24
    # sparse bound: kernel values >= tau_core on the fine grid (the core), values
    # in [tau_far, tau_core) as the largest value per coarse cell, values < tau_far
    # as one global slack (the sum over foci of their largest such value)
    peak_min = float(min(peaks)) if peaks else 0.0
    cut_thr = float(_cut(thr, kmax, shrink))
    cut_min = float(_cut(min(thr, peak_min), kmax, shrink)) if peaks else cut_thr
    tau_core = cut_thr / CORE_DIVISOR
    tau_far = SLACK_SHARE * cut_min / max(problem.n_foci, 1)
    cb = TAIL_CELL
    cshape = -(-pshape // cb)
    csz, csy = int(cshape[2]), int(cshape[1] * cshape[2])
    subs = np.array([(a, b, c) for a in range(cb) for b in range(cb) for c in range(cb)], dtype=np.int64)
    # The bound may use any kernel >= the true one: kernels of similar peak share
    # one bound kernel (their pointwise maximum), which keeps the tables small.
    order_k = np.argsort([k.peak for k in problem.kernels])
    k_group = np.zeros(n_k, dtype=np.int64)
    groups: list[list[int]] = []
    for q in order_k:
        if groups and problem.kernels[q].peak <= GROUP_RATIO * problem.kernels[groups[-1][0]].peak:
            groups[-1].append(int(q))
        else:
            groups.append([int(q)])
        k_group[q] = len(groups) - 1
    centred = np.zeros((n_k, lmax, lmax, lmax), dtype=np.float32)  # every kernel centred at R
    for q, k in enumerate(problem.kernels):
        centred[q][tuple((k.offsets.astype(np.int64) + R).T)] = k.values
    n_per_group = np.bincount(k_group[problem.exp_kernel[problem.focus_exp]], minlength=len(groups))
    slack = 0.0
    c_delta, c_val, c_cdelta, c_starts = [], [], [], [0]
    t_delta, t_val, t_starts = [], [], [0]
    core_sizes, tail_sizes = [], []
    for q, members in enumerate(groups):
        env = np.max(centred[members], axis=0)
        idx = np.argwhere(env > 0)
        off = (idx - R).astype(np.int64)
        vals = env[tuple(idx.T)].astype(np.float32)
        core = vals >= tau_core
        core[np.argmax(vals)] = True  # the focus voxel itself is always on the fine grid
        mid = ~core & (vals >= tau_far)
        far = ~core & ~mid
        flat = off[:, 0] * psy + off[:, 1] * psz + off[:, 2]
        order = np.argsort(flat[core], kind="stable")  # memory order
        c_off = off[core][order]
        c_delta.append(flat[core][order])
        c_val.append(vals[core][order])
        c_starts.append(c_starts[-1] + int(core.sum()))
        core_sizes.append(int(core.sum()))
        if far.any():
            slack += float(n_per_group[q]) * float(vals[far].max())
        for sub in subs:
            # coarse cell of each core voxel relative to the focus's cell
            dc = (sub + c_off) // cb
            c_cdelta.append(dc[:, 0] * csy + dc[:, 1] * csz + dc[:, 2])
            # largest mid value per coarse cell
            dt = (sub + off[mid]) // cb
            key = dt[:, 0] * csy + dt[:, 1] * csz + dt[:, 2]
            uniq, inv = np.unique(key, return_inverse=True)
            best = np.zeros(uniq.size, dtype=np.float32)
            np.maximum.at(best, inv, vals[mid])
            keep = best > 0
            t_delta.append(uniq[keep])
            t_val.append(best[keep])
            t_starts.append(t_starts[-1] + int(keep.sum()))
            tail_sizes.append(int(keep.sum()))
    if slack > 0:
        # float32 rounding of the slack sum itself
        slack = float(np.nextafter(np.float32(slack * (1 + 4 * problem.n_foci * 2.0**-24)), np.float32(np.inf)))
    envelope = w_own.max(axis=0)
    # in-mask rows (i, j) with their k-extent, padded coordinates
    any_k = mask_pad.any(axis=2)
    ri, rj = np.nonzero(any_k)
    first = np.argmax(mask_pad[ri, rj, :], axis=1)
    last = pshape[2] - 1 - np.argmax(mask_pad[ri, rj, ::-1], axis=1)
    rows = (ri.astype(np.int64), rj.astype(np.int64), first.astype(np.int64), last.astype(np.int64))
    work = _work_estimate(problem, k_group, core_sizes, tail_sizes, radius, len(ri),
                          float(np.mean(last - first + 1)))
    work["bound_kernels"] = len(groups)
    work["slack"] = slack
    if method == "auto":
        dense = work["dense"] < work["sparse"]
    else:
        dense = method == "dense"
    if problem.n_foci <= LINEAR_FOCI:
        bsize, bshape = 1 << 30, np.ones(3, dtype=np.int64)  # one bucket: exact ALE loops over all foci
    else:
        bsize, bshape = BUCKET, -(-pshape // BUCKET)
    return _NullPlan(
        origin=lo, pshape=pshape, mask_pad=mask_pad.reshape(-1), kmax=kmax, rmax=int(rmax), k_group=k_group,
        bsize=int(bsize), bshape=bshape.astype(np.int64), slack=float(slack), peak_min=peak_min, logcube=logcube,
        k_radius=radius, shrink=float(shrink), dense=bool(dense),
        cshape=cshape.astype(np.int64), c_delta=np.concatenate(c_delta).astype(np.int32),
        c_val=np.concatenate(c_val).astype(np.float32), c_cdelta=np.concatenate(c_cdelta).astype(np.int32),
        c_starts=np.asarray(c_starts, dtype=np.int64),
        t_delta=(np.concatenate(t_delta) if t_delta else np.zeros(0)).astype(np.int32),
        t_val=(np.concatenate(t_val) if t_val else np.zeros(0)).astype(np.float32),
        t_starts=np.asarray(t_starts, dtype=np.int64),
        w_own=w_own, envelope=envelope, rows=rows, work=work,
    )


def _work_estimate(problem: ALEProblem, k_group: np.ndarray, core_sizes: list, tail_sizes: list,
                   radius: np.ndarray, n_rows: int, row_len: float) -> dict:
    """Expected work per iteration of both bounds, in scattered-value units (for ``method="auto"``).

    Sparse bound: every focus adds, scans and clears its core and adds and
    clears its tail cells. Dense bound: the passes of :func:`_dense_candidates`
    over the lines and rows the foci are expected to reach (uniform foci);
    vectorised row work counts DENSE_UNIT_COST per value.
    """
    F = max(problem.n_foci, 1)
    fk = k_group[problem.exp_kernel[problem.focus_exp]]
    n_sub = TAIL_CELL**3
    sparse = float(sum(3 * core_sizes[q] + 2 * np.mean(tail_sizes[q * n_sub:(q + 1) * n_sub]) for q in fk))
    rmax = int(radius.max())
    L = 2 * rmax + 1
    lines = n_rows * (1.0 - np.exp(-F / max(n_rows, 1)))  # distinct (i, j) lines with foci
    a2_rows = n_rows * (1.0 - np.exp(-lines * L / max(n_rows, 1)))
    ext = min(row_len, L + 2 * rmax * F / max(n_rows, 1))
    sources = min(lines * L * L, a2_rows * L)  # (row, source row) pairs of pass 3
    dense = DENSE_UNIT_COST * (lines * L * ext + sources * ext) + n_rows * L + a2_rows * ext
    return {"sparse": sparse, "dense": float(dense), "core": float(np.mean(core_sizes)),
            "tail_cells": float(np.mean(tail_sizes))}


@dataclass(eq=False)
class _NullJob:
    """Everything a Monte Carlo block needs (picklable: Dask sends it to each worker once).

    Scratch volumes are per thread, made on first use in the process that
    runs the block, and never pickled.
    """

    inmask: np.ndarray
    f_kernel: np.ndarray
    f_exp: np.ndarray
    n_experiments: int
    plan: _NullPlan
    thr: float

    def __post_init__(self) -> None:
        self._scratch: dict[tuple[int, int], tuple[np.ndarray, ...]] = {}

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_scratch"] = {}
        return state

    @property
    def n_foci(self) -> int:
        return int(self.f_exp.shape[0])

    @property
    def n_voxels(self) -> int:
        return int(self.inmask.shape[0])

    def scratch(self, threads: int) -> tuple[np.ndarray, ...]:
        """Per-thread scratch (one row per thread; zero between iterations), reused across blocks."""
        key = (threading.get_ident(), threads)
        if key not in self._scratch:
            p = self.plan
            psize = int(np.prod(p.pshape))
            nb = int(np.prod(p.bshape))
            n_lines = int(p.pshape[0] * p.pshape[1])
            nf = max(self.n_foci, 1)
            t = threads
            sparse = not p.dense
            dense = p.dense
            csize = int(np.prod(p.cshape))

            def z(n: int, dtype: type, on: bool = True) -> np.ndarray:
                return np.zeros((t, n if on else 0), dtype=dtype)

            self._scratch[key] = (
                z(psize, np.float32, sparse),  # S
                z(csize, np.float32, sparse),  # T
                z(psize, np.int32),  # lab
                z(csize, np.int64, sparse),  # cells
                z(psize, np.int64),  # cand
                z(psize, np.float32),  # cand_b
                np.zeros((t, nf, 3), dtype=np.int64),  # fpad
                z(nb + 1, np.int64),  # b_start
                z(nb, np.int64),  # b_fill
                np.zeros((t, nf, 5), dtype=np.int64),  # b_list
                z(max(self.n_experiments, 1), np.float64),  # row
                np.zeros((t, nf, 5), dtype=np.int64),  # g_list
                z(max(self.n_experiments, 1) * RUN_MAX, np.float64),  # rowm
                z(RUN_MAX, np.float64),  # acc
                z(psize, np.float32, dense),  # A1
                z(n_lines, np.bool_, dense),  # l_flag
                z(n_lines, np.int64, dense),  # l_k0
                z(n_lines, np.int64, dense),  # l_k1
                z(n_lines, np.int64, dense),  # lines
                z(psize, np.float32, dense),  # A2
                z(n_lines, np.bool_, dense),  # a2_flag
                z(n_lines, np.int64, dense),  # a2_k0
                z(n_lines, np.int64, dense),  # a2_k1
                z(n_lines, np.int64, dense),  # a2_lines
                z(int(p.pshape[2]), np.float32, dense),  # srow
            )
        return self._scratch[key]

    def run(self, draws: np.ndarray, n_threads: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Statistics of the iterations in ``draws`` (``(n, n_foci)`` in-mask indices)."""
        n = draws.shape[0]
        out_max = np.zeros(n, dtype=np.float32)
        out_size = np.zeros(n, dtype=np.int64)
        out_mass = np.zeros(n, dtype=np.float64)
        if n == 0:
            return out_max, out_size, out_mass
        threads = max(1, min(int(n_threads), numba.config.NUMBA_NUM_THREADS, n))
        scr = self.scratch(threads)
        inv = self.plan.invariants(self.inmask, self.f_kernel, self.f_exp, self.thr)
        if threads == 1:
            _run_serial(draws, self.plan.dense, inv, tuple(a[0] for a in scr), out_max, out_size, out_mass)
        else:
            prev = numba.get_num_threads()
            numba.set_num_threads(threads)
            try:
                _run_parallel(draws, self.plan.dense, inv, scr, out_max, out_size, out_mass)
            finally:
                numba.set_num_threads(prev)
        return out_max, out_size, out_mass


def _null_job(problem: ALEProblem, ale_threshold: float, method: str = "auto") -> _NullJob:
    plan = _null_plan(problem, ale_threshold, method)
    f_kernel = problem.exp_kernel[problem.focus_exp].astype(np.int64)
    return _NullJob(problem.mask.inmask_ijk.astype(np.int64), f_kernel, problem.focus_exp.astype(np.int64),
                    problem.n_experiments, plan, float(ale_threshold))



def _block_draws(block: Block, rng: np.random.Generator, n_foci: int, n_voxels: int) -> np.ndarray:
    """The random foci of one block of the in-house stream (``(block.size, n_foci)`` int64)."""
    return rng.integers(0, n_voxels, size=(block.size, n_foci), dtype=np.int64)


def _null_block(block: Block, rng: np.random.Generator, job: _NullJob, n_threads: int) -> tuple:
    """One executor block of the Monte Carlo null (module-level: Dask pickles it)."""
    return job.run(_block_draws(block, rng, job.n_foci, job.n_voxels), n_threads)


def draw_null_foci(problem: ALEProblem, n_iters: int, seed: int) -> np.ndarray:
    """Random foci for the Monte Carlo null (the in-house stream).

    Each focus of each iteration is an independent uniform draw among the
    in-mask voxels. Iterations come in blocks of
    :data:`painmeta.ale.executor.BLOCK_SIZE`; block ``b`` draws from
    :func:`painmeta.ale.executor.block_rng` ``(seed, b)`` (a ``SeedSequence``
    spawn child), so the stream - and every result computed from it - does not
    depend on how blocks are spread over threads, tasks or Dask workers, and
    the first ``m`` iterations are the same for any ``n_iters >= m``.

    Returns
    -------
    numpy.ndarray
        ``(n_iters, n_foci)`` int64 indices into ``problem.mask.inmask_ijk``,
        focus order as in ``problem``.
    """
    blocks = split_blocks(int(n_iters), BLOCK_SIZE)
    parts = [_block_draws(b, block_rng(int(seed), b.index), problem.n_foci, problem.mask.n_voxels) for b in blocks]
    if not parts:
        return np.zeros((0, problem.n_foci), dtype=np.int64)
    return np.concatenate(parts, axis=0)


def null_statistics(
    problem: ALEProblem,
    ale_threshold: float,
    n_iters: int | None = None,
    seed: int | None = None,
    draws: np.ndarray | None = None,
    n_threads: int | None = None,
    progress: bool = False,
    executor: "Executor | str | None" = None,
    chunk_blocks: int | None = None,
    method: str = "auto",
) -> pd.DataFrame:
    """Monte Carlo cluster null: one row per iteration.

    Parameters
    ----------
    problem : ALEProblem
    ale_threshold : float
        Cluster-forming ALE value (voxels strictly above it are supra-threshold).
    n_iters, seed : int
        Number of iterations and seed of the in-house stream
        (:func:`draw_null_foci`); ignored when ``draws`` is given.
    draws : numpy.ndarray, optional
        Explicit random foci, ``(n_iters, n_foci)`` indices into
        ``problem.mask.inmask_ijk``. Feeding NiMARE's own draws here is how
        per-iteration equality with NiMARE is tested; always runs in-process.
    n_threads : int, optional
        numba threads per task (default: all configured, ``NUMBA_NUM_THREADS``;
        on Dask one per task, since every worker thread runs its own task).
    progress : bool
        Show a tqdm progress bar.
    executor : Executor or scheduler spec, optional
        Where the blocks of iterations run (:func:`painmeta.ale.executor.get_executor`):
        in-process by default, ``"local"``, ``"tcp://HOST:PORT"``. The result
        is byte-identical for any executor, number of workers and ``chunk_blocks``.
    chunk_blocks : int, optional
        Blocks of :data:`~painmeta.ale.executor.BLOCK_SIZE` iterations per task.
    method : {"auto", "sparse", "dense"}
        Upper bound used to find the voxels that matter (module docstring);
        results are identical, only speed differs. "auto" picks by estimated work.

    Returns
    -------
    pandas.DataFrame
        Columns ``max_ale`` (float32), ``max_cluster_size`` (voxels, int64),
        ``max_cluster_mass`` (float32; accumulated in float64, stored in
        float32 like NiMARE).
    """
    if draws is None and (n_iters is None or seed is None):
        raise ValueError("give draws, or n_iters and seed")
    if draws is not None:
        draws = np.ascontiguousarray(draws, dtype=np.int64)
        if draws.ndim != 2 or draws.shape[1] != problem.n_foci:
            raise ValueError(f"draws must be (n_iters, {problem.n_foci}), got {draws.shape}")
        if draws.size and (draws.min() < 0 or draws.max() >= problem.mask.n_voxels):
            raise ValueError("draws must index in-mask voxels")
        n = draws.shape[0]
    else:
        n = int(n_iters)
        if n < 0 or int(seed) < 0:
            raise ValueError(f"n_iters and seed must be non-negative, got {n_iters}, {seed}")
    job = _null_job(problem, ale_threshold, method)
    threads = int(n_threads or numba.config.NUMBA_NUM_THREADS)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="in-house Monte Carlo", unit="it")
    try:
        if draws is not None:
            parts = []
            step = BATCH_ITERS * max(threads, 1)
            for lo in range(0, n, step):
                parts.append(job.run(draws[lo:lo + step], threads))
                if bar is not None:
                    bar.update(min(n, lo + step) - lo)
        else:
            ex = get_executor(executor)
            try:
                if ex.threads_per_task is not None:
                    threads = ex.threads_per_task
                parts = map_blocks(_null_block, n, int(seed), executor=ex, chunk_blocks=chunk_blocks,
                                   progress=None if bar is None else bar.update, job=job, n_threads=threads)
            finally:
                if ex is not executor:
                    ex.close()
    finally:
        if bar is not None:
            bar.close()
    if parts:
        out_max, out_size, out_mass = (np.concatenate(c) for c in zip(*parts))
    else:
        out_max, out_size, out_mass = np.zeros(0, np.float32), np.zeros(0, np.int64), np.zeros(0, np.float64)
    return pd.DataFrame(
        {
            "max_ale": out_max,
            "max_cluster_size": out_size,
            "max_cluster_mass": out_mass.astype(np.float32),
        }
    )


# ------------------------------------------------------------- observed fit


def numba_threads() -> int:
    """numba threads available (``NUMBA_NUM_THREADS``, default: CPU count)."""
    return int(numba.config.NUMBA_NUM_THREADS)


__all__ = ["draw_null_foci", "null_statistics", "numba_threads", "run_inhouse"]


def run_inhouse(
    foci: pd.DataFrame,
    sample_sizes: Mapping[str, float],
    n_iters: int,
    seed: int,
    voxel_thresh: float = 0.001,
    cluster_alpha: float = 0.05,
    n_cores: int | None = None,
    name: str = "ale",
    contributions: bool = True,
    experiment_order: Sequence[str] | None = None,
    draws: np.ndarray | None = None,
    progress: bool = False,
    executor: "Executor | str | None" = None,
    inference: str = "cluster_size",
    focus_placement: str = "voxel",
) -> "ALEResult":
    """Run the whole ALE with the in-house engine; return an ``ALEResult``.

    Parameters
    ----------
    foci, sample_sizes, experiment_order
        See :func:`make_problem`.
    n_iters, seed : int
        Monte Carlo iterations and seed of the in-house random stream
        (:func:`draw_null_foci`); ``draws`` overrides both.
    voxel_thresh, cluster_alpha : float
        Cluster-forming voxel p and cluster-level FWE alpha.
    n_cores : int, optional
        numba threads for the null.
    contributions : bool
        Compute jackknife and focus-count tables for significant clusters.
    executor : Executor or scheduler spec, optional
        Where the Monte Carlo blocks run (:func:`null_statistics`); default in-process.
    inference : {"cluster_size", "cluster_mass", "voxel"}
        Primary inference (decides ``significant``); all three are computed
        from the same Monte Carlo null.
    focus_placement : {"voxel", "exact"}
        Centre the observed kernels on the nearest voxel (NiMARE) or at the
        exact coordinate (GingerALE). The Monte Carlo null draws random foci
        at in-mask voxel centres in both cases (see :func:`null_statistics`
        and the ALE page for why).
    """
    # Analyses sit above the engines (ANALYSIS.md section 7): imported at call time.
    from painmeta.ale.contributions import focus_counts, jackknife
    from painmeta.ale.results import ALEResult

    t0 = time.perf_counter()
    problem = make_problem(foci, sample_sizes, experiment_order=experiment_order, focus_placement=focus_placement)
    obs = fit_observed(problem, voxel_thresh)
    t1 = time.perf_counter()
    null = null_statistics(problem, obs.ale_threshold, n_iters, seed, draws=draws, n_threads=n_cores,
                           progress=progress, executor=executor)
    t2 = time.perf_counter()
    geom = problem.mask
    labels, n = label_clusters(obs.ale, obs.ale_threshold, geom)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    masses = cluster_masses(obs.ale, labels, n, obs.ale_threshold, geom)
    p_size = null_to_p(sizes, null["max_cluster_size"].to_numpy()) if n else np.zeros(0)
    p_mass = null_to_p(masses, null["max_cluster_mass"].to_numpy()) if n else np.zeros(0)
    p_vfwe = voxel_fwe_p(obs.ale, null["max_ale"].to_numpy())
    table, relabelled = cluster_table(obs.ale, labels, n, obs.ale_threshold, geom, p_size, p_mass, masses,
                                      cluster_alpha, z=obs.z, p_voxel=p_vfwe, inference=inference)
    contrib: dict[str, pd.DataFrame] = {}
    sig = [int(c) for c in table.loc[table["significant"].astype(bool), "cluster_id"]] if n else []
    if contributions and sig:
        contrib["jackknife"] = jackknife(problem, obs.ale, relabelled, sig)
        contrib["focus_counter"] = focus_counts(problem, relabelled, sig)
    return ALEResult(
        name=name,
        engine="inhouse",
        experiment_ids=list(problem.experiment_ids),
        sample_sizes=dict(zip(problem.experiment_ids, problem.sample_sizes.tolist())),
        n_foci=problem.n_foci,
        fwhm=dict(zip(problem.experiment_ids, problem.fwhm.tolist())),
        mask=geom,
        ale=obs.ale,
        p=obs.p,
        z=obs.z,
        ale_threshold=obs.ale_threshold,
        voxel_thresh=voxel_thresh,
        cluster_alpha=cluster_alpha,
        null=null,
        clusters_all=table,
        label_map=relabelled,
        seed=int(seed),
        n_iters=int(len(null)),
        timings={"fit": t1 - t0, "null": t2 - t1, "total": time.perf_counter() - t0},
        contributions=contrib,
        inference=inference,
        focus_placement=focus_placement,
        p_vfwe=p_vfwe,
    )
