"""The simulator's fast paths equal the straightforward computations they replace (exactly).

The golden test (test_wholerun_golden.py) pins whole results; these pin the pieces on random inputs,
including the corner cases the golden traces may not reach (ties in the SimPy event order, empty
segments, segments longer than a uint8 counter, all-ones broadcast masks).
"""

from __future__ import annotations

import numpy as np
import pytest
import simpy
from _hwsim_fixtures import cartesian_arch

from hwsim.sim import gemm, work
from hwsim.sim.model import simulate_intervals, transfer_cycles


def _per_pe_reference(busy, load_bytes, store_bytes, *, dram_bytes_per_cycle):
    """The former model: one SimPy process and one timeout per PE and interval."""
    nb, npe = busy.shape
    if nb == 0:
        return 0
    busy_l = busy.tolist()
    load_t = [transfer_cycles(x, dram_bytes_per_cycle) for x in load_bytes.tolist()]
    store_t = [transfer_cycles(x, dram_bytes_per_cycle) for x in store_bytes.tolist()]
    env = simpy.Environment()
    dram = simpy.Resource(env, capacity=1)
    loaded, done, start = ([env.event() for _ in range(nb)] for _ in range(3))
    finished = env.event()
    arrivals = [0] * nb

    def loader():
        for b in range(nb):
            if b >= 2:
                yield done[b - 2]
            if load_t[b]:
                with dram.request() as req:
                    yield req
                    yield env.timeout(load_t[b])
            loaded[b].succeed()

    def coordinator():
        for b in range(nb):
            yield loaded[b]
            if b:
                yield done[b - 1]
            start[b].succeed()

    def pe(p):
        for b in range(nb):
            yield start[b]
            if busy_l[b][p]:
                yield env.timeout(busy_l[b][p])
            arrivals[b] += 1
            if arrivals[b] == npe:
                done[b].succeed()

    def writer():
        for b in range(nb):
            yield done[b]
            if store_t[b]:
                with dram.request() as req:
                    yield req
                    yield env.timeout(store_t[b])
        finished.succeed()

    env.process(loader())
    env.process(coordinator())
    for p in range(npe):
        env.process(pe(p))
    env.process(writer())
    env.run(until=finished)
    return int(env.now)


def test_one_barrier_timeout_per_interval_gives_the_per_pe_makespan():
    rng = np.random.default_rng(0)
    for trial in range(400):
        nb, npe = int(rng.integers(1, 7)), int(rng.integers(1, 6))
        busy = rng.integers(0, 4, (nb, npe)) * int(rng.integers(1, 3))   # small values: many ties
        load = rng.integers(0, 4, nb) * 16.0
        store = rng.integers(0, 4, nb) * 16.0
        bw = float(rng.choice([16.0, 8.0, np.inf]))
        assert simulate_intervals(busy, load, store, dram_bytes_per_cycle=bw) == \
            _per_pe_reference(busy, load, store, dram_bytes_per_cycle=bw), trial


def _cumsum_segments(x, edges, axis):
    x = np.moveaxis(x, axis, -1)
    cs = np.concatenate([np.zeros(x.shape[:-1] + (1,), np.int64), np.cumsum(x, axis=-1, dtype=np.int64)], axis=-1)
    return np.moveaxis(cs[..., edges[1:]] - cs[..., edges[:-1]], -1, axis)


@pytest.mark.parametrize("dtype", [bool, np.int64, np.int32])
def test_segment_sum_matches_prefix_sums(dtype):
    rng = np.random.default_rng(1)
    for n, parts in ((7, 3), (5, 8), (300, 2), (70000, 1), (1, 4)):
        x = rng.random((2, n, 3)) < 0.9 if dtype is bool else rng.integers(0, 50, (2, n, 3)).astype(dtype)
        edges = work.split_edges(n, parts)
        got = work.segment_sum(x, edges, axis=1)
        assert got.dtype == np.int64 and np.array_equal(got, _cumsum_segments(x, edges, 1))
    x = rng.random((4, 9)) < 0.5
    inner = np.array([2, 2, 5, 5, 7])   # empty segments and edges not covering the axis
    assert np.array_equal(work.segment_sum(x, inner, axis=1), _cumsum_segments(x, inner, 1))


def test_all_ones_views_count_like_materialised_ones():
    rng = np.random.default_rng(2)
    w = rng.random((12, 5, 3, 3)) < 0.6
    for mode, stride in (("down", (2, 2)), ("down", (1, 1)), ("up", (2, 2))):
        lazy = work.ScatterConv(x=work.ones_view((3, 5, 11, 9)), w=w, stride=stride, padding=(1, 1),
                                dilation=(1, 1), mode=mode)
        real = work.ScatterConv(x=np.ones((3, 5, 11, 9), bool), w=w, stride=stride, padding=(1, 1),
                                dilation=(1, 1), mode=mode)
        assert np.array_equal(work.planar_counts(lazy, 4, 3), work.planar_counts(real, 4, 3))
        arch = cartesian_arch(4, 4)
        assert gemm.scatter_counts(lazy, arch, kc=4).work.products == gemm.scatter_counts(real, arch, kc=4).work.products
    geo = dict(out_hw=(5, 4), kernel=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1))
    assert np.array_equal(work.patch_counts(work.ones_view((3, 7, 9, 8)), chunk=3, **geo),
                          work.patch_counts(np.ones((3, 7, 9, 8), bool), chunk=3, **geo))
    dz = rng.random((3, 12, 5, 4)) < 0.3
    a = work.ones_view((3, 6, 9, 8))
    geo = dict(groups=1, kernel=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1))
    arch = cartesian_arch(4, 4, banks=2)                                  # 2 × 32 = 64 accumulator entries
    lazy_w = gemm.weight_grad_counts(work.PixelOuterProduct(dz=dz, a=a, **geo), arch, kc=8).work
    real_w = gemm.weight_grad_counts(work.PixelOuterProduct(dz=dz, a=np.ones(a.shape, bool), **geo), arch, kc=8).work
    assert lazy_w.products == real_w.products and np.array_equal(lazy_w.mult_cycles, real_w.mult_cycles)


