"""Bounds and lookups of a results file, on hand-built records (hwsim/results/records.py, views.py): the roofline
of a scope under each schedule (Σ max per layer-pass in isolation, max of sums in one iteration schedule), the
DRAM term of older files, dense @ 100 %, and the errors for a pass, variant, bound, layer or file that is not
there.

Layer a, forward: MAC bound 10 cycles, DRAM bound 4; layer b, backward-data: MAC bound 2, DRAM bound 9; sparse
runs 20 and 30 cycles; 1,000 dense MACs each on 64 multipliers.
"""

from __future__ import annotations

import json
import re

import pytest

from hwsim.results.breakdown import CycleBreakdown, EnergyBreakdown, ResultsError, VariantResult
from hwsim.results.records import LayerPassResult, SimResult, load_results


def _v(cycles: int, pj: float = 1.0, mults: int = 64) -> VariantResult:
    return VariantResult(cycle_breakdown=CycleBreakdown(compute=cycles), energy_breakdown=EnergyBreakdown(mac=pj),
                         macs=cycles, multipliers=mults)


def _lp(name: str, p: str, sparse: int, ideal: int, dram: int | None, floor: int = 0) -> LayerPassResult:
    return LayerPassResult(name=name, pass_name=p, macs_dense=1000, macs_effectual=100, sparse=_v(sparse, 2.0),
                           dense=_v(50, 8.0), dense_gated=_v(50, 4.0), ideal=_v(ideal), dram_bound_cycles=dram,
                           bandwidth_floor_cycles=floor)


LAYERS = (_lp("a", "forward", 20, 10, 4, floor=3), _lp("b", "backward_data", 30, 2, 9, floor=5))


def _result(schedule: str) -> SimResult:
    return SimResult(trace={}, arch={"params": {"memory": {"schedule": schedule}}}, layers=LAYERS)


def test_roofline_follows_the_schedule():
    iso, it = _result("isolated"), _result("iteration")
    assert (iso.overlapped, it.overlapped) == (False, True)
    assert iso.bound("roofline") == max(10, 4) + max(2, 9) == 19          # each layer-pass alone
    assert it.bound("roofline") == max(10 + 2, 4 + 9) == 13               # traffic hides behind other compute
    assert iso.bound("roofline", "forward") == it.bound("roofline", "forward") == 10
    assert iso.speedup(baseline="roofline") == pytest.approx(19 / 50)     # the fraction of the bound reached
    assert SimResult(trace={}, arch={}, layers=LAYERS).overlapped is False  # an older file: isolated


def test_the_dram_term_of_older_files_and_dense_at_full_rate():
    old = _lp("a", "forward", 20, 10, None, floor=12)
    assert old.dram_cycles() == 12 and old.bound_cycles("roofline") == 12   # the bandwidth floor stands in
    assert LAYERS[0].bound_cycles("dense_full") == 16                       # ⌈1000 / 64⌉
    upd = _lp("a", "update", 5, 3, 0)
    assert upd.bound_cycles("dense_full") == 3                              # no MACs: the vector unit at 100 %
    none = LayerPassResult(name="a", pass_name="forward", macs_dense=1000, macs_effectual=0, sparse=_v(1),
                           dense=_v(1, mults=0), dense_gated=_v(1), ideal=_v(1))
    assert none.bound_cycles("dense_full") == 0


def test_per_pass_totals_ratios_and_floors():
    r = _result("isolated")
    assert r.bandwidth_floor() == 8 and r.bandwidth_floor("backward_data") == 5
    assert r.speedup() == pytest.approx(100 / 50) and r.speedup(pass_name="forward") == pytest.approx(50 / 20)
    assert r.energy_ratio(pass_name="backward_data") == pytest.approx(8 / 2)
    assert r.energy_ratio(baseline="dense_gated") == pytest.approx(8 / 4)
    assert r.fraction_of_ideal(pass_name="forward") == pytest.approx(10 / 20)
    assert r.layer("b", "backward_data") is LAYERS[1] and r.layer_names() == ["a", "b"]


def test_lookups_that_are_not_there_are_named():
    with pytest.raises(ResultsError, match=r"^layer 'a': pass 'fwd' is not one of \('forward', "):
        _lp("a", "fwd", 1, 1, 1)
    with pytest.raises(ResultsError, match=r"^variant 'best' is not one of \('sparse', "):
        LAYERS[0].variant("best")
    with pytest.raises(ResultsError, match=r"^bound 'peak' is not one of \('mac_bound', 'roofline', 'dense_full'\)$"):
        LAYERS[0].bound_cycles("peak")
    r = _result("isolated")
    with pytest.raises(KeyError, match=re.escape("no layer 'a' pass 'backward_data'; layers: ['a', 'b']")):
        r.layer("a", "backward_data")
    with pytest.raises(ResultsError, match=r"^pass 'backward' is not one of \('forward', "):
        r.pass_total("backward", "sparse")
    with pytest.raises(ResultsError, match=r"^'fastest' is not a variant or a bound; allowed: sparse, dense, "):
        r.speedup(baseline="fastest")


def test_a_results_file_that_is_not_one_is_named(tmp_path):
    with pytest.raises(ResultsError, match=re.escape(f"{tmp_path / 'no.json'}: no such results file")):
        load_results(tmp_path / "no.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ResultsError, match=re.escape(f"{tmp_path / 'bad.json'}: not valid JSON (")):
        load_results(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(ResultsError, match=re.escape(f"{tmp_path / 'list.json'}: top level must be a JSON object")):
        load_results(tmp_path / "list.json")
    doc = _result("isolated").to_json()
    for key, edit, message in (("layers", None, "field 'layers' is missing"),
                               ("run", [1], "field 'run' must be an object, got list")):
        d = json.loads(json.dumps(doc))
        if edit is None:
            del d[key]
        else:
            d[key] = edit
        with pytest.raises(ResultsError, match=f"^r.json: {re.escape(message)}$"):
            SimResult.from_json(d, where="r.json")
