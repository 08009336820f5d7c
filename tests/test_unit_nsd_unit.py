"""Hand-computed NSD-unit and charge cases from the fields of arch_configs/scnn.yaml (hwsim.sim.nsd_unit,
hwsim.sim.charges): lane rounding, accumulator bytes, meProp comparison counts, which variants pay, pricing.

Complements tests/test_unit_charges.py (which uses the loaded Arch): here every expected number is derived
from the YAML fields read directly, so a change in how the Arch maps them is caught too."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from hwsim.arch import dense_variant, load_arch
from hwsim.results import CycleBreakdown, LayerPassResult, VariantResult
from hwsim.results.actions import Actions
from hwsim.sim import charges, energy, nsd_unit

YAML = yaml.safe_load((Path(__file__).resolve().parents[1] / "arch_configs" / "scnn.yaml").read_text())
LANES = YAML["pe_array"]["rows"] * YAML["pe_array"]["cols"] * YAML["quantizer"]["lanes_per_pe"]
ACC_BYTES = YAML["pe"]["accumulator_bits"] / 8


@pytest.fixture(scope="module")
def arch():
    return load_arch("scnn")


def test_yaml_fields_as_read_by_hand(arch):
    assert LANES == 64 and ACC_BYTES == 3.0          # 8×8 PEs × 1 lane; 24-bit accumulators
    assert arch.quantizer.lanes_per_pe * arch.num_pes == LANES


@pytest.mark.parametrize(("elements", "cycles"), [(1, 2), (64, 2), (65, 4), (128, 4), (129, 6), (6400, 200)])
def test_dither_is_two_passes_of_ceil_elements_over_lanes(arch, elements, cycles):
    cyc, acts = nsd_unit.layer_cost(elements, 1, arch, "dither")
    assert cyc == cycles == 2 * math.ceil(elements / LANES)
    assert acts.to_json() == {"nsd_std": elements, "nsd_rng": elements, "nsd_quantize": elements,
                              "nsd_sram_bytes": 2 * elements * ACC_BYTES}


def test_more_lanes_fewer_cycles(arch):
    wide = load_arch(arch, {"quantizer.lanes_per_pe": 4})      # 256 lanes
    assert nsd_unit.layer_cost(257, 1, wide, "dither")[0] == 2 * 2
    assert nsd_unit.layer_cost(257, 1, arch, "dither")[0] == 2 * 5


@pytest.mark.parametrize(("k", "per_elem"), [(1, 1), (2, 2), (3, 3), (4, 3), (5, 4), (8, 4), (9, 5)])
def test_meprop_comparisons_are_one_plus_ceil_log2_k_per_element(arch, k, per_elem):
    elements, examples = 640, 2                      # 320 per example > every k here
    cyc, acts = nsd_unit.layer_cost(elements, examples, arch, "meprop", k=k)
    assert acts.to_json() == {"nsd_compare": elements * per_elem, "nsd_sram_bytes": elements * ACC_BYTES}
    assert cyc == math.ceil(elements * per_elem / LANES)


def test_meprop_is_free_when_k_keeps_every_element_of_an_example(arch):
    assert nsd_unit.layer_cost(640, 2, arch, "meprop", k=320) == (0, Actions())     # exactly k per example
    assert nsd_unit.layer_cost(640, 2, arch, "meprop", k=319)[0] > 0
    assert nsd_unit.layer_cost(640, 0, arch, "meprop", k=639)[0] > 0                # 0 examples: one example


@pytest.mark.parametrize("k", [0, -3])
def test_meprop_k_must_be_positive(arch, k):
    with pytest.raises(ValueError, match=rf"trace meta key 'k' is {k}; allowed: a positive integer"):
        nsd_unit.layer_cost(100, 1, arch, "meprop", k=k)


def test_no_cost_for_empty_layers_or_unknown_methods(arch):
    assert nsd_unit.layer_cost(0, 1, arch, "dither") == (0, Actions())
    assert nsd_unit.layer_cost(100, 1, arch, "topk-other") == (0, Actions())
    no_grad = load_arch(arch, {"zero_skip.gradients": False})
    assert nsd_unit.layer_cost(100, 1, no_grad, "dither") == (0, Actions())


def test_dense_dz_elements_of_a_conv_and_a_linear_layer():
    from hwsim.trace.schema import LayerGeometry

    conv = LayerGeometry(name="c", kind="conv2d", N=3, C=2, K=5, H=6, W=6, P=4, Q=4, R=3, S=3)
    assert nsd_unit.dense_dz_elements(conv) == (3 * 5 * 4 * 4, 3)
    assert nsd_unit.dense_dz_elements(LayerGeometry(name="f", kind="linear", N=7, C=9, K=11)) == (77, 7)


def test_dither_energy_is_priced_from_the_quantizer_table(arch):
    _, acts = nsd_unit.layer_cost(100, 1, arch, "dither")
    q = YAML["quantizer"]
    per64 = YAML["energy"]["sram_medium_pj_per_64b"]   # the 10 KB PE output RAM is a medium SRAM
    assert YAML["energy"]["sram_small_max_bytes"] < YAML["pe"]["output_buffer_bytes"] <= \
        YAML["energy"]["sram_medium_max_bytes"]
    expected = 100 * (q["std_pj_per_element"] + q["rng_pj_per_element"] + q["quantize_pj_per_element"]) \
        + 2 * 100 * ACC_BYTES / 8 * per64
    assert energy.price(acts, arch).nsd == pytest.approx(expected)


# ----------------------------------------------------------------------------- charges.finish


def _vr(arch, cycles: int, *, mults: int | None = None) -> VariantResult:
    acts = Actions(mult=float(cycles), dram_bytes=160.0)
    return VariantResult(cycle_breakdown=CycleBreakdown(compute=cycles), energy_breakdown=energy.price(acts, arch),
                         macs=cycles, multipliers=arch.total_multipliers if mults is None else mults,
                         analytical_cycles=cycles, actions=acts)


def _finish(arch, pass_name: str, *, method="dither", k=None, systolic_mults: int = 0):
    dense = dense_variant(arch)
    lp = LayerPassResult(name="fc", pass_name=pass_name, macs_dense=100, macs_effectual=10,
                         sparse=_vr(arch, 10), dense=_vr(dense, 30), dense_gated=_vr(dense, 30), ideal=_vr(arch, 5),
                         dense_systolic=_vr(dense, 20, mults=systolic_mults))
    archs = {"sparse": arch, "dense": dense, "dense_gated": dense, "ideal": arch, "dense_systolic": dense}
    geo = {"fc": SimpleNamespace(N=2, output_shape=(2, 96))}   # 192 dense δz elements: 2·⌈192/64⌉ = 6 cycles
    return charges.finish([lp], geo, archs, method=method, k=k)[0]


def test_finish_charges_meprop_with_k_on_backward_weight(arch):
    lp = _finish(arch, "backward_weight", method="meprop", k=4)   # 96 per example > 4: 3 comparisons each
    assert lp.sparse.actions["nsd_compare"] == 192 * 3
    assert lp.sparse.cycle_breakdown.nsd == math.ceil(192 * 3 / LANES) == 9
    assert lp.sparse.cycles == 10 + 9 and lp.sparse.actions["leak_cycles"] == 19
    free = _finish(arch, "backward_weight", method="meprop", k=96)
    assert free.sparse.cycle_breakdown.nsd == 0 and "nsd_compare" not in free.sparse.actions


def test_finish_dither_by_hand_on_the_first_consumer_or_backward_weight(arch):
    lp = _finish(arch, "backward_weight")
    assert lp.sparse.cycle_breakdown.nsd == 6 and lp.sparse.analytical_cycles == 16
    assert lp.sparse.energy_breakdown.nsd == pytest.approx(energy.price(lp.sparse.actions, arch).nsd)
    assert lp.sparse.energy_breakdown.nsd > 0 and lp.sparse.actions["nsd_std"] == 192
    bd = _finish(arch, "backward_data")     # the layer's only δ̃z consumer here: booked on it (first_consumer)
    assert bd.sparse.cycle_breakdown.nsd == 6 and bd.sparse.cycles == 16
    old = load_arch(arch, {"quantizer.booked_on": "backward_weight"})
    bd = _finish(old, "backward_data")       # pre-issue-18 booking: never on backward-data
    assert bd.sparse.cycle_breakdown.nsd == 0 and bd.sparse.cycles == 10


def test_a_systolic_baseline_with_multipliers_leaks_for_its_own_cycles(arch):
    lp = _finish(arch, "forward", systolic_mults=1024)
    assert lp.dense_systolic.actions["leak_cycles"] == 20.0
    assert lp.dense_systolic.energy_breakdown.leakage > 0
    assert "leak_cycles" not in _finish(arch, "forward").dense_systolic.actions


def test_bandwidth_floor_follows_the_dram_bandwidth_field(arch):
    bw = YAML["memory"]["dram_bytes_per_cycle"]
    assert _finish(arch, "forward").bandwidth_floor_cycles == math.ceil(160.0 / bw) == 10
    fast = load_arch(arch, {"memory.dram_bytes_per_cycle": 64.0})
    assert _finish(fast, "forward").bandwidth_floor_cycles == 3            # ⌈160 / 64⌉
    unlimited = load_arch(arch, {"memory.dram_bytes_per_cycle": math.inf})
    assert _finish(unlimited, "forward").bandwidth_floor_cycles == 0
