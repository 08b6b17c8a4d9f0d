"""Reproduction audit: statuses, engine checks, internal inconsistencies."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from painmeta import audit
from painmeta.errors import InputError


@pytest.fixture(scope="module")
def cipn(tmp_path_factory):
    # Module-scoped, so the per-test isolation has not run yet: isolate here (no ALE stage outputs).
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PAINMETA_WORK", str(tmp_path_factory.mktemp("work")))
        ctx = audit.build_context("cipn")
        return ctx, audit.audit(ctx).set_index("id")


def test_precision_rule():
    assert audit.same_at_precision(0.30, 0.3049)
    assert not audit.same_at_precision(0.30, 0.3051)
    assert audit.same_at_precision(0.8646, 0.86464, decimals=4)
    assert not audit.same_at_precision(0.8646, 0.8200, decimals=4)


def test_every_status_is_known_and_reasoned(cipn):
    _, table = cipn
    assert set(table["status"]) <= set(audit.STATUSES)
    assert table["reason"].str.len().gt(0).all()


def test_cipn_statuses(cipn):
    _, t = cipn
    assert t.loc["records_identified", "status"] == audit.MISMATCH
    assert t.loc["records_identified", "recomputed"] == 2486
    assert t.loc["population", "status"] == audit.MISMATCH
    assert "multiple myeloma" in t.loc["population", "reason"]
    # Recomputed from independent sources (the primary abstracts' sample sizes).
    assert t.loc["ale_participants", "status"] == audit.MATCH
    # Equal only because copied or a constant or a formula of copied inputs: never counted as a match.
    for copied in ("studies_included", "studies_meta", "ale_mask_voxels", "ale_fwhm", "ale_iters_increase",
                   "ale_iters_decrease"):
        assert t.loc[copied, "status"] == audit.BY_CONSTRUCTION, copied
    # Ten Table 3 peaks and Boland's two group peaks (secondary extraction) are public; the review used 11 foci.
    assert t.loc["ale_foci", "status"] == audit.NOT_REPRODUCIBLE and t.loc["ale_foci", "recomputed"] == 12
    assert "2 secondary" in t.loc["ale_foci", "reason"]
    assert t.loc["ale_min_p", "status"] == audit.NOT_REPRODUCIBLE
    # No ALE stage output in this isolated run: ALE values are not compared, never taken from a formula.
    assert t.loc["ale_max", "status"] == audit.NOT_COMPARED and pd.isna(t.loc["ale_max", "recomputed"])
    assert set(audit.STATUSES) == {"match", "consistent by construction", "mismatch", "not reproducible",
                                   "not compared"}


def _fake_ale(ctx, tmp_path, summaries: dict, ran: dict):
    """Give the audit context ALE stage outputs with the given summary numbers."""
    from painmeta.reproduction import ModelOutput

    ctx.ale_models = pd.DataFrame({"model": list(ran), "status": ["run" if r else "skipped" for r in ran.values()],
                                   "reason": ["" if r else "1 usable experiment" for r in ran.values()]})
    ctx.ale = {m: ModelOutput(m, tmp_path / m, s) for m, s in summaries.items()}
    return ctx


def test_ale_values_come_from_the_ale_stage(tmp_path):
    ctx = audit.build_context("cipn")
    item = {"id": "x", "what": "max", "value": 0.0084, "where": "3.3", "kind": "ale_summary", "models": "all",
            "key": "ale_max", "sig": 2}
    # A dataset whose real ALE maximum is 0.034: the old kernel-peak rule called 0.0084 a match here.
    _fake_ale(ctx, tmp_path, {"a": {"ale_max": 0.034}}, {"a": True, "b": False})
    row = audit._audit_item(item, ctx)
    assert row["recomputed"] == pytest.approx(0.034) and row["status"] == audit.NOT_COMPARED
    assert "did not run (the ALE stage says why): b" in row["reason"]
    _fake_ale(ctx, tmp_path, {"a": {"ale_max": 0.034}, "b": {"ale_max": 0.0085}}, {"a": True, "b": True})
    assert audit._audit_item(item, ctx)["status"] == audit.MISMATCH
    _fake_ale(ctx, tmp_path, {"a": {"ale_max": 0.00838}}, {"a": True})
    assert audit._audit_item(item, ctx)["status"] == audit.MATCH
    partial = dict(item, partial_inputs="only one study is public")
    row = audit._audit_item(partial, ctx)
    assert row["status"] == audit.NOT_REPRODUCIBLE and "only one study" in row["reason"]


def test_headline_counts_only_matches():
    t = pd.DataFrame({"status": [audit.MATCH, audit.BY_CONSTRUCTION, audit.BY_CONSTRUCTION, audit.MISMATCH]})
    text = audit.headline(t)
    assert text.startswith("**1 of 4**") and "2 consistent by construction" in text


def test_audit_runs_for_a_dataset_without_reported_yaml(capsys):
    from argparse import Namespace

    assert audit._cmd_audit(Namespace(dataset="nidm_pain")) == 0
    assert capsys.readouterr().out.strip() == "nidm_pain: no reported.yaml, so there is nothing to audit"


def test_reported_yaml_cluster_tables_and_maps_are_validated(tmp_path, fixtures):
    folder = _mini_with_reported(tmp_path, fixtures, [])
    (folder / "reported.yaml").write_text(yaml.safe_dump({
        "paper": "x",
        "cluster_tables": [{"id": "t", "what": "w", "where": "T2", "model": "m",
                            "clusters": [{"volume_mm3": -5, "peak": [1, 2]}]}],
        "maps": [{"id": "m", "what": "w", "model": "m", "file": "../escape.nii.gz"}],
    }))
    with pytest.raises(InputError) as info:
        audit.load_reported_all(folder / "reported.yaml")
    msg = str(info.value)
    assert "cluster table 1 ('t'), cluster 1: 'peak' must be [x, y, z]" in msg
    assert "'volume_mm3' must be a positive number" in msg
    assert "map 1: 'file' must be a path inside the dataset folder" in msg


def test_reported_fail_safe_n_and_its_convention_are_validated(tmp_path, fixtures):
    folder = _mini_with_reported(tmp_path, fixtures, [])
    (folder / "reported.yaml").write_text(yaml.safe_dump({
        "paper": "x",
        "cluster_tables": [{"id": "t", "what": "w", "where": "T2", "model": "m", "fsn_counts": "plus_two",
                            "clusters": [{"volume_mm3": 5, "peak": [1, 2, 3], "fsn_mean": "many",
                                          "fsn_ci": [9, 3]}]}],
    }))
    with pytest.raises(InputError) as info:
        audit.load_reported_all(folder / "reported.yaml")
    msg = str(info.value)
    assert "'fsn_counts' must be one of last_k, last_k_plus_one" in msg
    assert "cluster 1: 'fsn_mean' must be a number >= 0" in msg
    assert "cluster 1: 'fsn_ci' must be [lower, upper]" in msg


def test_engine_reproduces_review_where_inputs_are_known(cipn):
    _, t = cipn
    for item in ("exp_overall", "exp_dmn", "exp_brainstem", "study_dmn", "het_p", "het_i2"):
        assert t.loc[item, "engine_check"].startswith("match"), (item, t.loc[item, "engine_check"])
    # The text's 8/15 does not give the reported 0.60; 9/15 does: the inconsistency is surfaced, not hidden.
    check = t.loc["study_overall", "engine_check"]
    assert check.startswith("mismatch: 0.53") and "9/15): 0.60 (0.35–0.81) (match)" in check


def test_inconsistencies_are_computed(cipn):
    ctx, _ = cipn
    inc = audit.inconsistencies(ctx)
    text = " ".join(inc["evidence"])
    assert "2,486 ≠ stated 2,488" in text
    assert "8/15" in text and "9/15 gives 0.60" in text and "p 0.8646" in text
    assert "multiple myeloma" in text
    # The one contradiction that is read, not computed, comes from cipn's reported.yaml, marked as such.
    stated = inc[inc["issue"] == "Heterogeneity reported in the ALE section"]
    assert len(stated) == 1 and "read in the paper, not computed" in stated["evidence"].iloc[0]


def _mini_with_reported(tmp_path: Path, fixtures: Path, items: list[dict]) -> Path:
    folder = tmp_path / "valid_mini"  # a dataset is a name: its folder's name is its name
    shutil.copytree(fixtures / "valid_mini", folder)
    os.environ["PAINMETA_RAW"] = str(tmp_path)  # conftest restores it after the test
    (folder / "reported.yaml").write_text(yaml.safe_dump({"items": items}, sort_keys=False))
    return folder


def test_statuses_on_fixture(tmp_path, fixtures):
    folder = _mini_with_reported(tmp_path, fixtures, [
        {"id": "studies_included", "what": "studies", "value": 2, "where": "x", "kind": "studies"},
        {"id": "population", "what": "population", "value": "breast cancer", "where": "x", "kind": "population"},
        {"id": "ale_mask_voxels", "what": "mask", "value": 228483, "where": "x", "kind": "ale_mask"},
        {"id": "ale_min_p", "what": "p", "value": [1e-5, 2e-5], "where": "x", "kind": "ale_inputs_needed"},
        {"id": "studies_meta", "what": "meta", "value": 3, "where": "x", "kind": "studies"},
    ])
    t = audit.audit(audit.build_context(folder.name)).set_index("id")
    assert t.loc["studies_included", "status"] == audit.BY_CONSTRUCTION
    assert t.loc["population", "status"] == audit.MISMATCH
    assert t.loc["ale_mask_voxels", "status"] == audit.BY_CONSTRUCTION
    assert t.loc["ale_min_p", "status"] == audit.NOT_REPRODUCIBLE
    assert t.loc["studies_meta", "status"] == audit.MISMATCH and t.loc["studies_meta", "recomputed"] == 2


def test_reported_yaml_errors_name_the_item(tmp_path, fixtures):
    folder = _mini_with_reported(tmp_path, fixtures, [
        {"id": "a", "what": "x", "value": 1, "where": "1", "kind": "nonsense"},
        {"id": "a", "what": "x", "where": "1", "kind": "studies"},
    ])
    with pytest.raises(InputError) as info:
        audit.load_reported(folder / "reported.yaml")
    msg = str(info.value)
    assert "item 1 ('a'): kind 'nonsense'" in msg
    assert "item 2 ('a'): key 'value' is missing" in msg and "used twice" in msg


def test_inconsistencies_are_generic_and_dataset_prose_comes_from_reported_yaml(tmp_path, fixtures):
    # valid_mini: StudyA2020 (breast cancer, 15 patients) and StudyB2021 (colorectal cancer, 20), both in ALE.
    folder = _mini_with_reported(tmp_path, fixtures, [
        {"id": "population", "what": "population", "value": "colorectal cancer", "where": "1", "kind": "population"},
        {"id": "ale_participants", "what": "Participants in ALE", "value": 35, "where": "2",
         "kind": "ale_participants"},
        {"id": "het_p", "what": "Heterogeneity p", "value": 0.5, "where": "4.2", "kind": "heterogeneity",
         "inconsistency": {"issue": "Reported in the wrong section", "consequence": "not what it says it is"}},
    ])
    inc = audit.inconsistencies(audit.build_context(folder.name))
    assert list(inc["issue"]) == ["Population described as all colorectal cancer", "Reported in the wrong section"]
    pop, stated = inc.to_dict("records")
    assert pop["evidence"] == "StudyA2020: breast cancer"
    assert "every included study is colorectal cancer" in pop["consequence"] and "breast" not in pop["consequence"]
    # Read in the paper, not computed: the row says so and carries the dataset's own words.
    assert stated["evidence"] == ("Heterogeneity p = 0.5 (section 4.2) [read in the paper, not computed: "
                                  "reported.yaml item het_p]")
    assert stated["consequence"] == "not what it says it is"
    # 35 ALE participants are also the 35 patients enrolled: no inconsistency to report.
    assert not inc["issue"].str.contains("Participants").any()


def test_reported_inconsistency_must_be_issue_and_consequence_text(tmp_path, fixtures):
    folder = _mini_with_reported(tmp_path, fixtures, [
        {"id": "het_p", "what": "p", "value": 0.5, "where": "1", "kind": "heterogeneity",
         "inconsistency": {"issue": "x", "why": "y"}},
    ])
    with pytest.raises(InputError, match=r"item 1 \('het_p'\): 'inconsistency' must be a mapping with text 'issue'"):
        audit.load_reported(folder / "reported.yaml")
