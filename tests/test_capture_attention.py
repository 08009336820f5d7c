"""Attention in training mode: SDPA with dropout and with grouped-query heads (``enable_gqa``) captured by default.

Stand-ins of the Hugging Face attention modules (no transformers needed): GPT-2 (fused qkv projection, causal SDPA
with ``dropout_p = attn_pdrop`` in ``train()``), BERT (separate q/k/v, an additive padding mask, dropout), T5 (no
scaling, a learned relative-position bias as the float mask, dropout), ``nn.MultiheadAttention`` with dropout and
Llama / Mistral / Qwen (fewer K/V heads than Q heads, ``enable_gqa=True``, causal, no mask). Each is checked for
100 % GEMM-MAC coverage, its recorded GEMM shapes and MACs by hand, bit-identical ``method="none"`` training, and
(with ``dither_attention``) gradients that are exactly the GEMMs of the recorded δ̃z.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _capture_train import train_steps
from torch import nn

from hwsim.capture.session import capture
from hwsim.trace.format import load

torch.set_num_threads(1)


class GPT2Attention(nn.Module):
    """HF GPT-2 (sdpa): c_attn → q, k, v of ``h`` heads; causal SDPA with dropout in train(); c_proj."""

    def __init__(self, d: int = 8, h: int = 2, p: float = 0.5) -> None:
        super().__init__()
        self.c_attn, self.c_proj, self.h, self.p = nn.Linear(d, 3 * d), nn.Linear(d, d), h, p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (z.view(b, t, self.h, d // self.h).transpose(1, 2) for z in self.c_attn(x).split(d, dim=2))
        self.qkv = _keep(q, k, v)
        o = F.scaled_dot_product_attention(q, k, v, dropout_p=self.p if self.training else 0.0, is_causal=True)
        return self.c_proj(o.transpose(1, 2).reshape(b, t, d))


class BertAttention(nn.Module):
    """HF BERT (sdpa): query/key/value Linears, an additive padding mask (finfo.min on padded keys), dropout."""

    def __init__(self, d: int = 8, h: int = 2, p: float = 0.1, boolean: bool = False) -> None:
        super().__init__()
        self.query, self.key, self.value, self.output = (nn.Linear(d, d) for _ in range(4))
        self.h, self.p, self.boolean = h, p, boolean

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (m(x).view(b, t, self.h, d // self.h).transpose(1, 2) for m in (self.query, self.key, self.value))
        pad = torch.zeros(b, 1, 1, t, dtype=x.dtype)
        pad[0, ..., -2:] = torch.finfo(x.dtype).min  # the first sequence is padded by two tokens
        if self.boolean:  # True = attend; the first query of the first sequence attends to nothing (its row is 0)
            pad = (pad == 0).expand(b, 1, t, t).clone()
            pad[0, :, 0] = False
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=pad, dropout_p=self.p if self.training else 0.0)
        return self.output(o.transpose(1, 2).reshape(b, t, d))


class T5Attention(nn.Module):
    """HF T5 (sdpa): no 1/√d scaling (``scale=1.0``), a learned relative-position bias passed as the float mask."""

    def __init__(self, d: int = 8, h: int = 2, p: float = 0.1, buckets: int = 8) -> None:
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.relative_attention_bias = nn.Embedding(buckets, h)
        self.h, self.p, self.buckets = h, p, buckets

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (m(x).view(b, t, self.h, d // self.h).transpose(1, 2) for m in (self.q, self.k, self.v))
        pos = torch.arange(t)
        bucket = (pos[None, :] - pos[:, None] + self.buckets // 2).clamp(0, self.buckets - 1)
        bias = self.relative_attention_bias(bucket).permute(2, 0, 1)[None]  # (1, h, t, t)
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=self.p if self.training else 0.0,
                                           scale=1.0)
        return self.o(o.transpose(1, 2).reshape(b, t, d))


class LlamaAttention(nn.Module):
    """HF Llama / Mistral / Qwen (sdpa, no mask): ``hq`` query heads share ``hk`` K/V heads, ``enable_gqa=True``."""

    def __init__(self, d: int = 16, hq: int = 4, hk: int = 2, p: float = 0.0) -> None:
        super().__init__()
        e = d // hq
        self.q_proj, self.o_proj = nn.Linear(d, hq * e, bias=False), nn.Linear(hq * e, d, bias=False)
        self.k_proj, self.v_proj = nn.Linear(d, hk * e, bias=False), nn.Linear(d, hk * e, bias=False)
        self.hq, self.hk, self.e, self.p = hq, hk, e, p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.hq, self.e).transpose(1, 2)
        k, v = (m(x).view(b, t, self.hk, self.e).transpose(1, 2) for m in (self.k_proj, self.v_proj))
        self.qkv = _keep(q, k, v)
        o = F.scaled_dot_product_attention(q, k, v, dropout_p=self.p if self.training else 0.0, is_causal=True,
                                           enable_gqa=True)
        return self.o_proj(o.transpose(1, 2).reshape(b, t, self.hq * self.e))


class MHAttention(nn.MultiheadAttention):
    """``nn.MultiheadAttention`` with attention dropout, self-attention without weights returned (its SDPA path)."""

    def __init__(self, d: int = 8, h: int = 2, p: float = 0.25) -> None:
        super().__init__(d, h, dropout=p, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x, x, x, need_weights=False)[0]


def _keep(*ts: torch.Tensor) -> tuple[torch.Tensor, ...]:
    for t in ts:
        if t.requires_grad:
            t.retain_grad()
    return ts


class Net(nn.Module):
    def __init__(self, attn: nn.Module, d: int, classes: int = 3) -> None:
        super().__init__()
        self.attn, self.head = attn, nn.Linear(d, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.attn(x))


def _net(kind: str, dtype: torch.dtype = torch.float32) -> tuple[Net, torch.Tensor]:
    torch.manual_seed(0)
    if kind == "gpt2":
        net, shape = Net(GPT2Attention(), 8), (3, 5, 8)
    elif kind == "mha":
        net, shape = Net(MHAttention(), 8), (3, 5, 8)
    elif kind == "t5":
        net, shape = Net(T5Attention(), 8), (3, 5, 8)
    elif kind.startswith("bert"):
        net, shape = Net(BertAttention(boolean=kind == "bert_bool"), 8), (3, 5, 8)
    else:
        net, shape = Net(LlamaAttention(p=0.25 if kind == "llama_dropout" else 0.0), 16), (2, 6, 16)
    return net.to(dtype), torch.randn(*shape, generator=torch.Generator().manual_seed(1)).to(dtype)


def _train(net: Net, x: torch.Tensor, steps: int = 3, autocast: bool = False,
           capture_kw: dict | None = None) -> list[torch.Tensor]:
    """``steps`` SGD steps (dropout draws from torch's global generator, seeded here); grads and weights after."""
    r = torch.randn(*x.shape[:2], 3, generator=torch.Generator().manual_seed(2)).to(x.dtype)

    def loss(n: nn.Module) -> torch.Tensor:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            return (n(x).float() * r).sum()

    torch.manual_seed(7)
    return train_steps(net, loss, steps, capture_kw) + [torch.rand(4)]  # + the RNG stream's position


@pytest.mark.parametrize("kind", ["gpt2", "bert", "t5", "mha", "llama", "llama_dropout"])
def test_hf_style_attention_in_train_mode_is_captured_whole(tmp_path, kind):
    net, x = _net(kind)
    with capture(net, method="dither", s=2.0, out=tmp_path / "t", sample_every=1) as cap:
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        for _ in range(2):
            opt.zero_grad()
            net(x).square().sum().backward()
            opt.step()
    cov = load(tmp_path / "t").meta["coverage"]
    assert cov["missed"] == [] and cap.coverage.complete
    assert cov["forward"] == cov["backward_data"] == cov["backward_weight"] == 1.0
    assert {"attn:qk", "attn:pv"} <= set(load(tmp_path / "t").sample())


def test_gpt2_dropout_products_recorded_with_their_shapes_and_macs(tmp_path):
    net, x = _net("gpt2")  # batch 3, 5 tokens, d 8, 2 heads of 4
    with capture(net, method="dither", s=2.0, out=tmp_path / "t", sample_every=1) as cap:
        net(x).sum().backward()
    g = {lay.name: lay for lay in load(tmp_path / "t").layers}
    assert list(g) == ["attn.c_attn", "attn:qk", "attn:pv", "attn.c_proj", "head"]
    assert g["attn:qk"].gemm == {"M": 5, "N": 5, "K": 4, "batch": 6}  # per (example, head): Q (5×4) · Kᵀ (4×5)
    assert g["attn:pv"].gemm == {"M": 5, "N": 4, "K": 5, "batch": 6}  # P (5×5, after dropout) · V (5×4)
    assert g["attn:qk"].macs == g["attn:pv"].macs == 6 * 5 * 5 * 4 == 600
    keep = load(tmp_path / "t").sample()["attn:pv"].a_mask.reshape(6, 5, 5)  # P's zeros: causal, and dropout's
    causal = np.tril(np.ones((5, 5), dtype=bool))
    assert not keep[:, ~causal].any() and 0.3 < keep[:, causal].mean() < 0.7  # p = 0.5 drops about half
    cov = cap.coverage.meta()
    # forward: c_attn 15·8·24 + qk 600 + pv 600 + c_proj 15·8·8 + head 15·8·3; backward-data all but c_attn (x is data)
    fwd = 2880 + 600 + 600 + 960 + 360
    assert cov["total_macs"] == cov["captured_macs"] == fwd + (fwd - 2880) + fwd == 13320


def test_grouped_query_products_recorded_per_query_head(tmp_path):
    net, x = _net("llama")  # batch 2, 6 tokens, d 16, 4 query heads of 4 sharing 2 K/V heads
    with capture(net, method="dither", s=2.0, out=tmp_path / "t", sample_every=1) as cap:
        net(x).square().sum().backward()
    tr = load(tmp_path / "t")
    g = {lay.name: lay for lay in tr.layers}
    assert g["attn:qk"].gemm == {"M": 6, "N": 6, "K": 4, "batch": 8}  # groups = batch × query heads
    assert g["attn:pv"].gemm == {"M": 6, "N": 4, "K": 6, "batch": 8}
    assert g["attn:qk"].macs == g["attn:pv"].macs == 8 * 6 * 6 * 4 == 1152
    assert g["attn.k_proj"].macs == 12 * 16 * 8 == 1536  # K/V projections: 2 heads of 4
    # forward 3072 (q) + 1536 (k) + 1536 (v) + 1152 (qk) + 1152 (pv) + 3072 (o) + 576 (head) = 12096;
    # backward-data without the three projections of x (the data): 5952; backward-weight: every GEMM
    cov = cap.coverage.meta()
    assert cov["total_macs"] == cov["captured_macs"] == 12096 + 5952 + 12096
    s = tr.sample()
    q, k, _ = net.attn.qkv
    kr = k.detach().repeat_interleave(2, 1)  # query heads 0, 1 read K/V head 0; 2, 3 read head 1
    assert s["attn:qk"].w_mask.shape == (8, 4, 6)  # the stored Kᵀ operand: one per (example, query head)
    np.testing.assert_array_equal(s["attn:qk"].w_mask, (kr.transpose(-2, -1) != 0).reshape(8, 4, 6).numpy())
    # fused SDPA (no dropout): the QKᵀ gradient is recomputed for the record; it is δz of q·kᵀ, so q's gradient is
    # δz·K per query head — up to the plain δz's int8 view (each level within Δ/2 of δz)
    dz = _dz(s["attn:qk"]).reshape(2, 4, 6, 6).float()
    assert (dz != 0).any()
    bound = s["attn:qk"].delta / 2 * kr.abs().sum(-2, keepdim=True) + 1e-6
    assert ((q.grad - dz @ kr).abs() <= bound).all()


@pytest.mark.parametrize("kind,dtype,cap_kw", [
    ("gpt2", torch.float32, {}), ("gpt2", torch.bfloat16, {}), ("bert", torch.float32, {}),
    ("t5", torch.float32, {}), ("mha", torch.float32, {}), ("gpt2", torch.float32, {"autocast": True}), ("t5", torch.float32, {"autocast": True}),
    ("bert_bool", torch.float32, {}), ("llama", torch.float32, {}), ("llama_dropout", torch.float32, {}),
    ("llama", torch.float32, {"dither_attention": True}), ("gpt2", torch.float32, {"dither_attention": True})])
def test_method_none_stays_bit_identical(tmp_path, kind, dtype, cap_kw):
    net, x = _net(kind, dtype)
    cap_kw = dict(cap_kw)
    autocast = cap_kw.pop("autocast", False)  # bf16 autocast: torch casts SDPA's inputs, capture must too
    want = _train(copy.deepcopy(net), x, autocast=autocast)
    got = _train(net, x, autocast=autocast,
                 capture_kw={"method": "none", "out": tmp_path / "t", "sample_every": 1, **cap_kw})
    assert load(tmp_path / "t").meta["coverage"]["missed"] == []
    for i, (u, v) in enumerate(zip(got, want, strict=True)):
        assert torch.equal(u, v), f"tensor {i} differs by {(u.float() - v.float()).abs().max():.2e}"


def _dz(s) -> torch.Tensor:
    return torch.from_numpy(s.dz_levels.astype(np.float64)) * s.delta


@pytest.mark.parametrize("kind", ["gpt2", "llama_dropout"])
def test_dithered_attention_gradients_are_the_gemms_of_the_recorded_dz(tmp_path, kind):
    net, x = _net(kind, torch.float64)
    p, e = net.attn.p, x.shape[-1] // net.attn.hq if kind != "gpt2" else 4
    with capture(net, method="dither", s=1.0, out=tmp_path / "t", sample_every=1, dither_attention=True):
        net(x).square().sum().backward()
    s = load(tmp_path / "t").sample()
    q, k, v = net.attn.qkv
    b, hq, t, _ = q.shape
    r = hq // k.shape[1]
    d_qk = _dz(s["attn:qk"]).reshape(b, hq, t, t)
    d_pv = _dz(s["attn:pv"]).reshape(b, hq, t, e)
    assert 0 < (d_qk != 0).double().mean() < 1 and 0 < (d_pv != 0).double().mean() < 1  # dithered: some zeros
    scale = 1 / math.sqrt(e)
    qd, kr = q.detach(), k.detach().repeat_interleave(r, 1)
    # QKᵀ: torch's math kernel multiplies (√scale·q)(√scale·k)ᵀ, so q's gradient is scale·δ̃z·K (per query head)
    torch.testing.assert_close(q.grad, scale * d_qk @ kr, atol=1e-10, rtol=0)
    kgrad = scale * d_qk.transpose(-2, -1) @ qd  # per query head; K/V heads sum over the heads sharing them
    torch.testing.assert_close(k.grad, kgrad.view(b, -1, r, t, e).sum(2), atol=1e-10, rtol=0)
    # P·V: P is the attention matrix after dropout, as training used it: softmax ⊙ keep / (1 − p), keep = the
    # recorded operand mask (softmax is > 0 on and below the diagonal)
    keep = torch.from_numpy(s["attn:pv"].a_mask).reshape(b, hq, t, t)
    causal = torch.ones(t, t, dtype=torch.bool).tril()
    assert not keep[:, :, ~causal].any() and 0 < keep[:, :, causal].double().mean() < 1  # causal, some dropped
    pr = torch.softmax((qd @ kr.transpose(-2, -1) * scale).masked_fill(~causal, -math.inf), -1) * keep / (1 - p)
    torch.testing.assert_close(v.grad, (pr.transpose(-2, -1) @ d_pv).view(b, -1, r, t, e).sum(2), atol=1e-10,
                               rtol=0)


def test_grouped_query_trace_with_dropout_simulates_per_query_head(tmp_path):
    import hwsim

    net, x = _net("llama_dropout")
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with capture(net, method="dither", s=4.0, out=tmp_path / "t", sample_every=1):
        for _ in range(2):
            opt.zero_grad()
            net(x).square().sum().backward()
            opt.step()
    r = hwsim.simulate(load(tmp_path / "t"), "scnn")
    assert r.trace["coverage"]["forward"] == r.trace["coverage"]["backward_data"] == 1.0
    passes = {(lp.name, lp.pass_name): lp.macs_dense for lp in r.layers}
    for op in ("attn:qk", "attn:pv"):  # 8 (example, query head) products of 6·6·4 MACs, in all three passes
        assert [passes[(op, p)] for p in ("forward", "backward_data", "backward_weight")] == [1152] * 3
    assert ("attn.q_proj", "backward_data") not in passes  # x is data: no backward-data GEMM for the projections


def test_an_sdpa_capture_cannot_read_never_breaks_training(tmp_path, monkeypatch):
    from hwsim.capture import attention

    def boom(p):
        raise RuntimeError("boom")

    monkeypatch.setattr(attention, "products", boom)
    net, x = _net("gpt2")
    want = _train(copy.deepcopy(net), x, steps=1)
    with pytest.warns(UserWarning, match="NOT captured: scaled_dot_product_attention in attn"):
        got = _train(net, x, steps=1, capture_kw={"method": "none", "out": tmp_path / "t", "sample_every": 1})
    assert all(torch.equal(u, v) for u, v in zip(got, want, strict=True))  # the op ran unchanged
    missed = load(tmp_path / "t").meta["coverage"]["missed"]
    assert [(m["module"], m["why"]) for m in missed] == [("attn", "capture could not read this op (RuntimeError: boom)")]
