"""Command line: ``python -m painmeta <command> ...``.

Each stage module that offers a command exposes ``register_cli(subparsers)``
which adds its sub-command and sets ``func`` on the parser. Conventions every
sub-command follows (helpers below):

* the dataset is ``--dataset NAME`` (a name under ``data/raw/``, never a path;
  :func:`add_dataset_argument`). Commands that used to take the name as a
  positional argument (``validate``, ``extract``, ``roi``, ``quality``,
  ``audit``) still accept it there, for old scripts;
* seeds are whole numbers 0 .. 2**32 - 1 (:func:`seed_value`); an output
  folder may not be an existing file (:func:`output_dir`);
* every sub-command and option has help text.

No traceback reaches a user: :class:`painmeta.errors.InputError` (bad input)
prints its message (file, line, column, fix) and exits 2; any other exception
prints one line naming its type and message and the path of a log file that
holds the traceback, and exits 1.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import os
import sys
import tempfile
import traceback
from pathlib import Path

from painmeta import __version__
from painmeta.errors import InputError, StageError

#: Modules that contribute sub-commands, in help order. Missing modules are
#: skipped so that a partial checkout still runs.
COMMAND_MODULES = (
    "painmeta.scaffold",
    "painmeta.extraction",
    "painmeta.notebooks",
    "painmeta.ale.cli",
    "painmeta.ale.cli_contrast",
    "painmeta.ale.cli_power",
    "painmeta.roi",
    "painmeta.proportions",
    "painmeta.quality",
    "painmeta.audit",
    "painmeta.report",
    "painmeta.browser_check",
)

DEFAULT_DATASET = "cipn"
_POSITIONAL = "_dataset_positional"
_DEFAULT_KEY = "_dataset_default"


# --------------------------------------------------------------------------- argument types


def dataset_name(text: str) -> str:
    """``argparse`` type: a dataset name (see :func:`painmeta.paths.check_dataset_name`)."""
    from painmeta.paths import check_dataset_name

    try:
        return check_dataset_name(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def safe_name(text: str) -> str:
    """``argparse`` type: a name that becomes part of file names (letters, digits, '_', '-')."""
    import re

    from painmeta.paths import DATASET_NAME_PATTERN

    if not re.fullmatch(DATASET_NAME_PATTERN, text):
        raise argparse.ArgumentTypeError(f"{text[:80]!r}: use 1-64 letters, digits, '_' or '-' (it becomes part "
                                         "of file names)")
    return text


def seed_value(text: str) -> int:
    """``argparse`` type: a random seed, a whole number 0 .. 2**32 - 1 (what numpy accepts)."""
    if not text.strip().isascii() or not text.strip().lstrip("+").isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a seed: write a whole number from 0 to {2**32 - 1}")
    value = int(text)
    if value > 2**32 - 1:
        raise argparse.ArgumentTypeError(f"{text!r} is too large for a seed (0 .. {2**32 - 1})")
    return value


def output_dir(text: str) -> str:
    """``argparse`` type: an output folder; refuses a path that is an existing file."""
    if not text:
        raise argparse.ArgumentTypeError("give a folder")
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is an existing file, not a folder; give a folder to write into")
    return text


def add_dataset_argument(parser: argparse.ArgumentParser, default: str | None = DEFAULT_DATASET,
                         legacy_positional: bool = False, required: bool = False) -> None:
    """Add ``--dataset NAME`` to a sub-command (the one convention for the dataset argument).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The sub-command's parser.
    default : str or None
        Dataset used when none is given.
    legacy_positional : bool
        Also accept the name as an optional positional argument (for
        commands that took it that way before); both forms are checked the
        same way and must agree when both are given.
    required : bool
        Require a dataset (no default).
    """
    shown = f" (default: {default})" if default and not required else ""
    parser.add_argument("--dataset", metavar="NAME", type=dataset_name, default=None, required=required,
                        help=f"dataset name: the folder data/raw/NAME/{shown}")
    if legacy_positional:
        parser.add_argument(_POSITIONAL, nargs="?", type=dataset_name, default=None,
                            metavar="NAME", help="same as --dataset NAME (older spelling)")
    parser.set_defaults(**{_DEFAULT_KEY: default})


def _resolve_dataset(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if not hasattr(args, _DEFAULT_KEY):
        return
    positional = getattr(args, _POSITIONAL, None)
    if positional is not None and args.dataset is not None and positional != args.dataset:
        parser.error(f"dataset given twice ({positional!r} and --dataset {args.dataset!r}); give it once")
    args.dataset = args.dataset or positional or getattr(args, _DEFAULT_KEY)
    for key in (_POSITIONAL, _DEFAULT_KEY):
        if hasattr(args, key):
            delattr(args, key)


# --------------------------------------------------------------------------- parser and entry point


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="python -m painmeta",
        description="Reproducible neuroimaging meta-analysis of CIPN and cancer pain. "
                    "Datasets are named folders under data/raw/ (--dataset NAME).",
    )
    parser.add_argument("--version", action="version", version=f"painmeta {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        register = getattr(module, "register_cli", None)
        if register is not None:
            register(sub)
    return parser


def log_traceback(exc: BaseException, context: str = "") -> Path:
    """Write the traceback of ``exc`` to a log file and return its path.

    The file goes to ``outputs/logs/`` under the work folder (``PAINMETA_WORK``
    or the project root) when that can be written, else to the system's
    temporary folder.
    """
    from painmeta.paths import project_root

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    text = f"painmeta {__version__} {context}\n" + "".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__))
    candidates = []
    try:
        work = Path(os.environ["PAINMETA_WORK"]) if os.environ.get("PAINMETA_WORK") else project_root()
        candidates.append(work / "outputs" / "logs")
    except Exception:  # noqa: BLE001 - the log must be written wherever possible
        pass
    candidates.append(Path(tempfile.gettempdir()))
    for folder in candidates:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f"painmeta-error-{stamp}-", suffix=".log", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            return Path(name)
        except OSError:
            continue
    return Path("<no log written>")  # pragma: no cover - no writable folder at all


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 failure, 2 bad input)."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 1
        _resolve_dataset(args, parser)
    except SystemExit as exc:  # argparse: usage errors (2), --help and --version (0)
        return int(exc.code or 0) if isinstance(exc.code, int) or exc.code is None else 2
    try:
        result = args.func(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StageError as exc:  # the executed notebook holds the traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - no traceback reaches a user
        log = log_traceback(exc, f"command {getattr(args, 'command', '')}")
        message = str(exc).splitlines()[0][:300] if str(exc) else ""
        print(f"error: {getattr(args, 'command', 'painmeta')} failed: {type(exc).__name__}: {message}\n"
              f"  (this is a bug or an unexpected condition, not a problem with your input as far as painmeta "
              f"knows; the traceback is in {log})", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
