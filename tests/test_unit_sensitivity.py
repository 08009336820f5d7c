"""Unit tests of hwsim.sim.sensitivity: the settings rows, which row is marked as the arch's own value, what
is passed to the simulator, and the Markdown table. The simulator is stubbed (fast, exact numbers)."""

from __future__ import annotations

import math

import pytest

import hwsim.sim
from hwsim.arch import load_arch
from hwsim.sim import sensitivity as sens


def test_settings_rows_in_order_with_their_overrides():
    rows = sens.settings()
    assert [r[0] for r in rows] == ["queue depth 0", "queue depth 1", "queue depth 4", "DRAM 8 B/cycle",
                                    "DRAM 16 B/cycle", "DRAM 64 B/cycle", "DRAM ∞ B/cycle",
                                    "DRAM arbiter reads_first", "DRAM arbiter in_order",
                                    "tile buffers 1", "tile buffers 3",
                                    "update: W and state on chip when they fit", "update: bf16 optimizer state",
                                    "non-GEMM: pointwise ops fused into the GEMM output",
                                    "non-GEMM: vector unit overlapped with the array",
                                    "baselines: own vector lanes (1 per column)"]
    assert rows[1][1] == {"pe.bank_queue_depth": 1}
    assert rows[6][1] == {"memory.dram_bytes_per_cycle": math.inf}
    assert rows[7][1] == {"memory.dram_arbiter": "reads_first"} and rows[8][1] == {"memory.dram_arbiter": "in_order"}
    assert rows[9][1] == {"memory.tile_buffers": 1} and rows[10][1] == {"memory.tile_buffers": 3}
    assert rows[-5][1] == {"update.on_chip": True} and rows[-4][1] == {"update.state_bits": 16}
    assert rows[-3][1] == {"vector.fuse_pointwise": True} and rows[-2][1] == {"vector.overlap_nongemm": True}
    assert rows[-1][1] == {"vector.baseline_lanes": "own"}
    assert sens.settings(depths=(2,), dram=(12.5,), update=(), arbiters=("in_order",), tile_buffers=(4,)) == [
        ("queue depth 2", {"pe.bank_queue_depth": 2}), ("DRAM 12.5 B/cycle", {"memory.dram_bytes_per_cycle": 12.5}),
        ("DRAM arbiter in_order", {"memory.dram_arbiter": "in_order"}), ("tile buffers 4", {"memory.tile_buffers": 4})]
    assert sens.settings(depths=(), dram=(), update=(), arbiters=(), tile_buffers=()) == []


class _Result:
    """What sensitivity reads from a SimResult; every figure derived from the arch it was simulated on."""

    def __init__(self, arch, calls):
        self.q, self.bw = arch.pe.bank_queue_depth, arch.memory.dram_bytes_per_cycle
        self.calls = calls

    def speedup(self, *, pass_name=None, baseline="dense"):
        self.calls.append(("speedup", pass_name, baseline))
        return (2.0 + self.q) if baseline == "dense" else (1.0 + self.q / 8)

    def energy_ratio(self, *, pass_name=None, baseline="dense"):
        return 3.0 if baseline == "dense" else (0.5 if math.isinf(self.bw) else self.bw / 100)

    def fraction_of_ideal(self, *, pass_name=None):
        return 0.25


@pytest.fixture()
def stub(monkeypatch):
    seen = []

    def simulate(trace, arch, *, training, seed):
        seen.append({"trace": trace, "q": arch.pe.bank_queue_depth, "bw": arch.memory.dram_bytes_per_cycle,
                     "arbiter": arch.memory.dram_arbiter, "buffers": arch.memory.tile_buffers, "training": training, "seed": seed})
        return _Result(arch, seen[-1].setdefault("calls", []))

    monkeypatch.setattr(hwsim.sim, "simulate", simulate)
    return seen


def test_each_row_moves_one_assumption_and_marks_the_archs_own_value(stub):
    arch = load_arch("scnn")
    q0, bw0 = arch.pe.bank_queue_depth, arch.memory.dram_bytes_per_cycle
    rows = sens.sensitivity("TRACE", arch, training=False, seed=7, pass_name="forward")
    assert [r["setting"] for r in rows] == [
        "queue depth 0", "queue depth 1", f"queue depth {q0} (arch)", "DRAM 8 B/cycle",
        f"DRAM {bw0:g} B/cycle (arch)", "DRAM 64 B/cycle", "DRAM ∞ B/cycle",
        "DRAM arbiter reads_first (arch)", "DRAM arbiter in_order", "tile buffers 1", "tile buffers 3", "update: W and state on chip when they fit", "update: bf16 optimizer state",
        "non-GEMM: pointwise ops fused into the GEMM output", "non-GEMM: vector unit overlapped with the array",
        "baselines: own vector lanes (1 per column)"]
    assert [(c["q"], c["bw"]) for c in stub] == [(0, bw0), (1, bw0), (4, bw0), (q0, 8.0), (q0, 16.0), (q0, 64.0),
                                                 (q0, math.inf), *[(q0, bw0)] * 9]
    assert [c["arbiter"] for c in stub[7:9]] == ["reads_first", "in_order"]
    assert [c["buffers"] for c in stub[7:12]] == [2, 2, 1, 3, 2]
    assert all(c["trace"] == "TRACE" and c["training"] is False and c["seed"] == 7 for c in stub)
    assert stub[0]["calls"] == [("speedup", "forward", "dense"), ("speedup", "forward", "dense_systolic")]
    r1 = rows[1]
    assert r1["overrides"] == {"pe.bank_queue_depth": 1}
    assert (r1["speedup_vs_dense"], r1["speedup_vs_dense_systolic"]) == (3.0, 1.125)
    assert (r1["energy_vs_dense"], r1["energy_vs_dense_systolic"], r1["fraction_of_ideal"]) == (3.0, 0.16, 0.25)
    assert rows[6]["energy_vs_dense_systolic"] == 0.5
    assert arch.pe.bank_queue_depth == q0                     # the caller's arch is not changed


