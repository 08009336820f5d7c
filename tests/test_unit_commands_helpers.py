"""Unit tests of the sub-commands' small helpers: synth --per-layer-json, validate's summary, sweep's --out check,
trace's TrainConfig, inspect's numbers on the committed sample trace. Nothing trains or simulates."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest

from hwsim.arch import load_arch
from hwsim.commands import inspect as inspect_cmd
from hwsim.commands import sweep as sweep_cmd
from hwsim.commands import synth as synth_cmd
from hwsim.commands import trace as trace_cmd
from hwsim.commands import validate as validate_cmd

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "traces" / "samples" / "lenet5-digits-dither"


# --- synth --per-layer-json ---------------------------------------------------------------------------------------

def test_per_layer_json_inline_and_file(tmp_path):
    assert synth_cmd._per_layer(None) is None and synth_cmd._per_layer("") is None
    want = {"conv2": {"w": 0.4, "a": 0.5}}
    assert synth_cmd._per_layer('  {"conv2": {"w": 0.4, "a": 0.5}}') == want
    f = tmp_path / "dens.json"
    f.write_text(json.dumps(want))
    assert synth_cmd._per_layer(str(f)) == want


@pytest.mark.parametrize("text,fragment", [
    ("{not json", "not valid JSON"),
    ('{"conv2": 0.5}', "must be an object {layer: {w|a|dz: density}}"),
    ('{"a": [1]}', "must be an object"),
    ("FILE", "missing.json"),  # not starting with '{': read as a file name, which does not exist
])
def test_per_layer_json_errors_name_the_flag(text, fragment, tmp_path):
    if text == "FILE":
        text = str(tmp_path / "missing.json")
    with pytest.raises(ValueError) as ei:
        synth_cmd._per_layer(text)
    assert str(ei.value).startswith("--per-layer-json: ")
    assert fragment in str(ei.value)


def test_per_layer_json_too_deep_is_a_clear_error():
    with pytest.raises(ValueError, match="nested too deeply"):
        synth_cmd._per_layer('{"a": ' * 100_000 + "1" + "}" * 100_000)


@pytest.mark.parametrize("text", ["[" * 100_000, '[{"conv2": {"w": 0.4}}]', "0.5", '"conv2"'])
def test_per_layer_json_inline_non_objects_are_json_errors_not_file_names(text):
    # a JSON array, number or string is read as inline JSON (not a path), and the error stays one short line
    with pytest.raises(ValueError) as ei:
        synth_cmd._per_layer(text)
    msg = str(ei.value)
    assert msg.startswith("--per-layer-json: ") and "JSON file" not in msg and len(msg) < 300


# --- validate ---------------------------------------------------------------------------------------------------------

def test_kib():
    assert validate_cmd._kib(1023) == "1023 B"
    assert validate_cmd._kib(1024) == "1 KB"
    assert validate_cmd._kib(10240) == "10 KB"
    assert validate_cmd._kib(1536) == "1.5 KB"


def test_summary_reports_the_arch_fields():
    a = load_arch("scnn")
    s = validate_cmd.summary(a)
    lines = s.splitlines()
    assert lines[0].startswith(f"{a.name} ({a.source}) — valid, version 1, hash {a.content_hash()[:16]}")
    assert f"{a.pe_array.rows}×{a.pe_array.cols} = {a.num_pes}" in s
    assert f"{a.total_multipliers} total, {a.pe.mac_bits}-bit" in s
    assert "zero skip     weights, activations, gradients; zero gating off" in s
    assert f"input {validate_cmd._kib(a.pe.input_buffer_bytes)}" in s
    assert f"({a.memory.run_length_bits}-bit runs)" in s
    assert "NSD unit" in s and "δW reduction" in s  # Cartesian: training-only cost lines
    assert "  mac " not in s and "bit-op" not in s  # parallel MACs: no mac line


def test_summary_systolic_and_dense_variants():
    s = validate_cmd.summary(load_arch("systolic32"))
    assert "zero skip     none" in s
    assert "NSD unit" not in s and "δW reduction" not in s and "area" in s
    b = load_arch(load_arch("scnn"), {"memory.compression": "bitmask"})
    assert "-bit runs" not in validate_cmd.summary(b)


def test_mac_lines():
    a = load_arch("scnn")
    ser = load_arch(a, {"pe.mac": "bit_serial", "pe.serial_sign_cycle": False})
    line = validate_cmd._mac_line(ser.pe)
    assert f"bit_serial (magnitude, free sign): {a.pe.multipliers * a.pe.mac_bits} one-bit lanes" in line
    assert f"{a.pe.mult_f} serial values" in line  # F == I: the automatic lane count is that number
    assert "bit-op" in validate_cmd.summary(ser)
    fus = load_arch(a, {"pe.mac": "bit_fusion", "pe.serial_lanes": 2})
    line = validate_cmd._mac_line(fus.pe)
    assert f"bit_fusion: {a.pe.multipliers} units of 16 2-bit bricks, widths [2, 4, 8], 2 serial values" in line
    uneven = load_arch(a, {"pe.mac": "bit_fusion", "pe.mult_f": 2})
    assert "F or I serial values" in validate_cmd._mac_line(uneven.pe)


# --- sweep --out check ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_sweep():
    from hwsim.sweep.spec import load_sweep

    return load_sweep(REPO / "arch_configs" / "sweeps" / "demo.yaml", validate_arch=False)


def test_sweep_out_new_empty_same_or_overwrite(tmp_path, demo_sweep):
    from hwsim.sweep.runner import SPEC_FILE

    sweep_cmd._check_out(demo_sweep, str(tmp_path / "new"), overwrite=False)
    (tmp_path / "empty").mkdir()
    sweep_cmd._check_out(demo_sweep, str(tmp_path / "empty"), overwrite=False)
    same = tmp_path / "same"
    same.mkdir()
    doc = json.loads(json.dumps(demo_sweep.to_json(), default=str))
    doc["source"] = "elsewhere.yaml"  # the sweep file may have moved
    (same / SPEC_FILE).write_text(json.dumps(doc))
    sweep_cmd._check_out(demo_sweep, str(same), overwrite=False)  # resume


def test_sweep_out_of_another_sweep_is_refused(tmp_path, demo_sweep):
    from hwsim.sweep.runner import SPEC_FILE

    other = tmp_path / "other"
    other.mkdir()
    doc = json.loads(json.dumps(demo_sweep.to_json(), default=str))
    doc["configs"] = doc["configs"][:1]
    doc["name"] = "older"
    (other / SPEC_FILE).write_text(json.dumps(doc))
    with pytest.raises(FileExistsError, match=r"holds the results of another sweep \('older'\)"):
        sweep_cmd._check_out(demo_sweep, str(other), overwrite=False)
    sweep_cmd._check_out(demo_sweep, str(other), overwrite=True)
    # the summary file alone identifies the sweep too
    (other / SPEC_FILE).unlink()
    (other / "sweep.json").write_text(json.dumps({"sweep": doc}))
    with pytest.raises(FileExistsError, match="another sweep"):
        sweep_cmd._check_out(demo_sweep, str(other), overwrite=False)
    (other / "sweep.json").write_text("{broken")
    with pytest.raises(FileExistsError, match=r"another sweep \('\?'\)"):
        sweep_cmd._check_out(demo_sweep, str(other), overwrite=False)


def test_sweep_out_with_unrelated_files_is_refused(tmp_path, demo_sweep):
    (tmp_path / "stuff.txt").write_text("x")
    with pytest.raises(FileExistsError, match="holds no hwsim sweep; pass --overwrite"):
        sweep_cmd._check_out(demo_sweep, str(tmp_path), overwrite=False)
    f = tmp_path / "stuff.txt"
    with pytest.raises(NotADirectoryError):
        sweep_cmd._check_out(demo_sweep, str(f), overwrite=True)


# --- trace: TrainConfig from the arguments ------------------------------------------------------------------------

def _trace_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    trace_cmd.add_arguments(p)
    a = p.parse_args(argv)
    a.dataset = a.dataset or "digits"
    return a


def test_train_config_from_args():
    c = trace_cmd._train_config(_trace_args(["--model", "lenet5", "--s", "2", "--k", "7"]), batch_size=64)
    assert (c.model, c.dataset, c.batch_size, c.lr) == ("lenet5", "digits", 64, trace_cmd.DEFAULT_LR)
    assert c.capture.method == "dither" and c.capture.s == 2.0 and c.capture.k is None
    c = trace_cmd._train_config(_trace_args(["--model", "lenet5", "--method", "meprop", "--k", "7",
                                             "--batch-size", "8", "--lr", "0.2"]), batch_size=1)
    assert c.capture.method == "meprop" and c.capture.k == 7 and c.capture.s is None
    assert (c.batch_size, c.lr) == (8, 0.2)
    c = trace_cmd._train_config(_trace_args(["--model", "lenet5", "--method", "none", "--seed", "3",
                                             "--sample-every", "0"]), batch_size=1)
    assert c.batch_size == 1 and c.capture.s is None and c.capture.k is None
    assert (c.capture.seed, c.capture.sample_every) == (3, 0)


# --- inspect on the committed sample trace ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def info():
    return inspect_cmd.inspect_trace(str(SAMPLE))


def test_inspect_summary_is_consistent(info):
    s, layers = info["summary"], info["layers"]
    assert s["model"] == "lenet5" and s["method"] == "dither" and s["complete"]
    assert s["inspected_iteration"] == s["sampled_iterations"][-1]
    assert s["max_bits"] == max(r["max_bits"] for r in layers)
    elems = sum(r["elements"] for r in layers)
    assert s["bits_per_element"] == pytest.approx(8 * s["sample_bytes"] / elems)
    assert s["size_over_entropy"] == pytest.approx(s["bits_per_element"] / s["entropy_bits_per_element"])
    assert 0 < s["density"] < 1 and 0 < s["mean_density"] < 1
    assert s["manifest_bytes"] == (SAMPLE / "manifest.json").stat().st_size


def test_inspect_layer_rows(info):
    for r in info["layers"]:
        assert r["iterations"] == info["summary"]["iterations"]
        assert r["bits_per_element"] == pytest.approx(8 * r["bytes"] / r["elements"])
        assert 0 <= r["entropy_bits_per_element"] <= r["bits_per_element"] * 2
        assert 0 < r["density"] < 1 and 0 < r["sample_density"] < 1
        assert r["sample_max_bits"] <= r["max_bits"]
        assert math.isfinite(r["delta"]) and r["delta"] > 0


def test_inspect_an_earlier_iteration(info):
    first = info["summary"]["sampled_iterations"][0]
    other = inspect_cmd.inspect_trace(str(SAMPLE), iteration=first)
    assert other["summary"]["inspected_iteration"] == first
    assert all(r["sample_iteration"] == first for r in other["layers"])
    # the all-iteration statistics do not depend on which sample is inspected
    assert other["summary"]["mean_density"] == info["summary"]["mean_density"]
    assert [r["sample_density"] for r in other["layers"]] != [r["sample_density"] for r in info["layers"]]


def test_fmt():
    assert inspect_cmd._fmt(None, ".3f") == "-"
    assert inspect_cmd._fmt(0.12345, ".3f") == "0.123"
    assert inspect_cmd._fmt(7, "d") == "7"
