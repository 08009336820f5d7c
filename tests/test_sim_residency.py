"""Inter-layer residency and training stash traffic (hwsim/sim/residency.py) on small synthetic chains."""

from __future__ import annotations

import math

import pytest

from hwsim.arch import load_arch
from hwsim.results import PASSES
from hwsim.sim import simulate
from hwsim.sim.replay import layer_operands
from hwsim.sim.residency import capacity_bytes, chained, plan, role_shares
from hwsim.sim.traffic import mask_bytes
from hwsim.trace.format import load
from hwsim.trace.synth import synthesize
from hwsim.trace.topology import LayerSpec

# c2 -> c3 -> fc is a chain (c3 reads c2's 24×9×9 output, fc the flatten of c3's 16×7×7 output).
CHAIN = [
    {"name": "c2", "C": 16, "K": 24, "H": 9, "W": 9, "R": 3, "S": 3, "padding": 1},
    {"name": "c3", "C": 24, "K": 16, "H": 9, "W": 9, "R": 3, "S": 3},
    {"name": "fc", "kind": "linear", "C": 16 * 7 * 7, "K": 10},
]
# Per-PE RAMs of 24 + 24 bytes: the largest PE shares of the activations (c3 93 B, fc 587 B) spill and those
# of δ̃z (c2 29 B, c3 11 B) stay.
TINY = {"pe.input_buffer_bytes": 24, "pe.output_buffer_bytes": 24}


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    return load(synthesize(tmp_path_factory.mktemp("res") / "chain", layers=CHAIN, w_density=0.5, a_density=0.5,
                           dz_density=0.1, seed=3, dense_first_input=False, overwrite=True))


# The chain tests pin the policies the chain model had alone (stash in DRAM, weights streamed, PE RAMs only);
# tests/test_sim_memory_policy.py covers the others.
CHAIN_ONLY = {"memory.stash": "dram", "memory.weights_resident": False, "memory.residency_in_global_buffer": False}


def _arch(on: bool, **over):
    return load_arch("scnn", overrides={"memory.inter_layer_residency": on, **CHAIN_ONLY, **over})


def _dram(r, name, pname, v="sparse"):
    return r.layer(name, pname).variant(v).actions["dram_bytes"]


def _a_bytes(trace, name, arch):
    m = arch.memory
    return mask_bytes(trace.sample()[name].a_mask, value_bits=arch.pe.mac_bits, compression=m.compression,
                      rl_bits=m.run_length_bits)


def test_chain_detection():
    c = LayerSpec(name="c", C=3, K=8, H=8, W=8, R=3, S=3, padding=1).geometry(2)          # out 8×8×8
    assert chained(c, LayerSpec(name="p", C=8, K=4, H=4, W=4, R=3, S=3).geometry(2))     # after 2×2 pooling
    assert chained(c, LayerSpec(name="f", kind="linear", C=8 * 4 * 4, K=5).geometry(2))  # pool + flatten
    assert chained(LayerSpec(name="l", kind="linear", C=9, K=7).geometry(2), LayerSpec(name="m", kind="linear", C=7, K=3).geometry(2))
    assert not chained(c, LayerSpec(name="x", C=4, K=4, H=8, W=8, R=1, S=1).geometry(2))   # channel mismatch
    assert not chained(c, LayerSpec(name="y", C=8, K=4, H=16, W=16, R=1, S=1).geometry(2))  # bigger plane
    assert not chained(c, LayerSpec(name="z", C=8, K=4, H=8, W=8, R=1, S=1).geometry(3))    # other batch


def test_capacity_is_both_pe_rams_plus_global_buffer_if_allowed():
    a = load_arch("scnn")
    per_pe = a.pe.input_buffer_bytes + a.pe.output_buffer_bytes
    assert capacity_bytes(a) == a.num_pes * per_pe + a.memory.global_buffer_bytes
    g = load_arch("scnn", overrides={"memory.residency_in_global_buffer": False})
    assert capacity_bytes(g) == a.num_pes * per_pe
    assert capacity_bytes(_arch(False)) == 0
    assert capacity_bytes(load_arch("systolic32", overrides={"memory.residency_in_global_buffer": False})) == 0
    assert capacity_bytes(load_arch("systolic32")) == 196608      # PE registers hold no tensors: the buffer only


