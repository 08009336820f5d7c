"""The forward hand-over in DRAM (hwsim/sim/residency.py, module doc): forward l writes its output in exactly the form
its consumers read it — forward l+1's compressed input, and the second operands of the activation products it
produces — chained or not, so every DRAM read of an activation (forward input, stash, K / V) reads bytes a forward
wrote. The backward counterpart: tests/test_sim_grad_traffic.py."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from _traffic_ledger import ledger

import hwsim
from hwsim.arch import load_arch
from hwsim.sim import residency, schedule
from hwsim.sim.operands import Operands
from hwsim.sim.passes import dram_tensors, run_pass
from hwsim.sim.traffic import Residency
from hwsim.trace.synth import synthesize

SAMPLE = Path(__file__).resolve().parent.parent / "traces" / "samples" / "lenet5-digits-dither"


def _linear(name: str, *, n: int, c: int, k: int, a: np.ndarray | None = None,
            w: np.ndarray | None = None) -> Operands:
    wm = np.ones((k, c, 1, 1), bool) if w is None else w.reshape(k, c, 1, 1)
    return Operands(name=name, w=wm, w_struct=np.ones((k, c, 1, 1), bool),
                    a=np.ones((n, c, 1, 1), bool) if a is None else a.reshape(n, c, 1, 1),
                    dz=np.ones((n, k, 1, 1), bool), dz_bits=4, groups=1, stride=(1, 1), padding=(0, 0),
                    dilation=(1, 1), out_density=1.0)


def _geo(n: int, c: int, k: int, **kw) -> SimpleNamespace:
    return SimpleNamespace(kind="linear", N=n, C=c, K=k, H=1, W=1, P=1, Q=1, **kw)


def _sparse(size: int, where: list[int]) -> np.ndarray:
    m = np.zeros(size, bool)
    m[where] = True
    return m


def _run(arch, plan, ops, pname):
    return run_pass(ops, pname, arch, rng=np.random.default_rng(0), macs_dense=ops.a.size * ops.dz.shape[1],
                    macs_effectual=1, residency=plan[(ops.name, pname)])


@pytest.mark.parametrize("training", [True, False])
def test_an_unchained_output_is_written_in_the_form_its_consumer_reads(training):
    """A (2 rows, 8 → 6) then B (4 rows, 3 → 5): B's input is A's output re-laid out (as attention's head merge
    P·V → c_proj), so the shapes do not chain and a_B crosses DRAM. a_B: 12 elements, 3 non-zeros at flat positions
    0, 5, 11, run-length with 8-bit values and 4-bit runs (gaps 0, 4, 5: no filler) = 3 · 12 / 8 = 4.5 bytes (< 12
    plain) + 1/8 (format flag) = 4.625 bytes. A's forward used to write its own output dense (12 elements at density
    1: 12 + 1/8 = 12.125 bytes) while B's forward read 4.625. B, the last layer, writes its 20 outputs as before."""
    arch = load_arch("scnn")
    a = _linear("A", n=2, c=8, k=6)
    b = _linear("B", n=4, c=3, k=5, a=_sparse(12, [0, 5, 11]))
    geos = [_geo(2, 8, 6), _geo(4, 3, 5)]
    assert not residency.chained(geos[0], geos[1])
    plan = residency.plan([a, b], geos, arch, training=training, first_input_grad=True)
    assert residency.role_bytes(b, "a", arch) == 4.625
    written = _run(arch, plan, a, "forward").store_bytes.sum()
    read = dram_tensors(b, "forward", arch, plan[("B", "forward")])["a"]
    assert written == read == 4.625
    assert dram_tensors(a, "forward", arch, plan[("A", "forward")])["out"] == 4.625
    assert dram_tensors(b, "forward", arch, plan[("B", "forward")])["out"] == 20 + 1 / 8  # the logits: as before
    assert schedule.producers(("B", "forward"), ["A", "B"], plan) == [("A", "forward")]
    if training:  # B's stash: loaded by its forward, kept on chip for its backward-weight (default stash: on_chip)
        assert dram_tensors(b, "backward_weight", arch, plan[("B", "backward_weight")])["a"] == 0.0


