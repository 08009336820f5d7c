"""More unit tests of the counter dither (hwsim.capture.quant_counter): the key chain by hand, site_hash, the
uniforms' start offsets (also across 2^32), σ's step Δ by hand, and NSD's edge cases (zero σ, all-zero δz, NaN,
float64 and bf16 δz) on each path. Hand-computed values; the paths are compared bit for bit."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch
from _counter_ref import M64, splitmix_out, u_by_hand

from hwsim.capture import quant_counter as qc
from hwsim.capture.quantized import NonFiniteError


def test_mix64_is_splitmix64_first_output_of_state_zero():
    # The first output of SplitMix64 seeded with 0 is the published 0xE220A8397B1DCDAF.
    assert qc._mix64(0) == 0xE220A8397B1DCDAF
    for z in (1, 2**63, M64, 0x0123456789ABCDEF):
        assert qc._mix64(z) == splitmix_out(z)


def test_call_key_is_the_four_step_chain_split_into_halves():
    seed, it, site, ordinal = 7, 3, qc.site_hash("layer1.conv"), 2
    z = splitmix_out(splitmix_out(splitmix_out(splitmix_out(seed) ^ it) ^ site) ^ ordinal)
    key = qc.call_key(seed, it, site, ordinal)
    assert key == qc.CounterKey(z & 0xFFFFFFFF, z >> 32, False)
    assert 0 <= key.k0 <= 0xFFFFFFFF and 0 <= key.k1 <= 0xFFFFFFFF
    assert qc.call_key(seed, it, site, ordinal, device_path=True) == (key.k0, key.k1, True)


def test_key_after_from_the_iteration_prefix_equals_call_key():
    prefix = qc.iteration_prefix(11, 5)
    assert prefix == splitmix_out(splitmix_out(11) ^ 5)
    for site in (0, qc.site_hash("a"), M64):
        for ordinal in (0, 1, 1000):
            assert qc.key_after(prefix, site, ordinal) == qc.call_key(11, 5, site, ordinal)


def test_call_keys_differ_in_each_argument_and_negative_or_huge_seeds_wrap_to_64_bits():
    site = qc.site_hash("fc")
    base = qc.call_key(0, 0, site, 0)
    variants = [qc.call_key(1, 0, site, 0), qc.call_key(0, 1, site, 0), qc.call_key(0, 0, site + 1, 0),
                qc.call_key(0, 0, site, 1)]
    assert len({(k.k0, k.k1) for k in [base, *variants]}) == 5
    # seed and iteration are taken mod 2^64 (the chain works on 64-bit words)
    assert qc.call_key(-1, 0, site, 0) == qc.call_key(M64, 0, site, 0)
    assert qc.call_key(0, 2**64 + 3, site, 0) == qc.call_key(0, 3, site, 0)


def test_site_hash_is_blake2b_little_endian_and_distinct_per_name():
    for name in ("", "conv1", "layer1.0.conv1", "δz"):
        want = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")
        assert qc.site_hash(name) == want
        assert 0 <= qc.site_hash(name) <= M64
    names = [f"layer{i}.conv" for i in range(200)]
    assert len({qc.site_hash(n) for n in names}) == 200


def test_uniform_numpy_matches_the_hand_hash_and_is_odd_multiples_of_2_pow_minus_24():
    key = qc.CounterKey(0xDEADBEEF, 0x12345678)
    u = qc.uniform_numpy(key, 9)
    assert u.dtype == np.float32
    for i in range(9):
        assert float(u[i]) == u_by_hand(i, key.k0, key.k1)
        m = float(u[i]) * 2**24
        assert m == int(m) and int(m) % 2 == 1


@pytest.mark.parametrize("start", [0, 5, qc._CHUNK - 3, 2**32 - 2])
def test_uniforms_from_a_start_offset_are_the_tail_of_the_stream(start):
    key = qc.call_key(1, 2, qc.site_hash("x"), 0)
    u = qc.uniform_numpy(key, 6, start)
    want = [u_by_hand(start + j, key.k0, key.k1) for j in range(6)]
    assert u.tolist() == want
    assert qc.uniform_torch(key, 6, "cpu", start).tolist() == want
    if qc._ext is not None:
        assert qc.uniform_kernel(key, 6, start).tolist() == want


def test_spans_keep_the_high_index_word_fixed_and_cover_every_element():
    start = 2**32 - 5
    spans = list(qc._spans(12, start))
    assert spans == [(0, 5), (5, 7)]  # the first stops at 2^32, the second starts on it
    assert list(qc._spans(qc._CHUNK + 1, 0)) == [(0, qc._CHUNK), (qc._CHUNK, 1)]
    assert list(qc._spans(0, 0)) == []


def test_sums_numpy_by_hand_with_a_tail_and_more_than_a_chunk():
    a = np.arange(130, dtype=np.float32)  # one full row of 128 lanes, a tail of 2
    s1, s2 = qc.sums_numpy(a)
    assert s1 == 129 * 130 / 2
    assert s2 == sum(i * i for i in range(130))
    b = np.ones(qc._CHUNK * 2 + 7, dtype=np.float32)
    assert qc.sums_numpy(b) == (float(b.size), float(b.size))
    assert qc.sums_numpy(np.zeros(0, np.float32)) == (0.0, 0.0)


def test_step_by_hand():
    # x = (1, 3): mean 2, σ² = (1 + 9)/2 − 4 = 1; Δ = float32(s · 1)
    assert qc.step(4.0, 10.0, 2, 0.5) == 0.5
    assert qc.step(4.0, 10.0, 2, 0.1) == float(np.float32(0.1))
    assert qc.step(4.0, 10.0, 2, 0.1, f32=False) == 0.1  # float64 δz: not rounded to float32
    assert qc.step(4.0, 10.0, 0, 0.5) == 0.0  # no elements
    assert qc.step(6.0, 18.0, 2, 0.5) == 0.0  # x = (3, 3): σ = 0
    assert qc.step(6.0, 17.999999, 2, 0.5) == 0.0  # rounding made σ² negative: clamped to 0
    assert qc.step(2e-38, 2e-76 * 2, 2, 1e-3) == 0.0  # Δ below float32's smallest normal
    with pytest.raises(FloatingPointError, match="non-finite sums"):
        qc.step(math.nan, 1.0, 2, 0.5)
    with pytest.raises(FloatingPointError, match="non-finite sums"):
        qc.step(1.0, math.inf, 2, 0.5)
    with pytest.raises(OverflowError, match="overflows float32"), np.errstate(over="ignore"):
        qc.step(0.0, 2e80, 2, 1.0)  # σ = 1e40 > float32 max (3.4e38)


def _levels(q) -> torch.Tensor:  # noqa: ANN001
    return q.levels if q.levels is not None else q.level_tensor()


def _paths():
    paths = [("numpy", lambda dz, key: qc.nsd_numpy(dz, s=0.5, key=key)),
             ("torch", lambda dz, key: qc.nsd_torch(dz, s=0.5, key=key))]
    if qc._ext is not None:
        paths.append(("kernel", lambda dz, key: qc.nsd_kernel(dz, s=0.5, key=key)))
    return paths


@pytest.mark.parametrize("name,run", _paths(), ids=[p[0] for p in _paths()])
def test_a_nan_or_inf_raises_non_finite_error_naming_the_count_on_each_path(name, run):
    key = qc.CounterKey(1, 2)
    dz = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    dz[1, 2] = math.nan
    dz[2, 0] = math.inf
    with pytest.raises(NonFiniteError, match=r"^2 of 12 elements are NaN/Inf$"):
        run(dz, key)


@pytest.mark.parametrize("name,run", _paths(), ids=[p[0] for p in _paths()])
def test_zero_sigma_and_all_zero_dz_give_zero_step_and_levels_on_each_path(name, run):
    key = qc.CounterKey(3, 4)
    for dz in (torch.zeros(5, 7), torch.full((5, 7), 2.5)):
        q = run(dz, key)
        assert q.delta == 0.0
        assert torch.equal(_levels(q), torch.zeros(5, 7))
        assert q.values is not None and torch.equal(q.values, torch.zeros(5, 7))


def test_levels_of_a_two_valued_dz_by_hand():
    # x = (−1, 1, −1, 1): mean 0, σ = 1, s = 0.5 → Δ = 0.5, α = 2: level = ⌊±2 + u⌋ = ±2 for u in (0, 1)
    key = qc.CounterKey(9, 9)
    dz = torch.tensor([-1.0, 1.0, -1.0, 1.0])
    for name, run in _paths():
        q = run(dz, key)
        assert q.delta == 0.5, name
        assert q.levels.tolist() == [-2.0, 2.0, -2.0, 2.0], name
        assert q.values.tolist() == [-1.0, 1.0, -1.0, 1.0], name


def test_float64_dz_keeps_an_unrounded_step_and_float64_levels():
    key = qc.CounterKey(5, 6)
    dz = torch.tensor([0.0, 1.0, 0.0, 1.0], dtype=torch.float64)  # mean ½, σ = ½
    q = qc.nsd_numpy(dz, s=0.1, key=key)
    assert q.delta == 0.05  # 0.1 · 0.5 in float64 (float32 would give 0.05000000074505806)
    assert q.levels.dtype == torch.float64 and q.values.dtype == torch.float64
    u = qc.uniform_numpy(key, 4).astype(np.float64)
    alpha = np.float64(1.0 / 0.05)
    want = np.floor(dz.numpy() * alpha + u)
    assert q.levels.tolist() == want.tolist()
    t = qc.nsd_torch(dz, s=0.1, key=key)
    assert t.delta == pytest.approx(0.05, rel=1e-15)
    assert t.levels.dtype == torch.float64 and t.levels.tolist() == want.tolist()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_dz_is_quantized_as_its_float32_copy_and_cast_back(dtype):
    key = qc.call_key(0, 0, qc.site_hash("h"), 0)
    dz = (torch.linspace(-3, 3, 64) ** 3).to(dtype)
    ref = qc.nsd_numpy(dz.float(), s=0.25, key=key)
    for name, run in (("numpy", qc.nsd_numpy), ("torch", qc.nsd_torch)):
        q = run(dz, s=0.25, key=key)
        assert q.values.dtype == dtype, name
        assert q.delta == ref.delta, name
        assert torch.equal(q.levels, ref.levels), name
        assert torch.equal(q.values, (ref.levels * ref.delta).to(dtype)), name


def test_nsd_dispatch_picks_torch_for_device_path_keys_and_numpy_for_float64():
    dz = torch.linspace(-1, 1, 300)
    key = qc.call_key(2, 0, 5, 0)
    a = qc.nsd(dz, s=0.5, key=key)
    b = qc.nsd(dz, s=0.5, key=key._replace(device_path=True))
    c = qc.nsd(dz, s=0.5, key=key, compiled=True)
    assert a.delta == b.delta == c.delta
    assert torch.equal(_levels(a), _levels(b)) and torch.equal(_levels(a), _levels(c))
    d = qc.nsd(dz.double(), s=0.5, key=key, compiled=True)  # float64 never goes to the float32 kernel
    assert d.levels.dtype == torch.float64


def test_torch_path_of_empty_dz_is_zero_step_with_empty_statistics():
    q = qc.nsd_torch(torch.zeros(0, 3), s=0.5, key=qc.CounterKey(1, 1))
    assert q.delta == 0.0 and q.levels.shape == (0, 3) and q.values.shape == (0, 3)
