"""8-bit forward operands for training, after Banner et al. 2018 ("Scalable methods for 8-bit training").

The seed paper's "8-bit training" column (§3.5, Table 1) quantizes the *forward* operands of every
GEMM to 8 bits and keeps only the weight update in float; combined with dithered backprop every GEMM
of an iteration then has low-precision operands. :func:`quantize_model` does that to any model in
place, for every ``nn.Linear`` / ``nn.Conv2d``:

* **weights**: symmetric, per output channel (row k of W has its own step max|W_k|/127): one outlier
  channel does not coarsen the others. Implemented as a ``torch.nn.utils.parametrize``
  parametrization, so ``module.weight`` *is* the int8-valued tensor that the forward GEMM and both
  backward GEMMs (δa = Wᵀ·δ̃z) use, while the optimizer updates the float master weights.
* **activations** (the layer input a): asymmetric uint8 over a running [min, max] range (exponential
  average of each batch's min/max, as Banner et al.'s GEMMLOWP-style scheme), always containing 0 so
  that a ReLU zero stays exactly zero (the sparsity the accelerator exploits is not blurred). Applied
  by a forward pre-hook, so capture records the mask of the quantized input and δW = δ̃z·âᵀ uses â.
* **gradients**: straight-through (the estimator Banner et al. use): d(round)/dx := 1 inside the range.

δz itself is not quantized here: for "8-bit" alone the backward keeps float δz (the trace stores its
int8 view, as for plain backprop); with dither the δ̃z levels are the integers of NSD. BatchNorm stays
float (Banner et al.'s Range BN is not reproduced). Modules are tagged ``hwsim_w_bits`` /
``hwsim_a_bits`` so :mod:`hwsim.capture.session` writes ``w_bits`` / ``a_bits`` = 8 into every sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

HOOKED = (nn.Linear, nn.Conv2d)
DEFAULT_BITS = 8
DEFAULT_RANGE_MOMENTUM = 0.1  # weight of the new batch in the running min/max (as BatchNorm's momentum)


@dataclass(frozen=True)
class FakeQuant:
    """Result of a fake quantization: values on the grid, the step and the integer codes."""

    values: torch.Tensor
    scale: torch.Tensor  # per channel (weights) or scalar (activations)
    codes: torch.Tensor  # integers as float: signed for weights, unsigned (with zero point) for activations


def quantize_weight(w: torch.Tensor, *, bits: int = DEFAULT_BITS) -> FakeQuant:
    """Symmetric per-output-channel quantization: Δ_k = max|W_k| / (2^(bits−1) − 1).

    Every element lands within Δ_k/2 of its value (no clipping: the range is the channel's own max).
    An all-zero channel gets Δ_k = 1 (its codes are 0 anyway).
    """
    qmax = 2 ** (bits - 1) - 1
    flat = w.detach().reshape(w.shape[0], -1)
    scale = flat.abs().amax(dim=1) / qmax
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    shape = (-1,) + (1,) * (w.dim() - 1)
    codes = torch.clamp(torch.round(w.detach() / scale.view(shape)), -qmax, qmax)
    return FakeQuant(values=codes * scale.view(shape), scale=scale, codes=codes)


def quantize_activation(x: torch.Tensor, *, lo: float, hi: float, bits: int = DEFAULT_BITS) -> FakeQuant:
    """Asymmetric quantization of x to 2^bits levels over [lo, hi] (widened to contain 0).

    Zero point = round(−lo/Δ), so 0.0 is a grid point: exact zeros (ReLU) stay exact zeros.
    Inside the range the error is ≤ Δ/2; outside it values clip to the range ends.
    """
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    levels = 2**bits - 1
    step = (hi - lo) / levels if hi > lo else 1.0
    zp = round(-lo / step)
    codes = torch.clamp(torch.round(x.detach() / step) + zp, 0, levels)
    scale = torch.tensor(step, dtype=x.dtype)
    return FakeQuant(values=(codes - zp) * step, scale=scale, codes=codes)


def straight_through(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Value of q, gradient of x (identity): the straight-through estimator."""
    return x + (q - x).detach()


class WeightQuant(nn.Module):
    """Parametrization: ``module.weight`` returns the per-channel int8 grid values (STE gradient)."""

    def __init__(self, bits: int = DEFAULT_BITS) -> None:
        super().__init__()
        self.bits = bits

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return straight_through(w, quantize_weight(w, bits=self.bits).values)


class ActivationQuant(nn.Module):
    """Running-range uint8 fake quantizer of a layer input (buffers ``lo``/``hi`` go into state_dict)."""

    def __init__(self, bits: int = DEFAULT_BITS, momentum: float = DEFAULT_RANGE_MOMENTUM) -> None:
        super().__init__()
        self.bits, self.momentum = bits, momentum
        self.register_buffer("lo", torch.zeros(()))
        self.register_buffer("hi", torch.zeros(()))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def _observe(self, x: torch.Tensor) -> None:
        lo, hi = x.detach().aminmax()
        if not bool(self.initialized):
            self.lo.copy_(lo)
            self.hi.copy_(hi)
            self.initialized.fill_(True)
        else:
            self.lo.lerp_(lo.to(self.lo.dtype), self.momentum)
            self.hi.lerp_(hi.to(self.hi.dtype), self.momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or not bool(self.initialized):
            self._observe(x)
        q = quantize_activation(x, lo=float(self.lo), hi=float(self.hi), bits=self.bits)
        return straight_through(x, q.values)


def _input_hook(module: nn.Module, args: tuple) -> tuple:
    return (module.int8_input(args[0]), *args[1:])


def quantize_model(model: nn.Module, *, bits: int = DEFAULT_BITS, momentum: float = DEFAULT_RANGE_MOMENTUM) -> list[str]:
    """Make every Linear/Conv2d of ``model`` compute with ``bits``-bit weights and inputs (in place).

    Call before building the optimizer (the float weights move into the parametrization but stay
    the same Parameter objects) and before :func:`hwsim.capture.session.capture`. Returns the names
    of the quantized layers. A model quantized twice raises ``ValueError``.
    """
    if not 2 <= bits <= 16:
        raise ValueError(f"bits must be in 2..16, got {bits!r}")
    names = []
    for name, m in list(model.named_modules()):
        if not isinstance(m, HOOKED):
            continue
        if hasattr(m, "int8_input"):
            raise ValueError(f"layer {name!r} is already quantized")
        parametrize.register_parametrization(m, "weight", WeightQuant(bits))
        m.add_module("int8_input", ActivationQuant(bits, momentum))
        m.register_forward_pre_hook(_input_hook)
        m.hwsim_w_bits = bits
        m.hwsim_a_bits = bits
        names.append(name)
    if not names:
        raise ValueError(f"{type(model).__name__}: no nn.Linear or nn.Conv2d layer to quantize")
    return names


def operand_bits(module: nn.Module) -> tuple[int, int]:
    """(w_bits, a_bits) of a layer's forward operands: 32 unless :func:`quantize_model` tagged it."""
    return int(getattr(module, "hwsim_w_bits", 32)), int(getattr(module, "hwsim_a_bits", 32))
