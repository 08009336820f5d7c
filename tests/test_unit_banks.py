"""Unit tests of hwsim.sim.banks: per-cycle bank loads, the finite-queue stall model, conflict cycles."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.sim import banks


def test_bank_loads_by_hand():
    # F = 2 weights at addresses 0, 1; I = 2 activations at 0, 4; 4 banks: one cycle, products at 0, 4, 1, 5
    loads = banks.unit_bank_loads(np.array([0, 1]), np.array([0, 4]), f=2, i=2, banks=4, max_cycles=10)
    assert loads.tolist() == [[2, 2, 0, 0]]


def test_bank_loads_issue_weight_chunk_outer_activation_chunk_inner():
    # 3 weights (F = 2: chunks [0, 1], [2]) × 3 activations (I = 2: chunks [0, 10], [20]) on 100 banks
    loads = banks.unit_bank_loads(np.array([0, 1, 2]), np.array([0, 10, 20]), f=2, i=2, banks=100, max_cycles=10)
    assert loads.shape == (4, 100)
    assert loads.sum(axis=1).tolist() == [4, 2, 2, 1]          # products per cycle: partly filled vectors
    assert np.flatnonzero(loads[1]).tolist() == [20, 21]        # cycle 1: weights 0, 1 × activation 20
    assert np.flatnonzero(loads[2]).tolist() == [2, 12]         # cycle 2: weight 2 × activations 0, 10


def test_bank_loads_conserve_products_and_respect_the_cycle_cap():
    rng = np.random.default_rng(0)
    ax, ay = rng.integers(0, 50, 9), rng.integers(0, 50, 13)
    full = banks.unit_bank_loads(ax, ay, f=4, i=4, banks=8, max_cycles=1000)
    assert full.sum() == ax.size * ay.size and full.shape[0] == 3 * 4
    capped = banks.unit_bank_loads(ax, ay, f=4, i=4, banks=8, max_cycles=5)
    assert capped.shape[0] == 5 and np.array_equal(capped, full[:5])
    assert banks.unit_bank_loads(ax[:0], ay, f=4, i=4, banks=8, max_cycles=5).shape == (0, 8)


def test_queue_model_by_hand():
    # one bank gets 4 products in one cycle: depth 0 → capacity 1 → stall 3 cycles; depth 3 absorbs them
    burst = np.array([[4, 0]])
    assert banks.queue_stalls([burst], depth=0) == (3, 1)
    assert banks.queue_stalls([burst], depth=3) == (0, 1)
    # backlog carries over: 2 products a cycle to one bank with depth 1 → from the 2nd cycle on, 1 stall a cycle
    steady = np.array([[2, 0]] * 4)
    assert banks.queue_stalls([steady], depth=1) == (3, 4)
    assert banks.queue_stalls([], depth=0) == (0, 0)


def test_spread_products_never_stall():
    units = [(np.arange(4), np.arange(4) * 4)]      # 16 products on 16 distinct banks every cycle
    assert banks.stall_rate(units, f=4, i=4, banks=16, depth=0) == 0.0
    assert banks.stall_rate([], f=4, i=4, banks=16, depth=0) == 0.0


def test_stall_rate_by_hand():
    # 1×1 kernel pathology: F = 4 products of one activation on one bank (channel stride ≡ 0 mod B)
    units = [(np.arange(4) * 32, np.arange(4))]     # one cycle: banks 0..3 each get 4 products
    assert banks.stall_rate(units, f=4, i=4, banks=32, depth=0) == 3.0
    assert banks.stall_rate(units, f=4, i=4, banks=32, depth=3) == 0.0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stall_rate_never_grows_with_queue_depth_or_banks(seed):
    rng = np.random.default_rng(seed)
    units = [(rng.integers(0, 64, 12), rng.integers(0, 64, 20)) for _ in range(6)]
    by_depth = [banks.stall_rate(units, f=4, i=4, banks=16, depth=d) for d in range(6)]
    assert all(a >= b for a, b in zip(by_depth, by_depth[1:], strict=False)), by_depth
    assert by_depth[0] > 0
    # more banks by doubling (addresses mod 2B refine mod B): a bank's load can only split
    by_banks = [banks.stall_rate(units, f=4, i=4, banks=b, depth=0) for b in (4, 8, 16, 32)]
    assert all(a >= b for a, b in zip(by_banks, by_banks[1:], strict=False)), by_banks


def test_conflict_cycles_round_up_per_tile():
    m = np.array([[10, 0], [3, 7]])
    assert banks.conflict_cycles(m, 0.0).tolist() == [[0, 0], [0, 0]]
    assert banks.conflict_cycles(m, 0.25).tolist() == [[3, 0], [1, 2]]
    assert banks.conflict_cycles(m, 0.5).tolist() == [[5, 0], [2, 4]]   # 1.5 → 2, 3.5 → 4; exact halves stay


def test_stall_rate_late_first_stall_by_hand():
    # F = 3, I = 1, 4 banks, depth 1 (capacity 2). Weight chunks [0, 0, 1], [0, 0, 0] × activations 0, 2:
    # cycle 0 bank 0 gets 2, bank 1 gets 1: no stall, backlog b0 = 1; cycle 1 banks 2, 2, 3: no stall (b0 drains,
    # b2 = 1); cycle 2 bank 0 gets 3: 0 + 3 > 2, 1 stall, b0 = 2; cycle 3 bank 2 gets 3: b0 + 0 = 2, b2 = 0 + 3 > 2:
    # 1 stall. A second unit (1 product) never stalls: 2 stalls / 5 cycles.
    units = [(np.array([0, 0, 1, 0, 0, 0]), np.array([0, 2])), (np.array([0]), np.array([0]))]
    loads = banks.unit_bank_loads(*units[0], f=3, i=1, banks=4, max_cycles=10)
    assert loads.tolist() == [[2, 1, 0, 0], [0, 0, 2, 1], [3, 0, 0, 0], [0, 0, 3, 0]]
    assert banks.stall_rate(units, f=3, i=1, banks=4, depth=1) == 2 / 5
    assert banks.stall_rate(units[1:], f=3, i=1, banks=4, depth=1) == 0.0


def test_stall_rate_equals_the_per_cycle_model_with_ports_and_rare_stalls():
    """The vectorised stall rate against the cycle-by-cycle model of every unit, where stalls are rare (SCNN's 32
    banks, depth 4) and common, with and without a port limit."""
    def per_unit(units, *, depth, ports, **kw):
        loads = [banks.unit_bank_loads(ax, ay, **kw) for ax, ay in units]
        st, cyc = banks.queue_stalls(loads, depth=depth, ports=ports)
        return st / cyc if cyc else 0.0

    rng = np.random.default_rng(9)
    seen = set()
    for trial in range(200):
        nb = int(rng.choice([4, 8, 32]))
        units = [(rng.integers(0, 3 * nb, int(rng.integers(0, 12))), rng.integers(0, 3 * nb, int(rng.integers(0, 40))))
                 for _ in range(int(rng.integers(1, 10)))]
        kw = dict(f=int(rng.integers(1, 5)), i=int(rng.integers(1, 5)), banks=nb, max_cycles=int(rng.choice([7, 96])))
        depth, ports = int(rng.integers(0, 6)), int(rng.choice([0, 1, 2, 3]))
        got = banks.stall_rate(units, depth=depth, ports=ports, **kw)
        assert got == per_unit(units, depth=depth, ports=ports, **kw), trial
        seen.add(got > 0)
    assert seen == {True, False}


def test_stall_rate_of_long_units():
    """Units of 2,500 cycles (no cap): the per-cycle model's answer."""
    rng = np.random.default_rng(3)
    units = [(rng.integers(0, 64, 200), rng.integers(0, 64, 200)) for _ in range(2)]   # 50 × 50 = 2,500 cycles
    for depth in (0, 4):
        loads = [banks.unit_bank_loads(ax, ay, f=4, i=4, banks=32, max_cycles=4000) for ax, ay in units]
        st, cyc = banks.queue_stalls(loads, depth=depth)
        assert cyc == 5000 and (depth > 0 or st > 0)
        assert banks.stall_rate(units, f=4, i=4, banks=32, depth=depth, max_cycles=4000) == st / cyc


