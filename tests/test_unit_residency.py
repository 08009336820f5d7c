"""Unit tests of hwsim.sim.residency: layer chains, on-chip capacity and the per-pass residency plan."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from hwsim.arch import load_arch
from hwsim.sim import residency
from hwsim.sim.operands import Operands


def _geo(kind="conv2d", n=4, c=8, k=8, hw=8, pq=8):
    return SimpleNamespace(kind=kind, N=n, C=c, K=k, H=hw, W=hw, P=pq, Q=pq)


def _ops(name: str, n=4, c=8, k=8, hw=8, density=0.5, seed=0) -> Operands:
    rng = np.random.default_rng(seed)
    return Operands(name=name, w=np.ones((k, c, 3, 3), bool), w_struct=np.ones((k, c, 3, 3), bool),
                    a=rng.random((n, c, hw, hw)) < density, dz=rng.random((n, k, hw, hw)) < density, dz_bits=8,
                    groups=1, stride=(1, 1), padding=(1, 1), dilation=(1, 1), out_density=density)


def test_chained_by_shape():
    conv = _geo()
    assert residency.chained(conv, _geo())                         # same channels and plane
    assert residency.chained(conv, _geo(hw=4))                     # pooled down
    assert not residency.chained(conv, _geo(hw=16))                # larger plane: not this output
    assert not residency.chained(conv, _geo(c=16))                 # channel mismatch
    assert not residency.chained(conv, _geo(n=2))                  # another batch
    assert residency.chained(conv, _geo(kind="linear", c=8 * 16))  # flatten of 8 channels × 4×4 (pooled)
    assert not residency.chained(conv, _geo(kind="linear", c=8 * 65))  # more than 8 × 8 × 8 inputs
    assert not residency.chained(conv, _geo(kind="linear", c=12))  # not a multiple of K


def test_capacity_is_both_pe_rams_plus_the_global_buffer_when_allowed():
    scnn = load_arch("scnn")
    pe = scnn.pe
    ram = scnn.num_pes * (pe.input_buffer_bytes + pe.output_buffer_bytes)
    assert residency.capacity_bytes(scnn) == ram + scnn.memory.global_buffer_bytes     # the default since item 2
    pe_only = load_arch(scnn, {"memory.residency_in_global_buffer": False})
    assert residency.capacity_bytes(pe_only) == ram
    assert residency.capacity_bytes(load_arch(scnn, {"memory.inter_layer_residency": False})) == 0
    sys32 = load_arch("systolic32")
    assert residency.capacity_bytes(sys32) == (sys32.memory.global_buffer_bytes
                                               if sys32.memory.residency_in_global_buffer else 0)


# The chain tests below keep the policies the chain model had alone (stash in DRAM, weights streamed, PE RAMs
# only); tests/test_sim_memory_policy.py covers the others.
def _old(**over):
    return load_arch("scnn", {"memory.stash": "dram", "memory.weights_resident": False,
                              "memory.residency_in_global_buffer": False, **over})


def test_dz_bytes_count_every_mac_pass():
    arch = load_arch("scnn")
    ops = _ops("l0")
    wide = Operands(**{**ops.__dict__, "dz_bits": 2 * arch.pe.mac_bits, "memo": {}})
    one = residency.role_bytes(ops, "dz", arch)
    two = residency.role_bytes(wide, "dz", arch)
    assert two > one  # values twice as wide, same positions
    assert residency.role_bytes(ops, "a", arch) == residency.role_bytes(wide, "a", arch)


def _chain(arch, *, training=True, first_input_grad=False, hw=8):
    layers = [_ops(f"l{i}", hw=hw, seed=i) for i in range(3)]
    geos = [_geo(hw=hw, pq=hw) for _ in layers]
    return layers, residency.plan(layers, geos, arch, training=training, first_input_grad=first_input_grad)


def test_training_plan_on_a_chain_that_fits():
    arch = _old()
    layers, plan = _chain(arch)
    a_b = [residency.role_bytes(o, "a", arch) for o in layers]
    # forward: the first input comes from DRAM; later inputs are resident; outputs are stashed anyway
    assert plan[("l0", "forward")].stream_on_chip is False
    assert plan[("l1", "forward")].stream_on_chip is True
    assert plan[("l0", "forward")].out_bytes == a_b[1]
    assert plan[("l2", "forward")].out_bytes is None            # the logits are written as usual
    # backward-data: δ̃z of the layer before stays on chip; the first layer has no consumer downstream
    assert plan[("l1", "backward_data")].out_bytes == 0.0
    assert plan[("l0", "backward_data")].out_bytes is None
    assert plan[("l1", "backward_data")].stream_on_chip is True
    assert plan[("l2", "backward_data")].stream_on_chip is False  # the loss gradient comes from DRAM
    # backward-weight: δ̃z is still on chip from backward-data
    assert all(plan[(f"l{i}", "backward_weight")].broadcast_on_chip for i in range(3))
    assert len(plan) == 9


def test_inference_plan_writes_no_stash():
    arch = _old()
    _, plan = _chain(arch, training=False)
    assert set(p for _, p in plan) == {"forward"}
    assert plan[("l0", "forward")].out_bytes == 0.0 and plan[("l1", "forward")].stream_on_chip


def test_residency_off_or_too_small_spills_everything():
    for arch in (load_arch(load_arch("scnn"), {"memory.inter_layer_residency": False}),
                 _old(**{"pe.input_buffer_bytes": 16, "pe.output_buffer_bytes": 16})):
        layers, plan = _chain(arch)
        dz_b = [residency.role_bytes(o, "dz", arch) for o in layers]
        assert not any(r.stream_on_chip or r.broadcast_on_chip for r in plan.values())
        assert plan[("l1", "backward_data")].out_bytes == dz_b[0]


@pytest.mark.parametrize("first_input_grad", [False, True])
def test_first_layer_backward_weight_finds_dz_on_chip_only_via_the_next_layer(first_input_grad):
    arch = load_arch("scnn")
    layers = [_ops("only")]
    plan = residency.plan(layers, [_geo()], arch, first_input_grad=first_input_grad)
    # a single layer: nobody produced δ̃z on chip unless its own backward-data loaded it
    assert plan[("only", "backward_weight")].broadcast_on_chip is first_input_grad


def test_archs_with_equal_plan_inputs_get_equal_plans():
    """The sparse run and its dense-gated baseline differ in skipping and gating only, which a plan never reads:
    one plan serves both (the replay computes it once). Each field the plan reads changes the inputs."""
    from hwsim.sim.replay import baselines

    scnn = load_arch("scnn")
    dense, gated, systolic, _ = baselines(scnn)
    assert residency.plan_inputs(scnn) == residency.plan_inputs(gated)
    layers = [_ops("c1", seed=1), _ops("c2", seed=2, density=0.1)]
    geos = [_geo(), _geo()]
    assert residency.plan(layers, geos, scnn) == residency.plan(layers, geos, gated)
    assert residency.plan_inputs(dense) != residency.plan_inputs(scnn)          # uncompressed
    assert residency.plan_inputs(systolic) != residency.plan_inputs(dense)      # no PE RAMs, another array
    for field, value in (("pe.mac_bits", 16), ("pe.input_buffer_bytes", 1024), ("pe.output_buffer_bytes", 1024),
                         ("pe_array.rows", 4), ("pe_array.cols", 4), ("memory.stash", "dram"),
                         ("memory.global_buffer_bytes", 4096)):
        assert residency.plan_inputs(load_arch("scnn", {field: value})) != residency.plan_inputs(scnn), field
