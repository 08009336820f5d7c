"""capture(): training really uses δ̃z in both backward GEMMs, on awkward models, and traces survive failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hwsim.capture.session import NonFiniteGradientError, capture
from hwsim.trace.format import load


def _dz_tilde(trace: Path, name: str, it: int | None = None) -> torch.Tensor:
    s = load(trace).sample(it)[name]
    return torch.from_numpy(s.dz_levels.astype(np.float64)) * s.delta


def test_linear_grads_are_gemms_of_quantized_dz(tmp_path):
    torch.manual_seed(0)
    lin = nn.Linear(7, 5).double()
    x = torch.randn(6, 7, dtype=torch.float64, requires_grad=True)
    r = torch.randn(6, 5, dtype=torch.float64)  # loss = <r, z> so δz = r exactly
    with capture(lin, method="dither", s=1.0, out=tmp_path / "t", sample_every=1):
        (lin(x) * r).sum().backward()
    dzt = _dz_tilde(tmp_path / "t", "linear")
    assert not torch.allclose(dzt, r) and (dzt == 0).any()  # really quantized, and sparse
    torch.testing.assert_close(lin.weight.grad, dzt.T @ x.detach(), atol=1e-5, rtol=0)  # δW = δ̃zᵀ·a
    torch.testing.assert_close(x.grad, dzt @ lin.weight.detach(), atol=1e-5, rtol=0)  # δa = W·δ̃z
    torch.testing.assert_close(lin.bias.grad, dzt.sum(0), atol=1e-5, rtol=0)


@pytest.mark.parametrize(("stride", "padding", "dilation", "groups"), [(2, 1, 1, 2), (1, 2, 2, 3), (2, 0, 1, 1)])
def test_conv2d_grads_are_im2col_gemms_of_quantized_dz(tmp_path, stride, padding, dilation, groups):
    torch.manual_seed(1)
    n, c, k, h = 3, 6, 6, 9
    conv = nn.Conv2d(c, k, 3, stride=stride, padding=padding, dilation=dilation, groups=groups).double()
    x = torch.randn(n, c, h, h, dtype=torch.float64, requires_grad=True)
    out_shape = conv(x).shape
    r = torch.randn(out_shape, dtype=torch.float64)
    with capture(conv, method="dither", s=1.5, out=tmp_path / "t", sample_every=1, seed=3):
        (conv(x) * r).sum().backward()
    dzt = _dz_tilde(tmp_path / "t", "conv2d")
    g = load(tmp_path / "t").layer("conv2d")
    assert (g.stride, g.padding, g.dilation, g.groups) == ((stride,) * 2, (padding,) * 2, (dilation,) * 2, groups)
    assert (dzt == 0).any() and not torch.allclose(dzt, r)
    # GEMMs by hand: im2col columns (N, C·R·S, P·Q), split by group
    cols = F.unfold(x.detach(), 3, dilation=dilation, padding=padding, stride=stride)
    cg, kg, L = c // groups, k // groups, out_shape[2] * out_shape[3]
    d = dzt.reshape(n, k, L)
    w = conv.weight.detach().reshape(k, cg * 9)
    dw, dcols = [], []
    for gi in range(groups):
        cols_g = cols[:, gi * cg * 9:(gi + 1) * cg * 9]  # (N, Cg·R·S, L)
        d_g = d[:, gi * kg:(gi + 1) * kg]  # (N, Kg, L)
        dw.append(sum(d_g[i] @ cols_g[i].T for i in range(n)))  # δW = δ̃z · im2col(a)ᵀ
        dcols.append(torch.stack([w[gi * kg:(gi + 1) * kg].T @ d_g[i] for i in range(n)]))  # Wᵀ · δ̃z
    dx = F.fold(torch.cat(dcols, 1), (h, h), 3, dilation=dilation, padding=padding, stride=stride)  # col2im
    torch.testing.assert_close(conv.weight.grad, torch.cat(dw).reshape(conv.weight.shape), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.grad, dx, atol=1e-5, rtol=0)
    torch.testing.assert_close(conv.bias.grad, dzt.sum((0, 2, 3)), atol=1e-5, rtol=0)


class _Block(nn.Module):
    """conv → BN → in-place ReLU, conv → BN, in-place residual add, one Linear called twice."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1))
        self.body = nn.Sequential(nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True)),
                                  nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8))
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(8, 8)
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.stem(x))  # in-place ReLU right after a conv
        out = self.body(x)
        out += x  # in-place residual
        out = self.relu(out)
        v = out.mean((2, 3))
        v = F.relu(self.fc(v))
        v = F.relu(self.fc(v))  # same module twice: fc and fc#1
        return self.head(v)


