"""What the δz quantizers return: :class:`Quantized` and the level statistics :class:`LevelStats`.

Shared by the CPU/numpy quantizers (:mod:`hwsim.capture.quant`) and the torch-on-the-device ones
(:mod:`hwsim.capture.quant_device`); re-exported by :mod:`hwsim.capture.quant`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from hwsim.trace.format import bit_width


class NonFiniteError(FloatingPointError):
    """δz holds NaN or Inf (detected through std / max, which are computed anyway)."""


@dataclass(frozen=True)
class LevelStats:
    """Per-call statistics of integer levels, computed without gathering the non-zeros."""

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


@dataclass(frozen=True)
class Quantized:
    """δ̃z (what backprop uses), its integer levels (float tensor of integers) and the step Δ.

    ``values`` is None when NSD was asked for ``lazy_values``: then :meth:`take_values` scales
    the levels *in place* (saving an allocation and a pass in the backward hook), after which
    ``levels`` must not be used any more. ``bound`` is an upper bound on |levels| known without
    looking at them (NSD: √(Σδz²)/Δ + 1), which lets ``level_stats`` skip a min/max pass.
    ``stats`` is set by the device quantizers, which compute the level statistics together with
    Δ (one host sync per call), and by the CPU int8 view that only counts its levels
    (:func:`hwsim.capture.quant.passthrough` with ``lazy_levels``); the other CPU quantizers leave it
    None (``level_stats`` computes it). ``levels`` is None when the quantizer only counted them
    (``values`` given): :meth:`level_tensor` builds them with ``make_levels``. ``sum_sq`` is Σδz² when the
    quantizer computed it on the way (the CPU NSD's std), which :func:`noise_sums` then reuses; ``noise`` is the
    call's (Σδz², Σδ̃z², Σδz·δ̃z) when the quantizer gathered them in its pass (the compiled CPU NSD,
    :mod:`hwsim.capture.quant_compiled`).
    """

    values: torch.Tensor | None
    levels: torch.Tensor | None  # None: built on demand by ``make_levels`` (:meth:`level_tensor`)
    delta: float
    dtype: torch.dtype | None = None
    bound: float = math.inf
    stats: LevelStats | None = None
    make_levels: Callable[[], torch.Tensor] | None = None
    sum_sq: float | None = None  # Σδz² when the quantizer computed it (the CPU NSD's std)
    noise: tuple[float, float, float] | None = None  # (Σδz², Σδ̃z², Σδz·δ̃z) when the quantizer gathered them

    def level_tensor(self) -> torch.Tensor:
        """The levels; built here when the quantizer only counted them."""
        if self.levels is not None:
            return self.levels
        assert self.make_levels is not None
        return self.make_levels()

    def take_values(self) -> torch.Tensor:
        if self.values is not None:
            return self.values
        if self.levels.is_cpu and self.stats is None:  # the numpy path: fewer µs per call than torch's mul_
            np.multiply(self.levels.numpy(), self.delta, out=self.levels.numpy())
        else:  # the device path stays in torch (also when pinned on CPU); a Python float: no host sync
            self.levels.mul_(self.delta)
        return self.levels.to(self.dtype or self.levels.dtype)


def _cpu_noise_sums(x: torch.Tensor, q: Quantized, xx: float, stats: LevelStats | None) -> torch.Tensor:
    """:func:`noise_sums` of lazy NSD levels on CPU, in numpy: Σδz² = ``xx`` is the quantizer's own
    (:attr:`Quantized.sum_sq`, from its std), Σlevel² the number of non-zeros when every level is in {−1, 0, 1}
    (``stats``), so only Σδz·level walks the tensors (a BLAS dot, as torch's, without torch's per-op overhead)."""
    a = x.numpy()
    lv = q.levels.detach().reshape(-1).numpy()
    ll = float(stats.nnz) if stats is not None and stats.max_abs <= 1 else float(np.dot(lv, lv))
    d = float(q.delta)
    return torch.tensor([xx, ll * d * d, float(np.dot(a, lv)) * d], dtype=torch.float64)


def noise_sums(dz: torch.Tensor, q: Quantized, stats: LevelStats | None = None) -> torch.Tensor:
    """(Σδz², Σδ̃z², Σδz·δ̃z) of one call as a float64 tensor on δz's device — no host sync (capture fetches the
    iteration's sums of every layer at once when it ends; :mod:`hwsim.trace.noise` turns them into statistics).

    Call before :meth:`Quantized.take_values` (NSD's lazy values are Δ·levels, read here without scaling them).
    ``stats``: the call's level statistics when known (levels in {−1, 0, 1}: Σlevel² is their count).
    """
    if q.noise is not None:  # gathered by the quantizer's own pass (the compiled CPU NSD)
        return torch.from_numpy(np.array(q.noise))  # float64 (fewer µs than torch.tensor of a tuple)
    x = work_dtype(dz).detach().reshape(-1)
    if q.values is None and q.sum_sq is not None and x.dtype == q.levels.dtype:  # NSD on the numpy (CPU) path
        return _cpu_noise_sums(x, q, q.sum_sq, stats)
    if q.values is None:  # NSD, lazy: δ̃z = Δ·levels
        lv = q.levels.detach().reshape(-1)
        d = float(q.delta)
        return torch.stack([torch.dot(x, x), torch.dot(lv, lv), torch.dot(x, lv)]).double() * torch.tensor(
            [1.0, d * d, d], dtype=torch.float64, device=x.device)
    v = work_dtype(q.values).detach().reshape(-1)
    return torch.stack([torch.dot(x, x), torch.dot(v, v), torch.dot(x, v)]).double()


def memory_order(x: torch.Tensor) -> torch.Tensor:
    """``x``'s elements as a contiguous tensor in the order they lie in memory, without a copy when ``x`` is a
    permutation of a dense block (a transposed or permuted view: the gradient of ``y.transpose(1, 2)`` is one);
    else ``x.contiguous()``. For order-free statistics (max, counts), which are then those of ``x`` exactly."""
    if x.is_contiguous():
        return x
    p = x.permute(sorted(range(x.dim()), key=lambda d: -x.stride(d)))  # outermost (largest stride) first
    return p if p.is_contiguous() else x.contiguous()


def work_dtype(x: torch.Tensor) -> torch.Tensor:
    """float32/float64 stay; half types (bf16, fp16) are quantized in float32 (their mantissa is too short)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def count_bad(x: torch.Tensor) -> str:
    """The NonFiniteError message (only on the error path: it syncs)."""
    bad = int((~torch.isfinite(x)).sum())
    return f"{bad} of {x.numel()} elements are NaN/Inf"


def tiny(x: torch.Tensor) -> float:
    """Smallest normal number of ``x``'s (work) dtype: a Δ below it is taken as 0 (1/Δ would overflow and Δ·k
    would not be representable), so a tiny but finite δz gives all-zero levels, never Inf/NaN."""
    return float(torch.finfo(x.dtype).tiny)


def scaled_std_rms(x: torch.Tensor) -> tuple[float, float]:
    """(population std, root mean square) of ``x``, for any finite ``x``; NaN if it holds NaN/Inf.

    ``x`` is first scaled by a power of two (exact) so that max|x| ∈ [0.5, 1): its squares neither
    underflow (δz of std ~1e-40 squares to 0 in float32) nor overflow. The quantizers' rare path
    (one extra pass and host sync), taken when their one-pass sums leave the safe range.
    """
    flat = x.detach().reshape(-1)
    if flat.numel() == 0:
        return 0.0, 0.0
    m = float(flat.abs().amax())
    if not math.isfinite(m):
        return math.nan, math.nan
    if m == 0.0:
        return 0.0, 0.0
    e = math.frexp(m)[1]
    h = -e // 2
    y = flat * (2.0 ** h) * (2.0 ** (-e - h))  # two factors: 2^-e alone may not fit the dtype
    var, mean = torch.var_mean(y, correction=0)
    var_f, mean_f = float(var), float(mean)
    return math.ldexp(math.sqrt(var_f), e), math.ldexp(math.sqrt(var_f + mean_f * mean_f), e)
