"""Unit tests of hwsim._yaml: limits, line numbers, duplicate keys, file checks and ``--set`` scalars."""

from __future__ import annotations

import math
import os

import pytest

from hwsim import _yaml
from hwsim._yaml import YAMLInputError, did_you_mean, load_file, loads, parse_scalar, read_text


def test_plain_document_parses():
    assert loads("a: 1\nb: [2, 3]\nc: {d: x}\n") == {"a": 1, "b": [2, 3], "c": {"d": "x"}}


def test_empty_document_is_none():
    assert loads("") is None
    assert loads("# only a comment\n") is None


def test_error_is_a_value_error_with_file_and_problem():
    with pytest.raises(ValueError) as ei:
        loads("a: [1\n", file="f.yaml")
    e = ei.value
    assert isinstance(e, YAMLInputError)
    assert e.file == "f.yaml"
    assert str(e) == f"f.yaml: {e.problem}"
    assert "not valid YAML" in e.problem


def test_error_without_file_is_just_the_problem():
    e = YAMLInputError("broken")
    assert str(e) == "broken" and e.file == ""


def test_duplicate_key_names_key_and_line():
    with pytest.raises(YAMLInputError) as ei:
        loads("a: 1\nb: 2\nc: 3\nb: 4\n", file="d.yaml")
    msg = str(ei.value)
    assert "duplicate key 'b'" in msg
    assert "line 4" in msg
    assert msg.startswith("d.yaml: ")


def test_duplicate_key_in_nested_mapping():
    with pytest.raises(YAMLInputError, match="duplicate key 'x'"):
        loads("top:\n  x: 1\n  x: 2\n")


def test_same_key_in_different_mappings_is_fine():
    assert loads("a: {x: 1}\nb: {x: 2}\n") == {"a": {"x": 1}, "b": {"x": 2}}


def test_duplicate_integer_key():
    with pytest.raises(YAMLInputError, match="duplicate key 8"):
        loads("{8: 0.1, 8: 0.2}")


def test_unhashable_key_is_reported_as_invalid_yaml():
    with pytest.raises(YAMLInputError, match="not valid YAML"):
        loads("? [1, 2]\n: 3\n")


def test_python_tags_refused():
    with pytest.raises(YAMLInputError, match="not valid YAML"):
        loads("!!python/object/apply:os.system ['true']\n")


def _nested(n):
    return "[" * n + "]" * n


def test_depth_at_limit_ok_and_one_over_refused():
    assert loads(_nested(_yaml.MAX_DEPTH)) is not None
    with pytest.raises(YAMLInputError) as ei:
        loads(_nested(_yaml.MAX_DEPTH + 1), file="n.yaml")
    assert f"limit {_yaml.MAX_DEPTH}" in str(ei.value)
    assert "nested more than" in str(ei.value)
    assert "line 1" in str(ei.value)
    assert "once aliases" not in str(ei.value)  # caught while composing, before any expansion


def test_very_deep_nesting_is_a_limit_not_a_recursion_error():
    with pytest.raises(YAMLInputError, match=f"nested more than {_yaml.MAX_DEPTH} levels deep; limit"):
        loads("a: " + _nested(5000))


def test_depth_error_names_the_line():
    text = "a: 1\nb: 2\nc: " + _nested(_yaml.MAX_DEPTH + 3) + "\n"
    with pytest.raises(YAMLInputError, match="line 3: nested more than"):
        loads(text)


def test_depth_through_aliases_is_counted():
    # each level is an alias to the previous anchor: the composed depth stays small,
    # but expanded it exceeds MAX_DEPTH
    lines = ["l0: &a0 [1]"]
    for i in range(1, _yaml.MAX_DEPTH + 2):
        lines.append(f"l{i}: &a{i} [*a{i - 1}]")
    with pytest.raises(YAMLInputError, match="once aliases are expanded"):
        loads("\n".join(lines) + "\n")


def test_shallow_alias_chain_ok():
    assert loads("a: &x [1, 2]\nb: *x\nc: *x\n") == {"a": [1, 2], "b": [1, 2], "c": [1, 2]}