def test_load_stalls_by_hand_from_the_first_stall_on():
    """Three units on one bank (of 2), depth 1 (capacity 2), cycle-major loads:
    A [2, 2, 0, 0]: cycle 0 leaves backlog 1, so cycle 1 (1 + 2 > 2) waits 1 cycle;
    B [1, 1, 1, 1]: one product a cycle, retired each cycle: never waits;
    C [0, 0, 3, 3]: cycle 2 waits 1 (3 > 2) and leaves backlog 2; cycle 3: 2 + 3 − 2 = 3 cycles. Total 1 + 4 = 5.
    The full model starts at cycle 1 (A's first stall) with A's backlog of 1 carried over from the stall-free path."""
    per_unit = {"A": [2, 2, 0, 0], "B": [1, 1, 1, 1], "C": [0, 0, 3, 3]}
    loads = np.zeros((4, 3, 2), dtype=np.int64)
    for u, seq in enumerate(per_unit.values()):
        loads[:, u, 0] = seq
    assert banks.load_stalls(loads, depth=1) == 5
    assert banks.queue_stalls([loads[:, u] for u in range(3)], depth=1) == (5, 12)
    assert banks.load_stalls(loads[:, 1:2], depth=1) == 0               # B alone: the stall-free path only
    assert banks.load_stalls(loads, depth=1, ports=1) == banks.queue_stalls([loads[:, u] for u in range(3)],
                                                                            depth=1, ports=1)[0]


def test_load_stalls_equal_the_per_cycle_model_with_ports():
    rng = np.random.default_rng(11)
    seen = set()
    for trial in range(80):
        nt, nu, nb = int(rng.integers(1, 30)), int(rng.integers(1, 6)), int(rng.choice([2, 4, 8]))
        loads = rng.poisson(rng.uniform(0.2, 1.5), size=(nt, nu, nb))
        depth, ports = int(rng.integers(0, 4)), int(rng.choice([0, 1, 2, 3]))
        want = banks.queue_stalls([loads[:, u] for u in range(nu)], depth=depth, ports=ports)[0]
        assert banks.load_stalls(loads, depth=depth, ports=ports) == want, trial
        seen.add(want > 0)
    assert seen == {True, False}                                         # both paths were taken
