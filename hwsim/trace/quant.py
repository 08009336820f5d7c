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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from hwsim.trace.format import bit_width

METHODS = ("dither", "meprop", "none")
# s = 4 gives >= 90 % δ̃z sparsity at <= 1 point accuracy change on digits for mlp500,
# lenet300 and lenet5 (README table); for Gaussian δz the density would be about 0.8/s.
DEFAULT_S = 4.0
DEFAULT_K = 20  # meProp: kept per example
VIEW_LEVELS = 127  # int8 view of float gradients (meprop, none)
_CHUNK = 1 << 23  # float32 sums of 0/1 are exact below 2^24 per chunk
_NUMPY_MAX = 1 << 15  # statistics of smaller tensors run in numpy (fewer µs per op than torch)
_RAW_MIN = 1 << 12  # below this one Generator.random call beats the raw-bits route
Rng = np.random.Generator | torch.Generator | None


class NonFiniteError(FloatingPointError):
    """δz holds NaN or Inf (detected through std / max, which are computed anyway)."""


@dataclass(frozen=True)
class Quantized:
    """δ̃z (what backprop uses), its integer levels (float tensor of integers) and the step Δ.

    ``values`` is None when NSD was asked for ``lazy_values``: then :meth:`take_values` scales
    the levels *in place* (saving an allocation and a pass in the backward hook), after which
    ``levels`` must not be used any more.
    """

    values: torch.Tensor | None
    levels: torch.Tensor
    delta: float
    dtype: torch.dtype | None = None

    def take_values(self) -> torch.Tensor:
        if self.values is not None:
            return self.values
        return self.levels.mul_(self.delta).to(self.dtype or self.levels.dtype)


def nsd(dz: torch.Tensor, *, s: float, generator: Rng = None, lazy_values: bool = False) -> Quantized:
    """Non-subtractive dithered quantization with Δ = s·std(δz) (Algorithm 1).

    std is the population std over the whole tensor (all examples), so a one-element tensor
    does not give NaN. σ = 0 (e.g. a dead layer) gives Δ = 0 and all-zero levels.
    """
    if not s > 0:
        raise ValueError(f"s must be > 0, got {s!r}")
    x = _work_dtype(dz)
    sigma = std(x)
    if not math.isfinite(sigma):
        raise NonFiniteError(_count_bad(x))
    if sigma == 0.0:
        z = torch.zeros_like(x)
        return Quantized(values=z.to(dz.dtype), levels=z, delta=0.0)
    delta = s * sigma
    levels = uniform(x, generator=generator).add_(x, alpha=1.0 / delta).floor_()  # ⌊δz/Δ + u⌋
    if lazy_values:
        return Quantized(values=None, levels=levels, delta=delta, dtype=dz.dtype)
    return Quantized(values=(levels * delta).to(dz.dtype), levels=levels, delta=delta)


def std(x: torch.Tensor) -> float:
    """Population std from Σx and Σx² (≈5× faster than ``torch.std``'s Welford pass on CPU).

    Falls back to ``torch.std`` when the mean dominates (cancellation) or the sums overflow.
    """
    n = x.numel()
    if n == 0:
        return 0.0
    flat = x.reshape(-1)
    mean = float(flat.sum()) / n
    ms = float(flat.square().sum()) / n  # cascade sum: ~1e-7 relative (a BLAS dot drifts to ~3e-5 on 1 thread)
    var = ms - mean * mean
    if not (math.isfinite(ms) and math.isfinite(mean)) or var < 1e-3 * ms:
        return float(flat.std(correction=0))
    return math.sqrt(var)


