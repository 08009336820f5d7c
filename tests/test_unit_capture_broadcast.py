"""Unit tests of hwsim.capture.distributed.broadcast_state without a process group: ``dist.broadcast`` is
replaced by a stand-in that fills the flat buffer with rank 0's values, and every tensor must get its own slice."""

from __future__ import annotations

import torch
from torch import nn

from hwsim.capture import distributed as ddp


def _fake_broadcast(calls):
    """A ``dist.broadcast`` stand-in: rank 0's flat buffer is 100 + 0, 1, 2, ... (per dtype group)."""
    def broadcast(flat, src):
        calls.append((flat.dtype, flat.numel(), src))
        flat.copy_(torch.arange(flat.numel(), dtype=flat.dtype) + 100)
    return broadcast


def test_broadcast_state_copies_each_buffer_from_its_own_offset(monkeypatch):
    calls: list = []
    monkeypatch.setattr(ddp.dist, "broadcast", _fake_broadcast(calls))
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    w_before = net[0].weight.detach().clone()
    ddp.broadcast_state(net)
    bn = net[1]
    # buffers in order: running_mean (3), running_var (3) — float32; num_batches_tracked — int64
    assert bn.running_mean.tolist() == [100.0, 101.0, 102.0]
    assert bn.running_var.tolist() == [103.0, 104.0, 105.0]
    assert int(bn.num_batches_tracked) == 100
    assert torch.equal(net[0].weight, w_before)  # parameters untouched without params=True
    assert sorted((str(d), n, s) for d, n, s in calls) == [("torch.float32", 6, 0), ("torch.int64", 1, 0)]


def test_broadcast_state_with_params_lays_buffers_then_parameters_in_one_buffer(monkeypatch):
    calls: list = []
    monkeypatch.setattr(ddp.dist, "broadcast", _fake_broadcast(calls))
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    ddp.broadcast_state(net, params=True)
    # float32 group: running_mean 0-2, running_var 3-5, then parameters in order:
    # Linear.weight (3×2) 6-11, Linear.bias 12-14, BN.weight 15-17, BN.bias 18-20
    assert net[1].running_var.tolist() == [103.0, 104.0, 105.0]
    assert net[0].weight.tolist() == [[106.0, 107.0], [108.0, 109.0], [110.0, 111.0]]
    assert net[0].bias.tolist() == [112.0, 113.0, 114.0]
    assert net[1].weight.tolist() == [115.0, 116.0, 117.0]
    assert net[1].bias.tolist() == [118.0, 119.0, 120.0]
    assert sorted((str(d), n) for d, n, _ in calls) == [("torch.float32", 21), ("torch.int64", 1)]
