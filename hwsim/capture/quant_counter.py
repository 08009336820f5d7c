"""NSD with a counter-based dither: every element's u is a pure function of (seed, iteration, call, element index).

The default dither stream of capture (``dither_rng: counter``; ``sfc64`` keeps the older sequential numpy stream of
:mod:`hwsim.capture.quant`). A call's :class:`CounterKey` (two 32-bit words) is derived from the capture's seed,
the iteration, the GEMM call site's name and the call's ordinal at that site within the iteration
(:func:`call_key`, a SplitMix64 chain); element ``i`` of δz (row-major index) then draws

    h = H(i mod 2^32, k0, k1 XOR ⌊i / 2^32⌋·0x9E3779B9),   u = (2·⌊h / 2^9⌋ + 1)·2^-24,

u an odd multiple of 2^-24 in (0, 1) (mean exactly ½, the grid of the SFC64 stream). H is two rounds of Chris
Wellons' "lowbias32" (xorshift 16, ×0x21f0aaad, xorshift 15, ×0x735a2d97, xorshift 15: among the best two-multiply
32-bit hashes of his hash-prospector search, avalanche-bias score ≈ 0.107 there against ≈ 0.26 for MurmurHash3's
finaliser) with the key XORed in before each round: four 32-bit multiplies an element, which AVX2 does 8 lanes at a
time and a GPU or torch in int64 with 32-bit masking — unlike Philox4x32, whose 32×32→64-bit products need twice
the vector work on AVX2. The tests check uniformity (χ², KS), avalanche, and independence between neighbouring
elements, calls and iterations (``tests/test_dither_counter.py``).

σ comes from float64 Σx and Σx² (each x² of a float32 is exact in float64; no over- or underflow), element i added
to lane i mod 128 in index order and the 128 lanes added left to right; Δ = float32(s·σ), α = float32(1/Δ), levels
k = ⌊float32(float32(δz·α) + u)⌋ (two roundings), δ̃z = float32(k·Δ). Three paths compute exactly this:

* the C kernel (``_nsdkernel.nsd_ctr``: one read for the sums, one pass for dither, levels, statistics and noise
  sums; AVX2 lanes or a baseline C loop), for float32 δz on CPU where it is built;
* numpy (:func:`nsd_numpy`), the CPU fallback, with the kernel's lane order: the same Δ and levels to the bit;
* torch (:func:`nsd_torch`) on any device (integers in int64 masked to 32 bits), for δz that is not on the CPU or
  under ``HWSIM_QUANT_PATH=torch``. Its uniforms are the same bits; its sums are torch's (another order), so its
  Δ equals the others' unless the float64 sums, which differ in their last bits, straddle a float32 rounding
  boundary of Δ (~1e-13 relative apart against float32's 6e-8: about one call in 10^6 differs by one ulp of Δ).
  On a device without float64 (:data:`NO_FLOAT64`: Apple's MPS) the sums are the numpy path's, on a host copy.

float64 δz (tests) keeps Δ = s·σ in float64 (not rounded to float32) and float64 arithmetic on the same u: there
numpy and torch may differ in Δ's last bit (their sums run in different orders), so their levels agree except where
δz/Δ + u lands within that bit of an integer. Half types (bf16, fp16) are quantized in float32 and δ̃z cast back.
"""

from __future__ import annotations

import hashlib
import math
from typing import NamedTuple

import numpy as np
import torch

from hwsim.capture import quant_compiled, quant_device
from hwsim.capture.quantized import LevelStats, NonFiniteError, Quantized, count_bad, work_dtype

_ext = quant_compiled.extension()  # the one import of the NSD kernel (quant_compiled's)
M32 = 0xFFFFFFFF
_M64 = (1 << 64) - 1
_M1, _M2, _HI = 0x21F0AAAD, 0x735A2D97, 0x9E3779B9
_U24 = 2.0**-24
_F32_TINY = float(np.finfo(np.float32).tiny)


