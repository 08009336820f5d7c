"""The built wheel ships the architecture configs: installed into a fresh venv, outside the repo,
``hwsim validate scnn`` and a tiny ``hwsim simulate`` work (no network: --no-deps; the dependencies are those of
the interpreter running the tests, made visible by a ``.pth`` file — ``--system-site-packages`` would show the
*base* interpreter's packages, which a venv running the tests does not have)."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{p.stdout}\n{p.stderr}"
    return p


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_repo(tmp_path):
    src = tmp_path / "src"  # build from a copy: the build leaves build/ and *.egg-info behind
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "hwsim", src / "hwsim", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "arch_configs", src / "arch_configs", ignore=ignore)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
          str(src)], cwd=tmp_path, env=env)
    (wheel,) = wheels.glob("hwsim-*.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path, env=env)
    py = venv / "bin" / "python"
    purelib = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path,
                   env=env).stdout.strip()
    ours = dict.fromkeys([*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (Path(purelib) / "_test_deps.pth").write_text("".join(f"{d}\n" for d in ours if Path(d).is_dir()))
    _run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], cwd=tmp_path, env=env)
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run([str(py), "-c", "import hwsim, hwsim.arch as a; print(hwsim.__file__); print(a.ARCH_DIR); "
                  "print(' '.join(a.shipped_arch_names()))"], cwd=work, env=env).stdout.splitlines()
    assert where[0].startswith(str(venv)), f"hwsim imported from {where[0]}, not the installed wheel"
    assert where[1].startswith(str(venv)) and "scnn" in where[2].split() and "systolic32" in where[2].split()
    hw = venv / "bin" / "hwsim"
    out = _run([str(hw), "validate", "scnn"], cwd=work, env=env).stdout
    assert "scnn" in out
    _run([str(py), "-c", "from hwsim.trace.synth import synthesize; synthesize('t', layers=[{'name': 'fc', "
          "'kind': 'linear', 'C': 16, 'K': 8}], batch=2)"], cwd=work, env=env)
    _run([str(hw), "simulate", "t", "--arch", "scnn", "--out", "r.json"], cwd=work, env=env)
    res = (work / "r.json").read_text()
    assert '"provenance"' in res and "sweeps" not in where[1]
    sweep = Path(where[1]) / "sweeps" / "demo.yaml"
    assert sweep.is_file(), "the demo's sweep files are shipped too"
