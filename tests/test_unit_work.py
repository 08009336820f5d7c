"""Unit tests of hwsim.sim.work: exact effectual MACs (against brute force), count arrays, the Cartesian product."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hwsim.sim import work

GEOS = [  # (stride, padding, dilation, kernel)
    ((1, 1), (1, 1), (1, 1), (3, 3)),
    ((2, 2), (1, 1), (1, 1), (3, 3)),
    ((2, 1), (0, 2), (1, 2), (2, 3)),
    ((1, 1), (0, 0), (1, 1), (1, 1)),
]


def _out(h: int, kernel: int, stride: int, pad: int, dil: int) -> int:
    return (h + 2 * pad - dil * (kernel - 1) - 1) // stride + 1


def _pairs(n, k, c, p, q, geo, in_hw):
    """Every (n, k, c, r, s, p, q, h, w) whose tap lands inside the input."""
    (sh, sw), (ph, pw), (dh, dw), (kr, ks) = geo
    for nn, kk, cc, r, s, pp, qq in itertools.product(range(n), range(k), range(c), range(kr), range(ks), range(p),
                                                      range(q)):
        h, w = pp * sh + r * dh - ph, qq * sw + s * dw - pw
        if 0 <= h < in_hw[0] and 0 <= w < in_hw[1]:
            yield nn, kk, cc, r, s, pp, qq, h, w


def _case(seed, geo, groups=1):
    rng = np.random.default_rng(seed)
    n, c, k, hw = 2, 2 * groups, 2 * groups, (6, 5)
    (sh, sw), (ph, pw), (dh, dw), (kr, ks) = geo
    p, q = _out(hw[0], kr, sh, ph, dh), _out(hw[1], ks, sw, pw, dw)
    w = rng.random((k, c // groups, kr, ks)) < 0.5
    a = rng.random((n, c) + hw) < 0.5
    dz = rng.random((n, k, p, q)) < 0.4
    return w, a, dz, (p, q), hw


@pytest.mark.parametrize("geo", GEOS)
def test_effectual_macs_of_all_three_passes_match_brute_force(geo):
    w, a, dz, (p, q), hw = _case(1, geo)
    wf = work.expand_groups(w, 1)
    kw = dict(stride=geo[0], padding=geo[1], dilation=geo[2])
    fwd = bd = bw = 0
    for nn, kk, cc, r, s, pp, qq, h, x in _pairs(2, wf.shape[0], wf.shape[1], p, q, geo, hw):
        fwd += wf[kk, cc, r, s] and a[nn, cc, h, x]
        bd += wf[kk, cc, r, s] and dz[nn, kk, pp, qq]
        bw += dz[nn, kk, pp, qq] and a[nn, cc, h, x]
    assert work.effectual_macs_forward(wf, a, out_hw=(p, q), **kw) == fwd
    assert work.effectual_macs_backward_data(wf, dz, in_hw=hw, **kw) == bd
    assert work.effectual_macs_backward_weight(dz, a, groups=1, kernel=geo[3], **kw) == bw


@pytest.mark.parametrize("geo", GEOS)
@pytest.mark.parametrize("groups", [1, 2])
def test_dense_masks_give_the_dense_valid_macs_in_every_pass(geo, groups):
    w, a, dz, (p, q), hw = _case(2, geo, groups)
    ones_w, ones_a, ones_dz = np.ones_like(w), np.ones_like(a), np.ones_like(dz)
    wf = work.expand_groups(ones_w, groups)
    kw = dict(stride=geo[0], padding=geo[1], dilation=geo[2])
    dense = work.dense_valid_macs(n=2, k=w.shape[0], c_per_group=w.shape[1], in_hw=hw, out_hw=(p, q),
                                  kernel=geo[3], **kw)
    assert work.effectual_macs_forward(wf, ones_a, out_hw=(p, q), **kw) == dense
    assert work.effectual_macs_backward_data(wf, ones_dz, in_hw=hw, **kw) == dense
    assert work.effectual_macs_backward_weight(ones_dz, ones_a, groups=groups, kernel=geo[3], **kw) == dense


def test_dense_valid_macs_by_hand():
    # 3×3 input, 3×3 kernel, pad 1, stride 1: 3×3 outputs; valid taps per axis = 2 + 3 + 2 = 7 → 49 per (n, k, c)
    assert work.dense_valid_macs(n=2, k=3, c_per_group=4, in_hw=(3, 3), out_hw=(3, 3), kernel=(3, 3),
                                 stride=(1, 1), padding=(1, 1), dilation=(1, 1)) == 2 * 3 * 4 * 49


def test_effectual_macs_grow_with_density():
    rng = np.random.default_rng(3)
    u = rng.random((2, 4, 8, 8))
    w = np.ones((6, 4, 3, 3), bool)
    kw = dict(out_hw=(8, 8), stride=(1, 1), padding=(1, 1), dilation=(1, 1))
    macs = [work.effectual_macs_forward(w, u < d, **kw) for d in (0.0, 0.1, 0.3, 0.6, 1.0)]
    assert macs[0] == 0 and all(x < y for x, y in zip(macs, macs[1:], strict=False)), macs


def test_expand_groups_is_block_diagonal():
    w = np.arange(4 * 2 * 1 * 1).reshape(4, 2, 1, 1) + 1
    full = work.expand_groups(w, 2)[:, :, 0, 0]
    assert full.shape == (4, 4)
    assert np.array_equal(full[:2, :2], w[:2, :, 0, 0]) and np.array_equal(full[2:, 2:], w[2:, :, 0, 0])
    assert not full[:2, 2:].any() and not full[2:, :2].any()
    assert work.expand_groups(w, 1) is w


def test_split_edges_cover_the_range_in_near_equal_pieces():
    for n, parts in [(10, 3), (3, 5), (0, 2), (16, 16)]:
        e = work.split_edges(n, parts)
        assert e[0] == 0 and e[-1] == n and len(e) == parts + 1
        sizes = np.diff(e)
        assert sizes.min() >= 0 and sizes.max() - sizes.min() <= 1


def test_cartesian_work_by_hand():
    # one group, one channel, one phase: 5 weights (F = 4 → 2 vectors) × tiles of 3 and 0 activations (I = 2)
    nw = np.array([[[5]]])
    nx = np.array([[[[3, 0]]]])
    cyc, prod = work.cartesian_work(nw, nx, 4, 2)
    assert cyc.tolist() == [[[4, 0]]] and prod == 15


def test_cartesian_work_float_path_equals_integer_products():
    rng = np.random.default_rng(4)
    nw = rng.integers(0, 30, (3, 5, 2))
    nx = rng.integers(0, 40, (2, 5, 2, 6))
    cyc, prod = work.cartesian_work(nw, nx, 4, 4)
    ca, cb = -(-nw // 4), -(-nx // 4)
    expect = np.einsum("gcf,ncft->gnt", ca, cb)
    assert np.array_equal(cyc, expect)
    assert prod == int(np.einsum("gcf,ncft->", nw, nx))


@pytest.mark.parametrize("mode,stride", [("down", (1, 1)), ("down", (2, 2)), ("down", (2, 3)), ("up", (2, 2))])
def test_planar_counts_partition_every_non_zero_into_one_phase_and_tile(mode, stride):
    rng = np.random.default_rng(5)
    x = rng.random((2, 3, 9, 7)) < 0.4
    conv = work.ScatterConv(x=x, w=np.ones((4, 3, 3, 3), bool), stride=stride, padding=(1, 1), dilation=(1, 1),
                            mode=mode)
    cnt = work.planar_counts(conv, 3, 2)
    assert cnt.shape == (2, 3, len(conv.phases), 6)
    assert np.array_equal(cnt.sum(axis=(2, 3)), x.sum(axis=(2, 3)))


def test_group_weight_counts_conserve_the_weights_of_each_channel():
    rng = np.random.default_rng(6)
    w = rng.random((10, 3, 3, 3)) < 0.5
    for stride in ((1, 1), (2, 2)):
        conv = work.ScatterConv(x=np.ones((1, 3, 5, 5), bool), w=w, stride=stride, padding=(1, 1), dilation=(1, 1),
                                mode="down")
        nw = work.group_weight_counts(conv, 4)
        assert nw.shape == (3, 3, len(conv.phases))                 # ⌈10 / 4⌉ groups
        assert np.array_equal(nw.sum(axis=(0, 2)), w.sum(axis=(0, 2, 3)))


def test_patch_counts_by_hand():
    a = np.ones((1, 2, 3, 3), bool)
    out = work.patch_counts(a, chunk=2, out_hw=(3, 3), kernel=(3, 3), stride=(1, 1), padding=(1, 1),
                            dilation=(1, 1))
    # receptive field of each output pixel inside a 3×3 input: corners 4, edges 6, centre 9 (× 2 channels)
    assert out[0, 0].tolist() == [[8, 12, 8], [12, 18, 12], [8, 12, 8]]
    split = work.patch_counts(a, chunk=1, out_hw=(3, 3), kernel=(3, 3), stride=(1, 1), padding=(1, 1),
                              dilation=(1, 1))
    assert split.shape == (1, 2, 3, 3) and np.array_equal(split.sum(axis=1), out[:, 0])


def test_pixel_outer_product_chunks_fill_the_accumulators():
    op = work.PixelOuterProduct(dz=np.ones((1, 8, 4, 4), bool), a=np.ones((1, 6, 4, 4), bool), groups=2,
                                kernel=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1))
    assert op.field_chunk(kc=4, acc_entries=1024) == 3          # ≤ C/g = 3 channels
    assert op.field_chunk(kc=4, acc_entries=72) == 2            # 4 × 2 × 9 = 72 entries
    assert op.field_chunk(kc=8, acc_entries=10) == 1            # at least one channel
    assert op.field_counts(1, chunk=3).shape == (1, 1, 4, 4)


@pytest.mark.parametrize(("shape", "axis", "size"), [((37, 11), 0, 8), ((3, 29, 2, 5), 1, 4), ((16, 5), 0, 8),
                                                     ((5, 300, 3), 1, 256), ((4, 7), 0, 1), ((2, 3), 0, 5)])
@pytest.mark.parametrize("dtype", ["bool", "uint8", "int64"])
def test_block_sums_equal_segment_sums_every_size_entries(shape, axis, size, dtype):
    rng = np.random.default_rng(3)
    x = {"bool": lambda: rng.random(shape) < 0.5, "uint8": lambda: rng.integers(0, 256, shape).astype(np.uint8),
         "int64": lambda: rng.integers(-5, 6, shape)}[dtype]()
    n = shape[axis]
    edges = np.minimum(np.arange(-(-n // size) + 1) * size, n)
    got = work.block_sums(x, size, axis)
    assert got.dtype == np.int64
    assert np.array_equal(got, work.segment_sum(x, edges, axis))
    # by hand: the first block's sum
    first = np.take(x, range(min(size, n)), axis=axis).astype(np.int64).sum(axis=axis)
    assert np.array_equal(np.take(got, 0, axis=axis), first)
    ones = work.ones_view(shape)  # an all-ones broadcast view is counted from one line
    assert np.array_equal(work.block_sums(ones, size, axis), work.segment_sum(np.ones(shape, bool), edges, axis))


def test_group_weight_counts_of_a_transposed_multi_tap_view_match_segment_sums():
    rng = np.random.default_rng(5)
    w = (rng.random((6, 19, 3, 3)) < 0.4).transpose(1, 0, 2, 3)  # backward-data's Wᵀ view
    conv = work.ScatterConv(x=np.ones((1, 6, 5, 5), bool), w=w, stride=(2, 2), padding=(1, 1), dilation=(1, 1),
                            mode="down")
    got = work.group_weight_counts(conv, 4)
    edges = np.minimum(np.arange(6) * 4, 19)
    for p, ph in enumerate(conv.phases):
        r, s = conv.w_phase(ph)
        want = work.segment_sum(w[:, :, r][:, :, :, s].astype(np.int64).sum(axis=(2, 3)), edges, axis=0)
        assert np.array_equal(got[:, :, p], want)


def test_block_sums_of_a_transposed_plane_equal_segment_sums():
    rng = np.random.default_rng(8)
    for x in (rng.random((13, 21)) < 0.5, rng.integers(0, 256, (9, 30)).astype(np.uint8)):
        xt = x.T  # F-ordered view, as backward-data's Wᵀ plane
        edges = np.minimum(np.arange(-(-xt.shape[0] // 4) + 1) * 4, xt.shape[0])
        assert np.array_equal(work.block_sums(xt, 4), work.segment_sum(np.ascontiguousarray(xt), edges, 0))
