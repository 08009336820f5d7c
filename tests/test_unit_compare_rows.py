"""``hwsim compare``'s rows and table (hwsim/sim/compare.py) from hand-built results, no simulation: every arch's
sparse run beside the first arch's dense baseline and sparse reference, per scope and per layer-pass, with the
ratios and breakdown columns the CSV carries.

Reference ``scnn`` (layer a): forward sparse 10 cycles (6 compute + 3 stall + 1 fill/drain) / 20 pJ, dense 40 / 80;
backward-weight sparse 20 / 10, dense 60 / 90. ``bitserial``: forward 8 / 16, backward-weight 25 / 5.
"""

from __future__ import annotations

import pytest

from hwsim.results import CycleBreakdown, EnergyBreakdown, LayerPassResult, SimResult, VariantResult
from hwsim.results.views import ALL_SCOPES
from hwsim.sim.compare import Comparison, compare


def _v(cycles: int, pj: float, *, stall: int = 0, fill: int = 0) -> VariantResult:
    return VariantResult(cycle_breakdown=CycleBreakdown(compute=cycles - stall - fill, memory_stall=stall,
                                                        fill_drain=fill),
                         energy_breakdown=EnergyBreakdown(mac=pj), macs=cycles, multipliers=1)


def _lp(p: str, sparse: VariantResult, dense: VariantResult, ideal: int) -> LayerPassResult:
    return LayerPassResult(name="a", pass_name=p, macs_dense=dense.cycles, macs_effectual=sparse.cycles,
                           sparse=sparse, dense=dense, dense_gated=dense, ideal=_v(ideal, 0.0))


SCNN = SimResult(trace={}, arch={"params": {"pe": {"mac": "parallel"}}}, layers=(
    _lp("forward", _v(10, 20.0, stall=3, fill=1), _v(40, 80.0), 5),
    _lp("backward_weight", _v(20, 10.0), _v(60, 90.0), 8)))
SERIAL = SimResult(trace={}, arch={"params": {"pe": {"mac": "bit_serial", "bit_serial_mode": "essential_bits"}}},
                   layers=(_lp("forward", _v(8, 16.0), _v(40, 80.0), 4),
                           _lp("backward_weight", _v(25, 5.0), _v(60, 90.0), 7)))
CMP = Comparison(names=("scnn", "bitserial"), results=(SCNN, SERIAL))


def _row(layer: str, scope: str, arch: str) -> dict:
    [row] = [r for r in CMP.rows() if (r["layer"], r["scope"], r["arch"]) == (layer, scope, arch)]
    return row


def test_rows_cover_every_scope_of_the_model_and_each_layer_pass_it_has():
    keys = [(r["layer"], r["scope"], r["arch"]) for r in CMP.rows()]
    whole = [("*", s, a) for s in ALL_SCOPES for a in ("dense", "scnn", "bitserial")]
    per_layer = [("a", s, a) for s in ("forward", "backward_weight") for a in ("dense", "scnn", "bitserial")]
    assert keys == whole + per_layer         # layer a has no backward-data row (its input needs no gradient)


def test_iteration_ratios_against_the_dense_baseline_and_the_reference():
    r = _row("*", "iteration", "bitserial")
    assert (r["cycles"], r["energy_pj"], r["ideal_cycles"], r["mac"]) == (33, 21.0, 11, "bit_serial/essential_bits")
    assert r["speedup_vs_dense"] == pytest.approx(100 / 33) and r["energy_vs_dense"] == pytest.approx(170 / 21)
    assert r["speedup_vs_ref"] == pytest.approx(30 / 33) and r["energy_vs_ref"] == pytest.approx(30 / 21)
    d = _row("*", "forward", "dense")
    assert (d["cycles"], d["mac"], d["speedup_vs_dense"], d["speedup_vs_ref"]) == (40, "parallel", 1.0, 0.25)
    assert _row("*", "backward", "scnn")["cycles"] == 20 and _row("*", "backward", "scnn")["speedup_vs_dense"] == 3.0
    # with the bit-serial arch first, its dense baseline still has parallel MACs
    flipped = Comparison(names=("bitserial", "scnn"), results=(SERIAL, SCNN)).rows()
    assert [r["mac"] for r in flipped if (r["layer"], r["scope"]) == ("*", "iteration")] == [
        "parallel", "bit_serial/essential_bits", "parallel"]


def test_a_scope_with_no_work_is_one_everywhere():
    r = _row("*", "backward_data", "bitserial")
    assert (r["cycles"], r["speedup_vs_dense"], r["speedup_vs_ref"], r["energy_vs_dense"]) == (0, 1.0, 1.0, 1.0)


def test_breakdown_columns_and_the_cycles_outside_memory():
    r = _row("a", "forward", "scnn")
    assert (r["cycles_compute"], r["cycles_memory_stall"], r["cycles_fill_drain"]) == (6, 3, 1)
    assert r["compute_cycles"] == 10 - 3 - 1 and r["energy_mac"] == 20.0 and r["mac"] == "parallel"


def test_the_table_prints_whole_model_rows_only():
    lines = CMP.table().splitlines()
    assert lines[0].split() == ["scope", "arch", "cycles", "×dense", "×scnn", "non-mem", "cyc", "energy", "µJ",
                                "×dense", "×scnn"]
    assert len(lines) == 2 + len(ALL_SCOPES) * 3 + 1
    row = next(ln for ln in lines if ln.startswith("iteration") and "bitserial" in ln)
    # 100/33 = 3.03×, 30/33 = 0.91×, 21 pJ = 0.000 µJ, 170/21 = 8.10×, 30/21 = 1.43×
    assert row.split() == ["iteration", "bitserial", "33", "3.03×", "0.91×", "33", "0.000", "8.10×", "1.43×"]
    only = CMP.table(scopes=("iteration",)).splitlines()
    assert [ln.split()[1] for ln in only[2:-1]] == ["dense", "scnn", "bitserial"]
    assert only[-1].startswith("×dense / ×scnn: cycles (energy) of the dense baseline / of scnn's sparse run")
    assert only[-1].endswith("; non-mem cyc = cycles less memory stall and exposed fill / drain")  # every column


def test_compare_needs_an_arch():
    with pytest.raises(ValueError, match=r"^archs: empty; allowed: one or more architecture names or files$"):
        compare("unused", [])
