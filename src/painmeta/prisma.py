"""PRISMA 2020 flow: load ``prisma.yaml``, check its arithmetic, draw the diagram.

``data/raw/<dataset>/prisma.yaml`` holds the counts of the PRISMA 2020 flow
diagram (Page et al. 2021, BMJ 372:n71; template "new systematic reviews which
included searches of databases, registers and other sources"). Every count is
a whole number or ``null`` (unknown: not reported by the source). A ``stated``
block keeps totals the source states separately from their parts, so that the
parts can be checked against them. Arithmetic that does not add up is flagged,
never corrected; a check with an unknown term is "not checkable".

Schema (all keys optional; a missing count is unknown)::

    version: 1
    title: str                      # shown above the diagram
    source: str                     # where the counts come from
    identification:
      databases: {name: count}      # {} = none searched; null = unknown
      registers: {name: count}
      other_methods: {name: count}  # websites, organisations, citation searching
    removed_before_screening: {duplicates: count, automation: count, other: count}
    databases_and_registers:        # left column of the template
      records_screened: count
      records_excluded: count
      reports_sought: count
      reports_not_retrieved: count
      reports_assessed: count
      reports_excluded: {reason: count}
    other_methods:                  # right column of the template
      reports_sought: count
      reports_not_retrieved: count
      reports_assessed: count
      reports_excluded: {reason: count}
      studies_included: count       # studies this route added (a note, not a box)
    included:
      studies: count
      reports: count
      syntheses: [{name: str, n: count, unit: studies|reports|datasets|experiments}]
    stated:                         # totals as the source states them
      records_identified: count     # databases + registers
      records_removed: count        # removed before screening
      reports_excluded: count       # databases-and-registers route
    notes: {box: text}              # one italic line inside a box (keys: BOX_KEYS)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import yaml
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from painmeta.errors import InputError
from painmeta.plotting import FONT as _FONT
from painmeta.plotting import inch_canvas as _inch_canvas
from painmeta.plotting import save_figure
from painmeta.plotting import text_width as _text_width
from painmeta.plotting import wrap_text as _wrap

__all__ = [
    "BOX_KEYS",
    "Prisma",
    "load_prisma",
    "check_arithmetic",
    "flow_diagram",
    "save_figure",
]

UNKNOWN_TEXT = "n = unknown (not reported)"

#: Boxes of the diagram; ``notes`` in the YAML may address any of them.
BOX_KEYS = (
    "identified", "removed", "screened", "records_excluded", "sought", "not_retrieved",
    "assessed", "reports_excluded", "other_identified", "other_sought", "other_not_retrieved",
    "other_assessed", "other_excluded", "included", "syntheses",
)

# --------------------------------------------------------------------------- schema

NonNegative = Annotated[int, Field(ge=0, strict=True)]
Count = NonNegative | None
Counts = dict[str, Count]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Identification(_Strict):
    """Records identified, per source (``{}`` = none searched, ``None`` = unknown)."""

    databases: Counts | None = None
    registers: Counts | None = None
    other_methods: Counts | None = None


class Removed(_Strict):
    """Records removed before screening."""

    duplicates: Count = None
    automation: Count = None
    other: Count = None


class DatabaseRoute(_Strict):
    """Left column: screening and eligibility of records from databases and registers."""

    records_screened: Count = None
    records_excluded: Count = None
    reports_sought: Count = None
    reports_not_retrieved: Count = None
    reports_assessed: Count = None
    reports_excluded: Counts | None = None


class OtherRoute(_Strict):
    """Right column: reports found by other methods."""

    reports_sought: Count = None
    reports_not_retrieved: Count = None
    reports_assessed: Count = None
    reports_excluded: Counts | None = None
    studies_included: Count = None


class Synthesis(_Strict):
    """One synthesis and how many units entered it."""

    name: str
    n: Count = None
    unit: Literal["studies", "reports", "datasets", "experiments"] = "studies"


class Included(_Strict):
    """Studies and reports included, and per synthesis."""

    studies: Count = None
    reports: Count = None
    syntheses: list[Synthesis] = Field(default_factory=list)


class Stated(_Strict):
    """Totals the source states separately from their parts."""

    records_identified: Count = None
    records_removed: Count = None
    reports_excluded: Count = None


class Prisma(_Strict):
    """Validated content of ``prisma.yaml``."""

    version: Literal[1] = 1
    title: str = ""
    source: str = ""
    identification: Identification = Identification()
    removed_before_screening: Removed = Removed()
    databases_and_registers: DatabaseRoute = DatabaseRoute()
    other_methods: OtherRoute = OtherRoute()
    included: Included = Included()
    stated: Stated = Stated()
    notes: dict[Literal[BOX_KEYS], str] = Field(default_factory=dict)  # type: ignore[valid-type]


# --------------------------------------------------------------------------- loading


def _key_lines(node: yaml.Node, path: tuple = (), out: dict | None = None,
               dups: list | None = None) -> tuple[dict[tuple, int], list[tuple[tuple, int, int]]]:
    """Map each key path to its 1-based line; collect duplicate keys (PyYAML keeps the last silently)."""
    out = {} if out is None else out
    dups = [] if dups is None else dups
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                dups.append((path + (key,), seen[key], line))
            seen[key] = line
            out[path + (key,)] = line
            _key_lines(value_node, path + (key,), out, dups)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[path + (i,)] = item.start_mark.line + 1
            _key_lines(item, path + (i,), out, dups)
    return out, dups


_HINTS = {
    "int_type": "write a whole number, or null if the source does not report it",
    "int_from_float": "write a whole number, or null if the source does not report it",
    "greater_than_equal": "counts cannot be negative",
    "extra_forbidden": "unknown key; check its spelling against the schema in painmeta.prisma",
    "literal_error": "not an allowed value",
    "dict_type": "write a mapping of name: count (use {} for none, null for unknown)",
    "model_type": "write a mapping of the keys listed in the schema",
    "list_type": "write a list of entries, each '- {name: ..., n: ..., unit: ...}'",
    "missing": "this key is required",
    "string_type": "write text",
}


def load_prisma(path: str | Path) -> Prisma:
    """Read and validate ``prisma.yaml``.

    Parameters
    ----------
    path : path-like
        The YAML file, or a dataset folder holding ``prisma.yaml``.

    Returns
    -------
    Prisma

    Raises
    ------
    painmeta.errors.InputError
        Naming the file, line and key of every problem, and how to fix it.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "prisma.yaml"
    if not path.is_file():
        raise InputError(f"{path}: file not found; see painmeta.prisma for the schema")
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)}); "
                         "check indentation and colons") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"{path}, line 1: the file must be a mapping of sections (identification, ...)")
    lines, dups = _key_lines(node) if node is not None else ({}, [])
    problems = [f"{path}, line {second}: key '{'.'.join(map(str, p))}' repeats line {first}; "
                "merge the two entries" for p, first, second in dups]
    try:
        prisma = Prisma.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = None
            for k in range(len(loc), 0, -1):  # deepest location the file knows
                if loc[:k] in lines:
                    line = lines[loc[:k]]
                    break
            where = f"{path}" + (f", line {line}" if line else "")
            key = ".".join(str(p) for p in loc if p != "[key]") or "(top level)"
            hint = _HINTS.get(err["type"], "")
            value = err.get("input")
            shown = f" (value: {value!r})" if err["type"] != "missing" and not isinstance(value, dict) else ""
            problems.append(f"{where}, key '{key}': {err['msg']}" + (f"; {hint}" if hint else "") + shown)
        prisma = None
    if problems:
        head = f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found:"
        raise InputError("\n".join([head, *(f"  - {p}" for p in problems)]), problems)
    return prisma


