"""``scaled_dot_product_attention`` as two GEMMs: QKᵀ ("qk") and P·V ("pv"), per query head.

Two ways to capture one SDPA call (:meth:`hwsim.capture.intercept.Interceptor._sdpa` picks):

* **Fused** (no dropout, attention δz not dithered): SDPA runs unchanged, so training is
  bit-identical to training without capture. The gradient of its output is δz of the P·V product;
  on sampled iterations P and the gradient of QKᵀ are recomputed from q, k, v and that gradient
  (:func:`probs`, :func:`grad_scores`).
* **Decomposed** (``dropout_p > 0``, or ``dither_attention`` with a method that quantizes δz):
  :func:`math` computes SDPA the way torch's own math kernel does
  (``aten::_scaled_dot_product_attention_math``): q and k each scaled by √scale, the mask added,
  a safe softmax (rows with every key masked give 0, not NaN), ``torch.dropout`` on the attention
  matrix, then P·V — with the two products issued through the session's intercepted matmul, so
  they are recorded (and dithered with ``dither_attention``) like any GEMM, and P·V's first operand
  is the attention matrix *after* dropout, as training used it. Where torch runs that math kernel
  (on CPU every SDPA with dropout; float16/bfloat16 upcast to float32 as torch does) training is
  bit-identical, dropout's random stream included; where a fused kernel with its own dropout
  stream would run (CUDA flash / memory-efficient), the dropout masks differ from an uncaptured run.

Grouped-query attention (``enable_gqa=True``, fewer K/V heads than Q heads): K and V heads are
repeated to the Q heads (``repeat_interleave`` over dim −3, as torch does), so both products are
recorded per Q head — ``groups`` = batch × Q heads.
"""

from __future__ import annotations

import math as _m
from collections.abc import Callable
from typing import Any

import torch

from hwsim.capture import ops

PARAMS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
DEFAULTS = (None, None, None, None, 0.0, False, None, False)


def params(args: tuple, kwargs: dict) -> dict[str, Any]:
    return {p: ops._arg(args, kwargs, i, p, d) for i, (p, d) in enumerate(zip(PARAMS, DEFAULTS, strict=True))}


def repeats(p: dict[str, Any], t: torch.Tensor) -> int:
    """How often each head of K or V (``t``) is repeated to match Q's heads: 1 unless ``enable_gqa``."""
    q = p["query"]
    if not p["enable_gqa"] or q.dim() < 3 or t.dim() < 3 or t.shape[-3] == q.shape[-3]:
        return 1
    hq, hk = q.shape[-3], t.shape[-3]
    if hk == 0 or hq % hk:
        raise ops.Unsupported(f"scaled_dot_product_attention with enable_gqa: {hq} query heads are not a multiple "
                              f"of {hk} key/value heads (torch requires it)")
    return hq // hk


def heads(p: dict[str, Any], t: torch.Tensor) -> torch.Tensor:
    """K or V with its heads repeated to Q's (grouped-query attention); ``t`` itself otherwise."""
    r = repeats(p, t)
    return t if r == 1 else t.repeat_interleave(r, -3)


def _meta_heads(p: dict[str, Any], t: torch.Tensor) -> torch.Tensor:
    """A meta tensor of :func:`heads`' shape (for reading the GEMM geometry without a copy)."""
    r = repeats(p, t)
    return torch.empty(*t.shape[:-3], t.shape[-3] * r, *t.shape[-2:], device="meta")


def products(p: dict[str, Any]) -> tuple[ops.Gemm, ops.Gemm]:
    """The QKᵀ and P·V GEMMs of one call (shapes only; K/V heads repeated to Q's under ``enable_gqa``)."""
    q, k, v = p["query"], p["key"], p["value"]
    if any(t.is_nested for t in (q, k, v)):
        raise ops.Unsupported("scaled_dot_product_attention on nested (jagged) tensors: pad them to capture it")
    gqa = repeats(p, k) != 1 or repeats(p, v) != 1
    kh, vh = (_meta_heads(p, k), _meta_heads(p, v)) if gqa else (k, v)
    qk = ops.matmul_gemm("qk", q, kh.transpose(-2, -1))
    lead = torch.broadcast_shapes(q.shape[:-2], kh.shape[:-2])
    pv = ops.matmul_gemm("pv", torch.empty(*lead, q.shape[-2], k.shape[-2], device="meta"), vh)
    if gqa:  # the operands, lazily (sampled iterations): the repeated heads, in matmul_gemm's layout
        qk.b = _lazy(lambda: heads(p, k.detach()).transpose(-2, -1), qk)
        pv.b = _lazy(lambda: heads(p, v.detach()), pv)
        qk.b_grad, pv.b_grad = k.requires_grad, v.requires_grad
    pv.a_grad = q.requires_grad or k.requires_grad
    qk.attention = pv.attention = True
    qk.op, pv.op = "qk", "pv"
    return qk, pv


def _lazy(b: Callable[[], torch.Tensor], g: ops.Gemm) -> Callable[[], torch.Tensor]:
    """``b()`` in the layout of a matmul record's second operand: (groups, C/groups, K/groups)."""
    n = g.fields["groups"]
    lead = torch.broadcast_shapes(g.key[1][:-2], g.key[2][:-2])
    c, k = g.fields["C"] // n, g.fields["K"] // n
    return lambda: b().expand(*lead, c, k).reshape(n, c, k)


