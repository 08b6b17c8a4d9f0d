"""Read and write GingerALE Sleuth text files.

Format (what GingerALE and NiMARE read)::

    // Reference=MNI
    // Study A 2014: patients > controls
    // Subjects=12
    4	24	23
    -50	13	-8

    // Study B 2020: patients > controls
    // Subjects=20
    ...

* The first line names the space: ``// Reference=MNI`` or
  ``// Reference=Talairach`` (``TAL`` is accepted on reading).
* An experiment is one or more ``//`` comment lines naming it, then
  ``// Subjects=N``, then one ``x y z`` line per focus (tab- or
  space-separated). Blank lines separate experiments.

The experiment id is the text of the naming comment lines joined by a space
(NiMARE joins them the same way, then splits "study: contrast" at the first
``;`` or ``:`` after a year). Every problem raises
:class:`painmeta.errors.InputError` naming the file, the 1-based line and the
fix.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from painmeta.coords import ICBM2TAL
from painmeta.coords import tal2mni as _coords_tal2mni
from painmeta.errors import InputError

_REFERENCE = re.compile(r"^//\s*Reference\s*=\s*(\S+)\s*$", re.IGNORECASE)
_SUBJECTS = re.compile(r"^//\s*Subjects\s*=\s*(.*?)\s*$", re.IGNORECASE)
_SPACES = {"mni": "MNI", "talairach": "Talairach", "tal": "Talairach"}

# GingerALE's Talairach files are converted with the pooled Lancaster (2007)
# transform; the implementation lives in painmeta.coords (one place for all).
ICBM_OTHER = ICBM2TAL["tal2icbm_other"]


def tal2mni(xyz: np.ndarray) -> np.ndarray:
    """Talairach -> MNI with the inverse Lancaster (icbm_other) transform."""
    return _coords_tal2mni(xyz, "tal2icbm_other")


@dataclass
class SleuthData:
    """Foci and sample sizes read from one or more Sleuth files.

    Attributes
    ----------
    foci : pandas.DataFrame
        ``experiment_id, x, y, z, space, file, line`` (one row per focus, in
        file order; ``line`` is the 1-based line of the coordinate).
    sample_sizes : dict
        Experiment id -> subjects.
    space : str
        ``"MNI"`` or ``"Talairach"`` (shared by all files).
    files : list of pathlib.Path
    """

    foci: pd.DataFrame
    sample_sizes: dict[str, int]
    space: str
    files: list[Path] = field(default_factory=list)

    @property
    def experiment_ids(self) -> list[str]:
        """Experiments in file order."""
        return list(dict.fromkeys(self.foci["experiment_id"]))

    @property
    def n_experiments(self) -> int:
        return len(self.sample_sizes)

    def to_mni(self) -> "SleuthData":
        """Copy in MNI space (Talairach converted with :func:`tal2mni`)."""
        if self.space == "MNI":
            return self
        foci = self.foci.copy()
        foci[["x", "y", "z"]] = tal2mni(foci[["x", "y", "z"]].to_numpy())
        foci["space"] = "MNI"
        return SleuthData(foci, dict(self.sample_sizes), "MNI", list(self.files))


def _err(path: Path, line: int, msg: str, fix: str) -> InputError:
    return InputError(f"{path}:{line}: {msg}. Fix: {fix}")


#: Largest Sleuth file read (bytes); hundreds of experiments are well under 10 MB.
MAX_BYTES = 50_000_000
#: Largest |coordinate| in mm: the MNI/Talairach bounding box is within +/-100 mm,
#: so anything beyond 150 is a unit, sign or column error (the table path uses the same bound).
MAX_ABS_COORD = 150.0
#: Largest sample size accepted on a '// Subjects=' line.
MAX_SUBJECTS = 100_000
# ASCII only: float() also accepts other scripts' digits ("１２") and "inf"/"nan".
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_WHOLE = re.compile(r"\+?[0-9]+")


def _numbered_lines(path: Path) -> list[tuple[int, str]]:
    """(1-based line, stripped text) of every line of a Sleuth file, after checks."""
    if not path.is_file():
        raise InputError(f"{path}: Sleuth file not found. Fix: check the path.")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise InputError(f"{path}: file is {size:,} bytes, more than the {MAX_BYTES:,} a Sleuth file may have. "
                         "Fix: check that it is the right file.")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not a UTF-8 text file (byte {raw[exc.start]:#x}). Fix: save it as "
                         "plain text in UTF-8.") from None
    lines = re.split(r"\r\n|\n|\r", text)
    return [(i + 1, ln.strip()) for i, ln in enumerate(lines)]


def _read_one(path: Path, used: dict[str, tuple[Path, int]],
              numbered: list[tuple[int, str]] | None = None) -> tuple[str, list[dict], dict[str, int]]:
    if numbered is None:
        numbered = _numbered_lines(path)
    content = [(n, ln) for n, ln in numbered if ln]
    if not content:
        raise InputError(
            f"{path}:1: empty file. Fix: a Sleuth file starts with '// Reference=MNI' "
            "(or Talairach) followed by experiments."
        )
    first_no, first = content[0]
    m = _REFERENCE.match(first)
    if not m:
        raise _err(
            path, first_no, f"missing reference space (found {first!r})",
            "make the first line '// Reference=MNI' or '// Reference=Talairach'",
        )
    space = _SPACES.get(m.group(1).lower())
    if space is None:
        raise _err(path, first_no, f"unknown reference space {m.group(1)!r}", "use MNI or Talairach")

    foci: list[dict] = []
    sizes: dict[str, int] = {}
    start_index = next(i for i, (n, _) in enumerate(numbered) if n == first_no) + 1
    header: list[tuple[int, str]] = []  # pending comment lines of the next experiment
    current: str | None = None  # experiment receiving coordinates
    current_line = 0
    n_current = 0
    auto = 0

    def close() -> None:
        if current is not None and n_current == 0:
            raise _err(path, current_line, f"experiment {current!r} has no coordinates",
                       "add one 'x y z' line per focus after its '// Subjects=' line, or delete it")

    prev_blank = False
    for n, ln in numbered[start_index:]:
        if not ln:
            prev_blank = True
            continue
        if ln.startswith("//"):
            if _REFERENCE.match(ln):
                raise _err(path, n, "a second '// Reference=' line",
                           "keep a single reference line at the top; put other spaces in another file")
            sm = _SUBJECTS.match(ln)
            if sm:
                close()
                names = [t for _, t in header]
                start = header[0][0] if header else n
                raw = sm.group(1)
                if not _WHOLE.fullmatch(raw) or len(raw) > 12 or not 1 <= int(raw) <= MAX_SUBJECTS:
                    what = ("is not a positive whole number" if not _WHOLE.fullmatch(raw) or int(raw) < 1
                            else f"is larger than {MAX_SUBJECTS:,}")
                    raise _err(path, n, f"sample size {raw[:40]!r} {what}",
                               f"write the number of subjects (digits 0-9, 1 to {MAX_SUBJECTS:,}), "
                               "e.g. '// Subjects=12'")
                value = int(raw)
                if names:
                    exp = " ".join(names)
                else:
                    auto += 1
                    exp = f"{path.stem} experiment {auto}"
                if exp in used:
                    fp, fl = used[exp]
                    raise _err(path, start, f"experiment name {exp!r} already used at {fp}:{fl}",
                               "give every experiment a unique '// Study: contrast' line")
                used[exp] = (path, start)
                sizes[exp] = int(value)
                current, current_line, n_current = exp, start, 0
                header = []
            else:
                if current is not None and n_current == 0 and not header:
                    if prev_blank:
                        close()  # the previous experiment ended without coordinates
                    raise _err(path, n, f"comment line after '// Subjects=' of {current!r} but before its coordinates",
                               "put the experiment's name lines above its '// Subjects=' line")
                header.append((n, ln[2:].strip()))
            prev_blank = False
            continue
        # a coordinate line
        if header:
            raise _err(path, header[0][0], "experiment header without a '// Subjects=N' line",
                       "add '// Subjects=N' (patients entering ALE) after the experiment's name line(s)")
        if current is None or (prev_blank and n_current > 0):
            raise _err(path, n, "coordinates without an experiment header",
                       "start each experiment with '// Study: contrast' and '// Subjects=N' lines")
        parts = ln.split()
        if len(parts) != 3:
            raise _err(path, n, f"expected 3 columns (x y z), found {len(parts)}: {ln!r}",
                       "write one focus per line as three numbers separated by tabs or spaces")
        bad = next((v for v in parts if not _NUMBER.fullmatch(v)), None)
        if bad is not None:
            raise _err(path, n, f"non-numeric coordinate {bad[:40]!r}",
                       "use plain decimal numbers (digits 0-9) with a '.' decimal point")
        xyz = [float(v) for v in parts]
        if not all(math.isfinite(v) and abs(v) <= MAX_ABS_COORD for v in xyz):
            raise _err(path, n, f"coordinate out of range ({ln[:60]!r}): every coordinate must lie within "
                                f"+/-{MAX_ABS_COORD:g} mm",
                       "check the sign, units (mm, not voxels) and column order (x y z)")
        foci.append({"experiment_id": current, "x": xyz[0], "y": xyz[1], "z": xyz[2],
                     "space": space, "file": str(path), "line": n})
        n_current += 1
        prev_blank = False
    if header:
        raise _err(path, header[0][0], "experiment header without a '// Subjects=N' line",
                   "add '// Subjects=N' after the experiment's name line(s)")
    close()
    if not sizes:
        raise _err(path, first_no, "no experiments after the reference line",
                   "add experiments: '// Study: contrast', '// Subjects=N', then 'x y z' lines")
    return space, foci, sizes


def _fmt(value: float) -> str:
    """Whole numbers without a decimal point, others with 10 significant digits."""
    return str(int(value)) if value == int(value) else f"{value:.10g}"


def read_sleuth(paths: str | Path | Sequence[str | Path]) -> SleuthData:
    """Read one or more Sleuth files.

    Parameters
    ----------
    paths : path-like or sequence of path-like

    Returns
    -------
    SleuthData

    Raises
    ------
    InputError
        Empty file, missing or unknown reference, mixed references across
        files, header without ``// Subjects=``, bad sample size, wrong column
        count, non-numeric coordinate, experiment without foci, duplicate
        experiment names. The message names file and line and how to fix it.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files = [Path(p) for p in paths]
    if not files:
        raise InputError("no Sleuth file given. Fix: pass at least one file.")
    used: dict[str, tuple[Path, int]] = {}
    all_foci: list[dict] = []
    sizes: dict[str, int] = {}
    spaces: dict[Path, str] = {}
    for path in files:
        space, foci, sz = _read_one(path, used)
        spaces[path] = space
        all_foci.extend(foci)
        sizes.update(sz)
    if len(set(spaces.values())) > 1:
        listing = ", ".join(f"{p} ({s})" for p, s in spaces.items())
        raise InputError(
            f"mixed reference spaces across files: {listing}. Fix: convert the foci to one space "
            "(e.g. Talairach -> MNI with the Lancaster transform) or analyse the files separately."
        )
    foci_df = pd.DataFrame(all_foci, columns=["experiment_id", "x", "y", "z", "space", "file", "line"])
    return SleuthData(foci_df, sizes, next(iter(spaces.values())), files)


