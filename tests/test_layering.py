"""Imports flow one way: the simulator never needs torch or matplotlib; reports never need the simulator."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest


def _modules_after_import(*mods: str) -> set[str]:
    code = "import sys\n" + "".join(f"import {m}\n" for m in mods) + "print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_sim_arch_results_and_trace_do_not_import_torch_or_matplotlib():
    loaded = _modules_after_import("hwsim.sim", "hwsim.arch", "hwsim.results", "hwsim.trace",
                                   "hwsim.trace.format", "hwsim.trace.schema", "hwsim.trace.synth",
                                   "hwsim.trace.topology", "hwsim.trace.writer", "hwsim.breakdown")
    assert "hwsim.sim" in loaded
    assert not {m for m in loaded if m == "torch" or m.startswith("torch.")}
    assert not {m for m in loaded if m == "matplotlib" or m.startswith("matplotlib.")}


def test_report_does_not_import_sim_or_torch():
    loaded = _modules_after_import("hwsim.report")
    assert "hwsim.report" in loaded
    assert not {m for m in loaded if m.startswith("hwsim.sim")}
    assert "torch" not in loaded


def test_cli_help_does_not_import_torch():
    """``hwsim --help`` and every ``hwsim COMMAND --help`` import every command module, never torch."""
    code = ("import sys\n"
            "from hwsim.cli import COMMANDS, build_parser, main\n"
            "build_parser()\n"
            "for argv in [['--help']] + [[c, '--help'] for c in COMMANDS]:\n"
            "    try:\n"
            "        main(argv)\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print('MODULES', ' '.join(sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    loaded = set(out.stdout.rsplit("MODULES", 1)[1].split())
    from hwsim.cli import COMMANDS

    missing = {f"hwsim.commands.{c}" for c in COMMANDS} - loaded
    assert not missing, f"the parser did not import {missing}: the check below would not cover them"
    torchy = sorted(m for m in loaded if m == "torch" or m.startswith("torch."))
    assert not torchy, f"--help imported torch ({torchy[:3]}...)"


@pytest.mark.skipif(shutil.which("lint-imports") is None, reason="import-linter is a dev extra")
def test_import_linter_contracts_hold():
    out = subprocess.run(["lint-imports"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_capture_package_is_also_the_capture_function():
    """``hwsim.capture(model, ...)`` keeps working after ``import hwsim.capture.session`` binds the package."""
    code = ("import hwsim, hwsim.capture.session, torch\n"
            "m = torch.nn.Linear(3, 2)\n"
            "with hwsim.capture(m, method='none') as cap:\n"
            "    m(torch.ones(4, 3)).sum().backward(); cap.step()\n"
            "print(type(cap).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Capture"
