"""Execute stage notebooks with Papermill and render them to self-contained HTML.

Stage notebooks are Jupytext ``py:percent`` files, ``notebooks/NN_name.py``:
that text file is what people edit (in JupyterLab, where Jupytext opens it as
a notebook and pairs it with an ``.ipynb`` that git ignores, or in any
editor). :func:`load_stage_notebook` turns it into a notebook object for
Papermill. The Makefile calls ``python -m painmeta run-stage NN_name
--dataset D``; tests call :func:`run_stage` directly. The executed notebook
goes to ``outputs/<dataset>/notebooks/`` and its HTML to
``outputs/<dataset>/report/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from painmeta.errors import InputError
from painmeta.paths import dataset_paths, project_root

KERNEL_NAME = "painmeta"
TEMPLATE_DIR = Path(__file__).parent / "templates"

#: Environment variable that turns progress bars off ("0") in stage kernels run by Papermill.
PROGRESS_ENV = "PAINMETA_PROGRESS"


def progress_enabled() -> bool:
    """Whether a stage should draw progress bars.

    True in a terminal and in JupyterLab; False in a kernel started by
    :func:`run_stage` (Papermill), because every bar update would become a line
    of the rendered report page. Notebooks pass ``progress=progress_enabled()``.
    """
    return os.environ.get(PROGRESS_ENV, "1").strip() != "0"


@contextmanager
def papermill_kernel() -> Iterator[dict]:
    """Settings for one Papermill run of a stage: no progress bars, kernel over local IPC.

    Yields the extra keyword arguments for :func:`papermill.execute_notebook`.
    The kernel inherits ``PAINMETA_PROGRESS=0`` (see :func:`progress_enabled`)
    and ``TQDM_DISABLE=1``, which tqdm (>= 4.66) reads as the default of its
    ``disable`` argument: bars drawn inside libraries (NiMARE's Monte Carlo
    loop) are off too, in rendered pages only.
    It talks to Papermill over Unix-domain sockets in a private temporary
    folder instead of TCP on localhost: nothing else on the machine can connect
    to it, and ipykernel no longer logs "Kernel is running over TCP without
    encryption" once per stage.
    """
    from traitlets.config import Config

    folder = Path(tempfile.mkdtemp(prefix="painmeta-kernel-"))
    quiet = {PROGRESS_ENV: "0", "TQDM_DISABLE": "1"}
    previous = {k: os.environ.get(k) for k in quiet}
    os.environ.update(quiet)
    try:
        yield {"config": Config({"KernelManager": {"transport": "ipc", "ip": str(folder / "k")}})}
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(folder, ignore_errors=True)


def setup_notebook(max_colwidth: int | None = None) -> None:
    """Quiet, readable defaults for stage notebooks (called in each notebook's first code cell).

    Silences library chatter that would flood the rendered report (NiMARE's
    deprecation warnings, INFO logging from fontTools/numexpr), sets pandas display
    options, and asks the inline backend for crisp PNG figures.

    Parameters
    ----------
    max_colwidth : int or None
        pandas ``display.max_colwidth`` for tables shown without
        :mod:`painmeta.display` (default None: text is never cut short).
    """
    import logging
    import warnings

    import pandas as pd

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # tqdm.auto (used by NiMARE) warns once per kernel when ipywidgets is absent; bars fall back to text.
    warnings.filterwarnings("ignore", message="IProgress not found")
    for name in ("fontTools", "numexpr", "nimare", "nilearn", "matplotlib"):
        logging.getLogger(name).setLevel(logging.WARNING)
    pd.set_option("display.max_colwidth", max_colwidth)
    pd.set_option("display.max_rows", 400)
    pd.set_option("display.width", 200)
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")
        import matplotlib

        matplotlib.rcParams["figure.dpi"] = 110
    except ImportError:  # outside IPython
        pass


def render_html(executed: Path, html: Path, caption: str = "") -> Path:
    """Render an executed notebook to self-contained HTML (code hidden by default).

    Parameters
    ----------
    executed : pathlib.Path
        Executed ``.ipynb``.
    html : pathlib.Path
        Output file.
    caption : str
        Text shown in the page's toolbar.

    Returns
    -------
    pathlib.Path
        ``html``.
    """
    import nbformat
    from nbconvert import HTMLExporter

    from painmeta.display import TABLE_CSS

    nb = nbformat.read(executed, as_version=4)
    exporter = HTMLExporter(template_name="painmeta_html", extra_template_basedirs=[str(TEMPLATE_DIR)])
    exporter.exclude_input_prompt = False
    # The template escapes the caption; TABLE_CSS is ours (no data in it).
    body, _ = exporter.from_notebook_node(nb, resources={"painmeta_caption": caption, "painmeta_css": TABLE_CSS})
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(body, encoding="utf-8")
    return html


def stage_source(stage: str, root: Path | None = None) -> Path:
    """Path of a stage's notebook source, ``notebooks/<stage>.py``."""
    return (root or project_root()) / "notebooks" / f"{stage}.py"


def list_stages(root: Path | None = None) -> list[str]:
    """Stage names (``NN_name``) present in ``notebooks/``, in order."""
    folder = (root or project_root()) / "notebooks"
    return sorted(p.stem for p in folder.glob("[0-9][0-9]_*.py"))


def load_stage_notebook(source: Path):
    """Read a Jupytext ``py:percent`` stage source as a notebook ready for Papermill.

    Cells get stable ids (``cell-NN``) so that executed notebooks, and the
    pages rendered from them, do not change between runs of the same input.

    Parameters
    ----------
    source : pathlib.Path
        ``notebooks/NN_name.py``.

    Returns
    -------
    nbformat.NotebookNode
    """
    import jupytext

    nb = jupytext.read(source, fmt="py:percent")
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    nb.metadata.setdefault("kernelspec", {"name": KERNEL_NAME, "display_name": "Python (painmeta)",
                                          "language": "python"})
    nb.metadata.setdefault("language_info", {"name": "python"})
    nb.metadata.pop("jupytext", None)
    return nb


def run_stage(stage: str, dataset: str = "cipn", parameters: dict | None = None,
              render: bool = True, kernel: str | None = KERNEL_NAME) -> dict[str, Path | float]:
    """Execute ``notebooks/<stage>.py`` for a dataset and render it.

    Parameters
    ----------
    stage : str
        Notebook stem, e.g. ``"00_extraction"``.
    dataset : str
        Dataset name.
    parameters : dict, optional
        Extra Papermill parameters (override the notebook's ``parameters`` cell).
    render : bool
        Also write the HTML page.
    kernel : str or None
        Jupyter kernel name (the Makefile registers ``painmeta`` in the venv);
        None uses the notebook's own kernelspec.

    Returns
    -------
    dict
        ``notebook`` and ``html`` paths and ``seconds`` of execution.
    """
    import papermill as pm

    root = project_root()
    source = stage_source(stage, root)
    if not source.is_file():
        raise InputError(f"{source}: no such stage notebook (stages: {', '.join(list_stages(root))})")
    paths = dataset_paths(dataset, root=root)
    out_nb = paths.outputs / "notebooks" / f"{stage}.ipynb"
    out_nb.parent.mkdir(parents=True, exist_ok=True)
    params = {"dataset": dataset, **(parameters or {})}
    start = time.perf_counter()
    with papermill_kernel() as kernel_options:
        pm.execute_notebook(
            load_stage_notebook(source), str(out_nb), parameters=params, kernel_name=kernel,
            cwd=str(root), progress_bar=False, log_output=False, **kernel_options,
        )
    seconds = time.perf_counter() - start
    result: dict[str, Path | float] = {"notebook": out_nb, "seconds": seconds}
    timing = paths.outputs / "notebooks" / "timings.json"
    times = json.loads(timing.read_text()) if timing.is_file() else {}
    times[stage] = round(seconds, 2)
    timing.write_text(json.dumps(times, indent=1, sort_keys=True))
    if render:
        result["html"] = render_html(out_nb, paths.outputs / "report" / f"{stage}.html",
                                     caption=f"painmeta · dataset {dataset} · stage {stage}")
    return result


def _cmd_run_stage(args: argparse.Namespace) -> int:
    params = json.loads(args.params) if args.params else {}
    result = run_stage(args.stage, args.dataset, params, kernel=args.kernel)
    print(f"executed {result['notebook']} in {result['seconds']:.1f} s")
    if "html" in result:
        print(f"rendered {result['html']}")
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add the ``run-stage`` command."""
    p = sub.add_parser("run-stage", help="execute a stage notebook with Papermill and render HTML")
    p.add_argument("stage", help="notebook stem, e.g. 00_extraction")
    p.add_argument("--dataset", default="cipn")
    p.add_argument("--params", default="", help="JSON object of extra Papermill parameters")
    p.add_argument("--kernel", default=KERNEL_NAME, help="Jupyter kernel name (default: painmeta)")
    p.set_defaults(func=_cmd_run_stage)
