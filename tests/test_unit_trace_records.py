"""One iteration record as a trace stores it (hwsim/trace/records.py ``IterationRecord``, ``LayerStats``), read
directly: the index of old records from their position, the histogram in its list or older mapping form, integral
floats accepted as integers, extra keys kept, and each value outside its range named by file and field."""

from __future__ import annotations

import re

import pytest

from hwsim.trace.nongemm import OpCount
from hwsim.trace.records import IterationRecord, iterations_from_manifest
from hwsim.trace.schema import TraceError


def test_a_record_reads_its_fields_and_keeps_the_rest():
    r = IterationRecord.from_json({"epoch": 1.0, "loss": 2, "sampled": True, "lr_now": 0.01,
                                   "layers": {"fc1": {"density": 0.5, "max_bits": 3.0, "hist": {"2": 4, "3": 1},
                                                      "noise": 0.25, "seen": 7},
                                              "fc2": {"density": 0.25, "hist": [1, 0, 2]}},
                                   "nongemm": {"fc1": {"relu": [1, 8, 8, 8, 0, 0, 0, 0]}}},
                                  file="m.json", position=5)
    assert (r.index, r.epoch, r.loss, r.sampled) == (5, 1, 2.0, True)      # no index: its position
    assert r.extra == {"lr_now": 0.01} and r.has_stats and r.mean_density() == pytest.approx(0.375)
    fc1 = r.layers["fc1"]
    assert (fc1.max_bits, fc1.hist, fc1.noise, fc1.extra) == (3, (4, 1), 0.25, {"seen": 7})   # older mapping hist
    assert r.layers["fc2"].hist == (1, 0, 2) and r.layers["fc2"].max_bits is None
    assert r.nongemm.at("fc1", "forward") == {"relu": OpCount(1, 8, 8, 8)}
    bare = IterationRecord.from_json({"index": 3}, file="f")
    assert not bare.has_stats and bare.mean_density() is None and bare.nongemm is None


@pytest.mark.parametrize("rec,message", [
    ({"index": 0, "layers": {"fc": {"density": 1.5}}},
     "m.json: field 'iterations[2].layers.fc.density': 1.5 is not allowed; allowed: a number in [0, 1] or null"),
    ({"index": 0, "layers": {"fc": {"max_bits": 65}}},
     "m.json: field 'iterations[2].layers.fc.max_bits': 65 is not allowed; allowed: an integer 0..64 or null"),
    ({"index": 0, "layers": {"fc": {"max_bits": 2.5}}},
     "m.json: field 'iterations[2].layers.fc.max_bits': 2.5 is not allowed"),
    ({"index": 0, "layers": {"fc": {"noise": -0.1}}},
     "m.json: field 'iterations[2].layers.fc.noise': -0.1 is not allowed; allowed: a number or null"),
    ({"index": 0, "layers": {"fc": {"hist": [1, "x"]}}},
     "m.json: field 'iterations[2].layers.fc.hist': must be a list of counts, got [1, 'x']"),
    ({"index": 0, "layers": {"fc": {"hist": [1, True]}}},      # a bool is not a count (the fast path falls back)
     "m.json: field 'iterations[2].layers.fc.hist': must be a list of counts, got [1, True]"),
    ({"index": 0, "layers": {"fc": {"density": -0.0001}}},
     "m.json: field 'iterations[2].layers.fc.density': -0.0001 is not allowed; allowed: a number in [0, 1] or null"),
    ({"index": 0, "layers": {"fc": 0.5}},
     "m.json: field 'iterations[2].layers.fc': must be an object {density, max_bits, hist}, got 0.5"),
    ({"index": -1}, "m.json: field 'iterations[2].index': -1 is not allowed; allowed: an integer >= 0 or null"),
    ({"index": 0, "sampled": "no"}, "m.json: field 'iterations[2].sampled': must be true, false or null, got 'no'"),
    ({"index": 0, "loss": "high"}, "m.json: field 'iterations[2].loss': 'high' is not allowed; allowed: a number"),
    ({"index": 0, "nongemm": {"fc": {"relu": [1]}}}, "m.json: field 'iterations[2].nongemm.fc.relu': [1] is not "
                                                     "allowed"),
])
def test_a_value_outside_its_range_is_named(rec, message):
    with pytest.raises(TraceError, match="^" + re.escape(message)):
        IterationRecord.from_json(rec, file="m.json", field_prefix="iterations[2].")


