"""Seeded chunks of random work, run in-process, on a Dask ``LocalCluster`` or on any Dask cluster.

Every random procedure of the ALE package (Monte Carlo cluster null, subtraction
permutations, fail-safe N file drawers, power simulations) uses this module, so
that its results are **byte-identical whatever the scheduler, the number of
workers and the chunk size**.

The random stream
-----------------
Items (Monte Carlo iterations, simulations, ...) are grouped into fixed-size
*blocks*: block ``b`` holds items ``[b * block_size, min(n, (b + 1) * block_size))``
and draws from its own generator,
``numpy.random.default_rng(SeedSequence(seed).spawn(n_blocks)[b])``
(:func:`block_rng`; ``spawn`` children do not depend on how many are spawned,
so block ``b`` is the same for any ``n``). A task is a run of whole blocks, so
how blocks are grouped into tasks (chunk size) or where tasks run cannot change
a single draw. ``block_size`` is part of a procedure's definition, not a user
setting: the Monte Carlo null uses :data:`BLOCK_SIZE`; a procedure whose items
are expensive (a power simulation) may use blocks of 1, fixed in its code.

API (stable; extend with keyword arguments only)
-------------------------------------------------
``BLOCK_SIZE``
    Items per block for Monte Carlo iterations (64).
``block_seed(seed, b) -> SeedSequence``, ``block_rng(seed, b) -> Generator``
    The generator of block ``b``.
``split_blocks(n_items, block_size=BLOCK_SIZE) -> list[Block]``
    ``Block(index, start, stop)`` for ``n_items``.
``get_executor(spec=None, n_workers=None) -> Executor``
    ``spec``: ``None`` / ``"inprocess"`` (default, this process), ``"local"``
    (a new ``LocalCluster`` of ``n_workers`` single-threaded processes),
    ``"tcp://HOST:PORT"`` (an existing scheduler), an ``ExecutorConfig``-like
    mapping ``{scheduler, n_workers}``, a ``distributed.Client`` or an
    :class:`Executor` (returned as is).
``Executor.map(fn, tasks, progress=None, **shared) -> list``
    ``[fn(task, **shared) for task in tasks]`` in task order; on Dask the
    ``shared`` objects are sent to every worker once (scatter + broadcast).
    ``Executor.threads_per_task`` is the number of threads a task may use
    (``None`` in-process: the caller decides; 1 on Dask, where every worker
    thread runs its own task). Use as a context manager or call ``close()``.
``map_blocks(fn, n_items, seed, executor=None, block_size=BLOCK_SIZE, chunk_blocks=None, progress=None, **shared) -> list``
    One result per block, in block order: ``fn(block, rng, **shared)`` with
    ``rng = block_rng(seed, block.index)``. ``fn`` must be a module-level
    function (Dask pickles it).

This module imports nothing from :mod:`painmeta.ale`, so every layer may use it.

Pointing the pipeline at a cluster: ``python -m painmeta ale ... --scheduler
tcp://HOST:8786`` or ``ale: {executor: {scheduler: "tcp://HOST:8786"}}`` in
``dataset.yaml``; see ``docs/DASK.md`` (SLURM with dask-jobqueue, expected
speed-up).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from painmeta.errors import InputError

#: Monte Carlo iterations per random block. Part of the definition of the
#: in-house random stream: changing it changes every in-house null.
BLOCK_SIZE = 64

#: Tasks per worker a Dask map aims for (load balance vs per-task overhead).
TASKS_PER_WORKER = 4

_ADDRESS = re.compile(r"^(tcp|tls|ws|wss|ucx)://[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")


@dataclass(frozen=True)
class Block:
    """Items ``[start, stop)`` of a random procedure; ``index`` selects the generator."""

    index: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def block_seed(seed: int, index: int) -> np.random.SeedSequence:
    """Seed sequence of block ``index``: ``SeedSequence(seed).spawn(n)[index]`` for any ``n > index``."""
    if int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    # spawn() gives child i the spawn key (i,); building it directly costs O(1).
    return np.random.SeedSequence(int(seed), spawn_key=(int(index),))


def block_rng(seed: int, index: int) -> np.random.Generator:
    """Generator of block ``index`` (PCG64, as ``numpy.random.default_rng``)."""
    return np.random.default_rng(block_seed(seed, index))


def split_blocks(n_items: int, block_size: int = BLOCK_SIZE) -> list[Block]:
    """Blocks covering ``n_items`` items (the last one may be short)."""
    n_items, block_size = int(n_items), int(block_size)
    if n_items < 0 or block_size < 1:
        raise ValueError(f"need n_items >= 0 and block_size >= 1, got {n_items}, {block_size}")
    return [Block(b, s, min(n_items, s + block_size)) for b, s in enumerate(range(0, n_items, block_size))]


def chunk(blocks: Sequence[Block], chunk_blocks: int) -> list[list[Block]]:
    """Runs of ``chunk_blocks`` whole consecutive blocks (the tasks)."""
    k = max(1, int(chunk_blocks))
    return [list(blocks[i:i + k]) for i in range(0, len(blocks), k)]


# ------------------------------------------------------------------ executors
class Executor:
    """Runs ``fn(task, **shared)`` for each task and returns the results in task order."""

    #: Threads one task may use (None: the caller decides).
    threads_per_task: int | None = None
    #: Human-readable description for logs and reports.
    kind: str = "executor"

    @property
    def n_workers(self) -> int:
        return 1

    def map(self, fn: Callable[..., Any], tasks: Iterable[Any],
            progress: Callable[[int], None] | None = None, **shared: Any) -> list:
        raise NotImplementedError

    def describe(self) -> str:
        return self.kind

    def close(self) -> None:
        """Release what the executor started (nothing in-process)."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class InProcessExecutor(Executor):
    """Tasks run one after the other in this process (the default)."""

    kind = "in-process"

    def map(self, fn, tasks, progress=None, **shared):  # noqa: D102 - see Executor.map
        out = []
        for i, task in enumerate(tasks):
            out.append(fn(task, **shared))
            if progress is not None:
                progress(i)
        return out