def test_the_dram_stash_reads_back_the_bytes_the_forward_wrote():
    """``memory.stash: dram``: B's backward-weight reads a_B back — the 4.625 bytes A's forward wrote (above)."""
    arch = load_arch("scnn", {"memory.stash": "dram"})
    a = _linear("A", n=2, c=8, k=6)
    b = _linear("B", n=4, c=3, k=5, a=_sparse(12, [0, 5, 11]))
    plan = residency.plan([a, b], [_geo(2, 8, 6), _geo(4, 3, 5)], arch, first_input_grad=True)
    assert dram_tensors(a, "forward", arch, plan[("A", "forward")])["out"] == 4.625
    assert dram_tensors(b, "backward_weight", arch, plan[("B", "backward_weight")])["a"] == 4.625


def test_an_activation_products_second_operand_is_written_by_the_gemm_that_produces_it():
    """A (2 rows, 8 → 12, as c_attn: its output is B's input and B's second operand) then B = a_B × X_B (w_role
    activation, 4 rows, 3 → 4, as QKᵀ). a_B: 12 elements, non-zeros at 0, 5, 11 = 4.625 bytes (above); X_B: 4 × 3
    elements, non-zeros at 0..3 (gaps 0) = 4 · 12 / 8 + 1/8 = 6.125 bytes. A writes both, 10.75 bytes (it used to
    write its 24 outputs dense: 24.125); B's forward reads 4.625 + 6.125. A weight GEMM before A produces nothing
    B reads (its sources: None, then A)."""
    arch = load_arch("scnn")
    z = _linear("Z", n=2, c=8, k=8)
    a = _linear("A", n=2, c=8, k=12)
    b = _linear("B", n=4, c=3, k=4, a=_sparse(12, [0, 5, 11]), w=_sparse(12, [0, 1, 2, 3]))
    geos = [_geo(2, 8, 8), _geo(2, 8, 12), _geo(4, 3, 4, w_role="activation")]
    assert residency.operand_sources(geos) == [None, None, 1]
    plan = residency.plan([z, a, b], geos, arch, first_input_grad=True)
    assert residency.role_bytes(b, "w", arch) == 6.125
    assert dram_tensors(a, "forward", arch, plan[("A", "forward")])["out"] == 10.75
    assert dram_tensors(b, "forward", arch, plan[("B", "forward")]) == {"a": 4.625, "w": 6.125, "out": 4 * 4 + 1 / 8}
    assert dram_tensors(z, "forward", arch, plan[("Z", "forward")])["out"] == 0.0  # chained Z → A: on chip