# --------------------------------------------------------------------------- arithmetic


def _sum(counts: dict[str, Count] | None) -> int | None:
    """Sum of a name → count mapping; None if the mapping or any count is unknown."""
    if counts is None or any(v is None for v in counts.values()):
        return None
    return sum(counts.values())


def _fmt(v: int | None) -> str:
    return "?" if v is None else f"{v:,}"


@dataclass(frozen=True)
class _Check:
    check: str
    description: str
    relation: str
    observed: int | None
    expected: int | None
    status: str
    boxes: tuple[str, ...]
    detail: str = ""


def _equality(check: str, description: str, terms: list[tuple], expected: int | None,
              expected_label: str, boxes: tuple[str, ...], detail: str = "") -> _Check:
    """Check sum(sign * term) == expected; terms are (sign, value) or (sign, value, label)."""
    def term(k: int, t: tuple) -> str:
        sign, v = t[0], t[1]
        shown = _fmt(v) + (f" {t[2]}" if len(t) > 2 else "")
        return shown if k == 0 and sign == "+" else f" {'+' if sign == '+' else '−'} {shown}"

    text = "".join(term(k, t) for k, t in enumerate(terms))
    values = [t[1] for t in terms]
    known = not any(v is None for v in values)
    observed = sum(t[1] if t[0] == "+" else -t[1] for t in terms) if known else None
    shown = text if observed is None or len(terms) == 1 else f"{text} = {_fmt(observed)}"
    if not known or expected is None:
        return _Check(check, description, f"{shown} vs {expected_label} {_fmt(expected)}", observed, expected,
                      "not checkable", boxes, detail or "a term is unknown (not reported)")
    ok = observed == expected
    return _Check(check, description, f"{shown} {'=' if ok else '≠'} {expected_label} {_fmt(expected)}",
                  observed, expected, "ok" if ok else "flag", boxes, detail)