class DaskExecutor(Executor):
    """Tasks run on a Dask cluster through a ``distributed.Client``.

    Parameters
    ----------
    client : distributed.Client
    owns : bool
        Close the client (and its ``LocalCluster``) on :meth:`close`.
    """

    threads_per_task = 1

    def __init__(self, client: Any, owns: bool = False, kind: str = "dask") -> None:
        self.client = client
        self.owns = owns
        self.kind = kind

    @property
    def n_workers(self) -> int:
        info = self.client.scheduler_info()
        return max(1, sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values()))

    def describe(self) -> str:
        return f"{self.kind} ({self.client.scheduler.address}, {self.n_workers} worker threads)"

    def map(self, fn, tasks, progress=None, **shared):  # noqa: D102 - see Executor.map
        from distributed import as_completed

        tasks = list(tasks)
        if not tasks:
            return []
        # Shared inputs (the problem, kernels) go to every worker once.
        scattered = {k: self.client.scatter(v, broadcast=True, hash=False) for k, v in shared.items()}
        futures = self.client.map(fn, tasks, pure=False, **scattered)
        try:
            if progress is not None:
                index = {f.key: i for i, f in enumerate(futures)}
                for fut in as_completed(futures):
                    progress(index[fut.key])
            return self.client.gather(futures)
        finally:
            for fut in list(scattered.values()):
                fut.release()

    def close(self) -> None:
        if self.owns:
            cluster = getattr(self.client, "cluster", None)
            self.client.close()
            if cluster is not None:
                cluster.close()


def _connect(address: str, timeout: float) -> Any:
    from distributed import Client

    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise InputError(
            f"could not connect to the Dask scheduler at {address} ({type(exc).__name__}). "
            "Fix: start one (`dask scheduler` and `dask worker ADDRESS`, or dask-jobqueue), "
            "or use --scheduler local / omit --scheduler to run in-process."
        ) from None


