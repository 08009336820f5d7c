"""Non-GEMM work in traces: capture's tally (tiny CNN, tiny transformer), topology-derived records, the reader."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hwsim
from hwsim.arch import load_arch
from hwsim.sim.nongemm import cost, vector_ops
from hwsim.trace.format import TraceError
from hwsim.trace.nongemm import NonGemmWork, OpCount, call_row, coverage_line
from hwsim.trace.topology_nongemm import topology_nongemm


def _capture(model: nn.Module, x: torch.Tensor, out) -> hwsim.trace.format.Trace:
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with hwsim.capture(model, out=out, sample_every=1, seed=0):
        for _ in range(2):
            loss = model(x).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return hwsim.load_trace(out)


def test_capture_cnn_batchnorm_relu_maxpool(tmp_path):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.MaxPool2d(2),
                      nn.Flatten(), nn.Linear(4 * 4 * 4, 10))
    tr = _capture(m, torch.randn(2, 1, 8, 8), tmp_path / "t")
    work = tr.nongemm(1)
    conv_out = 2 * 4 * 8 * 8  # 512 elements after the convolution
    fwd, bwd = work.at("0", "forward"), work.at("0", "backward")
    # BatchNorm reads x and its four per-channel vectors (running mean/var, weight, bias)
    assert fwd["batchnorm"] == OpCount(1, conv_out, conv_out + 4 * 4, conv_out)
    # its backward reads δy and the saved inputs, writes δx, δweight, δbias (running stats get none)
    assert bwd["batchnorm"] == OpCount(1, conv_out, conv_out + conv_out + 16, conv_out + 4 + 4)
    assert fwd["relu"] == OpCount(1, conv_out, conv_out, conv_out)
    assert fwd["maxpool"] == OpCount(1, conv_out, conv_out, conv_out // 4)
    assert bwd["maxpool"] == OpCount(1, conv_out, conv_out // 4 + conv_out, conv_out)
    assert set(work.layers()) == {"0"}  # BN's integer num_batches_tracked += 1 is not vector work
    assert tr.meta.nongemm["kinds"] == ["relu", "batchnorm", "maxpool"]
    assert tr.meta.nongemm["recognised"] == 1.0 and tr.meta.nongemm["source"] == "capture"
    # written once while the shapes stay the same; iteration 1 did the work of the record before it
    lines = (tmp_path / "t" / "iterations.jsonl").read_text().splitlines()
    assert ["nongemm" in json.loads(line) for line in lines] == [True, False]
    assert tr.nongemm(0) == work


class _Block(nn.Module):
    """LayerNorm → qkv → SDPA and an explicit softmax(QKᵀ)·V → out → GELU → residual add."""

    def __init__(self) -> None:
        super().__init__()
        self.ln, self.qkv, self.out = nn.LayerNorm(8), nn.Linear(8, 24), nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln(x)
        q, k, v = (t.view(2, 5, 2, 4).transpose(1, 2) for t in self.qkv(h).split(8, dim=-1))
        a = F.scaled_dot_product_attention(q, k, v)
        p = torch.softmax(q @ k.transpose(-1, -2), dim=-1)
        o = (p @ v + a).transpose(1, 2).reshape(2, 5, 8)
        return x + F.gelu(self.out(o))


def test_capture_layernorm_softmax_transformer(tmp_path):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Embedding(10, 8), _Block(), nn.Linear(8, 3))
    tr = _capture(m, torch.randint(0, 10, (2, 5)), tmp_path / "t")
    work = tr.nongemm(1)
    tokens = 2 * 5 * 8  # 80 activations of width 8
    scores = 2 * 2 * 5 * 5  # batch × heads × L × S = 100
    # the look-up runs before any GEMM: charged to the first one; reads its 80 rows and the 10 indices
    assert work.at("1.qkv", "forward")["embedding"] == OpCount(1, tokens, tokens + 10, tokens)
    assert work.at("1.qkv", "backward")["embedding"] == OpCount(1, tokens, tokens + 10, tokens)
    assert work.at("1.qkv", "forward")["layernorm"] == OpCount(1, tokens, tokens + 8 + 8, tokens)
    assert work.at("1.qkv", "backward")["layernorm"] == OpCount(1, tokens, 2 * tokens + 16, tokens + 16)
    # SDPA's softmax from its shapes, charged to its P·V; the explicit one to its QKᵀ matmul
    assert work.at("1:pv", "forward")["softmax"] == OpCount(1, scores, scores, scores)
    assert work.at("1:matmul", "forward")["softmax"] == OpCount(1, scores, scores, scores)
    assert work.at("1:matmul", "backward")["softmax"] == OpCount(1, scores, 2 * scores, scores)
    assert work.at("1.out", "forward")["gelu"] == OpCount(1, tokens, tokens, tokens)
    assert work.at("1.out", "forward")["add"] == OpCount(1, tokens, 2 * tokens, tokens)
    assert work.at("1.out", "backward")["add"] == OpCount(1, tokens, 3 * tokens, 2 * tokens)
    # the vector unit's work for them (hwsim.sim.nongemm) and its cycles on scnn's 64 lanes
    ln = work.at("1.qkv", "forward")["layernorm"]
    sm = work.at("1:pv", "forward")["softmax"]
    assert vector_ops({"layernorm": ln}, "forward") == {"add": 2 * tokens, "fma": 2 * tokens, "mul": tokens}
    assert vector_ops({"softmax": sm}, "forward") == {"compare": scores, "add": 2 * scores, "exp": scores,
                                                      "div": scores}
    assert cost({"layernorm": ln}, "forward", load_arch("scnn"))[0] == -(-5 * tokens // 64)  # 400 ops → 7 cycles
    assert cost({"softmax": sm}, "forward", load_arch("scnn"))[0] == -(-(3 + 6 + 5) * scores // 64)  # 1400 → 22
    # reshape of a transposed tensor copies: not recognised, listed and not charged
    assert tr.meta.nongemm["other"] == {"reshape": 1}
    assert "reshape ×1" in coverage_line(tr.meta.nongemm)


def test_topology_gpt2_block_by_hand():
    T, d, H, F_ = 8, 768, 12, 3072
    w = topology_nongemm("gpt2_small", 2, {"seq": T, "blocks": 1})
    x, sc, mlp = 2 * T * d, 2 * H * T * T, 2 * T * F_
    ln = OpCount(1, x, x + 2 * d, x)
    assert w.at("h.0.attn.c_attn", "forward") == {"layernorm": ln}  # pre-norm: ln_1 before c_attn
    assert w.at("h.0.attn:qk", "forward") == {"softmax": OpCount(1, sc, sc, sc)}
    assert w.at("h.0.attn.c_proj", "forward") == {"add": OpCount(1, x, 2 * x, x), "layernorm": ln}
    assert w.at("h.0.mlp.c_fc", "forward") == {"gelu": OpCount(1, mlp, mlp, mlp)}
    assert w.at("h.0.mlp.c_fc", "backward") == {"gelu": OpCount(1, mlp, 2 * mlp, mlp)}
    assert w.at("h.0.mlp.c_proj", "backward") == {"add": OpCount(1, x, 3 * x, 2 * x)}
    tot = w.totals("forward")
    assert (tot["layernorm"].calls, tot["softmax"].elements, tot["add"].calls) == (2, sc, 2)


def test_topology_cnns_by_hand():
    w = topology_nongemm("lenet5", 3)
    assert w.at("conv1", "forward") == {"relu": OpCount(1, 3 * 6 * 28 * 28, 3 * 6 * 28 * 28, 3 * 6 * 28 * 28),
                                        "maxpool": OpCount(1, 3 * 6 * 28 * 28, 3 * 6 * 28 * 28, 3 * 6 * 14 * 14)}
    assert w.at("fc3", "forward") == {"loss": OpCount(1, 30, 33, 1)}  # cross-entropy over 3 × 10 logits
    r = topology_nongemm("resnet18", 1)
    assert r.totals("forward")["batchnorm"].calls == 20 and r.totals("forward")["add"].calls == 8
    assert r.at("layer4.1.conv2", "forward")["avgpool"] == OpCount(1, 512 * 7 * 7, 512 * 7 * 7, 512)
    assert topology_nongemm("not-a-model", 1) is None


def test_synth_writes_and_reader_validates(tmp_path):
    hwsim.synthesize(tmp_path / "g", model="gpt2_small", seq=8, blocks=1)
    tr = hwsim.load_trace(tmp_path / "g")
    assert tr.meta.nongemm["source"] == "topology"
    assert tr.nongemm(0) == topology_nongemm("gpt2_small", 1, {"seq": 8, "blocks": 1})
    hwsim.synthesize(tmp_path / "c", layers=[{"name": "a", "kind": "linear", "C": 4, "K": 4}])
    old = hwsim.load_trace(tmp_path / "c")  # no topology: no records, loads as before
    assert old.nongemm() is None and old.meta.nongemm is None
    with pytest.raises(TraceError, match=r"f\.jsonl: field 'nongemm\.fc1\.conv': kind 'conv' is not allowed"):
        NonGemmWork.from_json({"fc1": {"conv": [0] * 8}}, file="f.jsonl")
    with pytest.raises(TraceError, match=r"field 'nongemm\.fc1\.relu': \[1, 2\] is not allowed; allowed: a list of 8"):
        NonGemmWork.from_json({"fc1": {"relu": [1, 2]}}, file="f.jsonl")
    man = json.loads((tmp_path / "g" / "manifest.json").read_text())
    man["meta"]["nongemm"]["version"] = 9
    (tmp_path / "g" / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(TraceError, match=r"field 'meta\.nongemm\.version': 9 is not allowed; allowed: 1"):
        hwsim.load_trace(tmp_path / "g")


def test_call_row_rule():
    assert call_row("relu", [10], 10, [10]) == [1, 10, 10, 10, 1, 10, 20, 10]
    assert call_row("relu", [10], 10, None) == [1, 10, 10, 10, 0, 0, 0, 0]
    assert call_row("embedding", [4, 1000], 32, [1000]) == [1, 32, 36, 32, 1, 32, 36, 32]


def test_records_follow_shape_changes_and_inspect_reports_them(tmp_path):
    from hwsim.commands.inspect import inspect_trace

    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    opt = torch.optim.SGD(m.parameters(), lr=0.01)
    with hwsim.capture(m, out=tmp_path / "t", sample_every=1, seed=0):
        for n in (4, 4, 3):  # a short last batch
            loss = m(torch.randn(n, 4)).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    tr = hwsim.load_trace(tmp_path / "t")
    lines = (tmp_path / "t" / "iterations.jsonl").read_text().splitlines()
    assert ["nongemm" in json.loads(line) for line in lines] == [True, False, True]
    assert tr.nongemm(1).at("0", "forward") == {"relu": OpCount(1, 24, 24, 24)}  # held from iteration 0
    assert tr.nongemm(2).at("0", "forward") == {"relu": OpCount(1, 18, 18, 18)}
    assert inspect_trace(tmp_path / "t")["summary"]["nongemm"]["kinds"] == ["relu"]
