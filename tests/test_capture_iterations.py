"""Iteration boundaries follow optimizer steps: gradient accumulation with the README's loop (issue 20, item 2)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hwsim.capture.session import capture
from hwsim.trace.format import load


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def _micro(net):
    return F.cross_entropy(net(torch.randn(5, 4)), torch.randint(0, 3, (5,)))


def test_readme_loop_with_accumulation_records_one_iteration_per_optimizer_step(tmp_path):
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    with capture(net, method="dither", s=4, out=tmp_path / "t", sample_every=1, seed=0) as cap:
        for step in range(4):                      # the README loop, 2 micro-batches per optimizer step
            opt.zero_grad()
            for _ in range(2):
                loss = _micro(net)
                loss.backward()
            opt.step()
            cap.step(loss=float(step))
    tr = load(tmp_path / "t")
    assert cap.iterations_done == 4 and [it.index for it in tr.iterations] == [0, 1, 2, 3]
    assert [it.loss for it in tr.iterations] == [0.0, 1.0, 2.0, 3.0]
    for it in tr.iterations:  # both micro-batches' δ̃z in every iteration's statistics
        st = it.layers["2"]
        assert sum(st.hist) == pytest.approx(st.density * 2 * 5 * 3)
    assert tr.sampled_iterations == [0, 1, 2, 3]


def test_cap_step_per_micro_batch_keeps_the_step_one_iteration_with_the_mean_loss(tmp_path):
    net = _net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    with capture(net, out=tmp_path / "t", sample_every=0) as cap:
        for step in range(3):
            for micro in range(2):
                _micro(net).backward()
                cap.step(loss=float(10 * step + micro), acc=0.5)
            opt.step()
            opt.zero_grad()
    tr = load(tmp_path / "t")
    assert [it.loss for it in tr.iterations] == [0.5, 10.5, 20.5] and cap.iterations_done == 3
    assert all(it.acc == 0.5 for it in tr.iterations)


def test_without_an_optimizer_forward_after_backward_and_cap_step_mark_iterations(tmp_path):
    net = _net()
    other = torch.optim.SGD([nn.Parameter(torch.zeros(2))], lr=0.1)  # steps, but holds none of the model's parameters
    with capture(net, out=tmp_path / "a", sample_every=0) as cap:
        for _ in range(3):
            _micro(net).backward()
            with torch.no_grad():
                for p in net.parameters():
                    p -= 0.1 * p.grad
            other.step()
    assert cap.iterations_done == 3
    with capture(net, out=tmp_path / "b", sample_every=0) as cap:
        for i in range(3):
            for _ in range(2):
                _micro(net).backward()
            cap.step(loss=float(i))
    assert cap.iterations_done == 4  # before the first cap.step(), a forward after a backward is a boundary
    assert [it.loss for it in load(tmp_path / "b").iterations] == [None, 0.0, 1.0, 2.0]


def test_an_optimizer_that_never_steps_inside_the_block_is_reported(tmp_path):
    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)  # noqa: F841 - exists, never steps
    with pytest.warns(UserWarning, match=r"never stepped inside the capture block, so 3 forward\+backward passes "
                                         r"were recorded as one iteration"):
        with capture(net, out=tmp_path / "t", sample_every=0) as cap:
            for _ in range(3):
                _micro(net).backward()
    assert cap.iterations_done == 1


def test_explicit_optimizer_only_its_steps_count(tmp_path):
    net = _net()
    first = torch.optim.SGD(list(net[0].parameters()), lr=0.1)
    second = torch.optim.SGD(list(net[2].parameters()), lr=0.1)
    with capture(net, out=tmp_path / "t", sample_every=0, optimizer=second) as cap:
        for _ in range(2):
            for _ in range(3):
                _micro(net).backward()
                first.step()       # steps every micro-batch: not the iteration's optimizer
            second.step()
    assert cap.iterations_done == 2


@pytest.mark.parametrize(("make", "meta"), [
    (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-4),
     {"optimizer": "SGD", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "nesterov": False}),
    (lambda p: torch.optim.AdamW(p, lr=1e-3, betas=(0.8, 0.99)),
     {"optimizer": "AdamW", "lr": 1e-3, "weight_decay": 1e-2, "betas": [0.8, 0.99]})])
def test_the_optimizer_found_is_recorded_in_the_meta(tmp_path, make, meta):
    """The weight update's cost follows the trace's optimizer (hwsim/sim/update.py): capture writes its class and
    hyper-parameters; meta the caller gives (hwsim's own loop names its optimizer) wins."""
    from hwsim.sim.update import optimizer_from_meta

    net = _net()
    opt = make(net.parameters())
    with capture(net, out=tmp_path / "t", sample_every=0):
        for _ in range(2):
            opt.zero_grad()
            _micro(net).backward()
            opt.step()
    got = load(tmp_path / "t").meta
    assert {k: got.get(k) for k in meta} == meta and ("momentum" in got) == ("momentum" in meta)
    assert optimizer_from_meta(got, "sgd").kind == ("sgd_momentum" if meta["optimizer"] == "SGD" else "adamw")
    net2 = _net()
    opt2 = make(net2.parameters())
    with capture(net2, out=tmp_path / "u", sample_every=0, meta={"optimizer": "sgd+cosine", "lr": 0.05}):
        opt2.zero_grad()
        _micro(net2).backward()
        opt2.step()
    kept = load(tmp_path / "u").meta
    assert kept["optimizer"] == "sgd+cosine" and kept["lr"] == 0.05 and "betas" not in kept


def test_the_heap_walk_for_the_optimizer_waits_for_the_trace_writer(tmp_path):
    """gc.get_objects() would expose a tuple the writer thread is still building (CPython then raises SystemError
    in that thread, seen in CI): the one walk runs only after every submitted write has finished."""
    import threading
    import time

    net = _net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)  # noqa: F841 - the optimizer the walk finds
    done = threading.Event()

    def slow_write() -> None:
        time.sleep(0.3)
        done.set()

    with capture(net, out=tmp_path / "t", sample_every=0) as cap:
        cap._bg.submit(slow_write)
        assert cap._find_optimizer()
        assert done.is_set()  # drained before the walk
