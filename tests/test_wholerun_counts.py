"""The sparse run's per-iteration counts computed the cheap way equal the tap-by-tap definitions (issue 21 item 2).

The effectual MACs and receptive-field counts of :mod:`hwsim.sim.work` are sums over the R·S kernel taps; they are
now computed with R + S reductions (separable field sums, summed-area tables). Each is compared here with the
tap-by-tap sum it replaced, on random masks of many geometries (stride, padding, dilation, groups, a batch of one),
and by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.sim import work


def _taps(xp, r, s, out_hw, stride, dilation):
    h0, w0 = r * dilation[0], s * dilation[1]
    p, q = out_hw
    return xp[..., h0:h0 + (p - 1) * stride[0] + 1:stride[0], w0:w0 + (q - 1) * stride[1] + 1:stride[1]]


def _pad(x, pad):
    return np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))


def ref_forward(w_full, a, *, out_hw, stride, padding, dilation, groups=1):
    wk = work._tap_weights(w_full, groups, a.shape[1])
    ap = _pad(a.sum(axis=0, dtype=np.int64)[None], padding)[0]
    return sum(int(_taps(ap, r, s, out_hw, stride, dilation).sum(axis=(1, 2)) @ wk[:, r, s])
               for r in range(w_full.shape[2]) for s in range(w_full.shape[3]))


def ref_backward_data(w_full, dz, *, in_hw, stride, padding, dilation):
    n, k, p, q = dz.shape
    wc = w_full.sum(axis=1, dtype=np.int64)
    dn = dz.sum(axis=0, dtype=np.int64)
    total = 0
    for r in range(w_full.shape[2]):
        rv = work._valid_range(np.arange(p) * stride[0] + r * dilation[0] - padding[0], in_hw[0])
        for s in range(w_full.shape[3]):
            sv = work._valid_range(np.arange(q) * stride[1] + s * dilation[1] - padding[1], in_hw[1])
            total += int(dn[:, rv, sv].sum(axis=(1, 2)) @ wc[:, r, s])
    return total


def ref_backward_weight(dz, a, *, groups, stride, padding, dilation, kernel):
    n, k, p, q = dz.shape
    c = a.shape[1]
    total = 0
    for gi in range(groups):
        dzc = dz[:, gi * (k // groups):(gi + 1) * (k // groups)].sum(axis=1, dtype=np.int64)
        agp = _pad(a[:, gi * (c // groups):(gi + 1) * (c // groups)].sum(axis=1, keepdims=True, dtype=np.int64),
                   padding)[:, 0]
        for r in range(kernel[0]):
            for s in range(kernel[1]):
                total += int((_taps(agp, r, s, (p, q), stride, dilation) * dzc).sum())
    return total


def ref_patch_counts(a, *, chunk, out_hw, kernel, stride, padding, dilation):
    n, c = a.shape[:2]
    nch = -(-c // chunk)
    per = np.stack([a[:, i * chunk:(i + 1) * chunk].sum(axis=1, dtype=np.int64) for i in range(nch)], axis=1)
    pp = _pad(per, padding)
    return sum(_taps(pp, r, s, out_hw, stride, dilation) for r in range(kernel[0]) for s in range(kernel[1]))


def _geometries():
    for st, pd, hw in (((1, 1), (0, 0), (1, 1)), ((2, 2), (0, 0), (7, 6)), ((1, 2), (1, 0), (4, 5))):  # one tap
        p, q = (hw[0] + 2 * pd[0] - 1) // st[0] + 1, (hw[1] + 2 * pd[1] - 1) // st[1] + 1
        for groups, n in ((1, 3), (2, 1)):
            yield dict(kernel=(1, 1), stride=st, dilation=(1, 1), padding=pd, hw=hw, pq=(p, q), groups=groups, n=n,
                       density=0.5)
    rng = np.random.default_rng(7)
    for _ in range(60):
        kr, ks = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        st = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        dl = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        pd = (int(rng.integers(0, kr)), int(rng.integers(0, ks)))
        h, w = int(rng.integers(1, 13)), int(rng.integers(1, 13))
        p = (h + 2 * pd[0] - dl[0] * (kr - 1) - 1) // st[0] + 1
        q = (w + 2 * pd[1] - dl[1] * (ks - 1) - 1) // st[1] + 1
        if p < 1 or q < 1:
            continue
        groups = int(rng.choice([1, 1, 2, 3]))
        yield dict(kernel=(kr, ks), stride=st, dilation=dl, padding=pd, hw=(h, w), pq=(p, q), groups=groups,
                   n=int(rng.choice([1, 2, 5])), density=float(rng.choice([0.05, 0.4, 0.9, 1.0])))


GEOS = list(_geometries())


@pytest.mark.parametrize("g", GEOS, ids=[f"g{i}" for i in range(len(GEOS))])
def test_effectual_macs_and_field_counts_equal_the_tap_by_tap_sums(g):
    rng = np.random.default_rng(sum(g["hw"]) * 31 + g["kernel"][0])
    n, groups, d = g["n"], g["groups"], g["density"]
    c, k = 2 * groups, 3 * groups
    geo = dict(stride=g["stride"], padding=g["padding"], dilation=g["dilation"])
    a = rng.random((n, c) + g["hw"]) < d
    dz = rng.random((n, k) + g["pq"]) < d
    w = rng.random((k, c // groups) + g["kernel"]) < d
    wf = work.expand_groups(w, groups)
    assert work.effectual_macs_forward(wf, a, out_hw=g["pq"], groups=groups, **geo) == \
        ref_forward(wf, a, out_hw=g["pq"], groups=groups, **geo)
    assert work.effectual_macs_forward(w, a, out_hw=g["pq"], groups=groups, **geo) == \
        ref_forward(w, a, out_hw=g["pq"], groups=groups, **geo)  # compact grouped weights
    assert work.effectual_macs_backward_data(wf, dz, in_hw=g["hw"], **geo) == \
        ref_backward_data(wf, dz, in_hw=g["hw"], **geo)
    assert work.effectual_macs_backward_weight(dz, a, groups=groups, kernel=g["kernel"], **geo) == \
        ref_backward_weight(dz, a, groups=groups, kernel=g["kernel"], **geo)
    for chunk in (1, 2, 3):
        got = work.patch_counts(a, chunk=chunk, out_hw=g["pq"], kernel=g["kernel"], **geo)
        assert got.dtype == np.int64
        assert np.array_equal(got, ref_patch_counts(a, chunk=chunk, out_hw=g["pq"], kernel=g["kernel"], **geo))


def test_field_sums_by_hand():
    # a 3×3 plane of ones, 3×3 kernel, padding 1: each output pixel's field holds 4 (corner), 6 (edge) or 9 (centre)
    x = np.ones((1, 1, 3, 3), dtype=np.int64)
    out = work.field_sums(x, out_hw=(3, 3), kernel=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1))
    assert out[0, 0].tolist() == [[4, 6, 4], [6, 9, 6], [4, 6, 4]]
    # stride 2, dilation 2, no padding, a 5×5 plane numbered 0..24: the one output reads rows/cols 0, 2, 4
    x = np.arange(25, dtype=np.int64).reshape(1, 1, 5, 5)
    out = work.field_sums(x, out_hw=(1, 1), kernel=(3, 3), stride=(2, 2), padding=(0, 0), dilation=(2, 2))
    assert out[0, 0, 0, 0] == sum(r * 5 + s for r in (0, 2, 4) for s in (0, 2, 4))


def test_backward_data_effectual_macs_by_hand():
    # one δ̃z non-zero at the corner (0, 0) of a 3×3 output, 3×3 all-ones kernel, padding 1, 3×3 input: the taps
    # that reach an input pixel from (0, 0) are r, s ∈ {1, 2} → 4 MACs
    dz = np.zeros((1, 1, 3, 3), dtype=bool)
    dz[0, 0, 0, 0] = True
    w = np.ones((1, 1, 3, 3), dtype=bool)
    assert work.effectual_macs_backward_data(w, dz, in_hw=(3, 3), stride=(1, 1), padding=(1, 1),
                                             dilation=(1, 1)) == 4


@pytest.mark.parametrize("vmax", [1, 1300, 1400, 100_000])
def test_field_sums_in_narrow_integers_equal_the_wide_sums(vmax):
    # the sums run in int16 while vmax·R·S < 2**15 (1300·25 = 32,500), else int32 or int64: counts at vmax on every
    # pixel reach the bound exactly where the field is full
    rng = np.random.default_rng(vmax)
    x = rng.integers(0, vmax + 1, size=(2, 3, 9, 8))
    x[0, 0] = vmax
    geo = dict(out_hw=(9, 8), kernel=(5, 5), stride=(1, 1), padding=(2, 2), dilation=(1, 1))
    got = work.field_sums(x, vmax=vmax, **geo)
    want = ref_patch_counts(x, chunk=1, **geo)  # chunks of one channel: the per-channel field sums
    assert got.dtype == np.int64 and np.array_equal(got, want)
    assert got[0, 0, 4, 4] == 25 * vmax


def _ref_tile_grid(rows, cols, h, w, *, groups=1, images=1, i=1, density=1.0, fits=None, min_balance=0.0):
    """tiling.tile_grid as it was: every candidate's mapping_cost computed in the loop."""
    from hwsim.sim import tiling

    if h >= rows and w >= cols and tiling.planar_balance(rows, cols, h, w) >= min_balance:
        return rows, cols, 1
    best = best_fit = None
    for tr in range(1, max(1, min(rows, h)) + 1):
        for tc in range(1, max(1, min(cols, w)) + 1):
            key = (tiling.mapping_cost(rows, cols, h, w, tr, tc, groups=groups, images=images, i=i, density=density),
                   -tr * tc)
            if best is None or key < best[0]:
                best = (key, tr, tc)
            if fits is not None and (best_fit is None or key < best_fit[0]) and fits(tr, tc):
                best_fit = (key, tr, tc)
    _, tr, tc = best_fit or best
    return tr, tc, (rows // tr) * (cols // tc)


def test_tile_grid_with_remembered_candidates_equals_the_loop_it_replaced():
    from hwsim.sim import tiling

    rng = np.random.default_rng(11)
    for trial in range(600):
        rows, cols = int(rng.integers(1, 17)), int(rng.integers(1, 17))
        h, w = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        kw = dict(groups=int(rng.integers(1, 70)), images=int(rng.integers(1, 70)), i=int(rng.integers(1, 5)),
                  density=float(rng.choice([0.0, 0.013, 0.3, 0.5, 1.0, rng.random()])),
                  min_balance=float(rng.choice([0.0, 0.5, 0.9])))
        conv = work.ScatterConv(x=np.zeros((1, 1, h, w), bool), w=np.zeros((1, 1, 3, 3), bool), stride=(1, 2),
                                padding=(1, 1), dilation=(1, 1), mode=str(rng.choice(["up", "down"])))
        for fits in (None, tiling.AccumulatorFit.of(conv, int(rng.integers(1, 200)))):
            for _ in range(2):  # the second call reads the remembered candidates
                assert tiling.tile_grid(rows, cols, h, w, fits=fits, **kw) == \
                    _ref_tile_grid(rows, cols, h, w, fits=fits, **kw), trial
        lam = lambda tr, tc: (tr + tc) % 3 != 0  # noqa: E731 - any other callable is asked each time
        assert tiling.tile_grid(rows, cols, h, w, fits=lam, **kw) == _ref_tile_grid(rows, cols, h, w, fits=lam, **kw)


def test_accumulator_fit_by_hand():
    from hwsim.sim import tiling

    # forward, a 10×10 plane on 2×3 tiles (5×4 pixels), 3×3 kernel, stride 1: (5 + 2)·(4 + 2) = 42 entries
    conv = work.ScatterConv(x=np.zeros((1, 1, 10, 10), bool), w=np.zeros((1, 1, 3, 3), bool), stride=(1, 1),
                            padding=(1, 1), dilation=(1, 1), mode="down")
    fit = tiling.AccumulatorFit.of(conv, 42)
    assert fit.entries(2, 3) == 42 == tiling.scatter_entries(conv, 2, 3) and fit(2, 3) and not fit(1, 3)
    # backward-data ("up"), stride 2: (5·2 + 2)·(4·2 + 2) = 120
    up = work.ScatterConv(x=conv.x, w=conv.w, stride=(2, 2), padding=(1, 1), dilation=(1, 1), mode="up")
    assert tiling.AccumulatorFit.of(up, 0).entries(2, 3) == 120


def test_remembered_candidates_stay_bounded(monkeypatch):
    from hwsim.sim import tiling

    monkeypatch.setattr(tiling, "MAX_KEPT_CANDIDATES", 100)
    tiling._CANDIDATES.clear()
    monkeypatch.setattr(tiling, "_KEPT", 0)
    for h in range(1, 30):  # 8×8 grid, small planes: up to 64 candidates each
        want = _ref_tile_grid(8, 8, h, 5, groups=3, images=2, i=4, density=0.3)
        assert tiling.tile_grid(8, 8, h, 5, groups=3, images=2, i=4, density=0.3) == want
        assert tiling._KEPT <= 100 and sum(len(v) for v in tiling._CANDIDATES.values()) == tiling._KEPT