def _checks(p: Prisma) -> list[_Check]:
    ident, rem, db, om, inc, st = (p.identification, p.removed_before_screening, p.databases_and_registers,
                                   p.other_methods, p.included, p.stated)
    out: list[_Check] = []
    parts = [("+", v) for v in (ident.databases or {}).values()] + [("+", v) for v in (ident.registers or {}).values()]
    if ident.databases is None:
        parts.insert(0, ("+", None))
    if ident.registers is None:
        parts.append(("+", None))
    if not parts:
        parts = [("+", 0)]
    # Part-versus-stated checks exist only where the source states a total.
    if st.records_identified is not None:
        out.append(_equality("records_identified", "Database and register counts vs the stated total",
                             parts, st.records_identified, "stated", ("identified",)))
    if st.records_removed is not None:
        removed_parts = [("+", rem.duplicates), ("+", rem.automation), ("+", rem.other)]
        out.append(_equality("records_removed", "Removal reasons vs the stated number removed",
                             removed_parts, st.records_removed, "stated", ("removed",)))

    # Screened = identified − removed. Prefer the parts; fall back to stated totals.
    a, b = _sum(ident.databases), _sum(ident.registers)
    identified = a + b if a is not None and b is not None else None
    if identified is None:
        identified = st.records_identified
    removed = None if any(v is None for v in (rem.duplicates, rem.automation, rem.other)) else \
        rem.duplicates + rem.automation + rem.other  # type: ignore[operator]
    if removed is None:
        removed = st.records_removed
    detail = ""
    if removed is None and db.records_screened is not None:
        implied = []
        if a is not None and b is not None:
            implied.append(f"{_fmt(a + b)} − {_fmt(db.records_screened)} = {_fmt(a + b - db.records_screened)} "
                           "from the source counts")
        if st.records_identified is not None:
            implied.append(f"{_fmt(st.records_identified)} − {_fmt(db.records_screened)} = "
                           f"{_fmt(st.records_identified - db.records_screened)} from the stated total")
        if implied:
            detail = "number removed not reported; it would be " + " or ".join(implied)
    out.append(_equality("records_screened", "Records screened = identified − removed before screening",
                         [("+", identified, "identified"), ("-", removed, "removed")], db.records_screened,
                         "screened",
                         ("identified", "removed", "screened"), detail))
    out.append(_equality("reports_sought", "Reports sought = records screened − records excluded",
                         [("+", db.records_screened, "screened"), ("-", db.records_excluded, "excluded")],
                         db.reports_sought, "sought",
                         ("screened", "records_excluded", "sought")))
    out.append(_equality("reports_assessed", "Reports assessed = sought − not retrieved",
                         [("+", db.reports_sought, "sought"), ("-", db.reports_not_retrieved, "not retrieved")],
                         db.reports_assessed,
                         "assessed", ("sought", "not_retrieved", "assessed")))
    if db.reports_excluded and st.reports_excluded is not None:
        out.append(_equality("reports_excluded", "Exclusion reasons vs the stated number excluded",
                             [("+", v) for v in db.reports_excluded.values()], st.reports_excluded, "stated",
                             ("reports_excluded",)))
    # Reports of included studies = (assessed − excluded) over both routes.
    db_excl = _sum(db.reports_excluded) if db.reports_excluded else None
    if db_excl is None:
        db_excl = st.reports_excluded
    no_other = ident.other_methods == {}
    terms = [("+", db.reports_assessed, "assessed"), ("-", db_excl, "excluded")]
    if not no_other:
        om_excl = _sum(om.reports_excluded) if om.reports_excluded is not None else None
        terms += [("+", om.reports_assessed, "assessed (other)"), ("-", om_excl, "excluded (other)")]
    out.append(_equality("reports_included", "Reports of included studies = assessed − excluded (both routes)",
                         terms, inc.reports, "reports included",
                         ("assessed", "reports_excluded", "other_assessed", "other_excluded", "included")))
    if not no_other:
        out.append(_equality("other_reports_assessed", "Other methods: reports assessed = sought − not retrieved",
                             [("+", om.reports_sought, "sought"), ("-", om.reports_not_retrieved, "not retrieved")],
                             om.reports_assessed,
                             "assessed", ("other_sought", "other_not_retrieved", "other_assessed")))
    out.append(_bound("studies_vs_reports", "Included studies ≤ reports of included studies",
                      inc.studies, inc.reports, "studies", "reports", ("included",)))
    if om.studies_included is not None:
        out.append(_bound("other_studies", "Studies added by other methods ≤ studies included",
                          om.studies_included, inc.studies, "added by other methods", "included", ("included",)))
    for s in inc.syntheses:
        if s.unit == "studies":
            out.append(_bound(f"synthesis:{s.name}", f"Studies in '{s.name}' ≤ studies included",
                              s.n, inc.studies, s.name, "included", ("syntheses",)))
    return out


