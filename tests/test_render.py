"""Rendered pages show the parameters a run used, never the notebook's defaults (which name another dataset)."""

from __future__ import annotations

import nbformat

from painmeta.notebooks import render_html


def test_default_parameters_cell_is_not_rendered(tmp_path):
    nb = nbformat.v4.new_notebook()
    defaults = nbformat.v4.new_code_cell('dataset = "cipn"\nquick = False')
    defaults.metadata["tags"] = ["parameters"]
    injected = nbformat.v4.new_code_cell('# Parameters\ndataset = "mine"\n')
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Stage"), defaults, injected, nbformat.v4.new_code_cell("1 + 1")]
    executed = tmp_path / "nb.ipynb"
    nbformat.write(nb, executed)
    html = render_html(executed, tmp_path / "page.html").read_text(encoding="utf-8")
    assert "cipn" not in html
    assert "mine" in html and "Stage" in html
