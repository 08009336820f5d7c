"""The non-GEMM work a synthetic transformer carries (hwsim/trace/topology_nongemm.py) where the GEMM-only tests do
not look: Llama's RMSNorm and SwiGLU, BERT's post-norm and MLM head, ViT's position add and class-token loss, the
embeddings of ``head=True``. Each OpCount(calls, elements, read, written) is worked out by hand from the per-call
rule of :func:`hwsim.trace.nongemm.call_row`:

  elementwise over n      forward (1, n, n, n)            backward (1, n, 2n, n)
  add of two n            forward (1, n, 2n, n)           backward (1, n, 3n, 2n)
  layernorm over n, d     forward (1, n, n + 2d, n)       (scale and shift: 2d parameters)
  rmsnorm over n, d       forward (1, n, n + d, n)        backward (1, n, 2n + d, n + d)
  embedding of r rows     forward (1, x, x + r, x)        backward (1, x, x + r, x)
  loss over b × c logits  forward (1, bc, bc + b, 1)      backward (1, bc, 1 + bc + b, bc)
"""

from __future__ import annotations

from hwsim.trace.nongemm import OpCount
from hwsim.trace.topology_nongemm import topology_nongemm


def _ln(n: int, d: int) -> OpCount:
    return OpCount(1, n, n + 2 * d, n)


def test_llama_block_with_its_head():
    # batch 1, 4 tokens: x = 4 · 4096 = 16,384; scores 32 heads · 4 · 4 = 512; SwiGLU width 4 · 14,336 = 57,344
    w = topology_nongemm("llama_block", 1, {"seq": 4, "blocks": 1, "head": True})
    x, d, s, m = 16_384, 4096, 512, 57_344
    # the token embedding (no position table) and the pre-norm RMSNorm, before the first GEMM
    assert w.at("layers.0.self_attn.q_proj", "forward") == {"embedding": OpCount(1, x, x + 4, x),
                                                           "rmsnorm": OpCount(1, x, x + d, x)}
    assert w.at("layers.0.self_attn.q_proj", "backward") == {"embedding": OpCount(1, x, x + 4, x),  # scatter x
                                                            "rmsnorm": OpCount(1, x, 2 * x + d, x + d)}
    assert w.at("layers.0.self_attn:qk", "forward") == {"softmax": OpCount(1, s, s, s)}
    assert w.at("layers.0.self_attn.o_proj", "forward") == {"add": OpCount(1, x, 2 * x, x),
                                                           "rmsnorm": OpCount(1, x, x + d, x)}
    assert w.at("layers.0.mlp.gate_proj", "forward") == {"silu": OpCount(1, m, m, m)}
    # the gate product SiLU(gate) ⊙ up, charged to up_proj
    assert w.at("layers.0.mlp.up_proj", "forward") == {"mul": OpCount(1, m, 2 * m, m)}
    assert w.at("layers.0.mlp.up_proj", "backward") == {"mul": OpCount(1, m, 3 * m, 2 * m)}
    # the residual add, then the final norm
    assert w.at("layers.0.mlp.down_proj", "forward") == {"add": OpCount(1, x, 2 * x, x),
                                                        "rmsnorm": OpCount(1, x, x + d, x)}
    v = 4 * 128_256                                                 # next-token loss over every token
    assert w.at("lm_head", "forward") == {"loss": OpCount(1, v, v + 4, 1)}
    assert w.at("lm_head", "backward") == {"loss": OpCount(1, v, 1 + v + 4, v)}
    assert w.totals("forward")["rmsnorm"].calls == 3 and "layernorm" not in w.totals()


def test_bert_is_post_norm_with_an_mlm_head():
    # batch 1, 2 tokens: x = 2 · 768 = 1,536; scores 12 · 2 · 2 = 48; MLP 2 · 3072 = 6,144
    w = topology_nongemm("bert_base", 1, {"seq": 2, "blocks": 1, "head": True})
    x, d, m = 1536, 768, 6144
    # token and position look-ups (2 rows each), their add, the embeddings' LayerNorm; no pre-norm
    assert w.at("layer.0.attention.self.query", "forward") == {
        "embedding": OpCount(2, 2 * x, 2 * (x + 2), 2 * x), "add": OpCount(1, x, 2 * x, x), "layernorm": _ln(x, d)}
    assert w.at("layer.0.attention.self:qk", "forward") == {"softmax": OpCount(1, 48, 48, 48)}
    for layer in ("layer.0.attention.output.dense", "layer.0.output.dense"):   # each add, then its LayerNorm
        assert w.at(layer, "forward") == {"add": OpCount(1, x, 2 * x, x), "layernorm": _ln(x, d)}
    assert w.at("layer.0.intermediate.dense", "forward") == {"gelu": OpCount(1, m, m, m)}
    assert w.at("cls.predictions.transform.dense", "forward") == {"gelu": OpCount(1, x, x, x), "layernorm": _ln(x, d)}
    v = 2 * 30_522
    assert w.at("cls.predictions.decoder", "forward") == {"loss": OpCount(1, v, v + 2, 1)}
    assert w.totals("forward")["layernorm"].calls == 4


def test_vit_adds_positions_after_the_patch_embedding_and_classifies_the_class_token():
    # batch 2 of 197 tokens: x = 2 · 197 · 768
    w = topology_nongemm("vit_b16", 2, {"blocks": 1, "head": True})
    x, d = 2 * 197 * 768, 768
    assert w.at("patch_embed.proj", "forward") == {"add": OpCount(1, x, 2 * x, x), "layernorm": _ln(x, d)}
    assert w.at("blocks.0.mlp.fc2", "forward") == {"add": OpCount(1, x, 2 * x, x), "layernorm": _ln(x, d)}
    assert w.at("head", "forward") == {"loss": OpCount(1, 2000, 2002, 1)}        # 2 examples × 1000 classes
    assert "embedding" not in w.totals()


def test_gpt2_head_has_token_and_position_embeddings_and_no_extra_norm():
    w = topology_nongemm("gpt2_small", 1, {"seq": 3, "blocks": 1, "head": True, "heads": None})
    x, d = 3 * 768, 768
    assert w.at("h.0.attn.c_attn", "forward") == {"embedding": OpCount(2, 2 * x, 2 * (x + 3), 2 * x),
                                                 "add": OpCount(1, x, 2 * x, x), "layernorm": _ln(x, d)}
    assert w.at("lm_head", "forward") == {"loss": OpCount(1, 3 * 50_257, 3 * 50_257 + 3, 1)}
    without = topology_nongemm("gpt2_small", 1, {"seq": 3, "blocks": 1})
    assert without.at("h.0.attn.c_attn", "forward") == {"layernorm": _ln(x, d)} and "loss" not in without.totals()
    assert topology_nongemm(None, 1) is None
