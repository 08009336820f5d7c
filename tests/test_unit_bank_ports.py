"""Accumulator banks that take at most W products a cycle (hwsim/sim/banks.py with ``ports``, set by
``pe.bank_queue_write_ports``), by hand on one bank: the wait is max(overflow of the depth + 1 slots,
⌈L / W⌉ − 1), and the products reach the bank W a cycle while it retires one a cycle through the wait:

    stall = max(0, q + L − (D + 1), ⌈L / W⌉ − 1);   q ← max(q + L − 1 − stall, 0)

against the model without a port limit (q ← max(max(q − stall, 0) + L − 1, 0))."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.arch import load_arch
from hwsim.sim import banks


def _one_bank(*loads: int) -> np.ndarray:
    return np.array([[x] for x in loads])


def test_two_ports_make_a_burst_of_three_wait_one_cycle():
    # depth 4 holds 3 products, but 2 ports deliver them in ⌈3/2⌉ = 2 cycles: 1 stall; q = 3 − 1 − 1 = 1,
    # then 0: nothing carried over
    assert banks.queue_stalls([_one_bank(3, 0, 0)], depth=4, ports=2) == (1, 3)
    assert banks.queue_stalls([_one_bank(3, 0, 0)], depth=4) == (0, 3)          # no port limit: absorbed


def test_one_port_and_no_queue():
    # depth 0, 1 port, 2 products a cycle: each cycle waits 1 and drains to 0 (2 − 1 − 1)
    assert banks.queue_stalls([_one_bank(2, 2)], depth=0, ports=1) == (2, 2)
    # without the limit the backlog carries: stall 1 (q 1), then 1 + 2 − 1 = 2 (q 1): 3
    assert banks.queue_stalls([_one_bank(2, 2)], depth=0) == (3, 2)


def test_overflow_and_ports_take_the_larger_wait():
    # depth 1 (2 slots), 2 ports, 4 products: overflow 4 − 2 = 2 > ⌈4/2⌉ − 1 = 1 → 2; q = 4 − 1 − 2 = 1;
    # an idle cycle retires it; the second burst waits 2 again
    assert banks.queue_stalls([_one_bank(4, 0, 4)], depth=1, ports=2) == (4, 3)


def test_the_stall_rate_over_sampled_units_uses_the_same_ports():
    # F = 4 products of one activation on one bank (1×1 kernel, channel stride ≡ 0 mod B): 4 products a cycle
    units = [(np.arange(4) * 32, np.arange(4))]
    assert banks.stall_rate(units, f=4, i=4, banks=32, depth=3) == 0.0             # depth 3 absorbs 4
    assert banks.stall_rate(units, f=4, i=4, banks=32, depth=3, ports=2) == 1.0    # ⌈4/2⌉ − 1 = 1 a cycle
    assert banks.stall_rate(units, f=4, i=4, banks=32, depth=3, ports=1) == 3.0


@pytest.mark.parametrize("overrides,ports", [
    ({}, 5),                                                     # depth 4: queue + bank take 5 a cycle
    ({"pe.bank_queue_write_ports": 2}, 2),
    ({"pe.bank_queue_write_ports": 8}, 5),                       # more ports than slots do not help
    ({"pe.bank_queue_depth": 20}, 16),                           # never more than the F·I = 16 products of a cycle
    ({"pe.bank_queue_depth": 0}, 1),
])
def test_products_a_bank_takes_per_cycle(overrides, ports):
    assert load_arch("scnn", overrides).pe.bank_ports == ports


def test_conflict_cycles_round_each_tile_up():
    assert banks.conflict_cycles(np.array([10, 3, 0]), 0.25).tolist() == [3, 1, 0]   # 2.5 → 3, 0.75 → 1
    assert banks.conflict_cycles(np.array([10, 4]), 0.5).tolist() == [5, 2]         # exact: no rounding up
    assert banks.conflict_cycles(np.array([7]), 0.0).tolist() == [0]
