"""YAML with control characters is refused in one line naming file, line and column (issue 20, item 5)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hwsim._yaml import YAMLInputError, loads
from hwsim.sweep.spec import load_sweep


def _hwsim(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "hwsim", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


def _one_line_error(r: subprocess.CompletedProcess, command: str) -> str:
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"hwsim {command}: error: "), r.stderr
    return lines[0]


@pytest.mark.parametrize("char,code", [("\x00", "U+0000"), ("\x01", "U+0001"), ("\x1b", "U+001B"), ("\x7f", "U+007F")])
def test_validate_refuses_a_control_character_naming_file_line_and_column(tmp_path, char, code):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"version: 1\nname: \"sc{char}nn\"\n", encoding="utf-8")
    line = _one_line_error(_hwsim("validate", str(bad), cwd=tmp_path), "validate")
    assert f"{bad}: line 2, column 10: control character {code}" in line


def test_set_value_with_a_control_character_is_one_line(tmp_path):
    r = _hwsim("validate", "scnn", "--set", "name=sc\x01nn", cwd=tmp_path)
    line = _one_line_error(r, "validate")
    assert "--set name: value 'sc\\x01nn': line 1, column 3: control character U+0001" in line


def test_sweep_file_and_every_reader_refuse_control_characters(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("version: 1\nbase_arch: scnn\n\x01grid: {}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{sweep}: line 3, column 1: control character U\+0001"):
        load_sweep(sweep)
    with pytest.raises(YAMLInputError, match=r"<string>: line 1, column 4: control character U\+0000"):
        loads("a: \x00")
    assert loads("a: 'tab\tok'\n") == {"a": "tab\tok"}  # tab and newline stay allowed

