"""Memory policies (issue 17 item 2): where the stash lives, resident weights, the global buffer, per-PE capacity.

Hand-computed DRAM bytes on a two-layer chain, fc1 (2 examples × 4 inputs → 3) → fc2 (3 → 2), on one PE of
2×2 multipliers with bitmask compression. Each tensor is stored in min(plain, bitmask) + a 1/8-byte format flag
(hwsim/sim/traffic.py):

  a1  2×4, 4 non-zeros: min(8, 1 + 4) + .125 = 5.125        W1 3×4 dense: min(12, 1.5 + 12) + .125 = 12.125
  a2  2×3, 3 non-zeros: min(6, .75 + 3) + .125 = 3.875      W2 2×3 dense: min(6, .75 + 6) + .125 = 6.125
  δz2 2×2, 3 non-zeros: min(4, .5 + 3) + .125 = 3.625       logits 2×2 at density 1: min(4, .5 + 4) + .125 = 4.125
  δW1 12 × 24 bit = 36, δW2 6 × 24 bit = 18 (plain, no flag)

fc1 has no backward-data (the network input needs no gradient); δ̃z1, which backward-data of fc2 produces, is
small and stays on chip for backward-weight of fc1 under every policy (0 bytes).
"""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.arch import ArchError, load_arch
from hwsim.sim import onchip, replay
from hwsim.sim.residency import plan
from hwsim.trace.schema import LayerGeometry, LayerSample

A1 = np.array([[1, 1, 1, 0], [0, 0, 0, 1]], bool)
A2 = np.array([[1, 0, 1], [0, 1, 0]], bool)
DZ1 = np.array([[0, 1, 0], [1, 0, 0]])
DZ2 = np.array([[1, -1], [1, 0]])
BASE = {"pe_array.rows": 1, "pe_array.cols": 1, "pe.mult_f": 2, "pe.mult_i": 2, "pe.accumulator_banks": 8,
        "memory.compression": "bitmask", "memory.dram_bytes_per_cycle": 2.0, "memory.schedule": "isolated"}
OLD = {"memory.stash": "dram", "memory.weights_resident": False, "memory.residency_in_global_buffer": False}


def _samples() -> dict[str, LayerSample]:
    g1 = LayerGeometry(name="fc1", kind="linear", N=2, C=4, K=3)
    g2 = LayerGeometry(name="fc2", kind="linear", N=2, C=3, K=2)
    return {"fc1": LayerSample(geometry=g1, delta=0.1, dz_levels=DZ1, a_mask=A1, w_mask=np.ones((3, 4), bool),
                               w_density=1.0),
            "fc2": LayerSample(geometry=g2, delta=0.1, dz_levels=DZ2, a_mask=A2, w_mask=np.ones((2, 3), bool),
                               w_density=1.0)}


def _dram(overrides: dict, *, training: bool = True) -> dict[tuple[str, str], float]:
    arch = load_arch("scnn", {**BASE, **overrides})
    passes = replay.PASSES if training else ("forward",)
    return {(lp.name, lp.pass_name): lp.sparse.actions["dram_bytes"]  # the GEMMs' traffic (the update: tests/test_update.py)
            for lp in replay.replay(_samples(), arch, training=training, passes=passes) if lp.pass_name != "update"}


def test_stash_in_dram_by_hand():
    d = _dram(OLD)
    assert d == {
        ("fc1", "forward"): pytest.approx(5.125 + 12.125 + 3.875),   # a1, W1 in; the stash a2 out
        ("fc2", "forward"): pytest.approx(6.125 + 4.125),            # a2 on chip; W2 in; logits out
        ("fc2", "backward_data"): pytest.approx(3.625 + 6.125),      # δz2 and W2 in; δ̃z1 stays on chip
        ("fc2", "backward_weight"): pytest.approx(3.875 + 18),       # the stash a2 back; δz2 on chip; δW2 out
        ("fc1", "backward_weight"): pytest.approx(5.125 + 36),       # a1 again; δ̃z1 on chip; δW1 out
    }
    assert sum(d.values()) == pytest.approx(104.125)


