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


# ------------------------------------------------------- subject-group pooling
def _grouped(groups: dict[str, str]) -> pd.DataFrame:
    exps = EXPERIMENTS.copy()
    exps["subject_group"] = exps["experiment_id"].map(groups)
    return exps


def test_subject_groups_pooled_into_one_experiment() -> None:
    # b_gt (n 12) and b_t3 (n 12) share participants; l_gt (20) and l_lt (20, no foci) too.
    exps = _grouped({"b_gt": "boland", "b_t3": "boland", "l_gt": "liu", "l_lt": "liu"})
    cfg = _config(all_between={"contrast_types": ["between_group"], "n_iters": 50})
    (m,) = build_models(exps, FOCI, cfg)
    assert m.experiment_ids == ["boland", "l_gt", "s_gt"]  # a group with one usable member keeps its id
    assert m.pooled == {"boland": ["b_gt", "b_t3"]}
    assert m.n_contrasts == 4 and m.n_experiments == 3
    assert m.sample_sizes == {"boland": 12, "l_gt": 20, "s_gt": 13}
    pooled_foci = m.foci[m.foci["experiment_id"] == "boland"]
    assert len(pooled_foci) == 3 and set(pooled_foci["contrast_id"]) == {"b_gt", "b_t3"}
    assert m.n_foci == 6  # no focus lost
    assert any("pooled 2 contrasts of subject group 'boland'" in w for w in m.warnings)
    row = model_table([m]).iloc[0]
    assert row["n_experiments"] == 3 and row["n_contrasts"] == 4 and row["pooled"] == "boland = b_gt + b_t3"


def test_pooled_sample_size_is_the_smallest_and_said() -> None:
    exps = _grouped({"b_gt": "g", "l_gt": "g"})  # n 12 and 20 in one group
    (m,) = build_models(exps, FOCI, _config(inc={"contrast_types": ["between_group"],
                                                 "directions": ["patients>controls"]}))
    assert m.sample_sizes["g"] == 12
    assert any("n = 12, 20" in w and "smallest (12)" in w for w in m.warnings)


def test_pooling_can_leave_too_few_experiments() -> None:
    exps = _grouped({"b_gt": "one", "l_gt": "one", "s_gt": "one"})
    (m,) = build_models(exps, FOCI, _config(inc={"contrast_types": ["between_group"],
                                                 "directions": ["patients>controls"]}))
    assert m.skipped and m.experiment_ids == ["one"]
    assert "after pooling 3 contrasts that share participants" in m.reason


def test_pooling_off_and_clashing_names() -> None:
    exps = _grouped({"b_gt": "g", "l_gt": "g"})
    cfg = _config(inc={"contrast_types": ["between_group"], "directions": ["patients>controls"],
                       "pool_subject_groups": False})
    (m,) = build_models(exps, FOCI, cfg)
    assert m.experiment_ids == ["b_gt", "l_gt", "s_gt"] and m.pooled == {}
    cfg = _config(inc={"contrast_types": ["between_group"], "directions": ["patients>controls"]})
    cfg["pool_subject_groups"] = False
    cfg["models"]["inc"]["pool_subject_groups"] = True  # the model's own setting wins
    (m,) = build_models(exps, FOCI, cfg)
    assert m.pooled == {"g": ["b_gt", "l_gt"]}
    clash = _grouped({"b_gt": "s_gt", "l_gt": "s_gt"})  # the group's name is another experiment's id
    with pytest.raises(InputError, match="subject_group 's_gt'"):
        build_models(clash, FOCI, _config(inc={"contrast_types": ["between_group"]}))
    own = _grouped({"b_gt": "b_gt", "l_gt": "b_gt"})  # named after one of its own members: fine
    (m,) = build_models(own, FOCI, _config(inc={"contrast_types": ["between_group"],
                                                "directions": ["patients>controls"]}))
    assert m.pooled == {"b_gt": ["b_gt", "l_gt"]}


def test_pooled_model_runs_in_both_engines() -> None:
    foci, n = convergent(n_exp=8, seed=6)
    exps = pd.DataFrame({"experiment_id": list(n), "contrast_type": "between_group",
                         "direction": "patients>controls", "n_ale": list(n.values()), "in_ale": True,
                         "evidence": "verified", "subject_group": ["s1", "s1", "", "", "", "", "", ""]})
    cfg = _config(inc={"contrast_types": ["between_group"], "n_iters": 40})
    cfg["seed"] = 2
    res = analyze(exps, foci, cfg, engine="nimare", crosscheck=True, contributions=False)
    failed = res.crosscheck[~res.crosscheck["passed"]]
    assert failed.empty, failed[["check", "difference"]].to_string()
    assert res.summary.loc[0, "n_experiments"] == 7 and res.summary.loc[0, "n_contrasts"] == 8
    for engine in ("nimare", "inhouse"):
        r = res.results[engine]["inc"]
        assert "s1" in r.experiment_ids and r.pooled == {"s1": ["exp00", "exp01"]}
        assert r.summary()["pooled"] == {"s1": ["exp00", "exp01"]}


