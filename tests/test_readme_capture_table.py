"""The README's capture-accuracy block (plain vs dithered backprop over seeds) is rendered from
benchmarks/results/capture_table.json by scripts/readme_runs.py, target verdict included."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    return load_script(f"scripts/{name}.py")


def _row(model, method, seed, acc, dens, bits):
    return {"model": model, "method": method, "seed": seed, "test_acc": acc, "mean_density": dens,
            "max_bits": bits, "s": None if method == "none" else 4.0}


def _doc() -> dict:
    rows = [_row("a", "none", 0, 0.975, 0.70, None), _row("a", "dither", 0, 0.960, 0.04, 5),
            _row("b", "none", 0, 0.980, 0.80, None), _row("b", "dither", 0, 0.965, 0.12, 9),
            _row("a", "none", 1, 0.965, 0.69, None), _row("a", "dither", 1, 0.970, 0.05, 6),
            _row("b", "none", 1, 0.980, 0.79, None), _row("b", "dither", 1, 0.969, 0.08, 7)]
    return {"command": "python benchmarks/capture_table.py --json j", "capture": "hwsim trace ...", "hwsim": "0.1.0",
            "date": "2026-12-07", "targets": {"sparsity": 0.90, "max_bits": 8, "acc_points": 1.0}, "rows": rows}


def test_capture_accuracy_table_shows_seed_0_and_the_seed_means():
    lines = _load("readme_runs").capture_accuracy_table(_doc())
    assert lines[:6] == ["| model | method | test acc | avg δ̃z sparsity | max bit-width | s |",
                         "|---|---|---|---|---|---|",
                         "| a | none | 97.50 % | 30.00 % | – (float) | – |",
                         "| a | dither | 96.00 % | 96.00 % | 5 | 4 |",
                         "| b | none | 98.00 % | 20.00 % | – (float) | – |",
                         "| b | dither | 96.50 % | 88.00 % | 9 | 4 |"]
    said = lines[7]
    # means over seeds 0 and 1: a (97.5 + 96.5) / 2 = 97.00 → (96.0 + 97.0) / 2 = 96.50; b 98.00 → 96.70
    assert "over seeds 0, 1, none → dither: a 97.00 → 96.50 %, b 98.00 → 96.70 %." in said, said
    # a: sparsity ≥ 95 %, ≤ 6 bits, 0.5 points lost: met. b: seed 0 has 88 % and 9 bits, 1.30 points lost
    assert "met by a; missed by b (sparsity 88.00 % < 90 %; 9 bits > 8; accuracy 1.30 points below none)." in said
    assert said.endswith("Measured 2026-12-07, hwsim 0.1.0.")
    doc = {**_doc(), "threads": 2}   # the thread count is said: LeNet-5's figures at a seed depend on it
    assert _load("readme_runs").capture_accuracy_table(doc)[7].endswith("hwsim 0.1.0, 2 torch threads per run.")


def test_capture_target_is_computed_both_ways():
    runs = _load("readme_runs")
    doc = _doc()
    t = doc["targets"]
    assert runs.capture_target(doc["rows"], "a", t) == []
    assert len(runs.capture_target(doc["rows"], "b", t)) == 3
    # seed 1's dithered run at 94.8 %: mean (96.0 + 94.8) / 2 = 95.4, 1.6 points below 97.0 > 1 → missed
    doc["rows"][5]["test_acc"] = 0.948
    assert runs.capture_target(doc["rows"], "a", t) == ["accuracy 1.60 points below none"]
    assert "met by none; missed by a (accuracy 1.60 points below none), b (" in runs.capture_accuracy_table(doc)[7]
    # a dither gain is not a miss, and 8 bits exactly is within ≤ 8
    doc = _doc()
    doc["rows"][7].update(test_acc=0.999, mean_density=0.05, max_bits=8)
    doc["rows"][3].update(test_acc=0.999, mean_density=0.05, max_bits=8)
    assert runs.capture_target(doc["rows"], "b", t) == []
    assert "met by a, b." in runs.capture_accuracy_table(doc)[7]


@pytest.mark.parametrize("change,message", [
    (lambda d: d.pop("rows"), "non-empty list 'rows'"),
    (lambda d: d["rows"][1].pop("test_acc"), r"rows\[1\] lacks test_acc"),
    (lambda d: d["rows"][2].update(method="meprop"), r"rows\[2\].method is 'meprop'; allowed: none, dither"),
    (lambda d: d["targets"].pop("max_bits"), "targets lacks 'max_bits'"),
    (lambda d: d["rows"].pop(7), r"b dither has seeds \[0\]; every model and method needs seeds \[0, 1\]"),
])
def test_a_malformed_capture_table_is_a_one_line_error(change, message):
    doc = _doc()
    change(doc)
    with pytest.raises(SystemExit, match=message):
        _load("readme_runs").capture_accuracy_table(doc)


def test_a_capture_table_that_is_not_json_names_the_file(tmp_path):
    mod = _load("readme_tables")
    shutil.copytree(ROOT / "reports" / "example" / "data", tmp_path / "reports" / "example" / "data")
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "capture_table.json").write_text("{not json")
    with pytest.raises(SystemExit, match=r"benchmarks/results/capture_table.json: not valid JSON"):
        mod.tables(tmp_path)
    (tmp_path / "benchmarks" / "results" / "capture_table.json").write_text(json.dumps(_doc()))
    out = mod.tables(tmp_path)["capture-accuracy"]
    assert out[2] == "| a | none | 97.50 % | 30.00 % | – (float) | – |"
    assert "made by `python benchmarks/capture_table.py --json j` (each run: `hwsim trace ...`)" in out[-1]


def test_the_readme_block_is_what_the_committed_json_renders():
    mod = _load("readme_tables")
    text = (ROOT / "README.md").read_text()
    assert "capture-accuracy" in mod.marked_names(text)
    block = text.split("<!-- table:capture-accuracy -->\n")[1].split("<!-- /table:capture-accuracy -->")[0]
    assert block == "\n".join(mod.tables()["capture-accuracy"]) + "\n"
