"""Reading a user's CSV table safely, keeping the line every row starts on.

Used for every CSV a dataset holds (the extraction tables, ``robins_i.csv``,
``review_implied_counts.csv``): one reader, one set of messages.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from painmeta.schemas import Problem

_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "pipe"}

#: Largest CSV table read (bytes): far above any honest extraction table
#: (hundreds of studies are a few MB), low enough that a wrong file fails fast.
MAX_TABLE_BYTES = 200_000_000


def read_table(path: Path) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Read a CSV table as text, checking encoding, delimiter and header first.

    The file is parsed with :mod:`csv` (strict) rather than pandas so that
    every row keeps the line it starts on: blank lines are skipped without
    shifting the line numbers of later rows, and a quoted cell that spans
    lines does not either. The returned frame's index is ``line - 2`` (the
    header is line 1), so ``index + 2`` is the line a spreadsheet user sees.

    Parameters
    ----------
    path : pathlib.Path
        The CSV file.

    Returns
    -------
    table : pandas.DataFrame or None
        All columns as text, empty cells as NA; None when the file cannot be
        read at all.
    problems : list of Problem
        File-level problems (missing, empty, not UTF-8, wrong delimiter,
        malformed quoting, duplicate or unnamed columns, rows longer than the
        header).
    """
    name = str(path)
    if not path.is_file():
        return None, [Problem(name, None, None, "", "file not found; create it (see docs/TABLES.md for the columns)")]
    size = path.stat().st_size
    if size > MAX_TABLE_BYTES:
        return None, [Problem(name, None, None, "", f"file is {size:,} bytes, more than the {MAX_TABLE_BYTES:,} "
                                                    "a table may have; is it the right file?")]
    raw = path.read_bytes()
    if not raw.strip():
        return None, [Problem(name, None, None, "", "file is empty; it needs at least a header row")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [
            Problem(name, line, None, "",
                    f"file is not UTF-8 (byte {raw[exc.start]:#x}); re-save it as 'CSV UTF-8' in your spreadsheet program")
        ]
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        return None, [Problem(name, line, None, "", "file contains NUL bytes; it is not a text CSV (a spreadsheet "
                                                    "file?); save it as 'CSV UTF-8'")]
    header_line = text.lstrip("\r\n").splitlines()[0]
    if "," not in header_line:
        used = next((label for d, label in _DELIMITERS.items() if d in header_line), None)
        hint = f"it looks {used}-separated" if used else "the header has no commas"
        return None, [Problem(name, 1, None, "", f"{hint}; save the table as comma-separated values (CSV)")]
    records: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    end = 0
    try:
        for record in reader:
            start, end = end + 1, reader.line_num
            if any(cell.strip() for cell in record):  # blank lines carry nothing
                records.append((start, record))
    except csv.Error as exc:
        return None, [Problem(name, reader.line_num, None, "",
                              f"not a well-formed CSV ({exc}); check the quoting of cells that contain commas, "
                              "quotes or line breaks")]
    problems: list[Problem] = []
    header_no, header = records[0]
    if header_no != 1:
        problems.append(Problem(name, header_no, None, "", "the header must be the first line; delete the blank "
                                                           "lines above it"))
    header = [h.strip() for h in header]
    width = len(header)
    body = records[1:]
    keep: list[int] = []
    first_col: dict[str, int] = {}
    for j, col in enumerate(header):
        if col == "":
            if any(j < len(rec) and rec[j].strip() for _, rec in body):
                problems.append(Problem(name, 1, None, "", f"column {j + 1} has no name in the header but holds "
                                                           "values; name it or delete its cells"))
            continue  # an unnamed, empty column (a trailing comma) holds nothing
        if col in first_col:
            problems.append(Problem(name, 1, col, "", f"duplicate column: columns {first_col[col] + 1} and {j + 1} "
                                                      "have the same name; delete or rename one"))
            continue
        first_col[col] = j
        keep.append(j)
    rows, lines = [], []
    for line, rec in body:
        if len(rec) > width and any(c.strip() for c in rec[width:]):
            problems.append(Problem(name, line, None, "",
                                    f"row has {len(rec)} cells but the header has {width}; quote cells that "
                                    "contain commas"))
        cells = [(rec[j].strip() if j < len(rec) else "") for j in keep]
        rows.append([c if c != "" else None for c in cells])
        lines.append(line)
    # pandas' text dtype (``str``), missing cells NA: what read_csv(dtype=str) gives.
    df = pd.DataFrame(rows, columns=[header[j] for j in keep], dtype=str,
                      index=pd.Index(np.asarray(lines, dtype=int) - 2))
    return df, problems


__all__ = ["MAX_TABLE_BYTES", "read_table"]