class CounterKey(NamedTuple):
    """One quantization call's dither key (two 32-bit words). ``device_path``: quantize in torch even on CPU.
    (An immutable named tuple: one is made per quantization call, in the backward pass.)"""

    k0: int
    k1: int
    device_path: bool = False


def _mix64(z: int) -> int:
    """SplitMix64's output function (Steele, Lea, Flood 2014): a bijection of 64-bit words with full avalanche."""
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def site_hash(name: str) -> int:
    """A 64-bit hash of a call site's name, the same in every process (unlike Python's ``hash``)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


def iteration_prefix(seed: int, iteration: int) -> int:
    """The first half of :func:`call_key`'s chain (the same for every call of an iteration)."""
    return _mix64(_mix64(seed & _M64) ^ (iteration & _M64))


def key_after(prefix: int, site: int, ordinal: int, *, device_path: bool = False) -> CounterKey:
    """:func:`call_key` from its :func:`iteration_prefix`."""
    z = _mix64(_mix64(prefix ^ (site & _M64)) ^ (ordinal & _M64))
    return CounterKey(z & M32, z >> 32, device_path)


def call_key(seed: int, iteration: int, site: int, ordinal: int, *, device_path: bool = False) -> CounterKey:
    """The key of the ``ordinal``-th quantization at call site ``site`` (:func:`site_hash`) in ``iteration``:
    z = M(M(M(M(seed) ⊕ iteration) ⊕ site) ⊕ ordinal) with M SplitMix64's output function; k0, k1 = z's halves."""
    return key_after(iteration_prefix(seed, iteration), site, ordinal, device_path=device_path)


# ----------------------------------------------------------------------------- uniforms

_CHUNK = 1 << 15  # numpy path: elements per chunk (its temporaries stay in the L2 cache); divides 2^32
_ONE_F32, _C24 = np.uint32(0x3F800000), np.float32(1.0 - _U24)


def _round_np(x: np.ndarray, tmp: np.ndarray) -> None:
    np.right_shift(x, 16, out=tmp)
    x ^= tmp
    x *= np.uint32(_M1)
    np.right_shift(x, 15, out=tmp)
    x ^= tmp
    x *= np.uint32(_M2)
    np.right_shift(x, 15, out=tmp)
    x ^= tmp


def _hash_into(x: np.ndarray, k0: int, k1: int, tmp: np.ndarray) -> None:
    """H(x, k0, k1) in place (module doc): the key word XORed in before each of the two rounds."""
    x ^= np.uint32(k0)
    _round_np(x, tmp)
    x ^= np.uint32(k1)
    _round_np(x, tmp)


def hash_words(idx: np.ndarray, k0: int, k1: int) -> np.ndarray:
    """H(i, k0, k1) of a uint32 array of indices (in place; module doc): the 32 bits u is made of."""
    _hash_into(idx, k0, k1, np.empty_like(idx))
    return idx


def _uniform_into(key: CounterKey, start: int, out: np.ndarray, tmp: np.ndarray) -> None:
    """u of elements ``start`` … into ``out`` (float32, at most :data:`_CHUNK`; not across a multiple of 2^32)."""
    x = out.view(np.uint32)
    np.add(_ARANGE[:x.size], np.uint32(start & M32), out=x)
    _hash_into(x, key.k0, key.k1 ^ (((start >> 32) * _HI) & M32), tmp)
    x >>= np.uint32(9)
    x |= _ONE_F32  # 1.m
    out -= _C24  # 1.m − (1 − 2^-24) = (2·m + 1)·2^-24, exact


def _spans(n: int, start: int):  # noqa: ANN202 - a generator of (offset, length)
    i = 0
    while i < n:  # chunks of at most _CHUNK that keep ⌊index / 2^32⌋ fixed
        at = start + i
        m = min(n - i, _CHUNK, ((at >> 32) + 1 << 32) - at)
        yield i, m
        i += m


