"""Unit tests of hwsim.sim.model (SimPy timing of one layer-pass) and hwsim.sim.reduction (cross-PE δW sums)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwsim.arch import load_arch
from hwsim.arch.costs import ReductionConfig
from hwsim.sim import reduction
from hwsim.sim.analytic import closed_form_cycles
from hwsim.sim.model import simulate_intervals, transfer_cycles


def test_transfer_cycles_by_hand():
    assert transfer_cycles(0, 8.0) == 0 and transfer_cycles(-3, 8.0) == 0
    assert transfer_cycles(64, 8.0) == 8 and transfer_cycles(65, 8.0) == 9
    assert transfer_cycles(1e9, math.inf) == 0


def test_makespan_by_hand_with_double_buffering():
    busy = np.array([[4, 2], [6, 1], [3, 3]])
    # 8 bytes per load at 1 B/cycle: load 0 in 0–8, load 1 in 8–16 (double buffer), interval 0 in 8–12;
    # interval 1 waits for load 1 (16–22); load 2 waits for the channel (16–24); interval 2 in 24–27
    loads, stores = np.full(3, 8.0), np.zeros(3)
    assert simulate_intervals(busy, loads, stores, dram_bytes_per_cycle=1.0) == 27
    assert closed_form_cycles(busy, loads, stores, dram_bytes_per_cycle=1.0) == 8 + 8 + 8 + 3
    assert simulate_intervals(busy, np.zeros(3), np.zeros(3), dram_bytes_per_cycle=1.0) == 4 + 6 + 3
    assert simulate_intervals(busy[:0], np.zeros(0), np.zeros(0), dram_bytes_per_cycle=1.0) == 0


@pytest.mark.parametrize("seed", range(3))
def test_makespan_bounds_and_monotone_in_bandwidth(seed):
    rng = np.random.default_rng(seed)
    busy = rng.integers(0, 40, (6, 4))
    loads, stores = rng.random(6) * 300, rng.random(6) * 300
    barrier = int(busy.max(axis=1).sum())
    spans = [simulate_intervals(busy, loads, stores, dram_bytes_per_cycle=bw) for bw in (1.0, 4.0, 16.0, math.inf)]
    assert spans == sorted(spans, reverse=True) and spans[-1] == barrier
    assert all(s >= barrier for s in spans)
    # the DRAM channel is shared: never faster than moving every byte once
    total = sum(transfer_cycles(x, 1.0) for x in np.concatenate([loads, stores]).tolist())
    assert spans[0] >= total


def test_more_work_never_shortens_the_makespan():
    rng = np.random.default_rng(7)
    busy = rng.integers(0, 20, (5, 3))
    loads, stores = rng.random(5) * 50, rng.random(5) * 50
    base = simulate_intervals(busy, loads, stores, dram_bytes_per_cycle=2.0)
    more = busy.copy()
    more[2, 1] += 25
    assert simulate_intervals(more, loads, stores, dram_bytes_per_cycle=2.0) >= base


# ----------------------------------------------------------------------------- reduction


def _cfg(**kw) -> ReductionConfig:
    return ReductionConfig(**kw)


def test_ring_tree_and_in_place_cycles_by_hand():
    pes, vals = np.array([4]), np.array([100])
    # 4-byte values: 16 B links carry 4 values per cycle, fewer than 16 adders
    assert reduction.group_cycles(pes, vals, _cfg(network="ring"), 4.0).tolist() == [3 * math.ceil(25 / 4)]
    assert reduction.group_cycles(pes, vals, _cfg(network="tree"), 4.0).tolist() == [2 * math.ceil(100 / 4)]
    assert reduction.group_cycles(pes, vals, _cfg(network="accumulate_in_place"), 4.0).tolist() == \
        [math.ceil(4 * 100 * 4 / 64)]
    # a single PE holds the only copy: nothing to reduce; two PEs: one step of half the block
    assert reduction.group_cycles(np.array([1]), vals, _cfg(), 4.0).tolist() == [0]
    assert reduction.group_cycles(np.array([2]), vals, _cfg(network="ring"), 4.0).tolist() == [math.ceil(50 / 4)]
    assert reduction.group_cycles(np.array([2]), vals, _cfg(network="tree"), 4.0).tolist() == [math.ceil(100 / 4)]


def test_reduction_actions_by_hand_and_adds_independent_of_the_network():
    pes, vals = np.array([4, 2, 1]), np.array([10, 6, 99])
    ring = reduction.actions(pes, vals, _cfg(network="ring"), 2.0)
    tree = reduction.actions(pes, vals, _cfg(network="tree"), 2.0)
    inplace = reduction.actions(pes, vals, _cfg(network="accumulate_in_place"), 2.0)
    adds = 3 * 10 + 1 * 6
    assert ring["red_add"] == tree["red_add"] == inplace["red_add"] == adds
    assert ring["red_acc"] == 2 * adds and ring["red_link_bytes"] == 2.0 * adds and ring["red_sram_bytes"] == 0
    moved = 4 * 10 + 2 * 6
    assert inplace["red_acc"] == moved and inplace["red_sram_bytes"] == 2 * 2.0 * moved


def test_reduction_cycles_fall_with_wider_links_and_more_adders():
    pes, vals = np.array([8, 8]), np.array([500, 300])
    by_link = [reduction.interval_cycles(pes, vals, [0, 1], _cfg(link_bytes_per_cycle=b), 4.0)
               for b in (4.0, 16.0, 64.0, math.inf)]
    assert by_link == sorted(by_link, reverse=True) and by_link[0] > by_link[-1]
    by_adders = [reduction.interval_cycles(pes, vals, [0, 1], _cfg(adders_per_pe=a, link_bytes_per_cycle=math.inf),
                                           4.0) for a in (1, 4, 16)]
    assert by_adders == sorted(by_adders, reverse=True)
    assert reduction.interval_cycles(np.zeros(0), np.zeros(0), [], _cfg(), 4.0) == 0


def test_cost_uses_the_accumulator_width():
    arch = load_arch("scnn")
    cyc, acts = reduction.cost(np.array([4]), np.array([64]), np.array([0]), arch)
    vb = arch.pe.accumulator_bits / 8
    assert acts["red_link_bytes"] == 3 * 64 * vb
    assert cyc == reduction.interval_cycles([4], [64], [0], arch.reduction, vb)


@pytest.mark.parametrize("seed", range(3))
def test_event_log_keeps_double_buffering_and_the_barriers_in_order(seed):
    rng = np.random.default_rng(seed)
    busy = rng.integers(1, 30, (6, 3))
    log: list = []
    span = simulate_intervals(busy, rng.random(6) * 20, rng.random(6) * 20, dram_bytes_per_cycle=1.0, log=log)
    at = {(kind, b): t for t, kind, b, _ in log if kind in ("load_start", "load_end", "barrier")}
    for b in range(6):
        if b >= 2 and ("load_start", b) in at:   # the buffer of interval b − 2 is free only after its barrier
            assert at[("load_start", b)] >= at[("barrier", b - 2)], b
        if b:
            assert at[("barrier", b)] - at[("barrier", b - 1)] >= busy[b].max()
    assert max(t for t, *_ in log) == span
