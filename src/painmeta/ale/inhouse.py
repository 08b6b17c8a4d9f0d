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

Speed: the Monte Carlo null is computed sparsely. Only voxels inside the
kernel windows of the random foci can have ALE > 0, and only a few of those
matter: the supra-threshold voxels and the maximum. Per iteration:

1. an upper bound ``S + slack`` on ALE is formed: ``S`` sums, in float32,
   every focus's kernel values >= tau (the kernel core) in a scratch grid (the
   mask's bounding box padded by the widest kernel, so no bounds checks; small
   enough that both threads' grids stay in cache), and ``slack`` is the sum
   over foci of their largest omitted tail value (tau is chosen so that slack
   <= 1/4 of the smallest cut). Since ALE <= sum_e MA_e <= sum of all kernel
   values <= S + slack, skipping the tails (most of the 17^3 window) is safe;
2. one pass over the same windows collects in-mask voxels with
   ``S + slack >= min(threshold, smallest kernel peak) - margin`` and clears
   the grid;
3. the exact ALE at the voxel with the largest ``S`` is a lower bound on the
   iteration's maximum, so only candidates with
   ``S + slack >= min(threshold, that value) - margin`` can be supra-threshold or the
   maximum; their exact ALE is recomputed from the foci in NiMARE's arithmetic;
4. supra-threshold voxels are labelled by union-find over face neighbours
   inside this set - the same components as labelling the full volume, since
   every other voxel is below threshold - and cluster mass is summed in
   raster order.

Margins: every cut ``v`` is lowered to ``v (1 - 2**-20) - 1e-8`` - sixteen
float32 ulps of ``v`` plus an absolute 1e-8, far more than the float32
rounding of a stored ALE value (half an ulp) - and then by a factor
``1 - 2 * n_foci * 2**-24`` to cover float32 summation of ``S``. Margins only add candidates;
they cannot drop a voxel that matters. Iterations run in parallel over numba
threads with per-thread scratch; results are indexed by iteration, so they do
not depend on the number of threads (tested).
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
)
from painmeta.ale.problem import ALEProblem, make_problem

if TYPE_CHECKING:  # pragma: no cover
    from painmeta.ale.results import ALEResult

#: Safety margins for the sparse candidate test (see module docstring): absolute
#: (ALE units) and relative (16 float32 ulps, covering float32 rounding of ALE).
CANDIDATE_MARGIN = 1e-8
REL_MARGIN = 2.0**-20
#: Share of the smallest relevant cut given up to kernel tails that are not
#: scattered in the Monte Carlo bound (see :func:`null_statistics`).
SLACK_SHARE = 0.25
#: Iterations per parallel batch when explicit draws are given (progress-bar granularity).
BATCH_ITERS = 256


# ---------------------------------------------------------- Monte Carlo null
@njit(cache=True, nogil=True)
def _find(parent, a):  # pragma: no cover - numba
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@njit(cache=True, nogil=True)
def _exact_ale(idx, org, psz, psy, fijk, exp_offsets, exp_kernel, cubes32, support, k_radius):  # pragma: no cover
    """ALE at padded index ``idx`` in NiMARE's fused-permutation arithmetic.

    Per experiment: float32 maximum of its foci's kernel values reaching the
    voxel; then ``log1p`` in float64, summed in experiment order;
    ``1 - exp(sum)`` stored as float32.
    """
    i = idx // psy + org[0]
    rem = idx % psy
    j = rem // psz + org[1]
    k = rem % psz + org[2]
    log_sum = 0.0
    for e in range(exp_offsets.shape[0] - 1):
        kk = exp_kernel[e]
        r = k_radius[kk]
        best = np.float32(0.0)
        hit = False
        for f in range(exp_offsets[e], exp_offsets[e + 1]):
            di = i - fijk[f, 0]
            dj = j - fijk[f, 1]
            dk = k - fijk[f, 2]
            if di < -r or di > r or dj < -r or dj > r or dk < -r or dk > r:
                continue
            if not support[kk, di + r, dj + r, dk + r]:
                continue
            val = cubes32[kk, di + r, dj + r, dk + r]
            if not hit:
                hit = True
                best = val
            elif val > best:
                best = val
        if hit:
            log_sum += np.log1p(-np.float64(best))
    return np.float32(1.0 - np.exp(log_sum))


