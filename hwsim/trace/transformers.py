"""Transformer topologies for synthetic traces: every GEMM of GPT-2, BERT, ViT and a Llama-style block.

Each block is its projections, the two attention products per head and its MLP, in execution order:

* QKᵀ (``…:qk``) and P·V (``…:pv``) are ``matmul`` layers with the heads as products: per example
  ``heads`` products (T × d_h)·(d_h × T) and (T × T)·(T × d_h), d_h = hidden / heads; the geometry of a
  mini-batch holds batch·heads products (the layout capture records, traces/FORMAT.md). Causal models
  (GPT-2, Llama) mask the T×T matrix above the diagonal: the synthetic δ̃z of QKᵀ and the P operand of
  P·V are zero there (the dense GEMM is still the full T×T, as on an accelerator without masking).
* Grouped-query attention (``kv_heads`` < ``heads``): the K and V projections have kv_heads·d_h outputs;
  each query head still has its own QKᵀ and P·V (its K and V are shared with heads/kv_heads others).
* MLP: two GEMMs (GELU) or three (SwiGLU: gate, up, down; Llama).
* Not GEMMs, so not here: LayerNorm/RMSNorm, softmax, GELU/SiLU, residual adds, embedding look-ups
  (:mod:`hwsim.trace.topology_nongemm` derives them as the trace's non-GEMM records).
  ``head=True`` adds the GEMMs outside the blocks: GPT-2/Llama's LM head, BERT's MLM head (transform
  + decoder), ViT's patch embedding (a 16×16/16 convolution) and classifier (the class token only).

Names follow the usual implementations (HF GPT-2 ``h.0.attn.c_attn``, HF BERT ``layer.0.attention.self.query``,
timm ViT ``blocks.0.attn.qkv``, HF Llama ``layers.0.self_attn.q_proj``), so per-layer densities can name them.
Model sizes: GPT-2 small/medium (Radford et al. 2019), BERT-base (Devlin et al. 2019), ViT-B/16 at 224²
(Dosovitskiy et al. 2021), the Llama block with Llama-3-8B's sizes (hidden 4096, 32 heads, 8 KV heads,
SwiGLU 14336). numpy-free.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.trace.layerspec import LayerSpec


@dataclass(frozen=True)
class Transformer:
    """Default shape of a named transformer; ``layers()`` takes the per-run options."""

    family: str        # naming and structure: gpt2 | bert | vit | llama
    hidden: int
    heads: int
    kv_heads: int
    blocks: int
    ffn: int           # MLP hidden width
    seq: int           # default tokens per example
    causal: bool
    vocab: int = 0     # LM / MLM head outputs
    classes: int = 0   # ViT classifier outputs
    image: int = 0     # ViT image side and patch side
    patch: int = 0


TRANSFORMERS = {
    "gpt2_small": Transformer("gpt2", 768, 12, 12, 12, 3072, 1024, True, vocab=50257),
    "gpt2_medium": Transformer("gpt2", 1024, 16, 16, 24, 4096, 1024, True, vocab=50257),
    "bert_base": Transformer("bert", 768, 12, 12, 12, 3072, 512, False, vocab=30522),
    "vit_b16": Transformer("vit", 768, 12, 12, 12, 3072, (224 // 16) ** 2 + 1, False, classes=1000, image=224,
                           patch=16),
    "llama_block": Transformer("llama", 4096, 32, 8, 1, 14336, 2048, True, vocab=128256),
}
OPTIONS = ("seq", "heads", "kv_heads", "blocks", "head")  # per-run options of a transformer (flags --seq ...)


# Per family: the block's module prefix and its GEMMs in execution order as (name, in width, out width, part), the
# widths named d (hidden), q (heads·d_h), kv (kv_heads·d_h), qkv (q + 2·kv), ffn; an "attn" row is the block's
# QKᵀ and P·V under that path. Llama: RMSNorm (no GEMM), grouped-query attention, SwiGLU (gate, up, down).
_BLOCKS: dict[str, tuple[str, tuple[tuple[str, str, str, str], ...]]] = {
    "gpt2": ("h", (("attn.c_attn", "d", "qkv", "proj"), ("attn", "", "", "attn"), ("attn.c_proj", "q", "d", "proj"),
                   ("mlp.c_fc", "d", "ffn", "mlp"), ("mlp.c_proj", "ffn", "d", "mlp"))),
    "vit": ("blocks", (("attn.qkv", "d", "qkv", "proj"), ("attn", "", "", "attn"), ("attn.proj", "q", "d", "proj"),
                       ("mlp.fc1", "d", "ffn", "mlp"), ("mlp.fc2", "ffn", "d", "mlp"))),
    "bert": ("layer", (("attention.self.query", "d", "q", "proj"), ("attention.self.key", "d", "kv", "proj"),
                       ("attention.self.value", "d", "kv", "proj"), ("attention.self", "", "", "attn"),
                       ("attention.output.dense", "q", "d", "proj"), ("intermediate.dense", "d", "ffn", "mlp"),
                       ("output.dense", "ffn", "d", "mlp"))),
    "llama": ("layers", (("self_attn.q_proj", "d", "q", "proj"), ("self_attn.k_proj", "d", "kv", "proj"),
                         ("self_attn.v_proj", "d", "kv", "proj"), ("self_attn", "", "", "attn"),
                         ("self_attn.o_proj", "q", "d", "proj"), ("mlp.gate_proj", "d", "ffn", "mlp"),
                         ("mlp.up_proj", "d", "ffn", "mlp"), ("mlp.down_proj", "ffn", "d", "mlp"))),
}


def _positive(v: object, flag: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{flag}: {v!r} is not allowed; allowed: an integer >= 1")
    return v


def _divisors(n: int) -> str:
    return ", ".join(str(d) for d in range(1, n + 1) if n % d == 0)


def transformer_shape(model: str, *, seq: int | None = None, heads: int | None = None,
                      kv_heads: int | None = None, blocks: int | None = None, head: bool = False) -> dict[str, int | bool]:
    """The resolved shape of a named transformer: ``seq, heads, kv_heads, blocks, head, hidden, head_dim, ffn``."""
    if model not in TRANSFORMERS:
        raise ValueError(f"model {model!r} is not a known transformer; allowed: {', '.join(TRANSFORMERS)}")
    t = TRANSFORMERS[model]
    if seq is not None and t.family == "vit":
        raise ValueError(f"--seq: {model} has {t.seq} tokens (a {t.image}² image in {t.patch}² patches + the class "
                         "token); allowed: no --seq")
    T = _positive(t.seq if seq is None else seq, "--seq")
    H = _positive(t.heads if heads is None else heads, "--heads")
    if t.hidden % H:
        raise ValueError(f"--heads: {H} does not divide {model}'s hidden size {t.hidden}; allowed: "
                         f"{_divisors(t.hidden)}")
    kv = kv_heads if kv_heads is not None else (t.kv_heads if heads is None else H // (t.heads // t.kv_heads) or 1)
    kv = _positive(kv, "--kv-heads")
    if H % kv:
        raise ValueError(f"--kv-heads: {kv} does not divide the {H} query heads of {model}; allowed: {_divisors(H)}")
    nb = _positive(t.blocks if blocks is None else blocks, "--blocks")
    return {"seq": T, "heads": H, "kv_heads": kv, "blocks": nb, "head": bool(head), "hidden": t.hidden,
            "head_dim": t.hidden // H, "ffn": t.ffn}


def transformer_layers(model: str, *, seq: int | None = None, heads: int | None = None,
                       kv_heads: int | None = None, blocks: int | None = None, head: bool = False) -> list[LayerSpec]:
    """Layer specs of a named transformer (``TRANSFORMERS``) at ``seq`` tokens per example.

    ``heads`` changes the head count at the same hidden size (d_h = hidden / heads); ``kv_heads`` the K/V
    heads (grouped-query attention; must divide ``heads``; default: the model's query heads per KV head
    kept, at least one KV head); ``blocks`` the number of blocks. Errors name the option as its
    ``hwsim synth`` flag and say what is allowed.
    """
    r = transformer_shape(model, seq=seq, heads=heads, kv_heads=kv_heads, blocks=blocks, head=head)
    t = TRANSFORMERS[model]
    T, H, kv, nb = r["seq"], r["heads"], r["kv_heads"], r["blocks"]
    d, dh = t.hidden, t.hidden // H
    specs: list[LayerSpec] = []
    if head and t.family == "vit":
        specs.append(LayerSpec(name="patch_embed.proj", C=3, K=d, H=t.image, W=t.image, R=t.patch, S=t.patch,
                               stride=t.patch, part="other"))

    def lin(name: str, c: int, k: int, part: str, tokens: int = T) -> None:
        specs.append(LayerSpec(name=name, kind="linear", C=c, K=k, tokens=tokens, part=part))

    def attention(p: str) -> None:
        causal = t.causal
        specs.append(LayerSpec(name=f"{p}:qk", kind="matmul", C=H * dh, K=H * T, groups=H, tokens=T,
                               causal="output" if causal else "", part="attn"))
        specs.append(LayerSpec(name=f"{p}:pv", kind="matmul", C=H * T, K=H * dh, groups=H, tokens=T,
                               causal="input" if causal else "", part="attn"))

    width = {"d": d, "q": H * dh, "kv": kv * dh, "qkv": H * dh + 2 * kv * dh, "ffn": t.ffn}
    prefix, gemms = _BLOCKS[t.family]
    for i in range(nb):
        for name, c, k, part in gemms:
            path = f"{prefix}.{i}.{name}"
            if part == "attn":
                attention(path)
            else:
                lin(path, width[c], width[k], part)
    if head:
        if t.family == "vit":
            lin("head", d, t.classes, "other", tokens=1)  # the class token only
        elif t.family == "bert":
            lin("cls.predictions.transform.dense", d, d, "other")
            lin("cls.predictions.decoder", d, t.vocab, "other")
        else:
            lin("lm_head", d, t.vocab, "other")
    return specs