def test_unlimited_bandwidth_on_the_arch_is_recognised_as_its_own_value(stub):
    arch = load_arch(load_arch("scnn"), {"memory.dram_bytes_per_cycle": math.inf})
    rows = sens.sensitivity("T", arch, rows=sens.settings(depths=(), dram=(16.0, math.inf), update=(), arbiters=(), tile_buffers=()))
    assert [r["setting"] for r in rows] == ["DRAM 16 B/cycle", "DRAM ∞ B/cycle (arch)"]
    assert stub[0]["training"] is True and stub[0]["seed"] == 0   # defaults


def test_a_row_of_several_overrides_is_the_arch_only_if_all_match(stub):
    arch = load_arch("scnn")
    q0, bw0 = arch.pe.bank_queue_depth, arch.memory.dram_bytes_per_cycle
    rows = sens.sensitivity("T", arch, rows=[
        ("both", {"pe.bank_queue_depth": q0, "memory.dram_bytes_per_cycle": bw0}),
        ("one", {"pe.bank_queue_depth": q0, "memory.dram_bytes_per_cycle": 2 * bw0})])
    assert [r["setting"] for r in rows] == ["both (arch)", "one"]
    assert (stub[1]["q"], stub[1]["bw"]) == (q0, 2 * bw0)


def test_same_and_get():
    assert sens._same(math.inf, math.inf) and sens._same(4, 4.0) and not sens._same(4, 5)
    assert not sens._same(math.inf, 16.0) and not sens._same(math.nan, math.nan)
    assert sens._get({"a": {"b": {"c": 3}}}, "a.b.c") == 3
    with pytest.raises(KeyError):
        sens._get({"a": {}}, "a.x")


def test_table_formats_every_row():
    rows = [{"setting": "queue depth 4 (arch)", "speedup_vs_dense": 2.345, "speedup_vs_dense_systolic": 1.0,
             "energy_vs_dense": 0.5, "energy_vs_dense_systolic": 10.0, "fraction_of_ideal": 0.4567},
            {"setting": "DRAM ∞ B/cycle", "speedup_vs_dense": math.inf, "speedup_vs_dense_systolic": 0.005,
             "energy_vs_dense": 1.0, "energy_vs_dense_systolic": 1.0, "fraction_of_ideal": 1.0}]
    lines = sens.table(rows).split("\n")
    assert len(lines) == 4 and lines[1] == "|---|---|---|---|---|---|"
    assert lines[0].count("|") == 7 and "speed-up vs dense" in lines[0] and "fraction of ideal" in lines[0]
    assert lines[2] == "| queue depth 4 (arch) | 2.35× | 1.00× | 0.50× | 10.00× | 45.7% |"
    assert lines[3] == "| DRAM ∞ B/cycle | inf× | 0.01× | 1.00× | 1.00× | 100.0% |"
    assert sens.table([]).count("\n") == 1


def test_a_row_at_a_field_omitted_from_to_dict_is_marked_by_the_archs_value(stub):
    # vector.baseline_lanes is left out of to_dict at its default (design): the mark reads the arch's attribute
    row = [("own lanes", {"vector.baseline_lanes": "own"})]
    assert sens.sensitivity("TRACE", load_arch("scnn"), rows=row)[0]["setting"] == "own lanes"
    own = load_arch("scnn", {"vector.baseline_lanes": "own"})
    assert sens.sensitivity("TRACE", own, rows=row)[0]["setting"] == "own lanes (arch)"


def test_iteration_only_rows_are_left_out_where_the_schedule_is_isolated(stub):
    """Isolated layer-passes never use memory.dram_arbiter or memory.tile_buffers (scnn16.yaml, the SCNN
    reproduction): their rows would only repeat the arch's figures, so they are not simulated; the other rows are,
    and so is a row with no overrides at all."""
    rows = sens.sensitivity("TRACE", load_arch("scnn16"), training=False)
    labels = [r["setting"] for r in rows]
    assert not any(lb.startswith(("DRAM arbiter", "tile buffers")) for lb in labels)
    assert len(rows) == len(sens.settings()) - 4 == len(stub)
    assert [r["setting"] for r in sens.sensitivity("TRACE", load_arch("scnn16"), rows=[("arch", {})])] == ["arch (arch)"]
    # an arbiter row that also moves the schedule to iteration is simulated
    rows = sens.sensitivity("TRACE", load_arch("scnn16"), training=False,
                            rows=[("arbiter in iteration", {"memory.dram_arbiter": "in_order",
                                                            "memory.schedule": "iteration"})])
    assert [r["setting"] for r in rows] == ["arbiter in iteration"]