def test_the_schedule_links_an_activation_product_to_its_second_operands_source():
    """Z → A → B as above (B's second operand X_B is part of A's output: sources None, None, 1). The schedule's
    dependencies (hwsim.sim.schedule.producers) follow the hand-overs: B's forward reads X_B, which A's forward wrote,
    also when B's input a_B stays on chip (then the chain alone links nothing); in the backward direction δX_B, which
    B's backward-weight computes, is part of δ̃z_A: A's backward passes, reading δ̃z_A from DRAM (the shapes do not
    chain), wait for B's backward-weight as well as for B's backward-data (where the hand-over's write is booked)
    — A's backward-weight only when δ̃z_A is not kept on chip from A's backward-data."""
    arch = load_arch("scnn")
    z = _linear("Z", n=2, c=8, k=8)
    a = _linear("A", n=2, c=8, k=12)
    b = _linear("B", n=4, c=3, k=4, a=_sparse(12, [0, 5, 11]), w=_sparse(12, [0, 1, 2, 3]))
    geos = [_geo(2, 8, 8), _geo(2, 8, 12), _geo(4, 3, 4, w_role="activation")]
    names = ["Z", "A", "B"]
    src = residency.operand_sources(geos)
    plan = residency.plan([z, a, b], geos, arch, first_input_grad=True)
    assert not plan[("A", "backward_data")].stream_on_chip  # δ̃z_A crosses DRAM
    assert schedule.producers(("A", "backward_data"), names, plan, sources=src) == [
        ("B", "backward_data"), ("B", "backward_weight")]
    # A's backward-weight reads δ̃z_A on chip (kept from A's backward-data) and its stash a_A too: no DRAM producer
    assert plan[("A", "backward_weight")].broadcast_on_chip and plan[("A", "backward_weight")].stream_on_chip
    assert schedule.producers(("A", "backward_weight"), names, plan, sources=src) == []
    spilled = {k: Residency() for k in plan}  # nothing on chip: it waits for B's backward-weight too
    assert schedule.producers(("A", "backward_weight"), names, spilled, sources=src) == [
        ("Z", "forward"), ("B", "backward_data"), ("B", "backward_weight")]
    # a_B held on chip (as if the shapes chained): B's forward still waits for A's forward, which wrote X_B
    held = {**plan, ("B", "forward"): replace(plan[("B", "forward")], stream_on_chip=True)}
    assert schedule.producers(("B", "forward"), names, held, sources=src) == [("A", "forward")]
    assert schedule.producers(("B", "forward"), names, held) == []  # without the sources: no link
    # a weight GEMM's passes are untouched: Z's backward-data waits for A's only
    assert schedule.producers(("Z", "backward_data"), names, plan, sources=src) == \
        schedule.producers(("Z", "backward_data"), names, plan)
    with pytest.raises(ValueError, match="sources: 2 entries for 3 layers"):
        schedule.producers(("B", "forward"), names, plan, sources=src[:2])


def test_gpt2_attention_dependencies():
    """c_attn, QKᵀ, P·V, c_proj (sources None, 0, 0, None): P·V's forward waits for c_attn's (K and V's source) as
    well as QKᵀ's; c_attn's backward-data for QKᵀ's backward-data and the backward-weight of both products."""
    names = ["c_attn", "qk", "pv", "c_proj"]
    src = [None, 0, 0, None]
    spilled = {(n, p): Residency() for n in names for p in ("forward", "backward_data", "backward_weight")}
    assert schedule.producers(("pv", "forward"), names, spilled, sources=src) == [("qk", "forward"),
                                                                                  ("c_attn", "forward")]
    assert schedule.producers(("qk", "forward"), names, spilled, sources=src) == [("c_attn", "forward")]  # once
    assert schedule.producers(("c_attn", "backward_data"), names, spilled, sources=src) == [
        ("qk", "backward_data"), ("qk", "backward_weight"), ("pv", "backward_weight")]
    # a product's backward-data reads its second operand again unless it stayed on chip from the forward
    assert schedule.producers(("pv", "backward_data"), names, spilled, sources=src) == [
        ("c_proj", "backward_data"), ("c_attn", "forward")]
    kept = {**spilled, ("pv", "backward_data"): Residency(broadcast_on_chip=True)}
    assert schedule.producers(("pv", "backward_data"), names, kept, sources=src) == [("c_proj", "backward_data")]


def _check_handover(seen, form, order, geos):
    """Every read of a layer's input (forward, stash) and of an activation product's second operand is of bytes
    a forward wrote in that form; returns how many hand-overs crossed DRAM."""
    sources = residency.operand_sources([geos[nm] for nm in order])
    checked = 0
    for arch_id, passes in seen.items():
        fm = form[arch_id]
        operands = {i: 0.0 for i in range(len(order))}
        for j, src in enumerate(sources):
            if src is not None:
                operands[src] += fm[order[j]]["w"]
                assert passes[(order[j], "forward")]["w"] == fm[order[j]]["w"], order[j]  # read whole, once
        for i, name in enumerate(order[:-1]):
            nxt = order[i + 1]
            reads = [passes[(nxt, p)]["a"] for p in ("forward", "backward_weight") if (nxt, p) in passes]
            write = passes[(name, "forward")]["out"]
            want = fm[nxt]["a"]
            if any(reads):
                assert write == want + operands[i], (name, write, want, operands[i])
                for r in reads:
                    assert r in (0.0, want), (nxt, r, want)
                checked += 1
            else:
                assert write == operands[i], (name, write)  # kept on chip for every consumer
    return checked


