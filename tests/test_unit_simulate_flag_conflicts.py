"""``hwsim simulate`` flags that contradict each other (hwsim/commands/simulate.py), refused in-process before
anything is simulated or written: exit code 2, one line naming the flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwsim.cli import main

TRACE = str(Path(__file__).resolve().parents[1] / "traces" / "samples" / "lenet5-digits-dither")


@pytest.mark.parametrize("flags,message", [
    (["--iteration", "0", "--jobs", "2"], "--jobs/--scheduler/--cache: only with --iterations (one iteration runs "
                                          "in-process)"),
    (["--iteration", "0", "--cache", "c"], "--jobs/--scheduler/--cache: only with --iterations"),
    (["--inference", "--scheduler", "tcp://x:1"], "--jobs/--scheduler/--cache: only with --iterations"),
    (["--iterations", "all", "--inference"], "--inference: a whole-run replay (--iterations) replays training "
                                             "iterations; drop one of them"),
    (["--iterations", "all", "--iteration", "0"], "--iteration and --iterations: give one of them"),
])
def test_contradicting_flags_are_refused_before_simulating(tmp_path, capsys, flags, message):
    out = tmp_path / "r.json"
    assert main(["simulate", TRACE, "--arch", "scnn", "--quiet", *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"hwsim simulate: error: {message}") and "\n" not in err
    assert not out.exists() and not (tmp_path / "c").exists()