def uniform_numpy(key: CounterKey, n: int, start: int = 0) -> np.ndarray:
    """The float32 u of elements ``start`` … ``start + n − 1`` in numpy (module doc)."""
    out = np.empty(n, np.float32)
    tmp = np.empty(min(n, _CHUNK), np.uint32)
    for i, m in _spans(n, start):
        _uniform_into(key, start + i, out[i:i + m], tmp[:m])
    return out


_ARANGE = np.arange(_CHUNK, dtype=np.uint32)


def _round_torch(x: torch.Tensor) -> torch.Tensor:
    x ^= x >> 16
    x.mul_(_M1).bitwise_and_(M32)  # < 2^62: no int64 overflow
    x ^= x >> 15
    x.mul_(_M2).bitwise_and_(M32)
    x ^= x >> 15
    return x


def uniform_torch(key: CounterKey, n: int, device: torch.device | str = "cpu", start: int = 0) -> torch.Tensor:
    """The same u as :func:`uniform_numpy`, computed in torch on ``device`` (int64 with 32-bit masking)."""
    idx = torch.arange(start, start + n, dtype=torch.int64, device=device)
    hi = (idx >> 32).mul_(_HI).bitwise_and_(M32).bitwise_xor_(key.k1)
    x = _round_torch(idx.bitwise_and_(M32).bitwise_xor_(key.k0))
    x = _round_torch(x.bitwise_xor_(hi))
    return ((x >> 9) * 2 + 1).to(torch.float32).mul_(_U24)


def uniform_kernel(key: CounterKey, n: int, start: int = 0) -> np.ndarray:
    """The same u from the C kernel (tests); requires the extension."""
    out = np.empty(n, np.float32)
    _ext.ctr_uniform(key.k0, key.k1, start, out)
    return out


# ----------------------------------------------------------------------------- σ and Δ

_LANES = 128  # σ's float64 sums: element i goes to lane i mod _LANES (the kernel's CTR_LANES)


