"""Bounded YAML reading: the one loader for every YAML file a dataset holds.

``dataset.yaml``, ``prisma.yaml`` and ``reported.yaml`` are user input, so they
are read as hostile: PyYAML's ``safe_load`` still expands aliases (a
"billion laughs" file of a few hundred bytes grows to gigabytes), keeps the
last of two equal keys silently, recurses without limit on deep nesting and
raises ``UnicodeDecodeError`` on a file that is not UTF-8. :func:`load_yaml`

- refuses files larger than a cap before reading them;
- decodes UTF-8 itself, so a bad byte gets a file-and-line message;
- refuses anchors and aliases (``&name`` / ``*name``; none of the project's
  files needs them) and nesting deeper than a bound;
- reports every duplicate key with both lines;
- records the line of every key, so validation errors can point at the line.

Every refusal is an :class:`painmeta.errors.InputError` whose ``problems`` are
:class:`painmeta.schemas.Problem` objects (file, line, key, value, fix), the
same shape the CSV tables report in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from painmeta.errors import InputError
from painmeta.schemas import Problem

#: Largest YAML file read (bytes). The project's biggest (a reported.yaml with
#: cluster tables) is a few kB; a megabyte leaves room for any honest file.
MAX_BYTES = 1_000_000
#: Deepest nesting of mappings/lists accepted (the schemas need 5).
MAX_DEPTH = 32

Location = tuple[Any, ...]


@dataclass
class YamlDocument:
    """A YAML file read by :func:`load_yaml`.

    Attributes
    ----------
    path : pathlib.Path
        The file.
    data : object
        The parsed content (None for an empty file).
    lines : dict
        Key path (tuple of mapping keys and list indices) -> 1-based line.
    duplicates : list of Problem
        Repeated keys (only when read with ``duplicates="collect"``; the data
        then holds the last value, as PyYAML does).
    """

    path: Path
    data: Any
    lines: dict[Location, int] = field(default_factory=dict)
    duplicates: list[Problem] = field(default_factory=list)

    def line_of(self, loc: Location) -> int | None:
        """Line of the deepest part of ``loc`` the file has (None if none)."""
        loc = tuple(loc)
        for k in range(len(loc), 0, -1):
            if loc[:k] in self.lines:
                return self.lines[loc[:k]]
        return None


class _Refused(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors, aliases and deep nesting while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):  # noqa: D401 - PyYAML hook
        event = self.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(line, f"alias '*{event.anchor}' is not allowed (anchors and aliases are refused "
                                 "so that a small file cannot expand without bound); write the value out")
        if getattr(event, "anchor", None) is not None:
            raise _Refused(line, f"anchor '&{event.anchor}' is not allowed (anchors and aliases are refused); "
                                 "write every value out where it is used")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(line, f"nested more than {MAX_DEPTH} levels deep; no dataset file needs that")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _key_text(node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return node.value
    return f"<{node.id}>"


def _walk(node: yaml.Node, loc: Location, lines: dict[Location, int], dups: list[tuple[Location, int, int]]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[tuple[str, Any], int] = {}
        for key_node, value_node in node.value:
            key = _key_text(key_node)
            line = key_node.start_mark.line + 1
            ident = (key_node.tag, key)
            if ident in seen:
                dups.append((loc + (key,), seen[ident], line))
            else:
                seen[ident] = line
            lines.setdefault(loc + (key,), line)
            _walk(value_node, loc + (key,), lines, dups)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[loc + (i,)] = item.start_mark.line + 1
            _walk(item, loc + (i,), lines, dups)


def _fail(path: Path, line: int | None, key: str | None, message: str) -> InputError:
    problem = Problem(str(path), line, key, "", message)
    return InputError(str(problem), [problem])


def loads_yaml(text: str, path: Path | str = "<string>", duplicates: str = "raise") -> YamlDocument:
    """Parse YAML text with the same bounds as :func:`load_yaml`.

    Parameters
    ----------
    text : str
        The YAML text.
    path : path-like
        Name used in messages.
    duplicates : {"raise", "collect"}
        Raise on repeated keys, or return them in ``YamlDocument.duplicates``
        so that the caller reports them with its other problems.

    Returns
    -------
    YamlDocument

    Raises
    ------
    InputError
        Syntax errors, anchors/aliases, too deep nesting, duplicate keys,
        values PyYAML cannot build (each with file and line).
    """
    path = Path(path)
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return YamlDocument(path, None, {})
        lines: dict[Location, int] = {}
        dups: list[tuple[Location, int, int]] = []
        _walk(node, (), lines, dups)
        problems = [Problem(str(path), second, ".".join(map(str, loc)), "",
                            f"duplicate key: already given on line {first}; keep one of the two",
                            label="key")
                    for loc, first, second in dups]
        if problems and duplicates != "collect":
            head = f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found:"
            raise InputError("\n".join([head, *(f"  - {p}" for p in problems)]), problems)
        data = loader.construct_document(node)
    except _Refused as exc:
        raise _fail(path, exc.line, None, exc.message) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = exc.problem or exc.context or "syntax error"
        raise _fail(path, line, None, f"not valid YAML ({what}); check indentation, colons and quotes") from None
    except yaml.YAMLError as exc:
        raise _fail(path, None, None, f"not valid YAML ({exc}); check indentation, colons and quotes") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # e.g. an integer with more digits than Python converts, an unhashable key.
        raise _fail(path, None, None, f"a value cannot be read ({type(exc).__name__}: {exc}); "
                                      "write plain numbers and text") from None
    finally:
        loader.dispose()
    return YamlDocument(path, data, lines, problems)


def load_yaml(path: Path | str, max_bytes: int = MAX_BYTES, duplicates: str = "raise") -> YamlDocument:
    """Read a YAML file with bounds (size, no aliases, depth, duplicate keys, encoding).

    Parameters
    ----------
    path : path-like
        The file.
    max_bytes : int
        Largest size accepted.
    duplicates : {"raise", "collect"}
        See :func:`loads_yaml`.

    Returns
    -------
    YamlDocument

    Raises
    ------
    InputError
        The file is missing, too large, not UTF-8, not valid YAML, uses
        anchors/aliases, nests too deeply or repeats a key. The message names
        the file and the line and says how to fix it.
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, None, None, "file not found")
    size = path.stat().st_size
    if size > max_bytes:
        raise _fail(path, None, None, f"file is {size:,} bytes, more than the {max_bytes:,} a dataset YAML file may "
                                      "have; is it the right file?")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _fail(path, line, None, f"file is not UTF-8 (byte {raw[exc.start]:#x}); re-save it as UTF-8 "
                                      "in your editor") from None
    return loads_yaml(text, path, duplicates=duplicates)


