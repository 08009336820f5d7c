"""A layer by its shape (hwsim/trace/layerspec.py) and a named transformer's resolved shape
(hwsim/trace/transformers.py): per-example spec → mini-batch geometry for each kind, the spec's own checks, a
spec read from a mapping (YAML/JSON, SCALE-Sim), and the flag-named refusals of ``hwsim synth``'s shape options.
Numbers by hand from the docstrings."""

from __future__ import annotations

import pytest

from hwsim.trace.layerspec import LayerSpec, as_layer_spec
from hwsim.trace.schema import TraceError
from hwsim.trace.transformers import transformer_shape


def test_linear_rows_are_batch_times_tokens():
    g = LayerSpec(name="fc", kind="linear", C=768, K=3072, tokens=128).geometry(batch=8)
    assert (g.kind, g.N, g.C, g.K, g.macs) == ("linear", 1024, 768, 3072, 1024 * 768 * 3072)


def test_matmul_holds_batch_times_groups_products_of_tokens_rows():
    # per example: 12 heads of (64 tokens × 32)·(32 × 64); 3 examples → 36 products
    g = LayerSpec(name="qk", kind="matmul", C=12 * 32, K=12 * 64, groups=12, tokens=64).geometry(batch=3)
    assert (g.N, g.C, g.K, g.groups, g.w_role) == (64, 3 * 384, 3 * 768, 36, "activation")
    assert g.gemm == {"M": 64, "N": 64, "K": 32, "batch": 36}
    one = LayerSpec(name="qk", kind="matmul", C=12 * 32, K=12 * 64, groups=12, tokens=64).geometry()
    assert one.gemm == {"M": 64, "N": 64, "K": 32, "batch": 12}


def test_conv_output_size_and_scalar_or_pair_stride_and_padding():
    # P = ⌊(H + 2p − R)/s⌋ + 1 = ⌊(32 + 2 − 3)/2⌋ + 1 = 16; Q with padding 0, stride 1: 32 − 5 + 1 = 28
    g = LayerSpec(name="c", C=3, K=8, H=32, W=32, R=3, S=5, stride=(2, 1), padding=(1, 0)).geometry(batch=4)
    assert (g.N, g.P, g.Q, g.stride, g.padding) == (4, 16, 28, (2, 1), (1, 0))
    sq = LayerSpec(name="c", C=3, K=8, H=9, W=9, R=3, S=3, stride=2, padding=1).geometry()
    assert (sq.N, sq.P, sq.Q, sq.stride, sq.padding) == (1, 5, 5, (2, 2), (1, 1))
    dw = LayerSpec(name="dw", C=8, K=8, H=4, W=4, R=3, S=3, padding=1, groups=8).geometry(batch=2)
    assert dw.weight_shape == (8, 1, 3, 3) and dw.macs == 2 * 16 * 9 * 8


@pytest.mark.parametrize("kw,message", [
    (dict(kind="conv1d"), r"\.kind: 'conv1d' is not allowed; allowed: conv2d, linear, matmul"),
    (dict(kind="linear", tokens=0), r"\.tokens: 0 is not allowed; allowed: an integer >= 1"),
    (dict(kind="linear", tokens=True), r"\.tokens: True is not allowed; allowed: an integer >= 1"),
    (dict(tokens=4), r"\.tokens: 4 is not allowed for a conv2d; allowed: 1"),
    (dict(kind="linear", causal="output"), r"\.causal: 'output' is not allowed; allowed: 'output' or 'input' "
                                           r"for a matmul, else ''"),
    (dict(kind="matmul", causal="both"), r"\.causal: 'both' is not allowed"),
    (dict(part="embedding"), r"\.part: 'embedding' is not allowed; allowed: proj, attn, mlp, other or ''"),
])
def test_a_bad_spec_field_is_named(kw, message):
    with pytest.raises(TraceError, match=r"^LayerSpec\('x'\)" + message):
        LayerSpec(name="x", C=4, K=4, **kw)


def test_a_valid_causal_matmul_and_part_are_kept():
    s = LayerSpec(name="pv", kind="matmul", C=8, K=8, groups=2, tokens=4, causal="input", part="attn")
    assert (s.causal, s.part) == ("input", "attn")


