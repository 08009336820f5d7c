"""How many tile buffers the chip has (``memory.tile_buffers``, hwsim/sim/model.py): the loader loads interval j once
interval j − B is done, so it runs at most B − 1 intervals ahead of the array; the array starts j after j − 1's
barrier and once j is loaded. Hand-derived timelines from those rules.
"""

from __future__ import annotations

import pytest

from hwsim.arch import dense_systolic_variant, dense_variant, load_arch
from hwsim.arch.errors import ArchError
from hwsim.sim import simulate
from hwsim.sim.model import TILE_BUFFERS, run_intervals
from hwsim.sim.schedule import Segment, simulate_schedule

SAMPLE = "traces/samples/lenet5-digits-dither"


def test_one_buffer_serializes_each_load_behind_the_previous_compute():
    # Three 4-cycle intervals loaded in 3 each, nothing written back.
    # B = 1: load0 0–3, interval 0 3–7; load1 waits for interval 0's barrier: 7–10, interval 1 10–14; load2 14–17,
    #   interval 2 17–21 = the makespan (3 loads + 3 computes, nothing overlapped).
    # B = 2: load0 0–3, load1 3–6 (one ahead), interval 0 3–7; load2 waits for interval 0's barrier: 7–10;
    #   interval 1 7–11, interval 2 11–15.
    args = ([4, 4, 4], [3, 3, 3], [0, 0, 0])
    one = run_intervals(*args, tile_buffers=1)
    assert (one.makespan, one.starts, one.barriers) == (21, [3, 10, 17], [7, 14, 21])
    two = run_intervals(*args, tile_buffers=2)
    assert (two.makespan, two.starts, two.barriers) == (15, [3, 7, 11], [7, 11, 15])
    assert run_intervals(*args) == two and TILE_BUFFERS == 2  # the default is double buffering


def test_three_buffers_let_the_loader_run_two_intervals_ahead():
    # Intervals of 10, 1, 1 cycles, loads of 1, 5, 5. Load0 0–1, load1 1–6; interval 0 computes 1–11.
    # B = 2: load2 waits for interval 0's barrier (its buffer): 11–16; interval 1 11–12, interval 2 16–17.
    # B = 3: load2 needs no barrier (three buffers), 6–11, hidden behind interval 0; interval 1 11–12, 2 12–13.
    args = ([10, 1, 1], [1, 5, 5], [0, 0, 0])
    two = run_intervals(*args, tile_buffers=2)
    assert (two.makespan, two.starts) == (17, [1, 11, 16])
    three = run_intervals(*args, tile_buffers=3)
    assert (three.makespan, three.starts) == (13, [1, 11, 12])


def test_reads_first_drains_a_write_back_when_its_buffer_is_needed_under_b_buffers():
    # Four 1-cycle intervals loaded in 3 each; interval 0 writes back 2 (its outputs wait in one of the B buffers).
    # B = 3: load0 0–3, load1 3–6, load2 6–9 (the write-back, waiting since interval 0's barrier at 4, yields: the
    #   array has passed 1 < 0 + 3 barriers), interval 1 6–7; at 9 load3 (interval 0 done) also goes first (passed
    #   2 < 3), 9–12; interval 2 9–10 (passed 3); at 12 the write-back 12–14; interval 3 12–13; makespan 14.
    # B = 1: at interval 0's barrier (4) the write-back's buffer is needed at once (passed 1 >= 0 + 1): it goes
    #   before load1, 4–6; load1 6–9, interval 1 9–10, load2 10–13, interval 2 13–14, load3 14–17, interval 3 17–18.
    args = ([1, 1, 1, 1], [3, 3, 3, 3], [2, 0, 0, 0])
    log = []
    three = run_intervals(*args, arbiter="reads_first", tile_buffers=3, log=log)
    assert (three.makespan, three.starts) == (14, [3, 6, 9, 12])
    assert [t for t, k, _ in log if k == "store_start"] == [12]
    log = []
    one = run_intervals(*args, arbiter="reads_first", tile_buffers=1, log=log)
    assert (one.makespan, one.starts) == (18, [3, 9, 13, 17])
    assert [t for t, k, _ in log if k == "store_start"] == [4]


