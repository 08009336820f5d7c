"""The δz quantizers of :mod:`hwsim.capture.quant` in torch only, on δz's own device.

:mod:`hwsim.capture.quant` sends here every δz that is not a CPU tensor (CUDA, MPS, …) and, on CPU,
every call that is handed a ``torch.Generator`` (capture does that under ``HWSIM_QUANT_PATH=torch``,
to pin this path in CPU tests). The std, the dither, the levels and the level statistics
(density, max |level|, bit-width histogram) are all computed on the device; the host receives ONE
small float64 tensor per call — σ (or max|δz|), min/max level and a 16-bin bit-length count —
through a single ``tolist()``: one host sync per layer and iteration, and no copy of δz. Full
tensors reach the host only where capture stores operands (sampled iterations).

Distributions are those of the CPU path: NSD levels ⌊δz/Δ + u⌋ with Δ = s·std(δz) (population std,
``torch.var_mean``) and u the 2^23 cell midpoints (j + ½)/2^23 of [0, 1) (mean exactly ½), drawn as
integer bits from a ``torch.Generator`` on the device (float64 δz: ``torch.rand``). A seed fixes
the device generator's stream, but that stream is not numpy's SFC64 stream of the CPU path: traces
of the same seed on different devices are statistically equal, not bit-identical. This is the ``dither_rng: sfc64``
stream; capture's default counter-based dither runs on every device in :mod:`hwsim.capture.quant_counter` (the same
bits as on the CPU). Half-precision δz
(bf16, fp16) is quantized in float32 and δ̃z is cast back to δz's dtype.
"""

from __future__ import annotations

import math

import torch

from hwsim.capture.quantized import (
    LevelStats,
    NonFiniteError,
    Quantized,
    count_bad,
    scaled_std_rms,
    tiny,
    work_dtype,
)

MANTISSA_BITS = 23  # float32 uniforms on the grid of the CPU path (hwsim.capture.quant.uniform)
VIEW_LEVELS = 127  # int8 view of float gradients (meprop, none); same as quant.VIEW_LEVELS
_VIEW_MIN = 2.0**-60  # max|δz| below this: scaled up by _VIEW_SCALE (exact) so that 127/max stays finite
_VIEW_SCALE = 2.0**100


def _safe_sigma(x: torch.Tensor, sigma: float, mean: float) -> bool:
    """Is the one-pass σ (``torch.var_mean`` in x's dtype) trustworthy? Not when the squares may have
    underflowed (σ below ~16·√tiny, e.g. δz ~1e-20 in float32) or overflowed, or it is not finite."""
    fi = torch.finfo(x.dtype)
    if sigma == 0.0 and mean == 0.0:
        return True  # all zero (a dead layer): nothing to scale
    return 16 * math.sqrt(fi.tiny) <= sigma <= math.sqrt(fi.max) / 16


def uniform(like: torch.Tensor, *, generator: torch.Generator | None) -> torch.Tensor:
    """U(0, 1) of ``like``'s shape on ``like``'s device: (j + ½)/2^23 for float32, ``torch.rand`` for float64."""
    if like.dtype == torch.float64:
        return torch.rand(like.shape, dtype=torch.float64, device=like.device, generator=generator)
    bits = torch.randint(0, 1 << MANTISSA_BITS, like.shape, dtype=torch.int32, device=like.device,
                         generator=generator)
    return bits.to(like.dtype).mul_(2.0**-MANTISSA_BITS).add_(2.0**-(MANTISSA_BITS + 1))


def nsd(dz: torch.Tensor, *, s: float, generator: torch.Generator | None = None,
        lazy_values: bool = False) -> Quantized:
    """NSD (``quant.nsd``) on δz's device; the returned :class:`Quantized` carries its ``stats``."""
    if not s > 0:
        raise ValueError(f"s must be > 0, got {s!r}")
    x = work_dtype(dz).detach()
    if x.numel() == 0:
        z = torch.zeros_like(x)
        return Quantized(values=z.to(dz.dtype), levels=z, delta=0.0, stats=_empty_stats())
    var, mean = torch.var_mean(x, correction=0)
    sigma = var.sqrt()
    # σ = 0 (or NaN), or Δ below the smallest normal (1/Δ would overflow): ⌊0 + u⌋ = 0 everywhere
    inv = torch.where(s * sigma >= tiny(x), 1.0 / (s * sigma), 0.0)
    levels = uniform(x, generator=generator).addcmul_(x, inv).floor_()  # ⌊δz/Δ + u⌋
    (head, mu), st = _fetch(torch.stack((sigma, mean)), levels)
    if not _safe_sigma(x, head, mu):  # tiny or huge δz (or NaN/Inf): σ again from x scaled by 2^k (one more sync)
        head = scaled_std_rms(x)[0]
        if not math.isfinite(head):
            raise NonFiniteError(count_bad(x))
        if s * head < tiny(x):  # a tiny but finite δz: Δ·k is not representable; zero levels (as σ = 0)
            levels.zero_()
            head = 0.0
        else:
            levels = uniform(x, generator=generator).add_(x, alpha=1.0 / (s * head)).floor_()
        st = _fetch(torch.zeros((), device=x.device, dtype=x.dtype), levels)[1]
    if st is None:
        raise NonFiniteError(count_bad(x))
    delta = s * head
    if lazy_values:
        return Quantized(values=None, levels=levels, delta=delta, dtype=dz.dtype, stats=st)
    return Quantized(values=(levels * delta).to(dz.dtype), levels=levels, delta=delta, stats=st)