def _geos(path) -> dict:
    return {g.name: g for g in hwsim.load_trace(path).layers}


@pytest.fixture(scope="module")
def gpt2_block(tmp_path_factory):
    """One GPT-2 block whose activations are half zero (dense ones would hide the form: plain is the fallback)."""
    return synthesize(tmp_path_factory.mktemp("g") / "gpt2", model="gpt2_small", seq=16, batch=1, blocks=1,
                      a_density=0.5)


@pytest.mark.parametrize("over", [{}, {"pe.input_buffer_bytes": 64, "pe.output_buffer_bytes": 64,
                                       "memory.residency_in_global_buffer": False}])
def test_every_activation_read_of_a_gpt2_block_was_written_in_that_form(monkeypatch, gpt2_block, over):
    seen, form, order = ledger(monkeypatch, gpt2_block, load_arch("scnn", over), roles=("a", "w"), iteration=0)
    # c_attn → QKᵀ and P·V → c_proj cross DRAM in every variant (the head split and merge do not chain)
    assert _check_handover(seen, form, order, _geos(gpt2_block)) >= 2 * len(seen)
    sparse = seen[max(seen, key=lambda k: len(seen[k]))]
    assert sparse[("h.0.attn:pv", "forward")]["out"] == sparse[("h.0.attn.c_proj", "forward")]["a"] > 0


@pytest.mark.parametrize("over", [{}, {"pe.input_buffer_bytes": 16, "pe.output_buffer_bytes": 16,
                                       "memory.residency_in_global_buffer": False},
                                  {"memory.stash": "dram"}])
def test_every_activation_read_of_lenet5_was_written_in_that_form(monkeypatch, over):
    seen, form, order = ledger(monkeypatch, str(SAMPLE), load_arch("scnn", over), roles=("a", "w"), iteration=45)
    checked = _check_handover(seen, form, order, _geos(SAMPLE))
    assert checked >= (4 if over else 0)  # tiny RAMs / DRAM stash: every a_l crosses; default: all on chip


def test_the_replay_schedules_gpt2_with_its_operand_sources(monkeypatch, gpt2_block):
    """The replay hands the layers' operand sources to the schedule (hwsim/sim/replay.py → schedule.retime): QKᵀ's
    and P·V's K / V come from c_attn, so c_attn's backward-weight (the first layer: no backward-data), reading
    δ̃z_c_attn from DRAM, waits for both products' backward-weight."""
    seen = []
    real = schedule.segments_for

    def spy(order, timed, names, plan, *, sources=None):
        segs = real(order, timed, names, plan, sources=sources)
        seen.append((list(names), sources, {s.key: [order[i] for i in s.after] for s in segs}))
        return segs

    monkeypatch.setattr(schedule, "segments_for", spy)
    hwsim.simulate(gpt2_block, load_arch("scnn"), iteration=0)
    names, sources, after = seen[0]
    assert names[:3] == ["h.0.attn.c_attn", "h.0.attn:qk", "h.0.attn:pv"]
    assert list(sources) == [None, 0, 0, None, None, None]
    assert after[("h.0.attn.c_attn", "backward_weight")] == [
        ("h.0.attn:pv", "backward_weight"), ("h.0.attn:qk", "backward_data"), ("h.0.attn:qk", "backward_weight")]
    assert ("h.0.attn.c_attn", "forward") in after[("h.0.attn:pv", "forward")]
