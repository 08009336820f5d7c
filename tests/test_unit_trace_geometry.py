"""A layer's geometry and operands as the trace defines them (hwsim/trace/schema.py): the convolution arithmetic
that fixes P and Q, the forward GEMM and its MACs for every kind, the operand shapes, the JSON form, and the
one-line error that names the class, layer and field for each malformed value. Expected numbers are worked out
by hand from the LayerGeometry docstring."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.trace.schema import (
    LayerGeometry,
    LayerSample,
    TraceError,
    bit_width,
    coverage_line,
    entropy_bits,
    layer_stats,
    level_histogram,
)


def test_conv_output_size_follows_stride_padding_and_dilation():
    # ⌊(H + 2p − d(R − 1) − 1)/s⌋ + 1 = ⌊(7 + 2 − 2 − 1)/2⌋ + 1 = 4
    g = LayerGeometry(name="c", kind="conv2d", N=1, C=1, K=1, H=7, W=7, P=4, Q=4, R=3, S=3, stride=(2, 2),
                      padding=(1, 1))
    assert g.pads == (1, 1, 1, 1)
    # dilation 2: ⌊(7 + 2 − 4 − 1)/2⌋ + 1 = 3
    LayerGeometry(name="d", kind="conv2d", N=1, C=1, K=1, H=7, W=7, P=3, Q=3, R=3, S=3, stride=(2, 2),
                  padding=(1, 1), dilation=(2, 2))
    # an even kernel's "same" padding, 1 above and 2 below: ⌊(8 + 3 − 3 − 1)/1⌋ + 1 = 8
    s = LayerGeometry(name="s", kind="conv2d", N=1, C=1, K=1, H=8, W=8, P=8, Q=8, R=4, S=4, padding=(1, 2, 1, 2))
    assert s.pads == (1, 2, 1, 2) and s.padding == (1, 2, 1, 2)
    # a transposed conv: (H − 1)s − 2p + d(R − 1) + output_padding + 1 = 12 − 2 + 3 + 1 + 1 = 15
    LayerGeometry(name="t", kind="conv_transpose2d", N=1, C=1, K=1, H=7, W=7, P=15, Q=15, R=4, S=4,
                  stride=(2, 2), padding=(1, 1), output_padding=(1, 1))
    with pytest.raises(TraceError, match=r"^LayerGeometry\('t'\)\.P: 14 does not match the conv arithmetic "
                                         r"\(expected 15\)$"):
        LayerGeometry(name="t", kind="conv_transpose2d", N=1, C=1, K=1, H=7, W=7, P=14, Q=15, R=4, S=4,
                      stride=(2, 2), padding=(1, 1), output_padding=(1, 1))
    with pytest.raises(TraceError, match=r"\.Q: 5 does not match the conv arithmetic \(expected 4\)"):
        LayerGeometry(name="c", kind="conv2d", N=1, C=1, K=1, H=7, W=7, P=4, Q=5, R=3, S=3, stride=(2, 2),
                      padding=(1, 1))


def test_symmetric_four_value_padding_is_stored_in_the_two_value_form():
    g = LayerGeometry(name="c", kind="conv2d", N=1, C=1, K=1, H=5, W=5, P=5, Q=7, R=3, S=3, padding=(1, 1, 2, 2))
    assert g.padding == (1, 2) and g.pads == (1, 1, 2, 2)
    # equal above and below but not left and right: stays four values (Q = ⌊(5 + 3 − 2 − 1)/1⌋ + 1 = 6)
    h = LayerGeometry(name="c", kind="conv2d", N=1, C=1, K=1, H=5, W=5, P=5, Q=6, R=3, S=3, padding=(1, 1, 1, 2))
    assert h.padding == (1, 1, 1, 2) and h.pads == (1, 1, 1, 2)


@pytest.mark.parametrize("kw,gemm", [
    # conv: M = N·P·Q = 2·10·10, N = K, K = C·R·S = 6·25
    (dict(kind="conv2d", N=2, C=6, K=16, H=14, W=14, P=10, Q=10, R=5, S=5), (200, 16, 150, 1)),
    # depthwise: 8 groups of one channel, each (2·6·6 × 9)·(9 × 1)
    (dict(kind="conv2d", N=2, C=8, K=8, H=6, W=6, P=6, Q=6, R=3, S=3, padding=(1, 1), groups=8), (72, 1, 9, 8)),
    # transposed: every input pixel times the kernel: M = N·H·W = 98, N = K·R·S = 128, K = C = 16
    (dict(kind="conv_transpose2d", N=2, C=16, K=8, H=7, W=7, P=14, Q=14, R=4, S=4, stride=(2, 2), padding=(1, 1)),
     (98, 128, 16, 1)),
    (dict(kind="conv1d", N=3, C=4, K=5, W=10, Q=8, S=3), (24, 5, 12, 1)),
    (dict(kind="linear", N=64, C=400, K=120), (64, 120, 400, 1)),
    # attention's QKᵀ: 8 products (17 × 12)·(12 × 17)
    (dict(kind="matmul", N=17, C=96, K=136, groups=8), (17, 17, 12, 8)),
])
def test_forward_gemm_and_macs(kw, gemm):
    g = LayerGeometry(name="x", **kw)
    assert g.gemm == dict(zip(("M", "N", "K", "batch"), gemm, strict=True))
    assert g.macs == gemm[0] * gemm[1] * gemm[2] * gemm[3]


@pytest.mark.parametrize("kw,shapes", [
    (dict(kind="linear", N=4, C=3, K=2), ((4, 3), (4, 2), (2, 3))),
    (dict(kind="matmul", N=5, C=6, K=4, groups=2), ((2, 5, 3), (2, 5, 2), (2, 3, 2))),
    (dict(kind="conv2d", N=2, C=4, K=6, H=5, W=5, P=3, Q=3, R=3, S=3, groups=2),
     ((2, 4, 5, 5), (2, 6, 3, 3), (6, 2, 3, 3))),
    (dict(kind="conv1d", N=2, C=4, K=6, W=9, Q=7, S=3), ((2, 4, 9), (2, 6, 7), (6, 4, 3))),
    # torch's transposed layout: weight (C, K/groups, R, S)
    (dict(kind="conv_transpose2d", N=1, C=4, K=6, H=3, W=3, P=5, Q=5, R=3, S=3, groups=2),
     ((1, 4, 3, 3), (1, 6, 5, 5), (4, 3, 3, 3))),
    (dict(kind="conv_transpose1d", N=1, C=4, K=2, W=3, Q=5, S=3), ((1, 4, 3), (1, 2, 5), (4, 2, 3))),
])
def test_operand_shapes_of_every_kind(kw, shapes):
    g = LayerGeometry(name="x", **kw)
    assert (g.input_shape, g.output_shape, g.weight_shape) == shapes


def test_second_operand_role_defaults_by_kind_and_json_omits_defaults():
    mm = LayerGeometry(name="qk", kind="matmul", N=2, C=2, K=2)
    lin = LayerGeometry(name="fc", kind="linear", N=2, C=2, K=2)
    assert (mm.w_role, lin.w_role) == ("activation", "weight")
    assert "w_role" not in mm.to_json() and "w_role" not in lin.to_json() and "output_padding" not in lin.to_json()
    odd = LayerGeometry(name="fc", kind="linear", N=2, C=2, K=2, w_role="activation")
    assert odd.to_json()["w_role"] == "activation" and odd.to_json()["stride"] == [1, 1]
    t = LayerGeometry(name="t", kind="conv_transpose1d", N=1, C=1, K=1, W=3, Q=7, S=2, stride=(1, 2),
                      output_padding=(0, 1))
    assert t.to_json()["output_padding"] == [0, 1]
    for g in (mm, odd, t):
        assert LayerGeometry.from_json(g.to_json()) == g


@pytest.mark.parametrize("kw,message", [
    (dict(kind="dense"), r"\.kind: 'dense' is not one of \('linear', "),
    (dict(N=0), r"\.N: must be an integer >= 1, got 0"),
    (dict(C=True), r"\.C: must be an integer >= 1, got True"),
    (dict(K=2.0), r"\.K: must be an integer >= 1, got 2\.0"),
    (dict(stride=(1, 1, 1)), r"\.stride: must be 2 integers \(>= 1\), got \(1, 1, 1\)"),
    (dict(stride=("a", "b")), r"\.stride: must be 2 integers, got \('a', 'b'\)"),
    (dict(padding=(0, -1)), r"\.padding: must be 2 or 4 integers \(>= 0\), got \(0, -1\)"),
    (dict(dilation=(0, 1)), r"\.dilation: must be 2 integers \(>= 1\)"),
    (dict(w_role="bias"), r"\.w_role: 'bias' is not one of \('weight', 'activation'\)"),
    (dict(C=6, K=4, groups=4), r"\.groups: 4 must divide C=6 and K=4"),
    (dict(N=8, batch_size=7), r"\.batch_size: 7 < N=8"),
    (dict(H=2, P=2), r"\.H: must be 1 for kind 'linear', got 2"),
    (dict(output_padding=(1, 0)), r"\.output_padding: only transposed convolutions have one, got \(1, 0\)"),
])
def test_each_bad_field_is_named_in_one_line(kw, message):
    fields = dict(name="fc1", kind="linear", N=2, C=4, K=4) | kw
    with pytest.raises(TraceError, match=r"^LayerGeometry\('fc1'\)" + message) as e:
        LayerGeometry(**fields)
    assert "\n" not in str(e.value)


def test_from_json_names_where_the_bad_layer_was_read():
    with pytest.raises(TraceError, match=r"^manifest\.json layers\[2\]: unknown field\(s\) \['bias'\]; allowed: "):
        LayerGeometry.from_json({"name": "a", "kind": "linear", "N": 1, "C": 1, "K": 1, "bias": 1},
                                where="manifest.json layers[2]")
    with pytest.raises(TraceError, match=r"^layer: must be an object with fields \["):
        LayerGeometry.from_json(["a", "linear"])
    with pytest.raises(TraceError, match=r"^L: LayerGeometry\('a'\)\.N: must be an integer >= 1, got -1$"):
        LayerGeometry.from_json({"name": "a", "kind": "linear", "N": -1, "C": 1, "K": 1}, where="L")
    with pytest.raises(TraceError, match=r"^L: .*missing 1 required positional argument: 'K'"):
        LayerGeometry.from_json({"name": "a", "kind": "linear", "N": 1, "C": 1}, where="L")


FC = LayerGeometry(name="fc", kind="linear", N=2, C=3, K=2)


def _sample(**kw) -> LayerSample:
    fields = dict(geometry=FC, delta=0.5, dz_levels=np.array([[0, 3], [-1, 0]]),
                  a_mask=np.array([[1, 0, 1], [0, 0, 1]], bool)) | kw
    return LayerSample(**fields)


def test_sample_densities_and_bits():
    s = _sample(input_grad=np.bool_(False))
    assert s.dz_density == 0.5 and s.a_density == 0.5 and s.max_bits == 3      # |3| → 1 sign + 2 magnitude bits
    assert s.input_grad is False and type(s.input_grad) is bool and s.weight_grad is None
    assert s.dz_mask.tolist() == [[False, True], [True, False]]
    assert LayerGeometry(name="fc", kind="linear", N=8, C=1, K=1, batch_size=8).batch_size == 8   # = N is fine


@pytest.mark.parametrize("kw,message", [
    (dict(dz_levels=np.zeros((2, 3), int)), r"\.dz_levels: shape \(2, 3\) != output shape \(2, 2\)"),
    (dict(a_mask=np.ones((3, 2), bool)), r"\.a_mask: shape \(3, 2\) != input shape \(2, 3\)"),
    (dict(w_mask=np.ones((3, 2), bool)), r"\.w_mask: shape \(3, 2\) != weight shape \(2, 3\)"),
    (dict(w_density=1.5), r"\.w_density: 1\.5 not in \[0, 1\]"),
    (dict(delta=float("nan")), r"\.delta: nan must be finite and >= 0"),
    (dict(delta=-0.1), r"\.delta: -0\.1 must be finite and >= 0"),
    (dict(dz_levels=np.zeros((2, 2))), r"\.dz_levels: dtype float64 must be an integer type"),
    (dict(weight_grad="yes"), r"\.weight_grad: must be true, false or null, got 'yes'"),
])
def test_each_bad_sample_field_is_named(kw, message):
    with pytest.raises(TraceError, match=r"^LayerSample\('fc'\)" + message):
        _sample(**kw)


@pytest.mark.parametrize("level,bits", [(0, 0), (-3, 0), (1, 2), (2, 3), (3, 3), (4, 4), (127, 8), (128, 9)])
def test_bit_width_is_sign_plus_magnitude(level, bits):
    assert bit_width(level) == bits


def test_level_histogram_counts_non_zeros_by_width_and_clips_at_max_bits():
    # widths: ±1 → 2, 2 and 3 → 3, −4 → 4, 40000 (16 magnitude bits) → 17, counted at 16
    h = level_histogram(np.array([0, 1, -1, 2, 3, -4, 40000]))
    assert h == [2, 2, 1] + [0] * 11 + [1] and len(h) == 15
    assert level_histogram(np.array([5, -6]), max_bits=4) == [0, 0, 2]
    assert level_histogram(np.zeros(4, int)) == [0] * 15
    st = layer_stats(np.array([[0, 1], [-5, 0]]))
    assert st == {"density": 0.5, "max_bits": 4, "hist": [1, 0, 1] + [0] * 12}


def test_entropy_of_mask_and_levels():
    # 4 elements, 2 non-zero: binary entropy 4·1 bit; levels {1, −1} equally likely: 2·1 bit
    assert entropy_bits(np.array([1, 0, 1, 0], bool), np.array([1, -1])) == pytest.approx(6.0)
    # 8 elements, 2 non-zero (p = 1/4): 8·H(1/4) = 8·0.811278 bits; one level value: 0 bits
    assert entropy_bits(np.array([1, 1, 0, 0, 0, 0, 0, 0], bool), np.array([3, 3])) == pytest.approx(6.490225, abs=1e-6)
    assert entropy_bits(np.zeros(5, bool), np.array([], int)) == 0.0
    assert entropy_bits(np.ones(3, bool), np.array([2, 2, 2])) == 0.0


def test_coverage_line_lists_the_passes_and_at_most_five_missed_ops():
    assert coverage_line(None) == "GEMM-MAC coverage: not recorded (synthetic or version-1 trace)"
    cov = {"forward": 0.5, "backward_data": 1.0, "captured_macs": 50, "total_macs": 100,
           "missed": [{"op": f"op{i}", "module": f"m{i}" if i else "", "why": "unsupported"} for i in range(7)]}
    assert coverage_line(cov) == (
        "GEMM-MAC coverage: forward 50.0%, backward-data 100.0%, backward-weight 100.0% (50 of 100 MACs); "
        "NOT captured: op0 in <model> (unsupported); op1 in m1 (unsupported); op2 in m2 (unsupported); "
        "op3 in m3 (unsupported); op4 in m4 (unsupported) and 2 more")
    assert coverage_line({"forward": 1.0, "captured_macs": 9, "total_macs": 9}).endswith("(9 of 9 MACs)")