@njit(cache=True, nogil=True)
def _one_iteration(
    draw, inmask_ijk, focus_exp, exp_offsets, exp_kernel,
    k_delta, k_val32, k_starts, cubes32, support, k_radius,
    org, pshape, mask_pad, thr, cut, margin, shrink, slack, S, lab, cand, cand_s, fijk,
):  # pragma: no cover - numba
    n_foci = draw.shape[0]
    psz = pshape[2]
    psy = pshape[1] * pshape[2]
    # 1. scatter the float32 core sum S (kernel values >= tau; the tails add at
    #    most ``slack`` to any voxel, so S + slack bounds the full sum)
    for f in range(n_foci):
        v = draw[f]
        fijk[f, 0] = inmask_ijk[v, 0]
        fijk[f, 1] = inmask_ijk[v, 1]
        fijk[f, 2] = inmask_ijk[v, 2]
        base = (fijk[f, 0] - org[0]) * psy + (fijk[f, 1] - org[1]) * psz + (fijk[f, 2] - org[2])
        kk = exp_kernel[focus_exp[f]]
        for m in range(k_starts[kk], k_starts[kk + 1]):
            S[base + k_delta[m]] += k_val32[m]
    # 2. collect in-mask candidates (S >= static cut) and reset the scratch
    #    volume in the same pass; remember the voxel with the largest bound
    n_cand = 0
    s_best = np.float32(-1.0)
    i_best = -1
    for f in range(n_foci):
        base = (fijk[f, 0] - org[0]) * psy + (fijk[f, 1] - org[1]) * psz + (fijk[f, 2] - org[2])
        kk = exp_kernel[focus_exp[f]]
        for m in range(k_starts[kk], k_starts[kk + 1]):
            idx = base + k_delta[m]
            sv = S[idx]
            if sv != 0.0:
                S[idx] = 0.0
                if sv >= cut and mask_pad[idx]:
                    cand[n_cand] = idx
                    cand_s[n_cand] = sv
                    n_cand += 1
                    if sv > s_best:
                        s_best = sv
                        i_best = idx
    if n_cand == 0:
        return np.float32(0.0), 0, 0.0
    # 3. a per-iteration lower bound on the maximum (exact ALE where the bound
    #    peaks) narrows the candidates that could hold the maximum
    lower = np.float64(_exact_ale(i_best, org, psz, psy, fijk, exp_offsets, exp_kernel, cubes32, support, k_radius))
    v = min(thr, lower)
    cut2 = (v * (1.0 - REL_MARGIN) - margin) * shrink - slack
    max_ale = np.float32(0.0)
    above_idx = np.empty(n_cand, dtype=np.int64)
    above_val = np.empty(n_cand, dtype=np.float32)
    n_above = 0
    for c in range(n_cand):
        if cand_s[c] < cut2:
            continue
        idx = cand[c]
        ale = _exact_ale(idx, org, psz, psy, fijk, exp_offsets, exp_kernel, cubes32, support, k_radius)
        if ale > max_ale:
            max_ale = ale
        if np.float64(ale) > thr:
            above_idx[n_above] = idx
            above_val[n_above] = ale
            n_above += 1
    if n_above == 0:
        return max_ale, 0, 0.0
    # 4. face-connected components among supra-threshold voxels (union-find;
    #    forward neighbours suffice because adjacency is symmetric)
    order = np.argsort(above_idx[:n_above])  # raster order = NiMARE's summation order
    parent = np.arange(n_above)
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
    for t in range(n_above):
        a = order[t]
        root = _find(parent, a)
        sizes[root] += 1
        mass[root] += np.float64(above_val[a]) - thr
        lab[above_idx[a]] = 0
    return max_ale, sizes.max(), mass.max()


@njit(parallel=True, cache=True)
def _null_batch(
    draws, inmask_ijk, focus_exp, exp_offsets, exp_kernel,
    k_delta, k_val32, k_starts, cubes32, support, k_radius,
    org, pshape, mask_pad, thr, cut, margin, shrink, slack, S_buf, lab_buf, cand_buf, cands_buf, fijk_buf,
    out_max, out_size, out_mass,
):  # pragma: no cover - numba
    n_iter = draws.shape[0]
    n_chunks = S_buf.shape[0]
    for c in prange(n_chunks):
        lo = (n_iter * c) // n_chunks
        hi = (n_iter * (c + 1)) // n_chunks
        for it in range(lo, hi):
            mx, sz, ms = _one_iteration(
                draws[it], inmask_ijk, focus_exp, exp_offsets, exp_kernel,
                k_delta, k_val32, k_starts, cubes32, support, k_radius,
                org, pshape, mask_pad, thr, cut, margin, shrink, slack, S_buf[c],
                lab_buf[c], cand_buf[c], cands_buf[c], fijk_buf[c],
            )
            out_max[it] = mx
            out_size[it] = sz
            out_mass[it] = ms


