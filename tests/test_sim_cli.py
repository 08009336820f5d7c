"""``hwsim simulate`` end to end in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

from hwsim.results import load_results
from hwsim.trace.synth import synthesize


def test_simulate_cli_writes_results_and_table(tmp_path):
    t = synthesize(tmp_path / "t", layers=[{"name": "c1", "C": 8, "K": 16, "H": 12, "W": 12, "R": 3, "S": 3,
                                            "padding": 1}, {"name": "fc", "kind": "linear", "C": 64, "K": 10}],
                   w_density=0.5, a_density=0.5, dz_density=0.1)
    out = tmp_path / "r" / "results.json"
    p = subprocess.run([sys.executable, "-m", "hwsim", "simulate", str(t), "--arch", "scnn", "--iteration", "0",
                        "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "c1" in p.stdout and "total" in p.stdout and "speed-up" in p.stdout
    d = json.loads(out.read_text())
    assert {x["pass"] for x in d["layers"]} == {"forward", "backward_data", "backward_weight", "update"}
    assert d["total"]["sparse"]["cycles"] == sum(x["sparse"]["cycles"] for x in d["layers"])
    assert load_results(out).arch["name"] == "scnn"


def test_simulate_cli_bad_arch_is_one_line_exit_2(tmp_path):
    t = synthesize(tmp_path / "t", layers=[{"name": "fc", "kind": "linear", "C": 8, "K": 4}])
    p = subprocess.run([sys.executable, "-m", "hwsim", "simulate", str(t), "--arch", "scnn", "--set",
                        "pe.mult_f=0", "--out", str(tmp_path / "x.json")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "mult_f" in p.stderr and "Traceback" not in p.stderr


def test_simulate_cli_inference_replays_the_forward_pass_only(tmp_path):
    t = synthesize(tmp_path / "t", layers=[{"name": "c1", "C": 4, "K": 8, "H": 8, "W": 8, "R": 3, "S": 3},
                                           {"name": "fc", "kind": "linear", "C": 288, "K": 10}],
                   w_density=0.5, a_density=0.5, dz_density=0.1)
    out = tmp_path / "inf.json"
    p = subprocess.run([sys.executable, "-m", "hwsim", "simulate", str(t), "--arch", "scnn", "--inference",
                        "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    d = json.loads(out.read_text())
    assert {x["pass"] for x in d["layers"]} == {"forward"}
    total_line = next(ln for ln in p.stdout.splitlines() if ln.startswith("total"))
    assert total_line.count("-") == 4  # backward columns are not made up


def test_simulate_cli_replays_the_whole_run_by_default_and_says_so(tmp_path):
    import shutil
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "traces" / "samples" / "lenet5-digits-dither"
    t = tmp_path / "t"
    shutil.copytree(src, t)
    out = tmp_path / "run.json"
    p = subprocess.run([sys.executable, "-m", "hwsim", "simulate", str(t), "--arch", "scnn", "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("replaying the whole training run")
    d = json.loads(out.read_text())
    assert d["kind"] == "hwsim-run"
    assert [r["iteration"] for r in d["iterations"]] == [0, 10, 20, 30, 40, 45]  # every sampled iteration


def test_simulate_cli_one_inference_iteration_is_the_last_full_batch_and_says_so(tmp_path):
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "traces" / "samples" / "lenet5-digits-dither"
    out = tmp_path / "r.json"
    p = subprocess.run([sys.executable, "-m", "hwsim", "simulate", str(src), "--arch", "scnn", "--inference",
                        "--quiet", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    # the last sampled iteration (45) is an epoch's short batch of 29: iteration 40 is replayed, and the CLI says why
    assert ("replayed iteration 40: the last sampled with a full batch of 64 (the last sampled, 45, has a partial "
            "batch of 29)") in p.stdout
    d = json.loads(out.read_text())
    assert d["trace"]["iteration"] == 40 and d["run"]["iteration_choice"].startswith("iteration 40")