def test_stash_on_chip_saves_its_write_and_both_reads():
    d = _dram({**OLD, "memory.stash": "on_chip"})
    assert d[("fc1", "forward")] == pytest.approx(5.125 + 12.125)     # a2 not written: it stays until fc2's bw
    assert d[("fc2", "backward_weight")] == pytest.approx(18)
    assert d[("fc1", "backward_weight")] == pytest.approx(36)         # the network input a1 stays too
    assert sum(d.values()) == pytest.approx(104.125 - 2 * 3.875 - 5.125)


def test_resident_weights_are_loaded_once_per_iteration():
    streamed = _dram({**OLD, "memory.residency_in_global_buffer": True})
    resident = _dram({**OLD, "memory.residency_in_global_buffer": True, "memory.weights_resident": True})
    assert streamed[("fc2", "backward_data")] == pytest.approx(3.625 + 6.125)
    assert resident[("fc2", "backward_data")] == pytest.approx(3.625)           # W2 kept from its forward
    assert resident[("fc2", "forward")] == streamed[("fc2", "forward")]         # forward still loads it
    assert resident[("fc2", "backward_weight")] == streamed[("fc2", "backward_weight")]  # δW written as before
    assert sum(streamed.values()) - sum(resident.values()) == pytest.approx(6.125)  # fc1 has no backward-data
    # W2 is read from the global buffer instead: priced as a global-buffer access (DRAM staging + resident reads).
    arch = load_arch("scnn", {**BASE, **OLD, "memory.residency_in_global_buffer": True, "memory.weights_resident": True})
    bd = {lp.pass_name: lp for lp in replay.replay(_samples(), arch) if lp.name == "fc2"}["backward_data"]
    assert bd.sparse.actions["sram_global_bytes"] == pytest.approx(3.625 + 6.125)
    # Weights live in the global buffer only: without it, nothing changes.
    assert _dram({**OLD, "memory.weights_resident": True}) == _dram(OLD)


def test_defaults_are_the_designer_choice_and_the_whole_chain_stays():
    a = load_arch("scnn")
    assert (a.memory.stash, a.memory.weights_resident, a.memory.residency_in_global_buffer) == ("on_chip", True, True)
    assert sum(_dram({}).values()) == pytest.approx(104.125 - 2 * 3.875 - 5.125 - 6.125)


def _fc_plan(overrides: dict, *, training: bool) -> dict:
    arch = load_arch("scnn", {**BASE, **overrides})
    ops = [replay.layer_operands(s, seed=0, out_density=1.0, where="t") for s in _samples().values()]
    return plan(ops, [s.geometry for s in _samples().values()], arch, training=training, input_grads=[False, True])


def test_capacity_is_checked_per_pe():
    # Two PEs (1×2): a2 = (1, 3, 1, 2) as the simulator holds a Linear layer's input, one example per PE.
    # PE 0 holds example 0 (2 of 3 non-zero): min(3, .375 + 2) + .125 = 2.5; PE 1: min(3, .375 + 1) + .125 = 1.5.
    # Together 4 bytes: an aggregate check against 2 × 2 bytes would keep a2 (3.875) on chip; PE 0's share does not fit.
    two = {"pe_array.cols": 2, **OLD}
    ops = replay.layer_operands(_samples()["fc2"], seed=0, out_density=1.0, where="t")
    arch = load_arch("scnn", {**BASE, **two})
    assert onchip.pe_shares(ops.a, value_bits=8, compression="bitmask", rl_bits=4, rows=1, cols=2).tolist() == \
        [2.5, 1.5]
    tight = {**two, "pe.input_buffer_bytes": 1, "pe.output_buffer_bytes": 1}   # 2 bytes per PE
    roomy = {**two, "pe.input_buffer_bytes": 1, "pe.output_buffer_bytes": 2}   # 3 bytes per PE
    for over, kept in ((tight, False), (roomy, True)):
        p = _fc_plan(over, training=False)
        assert p[("fc1", "forward")].out_bytes == (0.0 if kept else 3.875)
        assert p[("fc2", "forward")].stream_on_chip is kept
    assert arch.num_pes == 2


