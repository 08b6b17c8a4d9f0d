"""Report index: links resolve, build info present; headless browser check catches broken pages."""

from __future__ import annotations

import re
import shutil

import pytest

from painmeta import browser_check
from painmeta.paths import dataset_paths
from painmeta.report import build_index, input_checksums, sha256


def test_index_links_and_build_info(tmp_path):
    paths = dataset_paths("cipn")
    report = paths.outputs / "report"
    report.mkdir(parents=True)
    for stage in ("00_extraction", "01_ale"):
        (report / f"{stage}.html").write_text("<html><body>stage</body></html>")
    index = build_index("cipn")
    text = index.read_text()
    hrefs = re.findall(r'href="([^"#]+)"', text)
    assert {"00_extraction.html", "01_ale.html"} <= set(hrefs)
    assert all((index.parent / h).is_file() for h in hrefs)
    assert not re.search(r"""(src|href)=["']https?://""", text)
    sums = input_checksums(paths)
    assert "data/raw/cipn/foci.csv" in set(sums["file"])
    row = sums.set_index("file").loc["data/raw/cipn/foci.csv"]
    assert row["sha256"] == sha256(paths.raw / "foci.csv") and row["sha256"] in text
    assert "nimare" in text and "0.22.1" in text


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium not installed")
def test_browser_check_catches_broken_pages(tmp_path):
    good = tmp_path / "good.html"
    good.write_text('<html><body><a href="bad.html">x</a>'
                    '<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk'
                    '+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==" alt="dot"></body></html>')
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img src="missing.png" alt="missing"><a href="nowhere.html">dead</a>'
                   '<script>console.error("boom")</script></body></html>')
    reports = {r.page: r for r in browser_check.check_pages([good, bad], tmp_path / "shots")}
    assert reports["good.html"].ok, reports["good.html"]
    b = reports["bad.html"]
    assert not b.ok
    assert b.broken_images and b.dead_links == ["nowhere.html"]
    assert any("boom" in e for e in b.console_errors)
    assert (tmp_path / "shots" / "bad.png").stat().st_size > 0


# --------------------------------------------------------------------------- the index tells the truth


def _tmp_project(tmp_path, monkeypatch, name: str, config: str, files: dict[str, str] | None = None):
    """A project root holding one dataset (notebooks and lookups shared with the repository)."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    root = tmp_path / "project"
    raw = root / "data" / "raw" / name
    raw.mkdir(parents=True)
    (root / "notebooks").symlink_to(repo / "notebooks")
    (root / "data" / "lookups").symlink_to(repo / "data" / "lookups")
    (root / "pyproject.toml").symlink_to(repo / "pyproject.toml")
    (raw / "dataset.yaml").write_text(config, encoding="utf-8")
    for fname, text in (files or {}).items():
        (raw / fname).write_text(text, encoding="utf-8")
    monkeypatch.setenv("PAINMETA_ROOT", str(root))
    return dataset_paths(name)


_MINI = """name: {name}
title: "{title}"
description: "One paragraph."
question: "Does *X* converge?"
overview: "Data from **somewhere**."
missing: "- nothing <b>bold</b>"
role: {role}
networks:
  - {{key: dmn, label: "Default mode network"}}
  - {{key: prefrontal, label: "Prefrontal"}}
ale:
  models:
    pain: {{contrast_types: [within_group], n_iters: 1000}}
