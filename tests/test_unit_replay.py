"""Unit tests of hwsim.sim.replay's per-layer helpers: operands from a sample, output densities, the
first layer's input gradient, and the trace/arch check (errors name the layer and field)."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.arch import load_arch
from hwsim.sim import replay
from hwsim.trace.schema import LayerGeometry, LayerSample


def _conv(name="c", n=2, c=3, k=4, hw=6, w_mask=True, density=0.5, seed=0, **kw) -> LayerSample:
    g = LayerGeometry(name=name, kind="conv2d", N=n, C=c, K=k, H=hw, W=hw, P=hw, Q=hw, R=3, S=3, padding=(1, 1))
    rng = np.random.default_rng(seed)
    levels = rng.integers(-3, 4, g.output_shape) * (rng.random(g.output_shape) < density)
    return LayerSample(geometry=g, delta=0.1, dz_levels=levels, a_mask=rng.random(g.input_shape) < density,
                       w_mask=(rng.random(g.weight_shape) < density) if w_mask else None, w_density=density, **kw)


def test_layer_operands_of_a_conv():
    s = _conv()
    ops = replay.layer_operands(s, seed=0, out_density=0.25, where="t")
    assert ops.w.shape == (4, 3, 3, 3) and ops.a.shape == (2, 3, 6, 6) and ops.dz.shape == (2, 4, 6, 6)
    assert np.array_equal(ops.w, s.w_mask) and ops.w_struct.all()
    assert np.array_equal(ops.dz, s.dz_levels != 0)
    assert ops.dz_bits == 3                                      # |level| ≤ 3: 2 magnitude bits + sign
    assert ops.out_density == 0.25 and ops.kernel == (3, 3)


def test_missing_weight_masks_are_seeded_at_the_recorded_density():
    s = _conv(w_mask=False, density=0.3, hw=4, c=16, k=16)
    a = replay.layer_operands(s, seed=5, out_density=1.0, where="t").w
    b = replay.layer_operands(s, seed=5, out_density=1.0, where="t").w
    c = replay.layer_operands(s, seed=6, out_density=1.0, where="t").w
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert abs(a.mean() - 0.3) < 0.1


def test_linear_layers_fold_the_batch_into_the_width():
    g = LayerGeometry(name="fc", kind="linear", N=5, C=3, K=2)
    rng = np.random.default_rng(1)
    a = rng.random((5, 3)) < 0.5
    levels = rng.integers(-1, 2, (5, 2))
    ops = replay.layer_operands(LayerSample(geometry=g, delta=0.1, dz_levels=levels, a_mask=a), seed=0,
                                out_density=1.0, where="t")
    assert ops.a.shape == (1, 3, 1, 5) and ops.dz.shape == (1, 2, 1, 5) and ops.w.shape == (2, 3, 1, 1)
    assert np.array_equal(ops.a[0, :, 0, :], a.T)               # example n is column n
    assert np.array_equal(ops.dz[0, :, 0, :], (levels != 0).T)


def test_grouped_weights_stay_compact():
    g = LayerGeometry(name="dw", kind="conv2d", N=1, C=4, K=4, H=3, W=3, P=3, Q=3, R=3, S=3, padding=(1, 1), groups=2)
    s = LayerSample(geometry=g, delta=0.1, dz_levels=np.ones(g.output_shape, int), a_mask=np.ones(g.input_shape, bool),
                    w_mask=np.ones(g.weight_shape, bool))
    ops = replay.layer_operands(s, seed=0, out_density=1.0, where="t")
    assert ops.w.shape == (4, 2, 3, 3) and ops.compact and ops.groups == 2
    assert ops.weight_count == 4 * 2 * 9 and np.array_equal(ops.w, ops.w_struct)


def test_max_bits_is_sign_plus_magnitude():
    assert replay._max_bits(np.zeros(0, int)) == 0
    assert replay._max_bits(np.array([0, 1, -1])) == 2
    assert replay._max_bits(np.array([7, -8])) == replay._max_bits(np.array([-8])) == 5
    assert replay._max_bits(np.array([127])) == 8


def test_output_density_is_the_next_layers_input_density_when_shapes_chain():
    first, second = _conv("a", c=4, density=0.5, seed=1), _conv("b", c=4, density=0.2, seed=2)
    other = _conv("x", c=7, k=7, seed=3)
    d = replay._out_densities({"a": first, "b": second, "x": other})
    assert d["a"] == second.a_density                            # a's output is b's input
    assert d["b"] == 1.0                                         # b's output is not x's input (7 channels)
    assert d["x"] == 1.0                                         # last layer: unknown


def test_first_layer_input_grad_from_meta():
    assert replay.first_layer_input_grad({}) is False
    assert replay.first_layer_input_grad({"first_layer_input_grad": True}) is True
    assert replay.first_layer_input_grad({"synthetic": {"dense_first_input": False}}) is True
    assert replay.first_layer_input_grad({"synthetic": {"dense_first_input": True}}) is False


def test_operands_wider_than_the_mac_name_the_layer_field_and_arch():
    s = _conv("conv7", w_bits=16)
    with pytest.raises(replay.TraceArchMismatch, match=r"t: layer 'conv7': w_bits=16 is wider than the arch's "
                                                      r"pe.mac_bits=8 .*allowed: w_bits <= 8"):
        replay._check(s, load_arch("scnn"), "t")
    replay._check(_conv(a_bits=8), load_arch("scnn"), "t")        # fits
    replay._check(_conv(a_bits=32), load_arch("scnn"), "t")       # floats are quantized to the MAC


def test_inference_replays_only_the_forward_pass():
    with pytest.raises(ValueError, match=r"passes: \['forward', 'backward_data'\] with training=False; "
                                         r"allowed: \['forward'\]"):
        replay.replay({"c": _conv()}, load_arch("scnn"), training=False, passes=("forward", "backward_data"))


def test_replay_of_two_layers_leaves_out_the_first_backward_data():
    res = replay.replay({"a": _conv("a", seed=1), "b": _conv("b", seed=2)},
                        load_arch("scnn", {"memory.schedule": "isolated"}))  # per-layer-pass order below
    got = [(lp.name, lp.pass_name) for lp in res]
    assert ("a", "backward_data") not in got and len(got) == 7   # 5 GEMMs and each layer's weight update
    assert got[-2:] == [("a", "update"), ("b", "update")]
    for lp in res:
        for v in ("sparse", "dense", "dense_gated", "ideal", "dense_systolic"):
            vr = lp.variant(v)
            assert vr.cycles == sum(vr.cycle_breakdown.to_json().values())
        assert lp.ideal.cycles <= lp.sparse.cycles <= lp.dense.cycles or lp.sparse.cycle_breakdown.nsd


def test_replays_keep_blas_on_one_thread_and_find_the_pools_once():
    from threadpoolctl import threadpool_info

    from hwsim.sim import blas

    # the pools the controller found (numpy's BLAS, the only one the simulator calls, is loaded before any replay;
    # pools other tests load later, e.g. scipy's, are not limited, and need not be)
    known = {lib.filepath for lib in blas.blas_controller().select(user_api="blas").lib_controllers}
    assert known

    def blas_threads():
        return {p["filepath"]: p["num_threads"] for p in threadpool_info() if p["filepath"] in known}

    before = blas_threads()
    with blas.one_blas_thread():
        assert set(blas_threads().values()) == {1}
    assert blas_threads() == before                                      # restored on the way out
    assert blas.blas_controller() is blas.blas_controller()              # found once per process


def test_baselines_are_found_by_the_arch_object_then_by_its_content():
    a, b = load_arch("scnn"), load_arch("scnn")                    # equal, two objects
    first = replay.baselines(a)
    assert replay.baselines(a) is first and replay.baselines(b) is first   # the same four derived archs
    assert [x.name for x in first] == ["scnn-dense", "scnn-dense_gated", "scnn-dense_systolic", "scnn-dense_equal_area"]
    other = replay.baselines(load_arch("scnn", {"pe_array.rows": 4}))
    assert other[0].pe_array.rows == 4 and other is not first
