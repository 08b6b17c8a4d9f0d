"""Tiny helper to write thin stage notebooks from Python cell lists.

Usage in a builder: ``write_notebook(path, [md("..."), params("dataset = 'cipn'"), code("...")])``.
Notebooks stay editable in JupyterLab; this only makes their first version reproducible.
"""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def md(text: str):
    return new_markdown_cell(text.strip())


def code(text: str):
    return new_code_cell(text.strip())


def params(text: str):
    cell = new_code_cell(text.strip())
    cell.metadata["tags"] = ["parameters"]
    return cell


def write_notebook(path: str, cells: list, title: str) -> None:
    # Stable cell ids keep rebuilt notebooks byte-identical (nbformat draws random ids).
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i:02d}"
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "painmeta", "display_name": "Python (painmeta)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["title"] = title
    nbformat.write(nb, path)