def uniform(like: torch.Tensor, *, generator: Rng = None) -> torch.Tensor:
    """U(0, 1) of ``like``'s shape and dtype, i.i.d.: the dither of eq. 4 (ν = (u − ½)·Δ).

    float32: raw 64-bit words of a numpy ``SFC64`` generator, split in two, 23 random bits put
    under the exponent of 1.0 → a float in [1, 2) → shifted to the cell midpoints (j + ½)/2^23:
    symmetric about ½ (mean exactly ½), never 0 or 1, no float conversion. The fastest unbiased
    option measured on CPU: ~2× ``torch.rand`` (``benchmarks/bench_capture.py``). float64 (tests)
    and small tensors use ``Generator.random``; a ``torch.Generator`` selects ``torch.rand``.
    """
    if isinstance(generator, torch.Generator):
        return torch.rand(like.shape, dtype=like.dtype, generator=generator)
    rng = generator if generator is not None else new_generator()
    n = like.numel()
    if like.dtype == torch.float64 or n < _RAW_MIN:
        dt = np.float64 if like.dtype == torch.float64 else np.float32
        return torch.from_numpy(rng.random(like.shape, dtype=dt))
    words = rng.bit_generator.random_raw((n + 1) // 2)  # uint64
    b = torch.from_numpy(words.view(np.int32)[:n])
    b.bitwise_and_(0x007FFFFF).bitwise_or_(0x3F800000)
    return b.view(torch.float32).sub_(1.0 - 2.0**-24).view(like.shape)


def new_generator(seed: int | None = None) -> np.random.Generator:
    """The dither's random source: numpy SFC64 (fast, passes BigCrush/PractRand)."""
    return np.random.Generator(np.random.SFC64(seed))


def meprop(dz: torch.Tensor, *, k: int) -> Quantized:
    """Keep the k largest |δz| of each example (dim 0), zero the rest.

    "Example" is everything after dim 0 (for a conv: all channels and positions). If an
    example has ≤ k elements everything is kept.
    """
    if not (isinstance(k, int) and k > 0):
        raise ValueError(f"k must be a positive integer, got {k!r}")
    _check_finite(dz)
    flat = dz.reshape(dz.shape[0], -1) if dz.dim() > 1 else dz.reshape(1, -1)
    if k >= flat.shape[1]:
        return passthrough(dz)
    idx = flat.abs().topk(k, dim=1, sorted=False).indices
    kept = torch.zeros_like(flat).scatter_(1, idx, flat.gather(1, idx)).reshape(dz.shape)
    levels, delta = int_view(kept)
    return Quantized(values=kept, levels=levels, delta=delta)


def passthrough(dz: torch.Tensor) -> Quantized:
    """Plain backprop: δz unchanged; levels are its int8 view (exact zero pattern)."""
    levels, delta = int_view(dz)
    return Quantized(values=dz, levels=levels, delta=delta)


def int_view(x: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Symmetric int8-style levels of a float tensor: Δ = max|x|/127, non-zeros kept non-zero."""
    x = _work_dtype(x)
    mx = float(x.abs().amax()) if x.numel() else 0.0
    if not math.isfinite(mx):
        raise NonFiniteError(_count_bad(x))
    if mx == 0.0:
        return torch.zeros_like(x), 0.0
    delta = mx / VIEW_LEVELS
    mag = (x.abs() / delta).round_().clamp_(min=1.0) * (x != 0)
    return mag * x.sign(), delta


def quantize(dz: torch.Tensor, *, method: str, s: float | None = None, k: int | None = None,
             generator: Rng = None, lazy_values: bool = False) -> Quantized:
    """Dispatch on ``method`` (one of :data:`METHODS`)."""
    if method == "dither":
        return nsd(dz, s=float(s) if s is not None else float("nan"), generator=generator, lazy_values=lazy_values)
    if method == "meprop":
        return meprop(dz, k=k)  # type: ignore[arg-type]
    if method == "none":
        return passthrough(dz)
    raise ValueError(f"method {method!r} is unknown; choose one of {METHODS}")


def validate_params(*, method: str, s: float | None, k: int | None) -> None:
    """Fail early (before training) on a bad method / s / k."""
    if method not in METHODS:
        raise ValueError(f"method {method!r} is unknown; choose one of {METHODS}")
    if method == "dither" and (s is None or not float(s) > 0):
        raise ValueError(f"s must be > 0 for method 'dither', got {s!r}")
    if method == "meprop" and (k is None or isinstance(k, bool) or not isinstance(k, int) or k <= 0):
        raise ValueError(f"k must be a positive integer for method 'meprop', got {k!r}")


# ----------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class LevelStats:
    """Per-call statistics of integer levels, computed in torch without gathering non-zeros."""

    numel: int
    nnz: int
    max_abs: int
    hist: list[int]  # entry b-2 counts non-zero levels that need b bits (sign + magnitude)

    @property
    def density(self) -> float:
        return self.nnz / max(1, self.numel)

    @property
    def max_bits(self) -> int:
        return bit_width(self.max_abs)

    def to_json(self, *, delta: float) -> dict[str, float | int | list[int]]:
        """The per-layer, per-iteration record of the trace manifest (``layer_stats`` + Δ)."""
        return {"density": self.density, "max_bits": self.max_bits, "hist": self.hist, "delta": delta}


def level_stats(levels: torch.Tensor, *, max_bits: int = 16) -> LevelStats:
    """Density, max |level| and bit-width histogram (same layout as ``format.level_histogram``).

    |k| as int8 (levels are small), then one clamp-and-sum per bit-width class up to the largest
    level: ~0.2 ns/element per class (``bincount`` is 1.4, a boolean gather of the non-zeros
    more than the dither itself). Levels beyond ±127 (rare) use float threshold passes.
    """
    flat = levels.detach().reshape(-1)
    n = flat.numel()
    hist = [0] * (max_bits - 1)
    last = max_bits - 2
    if n == 0:
        return LevelStats(numel=0, nnz=0, max_abs=0, hist=hist)
    if n <= _NUMPY_MAX:
        a = np.abs(flat.numpy())
        mx = int(a.max())
        ge = [int(np.count_nonzero(a >= (1 << b))) for b in range(mx.bit_length())] + [0]
        for b in range(len(ge) - 1):
            hist[min(b, last)] += ge[b] - ge[b + 1]
        return LevelStats(numel=n, nnz=ge[0], max_abs=mx, hist=hist)
    lo, hi = torch.aminmax(flat)
    mx = int(max(-float(lo), float(hi)))
    if mx == 0:
        return LevelStats(numel=n, nnz=0, max_abs=0, hist=hist)
    if mx <= 127:
        a8 = flat.to(torch.int8).abs_()
        ge = [_sum(a8.clamp(max=1))]  # ge[b] = #|k| >= 2^b
        ge += [_sum((a8 >> b).clamp_(max=1)) for b in range(1, mx.bit_length())]
    else:
        a = flat.abs()
        ge = [_count_ge(a, 1 << b) for b in range(mx.bit_length())]
    ge.append(0)
    for b in range(len(ge) - 1):  # bit_length b + 1 -> sign + (b + 1) bits -> hist entry b
        hist[min(b, last)] += ge[b] - ge[b + 1]
    return LevelStats(numel=n, nnz=ge[0], max_abs=mx, hist=hist)


def _sum(t: torch.Tensor) -> int:
    return int(t.sum(dtype=torch.int64 if t.numel() >= 2**31 else torch.int32))


def _count_ge(a: torch.Tensor, t: int) -> int:
    """#(a >= t) for non-negative integer-valued floats, exact (float32 0/1 sums per 2^23 chunk)."""
    chunks = a.split(_CHUNK) if a.numel() > _CHUNK else (a,)
    return int(sum(float((c - (t - 1)).clamp_(0.0, 1.0).sum()) for c in chunks))


def _work_dtype(x: torch.Tensor) -> torch.Tensor:
    """float32/float64 stay; half types are quantized in float32 (their mantissa is too short)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _check_finite(x: torch.Tensor) -> None:
    if x.numel() and not math.isfinite(float(x.abs().amax())):
        raise NonFiniteError(_count_bad(x))


def _count_bad(x: torch.Tensor) -> str:
    bad = int((~torch.isfinite(x)).sum())
    return f"{bad} of {x.numel()} elements are NaN/Inf"
