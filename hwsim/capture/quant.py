"""Quantizers of the pre-activation gradient δz: NSD (dithered backprop), meProp top-k, none.

All three return a :class:`Quantized`: the tensor that really flows into both backward GEMMs,
the integer levels the trace stores, and the step Δ. They run inside autograd's backward on
every layer of every iteration, so they are written as a handful of in-place passes:

* NSD, eq. 4 of the paper: δ̃z = Δ·⌊(δz + ν)/Δ + ½⌋ with ν ~ U(−Δ/2, Δ/2), Δ = s·std(δz).
  Substituting ν = (u − ½)·Δ with u ~ U[0, 1) gives the same levels as ⌊δz/Δ + u⌋, which
  costs one uniform draw, one fused multiply-add and one floor per element. Uniforms are
  i.i.d. from raw numpy SFC64 bits (see :func:`uniform`): measured fastest on CPU among the
  options that keep the dither unbiased (``benchmarks/bench_capture.py``).
* meProp (Sun et al. 2017): keep the k largest |δz| of each example, zero the rest (biased).
* none: δz unchanged.

meProp and none keep float values; their ``levels`` are an int8-style view (Δ = max|δz|/127,
every non-zero rounds to at least ±1) so the trace keeps the exact sparsity pattern.

Devices: the numpy code here is the CPU path. δz on any other device (CUDA, MPS, …) goes to
:mod:`hwsim.capture.quant_device`: the same quantizers in torch on δz's device, with the level
statistics computed there too and one small host transfer per call. A ``torch.Generator``
selects that path on CPU as well (:func:`torch_path`); capture uses it on CPU when the
environment variable ``HWSIM_QUANT_PATH=torch`` is set (default ``auto``: compiled or numpy on CPU), which
is how CPU tests pin the device path. The two paths draw from different random streams: the same
seed gives statistically equal, not bit-identical, traces on CPU and on a GPU.

Counter-based dither (capture's default, ``dither_rng: counter``): a :class:`~hwsim.capture.quant_counter.CounterKey`
passed as ``generator`` sends NSD to :mod:`hwsim.capture.quant_counter`, where every element's u is a hash of the
call's key and its index — the same bits on the C kernel, numpy and torch on any device. The SFC64 and
``torch.Generator`` routes below are the ``sfc64`` stream of older traces.

Compiled: where the C extension is built, float32 CPU NSD and the int8 view's counts run in one C pass each
(:mod:`hwsim.capture.quant_compiled`) with exactly this module's results — the same random stream, levels, Δ and
statistics — in less than half the time. ``HWSIM_QUANT_PATH=numpy`` (or ``compiled=False``) keeps the numpy code
here, to compare or to pin it in tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from hwsim._native import SWITCHES, env_choice
from hwsim.capture import quant_compiled, quant_counter, quant_device
from hwsim.capture.config import DEFAULT_K, DEFAULT_S, METHODS, validate_params
from hwsim.capture.quantized import (
    LevelStats,
    NonFiniteError,
    Quantized,
    count_bad,
    memory_order,
    scaled_std_rms,
    tiny,
    work_dtype,
)

# METHODS, DEFAULT_S (s = 4: the README's sparsity/accuracy table), DEFAULT_K and validate_params live in the
# torch-free hwsim.capture.config and are re-exported here.
__all__ = ["DEFAULT_K", "DEFAULT_S", "METHODS", "validate_params"]
VIEW_LEVELS = quant_device.VIEW_LEVELS  # int8 view of float gradients (meprop, none): 127
_SMALL = 1 << 13  # below this numpy beats torch (fewer µs per call)
_ONES_F32 = np.ones(_SMALL, np.float32)  # Σx of small tensors as a dot
_DOT_CHUNK = 1 << 16  # Σx² as float32 BLAS dots of this many elements, added in float64
_MS_MIN = 2.0**-100  # mean square below this: float32 squares may have underflowed (|δz| < ~1e-19)
_RAW_MIN = 1 << 12  # below this one Generator.random call beats the raw-bits route
_MANTISSAS = np.uint64(0x007FFFFF_007FFFFF)  # the 23 low bits of each 32-bit half
_ONES = np.uint64(0x3F800000_3F800000)  # 1.0f in each half
Rng = np.random.Generator | torch.Generator | quant_counter.CounterKey | None


def torch_path(t: torch.Tensor, generator: Rng = None) -> bool:
    """Whether ``t`` is quantized in torch (:mod:`hwsim.capture.quant_device`): not on CPU, a torch generator, or a
    counter key with ``device_path``."""
    return (not t.is_cpu or isinstance(generator, torch.Generator)
            or (isinstance(generator, quant_counter.CounterKey) and generator.device_path))


QUANT_PATH_ENV = "HWSIM_QUANT_PATH"
QUANT_PATHS = SWITCHES[QUANT_PATH_ENV]  # auto (default), numpy, torch


def quant_path_from_env() -> str:
    """``HWSIM_QUANT_PATH``: ``auto`` (on CPU the compiled kernel where it is built and applies, else numpy; torch on
    other devices), ``numpy`` (never the compiled kernel) or ``torch`` (torch everywhere)."""
    return env_choice(QUANT_PATH_ENV, QUANT_PATHS)


def compiled_on(compiled: bool | None = None) -> bool:
    """Will CPU quantizers use the compiled kernel? ``compiled`` None: unless ``HWSIM_QUANT_PATH`` says otherwise."""
    on = quant_path_from_env() == "auto" if compiled is None else compiled
    return on and quant_compiled.available()


def nsd(dz: torch.Tensor, *, s: float, generator: Rng = None, lazy_values: bool = False,
        compiled: bool | None = None, keep_levels: bool = True) -> Quantized:
    """Non-subtractive dithered quantization with Δ = s·std(δz) (Algorithm 1).

    std is the population std over the whole tensor (all examples), so a one-element tensor
    does not give NaN. σ = 0 (e.g. a dead layer) gives Δ = 0 and all-zero levels; so does a Δ
    below the smallest normal float (a tiny but finite δz, e.g. std 1e-40: Δ·k is not representable
    and 1/Δ overflows). Any finite δz gives finite levels; NaN/Inf raises NonFiniteError. Half-precision
    δz (bf16, fp16) is quantized in float32; ``values`` are cast back to δz's dtype. ``compiled``: use the
    compiled kernel where it applies (:func:`compiled_on`; the same results); ``keep_levels=False`` lets it skip
    writing the levels (then :meth:`Quantized.level_tensor` rebuilds them from the values).
    """
    if not s > 0:
        raise ValueError(f"s must be > 0, got {s!r}")
    if isinstance(generator, quant_counter.CounterKey):  # the counter-based dither: the same bits on every path
        return quant_counter.nsd(dz, s=s, key=generator, lazy_values=lazy_values, compiled=compiled_on(compiled),
                                 keep_levels=keep_levels)
    if torch_path(dz, generator):
        return quant_device.nsd(dz, s=s, generator=generator if isinstance(generator, torch.Generator) else None,
                                lazy_values=lazy_values)
    x = work_dtype(dz)
    sigma, rms = _std_rms(x)
    if not math.isfinite(sigma):
        raise NonFiniteError(count_bad(x))
    delta = s * sigma
    if sigma == 0.0 or delta < tiny(x):  # dead layer, or δz so small that Δ·k is not representable
        z = torch.zeros_like(x)
        return Quantized(values=z.to(dz.dtype), levels=z, delta=0.0)
    n = x.numel()
    bound = math.sqrt(n) * rms / delta * (1 + 1e-5) + 2.0  # |⌊x/Δ + u⌋| <= |x|/Δ + 1, max|x| <= √Σx²
    if dz.dtype == torch.float32 and compiled_on(compiled):
        rng = generator if generator is not None else new_generator()
        fused = quant_compiled.torch_fuses() if n > _SMALL else False  # torch's add_ below, numpy's route above
        if fused is not None and type(rng.bit_generator) is np.random.SFC64:
            return quant_compiled.nsd(x, delta=delta, fused=fused, generator=rng, sum_sq=rms * rms * n,
                                      keep_levels=keep_levels, bound=bound, small=n < _RAW_MIN)
        generator = rng
    if n <= _SMALL and x.is_cpu and not isinstance(generator, torch.Generator):  # numpy: fewer µs per call
        a = x.detach().reshape(-1).numpy()
        lv = a * a.dtype.type(1.0 / delta)
        lv += _uniform_np(n, a.dtype.type, generator if generator is not None else new_generator())
        levels = torch.from_numpy(np.floor(lv, out=lv)).view(x.shape)  # ⌊δz/Δ + u⌋
    else:
        levels = uniform(x, generator=generator).add_(x, alpha=1.0 / delta).floor_()  # ⌊δz/Δ + u⌋
    if lazy_values:
        return Quantized(values=None, levels=levels, delta=delta, dtype=dz.dtype, bound=bound, sum_sq=rms * rms * n)
    return Quantized(values=(levels * delta).to(dz.dtype), levels=levels, delta=delta, bound=bound)


def std(x: torch.Tensor) -> float:
    """Population std from Σx and Σx² (≈5× faster than ``torch.std``'s Welford pass on CPU).

    Σx is torch's cascade sum (a BLAS dot with ones below ``_SMALL``: fewer µs); Σx² is a BLAS
    dot per chunk of ``_DOT_CHUNK`` elements added in float64: one pass without a temporary,
    ~1e-7 relative (one dot over a whole large tensor drifts to ~1e-6..1e-5 on 1 thread).
    Falls back to ``torch.std`` when the mean dominates (cancellation) or the sums overflow.
    """
    if not x.is_cpu:
        return quant_device.std(x)
    return _std_rms(x)[0]


def _std_rms(x: torch.Tensor) -> tuple[float, float]:
    """(population std, root mean square) of :func:`std`."""
    n = x.numel()
    if n == 0:
        return 0.0, 0.0
    flat = x.detach().reshape(-1)
    a = flat.cpu().numpy()
    if n > _SMALL:
        mean = float(flat.sum()) / n
    else:  # a BLAS dot with ones: the cheapest numpy call (``a.sum()`` runs the ufunc machinery)
        mean = float(np.dot(a, _ONES_F32[:n]) if a.dtype == np.float32 else a.sum()) / n
    with np.errstate(over="ignore", under="ignore"):  # out of range: caught below (scaled_std_rms)
        ms = sum(float(np.dot(c, c)) for c in _chunks(a, _DOT_CHUNK)) / n
    if not (math.isfinite(ms) and math.isfinite(mean)) or ms < _MS_MIN:  # squares overflowed or underflowed
        return scaled_std_rms(flat)
    var = ms - mean * mean
    if var < 1e-3 * ms:
        return float(flat.std(correction=0)), math.sqrt(ms)
    return math.sqrt(var), math.sqrt(ms)


def _chunks(a: np.ndarray, size: int) -> list[np.ndarray]:
    return [a] if a.size <= size else [a[i:i + size] for i in range(0, a.size, size)]


def uniform(like: torch.Tensor, *, generator: Rng = None) -> torch.Tensor:
    """U(0, 1) of ``like``'s shape and dtype, i.i.d.: the dither of eq. 4 (ν = (u − ½)·Δ).

    float32: raw 64-bit words of a numpy ``SFC64`` generator, split in two, 23 random bits put
    under the exponent of 1.0 → a float in [1, 2) → shifted to the cell midpoints (j + ½)/2^23:
    symmetric about ½ (mean exactly ½), never 0 or 1, no float conversion. The fastest unbiased
    option measured on CPU: ~2× ``torch.rand`` (``benchmarks/bench_capture.py``). float64 (tests)
    and small tensors use ``Generator.random``. A ``torch.Generator`` or a non-CPU ``like`` selects
    :func:`hwsim.capture.quant_device.uniform` (the same 2^23 midpoints, from torch integer bits). A
    :class:`~hwsim.capture.quant_counter.CounterKey` gives the counter dither's u of the key (the same bits on
    every device), in ``like``'s dtype.
    """
    if isinstance(generator, quant_counter.CounterKey):
        n = like.numel()
        u = (quant_counter.uniform_torch(generator, n, like.device) if torch_path(like, generator) else
             torch.from_numpy(quant_counter.uniform_numpy(generator, n)))
        return u.view(like.shape).to(like.dtype)
    if torch_path(like, generator):
        return quant_device.uniform(like, generator=generator if isinstance(generator, torch.Generator) else None)
    rng = generator if generator is not None else new_generator()
    dt = np.float64 if like.dtype == torch.float64 else np.float32
    return torch.from_numpy(_uniform_np(like.numel(), dt, rng)).view(like.shape)


def _uniform_np(n: int, dt: type, rng: np.random.Generator) -> np.ndarray:
    """:func:`uniform`'s numbers as a flat numpy array (bit operations on whole 64-bit words)."""
    if dt is np.float64 or n < _RAW_MIN:
        return rng.random(n, dtype=dt)
    words = rng.bit_generator.random_raw((n + 1) // 2)  # two float32 mantissas per word
    np.bitwise_and(words, _MANTISSAS, out=words)
    np.bitwise_or(words, _ONES, out=words)
    u = words.view(np.float32)[:n]
    return np.subtract(u, np.float32(1.0 - 2.0**-24), out=u)


def new_generator(seed: int | None = None) -> np.random.Generator:
    """The dither's random source: numpy SFC64 (fast, passes BigCrush/PractRand)."""
    return np.random.Generator(np.random.SFC64(seed))


def meprop(dz: torch.Tensor, *, k: int, generator: Rng = None) -> Quantized:
    """Keep the k largest |δz| of each example (dim 0), zero the rest.

    "Example" is everything after dim 0 (for a conv: all channels and positions). If an
    example has ≤ k elements everything is kept. Deterministic: ``generator`` only selects the
    torch path (:func:`torch_path`).
    """
    if not (isinstance(k, int) and k > 0):
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if torch_path(dz, generator):
        return quant_device.meprop(dz, k=k)
    _check_finite(dz)
    kept = quant_device.topk_kept(dz, k=k)
    if kept is None:
        return passthrough(dz)
    levels, delta = int_view(kept)
    return Quantized(values=kept, levels=levels, delta=delta)


def passthrough(dz: torch.Tensor, *, generator: Rng = None, lazy_levels: bool = False,
                compiled: bool | None = None) -> Quantized:
    """Plain backprop: δz unchanged; levels are its int8 view (exact zero pattern).

    ``generator`` is not drawn from; a ``torch.Generator`` selects the torch path (:func:`torch_path`).
    ``lazy_levels``: a float32 CPU δz is only counted (:func:`counted_view`: the same statistics in a few numpy
    passes) and ``levels`` is None until :meth:`Quantized.level_tensor` builds it (capture: sampled iterations).
    ``compiled``: count in the compiled kernel where it is built (:func:`compiled_on`; the same statistics).
    """
    if torch_path(dz, generator):
        return quant_device.passthrough(dz)
    if lazy_levels:
        q = counted_view(dz, compiled=compiled)
        if q is not None:
            return q
    levels, delta = int_view(dz)
    return Quantized(values=dz, levels=levels, delta=delta)


def counted_view(dz: torch.Tensor, *, max_bits: int = 16, compiled: bool | None = None) -> Quantized | None:
    """δz unchanged with the statistics of its int8 view (:func:`int_view`), the view itself built on demand;
    None unless ``dz`` is a finite float32 CPU tensor with a non-zero, normal Δ (then :func:`int_view` runs).

    The counts are :func:`int_view`'s exactly: |level| = max(1, rint(|δz|/Δ)) for δz ≠ 0 with Δ = max|δz|/127
    (a float32 division, rounding half to even, as torch's), so a level of magnitude ≥ 2 is one whose
    rint(|δz|/Δ) is, and every non-zero δz is a non-zero level — about a third of the passes of building the
    view and counting it (attention products, which are not dithered by default, on every iteration).
    """
    if dz.dtype != torch.float32 or not dz.is_cpu or dz.numel() == 0:
        return None
    if max_bits == 16 and compiled_on(compiled):  # the same counts in two C reads of δz
        got = quant_compiled.view_stats(dz)
        if got is None:
            return None
        delta, st = got
        return Quantized(values=dz, levels=None, delta=delta, stats=st, make_levels=_view_levels(dz, delta))
    a = memory_order(dz.detach()).reshape(-1).numpy()  # order-free counts: no copy of a permuted δz
    r = np.abs(a)
    mx = float(r.max())
    delta = mx / VIEW_LEVELS
    if not (math.isfinite(mx) and delta >= np.finfo(np.float32).tiny):
        return None
    nnz = int(np.count_nonzero(a))
    np.divide(r, np.float32(delta), out=r)
    ak = np.rint(r, out=r).astype(np.int8)  # |level| of the non-zeros, except that rint(|δz|/Δ) = 0 stands for 1
    wide = ak[np.flatnonzero(ak >= 2)]
    top = int(wide.max()) if wide.size else int(nnz > 0)
    ge = [nnz, wide.size] + [int(np.count_nonzero(wide >= (1 << b))) for b in range(2, top.bit_length())] + [0]
    hist = [0] * (max_bits - 1)
    for b in range(len(ge) - 1):  # bit_length b + 1 → sign + (b + 1) bits → hist entry b
        hist[min(b, max_bits - 2)] += ge[b] - ge[b + 1]
    st = LevelStats(numel=a.size, nnz=nnz, max_abs=top, hist=hist)
    return Quantized(values=dz, levels=None, delta=delta, stats=st, make_levels=_view_levels(dz, delta))


def _view_levels(dz: torch.Tensor, delta: float) -> Callable[[], torch.Tensor]:
    """:func:`int_view`'s levels (its normal-Δ branch), built only when stored."""
    def levels() -> torch.Tensor:
        x = dz.detach()
        return (x.abs() / delta).round_().clamp_(min=1.0) * (x != 0) * x.sign()
    return levels


def int_view(x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Symmetric int8-style levels of a float tensor: Δ = max|x|/127, non-zeros kept non-zero."""
    x = work_dtype(x)
    mx = float(x.abs().amax()) if x.numel() else 0.0
    if not math.isfinite(mx):
        raise NonFiniteError(count_bad(x))
    if mx == 0.0:
        return torch.zeros_like(x), 0.0
    delta = mx / VIEW_LEVELS
    if delta < tiny(x):  # tiny max|x|: Δ is not a normal float of x's dtype; divide in float64 (levels ≤ 127)
        mag = (x.double().abs() / delta).round_().clamp_(min=1.0).to(x.dtype) * (x != 0)
    else:
        mag = (x.abs() / delta).round_().clamp_(min=1.0) * (x != 0)
    return mag * x.sign(), delta


def quantize(dz: torch.Tensor, *, method: str, s: float | None = None, k: int | None = None,
             generator: Rng = None, lazy_values: bool = False, compiled: bool | None = None,
             keep_levels: bool = True) -> Quantized:
    """Dispatch on ``method`` (one of :data:`METHODS`); ``compiled`` and ``keep_levels`` as :func:`nsd`'s."""
    if method == "dither":
        if type(generator) is quant_counter.CounterKey and s is not None and s > 0:  # capture's default: one hop
            return quant_counter.nsd(dz, s=float(s), key=generator, lazy_values=lazy_values,
                                     compiled=compiled_on(compiled), keep_levels=keep_levels)
        return nsd(dz, s=float(s) if s is not None else float("nan"), generator=generator, lazy_values=lazy_values,
                   compiled=compiled, keep_levels=keep_levels)
    if method == "meprop":
        return meprop(dz, k=k, generator=generator)  # type: ignore[arg-type]
    if method == "none":
        return passthrough(dz, generator=generator, lazy_levels=lazy_values, compiled=compiled)
    raise ValueError(f"method {method!r} is unknown; choose one of {METHODS}")


# ----------------------------------------------------------------------------- statistics


def level_stats(levels: torch.Tensor, *, max_bits: int = 16, bound: float = math.inf) -> LevelStats:
    """Density, max |level| and bit-width histogram (same layout as ``format.level_histogram``).

    In numpy (a few µs less per call than torch, which adds up on every layer of every
    iteration): |k| as int8 (int16 beyond 127) and ``ge[b] = #|k| >= 2^b`` as one count of a
    small-integer comparison per bit-width class up to the largest level (``bincount`` costs
    ~1.4 ns/element, a boolean gather of the non-zeros more than the dither itself). Without a
    ``bound`` on |k| below 2^15 (:attr:`Quantized.bound`), a min/max pass first checks that
    they fit; larger levels (rare) use float comparisons. Levels on another device are counted
    there (:func:`hwsim.capture.quant_device.level_stats`).
    """
    if not levels.is_cpu:
        return quant_device.level_stats(levels, max_bits=max_bits)
    flat = levels.detach().reshape(-1)
    n = flat.numel()
    hist = [0] * (max_bits - 1)
    last = max_bits - 2
    if n == 0:
        return LevelStats(numel=0, nnz=0, max_abs=0, hist=hist)
    a = flat.cpu().numpy()
    if bound >= 1 << 15:
        if n <= _SMALL:
            bound = max(-float(a.min()), float(a.max()))
        else:  # one pass instead of two
            lo, hi = torch.aminmax(flat)
            bound = max(-float(lo), float(hi))
    if bound < 1 << 15:
        ak = a.astype(np.int8 if bound <= 127 else np.int16)
        ge = [int(np.count_nonzero(ak))]  # ge[b] = #|k| >= 2^b
        mx = int(np.abs(ak, out=ak).max()) if ge[0] else 0
        ge += [int(np.count_nonzero(ak >= (1 << b))) for b in range(1, mx.bit_length())]
    else:
        mx = int(bound)
        a = np.abs(a)
        ge = [int(np.count_nonzero(a >= (1 << b))) for b in range(mx.bit_length())]
    ge.append(0)
    for b in range(len(ge) - 1):  # bit_length b + 1 -> sign + (b + 1) bits -> hist entry b
        hist[min(b, last)] += ge[b] - ge[b + 1]
    return LevelStats(numel=n, nnz=ge[0], max_abs=mx, hist=hist)


def _check_finite(x: torch.Tensor) -> None:
    if x.numel() and not math.isfinite(float(x.abs().amax())):
        raise NonFiniteError(count_bad(x))
