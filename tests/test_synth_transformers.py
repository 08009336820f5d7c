"""Synthetic transformers and SCALE-Sim GEMM topologies: GEMM shapes and MAC counts by hand, causal masks,
densities per GEMM kind (given or from a trace), and the CLI's refusals."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from hwsim.trace import load
from hwsim.trace.gemm_kinds import kind_densities, part_of
from hwsim.trace.synth import resolve_densities, synthesize
from hwsim.trace.topology import LayerSpec, model_layers, read_scalesim_topology


def _geoms(model, batch=1, **kw):
    return {s.name: s.geometry(batch) for s in model_layers(model, **kw)}


def test_gpt2_small_block_by_hand():
    # GPT-2 small (d = 768, 12 heads of 64, MLP 3072), 8 sequences of 1024 tokens: B·T = 8,192 token rows.
    g = _geoms("gpt2_small", batch=8, seq=1024, blocks=1)
    assert list(g) == ["h.0.attn.c_attn", "h.0.attn:qk", "h.0.attn:pv", "h.0.attn.c_proj", "h.0.mlp.c_fc",
                       "h.0.mlp.c_proj"]
    c = g["h.0.attn.c_attn"]  # 768 → 3·768 = 2304 over 8,192 rows
    assert (c.kind, c.N, c.C, c.K, c.input_shape, c.output_shape) == ("linear", 8192, 768, 2304, (8192, 768), (8192, 2304))
    assert c.macs == 8192 * 768 * 2304 == 14_495_514_624
    qk = g["h.0.attn:qk"]  # per head and sequence (1024 × 64)·(64 × 1024): 8·12 = 96 products
    assert (qk.kind, qk.w_role, qk.groups, qk.N) == ("matmul", "activation", 96, 1024)
    assert (qk.input_shape, qk.weight_shape, qk.output_shape) == ((96, 1024, 64), (96, 64, 1024), (96, 1024, 1024))
    assert qk.gemm == {"M": 1024, "N": 1024, "K": 64, "batch": 96}
    assert qk.macs == 96 * 1024 * 64 * 1024 == 6_442_450_944
    pv = g["h.0.attn:pv"]  # P (1024 × 1024) · V (1024 × 64)
    assert (pv.input_shape, pv.weight_shape, pv.output_shape) == ((96, 1024, 1024), (96, 1024, 64), (96, 1024, 64))
    assert pv.macs == 6_442_450_944
    assert g["h.0.attn.c_proj"].macs == 8192 * 768 * 768 == 4_831_838_208
    fc, proj2 = g["h.0.mlp.c_fc"], g["h.0.mlp.c_proj"]
    assert (fc.C, fc.K, proj2.C, proj2.K) == (768, 3072, 3072, 768)
    assert fc.macs == proj2.macs == 8192 * 768 * 3072 == 19_327_352_832
    assert sum(x.macs for x in g.values()) == 70_866_960_384
    # 12 blocks: the weight GEMMs are 84,934,656 MACs per token (GPT-2 small's 85 M non-embedding weights)
    full = _geoms("gpt2_small", batch=1, seq=1)
    assert sum(x.macs for n, x in full.items() if x.kind == "linear") == 12 * (768 * 2304 + 768 * 768 + 2 * 768 * 3072)
    assert sum(x.macs for x in full.values() if x.kind == "linear") == 84_934_656
    assert len(full) == 72 and list(full)[-1] == "h.11.mlp.c_proj"


def test_gpt2_medium_and_head():
    g = _geoms("gpt2_medium", batch=1, seq=1024, blocks=1, head=True)
    qk = g["h.0.attn:qk"]  # 16 heads of 1024 / 16 = 64
    assert (qk.groups, qk.input_shape) == (16, (16, 1024, 64))
    assert g["h.0.mlp.c_fc"].K == 4096 and len(_geoms("gpt2_medium", seq=1)) == 24 * 6
    gqa = _geoms("gpt2_small", seq=4, blocks=1, kv_heads=4)  # fused c_attn: 768 queries + 2 · 4 KV heads · 64
    assert gqa["h.0.attn.c_attn"].K == 768 + 2 * 4 * 64 == 1280 and gqa["h.0.attn:qk"].groups == 12
    lm = g["lm_head"]  # 1024 → 50,257 over the 1024 tokens
    assert (lm.N, lm.C, lm.K, lm.macs) == (1024, 1024, 50257, 1024 * 1024 * 50257)


def test_bert_base_by_hand():
    g = _geoms("bert_base", batch=1, blocks=1)  # default 512 tokens, separate q/k/v, not causal
    p = "layer.0.attention.self"
    assert list(g) == [f"{p}.query", f"{p}.key", f"{p}.value", f"{p}:qk", f"{p}:pv", "layer.0.attention.output.dense",
                       "layer.0.intermediate.dense", "layer.0.output.dense"]
    for n in (f"{p}.query", f"{p}.key", f"{p}.value", "layer.0.attention.output.dense"):
        assert g[n].macs == 512 * 768 * 768 == 301_989_888
    assert g[f"{p}:qk"].gemm == {"M": 512, "N": 512, "K": 64, "batch": 12}
    assert g[f"{p}:qk"].macs == g[f"{p}:pv"].macs == 12 * 512 * 64 * 512 == 201_326_592
    assert g["layer.0.intermediate.dense"].macs == g["layer.0.output.dense"].macs == 512 * 768 * 3072
    assert sum(x.macs for x in g.values()) == 4_026_531_840
    assert sum(x.macs for x in _geoms("bert_base").values()) == 12 * 4_026_531_840
    h = _geoms("bert_base", seq=128, blocks=1, head=True)
    assert (h["cls.predictions.decoder"].N, h["cls.predictions.decoder"].K) == (128, 30522)


def test_llama_block_gqa_swiglu_by_hand():
    g = _geoms("llama_block", batch=1)  # Llama-3-8B sizes, 2048 tokens, 32 query heads of 128, 8 KV heads
    p = "layers.0"
    assert list(g) == [f"{p}.self_attn.q_proj", f"{p}.self_attn.k_proj", f"{p}.self_attn.v_proj", f"{p}.self_attn:qk",
                       f"{p}.self_attn:pv", f"{p}.self_attn.o_proj", f"{p}.mlp.gate_proj", f"{p}.mlp.up_proj",
                       f"{p}.mlp.down_proj"]
    assert g[f"{p}.self_attn.q_proj"].K == 4096 and g[f"{p}.self_attn.q_proj"].macs == 2048 * 4096 * 4096
    for kv in ("k_proj", "v_proj"):  # GQA: 8 KV heads · 128 = 1024 outputs
        assert (g[f"{p}.self_attn.{kv}"].K, g[f"{p}.self_attn.{kv}"].macs) == (1024, 2048 * 4096 * 1024)
    qk = g[f"{p}.self_attn:qk"]  # still one QKᵀ per query head
    assert qk.gemm == {"M": 2048, "N": 2048, "K": 128, "batch": 32} and qk.macs == 17_179_869_184
    for m in ("gate_proj", "up_proj"):  # SwiGLU: three MLP GEMMs
        assert (g[f"{p}.mlp.{m}"].C, g[f"{p}.mlp.{m}"].K) == (4096, 14336)
    assert (g[f"{p}.mlp.down_proj"].C, g[f"{p}.mlp.down_proj"].K) == (14336, 4096)
    assert sum(x.macs for n, x in g.items() if ":" not in n) == 2048 * 218_103_808  # weights of one 8B block
    mha = _geoms("llama_block", seq=16, kv_heads=32)
    assert mha[f"{p}.self_attn.k_proj"].K == 4096
    h16 = _geoms("llama_block", seq=16, heads=16)  # head dim 256; 4 query heads per KV head kept → 4 KV heads
    assert h16[f"{p}.self_attn:qk"].input_shape == (16, 16, 256) and h16[f"{p}.self_attn.k_proj"].K == 4 * 256
    assert len(_geoms("llama_block", seq=16, blocks=3)) == 27


def test_vit_b16():
    g = _geoms("vit_b16", batch=2, blocks=1, head=True)
    pe = g["patch_embed.proj"]  # 224² in 16×16 patches → 14 × 14, 3 → 768
    assert (pe.kind, pe.P, pe.Q, pe.macs) == ("conv2d", 14, 14, 2 * 196 * 768 * 3 * 16 * 16)
    assert g["blocks.0.attn.qkv"].N == 2 * 197  # 196 patches + the class token
    assert g["blocks.0.attn:qk"].gemm == {"M": 197, "N": 197, "K": 64, "batch": 24}
    assert (g["head"].N, g["head"].K) == (2, 1000)  # the class token only


def test_causal_attention_matrix(tmp_path):
    s = load(synthesize(tmp_path / "g", model="gpt2_small", seq=8, blocks=1, dz_density=1.0)).sample()
    tril = np.tril(np.ones((8, 8), dtype=bool))
    assert s["h.0.attn:qk"].dz_levels.shape == (12, 8, 8)
    assert np.array_equal(s["h.0.attn:qk"].dz_levels != 0, np.broadcast_to(tril, (12, 8, 8)))
    assert np.array_equal(s["h.0.attn:pv"].a_mask, np.broadcast_to(tril, (12, 8, 8)))
    assert s["h.0.attn:pv"].dz_density == 1.0 and s["h.0.attn:qk"].a_density == 1.0
    b = load(synthesize(tmp_path / "b", model="bert_base", seq=8, blocks=1, dz_density=1.0)).sample()
    assert b["layer.0.attention.self:qk"].dz_density == 1.0 and b["layer.0.attention.self:pv"].a_density == 1.0
    t = load(tmp_path / "g")
    assert t.meta["tokens_per_example"] == 8 and t.meta["synthetic"]["transformer"]["kv_heads"] == 12
    assert t.meta["synthetic"]["kinds"] == {"proj": 2, "attn": 2, "mlp": 2}


def test_gemm_kinds_by_name():
    cases = {("h.0.attn.c_attn", "linear"): "proj", ("h.0.attn.c_proj", "linear"): "proj",
             ("h.0.mlp.c_proj", "linear"): "mlp", ("blocks.0.mlp.0", "linear"): "mlp",
             ("layers.0.mlp.down_proj", "linear"): "mlp", ("encoder.layer.0.output.dense", "linear"): "mlp",
             ("encoder.layer.0.attention.output.dense", "linear"): "proj", ("lm_head", "linear"): "other",
             ("head", "linear"): "other", ("features.0", "conv2d"): "other", ("blocks.1.attn:qk", "matmul"): "attn",
             ("blocks.1.attn:pv#1", "matmul"): "attn", ("h.0.attn.c_fc#2", "linear"): "mlp"}
    assert {k: part_of(*k) for k in cases} == cases
    assert part_of("x:matmul", "matmul", "weight") == "proj"


def test_per_kind_then_per_layer():
    specs = model_layers("gpt2_small", seq=4, blocks=1)
    d = resolve_densities(specs, w_density=1.0, a_density=0.8, dz_density=0.1, dense_first_input=True,
                          per_kind={"attn": {"a": 0.9, "dz": 0.5}, "mlp": {"a": 0.25}, "proj": {"a": 0.75}},
                          per_layer={"h.0.mlp.c_proj": {"a": 0.125}})
    assert d["h.0.attn.c_attn"] == {"w": 1.0, "a": 1.0, "dz": 0.1}  # the first input stays dense
    assert d["h.0.attn:qk"] == d["h.0.attn:pv"] == {"w": 1.0, "a": 0.9, "dz": 0.5}
    assert d["h.0.attn.c_proj"] == {"w": 1.0, "a": 0.75, "dz": 0.1}
    assert d["h.0.mlp.c_fc"] == {"w": 1.0, "a": 0.25, "dz": 0.1}
    assert d["h.0.mlp.c_proj"] == {"w": 1.0, "a": 0.125, "dz": 0.1}
    with pytest.raises(ValueError, match=r"per_kind: unknown kind\(s\) \['mlps'\]; allowed: proj, attn, mlp, other"):
        resolve_densities(specs, w_density=1, a_density=1, dz_density=0.1, dense_first_input=True,
                          per_kind={"mlps": {"a": 0.5}}, per_layer=None)


def test_densities_from_a_trace(tmp_path):
    # A trace with layer names as capture writes them; densities 0 or 1 so the element-weighted means are exact.
    layers = [LayerSpec(name="h.0.attn.c_attn", kind="linear", C=4, K=8),          # a 4 elements, δ̃z 8
              LayerSpec(name="h.0.attn.c_proj", kind="linear", C=8, K=24),         # a 8, δ̃z 24
              LayerSpec(name="h.0.attn:qk", kind="matmul", C=6, K=10, groups=2, tokens=4),  # δ̃z (2, 4, 5)
              LayerSpec(name="h.0.mlp.c_fc", kind="linear", C=24, K=4),
              LayerSpec(name="lm_head", kind="linear", C=4, K=3)]
    src = synthesize(tmp_path / "src", layers=layers, dz_density=1.0, a_density=0.0, w_density=1.0,
                     per_layer={"h.0.attn.c_proj": {"dz": 0.0}, "h.0.mlp.c_fc": {"dz": 0.0, "a": 1.0}})
    k = kind_densities(load(src))
    # proj: δ̃z (8·1 + 24·0) / 32 = 0.25 (the plain mean of the two would be 0.5); a (4·1 + 8·0) / 12
    assert k["proj"] == {"w": 1.0, "a": round(1 / 3, 6), "dz": 0.25}
    assert k["attn"] == {"w": 1.0, "a": 0.0, "dz": 1.0} and k["mlp"] == {"w": 1.0, "a": 1.0, "dz": 0.0}
    assert k["other"]["dz"] == 1.0
    out = synthesize(tmp_path / "t", model="gpt2_small", seq=4, blocks=1, densities_from=src,
                     per_kind={"attn": {"a": 0.5}})
    m = load(out).meta["synthetic"]
    assert m["densities"]["h.0.attn.c_proj"] == {"w": 1.0, "a": round(1 / 3, 6), "dz": 0.25}
    assert m["densities"]["h.0.attn:qk"] == {"w": 1.0, "a": 0.5, "dz": 1.0}  # --per-kind-json over the trace
    assert m["densities"]["h.0.mlp.c_proj"] == {"w": 1.0, "a": 1.0, "dz": 0.0}
    assert m["densities_from"] == str(src)


def test_scalesim_gemm_csv_by_hand(tmp_path):
    p = tmp_path / "g.csv"  # (M × K)·(K × N): M rows, K inner, N outputs; trailing commas, an extra column
    p.write_text("Layer, M, N, K,\nqkt, 512, 512, 64,\n proj , 512, 2304, 768, 1:1,\n\nfc,3,10,800,\n")
    specs = read_scalesim_topology(p)
    assert [s.name for s in specs] == ["qkt", "proj", "fc"] and {s.kind for s in specs} == {"linear"}
    g = {s.name: s.geometry(1) for s in specs}
    assert g["proj"].gemm == {"M": 512, "N": 2304, "K": 768, "batch": 1}
    assert (g["proj"].N, g["proj"].C, g["proj"].K, g["proj"].macs) == (512, 768, 2304, 512 * 2304 * 768)
    assert g["qkt"].macs == 512 * 512 * 64 and g["fc"].macs == 3 * 10 * 800 == 24_000
    assert specs[2].geometry(4).N == 12  # --batch repeats the M rows
    t = load(synthesize(tmp_path / "t", scalesim_csv=p, batch=2))
    assert t.meta["model"] == "g" and t.meta["tokens_per_example"] == 512
    assert t.sample()["fc"].a_mask.shape == (6, 800)


def test_layer_spec_checks():
    with pytest.raises(ValueError, match=r"LayerSpec\('x'\)\.causal: 'yes' is not allowed"):
        LayerSpec(name="x", kind="linear", C=1, K=1, causal="yes")
    with pytest.raises(ValueError, match=r"LayerSpec\('x'\)\.kind: 'conv3d' is not allowed; allowed: conv2d, linear, "
                                         "matmul"):
        LayerSpec(name="x", kind="conv3d", C=1, K=1)
    with pytest.raises(ValueError, match=r"--seq, --blocks: lenet5 is not a transformer"):
        model_layers("lenet5", seq=4, blocks=2)
    with pytest.raises(ValueError, match="seq apply to a named transformer"):
        synthesize("unused", layers=[LayerSpec(name="f", kind="linear", C=2, K=2)], seq=4)


def test_cli_gpt2_one_block(tmp_path):
    r = subprocess.run([sys.executable, "-m", "hwsim", "synth", "--model", "gpt2_small", "--seq", "16", "--blocks", "1",
                        "--per-kind-json", json.dumps({"attn": {"dz": 0.5}}), "--out", str(tmp_path / "t")],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert "h.0.attn:qk" in r.stdout and f"{12 * 16 * 64 * 16:,}" in r.stdout
    t = load(tmp_path / "t")
    assert t.meta["synthetic"]["densities"]["h.0.attn:pv"]["dz"] == 0.5
    assert t.meta["synthetic"]["transformer"]["seq"] == 16