def _bound(check: str, description: str, value: int | None, bound: int | None, value_label: str,
           bound_label: str, boxes: tuple[str, ...]) -> _Check:
    relation_unknown = f"{value_label} {_fmt(value)} vs {bound_label} {_fmt(bound)}"
    if value is None or bound is None:
        return _Check(check, description, relation_unknown, value, bound, "not checkable", boxes,
                      "a term is unknown (not reported)")
    ok = value <= bound
    return _Check(check, description, f"{value_label} {_fmt(value)} {'≤' if ok else '>'} {bound_label} {_fmt(bound)}",
                  value, bound, "ok" if ok else "flag", boxes)


def check_arithmetic(prisma: Prisma | str | Path) -> pd.DataFrame:
    """Check that the PRISMA counts add up; flag, never fix.

    Parameters
    ----------
    prisma : Prisma or path-like
        A loaded flow, or the path of ``prisma.yaml`` (or its folder).

    Returns
    -------
    pandas.DataFrame
        One row per check: ``check``, ``description``, ``relation`` (the
        arithmetic with the numbers), ``observed``, ``expected``, ``difference``
        (observed − expected), ``status`` (``ok`` / ``flag`` / ``not checkable``),
        ``boxes`` (diagram boxes involved, comma-separated) and ``detail``.
    """
    if not isinstance(prisma, Prisma):
        prisma = load_prisma(prisma)
    rows = []
    for c in _checks(prisma):
        diff = c.observed - c.expected if c.observed is not None and c.expected is not None else None
        rows.append({"check": c.check, "description": c.description, "relation": c.relation,
                     "observed": c.observed, "expected": c.expected, "difference": diff,
                     "status": c.status, "boxes": ",".join(c.boxes), "detail": c.detail})
    df = pd.DataFrame(rows, columns=["check", "description", "relation", "observed", "expected", "difference",
                                     "status", "boxes", "detail"])
    for col in ("observed", "expected", "difference"):
        df[col] = df[col].astype("Int64")
    return df


