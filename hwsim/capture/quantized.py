"""What the δz quantizers return: :class:`Quantized` and the level statistics :class:`LevelStats`.

Shared by the CPU/numpy quantizers (:mod:`hwsim.capture.quant`) and the torch-on-the-device ones
(:mod:`hwsim.capture.quant_device`); re-exported by :mod:`hwsim.capture.quant`.
"""

from __future__ import annotations

import math
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
    Δ (one host sync per call); the CPU quantizers leave it None (``level_stats`` computes it).
    """

    values: torch.Tensor | None
    levels: torch.Tensor
    delta: float
    dtype: torch.dtype | None = None
    bound: float = math.inf
    stats: LevelStats | None = None

    def take_values(self) -> torch.Tensor:
        if self.values is not None:
            return self.values
        if self.levels.is_cpu and self.stats is None:  # the numpy path: fewer µs per call than torch's mul_
            np.multiply(self.levels.numpy(), self.delta, out=self.levels.numpy())
        else:  # the device path stays in torch (also when pinned on CPU); a Python float: no host sync
            self.levels.mul_(self.delta)
        return self.levels.to(self.dtype or self.levels.dtype)


def noise_sums(dz: torch.Tensor, q: Quantized) -> torch.Tensor:
    """(Σδz², Σδ̃z², Σδz·δ̃z) of one call as a float64 tensor on δz's device — no host sync (capture fetches the
    iteration's sums of every layer at once when it ends; :mod:`hwsim.trace.noise` turns them into statistics).

    Call before :meth:`Quantized.take_values` (NSD's lazy values are Δ·levels, read here without scaling them).
    """
    x = work_dtype(dz).detach().reshape(-1)
    if q.values is None:  # NSD, lazy: δ̃z = Δ·levels
        lv = q.levels.detach().reshape(-1)
        d = float(q.delta)
        return torch.stack([torch.dot(x, x), torch.dot(lv, lv), torch.dot(x, lv)]).double() * torch.tensor(
            [1.0, d * d, d], dtype=torch.float64, device=x.device)
    v = work_dtype(q.values).detach().reshape(-1)
    return torch.stack([torch.dot(x, x), torch.dot(v, v), torch.dot(x, v)]).double()


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