def _scale(p: dict[str, Any]) -> float:
    return p["scale"] if p["scale"] is not None else 1.0 / _m.sqrt(p["query"].shape[-1])


def _scores(q: torch.Tensor, k: torch.Tensor, p: dict[str, Any], s: torch.Tensor) -> torch.Tensor:
    """Masked, scaled scores from the product ``s`` = QKᵀ."""
    s = s * _scale(p)
    if p["is_causal"]:
        ls, ss = q.shape[-2], k.shape[-2]
        s = s.masked_fill(~torch.ones(ls, ss, dtype=torch.bool, device=s.device).tril(), float("-inf"))
    m = p["attn_mask"]
    if m is not None:
        s = s.masked_fill(~m, float("-inf")) if m.dtype == torch.bool else s + m
    return s


def _upcast(dtype: torch.dtype) -> bool:
    """torch's math kernel computes float16/bfloat16 attention in float32 unless reductions in them are allowed."""
    allowed = getattr(torch.backends.cuda, "fp16_bf16_reduction_math_sdp_allowed", None)
    return dtype in (torch.float16, torch.bfloat16) and allowed is not None and not allowed()


def _softmax(s: torch.Tensor) -> torch.Tensor:
    safe = getattr(torch.ops.aten, "_safe_softmax", None)  # torch >= 2.5: fully masked rows give 0, not NaN
    return safe(s, -1) if safe is not None else torch.softmax(s, -1)


def _autocast_dtype(device_type: str) -> torch.dtype | None:
    """The lower-precision dtype autocast casts SDPA's inputs to on ``device_type``, or None when it is off."""
    try:
        on = torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: one flag per device kind
        on = torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()
    if not on:
        return None
    get = getattr(torch, "get_autocast_dtype", None)
    if get is not None:
        return get(device_type)
    return torch.get_autocast_cpu_dtype() if device_type == "cpu" else torch.get_autocast_gpu_dtype()


def math(p: dict[str, Any], mm: Callable[[str, torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """SDPA as torch's math kernel computes it, its two products issued as ``mm(op, a, b)`` (the session's matmul).

    The order of operations is the kernel's (√scale on q and on kᵀ, the mask added to the product, a safe softmax,
    ``torch.dropout``), so forward values, gradients and the random stream are those of
    ``aten::_scaled_dot_product_attention_math``. The QKᵀ product here is of the scaled operands, so its δz is
    ∂L/∂(scale·QKᵀ) — δa = δ̃z·(√scale·K) and q's gradient is √scale times that. Under autocast, the inputs are
    cast as autocast casts SDPA's (float32 ones to its dtype) and the kernel runs with autocast off, as torch's does.
    """
    dt = _autocast_dtype(p["query"].device.type)
    if dt is None:
        return _math(p, mm)
    cast = {n: t.to(dt) if isinstance(t, torch.Tensor) and t.is_floating_point() and t.dtype != torch.float64 else t
            for n, t in p.items()}
    with torch.autocast(p["query"].device.type, enabled=False):
        return _math(cast, mm)


def _math(p: dict[str, Any], mm: Callable[[str, torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    q, k, v = p["query"], p["key"], p["value"]
    dtype = q.dtype
    if _upcast(dtype):
        q, k, v = q.float(), k.float(), v.float()
    scale = p["scale"]
    sf = _m.sqrt(abs(scale) if scale is not None else 1.0 / _m.sqrt(q.shape[-1]))
    q = q * (-sf if scale is not None and scale < 0 else sf)
    bias = p["attn_mask"]
    if p["is_causal"]:
        bias = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).tril()
    if bias is not None and bias.dtype == torch.bool:
        bias = torch.zeros(bias.shape, dtype=q.dtype, device=q.device).masked_fill(bias.logical_not(), float("-inf"))
    k, v = heads(p, k), heads(p, v)
    attn = mm("qk", q, k.transpose(-2, -1) * sf)
    if bias is not None:
        attn = attn + bias
    attn = _softmax(attn)
    if p["dropout_p"] > 0:
        attn = torch.dropout(attn, p["dropout_p"], True)
    return mm("pv", attn, v).to(dtype)


@torch.no_grad()
def probs(p: dict[str, Any]) -> torch.Tensor:
    """The attention matrix P (the P·V product's first operand), recomputed (no dropout)."""
    q, k = p["query"].detach(), heads(p, p["key"].detach())
    return _softmax(_scores(q, k, p, q @ k.transpose(-2, -1)))


@torch.no_grad()
def grad_scores(p: dict[str, Any], d_out: torch.Tensor) -> torch.Tensor:
    """Gradient of the QKᵀ product from the gradient of SDPA's output (no dropout): scale·P⊙(dP − Σ dP⊙P)."""
    pr = probs(p)
    dp = d_out @ heads(p, p["value"].detach()).transpose(-2, -1)
    return pr * (dp - (dp * pr).sum(-1, keepdim=True)) * _scale(p)