def sums_numpy(a: np.ndarray) -> tuple[float, float]:
    """(Σx, Σx²) of a flat float32/float64 array in float64, in the kernel's lane order (module doc): each chunk's
    rows of :data:`_LANES` are added to the running lanes one row after the other (numpy reduces axis 0 row by
    row), the tail's elements once each to the first lanes."""
    n = a.size
    full = n - n % _LANES
    rows = min(full, _CHUNK) // _LANES
    buf, sq = np.empty((rows + 1, _LANES)), np.empty((rows + 1, _LANES))
    lanes1, lanes2 = np.zeros(_LANES), np.zeros(_LANES)
    for i in range(0, full, _LANES * rows) if rows else ():
        m = min(rows, (full - i) // _LANES)
        buf[0], sq[0] = lanes1, lanes2  # the running sums first: then row after row
        buf[1:m + 1] = a[i:i + _LANES * m].reshape(m, _LANES)
        np.multiply(buf[1:m + 1], buf[1:m + 1], out=sq[1:m + 1])  # exact in float64
        lanes1, lanes2 = np.add.reduce(buf[:m + 1], axis=0), np.add.reduce(sq[:m + 1], axis=0)
    t = a[full:].astype(np.float64)
    lanes1[:t.size] += t
    lanes2[:t.size] += t * t
    s1 = s2 = 0.0
    for v in lanes1.tolist():
        s1 += v
    for v in lanes2.tolist():
        s2 += v
    return s1, s2


def step(s1: float, s2: float, n: int, s: float, *, f32: bool = True) -> float:
    """Δ = float32(s·σ) with σ² = Σx²/n − (Σx/n)² (0 if negative); 0 when Δ is not a normal float32.
    ``f32=False`` (float64 δz): Δ = s·σ unrounded, 0 below the smallest normal float64."""
    if not (math.isfinite(s1) and math.isfinite(s2)):
        raise FloatingPointError("non-finite sums")
    if n == 0:
        return 0.0
    mean = s1 / n
    var = s2 / n - mean * mean
    sigma = math.sqrt(var) if var > 0.0 else 0.0
    if not f32:
        d = s * sigma
        return d if d >= np.finfo(np.float64).tiny else 0.0
    d = float(np.float32(s * sigma))
    if math.isinf(d):
        raise OverflowError(f"s·std(δz) = {s * sigma:.3g} overflows float32")
    return d if d >= _F32_TINY else 0.0


def _alpha(delta: float, dt: type) -> np.floating:
    return dt(1.0 / delta)  # float32: 1/Δ in float64, rounded once to float32 (the kernel's)


# ----------------------------------------------------------------------------- the three paths

def nsd(dz: torch.Tensor, *, s: float, key: CounterKey, lazy_values: bool = False, compiled: bool = False,
        keep_levels: bool = True) -> Quantized:
    """NSD of ``dz`` with the counter dither of ``key``: the kernel where ``compiled`` and it applies (float32 CPU),
    torch for other devices or ``key.device_path``, else numpy — the same levels, Δ and statistics (module doc)."""
    if not dz.is_cpu or key.device_path:
        return nsd_torch(dz, s=s, key=key, lazy_values=lazy_values)
    if compiled and _ext is not None and dz.dtype == torch.float32:
        return nsd_kernel(dz, s=s, key=key, keep_levels=keep_levels)
    return nsd_numpy(dz, s=s, key=key, lazy_values=lazy_values)


def nsd_kernel(dz: torch.Tensor, *, s: float, key: CounterKey, keep_levels: bool = True) -> Quantized:
    """The C kernel's NSD of a float32 CPU δz (any strides; read in row-major order)."""
    xc = dz.detach() if dz.requires_grad else dz  # (a gradient in backward does not require grad: no new object)
    if not xc.is_contiguous():
        xc = xc.contiguous()
    values = torch.empty_like(xc)  # contiguous, as xc
    levels = torch.empty_like(xc) if keep_levels else None
    a = xc.numpy()  # the C loops read any C-contiguous buffer as flat
    got = _ext.nsd_ctr(a, key.k0, key.k1, float(s), values.numpy(), None if levels is None else levels.numpy())
    if got is None:
        raise NonFiniteError(count_bad(xc))
    delta, s1, s2, nnz, mx, hist, skk, sxk = got
    if math.isinf(delta):
        step(s1, s2, a.size, s)  # raises the overflow error
    stats = LevelStats(numel=a.size, nnz=nnz, max_abs=int(mx), hist=list(hist))
    make = None
    if levels is None:
        make = (quant_compiled.rebuild_levels(values, delta) if mx < quant_compiled.EXACT_REBUILD else
                lambda: nsd_numpy(xc, s=s, key=key).levels)
    return Quantized(values=values, levels=levels, delta=delta, stats=stats, sum_sq=s2,
                     noise=(s2, skk * delta * delta, sxk * delta), make_levels=make)


def nsd_numpy(dz: torch.Tensor, *, s: float, key: CounterKey, lazy_values: bool = False) -> Quantized:
    """The numpy path (CPU): the kernel's results to the bit."""
    x = work_dtype(dz).detach()
    a = x.contiguous().reshape(-1).numpy()
    dt = np.float64 if a.dtype == np.float64 else np.float32
    try:
        s1, s2 = sums_numpy(a)
        delta = step(s1, s2, a.size, s, f32=dt is np.float32)
    except FloatingPointError:
        raise NonFiniteError(count_bad(x)) from None
    if delta == 0.0:
        z = torch.zeros_like(x)
        return Quantized(values=z.to(dz.dtype), levels=z, delta=0.0, sum_sq=s2)
    lv = np.empty(a.size, dt)
    alpha = _alpha(delta, dt)
    u = np.empty(min(a.size, _CHUNK), np.float32)
    tmp = np.empty(u.size, np.uint32)
    for i, m in _spans(a.size, 0):  # chunk by chunk: the temporaries stay in the cache
        _uniform_into(key, i, u[:m], tmp[:m])
        seg = lv[i:i + m]
        np.multiply(a[i:i + m], alpha, out=seg)  # rounded once in dt
        seg += u[:m]  # rounded again
        np.floor(seg, out=seg)
    levels = torch.from_numpy(lv).view(x.shape)
    bound = math.sqrt(s2) / delta * (1 + 1e-5) + 2.0
    if lazy_values:
        return Quantized(values=None, levels=levels, delta=delta, dtype=dz.dtype, bound=bound, sum_sq=s2)
    return Quantized(values=(levels * delta).to(dz.dtype), levels=levels, delta=delta, bound=bound, sum_sq=s2)


def nsd_torch(dz: torch.Tensor, *, s: float, key: CounterKey, lazy_values: bool = False) -> Quantized:
    """The torch path on δz's device (one host transfer with the statistics, as :mod:`quant_device`'s)."""
    x = work_dtype(dz).detach()
    n = x.numel()
    if n == 0:
        z = torch.zeros_like(x)
        return Quantized(values=z.to(dz.dtype), levels=z, delta=0.0, stats=quant_device._empty_stats())
    if x.device.type in NO_FLOAT64:
        return _nsd_torch_host_sigma(dz, x, s=s, key=key, lazy_values=lazy_values)
    f32 = x.dtype == torch.float32
    x64 = x.reshape(-1).double()
    s1, s2 = x64.sum(), torch.dot(x64, x64)
    mean = s1 / n
    sigma = (s2 / n - mean * mean).clamp_min(0.0).sqrt()
    d = (sigma * s).float() if f32 else sigma * s
    ok = (d >= torch.finfo(x.dtype).tiny) & torch.isfinite(d)
    delta = torch.where(ok, d, torch.zeros_like(d))
    alpha = torch.where(ok, (1.0 / delta.double()).to(x.dtype), torch.zeros_like(d))  # 1/Δ in float64, rounded
    levels = (x * alpha).add_(uniform_torch(key, n, x.device).view(x.shape).to(x.dtype)).floor_()
    (head, t1, t2, raw), st = quant_device._fetch(torch.stack((delta.double(), s1, s2, d.double())), levels)
    if st is None or not (math.isfinite(t1) and math.isfinite(t2)):
        raise NonFiniteError(count_bad(x))
    if math.isinf(raw):
        step(t1, t2, n, s)  # raises the overflow error
    return _device_result(dz, levels, head, st, lazy_values)


NO_FLOAT64 = {"mps"}  # device types without float64: σ's sums run on the host (numpy's lane order, exact as the kernel)


def _nsd_torch_host_sigma(dz: torch.Tensor, x: torch.Tensor, *, s: float, key: CounterKey,
                          lazy_values: bool) -> Quantized:
    """:func:`nsd_torch` on a device without float64 (Apple's MPS): Σx, Σx² from a host copy of δz in the kernel's
    order (:func:`sums_numpy`: the CPU's Δ to the bit), the levels on the device. One more transfer per call."""
    n = x.numel()
    try:
        s1, s2 = sums_numpy(x.reshape(-1).cpu().numpy())
        delta = step(s1, s2, n, s)
    except FloatingPointError:
        raise NonFiniteError(count_bad(x)) from None
    alpha = float(_alpha(delta, np.float32)) if delta else 0.0
    levels = (x * torch.tensor(alpha, dtype=x.dtype, device=x.device))
    levels = levels.add_(uniform_torch(key, n, x.device).view(x.shape).to(x.dtype)).floor_()
    st = quant_device._fetch(torch.zeros((), device=x.device), levels)[1]
    if st is None:
        raise NonFiniteError(count_bad(x))
    return _device_result(dz, levels, delta, st, lazy_values)


def _device_result(dz: torch.Tensor, levels: torch.Tensor, delta: float, stats: LevelStats,
                   lazy_values: bool) -> Quantized:
    """The torch paths' result: δ̃z = levels·Δ in δz's dtype, or built later (``lazy_values``)."""
    if lazy_values:
        return Quantized(values=None, levels=levels, delta=delta, dtype=dz.dtype, stats=stats)
    return Quantized(values=(levels * delta).to(dz.dtype), levels=levels, delta=delta, stats=stats)
