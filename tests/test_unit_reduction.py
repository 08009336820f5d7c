"""Cross-PE reduction of backward-weight partial sums as pure functions (hwsim/sim/reduction.py), each number
worked out by hand from the module's table, with 24-bit accumulators (3 bytes a value):

  ring   (P − 1) · ⌈⌈values / P⌉ / rate⌉      tree   ⌈log2 P⌉ · ⌈values / rate⌉
  in place   ⌈P · values · 3 / global_bytes_per_cycle⌉          rate = min(adders_per_pe, link_bytes / 3)
"""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.arch import load_arch
from hwsim.arch.costs import ReductionConfig
from hwsim.sim import reduction

V = 3.0  # bytes per 24-bit partial sum


def _cfg(network: str = "ring", **kw) -> ReductionConfig:
    return ReductionConfig(**({"network": network, "adders_per_pe": 16, "link_bytes_per_cycle": 12.0} | kw))


@pytest.mark.parametrize("network,kw,pes,values,cycles", [
    # link 12 B/cycle carries 4 values: rate = min(16, 4) = 4; ring: ⌈100/4⌉ = 25 a step, 3 · ⌈25/4⌉ = 21
    ("ring", {}, 4, 100, 21),
    ("ring", {}, 3, 100, 2 * 9),                       # ⌈100/3⌉ = 34, ⌈34/4⌉ = 9
    # free links: the 16 adders set the rate: 3 · ⌈25/16⌉ = 6
    ("ring", {"link_bytes_per_cycle": float("inf")}, 4, 100, 6),
    ("ring", {"adders_per_pe": 2}, 4, 100, 3 * 13),    # rate = min(2, 4): ⌈25/2⌉ = 13
    ("ring", {"adders_per_pe": 1}, 3, 100, 2 * 34),    # a step moves ⌈100/3⌉ = 34 values, not 33
    ("tree", {}, 4, 100, 2 * 25),                      # ⌈log2 4⌉ = 2 levels of ⌈100/4⌉
    ("tree", {}, 3, 100, 2 * 25),                      # ⌈log2 3⌉ = 2
    ("tree", {}, 5, 100, 3 * 25),                      # ⌈log2 5⌉ = 3
    ("tree", {}, 2, 7, 2),                             # one level, ⌈7/4⌉
    # every PE's block through the 64 B/cycle global-buffer port: ⌈4 · 100 · 3 / 64⌉ = ⌈18.75⌉
    ("accumulate_in_place", {}, 4, 100, 19),
    ("accumulate_in_place", {}, 2, 32, 3),             # 2 · 32 · 3 / 64 = 3 exactly: no rounding up
    ("accumulate_in_place", {"global_bytes_per_cycle": float("inf")}, 4, 100, 0),
    # 2 · 7 · 3 / 0.7 is 60.000000000000007 in floats: still 60 cycles
    ("accumulate_in_place", {"global_bytes_per_cycle": 0.7}, 2, 7, 60),
    ("ring", {}, 1, 100, 0),                           # partial sums that exist once need no reduction
    ("accumulate_in_place", {}, 1, 100, 0),
])
def test_group_cycles_by_hand(network, kw, pes, values, cycles):
    got = reduction.group_cycles(np.array([pes]), np.array([values]), _cfg(network, **kw), V)
    assert got.tolist() == [cycles]


def test_groups_of_an_interval_run_in_parallel_and_intervals_add():
    # ring, rate 4: group 0 (4 PEs, 100) 21; group 1 (4 PEs, 40: ⌈10/4⌉ = 3 a step) 9; group 2 (2 PEs, 100) 13
    pes, values, interval = [4, 4, 2, 1], [100, 40, 100, 500], [0, 0, 1, 1]
    assert reduction.group_cycles(np.array(pes), np.array(values), _cfg(), V).tolist() == [21, 9, 13, 0]
    assert reduction.interval_cycles(pes, values, interval, _cfg(), V) == max(21, 9) + max(13, 0)
    assert reduction.interval_cycles(pes, values, [0, 1, 2, 3], _cfg(), V) == 21 + 9 + 13
    assert reduction.interval_cycles([], [], [], _cfg(), V) == 0


def test_ring_and_tree_actions_add_once_per_extra_copy():
    # 3 · 100 + 1 · 50 adds; the sender's read and the receiver's read-modify-write each; 3 bytes a value sent
    a = reduction.actions([4, 2, 1], [100, 50, 9], _cfg("tree"), V)
    assert (a.red_add, a.red_acc, a.red_link_bytes, a.red_sram_bytes) == (350.0, 700.0, 1050.0, 0.0)
    assert reduction.actions([4, 2, 1], [100, 50, 9], _cfg("ring"), V) == a     # same work, other order


def test_in_place_actions_move_every_block_through_the_global_buffer():
    # 4 · 100 + 2 · 50 = 500 values leave their PEs (one read each), written and read back in the global buffer
    a = reduction.actions([4, 2, 1], [100, 50, 9], _cfg("accumulate_in_place"), V)
    assert (a.red_add, a.red_acc, a.red_link_bytes, a.red_sram_bytes) == (350.0, 500.0, 1500.0, 3000.0)


def test_cost_reads_the_value_width_from_the_accumulators():
    arch = load_arch("scnn", {"pe.accumulator_bits": 32, "reduction.network": "ring",
                              "reduction.link_bytes_per_cycle": 12.0, "reduction.adders_per_pe": 16})
    # 4-byte values: rate = min(16, 12/4) = 3; ⌈100/4⌉ = 25 a step, 3 · ⌈25/3⌉ = 27
    cycles, acts = reduction.cost(np.array([4]), np.array([100]), np.array([0]), arch)
    assert cycles == 27 and acts.red_link_bytes == 300 * 4.0
