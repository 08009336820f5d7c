"""The non-GEMM records as data (hwsim/trace/nongemm.py): rows of one layer and kind add up, passes with no work
are not stored, the JSON form round-trips, ``meta.nongemm`` says how much was recognised, and every malformed
field is refused in one line naming the file and field."""

from __future__ import annotations

import re

import pytest

from hwsim.trace.nongemm import KINDS, NonGemmWork, OpCount, call_row, check_meta, coverage_line, meta_for
from hwsim.trace.schema import TraceError


def test_rows_of_one_layer_and_kind_add_and_empty_passes_are_dropped():
    w = NonGemmWork.from_rows([("fc1", "relu", [1, 10, 10, 10, 1, 10, 20, 10]),
                               ("fc1", "relu", [1, 6, 6, 6, 0, 0, 0, 0]),      # no backward (no gradient)
                               ("fc2", "other", [2, 4, 4, 4, 0, 0, 0, 0])])
    assert w.at("fc1", "forward") == {"relu": OpCount(2, 16, 16, 16)}
    assert w.at("fc1", "backward") == {"relu": OpCount(1, 10, 20, 10)}
    assert w.at("fc2", "backward") == {} and w.layers() == ["fc1", "fc2"]
    assert w.totals("forward") == {"relu": OpCount(2, 16, 16, 16), "other": OpCount(2, 4, 4, 4)}
    assert w.totals()["relu"] == OpCount(3, 26, 36, 26)
    assert w.to_json() == {"fc1": {"relu": [2, 16, 16, 16, 1, 10, 20, 10]}, "fc2": {"other": [2, 4, 4, 4, 0, 0, 0, 0]}}
    assert NonGemmWork.from_json(w.to_json(), file="f") == w
    assert sorted(k for k, _ in w) == [("fc1", "relu", "backward"), ("fc1", "relu", "forward"),
                                       ("fc2", "other", "forward")]


def test_call_row_without_a_gradient_has_no_backward():
    assert call_row("maxpool", [64], 16, None) == [1, 64, 64, 16, 0, 0, 0, 0]
    assert call_row("add", [8, 1], 8, [8, 1]) == [1, 8, 9, 8, 1, 8, 17, 9]   # a broadcast bias: 8 + 1 read


def test_meta_says_how_much_was_recognised():
    w = NonGemmWork.from_rows([("a", "gelu", [1, 30, 30, 30, 0, 0, 0, 0]), ("a", "other", [1, 10, 10, 10, 0, 0, 0, 0]),
                               ("b", "add", [1, 60, 120, 60, 1, 60, 180, 120])])
    meta = meta_for(w, source="capture", other={"aten::roll": 1})
    assert meta == {"version": 1, "source": "capture", "kinds": ["gelu", "add", "other"],   # KINDS order
                    "other": {"aten::roll": 1}, "recognised": 0.9}                      # 90 of 100 elements
    assert check_meta(meta, file="m.json") == meta
    assert coverage_line(meta) == ("non-GEMM work (capture): gelu, add, other; 90.0 % of its elements in known "
                                   "kinds; not recognised (not charged): aten::roll ×1")
    assert meta_for(NonGemmWork.from_rows([]), source="topology")["recognised"] == 1.0
    # no records: an old trace, or a synthetic one of GEMMs only (a freshly written SCALE-Sim trace is not "old")
    assert coverage_line(None) == ("non-GEMM work: not recorded (a trace written before non-GEMM records, or a "
                                   "synthetic one of GEMMs only, as from a SCALE-Sim CSV): charged as zero")
    assert coverage_line({"source": "topology", "kinds": []}) == ("non-GEMM work (topology): none; 100.0 % of its "
                                                                  "elements in known kinds")


def test_coverage_line_lists_at_most_six_unrecognised_ops():
    other = {f"op{i}": i for i in range(8)}
    line = coverage_line({"source": "capture", "kinds": ["other"], "other": other, "recognised": 0.5})
    assert line.endswith("not recognised (not charged): op0 ×0, op1 ×1, op2 ×2, op3 ×3, op4 ×4, op5 ×5")


GOOD = {"version": 1, "source": "topology", "kinds": ["relu"], "other": {}, "recognised": 1.0}


@pytest.mark.parametrize("meta,message", [
    ([1], "m.json: field 'meta.nongemm' must be an object {version, source, kinds, other, recognised}, got list"),
    ({**GOOD, "version": 2}, "m.json: field 'meta.nongemm.version': 2 is not allowed; allowed: 1"),
    ({**GOOD, "version": True}, "m.json: field 'meta.nongemm.version': True is not allowed; allowed: 1"),
    ({**GOOD, "source": "profiler"}, "m.json: field 'meta.nongemm.source': 'profiler' is not allowed; allowed: "
                                     "capture, topology"),
    ({**GOOD, "kinds": ["relu", "conv"]}, "m.json: field 'meta.nongemm.kinds': ['relu', 'conv'] is not allowed; "
                                          "allowed: a list of relu, gelu, "),
    ({**GOOD, "other": {"x": 1.5}}, "m.json: field 'meta.nongemm.other' must be an object {op name: calls}"),
    ({**GOOD, "other": {"x": True}}, "m.json: field 'meta.nongemm.other' must be an object {op name: calls}"),
    ({**GOOD, "recognised": 1.5}, "m.json: field 'meta.nongemm.recognised': 1.5 is not allowed; allowed: a number "
                                  "in [0, 1]"),
    ({**GOOD, "recognised": True}, "m.json: field 'meta.nongemm.recognised': True is not allowed"),
])
def test_a_bad_meta_field_is_named(meta, message):
    with pytest.raises(TraceError, match="^" + re.escape(message)):
        check_meta(meta, file="m.json")


def test_meta_absent_is_a_trace_before_the_records():
    assert check_meta(None, file="m.json") is None
    assert check_meta({**GOOD, "recognised": None}, file="m.json")["recognised"] is None


@pytest.mark.parametrize("d,message", [
    ([], "f.jsonl: field 'nongemm' must be an object {layer: {kind: [8 integers]}}, got list"),
    ({"fc1": [1]}, "f.jsonl: field 'nongemm.fc1' must be an object {kind: [8 integers]}, got list"),
    ({"fc1": {"relu": [1, 2, 3, 4, 5, 6, 7, -1]}}, "f.jsonl: field 'nongemm.fc1.relu': [1, 2, 3, 4, 5, 6, 7, -1] is "
                                                   "not allowed; allowed: a list of 8 integers >= 0 (calls, elements, "
                                                   "read, written, b_calls, b_elements, b_read, b_written)"),
    ({"fc1": {"relu": [True] * 8}}, "f.jsonl: field 'nongemm.fc1.relu': [True, True"),
    ({"fc1": {"relu": (1,) * 8}}, "f.jsonl: field 'nongemm.fc1.relu': (1, 1, 1"),
])
def test_a_bad_record_is_named(d, message):
    with pytest.raises(TraceError, match="^" + re.escape(message)):
        NonGemmWork.from_json(d, file="f.jsonl")


def test_every_kind_is_accepted():
    w = NonGemmWork.from_json({"l": {k: [1, 1, 1, 1, 0, 0, 0, 0] for k in KINDS}}, file="f")
    assert set(w.totals()) == set(KINDS)