def get_executor(spec: Any = None, n_workers: int | None = None, timeout: float = 20.0) -> Executor:
    """Executor for a scheduler spec (see module docstring).

    Parameters
    ----------
    spec : None, str, mapping, distributed.Client or Executor
        ``None`` / ``"inprocess"``: this process. ``"local"``: a new
        ``LocalCluster`` (single-threaded worker processes). ``"tcp://HOST:PORT"``:
        an existing scheduler. A mapping ``{"scheduler": ..., "n_workers": ...}``
        as in ``dataset.yaml``'s ``ale.executor``.
    n_workers : int, optional
        Workers of a ``LocalCluster`` (default: the CPU count).
    timeout : float
        Seconds to wait for a scheduler.

    Raises
    ------
    InputError
        Unknown spec or unreachable scheduler (the message says how to fix it).
    """
    if isinstance(spec, Executor):
        return spec
    if hasattr(spec, "model_dump"):  # a validated config section (painmeta.config.ExecutorConfig)
        spec = spec.model_dump()
    if isinstance(spec, Mapping):
        return get_executor(spec.get("scheduler"), spec.get("n_workers", n_workers), timeout)
    if spec is not None and hasattr(spec, "scheduler_info") and hasattr(spec, "map"):
        return DaskExecutor(spec, owns=False, kind="dask client")
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "inprocess", "in-process", "none")):
        return InProcessExecutor()
    if not isinstance(spec, str):
        raise InputError(f"scheduler must be a string such as 'local' or 'tcp://HOST:PORT', got {type(spec).__name__}")
    text = spec.strip()
    if text.lower() == "local":
        import os

        from distributed import Client, LocalCluster

        workers = int(n_workers or os.cpu_count() or 1)
        if workers < 1:
            raise InputError(f"n_workers must be at least 1, got {workers}")
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=40)
        return DaskExecutor(Client(cluster, set_as_default=False), owns=True, kind="dask LocalCluster")
    if _ADDRESS.match(text):
        return DaskExecutor(_connect(text, timeout), owns=True, kind="dask scheduler")
    raise InputError(
        f"unknown scheduler {spec[:80]!r}: use 'inprocess' (default), 'local' or a scheduler address "
        "such as 'tcp://127.0.0.1:8786'"
    )


def _task(task: list[Block], fn: Callable[..., Any], seed: int, **shared: Any) -> list:
    """One task: the blocks of a run, each with its own generator."""
    return [fn(b, block_rng(seed, b.index), **shared) for b in task]


def default_chunk_blocks(n_blocks: int, executor: Executor) -> int:
    """Blocks per task: one in-process; about :data:`TASKS_PER_WORKER` tasks per worker on Dask."""
    if isinstance(executor, InProcessExecutor):
        return 1
    return max(1, math.ceil(n_blocks / (TASKS_PER_WORKER * executor.n_workers)))


def map_blocks(
    fn: Callable[..., Any],
    n_items: int,
    seed: int,
    executor: Any = None,
    block_size: int = BLOCK_SIZE,
    chunk_blocks: int | None = None,
    progress: Callable[[int], None] | None = None,
    **shared: Any,
) -> list:
    """Run ``fn(block, rng, **shared)`` for every block of ``n_items``; results in block order.

    Parameters
    ----------
    fn : callable
        Module-level function ``fn(block: Block, rng: numpy.random.Generator, **shared)``.
    n_items : int
        Items (iterations, simulations).
    seed : int
        Seed of the procedure; block ``b`` draws from :func:`block_rng` ``(seed, b)``.
    executor : spec or Executor, optional
        Where tasks run (:func:`get_executor`); default in-process. An
        executor made here from a spec is closed here.
    block_size : int
        Items per block (part of the procedure's definition).
    chunk_blocks : int, optional
        Blocks per task (default :func:`default_chunk_blocks`). Never changes results.
    progress : callable, optional
        Called with the number of items of each finished task.
    **shared
        Read-only inputs passed to every call (sent once per worker on Dask).
    """
    blocks = split_blocks(n_items, block_size)
    ex = get_executor(executor)
    try:
        tasks = chunk(blocks, chunk_blocks or default_chunk_blocks(len(blocks), ex))
        sizes = [sum(b.size for b in t) for t in tasks]
        done = None if progress is None else (lambda i: progress(sizes[i]))
        parts = ex.map(partial(_task, fn=fn, seed=int(seed)), tasks, progress=done, **shared)
    finally:
        if ex is not executor:
            ex.close()
    return [r for part in parts for r in part]


__all__ = [
    "BLOCK_SIZE",
    "Block",
    "DaskExecutor",
    "Executor",
    "InProcessExecutor",
    "block_rng",
    "block_seed",
    "chunk",
    "default_chunk_blocks",
    "get_executor",
    "map_blocks",
    "split_blocks",
]