@dataclass(eq=False)
class _NullPlan:
    """Loop invariants of a Monte Carlo run (built once per problem)."""

    k_delta: np.ndarray
    k_val32: np.ndarray
    k_starts: np.ndarray
    cubes32: np.ndarray
    support: np.ndarray
    k_radius: np.ndarray
    origin: np.ndarray
    pshape: np.ndarray
    mask_pad: np.ndarray
    cut_peak: float
    slack: float = 0.0


def _null_plan(problem: ALEProblem, tau: float = 0.0) -> _NullPlan:
    """Loop invariants; kernel windows keep only values >= ``tau`` (the core)."""
    geom = problem.mask
    pad = max(k.radius for k in problem.kernels) + 1
    # Scratch grid = bounding box of the mask plus the widest kernel (+1 so
    # face neighbours of any in-mask voxel exist); random foci are in-mask, so
    # every kernel window fits without bounds checks. A smaller grid keeps
    # both threads' scratch volumes in cache.
    lo = geom.inmask_ijk.min(axis=0).astype(np.int64) - pad
    hi = geom.inmask_ijk.max(axis=0).astype(np.int64) + pad
    pshape = (hi - lo + 1).astype(np.int64)
    psz, psy = pshape[2], pshape[1] * pshape[2]
    deltas, vals, starts = [], [], [0]
    lmax = 2 * max(k.radius for k in problem.kernels) + 1
    cubes = np.zeros((len(problem.kernels), lmax, lmax, lmax), dtype=np.float32)
    support = np.zeros(cubes.shape, dtype=np.bool_)
    radius = np.zeros(len(problem.kernels), dtype=np.int64)
    tail_max = np.zeros(len(problem.kernels))
    for q, k in enumerate(problem.kernels):
        off = k.offsets.astype(np.int64)
        core = k.values >= tau
        core[np.argmax(k.values)] = True  # the focus voxel itself is always scattered
        tail_max[q] = float(k.values[~core].max()) if (~core).any() else 0.0
        deltas.append(off[core, 0] * psy + off[core, 1] * psz + off[core, 2])
        vals.append(k.values[core].astype(np.float32))
        starts.append(starts[-1] + int(core.sum()))
        r = k.radius
        radius[q] = r
        cubes[q][tuple((off + r).T)] = k.values
        support[q][tuple((off + r).T)] = True
    mask_pad = np.zeros(tuple(pshape), dtype=np.bool_)
    ijk = geom.inmask_ijk.astype(np.int64) - lo
    mask_pad[tuple(ijk.T)] = True
    # Lower bound on every iteration's maximum ALE: the smallest kernel peak
    # among experiments with foci (the focus voxel itself, always in-mask).
    has_foci = problem.foci_per_experiment() > 0
    peaks = [problem.kernels[problem.exp_kernel[e]].peak for e in range(problem.n_experiments) if has_foci[e]]
    n_per_exp = problem.foci_per_experiment()
    slack = float(sum(n_per_exp[e] * tail_max[problem.exp_kernel[e]] for e in range(problem.n_experiments)))
    return _NullPlan(
        np.concatenate(deltas),
        np.concatenate(vals),
        np.asarray(starts, dtype=np.int64),
        cubes,
        support,
        radius,
        lo,
        pshape,
        mask_pad.reshape(-1),
        float(min(peaks)) if peaks else 0.0,
        slack,
    )


@njit(cache=True, nogil=True)
def _null_serial(
    draws, inmask_ijk, focus_exp, exp_offsets, exp_kernel,
    k_delta, k_val32, k_starts, cubes32, support, k_radius,
    org, pshape, mask_pad, thr, cut, margin, shrink, slack, S, lab, cand, cand_s, fijk,
    out_max, out_size, out_mass,
):  # pragma: no cover - numba
    # One thread, no numba parallel layer: safe when several Dask worker
    # threads call it at once.
    for it in range(draws.shape[0]):
        mx, sz, ms = _one_iteration(
            draws[it], inmask_ijk, focus_exp, exp_offsets, exp_kernel,
            k_delta, k_val32, k_starts, cubes32, support, k_radius,
            org, pshape, mask_pad, thr, cut, margin, shrink, slack, S, lab, cand, cand_s, fijk,
        )
        out_max[it] = mx
        out_size[it] = sz
        out_mass[it] = ms


