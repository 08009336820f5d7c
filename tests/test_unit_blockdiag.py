"""Grouped GEMMs counted block by block (hwsim.sim.blockdiag) give the dense counts' numbers exactly."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.sim import blockdiag, work


def _conv(rng, *, groups, o, c, k, mode, stride, density=0.4):
    w = work.expand_groups(rng.random((o, c // groups, k, k)) < density, groups)
    x = rng.random((2, c, 7, 6)) < 0.5
    return work.ScatterConv(x=x, w=w, stride=(stride, stride), padding=(k // 2, k // 2), dilation=(1, 1),
                            mode=mode, groups=groups)


@pytest.mark.parametrize(("groups", "o", "c", "k", "mode", "stride", "kc"),
                         [(4, 16, 12, 1, "down", 1, 2), (3, 12, 9, 3, "down", 2, 4), (6, 12, 24, 3, "up", 1, 1),
                          (2, 8, 8, 1, "up", 1, 4)])
def test_block_counts_equal_the_dense_counts_and_work(groups, o, c, k, mode, stride, kc):
    rng = np.random.default_rng(groups * 7 + k)
    conv = _conv(rng, groups=groups, o=o, c=c, k=k, mode=mode, stride=stride)
    assert blockdiag.applies(conv, kc)
    dense = work.group_weight_counts(conv, kc)
    blocks = blockdiag.group_weight_counts(conv, kc)
    assert blocks.shape == dense.shape
    gr, gq, cb, _ = blocks.blocks.shape
    for g in range(dense.shape[0]):  # the blocks are the diagonal; everything else is zero
        i = g // gq
        assert np.array_equal(dense[g, i * cb:(i + 1) * cb], blocks.blocks[i, g % gq])
        assert not dense[g, :i * cb].any() and not dense[g, (i + 1) * cb:].any()
    nx = work.planar_counts(conv, 2, 3)
    for f, i_ in ((4, 4), (1, 3)):
        cyc_d, prod_d = work.cartesian_work(dense, nx, f, i_)
        cyc_b, prod_b = blockdiag.cartesian_work(blocks, nx, f, i_)
        assert prod_b == prod_d and np.array_equal(cyc_b, cyc_d)
    assert np.array_equal(blockdiag.work_pairs(blocks, nx), blockdiag.work_pairs(dense, nx))
    gi, ni, ci, pi, ti = (rng.integers(0, n, 500) for n in (dense.shape[0], nx.shape[0], dense.shape[1],
                                                           dense.shape[2], nx.shape[3]))
    assert np.array_equal(blockdiag.positive(blocks, gi, ci, pi), dense[gi, ci, pi] > 0)


def test_block_counts_apply_only_when_kc_groups_stay_inside_one_conv_group():
    rng = np.random.default_rng(0)
    conv = _conv(rng, groups=4, o=16, c=12, k=1, mode="down", stride=1)
    assert blockdiag.applies(conv, 4) and not blockdiag.applies(conv, 3)  # 4 channels per group
    assert not blockdiag.applies(work.ScatterConv(x=conv.x, w=conv.w, stride=(1, 1), padding=(0, 0),
                                                  dilation=(1, 1), mode="down"), 4)  # no groups promised


def test_grouped_gemm_work_is_the_same_through_the_dense_path():
    """scatter_counts on a grouped conv: the block path and the dense path (groups=1) give equal work."""
    from dataclasses import replace

    from hwsim.arch import load_arch
    from hwsim.sim import gemm

    arch = load_arch("scnn")
    rng = np.random.default_rng(4)
    conv = _conv(rng, groups=4, o=32, c=16, k=1, mode="down", stride=1)
    a = gemm.scatter_counts(conv, arch, kc=8)
    b = gemm.scatter_counts(replace(conv, groups=1), arch, kc=8)
    assert np.array_equal(a.work.mult_cycles, b.work.mult_cycles) and a.work.products == b.work.products
    ua, ub = a.sample_units(np.random.default_rng(1)), b.sample_units(np.random.default_rng(1))
    assert len(ua) == len(ub) > 0
    assert all(np.array_equal(x, y) for u, v in zip(ua, ub, strict=True) for x, y in zip(u, v, strict=True))


@pytest.mark.parametrize(("groups", "k", "stride", "pad"), [(3, 3, 2, 1), (4, 1, 1, 0)])
def test_effectual_macs_of_grouped_weights_read_the_blocks_only_with_the_same_result(groups, k, stride, pad):
    rng = np.random.default_rng(11)
    w = work.expand_groups(rng.random((12, 24 // groups, k, k)) < 0.5, groups)
    a = rng.random((2, 24, 7, 7)) < 0.5
    geo = dict(stride=(stride, stride), padding=(pad, pad), dilation=(1, 1))
    p = (7 + 2 * pad - k) // stride + 1
    dz = rng.random((2, 12, p, p)) < 0.3
    assert work.effectual_macs_forward(w, a, out_hw=(p, p), groups=groups, **geo) == \
        work.effectual_macs_forward(w, a, out_hw=(p, p), **geo)
    assert work.effectual_macs_backward_data(w, dz, in_hw=(7, 7), groups=groups, **geo) == \
        work.effectual_macs_backward_data(w, dz, in_hw=(7, 7), **geo)


def test_real_weights_of_a_grouped_layer_are_the_masked_weights_in_order():
    from hwsim.sim.operands import Operands, real_weights

    rng = np.random.default_rng(2)
    compact = rng.random((12, 2, 3, 3)) < 0.5
    w, struct = work.expand_groups(compact, 4), work.expand_groups(np.ones_like(compact), 4)
    ops = Operands(name="g", w=w, w_struct=struct, a=np.ones((1, 8, 4, 4), bool), dz=np.ones((1, 12, 4, 4), bool),
                   dz_bits=2, groups=4, stride=(1, 1), padding=(1, 1), dilation=(1, 1), out_density=1.0)
    assert np.array_equal(real_weights(ops), w[struct])
    assert np.array_equal(real_weights(ops), compact.reshape(-1))
    assert ops.weight_count == int(struct.sum()) == compact.size


@pytest.mark.parametrize("blocks", [True, False])
def test_shuffled_pairs_are_the_head_of_the_shuffled_work_pairs_with_the_same_draws(blocks):
    rng = np.random.default_rng(9)
    conv = _conv(rng, groups=3, o=12, c=9, k=3, mode="down", stride=2)
    nw = blockdiag.group_weight_counts(conv, 2) if blocks else work.group_weight_counts(conv, 2)
    nx = work.planar_counts(conv, 2, 2)
    allw = blockdiag.work_pairs(nw, nx)
    r1, r2 = np.random.default_rng(4), np.random.default_rng(4)
    want = allw[r1.permutation(allw.shape[0])][:17]
    got = blockdiag.shuffled_pairs(nw, nx, r2, 17)
    assert got.shape == (17, 5) and np.array_equal(got, want)
    assert r1.random() == r2.random()  # the generator moved on alike
