"""The README's two set-up commands stay true: CI runs exactly its test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setup_block() -> list[str]:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"## Set-up.*?```bash\n(.*?)```", text, flags=re.S)
    assert m, "README has no '## Set-up' section with a bash block"
    return [ln.strip() for ln in m.group(1).splitlines() if ln.strip()]


def test_setup_is_two_commands_main_job_then_tests():
    lines = _setup_block()
    assert len(lines) == 2
    assert "hwsim demo" in lines[0] and "torch==2.13.0" in lines[0]
    assert "pytest" in lines[1]


def test_ci_runs_exactly_the_readme_test_command():
    test_cmd = _setup_block()[1]
    ci = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()
          if ln.strip() and not ln.strip().startswith("#")]
    assert ci[-1] == test_cmd