"""


def _write_outputs(paths, n_clusters: int | None, skipped: bool = False):
    import json

    ale = paths.outputs / "ale"
    (ale / "pain").mkdir(parents=True)
    status = "skipped" if skipped else "run"
    reason = "1 usable experiment of 3 candidates; ALE needs at least 2" if skipped else ""
    (ale / "models.csv").write_text(
        "model,description,status,reason,n_experiments,n_iters\n"
        f"pain,Pain,{status},{reason},21,1000\n")
    if not skipped:
        (ale / "pain" / "summary.json").write_text(json.dumps(
            {"model": "pain", "n_experiments": 21, "n_clusters_significant": n_clusters, "n_iters": 1000}))
    paths.processed.mkdir(parents=True)
    (paths.processed / "roi_counts.csv").write_text(
        "level,subgroup,network,label,order,events,n,proportion,entries\n"
        "experiment,overall,dmn,Default mode network,0,3,8,0.375,\n"
        "experiment,overall,prefrontal,Prefrontal,1,3,8,0.375,\n"
        "study,overall,dmn,Default mode network,0,1,4,0.25,\n")
    (paths.processed / "proportions_summary.csv").write_text(
        "level,subgroup,k,events,total,pooled,lower,upper\n"
        "experiment,overall,2,6,16,0.37499999999999994,0.18400000000000005,0.6000000000000001\n"
        "experiment,patients > controls,2,4,16,0.25,0.1,0.5\n")
    (paths.processed / "audit.csv").write_text(
        "id,what,status\na,x,match\nb,y,consistent by construction\nc,z,mismatch\n"
        "d,w,not reproducible (inputs not public)\ne,v,match\n")


def test_index_prose_comes_from_the_dataset_config_and_is_escaped(tmp_path, monkeypatch):
    paths = _tmp_project(tmp_path, monkeypatch, "mine",
                         _MINI.format(name="mine", title="My <i>own</i> data", role="other"),
                         {"NOTES.md": "# Notes\n\nSee <script>window.x=1</script> and *this*."})
    text = build_index("mine").read_text()
    assert "My &lt;i&gt;own&lt;/i&gt; data" in text and "<i>own</i>" not in text
    assert "Does <em>X</em> converge?" in text and "Data from <strong>somewhere</strong>" in text
    assert "nothing &lt;b&gt;bold&lt;/b&gt;" in text
    assert "&lt;script&gt;window.x=1&lt;/script&gt;" in text and "<script" not in text
    # Nothing from another dataset: no CIPN question, no review, no PRISMA or ROBINS-I section.
    for other in ("CIPN", "chemotherapy", "cipn", "ROBINS-I traffic-light", "PRISMA 2020 flow", "review"):
        assert other not in text, other
    assert "No stage has produced results yet" in text


def test_key_findings_are_computed_from_stage_outputs(tmp_path, monkeypatch):
    paths = _tmp_project(tmp_path, monkeypatch, "ctrl", _MINI.format(name="ctrl", title="Control", role="positive_control"))
    _write_outputs(paths, n_clusters=4)
    text = build_index("ctrl").read_text()
    assert "Positive control: convergence was found, as expected — significant clusters in pain (4 clusters)." in text
    assert "ALE: pain: 4 clusters survived cluster-level FWE correction (21 experiments, 1000 Monte Carlo iterations)." \
        in text
    assert ("ROI synthesis: most often implicated — Default mode network, Prefrontal (3 of 8 contrasts each).") in text
    assert "pooled share of networks involved — experiment level 0.37 (95% CI 0.18–0.6, 6/16 cells)." in text
    line = re.search(r"<li>(Audit: [^<]*)</li>", text).group(1)
    assert line.startswith("Audit: 2 of 5 numbers the source reports reproduced (recomputed and matching); ")
    assert {"1 mismatch", "1 not reproducible (inputs not public)", "1 consistent by construction"} == set(
        line.split("; ", 1)[1].rstrip(".").split(", "))
    assert "0.37499999" not in text


@pytest.mark.parametrize("n_clusters, skipped, expected", [
    (0, False, "Positive control: convergence was NOT found — no cluster survived in any model that ran (pain)"),
    (None, True, "Positive control: no ALE model ran, so convergence could not be tested"),
])
def test_positive_control_says_when_convergence_was_not_found(tmp_path, monkeypatch, n_clusters, skipped, expected):
    paths = _tmp_project(tmp_path, monkeypatch, "ctrl", _MINI.format(name="ctrl", title="Control", role="positive_control"))
    _write_outputs(paths, n_clusters=n_clusters, skipped=skipped)
    text = build_index("ctrl").read_text()
    assert expected in text
    if skipped:
        assert "pain: not run (1 usable experiment of 3 candidates)" in text


def test_positive_control_without_ale_outputs_says_so(tmp_path, monkeypatch):
    _tmp_project(tmp_path, monkeypatch, "ctrl", _MINI.format(name="ctrl", title="Control", role="positive_control"))
    assert "the ALE stage has not produced results yet" in build_index("ctrl").read_text()


def test_overridden_build_is_marked_and_parameters_shown(tmp_path, monkeypatch):
    import json

    from painmeta.config import load_config

    paths = _tmp_project(tmp_path, monkeypatch, "mine", _MINI.format(name="mine", title="Mine", role="other"))
    config, _ = load_config("mine")
    nb = paths.outputs / "notebooks"
    nb.mkdir(parents=True)
    effective = config.model_dump(mode="json")
    effective["ale"]["seed"] = 7
    (nb / "01_ale.params.json").write_text(json.dumps({
        "stage": "01_ale", "dataset": "mine", "parameters": {"quick": True}, "config_overrides": {"ale": {"seed": 7}},
        "overridden": True, "effective_config": effective}))
    (nb / "00_extraction.params.json").write_text(json.dumps({
        "stage": "00_extraction", "dataset": "mine", "parameters": {}, "config_overrides": {},
        "overridden": False, "effective_config": config.model_dump(mode="json")}))
    text = build_index("mine").read_text()
    assert "Overridden build." in text and "Quick build." in text
    assert "ale.seed: 0 → 7" in text
    assert "{&#34;ale&#34;: {&#34;seed&#34;: 7}}" in text  # the overrides, escaped
    (nb / "01_ale.params.json").unlink()  # a build without overrides carries no badge
    assert "Overridden build." not in build_index("mine").read_text()


def test_stage_titles_are_readable(root):
    from painmeta.report import stage_title

    assert stage_title("01_ale", root).startswith("Stage 1 · Activation likelihood estimation")
    assert stage_title("07_new_thing", root) == "Stage 7 · New thing"


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium not installed")
def test_browser_check_captures_whole_page_and_flags_injected_markup(tmp_path):
    from painmeta.browser_check import TILE_PX

    tall = tmp_path / "tall.html"
    tall.write_text('<html><body style="margin:0"><div style="height:18500px;background:linear-gradient(red,blue)">'
                    "</div><p>end</p></body></html>")
    hostile = tmp_path / "hostile.html"
    hostile.write_text('<html><body><p>ok</p><b onclick="x()">a</b><a href="javascript:alert(1)">b</a>'
                       "<script>window.__pwned=1</script><iframe src=\"about:blank\"></iframe>"
                       '<iframe srcdoc="&lt;p onmouseover=&quot;y()&quot;&gt;v&lt;/p&gt;"></iframe></body></html>')
    reports = {r.page: r for r in browser_check.check_pages([tall, hostile], tmp_path / "shots")}
    t = reports["tall.html"]
    assert t.ok and t.height > 18500
    assert len(t.screenshots) == -(-t.height // TILE_PX) >= 5  # every part of the page, not the first 16,000 px
    from PIL import Image

    heights = [Image.open(p).size[1] for p in t.screenshots]
    assert sum(heights) == t.height and all(Image.open(p).size[0] == 1280 for p in t.screenshots)
    h = reports["hostile.html"]
    assert not h.ok
    found = "\n".join(h.injected)
    for what in ("event handler onclick", "script URL", "script not written by the page template",
                 "iframe that is not a srcdoc viewer", "viewer: event handler onmouseover"):
        assert what in found, what


def test_template_scripts_are_the_only_allowed_ones():
    allowed = browser_check.allowed_scripts()
    assert len(allowed) == 1 and "pm-hide-code" in next(iter(allowed))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium not installed")
def test_stage_template_and_check_accept_nilearn_view_img(tmp_path):
    # The ALE page embeds nilearn's interactive viewer: an iframe srcdoc with its JavaScript inline, no CDN.
    import nbformat
    import numpy as np
    from nilearn import datasets, image, plotting

    from painmeta.notebooks import render_html

    template = datasets.load_mni152_template(resolution=2)  # ships inside the nilearn wheel
    data = np.zeros(template.shape)
    data[40:50, 50:60, 40:50] = 3.0
    view = plotting.view_img(image.new_img_like(template, data), threshold=1.0, title="viewer")
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("view")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": view._repr_html_()})]
    nb.cells = [cell]
    nbformat.write(nb, tmp_path / "v.ipynb")
    page = render_html(tmp_path / "v.ipynb", tmp_path / "v.html", caption="viewer")
    (tmp_path / "index.html").write_text("<html><body>index</body></html>")
    text = page.read_text()
    assert "srcdoc=" in text and not re.search(r"""<script[^>]+src=["']https?://""", text)
    (rep,) = browser_check.check_pages([page], tmp_path / "shots")
    assert rep.ok, rep


@pytest.mark.parametrize("role, source", [("review", "the review"), ("published", "the paper"),
                                          ("database", "the source"), ("positive_control", "the source"),
                                          ("other", "the source")])
def test_index_names_who_reported_the_audited_numbers_by_role(tmp_path, monkeypatch, role, source):
    paths = _tmp_project(tmp_path, monkeypatch, "mine", _MINI.format(name="mine", title="Mine", role=role))
    _write_outputs(paths, n_clusters=1)
    (paths.processed / "audit_inconsistencies.csv").write_text("issue,evidence,consequence\na,b,c\n")
    text = build_index("mine").read_text()
    assert f"<li>Audit: 2 of 5 numbers {source} reports reproduced (recomputed and matching); " in text
    assert f"<h2>Internal inconsistencies of the numbers {source} reports</h2>" in text
    if role != "review":
        assert "review" not in text
