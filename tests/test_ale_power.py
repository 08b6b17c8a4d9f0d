"""ALE power analysis (painmeta.ale.power, ``python -m painmeta ale-power``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from painmeta.ale import power as pw
from painmeta.cli import main
from painmeta.config import ALEPowerConfig
from painmeta.errors import InputError

SMALL = dict(n_sims=12, n_iters=60, seed=4, jitter_mm=3.0)


@pytest.fixture(scope="module")
def small_result() -> pw.PowerResult:
    sc = pw.PowerScenario(n_experiments=[6], effect_shares=[1 / 6, 1.0], subjects=[20], foci=[5], **SMALL)
    return pw.run_power(sc, n_threads=2)


def test_power_table_columns_and_ci(small_result: pw.PowerResult) -> None:
    t = small_result.table
    assert list(t.columns[:4]) == ["n_experiments", "power", "ci_low", "ci_high"]
    assert set(pw.POWER_COLUMNS) == set(t.columns)
    assert list(t["n_effect"]) == [1, 6]
    for _, r in t.iterrows():
        lo, hi = pw.clopper_pearson(int(r["n_detected"]), int(r["n_sims"]))
        assert (r["ci_low"], r["ci_high"]) == (lo, hi)
        assert r["ci_low"] <= r["power"] <= r["ci_high"]
    assert len(small_result.simulations) == 2 * SMALL["n_sims"]


def test_power_is_plausible(small_result: pw.PowerResult) -> None:
    """One experiment cannot make a convergence; the effect in all six is found nearly always."""
    power = dict(zip(small_result.table["n_effect"], small_result.table["power"]))
    assert power[1] <= 0.25
    assert power[6] >= 0.75


def test_clopper_pearson_exact() -> None:
    for k, n in ((0, 10), (10, 10), (3, 10)):
        lo, hi = pw.clopper_pearson(k, n)
        ref_lo = stats.beta.ppf(0.025, k, n - k + 1) if k > 0 else 0.0
        ref_hi = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
        assert lo == pytest.approx(ref_lo, abs=1e-12) and hi == pytest.approx(ref_hi, abs=1e-12)


def test_power_deterministic() -> None:
    sc = pw.PowerScenario(n_experiments=[3], effect_shares=[1.0], subjects=[12, 20, 13], foci=[4, 4, 3],
                          n_sims=5, n_iters=40, seed=9, design="test")
    a, b = pw.run_power(sc, n_threads=1), pw.run_power(sc, n_threads=2)
    pd.testing.assert_frame_equal(a.table, b.table)
    pd.testing.assert_frame_equal(a.simulations, b.simulations)
    sc.seed = 10
    c = pw.run_power(sc, n_threads=1)
    assert not c.simulations["max_ale"].equals(a.simulations["max_ale"])


@pytest.mark.parametrize("change, match", [
    ({"location": (0.0, 0.0, 95.0)}, "outside"),
    ({"n_experiments": [1]}, "n_experiments"),
    ({"effect_shares": [0.0]}, "effect shares"),
    ({"subjects": [20, 30], "foci": [5]}, "same design"),
    ({"n_iters": 5}, "n_iters"),
])
def test_scenario_validation(change: dict, match: str) -> None:
    sc = pw.PowerScenario(**{**SMALL, **change})
    with pytest.raises(InputError, match=match):
        pw.run_power(sc)


def test_scenario_from_config_design_lists_and_quick() -> None:
    cfg = ALEPowerConfig(enabled=True, subjects=[12, 20, 13], foci_per_experiment=[4, 4, 3],
                         design_label="three studies", effect_shares=[0.4, 1.0])
    sc = pw.scenario_from_config(cfg, [], seed=7)
    assert sc.design == "three studies" and 3 in sc.n_experiments and sc.seed == 7
    assert sc.design_of(5)[0].tolist() == [12, 20, 13, 12, 20]
    quick = pw.scenario_from_config(cfg, [], seed=7, quick=True)
    assert quick.n_experiments == [3, 17] and quick.n_sims == 8
    fixed = pw.scenario_from_config(ALEPowerConfig(enabled=True), [], seed=1)
    assert fixed.design == "fixed" and fixed.subjects == [pw.DEFAULT_SUBJECTS]
    with pytest.raises(ValueError):
        ALEPowerConfig(subjects=[12, 20], foci_per_experiment=[4])
    with pytest.raises(InputError, match="not an ALE model"):
        pw.scenario_from_config(ALEPowerConfig(enabled=True, model="nope"), [], seed=1)


def test_design_statement_and_eickhoff_text(small_result: pw.PowerResult) -> None:
    text = pw.compare_with_eickhoff(small_result.table)
    assert "Eickhoff et al. (2016)" in text and "17-20" in text
    sc = pw.PowerScenario(n_experiments=[3], effect_shares=[1.0], subjects=[12, 20, 13], foci=[4, 4, 3],
                          n_sims=4, n_iters=40, seed=2, design="review design")
    res = pw.run_power(sc, n_threads=1)
    statement = pw.design_statement(res.table, sc)
    assert "3 experiments, 45 participants, 11 foci" in statement and "seed 2" in statement


def test_cli_writes_outputs_and_is_reproducible(tmp_path: Path) -> None:
    args = ["ale-power", "--n-experiments", "3,4", "--n-sims", "4", "--n-iters", "40", "--seed", "3",
            "--effect-share", "1.0", "--foci", "3"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    for name in ("power.csv", "simulations.csv", "scenario.json", "power.png", "power.svg", "power.pdf"):
        assert (tmp_path / "a" / name).is_file(), name
    assert (tmp_path / "a" / "power.csv").read_bytes() == (tmp_path / "b" / "power.csv").read_bytes()
    table = pd.read_csv(tmp_path / "a" / "power.csv")
    assert table["n_experiments"].tolist() == [3, 4]
    assert (table["foci_per_experiment"] == "3;3;3").iloc[0] or table["total_foci"].iloc[0] == 9
    scenario = json.loads((tmp_path / "a" / "scenario.json").read_text())
    assert scenario["seed"] == 3 and scenario["effect_shares"] == [1.0]


def test_cli_errors_are_clean(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["ale-power", "--n-experiments", "3", "--n-sims", "2", "--n-iters", "40", "--out",
                 str(tmp_path / "o"), "--subjects", "10,20", "--foci", "1,2,3"])
    assert code != 0
    err = capsys.readouterr().err
    assert "same length" in err and "Traceback" not in err
    # argparse's usage error: main returns its status (2) and prints no traceback
    assert main(["ale-power", "--n-experiments", "3,x", "--out", str(tmp_path / "o")]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_power_figure_draws_every_curve(small_result: pw.PowerResult) -> None:
    fig = pw.power_figure(small_result.table, design_k=6)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("17-20" in s for s in labels) and sum("true effect in" in s for s in labels) == 2
    assert ax.get_xlabel() and ax.get_ylabel()
    empty = pw.power_figure(pd.DataFrame(columns=pw.POWER_COLUMNS))
    assert empty.axes