def test_awkward_model_captures_and_uses_dz_tilde(tmp_path):
    torch.manual_seed(2)
    net = _Block().double()
    x = torch.randn(4, 3, 6, 6, dtype=torch.float64)  # first layer input does not require grad
    y = torch.randint(0, 4, (4,))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    with capture(net, method="dither", s=2.0, out=tmp_path / "t", sample_every=1) as cap:
        for _ in range(3):
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            w_grad = net.stem[0].weight.grad.clone()
            opt.step()
    tr = load(tmp_path / "t")
    names = ["stem.0", "body.0.0", "body.1", "fc", "fc#1", "head"]
    assert [g.name for g in tr.layers] == names
    assert len(tr.iterations) == 3 and cap.iterations_done == 3  # boundaries found without step()
    assert all(set(it.layers) == set(names) for it in tr.iterations)
    # the first conv's weight gradient is δ̃z ⋆ a (its input needs no grad)
    dzt = _dz_tilde(tmp_path / "t", "stem.0", 2)
    want = torch.nn.grad.conv2d_weight(x, net.stem[0].weight.shape, dzt, padding=1)
    torch.testing.assert_close(w_grad, want, atol=1e-5, rtol=0)
    assert tr.sample(2)["fc#1"].geometry.K == 8


def test_steps_sampling_max_examples_and_eval_forwards(tmp_path):
    torch.manual_seed(3)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3))
    x, y = torch.randn(10, 3, 2, 2), torch.randint(0, 3, (10,))
    with capture(net, method="dither", s=2.0, out=tmp_path / "t", sample_every=3, max_examples=4) as cap:
        for i in range(7):
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            with torch.no_grad():
                net(x)  # evaluation forwards are ignored
            cap.step(loss=float(loss.detach()), acc=0.5, epoch=i // 4)
    tr = load(tmp_path / "t")
    assert [it.index for it in tr.iterations] == list(range(7))
    assert tr.sampled_iterations == [0, 3, 6]
    assert tr.iterations[5].epoch == 1 and tr.iterations[5].acc == 0.5
    s = tr.sample(3)["1"]
    assert s.geometry.N == 4 and s.geometry.batch_size == 10 and s.dz_levels.shape == (4, 16)
    assert s.a_mask.shape == (4, 12)
    assert tr.manifest["summary"]["iterations"] == 7


def test_stats_every_keeps_every_nth_and_every_sampled_iteration(tmp_path):
    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.randn(5, 6), torch.randint(0, 3, (5,))
    with capture(net, method="dither", s=2.0, out=tmp_path / "t", sample_every=4, stats_every=3) as cap:
        for _ in range(8):
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            cap.step(loss=float(loss.detach()))
    tr = load(tmp_path / "t")
    assert tr.meta.stats_every == 3 and [it.index for it in tr.iterations] == list(range(8))
    assert all(it.loss is not None for it in tr.iterations)  # loss of every iteration is kept
    assert [it.index for it in tr.iterations if it.has_stats] == [0, 3, 4, 6]  # every 3rd + sampled 0, 4
    assert set(tr.iterations[4].layers) == {"0", "2"} and tr.iterations[4].sampled
    assert tr.summary["iterations"] == 8 == cap.summary()["iterations"]  # the summary covers all iterations
    with pytest.raises(ValueError, match="stats_every must be an integer >= 1"):
        capture(net, stats_every=0)


def test_meprop_and_none_in_training(tmp_path):
    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 5))
    x, y = torch.randn(8, 20), torch.randint(0, 5, (8,))
    with capture(net, method="meprop", k=4, out=tmp_path / "m", sample_every=1):
        F.cross_entropy(net(x), y).backward()
    s = load(tmp_path / "m").sample()
    assert ((s["0"].dz_levels != 0).sum(1) <= 4).all() and ((s["2"].dz_levels != 0).sum(1) == 4).all()
    net.zero_grad()
    z = {}
    net[0].register_forward_hook(lambda m, i, o: z.setdefault("z", o))
    with capture(net, method="none", out=tmp_path / "n", sample_every=1):
        out = net(x)
        z["z"].retain_grad()
        F.cross_entropy(out, y).backward()
    s = load(tmp_path / "n").sample()["0"]
    np.testing.assert_array_equal(s.dz_levels != 0, z["z"].grad.numpy() != 0)  # exact zero pattern of δz


