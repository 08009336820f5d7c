"""Capture in training loops as users write them, and set-ups it cannot take: loud, never silent."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from hwsim.capture import ops
from hwsim.capture.session import CaptureSetupError, NonFiniteGradientError, capture
from hwsim.trace.format import load

torch.set_num_threads(1)


class _Odd(nn.Module):
    """A Linear plus a GEMM-like op hwsim does not take (tensordot) and a conv3d."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.w = nn.Parameter(torch.randn(6, 6))
        self.vol = nn.Conv3d(1, 2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        h = torch.tensordot(h, self.w, dims=([1], [0]))
        v = self.vol(h[:, :1].reshape(-1, 1, 1, 1, 1).expand(-1, 1, 2, 2, 2))
        return h.sum(1) + v.sum((1, 2, 3, 4))


def test_unsupported_ops_are_reported_by_name_with_lower_coverage(tmp_path):
    net = _Odd()
    with pytest.warns(UserWarning, match=r"GEMM-MAC coverage: forward .*NOT captured: tensordot"):
        with capture(net, method="dither", s=2.0, out=tmp_path / "t", sample_every=1):
            for _ in range(2):
                net(torch.randn(4, 6)).sum().backward()
    cov = load(tmp_path / "t").meta["coverage"]
    assert 0 < cov["forward"] < 1 and cov["captured_macs"] < cov["total_macs"]
    missed = {m["op"]: m for m in cov["missed"]}
    assert set(missed) == {"tensordot", "conv3d"}
    assert "not supported" in missed["tensordot"]["why"] and missed["tensordot"]["macs"] == 4 * 6 * 6
    assert "3-D" in missed["conv3d"]["why"] and missed["conv3d"]["module"] == "vol"
    assert missed["conv3d"]["macs"] == 4 * 2 * 1 * 8  # N·K·(output 1×1×1)·C·kernel
    assert cov["forward"] == pytest.approx(144 / (144 + 144 + 64))


def test_a_failing_handler_never_breaks_training(tmp_path, monkeypatch):
    def boom(args, kwargs):
        raise RuntimeError("boom")

    monkeypatch.setitem(ops.HANDLERS, torch.conv2d, boom)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    ref = [p.detach().clone() for p in net.parameters()]
    with pytest.warns(UserWarning, match="coverage"):
        with capture(net, method="dither", s=2.0, out=tmp_path / "t", sample_every=1):
            net(torch.randn(2, 1, 6, 6)).sum().backward()
    assert all(p.grad is not None for p in net.parameters()) and len(ref) == 4
    cov = load(tmp_path / "t").meta["coverage"]
    assert cov["missed"][0]["module"] == "0" and "RuntimeError: boom" in cov["missed"][0]["why"]
    assert [g.name for g in load(tmp_path / "t").layers] == ["2"]


def test_compiled_before_capture_is_an_error_naming_the_fix():
    net = nn.Linear(3, 2)
    net.compile()  # lazy: nothing is compiled until the first call
    with pytest.raises(CaptureSetupError, match="compiled with torch.compile before capture.*uncompiled"):
        capture(net)


def _compiled_calls():
    """The ways a captured model gets called through torch.compile (backend="eager": no codegen, still dynamo)."""
    def wrapper(net):  # torch.compile(model) made before capture, the wrapper trained through
        return torch.compile(net, backend="eager")

    def step_fn(net):  # a compiled training-step function calling the captured model
        return torch.compile(lambda x: net(x), backend="eager")

    def in_place(net):  # Module.compile() inside the capture block
        net.compile(backend="eager")
        return net
    return [wrapper, step_fn, in_place]


@pytest.mark.parametrize("compiled", _compiled_calls(), ids=["wrapper", "step_fn", "in_place"])
def test_a_compiled_call_inside_capture_is_refused_not_run_eagerly(tmp_path, compiled):
    """dynamo swallowed the refusal raised while tracing and ran the frame eagerly: the compile silently undone."""
    torch._dynamo.reset()
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(CaptureSetupError, match=r"^hwsim capture: .*torch\.compile.*uncompiled model"):
        with capture(net, method="dither", s=2.0, out=tmp_path / "t"):
            call = compiled(net)
            call(torch.randn(4, 8)).pow(2).mean().backward()
            opt.step()
    torch._dynamo.reset()
    net._compiled_call_impl = None  # undo Module.compile()
    with capture(net, method="none") as cap:  # released: the uncompiled model captures as usual
        net(torch.randn(4, 8)).sum().backward()
    assert cap.coverage_meta()["forward"] == 1.0


def test_a_wrapper_compiled_before_capture_is_refused_when_trained_through():
    """dynamo does not guard on hooks added after a compile: the warmed-up wrapper's graph ran without capture's
    hooks, recording nothing (only "0 iterations recorded")."""
    torch._dynamo.reset()
    outer = nn.Sequential(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)))
    net = outer[0]
    for wrapped in (net, outer):  # the captured model compiled, or a module holding it
        cm = torch.compile(wrapped, backend="eager")
        cm(torch.randn(4, 8)).sum().backward()  # warm-up: the graph is cached
        with pytest.raises(CaptureSetupError, match=r"^hwsim capture: Sequential is trained through a torch\.compile "
                           r"wrapper .*compiled before the capture.*uncompiled model"):
            with capture(net, method="none"):
                cm(torch.randn(4, 8)).sum().backward()
        with capture(net, method="none") as cap:  # the uncompiled model, the wrapper alive: captured
            with torch.no_grad():
                cm(torch.randn(4, 8))  # an evaluation through the wrapper is not training: allowed
            net(torch.randn(4, 8)).sum().backward()
        assert cap.coverage_meta()["captured_macs"] == 2 * 4 * (8 * 16 + 16 * 4) + 4 * 16 * 4  # no input gradient
    torch._dynamo.reset()


