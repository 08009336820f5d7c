"""Unit tests of hwsim.results.breakdown: parts add up, records add component-wise, JSON round trip and its errors."""

from __future__ import annotations

import pytest

from hwsim.results.actions import Actions
from hwsim.results.breakdown import (
    CYCLE_PARTS,
    ENERGY_PARTS,
    OPTIONAL_PARTS,
    CycleBreakdown,
    EnergyBreakdown,
    ResultsError,
    VariantResult,
    sum_variants,
)


def _vr(k: int = 1) -> VariantResult:
    return VariantResult(cycle_breakdown=CycleBreakdown(*(k * (i + 1) for i in range(len(CYCLE_PARTS)))),
                         energy_breakdown=EnergyBreakdown(*(k * 0.5 * (i + 1) for i in range(len(ENERGY_PARTS)))),
                         macs=100 * k, multipliers=8, analytical_cycles=3 * k, actions={"mult": 10.0 * k})


def test_totals_are_the_sum_of_the_parts():
    v = _vr()
    n, m = len(CYCLE_PARTS), len(ENERGY_PARTS)
    assert v.cycles == n * (n + 1) // 2
    assert v.energy_pj == pytest.approx(0.5 * m * (m + 1) / 2)
    assert v.utilization == pytest.approx(100 / (v.cycles * 8))
    assert VariantResult().utilization == 0.0  # no cycles: no division by zero


def test_addition_is_component_wise():
    a, b = _vr(1), _vr(2)
    s = a + b
    assert s.cycle_breakdown.to_json() == {k: 3 * x for k, x in a.cycle_breakdown.to_json().items()}
    assert s.energy_breakdown.to_json() == pytest.approx({k: 3 * x for k, x in a.energy_breakdown.to_json().items()})
    assert s.macs == 300 and s.analytical_cycles == 9 and s.multipliers == 8
    assert s.actions.count("mult") == 30.0 and s.actions.count("add") == 0.0


def test_sum_variants_takes_the_larger_array():
    a = VariantResult(cycle_breakdown=CycleBreakdown(compute=5), multipliers=4)
    b = VariantResult(cycle_breakdown=CycleBreakdown(compute=7), multipliers=16)
    s = sum_variants([a, b])
    assert s.cycles == 12 and s.multipliers == 16
    assert sum_variants([]) == VariantResult()


def test_actions_mapping_is_accepted_and_checked():
    assert isinstance(_vr().actions, Actions)
    with pytest.raises(ValueError, match=r"unknown action\(s\) \['bogus'\]"):
        VariantResult(actions={"bogus": 1.0})


def test_json_round_trip():
    v = _vr(3)
    d = v.to_json()
    assert d["cycles"] == v.cycles and d["energy_pj"] == pytest.approx(v.energy_pj)
    assert d["breakdown"]["cycles"] == v.cycle_breakdown.to_file_json()
    # fill_drain (issue 17) is stored only when non-zero, so isolated-schedule files are unchanged
    assert v.cycle_breakdown.fill_drain and d["breakdown"]["cycles"] == v.cycle_breakdown.to_json()
    z = VariantResult(cycle_breakdown=CycleBreakdown(compute=3, memory_stall=2))
    assert "fill_drain" not in z.to_json()["breakdown"]["cycles"] and VariantResult.from_json(z.to_json()) == z
    assert z.cycle_breakdown.to_json()["fill_drain"] == 0   # rows and tables see every part
    assert VariantResult.from_json(d) == v


def test_older_files_without_optional_parts_load_with_zeros():
    d = _vr().to_json()
    for k in OPTIONAL_PARTS:
        d["breakdown"]["cycles"].pop(k, None)
        d["breakdown"]["energy_pj"].pop(k, None)
    del d["cycles"], d["energy_pj"]
    v = VariantResult.from_json(d)
    assert v.cycle_breakdown.reduction == 0 and v.cycle_breakdown.nsd == 0 and v.energy_breakdown.leakage == 0.0


def test_missing_required_part_names_the_field():
    d = _vr().to_json()
    del d["breakdown"]["cycles"]["compute"]
    with pytest.raises(ResultsError, match="layer 3: field 'compute' is missing"):
        VariantResult.from_json(d, where="layer 3")


def test_stored_totals_must_match_the_parts():
    d = _vr().to_json()
    d["cycles"] += 1
    with pytest.raises(ResultsError, match=r"v\.cycles: .* != sum of breakdown\.cycles"):
        VariantResult.from_json(d, where="v")
    d = _vr().to_json()
    d["energy_pj"] *= 1.01
    with pytest.raises(ResultsError, match=r"v\.energy_pj: .* != sum of breakdown\.energy_pj"):
        VariantResult.from_json(d, where="v")


def test_bad_values_are_results_errors():
    d = _vr().to_json()
    d["breakdown"]["cycles"]["compute"] = "many"
    with pytest.raises(ResultsError, match=r"^w\.breakdown\.cycles\.compute: 'many' is not allowed; allowed: a finite"):
        VariantResult.from_json(d, where="w")
    d = _vr().to_json()
    d["actions"] = {"bogus": 1}
    with pytest.raises(ResultsError, match="unknown action"):
        VariantResult.from_json(d)