def _bomb(levels, width=9):
    lines = ["a0: &a0 [" + ", ".join(["x"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_refused_with_node_limit():
    with pytest.raises(YAMLInputError) as ei:
        loads(_bomb(7), file="bomb.yaml")
    msg = str(ei.value)
    assert "alias bomb" in msg and f"{_yaml.MAX_NODES:,}" in msg
    assert msg.startswith("bomb.yaml: line ")


def test_small_bomb_under_node_limit_ok():
    # 9^4 leaves: well under MAX_NODES
    data = loads(_bomb(4))
    assert len(data["a3"]) == 9 and data["a3"][0][0][0] == ["x"] * 9


def test_node_limit_is_the_configured_value(monkeypatch):
    monkeypatch.setattr(_yaml, "MAX_NODES", 50)
    assert loads("[" + ", ".join(["1"] * 40) + "]") == [1] * 40
    with pytest.raises(YAMLInputError, match="limit 50"):
        loads("[" + ", ".join(["1"] * 60) + "]")


def test_alias_count_limit(monkeypatch):
    monkeypatch.setattr(_yaml, "MAX_ALIASES", 3)
    assert loads("a: &x 1\nb: [*x, *x, *x]\n") == {"a": 1, "b": [1, 1, 1]}
    with pytest.raises(YAMLInputError, match="more than 3 aliases"):
        loads("a: &x 1\nb: [*x, *x, *x, *x]\n")


def test_text_size_limit(monkeypatch):
    monkeypatch.setattr(_yaml, "MAX_BYTES", 20)
    assert loads("a: 1") == {"a": 1}
    with pytest.raises(YAMLInputError, match="more than the limit of 20"):
        loads("a: " + "x" * 30)


def test_did_you_mean():
    assert did_you_mean("pe_aray", ["pe_array", "clock_ghz"]) == " (did you mean 'pe_array'?)"
    assert did_you_mean("zzz", ["pe_array", "clock_ghz"]) == ""
    assert did_you_mean(8, [16, 18]) == " (did you mean '18'?)"


# ---- read_text / load_file ----

def test_load_file_roundtrip(tmp_path):
    p = tmp_path / "ok.yaml"
    p.write_text("x: [1, 2]\n")
    assert load_file(p) == {"x": [1, 2]}


def test_load_file_error_names_path(tmp_path):
    p = tmp_path / "dup.yaml"
    p.write_text("x: 1\nx: 2\n")
    with pytest.raises(YAMLInputError) as ei:
        load_file(p)
    assert ei.value.file == str(p)
    assert "duplicate key 'x'" in ei.value.problem and "line 2" in ei.value.problem


def test_missing_file(tmp_path):
    with pytest.raises(YAMLInputError, match="no such sweep file") as ei:
        read_text(tmp_path / "nope.yaml", what="sweep file")
    assert ei.value.file.endswith("nope.yaml")


def test_directory_refused(tmp_path):
    d = tmp_path / "adir.yaml"
    d.mkdir()
    with pytest.raises(YAMLInputError, match="is a directory; give a arch file"):
        read_text(d, what="arch file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_fifo_refused_without_blocking(tmp_path):
    f = tmp_path / "fifo.yaml"
    os.mkfifo(f)
    with pytest.raises(YAMLInputError, match="not a regular file"):
        read_text(f)


def test_file_size_limit(tmp_path):
    p = tmp_path / "big.yaml"
    p.write_bytes(b"a: 1\n" + b"#" * 100)
    assert read_text(p, limit=200).startswith("a: 1")
    with pytest.raises(YAMLInputError, match="105 bytes, more than the limit of 50 for a file"):
        read_text(p, limit=50)


def test_file_exactly_at_limit_ok(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_bytes(b"a: 1\n")
    assert read_text(p, limit=5) == "a: 1\n"


def test_not_utf8_names_byte_and_offset(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_bytes(b"a: caf\xe9\n")
    with pytest.raises(YAMLInputError, match=r"byte 0xe9 at offset 6"):
        read_text(p)


# ---- parse_scalar ----

@pytest.mark.parametrize("text,value", [
    ("16", 16), ("0.5", 0.5), ("none", "none"), ("null", None), ("true", True),
    ("[2, 4]", [2, 4]), ("{8: 0.2}", {8: 0.2}), ("scnn", "scnn"),
])
def test_parse_scalar_values(text, value):
    assert parse_scalar(text) == value


def test_parse_scalar_inf():
    assert parse_scalar(".inf") == math.inf


@pytest.mark.parametrize("text,kind", [("!!str 5", "tag"), ("&a 5", "anchor"), ("*a", "alias")])
def test_parse_scalar_refuses_tags_anchors_aliases(text, kind):
    with pytest.raises(YAMLInputError) as ei:
        parse_scalar(text, flag="--set x")
    assert ei.value.file == "--set x"
    assert f"uses a YAML {kind}" in ei.value.problem
    assert repr(text) in ei.value.problem


def test_parse_scalar_invalid_yaml_names_value():
    with pytest.raises(YAMLInputError) as ei:
        parse_scalar("[1, 2")
    assert ei.value.file == "--set"
    assert "'[1, 2'" in ei.value.problem and "not valid YAML" in ei.value.problem


def test_parse_scalar_duplicate_key_names_value():
    with pytest.raises(YAMLInputError) as ei:
        parse_scalar("{a: 1, a: 2}")
    assert ei.value.problem.startswith("value '{a: 1, a: 2}': ")
    assert "duplicate key 'a'" in ei.value.problem
