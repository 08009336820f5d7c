"""Unit tests of the per-pass attribution footnote of hwsim simulate (hwsim.commands.simulate.attribution_lines).

Under ``memory.schedule: iteration`` a layer-pass is charged from the previous pass's end to its own, so a pass
waiting behind other passes' queued write-backs is charged their transfer time; the schedule measures that share
of its memory stall (``memory_stall_foreign``, hwsim/sim/schedule.py) and the footnote names the passes with the
most. Hand-made records, hand-computed numbers.
"""

from __future__ import annotations

from types import SimpleNamespace

from hwsim.commands.simulate import attribution_lines, foreign_waits


def _lp(name: str, pass_name: str, stall: int, foreign: int) -> SimpleNamespace:
    sparse = SimpleNamespace(cycle_breakdown=SimpleNamespace(memory_stall=stall, memory_stall_foreign=foreign))
    return SimpleNamespace(name=name, pass_name=pass_name, sparse=sparse)


LAYERS = [
    _lp("a", "backward_data", 1000, 990),   # 990 of its stall on other passes' transfers
    _lp("b", "forward", 50, 0),             # its own transfers explain all of it
    _lp("c", "backward_weight", 300, 297),
    _lp("d", "update", 0, 0),
]


def _result(schedule: str, total: int = 10_000) -> SimpleNamespace:
    return SimpleNamespace(arch={"params": {"memory": {"schedule": schedule, "dram_bytes_per_cycle": 16.0}}},
                           layers=LAYERS, total=lambda variant: SimpleNamespace(cycles=total))


def test_foreign_waits_are_the_measured_share_largest_first():
    assert foreign_waits(LAYERS) == [("a", "backward_data", 1000, 990), ("c", "backward_weight", 300, 297)]
    assert foreign_waits(LAYERS, min_cycles=298) == [("a", "backward_data", 1000, 990)]
    assert foreign_waits(LAYERS, min_cycles=297)[1] == ("c", "backward_weight", 300, 297)


def test_footnote_names_each_pass_and_its_share_of_the_iteration():
    lines = attribution_lines(_result("iteration"))  # threshold 1 % of 10,000 = 100 cycles: a and c
    assert lines[0].startswith("per-pass attribution (this iteration, memory.schedule: iteration)")
    assert lines[-2] == ("  a bwd-data: 1,000 memory-stall cycles, of which 990 (9.9% of the iteration's cycles) "
                         "waiting on other passes' transfers")
    assert lines[-1] == ("  c bwd-weight: 300 memory-stall cycles, of which 297 (3.0% of the iteration's cycles) "
                         "waiting on other passes' transfers")
    # 1 % of 50,000 = 500 cycles: only a is worth a footnote
    assert [ln.split(":")[0] for ln in attribution_lines(_result("iteration", 50_000))[2:]] == ["  a bwd-data"]
    assert attribution_lines(_result("iteration", 100_000)) == []  # 990 < 1,000: nothing to footnote


def test_no_footnote_with_isolated_schedules():
    assert attribution_lines(_result("isolated")) == []


def test_footnote_names_the_dram_arbiter_and_the_other_one():
    """The per-pass split depends on memory.dram_arbiter: the footnote says which one ran and how to see the other;
    results written before the field name none."""
    r = _result("iteration")
    r.arch["params"]["memory"]["dram_arbiter"] = "reads_first"
    lines = attribution_lines(r)
    assert lines[0].startswith("per-pass attribution (this iteration, memory.schedule: iteration, "
                               "memory.dram_arbiter: reads_first): ")
    assert "--set memory.dram_arbiter=in_order shows the other arbiter's split" in lines[1]
    r.arch["params"]["memory"]["dram_arbiter"] = "in_order"
    assert "--set memory.dram_arbiter=reads_first shows" in attribution_lines(r)[1]
    old = attribution_lines(_result("iteration"))
    assert "dram_arbiter" not in old[0] + old[1]
