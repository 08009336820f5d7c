"""Quantizers: NSD is unbiased with E[err²] = f(1−f)Δ² ≤ Δ²/4, its density on Gaussian input is
E[min(|x|/Δ, 1)], meProp keeps exactly k per example, and the level statistics match the format's.

Statistical checks use 5-sigma bounds derived from the CLT with enough samples that any biased
variant (no dither, wrong dither range, round instead of floor) misses them by tens of sigmas.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hwsim.capture import quant
from hwsim.trace.format import layer_stats

Z = 5.0  # sigmas


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_nsd_unbiased_with_error_variance_f_one_minus_f(dtype):
    # Group values y (in units of Δ) with chosen fractional parts; s = 1/std(y) makes Δ = 1.
    ys = torch.tensor([0.5, -0.5, 0.1, -0.9, 0.25, 1.75, -2.3, 3.01, 0.0, 5.0], dtype=torch.float64)
    m = 100_000
    x = ys.repeat_interleave(m).to(dtype)
    s = 1.0 / float(x.double().std(correction=0))
    q = quant.nsd(x, s=s, generator=torch.Generator().manual_seed(1))
    assert q.delta == pytest.approx(1.0, rel=1e-5)
    assert torch.equal(q.values, (q.levels * q.delta).to(dtype))
    y = x.double() / q.delta
    err = (q.levels.double() - y).view(len(ys), m)
    f = (y - y.floor()).view(len(ys), m)[:, 0]
    for j in range(len(ys)):
        fj = float(f[j])
        e = err[j]
        lo = math.floor(float(y[j * m]))
        assert set(torch.unique(q.levels.view(len(ys), m)[j]).tolist()) <= {lo, lo + 1}
        var = fj * (1 - fj)
        if var < 1e-4:  # y within float rounding of an integer: NSD is (almost surely) exact
            assert float(e.abs().mean()) < 1e-4
            continue
        mean_sd = math.sqrt(var / m)
        assert abs(float(e.mean())) <= Z * mean_sd, (float(ys[j]), float(e.mean()), mean_sd)
        e4 = var * (fj**3 + (1 - fj) ** 3)
        sq_sd = math.sqrt((e4 - var**2) / m)
        got = float((e**2).mean())
        assert abs(got - var) <= Z * sq_sd + 1e-6, (float(ys[j]), got, var)
        assert got <= 0.25 + Z * sq_sd + 1e-9  # E[err²] <= Δ²/4, the bound is reached at f = 1/2


def test_nsd_unbiased_on_gaussian_gradients():
    x = torch.randn(2_000_000, generator=torch.Generator().manual_seed(2)) * 1e-3
    q = quant.nsd(x, s=4.0, generator=torch.Generator().manual_seed(3))
    err = q.values.double() - x.double()
    # each error has variance <= Δ²/4, so the mean of n errors has sd <= Δ/(2√n)
    assert abs(float(err.mean())) <= Z * q.delta / (2 * math.sqrt(x.numel()))
    assert float((err**2).mean()) <= q.delta**2 / 4


def _gauss_density(s: float) -> float:
    """E[min(|x|/Δ, 1)] for x ~ N(0, 1), Δ = s."""
    tail = math.erfc(s / math.sqrt(2))  # P(|x| >= s)
    return math.sqrt(2 / math.pi) * (1 - math.exp(-s * s / 2)) / s + tail


@pytest.mark.parametrize("s", [1.0, 2.0, 4.0, 8.0])
def test_density_on_gaussian_matches_expectation(s):
    x = torch.randn(2_000_000, generator=torch.Generator().manual_seed(int(s)))
    q = quant.nsd(x, s=s, generator=torch.Generator().manual_seed(10 + int(s)))
    dens = float((q.levels != 0).double().mean())
    p = (x.double().abs() / q.delta).clamp(max=1.0)
    want = float(p.mean())
    sd = math.sqrt(float((p * (1 - p)).sum())) / x.numel()
    assert abs(dens - want) <= 0.01 * want
    assert abs(dens - want) <= Z * sd
    assert abs(dens - _gauss_density(s)) <= 0.01 * _gauss_density(s)


def test_nsd_std_definition_and_zero_sigma():
    x = torch.randn(1000, dtype=torch.float64)
    q = quant.nsd(x, s=3.0)
    assert q.delta == pytest.approx(3.0 * float(x.std(correction=0)), rel=1e-9)
    for flat in (torch.zeros(50), torch.full((50,), 3.0), torch.tensor([2.5])):
        q = quant.nsd(flat, s=2.0)
        assert q.delta == 0.0
        assert not torch.isnan(q.values).any()
        assert int((q.levels != 0).sum()) == 0


def test_std_fast_path_and_fallback():
    x = torch.randn(100_000) * 0.01
    assert quant.std(x) == pytest.approx(float(x.double().std(correction=0)), rel=1e-5)
    y = 1e4 + torch.randn(100_000) * 1e-2  # mean dominates: cancellation fallback
    assert quant.std(y) == pytest.approx(float(y.double().std(correction=0)), rel=1e-3)


@pytest.mark.parametrize("numpy_rng", [False, True])
def test_uniform_bits_route_is_uniform_on_open_interval(numpy_rng):
    n = 4_000_001  # odd, float32: the 64-bit draw route (raw SFC64 words with the numpy generator)
    gen = quant.new_generator(4) if numpy_rng else torch.Generator().manual_seed(4)
    u = quant.uniform(torch.empty(n), generator=gen).double()
    assert u.dtype == torch.float64 and float(u.min()) > 0 and float(u.max()) < 1
    for part in (u, u[0::2], u[1::2]):  # both 32-bit halves of each 64-bit draw
        k = part.numel()
        assert abs(float(part.mean()) - 0.5) <= Z * math.sqrt(1 / 12 / k)
        assert abs(float(part.var()) - 1 / 12) <= Z * math.sqrt((1 / 80 - 1 / 144) / k)
    counts = torch.histc(u, bins=64, min=0, max=1)
    chi2 = float(((counts - n / 64) ** 2 / (n / 64)).sum())
    assert chi2 < 63 + Z * math.sqrt(2 * 63)


@pytest.mark.parametrize("n", [3_000, 6_000, 60_000])  # Generator.random, raw bits in numpy, raw bits + torch
def test_nsd_numpy_generator_routes_are_unbiased(n):
    # fractional parts 0.1 .. 0.9 of Δ = 1, re-drawn until each group has 400k samples
    ys = torch.tensor([0.1, -0.3, 0.5, 1.7, -2.9, 0.0], dtype=torch.float64)
    x = ys.repeat_interleave(n // len(ys)).float()
    s = 1.0 / float(x.double().std(correction=0))
    gen = quant.new_generator(7)
    draws = -(-400_000 // (n // len(ys)))
    qs = [quant.nsd(x, s=s, generator=gen) for _ in range(draws)]
    assert qs[0].delta == pytest.approx(1.0, rel=1e-5)
    err = torch.stack([q.levels.double() - x.double() / q.delta for q in qs]).view(draws, len(ys), -1)
    for j in range(len(ys)):
        e = err[:, j].reshape(-1)
        f = float(ys[j]) - math.floor(float(ys[j]))
        if f * (1 - f) < 1e-4:
            assert float(e.abs().max()) < 1e-4
            continue
        assert abs(float(e.mean())) <= Z * math.sqrt(f * (1 - f) / e.numel()), (float(ys[j]), float(e.mean()))


def test_level_stats_bound_path_matches_checked_path():
    g = torch.Generator().manual_seed(8)
    for n, scale in ((5_000, 1.0), (300_000, 1.0), (300_000, 40.0)):  # int8 and int16 routes
        x = torch.randn(n, generator=g)
        x[::997] *= scale
        q = quant.nsd(x, s=4.0, generator=quant.new_generator(9))
        assert q.bound >= float(q.levels.abs().max())
        assert quant.level_stats(q.levels, bound=q.bound) == quant.level_stats(q.levels)


def test_meprop_keeps_exactly_k_largest_per_example():
    g = torch.Generator().manual_seed(5)
    for shape, k in (((8, 50), 7), ((4, 3, 5, 5), 10)):
        dz = torch.randn(shape, generator=g)
        q = quant.meprop(dz, k=k)
        flat, kept = dz.reshape(shape[0], -1), q.values.reshape(shape[0], -1)
        assert ((kept != 0).sum(1) == k).all()
        assert ((q.levels.reshape(shape[0], -1) != 0).sum(1) == k).all()
        top = flat.abs().topk(k, dim=1).indices
        for i in range(shape[0]):
            assert set(torch.nonzero(kept[i]).flatten().tolist()) == set(top[i].tolist())
        assert torch.equal(kept[kept != 0], flat[kept != 0])
    dz = torch.randn(3, 4)
    assert torch.equal(quant.meprop(dz, k=4).values, dz)


def test_int_view_keeps_zero_pattern_and_scales_to_int8():
    x = torch.tensor([0.0, 1e-30, -2.0, 0.5, 0.0, -1e-3])
    lv, delta = quant.int_view(x)
    assert torch.equal(lv != 0, x != 0)
    assert delta == pytest.approx(2.0 / 127)
    assert float(lv.abs().max()) == 127 and float(lv[1]) == 1 and float(lv[2]) == -127


def test_level_stats_match_format_layer_stats():
    rng = np.random.default_rng(6)
    for lv in (rng.integers(-5, 6, 10_000) * (rng.random(10_000) < 0.1),
               np.array([0, 1, -1, 2, 3, -4, 7, 8, 255, 256, -300, 5000, 70000]), np.zeros(7, np.int64)):
        got = quant.level_stats(torch.from_numpy(lv.astype(np.float32)))
        want = layer_stats(lv)
        assert (got.density, got.max_bits, got.hist) == (want["density"], want["max_bits"], want["hist"])


@pytest.mark.parametrize("method", ["dither", "meprop", "none"])
def test_non_finite_gradients_raise(method):
    x = torch.randn(10, 10)
    x[3, 4] = float("nan")
    with pytest.raises(quant.NonFiniteError, match="1 of 100 elements"):
        quant.quantize(x, method=method, s=2.0, k=3)
    x[3, 4] = float("inf")
    with pytest.raises(quant.NonFiniteError):
        quant.quantize(x, method=method, s=2.0, k=3)


def test_bad_parameters():
    for kw in ({"method": "dither", "s": 0.0, "k": None}, {"method": "dither", "s": -1.0, "k": None},
               {"method": "meprop", "s": None, "k": 0}, {"method": "meprop", "s": None, "k": 2.5},
               {"method": "bogus", "s": 1.0, "k": 1}):
        with pytest.raises(ValueError, match="must be|unknown"):
            quant.validate_params(**kw)
    with pytest.raises(ValueError, match="s must be > 0"):
        quant.nsd(torch.randn(4), s=0.0)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        quant.meprop(torch.randn(4, 4), k=-1)