def test_force_eager_stance_is_not_a_compile():
    torch._dynamo.reset()
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    cm = torch.compile(net, backend="eager")
    with capture(net, method="none") as cap, torch.compiler.set_stance("force_eager"):
        cm(torch.randn(4, 8)).sum().backward()
    assert cap.coverage_meta()["forward"] == 1.0


def test_nested_capture_on_one_model_is_an_error():
    net = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 1))
    with capture(net, method="none"):
        with pytest.raises(CaptureSetupError, match="already inside an active hwsim capture"):
            with capture(net[0], method="none"):
                pass
    with capture(net, method="none"):  # released at exit
        pass


def test_validation_forwards_with_grad_do_not_rename_layers(tmp_path):
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    x = torch.randn(5, 4)
    with capture(net, method="dither", s=2.0, out=tmp_path / "t", sample_every=1) as cap:
        for _ in range(3):
            net.train()
            net(x)  # a training-mode forward nobody backpropagates
            net(x).sum().backward()
            net.eval()
            net(x)  # validation with grad enabled (eval mode)
    tr = load(tmp_path / "t")
    assert [g.name for g in tr.layers] == ["0", "2"] and len(tr.iterations) == 3
    assert cap.eval_forwards == 3


class _Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.fc(x)))  # two call sites within one forward


def test_repeated_calls_within_one_forward_are_still_call_sites(tmp_path):
    net = _Twice()
    with capture(net, method="dither", s=2.0, out=tmp_path / "t", sample_every=1):
        for _ in range(2):
            net(torch.randn(3, 4)).sum().backward()
    assert [g.name for g in load(tmp_path / "t").layers] == ["fc", "fc#1"]


