"""Transformer-sized replays (issue 21 item 3): the strip transpose, narrow δ̃z levels from the reader, the
one-image batch sum — each the same values as the plain numpy it replaces, checked element by element."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.sim import mapping, segments, work
from hwsim.trace.format import LayerGeometry, LayerSample, TraceWriter, load
from hwsim.trace.reading import level_dtype


@pytest.mark.parametrize("shape", [(3, 5), (64, 1024), (300, 257), (1000, 130)])
@pytest.mark.parametrize("dtype", [bool, np.int8, np.int32])
def test_transposed_is_the_transpose(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    x = (rng.integers(-5, 6, size=shape)).astype(dtype)
    t = segments.transposed(x)
    assert t.shape == shape[::-1] and t.dtype == x.dtype and t.flags.c_contiguous
    np.testing.assert_array_equal(t, x.T)


def test_matmul_tokens_transpose_each_group():
    # (G=2, M=3 rows, X=2 channels) → (1, G·X, 1, M): channel x of group g is row g·X + x, its M rows the width
    x = np.arange(12).reshape(2, 3, 2)
    out = mapping._tokens(x)
    assert out.shape == (1, 4, 1, 3)
    assert out[0, :, 0].tolist() == [[0, 2, 4], [1, 3, 5], [6, 8, 10], [7, 9, 11]]


@pytest.mark.parametrize(("lo", "hi", "dt"), [(-127, 127, np.int8), (-128, 5, np.int16), (3, 128, np.int16),
                                              (-40000, 1, np.int32), (1, 2**31, np.int64)])
def test_level_dtype_is_the_narrowest_symmetric_range(lo, hi, dt):
    assert level_dtype(np.array([lo, hi], dtype=np.int64)) == np.dtype(dt)


def test_reader_returns_levels_in_the_narrowest_dtype(tmp_path):
    g = LayerGeometry(name="fc", kind="linear", N=4, C=3, K=5)
    rng = np.random.default_rng(0)
    lv = rng.integers(-7, 8, size=g.output_shape) * (rng.random(g.output_shape) < 0.5)
    lv.flat[0], lv.flat[1] = 127, -127
    s = LayerSample(geometry=g, delta=0.5, dz_levels=lv.astype(np.int64), a_mask=rng.random(g.input_shape) < 0.5,
                    w_density=1.0, w_mask=None, w_bits=8, a_bits=8)
    with TraceWriter(tmp_path / "t", meta={"model": "m", "method": "dither"}) as w:
        w.add_layer(g)
        w.add_iteration(0, stats=None, samples=[s])
    got = load(tmp_path / "t").sample()["fc"].dz_levels
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, lv)


def test_batch_sum_of_one_image_is_its_plane():
    x = np.random.default_rng(1).random((1, 4, 3, 5)) < 0.5
    got = work.batch_sum(x)
    np.testing.assert_array_equal(got.astype(np.int64), x.sum(axis=0))
    y = np.random.default_rng(2).random((3, 4, 3, 5)) < 0.5
    assert work.batch_sum(y).dtype == np.int64
    np.testing.assert_array_equal(work.batch_sum(y), y.sum(axis=0))
    # the exact effectual MACs of a linear layer (one 1×N image) through the one-image path
    w = np.random.default_rng(3).random((6, 4, 1, 1)) < 0.5
    a = np.random.default_rng(4).random((1, 4, 1, 9)) < 0.5
    want = sum(int(w[k, c, 0, 0]) * int(a[0, c, 0, q]) for k in range(6) for c in range(4) for q in range(9))
    assert work.effectual_macs_forward(w, a, out_hw=(1, 9), stride=(1, 1), padding=(0, 0), dilation=(1, 1)) == want


def _grouped(name: str, *, c: int, k: int, groups: int, seed: int, kind: str = "conv2d") -> LayerSample:
    if kind == "matmul":  # groups × (N×C/g @ C/g×K/g): attention's batched products
        g = LayerGeometry(name=name, kind="matmul", N=6, C=c, K=k, groups=groups)
    else:
        g = LayerGeometry(name=name, kind="conv2d", N=2, C=c, K=k, H=5, W=5, P=5, Q=5, R=3, S=3, padding=(1, 1),
                          groups=groups)
    rng = np.random.default_rng(seed)
    levels = rng.integers(-300, 301, g.output_shape) * (rng.random(g.output_shape) < 0.4)  # > 8 bits: two passes
    return LayerSample(geometry=g, delta=0.1, dz_levels=levels, a_mask=rng.random(g.input_shape) < 0.6,
                       w_mask=rng.random(g.weight_shape) < 0.7, w_density=0.7)


@pytest.mark.parametrize("arch", ["scnn", "scnn_bitserial", "tensordash", "systolic32"])
def test_compact_grouped_weights_replay_as_the_block_diagonal_expansion(arch, monkeypatch):
    """The whole replay on compact grouped weights equals the replay on their block-diagonal expansion (what the
    replay built before): Kc inside a group (block by block), Kc across groups (the dense fallback), a matmul."""
    from dataclasses import replace

    from hwsim.arch import load_arch
    from hwsim.sim import replay as rp

    samples = {s.geometry.name: s for s in (
        _grouped("g2", c=8, k=16, groups=2, seed=1),      # K/g = 8: Kc = 8 inside one group
        _grouped("dw", c=4, k=4, groups=4, seed=2),       # depthwise, K/g = 1: Kc spans groups
        _grouped("qk", c=2 * 3, k=2 * 16, groups=2, seed=3, kind="matmul"))}
    a = load_arch(arch)
    compact = [r.to_json() for r in rp.replay(samples, a, first_input_grad=True)]
    built = rp.layer_operands

    def expanded(sample, **kw):
        ops = built(sample, **kw)
        assert ops.groups == 1 or ops.compact
        return replace(ops, w=work.expand_groups(ops.w, ops.groups), w_struct=work.expand_groups(ops.w_struct,
                                                                                                 ops.groups))
    monkeypatch.setattr(rp, "layer_operands", expanded)
    assert [r.to_json() for r in rp.replay(samples, a, first_input_grad=True)] == compact


def test_weight_slab_of_compact_weights_is_the_expansions():
    from hwsim.sim import blockdiag

    rng = np.random.default_rng(7)
    compact = rng.random((6, 2, 3, 3)) < 0.7                           # 3 groups of 2 output × 2 input channels
    x = np.ones((1, 6, 4, 4), dtype=bool)
    geo = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), mode="down", groups=3)
    small, full = (work.ScatterConv(x=x, w=w, **geo) for w in (compact, work.expand_groups(compact, 3)))
    assert small.compact and not full.compact
    oi = np.array([[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 0, 1]])          # (U, kc): Kc = 4 spans groups
    ci = np.array([[1], [3], [5]])
    np.testing.assert_array_equal(blockdiag.weight_slab(small, oi, ci), blockdiag.weight_slab(full, oi, ci))
    assert blockdiag.weight_slab(small, oi, ci)[0, 2:].sum() == 0       # channel 1 is group 0's: rows 2, 3 see none


def test_lazy_sample_decodes_each_layer_as_the_eager_one(tmp_path, monkeypatch):
    from hwsim.trace import reading
    from hwsim.trace.format import layer_stats
    from hwsim.trace.synth import synthesize

    path = synthesize(tmp_path / "g", model="gpt2_small", seq=8, batch=2, blocks=1, w_density=0.7, a_density=0.5,
                      dz_density=0.3, seed=0)
    tr = load(path)
    eager = tr.sample()
    lazy = tr.sample(lazy=True)
    assert isinstance(lazy, reading.LazySamples) and list(lazy) == list(eager) and len(lazy) == len(eager)
    decoded = []
    monkeypatch.setattr(reading.SampleArchive, "decode",
                        lambda self, nm, _f=reading.SampleArchive.decode: decoded.append(nm) or _f(self, nm))
    for nm, s in eager.items():
        got = lazy[nm]
        assert got.geometry == s.geometry and lazy.archive.geometry(nm) == s.geometry
        assert (got.delta, got.w_density, got.w_bits, got.a_bits, got.input_grad, got.weight_grad) == \
            (s.delta, s.w_density, s.w_bits, s.a_bits, s.input_grad, s.weight_grad)
        np.testing.assert_array_equal(got.dz_levels, s.dz_levels)
        np.testing.assert_array_equal(got.a_mask, s.a_mask)
        assert (got.w_mask is None) == (s.w_mask is None)
        if s.w_mask is not None:
            np.testing.assert_array_equal(got.w_mask, s.w_mask)
        assert lazy[nm] is got                                           # the last layer looked up is kept
        assert layer_stats(got.dz_levels) == layer_stats(s.dz_levels)
    assert decoded == list(eager)                                        # one decode per layer, in order
    lazy[next(iter(eager))]
    assert len(decoded) == len(eager) + 1                                # only the last one is kept
    with pytest.raises(KeyError):
        lazy["no such layer"]
