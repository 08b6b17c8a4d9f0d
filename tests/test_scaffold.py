"""new-dataset: a dataset from Sleuth files (or an empty scaffold) that validates and runs."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from painmeta import extraction
from painmeta.cli import main
from painmeta.config import load_config
from painmeta.errors import InputError
from painmeta.scaffold import new_dataset

SLEUTH = Path(__file__).parent / "fixtures" / "sleuth"
ENGE = Path("/work/shared/data/published/enge2021/sleuth_all.txt")


@pytest.fixture
def raw(tmp_path, use_raw) -> Path:
    return use_raw(tmp_path / "raw")


def _tables(folder: Path) -> dict[str, pd.DataFrame]:
    return {t: pd.read_csv(folder / f"{t}.csv", dtype=str, keep_default_na=False)
            for t in ("studies", "experiments", "foci", "findings")}


def test_from_sleuth_builds_tables_with_resolvable_sources(raw):
    folder = new_dataset("demo", [SLEUTH / "two_blocks.txt", SLEUTH / "talairach.txt"])
    assert folder == raw / "demo"
    assert extraction.validate("demo") == []
    t = _tables(folder)
    # One experiment per Sleuth experiment block; the multi-line header is kept as the contrast text.
    assert list(t["experiments"]["contrast"]) == [
        "Alpha 2010: pain > rest", "Alpha 2010: heat > warm patients only", "Beta 2012: pain > rest",
        "Gamma 2015: pain > rest", "Delta 2018: pain > rest", "Epsilon 2019"]
    assert set(t["experiments"]["contrast_type"]) == {"within_group"}
    assert set(t["experiments"]["direction"]) == {"unknown"}
    assert list(t["experiments"]["n_ale"]) == ["12", "12", "15", "20", "18", "22"]
    # Studies: the label before ':' groups Alpha's two contrasts into one study.
    assert list(t["studies"]["first_author"]) == ["Alpha 2010", "Beta 2012", "Gamma 2015", "Delta 2018",
                                                  "Epsilon 2019"]
    assert list(t["studies"]["year"]) == ["2010", "2012", "2015", "2018", "2019"]
    assert len(t["findings"]) == 0 and list(t["findings"].columns)[:2] == ["finding_id", "experiment_id"]
    # Every focus source names the copied file and line, and that line holds those coordinates.
    for _, row in t["foci"].iterrows():
        m = re.fullmatch(r"(sleuth/[^,]+), line (\d+)", row["source"])
        assert m, row["source"]
        line = (folder / m.group(1)).read_text().splitlines()[int(m.group(2)) - 1]
        assert [float(v) for v in line.split()] == [float(row[c]) for c in ("x", "y", "z")]
    assert (folder / "sleuth" / "two_blocks.txt").read_bytes() == (SLEUTH / "two_blocks.txt").read_bytes()
    # Talairach stays Talairach in the raw tables; the transform is recorded per study.
    tal_studies = t["studies"].set_index("first_author").loc[["Gamma 2015", "Delta 2018", "Epsilon 2019"]]
    assert set(tal_studies["tal_transform"]) == {"tal2icbm_other"}
    assert t["studies"].set_index("first_author").loc["Alpha 2010", "tal_transform"] == ""
    # Nothing invented: unknowns say so, and nothing is marked verified.
    assert set(t["studies"]["evidence"]) == set(t["experiments"]["evidence"]) == {"unverified"}
    assert t["studies"]["n_patients"].eq("").all() and t["studies"]["population"].str.contains("unknown").all()


def test_from_sleuth_config_one_model_per_file_or_block(raw):
    new_dataset("demo", [SLEUTH / "two_blocks.txt", SLEUTH / "talairach.txt"], contrast_type="between_group")
    config, _ = load_config("demo")
    assert list(config.ale.models) == ["two_blocks_block1", "two_blocks_block2", "talairach"]
    assert config.ale.models["two_blocks_block1"].experiments == [
        "Alpha_2010_pain_rest", "Alpha_2010_heat_warm_patients_only", "Beta_2012_pain_rest"]
    assert all(m.contrast_types == ["between_group"] and m.n_iters == 1000 for m in config.ale.models.values())
    assert (config.ale.voxel_thresh, config.ale.cluster_alpha, config.ale.seed) == (0.001, 0.05, 0)
    assert config.role == "other" and config.name == "demo"
    assert config.title.startswith("PLACEHOLDER") and config.question.startswith("PLACEHOLDER")
    assert "2 GingerALE/Sleuth file(s)" in config.overview and "6 experiments, 12 foci" in config.overview
    ext, _, _ = extraction.extract("demo")
    gamma = ext.foci[ext.foci["study_id"] == "Gamma_2015"].iloc[0]
    assert gamma["space_reported"] == "TAL" and "tal2icbm_other" in gamma["transform"]


def test_single_file_model_takes_every_experiment(raw):
    new_dataset("one", [SLEUTH / "talairach.txt"])
    config, _ = load_config("one")
    assert list(config.ale.models) == ["talairach"] and config.ale.models["talairach"].experiments is None


@pytest.mark.skipif(not ENGE.is_file(), reason="published Enge 2021 Sleuth file not on this machine")
def test_published_sleuth_file(raw):
    from painmeta.scaffold import create_dataset

    _, notes = create_dataset("enge", [ENGE])
    t = _tables(raw / "enge")
    # 687 foci in the file; one experiment lists (-42, 27, 0) twice: kept once, and said so.
    assert len(t["experiments"]) == 50 and len(t["foci"]) == 686
    assert t["experiments"]["n_ale"].astype(int).sum() == 1018
    assert notes == ["sleuth/sleuth_all.txt, experiment 'lee2011vis': line 466 repeats line 459 (-42 27 0) - "
                     "left out (a focus listed twice; it changes no ALE map)"]
    note = t["experiments"].set_index("experiment_id").loc["lee2011vis", "evidence_note"]
    assert "line 466 repeats line 459" in note
    assert "line 466 repeats line 459" in load_config("enge")[0].overview


def test_empty_scaffold_validates_and_lists_every_column(raw):
    new_dataset("empty")
    assert extraction.validate("empty") == []
    t = _tables(raw / "empty")
    from painmeta.schemas import SCHEMAS

    for name, df in t.items():
        assert len(df) == 0 and list(df.columns) == list(SCHEMAS[name].columns)
    text = (raw / "empty" / "dataset.yaml").read_text()
    assert "PLACEHOLDER" in text and "#    contrast_types" in text


def test_refuses_to_overwrite_and_bad_names(raw, capsys):
    new_dataset("demo")
    before = {p: p.read_bytes() for p in (raw / "demo").rglob("*") if p.is_file()}
    with pytest.raises(InputError, match="already exists"):
        new_dataset("demo", [SLEUTH / "talairach.txt"])
    assert before == {p: p.read_bytes() for p in (raw / "demo").rglob("*") if p.is_file()}
    assert main(["new-dataset", "../escape"]) == 2
    assert "not valid" in capsys.readouterr().err
    assert not (raw.parent / "escape").exists()
    with pytest.raises(InputError, match="share the name"):
        new_dataset("twice", [SLEUTH / "talairach.txt", SLEUTH / "talairach.txt"])
    assert not (raw / "twice").exists()


def test_cli_new_dataset(raw, capsys):
    assert main(["new-dataset", "--dataset", "cli1", "--from-sleuth", str(SLEUTH / "talairach.txt"),
                 "--contrast-type", "correlation"]) == 0
    out = capsys.readouterr().out
    assert "created" in out and "sleuth/talairach.txt" in out
    assert "--contrast-type correlation" in (raw / "cli1" / "dataset.yaml").read_text()
    assert main(["validate", "--dataset", "cli1"]) == 0


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.notebook
def test_stages_00_and_01_run_on_a_new_dataset(raw):
    from painmeta.notebooks import run_stage

    new_dataset("fresh", [SLEUTH / "two_blocks.txt"])
    for stage in ("00_extraction", "01_ale"):
        result = run_stage(stage, "fresh", parameters={"quick": True})
        assert Path(result["html"]).is_file()
        html = Path(result["html"]).read_text(encoding="utf-8")
        assert "Traceback" not in html
