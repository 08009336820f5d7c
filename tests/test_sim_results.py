"""Result records add up and round-trip through JSON."""

from __future__ import annotations

import json
import math

import pytest

from hwsim.results import (
    PASSES,
    VARIANTS,
    CycleBreakdown,
    EnergyBreakdown,
    LayerPassResult,
    ResultsError,
    SimResult,
    VariantResult,
    load_results,
    save_results,
)


def _vr(k: int) -> VariantResult:
    return VariantResult(cycle_breakdown=CycleBreakdown(10 * k, k, 2 * k, 3, 1),
                         energy_breakdown=EnergyBreakdown(0.1 * k, 0.2, 0.3 * k, 0.4, 1.7 * k),
                         macs=100 * k, multipliers=16, analytical_cycles=10 * k + k)


def _result() -> SimResult:
    layers = []
    for i, name in enumerate(["c1", "c2"]):
        for j, p in enumerate(PASSES):
            k = 1 + i + j
            layers.append(LayerPassResult(name=name, pass_name=p, macs_dense=1000, macs_effectual=100 * k,
                                          sparse=_vr(k), dense=_vr(5 * k), dense_gated=_vr(5 * k), ideal=_vr(1),
                                          density={"w": 1.0, "a": 0.5, "dz": 0.1, "out": 0.4}))
    return SimResult(trace={"path": "t", "model": "m"}, arch={"name": "a"}, layers=tuple(layers))


def test_breakdowns_add_up_and_totals_are_layer_sums():
    r = _result()
    for v in VARIANTS:
        tot = r.total(v)
        assert tot.cycles == sum(lp.variant(v).cycles for lp in r.layers)
        assert tot.cycles == sum(r.pass_total(p, v).cycles for p in PASSES)
        assert math.isclose(tot.energy_pj, sum(lp.variant(v).energy_pj for lp in r.layers))
        assert tot.cycles == sum(tot.cycle_breakdown.to_json().values())
    assert r.speedup() == r.total("dense").cycles / r.total("sparse").cycles
    assert r.energy_ratio(pass_name="forward") == (r.pass_total("forward", "dense").energy_pj
                                                    / r.pass_total("forward", "sparse").energy_pj)


def test_json_round_trip(tmp_path):
    r = _result()
    p = save_results(r, tmp_path / "out" / "results.json")
    d = json.loads(p.read_text())
    assert set(d) >= {"hwsim_version", "trace", "arch", "layers", "passes", "total"}
    assert d["layers"][0]["pass"] == "forward"
    assert set(d["layers"][0]["sparse"]["breakdown"]["cycles"]) == {
        "compute", "fragmentation", "imbalance", "bank_conflict", "memory_stall", "reduction", "nsd"}
    r2 = load_results(p)
    assert r2 == r
    assert r2.to_json() == r.to_json()
    assert len(r.to_rows()) == len(r.layers) * len(VARIANTS)


def test_bad_results_name_the_field(tmp_path):
    d = _result().to_json()
    d["layers"][1]["sparse"]["cycles"] += 1
    with pytest.raises(ResultsError, match=r"layers\[1\].*sparse.cycles"):
        SimResult.from_json(d)
    del d["layers"][0]["dense"]
    with pytest.raises(ResultsError, match="'dense'"):
        SimResult.from_json(d)
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(ResultsError, match="x.json"):
        load_results(tmp_path / "x.json")
