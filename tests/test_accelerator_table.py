"""The headline "which accelerator for dithered backprop" (hwsim.sweep.designs → benchmarks/accelerator_table.py →
README, and the demo report).

The core (:func:`hwsim.results.designs.equal_area_figures`, :func:`hwsim.sweep.designs.compare_designs`) is checked
on a synthetic one-GEMM trace whose cycles follow from the SCALE-Sim fold model by hand; the README renderer
(scripts/readme_accelerators.py) on a hand-written JSON.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _scripts import load_script

from hwsim.arch import load_arch
from hwsim.results import designs as rd
from hwsim.sim import simulate
from hwsim.sweep import designs as sd
from hwsim.trace.synth import synthesize

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):
    return load_script(path)


def test_design_list_holds_the_shipped_designs_and_any_tensordash_config():
    bench = _load("accelerator_table", ROOT / "benchmarks" / "accelerator_table.py")
    assert bench.DESIGNS == sd.designs()  # the benchmark compares the library's list
    assert bench.DESIGNS[:5] == ("scnn", "training", "systolic32", "systolic32_os", "scnn_bitserial")
    shipped = sorted(p.stem for p in (ROOT / "arch_configs").glob("tensordash*.yaml"))
    assert list(bench.DESIGNS[5:]) == shipped
    for d in bench.DESIGNS:
        load_arch(d)   # every name is a shipped config


def test_a_tensordash_config_joins_the_design_list_when_its_file_exists(tmp_path):
    assert sd.designs(tmp_path) == sd.BASE_DESIGNS
    (tmp_path / "tensordash_ws.yaml").write_text("version: 1\n")
    (tmp_path / "tensordash.yaml").write_text("version: 1\n")
    (tmp_path / "other.yaml").write_text("version: 1\n")
    assert sd.designs(tmp_path) == (*sd.BASE_DESIGNS, "tensordash", "tensordash_ws")


def test_the_recorded_command_names_only_what_changes_the_numbers():
    bench = _load("accelerator_table", ROOT / "benchmarks" / "accelerator_table.py")
    assert bench.command(list(bench.TRACES), list(bench.DESIGNS)) == "python benchmarks/accelerator_table.py"
    assert (bench.command(["lenet5"], list(bench.DESIGNS))
            == "python benchmarks/accelerator_table.py --models lenet5")
    assert (bench.command(list(bench.TRACES), ["scnn", "training"])
            == "python benchmarks/accelerator_table.py --designs scnn training")


def test_equal_area_ratios_of_an_output_stationary_array_by_hand(tmp_path):
    """systolic32_os on one linear layer (batch 16, 64 → 32), DRAM unlimited. Its equal-area dense array is the
    32×32 weight-stationary array (same PEs and buffers: same area). Fold model (hwsim/sim/systolic.py), R = C = 32:
    WS fold = 2R + C + T − 2, OS fold = R + C + T − 2, cycles = folds · fold − 1.

    forward (M=16, Kr=64, N=32):        WS 2 folds · (64+32+16−2) − 1 = 219; OS 1 · (32+32+64−2) − 1 = 125
    backward-data (M=16, Kr=32, N=64):  WS 2 · 110 − 1 = 219;                OS 2 · (32+32+32−2) − 1 = 187
    backward-weight (M=64, Kr=16, N=32): WS 1 · (64+32+64−2) − 1 = 157;      OS 2 · (32+32+16−2) − 1 = 155
    The weight update runs on both arrays' 32 vector lanes alike (the same cycles u)."""
    t = synthesize(tmp_path / "fc", layers=[{"name": "fc", "kind": "linear", "C": 64, "K": 32}], batch=16,
                   a_density=0.5, dz_density=0.1, dense_first_input=False)
    r = simulate(t, load_arch("systolic32_os", overrides={"memory.dram_bytes_per_cycle": float("inf")}))
    f = rd.equal_area_figures(r)
    assert f["equal_area_shape"] == [32, 32] and f["area_mm2"] == pytest.approx(f["equal_area_mm2"])
    assert f["speedup"]["forward"] == pytest.approx(219 / 125)
    assert f["speedup"]["backward_data"] == pytest.approx(219 / 187)
    assert f["speedup"]["backward_weight"] == pytest.approx(157 / 155)
    u = r.layer("fc", "update")
    assert u.dense_equal_area.cycles == u.sparse.cycles > 0 and f["speedup"]["update"] == 1.0
    assert f["speedup"]["iteration"] == pytest.approx((219 + 219 + 157 + u.sparse.cycles)
                                                      / (125 + 187 + 155 + u.sparse.cycles))
    # energy: the equal-area array's energy over the design's, summed over the scope's layer-passes
    ea = sum(lp.dense_equal_area.energy_pj for lp in r.layers)
    de = sum(lp.sparse.energy_pj for lp in r.layers)
    assert f["energy_gain"]["iteration"] == pytest.approx(ea / de)
    bw = r.layer("fc", "backward_weight")
    assert f["energy_gain"]["backward_weight"] == pytest.approx(bw.dense_equal_area.energy_pj / bw.sparse.energy_pj)