@pytest.mark.parametrize("mode", ["optimizer", "step"])
def test_gradient_accumulation_iteration_is_an_optimizer_step(tmp_path, mode):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    kw = {"optimizer": opt} if mode == "optimizer" else {"iteration": "step"}
    with capture(net, method="dither", s=1.0, out=tmp_path / "t", sample_every=1, **kw) as cap:
        for i in range(3):
            for _ in range(4):  # 4 micro-batches per optimizer step
                F.cross_entropy(net(torch.randn(5, 4)), torch.randint(0, 3, (5,))).backward()
            opt.step()
            opt.zero_grad()
            if mode == "step":
                cap.step(loss=float(i))
    tr = load(tmp_path / "t")
    assert [it.index for it in tr.iterations] == [0, 1, 2] and cap.iterations_done == 3
    assert [g.name for g in tr.layers] == ["0", "2"]
    for it in tr.iterations:  # statistics merged over the 4 micro-batches: the histogram counts all non-zeros
        st = it.layers["2"]
        assert sum(st.hist) == pytest.approx(st.density * 4 * 5 * 3)
    assert tr.sample(1)["2"].dz_levels.shape == (5, 3)  # the first micro-batch's operands


def test_no_iteration_recorded_warns_and_says_so(tmp_path):
    net = nn.Linear(3, 2)
    with pytest.warns(UserWarning, match=r"0 iterations recorded.*eval mode"):
        with capture(net, out=tmp_path / "t"):
            net.eval()
            net(torch.randn(2, 3)).sum().backward()
    tr = load(tmp_path / "t")
    assert not tr.complete and tr.manifest["status"].startswith("empty: ")


class _Ckpt(nn.Module):
    def __init__(self, reentrant: bool) -> None:
        super().__init__()
        self.a, self.b, self.reentrant = nn.Linear(4, 4), nn.Linear(4, 4), reentrant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return checkpoint(lambda h: self.b(torch.relu(self.a(h))), x, use_reentrant=self.reentrant)


def test_reentrant_checkpointing_warns_and_is_missed_nonreentrant_works(tmp_path):
    x = torch.randn(3, 4, requires_grad=True)
    net = _Ckpt(reentrant=True)
    with pytest.warns(UserWarning, match="reentrant gradient checkpointing.*use_reentrant=False"):
        with capture(net, method="dither", s=2.0) as cap:
            net(x).sum().backward()
    cov = cap.coverage_meta()
    assert cov["forward"] == 0.0 and {m["module"] for m in cov["missed"]} == {"a", "b"}
    net = _Ckpt(reentrant=False)
    with capture(net, method="dither", s=2.0, out=tmp_path / "t", sample_every=1) as cap:
        net(x).sum().backward()
    assert cap.coverage.complete and [g.name for g in load(tmp_path / "t").layers] == ["a", "b"]


def test_errors_name_layer_and_iteration_for_new_kinds(tmp_path):
    class Att(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.p = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor, scale: float) -> torch.Tensor:
            h = self.p(x)
            return (h @ h.transpose(-1, -2)).sum() * scale

    net = Att()
    with pytest.raises(NonFiniteGradientError, match=r"layer 'matmul', iteration 1: δz holds NaN"):
        with capture(net, method="dither", s=2.0, out=tmp_path / "t", sample_every=1, dither_attention=True) as cap:
            for i in range(3):
                net(torch.randn(2, 3, 4), float("nan") if i == 1 else 1.0).backward()
                cap.step()
    assert len(load(tmp_path / "t").iterations) == 1


def test_a_failing_record_names_layer_and_iteration_and_training_goes_on(tmp_path, monkeypatch):
    from hwsim.capture import session

    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    real = session.LayerSample

    def flaky(**kw):
        if kw["geometry"].name == "2":
            raise ValueError("bad sample")
        return real(**kw)

    monkeypatch.setattr(session, "LayerSample", flaky)
    with pytest.warns(UserWarning, match=r"layer '2', iteration 0: could not record \(ValueError: bad sample\)"):
        with capture(net, method="dither", s=2.0, out=tmp_path / "t", sample_every=1) as cap:
            net(torch.randn(5, 3)).sum().backward()
    assert net[0].weight.grad is not None and not cap.coverage.complete
    assert set(load(tmp_path / "t").sample()) == {"0"}
