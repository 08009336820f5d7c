"""Two small transformers for the zoo, sized to train in minutes on the embedded data, offline.

* ``vit_digits`` — a Vision Transformer for the 8×8 digits: 2×2 patches embedded by a strided
  ``nn.Conv2d`` (16 tokens) plus a class token, learned positions, pre-LayerNorm blocks of
  ``nn.MultiheadAttention`` (``batch_first``) and a GELU MLP. Capture sees the patch conv, the
  attention's q/k/v/out projections (functional calls inside MHA), its QKᵀ and P·V products, the
  MLP and the head.
* ``gpt_char`` — a character-level GPT-2-style language model over a 128-symbol vocabulary:
  token + position embeddings, pre-LayerNorm blocks whose projections are :class:`Conv1D` (an
  ``addmm`` with a weight stored (in, out), the layout of GPT-2's original checkpoints) and causal
  attention written as explicit products (``q @ kᵀ``, softmax, ``p @ v``), a linear LM head.

Both are built by :func:`hwsim.capture.zoo.models.build_model` (the registry there lists them).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Conv1D(nn.Module):
    """A linear layer as ``addmm(bias, x, weight)`` with ``weight`` of shape (nx, nf) = (in, out)."""

    def __init__(self, nx: int, nf: int) -> None:
        super().__init__()
        self.nx, self.nf = nx, nf
        self.weight = nn.Parameter(torch.empty(nx, nf).normal_(0.0, 0.02))
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        return torch.addmm(self.bias, x.reshape(-1, self.nx), self.weight).view(*lead, self.nf)


class ViTBlock(nn.Module):
    """Pre-LayerNorm encoder block: x + MHA(LN(x)), then x + MLP(LN(x)) with GELU."""

    def __init__(self, d: int, heads: int, mlp_ratio: int = 2) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, mlp_ratio * d), nn.GELU(), nn.Linear(mlp_ratio * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class ViTDigits(nn.Module):
    """ViT over ``patch``×``patch`` patches of a ``image_size``² image; class token → LayerNorm → head."""

    def __init__(self, *, in_channels: int, num_classes: int, image_size: int, patch: int = 2, d: int = 48,
                 heads: int = 4, depth: int = 2) -> None:
        super().__init__()
        if image_size % patch:
            raise ValueError(f"vit_digits: image_size {image_size} is not a multiple of the patch size {patch}")
        tokens = (image_size // patch) ** 2 + 1
        self.tokens_per_example = tokens  # Linear layers run over batch × tokens rows (trace meta, FORMAT.md)
        self.patch = nn.Conv2d(in_channels, d, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.empty(1, tokens, d).normal_(0.0, 0.02))
        self.blocks = nn.Sequential(*(ViTBlock(d, heads) for _ in range(depth)))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.patch(x).flatten(2).transpose(1, 2)  # (B, tokens, d)
        t = torch.cat([self.cls.expand(t.shape[0], -1, -1), t], dim=1) + self.pos
        return self.head(self.ln(self.blocks(t))[:, 0])


class CausalSelfAttention(nn.Module):
    """Causal multi-head self-attention as GPT-2 writes it: Conv1D c_attn → q, k, v; ``q @ kᵀ``, softmax,
    ``p @ v`` (capture names the products ``<path>:matmul`` and ``<path>:matmul#1``); Conv1D c_proj."""

    def __init__(self, d: int, heads: int, context: int) -> None:
        super().__init__()
        if d % heads:
            raise ValueError(f"gpt_char: width {d} is not a multiple of {heads} heads")
        self.heads = heads
        self.c_attn, self.c_proj = Conv1D(d, 3 * d), Conv1D(d, d)
        self.register_buffer("causal", torch.ones(context, context, dtype=torch.bool).tril(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        hd = d // self.heads
        q, k, v = (z.view(b, t, self.heads, hd).transpose(1, 2) for z in self.c_attn(x).split(d, dim=2))
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        scores = scores.masked_fill(~self.causal[:t, :t], float("-inf"))
        return self.c_proj((scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    """GPT-2's MLP: Conv1D c_fc (d → 4d), GELU, Conv1D c_proj (4d → d)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.c_fc, self.c_proj = Conv1D(d, 4 * d), Conv1D(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x)))


class GPTBlock(nn.Module):
    """GPT-2 block (pre-LayerNorm): x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, d: int, heads: int, context: int) -> None:
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = CausalSelfAttention(d, heads, context)
        self.mlp = MLP(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPTChar(nn.Module):
    """Character-level GPT-2-style LM: (B, T) int64 tokens → (B, T, vocab) next-token logits."""

    def __init__(self, *, vocab: int, context: int, d: int = 64, heads: int = 4, depth: int = 2) -> None:
        super().__init__()
        self.context = self.tokens_per_example = context
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(context, d)
        nn.init.normal_(self.wte.weight, 0.0, 0.02)
        nn.init.normal_(self.wpe.weight, 0.0, 0.02)
        self.h = nn.Sequential(*(GPTBlock(d, heads, context) for _ in range(depth)))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        if idx.dim() != 2 or idx.dtype != torch.int64:
            raise ValueError(f"gpt_char: input must be (batch, tokens) int64 token ids, got {tuple(idx.shape)} "
                             f"{idx.dtype}")
        if idx.shape[1] > self.context:
            raise ValueError(f"gpt_char: {idx.shape[1]} tokens exceed the context of {self.context}")
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        return self.lm_head(self.ln_f(self.h(x)))
