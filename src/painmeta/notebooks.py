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

from painmeta.errors import InputError, StageError
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
    # The notebook's default parameters (its tagged "parameters" cell, e.g. dataset = "cipn") are overridden by
    # Papermill's "injected-parameters" cell: the page shows only the values this run used, so a page never
    # names another dataset.
    nb.cells = [c for c in nb.cells if "parameters" not in c.get("metadata", {}).get("tags", [])]
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


def notebook_parameters(stage: str, root: Path | None = None) -> dict[str, object]:
    """The parameters a stage notebook declares, with their defaults.

    Read from the cell tagged ``parameters`` with Papermill's own inspector;
    defaults that are Python literals are evaluated (others are kept as text).

    Parameters
    ----------
    stage : str
        Notebook stem.
    root : pathlib.Path, optional

    Returns
    -------
    dict
        Name -> default value, in the cell's order.
    """
    import ast

    from papermill.translators import PythonTranslator

    nb = load_stage_notebook(stage_source(stage, root))
    cell = next((c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        return {}
    out: dict[str, object] = {}
    for p in PythonTranslator.inspect(cell):
        try:
            out[p.name] = ast.literal_eval(p.default)
        except (ValueError, SyntaxError):
            out[p.name] = p.default
    return out


def check_parameters(stage: str, parameters: object, declared: dict[str, object]) -> dict:
    """Validate Papermill parameters for a stage before anything runs.

    Parameters
    ----------
    stage : str
    parameters : object
        What the caller passed (must be a mapping).
    declared : dict
        :func:`notebook_parameters` of the stage.

    Returns
    -------
    dict
        The parameters.

    Raises
    ------
    InputError
        Not a mapping; ``dataset`` among them (the dataset is ``--dataset``,
        so that a page captioned with one dataset never holds another's);
        a name the notebook does not declare; a value of another type than
        the notebook's default.
    """
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise InputError(f"--params must be a JSON object such as '{{\"quick\": true}}', got "
                         f"{type(parameters).__name__}")
    if "dataset" in parameters:
        raise InputError("--params must not set 'dataset': give the dataset with --dataset NAME (make: DATASET=NAME)")
    unknown = [k for k in parameters if k not in declared]
    if unknown:
        allowed = ", ".join(k for k in declared if k != "dataset") or "none"
        raise InputError(f"--params: stage {stage} has no parameter {', '.join(map(repr, unknown))} "
                         f"(its parameters: {allowed})")
    for key, value in parameters.items():
        default = declared[key]
        if isinstance(default, bool) or isinstance(value, bool):
            ok = isinstance(value, bool) and isinstance(default, bool)
        elif isinstance(default, (int, float)):
            ok = isinstance(value, (int, float))
        elif isinstance(default, (str, dict, list)):
            ok = isinstance(value, type(default))
        else:
            ok = True
        if not ok:
            raise InputError(f"--params: parameter {key!r} of stage {stage} must be a {type(default).__name__} "
                             f"like its default {default!r}, got {value!r}")
    return dict(parameters)


def params_record_path(paths, stage: str) -> Path:
    """``outputs/<dataset>/notebooks/<stage>.params.json``."""
    return paths.outputs / "notebooks" / f"{stage}.params.json"


def run_stage(stage: str, dataset: str = "cipn", parameters: dict | None = None,
              render: bool = True, kernel: str | None = KERNEL_NAME) -> dict[str, Path | float]:
    """Execute ``notebooks/<stage>.py`` for a dataset and render it.

    Everything a user can get wrong is checked before Papermill starts: the
    dataset name, the parameter names and types, and ``config_overrides``
    (validated with :func:`painmeta.config.load_config`, so a bad override
    fails with the project's message). After a successful run the parameters
    actually used are written to ``outputs/<dataset>/notebooks/<stage>.params.json``::

        {"stage", "dataset", "parameters" (Papermill parameters without dataset,
         notebook defaults filled in), "passed" (what the caller passed),
         "config_overrides", "overridden" (true when any parameter differs
         from the notebook's default), "effective_config" (the validated
         dataset config after overrides)}

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
        ``notebook`` and ``html`` paths, ``params`` (the record's path) and
        ``seconds`` of execution.

    Raises
    ------
    InputError
        Bad dataset, stage, parameters or overrides; or the notebook raised
        the project's InputError (its message is passed on: file, line, fix).
    StageError
        The notebook failed otherwise; the message names the stage, the
        exception and the executed notebook that holds the traceback.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from painmeta.config import load_config

    root = project_root()
    paths = dataset_paths(dataset, root=root)
    stages = list_stages(root)
    if stage not in stages:  # also keeps a stage name from being a path
        raise InputError(f"no stage {stage!r}: the stages are {', '.join(stages)} (notebooks/NN_name.py)")
    source = stage_source(stage, root)
    declared = notebook_parameters(stage, root)
    passed = check_parameters(stage, parameters, declared)
    overrides = passed.get("config_overrides") or {}
    config, _ = load_config(dataset, overrides or None, root=root)
    out_nb = paths.outputs / "notebooks" / f"{stage}.ipynb"
    out_nb.parent.mkdir(parents=True, exist_ok=True)
    record = params_record_path(paths, stage)
    record.unlink(missing_ok=True)  # a failed run must not leave the previous run's record
    params = {"dataset": dataset, **passed}
    start = time.perf_counter()
    try:
        with papermill_kernel() as kernel_options:
            pm.execute_notebook(
                load_stage_notebook(source), str(out_nb), parameters=params, kernel_name=kernel,
                cwd=str(root), progress_bar=False, log_output=False, **kernel_options,
            )
    except PapermillExecutionError as exc:
        evalue = str(exc.evalue or "").strip()
        if exc.ename == "InputError":
            raise InputError(f"stage {stage} stopped on bad input:\n{evalue}") from None
        first = evalue.splitlines()[0][:300] if evalue else ""
        raise StageError(f"stage {stage} failed on dataset {dataset}: {exc.ename}: {first}\n"
                         f"  the executed notebook, with the traceback, is {out_nb}") from None
    seconds = time.perf_counter() - start
    effective = {k: v for k, v in declared.items() if k != "dataset"}
    effective.update(passed)
    record.write_text(json.dumps({
        "stage": stage,
        "dataset": dataset,
        "parameters": effective,
        "passed": passed,
        "config_overrides": overrides,
        "overridden": any(declared.get(k) != v for k, v in passed.items()),
        "effective_config": config.model_dump(mode="json"),
    }, indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")
    result: dict[str, Path | float] = {"notebook": out_nb, "seconds": seconds, "params": record}
    timing = paths.outputs / "notebooks" / "timings.json"
    times = json.loads(timing.read_text()) if timing.is_file() else {}
    times[stage] = round(seconds, 2)
    timing.write_text(json.dumps(times, indent=1, sort_keys=True))
    if render:
        result["html"] = render_html(out_nb, paths.outputs / "report" / f"{stage}.html",
                                     caption=f"painmeta · dataset {dataset} · stage {stage}")
    return result


def _cmd_run_stage(args: argparse.Namespace) -> int:
    params: object = {}
    if args.params.strip():
        try:
            params = json.loads(args.params)
        except json.JSONDecodeError as exc:
            raise InputError(f"--params is not valid JSON ({exc.msg} at character {exc.pos}); write a JSON object "
                             "such as '{\"quick\": true, \"config_overrides\": {\"ale\": {\"seed\": 7}}}'") from None
    result = run_stage(args.stage, args.dataset, params, kernel=args.kernel)  # type: ignore[arg-type]
    print(f"executed {result['notebook']} in {result['seconds']:.1f} s")
    if "html" in result:
        print(f"rendered {result['html']}")
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add the ``run-stage`` command."""
    from painmeta.cli import add_dataset_argument

    p = sub.add_parser("run-stage", help="execute a stage notebook with Papermill and render HTML",
                       description="Execute notebooks/STAGE.py for a dataset with Papermill, render it to "
                                   "outputs/<dataset>/report/STAGE.html and record the parameters used in "
                                   "outputs/<dataset>/notebooks/STAGE.params.json.")
    p.add_argument("stage", help="notebook stem, e.g. 00_extraction")
    add_dataset_argument(p)
    p.add_argument("--params", default="",
                   help="JSON object of Papermill parameters the notebook declares, e.g. "
                        "'{\"quick\": true, \"config_overrides\": {\"ale\": {\"seed\": 7}}}' (not 'dataset')")
    p.add_argument("--kernel", default=KERNEL_NAME, help="Jupyter kernel name (default: painmeta)")
    p.set_defaults(func=_cmd_run_stage)
