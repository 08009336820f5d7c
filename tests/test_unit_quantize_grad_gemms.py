"""QuantizeGrad.attach on real GEMMs (hwsim.capture.intercept): the δ̃z capture returns is what *both* backward
GEMMs (δa and δW) and the bias sum consume, and a GEMM output used twice hands capture its summed δz once.
Every expected gradient is worked out by hand below."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hwsim.capture.intercept import QuantizeGrad


class _Cap:
    """Stands in for a Capture: records each δz and returns ``quantize(δz)`` as δ̃z."""

    def __init__(self, quantize):
        self.quantize, self.seen = quantize, []

    def _backward(self, call, g):
        self.seen.append((call, g.clone()))
        return self.quantize(g)


def _t(rows, grad=False):
    return torch.tensor(rows, dtype=torch.float64, requires_grad=grad)


def test_linear_backward_data_weight_and_bias_all_read_the_returned_dz():
    x = _t([[1, 2], [3, 4]], grad=True)               # (N=2, C=2)
    w = _t([[1, 0], [0, 2], [1, 1]], grad=True)       # (K=3, C=2)
    b = _t([0, 0, 0], grad=True)
    cap = _Cap(lambda g: g.clamp(min=0))              # δ̃z: a non-linear map, so δz and δ̃z give different grads
    z = QuantizeGrad.attach(F.linear(x, w, b), "fc", cap)
    r = _t([[1, -2, 0.5], [-1, 3, 2]])
    (z * r).sum().backward()
    (call, dz), = cap.seen
    assert call == "fc" and dz.tolist() == r.tolist()  # the hook got δz = r
    # δ̃z = [[1, 0, 0.5], [0, 3, 2]]
    # δx = δ̃z · W: row 0 = 1·[1,0] + 0.5·[1,1] = [1.5, 0.5]; row 1 = 3·[0,2] + 2·[1,1] = [2, 8]
    assert x.grad.tolist() == [[1.5, 0.5], [2.0, 8.0]]
    # δW = δ̃zᵀ · x: k0 = 1·[1,2] = [1,2]; k1 = 3·[3,4] = [9,12]; k2 = 0.5·[1,2] + 2·[3,4] = [6.5, 9]
    assert w.grad.tolist() == [[1.0, 2.0], [9.0, 12.0], [6.5, 9.0]]
    assert b.grad.tolist() == [1.0, 3.0, 2.5]          # the bias sum: columns of δ̃z


def test_a_gemm_output_used_twice_hands_capture_the_summed_dz_once():
    x = _t([[1, -1]], grad=True)                       # (1, 2)
    w = _t([[1, 0], [0, 1], [-1, -1]], grad=True)      # (3, 2): z = x·Wᵀ = [[1, -1, 0]]
    cap = _Cap(lambda g: 10 * g)
    z = QuantizeGrad.attach(torch.matmul(x, w.T), "mm", cap)
    assert z.tolist() == [[1.0, -1.0, 0.0]]
    # two uses: loss = Σ z·1 + Σ relu(z)·2 → δz = 1 + 2·[z > 0] = [[3, 1, 1]]
    (z.sum() + (z.relu() * 2).sum()).backward()
    assert len(cap.seen) == 1 and cap.seen[0][1].tolist() == [[3.0, 1.0, 1.0]]
    # δ̃z = [[30, 10, 10]]: δx = 30·[1,0] + 10·[0,1] + 10·[-1,-1] = [20, 0]; δW = δ̃zᵀ·x
    assert x.grad.tolist() == [[20.0, 0.0]]
    assert w.grad.tolist() == [[30.0, -30.0], [10.0, -10.0], [10.0, -10.0]]


def test_a_residual_add_in_place_after_the_gemm_keeps_the_gemms_dz():
    x = _t([[2, 1]], grad=True)
    w = _t([[1, 1], [1, -1]], grad=True)               # z = x·Wᵀ = [[3, 1]]
    cap = _Cap(lambda g: g * 0)                       # δ̃z = 0: only the residual path carries a gradient to x
    z = QuantizeGrad.attach(F.linear(x, w), "fc", cap)
    z += x                                            # out += x (in place, a residual)
    (z * _t([[1, 2]])).sum().backward()
    assert cap.seen[0][1].tolist() == [[1.0, 2.0]]     # δz of the GEMM's output, before the in-place add
    assert x.grad.tolist() == [[1.0, 2.0]]             # the residual's share alone: the GEMM's is 0·W
    assert w.grad.tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_conv2d_backward_gemms_consume_the_returned_dz():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    cap = _Cap(torch.sign)                             # δ̃z = sign(δz): ±1 levels
    z = QuantizeGrad.attach(F.conv2d(x, w, padding=1), "conv", cap)
    r = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    (z * r).sum().backward()
    dzq = torch.sign(r)
    # the two backward GEMMs of a convolution, fed δ̃z: torch's own conv gradients of the same operands
    torch.testing.assert_close(x.grad, torch.nn.grad.conv2d_input(x.shape, w.detach(), dzq, padding=1))
    torch.testing.assert_close(w.grad, torch.nn.grad.conv2d_weight(x.detach(), w.shape, dzq, padding=1))
    # and not δz's: fed r instead the weight gradient differs
    assert not torch.allclose(w.grad, torch.nn.grad.conv2d_weight(x.detach(), w.shape, r, padding=1))


def test_an_output_that_gets_no_gradient_is_not_handed_to_capture():
    x = torch.arange(6.0, requires_grad=True)
    a, b = x.split(3)                                  # one node, two outputs
    cap = _Cap(lambda g: g * 100)
    QuantizeGrad.attach(a, "unused", cap)
    (b * 2).sum().backward()                           # only b is used: a's gradient is None
    assert cap.seen == []
    assert x.grad.tolist() == [0.0, 0.0, 0.0, 2.0, 2.0, 2.0]


def test_only_the_attached_output_of_a_multi_output_node_is_swapped():
    x = torch.arange(6.0, requires_grad=True)
    a, b = x.split(3)                                  # b is the node's second output (output_nr 1)
    cap = _Cap(lambda g: g * 100)
    QuantizeGrad.attach(b, "second", cap)
    (a * 2 + b * 3).sum().backward()
    assert [(c, g.tolist()) for c, g in cap.seen] == [("second", [3.0, 3.0, 3.0])]
    assert x.grad.tolist() == [2.0, 2.0, 2.0, 300.0, 300.0, 300.0]  # a's gradient untouched, b's δ̃z = 100·δz


def test_each_repeated_call_of_one_gemm_gets_its_own_dz():
    w = _t([[2.0]], grad=True)
    x = _t([[1.0]], grad=True)
    cap = _Cap(lambda g: g + 1)
    h = QuantizeGrad.attach(F.linear(x, w), "fc", cap)         # h = 2x = 2
    y = QuantizeGrad.attach(F.linear(h, w), "fc#1", cap)       # y = 2h = 4
    (3 * y).sum().backward()
    # backward: fc#1 first, δz = 3 → δ̃z = 4; δh = 4·2 = 8 reaches fc: δz = 8 → δ̃z = 9
    assert [(c, g.item()) for c, g in cap.seen] == [("fc#1", 3.0), ("fc", 8.0)]
    # δW = δ̃z(fc#1)·h + δ̃z(fc)·x = 4·2 + 9·1 = 17; δx = 9·2 = 18
    assert w.grad.item() == 17.0 and x.grad.item() == 18.0
