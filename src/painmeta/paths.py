"""Where things live: one place that knows the project layout.

Every stage reads ``data/raw/<dataset>/`` and writes ``data/processed/<dataset>/``
and ``outputs/<dataset>/<stage>/``. The project root is found from the
``PAINMETA_ROOT`` environment variable (set by the Makefile and by Papermill
runs) or by walking up from the working directory to the folder holding
``pyproject.toml``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from painmeta.errors import InputError


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


#: What a dataset name may be: a name, never a path (it becomes folder names under
#: data/raw, data/processed and outputs, and make targets).
DATASET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_DATASET_NAME = re.compile(DATASET_NAME_PATTERN)


def check_dataset_name(name: object) -> str:
    """Return ``name`` if it is a valid dataset name, else raise :class:`InputError`.

    A dataset name starts with a letter or digit and holds letters, digits,
    ``_`` and ``-`` only, at most 64 characters: it is a folder name under
    ``data/raw/``, never a path.

    Parameters
    ----------
    name : object
        The candidate (a ``Path`` is refused too: pass the name).

    Returns
    -------
    str

    Raises
    ------
    InputError
    """
    text = name if isinstance(name, str) else None
    if text is None or not _DATASET_NAME.fullmatch(text):
        shown = repr(str(name))[:80]
        hint = ""
        if isinstance(name, (str, Path)) and ("/" in str(name) or "\\" in str(name)):
            hint = (f" It looks like a path: give the folder's name instead (e.g. --dataset "
                    f"{Path(str(name)).name or 'NAME'}); datasets live in data/raw/<name>/.")
        raise InputError(
            f"dataset name {shown} is not valid: a dataset name is 1-64 letters, digits, '_' or '-', "
            f"starting with a letter or digit.{hint}")
    return text


def raw_root(root: Path | str | None = None) -> Path:
    """Folder holding the raw dataset folders: ``$PAINMETA_RAW`` or ``<root>/data/raw``.

    ``PAINMETA_RAW`` lets tests (and anyone keeping inputs elsewhere) point the
    project at another folder of datasets without turning names into paths.
    """
    env = os.environ.get("PAINMETA_RAW")
    if env:
        return Path(env).resolve()
    return (Path(root).resolve() if root else project_root()) / "data" / "raw"


def dataset_paths(dataset: str, root: Path | str | None = None) -> DatasetPaths:
    """Resolve the folders of a dataset given its name.

    Parameters
    ----------
    dataset : str
        A dataset name (``"cipn"``): its raw folder is ``data/raw/<dataset>``
        (or ``$PAINMETA_RAW/<dataset>``). Paths are refused, so a name can
        never make a stage read or write outside the project's folders.
    root : path-like, optional
        Project root; found automatically when omitted.

    Returns
    -------
    DatasetPaths

    Raises
    ------
    InputError
        If ``dataset`` is not a valid name (see :func:`check_dataset_name`).
    """
    name = check_dataset_name(dataset)
    root = Path(root).resolve() if root else project_root()
    raw = raw_root(root) / name
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
