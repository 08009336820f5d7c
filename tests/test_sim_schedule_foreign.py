"""Waits on other passes' DRAM transfers (hwsim/sim/schedule.py ``memory_stall_foreign``, ``waited_on``).

Hand-derived timelines from the model's rules (hwsim/sim/model.py; the schedule's module doc): one DRAM channel,
FIFO (a request made earlier is served first); the loader at most one interval ahead of the array (it waits for
the barrier of interval j − 2 before loading j); the writer drains an interval after its barrier; ``after``
makes a layer-pass's first load wait for its producers' write-backs. A layer-pass's memory stall is the array's
idle gaps before its intervals (without the iteration's fill and drain); its foreign wait is the part of those
gaps in which the channel carried another layer-pass's transfer.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from hwsim.cli import main
from hwsim.sim.model import run_intervals
from hwsim.sim.schedule import Segment, simulate_schedule


def seg(name, pname, spans, load, store, after=()):
    return Segment(key=(name, pname), spans=tuple(spans), load=tuple(load), store=tuple(store), after=after)


# A: a backward-weight pass of three 10-cycle intervals whose first interval writes back a 100-cycle δW;
# B: a backward-data pass of one 5-cycle interval that needs a 4-cycle read.
# A's intervals 0–10, 10–20, 20–30; A's write-back is requested at its first barrier (10) and holds the channel
# 10–110. The loader reaches B's read once A's second interval is done (20: one interval ahead) and queues behind
# the write-back (FIFO): 110–114. B computes 114–119 = the makespan (nothing left to write).
# Attribution: A owns 0–30 (no stall), B owns 30–119: 89 = 5 compute + 84 stall (the gap 30–114), of which
# 30–110 = 80 cycles the channel carried A's write-back (foreign) and 110–114 = 4 its own read.
QUEUED = [seg("a", "backward_weight", [10, 10, 10], [0, 0, 0], [100, 0, 0]),
          seg("b", "backward_data", [5], [4], [0])]


def test_a_read_queued_behind_another_pass_write_back_waits_on_it():
    tl = simulate_schedule(QUEUED)
    assert tl.makespan == 119
    assert tl.attributed == (30, 89) and tl.memory_stall == (0, 84) and tl.fill_drain == (0, 0)
    assert tl.memory_stall_foreign == (0, 80)
    assert tl.waited_on == ({}, {0: 80})


def test_a_dependency_on_the_producer_write_back_is_a_foreign_wait():
    # B reads what A writes (after=(0,)): its read waits for A's write-back 10–110 even with the channel free
    # before; A: one interval 0–10; B's read 110–114, B computes 114–119. B owns 10–119: 109 = 5 + 104 stall,
    # of which 10–110 = 100 on A's write-back.
    tl = simulate_schedule([seg("a", "backward_weight", [10], [0], [100]),
                            seg("b", "backward_data", [5], [4], [0], after=(0,))])
    assert tl.makespan == 119 and tl.memory_stall == (0, 104)
    assert tl.memory_stall_foreign == (0, 100) and tl.waited_on == ({}, {0: 100})


def test_waiting_for_its_own_transfers_is_not_foreign():
    # one pass, two intervals of 1 cycle, loads of 10: load0 0–10 (fill), tile 10–11, load1 10–20, tile 20–21:
    # the stall 11–20 = 9 is its own load
    tl = simulate_schedule([seg("a", "forward", [1, 1], [10, 10], [0, 0])])
    assert tl.fill == 10 and tl.memory_stall == (9,)
    assert tl.memory_stall_foreign == (0,) and tl.waited_on == ({},)


def test_three_owners_each_counted_where_they_overlap_the_gap():
    # A: one interval 0–10, write-back 30 cycles; B: one interval 10–12, write-back 20 cycles; the writer drains
    # in order: A's 10–40, B's 40–60. C reads what B writes (after=(1,)): its 5-cycle read 60–65, C computes 65–68.
    tl = simulate_schedule([seg("a", "backward_weight", [10], [0], [30]),
                            seg("b", "backward_weight", [2], [0], [20]),
                            seg("c", "backward_data", [3], [5], [0], after=(1,))])
    # C's read after B's write-back (writer in order: A 10–40, B 40–60): 60–65; C computes 65–68.
    # C owns 12–68: 56 = 3 + 53 stall (12–65): A's write-back 12–40 = 28, B's 40–60 = 20, its own read 5.
    assert tl.makespan == 68 and tl.memory_stall == (0, 0, 53)
    assert tl.memory_stall_foreign == (0, 0, 48) and tl.waited_on == ({}, {}, {0: 28, 1: 20})


def test_held_lists_every_transfer_as_the_log_does():
    log: list = []
    held: list = []
    run_intervals([10, 10, 10, 5], [0, 0, 0, 4], [100, 0, 0, 0], log=log, held=held)
    assert held == [(10, 100, 0), (110, 4, 3)]  # (start, cycles, interval): A's write-back, then B's read
    starts = [(t, j) for t, kind, j in log if kind in ("load_start", "store_start")]
    assert [(s, j) for s, _, j in held] == starts


def _by_cycle(log, nseg):
    """Reference, one cycle at a time from the event log: per segment, the cycles the array idles before one of
    its intervals (after the first tile started) and, of those, the cycles the channel carries another segment's
    transfer."""
    tiles = sorted((c, s) for c, kind, s, _, _ in log if kind == "tile_start")
    busy = {(s, i): c for c, kind, s, i, _ in log if kind == "tile_start"}
    spans = [(busy[(s, i)], c) for c, kind, s, i, _ in log if kind == "barrier"]
    held = {}
    for c, kind, s, i, _ in log:
        if kind in ("load_start", "store_start"):
            held[(kind[:4], s, i)] = [c, None]
        elif kind in ("load_end", "store_end"):
            held[(kind[:4], s, i)][1] = c
    stall, foreign = [0] * nseg, [0] * nseg
    for c in range(tiles[0][0], max(b for _, b in spans)):
        if any(a <= c < b for a, b in spans):
            continue
        owner = next(s for t, s in tiles if t > c)  # the segment whose interval starts next waits
        stall[owner] += 1
        foreign[owner] += any(a <= c < b and s != owner for (_, s, _), (a, b) in held.items())
    return stall, foreign


@pytest.mark.parametrize("seed", range(12))
def test_matches_a_cycle_by_cycle_count_of_random_schedules(seed):
    rng = np.random.default_rng(seed)
    segs = []
    for k in range(4):
        n = int(rng.integers(1, 4))
        after = (int(rng.integers(0, k)),) if k and rng.random() < 0.5 else ()
        segs.append(seg(f"l{k}", "forward", rng.integers(0, 12, n), rng.integers(0, 15, n), rng.integers(0, 15, n),
                        after=after))
    log: list = []
    tl = simulate_schedule(segs, log=log)
    stall, foreign = _by_cycle(log, len(segs))
    assert list(tl.memory_stall) == stall
    assert list(tl.memory_stall_foreign) == foreign
    assert [sum(d.values()) for d in tl.waited_on] == foreign


def test_a_schedule_without_work_has_no_foreign_wait():
    tl = simulate_schedule([seg("a", "forward", [], [], [])])
    assert tl.memory_stall_foreign == (0,) and tl.waited_on == ({},)


# ----------------------------------------------------------------------------- the GPT-2 block (QA's case)


def _simulate(tmp_path, *sets):
    """QA's case through the CLI, in-process: ``hwsim synth --model gpt2_small --seq 64 --batch 2 --blocks 1``
    replayed on scnn (< 1 s)."""
    trace, out = tmp_path / "g2", tmp_path / "r.json"
    assert main(["synth", "--model", "gpt2_small", "--seq", "64", "--batch", "2", "--blocks", "1",
                 "--out", str(trace)]) == 0
    args = ["simulate", str(trace), "--arch", "scnn", "--iteration", "0", "--out", str(out), "--quiet"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    return _simulate(tmp_path_factory.mktemp("it"), "memory.schedule=iteration")


def test_gpt2_table_row_and_footnote_show_the_measured_figure(gpt2):
    from hwsim.commands.simulate import FOREIGN_LABEL, table
    from hwsim.results import PASSES, SimResult

    res = SimResult.from_json(gpt2)
    lines = table(res).splitlines()
    row = next(ln for ln in lines if ln.startswith(FOREIGN_LABEL))
    want = []
    for p in PASSES:
        v = res.pass_total(p, "sparse")
        want.append(f"{v.cycle_breakdown.memory_stall_foreign / v.cycles:.1%}")
    cells = row[len(FOREIGN_LABEL):].split()
    assert cells[:3] == want
    # then the weight update's and the iteration's shares (a pass may wait on none while the update does)
    rest = {s: res.scope_total(s, "sparse") for s in ("update", "iteration")}
    assert row.endswith("   (" + ", ".join(f"{s} {v.cycle_breakdown.memory_stall_foreign / v.cycles:.1%}"
                                          for s, v in rest.items())
                        + ")")
    pv = res.layer("h.0.attn:pv", "backward_data").sparse.cycle_breakdown
    assert any(ln.startswith(f"  h.0.attn:pv bwd-data: {pv.memory_stall:,} memory-stall cycles, of which "
                             f"{pv.memory_stall_foreign:,} ") for ln in lines)


def test_gpt2_pv_backward_data_waits_mostly_on_other_passes(gpt2):
    by = {(lp["name"], lp["pass"]): lp["sparse"] for lp in gpt2["layers"]}
    pv = by[("h.0.attn:pv", "backward_data")]
    stall = pv["breakdown"]["cycles"]["memory_stall"]
    assert stall > 100_000 and pv["memory_stall_foreign"] >= 0.97 * stall  # QA: 97 % two δW write-backs
    for lp in gpt2["layers"]:  # a share of memory_stall, never more; never a part of the cycles
        for v in ("sparse", "dense"):
            r = lp[v]
            assert r.get("memory_stall_foreign", 0) <= r["breakdown"]["cycles"]["memory_stall"]
            assert "memory_stall_foreign" not in r["breakdown"]["cycles"]
            assert r["cycles"] == sum(r["breakdown"]["cycles"].values())


def test_isolated_has_no_foreign_wait_anywhere(tmp_path):
    res = _simulate(tmp_path, "memory.schedule=isolated")
    assert not any("memory_stall_foreign" in lp[v] for lp in res["layers"] for v in ("sparse", "dense"))
    assert any(lp["sparse"]["breakdown"]["cycles"]["memory_stall"] for lp in res["layers"])  # stalls there are
