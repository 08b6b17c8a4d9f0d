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
