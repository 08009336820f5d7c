"""One layer's trace sample → the simulator's operands (hwsim.sim.layerops) and the survey's small helpers
(hwsim.sim.survey.out_densities / shapes_only), on hand-written samples."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.arch import load_arch
from hwsim.sim.layerops import TraceArchMismatch, _max_bits, check, layer_operands
from hwsim.sim.survey import out_densities, shapes_only
from hwsim.trace.schema import LayerGeometry, LayerSample


def _linear(name: str = "fc", *, N: int = 3, C: int = 2, K: int = 2, **kw) -> LayerSample:
    g = LayerGeometry(name=name, kind="linear", N=N, C=C, K=K)
    a = kw.pop("a_mask", np.ones((N, C), bool))
    lv = kw.pop("dz_levels", np.zeros((N, K), np.int8))
    return LayerSample(geometry=g, delta=1.0, dz_levels=lv, a_mask=a, **kw)


# ---------------------------------------------------------------- layer_operands


def test_a_linear_layers_batch_becomes_the_width_of_one_image():
    a = np.array([[1, 0], [0, 1], [1, 1]], bool)               # (N=3, C=2)
    lv = np.array([[0, 3], [-5, 0], [1, 0]], np.int8)          # (N=3, K=2)
    ops = layer_operands(_linear(a_mask=a, dz_levels=lv), seed=0, out_density=0.25, where="t")
    assert ops.a.shape == (1, 2, 1, 3) and ops.dz.shape == ops.dz_levels.shape == (1, 2, 1, 3)
    # a[0, c, 0, n] = a_mask[n, c]: channel 0 holds examples (1, 0, 1), channel 1 holds (0, 1, 1)
    assert ops.a[0, :, 0, :].tolist() == [[True, False, True], [False, True, True]]
    assert ops.dz_levels[0, :, 0, :].tolist() == [[0, -5, 1], [3, 0, 0]]
    assert ops.dz[0, :, 0, :].tolist() == [[False, True, True], [True, False, False]]
    # the GEMM's effectual MACs are unchanged by the fold: Σ_n Σ_c Σ_k a[n,c]·w[k,c] with dense w = 4 ones × 2 = 8
    assert int(ops.a.sum()) * ops.w.shape[0] == 8
    assert ops.w.shape == (2, 2, 1, 1) and ops.w.all() and ops.w_struct.all()
    assert ops.dz_bits == 4  # widest level |-5| → 1 sign + 3 magnitude bits (not 3 from the largest level, 3)
    assert (ops.name, ops.out_density, ops.groups) == ("fc", 0.25, 1)


def test_a_stored_weight_mask_is_used_as_recorded():
    w = np.array([[1, 0], [0, 0]], bool)  # (K=2, C=2)
    ops = layer_operands(_linear(w_mask=w, w_density=0.25), seed=3, out_density=1.0, where="t")
    assert ops.w[:, :, 0, 0].tolist() == [[True, False], [False, False]]


def test_dense_weights_without_a_mask_are_all_ones_at_any_seed():
    for seed in (0, 1, 7):
        assert layer_operands(_linear(w_density=1.0), seed=seed, out_density=1.0, where="t").w.all()


def test_a_missing_mask_is_drawn_at_the_recorded_density_seeded_by_name():
    def w(name: str, seed: int) -> np.ndarray:
        s = _linear(name, N=1, C=200, K=100, w_density=0.3)
        return layer_operands(s, seed=seed, out_density=1.0, where="t").w

    first = w("fc", 0)
    assert first.shape == (100, 200, 1, 1)
    assert 0.28 < first.mean() < 0.32  # 20 000 draws at 0.3: ±4.5 standard deviations
    assert np.array_equal(first, w("fc", 0))        # deterministic at a seed
    assert not np.array_equal(first, w("fc", 1))    # another seed, another mask
    assert not np.array_equal(first, w("fc2", 0))   # another layer, another mask (layers are not copies)


def test_a_conv_layer_keeps_its_4d_shapes_and_geometry():
    g = LayerGeometry(name="c", kind="conv2d", N=1, C=2, K=3, H=4, W=4, P=2, Q=2, R=3, S=3,
                      stride=(2, 2), padding=(1, 1))
    s = LayerSample(geometry=g, delta=1.0, dz_levels=np.full((1, 3, 2, 2), 2, np.int16),
                    a_mask=np.ones((1, 2, 4, 4), bool))
    ops = layer_operands(s, seed=0, out_density=1.0, where="t")
    assert (ops.a.shape, ops.w.shape, ops.dz.shape) == ((1, 2, 4, 4), (3, 2, 3, 3), (1, 3, 2, 2))
    assert (ops.stride, ops.padding, ops.dilation) == ((2, 2), (1, 1), (1, 1))
    assert ops.dz_bits == 3 and ops.dz.all()  # level 2 → 1 + bit_length(2) = 3


@pytest.mark.parametrize(("levels", "bits"), [([], 0), ([0, 0], 0), ([1], 2), ([-1], 2), ([7, -7], 4),
                                              ([-8, 3], 5), ([127], 8), ([-128], 9)])
def test_max_bits_is_sign_plus_the_widest_magnitude(levels, bits):
    assert _max_bits(np.array(levels, np.int16)) == bits


def test_a_memo_passed_in_is_the_operands_memo():
    memo: dict = {"counted": 1}
    assert layer_operands(_linear(), seed=0, out_density=1.0, where="t", memo=memo).memo is memo
    assert layer_operands(_linear(), seed=0, out_density=1.0, where="t").memo == {}


# ---------------------------------------------------------------- check


def test_forward_operands_wider_than_the_macs_are_one_line_naming_layer_and_field():
    arch = load_arch("scnn")  # pe.mac_bits = 8
    with pytest.raises(TraceArchMismatch) as err:
        check(_linear("fc1", a_bits=16), arch, "trace/it0")
    msg = str(err.value)
    assert msg.startswith("trace/it0: layer 'fc1': a_bits=16 is wider than the arch's pe.mac_bits=8")
    assert "allowed: a_bits <= 8" in msg and "--set pe.mac_bits=16" in msg and "\n" not in msg
    with pytest.raises(TraceArchMismatch, match="w_bits=9 is wider"):
        check(_linear(w_bits=9), arch, "t")


def test_operands_that_fit_or_are_floats_pass_the_check():
    arch = load_arch("scnn")
    check(_linear(w_bits=8, a_bits=8), arch, "t")     # exactly the MAC width
    check(_linear(w_bits=32, a_bits=32), arch, "t")   # floats: quantized to the MAC
    check(_linear(a_bits=16), load_arch("scnn16"), "t")  # a 16-bit MAC takes 16-bit activations


# ---------------------------------------------------------------- survey helpers


def test_out_density_is_the_next_layers_input_density_only_when_shapes_chain():
    g1 = LayerGeometry(name="a", kind="linear", N=2, C=3, K=4)
    g2 = LayerGeometry(name="b", kind="linear", N=2, C=4, K=5)   # input (2, 4) = a's output: chained
    g3 = LayerGeometry(name="c", kind="linear", N=2, C=6, K=1)   # input (2, 6) != b's output (2, 5)
    assert out_densities(["a", "b", "c"], [g1, g2, g3], [0.9, 0.4, 0.7]) == {"a": 0.4, "b": 1.0, "c": 1.0}
    assert out_densities([], [], []) == {}


def test_shapes_only_keeps_everything_but_the_arrays_memory():
    w = np.ones((2, 2), bool)
    s = _linear(w_mask=w, w_density=0.5, w_bits=8, a_bits=8, input_grad=False, weight_grad=True,
                dz_levels=np.array([[1, 2], [3, 4], [5, 6]], np.int8))
    light = shapes_only(s)
    for x, orig in ((light.dz_levels, s.dz_levels), (light.a_mask, s.a_mask), (light.w_mask, s.w_mask)):
        assert x.shape == orig.shape and x.dtype == orig.dtype
        assert not any(x.strides) and not x.any()  # a broadcast zero view: no memory, reads 0
    assert (light.geometry, light.w_density, light.w_bits, light.a_bits) == (s.geometry, 0.5, 8, 8)
    assert (light.input_grad, light.weight_grad) == (False, True)
    assert s.dz_levels[2, 1] == 6  # the original sample is left alone
    assert shapes_only(_linear()).w_mask is None  # no stored mask: still none
