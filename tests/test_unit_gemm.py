"""Unit tests of hwsim.sim.gemm and hwsim.sim.capacity: GEMM counts on the Cartesian array conserve work,
grow with density, and Kc is sized to the accumulators."""

from __future__ import annotations

import numpy as np
import pytest
from _hwsim_fixtures import cartesian_arch

from hwsim.sim import capacity, gemm, tiling, work

GEO = dict(padding=(1, 1), dilation=(1, 1))


def _conv(x, w, stride=(1, 1), mode="down", **geo):
    return work.ScatterConv(x=x, w=w, stride=stride, mode=mode, **{**GEO, **geo})


@pytest.mark.parametrize("rows,stride,mode", [(2, (1, 1), "down"), (4, (2, 2), "down"), (8, (1, 1), "up"),
                                              (16, (1, 1), "down")])
def test_scatter_counts_conserve_the_cartesian_work(rows, stride, mode):
    rng = np.random.default_rng(rows)
    x = rng.random((4, 3, 9, 9)) < 0.4
    w = rng.random((10, 3, 3, 3)) < 0.5
    conv = _conv(x, w, stride, mode)
    arch = cartesian_arch(rows, rows)
    cw = gemm.scatter_counts(conv, arch, kc=4).work
    hx, wx = x.shape[2:]
    tr, tc, _ = tiling.tile_grid(rows, rows, hx, wx, **tiling.scatter_mapping_inputs(conv, 4, arch.pe.mult_i),
                                 min_balance=arch.pe_array.planar_min_balance)  # the arch's mapping
    cyc, prod = work.cartesian_work(work.group_weight_counts(conv, 4), work.planar_counts(conv, tr, tc), 4, 4)
    assert cw.mult_cycles.shape[1] == rows * rows
    assert cw.mult_cycles.sum() == cyc.sum() and cw.products == prod
    assert cw.groups == -(-conv.w.shape[0] // 4) and cw.stream_reads == cw.groups


def test_forward_products_cover_the_effectual_macs_and_equal_them_for_1x1_kernels():
    rng = np.random.default_rng(1)
    x = rng.random((2, 4, 8, 8)) < 0.5
    w3 = rng.random((6, 4, 3, 3)) < 0.5
    w1 = rng.random((6, 4, 1, 1)) < 0.5
    arch = cartesian_arch(4, 4)
    p3 = gemm.scatter_counts(_conv(x, w3), arch, kc=6).work.products
    eff3 = work.effectual_macs_forward(w3, x, out_hw=(8, 8), stride=(1, 1), **GEO)
    assert p3 >= eff3                                    # border products land outside the plane
    p1 = gemm.scatter_counts(_conv(x, w1, padding=(0, 0)), arch, kc=6).work.products
    assert p1 == work.effectual_macs_forward(w1, x, out_hw=(8, 8), stride=(1, 1), padding=(0, 0), dilation=(1, 1))


def test_weight_grad_products_are_exactly_the_effectual_macs():
    rng = np.random.default_rng(2)
    dz = rng.random((3, 8, 6, 6)) < 0.3
    a = rng.random((3, 4, 6, 6)) < 0.5
    # 1024 accumulator entries hold a pixel's whole field; 36 only one channel of it (chunks of 1)
    for groups, entries in ((1, 32), (2, 32), (1, 36), (2, 36)):
        op = work.PixelOuterProduct(dz=dz, a=a, groups=groups, kernel=(3, 3), stride=(1, 1), **GEO)
        arch = cartesian_arch(4, 4, banks=32 if entries == 32 else 1, bank_entries=entries)
        cw = gemm.weight_grad_counts(op, arch, kc=4).work
        assert cw.products == work.effectual_macs_backward_weight(dz, a, groups=groups, kernel=(3, 3),
                                                                  stride=(1, 1), **GEO)
        assert len(cw.group_pes) == len(cw.group_values) == len(cw.group_interval) == cw.groups == 2


def test_multiplier_cycles_grow_with_density():
    rng = np.random.default_rng(3)
    u = rng.random((4, 3, 12, 12))
    w = rng.random((8, 3, 3, 3)) < 0.5
    arch = cartesian_arch(4, 4)
    sums = [int(gemm.scatter_counts(_conv(u < d, w), arch, kc=8).work.mult_cycles.sum())
            for d in (0.0, 0.05, 0.2, 0.5, 1.0)]
    assert sums[0] == 0 and sums == sorted(sums), sums


def test_sampling_bank_units_only_with_an_rng():
    rng = np.random.default_rng(4)
    conv = _conv(rng.random((2, 3, 8, 8)) < 0.5, rng.random((8, 3, 3, 3)) < 0.5)
    arch = cartesian_arch(2, 2)
    assert gemm.scatter_work(conv, arch, kc=8).stall_units == []
    units = gemm.scatter_work(conv, arch, kc=8, rng=np.random.default_rng(0)).stall_units
    assert 0 < len(units) <= 24
    again = gemm.scatter_work(conv, arch, kc=8, rng=np.random.default_rng(0)).stall_units
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(units, again, strict=True))


