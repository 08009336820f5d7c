"""capture's non-GEMM tally (hwsim.capture.nongemm.NonGemmTally): calls logged, rows summed by hand at the
iteration's end, the last record reused only while the log repeats; and the coverage report's version counter."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hwsim.capture.coverage import Coverage
from hwsim.capture.nongemm import NonGemmTally


def _iteration(tally: NonGemmTally, n: int) -> dict:
    """One forward of two GEMMs (fc1, fc2): relu on fc1's (n,) output twice, then x + y after fc2; one view."""
    w = torch.ones(n, requires_grad=True)
    x = w * 1.0  # a graph tensor (its mul is not seen: only on_op calls count)
    tally.new_forward()
    tally.gemm("fc1")
    for _ in range(2):
        tally.on_op(F.relu, (x,), {}, F.relu(x))
    tally.on_op(torch.Tensor.view, (x, -1), {}, x.view(-1))  # a view: free, not logged
    tally.on_op(torch.Tensor.dim, (x,), {}, x.dim())  # metadata: free
    tally.gemm("fc2")
    y = torch.zeros(n)  # no grad
    tally.on_op(torch.Tensor.__add__, (x, y), {}, x + y)
    return tally.take()


def test_rows_are_summed_from_the_log_by_hand_and_reused_while_it_repeats():
    t = NonGemmTally()
    first = _iteration(t, 10)
    # relu ×2 on 10 elements: forward [calls 2, elements 20, read 20, written 20]; backward each: elements 10,
    # read δout 10 + input 10 = 20, written δin 10 → [2, 20, 40, 20]
    assert first["fc1"]["relu"] == [2, 20, 20, 20, 2, 20, 40, 20]
    # add of x (grad) and y (no grad): read 10 + 10; backward read 10 + 20, written 10 (only x needs it)
    assert first["fc2"]["add"] == [1, 10, 20, 10, 1, 10, 30, 10]
    assert t.meta()["kinds"] == ["relu", "add"] and t.meta_version == 1
    again = _iteration(t, 10)
    assert again is first  # the same calls on the same shapes: the last record itself, not rebuilt
    bigger = _iteration(t, 12)
    assert bigger is not first and bigger["fc1"]["relu"] == [2, 24, 24, 24, 2, 24, 48, 24]
    assert t.meta_version == 1  # the same kinds: the meta is not rebuilt
    assert t.log == [] and t.take() is None  # take() resets the log


def test_coverage_version_counts_changes():
    c = Coverage()
    assert c.seen("fc1", op="linear", module="", macs=10) and c.version == 1
    assert not c.seen("fc1", op="linear", module="", macs=10) and c.version == 1  # the first call wins: no change
    c.miss("x:bmm", op="bmm", module="x", macs=5, why="test")
    assert c.version == 2
    c.ops["fc1"].captured = False
    c.touch()
    assert c.version == 3 and c.meta()["captured_macs"] == 0
