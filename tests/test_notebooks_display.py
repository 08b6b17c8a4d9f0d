"""Stage pages: no progress bars and no kernel chatter under Papermill; captions escaped; table CSS on the page."""

from __future__ import annotations

import os

import nbformat
import pytest

from painmeta.notebooks import PROGRESS_ENV, papermill_kernel, progress_enabled, render_html


def test_progress_enabled_outside_papermill(monkeypatch):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    assert progress_enabled()
    monkeypatch.setenv(PROGRESS_ENV, "0")
    assert not progress_enabled()


@pytest.mark.notebook
def test_papermill_kernel_has_no_progress_bars_and_no_tcp_warning(tmp_path, capfd, monkeypatch):
    import papermill as pm

    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import os\nfrom painmeta.notebooks import progress_enabled, setup_notebook\nsetup_notebook()\n"
        "from tqdm.auto import tqdm\n"
        "print(progress_enabled(), os.environ.get('TQDM_DISABLE'))\n"
        "for _ in tqdm(range(200)):\n    pass\n")]
    nb.metadata["kernelspec"] = {"name": "painmeta", "display_name": "Python (painmeta)", "language": "python"}
    with papermill_kernel() as options:
        out = pm.execute_notebook(nb, str(tmp_path / "out.ipynb"), kernel_name="painmeta", progress_bar=False,
                                  **options)
        folder = os.path.dirname(options["config"]["KernelManager"]["ip"])
    outputs = out.cells[0].outputs
    assert outputs[0]["text"] == "False 1\n"
    assert len(outputs) == 1, outputs  # the tqdm bar wrote nothing into the notebook
    assert "running over TCP" not in capfd.readouterr().err
    assert not os.path.exists(folder)  # the socket folder is removed
    assert progress_enabled() and "TQDM_DISABLE" not in os.environ  # the caller's environment is restored


def test_render_html_escapes_caption_and_carries_table_css(tmp_path):
    from painmeta.display import table_html

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    import pandas as pd

    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": table_html(pd.DataFrame({"a": [1]}))})]
    nb.cells = [cell]
    src = tmp_path / "nb.ipynb"
    nbformat.write(nb, src)
    html = render_html(src, tmp_path / "page.html", caption="dataset <script>x</script>").read_text()
    assert "dataset &lt;script&gt;x&lt;/script&gt;" in html and "<script>x</script>" not in html
    assert "table.pm-table" in html and 'class="pm-table"' in html
