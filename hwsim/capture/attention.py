"""``scaled_dot_product_attention`` as two GEMMs: QKᵀ ("qk") and P·V ("pv").

* Fused (default, ``dither_attention=False``): SDPA runs unchanged (bit-identical training). The
  gradient of its output is δz of the P·V product; on sampled iterations the operands P and the
  gradient of QKᵀ are recomputed from q, k, v and that gradient (:func:`grad_scores`) — exact
  without dropout; with dropout the attention matrix is internal to the fused kernel, so capture
  reports both products as missed and names the fix.
* Decomposed (``dither_attention=True``): :func:`math` computes softmax(QKᵀ·scale + mask)·V with
  explicit products that the session intercepts like any matmul, so δz of both is dithered.
"""

from __future__ import annotations

import math as _m
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from hwsim.capture import ops

PARAMS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
DEFAULTS = (None, None, None, None, 0.0, False, None, False)


def params(args: tuple, kwargs: dict) -> dict[str, Any]:
    return {p: ops._arg(args, kwargs, i, p, d) for i, (p, d) in enumerate(zip(PARAMS, DEFAULTS, strict=True))}


def products(p: dict[str, Any]) -> tuple[ops.Gemm, ops.Gemm]:
    q, k, v = p["query"], p["key"], p["value"]
    if p["enable_gqa"] and q.shape[-3:-2] != k.shape[-3:-2]:
        raise ops.Unsupported("scaled_dot_product_attention with grouped-query attention (enable_gqa)",
                              macs=q.numel() * k.shape[-2] * 2)
    qk = ops.matmul_gemm("qk", q, k.transpose(-2, -1))
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    pv = ops.matmul_gemm("pv", torch.empty(*lead, q.shape[-2], k.shape[-2], device="meta"), v)
    pv.a_grad = q.requires_grad or k.requires_grad
    qk.attention = pv.attention = True
    qk.op, pv.op = "qk", "pv"
    return qk, pv


def _scores(q: torch.Tensor, k: torch.Tensor, p: dict[str, Any], s: torch.Tensor) -> torch.Tensor:
    """Masked, scaled scores from the product ``s`` = QKᵀ."""
    scale = p["scale"] if p["scale"] is not None else 1.0 / _m.sqrt(q.shape[-1])
    s = s * scale
    if p["is_causal"]:
        ls, ss = q.shape[-2], k.shape[-2]
        s = s.masked_fill(~torch.ones(ls, ss, dtype=torch.bool, device=s.device).tril(), float("-inf"))
    m = p["attn_mask"]
    if m is not None:
        s = s.masked_fill(~m, float("-inf")) if m.dtype == torch.bool else s + m
    return s


def math(p: dict[str, Any], mm: Callable[[str, torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """SDPA with explicit products ``mm(op, a, b)`` (the session's intercepted matmul)."""
    q, k, v = p["query"], p["key"], p["value"]
    attn = torch.softmax(_scores(q, k, p, mm("qk", q, k.transpose(-2, -1))), dim=-1)
    if p["dropout_p"] > 0:
        attn = F.dropout(attn, p["dropout_p"], training=True)
    return mm("pv", attn, v)


@torch.no_grad()
def probs(p: dict[str, Any]) -> torch.Tensor:
    """The attention matrix P (the P·V product's first operand), recomputed."""
    q, k = p["query"].detach(), p["key"].detach()
    return torch.softmax(_scores(q, k, p, q @ k.transpose(-2, -1)), dim=-1)


@torch.no_grad()
def grad_scores(p: dict[str, Any], d_out: torch.Tensor) -> torch.Tensor:
    """Gradient of the QKᵀ product from the gradient of SDPA's output (no dropout): scale·P⊙(dP − Σ dP⊙P)."""
    q = p["query"]
    scale = p["scale"] if p["scale"] is not None else 1.0 / _m.sqrt(q.shape[-1])
    pr = probs(p)
    dp = d_out @ p["value"].detach().transpose(-2, -1)
    return pr * (dp - (dp * pr).sum(-1, keepdim=True)) * scale
