"""The README's generated blocks about the seed paper's experiments (scripts/readme_experiments.py, from
docs/experiments/*/results.json) and the sample trace's entropy (scripts/readme_runs.py, from `hwsim inspect`):
hand-computed sentences, the remaking commands checked against the files' own configs, and the stream named."""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import shutil
from dataclasses import asdict
from pathlib import Path

import pytest
from _scripts import load_script

from hwsim.commands import experiment as exp_cmd

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    return load_script(f"scripts/{name}.py")


EX = _load("readme_experiments")


def _committed() -> dict:
    return {n: json.loads((ROOT / "docs" / "experiments" / n / "results.json").read_text()) for n in EX.NAMES}


def _config_of(cmd: str):
    """The experiment config that `hwsim experiment ...` would run for ``cmd`` (parsed, not run)."""
    argv = shlex.split(cmd)
    assert argv[:2] == ["hwsim", "experiment"]
    p = argparse.ArgumentParser()
    exp_cmd.add_arguments(p)
    args = p.parse_args(argv[2:])
    base = {"table1": EX.Table1Config(), "meprop": EX.MepropConfig(), "distributed": EX.DistributedConfig()}
    fields = ("dataset", "data_dir", "seeds", "lr", "dither_rng", "models", "model", "s", "s_values", "k_values",
              "epochs", "batch_size", "nodes", "s_rule", "steps", "batch_per_node", "methods")
    return args.out, exp_cmd._config(args, base[args.experiment], base[args.experiment], fields)


@pytest.mark.parametrize("name", EX.NAMES)
def test_the_remaking_command_reproduces_the_committed_config(name):
    doc = _committed()[name]
    out, cfg = _config_of(EX.command(name, doc))
    assert out == f"docs/experiments/{name}"
    want = {**doc["config"], "dither_rng": "sfc64"}  # files made before the counter dither: sfc64
    assert json.loads(json.dumps(asdict(cfg))) == want


def test_a_counter_stream_file_needs_no_stream_option_and_says_counter():
    docs = copy.deepcopy(_committed())
    for d in docs.values():
        d["config"]["dither_rng"] = "counter"
    assert "--dither-rng" not in EX.command("meprop", docs["meprop"])
    said = EX.experiments_block(docs)[-1]
    assert "made with the counter dither stream;" in said and "sfc64" not in said


def test_table1_lines_by_hand():
    cell = {"acc_mean": 0.9, "sparsity_mean": 0.3, "max_bits": 8}
    doc = {"config": {"dataset": "digits", "epochs": 10, "s": 4.0, "seeds": [0, 1]},
           "summary": [{"model": "lenet5", "baseline": {**cell, "acc_mean": 0.98},
                        "dithered": {"acc_mean": 0.9725, "sparsity_mean": 0.96, "max_bits": 6},
                        "8-bit": cell, "8-bit + dithered": {"acc_mean": 0.97, "sparsity_mean": 0.95, "max_bits": 7}}]}
    lines = EX.table1_lines(doc)
    assert lines[0].startswith("Table 1 columns on the embedded digits (10 epochs, s = 4, mean of 2 seeds;")
    assert lines[4] == "| lenet5 | 98.00 / 30.0 | 97.25 / 96.0 | 90.00 / 30.0 | 97.00 / 95.0 | 7 |"
    # the paper's lenet5: dithered sparsity 97.52, accuracy 99.35 − 99.31 = +0.04
    assert lines[-1] == ("Dithered columns: 95.0–96.0 % δ̃z sparsity with ≤ 7-bit non-zeros, with or without 8-bit "
                         "training (lenet5 dithered 96.00 % vs the paper's 97.52 % on MNIST). Accuracy, dithered − "
                         "baseline: lenet5 −0.75 points (the paper, MNIST: lenet5 +0.04).")


def _mp(method, label, acc, sp):
    return {"method": method, "label": label, "acc_mean": acc, "sparsity_mean": sp}


def test_meprop_line_takes_the_sparsest_dither_within_half_a_point_and_the_sparsest_meprop():
    doc = {"config": {"model": "mlp500", "seeds": [0, 1, 2], "epochs": 20},
           "summary": [_mp("none", "—", 0.976, 0.30), _mp("dither", "s=8", 0.972, 0.98),
                       _mp("dither", "s=16", 0.970, 0.993), _mp("dither", "s=32", 0.5, 0.995),
                       _mp("meprop", "k=2", 0.95, 0.93), _mp("meprop", "k=5", 0.97, 0.83)]}
    # 97.6 − 0.5 = 97.1: s=8 (97.2) qualifies, s=16 (97.0) does not
    assert EX.meprop_line(doc) == ("meProp (mlp500, 3 seeds, 20 epochs): dither stays within 0.5 points of plain "
                                   "backprop's 97.60 % up to 98.00 % sparsity (s=8: 97.20 %); meProp's sparsest "
                                   "setting (k=2) reaches 93.00 % sparsity at 95.00 %.")


