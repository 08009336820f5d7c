"""Unit tests of hwsim.capture.quant_device pinned on CPU (direct calls with a torch.Generator)."""

from __future__ import annotations

import math

import pytest
import torch

from hwsim.capture import quant_device as qd


def _gen(seed):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def test_nsd_levels_are_integers_and_delta_is_s_times_population_std():
    x = torch.randn(4000, generator=_gen(0)) * 0.01
    for s in (0.5, 2.0, 7.0):
        q = qd.nsd(x, s=s, generator=_gen(1))
        assert torch.equal(q.levels, q.levels.round())
        sigma = float(x.double().std(correction=0))
        assert q.delta == pytest.approx(s * sigma, rel=1e-5)
        assert q.delta != pytest.approx(s * float(x.double().std(correction=1)), rel=1e-6)  # population, not sample
        torch.testing.assert_close(q.values, q.levels * q.delta)
        # ⌊y + u⌋ ∈ {⌊y⌋, ⌊y⌋ + 1}
        y = x.double() / q.delta
        lv = q.levels.double()
        assert bool(((lv == y.floor()) | (lv == y.floor() + 1)).all())


def test_nsd_is_unbiased_in_expectation():
    x = torch.tensor([0.3, -0.7, 1.2, -2.6, 0.05])
    m = 40_000
    big = x.repeat(m)
    q = qd.nsd(big, s=1.0, generator=_gen(2))
    mean = q.values.double().view(m, len(x)).mean(0)
    se = q.delta / (2 * math.sqrt(m))  # Bernoulli rounding of at most Δ: sd ≤ Δ/2
    assert (mean - x.double()).abs().max() <= 5 * se


def test_nsd_seed_fixes_levels():
    x = torch.randn(1000, generator=_gen(3))
    a = qd.nsd(x, s=1.0, generator=_gen(9)).levels
    assert torch.equal(a, qd.nsd(x, s=1.0, generator=_gen(9)).levels)
    assert not torch.equal(a, qd.nsd(x, s=1.0, generator=_gen(10)).levels)


def test_nsd_zero_dz_gives_zero_levels_and_delta():
    q = qd.nsd(torch.zeros(3, 4), s=2.0, generator=_gen(0))
    assert q.delta == 0.0 and not q.levels.any() and not q.values.any()
    assert q.stats.numel == 12 and q.stats.nnz == 0 and q.stats.max_abs == 0


@pytest.mark.parametrize("s", [0, -1.0, float("nan")])
def test_nsd_rejects_non_positive_s(s):
    with pytest.raises(ValueError, match="s must be > 0"):
        qd.nsd(torch.ones(3), s=s)


def test_nsd_lazy_values_scale_levels_later():
    x = torch.randn(200, generator=_gen(4))
    eager = qd.nsd(x, s=1.5, generator=_gen(5))
    lazy = qd.nsd(x, s=1.5, generator=_gen(5), lazy_values=True)
    assert lazy.values is None and lazy.dtype == x.dtype
    assert torch.equal(lazy.levels, eager.levels)
    torch.testing.assert_close(lazy.take_values(), eager.values)


def test_nsd_half_precision_returns_its_dtype():
    x = torch.randn(300, generator=_gen(6)).to(torch.bfloat16)
    q = qd.nsd(x, s=1.0, generator=_gen(7))
    assert q.values.dtype == torch.bfloat16 and q.levels.dtype == torch.float32


def test_nsd_stats_match_levels():
    x = torch.randn(5000, generator=_gen(8))
    q = qd.nsd(x, s=0.25, generator=_gen(9))
    lv = q.levels
    assert q.stats.numel == lv.numel()
    assert q.stats.nnz == int((lv != 0).sum())
    assert q.stats.max_abs == int(lv.abs().max())
    # hist entry b-2 counts non-zero levels that need b bits (sign + magnitude)
    mag = lv.abs()[lv != 0].long()
    want = [0] * 15
    for v in mag.tolist():
        want[min(int(v).bit_length() - 1, 14)] += 1
    assert q.stats.hist == want


def test_uniform_float64_and_float32_ranges():
    u64 = qd.uniform(torch.empty(10_000, dtype=torch.float64), generator=_gen(1))
    assert u64.dtype == torch.float64 and float(u64.min()) >= 0 and float(u64.max()) < 1
    u32 = qd.uniform(torch.empty(10_000), generator=_gen(1))
    assert float(u32.min()) >= 2.0**-24 and float(u32.max()) <= 1 - 2.0**-24  # cell midpoints, never 0 or 1
    j = u32.double() * 2**23 - 0.5
    assert torch.equal(j, j.round())  # exactly (j + ½)/2^23


def test_level_stats_clamps_wide_levels_into_the_last_entry():
    lv = torch.tensor([0.0, 1.0, -1.0, 3.0, 2.0**20, -(2.0**20)])
    st = qd.level_stats(lv, max_bits=8)
    assert len(st.hist) == 7 and st.numel == 6 and st.nnz == 5 and st.max_abs == 2**20
    assert st.hist[0] == 2 and st.hist[1] == 1 and st.hist[-1] == 2


def test_exponent_is_bit_length():
    k = torch.tensor([1.0, 2.0, 3.0, 4.0, 7.0, 8.0, 1023.0, 1024.0])
    want = torch.tensor([int(v).bit_length() for v in k.tolist()])
    assert torch.equal(qd._exponent(k).long(), want)
    assert torch.equal(qd._exponent(k.double()).long(), want)
    assert int(qd._exponent(torch.tensor([0.0]))) <= 0


def test_topk_kept_per_example():
    dz = torch.tensor([[1.0, -5.0, 2.0, 0.5], [3.0, 0.1, -0.2, 4.0]])
    kept = qd.topk_kept(dz, k=2)
    assert torch.equal(kept, torch.tensor([[0.0, -5.0, 2.0, 0.0], [3.0, 0.0, 0.0, 4.0]]))
    assert qd.topk_kept(dz, k=4) is None


@pytest.mark.parametrize("k", [0, -1, 2.0, True])
def test_meprop_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        qd.meprop(torch.ones(2, 3), k=k)


def test_passthrough_int_view():
    dz = torch.tensor([0.0, 1e-6, -0.5, 1.0])
    q = qd.passthrough(dz)
    assert q.values is dz
    assert q.delta == pytest.approx(1.0 / 127)
    assert q.levels.tolist() == [0.0, 1.0, -64.0, 127.0]  # tiny non-zeros stay non-zero


def test_std_is_population_std():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert qd.std(x) == pytest.approx(math.sqrt(1.25))
    assert qd.std(torch.empty(0)) == 0.0