def validation_problems(doc: YamlDocument, exc: Any, hints: dict[str, str] | None = None,
                        overrides: dict | None = None) -> list[Problem]:
    """Turn a pydantic ``ValidationError`` into problems located in the YAML file.

    Parameters
    ----------
    doc : YamlDocument
        The file the data came from.
    exc : pydantic.ValidationError
    hints : dict, optional
        Error type -> how to fix it.
    overrides : dict, optional
        Values that replaced the file's (Papermill ``config_overrides``); an
        error inside them is said to be in the override, not in the file.

    Returns
    -------
    list of Problem
    """
    hints = hints or {}
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"])
        key = ".".join(str(p) for p in loc if p != "[key]") or "(top level)"
        hint = hints.get(err["type"], "")
        msg = err["msg"] + (f"; {hint}" if hint else "")
        value = err.get("input")
        shown = "" if err["type"] == "missing" or isinstance(value, (dict, list)) else str(value)[:80]
        if overrides is not None and _in(overrides, loc):
            problems.append(Problem("config_overrides", None, key, shown,
                                    msg + " (this value comes from config_overrides / --params, "
                                          "not from the file)", label="key"))
        else:
            problems.append(Problem(str(doc.path), doc.line_of(loc), key, shown, msg, label="key"))
    return problems


def _in(tree: Any, loc: Location) -> bool:
    """Whether ``loc`` (or a prefix of it that is a leaf) lies inside the nested dict ``tree``."""
    node = tree
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
        if not isinstance(node, dict):
            return True
    return True


__all__ = ["MAX_BYTES", "MAX_DEPTH", "YamlDocument", "load_yaml", "loads_yaml", "validation_problems"]
