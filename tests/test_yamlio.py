"""The bounded YAML reader: every refusal names the file and line."""

from __future__ import annotations

import pytest

from painmeta.errors import InputError
from painmeta.yamlio import MAX_DEPTH, load_yaml, loads_yaml


def _write(tmp_path, text, name="x.yaml"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_plain_file_with_key_lines(tmp_path):
    doc = load_yaml(_write(tmp_path, "# comment\na: 1\nb:\n  c: [1, 2]\n  d:\n    - e: x\n"))
    assert doc.data == {"a": 1, "b": {"c": [1, 2], "d": [{"e": "x"}]}}
    assert doc.lines[("a",)] == 2 and doc.lines[("b", "c")] == 4 and doc.lines[("b", "d", 0, "e")] == 6
    assert doc.line_of(("b", "d", 0, "e", "nonexistent")) == 6


def test_empty_file_is_none(tmp_path):
    assert load_yaml(_write(tmp_path, "")).data is None


@pytest.mark.parametrize("text, line, what", [
    ("a: &x 1\nb: *x\n", 1, "anchor '&x'"),
    ("a: 1\nb: *x\n", 2, "alias"),  # an undefined alias is a syntax error, still located
    ("base: &b {k: 1}\nother:\n  <<: *b\n", 1, "anchor '&b'"),
])
def test_anchors_and_aliases_are_refused(tmp_path, text, line, what):
    with pytest.raises(InputError) as info:
        load_yaml(_write(tmp_path, text))
    assert f"x.yaml, line {line}" in str(info.value) and what in str(info.value)


def test_duplicate_keys_name_both_lines(tmp_path):
    with pytest.raises(InputError) as info:
        load_yaml(_write(tmp_path, "a: 1\nb:\n  c: 1\n  c: 2\na: 3\n"))
    msg = str(info.value)
    assert "2 problems found" in msg
    assert "line 4, key 'b.c': duplicate key: already given on line 3" in msg
    assert "line 5, key 'a': duplicate key: already given on line 1" in msg
    doc = load_yaml(_write(tmp_path, "a: 1\na: 2\n"), duplicates="collect")
    assert doc.data == {"a": 2} and len(doc.duplicates) == 1 and doc.duplicates[0].line == 2


def test_deep_nesting_is_refused(tmp_path):
    text = "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5)
    with pytest.raises(InputError, match="nested more than"):
        load_yaml(_write(tmp_path, text))
    very_deep = "[" * 200_000  # would overflow PyYAML's recursion
    with pytest.raises(InputError, match="x.yaml"):
        load_yaml(_write(tmp_path, very_deep))


def test_size_cap(tmp_path):
    path = _write(tmp_path, "a: " + "x" * 100 + "\n")
    with pytest.raises(InputError, match="104 bytes, more than the 50 "):
        load_yaml(path, max_bytes=50)


def test_bad_encoding_is_a_file_level_message(tmp_path):
    with pytest.raises(InputError) as info:
        load_yaml(_write(tmp_path, "title: ok\nname: caf\xe9\n".encode("latin-1")))
    assert "x.yaml, line 2: file is not UTF-8 (byte 0xe9)" in str(info.value)


def test_values_python_cannot_build_are_refused(tmp_path):
    with pytest.raises(InputError, match="x.yaml"):
        load_yaml(_write(tmp_path, "n: " + "9" * 5000 + "\n"))  # beyond Python's int-from-text limit
    with pytest.raises(InputError, match="x.yaml"):
        load_yaml(_write(tmp_path, "a: !!python/object:os.system {}\n"))
    with pytest.raises(InputError, match="x.yaml, line 2"):
        load_yaml(_write(tmp_path, "a: 1\n b: 2\n"))


def test_loads_yaml_names_its_source():
    with pytest.raises(InputError, match="<override>"):
        loads_yaml("a: &x 1", "<override>")