def read_sleuth_blocks(path: str | Path, used: dict[str, tuple[Path, int]] | None = None) -> list[SleuthData]:
    """Read one Sleuth file that may hold several ``// Reference=`` blocks.

    GingerALE reads one reference per file; a file that concatenates several
    analyses (one ``// Reference=`` line each) is split here, one
    :class:`SleuthData` per block, with file lines kept. Experiment names must
    be unique across the blocks. A file with one reference line gives one
    block, exactly as :func:`read_sleuth`.

    Parameters
    ----------
    path : path-like
    used : dict, optional
        Experiment names already read (name -> (file, line)), shared across
        calls so that names stay unique across several files; updated.

    Returns
    -------
    list of SleuthData

    Raises
    ------
    InputError
        As :func:`read_sleuth`, per block.
    """
    path = Path(path)
    numbered = _numbered_lines(path)
    starts = [i for i, (_, ln) in enumerate(numbered) if _REFERENCE.match(ln)]
    first = next((i for i, (_, ln) in enumerate(numbered) if ln), None)
    if not starts or first != starts[0]:
        _read_one(path, {}, numbered)  # raises the usual message (empty file, missing reference)
    used = {} if used is None else used
    blocks = []
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else len(numbered)
        space, foci, sizes = _read_one(path, used, numbered[start:stop])
        foci_df = pd.DataFrame(foci, columns=["experiment_id", "x", "y", "z", "space", "file", "line"])
        blocks.append(SleuthData(foci_df, sizes, space, [path]))
    return blocks