def test_a_spec_from_a_mapping_turns_lists_into_pairs():
    s = as_layer_spec({"name": "c", "C": 3, "K": 8, "H": 8, "W": 8, "R": 3, "S": 3, "stride": [2, 1],
                       "padding": [1, 1]})
    assert s.stride == (2, 1) and s.padding == (1, 1)
    assert s.geometry().P == 4 and s.geometry().Q == 8      # ⌊(8 + 2 − 3)/2⌋ + 1, ⌊(8 + 2 − 3)/1⌋ + 1
    same = LayerSpec(name="fc", kind="linear", C=2, K=3)
    assert as_layer_spec(same) is same


def test_a_bad_mapping_names_where_it_was_read_and_what_is_allowed():
    with pytest.raises(ValueError, match=r"^topo\.csv row 3: unknown field\(s\) \['filters'\]; allowed: name, kind, "
                                         r"C, K, H, W, R, S, stride, padding, groups, tokens, causal, part$"):
        as_layer_spec({"name": "a", "C": 1, "K": 1, "filters": 4}, "topo.csv row 3")
    with pytest.raises(ValueError, match=r"^layers: .*missing 1 required keyword-only argument: 'K'; allowed: name, "):
        as_layer_spec({"name": "a", "C": 1})
    with pytest.raises(ValueError, match=r"^layers: \['a', 1\] is not a layer spec; allowed: LayerSpec or a mapping"):
        as_layer_spec(["a", 1])
    with pytest.raises(ValueError, match=r"^L: LayerSpec\('a'\)\.kind: 'rnn' is not allowed"):
        as_layer_spec({"name": "a", "kind": "rnn", "C": 1, "K": 1}, "L")


def test_transformer_shape_defaults_and_the_kv_heads_it_keeps():
    assert transformer_shape("bert_base") == {"seq": 512, "heads": 12, "kv_heads": 12, "blocks": 12, "head": False,
                                              "hidden": 768, "head_dim": 64, "ffn": 3072}
    # Llama: 32 query heads over 8 KV heads = 4 per KV head; that ratio is kept when --heads changes ...
    assert transformer_shape("llama_block", heads=16)["kv_heads"] == 4
    assert transformer_shape("llama_block", heads=16)["head_dim"] == 256
    # ... with at least one KV head
    assert transformer_shape("llama_block", heads=2)["kv_heads"] == 1
    assert transformer_shape("llama_block", heads=16, kv_heads=2)["kv_heads"] == 2
    assert transformer_shape("gpt2_small", heads=4, seq=7, blocks=2, head=True) == {
        "seq": 7, "heads": 4, "kv_heads": 4, "blocks": 2, "head": True, "hidden": 768, "head_dim": 192, "ffn": 3072}


@pytest.mark.parametrize("kw,message", [
    (dict(model="gpt3"), r"model 'gpt3' is not a known transformer; allowed: gpt2_small, gpt2_medium, bert_base, "
                         r"vit_b16, llama_block"),
    (dict(model="vit_b16", seq=64), r"--seq: vit_b16 has 197 tokens \(a 224² image in 16² patches \+ the class "
                                    r"token\); allowed: no --seq"),
    (dict(model="gpt2_small", seq=0), r"--seq: 0 is not allowed; allowed: an integer >= 1"),
    (dict(model="gpt2_small", blocks=True), r"--blocks: True is not allowed; allowed: an integer >= 1"),
    (dict(model="gpt2_small", heads=5), r"--heads: 5 does not divide gpt2_small's hidden size 768; allowed: 1, 2, 3, "
                                        r"4, 6, 8, 12, 16, "),
    (dict(model="bert_base", heads=6, kv_heads=4), r"--kv-heads: 4 does not divide the 6 query heads of bert_base; "
                                                   r"allowed: 1, 2, 3, 6$"),
    (dict(model="bert_base", kv_heads=0), r"--kv-heads: 0 is not allowed; allowed: an integer >= 1"),
])
def test_transformer_shape_refusals_name_the_flag(kw, message):
    model = kw.pop("model")
    with pytest.raises(ValueError, match="^" + message):
        transformer_shape(model, **kw)
