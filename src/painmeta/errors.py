"""Exceptions for user-facing errors.

An :class:`InputError` is a problem with the user's input (a table, a config,
a Sleuth file). The command line prints its message and exits non-zero without
a Python traceback; library callers can catch it.
"""

from __future__ import annotations


class InputError(Exception):
    """Bad user input; the message says where (file, row, column) and how to fix it."""

    def __init__(self, message: str, problems: list | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class StageError(Exception):
    """A stage notebook failed for a reason other than bad input.

    The message is one short paragraph (stage, exception type and message,
    where the executed notebook with the traceback is); the command line
    prints it and exits 1.
    """