def test_records_that_are_not_objects():
    with pytest.raises(TraceError, match=re.escape("m.json: field 'iterations[2]' must be an object, got list '[1]'")):
        IterationRecord.from_json([1], file="m.json", field_prefix="iterations[2].")
    with pytest.raises(TraceError, match=re.escape("log.jsonl: line 4: the record must be an object, got str 'x'")):
        IterationRecord.from_json("x", file="log.jsonl: line 4")
    with pytest.raises(TraceError, match=re.escape("m.json: field 'iterations' must be a list of objects, got dict")):
        iterations_from_manifest({}, "m.json")
    its = iterations_from_manifest([{"loss": 1.0}, {"loss": 0.5}], "m.json")
    assert [r.index for r in its] == [0, 1]                                     # version 1: positions


def test_plain_numbers_at_the_bounds_read_as_before():
    r = IterationRecord.from_json({"index": 0, "loss": 3, "layers": {"a": {"density": 0.0, "a_density": 1.0, "delta": -2.5,
                                                                         "hist": [1, 2.0], "noise": float("nan")}}},
                                  file="f")
    a = r.layers["a"]
    assert (a.density, a.a_density, a.delta, a.hist) == (0.0, 1.0, -2.5, (1, 2.0)) and a.noise != a.noise  # NaN kept
    assert type(r.loss) is float and r.loss == 3.0                                  # an int loss as a float


@pytest.mark.parametrize("stats", [
    {"density": 0.25, "max_bits": 5, "hist": [3, 1, 0], "delta": 0.001, "noise": 0.3, "dz_norm": 0.02},
    {"density": 0.0, "a_density": 1.0, "w_density": 0.5},            # the bounds
    {"density": 1, "hist": [1.0, 2]},                                # an int density: the checked path (→ 1.0)
    {"max_bits": 3.0, "dz_norm": 0},                                  # integral float bits, an int norm
    {"density": 0.5, "hist": {"2": 4, "3": 1}, "seen": 7},            # older mapping hist, an extra key
    {"delta": 3, "noise": float("nan")},
    {},
])
def test_the_plain_path_reads_what_the_checked_path_reads(stats, monkeypatch):
    from hwsim.trace import records

    fast = IterationRecord.from_json({"index": 0, "layers": {"l": stats}}, file="f").layers["l"]
    monkeypatch.setattr(records, "_plain_stats", lambda d: None)
    checked = IterationRecord.from_json({"index": 0, "layers": {"l": stats}}, file="f").layers["l"]
    assert repr(fast) == repr(checked)                          # the same values and types (1 → 1.0, 3.0 → 3)


@pytest.mark.parametrize("rec", [
    {"index": 7, "epoch": 1, "loss": 0.5, "acc": 0.25, "sampled": True,
     "layers": {"a": {"density": 0.25, "max_bits": 3, "hist": [3, 1]}, "b": {}},
     "nongemm": {"a": {"relu": [1, 10, 10, 10, 1, 10, 20, 10]}}},     # what capture writes
    {"loss": None, "acc": None, "sampled": None, "layers": None},     # nulls; no index: the position
    {"index": 2.0, "epoch": 0, "loss": 1},                            # an integral float index, an int loss
    {"index": 1, "lr": 0.1},                                          # an extra key
    {"index": 1, "layers": {"a": {"density": 1}}},                    # statistics the checked path reads
    {"index": 0, "sampled": False, "layers": {}},
])
def test_a_plain_record_reads_as_the_checked_path_reads_it(rec, monkeypatch):
    from hwsim.trace import records

    fast = IterationRecord.from_json(rec, file="f", position=4)
    monkeypatch.setattr(records, "_plain_record", lambda *a: None)
    checked = IterationRecord.from_json(rec, file="f", position=4)
    assert repr(fast) == repr(checked) and fast == checked       # the same values and types


@pytest.mark.parametrize(("rec", "message"), [
    ({"index": -1}, "field 'index': -1 is not allowed"),
    ({"index": True}, "field 'index': True is not allowed"),
    ({"index": 0, "epoch": -2}, "field 'epoch': -2 is not allowed"),
    ({"index": 0, "loss": "x"}, "field 'loss': 'x' is not allowed"),
    ({"index": 0, "sampled": 1}, "field 'sampled': must be true, false or null"),
    ({"index": 0, "layers": {"a": {"density": 1.5}}}, "field 'layers.a.density': 1.5 is not allowed"),
    ({"index": 0, "layers": []}, "field 'layers': must be an object"),
])
def test_a_record_the_plain_path_refuses_is_named_by_the_checked_path(rec, message):
    with pytest.raises(TraceError, match=re.escape(f"f: {message}")):
        IterationRecord.from_json(rec, file="f")
