"""8-bit forward operands (hwsim.capture.int8): error bounds, zero preservation, STE, accuracy, trace bit-widths."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hwsim.capture.int8 import (
    ActivationQuant,
    operand_bits,
    quantize_activation,
    quantize_model,
    quantize_weight,
)
from hwsim.capture.train import CaptureConfig, TrainConfig, train_and_capture
from hwsim.cli import main
from hwsim.trace.format import load


def test_weight_quantizer_per_channel_half_step_bound():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(16, 3, 5, 5, generator=g, dtype=torch.float64)
    w[3] *= 1000.0  # an outlier channel must not coarsen the others
    w[7] = 0.0  # an all-zero channel stays zero
    q = quantize_weight(w)
    expected = w.reshape(16, -1).abs().amax(1) / 127
    assert torch.allclose(q.scale[[i for i in range(16) if i != 7]], expected[[i for i in range(16) if i != 7]])
    err = (q.values - w).abs().reshape(16, -1)
    assert bool((err <= q.scale[:, None] / 2 * (1 + 1e-9)).all())
    assert torch.equal(q.codes, q.codes.round()) and q.codes.abs().max() == 127
    assert float(q.scale[0]) < float(q.scale[3]) / 100 and not q.values[7].any()
    assert torch.equal(q.values, q.codes * q.scale.view(-1, 1, 1, 1))


def test_activation_quantizer_half_step_bound_keeps_zeros_and_clips():
    g = torch.Generator().manual_seed(1)
    x = torch.relu(torch.randn(64, 100, generator=g, dtype=torch.float64)) * 3
    lo, hi = 0.0, float(x.max())
    q = quantize_activation(x, lo=lo, hi=hi)
    step = (hi - lo) / 255
    assert float((q.values - x).abs().max()) <= step / 2 * (1 + 1e-9)
    assert not q.values[x == 0].any()  # ReLU zeros are exact grid points (small values may round to 0 too)
    assert q.codes.min() >= 0 and q.codes.max() <= 255
    signed = torch.linspace(-2, 5, 1000, dtype=torch.float64)
    qs = quantize_activation(signed, lo=-1.0, hi=4.0)
    inside = (signed >= -1) & (signed <= 4)
    assert float((qs.values - signed)[inside].abs().max()) <= 5 / 255 / 2 * (1 + 1e-9)
    assert float(qs.values.min()) == pytest.approx(-1.0, abs=5 / 255) and float(qs.values.max()) <= 4 + 1e-9
    assert float(quantize_activation(torch.zeros(3), lo=-1.0, hi=4.0).values.abs().max()) == 0.0


def test_running_range_and_straight_through_gradient():
    aq = ActivationQuant(momentum=0.5)
    aq(torch.tensor([0.0, 2.0]))
    aq(torch.tensor([-1.0, 4.0]))
    assert (float(aq.lo), float(aq.hi)) == (-0.5, 3.0)
    aq.eval()
    aq(torch.tensor([-10.0, 10.0]))  # eval mode does not move the range
    assert (float(aq.lo), float(aq.hi)) == (-0.5, 3.0)
    x = torch.tensor([0.3, 1.0], requires_grad=True)
    aq(x).sum().backward()
    assert torch.equal(x.grad, torch.ones(2))


def test_quantize_model_uses_grid_weights_trains_float_masters_and_tags_layers():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    names = quantize_model(net)
    assert names == ["0", "3"] and operand_bits(net[0]) == (8, 8) and operand_bits(net[1]) == (32, 32)
    lin = net[3]
    master = lin.parametrizations.weight.original
    q = quantize_weight(master)
    assert torch.equal(lin.weight, q.values)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    before = master.detach().clone()
    net(torch.randn(2, 1, 8, 8)).sum().backward()
    assert master.grad is not None and master.grad.abs().sum() > 0
    opt.step()
    assert not torch.equal(master, before)
    with pytest.raises(ValueError, match="already quantized"):
        quantize_model(net)


def test_int8_plus_dither_on_digits_within_1p5_points_of_baseline(tmp_path):
    torch.set_num_threads(1)
    base = train_and_capture(TrainConfig(model="lenet300", epochs=10,
                                        capture=CaptureConfig(method="none", seed=0, sample_every=0)))
    out = tmp_path / "t"
    assert main(["trace", "--model", "lenet300", "--int8", "--epochs", "10", "--seed", "0", "--sample-every", "0",
                 "--out", str(out), "--quiet"]) == 0
    tr = load(out)
    acc = tr.manifest["summary"]["test_acc"]
    assert abs(acc - base.test_acc) <= 0.015, (acc, base.test_acc)
    assert tr.meta["int8"] is True and tr.meta["method"] == "dither"
    assert all((x.w_bits, x.a_bits) == (8, 8) for x in tr.sample().values())
    assert tr.manifest["summary"]["mean_density"] < 0.2 <= base.mean_density
