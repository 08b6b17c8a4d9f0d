"""Command line: ``python -m painmeta <command> ...``.

Each stage module that offers a command exposes ``register_cli(subparsers)``
which adds its sub-command and sets ``func`` on the parser. User errors
(:class:`painmeta.errors.InputError`) are printed without a traceback and give
exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from painmeta import __version__
from painmeta.errors import InputError

#: Modules that contribute sub-commands, in help order. Missing modules are
#: skipped so that a partial checkout still runs.
COMMAND_MODULES = (
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


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="python -m painmeta",
        description="Reproducible neuroimaging meta-analysis of CIPN and cancer pain.",
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


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        result = args.func(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