def test_summary_takes_the_geometric_mean_over_traces():
    rows = [{"design": "a", "area_mm2": 2.0, "equal_area_shape": [9, 9], "speedup": {"iteration": x},
             "energy_gain": {"iteration": y}} for x, y in ((2.0, 1.0), (0.5, 4.0), (4.0, 2.0))]
    (s,) = rd.summary(rows, ["a", "absent"])
    assert s["speedup_geomean"] == pytest.approx(4 ** (1 / 3))   # (2 · 0.5 · 4)^(1/3)
    assert s["energy_gain_geomean"] == pytest.approx(2.0)         # (1 · 4 · 2)^(1/3)
    assert (s["speedup_min"], s["speedup_max"], s["traces"]) == (0.5, 4.0, 3)


def _doc() -> dict:
    scopes = ["forward", "backward_data", "backward_weight", "update", "iteration"]
    row = {"model": "lenet5", "design": "scnn", "area_mm2": 24.2, "equal_area_mm2": 24.1,
           "equal_area_shape": [205, 205],
           "speedup": {"forward": 0.5, "backward_data": 2.0, "backward_weight": 12.5, "update": None,
                       "iteration": 1.25},
           "energy_gain": {"forward": 1.0, "backward_data": 3.0, "backward_weight": 150.0, "update": 1.0,
                           "iteration": 0.8}}
    return {"command": "python benchmarks/accelerator_table.py", "baseline": "dense_equal_area", "scopes": scopes,
            "designs": [{"design": "scnn", "area_mm2": 24.218, "equal_area_shape": [205, 205], "traces": 1,
                         "speedup_geomean": 1.25, "speedup_min": 1.25, "speedup_max": 1.25,
                         "energy_gain_geomean": 0.8, "energy_gain_min": 0.8, "energy_gain_max": 0.8},
                        {"design": "tensordash", "area_mm2": 1.7, "equal_area_shape": [32, 33], "traces": 1,
                         "speedup_geomean": 1.9, "speedup_min": 1.9, "speedup_max": 1.9,
                         "energy_gain_geomean": 1.1, "energy_gain_min": 1.1, "energy_gain_max": 1.1}],
            "traces": [{"model": "lenet5", "capture": "hwsim trace --model lenet5", "iterations": 115,
                        "dz_density": 0.0349, "test_acc": 0.9556, "replayed": "whole run: 6 sampled iterations of 115, integrated"}],
            "rows": [row]}


def test_renderer_writes_the_hand_written_json():
    mod = _load("readme_accelerators", ROOT / "scripts" / "readme_accelerators.py")
    lines = mod.accelerators_table(_doc())
    assert lines[0].startswith("| design | what it is | area | equal-area dense array | iteration speed-up: geo-mean "
                               "of 1 traces")
    assert lines[2] == ("| `scnn` | SCNN: sparse Cartesian product in every pass | 24.22 mm² | 205×205 | "
                        "1.25× (1.25×–1.25×) | 0.80× (0.80×–0.80×) |")
    assert lines[3].startswith("| `tensordash` | TensorDash-style operand scheduling") and "| 32×33 |" in lines[3]
    assert "| lenet5 | `scnn` | 0.50× / 1.00× | 2.00× / 3.00× | 12.5× / 150× | – / 1.00× | 1.25× / 0.80× |" in lines
    assert lines[-1].startswith("Cells: speed-up / energy gain over the design's equal-area dense array.")
    assert ("lenet5 (`hwsim trace --model lenet5`: 115 iterations, δ̃z density 0.035, test accuracy 95.6 %; whole run: 6 sampled "
            "iterations of 115, integrated).") in lines[-1]


def test_readme_generator_renders_the_accelerators_block(tmp_path):
    import json
    import shutil
    rt = _load("readme_tables", ROOT / "scripts" / "readme_tables.py")
    shutil.copytree(ROOT / "reports" / "example" / "data", tmp_path / "reports" / "example" / "data")
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "accelerator_table.json").write_text(json.dumps(_doc()))
    block = rt.tables(tmp_path)["accelerators"]
    assert block[2].startswith("| `scnn` |")
    assert "made by `python benchmarks/accelerator_table.py`" in block[-1]