def test_distributed_line_by_hand():
    doc = {"config": {"model": "lenet300", "batch_per_node": 1, "steps": 400, "s": 2.0, "s_rule": "sqrt",
                      "seeds": [0, 1]},
           "summary": [{"method": "dither", "nodes": 8, "acc_mean": 0.90, "sparsity_mean": 0.92},
                       {"method": "dither", "nodes": 1, "acc_mean": 0.86, "sparsity_mean": 0.764},
                       {"method": "none", "nodes": 1, "acc_mean": 0.90},
                       {"method": "none", "nodes": 8, "acc_mean": 0.9325}],
           "runs": [{"method": "dither", "nodes": 1, "max_bits": 4}, {"method": "dither", "nodes": 1, "max_bits": 4},
                    {"method": "dither", "nodes": 8, "max_bits": 3}, {"method": "dither", "nodes": 8, "max_bits": 2},
                    {"method": "none", "nodes": 8, "max_bits": 8}]}
    assert EX.distributed_line(doc) == (
        "Distributed (lenet300, batch 1 per node, 400 steps, s = 2·√N, 2 seeds): per-node sparsity 76.4 → 92.0 % and "
        "worst-case bits 4 → 2–3 from N = 1 to 8; accuracy, dither − plain backprop: −4.00 (N = 1), −3.25 (N = 8) "
        "points.")


def test_a_changed_experiment_result_changes_the_readme(tmp_path):
    tables = _load("readme_tables")
    text = (ROOT / "README.md").read_text()
    generated = tables.tables()
    shutil.copytree(ROOT / "docs" / "experiments", tmp_path / "docs" / "experiments")
    block = EX.experiments_from(tmp_path)
    assert generated["experiments"] == [*block[:-1], tables._sub(block[-1])]
    f = tmp_path / "docs" / "experiments" / "table1" / "results.json"
    doc = json.loads(f.read_text())
    doc["summary"][0]["dithered"]["acc_mean"] += 0.01
    f.write_text(json.dumps(doc))
    block = EX.experiments_from(tmp_path)
    assert tables.render(text, {**generated, "experiments": [*block[:-1], tables._sub(block[-1])]}) != text
    (tmp_path / "docs" / "experiments" / "meprop" / "results.json").unlink()
    assert EX.experiments_from(tmp_path) == []  # one file missing: no block (render then names the marker)


def test_trace_entropy_line_by_hand():
    runs = _load("readme_runs")
    inspected = {"summary": {"model": "lenet5", "s": 4.0, "dither_rng": "sfc64", "inspected_iteration": 45,
                             "size_over_entropy": 1.25},
                 "layers": [{"output_shape": [8, 10], "bits_per_element": 3.0, "entropy_bits_per_element": 1.0},
                            {"output_shape": [8, 6], "bits_per_element": 0.6, "entropy_bits_per_element": 0.5},
                            {"output_shape": [8, 3]}]}  # a layer without a sample: left out
    line = runs.trace_entropy_line(inspected)[0]
    assert "(lenet5, s = 4, dither stream sfc64, 8 examples stored per sample)" in line
    assert "keeps its last sample (iteration 45) at 1.25× that entropy; its layers at 1.20×–3.00×," in line


def test_the_trace_entropy_block_renders_the_committed_file_and_the_file_is_this_traces(tmp_path):
    """The block reads benchmarks/results/trace_entropy.json (not a fresh `hwsim inspect`, whose stored sizes move
    with the LZMA build); the file was made from the checked-in sample: every figure that does not depend on the
    encoder (entropy, densities, shapes) equals a fresh inspection's, and the writer writes aside, then renames."""
    runs = _load("readme_runs")
    committed = json.loads((ROOT / runs.TRACE_ENTROPY).read_text())
    assert committed["command"] == runs.TRACE_ENTROPY_COMMAND
    block = runs.trace_entropy_block(ROOT)
    assert block[0] == runs.trace_entropy_line(committed["inspect"])[0]
    assert block[-1].startswith(f"Generated from `{runs.TRACE_ENTROPY}`, made by `{runs.TRACE_ENTROPY_COMMAND}`")
    fresh = runs.write_trace_entropy(ROOT, tmp_path / "e.json")
    assert json.loads((tmp_path / "e.json").read_text()) == json.loads(json.dumps(fresh))
    assert not (tmp_path / "e.json.tmp").exists()
    enc = ("bytes", "bits_per_element", "size_over_entropy")
    strip = lambda rows: [{k: v for k, v in r.items() if k not in enc} for r in rows]  # noqa: E731
    assert strip(committed["inspect"]["layers"]) == strip(json.loads(json.dumps(fresh["inspect"]["layers"])))
    assert runs.trace_entropy_block(tmp_path) == []  # no committed file: no block