# --------------------------------------------------------------------------- diagram

_FS = 8.0
_LINE = _FS * 1.32 / 72  # inches per text line
_PAD = 0.09
_FLAG = "#B2182B"  # dark red, paired with a dashed edge and a numbered mark (not colour alone)
_HEAD_LEFT = "#FFD966"
_HEAD_RIGHT = "#D9D9D9"
_PHASE = "#BDD7EE"
_OTHER_BOX = "#F2F2F2"


@dataclass
class _Box:
    key: str
    lines: list[tuple[str, str]]  # (text, style): style in head, body, item, unknown, note
    x: float = 0.0
    w: float = 2.3
    y: float = 0.0  # centre
    fill: str = "white"

    def wrapped(self) -> list[tuple[str, str]]:
        key = (tuple(self.lines), self.w)
        if getattr(self, "_cache", (None,))[0] == key:  # h/top/bottom ask often; wrap once per content
            return self._cache[1]
        out = []
        for text, style in self.lines:
            indent = "    " if style in ("item", "item_unknown") else ""
            width = self.w - 2 * _PAD - _text_width(indent, _FS)
            for k, piece in enumerate(_wrap(text, width, _FS)):
                out.append(((indent + ("  " if k else "")) + piece, style))
        self._cache = (key, out)
        return out

    @property
    def h(self) -> float:
        return 2 * _PAD + len(self.wrapped()) * _LINE

    @property
    def top(self) -> float:
        return self.y + self.h / 2

    @property
    def bottom(self) -> float:
        return self.y - self.h / 2


_NB = "\u00a0"  # no-break space: keeps "n = 1,150" on one line when wrapping


def _count_line(label: str, v: int | None, unit: str = "", item: bool = False) -> tuple[str, str]:
    # "Label: n = 1,150" or "Label: n = unknown (not reported)" (drawn in italics)
    if v is None:
        n_text = UNKNOWN_TEXT.replace("n = unknown", f"n{_NB}={_NB}unknown")
        return (f"{label}: {n_text}" if label else n_text, "item_unknown" if item else "unknown")
    n_text = f"n{_NB}={_NB}{v:,}" + (f"{_NB}{unit}" if unit else "")
    return (f"{label}: {n_text}" if label else n_text, "item" if item else "body")


def _mapping_lines(counts: Counts | None, none_text: str) -> list[tuple[str, str]]:
    if counts is None:
        return [(UNKNOWN_TEXT, "item_unknown")]
    if not counts:
        return [(none_text, "item")]
    return [_count_line(name, v, item=True) for name, v in counts.items()]


def _reasons_box(key: str, counts: Counts | None, stated_total: int | None) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = [("Reports excluded:", "head")]
    total = _sum(counts) if counts else None
    if total is None:
        total = stated_total
    lines.append(_count_line("", total))
    if counts:
        if all(v is None for v in counts.values()):
            lines.append(("Reasons named, counts not reported:", "note"))
            lines += [(f"• {name}", "item") for name in counts]
        else:
            lines += [_count_line(name, v, item=True) for name, v in counts.items()]
    return lines


