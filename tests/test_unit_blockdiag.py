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
