"""Op-level capture: every GEMM-like op recorded, gradients exact, coverage loud, set-ups checked."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _capture_train import train_steps
from torch import nn

from hwsim.capture.session import capture
from hwsim.trace.format import load

torch.set_num_threads(1)


class Conv1D(nn.Module):
    """Hugging Face GPT-2's ``Conv1D``: an addmm with a weight of shape (in, out)."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.randn(nx, nf) * 0.2)
        self.bias = nn.Parameter(torch.randn(nf) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size_out = x.size()[:-1] + (self.nf,)
        return torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight).view(size_out)


class Zoo(nn.Module):
    """One of each: MHA (bmm path and SDPA path), Conv1D, F.linear, SDPA, Conv1d, ConvTranspose2d, 'same' conv."""

    def __init__(self) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True)
        self.c_fc = Conv1D(16, 8)
        self.c_proj = Conv1D(8, 16)
        self.qkv = nn.Linear(8, 24)
        self.w = nn.Parameter(torch.randn(8, 8) * 0.3)
        self.conv = nn.Conv1d(8, 8, 3, padding=1)
        self.up = nn.ConvTranspose2d(1, 2, 3, stride=2, padding=1, output_padding=1)
        self.same = nn.Conv2d(2, 3, 4, padding="same")
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        x = x + self.mha(x, x, x)[0]  # need_weights=True: F.linear in-proj, bmm, baddbmm? bmm, out-proj
        x = x + self.mha(x, x, x, need_weights=False)[0]  # the SDPA path
        x = x + self.c_proj(F.gelu(self.c_fc(x)))
        q, k, v = self.qkv(x).view(b, t, 3, 2, d // 2).permute(2, 0, 3, 1, 4)
        x = x + F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d)
        x = x + torch.relu(F.linear(x, self.w))
        x = x + self.conv(x.transpose(1, 2)).transpose(1, 2)
        img = self.same(self.up(x[:, :, :4].reshape(b, 1, t, 4)))  # (b, 2, 2t, 8) → (b, 3, 2t, 8)
        return self.head(x.mean(1)) + img.mean((1, 2, 3))[:, None]


ZOO_NAMES = ["mha", "mha:qk", "mha:pv", "mha.out_proj", "mha#1", "mha:qk#1", "mha:pv#1", "mha.out_proj#1",
             "c_fc", "c_proj", "qkv", "qk", "pv", "zoo", "conv", "up", "same", "head"]


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(3, 4, 8, generator=g), torch.randn(3, 4, generator=g)


def test_every_op_of_the_zoo_is_recorded_with_its_geometry(tmp_path):
    torch.manual_seed(0)
    net = Zoo()
    x, r = _data()
    with capture(net, method="dither", s=2.0, out=tmp_path / "t", sample_every=1) as cap:
        for _ in range(2):
            (net(x) * r).sum().backward()
    tr = load(tmp_path / "t")
    assert [g.name for g in tr.layers] == ZOO_NAMES
    kinds = {g.name: g.kind for g in tr.layers}
    assert kinds["c_fc"] == "linear" and kinds["conv"] == "conv1d" and kinds["up"] == "conv_transpose2d"
    assert kinds["mha:qk"] == kinds["pv"] == "matmul" and kinds["zoo"] == "linear"
    g = {g.name: g for g in tr.layers}
    assert g["same"].padding == (1, 2, 1, 2) and (g["same"].P, g["same"].Q) == (8, 8)  # even kernel, 'same'
    assert g["c_fc"].gemm == {"M": 12, "N": 16, "K": 8, "batch": 1}  # tokens (batch × sequence) flattened
    assert g["qk"].gemm == {"M": 4, "N": 4, "K": 4, "batch": 6} and g["qk"].w_role == "activation"
    assert g["up"].macs == 3 * 4 * 4 * 1 * 2 * 9 and g["up"].output_padding == (1, 1)
    assert g["mha"].gemm["N"] == 24 and g["mha.out_proj"].w_role == "weight"
    cov = tr.meta["coverage"]
    assert cov["forward"] == cov["backward_data"] == cov["backward_weight"] == 1.0 and cov["missed"] == []
    assert cov["total_macs"] == cov["captured_macs"] > 0 and cap.coverage.complete
    s = tr.sample()
    assert set(s) == set(ZOO_NAMES)
    assert s["pv"].w_mask is not None and s["pv"].a_density < 1.0  # causal P: zeros above the diagonal
    assert s["c_fc"].dz_density < 1.0 and s["mha:qk"].dz_density > 0.9  # attention δz not dithered by default
    assert tr.iterations[1].layers["qk"].density > 0.5  # causal: δS = 0 above the diagonal