def test_spill_to_the_global_buffer_when_the_pe_rams_are_full():
    tight = {**OLD, "pe.input_buffer_bytes": 1, "pe.output_buffer_bytes": 1}
    assert _fc_plan(tight, training=False)[("fc1", "forward")].out_bytes == 3.875          # no room anywhere
    gb = {**tight, "memory.residency_in_global_buffer": True, "memory.global_buffer_bytes": 4}
    assert _fc_plan(gb, training=False)[("fc1", "forward")].out_bytes == 0.0              # 3.875 ≤ 4 in the buffer
    # In training the stash a2 sits in the buffer from fc1's forward to fc2's backward-weight: written once,
    # read twice, each a global-buffer access (δ̃z1 does not fit beside it, 3.875 + 2.875 > 4: it spills).
    p = _fc_plan({**gb, "memory.stash": "on_chip"}, training=True)
    assert [p[k].global_bytes for k in (("fc1", "forward"), ("fc2", "forward"), ("fc2", "backward_weight"))] == \
        [3.875, 3.875, 3.875]
    assert p[("fc2", "backward_data")].out_bytes == 2.875 and not p[("fc1", "backward_weight")].broadcast_on_chip


def test_greedy_placement_in_execution_order():
    arch = load_arch("scnn", {**BASE, "memory.global_buffer_bytes": 10})   # 20 KB PE RAMs + a 10-byte buffer

    def w(i, start, end, nbytes):
        return onchip.Candidate(key=("w", i), start=start, end=end, nbytes=nbytes, shares=None)

    # Three weights in the 10-byte buffer, visited by first step: 0 (6 B, steps 0–3) fits; 1 (5 B, 1–2) overlaps
    # it: 11 > 10, stays in DRAM; 2 (4 B, 2–5) fits beside 0 (10 ≤ 10).
    placed = onchip.allocate([w(2, 2, 5, 4), w(1, 1, 2, 5), w(0, 0, 3, 6)], arch, 8)
    assert placed == {("w", 0): "gb", ("w", 2): "gb"}
    # An activation goes to the PE RAMs first, to the buffer when its PE share does not fit, else to DRAM.
    def a(nbytes, share):
        return onchip.Candidate(key=("a", 3), start=4, end=6, nbytes=nbytes, shares=np.array([share]))

    assert onchip.allocate([w(0, 0, 6, 5), a(6, 6.0)], arch, 8) == {("w", 0): "gb", ("a", 3): "pe"}
    assert onchip.allocate([w(0, 0, 3, 5), a(6, 30_000.0)], arch, 8)[("a", 3)] == "gb"    # the buffer is free at 4–6
    assert ("a", 3) not in onchip.allocate([w(0, 0, 6, 5), a(6, 30_000.0)], arch, 8)      # 5 + 6 > 10
    assert onchip.steps(3) == {(0, "forward"): 0, (1, "forward"): 1, (2, "forward"): 2,
                               (2, "backward_data"): 3, (2, "backward_weight"): 4, (1, "backward_data"): 5,
                               (1, "backward_weight"): 6, (0, "backward_data"): 7, (0, "backward_weight"): 8}


def test_policy_fields_are_validated():
    with pytest.raises(ArchError, match="stash.*one of on_chip, dram"):
        load_arch("scnn", {"memory.stash": "sram"})
    with pytest.raises(ArchError, match="weights_resident"):
        load_arch("scnn", {"memory.weights_resident": "yes"})
    assert load_arch("scnn16").memory.stash == "dram"     # the SCNN reproduction pins the old policies


