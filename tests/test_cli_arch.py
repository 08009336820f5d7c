"""`hwsim validate` and `hwsim synth` as a user runs them (subprocess, exit codes, one-line errors)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hwsim.arch import ARCH_DIR
from hwsim.trace import load


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwsim", *args], capture_output=True, text=True, timeout=120)


def test_validate_shipped():
    out = run("validate", "scnn", str(ARCH_DIR / "systolic32.yaml"))
    assert out.returncode == 0, out.stderr
    assert "PEs           8×8 = 64" in out.stdout and "4×4 per PE, 1024 total, 8-bit" in out.stdout
    assert "systolic_ws (dense)" in out.stdout and "DRAM/64b    1300" in out.stdout


def test_validate_hash_and_override():
    a = run("validate", "--hash", "scnn").stdout.split()[0]
    b = run("validate", "--hash", "scnn", "--set", "pe.mac_bits=16").stdout.split()[0]
    c = run("validate", "--hash", "scnn16").stdout.split()[0]
    assert len(a) == 64 and a != b and b != c  # scnn16 also differs in its name


def test_validate_bad_file_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ARCH_DIR / "scnn.yaml").read_text().replace("rows: 8", "rows: 0"))
    out = run("validate", str(bad))
    assert out.returncode == 2
    assert f"{bad}: pe_array.rows: 0 is out of range; allowed: integer >= 1" in out.stderr
    assert "Traceback" not in out.stderr
    out = run("validate", "scnn", str(bad))  # the good one is still summarised
    assert out.returncode == 2 and "scnn (" in out.stdout


def test_validate_missing_file():
    out = run("validate", "no/such.yaml")
    assert out.returncode == 2 and "no/such.yaml: no such architecture file or name" in out.stderr


def test_synth_model(tmp_path):
    out = run("synth", "--model", "lenet5", "--w-density", "0.5", "--a-density", "0.4", "--dz-density", "0.2",
              "--per-layer-json", '{"fc1": {"w": 0.1}}', "--seed", "1", "--out", str(tmp_path / "t"))
    assert out.returncode == 0, out.stderr
    assert "lenet5, 5 layers" in out.stdout
    s = load(tmp_path / "t").sample()
    assert abs(s["fc1"].w_density - 0.1) < 0.02 and abs(s["conv2"].w_density - 0.5) < 0.05
    again = run("synth", "--model", "lenet5", "--out", str(tmp_path / "t"))
    assert again.returncode == 2 and "already exists" in again.stderr


def test_synth_scalesim_and_sweep(tmp_path):
    csv = ARCH_DIR / "topologies" / "resnet18_conv3.csv"
    out = run("synth", "--scalesim-csv", str(csv), "--out", str(tmp_path / "c3"))
    assert out.returncode == 0, out.stderr
    assert "Conv3_1b" in out.stdout
    out = run("synth", "--model", "lenet5", "--sweep", "1.0,0.3", "--out", str(tmp_path / "sw"))
    assert out.returncode == 0, out.stderr
    assert Path(tmp_path / "sw" / "d0.30" / "manifest.json").exists()


def test_synth_bad_input_exit_2(tmp_path):
    out = run("synth", "--model", "lenet5", "--per-layer-json", '{"conv9": {"w": 0.5}}', "--out", str(tmp_path / "x"))
    assert out.returncode == 2 and "unknown layer(s) ['conv9']; allowed: conv1" in out.stderr
    out = run("synth", "--model", "googlenet", "--out", str(tmp_path / "y"))
    assert out.returncode == 2 and "allowed: alexnet" in out.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("Layer, Rows, Cols, Depth\nL,1,2,3\n")
    out = run("synth", "--scalesim-csv", str(bad), "--out", str(tmp_path / "z"))
    assert out.returncode == 2 and "is not a SCALE-Sim topology; allowed:" in out.stderr
    gemm = tmp_path / "gemm.csv"  # SCALE-Sim's GEMM format is read (issue 21): M·N·K = 6 MACs
    gemm.write_text("Layer, M, N, K\nL,1,2,3\n")
    out = run("synth", "--scalesim-csv", str(gemm), "--out", str(tmp_path / "g"))
    assert out.returncode == 0, out.stderr
    assert load(tmp_path / "g").layers[0].macs == 6


def test_synth_han2015(tmp_path):
    out = run("synth", "--han2015", "--out", str(tmp_path / "han"))
    assert out.returncode == 0, out.stderr
    assert "alexnet_han2015, 5 layers" in out.stdout
    assert abs(load(tmp_path / "han").sample()["conv3"].a_density - 0.52) < 0.01
