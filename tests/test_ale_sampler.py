"""The in-house Monte Carlo sampler: both upper bounds give the whole-volume statistics bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ale_fixtures import cipn_like, convergent, whole_volume_null

from painmeta.ale import inference as inf
from painmeta.ale import inhouse as ih
from painmeta.ale import problem as pb


def _assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert np.array_equal(a["max_ale"].to_numpy(np.float32), b["max_ale"].to_numpy(np.float32))
    assert np.array_equal(a["max_cluster_size"].to_numpy(), b["max_cluster_size"].to_numpy())
    # scipy sums cluster mass in another order: equal to float32 rounding
    assert np.allclose(a["max_cluster_mass"], b["max_cluster_mass"], rtol=1e-6, atol=0)


def _many_foci(n_exp: int, per_exp: int, seed: int) -> tuple[pd.DataFrame, dict[str, int]]:
    """Random foci with varied sample sizes (several kernels of different widths)."""
    rng = np.random.default_rng(seed)
    rows, sizes = [], {}
    for e in range(n_exp):
        eid = f"e{e:03d}"
        sizes[eid] = int(rng.choice([5, 8, 12, 20, 35, 60]))
        for _ in range(per_exp):
            rows.append((eid, *(rng.integers([-60, -90, -30], [60, 60, 60]) // 2 * 2).astype(float)))
    return pd.DataFrame(rows, columns=["experiment_id", "x", "y", "z"]), sizes


@pytest.fixture(scope="module")
def mixed() -> tuple[pb.ALEProblem, float, np.ndarray]:
    foci, n = convergent(n_exp=8, seed=3)
    problem = pb.make_problem(foci, n)
    thr = inf.fit_observed(problem).ale_threshold
    draws = ih.draw_null_foci(problem, 5, seed=6)
    edge = np.argmin(problem.mask.inmask_ijk[:, 2])
    draws = np.vstack([draws, np.full(problem.n_foci, 54_321), np.full(problem.n_foci, edge)])
    return problem, thr, draws


@pytest.mark.parametrize("method", ["sparse", "dense"])
def test_bound_methods_match_whole_volume(mixed, method: str) -> None:
    problem, thr, draws = mixed
    got = ih.null_statistics(problem, thr, draws=draws, method=method)
    _assert_same(got, whole_volume_null(problem, draws, thr))


@pytest.mark.parametrize("thr", [1e-4, 0.02, 0.5])
def test_thresholds_from_everywhere_to_nowhere(mixed, thr: float) -> None:
    """Very low thresholds (huge clusters), and one above every ALE (the maximum must still be found)."""
    problem, _, draws = mixed
    reference = whole_volume_null(problem, draws[:3], thr)
    for method in ("sparse", "dense"):
        _assert_same(ih.null_statistics(problem, thr, draws=draws[:3], method=method), reference)
    if thr == 0.5:
        assert (reference["max_cluster_size"] == 0).all()


def test_many_foci_dense_regime() -> None:
    """Hundreds of foci whose windows overlap everywhere: both bounds, bit for bit."""
    foci, n = _many_foci(n_exp=40, per_exp=25, seed=2)
    problem = pb.make_problem(foci, n)
    thr = inf.fit_observed(problem).ale_threshold
    draws = ih.draw_null_foci(problem, 2, seed=1)
    reference = whole_volume_null(problem, draws, thr)
    for method in ("sparse", "dense"):
        _assert_same(ih.null_statistics(problem, thr, draws=draws, method=method), reference)
    more = ih.draw_null_foci(problem, 40, seed=9)
    a = ih.null_statistics(problem, thr, draws=more, method="sparse")
    b = ih.null_statistics(problem, thr, draws=more, method="dense", n_threads=2)
    pd.testing.assert_frame_equal(a, b)


def test_few_foci_slack_path() -> None:
    """Few foci (one bucket, tails as one global slack) against the definition."""
    foci, n = cipn_like()
    problem = pb.make_problem(foci, n)
    thr = inf.fit_observed(problem).ale_threshold
    plan = ih._null_plan(problem, thr)
    assert plan.bshape.tolist() == [1, 1, 1] and not plan.dense
    draws = ih.draw_null_foci(problem, 6, seed=3)
    _assert_same(ih.null_statistics(problem, thr, draws=draws), whole_volume_null(problem, draws, thr))


def test_auto_choice_and_validation() -> None:
    foci, n = _many_foci(n_exp=5, per_exp=3, seed=1)
    problem = pb.make_problem(foci, n)
    plan = ih._null_plan(problem, 0.01)
    assert not plan.dense and plan.work["sparse"] < plan.work["dense"]
    with pytest.raises(ValueError, match="method"):
        ih.null_statistics(problem, 0.01, n_iters=2, seed=1, method="fast")


def test_crosscheck_budget_exact_on_subset() -> None:
    """A budgeted cross-check: NiMARE on the first iterations only, still exact; in-house keeps them all."""
    from painmeta.ale import crosscheck as xc

    foci, n = convergent(n_exp=6, seed=2)
    cc = xc.crosscheck(foci, n, n_iters=60, seed=5, max_iters=20, contributions=True)
    failed = cc.table[~cc.table["passed"]]
    assert failed.empty, failed[["check", "nimare", "inhouse", "difference"]].to_string()
    assert len(cc.nimare.null) == len(cc.inhouse.null) == 20
    assert cc.inhouse_full is not None and len(cc.inhouse_full.null) == 60
    assert "cross-check budget (iterations on identical draws)" in set(cc.table["check"])
    assert not cc.nimare.contributions  # the expensive NiMARE tables are skipped under a budget
    # the full in-house result is the one run_inhouse gives on its own
    alone = ih.run_inhouse(foci, n, 60, 5, contributions=False)
    pd.testing.assert_frame_equal(alone.null, cc.inhouse_full.null)
    assert np.array_equal(alone.ale, cc.inhouse_full.ale)


def test_crosscheck_budget_above_iterations_still_reports_own_stream() -> None:
    """A budget at or above the model's iterations (quick runs): the reported in-house result is still its own run."""
    from painmeta.ale import crosscheck as xc

    foci, n = convergent(n_exp=5, seed=3)
    cc = xc.crosscheck(foci, n, n_iters=30, seed=5, max_iters=100, contributions=True)
    assert len(cc.nimare.null) == 30 and not cc.nimare.contributions
    assert cc.inhouse_full is not None
    alone = ih.run_inhouse(foci, n, 30, 5, contributions=False)
    pd.testing.assert_frame_equal(alone.null, cc.inhouse_full.null)