def test_validate_and_provenance_state_the_policy():
    from hwsim.arch.policy import memory_policy
    from hwsim.commands.validate import summary
    from hwsim.results.provenance import key_parameters

    text = summary(load_arch("scnn"))
    assert "memory policy stash on chip when it fits, weights resident when they fit, residency in PE RAMs " \
           "(checked per PE) + global buffer\n" in text
    assert "on-chip pool  20 KB per PE (input + output RAM) × 64 + global buffer 1024 KB" in text
    assert "memory policy stash in DRAM, weights streamed, residency in PE RAMs (checked per PE)\n" in \
        summary(load_arch("scnn16"))
    params = load_arch("scnn").to_dict()
    assert key_parameters(params)["memory policy"].endswith("+ global buffer, iteration schedule (DRAM arbiter "
                                                            "reads_first)")
    # the arbiter moves the per-pass split under the iteration schedule: validate names it, and says when it is unused
    assert "  schedule      iteration (one SimPy schedule per training iteration); DRAM arbiter reads_first (loads " \
           "before write-backs until a tile buffer is needed); 2 tile buffers (the loader at most 1 interval ahead)\n" \
        in text
    assert "DRAM arbiter in_order (first come, first served); 3 tile buffers (the loader at most 2 intervals ahead)\n" \
        in summary(load_arch("scnn", {"memory.dram_arbiter": "in_order", "memory.tile_buffers": 3}))
    assert "  schedule      isolated (each layer-pass its own SimPy run); DRAM arbiter reads_first and tile buffers " \
           "unused (first come, first served, 2 buffers, per layer-pass)\n" in summary(load_arch("scnn16"))
    assert "; 1 tile buffer (each load waits for the previous interval's compute)\n" in \
        summary(load_arch("scnn", {"memory.tile_buffers": 1}))
    old = {**params, "memory": {k: v for k, v in params["memory"].items() if k not in ("stash", "weights_resident")}}
    assert memory_policy(old) is None and "memory policy" not in key_parameters(old)   # results before the fields


def test_resident_weights_are_read_once_even_when_the_streamed_operand_is_chunked():
    from hwsim.sim.traffic import Residency, dram_traffic

    # 100 streamed bytes through 30 bytes on chip: 4 chunks; a 10-byte broadcast operand is re-read per chunk
    # (4 × 10) unless it is resident (once: 10); the output write is unchanged.
    kw = dict(stream_bytes=100.0, broadcast_bytes=10.0, out_bytes=5.0, on_chip_bytes=30)
    assert dram_traffic(**kw) == (140.0, 5.0, 4)
    assert dram_traffic(**kw, residency=Residency(broadcast_kept=True)) == (110.0, 5.0, 4)
    p = _fc_plan({"memory.residency_in_global_buffer": True}, training=True)   # W2 placed: fc2's forward keeps it
    assert p[("fc2", "forward")].broadcast_kept and not p[("fc1", "forward")].broadcast_kept  # fc1: no bd


@pytest.mark.parametrize("compression", ["none", "bitmask", "run_length"])
def test_pe_shares_equal_each_slice_priced_alone(compression):
    """The per-PE shares (priced for all PEs at once) are traffic.tensor_bytes of each PE's slice, run-length fillers
    pro-rated by non-zeros and rounded half to even (8 fillers × 1 / 16 = 0.5 → 0; × 3 / 16 = 1.5 → 2), empty PEs 0."""
    from hwsim.sim import traffic

    nnz, size = np.array([1, 3, 0, 12, 0]), np.array([4, 9, 6, 12, 0])
    got = onchip.pe_shares(np.zeros((1, 1, 1, 1), bool), value_bits=8, compression=compression, rl_bits=4, rows=1,
                           cols=5, fillers=8, counts=(nnz, size))
    want = [traffic.tensor_bytes(nnz=int(n), size=int(s), value_bits=8, compression=compression, rl_bits=4,
                                 fillers=round(8 * int(n) / 16)) if s else 0.0 for n, s in zip(nnz, size, strict=True)]
    assert got.tolist() == want
    if compression == "run_length":  # fillers 0, 2, 0, 6; min((nnz + fillers) · 12 bits / 8, size bytes) + .125
        assert got.tolist() == [1.625, 7.625, 0.125, 12.125, 0.0]