def test_the_schedule_passes_the_buffers_on_and_keys_its_cache_by_them():
    # One segment = run_intervals' timeline: the first test's figures (fill 3, the rest load stall).
    segs = [Segment(key=("a", "forward"), spans=(4, 4, 4), load=(3, 3, 3), store=(0, 0, 0))]
    one = simulate_schedule(segs, tile_buffers=1, remember=True)
    two = simulate_schedule(segs, tile_buffers=2, remember=True)
    assert (one.makespan, one.fill, one.memory_stall) == (21, 3, (6,))  # 7–10 and 14–17
    assert (two.makespan, two.fill, two.memory_stall) == (15, 3, (0,))
    assert simulate_schedule(segs, tile_buffers=1, remember=True) is one


def test_a_bad_count_is_one_line_naming_the_field():
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match=r"tile_buffers: .*; allowed: an integer >= 1 \(memory\.tile_buffers\)"):
            run_intervals([1], [1], [1], tile_buffers=bad)
    with pytest.raises(ArchError, match=r"memory\.tile_buffers: 0 is out of range; allowed: integer >= 1") as e:
        load_arch("scnn", {"memory.tile_buffers": 0})
    assert "\n" not in str(e.value)
    with pytest.raises(ArchError, match=r"memory\.tile_buffers: must be an integer"):
        load_arch("scnn", {"memory.tile_buffers": 2.5})


def test_the_field_is_written_out_and_followed_by_the_baselines():
    for name in ("scnn", "scnn16", "scnn_bitfusion", "scnn_bitserial", "scnn_pragmatic", "systolic32", "training",
                 "systolic32_os", "tensordash"):
        with open(f"arch_configs/{name}.yaml") as f:
            assert "\n  tile_buffers: 2 " in f.read(), name
        assert load_arch(name).memory.tile_buffers == 2
    three = load_arch("scnn", {"memory.tile_buffers": 3})
    assert three.content_hash() != load_arch("scnn").content_hash()
    assert "tile_buffers" not in load_arch("scnn").to_dict()["memory"]  # at its default: hashes unchanged
    for derive in (dense_variant, dense_systolic_variant):
        assert derive(three).memory.tile_buffers == 3


def test_the_iteration_schedule_follows_the_field_on_a_trace():
    # LeNet-5's iteration: the buffers move memory time only; one buffer exposes every load
    one = simulate(SAMPLE, load_arch("scnn", {"memory.tile_buffers": 1}), iteration=45)
    two = simulate(SAMPLE, load_arch("scnn"), iteration=45)
    for a, b in zip(one.layers, two.layers, strict=True):
        ca, cb = a.sparse.cycle_breakdown, b.sparse.cycle_breakdown
        assert (ca.compute, ca.imbalance, ca.bank_conflict) == (cb.compute, cb.imbalance, cb.bank_conflict)
    assert one.total("sparse").cycles > two.total("sparse").cycles
    assert one.total("dense").cycles > two.total("dense").cycles


def test_isolated_layer_passes_keep_two_buffers():
    # memory.schedule: isolated runs each layer-pass alone with the model's double buffering: the field is not read
    iso = {"memory.schedule": "isolated"}
    a = simulate(SAMPLE, load_arch("scnn", {**iso, "memory.tile_buffers": 1}), iteration=45)
    b = simulate(SAMPLE, load_arch("scnn", iso), iteration=45)
    for v in ("sparse", "dense", "dense_systolic"):
        assert [getattr(lp, v).cycles for lp in a.layers] == [getattr(lp, v).cycles for lp in b.layers]
