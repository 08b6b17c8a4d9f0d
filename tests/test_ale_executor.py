"""Seeded chunks (painmeta.ale.executor): one stream, byte-identical results in-process and on real Dask clusters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ale_fixtures import convergent

from painmeta.ale import executor as ex
from painmeta.ale import inference as inf
from painmeta.ale import inhouse as ih
from painmeta.ale import problem as pb
from painmeta.cli import main
from painmeta.config import ExecutorConfig
from painmeta.errors import InputError
from painmeta.sleuth import write_sleuth

N_ITERS = 200  # 3 full blocks of 64 and a short one of 8


def _normal_sums(block: ex.Block, rng: np.random.Generator, scale: float) -> tuple[int, float]:
    """A toy random procedure: one number per block, from the block's generator."""
    return block.index, float(scale * rng.standard_normal(block.size).sum())


def _bytes(null: pd.DataFrame) -> bytes:
    return b"".join(null[c].to_numpy().tobytes() for c in null.columns) + null.to_csv(index=False).encode()


@pytest.fixture(scope="module")
def null_problem() -> tuple[pb.ALEProblem, float]:
    foci, n = convergent(n_exp=6, seed=2)
    problem = pb.make_problem(foci, n)
    return problem, inf.fit_observed(problem).ale_threshold


@pytest.fixture(scope="module")
def reference_null(null_problem) -> pd.DataFrame:
    problem, thr = null_problem
    return ih.null_statistics(problem, thr, n_iters=N_ITERS, seed=17, n_threads=2)


# ------------------------------------------------------------------ the stream
def test_block_seed_is_the_spawn_child() -> None:
    for b in (0, 3, 11):
        spawned = np.random.SeedSequence(123).spawn(12)[b]
        a = np.random.default_rng(spawned).integers(0, 1000, 20)
        assert np.array_equal(a, ex.block_rng(123, b).integers(0, 1000, 20))
    with pytest.raises(ValueError):
        ex.block_seed(-1, 0)


def test_split_and_chunk() -> None:
    blocks = ex.split_blocks(200, 64)
    assert [(b.start, b.stop) for b in blocks] == [(0, 64), (64, 128), (128, 192), (192, 200)]
    assert ex.split_blocks(0) == []
    tasks = ex.chunk(blocks, 3)
    assert [[b.index for b in t] for t in tasks] == [[0, 1, 2], [3]]
    with pytest.raises(ValueError):
        ex.split_blocks(5, 0)


def test_map_blocks_independent_of_chunking() -> None:
    runs = [ex.map_blocks(_normal_sums, 1000, 5, block_size=64, chunk_blocks=k, scale=2.0) for k in (1, 2, 7, 100)]
    assert all(r == runs[0] for r in runs)
    assert [i for i, _ in runs[0]] == list(range(16))
    seen = []
    ex.map_blocks(_normal_sums, 100, 5, block_size=64, progress=seen.append, scale=1.0)
    assert seen == [64, 36]


def test_stream_prefix_and_draws(null_problem, reference_null) -> None:
    problem, thr = null_problem
    draws = ih.draw_null_foci(problem, N_ITERS, 17)
    assert draws.shape == (N_ITERS, problem.n_foci)
    # The first m iterations do not depend on how many follow.
    assert np.array_equal(draws[:70], ih.draw_null_foci(problem, 70, 17))
    # The explicit-draws path and the stream agree bit for bit.
    assert _bytes(ih.null_statistics(problem, thr, draws=draws)) == _bytes(reference_null)
    short = ih.null_statistics(problem, thr, n_iters=70, seed=17)
    assert _bytes(short) == _bytes(reference_null.iloc[:70].reset_index(drop=True))


