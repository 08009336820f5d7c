"""The `hwsim` command as a user meets it: help, version, every sub-command's --help."""

from __future__ import annotations

import subprocess
import sys

from hwsim.cli import COMMANDS, build_parser


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwsim", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_command():
    out = run("--help")
    assert out.returncode == 0
    for name in COMMANDS:
        assert name in out.stdout


def test_every_command_is_registered_and_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS), "a sub-command module is missing"
    for name in COMMANDS:
        out = run(name, "--help")
        assert out.returncode == 0, out.stderr
        assert "usage: hwsim " + name in out.stdout


def test_no_command_prints_help_and_fails():
    out = run()
    assert out.returncode == 2
    assert "usage" in out.stdout


def test_version():
    out = run("--version")
    assert out.returncode == 0 and "hwsim" in out.stdout


def test_a_reader_that_goes_away_ends_the_command_quietly():
    """`hwsim validate scnn | head -0`: stdout's reader is gone before hwsim writes; no "Broken pipe" error, no
    traceback at exit, the exit code a SIGPIPE'd Unix tool has (128 + 13)."""
    import os

    r, w = os.pipe()
    os.close(r)  # the reader has gone before the first write
    try:
        out = subprocess.run([sys.executable, "-m", "hwsim", "validate", "scnn"], stdout=w, stderr=subprocess.PIPE,
                             text=True, timeout=120)
    finally:
        os.close(w)
    assert out.stderr == ""
    assert out.returncode == 141


def test_help_names_the_environment_switches_and_their_values():
    """The compiled kernels' switches are documented where a user looks (hwsim --help, trace, simulate), with the
    values the code accepts (hwsim.capture.quant.QUANT_PATHS, hwsim.sim.banks.SIM_KERNELS)."""
    from hwsim.capture.quant import QUANT_PATH_ENV, QUANT_PATHS
    from hwsim.sim.banks import SIM_KERNEL_ENV, SIM_KERNELS

    quant, sim = f"{QUANT_PATH_ENV}={'|'.join(QUANT_PATHS)}", f"{SIM_KERNEL_ENV}={'|'.join(SIM_KERNELS)}"
    top = "".join(run("--help").stdout.split())  # argparse wraps lines anywhere: compare without whitespace
    assert quant in top and sim in top
    assert quant in "".join(run("trace", "--help").stdout.split())
    assert sim in "".join(run("simulate", "--help").stdout.split())


def test_inspect_help_explains_every_column_it_prints():
    """The noise columns (noise, growth, compound) and the dither stream in the header are explained in --help."""
    text = " ".join(run("inspect", "--help").stdout.split())
    for word in ("noise =", "growth =", "compound =", "dither stream"):
        assert word in text, word


def test_a_bad_kernel_switch_stops_any_command_at_once_in_one_line(tmp_path):
    import os

    for var, bad, allowed in (("HWSIM_QUANT_PATH", "gpu", "auto, numpy, torch"), ("HWSIM_SIM_KERNEL", "fast", "auto, numpy")):
        env = {**os.environ, var: bad}
        out = subprocess.run([sys.executable, "-m", "hwsim", "demo", "--quick", "--out", str(tmp_path / "d")],
                             capture_output=True, text=True, timeout=120, env=env)
        assert out.returncode == 2
        assert out.stderr == (f"hwsim demo: error: environment variable {var}={bad!r} is not allowed; "
                              f"use one of: {allowed}\n")
        assert not (tmp_path / "d").exists()                                 # stopped before anything was written
    out = subprocess.run([sys.executable, "-m", "hwsim", "--help"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "HWSIM_SIM_KERNEL": "fast"})
    assert out.returncode == 0                                               # help still works