def write_sleuth(
    foci: pd.DataFrame,
    sample_sizes: Mapping[str, float],
    path: str | Path,
    space: str = "MNI",
    labels: Mapping[str, str] | None = None,
    experiment_order: Iterable[str] | None = None,
) -> Path:
    """Write foci as a GingerALE Sleuth file.

    Parameters
    ----------
    foci : pandas.DataFrame
        Columns ``experiment_id, x, y, z``.
    sample_sizes : mapping
        Experiment id -> subjects (whole number).
    path : path-like
        Output file (parent folders are created).
    space : {"MNI", "Talairach"}
        Reference written in the first line; coordinates are written as given.
    labels : mapping, optional
        Experiment id -> text of the ``//`` name line (default: the id). Use
        "Study: contrast" to let NiMARE split study and contrast.
    experiment_order : iterable of str, optional
        Order of experiments (default: first appearance in ``foci``).

    Returns
    -------
    pathlib.Path
    """
    space_norm = _SPACES.get(str(space).lower())
    if space_norm is None:
        raise InputError(f"unknown space {space!r}. Fix: use 'MNI' or 'Talairach'.")
    missing = {"experiment_id", "x", "y", "z"} - set(foci.columns)
    if missing:
        raise InputError(f"foci table lacks column(s) {sorted(missing)}")
    order = list(experiment_order) if experiment_order is not None else list(dict.fromkeys(foci["experiment_id"]))
    out = [f"// Reference={space_norm}"]
    for exp in order:
        sub = foci[foci["experiment_id"] == exp]
        if sub.empty:
            raise InputError(f"experiment {exp!r} has no foci; a Sleuth experiment needs at least one")
        if exp not in sample_sizes or sample_sizes[exp] is None:
            raise InputError(f"experiment {exp!r} has no sample size")
        n = float(sample_sizes[exp])
        if not math.isfinite(n) or n <= 0 or n != int(n):
            raise InputError(f"experiment {exp!r}: sample size {sample_sizes[exp]!r} is not a positive whole number")
        label = str(labels[exp]) if labels and exp in labels else str(exp)
        if "\n" in label or "\r" in label:
            raise InputError(f"experiment label {label!r} contains a line break")
        out.append(f"// {label}")
        out.append(f"// Subjects={int(n)}")
        for x, y, z in sub[["x", "y", "z"]].to_numpy(dtype=float):
            out.append("\t".join(_fmt(v) for v in (x, y, z)))
        out.append("")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out), encoding="utf-8")
    return path


__all__ = ["ICBM_OTHER", "MAX_ABS_COORD", "MAX_SUBJECTS", "SleuthData", "read_sleuth", "read_sleuth_blocks",
           "tal2mni", "write_sleuth"]