def test_inprocess_threads_and_chunks_identical(null_problem, reference_null) -> None:
    problem, thr = null_problem
    for threads, chunk_blocks in ((1, 1), (2, 3), (1, 10)):
        got = ih.null_statistics(problem, thr, n_iters=N_ITERS, seed=17, n_threads=threads, chunk_blocks=chunk_blocks)
        assert _bytes(got) == _bytes(reference_null), (threads, chunk_blocks)
    other = ih.null_statistics(problem, thr, n_iters=N_ITERS, seed=18)
    assert not other.equals(reference_null)


# ------------------------------------------------------------------ specs and errors
def test_executor_specs_and_errors() -> None:
    assert isinstance(ex.get_executor(None), ex.InProcessExecutor)
    assert isinstance(ex.get_executor("inprocess"), ex.InProcessExecutor)
    assert isinstance(ex.get_executor({"scheduler": None}), ex.InProcessExecutor)
    assert isinstance(ex.get_executor(ExecutorConfig()), ex.InProcessExecutor)
    same = ex.InProcessExecutor()
    assert ex.get_executor(same) is same
    for bad in ("slurm", "tcp://host", "http://x:1", "tcp://a:1; rm -rf /"):
        with pytest.raises(InputError, match="scheduler"):
            ex.get_executor(bad)
    with pytest.raises(InputError, match="could not connect"):
        ex.get_executor("tcp://127.0.0.1:9", timeout=2)  # nothing listens on the discard port


def test_config_key_validated() -> None:
    assert ExecutorConfig.model_validate("local").scheduler == "local"
    assert ExecutorConfig.model_validate({"scheduler": "tcp://10.0.0.1:8786", "n_workers": 4}).n_workers == 4
    assert ExecutorConfig.model_validate(None).scheduler is None
    with pytest.raises(ValueError):
        ExecutorConfig.model_validate("tcp://nowhere")
    with pytest.raises(ValueError):
        ExecutorConfig.model_validate({"scheduler": "local", "n_workers": 0})


