"""Unit tests of the action-count record (hwsim.results.actions) and its pricing (hwsim.sim.energy.price)."""

from __future__ import annotations

import json
import math

import pytest

from hwsim.arch import load_arch
from hwsim.arch.silicon import leakage_mw
from hwsim.results import ENERGY_PARTS, ResultsError, VariantResult, sum_variants
from hwsim.results.actions import ACTIONS, Actions
from hwsim.sim import energy


def test_fields_are_the_action_list_in_order():
    a = Actions(**{k: i + 1 for i, k in enumerate(ACTIONS)})
    assert list(a) == list(ACTIONS) == list(a.to_json())
    assert energy.ACTIONS is ACTIONS


def test_uncounted_actions_are_absent_and_zero_counts_present():
    a = Actions(mult=3, xbar=0)
    assert a.to_json() == {"mult": 3.0, "xbar": 0.0}
    assert "xbar" in a and "bit_ops" not in a and len(a) == 2
    assert a.count("bit_ops") == 0.0 and a["xbar"] == 0.0
    with pytest.raises(KeyError):
        a["bit_ops"]
    with pytest.raises(KeyError):
        a["not_an_action"]
    assert a.get("bit_ops") is None and a.get("mult") == 3.0


def test_counts_are_stored_as_floats():
    import numpy as np

    a = Actions(mult=np.int64(7), dram_bytes=3)
    assert type(a.mult) is float and type(a.dram_bytes) is float
    assert json.dumps(a.to_json()) == '{"mult": 7.0, "dram_bytes": 3.0}'


def test_sum_is_fieldwise_and_keeps_an_action_counted_by_either_side():
    a = Actions(mult=1.5, dram_bytes=8.0)
    b = Actions(mult=2.0, red_add=4.0)
    s = a + b
    assert s.to_json() == {"mult": 3.5, "dram_bytes": 8.0, "red_add": 4.0}
    assert (a + Actions()) == a and (Actions() + a) == a
    assert a + {"leak_cycles": 10} == Actions(mult=1.5, dram_bytes=8.0, leak_cycles=10.0)
    # one side uncounted: the other side's value unchanged, bit for bit (no + 0.0)
    assert math.copysign(1.0, (Actions(xbar=-0.0) + Actions(mult=1.0)).xbar) == -1.0


def test_scaled_multiplies_every_counted_action():
    a = Actions(mult=3.0, xbar=0.0, sram_input_bytes=2.5)
    assert a.scaled(4).to_json() == {"mult": 12.0, "xbar": 0.0, "sram_input_bytes": 10.0}
    assert "bit_ops" not in a.scaled(4)


def test_record_equals_mapping_with_the_same_counted_actions():
    assert Actions(mult=1.0) == {"mult": 1.0}
    assert Actions(mult=1.0) != {"mult": 1.0, "xbar": 0.0}   # presence matters
    assert hash(Actions(mult=1.0)) == hash(Actions(mult=1))


def test_unknown_action_names_are_rejected_by_name():
    with pytest.raises(ValueError, match=r"results\.actions: unknown action\(s\) \['mults'\]; allowed: mult, "):
        Actions.from_mapping({"mults": 1.0}, where="results.actions")
    with pytest.raises(ValueError, match="unknown action"):
        energy.price({"dram": 1.0}, load_arch("scnn"))


def test_variant_result_keeps_the_record_through_json_and_sums():
    v = VariantResult(actions={"mult": 2.0, "dram_bytes": 16.0})
    assert isinstance(v.actions, Actions)
    w = VariantResult(actions=Actions(mult=1.0, leak_cycles=5.0))
    tot = sum_variants([v, w])
    assert tot.actions.to_json() == {"mult": 3.0, "dram_bytes": 16.0, "leak_cycles": 5.0}
    back = VariantResult.from_json(json.loads(json.dumps(tot.to_json())))
    assert back.actions == tot.actions


def test_results_json_with_an_unknown_action_names_the_variant():
    d = VariantResult(actions={"mult": 1.0}).to_json()
    d["actions"]["mul"] = 2.0
    with pytest.raises(ResultsError, match=r"layers\[0\]\.sparse: actions: unknown action\(s\) \['mul'\]"):
        VariantResult.from_json(d, where="layers[0].sparse")


# ----------------------------------------------------------------------------- pricing


def _all_ones() -> Actions:
    return Actions(**{k: 1.0 for k in ACTIONS})


def test_price_of_one_of_each_action_is_the_energy_table_by_category():
    arch = load_arch("scnn")
    e, q, pe = arch.energy, arch.quantizer, arch.pe
    got = energy.price(_all_ones(), arch)
    assert got.mac == pytest.approx(e.mult_pj_for(pe.mac_bits) + e.bit_op_pj + e.add_pj_for(pe.accumulator_bits))
    assert got.accumulator == pytest.approx(e.accumulator_access_pj + e.register_pj)
    assert got.crossbar == pytest.approx(e.crossbar_pj_per_product + e.bank_queue_pj_per_product)   # depth 4 queues
    assert got.dram == pytest.approx(e.dram_pj_per_64b / 8)
    sram = sum(e.sram_pj_per_64b(b) for b in energy.buffer_sizes(arch).values()) / 8
    assert got.sram == pytest.approx(sram)
    assert got.reduction == pytest.approx(e.add_pj_for(pe.accumulator_bits) + e.accumulator_access_pj
                                          + arch.reduction.link_pj_per_byte
                                          + e.sram_pj_per_64b(arch.memory.global_buffer_bytes) / 8)
    assert got.nsd == pytest.approx(q.std_pj_per_element + q.rng_pj_per_element + q.quantize_pj_per_element
                                    + q.compare_pj + e.sram_pj_per_64b(pe.output_buffer_bytes) / 8)
    assert got.leakage == pytest.approx(leakage_mw(arch) / arch.clock_ghz)


@pytest.mark.parametrize("name", ACTIONS)
def test_every_action_costs_something_in_exactly_one_category(name):
    arch = load_arch("scnn")
    got = energy.price(Actions(**{name: 1000.0}), arch).to_json()
    nonzero = [k for k in ENERGY_PARTS if got[k] != 0]
    assert len(nonzero) == 1, (name, got)


def test_price_is_linear_and_breakdown_parts_sum_to_the_total():
    arch = load_arch("scnn")
    a = Actions(mult=1e6, add=1e6, dram_bytes=4096.0, sram_input_bytes=1e5, red_add=30.0, leak_cycles=1e4)
    b = Actions(mult=5e5, xbar=5e5, nsd_std=100.0, nsd_sram_bytes=800.0)
    pa, pb, pab = energy.price(a, arch), energy.price(b, arch), energy.price(a + b, arch)
    for k in ENERGY_PARTS:
        assert getattr(pab, k) == pytest.approx(getattr(pa, k) + getattr(pb, k), rel=1e-12)
    assert pab.total == pytest.approx(sum(pab.to_json().values()), rel=1e-15)
    p3 = energy.price(a.scaled(3), arch)
    assert p3.total == pytest.approx(3 * pa.total, rel=1e-12)


def test_price_accepts_a_plain_mapping_like_the_record():
    arch = load_arch("scnn")
    assert energy.price({"mult": 10.0, "dram_bytes": 64.0}, arch) == energy.price(Actions(mult=10, dram_bytes=64),
                                                                                    arch)