def _brute_forward(w, a, *, out_hw, stride, padding, dilation):
    total = 0
    ap = np.pad(a, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    for r in range(w.shape[2]):
        for s in range(w.shape[3]):
            h0, w0 = r * dilation[0], s * dilation[1]
            col = ap[:, :, h0:h0 + (out_hw[0] - 1) * stride[0] + 1:stride[0],
                     w0:w0 + (out_hw[1] - 1) * stride[1] + 1:stride[1]]
            total += int(col.sum(axis=(0, 2, 3), dtype=np.int64) @ w.sum(axis=0, dtype=np.int64)[:, r, s])
    return total


def test_effectual_macs_with_the_batch_summed_first():
    rng = np.random.default_rng(3)
    for n in (1, 3, 300):  # 300 images: more than a uint8 counter holds
        w = rng.random((4, 3, 3, 3)) < 0.5
        a = rng.random((n, 3, 7, 6)) < 0.5
        geo = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2))
        out_hw = ((7 + 2 - 2 - 1) // 2 + 1, (6 - 4 - 1) // 1 + 1)
        assert work.effectual_macs_forward(w, a, out_hw=out_hw, **geo) == _brute_forward(w, a, out_hw=out_hw, **geo)


def test_run_length_fillers_from_packed_bytes_equal_counting_every_run():
    from hwsim.sim.traffic import run_length_fillers

    def every_run(m, rl):
        flat = np.flatnonzero(m.ravel())
        gaps = np.diff(np.concatenate([[-1], flat, [m.size]])) - 1
        return int((gaps // (1 << rl)).sum())

    rng = np.random.default_rng(4)
    for trial in range(300):
        n = int(rng.integers(1, 200))
        m = rng.random(n) < float(rng.choice([0.0, 0.01, 0.05, 0.3, 0.9]))
        for rl in (2, 3, 4, 5):
            assert run_length_fillers(m, rl) == every_run(m, rl), (trial, rl)
    levels = np.array([0, 0, 3, 0, -1] + [0] * 40)   # non-bool masks: non-zeros count
    assert run_length_fillers(levels, 4) == every_run(levels != 0, 4)


def test_vectorised_bank_stall_rate_equals_the_per_unit_model():
    from hwsim.sim import banks

    def per_unit(units, **kw):
        loads = [banks.unit_bank_loads(ax, ay, f=kw["f"], i=kw["i"], banks=kw["banks"], max_cycles=kw["max_cycles"])
                 for ax, ay in units]
        st, cyc = banks.queue_stalls(loads, depth=kw["depth"])
        return st / cyc if cyc else 0.0

    rng = np.random.default_rng(5)
    for trial in range(60):
        units = [(rng.integers(0, 40, int(rng.integers(0, 30))), rng.integers(0, 40, int(rng.integers(0, 60))))
                 for _ in range(int(rng.integers(0, 8)))]
        kw = dict(f=int(rng.integers(1, 5)), i=int(rng.integers(1, 5)), banks=int(rng.choice([4, 8, 32])),
                  depth=int(rng.integers(0, 5)), max_cycles=int(rng.choice([5, 96])))
        assert banks.stall_rate(units, **kw) == per_unit(units, **kw), trial


def test_per_unit_split_and_minimum_equal_the_per_unit_loop():
    """banks.Units.from_runs / gemm._unit_min (one pass over all sampled units) against np.split and one min() per
    unit, with empty units first, in the middle and last, and negative addresses (shifted up only below 0, as the
    sampler did)."""
    from hwsim.sim import banks

    def split(x, unit, nu):
        return list(banks.Units.from_runs(x, unit, x[:0], np.zeros(0, dtype=np.int64), nu))

    rng = np.random.default_rng(3)
    for trial in range(40):
        nu = int(rng.integers(1, 9))
        unit = np.sort(rng.choice(nu, size=int(rng.integers(0, 40))))
        x = rng.integers(-20, 30, unit.size)
        counts = np.bincount(unit, minlength=nu)
        want = np.split(x, np.cumsum(counts)[:-1])
        got = [ax for ax, _ in split(x, unit, nu)]
        assert len(got) == nu and all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(got, want, strict=True)), trial
        mins = gemm._unit_min(x, unit, nu)
        assert [int(m) for m in mins] == [int(w.min()) if w.size else 0 for w in want], trial
        shifted = [ax for ax, _ in split(x - np.minimum(mins, 0)[unit], unit, nu)]
        assert all(np.array_equal(s, w - min(int(w.min()), 0) if w.size else w) for s, w in zip(shifted, want, strict=True))
