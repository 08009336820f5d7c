"""What one of each action costs on the shipped designs (hwsim/sim/energy.py ``price``), in picojoules written out
from scnn.yaml's table (Horowitz 45 nm + hwsim estimates): the number every energy figure is a sum of.

scnn: 8-bit multiply 0.2; a 24-bit accumulation takes the 32-bit adder, 0.1; accumulator access 1.0; register 0.1;
crossbar 0.2 + bank queue 0.2 per product; 64-bit accesses: DRAM 1300, SRAM 10 (≤ 8 KB) / 20 (≤ 32 KB) / 100
(the 1 MB global buffer) — per byte one eighth of that.
"""

from __future__ import annotations

import pytest

from hwsim.arch import load_arch
from hwsim.sim.energy import price

SCNN = load_arch("scnn")


@pytest.mark.parametrize("action,category,pj", [
    ("mult", "mac", 0.2), ("add", "mac", 0.1), ("bit_ops", "mac", 0.2 / 64),
    ("acc_access", "accumulator", 1.0), ("reg_read", "accumulator", 0.1),
    ("xbar", "crossbar", 0.2 + 0.2),
    ("dram_bytes", "dram", 1300 / 8),
    ("sram_input_bytes", "sram", 20 / 8),        # 10 KB input buffer: the ≤ 32 KB class
    ("sram_output_bytes", "sram", 20 / 8),
    ("sram_weight_bytes", "sram", 10 / 8),       # 500 B weight FIFO: the ≤ 8 KB class
    ("sram_global_bytes", "sram", 100 / 8),
    ("red_add", "reduction", 0.1), ("red_acc", "reduction", 1.0), ("red_link_bytes", "reduction", 0.8),
    ("red_sram_bytes", "reduction", 100 / 8),
    ("nsd_std", "nsd", 1.5), ("nsd_rng", "nsd", 1.7), ("nsd_quantize", "nsd", 1.5), ("nsd_compare", "nsd", 0.4),
    ("nsd_sram_bytes", "nsd", 20 / 8),           # the dense δz is read from the PE's output RAM
    ("vec_fma", "vector", 4.6), ("vec_exp", "vector", 26.7), ("vec_sram_bytes", "vector", 100 / 8),
    ("vec_add", "vector", 0.9), ("vec_mul", "vector", 3.7), ("vec_compare", "vector", 0.9),
    ("vec_div", "vector", 20.3), ("vec_sqrt", "vector", 27.7),
])
def test_one_action_on_scnn(action, category, pj):
    got = price({action: 1000.0}, SCNN).to_json()
    assert got[category] == pytest.approx(1000 * pj)
    assert sum(got.values()) == pytest.approx(1000 * pj)


def test_a_16_bit_array_pays_the_16_bit_multiply():
    # scnn16: 16-bit operands take Horowitz's 16-bit multiply, 0.8 pJ; its 24-bit accumulators still the 32-bit add
    got = price({"mult": 10.0, "add": 10.0}, load_arch("scnn16"))
    assert got.mac == pytest.approx(10 * 0.8 + 10 * 0.1)


def test_leakage_is_area_power_over_the_clock():
    # 24.218 mm² × 20 mW/mm² = 484.4 mW; one cycle at 1 GHz is 1 ns: 484.4 pJ; at 0.5 GHz twice that
    assert price({"leak_cycles": 1.0}, SCNN).leakage == pytest.approx(484.36, abs=0.01)
    slow = load_arch("scnn", {"clock_ghz": 0.5})
    assert price({"leak_cycles": 1.0}, slow).leakage == pytest.approx(2 * 484.36, abs=0.02)
    assert price({"mult": 5.0}, SCNN).leakage == 0.0


@pytest.mark.parametrize("name,overrides,xbar", [
    ("systolic32", {}, 0.2),                               # a hop between PEs, no bank queue
    ("systolic32", {"pe.bank_queue_depth": 4}, 0.2),       # ... even with a queue depth set: it has no banks
    ("scnn", {"pe.bank_queue_depth": 0}, 0.2),             # no queue, nothing to write it
    ("tensordash", {}, 0.2 + 0.1),                         # + the scheduler's operand muxes
])
def test_what_a_product_costs_to_route(name, overrides, xbar):
    assert price({"xbar": 1.0}, load_arch(name, overrides or None)).crossbar == pytest.approx(xbar)
