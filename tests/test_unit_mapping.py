"""Unit tests of hwsim.sim.mapping: trace-v2 kinds replayed as linear / symmetric conv2d with the same work.

Each case checks the machine sample against the recorded one: the same dense MACs, the same non-zeros,
and effectual MACs counted on the machine form equal to a brute-force count on the recorded operands.
"""

from __future__ import annotations

import itertools

import numpy as np

from hwsim.sim import work
from hwsim.sim.mapping import machine_samples, to_machine
from hwsim.trace.schema import LayerGeometry, LayerSample


def _sample(g: LayerGeometry, seed: int = 0, density: float = 0.5) -> LayerSample:
    rng = np.random.default_rng(seed)
    levels = rng.integers(-2, 3, g.output_shape) * (rng.random(g.output_shape) < density)
    return LayerSample(geometry=g, delta=0.1, dz_levels=levels, a_mask=rng.random(g.input_shape) < density,
                       w_mask=rng.random(g.weight_shape) < density)


def _fwd(m: LayerSample) -> int:
    g = m.geometry
    w = work.expand_groups(np.asarray(m.w_mask, bool).reshape(g.weight_shape), g.groups)
    return work.effectual_macs_forward(w, np.asarray(m.a_mask, bool), out_hw=(g.P, g.Q), stride=g.stride,
                                       padding=g.padding, dilation=g.dilation)


def _bd(m: LayerSample) -> int:
    g = m.geometry
    w = work.expand_groups(np.asarray(m.w_mask, bool).reshape(g.weight_shape), g.groups)
    return work.effectual_macs_backward_data(w, m.dz_levels != 0, in_hw=(g.H, g.W), stride=g.stride,
                                             padding=g.padding, dilation=g.dilation)


def test_linear_and_symmetric_conv2d_pass_through_unchanged():
    lin = _sample(LayerGeometry(name="fc", kind="linear", N=4, C=6, K=3))
    conv = _sample(LayerGeometry(name="c", kind="conv2d", N=2, C=3, K=4, H=5, W=5, P=5, Q=5, R=3, S=3,
                                 padding=(1, 1)))
    assert to_machine(lin) is lin and to_machine(conv) is conv
    out = machine_samples({"fc": lin, "c": conv})
    assert list(out) == ["fc", "c"] and out["fc"] is lin


def test_conv1d_is_a_conv2d_of_height_one():
    g = LayerGeometry(name="c1", kind="conv1d", N=2, C=3, K=4, W=10, Q=8, S=3)
    s = _sample(g)
    m = to_machine(s)
    mg = m.geometry
    assert (mg.kind, mg.H, mg.P, mg.R, mg.W, mg.Q, mg.S) == ("conv2d", 1, 1, 1, 10, 8, 3)
    assert mg.macs == g.macs
    assert m.a_mask.shape == (2, 3, 1, 10) and m.dz_levels.shape == (2, 4, 1, 8)
    assert np.array_equal(m.a_mask[:, :, 0], s.a_mask)
    # brute force on the 1-D operands
    ref = sum(bool(s.w_mask[k, c, t]) and bool(s.a_mask[n, c, q + t])
              for n, k, c, q, t in itertools.product(range(2), range(4), range(3), range(8), range(3)))
    assert _fwd(m) == ref


def test_asymmetric_padding_becomes_explicit_zero_rows():
    # 'same' padding of an even kernel: 0 before, 1 after in both axes
    g = LayerGeometry(name="even", kind="conv2d", N=1, C=2, K=3, H=4, W=4, P=4, Q=4, R=2, S=2,
                      padding=(0, 1, 0, 1))
    s = _sample(g, seed=1)
    m = to_machine(s)
    mg = m.geometry
    assert mg.padding == (0, 0) and (mg.H, mg.W) == (5, 5) and (mg.P, mg.Q) == (4, 4)
    assert mg.macs == g.macs
    assert m.a_mask.sum() == s.a_mask.sum() and not m.a_mask[:, :, 4].any() and not m.a_mask[:, :, :, 4].any()
    ref = 0
    for n, k, c, p, q, r, t in itertools.product(range(1), range(3), range(2), range(4), range(4), range(2),
                                                 range(2)):
        h, w = p + r, q + t
        if h < 4 and w < 4:
            ref += bool(s.w_mask[k, c, r, t]) and bool(s.a_mask[n, c, h, w])
    assert _fwd(m) == ref


def test_matmul_is_a_grouped_1x1_conv_over_the_rows():
    g = LayerGeometry(name="qk", kind="matmul", N=5, C=2 * 3, K=2 * 4, groups=2)   # 2 × (5×3 @ 3×4)
    s = _sample(g, seed=2)
    m = to_machine(s)
    assert m.geometry.kind == "conv2d" and m.geometry.macs == g.macs == 2 * 5 * 3 * 4
    a, w = s.a_mask, s.w_mask                  # (G, M, C/g), (G, C/g, K/g)
    ref = sum(bool(a[gi, i, c]) and bool(w[gi, c, k])
              for gi, i, c, k in itertools.product(range(2), range(5), range(3), range(4)))
    assert _fwd(m) == ref
    assert (m.dz_levels != 0).sum() == (s.dz_levels != 0).sum()


def test_transposed_conv_is_its_gemm_form_with_im2col_gradients():
    # conv_transpose2d: 3×3 input, stride 2, pad 1, 3×3 kernel → 5×5 output
    g = LayerGeometry(name="up", kind="conv_transpose2d", N=1, C=2, K=3, H=3, W=3, P=5, Q=5, R=3, S=3,
                      stride=(2, 2), padding=(1, 1))
    s = _sample(g, seed=3)
    m = to_machine(s)
    assert m.geometry.macs == g.macs == 1 * 2 * 3 * 3 * 3 * 3 * 3
    w, a, dy = s.w_mask, s.a_mask, s.dz_levels != 0            # w: (C, K, R, S)
    fwd = bd = 0
    for n, c, h, x, k, r, t in itertools.product(range(1), range(2), range(3), range(3), range(3), range(3),
                                                 range(3)):
        fwd += bool(w[c, k, r, t]) and bool(a[n, c, h, x])       # frameworks compute every product
        oh, ow = h * 2 - 1 + r, x * 2 - 1 + t                    # where the product lands
        if 0 <= oh < 5 and 0 <= ow < 5:
            bd += bool(w[c, k, r, t]) and bool(dy[n, k, oh, ow])  # δa[c, h, x] += w · δy at that pixel
    assert _fwd(m) == fwd
    assert _bd(m) == bd