def _build_boxes(p: Prisma) -> dict[str, _Box]:
    ident, rem, db, om, inc, st = (p.identification, p.removed_before_screening, p.databases_and_registers,
                                   p.other_methods, p.included, p.stated)
    b: dict[str, _Box] = {}
    dsum = _sum(ident.databases)
    several = ident.databases is not None and len(ident.databases) > 1
    lines = [("Records identified from:", "head"),
             _count_line("Databases (sum)" if several and dsum is not None else "Databases",
                         dsum if ident.databases else (0 if ident.databases == {} else None))]
    if ident.databases:
        lines += _mapping_lines(ident.databases, "")
    rsum = _sum(ident.registers)
    lines.append(_count_line("Registers", rsum) if ident.registers != {} else ("Registers: none searched", "body"))
    if ident.registers:
        lines += _mapping_lines(ident.registers, "")
    if st.records_identified is not None:
        lines.append((f"Total stated by the source: n = {st.records_identified:,}", "body"))
    b["identified"] = _Box("identified", lines)
    b["removed"] = _Box("removed", [
        ("Records removed before screening:", "head"),
        _count_line("Duplicate records", rem.duplicates, item=True),
        _count_line("Marked ineligible by automation tools", rem.automation, item=True),
        _count_line("Removed for other reasons", rem.other, item=True),
    ] + ([(f"Total stated by the source: n = {st.records_removed:,}", "body")]
         if st.records_removed is not None else []))
    b["screened"] = _Box("screened", [("Records screened", "head"), _count_line("", db.records_screened)])
    b["records_excluded"] = _Box("records_excluded", [("Records excluded", "head"),
                                                      _count_line("", db.records_excluded)])
    b["sought"] = _Box("sought", [("Reports sought for retrieval", "head"), _count_line("", db.reports_sought)])
    b["not_retrieved"] = _Box("not_retrieved", [("Reports not retrieved", "head"),
                                                _count_line("", db.reports_not_retrieved)])
    b["assessed"] = _Box("assessed", [("Reports assessed for eligibility", "head"),
                                      _count_line("", db.reports_assessed)])
    b["reports_excluded"] = _Box("reports_excluded", _reasons_box("reports_excluded", db.reports_excluded,
                                                                  st.reports_excluded))
    b["included"] = _Box("included", [("Studies included in review", "head"), _count_line("", inc.studies),
                                      ("Reports of included studies", "head"), _count_line("", inc.reports)])
    if inc.syntheses:
        b["syntheses"] = _Box("syntheses", [("Included in each synthesis:", "head")] + [
            _count_line(s.name, s.n, unit=s.unit, item=True) for s in inc.syntheses])
    if _has_other(p):
        b["other_identified"] = _Box("other_identified", [("Records identified from:", "head")]
                                     + _mapping_lines(ident.other_methods, "none"), fill=_OTHER_BOX)
        b["other_sought"] = _Box("other_sought", [("Reports sought for retrieval", "head"),
                                                  _count_line("", om.reports_sought)], fill=_OTHER_BOX)
        b["other_not_retrieved"] = _Box("other_not_retrieved", [("Reports not retrieved", "head"),
                                                                _count_line("", om.reports_not_retrieved)],
                                        fill=_OTHER_BOX)
        b["other_assessed"] = _Box("other_assessed", [("Reports assessed for eligibility", "head"),
                                                      _count_line("", om.reports_assessed)], fill=_OTHER_BOX)
        lines = _reasons_box("other_excluded", om.reports_excluded, None)
        b["other_excluded"] = _Box("other_excluded", lines, fill=_OTHER_BOX)
        if om.studies_included is not None:
            b["other_assessed"].lines.append((f"Studies added by this route: n = {om.studies_included:,}", "note"))
    for key, text in p.notes.items():
        if key in b:
            b[key].lines.append((text, "note"))
    return b


def _has_other(p: Prisma) -> bool:
    return p.identification.other_methods != {}


def _draw_box(ax, box: _Box, flags: list[int]) -> None:
    edge, ls, lw = ("black", "-", 0.8)
    if flags:
        edge, ls, lw = (_FLAG, (0, (4, 2)), 1.6)
    ax.add_patch(Rectangle((box.x, box.bottom), box.w, box.h, facecolor=box.fill, edgecolor=edge,
                           linestyle=ls, linewidth=lw, zorder=2))
    y = box.top - _PAD
    for text, style in box.wrapped():
        kw: dict[str, Any] = {"fontsize": _FS, "family": _FONT, "va": "top", "ha": "left", "zorder": 3}
        if style in ("unknown", "item_unknown", "note"):
            kw["style"] = "italic"
        if style in ("unknown", "item_unknown"):
            kw["color"] = "#444444"
        if style == "note":
            kw["color"] = "#333333"
        ax.text(box.x + _PAD, y, text, **kw)
        y -= _LINE
    if flags:
        mark = "".join(f"†{k}" for k in flags)
        ax.text(box.x + box.w - 0.05, box.top - 0.04, mark, ha="right", va="top", fontsize=_FS + 1,
                fontweight="bold", color=_FLAG, family=_FONT, zorder=4)