# -------------------------------------------------------------- configuration
def test_inference_and_placement_settings() -> None:
    from painmeta.config import ALEConfig

    cfg = ALEConfig.model_validate({"inference": "voxel", "focus_placement": "exact", "models": {
        "a": {"contrast_types": ["between_group"]},
        "b": {"contrast_types": ["between_group"], "inference": "cluster_mass", "focus_placement": "voxel"}}})
    a, b = build_models(EXPERIMENTS, FOCI, cfg)
    assert (a.inference, a.focus_placement) == ("voxel", "exact")
    assert (b.inference, b.focus_placement) == ("cluster_mass", "voxel")
    assert ALEConfig().inference == "cluster_size" and ALEConfig().focus_placement == "voxel"
    assert ALEConfig().pool_subject_groups is True
    with pytest.raises(Exception, match="inference"):
        ALEConfig.model_validate({"inference": "tfce"})
    with pytest.raises(Exception, match="not allowed|should match pattern"):
        ALEConfig.model_validate({"models": {"../x": {}}})


def test_exact_placement_model_reports_inhouse_and_movement() -> None:
    foci, n = convergent(n_exp=8, seed=4)
    foci = foci.assign(x=foci["x"] + 1.0, z=foci["z"] - 1.0)  # off the voxel grid
    exps = pd.DataFrame({"experiment_id": list(n), "contrast_type": "between_group",
                         "direction": "patients>controls", "n_ale": list(n.values()), "in_ale": True,
                         "evidence": "verified"})
    cfg = _config(inc={"contrast_types": ["between_group"], "n_iters": 40, "focus_placement": "exact"})
    res = analyze(exps, foci, cfg, engine="nimare", crosscheck=True, contributions=False)
    assert res.crosscheck["passed"].all()  # engines compared with voxel placement
    assert res.primary["inc"].engine == "inhouse" and res.primary["inc"].focus_placement == "exact"
    assert res.results["nimare"]["inc"].focus_placement == "voxel"
    move = res.placement.iloc[0]
    assert 0 < move["max_abs_ale_diff"] < 0.01 and move["r_ale"] > 0.95
    assert res.summary.loc[0, "engine"] == "inhouse"


def test_cluster_display_table_and_reported_items(tmp_path) -> None:
    from painmeta.ale.models import cluster_display_table, reported_ale_items

    foci, n = convergent(n_exp=10, seed=5)
    exps = pd.DataFrame({"experiment_id": list(n), "contrast_type": "between_group",
                         "direction": "patients>controls", "n_ale": list(n.values()), "in_ale": True,
                         "evidence": "verified"})
    res = analyze(exps, foci, _config(inc={"contrast_types": ["between_group"], "n_iters": 60}),
                  engine="inhouse", crosscheck=False, contributions=False)
    # every voxel-placement model is also run with exact placement; on-grid foci do not move at all
    move = res.placement.iloc[0]
    assert move["max_abs_ale_diff"] == 0 and move["n_surviving_voxel"] == move["n_surviving_exact"]
    shown = cluster_display_table(res.clusters)
    assert list(shown.columns[:3]) == ["Cluster", "Size (mm³)", "Peak x"]
    assert "Cluster labels (AAL, share of voxels)" in shown.columns
    path = tmp_path / "reported.yaml"
    path.write_text("items:\n  - {id: ale_fwhm, what: FWHM, value: [9.2, 9.8], where: '2', kind: ale_fwhm}\n"
                    "  - {id: records, what: records, value: 10, where: '1', kind: prisma}\n")
    items = reported_ale_items(path)
    assert list(items["id"]) == ["ale_fwhm"] and items.loc[0, "reported"] == "9.2–9.8"
    path.write_text("items: [\n")
    with pytest.raises(InputError, match="YAML"):
        reported_ale_items(path)


def test_inference_and_placement_names_have_one_source() -> None:
    """The config's choices, the engines' names and the CLI's choices are the same tuples."""
    from typing import get_args

    from painmeta.ale.inference import INFERENCE_METHODS
    from painmeta.ale.problem import FOCUS_PLACEMENTS
    from painmeta.config import ALE_INFERENCE, FOCUS_PLACEMENT

    assert get_args(ALE_INFERENCE) == INFERENCE_METHODS
    assert get_args(FOCUS_PLACEMENT) == FOCUS_PLACEMENTS


def test_crosscheck_budget_needs_inhouse_engine() -> None:
    from painmeta.config import ALEConfig

    with pytest.raises(Exception, match="crosscheck_max_iters needs ale.engine: inhouse"):
        ALEConfig.model_validate({"crosscheck_max_iters": 100})
    assert ALEConfig.model_validate({"engine": "inhouse", "crosscheck_max_iters": 100}).crosscheck_max_iters == 100


def test_fsn_models_must_be_models() -> None:
    from painmeta.config import ALEConfig

    models = {"all": {"contrast_types": ["within_group"]}}
    with pytest.raises(Exception, match="ale.fsn.models: 'nope' is not a model of ale.models"):
        ALEConfig.model_validate({"models": models, "fsn": {"enabled": True, "models": ["nope"]}})
    with pytest.raises(Exception, match="cluster_alpha"):
        ALEConfig.model_validate({"models": models, "fsn": {"cluster_alpha": 1.5}})
    ok = ALEConfig.model_validate({"models": models, "fsn": {"models": ["all"], "cluster_alpha": 0.005}})
    assert ok.fsn.models == ["all"] and ok.fsn.cluster_alpha == 0.005
