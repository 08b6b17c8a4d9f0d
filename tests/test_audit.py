"""Reproduction audit: statuses, engine checks, internal inconsistencies."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from painmeta import audit
from painmeta.errors import InputError


@pytest.fixture(scope="module")
def cipn():
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
    for ok in ("studies_included", "ale_participants", "ale_mask_voxels", "ale_fwhm", "ale_max"):
        assert t.loc[ok, "status"] == audit.MATCH, ok
    assert t.loc["ale_foci", "status"] == audit.NOT_PUBLIC and t.loc["ale_foci", "recomputed"] == 10
    assert t.loc["ale_min_p", "status"] == audit.NOT_PUBLIC


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
    assert t.loc["studies_included", "status"] == audit.MATCH
    assert t.loc["population", "status"] == audit.MISMATCH
    assert t.loc["ale_mask_voxels", "status"] == audit.MATCH
    assert t.loc["ale_min_p", "status"] == audit.NOT_PUBLIC
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
