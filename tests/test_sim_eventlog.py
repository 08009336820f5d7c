"""Golden event logs of the SimPy model (hwsim/sim/model.py) on small hand-made busy matrices.

Every expected timeline below was derived by hand from the model's rules (module docstring of
hwsim.sim.model): one DRAM channel; a loader at most one interval ahead (two buffers); PEs start
interval b once its inputs are loaded and interval b − 1's barrier passed; the writer drains
interval b after its barrier. Events are (cycle, kind, interval, pe), pe = -1 for non-PE events.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.sim.model import simulate_intervals


def run(busy, load, store, bw):
    log: list[tuple[int, str, int, int]] = []
    t = simulate_intervals(np.array(busy, dtype=np.int64), np.array(load, dtype=float),
                           np.array(store, dtype=float), dram_bytes_per_cycle=bw, log=log)
    return t, log


def test_one_interval_load_imbalance_barrier_store():
    # load 8 B at 2 B/cycle = 4 cycles; PEs work 3 and 5 cycles; barrier at the slower; store 4 B = 2 cycles
    t, log = run([[3, 5]], [8], [4], 2)
    assert log == [
        (0, "load_start", 0, -1), (4, "load_end", 0, -1),
        (4, "tile_start", 0, 0), (4, "tile_start", 0, 1),
        (7, "tile_end", 0, 0), (9, "tile_end", 0, 1), (9, "barrier", 0, -1),
        (9, "store_start", 0, -1), (11, "store_end", 0, -1),
    ]
    assert t == 11


GOLDEN_CONTENDED = [
    (0, "load_start", 0, -1), (4, "load_end", 0, -1),
    (4, "load_start", 1, -1),                              # loader runs one interval ahead
    (4, "tile_start", 0, 0), (4, "tile_start", 0, 1),
    (6, "tile_end", 0, 0),
    (8, "load_end", 1, -1),                                # load 2 must wait for buffer 0 (barrier 0)
    (10, "tile_end", 0, 1), (10, "barrier", 0, -1),
    (10, "store_start", 0, -1),                            # the writer asked first (it waited since t=0) ...
    (10, "tile_start", 1, 0), (10, "tile_start", 1, 1),
    (11, "tile_end", 1, 1),
    (12, "store_end", 0, -1), (12, "load_start", 2, -1),   # ... so load 2 queues behind store 0
    (14, "tile_end", 1, 0), (14, "barrier", 1, -1),        # store 1 queues behind load 2
    (16, "load_end", 2, -1), (16, "store_start", 1, -1),
    (16, "tile_start", 2, 0), (16, "tile_start", 2, 1),
    (18, "store_end", 1, -1),
    (19, "tile_end", 2, 0), (19, "tile_end", 2, 1), (19, "barrier", 2, -1),
    (19, "store_start", 2, -1), (21, "store_end", 2, -1),
]


def test_three_intervals_with_dram_contention_and_double_buffering():
    t, log = run([[2, 6], [4, 1], [3, 3]], [4, 4, 4], [2, 2, 2], 1)
    assert log == GOLDEN_CONTENDED
    assert t == 21


def test_dram_is_one_channel():
    # Same case without the log: with two channels store 0 and load 2 would overlap (10–12 ∥ 10–14),
    # interval 2 would start at 14 and the pass would end at 19, not 21.
    busy, load, store = np.array([[2, 6], [4, 1], [3, 3]]), np.full(3, 4.0), np.full(3, 2.0)
    assert simulate_intervals(busy, load, store, dram_bytes_per_cycle=1) == 21
    # and a pure transfer pass is the sum of its transfers
    assert simulate_intervals(np.zeros((3, 1), np.int64), np.full(3, 5.0), np.full(3, 3.0),
                              dram_bytes_per_cycle=1) == 3 * 5 + 3 * 3


def test_compute_bound_loader_is_at_most_one_interval_ahead():
    t, log = run([[10]] * 4, [1] * 4, [0] * 4, 1)
    loads = [(e[0], e[1], e[2]) for e in log if e[1].startswith("load")]
    assert loads == [(0, "load_start", 0), (1, "load_end", 0), (1, "load_start", 1), (2, "load_end", 1),
                     (11, "load_start", 2), (12, "load_end", 2),   # buffer of interval 0 free at its barrier
                     (21, "load_start", 3), (22, "load_end", 3)]
    starts = [e[0] for e in log if e[1] == "tile_start"]
    assert starts == [1, 11, 21, 31] and t == 41
    assert not [e for e in log if e[1].startswith("store")]  # nothing to write: no transfer logged


def test_unlimited_bandwidth_and_idle_pes():
    t, log = run([[0, 0], [5, 0]], [100, 100], [100, 100], float("inf"))
    # no DRAM time at unlimited bandwidth; an idle PE's tile ends where it starts
    assert log == [
        (0, "tile_start", 0, 0), (0, "tile_start", 0, 1), (0, "tile_end", 0, 0), (0, "tile_end", 0, 1),
        (0, "barrier", 0, -1), (0, "tile_start", 1, 0), (0, "tile_start", 1, 1), (0, "tile_end", 1, 1),
        (5, "tile_end", 1, 0), (5, "barrier", 1, -1),
    ]
    assert t == 5


@pytest.mark.parametrize("seed", range(6))
def test_invariants_of_random_passes(seed):
    rng = np.random.default_rng(seed)
    nb, npe = int(rng.integers(1, 7)), int(rng.integers(1, 5))
    busy = rng.integers(0, 30, size=(nb, npe))
    load, store = rng.integers(0, 60, size=nb).astype(float), rng.integers(0, 60, size=nb).astype(float)
    bw = float(rng.choice([1, 2, 4]))
    t, log = run(busy, load, store, bw)
    assert t == simulate_intervals(busy, load, store, dram_bytes_per_cycle=bw)  # the log changes nothing
    ev = {(k, b, p): c for c, k, b, p in log}
    dram = sorted((ev[(f"{k}_start", b, -1)], ev[(f"{k}_end", b, -1)])
                  for k in ("load", "store") for b in range(nb) if (f"{k}_start", b, -1) in ev)
    assert len(dram) == int((load > 0).sum() + (store > 0).sum())
    for (_, end), (nxt, _) in zip(dram, dram[1:], strict=False):
        assert nxt >= end, "two DRAM transfers overlap: the channel is single"
    for b in range(nb):
        barrier = ev[("barrier", b, -1)]
        assert barrier == max(ev[("tile_end", b, p)] for p in range(npe))
        for p in range(npe):
            s0 = ev[("tile_start", b, p)]
            assert ev[("tile_end", b, p)] - s0 == busy[b, p]
            if ("load_end", b, -1) in ev:
                assert s0 >= ev[("load_end", b, -1)]
            if b:
                assert s0 >= ev[("barrier", b - 1, -1)]
        if ("store_start", b, -1) in ev:
            assert ev[("store_start", b, -1)] >= barrier
        if b >= 2 and ("load_start", b, -1) in ev:
            assert ev[("load_start", b, -1)] >= ev[("barrier", b - 2, -1)]  # two buffers
    assert t == max(c for c, *_ in log)
