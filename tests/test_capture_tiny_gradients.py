"""NSD (and the int8 views of meProp / none) on any finite δz, on the numpy and the torch path (issue 20, item 3).

A tiny but finite δz (std ~1e-40, subnormal in float32) used to overflow 1/Δ: NaN weight gradients
on small tensors, a raw RuntimeError on large ones. Now a Δ below the smallest normal float gives
zero levels (as σ = 0); δz whose squares under- or overflow float32 get Δ = s·std from a
power-of-two-scaled copy; NaN/Inf still raise, naming the layer and iteration.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hwsim.capture import quant
from hwsim.capture.session import NonFiniteGradientError, capture
from hwsim.trace.format import load

N = (100, 20_000)  # the numpy small-tensor route (≤ 8,192 elements) and the torch route


def _gen(path: str):
    if path == "numpy":
        return quant.new_generator(0)
    g = torch.Generator()
    g.manual_seed(0)
    return g


@pytest.mark.parametrize("path", ["numpy", "torch"])
@pytest.mark.parametrize("n", N)
def test_subnormal_dz_gives_zero_levels_never_nan(path, n):
    x = torch.randn(n, generator=torch.Generator().manual_seed(1)) * 1e-40
    assert x.abs().max() < torch.finfo(torch.float32).tiny  # subnormal
    q = quant.nsd(x, s=4.0, generator=_gen(path), lazy_values=True)
    assert q.delta == 0.0 and not q.levels.any()
    v = q.take_values()
    assert torch.isfinite(v).all() and not v.any()
    st = q.stats if q.stats is not None else quant.level_stats(q.levels, bound=q.bound)
    assert st.nnz == 0 and st.numel == n


@pytest.mark.parametrize("path", ["numpy", "torch"])
@pytest.mark.parametrize("n", N)
@pytest.mark.parametrize("scale", [1e-20, 1e-30, 1e25])
def test_dz_whose_squares_leave_float32_gets_delta_s_times_std(path, n, scale):
    x = torch.randn(n, generator=torch.Generator().manual_seed(2)) * scale
    q = quant.nsd(x, s=2.0, generator=_gen(path))
    assert q.delta == pytest.approx(2.0 * float(x.double().std(correction=0)), rel=1e-5)
    assert torch.isfinite(q.values).all() and torch.isfinite(q.levels).all()
    y = x.double() / q.delta  # ⌊y + u⌋ ∈ {⌊y⌋, ⌊y⌋ + 1}
    assert bool(((q.levels.double() == y.floor()) | (q.levels.double() == y.floor() + 1)).all())


@pytest.mark.parametrize("path", ["numpy", "torch"])
@pytest.mark.parametrize("n", N)
def test_int8_view_of_subnormal_dz_keeps_the_zero_pattern(path, n):
    x = torch.randn(n, generator=torch.Generator().manual_seed(3)) * 1e-40
    x[::7] = 0
    for q in (quant.passthrough(x, generator=_gen(path)), quant.meprop(x.reshape(10, -1), k=3, generator=_gen(path))):
        lv = q.levels.reshape(-1)
        kept = q.values.reshape(-1)
        assert torch.isfinite(lv).all() and torch.equal(lv != 0, kept != 0) and lv.abs().max() <= 127
        assert math.isfinite(q.delta) and q.delta > 0


@pytest.mark.parametrize("path", ["numpy", "torch"])
@pytest.mark.parametrize("n", N)
def test_non_finite_dz_still_raises(path, n):
    for bad in (float("nan"), float("inf")):
        x = torch.randn(n) * 1e-40
        x[3] = bad
        with pytest.raises(quant.NonFiniteError, match=f"1 of {n} elements are NaN/Inf"):
            quant.nsd(x, s=4.0, generator=_gen(path))
        with pytest.raises(quant.NonFiniteError, match=f"1 of {n} elements are NaN/Inf"):
            quant.passthrough(x, generator=_gen(path))


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 10))


@pytest.mark.parametrize("path", ["auto", "torch"])
@pytest.mark.parametrize("batch", [8, 1024])  # last layer's δz: 80 (numpy small route) / 10,240 elements
def test_captured_step_with_a_1e_40_loss_scale_has_finite_gradients(tmp_path, monkeypatch, path, batch):
    monkeypatch.setenv(quant.QUANT_PATH_ENV, path)
    net = _net()
    x, y = torch.randn(batch, 16), torch.randint(0, 10, (batch,))
    with capture(net, method="dither", s=4.0, out=tmp_path / "t", sample_every=1) as cap:
        (F.cross_entropy(net(x), y) * 1e-40).backward()
        cap.step(loss=1.0)
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())
    tr = load(tmp_path / "t")
    st = tr.iterations[0].layers["2"]
    assert st.density == 0.0 and st.delta == 0.0
    assert not tr.sample()["2"].dz_levels.any()


@pytest.mark.parametrize("path", ["auto", "torch"])
def test_nan_dz_names_layer_and_iteration_on_every_path(tmp_path, monkeypatch, path):
    monkeypatch.setenv(quant.QUANT_PATH_ENV, path)
    net = _net()
    with pytest.raises(NonFiniteGradientError, match=r"layer '2', iteration 1: δz holds NaN/Inf"):
        with capture(net, method="dither", s=2.0, out=tmp_path / "t", sample_every=1) as cap:
            for i in range(3):
                (net(torch.randn(4, 16)).sum() * (float("nan") if i == 1 else 1e-40)).backward()
                cap.step(loss=1.0)