def topk_kept(dz: torch.Tensor, *, k: int) -> torch.Tensor | None:
    """meProp: the k largest |δz| of each example (dim 0) kept, the rest zero; None if all are kept."""
    flat = dz.reshape(dz.shape[0], -1) if dz.dim() > 1 else dz.reshape(1, -1)
    if k >= flat.shape[1]:
        return None
    idx = flat.abs().topk(k, dim=1, sorted=False).indices
    return torch.zeros_like(flat).scatter_(1, idx, flat.gather(1, idx)).reshape(dz.shape)


def meprop(dz: torch.Tensor, *, k: int) -> Quantized:
    """meProp (``quant.meprop``) on δz's device. NaN/Inf sort first in top-k, so the int view finds them."""
    if not (isinstance(k, int) and not isinstance(k, bool) and k > 0):
        raise ValueError(f"k must be a positive integer, got {k!r}")
    kept = topk_kept(dz, k=k)
    return passthrough(dz) if kept is None else _viewed(kept)


def passthrough(dz: torch.Tensor) -> Quantized:
    """Plain backprop on δz's device: δz unchanged, levels its int8 view."""
    return _viewed(dz)


def _viewed(v: torch.Tensor) -> Quantized:
    """``values=v`` with the int8-style levels of ``quant.int_view`` (Δ = max|v|/127, non-zeros kept)."""
    x = work_dtype(v).detach()
    if x.numel() == 0:
        return Quantized(values=v, levels=torch.zeros_like(x), delta=0.0, stats=_empty_stats())
    a = x.abs()
    mx = a.amax()
    scale = torch.where(mx >= _VIEW_MIN, 1.0, _VIEW_SCALE)  # exact: a tiny max|δz| keeps 127/max finite
    mxs = mx * scale
    inv = torch.where(mxs > 0, VIEW_LEVELS / mxs, 0.0)
    mag = a.mul_(scale).mul_(inv).round_().clamp_(min=1.0).mul_(x != 0)
    levels = mag.mul_(x.sign())
    (head,), st = _fetch(mx, levels)
    if st is None or not math.isfinite(head):
        raise NonFiniteError(count_bad(x))
    return Quantized(values=v, levels=levels, delta=head / VIEW_LEVELS, stats=st)


def level_stats(levels: torch.Tensor, *, max_bits: int = 16) -> LevelStats:
    """``quant.level_stats`` on the levels' device (one host sync)."""
    if levels.numel() == 0:
        return _empty_stats(max_bits)
    flat = levels.detach().reshape(-1)
    st = _fetch(torch.zeros((), device=flat.device), flat if flat.is_floating_point() else flat.double(),
                max_bits=max_bits)[1]
    if st is None:
        raise NonFiniteError(count_bad(flat))
    return st


def std(x: torch.Tensor) -> float:
    """Population std on x's device (one host sync)."""
    if x.numel() == 0:
        return 0.0
    return float(torch.var_mean(work_dtype(x).detach(), correction=0)[0].sqrt())


def _fetch(head: torch.Tensor, levels: torch.Tensor, *, max_bits: int = 16) -> tuple[list[float], LevelStats | None]:
    """(head values, level statistics), brought to the host as one small tensor (the call's only sync).

    ``head``: a scalar or 1-D tensor of values wanted on the host with the statistics (σ, max|δz|, …).
    The statistics are None when the levels hold NaN/Inf (the caller raises NonFiniteError).
    Bit lengths read from the float's exponent field (exact for integers: |k| ∈ [2^(L−1), 2^L) has
    biased exponent L + bias − 1, 0 has 0), clamped to ``max_bits − 1`` (the histogram's last entry
    collects the wider levels) and counted by ``histc`` in float64 (exact counts up to 2^53; unlike
    ``bincount`` it needs no sync).
    """
    flat = levels.reshape(-1)
    lo, hi = torch.aminmax(flat)
    lengths = _exponent(flat).clamp_(0, max_bits - 1)
    cdt = torch.float32 if flat.device.type == "mps" else torch.float64  # MPS has no float64 (counts exact < 2^24)
    counts = torch.histc(lengths.to(cdt), bins=max_bits, min=-0.5, max=max_bits - 0.5)
    h = head.reshape(-1).to(cdt)
    k = h.numel()
    packed = torch.cat((h, torch.stack((-lo.to(cdt), hi.to(cdt))), counts))
    every = packed.tolist()  # the one device → host transfer
    heads, v = every[:k], every[k:]
    if not (math.isfinite(v[0]) and math.isfinite(v[1])):
        return heads, None
    n = flat.numel()
    return heads, LevelStats(numel=n, nnz=n - int(v[2]), max_abs=int(max(v[0], v[1])), hist=[int(c) for c in v[3:]])


def _exponent(flat: torch.Tensor) -> torch.Tensor:
    """⌊log2|k|⌋ + 1 for integer-valued k ≠ 0 (≤ 0 for k = 0), from the exponent bits (a view, no float math)."""
    if flat.dtype == torch.float64:
        return (flat.view(torch.int64) >> 52).bitwise_and_(0x7FF).sub_(1022)
    return (flat.view(torch.int32) >> 23).bitwise_and_(0xFF).sub_(126)


def _empty_stats(max_bits: int = 16) -> LevelStats:
    return LevelStats(numel=0, nnz=0, max_abs=0, hist=[0] * (max_bits - 1))