# ------------------------------------------------------------------ a real Dask cluster
def _wait_for(predicate, timeout: float, what: str, procs: list[subprocess.Popen]) -> None:
    t0 = time.monotonic()
    while not predicate():
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{what}: process {p.args[:3]} exited with {p.returncode}")
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(what)
        time.sleep(0.2)


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A real ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, started and stopped here."""
    pytest.importorskip("distributed")
    from distributed import Client

    root = tmp_path_factory.mktemp("dask")
    dask_cli = Path(sys.executable).with_name("dask")
    # Workers import this module for the toy function (the package itself is installed).
    env = dict(os.environ, NUMBA_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parent))
    procs: list[subprocess.Popen] = []
    logs = []

    def start(args: list[str], name: str) -> None:
        log = open(root / f"{name}.log", "w")
        logs.append(log)
        procs.append(subprocess.Popen([str(dask_cli), *args], stdout=log, stderr=subprocess.STDOUT, env=env,
                                      cwd=root))

    sched_file = root / "scheduler.json"
    try:
        start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
               "--scheduler-file", str(sched_file), "--idle-timeout", "600s"], "scheduler")
        _wait_for(lambda: sched_file.is_file() and sched_file.stat().st_size > 0, 60, "scheduler file", procs)
        time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        for w in (1, 2):
            start(["worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", f"w{w}",
                   "--local-directory", str(root / f"w{w}"), "--memory-limit", "2GB"], f"worker{w}")
        client = Client(address, set_as_default=False, timeout=30)
        try:
            _wait_for(lambda: len(client.scheduler_info()["workers"]) == 2, 90, "two workers", procs)
        finally:
            client.close()
        yield address
    finally:
        for p in reversed(procs):  # only the processes started above, by their handle
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for log in logs:
            log.close()


def test_real_scheduler_byte_identical(dask_cluster: str, null_problem, reference_null) -> None:
    problem, thr = null_problem
    with ex.get_executor(dask_cluster) as dask_ex:
        assert dask_ex.n_workers == 2 and dask_ex.threads_per_task == 1
        assert "dask" in dask_ex.describe()
        # A task per block, three blocks per task, everything in one task.
        for chunk_blocks in (1, 3, 4):
            got = ih.null_statistics(problem, thr, n_iters=N_ITERS, seed=17, executor=dask_ex,
                                     chunk_blocks=chunk_blocks)
            assert _bytes(got) == _bytes(reference_null), chunk_blocks
        # Both workers did work (tasks of one block each spread over the cluster).
        who = dask_ex.client.run(lambda: os.getpid())
        assert len(set(who.values())) == 2
        toy = ex.map_blocks(_normal_sums, 500, 9, executor=dask_ex, block_size=64, chunk_blocks=1, scale=3.0)
        assert toy == ex.map_blocks(_normal_sums, 500, 9, block_size=64, scale=3.0)


def test_cli_scheduler_option_byte_identical(dask_cluster: str, tmp_path: Path) -> None:
    foci, n = convergent(n_exp=6, seed=2)
    sleuth = write_sleuth(foci, n, tmp_path / "conv.txt")
    base = ["ale", "--sleuth", str(sleuth), "--n-iters", "150", "--seed", "4", "--engine", "inhouse",
            "--no-contributions"]
    assert main([*base, "--out", str(tmp_path / "inproc")]) == 0
    assert main([*base, "--out", str(tmp_path / "dask"), "--scheduler", dask_cluster]) == 0
    for name in ("null.csv", "clusters.csv", "clusters_all.csv"):
        assert (tmp_path / "inproc" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes(), name


def test_cli_bad_scheduler_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    foci, n = convergent(n_exp=3, seed=2)
    sleuth = write_sleuth(foci, n, tmp_path / "conv.txt")
    code = main(["ale", "--sleuth", str(sleuth), "--n-iters", "10", "--engine", "inhouse",
                 "--out", str(tmp_path / "o"), "--scheduler", "slurm://nowhere"])
    assert code != 0
    err = capsys.readouterr().err
    assert "scheduler" in err and "Traceback" not in err


@pytest.mark.slow
def test_local_cluster_byte_identical(null_problem, reference_null) -> None:
    problem, thr = null_problem
    with ex.get_executor("local", n_workers=2) as local:
        assert local.n_workers == 2
        got = ih.null_statistics(problem, thr, n_iters=N_ITERS, seed=17, executor=local)
    assert _bytes(got) == _bytes(reference_null)



def test_power_simulations_identical_on_dask(dask_cluster: str) -> None:
    """Power simulations (one block each) and their nulls give the same table on a real cluster."""
    from painmeta.ale import power as pw

    sc = pw.PowerScenario(n_experiments=[3, 5], effect_shares=[1.0], subjects=[12, 20, 13], foci=[4, 4, 3],
                          n_sims=6, n_iters=70, seed=11, design="test")
    here = pw.run_power(sc, n_threads=1)
    there = pw.run_power(sc, executor=dask_cluster)
    pd.testing.assert_frame_equal(here.table, there.table)
    pd.testing.assert_frame_equal(here.simulations, there.simulations)


def test_fail_safe_n_identical_on_dask(dask_cluster: str) -> None:
    """Fail-safe N refits run their Monte Carlo nulls on a real cluster: the same table, byte for byte."""
    from painmeta.ale import fsn as F
    from painmeta.ale.inhouse import run_inhouse

    foci, sizes = convergent(5, seed=5)
    res = run_inhouse(foci, sizes, n_iters=64, seed=1, contributions=False)
    peaks = res.clusters[["peak_x", "peak_y", "peak_z"]].to_numpy(float)
    assert len(peaks)
    kw = dict(n_drawers=1, k_max=3, n_iters=64, seed=3)
    here = F.fail_safe_n(foci, sizes, peaks, **kw)
    there = F.fail_safe_n(foci, sizes, peaks, executor=dask_cluster, **kw)
    pd.testing.assert_frame_equal(here.table, there.table)
    pd.testing.assert_frame_equal(here.evaluations, there.evaluations)
