"""ROI synthesis: lookup rules, seed exclusion, matrices, traceability, counts, review-implied counts, figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from painmeta import roi
from painmeta.config import load_config
from painmeta.errors import InputError
from painmeta.paths import dataset_paths

NA = pd.NA


@pytest.fixture(scope="module")
def config():
    cfg, _ = load_config("cipn")
    return cfg


@pytest.fixture(scope="module")
def lookup(config):
    return roi.load_lookup(roi.lookup_path(config), config.network_keys)


# --------------------------------------------------------------------------- small inline fixture


def _experiments() -> pd.DataFrame:
    rows = [
        # id, study, contrast type, direction, modality, seed
        ("A_gt", "A", "between_group", "patients>controls", "task fMRI", NA),
        ("A_lt", "A", "between_group", "patients<controls", "task fMRI", NA),
        ("A_nofind", "A", "between_group", "patients<controls", "task fMRI", NA),
        ("B_seed", "B", "between_group", "patients>controls", "rs-fMRI", "posterior cingulate cortex"),
        ("B_corr", "B", "correlation", "negative_association", "rs-fMRI", "posterior cingulate cortex"),
        ("C_seedonly", "C", "between_group", "patients>controls", "rs-fMRI", "thalamus"),
        ("C_unmapped", "C", "between_group", "patients>controls", "rs-fMRI", NA),
        ("D_unknown", "D", "between_group", "unknown", "rs-fMRI", NA),
        ("D_within", "D", "within_group", "activation", "task fMRI", NA),
    ]
    df = pd.DataFrame(rows, columns=["experiment_id", "study_id", "contrast_type", "direction", "modality",
                                     "seed_region"])
    df["contrast"] = "contrast " + df["experiment_id"]
    df["evidence"] = "verified"
    df["evidence_note"] = NA
    df.loc[df["experiment_id"] == "A_nofind", "evidence_note"] = "targets not public"
    return df


def _findings() -> pd.DataFrame:
    rows = [
        ("f1", "A_gt", "precuneus", "patients>controls", NA),
        ("f2", "A_gt", "frontal operculum (near insula)", "patients>controls", NA),
        ("f3", "A_lt", "right superior frontal gyrus", "patients<controls", NA),
        ("f4", "A_lt", "precentral gyrus", "patients<controls", "p1"),
        ("f5", "B_seed", "PCC", "patients>controls", NA),  # the seed: never a target
        ("f6", "B_seed", "precuneus", "patients>controls", NA),  # same network as the seed, but a target
        ("f7", "B_seed", "medial prefrontal cortex", "patients>controls", NA),
        ("f8", "B_corr", "medial prefrontal cortex", "negative_association", NA),
        ("f9", "C_seedonly", "bilateral thalamus", "patients>controls", NA),
        ("f10", "C_unmapped", "zona incerta-ish blob", "patients>controls", NA),
        ("f11", "D_unknown", "anterior cingulate cortex", "unknown", NA),
        ("f12", "D_unknown", "cerebellum crus 1", "unknown", "p2"),
        ("f13", "D_within", "postcentral gyrus", "activation", NA),
    ]
    df = pd.DataFrame(rows, columns=["finding_id", "experiment_id", "region", "direction", "focus_id"])
    df["hemisphere"] = NA
    df["evidence"] = "verified"
    df["note"] = NA
    df["source"] = "source of " + df["finding_id"]
    df["raw_line"] = np.arange(len(df)) + 2
    return df


def _foci() -> pd.DataFrame:
    return pd.DataFrame({"focus_id": ["p1", "p2"], "experiment_id": ["A_lt", "D_unknown"],
                         "x": [-38.0, -2.0], "y": [-22.0, -34.0], "z": [56.0, 64.0]})


def _studies() -> pd.DataFrame:
    return pd.DataFrame({"study_id": ["A", "B", "C", "D", "E"], "first_author": ["Alpha X", "Beta Y", "Gamma Z",
                                                                                  "Delta W", "Eps V"],
                         "year": [2001, 2002, 2003, 2004, 2005],
                         "syntheses": ["roi", "narrative;roi", "roi", "roi", "narrative"]})


@pytest.fixture(scope="module")
def small(config, lookup):
    cfg = config.model_copy(update={"roi": config.roi.model_copy(update={"contrast_types": ["between_group",
                                                                                              "correlation"]})})
    mapped = roi.map_findings(_findings(), _experiments(), _foci(), cfg, lookup=lookup)
    exp = roi.experiment_matrix(mapped, _experiments(), cfg, _studies(), lookup=lookup)
    study = roi.study_matrix(exp, mapped, cfg, _studies())
    return cfg, mapped, exp, study


# --------------------------------------------------------------------------- lookup


@pytest.mark.parametrize("region, rule, network", [
    ("frontal operculum (near insula)", "operculum", "none"),          # before the 'frontal' rules
    ("inferior frontal gyrus pars opercularis", "lateral_pfc", "prefrontal"),
    ("secondary somatosensory cortex (SII)", "sii", "none"),           # before 'somatosensory'
    ("primary somatosensory cortex (SI)", "s1", "sensorimotor"),
    ("cingulum bundle", "white_matter", "none"),                       # a tract, not cingulate cortex
    ("posterior cingulate cortex", "pcc", "dmn"),
    ("anterior cingulate cortex", "acc", "dmn"),
    ("precuneus", "precuneus", "dmn"),                                 # not caught by 'cuneus'
    ("medial prefrontal cortex", "mpfc", "prefrontal"),
    ("Superior_Frontal_Gyrus", "lateral_pfc", "prefrontal"),           # underscores and case
    ("thalamus", "thalamus", "none"),
    ("hypothalamus", "hypothalamus", "none"),
    ("periaqueductal gray", "brainstem_pag", "brainstem_pag"),
    ("Cerebellum_Crus1_L", "cerebellum", "cerebellum"),
    ("sensorimotor cortex", "sensorimotor_other", "sensorimotor"),
    ("premotor cortex", "sma_premotor", "none"),
    ("angular gyrus", "ipl_angular", "none"),
    ("extrastriate cortex", "occipital", "none"),
])
def test_lookup_first_match(lookup, region, rule, network):
    assert lookup.match(region) == (rule, network)


def test_unknown_label_is_unmapped(lookup):
    assert lookup.match("zona incerta-ish blob") == (None, roi.UNMAPPED)
    assert lookup.match("") == (None, roi.UNMAPPED)
    assert lookup.match(NA) == (None, roi.UNMAPPED)


def test_lookup_order_column_decides_not_row_order(tmp_path, config):
    text = ("order,rule_id,pattern,network,structure,examples,rationale,basis,alternative,version\n"
            "20,broad,frontal,prefrontal,x,superior frontal gyrus,r,b,,v9\n"
            "10,narrow,frontal operculum,none,x,frontal operculum,r,b,,v9\n")
    path = tmp_path / "lk.csv"
    path.write_text(text)
    lk = roi.load_lookup(path, config.network_keys)
    assert lk.version == "v9"
    assert lk.match("frontal operculum") == ("narrow", "none")
    assert lk.match("superior frontal gyrus") == ("broad", "prefrontal")


def test_lookup_validation_reports_file_and_line(tmp_path, config):
    text = ("order,rule_id,pattern,network,structure,examples,rationale,basis,alternative,version\n"
            "10,a,(unclosed,prefrontal,x,,r,b,,v1\n"
            "20,a,cortex,limbic,x,,r,b,,v1\n"
            "30,c,thalamus,none,x,,,b,,v2\n")
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        roi.load_lookup(path, config.network_keys)
    msg = str(info.value)
    assert "line 2" in msg and "regular expression" in msg
    assert "line 3" in msg and "duplicate rule_id" in msg and "unknown network" in msg
    assert "line 4" in msg and "rationale" in msg
    assert "one version" in msg and str(path) in msg


def test_lookup_shadowed_example_fails(tmp_path, config):
    text = ("order,rule_id,pattern,network,structure,examples,rationale,basis,alternative,version\n"
            "10,broad,frontal,prefrontal,x,superior frontal gyrus,r,b,,v1\n"
            "20,narrow,frontal operculum,none,x,frontal operculum,r,b,,v1\n")
    path = tmp_path / "shadow.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=r"line 3.*caught first by rule 'broad' \(line 2\)"):
        roi.load_lookup(path, config.network_keys)


def test_shipped_lookups_validate(lookup):
    # Every AAL label covered exactly once, and consistent with the region rules; also after reassignment.
    aal = roi.load_atlas_lookup(Path(roi.project_root()) / roi.AAL_LOOKUP, lookup)
    assert aal.index.is_unique and len(aal) > 100
    alt = lookup.alternative()
    assert alt.match("medial prefrontal cortex") == ("mpfc", "dmn")
    assert alt.label.startswith(lookup.version + " + ")
    roi.load_atlas_lookup(Path(roi.project_root()) / roi.AAL_LOOKUP, alt)
    assert lookup.match("medial prefrontal cortex") == ("mpfc", "prefrontal")  # the original is untouched


# --------------------------------------------------------------------------- mapping


def test_seed_regions_are_never_targets(small):
    _, mapped, exp, _ = small
    role = mapped.set_index("finding_id")["role"]
    assert role["f5"] == "seed"        # 'PCC' is the seed 'posterior cingulate cortex' (same rule)
    assert role["f9"] == "seed"        # 'bilateral thalamus' vs seed 'thalamus'
    assert role["f6"] == "target"      # precuneus: same network as the PCC seed, different structure
    assert not mapped.set_index("finding_id").at["f5", "counts"]
    row = exp.table.set_index("experiment_id").loc["B_seed"]
    assert row["seed_networks"] == "dmn" and row["dmn"] == roi.UP   # DMN via the precuneus target only
    cell = exp.cells[(exp.cells["entry_id"] == "B_seed") & (exp.cells["network"] == "dmn")].iloc[0]
    assert cell["finding_ids"] == "f6" and cell["seed_findings_excluded"] == "f5"


def test_roles_and_directions(small):
    _, mapped, _, _ = small
    m = mapped.set_index("finding_id")
    assert m.at["f2", "role"] == "outside" and m.at["f2", "network"] == "none"
    assert m.at["f10", "role"] == roi.UNMAPPED and m.at["f10", "rule_id"] == ""
    assert m.at["f8", "matrix_direction"] == roi.DOWN     # negative association -> lower with more symptoms
    assert m.at["f11", "matrix_direction"] == roi.UNKNOWN


def test_atlas_check_agree_and_disagree(small):
    _, mapped, _, _ = small
    m = mapped.set_index("finding_id")
    assert m.at["f4", "atlas_status"] == "agree" and m.at["f4", "aal_label"].startswith("Precentral")
    assert m.at["f12", "atlas_status"] == "disagree"      # 'cerebellum' at the vertex
    assert m.at["f12", "network"] == "cerebellum"         # the lookup decides
    assert m.at["f1", "atlas_status"] == "no_coordinate"
    dis = roi.atlas_disagreements(mapped)
    assert list(dis["finding_id"]) == ["f12"]
    assert "lookup kept: cerebellum" in dis["decision"].iloc[0]


# --------------------------------------------------------------------------- matrices


def test_experiment_matrix_rows_and_not_assessable(small):
    cfg, _, exp, _ = small
    na = exp.not_assessable.set_index("id")
    assert na.at["A_nofind", "status"] == "no_public_finding" and "targets not public" in na.at["A_nofind", "reason"]
    assert na.at["C_seedonly", "status"] == "seed_only"
    assert na.at["C_unmapped", "status"] == "unmapped_only" and "zona incerta" in na.at["C_unmapped", "reason"]
    assert na.at["D_within", "status"] == "contrast_type_not_in_roi"
    # Every contrast is either a row or listed, never both, never silently a row of 'none'.
    rows = set(exp.table["experiment_id"])
    assert rows.isdisjoint(na.index)
    assert rows | set(na.index) == set(_experiments()["experiment_id"])
    t = exp.table.set_index("experiment_id")
    assert list(t.columns[-5:]) == cfg.network_keys
    assert t.at["A_gt", "dmn"] == roi.UP and t.at["A_gt", "prefrontal"] == roi.NONE
    assert "operculum" in t.at["A_gt", "outside_networks"]
    assert t.at["A_lt", "prefrontal"] == roi.DOWN and t.at["A_lt", "sensorimotor"] == roi.DOWN
    assert t.at["D_unknown", "dmn"] == roi.UNKNOWN and t.at["D_unknown", "cerebellum"] == roi.UNKNOWN
    assert set(np.unique(t[cfg.network_keys].to_numpy())) <= set(roi.CELL_CODES)


def test_config_exclusion_is_reported(config, lookup):
    cfg = config.model_copy(update={"roi": config.roi.model_copy(update={"exclude_experiments": ["A_gt"]})})
    mapped = roi.map_findings(_findings(), _experiments(), _foci(), cfg, lookup=lookup)
    exp = roi.experiment_matrix(mapped, _experiments(), cfg, _studies(), lookup=lookup)
    assert "A_gt" not in set(exp.table["experiment_id"])
    assert exp.not_assessable.set_index("id").at["A_gt", "status"] == "excluded_by_config"


def test_study_matrix_merges_with_direction_marks(small):
    _, _, _, study = small
    t = study.table.set_index("study_id")
    assert list(t.index) == ["A", "B", "D"]
    assert t.at["A", "dmn"] == roi.UP and t.at["A", "prefrontal"] == roi.DOWN and t.at["A", "sensorimotor"] == roi.DOWN
    assert t.at["B", "prefrontal"] == roi.BOTH       # f7 up (between-group) + f8 down (association)
    assert t.at["A", "n_contrasts"] == 2 and t.at["A", "contrasts_not_assessable"] == "A_nofind"
    na = study.not_assessable.set_index("id")
    assert na.at["C", "status"] == "no_assessable_contrast"
    assert na.at["E", "status"] == "study_not_in_roi"
    disp = study.display()
    assert disp.loc["B", "Lateral/medial PFC (executive)"] == "\u2191\u2193"


def test_combine_directions():
    assert roi.combine_directions([]) == roi.NONE
    assert roi.combine_directions([roi.UP, roi.UP]) == roi.UP
    assert roi.combine_directions([roi.UP, roi.DOWN]) == roi.BOTH
    assert roi.combine_directions([roi.UNKNOWN]) == roi.UNKNOWN
    assert roi.combine_directions([roi.UNKNOWN, roi.DOWN]) == roi.DOWN
    assert roi.combine_directions([roi.BOTH]) == roi.BOTH


def test_every_cell_traces_to_findings(small):
    _, mapped, exp, study = small
    m = mapped.set_index("finding_id")
    for matrix in (exp, study):
        codes = matrix.codes()
        for rec in matrix.cells.itertuples(index=False):
            assert codes.at[rec.entry_id, rec.network] == rec.cell
            ids = [i for i in rec.finding_ids.split("; ") if i]
            if rec.cell == roi.NONE:
                assert not ids
                continue
            assert ids, f"{rec.entry_id}/{rec.network} has no finding behind it"
            for fid in ids:
                assert m.at[fid, "role"] == "target" and m.at[fid, "network"] == rec.network
                assert m.at[fid, "source"] in rec.sources
                key = "experiment_id" if matrix.level == "experiment" else "study_id"
                assert m.at[fid, key] == rec.entry_id
    # ... and every counted finding shows up in exactly one experiment-level cell.
    listed = [i for ids in exp.cells["finding_ids"] for i in ids.split("; ") if i]
    in_rows = mapped[mapped["counts"] & mapped["experiment_id"].isin(exp.table["experiment_id"])]
    assert sorted(listed) == sorted(in_rows["finding_id"])


# --------------------------------------------------------------------------- counts


def test_counts(small):
    cfg, _, exp, study = small
    c = roi.counts(exp).set_index(["subgroup", "network"])
    n = exp.n
    assert (c["n"] == n).all()
    assert c.at[("overall", "dmn"), "events"] == 3            # A_gt, B_seed (precuneus), D_unknown (ACC)
    assert c.at[(roi.UP, "dmn"), "events"] == 2 and c.at[(roi.DOWN, "dmn"), "events"] == 0
    assert c.at[("overall", "prefrontal"), "events"] == 3     # A_lt, B_seed, B_corr
    assert c.at[(roi.DOWN, "prefrontal"), "events"] == 2
    s = roi.counts(study).set_index(["subgroup", "network"])
    # A 'both' cell counts in each direction.
    assert s.at[(roi.UP, "prefrontal"), "events"] == 1 and s.at[(roi.DOWN, "prefrontal"), "events"] == 2
    assert set(s.index.get_level_values(0)) == set(roi.SUBGROUPS)
    wide = roi.counts_wide(pd.concat([roi.counts(exp), roi.counts(study)]))
    assert wide.loc["Default mode network", ("experiment", "overall")] == f"3/{n}"


def test_implied_review_counts_are_derived_and_reproduce():
    imp = roi.implied_review_counts("cipn")
    assert not imp.empty
    checked = imp[imp["reproduces"].notna()]
    assert checked["reproduces"].astype(bool).all(), checked[["item_id", "reproduces"]]
    net = imp[(imp["level"] == "experiment") & (imp["subgroup"] == "overall") & (imp["network"] != "all")]
    total = imp[(imp["item_id"] == "exp_all")].iloc[0]
    assert net["events"].sum() == total["events"] and (net["n"] * len(net)).iloc[0] == total["n"]
    assert imp["derivation"].str.contains("Derived").all()
    assert roi.implied_review_counts("nidm_pain").empty


# --------------------------------------------------------------------------- end to end, files, figures


def test_cipn_end_to_end_and_files():
    from painmeta.extraction import extract

    ext, cfg, paths = extract("cipn")
    res = roi.synthesise(ext, cfg)
    exp = res.experiment
    # Accounting: every included contrast is a row or a listed not-assessable entry.
    assert exp.n + len(exp.not_assessable) == len(ext.experiments)
    # Smith 2021's seed is the PCC: its DMN cell can only be marked as seed, never implicated.
    smith = exp.table.set_index("experiment_id").loc["Smith2021_gt"]
    assert smith["seed_networks"] == "dmn" and smith["dmn"] == roi.NONE
    comparison = roi.compare_with_review(res, roi.implied_review_counts("cipn"))
    assert set(comparison["level"]) == {"experiment", "study"}
    written = roi.write_outputs(res, cfg, paths, implied=roi.implied_review_counts("cipn"))
    for name in ("roi_findings.csv", "roi_cells.csv", "roi_matrix_experiment.csv", "roi_matrix_study.csv",
                 "roi_counts.csv", "roi_not_assessable.csv", "roi_atlas_disagreements.csv",
                 "roi_review_comparison.csv"):
        assert (paths.processed / name).is_file(), name
    for stem in ("roi_matrix_experiment", "roi_matrix_study"):
        for ext_ in ("png", "svg", "pdf"):
            f = paths.stage("roi") / f"{stem}.{ext_}"
            assert f.is_file() and f.stat().st_size > 1000, f
    assert str(paths.processed).startswith(str(Path(dataset_paths("cipn").processed)))
    assert len(written) >= 14


def test_empty_dataset_renders_and_writes(config, lookup):
    empty = _findings().iloc[0:0]
    mapped = roi.map_findings(empty, _experiments(), _foci(), config, lookup=lookup)
    exp = roi.experiment_matrix(mapped, _experiments(), config, _studies(), lookup=lookup)
    assert exp.n == 0 and len(exp.not_assessable) == len(_experiments())
    c = roi.counts(exp)
    assert (c["n"] == 0).all() and c["proportion"].isna().all()
    import matplotlib.pyplot as plt

    fig = roi.plot_matrix(exp, config)
    plt.close(fig)


def test_cli_roi(capsys):
    from painmeta.cli import main

    assert main(["roi", "cipn", "--no-figures"]) == 0
    out = capsys.readouterr().out
    assert "roi_counts.csv" in out and "Default mode network" in out