def _train(net: nn.Module, capture_kw: dict | None = None) -> list[torch.Tensor]:
    """Two SGD steps on one fixed batch: every step's gradients, then the weights after."""
    x, r = _data(1)
    return train_steps(net, lambda n: (n(x) * r).sum(), 2, capture_kw)


def test_method_none_is_bit_identical_to_no_capture(tmp_path):
    torch.manual_seed(1)
    a = Zoo()
    b = copy.deepcopy(a)
    want = _train(a)
    got = _train(b, {"method": "none", "out": tmp_path / "t", "sample_every": 1})
    assert len(got) == len(want)
    for i, (u, v) in enumerate(zip(got, want, strict=True)):
        assert torch.equal(u, v), f"tensor {i} differs"


def _dz(tr_path, name: str) -> torch.Tensor:
    s = load(tr_path).sample()[name]
    return torch.from_numpy(s.dz_levels.astype(np.float64)) * s.delta


class _Both(nn.Module):
    def __init__(self, hf: nn.Module, conv: nn.Module, r1: torch.Tensor, r2: torch.Tensor) -> None:
        super().__init__()
        self.hf, self.conv, self.r1, self.r2 = hf, conv, r1, r2

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (self.hf(x) * self.r1).sum() + (self.conv(y) * self.r2).sum()  # δz = r exactly


def test_dithered_grads_of_conv1d_addmm_are_gemms_of_dz_tilde(tmp_path):
    torch.manual_seed(2)
    hf, conv = Conv1D(5, 6).double(), nn.Conv1d(6, 4, 3, stride=2, padding=1).double()
    x = torch.randn(2, 7, 6, dtype=torch.float64, requires_grad=True)
    r1 = torch.randn(2, 7, 5, dtype=torch.float64)
    y = torch.randn(2, 6, 9, dtype=torch.float64, requires_grad=True)
    r2 = torch.randn(2, 4, 5, dtype=torch.float64)
    both = _Both(hf, conv, r1, r2)
    with capture(both, method="dither", s=1.0, out=tmp_path / "u", sample_every=1):
        both(x, y).backward()
    d1 = _dz(tmp_path / "u", "hf").reshape(2, 7, 5)
    assert (d1 == 0).any() and not torch.allclose(d1, r1)
    torch.testing.assert_close(hf.weight.grad, x.detach().reshape(14, 6).T @ d1.reshape(14, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.grad, d1 @ hf.weight.detach().T, atol=1e-5, rtol=0)
    d2 = _dz(tmp_path / "u", "conv")  # (N, K, Q)
    cols = F.unfold(y.detach().unsqueeze(2), (1, 3), padding=(0, 1), stride=(1, 2))  # (N, C·3, Q)
    w = conv.weight.detach().reshape(4, 18)
    torch.testing.assert_close(conv.weight.grad.reshape(4, 18), sum(d2[i] @ cols[i].T for i in range(2)),
                               atol=1e-5, rtol=0)  # δW = δ̃z · im2col(a)ᵀ
    dcols = torch.stack([w.T @ d2[i] for i in range(2)])
    dy = F.fold(dcols, (1, 9), (1, 3), padding=(0, 1), stride=(1, 2)).squeeze(2)  # col2im of Wᵀ·δ̃z
    torch.testing.assert_close(y.grad, dy, atol=1e-5, rtol=0)


def test_dithered_grads_of_transposed_and_same_conv(tmp_path):
    torch.manual_seed(3)
    up = nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1).double()
    same = nn.Conv2d(4, 2, 4, padding="same").double()
    net = nn.Sequential(up, same)
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    r = torch.randn(2, 2, 8, 8, dtype=torch.float64)
    with capture(net, method="dither", s=1.0, out=tmp_path / "t", sample_every=1):
        h = up(x)
        h.retain_grad()
        (same(h) * r).sum().backward()
    tr = load(tmp_path / "t")
    assert tr.layer("1").padding == (1, 2, 1, 2)
    d_same = _dz(tmp_path / "t", "1")
    hp = F.pad(h.detach(), (1, 2, 1, 2))  # torch's 'same' for an even kernel: 1 before, 2 after
    gw = torch.nn.grad.conv2d_weight(hp, same.weight.shape, d_same)
    torch.testing.assert_close(same.weight.grad, gw, atol=1e-5, rtol=0)
    gi = torch.nn.grad.conv2d_input(hp.shape, same.weight.detach(), d_same)[:, :, 1:-2, 1:-2]
    dy = _dz(tmp_path / "t", "0")
    assert (dy == 0).any()
    # transposed conv: δx = conv2d(δ̃y, W) (its adjoint), δW[ci, co] = Σ x[ci] ⋆ δ̃y[co]
    torch.testing.assert_close(x.grad, F.conv2d(dy, up.weight.detach(), stride=2, padding=1), atol=1e-5, rtol=0)
    want_w = torch.nn.grad.conv2d_weight(dy, (3, 4, 3, 3), x.detach(), stride=2, padding=1)
    torch.testing.assert_close(up.weight.grad, want_w, atol=1e-5, rtol=0)
    torch.testing.assert_close(h.grad, gi, atol=1e-5, rtol=0)  # δa of 'same' (before up's own quantization)


