"""The compiled bank-unit sampler (``hwsim/sim/_bankunits.h``, behind :func:`hwsim.sim.gemm._scatter_units`)
against the numpy path: the same address parts in the same order, unit by unit, on many random forward and
backward-data GEMMs (strides, dilations, padding, grouped weights compact and expanded, all-ones streamed
operands, empty tiles), by hand, and bad input refused in one line. ``HWSIM_SIM_KERNEL=numpy`` forces numpy."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.sim import banks, gemm, work

KERNEL = banks.kernel_available()


def _units(conv, kc, tr, tc, rng_seed, monkeypatch, path):
    monkeypatch.setenv(banks.SIM_KERNEL_ENV, path)
    nx = work.planar_counts(conv, tr, tc)
    nw = work.group_weight_counts(conv, kc)
    return gemm._scatter_units(conv, nw, nx, tr, tc, kc, np.random.default_rng(rng_seed))


def _same(a, b):
    if isinstance(a, list) or isinstance(b, list):
        return a == [] and b == []
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("ax", "ax_off", "ay", "ay_off"))


def _random_conv(rng):
    mode = str(rng.choice(["down", "up"]))
    groups = int(rng.choice([1, 1, 2, 3]))
    c, o = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 5))
    r, s = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    st = (int(rng.integers(1, 4)), int(rng.integers(1, 3)))
    dl = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    pd = (int(rng.integers(0, r)), int(rng.integers(0, s)))
    h, w_ = int(rng.integers(1, 14)), int(rng.integers(1, 14))
    d = float(rng.choice([0.02, 0.3, 0.8, 1.0]))
    x = rng.random((int(rng.integers(1, 4)), c, h, w_)) < d
    if rng.random() < 0.15:
        x = work.ones_view(x.shape)  # a role the arch does not skip: a zero-stride view
    wc = rng.random((o, c // groups, r, s)) < d
    w = wc if rng.random() < 0.5 else work.expand_groups(wc, groups)
    if rng.random() < 0.3 and groups == 1:
        w = np.ascontiguousarray(w.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)  # a transposed view (Wᵀ)
    return work.ScatterConv(x=x, w=w, stride=st, padding=pd, dilation=dl, mode=mode, groups=groups)


def test_compiled_units_equal_the_numpy_units_on_random_gemms(monkeypatch):
    rng = np.random.default_rng(5)
    seen = 0
    for trial in range(400):
        conv = _random_conv(rng)
        hx, wx = conv.x.shape[2:]
        tr, tc = int(rng.integers(1, hx + 1)), int(rng.integers(1, wx + 1))
        kc = int(rng.choice([1, 2, 3, 8]))
        want = _units(conv, kc, tr, tc, trial, monkeypatch, "numpy")
        got = _units(conv, kc, tr, tc, trial, monkeypatch, "auto")
        assert _same(want, got), trial
        seen += not isinstance(want, list) and want.ax.size > 0 and want.ay.size > 0
    assert seen > 200


@pytest.mark.parametrize("path", ["numpy", "auto"])
def test_units_by_hand_on_both_paths(monkeypatch, path):
    # forward, 1 image, 1 channel, a 3×3 plane of ones on one tile, a 2×2 kernel with only W[0,0,1,1] non-zero,
    # stride 1, no padding: one phase. Weight part: k·hh·wh − r·wh − s = −(1·wh) − 1 → shifted to 0.
    # Activation parts: (h + 0)·wh + w for every pixel, minus the least (0): hh = wh = 3 + 1 = 4 → 0,1,2,4,5,6,8,9,10
    x = np.ones((1, 1, 3, 3), bool)
    w = np.zeros((1, 1, 2, 2), bool)
    w[0, 0, 1, 1] = True
    conv = work.ScatterConv(x=x, w=w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), mode="down")
    u = _units(conv, 1, 1, 1, 0, monkeypatch, path)
    assert len(u) == 1
    assert u.ax.tolist() == [0]
    assert u.ay.tolist() == [0, 1, 2, 4, 5, 6, 8, 9, 10]
    # the transposed GEMM ("up", stride 2): ay = h·2·wh + w·2 with wh = 3·2 + 1 = 7 → 0, 2, 4, 14, 16, ...
    up = work.ScatterConv(x=x, w=w, stride=(2, 2), padding=(0, 0), dilation=(1, 1), mode="up")
    u = _units(up, 1, 1, 1, 0, monkeypatch, path)
    assert u.ay.tolist() == [h * 14 + w_ * 2 for h in range(3) for w_ in range(3)]
    assert u.ax.tolist() == [1 * 7 + 1]  # r·dil·wh + s·dil


def test_the_kernel_refuses_bad_input_in_one_line():
    if not KERNEL:
        assert banks.IMPORT_ERROR
        return
    ext = banks.compiled()
    x = np.ones((1, 1, 3, 3), bool)
    w = np.ones((1, 1, 2, 2), bool)
    geo = np.array([1, 0, 1, 1, 1, 1, 0, 0, 4, 4, 0, 0], dtype=np.int64)
    ph = np.zeros((1, 4), dtype=np.int64)
    edges = np.array([0, 3], dtype=np.int64)
    out = [np.empty(n, dtype=np.int64) for n in (4, 2, 9, 2)]
    bad_unit = np.array([[0, 5, 0, 0, 0]], dtype=np.int64)  # image 5 of 1
    with pytest.raises(ValueError, match="sampled unit 0 is outside the layer"):
        ext.scatter_units(x, w, geo, bad_unit, ph, edges, edges, 1, *out)
    with pytest.raises(ValueError, match="12 geometry values"):
        ext.scatter_units(x, w, geo[:5], bad_unit, ph, edges, edges, 1, *out)
    with pytest.raises(TypeError, match="4-D array of 1-byte items"):
        ext.scatter_units(x[0], w, geo, bad_unit, ph, edges, edges, 1, *out)
    small = [np.empty(n, dtype=np.int64) for n in (0, 2, 9, 2)]
    with pytest.raises(ValueError, match="weight parts exceed their buffer"):
        ext.scatter_units(x, w, geo, np.zeros((1, 5), dtype=np.int64), ph, edges, edges, 1, *small)
    wg = np.array([1, 1, 1, 1, 1, 1, 1, 0, 0, 2, 2], dtype=np.int64)
    with pytest.raises(ValueError, match="sampled unit 0 is outside the layer"):
        ext.weight_grad_units(x, x, wg, np.array([[0, 0, 7, 0]], dtype=np.int64), *out)
    with pytest.raises(ValueError, match="11 geometry values"):
        ext.weight_grad_units(x, x, wg[:3], np.zeros((1, 4), dtype=np.int64), *out)
    with pytest.raises(TypeError, match="ax_off must be a C-contiguous int64 buffer"):
        ext.weight_grad_units(x, x, wg, np.zeros((1, 4), dtype=np.int64), out[0], out[1].astype(np.int32), *out[2:])


def _wg_units(op, kc, chunk, seed, monkeypatch, path):
    monkeypatch.setenv(banks.SIM_KERNEL_ENV, path)
    xg = work.block_sums(op.dz, kc, axis=1)
    return gemm._weight_grad_units(op, xg, kc=kc, chunk=chunk, rng=np.random.default_rng(seed))


def test_compiled_weight_grad_units_equal_the_numpy_units(monkeypatch):
    rng = np.random.default_rng(6)
    seen = 0
    for trial in range(300):
        groups = int(rng.choice([1, 1, 2, 3]))
        k, c = groups * int(rng.integers(1, 6)), groups * int(rng.integers(1, 4))
        r, s = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        st = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        dl = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        pd = (int(rng.integers(0, r)), int(rng.integers(0, s)))
        h, w_ = int(rng.integers(1, 10)), int(rng.integers(1, 10))
        p = (h + 2 * pd[0] - dl[0] * (r - 1) - 1) // st[0] + 1
        q = (w_ + 2 * pd[1] - dl[1] * (s - 1) - 1) // st[1] + 1
        if p < 1 or q < 1:
            continue
        n, d = int(rng.integers(1, 4)), float(rng.choice([0.05, 0.4, 1.0]))
        a = rng.random((n, c, h, w_)) < d
        if rng.random() < 0.15:
            a = work.ones_view(a.shape)
        op = work.PixelOuterProduct(dz=rng.random((n, k, p, q)) < d, a=a, groups=groups, kernel=(r, s), stride=st,
                                    padding=pd, dilation=dl)
        kc, chunk = int(rng.choice([1, 2, 3, 8])), int(rng.integers(1, 4))
        want = _wg_units(op, kc, chunk, trial, monkeypatch, "numpy")
        got = _wg_units(op, kc, chunk, trial, monkeypatch, "auto")
        assert _same(want, got), trial
        seen += not isinstance(want, list) and want.ax.size > 0 and want.ay.size > 0
    assert seen > 150


@pytest.mark.parametrize("path", ["numpy", "auto"])
def test_weight_grad_units_by_hand_on_both_paths(monkeypatch, path):
    # one image, K = 2 (both δ̃z non-zero at the one output pixel), C = 1, a 3×3 kernel over a 3×3 plane with
    # padding 1 → one 3×3 output plane; the unit sampled is pixel (0, 0) (the only δ̃z work): its field holds the
    # taps r, s ∈ {1, 2}; chunk 1, R·S = 9: weight parts k·9 = 0, 9; activation parts r·3 + s = 4, 5, 7, 8
    dz = np.zeros((1, 2, 3, 3), bool)
    dz[0, :, 0, 0] = True
    op = work.PixelOuterProduct(dz=dz, a=np.ones((1, 1, 3, 3), bool), groups=1, kernel=(3, 3), stride=(1, 1),
                                padding=(1, 1), dilation=(1, 1))
    u = _wg_units(op, 2, 1, 0, monkeypatch, path)
    assert len(u) == 1
    assert u.ax.tolist() == [0, 9]
    assert u.ay.tolist() == [4, 5, 7, 8]


def test_compiled_planar_counts_equal_the_numpy_counts(monkeypatch):
    from hwsim.sim import compiled

    rng = np.random.default_rng(8)
    for trial in range(300):
        conv = _random_conv(rng)
        if rng.random() < 0.3:  # a view with other strides (a transposed or sliced mask)
            conv = work.ScatterConv(x=conv.x[:, ::-1], w=conv.w, stride=conv.stride, padding=conv.padding,
                                    dilation=conv.dilation, mode=conv.mode, groups=conv.groups)
        hx, wx = conv.x.shape[2:]
        tr, tc = int(rng.integers(1, hx + 1)), int(rng.integers(1, wx + 1))
        want = work.planar_counts(conv, tr, tc)
        for path in ("numpy", "auto"):
            monkeypatch.setenv(banks.SIM_KERNEL_ENV, path)
            got = compiled.planar_counts(conv, tr, tc)
            assert got.dtype == np.int64 and got.shape == want.shape and np.array_equal(got, want), (trial, path)


@pytest.mark.parametrize("path", ["numpy", "auto"])
def test_planar_counts_by_hand_on_both_paths(monkeypatch, path):
    from hwsim.sim import compiled

    monkeypatch.setenv(banks.SIM_KERNEL_ENV, path)
    # a 4×5 plane of ones, stride 2, no padding: phase (0, 0) reads rows 0, 2 and cols 0, 2, 4; phase (0, 1) rows 0, 2
    # and cols 1, 3; (1, 0) rows 1, 3, cols 0, 2, 4; (1, 1) rows 1, 3, cols 1, 3. Tiles 2 × 2: rows {0, 1} {2, 3},
    # cols {0, 1} {2, 3, 4}.
    x = np.ones((1, 1, 4, 5), bool)
    conv = work.ScatterConv(x=x, w=np.ones((1, 1, 2, 2), bool), stride=(2, 2), padding=(0, 0), dilation=(1, 1),
                            mode="down")
    got = compiled.planar_counts(conv, 2, 2)[0, 0]
    assert got.tolist() == [[1, 2, 1, 2], [1, 1, 1, 1], [1, 2, 1, 2], [1, 1, 1, 1]]


def _work_fields(cw):
    return (cw.mult_cycles.tolist(), cw.products, cw.groups, cw.partial_sums, cw.group_pes.tolist(),
            cw.group_values.tolist(), cw.group_interval.tolist(), cw.tiling, cw.broadcast_reads, cw.stream_reads)


def test_compiled_weight_grad_cycles_equal_the_numpy_counts(monkeypatch):
    from hwsim.arch import load_arch

    rng = np.random.default_rng(9)
    archs = {}
    done = 0
    for trial in range(200):
        grid, f, i = int(rng.choice([1, 2, 4, 8])), int(rng.integers(1, 5)), int(rng.integers(1, 5))
        key = (grid, f, i)
        if key not in archs:
            archs[key] = load_arch("scnn", {"pe_array.rows": grid, "pe_array.cols": grid, "pe.mult_f": f,
                                            "pe.mult_i": i})
        groups = int(rng.choice([1, 1, 2, 3]))
        k, c = groups * int(rng.integers(1, 7)), groups * int(rng.integers(1, 5))
        r, s = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        h, w_ = int(rng.integers(r, 16)), int(rng.integers(s, 16))
        n, d = int(rng.integers(1, 5)), float(rng.choice([0.05, 0.4, 1.0]))
        p, q = h - r + 1, w_ - s + 1
        dz = rng.random((n, k, p, q)) < d
        a = rng.random((n, c, h, w_)) < d
        if rng.random() < 0.15:
            a = work.ones_view(a.shape)
        if rng.random() < 0.15:  # a dense baseline's δ̃z: its counts are a broadcast view
            dz = work.ones_view(dz.shape)
        op = work.PixelOuterProduct(dz=dz, a=a, groups=groups, kernel=(r, s), stride=(1, 1), padding=(0, 0),
                                    dilation=(1, 1))
        kc = int(rng.choice([1, 2, 3, 8]))
        out = {}
        for path in ("numpy", "auto"):
            monkeypatch.setenv(banks.SIM_KERNEL_ENV, path)
            out[path] = _work_fields(gemm.weight_grad_counts(op, archs[key], kc=kc).work)
        assert out["numpy"] == out["auto"], trial
        done += out["numpy"][1] > 0
    assert done > 150


def test_weight_grad_cycles_by_hand():
    if not KERNEL:
        assert banks.IMPORT_ERROR
        return
    from hwsim.sim import compiled

    # one image, 2 Kc groups, a 2×3 plane on 1×2 tiles (cols {0}, {1, 2}); F = 2
    xg = np.array([[[[3, 0, 1], [2, 2, 0]], [[1, 1, 1], [0, 0, 5]]]], dtype=np.int64)   # (1, 2, 2, 3)
    ceil_y = np.array([[[1, 2, 3], [4, 5, 6]]], dtype=np.int64)
    ysum = np.array([[[1, 1, 1], [1, 1, 2]]], dtype=np.int64)
    cyc = np.zeros((2, 1, 2), dtype=np.int64)
    prod = compiled.weight_grad_cycles(xg, ceil_y, ysum, np.array([0, 2]), np.array([0, 1, 3]), f=2, ks=slice(1, 2),
                                       cyc=cyc)
    # group 1 only: ⌈xg/2⌉ = [[1, 1, 1], [0, 0, 3]] · ceil_y → tile 0 (col 0): 1·1 + 0 = 1; tile 1: 2 + 3 + 0 + 18 = 23
    assert cyc[1, 0].tolist() == [1, 23] and cyc[0, 0].tolist() == [0, 0]
    assert prod == 1 + 1 + 1 + 5 * 2
    with pytest.raises(ValueError, match="g0 <= g1 <= groups"):
        compiled.weight_grad_cycles(xg, ceil_y, ysum, np.array([0, 2]), np.array([0, 1, 3]), f=2, ks=slice(1, 3),
                                   cyc=cyc)


def _fillers_by_runs(mask, rl):
    """The definition: Σ over every zero run (before each non-zero, and the trailing one) of ⌊run / 2**rl⌋."""
    flat = np.flatnonzero(mask.ravel())
    gaps = np.diff(np.concatenate([[-1], flat, [mask.size]])) - 1
    return int((gaps // (1 << rl)).sum())


def test_compiled_fillers_equal_the_numpy_fillers_and_the_definition(monkeypatch):
    from hwsim.sim import traffic

    rng = np.random.default_rng(12)
    for trial in range(400):
        n = int(rng.choice([0, 1, 7, 8, 9, 63, 64, 65, int(rng.integers(1, 5000))]))
        d = float(rng.choice([0.0, 0.001, 0.05, 0.3, 0.9, 1.0]))
        mask = rng.random(n) < d
        if rng.random() < 0.2 and n:  # long runs at both ends
            mask[: n // 3] = False
            mask[-(n // 4):] = False
        rl = int(rng.integers(0, 9))
        got = {}
        for path in ("numpy", "auto"):
            monkeypatch.setenv(banks.SIM_KERNEL_ENV, path)
            got[path] = traffic.run_length_fillers(mask.reshape(1, 1, 1, -1), rl)
        assert got["numpy"] == got["auto"] == _fillers_by_runs(mask, rl), (trial, n, d, rl)


@pytest.mark.parametrize("path", ["numpy", "auto"])
def test_fillers_by_hand_on_both_paths(monkeypatch, path):
    from hwsim.sim import traffic

    monkeypatch.setenv(banks.SIM_KERNEL_ENV, path)
    # runs of 20 zeros, a non-zero, 40 zeros, a non-zero, 15 trailing zeros; rl = 4 (16): 1 + 2 + 0 fillers
    mask = np.zeros(77, dtype=bool)
    mask[[20, 61]] = True
    assert traffic.run_length_fillers(mask, 4) == 3
    assert traffic.run_length_fillers(np.zeros(100, dtype=bool), 3) == 12  # one run of 100 zeros: ⌊100 / 8⌋
    if KERNEL:
        with pytest.raises(ValueError, match="3 <= rl <= 62"):
            banks.compiled().fillers(np.packbits(mask), 77, 2)
