"""Unit tests of hwsim.capture.intercept: which ops are intercepted, how they are named, what is ignored."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hwsim.capture.intercept import NO_GRAD_WHY, WEIGHT_OPS, QuantizeGrad, operand_bits
from hwsim.capture.session import capture

pytestmark = pytest.mark.filterwarnings("ignore:hwsim capture")


@pytest.mark.parametrize("dtype,bits", [
    (torch.float32, 32), (torch.float64, 32), (torch.bfloat16, 16), (torch.float16, 16), (torch.int64, 32),
])
def test_operand_bits_from_output_dtype(dtype, bits):
    assert operand_bits(torch.zeros(2, dtype=dtype)) == bits


def test_operand_bits_float8():
    dt = getattr(torch, "float8_e4m3fn", None)
    if dt is None:
        pytest.skip("no float8 in this torch")
    assert operand_bits(torch.zeros(2).to(dt)) == 8


def test_weight_ops_cover_linear_and_convs():
    assert {"linear", "conv1d", "conv2d"} <= set(WEIGHT_OPS)


class _Cap:
    def __init__(self):
        self.seen = []

    def _backward(self, call, g):
        self.seen.append((call, g.clone()))
        return g * 3


@pytest.mark.parametrize("inplace_after", [False, True])
def test_quantize_grad_leaves_forward_and_hands_dz_to_capture(inplace_after):
    x = torch.randn(3, 2, requires_grad=True)
    z = x * 2
    cap = _Cap()
    out = QuantizeGrad.attach(z, "call-1", cap)
    assert out is z  # the forward is untouched: no copy, no wrapper
    mask = torch.ones(3, 2)
    if inplace_after:  # an in-place ReLU right after the GEMM: the hook still gets δz of the GEMM's output
        out.relu_()
        mask = (x.detach() > 0).float()
    r = torch.randn(3, 2)
    (out * r).sum().backward()
    assert len(cap.seen) == 1
    call, g = cap.seen[0]
    assert call == "call-1"
    torch.testing.assert_close(g, r * mask)
    torch.testing.assert_close(x.grad, 2 * 3 * r * mask)  # the returned δ̃z is what the op's backward consumes


def test_quantize_grad_on_one_output_of_a_multi_output_op():
    x = torch.randn(4, 3, requires_grad=True)
    vals, idx = x.max(dim=1)  # one node, two outputs: the hook swaps only its own
    cap = _Cap()
    QuantizeGrad.attach(vals, "call-2", cap)
    r = torch.randn(4)
    (vals * r).sum().backward()
    ref = torch.zeros(4, 3).scatter_(1, idx[:, None], (3 * r)[:, None])
    torch.testing.assert_close(x.grad, ref)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 4)
        self.fc2 = nn.Linear(4, 3)
        self.w = nn.Parameter(torch.randn(3, 3))
        self.conv = nn.Conv1d(2, 2, 3)
        self.frozen = nn.Linear(4, 4).requires_grad_(False)

    def forward(self, x):
        h = self.fc1(x)
        h = self.fc1(h).relu()  # repeated call: fc1#1
        y = self.fc2(h)
        y = F.linear(y, self.w)  # the root's own weight: named by the root's class
        z = torch.matmul(y, y.T)  # activation × activation, issued by the root
        with torch.no_grad():
            self.fc2(h)  # a no_grad GEMM inside a training forward: missed
        self.frozen(x.detach())  # nothing of it is trained: not counted
        c = self.conv(x.reshape(2, 2, 4))
        e = x + 1  # elementwise: not a GEMM
        return z.sum() + y.sum() + c.sum() + e.sum()


def _run(model, **kw):
    torch.manual_seed(0)
    with capture(model, method="dither", s=1.0, **kw) as cap:
        model(torch.randn(4, 4)).backward()
    return cap


def test_names_and_ops_of_a_training_forward():
    torch.manual_seed(0)
    cap = _run(_Net())
    assert sorted(cap._sites) == ["_net", "conv", "fc1", "fc1#1", "fc2", "matmul"]
    ops = cap.coverage.ops
    assert ops["fc1"].op == "linear" and ops["fc1"].module == "fc1"
    assert ops["fc1#1"].module == "fc1"
    assert ops["conv"].op == "conv1d"
    assert ops["matmul"].op == "matmul" and ops["matmul"].module == ""
    assert ops["_net"].op == "linear"
    assert not any("frozen" in k for k in ops)


def test_macs_by_hand():
    torch.manual_seed(0)
    ops = _run(_Net()).coverage.ops
    assert ops["fc1"].macs == 4 * 4 * 4  # batch × in × out
    assert ops["fc2"].macs == 4 * 4 * 3
    assert ops["_net"].macs == 4 * 3 * 3
    assert ops["matmul"].macs == 4 * 3 * 4
    assert ops["conv"].macs == 2 * 2 * 2 * 2 * 3  # n × out_len × c_out × c_in × k


def test_no_grad_gemm_is_missed_with_reason():
    torch.manual_seed(0)
    ops = _run(_Net()).coverage.ops
    miss = ops["missed:fc2:linear"]
    assert not miss.captured and miss.why == NO_GRAD_WHY and miss.macs == 4 * 4 * 3
    assert [k for k, o in ops.items() if not o.captured] == ["missed:fc2:linear"]


def test_every_captured_gemm_gets_stats_in_backward():
    torch.manual_seed(0)
    cap = _run(_Net())
    assert cap.iterations_done == 1
    assert set(cap.last_stats) == {"_net", "conv", "fc1", "fc1#1", "fc2", "matmul"}


def test_eval_and_no_grad_forwards_are_ignored_and_rename_nothing():
    torch.manual_seed(0)
    m = _Net()
    with capture(m, method="dither", s=1.0) as cap:
        m(torch.randn(4, 4)).backward()
        sites, ops = dict(cap._sites), dict(cap.coverage.ops)
        m.eval()
        m(torch.randn(4, 4))
        m(torch.randn(4, 4))
        assert cap.eval_forwards == 2
        m.train()
        with torch.no_grad():
            m(torch.randn(4, 4))
        assert cap.eval_forwards == 2  # no_grad is not counted as eval
        assert cap._sites == sites and dict(cap.coverage.ops) == ops
        m(torch.randn(4, 4)).backward()
        assert sorted(cap._sites) == sorted(sites)  # the second training forward reuses the names
    assert cap.iterations_done == 2


def test_names_restart_each_forward():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 2))
    with capture(m, method="dither", s=1.0) as cap:
        for _ in range(3):
            m(torch.randn(2, 3)).sum().backward()
    assert sorted(cap._sites) == ["0", "1"]
    assert cap.iterations_done == 3


def test_dither_changes_grads_and_none_keeps_them():
    torch.manual_seed(0)
    lin = nn.Linear(6, 5).double()
    x = torch.randn(8, 6, dtype=torch.float64)
    r = torch.randn(8, 5, dtype=torch.float64)
    (lin(x) * r).sum().backward()
    want = lin.weight.grad.clone()
    lin.zero_grad()
    with capture(lin, method="none"):
        (lin(x) * r).sum().backward()
    assert torch.equal(lin.weight.grad, want)
    lin.zero_grad()
    with capture(lin, method="dither", s=2.0):
        (lin(x) * r).sum().backward()
    assert not torch.allclose(lin.weight.grad, want)


def test_mha_products_are_labelled_qk_and_pv():
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = mha

        def forward(self, x):
            return self.attn(x, x, x, need_weights=True)[0]

    m = Wrap()
    with capture(m, method="dither", s=1.0) as cap:
        m(torch.randn(2, 5, 8)).sum().backward()
    ops = {o.op for k, o in cap.coverage.ops.items() if o.captured}
    assert {"qk", "pv"} <= ops, cap.coverage.ops