@dataclass(eq=False)
class _NullJob:
    """Everything a Monte Carlo block needs (picklable: Dask sends it to each worker once).

    Scratch volumes are per thread, made on first use in the process that
    runs the block, and never pickled.
    """

    inmask: np.ndarray
    focus_exp: np.ndarray
    exp_offsets: np.ndarray
    exp_kernel: np.ndarray
    plan: _NullPlan
    thr: float
    cut: np.float32
    shrink: float
    n_visits: int

    def __post_init__(self) -> None:
        self._scratch: dict[tuple[int, int], tuple[np.ndarray, ...]] = {}

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_scratch"] = {}
        return state

    @property
    def n_foci(self) -> int:
        return int(self.focus_exp.shape[0])

    @property
    def n_voxels(self) -> int:
        return int(self.inmask.shape[0])

    def scratch(self, threads: int) -> tuple[np.ndarray, ...]:
        """Per-thread scratch volumes (zero between iterations), reused across blocks."""
        key = (threading.get_ident(), threads)
        if key not in self._scratch:
            psize = int(np.prod(self.plan.pshape))
            self._scratch[key] = (
                np.zeros((threads, psize), dtype=np.float32),
                np.zeros((threads, psize), dtype=np.int32),
                np.empty((threads, max(self.n_visits, 1)), dtype=np.int64),
                np.empty((threads, max(self.n_visits, 1)), dtype=np.float32),
                np.empty((threads, max(self.n_foci, 1), 3), dtype=np.int64),
            )
        return self._scratch[key]

    def run(self, draws: np.ndarray, n_threads: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Statistics of the iterations in ``draws`` (``(n, n_foci)`` in-mask indices)."""
        n = draws.shape[0]
        out_max = np.zeros(n, dtype=np.float32)
        out_size = np.zeros(n, dtype=np.int64)
        out_mass = np.zeros(n, dtype=np.float64)
        threads = max(1, min(int(n_threads), numba.config.NUMBA_NUM_THREADS, n))
        S_buf, lab_buf, cand_buf, cands_buf, fijk_buf = self.scratch(threads)
        p = self.plan
        args = (draws, self.inmask, self.focus_exp, self.exp_offsets, self.exp_kernel,
                p.k_delta, p.k_val32, p.k_starts, p.cubes32, p.support, p.k_radius,
                p.origin, p.pshape, p.mask_pad, self.thr, self.cut, CANDIDATE_MARGIN, self.shrink, p.slack)
        if threads == 1:
            _null_serial(*args, S_buf[0], lab_buf[0], cand_buf[0], cands_buf[0], fijk_buf[0],
                         out_max, out_size, out_mass)
        else:
            prev = numba.get_num_threads()
            numba.set_num_threads(threads)
            try:
                _null_batch(*args, S_buf, lab_buf, cand_buf, cands_buf, fijk_buf, out_max, out_size, out_mass)
            finally:
                numba.set_num_threads(prev)
        return out_max, out_size, out_mass


def _null_job(problem: ALEProblem, ale_threshold: float) -> _NullJob:
    thr = float(ale_threshold)
    # Kernel tails (values < tau) are not scattered: they add at most
    # slack = sum over foci of the largest tail value <= SLACK_SHARE * v to any
    # voxel's bound, so the candidate cuts are lowered by slack. Fewer window
    # voxels per focus, a few more candidates; exactness is unaffected.
    peak_min = min(k.peak for k in problem.kernels)
    tau = SLACK_SHARE * min(thr, peak_min) / max(problem.n_foci, 1)
    plan = _null_plan(problem, tau)
    # S is summed in float32: a sum of k non-negative terms is off by at most
    # (k - 1) * 2**-24 relative, so every cut is lowered by twice that for k = n_foci.
    shrink = 1.0 - 2.0 * max(problem.n_foci, 1) * 2.0**-24
    v = min(thr, plan.cut_peak)
    cut = (v * (1.0 - REL_MARGIN) - CANDIDATE_MARGIN) * shrink - plan.slack
    n_visits = int(sum(problem.kernels[problem.exp_kernel[e]].offsets.shape[0] * c
                       for e, c in enumerate(problem.foci_per_experiment())))
    return _NullJob(problem.mask.inmask_ijk.astype(np.int64), problem.focus_exp.astype(np.int64),
                    problem.exp_offsets, problem.exp_kernel, plan, thr, np.float32(cut), shrink, n_visits)


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
    job = _null_job(problem, ale_threshold)
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
    """
    # Analyses sit above the engines (ANALYSIS.md section 7): imported at call time.
    from painmeta.ale.contributions import focus_counts, jackknife
    from painmeta.ale.results import ALEResult

    t0 = time.perf_counter()
    problem = make_problem(foci, sample_sizes, experiment_order=experiment_order)
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
    table, relabelled = cluster_table(obs.ale, labels, n, obs.ale_threshold, geom, p_size, p_mass, masses, cluster_alpha)
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
    )
