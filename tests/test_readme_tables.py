"""The README's result tables are generated from committed results (scripts/readme_tables.py) and cannot drift."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


def _module():
    return load_script("scripts/readme_tables.py")


def test_readme_tables_agree_with_committed_results():
    mod = _module()
    text = (ROOT / "README.md").read_text()
    names = mod.marked_names(text)
    assert {"real-gradients", "scnn", "sensitivity", "whole-run"} <= set(names), names
    assert mod.render(text, mod.tables()) == text, "README tables differ: run `python scripts/readme_tables.py`"


def test_every_generated_table_is_marked_in_the_readme():
    mod = _module()
    assert set(mod.tables()) <= set(mod.marked_names((ROOT / "README.md").read_text()))


def test_a_changed_result_changes_the_rendered_table(tmp_path):
    """The check can fail: edit one committed number in a copy and the rendered README differs."""
    mod = _module()
    for part in (("reports", "example", "data"), ("benchmarks", "results"), ("docs", "experiments"),
                 ("traces", "samples")):  # every committed source of a README block
        shutil.copytree(ROOT.joinpath(*part), tmp_path.joinpath(*part))
    text = (ROOT / "README.md").read_text()
    assert mod.render(text, mod.tables(tmp_path)) == text
    summary = tmp_path / "reports" / "example" / "data" / "summary.json"
    rows = json.loads(summary.read_text())
    shown = next(r for r in rows if r["method"] == "dither" and r["scope"] == "iteration")
    shown["speedup_sparse"] = float(shown["speedup_sparse"]) * 1.5
    summary.write_text(json.dumps(rows))
    assert mod.render(text, mod.tables(tmp_path)) != text


def test_unknown_table_marker_is_an_error():
    mod = _module()
    with pytest.raises(SystemExit, match="no generator"):
        mod.render("<!-- table:nope -->\nx\n<!-- /table:nope -->\n", mod.tables())


def _figs(sc: float, dc: float, se: float, de: float) -> dict:
    return {"sparse_cycles": sc, "dense_cycles": dc, "sparse_energy_pj": se, "dense_energy_pj": de,
            "speedup": dc / sc, "energy_ratio": de / se, "speedup_passes": {}}


def _error_doc() -> dict:
    truth = _figs(1000, 2000, 500, 800)
    rows = [{"kind": "every", "every": 2, "replayed": 6, "estimate": _figs(1010, 2000, 505, 800), "phases": 2,
             "worst_abs_err_pct": {"speedup": 1.0, "energy_ratio": 1.0}},
            {"kind": "every", "every": 5, "replayed": 3, "estimate": _figs(1100, 2100, 520, 810), "phases": 5,
             "worst_abs_err_pct": {"speedup": 1.0, "energy_ratio": 2.5}},
            {"kind": "last", "replayed": 1, "estimate": _figs(600, 1300, 300, 450)}]
    trace = {"model": "lenet5", "method": "dither", "dataset": "digits", "batch_size": 64, "epochs": 1,
             "iterations": 11}
    return {"command": "python benchmarks/bench_wholerun.py --error T", "capture": "hwsim trace ...", "arch": "scnn",
            "trace": trace, "truth": truth, "rows": rows}


def _max_doc() -> dict:
    rows = [{"iteration": 0, "batch": 128, "keep": 8, "full": _figs(1600, 3200, 800, 1600),
             "sample": _figs(140, 220, 70, 110)},
            {"iteration": 5, "batch": 128, "keep": 32, "full": _figs(1600, 3200, 800, 1600),
             "sample": _figs(420, 820, 210, 410)}]
    trace = {"model": "resnet18_cifar", "method": "dither", "dataset": "digits", "image_size": 32, "batch_size": 128,
             "epochs": 1}
    rows.append({"iteration": 9, "batch": 29, "keep": 8, "full": _figs(400, 800, 200, 400),   # a short last batch
                 "sample": _figs(300, 300, 150, 150)})
    rows[0]["full"]["speedup_passes"] = {"backward_weight": 4.0}
    rows[0]["sample"]["speedup_passes"] = {"backward_weight": 1.7}
    return {"command": "python benchmarks/bench_wholerun.py --max-examples T", "arch": "scnn", "trace": trace,
            "rows": rows}


def test_estimator_error_table_reads_its_numbers_from_the_json():
    mod = _module()
    doc = _error_doc()
    lines = mod.estimator_error_table(doc)
    every2 = next(x for x in lines if x.startswith("| every:2 |"))
    assert "| +1.0 % | 0.0 % | +1.0 % | -1.0 % | -1.0 % | ±1.0 % | ±1.0 % |" in every2, every2
    assert "N ≤ 2 " in lines[-1] and "±2 %" in lines[-1]   # every:5: energy gain (2.5 %) is beyond the 2 % bound
    doc["rows"][1]["worst_abs_err_pct"] = {"speedup": 1.5, "energy_ratio": 1.9}  # now every:5 is within it
    assert "N ≤ 5 " in mod.estimator_error_table(doc)[-1]
    doc2 = _error_doc()
    doc2["rows"][0]["estimate"]["sparse_cycles"] = 1030
    assert mod.estimator_error_table(doc2) != lines


def test_max_examples_table_scales_the_sample_to_the_batch():
    mod = _module()
    doc = _max_doc()
    lines = mod.max_examples_table(doc)
    row = next(x for x in lines if x.startswith("| 0 | 128 → 8 |"))
    assert "| +40.0 % | +10.0 % | +40.0 % |" in row, row   # 16 × 140 = 2240 cycles against 1600
    assert "| 2.00× → 1.57× | -21.4 % |" in row and row.endswith("| 4.00× → 1.70× |"), row
    assert "keeping 8 of 128 examples" in lines[-1] and "keeping 32 of 128" in lines[-1]
    assert any(x.startswith("| 9 | 29 → 8 |") for x in lines) and "-50.0 %" not in lines[-1]  # shown, not summarised
    assert "speed-up by -21.4 % to -21.4 %" in lines[-1], lines[-1]
    doc["rows"][0]["sample"]["dense_cycles"] = 200
    assert mod.max_examples_table(doc) != lines


def test_the_new_tables_are_rendered_from_their_json(tmp_path):
    mod = _module()
    shutil.copytree(ROOT / "reports" / "example" / "data", tmp_path / "reports" / "example" / "data")
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "wholerun_error.json").write_text(json.dumps(_error_doc()))
    (tmp_path / "benchmarks" / "results" / "max_examples.json").write_text(json.dumps(_max_doc()))
    out = mod.tables(tmp_path)
    assert "from a trace made by `hwsim trace ...`" in out["estimator-error"][-1]
    assert out["max-examples"][0].startswith("| iteration | batch → kept |")


def test_demo_time_table_lists_each_step_the_total_and_the_load():
    doc = {"command": "python benchmarks/bench_demo.py --out /tmp/x --json j", "date": "2026-12-07", "cpus": 2,
           "jobs": 2, "first_run": {"cold": True, "seconds": 40.25, "load": [0.5, 1.75],
                                    "steps": {"1/5 capture traces": {"wall": 9.0, "cpu": 17.5},
                                              "5/5 report": {"wall": 15.0, "cpu": None}}},
           "warm_reruns": [{"seconds": 18.0, "load": [1.0, 1.5]}, {"seconds": 19.0, "load": [1.5, 1.5]}]}
    lines = _module()._sibling("readme_runs").demo_time_table(doc)
    assert lines[2:5] == ["| 1/5 capture traces | 9.0 s | 17.5 s |", "| 5/5 report | 15.0 s | – |",
                          "| **whole demo** (empty `--out`) | **40.2 s** | 17.5 s |"]
    assert lines[5] == "" and "2026-12-07 on a 2-core machine" in lines[6] and "`--jobs 2`" in lines[6]
    assert "0.50 before → 1.75 after" in lines[6] and "took 18.0 s (load 1.00 → 1.50). " in lines[6]
    assert lines[6].endswith("On 2 idle cores the first run cannot take less than CPU ÷ cores = 9 s.")  # 17.5 / 2
    doc["first_run"]["cold"], doc["warm_reruns"] = False, []
    lines = _module()._sibling("readme_runs").demo_time_table(doc)
    assert "(reused `--out`)" in lines[4] and "rerun" not in lines[6]


@pytest.mark.parametrize("x,text", [(None, "–"), (float("nan"), "–"), (float("inf"), "∞"), (300.4, "300×"),
                                    (100.0, "100×"), (99.96, "100.0×"), (30.14, "30.1×"), (10.0, "10.0×"),
                                    (9.996, "10.00×"), (2.614, "2.61×"), ("1.5", "1.50×")])
def test_every_readme_table_formats_a_ratio_with_the_one_cell_formatter(x, text):
    """One ×-formatter (hwsim.results.times, the reports' too) serves all three table scripts: 3 significant
    digits up to 100×."""
    from hwsim.report import style

    mod = _module()
    assert mod.times(x) == text
    assert mod._sibling("readme_runs").times is mod._sibling("readme_accelerators").times is mod.times is style.times


def test_capture_overhead_table_marks_missed_targets_and_says_the_load():
    row = {"model": "lenet5", "batch": "64", "plain_ms": 7.04, "intercept": {"cpu": 1.061, "wall": 1.07},
           "dither": {"cpu": 1.2304, "wall": 1.2}, "dither+record": {"cpu": 1.25, "wall": 1.3}}
    doc = {"command": "python benchmarks/bench_capture.py --json j", "date": "2026-12-07", "cpus": 2, "threads": 1,
           "rounds": 5, "steps": 50, "sample_every": 50, "s": 4.0, "load": [0.8, 1.25],
           "targets": {"dither": 1.15, "dither+record": 1.25}, "rows": [row]}
    lines = _module()._sibling("readme_runs").capture_overhead_table(doc)
    assert "target ≤ 1.15×" in lines[0] and "target ≤ 1.25×" in lines[0]
    # 1.230 > 1.15: missed; 1.250 is not above 1.25: met
    assert lines[2] == "| lenet5 | 64 | 7.0 | 1.061× (1.070×) | **1.230× (1.200×) — missed** | 1.250× (1.300×) |"
    assert lines[3] == "" and "load average 0.80 before → 1.25 after" in lines[4] and "5 rounds of 50 steps" in lines[4]
    row["dither"]["cpu"] = 1.149
    assert "missed" not in _module()._sibling("readme_runs").capture_overhead_table(doc)[2]
    # a --fallback file: the numpy path's two ratios as two more columns (never marked: they are the comparison)
    row.update({"dither/numpy": {"cpu": 1.4, "wall": 1.41}, "dither+record/numpy": {"cpu": 1.5, "wall": 1.52}})
    doc["nsd_kernel"] = "avx2"
    capture_overhead_table = _module()._sibling("readme_runs").capture_overhead_table
    lines = capture_overhead_table(doc)
    assert lines[0].endswith("| dither/plain, numpy path | dither+record/plain, numpy path |")
    assert lines[1].count("---") == 8
    assert lines[2].endswith("| 1.149× (1.200×) | 1.250× (1.300×) | 1.400× (1.410×) | 1.500× (1.520×) |")
    assert "NSD ran on the compiled kernel (avx2)" in lines[4] and "HWSIM_QUANT_PATH=numpy" in lines[4]
    doc["nsd_kernel"] = "numpy path"
    assert "NSD ran on the numpy path (no compiled kernel)" in capture_overhead_table(doc)[4]
