"""Unit tests of capture's cheap common path: the non-GEMM record reused while nothing changes, the batch shape of
a batched matmul without ``torch.broadcast_shapes``."""

from __future__ import annotations

import torch

from hwsim.capture import ops
from hwsim.capture.nongemm import NonGemmTally


def _forward(t: NonGemmTally, x: torch.Tensor) -> None:
    t.new_forward()
    t.gemm("fc1")
    t.on_op(torch.relu, (x,), {}, torch.relu(x))


def test_nongemm_record_reused_while_the_iteration_repeats_and_rebuilt_when_it_changes():
    t = NonGemmTally()
    x = torch.randn(4, 8, requires_grad=True)
    _forward(t, x)
    first = t.take()
    assert first is not None and t.changed(first)
    _forward(t, x)
    again = t.take()
    assert again is first  # the same ops on the same shapes: the last record itself, not rebuilt
    assert not t.changed(again)
    _forward(t, torch.randn(2, 8, requires_grad=True))  # a smaller last batch: a new record with half the elements
    smaller = t.take()
    assert smaller is not first and t.changed(smaller)
    # relu of 4×8 / 2×8: one call over 32 / 16 elements, reads and writes them; backward reads δout + the input
    assert first == {"fc1": {"relu": [1, 32, 32, 32, 1, 32, 64, 32]}}
    assert smaller == {"fc1": {"relu": [1, 16, 16, 16, 1, 16, 32, 16]}}
    _forward(t, x)
    assert t.take() == first and t.changed(first)  # back to the full batch: written again


def test_batch_shape_equal_shapes_and_broadcast():
    assert ops._batch_shape(torch.Size([64, 4]), torch.Size([64, 4])) == torch.Size([64, 4])
    assert ops._batch_shape(torch.Size([64, 1]), torch.Size([4])) == torch.Size([64, 4])
    g = ops.matmul((torch.randn(2, 1, 3, 5), torch.randn(4, 5, 6)), {})
    assert g.fields["groups"] == 8 and g.macs == 8 * 3 * 6 * 5
