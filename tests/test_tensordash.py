"""The TensorDash-style operand scheduler (hwsim/sim/tensordash.py, hwsim/arch/tensordash.py): hand-computed
schedules on small patterns, its bounds, its folds, its area and energy, and the shipped arch on real masks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwsim.arch import ArchError, area_breakdown_um2, dense_variant, load_arch
from hwsim.sim import systolic
from hwsim.sim.tensordash import fold_cycles, im2col_rows, options, stream_cycles


def cycles(rows, *, lanes, lookahead=2, lookaside=0):
    return stream_cycles(np.array(rows, dtype=bool), lanes=lanes, lookahead=lookahead, lookaside=lookaside).tolist()


def test_candidate_order_is_own_lane_then_neighbours_one_step_ahead():
    assert options(2, 5) == [(0, 0), (1, 0), (2, 0), (1, 1), (1, -1), (1, 2), (1, -2), (1, 3)]   # an 8-input mux
    assert options(0, 2) == [(0, 0), (0, 1), (0, -1)]


def test_dense_stream_takes_its_steps_and_an_empty_one_the_staging_bound():
    assert cycles([[1] * 16], lanes=4) == [4]                    # density 1: T = 16 / 4 steps, 1.0×
    assert cycles([[0] * 16], lanes=4) == [2]                    # nothing to do: ⌈4 / 3⌉ window shifts
    assert cycles([[1] * 13], lanes=4) == [4]                    # a partial last step is a step


def test_lookahead_by_hand():
    # 2 lanes, lookahead 1; steps (lane 0, lane 1): [1,0] [1,1] [0,1] [1,0]
    # cycle 1: lane 0 takes (0,0), lane 1 its own step 1 → steps 0 drained, head 1
    # cycle 2: lane 0 takes (1,0), lane 1 its own step 2 → steps 1, 2 drained, head 3
    # cycle 3: lane 0 takes (3,0) → done
    assert cycles([[1, 0, 1, 1, 0, 1, 1, 0]], lanes=2, lookahead=1) == [3]
    assert cycles([[1, 0, 1, 1, 0, 1, 1, 0]], lanes=2, lookahead=0) == [4]   # no window: dense pace


def test_lookaside_by_hand():
    # 4 steps of [1, 0]: lane 1 never has work of its own; with one lookaside it takes lane 0's value one step
    # ahead each cycle, so two steps drain a cycle (the staging bound ⌈4 / 2⌉); without it, 4 cycles
    stream = [[1, 0] * 4]
    assert cycles(stream, lanes=2, lookahead=1, lookaside=1) == [2]
    assert cycles(stream, lanes=2, lookahead=1, lookaside=0) == [4]
    # 4 lanes, only lane 0 busy: lookahead 2 alone is bound by lane 0's own values
    assert cycles([[1, 0, 0, 0] * 4], lanes=4, lookahead=2, lookaside=0) == [4]
    # lookaside 3: lane 3 (offset +1) takes (step h+1, lane 0), so two steps drain a cycle
    assert cycles([[1, 0, 0, 0] * 4], lanes=4, lookahead=2, lookaside=3) == [2]


def test_lookaside_needs_enough_lanes():
    with pytest.raises(ValueError, match="lookaside 5 needs at least 6 lanes"):
        cycles([[1] * 8], lanes=4, lookaside=5)


@pytest.mark.parametrize("lookahead,lookaside", [(2, 5), (1, 0), (3, 2), (0, 3)])
def test_random_streams_stay_between_the_staging_bound_and_dense_and_grow_with_density(lookahead, lookaside):
    rng = np.random.default_rng(7)
    u = rng.random((300, 16 * 40))                               # nested masks: only the density changes
    t = 40
    totals = []
    for d in (0.0, 0.05, 0.2, 0.5, 0.8, 1.0):
        c = stream_cycles(u < d, lanes=16, lookahead=lookahead, lookaside=lookaside)
        assert c.min() >= math.ceil(t / (lookahead + 1)) and c.max() <= t
        totals.append(int(c.sum()))
    assert totals[-1] == 300 * t                                 # density 1: exactly the dense steps
    assert totals[0] == 300 * math.ceil(t / (lookahead + 1))
    assert totals == sorted(totals)                              # more non-zeros never make the whole set faster


def test_fold_cycles_take_the_slowest_stream_of_each_fold():
    # rows side: 3 rows on a 2-row array → row folds {3, 1} and {2}; OS scalesim fold = T + R + C − 2
    plan = systolic.fold_plan("systolic_os", m=3, kr=8, ncol=3, rows=2, cols=2, lanes=2)   # T = 4, 2 column folds
    assert plan.t == 4 and plan.col_folds == 2
    assert fold_cycles(np.array([3, 1, 2]), "rows", plan).tolist() == [(3 + 2) + (2 + 2)] * 2
    # columns side: 3 columns on 2 → column folds {3, 1} and {2}, each run by the 2 row folds
    assert fold_cycles(np.array([3, 1, 2]), "cols", plan).tolist() == [2 * (3 + 2), 2 * (2 + 2)]
    # broadcast array: no per-fold skew, R + C − 2 once (added by the caller through plan.once)
    flat = systolic.fold_plan("systolic_os", m=3, kr=8, ncol=3, rows=2, cols=2, lanes=2, os_drain="broadcast")
    assert flat.once == 2 and flat.cycles_per_fold == 4
    assert flat.compute_cycles == 4 * 4 + 2 - 1 == int(flat.column_fold_cycles().sum())
    assert fold_cycles(np.array([3, 1, 2]), "rows", flat).tolist() == [5, 5]


def test_im2col_rows_by_hand():
    a = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=bool)[None, None]   # (1, 1, 3, 3) identity
    m = im2col_rows(a, kernel=(2, 2), stride=(1, 1), padding=(0, 0), dilation=(1, 1), out_hw=(2, 2))
    assert m.astype(int).tolist() == [[1, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 1]]
    mt = im2col_rows(a, kernel=(2, 2), stride=(1, 1), padding=(0, 0), dilation=(1, 1), out_hw=(2, 2), transpose=True)
    assert (mt == m.T).all()
    padded = im2col_rows(a, kernel=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1), out_hw=(3, 3))
    assert padded.shape == (9, 9) and int(padded.sum()) == 4 + 9 + 4   # corners seen by 4 windows, centre by 9


def test_area_charges_mux_staging_and_nsd_unit_only_with_the_scheduler():
    arch = load_arch("tensordash")
    parts = area_breakdown_um2(arch)
    lanes = 8 * 8 * 16
    assert parts["td_mux"] == pytest.approx(lanes * 2 * (8 - 1) * 8 * 1.862)          # two 8:1 muxes, 8 bits
    assert parts["td_staging"] == pytest.approx(lanes * 2 * 3 * 8 / 8 / 1024 * 28350.0)  # 2 × 3-deep windows
    assert parts["quantizer"] == pytest.approx(64 * 4195.0)
    assert parts["adders"] == pytest.approx(lanes * 137.0)                                # 32-bit adder per lane
    dense = area_breakdown_um2(dense_variant(arch))
    assert "td_mux" not in dense and "td_staging" not in dense and dense["quantizer"] == 0.0
    shallow = area_breakdown_um2(load_arch("tensordash", {"tensordash.lookahead": 0, "tensordash.lookaside": 1}))
    assert shallow["td_mux"] == pytest.approx(lanes * 2 * 1 * 8 * 1.862)


def test_bad_tensordash_fields_name_the_field():
    with pytest.raises(ArchError, match=r"tensordash\.backward_weight_operand: .*allowed: .*auto"):
        load_arch("tensordash", {"tensordash.backward_weight_operand": "w"})
    with pytest.raises(ArchError, match=r"tensordash\.lookaside: 15 neighbours with pe\.mult_i = 15 lanes; allowed: 0\.\.14$"):
        load_arch("tensordash", {"tensordash.lookaside": 15, "pe.mult_i": 15})
    with pytest.raises(ArchError, match=r"pe\.mult_i: 65 lanes with the TensorDash-style scheduler; allowed: 1\.\.64$"):
        load_arch("tensordash", {"pe.mult_i": 65})
    assert load_arch("tensordash", {"pe.mult_i": 65, "zero_skip.activations": False,
                                    "zero_skip.gradients": False}).pe.mult_i == 65   # no scheduler, no limit


@pytest.fixture(scope="module")
def lenet():
    import hwsim
    return hwsim.simulate("traces/samples/lenet5-digits-dither", "tensordash")


def test_scheduler_never_slower_than_its_dense_array_on_real_masks(lenet):
    for lp in lenet.layers:
        if lp.pass_name == "update":
            continue
        s, d = lp.sparse.cycle_breakdown, lp.dense.cycle_breakdown
        busy = lambda b: b.compute + b.fragmentation + b.imbalance   # noqa: E731  (the array's own cycles)
        assert busy(s) <= busy(d), (lp.name, lp.pass_name)
        assert lp.sparse.macs <= lp.dense.macs                      # zeros of the scheduled operand are not issued


def test_mux_energy_is_charged_per_scheduled_product(lenet):
    lp = next(x for x in lenet.layers if x.name == "features.4" and x.pass_name == "backward_weight")
    xbar = lp.sparse.actions["xbar"]
    assert xbar == lp.sparse.actions["mult"] > 0
    assert lp.sparse.energy_breakdown.crossbar == pytest.approx(xbar * (0.2 + 0.1))
    assert lp.dense.energy_breakdown.crossbar == pytest.approx(lp.dense.actions["xbar"] * 0.2)


def test_density_one_is_exactly_the_dense_array(tmp_path):
    import hwsim
    layers = [{"name": "c1", "C": 3, "K": 8, "H": 9, "W": 9, "R": 3, "S": 3},      # unpadded: no zeros to skip
              {"name": "c2", "C": 8, "K": 20, "H": 7, "W": 7, "R": 3, "S": 3, "groups": 2},
              {"name": "fc", "kind": "linear", "C": 500, "K": 10}]
    trace = hwsim.synthesize(tmp_path / "t", layers=layers, a_density=1.0, dz_density=1.0, batch=3)
    r = hwsim.simulate(trace, "tensordash")
    assert len([lp for lp in r.layers if lp.pass_name != "update"]) == 8
    for lp in r.layers:
        if lp.pass_name != "update":
            s, d = lp.sparse.cycle_breakdown, lp.dense.cycle_breakdown
            assert (s.compute + s.fragmentation, lp.sparse.macs) == (d.compute + d.fragmentation, lp.dense.macs), \
                (lp.name, lp.pass_name)


def test_records_add_up_to_the_iteration_schedule(lenet):
    for v, t in lenet.run["schedule"]["makespan"].items():
        assert sum(getattr(lp, v).cycles - getattr(lp, v).cycle_breakdown.reduction
                   - getattr(lp, v).cycle_breakdown.nsd for lp in lenet.layers) == t, v


def test_no_window_and_no_neighbours_is_the_dense_pace():
    import hwsim
    r = hwsim.simulate("traces/samples/lenet5-digits-dither",
                       load_arch("tensordash", {"tensordash.lookahead": 0, "tensordash.lookaside": 0}))
    for lp in r.layers:
        if lp.pass_name != "update":    # one step a cycle, zeros or not: every fold as long as the dense one
            assert lp.sparse.cycle_breakdown.compute + lp.sparse.cycle_breakdown.fragmentation == \
                lp.dense.cycle_breakdown.compute + lp.dense.cycle_breakdown.fragmentation, (lp.name, lp.pass_name)


def test_validate_prints_the_scheduler():
    from hwsim.commands.validate import summary

    assert "  scheduler     TensorDash-style: lookahead 2, lookaside 5 (8-input muxes), backward-weight operand auto" \
        in summary(load_arch("tensordash")).splitlines()
    assert "scheduler" not in summary(load_arch("systolic32"))


def test_issued_products_are_the_scheduled_non_zeros_times_their_partners(lenet):
    """features.0 (1 → 6 channels, 5×5, pad 2 on 28×28): forward issues every (output pixel, tap) whose input is a
    non-zero — padding included as zeros — times K = 6; backward-weight (δ̃z scheduled) every non-zero δ̃z times
    C·R·S = 25 input taps. Counted here by shifting the mask, not through im2col."""
    import hwsim

    x = hwsim.load_trace("traces/samples/lenet5-digits-dither").sample(lenet.trace["iteration"])["features.0"]
    a = np.pad(x.a_mask.astype(np.int64), ((0, 0), (0, 0), (2, 2), (2, 2)))
    taps = sum(int(a[:, :, r:r + 28, s:s + 28].sum()) for r in range(5) for s in range(5))
    got = {lp.pass_name: lp.sparse.macs for lp in lenet.layers if lp.name == "features.0"}
    assert got["forward"] == taps * 6
    assert got["backward_weight"] == int((x.dz_levels != 0).sum()) * 25


def test_backward_weight_operand_auto_takes_the_sparser_tensor(lenet):
    import hwsim

    forced = hwsim.simulate("traces/samples/lenet5-digits-dither",
                            load_arch("tensordash", {"tensordash.backward_weight_operand": "a"}))
    for auto, a in zip(lenet.layers, forced.layers, strict=True):
        if auto.pass_name == "backward_weight":   # δ̃z (3–5 % dense) beats a (41–100 %) on every layer
            assert auto.density["dz"] < auto.density["a"]
            assert auto.sparse.macs < a.sparse.macs and auto.sparse.cycles <= a.sparse.cycles, auto.name
        elif auto.pass_name != "update":
            assert auto.sparse.cycle_breakdown == a.sparse.cycle_breakdown



def _reference_cycles(stream: list[int], lanes: int, lookahead: int, lookaside: int) -> int:
    """The module doc's rule for one stream in plain Python loops (slow, and plainly the rule)."""
    t = -(-len(stream) // lanes)
    grid = [[k * lanes + i < len(stream) and bool(stream[k * lanes + i]) for i in range(lanes)]
            for k in range(t + lookahead + 1)]
    head = cyc = 0
    while head < t:
        free = [True] * lanes
        for dt, off in options(lookahead, lookaside):       # option by option, every lane at once
            for i in range(lanes):
                j = (i + off) % lanes
                if free[i] and grid[head + dt][j]:
                    grid[head + dt][j] = free[i] = False
        adv = 0
        while adv <= lookahead and not any(grid[head + adv]):
            adv += 1
        head, cyc = head + adv, cyc + 1
    return cyc


@pytest.mark.parametrize("lanes,lookahead,lookaside", [(16, 2, 5), (6, 1, 5), (8, 3, 2), (4, 0, 3), (1, 2, 0)])
def test_vectorised_schedule_equals_the_plain_rule(lanes, lookahead, lookaside):
    rng = np.random.default_rng(lanes * 100 + lookahead * 10 + lookaside)
    masks = rng.random((60, lanes * 9 + 3)) < rng.random((60, 1))      # a density per stream, a ragged tail
    got = stream_cycles(masks, lanes=lanes, lookahead=lookahead, lookaside=lookaside).tolist()
    assert got == [_reference_cycles(m.tolist(), lanes, lookahead, lookaside) for m in masks]
