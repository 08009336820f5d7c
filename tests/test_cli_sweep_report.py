"""The sweep, report and demo commands end to end, as a user runs them (subprocesses, real simulator)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def hwsim(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwsim", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


SWEEP = """\
version: 1
name: cli
arch: scnn
grid:
  pe_array.rows,pe_array.cols: [4, 8]
traces:
  - synthetic: {model: lenet5, density: [0.2, 1.0], batch: 1}
"""


def test_sweep_then_report(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SWEEP)
    r = hwsim("sweep", str(f), "--out", "out", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "4 points computed, 0 reused" in r.stderr
    rows = json.loads((tmp_path / "out" / "sweep.json").read_text())["rows"]
    assert len(rows) == 4 and all(r["cycles_sparse"] > 0 for r in rows)
    dense = [r for r in rows if r["synthetic_dz_density"] == 1.0]
    sparse = [r for r in rows if r["synthetic_dz_density"] == 0.2]
    assert min(r["speedup_sparse"] for r in sparse) > max(r["speedup_sparse"] for r in dense)
    r = hwsim("sweep", str(f), "--out", "out", "--quiet", cwd=tmp_path)  # resume: nothing left to do
    assert r.returncode == 0 and "0 points computed, 4 reused" in r.stderr
    r = hwsim("report", "out", "--out", "rep", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "data:image/png;base64," in html and "http" not in html.replace("http-equiv", "")
    assert (tmp_path / "rep" / "figures" / "cli_parameters.svg").exists()
    assert (tmp_path / "rep" / "data" / "cli_sweep.csv").exists()
    r = hwsim("report", "out", "--out", "rep2", "--quiet", "--jobs", "2", cwd=tmp_path)  # figures in 2 workers
    assert r.returncode == 0, r.stderr
    for sub in ("figures", "data"):
        files = sorted(p.name for p in (tmp_path / "rep" / sub).iterdir())
        assert files and files == sorted(p.name for p in (tmp_path / "rep2" / sub).iterdir())
        for name in files:
            assert (tmp_path / "rep" / sub / name).read_bytes() == (tmp_path / "rep2" / sub / name).read_bytes(), name


def test_sweep_errors_are_one_line_with_exit_2(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(SWEEP.replace("pe_array.rows,pe_array.cols", "pe_array.rowz"))
    r = hwsim("sweep", str(f), "--out", "out", cwd=tmp_path)
    assert r.returncode == 2
    assert "pe_array.rowz" in r.stderr and "allowed" in r.stderr and "Traceback" not in r.stderr
    f.write_text(SWEEP.replace("[4, 8]", "[]"))
    r = hwsim("sweep", str(f), "--out", "out", cwd=tmp_path)
    assert r.returncode == 2 and "empty" in r.stderr
    f.write_text(SWEEP)
    t0 = time.monotonic()
    r = hwsim("sweep", str(f), "--out", "out", "--scheduler", "tcp://127.0.0.1:9", "--timeout", "2", cwd=tmp_path)
    assert r.returncode == 2 and "cannot reach the Dask scheduler" in r.stderr and "Traceback" not in r.stderr
    assert time.monotonic() - t0 < 60
    r = hwsim("report", "nothing-here", "--out", "rep", cwd=tmp_path)
    assert r.returncode == 2 and "nothing-here" in r.stderr


def test_dry_run_lists_points(tmp_path):
    r = hwsim("sweep", str(REPO / "arch_configs" / "sweeps" / "demo.yaml"), "--out", "o", "--dry-run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "36 configs × 1 traces × 1 seeds = 36 points" in r.stdout


@pytest.mark.slow
def test_demo_quick(tmp_path):
    pytest.importorskip("torch")
    r = hwsim("demo", "--quick", "--out", "demo", "--quiet", cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "demo"
    html = (out / "index.html").read_text()
    for name in ("overview_speedup_energy", "lenet5_dither_scnn_layer_speedup", "lenet5_none_scnn_cycle_breakdown",
                 "demo_parameters", "demo_pareto", "density_density_0", "training_dz_density",
                 "lenet5_dither_scnn_layer_energy", "training_worst_bits", "designs_speedup_energy"):
        assert (out / "figures" / f"{name}.png").exists(), name
    # the plain-backprop baseline: two figures (layer speed-up, cycle breakdown), its numbers in the tables
    assert sorted(p.name for p in (out / "figures").glob("lenet5_none_*")) == [
        "lenet5_none_scnn_cycle_breakdown.png", "lenet5_none_scnn_layer_speedup.png"]
    # "which accelerator": the quick plan's two designs against dense arrays of their own area, on lenet5
    assert "Which accelerator for dithered backprop?" in html
    per_trace = json.loads((out / "data" / "designs_per_trace.json").read_text())
    assert [(r["trace"], r["design"]) for r in per_trace] == [("lenet5", "scnn"), ("lenet5", "tensordash")]
    assert all(r["speedup_iteration"] > 0 and r["energy_gain_iteration"] > 0 for r in per_trace)
    # the demo renders what its page shows: the PNGs, no SVG copies (hwsim report of the same inputs has them)
    assert not list((out / "figures").glob("*.svg")) and ".svg" not in html
    assert html.count("<img") >= 8 and "<link" not in html
    timings = json.loads((out / "work" / "quick" / "timings.json").read_text())
    # Wall time is recorded, not asserted: a timed unit test is flaky on a shared 2-core box.
    assert timings["seconds"] > 0 and set(timings["steps"]) >= {"1/5 capture traces"}, timings
    assert set(timings["cpu_seconds"]) == set(timings["steps"]) and timings["cpu_seconds"]["5/5 report"] > 0
    assert "where the time went" not in r.stderr  # --quiet
