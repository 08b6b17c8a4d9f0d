"""Where things live: one place that knows the project layout.

Every stage reads ``data/raw/<dataset>/`` and writes ``data/processed/<dataset>/``
and ``outputs/<dataset>/<stage>/``. The project root is found from the
``PAINMETA_ROOT`` environment variable (set by the Makefile and by Papermill
runs) or by walking up from the working directory to the folder holding
``pyproject.toml``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def project_root(start: Path | str | None = None) -> Path:
    """Return the project root directory.

    Parameters
    ----------
    start : path-like, optional
        Directory to start the upward search from (default: the working
        directory). Ignored when ``PAINMETA_ROOT`` is set.

    Returns
    -------
    pathlib.Path
        Absolute path of the folder holding ``pyproject.toml`` and ``data/``.
    """
    env = os.environ.get("PAINMETA_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "pyproject.toml").is_file() and (candidate / "data").is_dir():
            return candidate
    # Installed without a checkout: fall back to the source tree of this file.
    return Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DatasetPaths:
    """Folders of one dataset.

    Attributes
    ----------
    name : str
        Dataset name (folder under ``data/raw``).
    raw, processed, outputs : pathlib.Path
        Input tables, derived tables, and stage outputs.
    """

    name: str
    raw: Path
    processed: Path
    outputs: Path

    def stage(self, stage: str, create: bool = True) -> Path:
        """Return (and by default create) ``outputs/<dataset>/<stage>/``."""
        path = self.outputs / stage
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return path


def dataset_paths(dataset: str | Path, root: Path | str | None = None) -> DatasetPaths:
    """Resolve the folders of a dataset given its name or its raw folder.

    Parameters
    ----------
    dataset : str or path-like
        A dataset name (``"cipn"``) or a path to ``data/raw/<dataset>``.
    root : path-like, optional
        Project root; found automatically when omitted.

    Returns
    -------
    DatasetPaths
    """
    root = Path(root).resolve() if root else project_root()
    candidate = Path(dataset)
    if candidate.is_dir() and (candidate / "dataset.yaml").is_file():
        raw = candidate.resolve()
        name = raw.name
        # A raw folder outside the project (a user's own tables) keeps its
        # outputs beside the project's own, under its folder name.
    else:
        name = str(dataset)
        raw = root / "data" / "raw" / name
    # PAINMETA_WORK redirects everything a run writes (tests use a temporary
    # folder so that they never touch the user's data/processed or outputs).
    work = Path(os.environ["PAINMETA_WORK"]).resolve() if os.environ.get("PAINMETA_WORK") else root
    return DatasetPaths(
        name=name,
        raw=raw,
        processed=work / "data" / "processed" / name,
        outputs=work / "outputs" / name,
    )


def write_tables(folder: Path, tables: dict) -> dict[str, Path]:
    """Write DataFrames as CSV (no index, '\\n' line ends) into ``folder``.

    Parameters
    ----------
    folder : pathlib.Path
        Created if needed.
    tables : dict of str to pandas.DataFrame
        File name -> table.

    Returns
    -------
    dict of str to pathlib.Path
        File name -> path written.
    """
    import csv

    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, df in tables.items():
        path = folder / name
        df.to_csv(path, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        written[name] = path
    return written
