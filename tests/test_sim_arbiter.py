"""Who gets the one DRAM channel when a load and a write-back both wait (``memory.dram_arbiter``, hwsim/sim/model.py).

Hand-derived timelines from the model's rules: the loader at most one interval ahead of the array (it waits for the
barrier of interval j − 2 before loading j), the writer drains an interval after its barrier, a transfer holds the
channel to its end. ``in_order``: first come, first served, same-cycle requests in SimPy's event order (the writer,
waiting on the barrier since the start, is woken before the loader). ``reads_first``: the channel decides at the
end of the cycle and takes a waiting load before a waiting write-back.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.arch import dense_systolic_variant, dense_variant, load_arch
from hwsim.arch.errors import ArchError
from hwsim.sim import simulate
from hwsim.sim.model import run_intervals, simulate_intervals
from hwsim.sim.schedule import Segment, simulate_schedule

SAMPLE = "traces/samples/lenet5-digits-dither"

# A: a pass of one 10-cycle interval, loaded in 2 cycles, writing back 6; B: two 1-cycle intervals loaded in 2 and
# 4. Global intervals 0 (A), 1, 2 (B). Load0 0–2, load1 2–4 (one ahead); A computes 2–12; B's interval 1 is
# loaded and starts at A's barrier (12), its barrier 13. At 12 A's barrier wakes both the writer (A's 6-cycle
# write-back) and the loader (load2 may start now that interval 0 is done): the tie.
TIE = [Segment(key=("a", "backward_weight"), spans=(10,), load=(2,), store=(6,)),
       Segment(key=("b", "backward_data"), spans=(1, 1), load=(2, 4), store=(0, 0))]


def test_in_order_gives_the_tie_to_the_writer_as_before():
    # write-back 12–18, load2 18–22, B's interval 2 22–23 = the makespan (nothing left to write).
    # A owns 0–12: 10 compute + the fill 2; B owns 12–23: 2 compute + 9 stall (13–22), of which 13–18 A's write-back.
    log = []
    tl = simulate_schedule(TIE, arbiter="in_order", log=log)
    assert tl.makespan == 23 and tl.fill == 2 and tl.drain == 0
    assert tl.attributed == (12, 11) and tl.memory_stall == (0, 9) and tl.memory_stall_foreign == (0, 5)
    assert [(t, k) for t, k, *_ in log if k in ("store_start", "load_start") and t == 12] == [(12, "store_start")]
    assert simulate_schedule(TIE) == tl  # in_order is the function's default (hand-built schedules elsewhere)


def test_reads_first_gives_the_tie_to_the_load():
    # load2 12–16, B's interval 2 16–17; the write-back 16–22 = the makespan. A owns 0–12 as before; B owns 12–22:
    # 2 compute + the drain 5 (17–22) + 3 stall (13–16, its own load: nothing foreign).
    log = []
    tl = simulate_schedule(TIE, arbiter="reads_first", log=log)
    assert tl.makespan == 22 and tl.fill == 2 and tl.drain == 5
    assert tl.attributed == (12, 10) and tl.memory_stall == (0, 3) and tl.fill_drain == (2, 5)
    assert tl.memory_stall_foreign == (0, 0)
    starts = [(t, k, s, i) for t, k, s, i, _ in log if k in ("store_start", "load_start")]
    assert starts == [(0, "load_start", 0, 0), (2, "load_start", 1, 0), (12, "load_start", 1, 1),
                      (16, "store_start", 0, 0)]


def test_reads_first_serves_a_later_load_before_a_queued_write_back():
    # Three 1-cycle intervals, loads of 5, a write-back of 3 after interval 0. Load0 0–5, load1 5–10 (one ahead);
    # interval 0 computes 5–6: the writer asks at 6 and waits (load1 holds the channel); the loader asks for load2
    # at 10, when load1 ends. in_order: the write-back asked first, 10–13, then load2 13–18, interval 2 18–19.
    # reads_first: load2 10–15, interval 2 15–16, the write-back 15–18 (the makespan: its end).
    args = ([1, 1, 1], [5, 5, 5], [3, 0, 0])
    fifo = run_intervals(*args, arbiter="in_order")
    reads = run_intervals(*args, arbiter="reads_first")
    assert (fifo.makespan, fifo.starts, fifo.barriers) == (19, [5, 10, 18], [6, 11, 19])
    assert (reads.makespan, reads.starts, reads.barriers) == (18, [5, 10, 15], [6, 11, 16])


def test_reads_first_decides_after_a_write_back_releases_the_load_it_holds_up():
    # P writes back what C reads (after=(0,)); Q's write-back comes next in the writer's order. Intervals 0 (P), 1 (Q),
    # 2 (C) of 1 cycle; only C loads (2). P computes 0–1, its write-back 1–4; Q computes 1–2. At 4 the end of P's
    # write-back frees C's load and the writer asks for Q's write-back (2) in the same cycle.
    # in_order: the writer asks first, Q's write-back 4–6, C's load 6–8, C computes 8–9 = the makespan.
    #   C owns 2–9: 1 compute + 6 stall (2–8): 2–4 on P's write-back, 4–6 on Q's, 6–8 its own load.
    # reads_first: C's load 4–6, C computes 6–7, Q's write-back 6–8 = the makespan (drain 1).
    #   C owns 2–8: 1 compute + 1 drain + 4 stall (2–6): 2–4 on P's write-back, 4–6 its own load.
    segs = [Segment(key=("p", "forward"), spans=(1,), load=(0,), store=(3,)),
            Segment(key=("q", "forward"), spans=(1,), load=(0,), store=(2,)),
            Segment(key=("c", "forward"), spans=(1,), load=(2,), store=(0,), after=(0,))]
    fifo = simulate_schedule(segs, arbiter="in_order")
    assert fifo.makespan == 9 and fifo.memory_stall == (0, 0, 6) and fifo.memory_stall_foreign == (0, 0, 4)
    assert fifo.waited_on[2] == {0: 2, 1: 2}
    reads = simulate_schedule(segs, arbiter="reads_first")
    assert reads.makespan == 8 and reads.drain == 1 and reads.memory_stall == (0, 0, 4)
    assert reads.memory_stall_foreign == (0, 0, 2) and reads.waited_on[2] == {0: 2}


def test_reads_first_drains_a_write_back_whose_buffer_the_array_needs():
    # Four 1-cycle intervals loaded in 3 each; interval 0 writes back 2. Load0 0–3, load1 3–6; interval 0 computes
    # 3–4 and its write-back waits from 4 (load1 holds the channel). At 6 the loader asks for load2: the array has
    # passed one barrier (interval 0's), so load2 goes first, 6–9; interval 1 computes 6–7. At 9 the loader asks for
    # load3, but the array has passed interval 1's barrier: interval 2 (computing 9–10) needs interval 0's tile
    # buffer, so the write-back goes first, 9–11, then load3 11–14 and interval 3 14–15 = the makespan.
    # Read priority without the drain would give load3 9–12 and end at 14; in_order serves the write-back at 6
    # (it asked first): load2 8–11, interval 2 11–12, load3 11–14, interval 3 14–15.
    args = ([1, 1, 1, 1], [3, 3, 3, 3], [2, 0, 0, 0])
    log = []
    reads = run_intervals(*args, arbiter="reads_first", log=log)
    assert (reads.makespan, reads.starts, reads.barriers) == (15, [3, 6, 9, 14], [4, 7, 10, 15])
    assert [t for t, k, _ in log if k == "store_start"] == [9]
    fifo = run_intervals(*args, arbiter="in_order")
    assert (fifo.makespan, fifo.starts) == (15, [3, 6, 11, 14])


def test_without_a_conflict_the_arbiters_agree():
    # one pass, loads only: nothing to arbitrate
    args = ([3, 1, 4], [2, 7, 1], [0, 0, 0])
    assert run_intervals(*args, arbiter="reads_first") == run_intervals(*args, arbiter="in_order")


def test_a_bad_arbiter_is_one_line_naming_the_field():
    with pytest.raises(ValueError, match=r"arbiter: 'fifo'; allowed: one of reads_first, in_order"):
        run_intervals([1], [1], [1], arbiter="fifo")
    with pytest.raises(ArchError, match=r"memory\.dram_arbiter.*allowed: one of reads_first, in_order") as e:
        load_arch("scnn", {"memory.dram_arbiter": "writes_first"})
    assert "\n" not in str(e.value)


def test_the_field_is_written_out_and_followed_by_the_baselines():
    for name in ("scnn", "scnn16", "scnn_bitfusion", "scnn_bitserial", "scnn_pragmatic", "systolic32", "training",
                 "systolic32_os", "tensordash"):
        a = load_arch(name)
        assert a.memory.dram_arbiter == "reads_first", name
        assert a.to_dict()["memory"]["dram_arbiter"] == "reads_first"
    fifo = load_arch("scnn", {"memory.dram_arbiter": "in_order"})
    assert fifo.content_hash() != load_arch("scnn").content_hash()
    for derive in (dense_variant, dense_systolic_variant):
        assert derive(fifo).memory.dram_arbiter == "in_order"


def test_isolated_layer_passes_do_not_use_the_field():
    iso = {"memory.schedule": "isolated"}
    a = simulate(SAMPLE, load_arch("scnn", {**iso, "memory.dram_arbiter": "in_order"}), iteration=45)
    b = simulate(SAMPLE, load_arch("scnn", {**iso, "memory.dram_arbiter": "reads_first"}), iteration=45)
    for v in ("sparse", "dense", "dense_systolic"):
        assert [getattr(lp, v).cycles for lp in a.layers] == [getattr(lp, v).cycles for lp in b.layers]
        assert a.total(v).energy_pj == b.total(v).energy_pj


def test_the_iteration_schedule_follows_the_field_on_a_trace():
    # the LeNet-5 sample's iteration: the arbiter moves memory time only, and the sparse schedule differs
    fifo = simulate(SAMPLE, load_arch("scnn", {"memory.dram_arbiter": "in_order"}), iteration=45)
    reads = simulate(SAMPLE, load_arch("scnn"), iteration=45)
    for a, b in zip(fifo.layers, reads.layers, strict=True):
        ca, cb = a.sparse.cycle_breakdown, b.sparse.cycle_breakdown
        assert (ca.compute, ca.imbalance, ca.bank_conflict) == (cb.compute, cb.imbalance, cb.bank_conflict)
    assert [lp.sparse.cycles for lp in fifo.layers] != [lp.sparse.cycles for lp in reads.layers]


def test_isolated_model_keeps_fifo_ties_in_simulate_intervals():
    # simulate_intervals (the isolated model) has no arbiter: the writer wins the tie at the barrier, as in_order
    busy = np.array([[10], [1], [1]])
    assert simulate_intervals(busy, np.array([2.0, 2, 4]), np.array([6.0, 0, 0]), dram_bytes_per_cycle=1) == 23