@pytest.mark.parametrize("how", ["matmul", "einsum", "sdpa"])
def test_dithered_attention_products_use_dz_tilde(tmp_path, how):
    torch.manual_seed(4)
    lq, lk = nn.Linear(6, 6).double(), nn.Linear(6, 6).double()
    net = nn.ModuleDict({"q": lq, "k": lk})
    x = torch.randn(2, 5, 6, dtype=torch.float64)

    class Att(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = net

        def forward(self, x):
            q, k = lq(x), lk(x)
            q.retain_grad()
            k.retain_grad()
            self.qk = (q, k)
            if how == "matmul":
                return q @ k.transpose(1, 2)
            if how == "einsum":
                return torch.einsum("bld,bmd->blm", q, k)
            return F.scaled_dot_product_attention(q, k, k)

    att = Att()
    out_cols = 6 if how == "sdpa" else 5
    r = torch.randn(2, 5, out_cols, dtype=torch.float64)
    with capture(att, method="dither", s=1.0, out=tmp_path / "t", sample_every=1, dither_attention=True):
        (att(x) * r).sum().backward()
    q, k = att.qk
    name = {"matmul": "matmul", "einsum": "einsum", "sdpa": "qk"}[how]
    s = load(tmp_path / "t").sample()[name]
    assert s.geometry.kind == "matmul" and s.geometry.w_role == "activation" and s.w_mask is not None
    dz = torch.from_numpy(s.dz_levels.astype(np.float64)).reshape(2, 5, 5) * s.delta
    assert (dz == 0).any()
    # δa = δ̃z · B (z = q·kᵀ); SDPA's product is torch's math kernel's (√scale·q)(√scale·k)ᵀ: q's gradient is scale·δ̃z·k
    scale = 1 / 6 ** 0.5 if how == "sdpa" else 1.0
    torch.testing.assert_close(q.grad, scale * dz @ k.detach(), atol=1e-5, rtol=0)
    if how != "sdpa":  # (with SDPA, k is also V: its gradient adds the P·V product's)
        torch.testing.assert_close(k.grad, dz.transpose(1, 2) @ q.detach(), atol=1e-5, rtol=0)  # δB = δ̃zᵀ · a