def _arrow(ax, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=9, linewidth=0.9,
                                 color="black", shrinkA=0, shrinkB=0, zorder=1))


def flow_diagram(prisma: Prisma | str | Path, checks: pd.DataFrame | None = None) -> Figure:
    """Draw the PRISMA 2020 flow diagram.

    Layout follows the PRISMA 2020 template for new reviews with searches of
    databases, registers and other sources: phase bands (Identification,
    Screening, Included) on the left, the databases-and-registers route with its
    exclusion boxes, and the other-methods route on the right (omitted when
    ``identification.other_methods`` is ``{}``). Unknown counts read
    "n = unknown (not reported)" in italics. Boxes involved in a flagged check
    get a dashed dark-red edge and a numbered dagger, explained in a footnote.

    Parameters
    ----------
    prisma : Prisma or path-like
        A loaded flow, or the path of ``prisma.yaml`` (or its folder).
    checks : pandas.DataFrame, optional
        Output of :func:`check_arithmetic`; computed when omitted.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not isinstance(prisma, Prisma):
        prisma = load_prisma(prisma)
    if checks is None:
        checks = check_arithmetic(prisma)
    boxes = _build_boxes(prisma)
    other = _has_other(prisma)

    # Columns (inches): phase band, main, side | other main, other side.
    phase_x, phase_w = 0.12, 0.32
    col_w = 2.3
    xa = phase_x + phase_w + 0.18
    xb = xa + col_w + 0.35
    xc = xb + col_w + 0.45
    xd = xc + col_w + 0.35
    width = (xd + col_w + 0.12) if other else (xb + col_w + 0.12)
    for k in ("identified", "screened", "sought", "assessed", "included", "syntheses"):
        if k in boxes:
            boxes[k].x = xa
    for k in ("removed", "records_excluded", "not_retrieved", "reports_excluded"):
        boxes[k].x = xb
    for k in ("other_identified", "other_sought", "other_assessed"):
        if k in boxes:
            boxes[k].x = xc
    for k in ("other_not_retrieved", "other_excluded"):
        if k in boxes:
            boxes[k].x = xd
    for bx in boxes.values():
        bx.w = col_w

    rows = [["identified", "removed", "other_identified"], ["screened", "records_excluded"],
            ["sought", "not_retrieved", "other_sought", "other_not_retrieved"],
            ["assessed", "reports_excluded", "other_assessed", "other_excluded"], ["included"], ["syntheses"]]
    rows = [[k for k in r if k in boxes] for r in rows]
    rows = [r for r in rows if r]
    gap = 0.32
    heights = [max(boxes[k].h for k in r) for r in rows]

    # Footnotes
    flagged = checks[checks["status"] == "flag"].reset_index(drop=True)
    n_ok = int((checks["status"] == "ok").sum())
    n_nc = int((checks["status"] == "not checkable").sum())
    foot: list[tuple[str, str]] = []
    for k, row in flagged.iterrows():
        foot.append((f"†{k + 1} {row['description']}: {row['relation']}. Counts are shown as reported, "
                     "not corrected.", "flag"))
    tail = f", {n_nc} not checkable because a count is unknown." if n_nc else "."
    foot.append((f"Arithmetic checks: {len(flagged)} flagged, {n_ok} consistent{tail}", "plain"))
    if any(style in ("unknown", "item_unknown") for bx in boxes.values() for _, style in bx.lines):
        foot.append((f"{UNKNOWN_TEXT}: the source does not report this count.", "plain"))
    if prisma.source:
        foot.append((f"Source: {prisma.source}", "plain"))
    foot_lines = [(piece, style) for text, style in foot for piece in _wrap(text, width - 0.3, _FS - 0.5)]
    foot_h = len(foot_lines) * _LINE + 0.2

    title_h = 0.4 if prisma.title else 0.0
    head_h = 0.34
    height = title_h + head_h + 0.25 + sum(heights) + gap * (len(rows) - 1) + 0.2 + foot_h
    fig, ax = _inch_canvas(width, height)

    y = height - title_h
    if prisma.title:
        ax.text(width / 2, height - 0.22, prisma.title, ha="center", va="center", fontsize=11,
                fontweight="bold", family=_FONT)
    # Route headers
    hdrs = [(xa, xb + col_w - xa, "Identification of studies via databases and registers", _HEAD_LEFT)]
    if other:
        hdrs.append((xc, xd + col_w - xc, "Identification of studies via other methods", _HEAD_RIGHT))
    for x, w, text, fill in hdrs:
        ax.add_patch(FancyBboxPatch((x, y - head_h), w, head_h, boxstyle="round,pad=0,rounding_size=0.06",
                                    facecolor=fill, edgecolor="none", zorder=2))
        ax.text(x + w / 2, y - head_h / 2, text, ha="center", va="center", fontsize=_FS + 1,
                fontweight="bold", family=_FONT, zorder=3)
    y -= head_h + 0.25
    row_top = []
    for r, h in zip(rows, heights):
        row_top.append(y)
        for k in r:
            boxes[k].y = y - h / 2
        y -= h + gap

    # Phase bands
    def band(label: str, keys: list[str]) -> None:
        idx = [i for i, r in enumerate(rows) if any(k in r for k in keys)]
        if not idx:
            return
        top = row_top[idx[0]]
        bottom = row_top[idx[-1]] - heights[idx[-1]]
        ax.add_patch(FancyBboxPatch((phase_x, bottom), phase_w, top - bottom,
                                    boxstyle="round,pad=0,rounding_size=0.06", facecolor=_PHASE,
                                    edgecolor="none", zorder=2))
        ax.text(phase_x + phase_w / 2, (top + bottom) / 2, label, rotation=90, ha="center", va="center",
                fontsize=_FS + 1, fontweight="bold", family=_FONT, zorder=3)

    band("Identification", ["identified"])
    band("Screening", ["screened", "sought", "assessed"])
    band("Included", ["included", "syntheses"])

    # Arrows: main column down, side boxes to the right.
    def down(a: str, c: str) -> None:
        if a in boxes and c in boxes:
            x = boxes[a].x + col_w / 2
            _arrow(ax, (x, boxes[a].bottom), (x, boxes[c].top))

    def right(a: str, c: str) -> None:
        if a in boxes and c in boxes:
            _arrow(ax, (boxes[a].x + col_w, boxes[a].y), (boxes[c].x, boxes[a].y))

    for a, c in (("identified", "screened"), ("screened", "sought"), ("sought", "assessed"),
                 ("assessed", "included"), ("included", "syntheses"),
                 ("other_identified", "other_sought"), ("other_sought", "other_assessed")):
        down(a, c)
    for a, c in (("identified", "removed"), ("screened", "records_excluded"), ("sought", "not_retrieved"),
                 ("assessed", "reports_excluded"), ("other_sought", "other_not_retrieved"),
                 ("other_assessed", "other_excluded")):
        right(a, c)
    if other:
        # The other route joins the main arrow into "included", as in the template.
        xo = boxes["other_assessed"].x + col_w / 2
        xm = boxes["assessed"].x + col_w / 2
        r = next(i for i, row in enumerate(rows) if "assessed" in row)
        ymid = (row_top[r] - heights[r] + boxes["included"].top) / 2  # below every box of that row
        ax.plot([xo, xo, xm], [boxes["other_assessed"].bottom, ymid, ymid], color="black", lw=0.9, zorder=1)

    # Boxes, with flags
    flag_of: dict[str, list[int]] = {}
    for k, row in flagged.iterrows():
        for key in str(row["boxes"]).split(","):
            if key in boxes:
                flag_of.setdefault(key, []).append(k + 1)
    for key, bx in boxes.items():
        _draw_box(ax, bx, flag_of.get(key, []))

    # Footnotes
    fy = row_top[-1] - heights[-1] - 0.3
    for text, style in foot_lines:
        ax.text(0.15, fy, text, ha="left", va="top", fontsize=_FS - 0.5, family=_FONT,
                color=_FLAG if style == "flag" else "black", fontweight="bold" if style == "flag" else "normal")
        fy -= _LINE
    fig.set_label("prisma_flow")
    return fig