def test_nan_gradient_names_layer_and_iteration_and_keeps_trace(tmp_path):
    net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(5, 4)
    with pytest.raises(NonFiniteGradientError, match=r"layer '2', iteration 2: δz holds NaN/Inf"):
        with capture(net, method="dither", s=2.0, out=tmp_path / "t", sample_every=1) as cap:
            for i in range(4):
                scale = float("nan") if i == 2 else 1.0
                (net(x).sum() * scale).backward()
                cap.step(loss=1.0)
    tr = load(tmp_path / "t")
    assert len(tr.iterations) == 2 and not tr.complete and "NonFiniteGradientError" in tr.manifest["status"]
    assert tr.sampled_iterations == [0, 1]


def test_keyboard_interrupt_mid_capture_leaves_readable_trace(tmp_path):
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(inplace=True), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    x, y = torch.randn(6, 1, 6, 6), torch.randint(0, 3, (6,))
    with pytest.raises(KeyboardInterrupt):
        with capture(net, method="dither", s=2.0, out=tmp_path / "t", sample_every=2) as cap:
            for i in range(10):
                F.cross_entropy(net(x), y).backward()
                if i == 5:
                    raise KeyboardInterrupt
                cap.step(loss=0.1 * i)
    tr = load(tmp_path / "t")
    assert [it.index for it in tr.iterations] == [0, 1, 2, 3, 4]
    assert tr.manifest["status"].startswith("interrupted: KeyboardInterrupt")
    assert tr.sampled_iterations == [0, 2, 4] and set(tr.sample(4)) == {"0", "3"}
    assert not net[0]._forward_hooks  # hooks removed


def test_capture_without_output_and_bad_arguments():
    net = nn.Linear(3, 2)
    with capture(net, method="dither", s=2.0) as cap:
        net(torch.randn(4, 3)).sum().backward()
    assert cap.summary()["iterations"] == 1 and cap.writer is None
    with pytest.raises(ValueError, match="s must be > 0"):
        capture(net, method="dither", s=0.0)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        capture(net, method="meprop", k=0)
    with pytest.raises(ValueError, match="no parameters: nothing is trained"):
        capture(nn.ReLU())


def test_failed_write_surfaces_and_marks_trace(tmp_path, monkeypatch):
    from hwsim.trace.format import TraceWriter

    calls = {"n": 0}
    orig = TraceWriter.add_iteration

    def flaky(self, index, **kw):
        calls["n"] += 1
        if index == 2:
            raise OSError("disk full")
        return orig(self, index, **kw)

    monkeypatch.setattr(TraceWriter, "add_iteration", flaky)
    net = nn.Linear(3, 2)
    with pytest.raises(OSError, match="disk full"):
        with capture(net, method="dither", s=2.0, out=tmp_path / "t", sample_every=1) as cap:
            for _ in range(5):
                net(torch.randn(4, 3)).sum().backward()
                cap.step()
    tr = load(tmp_path / "t")
    assert [it.index for it in tr.iterations] == [0, 1] and "OSError: disk full" in tr.manifest["status"]
