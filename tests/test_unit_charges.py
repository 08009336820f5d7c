"""Unit tests of the charges applied to finished layer-passes (hwsim.sim.charges), the NSD unit's cost
(hwsim.sim.nsd_unit) and the closed form / cycle breakdown (hwsim.sim.analytic)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from hwsim.arch import dense_variant, leakage_mw, load_arch
from hwsim.results import CycleBreakdown, LayerPassResult, VariantResult
from hwsim.results.actions import Actions
from hwsim.sim import analytic, charges, energy, nsd_unit
from hwsim.sim.model import simulate_intervals


def _vr(arch, cycles: int, acts: Actions) -> VariantResult:
    return VariantResult(cycle_breakdown=CycleBreakdown(compute=cycles), energy_breakdown=energy.price(acts, arch),
                         macs=cycles, multipliers=arch.total_multipliers, analytical_cycles=cycles, actions=acts)


def _lp(pass_name: str, arch, dense) -> LayerPassResult:
    acts = Actions(mult=1000.0, dram_bytes=6400.0)
    return LayerPassResult(name="conv", pass_name=pass_name, macs_dense=1000, macs_effectual=400,
                           sparse=_vr(arch, 100, acts), dense=_vr(dense, 250, acts), dense_gated=_vr(dense, 250, acts),
                           ideal=_vr(arch, 40, acts), dense_systolic=VariantResult(multipliers=0))


GEO = {"conv": SimpleNamespace(N=4, output_shape=(4, 8, 10, 10))}   # 3200 dense δz elements, 4 examples


def _finish(pass_name: str, *, method="dither", k=None, arch=None):
    arch = arch or load_arch(load_arch("scnn"), {"memory.dram_bytes_per_cycle": 16.0})
    dense = dense_variant(arch)
    archs = {"sparse": arch, "dense": dense, "dense_gated": dense, "ideal": arch, "dense_systolic": dense}
    return arch, charges.finish([_lp(pass_name, arch, dense)], GEO, archs, method=method, k=k)[0]


def test_leakage_is_the_variants_own_cycles_at_its_archs_leakage_power():
    arch, lp = _finish("forward")
    assert lp.sparse.actions["leak_cycles"] == 100.0 and lp.dense.actions["leak_cycles"] == 250.0
    assert lp.sparse.energy_breakdown.leakage == pytest.approx(100 * leakage_mw(arch) / arch.clock_ghz)
    assert lp.ideal.actions["leak_cycles"] == 40.0                   # the bound leaks for its own cycles
    assert "leak_cycles" not in lp.dense_systolic.actions            # no systolic baseline (0 multipliers)
    assert lp.sparse.cycles == 100 and lp.sparse.energy_pj > _lp("forward", arch, arch).sparse.energy_pj


def test_bandwidth_floor_is_the_ideals_dram_bytes_over_the_bandwidth():
    _, lp = _finish("forward")
    assert lp.bandwidth_floor_cycles == math.ceil(6400 / 16.0)


def test_nsd_unit_charges_the_sparse_backward_weight_only():
    arch, lp = _finish("backward_weight")
    lanes = arch.quantizer.lanes_per_pe * arch.num_pes
    assert lp.sparse.cycle_breakdown.nsd == 2 * math.ceil(3200 / lanes)
    assert lp.sparse.cycles == 100 + lp.sparse.cycle_breakdown.nsd
    assert lp.sparse.analytical_cycles == 100 + lp.sparse.cycle_breakdown.nsd
    assert lp.sparse.actions["nsd_std"] == lp.sparse.actions["nsd_quantize"] == 3200.0
    assert lp.sparse.actions["leak_cycles"] == lp.sparse.cycles       # leakage sees the NSD cycles too
    for v in ("dense", "dense_gated", "ideal"):
        assert lp.variant(v).cycle_breakdown.nsd == 0 and "nsd_std" not in lp.variant(v).actions
    _, fwd = _finish("forward")
    assert fwd.sparse.cycle_breakdown.nsd == 0
    _, none = _finish("backward_weight", method=None)
    assert none.sparse.cycle_breakdown.nsd == 0


def test_charged_energy_is_still_the_price_of_the_counts():
    arch, lp = _finish("backward_weight")
    assert lp.sparse.energy_breakdown == energy.price(lp.sparse.actions, arch)
    assert lp.sparse.energy_pj == pytest.approx(sum(lp.sparse.energy_breakdown.to_json().values()), rel=1e-15)


# ----------------------------------------------------------------------------- NSD unit


def test_nsd_layer_cost_by_hand():
    arch = load_arch("scnn")
    lanes = arch.quantizer.lanes_per_pe * arch.num_pes
    vb = arch.pe.accumulator_bits / 8
    cyc, acts = nsd_unit.layer_cost(1000, 10, arch, "dither")
    assert cyc == 2 * -(-1000 // lanes)
    assert acts == Actions(nsd_std=1000, nsd_rng=1000, nsd_quantize=1000, nsd_sram_bytes=2000 * vb)
    assert nsd_unit.layer_cost(1000, 10, arch, "synthetic") == (cyc, acts)


def test_meprop_cost_by_hand_and_free_when_k_keeps_everything():
    arch = load_arch("scnn")
    lanes = arch.quantizer.lanes_per_pe * arch.num_pes
    cyc, acts = nsd_unit.layer_cost(1000, 10, arch, "meprop", k=8)   # 100 per example > 8
    comps = 1000 * (1 + 3)
    assert cyc == -(-comps // lanes) and acts["nsd_compare"] == comps
    assert nsd_unit.layer_cost(1000, 10, arch, "meprop", k=100) == (0, Actions())


def test_no_nsd_cost_without_a_method_or_gradient_skipping():
    arch = load_arch("scnn")
    assert nsd_unit.layer_cost(1000, 10, arch, None) == (0, Actions())
    assert nsd_unit.layer_cost(1000, 10, arch, "none") == (0, Actions())
    assert nsd_unit.layer_cost(1000, 10, dense_variant(arch), "dither") == (0, Actions())


def test_meprop_without_k_names_the_meta_key():
    with pytest.raises(ValueError, match=r"method meprop: trace meta key 'k' is None; allowed: a positive integer"):
        nsd_unit.layer_cost(1000, 10, load_arch("scnn"), "meprop")


def test_dense_dz_elements_is_the_output_size():
    assert nsd_unit.dense_dz_elements(GEO["conv"]) == (3200, 4)


# ----------------------------------------------------------------------------- closed form and breakdown


def test_breakdown_by_hand():
    mult = np.array([[4, 2], [3, 3]])
    conflict = np.array([[1, 0], [0, 0]])
    cb = analytic.cycle_breakdown(mult_cycles=mult, conflict=conflict, macs=16, multipliers=4, makespan=12)
    # compute ⌈16/4⌉ = 4; ⌈12/2⌉ = 6 → fragmentation 2; ⌈13/2⌉ = 7 → bank 1; barriers 5 + 3 = 8 → imbalance 1
    assert cb == CycleBreakdown(compute=4, fragmentation=2, bank_conflict=1, imbalance=1, memory_stall=4)
    assert cb.total == 12


@pytest.mark.parametrize("seed", range(4))
def test_breakdown_parts_add_up_to_the_simpy_makespan(seed):
    rng = np.random.default_rng(seed)
    mult = rng.integers(0, 50, (5, 8))
    conflict = rng.integers(0, 5, (5, 8))
    load, store = rng.random(5) * 400, rng.random(5) * 400
    span = simulate_intervals(mult + conflict, load, store, dram_bytes_per_cycle=8.0)
    cb = analytic.cycle_breakdown(mult_cycles=mult, conflict=conflict, macs=int(mult.sum()) * 2, multipliers=16,
                                  makespan=span)
    assert cb.total == span and min(cb.to_json().values()) >= 0


def test_inconsistent_work_is_reported():
    with pytest.raises(AssertionError, match="inconsistent work"):
        analytic.cycle_breakdown(mult_cycles=np.ones((1, 2), int), conflict=np.zeros((1, 2), int), macs=1000,
                                 multipliers=1, makespan=1)


def test_closed_form_by_hand_and_equal_to_simpy_with_unlimited_bandwidth():
    busy = np.array([[5, 3], [2, 7], [4, 4]])
    z = np.zeros(3)
    assert analytic.closed_form_cycles(busy, z, z, dram_bytes_per_cycle=math.inf) == 5 + 7 + 4
    assert simulate_intervals(busy, z, z, dram_bytes_per_cycle=math.inf) == 16
    # L0 + Σ max(C_b, L_{b+1} + S_{b−1}) + S_last with 1 byte/cycle
    load, store = np.array([2.0, 10.0, 1.0]), np.array([3.0, 0.0, 6.0])
    expect = 2 + max(5, 10 + 0) + max(7, 1 + 3) + max(4, 0 + 0) + 6
    assert analytic.closed_form_cycles(busy, load, store, dram_bytes_per_cycle=1.0) == expect
    assert analytic.closed_form_cycles(busy[:0], z[:0], z[:0], dram_bytes_per_cycle=1.0) == 0
