"""Trace v2 end to end: a traced tiny transformer block simulates; new kinds map onto the machine kinds exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hwsim
from hwsim.capture.session import capture
from hwsim.sim import mapping
from hwsim.trace.format import LayerGeometry, LayerSample, TraceError, TraceWriter, load

torch.set_num_threads(1)


class Conv1D(nn.Module):
    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.randn(nx, nf) * 0.2)
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight).view(*x.shape[:-1], self.nf)


class Block(nn.Module):
    """Pre-LN transformer block: MultiheadAttention + a GPT-2-style Conv1D MLP, then a classifier."""

    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, 2, batch_first=True)
        self.fc, self.proj = Conv1D(2 * d, d), Conv1D(d, 2 * d)
        self.head = nn.Linear(d, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        x = x + self.proj(F.relu(self.fc(self.ln2(x))))
        return self.head(x.mean(1))


def test_traced_transformer_block_simulates_end_to_end(tmp_path):
    torch.manual_seed(0)
    net = Block()
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    x, y = torch.randn(4, 6, 16), torch.randint(0, 3, (4,))
    with capture(net, method="dither", s=2.0, out=tmp_path / "t", sample_every=2, optimizer=opt):
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
    tr = load(tmp_path / "t")
    names = [g.name for g in tr.layers]
    assert names == ["attn", "attn:qk", "attn:pv", "attn.out_proj", "fc", "proj", "head"]
    r = hwsim.simulate(tr, "scnn")
    assert r.trace["coverage"] == tr.meta["coverage"] and r.trace["coverage"]["forward"] == 1.0
    assert r.layer_names() == names
    geo = {g.name: g for g in tr.layers}
    for lp in r.layers:  # dense MACs are the recorded GEMM's, whatever the machine mapping
        assert lp.macs_dense == (geo[lp.name].macs * lp.operand_passes if lp.pass_name != "update" else 0)
        assert lp.sparse.cycle_breakdown.total > 0
    # the weight update: every GEMM with a weight, none for attention's activation products
    assert [lp.name for lp in r.layers if lp.pass_name == "update"] == ["attn", "attn.out_proj", "fc", "proj", "head"]
    assert {lp.pass_name for lp in r.layers if lp.name == "attn:qk"} == {"forward", "backward_data",
                                                                       "backward_weight"}
    assert r.speedup() > 0
    from hwsim.commands.inspect import inspect_trace
    from hwsim.commands.simulate import table

    assert inspect_trace(str(tmp_path / "t"))["summary"]["coverage"]["forward"] == 1.0
    assert "GEMM-MAC coverage: forward 100.0%" in table(r)
    rs = hwsim.simulate(tr, "systolic32")  # the other dataflow: dense MACs = the recorded GEMMs' too
    assert rs.layer_names() == names
    assert all(lp.macs_dense == geo[lp.name].macs * lp.operand_passes for lp in rs.layers if lp.pass_name != "update")


def _sample(g: LayerGeometry, seed: int = 0, *, levels: bool = True) -> LayerSample:
    rng = np.random.default_rng(seed)
    dz = rng.integers(-3, 4, g.output_shape).astype(np.int32) if levels else np.ones(g.output_shape, np.int32)
    return LayerSample(geometry=g, delta=0.5, dz_levels=dz, a_mask=rng.random(g.input_shape) < 0.6,
                       w_mask=rng.random(g.weight_shape) < 0.7, w_density=0.7)


@pytest.mark.parametrize(("stride", "pad", "opad", "groups"), [(2, 1, 1, 1), (1, 0, 0, 2), (3, 2, 1, 1)])
def test_transposed_conv_maps_to_its_gemm_form(stride, pad, opad, groups):
    n, c, k, h, r = 2, 4, 6, 3, 3
    p = (h - 1) * stride - 2 * pad + (r - 1) + opad + 1
    g = LayerGeometry(name="up", kind="conv_transpose2d", N=n, C=c, K=k, H=h, W=h, P=p, Q=p, R=r, S=r,
                      stride=(stride, stride), padding=(pad, pad), groups=groups, output_padding=(opad, opad))
    s = _sample(g)
    m = mapping.to_machine(s)
    assert m.geometry.kind == "conv2d" and m.geometry.macs == g.macs == n * c * h * h * (k // groups) * r * r
    # the GEMM form reproduces torch's backward-data of the transposed conv: δx = conv2d(δy, W)
    w = torch.from_numpy(s.w_mask.astype(np.float64))
    dy = torch.from_numpy(s.dz_levels.astype(np.float64))
    want = F.conv2d(dy, w, stride=stride, padding=pad, groups=groups)  # (N, C, H, W)
    wm = torch.from_numpy(m.w_mask.reshape(m.geometry.K, c // groups).astype(np.float64))  # (K·R·S, C/g)
    cols = torch.from_numpy(m.dz_levels.reshape(m.geometry.K, n * h * h).astype(np.float64))
    kg = m.geometry.K // groups
    got = torch.cat([wm[gi * kg:(gi + 1) * kg].T @ cols[gi * kg:(gi + 1) * kg] for gi in range(groups)])
    torch.testing.assert_close(got.reshape(c, n, h, h).transpose(0, 1), want)
    assert np.array_equal(m.a_mask.reshape(c, n, h, h).transpose(1, 0, 2, 3), s.a_mask)


def test_matmul_asymmetric_and_conv1d_map_exactly():
    g = LayerGeometry(name="qk", kind="matmul", N=5, C=3 * 4, K=3 * 7, groups=3)
    s = _sample(g, 1)
    m = mapping.to_machine(s)
    assert m.geometry.macs == g.macs == 3 * 5 * 4 * 7
    a = m.a_mask.reshape(g.C, g.N).astype(int)
    w = m.w_mask.reshape(g.K, g.C // 3).astype(int)
    out = np.concatenate([w[i * 7:(i + 1) * 7] @ a[i * 4:(i + 1) * 4] for i in range(3)])  # (K, N) grouped 1×1
    want = np.matmul(s.a_mask.astype(int), s.w_mask.astype(int))  # (3, 5, 7)
    assert np.array_equal(out.reshape(3, 7, 5).transpose(0, 2, 1), want)
    same = LayerGeometry(name="same", kind="conv2d", N=1, C=2, K=3, H=6, W=5, P=6, Q=5, R=4, S=2,
                         padding=(1, 2, 0, 1))
    ms = mapping.to_machine(_sample(same))
    assert ms.geometry.padding == (1, 0) and (ms.geometry.H, ms.geometry.W) == (7, 6) and ms.geometry.macs == same.macs
    assert not ms.a_mask[:, :, -1].any() and not ms.a_mask[:, :, :, -1].any()  # the extra padding: zeros after
    c1 = LayerGeometry(name="c", kind="conv1d", N=2, C=4, K=2, W=9, Q=5, S=3, stride=(1, 2), padding=(0, 1))
    mc = mapping.to_machine(_sample(c1))
    assert mc.geometry.kind == "conv2d" and mc.geometry.macs == c1.macs and mc.a_mask.shape == (2, 4, 1, 9)


def test_geometry_v2_validation_and_v1_traces_still_load(tmp_path):
    with pytest.raises(TraceError, match=r"'same'\)\.P: 7 does not match"):
        LayerGeometry(name="same", kind="conv2d", N=1, C=1, K=1, H=6, W=6, P=7, Q=6, R=4, S=4, padding=(1, 2, 1, 2))
    with pytest.raises(TraceError, match="w_role"):
        LayerGeometry(name="x", kind="linear", N=1, C=1, K=1, w_role="bias")
    with pytest.raises(TraceError, match=r"\.H: must be 1 for kind 'conv1d'"):
        LayerGeometry(name="x", kind="conv1d", N=1, C=1, K=1, H=2, W=3, P=2, Q=3)
    g = LayerGeometry(name="fc", kind="linear", N=2, C=3, K=4)
    with TraceWriter(tmp_path / "t", meta={"model": "m", "method": "dither"}) as w:
        w.add_iteration(0, stats={"fc": {"density": 1.0}}, samples=[_sample(g)])
    man = json.loads((tmp_path / "t" / "manifest.json").read_text())
    assert man["version"] == 3 and "w_role" not in man["layers"][0]  # defaults are left out
    log = tmp_path / "t" / man.pop("iteration_log")["file"]  # the v1 layout: iterations inside the manifest
    man.update(version=1, iterations=[json.loads(x) for x in log.read_text().splitlines()])
    log.unlink()
    (tmp_path / "t" / "manifest.json").write_text(json.dumps(man))
    tr = load(tmp_path / "t")
    assert tr.layers == [g] and tr.sample()["fc"].geometry == g