@pytest.mark.parametrize("training", [True, False])
def test_resident_chain_moves_fewer_dram_bytes(trace, training):
    on = simulate(trace, _arch(True), training=training)
    off = simulate(trace, _arch(False), training=training)
    for v in ("sparse", "dense", "dense_gated", "ideal"):
        tot_on = sum(lp.variant(v).actions["dram_bytes"] for lp in on.layers)
        tot_off = sum(lp.variant(v).actions["dram_bytes"] for lp in off.layers)
        assert tot_on < tot_off, v
    for lp_on, lp_off in zip(on.layers, off.layers, strict=True):
        assert _dram(on, lp_on.name, lp_on.pass_name) <= _dram(off, lp_off.name, lp_off.pass_name)
        assert lp_on.sparse.cycles <= lp_off.sparse.cycles, (lp_on.name, lp_on.pass_name)
        assert lp_on.sparse.cycles - lp_on.sparse.cycle_breakdown.memory_stall == \
            lp_off.sparse.cycles - lp_off.sparse.cycle_breakdown.memory_stall  # only traffic changes
    # Inference: a resident tensor is neither written by its producer nor read by its consumer.
    if not training:
        arch = _arch(True)
        a_c3, a_fc = _a_bytes(trace, "c3", arch), _a_bytes(trace, "fc", arch)
        assert _dram(off, "c2", "forward") - _dram(on, "c2", "forward") == pytest.approx(a_c3)
        assert _dram(off, "c3", "forward") - _dram(on, "c3", "forward") == pytest.approx(a_c3 + a_fc)
        assert _dram(off, "fc", "forward") - _dram(on, "fc", "forward") == pytest.approx(a_fc)


def test_stash_bytes_are_the_compressed_activations(trace):
    arch = _arch(True)
    tr = simulate(trace, arch, training=True)
    inf = simulate(trace, arch, training=False)
    assert {lp.pass_name for lp in inf.layers} == {"forward"} and inf.run["training"] is False
    assert {lp.pass_name for lp in tr.layers} == {*PASSES, "update"}  # the weight update ends a training iteration
    # Forward of c2 / c3 writes its output — the next layer's input — to DRAM in training only.
    for prod, cons in (("c2", "c3"), ("c3", "fc")):
        stash = _dram(tr, prod, "forward") - _dram(inf, prod, "forward")
        assert stash == pytest.approx(_a_bytes(trace, cons, arch), rel=1e-12)
    # Backward-weight reads a_l back (δ̃z is still on chip from backward-data) and writes δW.
    for lp in tr.layers:
        if lp.pass_name != "backward_weight":
            continue
        g = trace.sample()[lp.name].geometry
        dw = math.prod(g.weight_shape) * arch.pe.accumulator_bits / 8
        assert _dram(tr, lp.name, "backward_weight") == pytest.approx(_a_bytes(trace, lp.name, arch) + dw)


def test_layer_that_does_not_fit_spills(trace):
    arch = _arch(True, **TINY)
    samples = trace.sample()
    ops = [layer_operands(s, seed=0, out_density=1.0, where="t") for s in samples.values()]
    pl = plan(ops, [s.geometry for s in samples.values()], arch, training=True)
    per_pe = arch.pe.input_buffer_bytes + arch.pe.output_buffer_bytes
    for i, name in ((1, "c3"), (2, "fc")):    # activations spill: some PE's share does not fit its 48 B
        assert role_shares(ops[i], "a", arch).max() > per_pe
        assert not pl[(name, "forward")].stream_on_chip
    assert pl[("c2", "backward_data")].stream_on_chip      # δ̃z of c2 is small: stays on chip
    assert pl[("c3", "backward_data")].out_bytes == 0.0
    inf_on = simulate(trace, arch, training=False)
    inf_off = simulate(trace, _arch(False, **TINY), training=False)
    for lp in inf_on.layers:     # nothing fits: the same traffic as without residency
        assert _dram(inf_on, lp.name, "forward") == _dram(inf_off, lp.name, "forward")
    big = simulate(trace, _arch(True), training=False)
    assert _dram(big, "c3", "forward") < _dram(inf_on, "c3", "forward")


def test_inference_has_no_backward_passes(trace):
    from hwsim.sim.replay import replay

    with pytest.raises(ValueError, match="training=False"):
        replay(trace.sample(), _arch(True), training=False)


def test_arch_field_defaults_and_validation(tmp_path):
    a = load_arch("scnn")
    assert a.memory.inter_layer_residency is True and a.memory.residency_in_global_buffer is True
    off = _arch(False)
    assert off.content_hash() != a.content_hash() and off.to_dict()["memory"]["inter_layer_residency"] is False
    with pytest.raises(ValueError, match="inter_layer_residency"):
        load_arch("scnn", overrides={"memory.inter_layer_residency": 1})
