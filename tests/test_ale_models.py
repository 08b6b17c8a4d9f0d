"""Model selection and skip logic (contract with the extraction stage), notebook tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ale_fixtures import convergent

from painmeta.ale.models import (
    analyze,
    build_models,
    cluster_tables,
    model_table,
    nidm_pain_tables,
    run_model,
)
from painmeta.errors import InputError

EXPERIMENTS = pd.DataFrame(
    [
        # id, contrast_type, direction, n_ale, in_ale, evidence
        ("b_gt", "between_group", "patients>controls", 12, True, "verified"),
        ("b_t3", "between_group", "unknown", 12, True, "unverified"),
        ("l_gt", "between_group", "patients>controls", 20, True, "verified"),
        ("l_lt", "between_group", "patients<controls", 20, True, "inferred"),
        ("s_gt", "between_group", "patients>controls", 13, "true", "verified"),
        ("x_no", "between_group", "patients>controls", 30, False, "verified"),
        ("x_nan", "between_group", "patients>controls", np.nan, True, "verified"),
        ("c_pos", "correlation", "positive_association", 24, True, "verified"),
    ],
    columns=["experiment_id", "contrast_type", "direction", "n_ale", "in_ale", "evidence"],
)
FOCI = pd.DataFrame(
    [
        ("b_gt", 4, -60, 40), ("b_t3", 4, 24, 23), ("b_t3", -50, 13, -8),
        ("l_gt", -40, -20, 50), ("l_gt", 20, -20, 0), ("s_gt", 2, -54, 30),
        ("x_no", 0, 0, 0), ("x_nan", 10, 10, 10), ("c_pos", 30, 30, 30),
    ],
    columns=["experiment_id", "x", "y", "z"],
)


def _config(**models: dict) -> dict:
    return {"min_experiments": 2, "recommended_experiments": 17, "include_unverified": True, "models": models}


def test_selection_and_exclusions() -> None:
    cfg = _config(
        all_between={"contrast_types": ["between_group"], "n_iters": 50},
        increase={"contrast_types": ["between_group"], "directions": ["patients>controls"], "n_iters": 40},
        decrease={"contrast_types": ["between_group"], "directions": ["patients<controls"], "n_iters": 30},
        correlation={"contrast_types": ["correlation"], "n_iters": 30},
    )
    models = {m.name: m for m in build_models(EXPERIMENTS, FOCI, cfg)}
    assert list(models) == ["all_between", "increase", "decrease", "correlation"]

    inc = models["increase"]
    assert not inc.skipped
    assert inc.experiment_ids == ["b_gt", "l_gt", "s_gt"]
    assert inc.sample_sizes == {"b_gt": 12, "l_gt": 20, "s_gt": 13}
    assert inc.n_foci == 4 and inc.n_subjects == 45 and inc.n_iters == 40
    reasons = dict(inc.excluded.itertuples(index=False))
    assert "in_ale = false" in reasons["x_no"]
    assert "sample size" in reasons["x_nan"]
    assert any("recommended" in w for w in inc.warnings)

    allb = models["all_between"]
    assert "b_t3" in allb.experiment_ids  # unverified enters direction-free models when allowed
    assert any("unverified" in w for w in allb.warnings)
    assert "l_lt" in dict(allb.excluded.itertuples(index=False))  # no foci

    dec = models["decrease"]
    assert dec.skipped and dec.experiment_ids == []
    assert "0 usable experiments" in dec.reason and "at least 2" in dec.reason
    assert "no coordinates" in dict(dec.excluded.itertuples(index=False))["l_lt"]

    cor = models["correlation"]
    assert cor.skipped and "1 usable experiment (c_pos)" in cor.reason


def test_unverified_excluded_when_configured() -> None:
    cfg = _config(all_between={"contrast_types": ["between_group"]})
    cfg["include_unverified"] = False
    (m,) = build_models(EXPERIMENTS, FOCI, cfg)
    assert "b_t3" not in m.experiment_ids
    assert "include_unverified" in dict(m.excluded.itertuples(index=False))["b_t3"]


def test_table_problems_raise() -> None:
    cfg = _config(a={"contrast_types": ["between_group"]})
    with pytest.raises(InputError, match="missing from experiments"):
        build_models(EXPERIMENTS, pd.concat([FOCI, pd.DataFrame([("zz", 1, 2, 3)], columns=FOCI.columns)]), cfg)
    with pytest.raises(InputError, match="duplicate"):
        build_models(pd.concat([EXPERIMENTS, EXPERIMENTS.iloc[:1]]), FOCI, cfg)
    with pytest.raises(InputError, match="lacks column"):
        build_models(EXPERIMENTS.drop(columns="n_ale"), FOCI, cfg)
    bad = EXPERIMENTS.copy()
    bad["in_ale"] = bad["in_ale"].astype(object)
    bad.loc[0, "in_ale"] = "maybe"
    with pytest.raises(InputError, match="not a boolean"):
        build_models(bad, FOCI, cfg)


def test_skipped_model_is_not_run() -> None:
    cfg = _config(correlation={"contrast_types": ["correlation"]})
    (m,) = build_models(EXPERIMENTS, FOCI, cfg)
    with pytest.raises(InputError, match="was not run"):
        run_model(m, engine="inhouse")
    table = model_table([m])
    assert table.loc[0, "status"] == "skipped" and "ALE needs" in table.loc[0, "reason"]


def test_real_config_object() -> None:
    from painmeta.config import ALEConfig

    cfg = ALEConfig.model_validate(
        {"models": {"increase": {"contrast_types": ["between_group"], "directions": ["patients>controls"], "n_iters": 20}}}
    )
    (m,) = build_models(EXPERIMENTS, FOCI, cfg)
    assert m.experiment_ids == ["b_gt", "l_gt", "s_gt"] and m.n_iters == 20


def test_analyze_inhouse_tables() -> None:
    foci, n = convergent(n_exp=8, seed=2)
    exps = pd.DataFrame({"experiment_id": list(n), "contrast_type": "between_group",
                         "direction": "patients>controls", "n_ale": list(n.values()), "in_ale": True,
                         "evidence": "verified"})
    cfg = _config(increase={"contrast_types": ["between_group"], "n_iters": 80},
                  decrease={"contrast_types": ["between_group"], "directions": ["patients<controls"]})
    cfg["seed"] = 4
    res = analyze(exps, foci, cfg, engine="inhouse", crosscheck=False)
    assert list(res.summary["status"]) == ["run", "skipped"]
    row = res.summary.iloc[0]
    assert row["n_experiments"] == 8 and row["n_iters"] == 80 and row["engine"] == "inhouse"
    assert row["n_clusters_significant"] == len(res.clusters) >= 1
    assert set(res.nulls["model"]) == {"increase"} and len(res.nulls) == 80
    assert set(res.contributions["kind"]) == {"jackknife", "focus_counter"}
    assert res.crosscheck.empty
    again = analyze(exps, foci, cfg, engine="inhouse", crosscheck=False)
    pd.testing.assert_frame_equal(res.nulls, again.nulls)
    pd.testing.assert_frame_equal(res.clusters, again.clusters)
    assert cluster_tables({}).empty


def test_nidm_pain_tables_contract() -> None:
    exps, foci = nidm_pain_tables()
    assert len(exps) == 21 and len(foci) == 267
    assert exps["in_ale"].all() and exps["n_ale"].gt(0).all()
    assert set(foci["experiment_id"]) == set(exps["experiment_id"])
