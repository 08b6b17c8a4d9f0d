"""PRISMA 2020 flow: schema validation, arithmetic flags, diagram."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from matplotlib.patches import Rectangle

from painmeta.errors import InputError
from painmeta.prisma import UNKNOWN_TEXT, Prisma, check_arithmetic, flow_diagram, load_prisma

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CIPN = ROOT / "data" / "raw" / "cipn" / "prisma.yaml"


def _texts(fig) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))


def _consistent_dict() -> dict:
    return yaml.safe_load((FIXTURES / "prisma_consistent.yaml").read_text())


def _status(checks, name: str) -> str:
    return checks.set_index("check").loc[name, "status"]


# --------------------------------------------------------------------------- loading


def test_cipn_loads_with_the_review_facts():
    p = load_prisma(CIPN.parent)
    assert p.identification.databases == {"MEDLINE/PubMed": 1150, "Embase": 1312, "CENTRAL": 24}
    assert p.identification.registers == {}
    assert p.stated.records_identified == 2488
    assert p.databases_and_registers.records_screened == 2293
    assert p.databases_and_registers.records_excluded is None
    assert p.databases_and_registers.reports_assessed is None
    assert all(v is None for v in p.databases_and_registers.reports_excluded.values())
    assert p.other_methods.studies_included == 0
    assert p.included.studies == 5
    assert {s.name: s.n for s in p.included.syntheses}["ALE"] == 3


def test_broken_yaml_reports_line_key_and_fix():
    with pytest.raises(InputError) as exc:
        load_prisma(FIXTURES / "prisma_broken.yaml")
    msg = str(exc.value)
    assert "5 problems found" in msg
    assert "line 5, key 'identification.databases.DatabaseA': duplicate key: already given on line 4" in msg
    assert "line 7, key 'databases_and_registers.records_screened'" in msg and "or null" in msg
    assert "line 8, key 'databases_and_registers.records_excluded'" in msg and "negative" in msg
    assert "line 9, key 'databases_and_registers.records_screend'" in msg and "spelling" in msg
    assert "line 11, key 'included.studies'" in msg


def test_not_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "prisma.yaml"
    bad.write_text("identification: [\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_prisma(bad)
    with pytest.raises(InputError, match="file not found"):
        load_prisma(tmp_path / "missing.yaml")


# --------------------------------------------------------------------------- arithmetic


def test_cipn_database_sum_is_flagged_not_fixed():
    checks = check_arithmetic(CIPN)
    row = checks.set_index("check").loc["records_identified"]
    assert row["status"] == "flag"
    assert row["observed"] == 2486 and row["expected"] == 2488 and row["difference"] == -2
    assert "1,150 + 1,312 + 24 = 2,486 ≠ stated 2,488" in row["relation"]
    # Only this one is flagged; the flow's unknowns leave the rest unchecked, not passed.
    assert list(checks.loc[checks["status"] == "flag", "check"]) == ["records_identified"]
    assert _status(checks, "records_screened") == "not checkable"
    detail = checks.set_index("check").loc["records_screened", "detail"]
    assert "193" in detail and "195" in detail
    assert load_prisma(CIPN).stated.records_identified == 2488  # never corrected


def test_consistent_fixture_has_no_flags():
    checks = check_arithmetic(FIXTURES / "prisma_consistent.yaml")
    assert len(checks) >= 10
    assert set(checks["status"]) == {"ok"}


@pytest.mark.parametrize("section,key,check", [
    ("removed_before_screening", "duplicates", "records_removed"),
    ("databases_and_registers", "records_screened", "records_screened"),
    ("databases_and_registers", "records_excluded", "reports_sought"),
    ("databases_and_registers", "reports_not_retrieved", "reports_assessed"),
    ("included", "reports", "reports_included"),
])
def test_unknown_count_makes_a_check_not_checkable(section, key, check):
    data = _consistent_dict()
    data[section][key] = None
    checks = check_arithmetic(Prisma.model_validate(data))
    assert _status(checks, check) == "not checkable"
    assert "flag" not in set(checks["status"])


def test_stated_total_stands_in_for_unknown_parts():
    data = _consistent_dict()
    data["removed_before_screening"]["duplicates"] = None
    checks = check_arithmetic(Prisma.model_validate(data))
    assert _status(checks, "records_screened") == "ok"  # 1100 - stated 200 = 900
    data["stated"]["records_removed"] = None
    checks = check_arithmetic(Prisma.model_validate(data))
    assert _status(checks, "records_screened") == "not checkable"
    assert "records_removed" not in set(checks["check"])  # no stated total, no part-vs-total check


@pytest.mark.parametrize("section,key,value,check", [
    ("databases_and_registers", "records_screened", 901, "records_screened"),
    ("databases_and_registers", "reports_assessed", 74, "reports_assessed"),
    ("included", "reports", 10, "studies_vs_reports"),
    ("stated", "reports_excluded", 61, "reports_excluded"),
])
def test_inconsistent_counts_are_flagged(section, key, value, check):
    data = _consistent_dict()
    data[section][key] = value
    checks = check_arithmetic(Prisma.model_validate(data))
    assert _status(checks, check) == "flag"


def test_synthesis_larger_than_included_is_flagged():
    data = _consistent_dict()
    data["included"]["syntheses"][0]["n"] = 16
    checks = check_arithmetic(Prisma.model_validate(data))
    assert _status(checks, "synthesis:Meta-analysis") == "flag"


# --------------------------------------------------------------------------- diagram


def test_cipn_diagram_marks_flag_and_unknowns():
    fig = flow_diagram(CIPN)
    text = _texts(fig)
    assert "†1" in text
    assert "2,486 ≠ stated 2,488" in text and "not corrected" in text
    assert UNKNOWN_TEXT.replace(" ", "\u00a0", 2) in text  # 'n = unknown (not reported)' in the boxes
    assert "Identification of studies via other methods" in text
    assert "Studies included in review" in text and "Included in each synthesis:" in text
    dashed = [r for r in fig.findobj(Rectangle) if r.get_linestyle() not in ("-", "solid")]
    assert len(dashed) == 1  # only the flagged box


def test_consistent_diagram_has_no_flag_marks():
    fig = flow_diagram(load_prisma(FIXTURES / "prisma_consistent.yaml"))
    text = _texts(fig)
    assert "†" not in text
    assert "0 flagged, 11 consistent." in text
    assert "unknown" not in text


def test_diagram_without_other_methods_column():
    data = _consistent_dict()
    data["identification"]["other_methods"] = {}
    data["included"]["reports"] = 15
    del data["other_methods"]
    p = Prisma.model_validate(data)
    assert set(check_arithmetic(p)["status"]) == {"ok"}
    fig = flow_diagram(p)
    assert "via other methods" not in _texts(fig)
    assert fig.get_figwidth() < 7