def test_every_group_gets_one_round_and_rounds_fill_the_clusters():
    for g, n, clusters in ((5, 1, 1), (5, 4, 2), (3, 8, 16), (10, 2, 4)):
        iv = tiling.group_intervals(g, n, clusters)
        assert len(iv) == g and iv.tolist() == sorted(iv.tolist())
        assert iv.max() + 1 == -(-g // min(clusters, g))
        assert (tiling._group_pes(g, n, 1, clusters) >= 1).all()


def test_mapping_cost_grows_with_density():
    costs = [tiling.mapping_cost(8, 8, 14, 14, 2, 2, groups=4, images=8, i=4, density=d)
             for d in (0.0, 0.1, 0.5, 1.0)]
    assert costs[0] == 0 and costs == sorted(costs)


# ----------------------------------------------------------------------------- capacity


def test_scatter_kc_shrinks_with_the_accumulators_and_overflows_by_name():
    conv = _conv(np.ones((1, 2, 16, 16), bool), np.ones((64, 2, 3, 3), bool))
    # 16×16 plane on 4×4 PEs: 4×4 tiles + halo = 6×6 = 36 entries per output channel
    assert capacity.scatter_entries(conv, 4, 4) == 36
    kcs = [capacity.scatter_kc(conv, cartesian_arch(4, 4, banks=b), name="c", pass_name="forward")
           for b in (32, 8, 2)]
    assert kcs == [min(cartesian_arch(4, 4).pe.output_channel_group, 32 * 32 // 36), 8 * 32 // 36, 2 * 32 // 36]
    with pytest.raises(capacity.AccumulatorOverflow, match=r"layer 'c' pass forward: one output channel needs 36 "):
        capacity.scatter_kc(conv, cartesian_arch(4, 4, banks=1, bank_entries=35), name="c", pass_name="forward")


def test_weight_grad_kc_fits_one_channel_of_the_kernel():
    arch = cartesian_arch(4, 4, banks=2, bank_entries=32)           # 64 entries
    assert capacity.weight_grad_kc((3, 3), arch, name="c") == min(arch.pe.output_channel_group, 64 // 9)
    with pytest.raises(capacity.AccumulatorOverflow, match=r"layer 'big' pass backward_weight: .* needs 81"):
        capacity.weight_grad_kc((9, 9), arch, name="big")


def _sample_rows_as_listed(nw, nx, rng):
    """The sampler as first written: rows collected one by one, then the distinct rows (np.unique over axis 0)."""
    from hwsim.sim import banks, blockdiag

    g = nw.shape[0]
    n, c, ph, t = nx.shape
    shape = (g, n, c, ph, t)
    found = []
    for _ in range(4):
        idx = rng.integers(0, g * n * c * ph * t, size=16 * banks.MAX_UNITS)
        gi, ni, ci, pi, ti = np.unravel_index(idx, shape)
        ok = blockdiag.positive(nw, gi, ci, pi) & (nx[ni, ci, pi, ti] > 0)
        found.extend(np.stack([gi, ni, ci, pi, ti])[:, ok].T)
        if len(found) >= banks.MAX_UNITS:
            break
    if len(found) < banks.MAX_UNITS:
        head = blockdiag.shuffled_pairs(nw, nx, rng, banks.MAX_UNITS * 4)
        if head.shape[0] == 0:
            return (np.zeros(0, dtype=np.int64),) * 5
        found = head
    return tuple(np.unique(np.array(found[:banks.MAX_UNITS * 4]), axis=0)[:banks.MAX_UNITS].T)


@pytest.mark.parametrize("density", [0.0, 0.002, 0.05, 0.6])
def test_bank_unit_sample_is_the_distinct_rows_in_order(density):
    """The sampler keeps flat indices (unique in C order = the rows' lexicographic order): the same units, in the
    same order, with the rng left in the same state, as collecting the rows and taking np.unique(axis=0) — for
    common work (rejection sampling), rare work (the shuffled fallback) and none."""
    for seed in range(5):
        draw = np.random.default_rng(seed)
        nw = (draw.random((3, 5, 2)) < max(density * 4, 0.3)).astype(np.int64) * (density > 0)
        nx = (draw.random((2, 5, 2, 7)) < density).astype(np.int64)
        r1, r2 = np.random.default_rng(seed + 10), np.random.default_rng(seed + 10)
        got, want = gemm._sample_where(nw, nx, r1), _sample_rows_as_listed(nw, nx, r2)
        assert [x.tolist() for x in got] == [x.tolist() for x in want], (density, seed)
        assert r1.integers(1 << 30) == r2.integers(1 << 30)
        if density == 0.6:
            assert len(got[0]) == 24
