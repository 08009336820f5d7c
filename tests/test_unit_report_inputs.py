"""Unit tests of hwsim.report.inputs on hand-written files: how each path is classified, every structural check
of a results file and a sweep summary (one clear error each), labels, provenance of old files, batch texts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwsim.report.inputs import ReportInputError, ResultEntry, load_inputs, result_provenance
from hwsim.results import SimResult


def _result_doc(**kw):
    d = {"trace": {"model": "lenet5", "method": "dither", "iteration": 7}, "arch": {"name": "scnn"}, "layers": []}
    d.update(kw)
    return d


def _write(p: Path, doc) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(doc))
    return p


def _sweep_doc(**kw):
    d = {"sweep": {"name": "s1"}, "parameters": ["pe.mac_bits"], "rows": [{"cycles_sparse": 10, "trace": "t"}]}
    d.update(kw)
    return d


# ----------------------------------------------------------------------------- classification

def test_results_file_label_is_model_method_at_arch(tmp_path):
    inp = load_inputs([_write(tmp_path / "r.json", _result_doc())])
    (e,) = inp.results
    assert e.label == "lenet5 dither @ scnn" and not inp.sweeps and not inp.traces and not inp.empty
    assert inp.sources == (str(tmp_path / "r.json"),)


def test_overrides_join_the_label_and_a_file_without_model_is_named_by_its_stem(tmp_path):
    prov = {"arch": {"overrides": {"memory.dram_bytes_per_cycle": 64}}}
    (e,) = load_inputs([_write(tmp_path / "r.json", _result_doc(provenance=prov))]).results
    assert e.label == "lenet5 dither @ scnn [dram_bytes_per_cycle=64]" and e.overrides == "dram_bytes_per_cycle=64"
    (f,) = load_inputs([_write(tmp_path / "plain.json", _result_doc(trace={}, arch={}))]).results
    assert f.label == "plain @ arch" and f.model == "model" and f.method == "?" and f.arch_name == "arch"


def test_a_folder_with_results_json_and_a_folder_of_results_files(tmp_path):
    _write(tmp_path / "one" / "results.json", _result_doc())
    _write(tmp_path / "many" / "b.json", _result_doc(trace={"model": "m2"}))
    _write(tmp_path / "many" / "a.json", _result_doc(trace={"model": "m1"}))
    inp = load_inputs([tmp_path / "one", tmp_path / "many"])
    assert [e.label for e in inp.results] == ["lenet5 dither @ scnn", "m1 @ scnn", "m2 @ scnn"]  # sorted files


def test_results_json_in_a_folder_wins_over_its_other_json_files(tmp_path):
    _write(tmp_path / "one" / "results.json", _result_doc())
    _write(tmp_path / "one" / "timings.json", {"seconds": 3})  # not a results file: never read
    assert [e.label for e in load_inputs([tmp_path / "one"]).results] == ["lenet5 dither @ scnn"]


def test_a_results_file_with_a_rows_field_is_still_a_results_file(tmp_path):
    (e,) = load_inputs([_write(tmp_path / "r.json", _result_doc(rows=[]))]).results
    assert e.label == "lenet5 dither @ scnn"


def test_equal_labels_get_their_folder_and_file_name(tmp_path):
    a = _write(tmp_path / "x" / "run.json", _result_doc())
    b = _write(tmp_path / "y" / "run.json", _result_doc())
    c = _write(tmp_path / "y" / "other.json", _result_doc(trace={"model": "m"}))
    labels = [e.label for e in load_inputs([a, b, c]).results]
    assert labels == ["lenet5 dither @ scnn [x/run]", "lenet5 dither @ scnn [y/run]", "m @ scnn"]


def test_sweep_summary_as_a_folder_or_a_file(tmp_path):
    _write(tmp_path / "sw" / "sweep.json", _sweep_doc(provenance={"traces": {}}))
    _write(tmp_path / "loose.json", _sweep_doc(sweep={}))
    inp = load_inputs([tmp_path / "sw", tmp_path / "loose.json"])
    assert [s.label for s in inp.sweeps] == ["s1", tmp_path.name]  # no name: the folder's
    assert inp.sweeps[0].parameters == ("pe.mac_bits",) and inp.sweeps[0].rows[0]["cycles_sparse"] == 10
    assert inp.sweeps[0].source == tmp_path / "sw" and inp.sweeps[0].provenance == {"traces": {}}


def test_a_trace_folder_or_its_manifest(tmp_path):
    from hwsim.trace.synth import synthesize

    p = Path(synthesize(tmp_path / "t", model="lenet5", w_density=0.5, a_density=0.5, dz_density=0.1, batch=1,
                        seed=0))
    inp = load_inputs([p, p / "manifest.json"])
    assert len(inp.traces) == 2 and inp.traces[0].source == inp.traces[1].source == p
    t = inp.traces[0]
    assert t.label == "lenet5 synthetic" and t.method == "synthetic" and t.has_levels
    assert t.layer_order == ("conv1", "conv2", "fc1", "fc2", "fc3") and set(t.layers) == set(t.layer_order)


@pytest.mark.parametrize("setup,match", [
    (lambda d: d / "missing", "no such file or directory"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "holds no sweep.json, manifest.json or \\*.json results"),
    (lambda d: (d / "r.txt").write_text("x") and d / "r.txt", "not a .json results file or a directory"),
    (lambda d: (d / "bad.json").write_text("{oops") and d / "bad.json", "not valid JSON"),
])
def test_paths_that_are_not_inputs(tmp_path, setup, match):
    with pytest.raises(ReportInputError, match=match):
        load_inputs([setup(tmp_path)])
    assert load_inputs([]).empty


# ----------------------------------------------------------------------------- structure checks

LAYER = {"name": "c1", "pass": "forward", "macs_dense": 10, "macs_effectual": 5}


@pytest.mark.parametrize("doc,match", [
    ([1], "top level must be a JSON object"),
    (_result_doc(trace=[1]), "field 'trace' must be an object, got list"),
    (_result_doc(layers={}), "field 'layers' must be a list, got dict"),
    (_result_doc(layers=[3]), r"layers\[0\]: must be an object, got int"),
    (_result_doc(layers=[{"name": "c1", "pass": 1}]), r"layers\[0\]\.pass: 1 is not allowed; allowed: a string"),
    (_result_doc(layers=[{**LAYER, "macs_dense": -1}]), r"layers\[0\].macs_dense: -1 is not allowed"),
    (_result_doc(layers=[{**LAYER, "macs_effectual": True}]), r"macs_effectual: True is not allowed"),
    (_result_doc(layers=[{**LAYER, "density": {"w": "x"}}]), r"layers\[0\]\.density\.w: 'x' is not allowed; allowed: a number in \[0, 1\] or null"),
    (_result_doc(layers=[{**LAYER, "sparse": 5}]), r"layers\[0\].sparse: must be an object, got int"),
    (_result_doc(layers=[{**LAYER, "sparse": {"cycles": "9"}}]), r"sparse.cycles: '9' is not allowed"),
    (_result_doc(layers=[{**LAYER, "sparse": {"breakdown": {"cycles": {"mac": -2}}}}]),
     r"sparse\.breakdown\.cycles\.mac: -2 is not allowed; allowed: a finite number >= 0"),
    (_result_doc(layers=[LAYER]), r"layers\[0\] \('c1', 'forward'\): field 'sparse' is missing"),  # VARIANTS[0]
])
def test_malformed_results_files(tmp_path, doc, match):
    with pytest.raises(ReportInputError, match=match):
        load_inputs([_write(tmp_path / "r.json", doc)])


@pytest.mark.parametrize("doc,match", [
    (_sweep_doc(sweep=[]), "field 'sweep' must be an object, got list"),
    (_sweep_doc(parameters="pe.mac_bits"), "field 'parameters' must be a list of key paths"),
    (_sweep_doc(rows={}), "field 'rows' must be a list of objects, got dict"),
    (_sweep_doc(rows=[1]), r"field 'rows\[0\]' must be an object, got int"),
    (_sweep_doc(rows=[{"speedup_sparse": -1.0}]), r"field 'rows\[0\].speedup_sparse': -1.0 is not allowed"),
    (_sweep_doc(rows=[{"energy_pj_sparse": "big"}]), r"'rows\[0\].energy_pj_sparse': 'big' is not allowed"),
])
def test_malformed_sweep_summaries(tmp_path, doc, match):
    with pytest.raises(ReportInputError, match=match):
        load_inputs([_write(tmp_path / "sw" / "sweep.json", doc)])


def test_sweep_summary_missing_a_field_asks_whether_it_is_one(tmp_path):
    doc = _sweep_doc()
    del doc["parameters"]
    _write(tmp_path / "sw" / "sweep.json", doc)
    with pytest.raises(ReportInputError, match="field 'parameters' is missing; is this an 'hwsim sweep' summary"):
        load_inputs([tmp_path / "sw"])


def test_null_and_non_numeric_columns_of_sweep_rows_are_fine(tmp_path):
    rows = [{"cycles_sparse": None, "trace": "t", "overrides": "x=1", "utilization_sparse": 0.5}]
    (sw,) = load_inputs([_write(tmp_path / "sw" / "sweep.json", _sweep_doc(rows=rows))]).sweeps
    assert sw.rows[0]["overrides"] == "x=1"


# ----------------------------------------------------------------------------- entries

def _entry(**kw) -> ResultEntry:
    return ResultEntry(label="x", source=Path("r.json"), result=SimResult.from_json(_result_doc(**kw)))


def test_provenance_of_an_old_file_is_rebuilt_and_says_overrides_are_unknown():
    r = SimResult.from_json(_result_doc(arch={"name": "scnn", "params": {"pe_array": {"rows": 8}}}))
    p = result_provenance(r)
    assert p["trace"]["model"] == "lenet5" and p["trace"]["replayed_iterations"] == [7]
    assert p["arch"]["overrides"] == {} and "overrides unknown" in p["arch"]["note"]
    bare = result_provenance(SimResult.from_json(_result_doc(trace={})))
    assert bare["arch"] == {} and bare["trace"]["replayed_iterations"] == []
    stored = {"trace": {"model": "m"}}
    assert result_provenance(SimResult.from_json(_result_doc(provenance=stored))) == stored


@pytest.mark.parametrize("prov,run,text", [
    ({}, {}, "training iteration 7"),
    ({}, {"training": False}, "inference 7"),
    ({"trace": {"replayed_iterations": [3], "iterations": 10, "replayed_examples": 64}}, {},
     "training iteration 3 of 10, batch 64"),
    ({"mode": "iteration", "trace": {"replayed_iterations": [0, 5, 9, 12], "iterations": 13,
                                     "replayed_examples": 64, "replayed_examples_min": 29}}, {},
     "whole training run: 4 replayed iterations of 13 (left-hold estimator), batches 29–64"),
])
def test_batch_text(prov, run, text):
    prov = {**prov, "trace": {"replayed_iterations": [7], **prov.get("trace", {})}}
    assert _entry(provenance=prov, run=run).batch_text == text


def test_layer_label_adds_the_description_on_a_second_line():
    e = ResultEntry(label="x", source=Path("r.json"), result=SimResult.from_json(_result_doc()),
                    layers={"features.3": "conv 6→16 5×5"})
    assert e.layer_label("features.3") == "features.3\nconv 6→16 5×5"
    assert e.layer_label("classifier.weight_proj", limit=10) == "…ight_proj"
