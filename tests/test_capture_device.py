"""The device path of capture (hwsim.capture.quant_device), pinned on CPU; bf16/fp16 operand widths.

The machine has no GPU, so the torch-on-the-device quantizer is forced on CPU (a ``torch.Generator``
for the quantizer functions, ``HWSIM_QUANT_PATH=torch`` for capture) and checked against the numpy
path: same distributions (uniform grid, unbiased NSD, same Δ), the same level statistics, and — the
point of the device path — no full-size tensor reaches the host on non-sampled iterations, with one
small transfer per layer and iteration.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hwsim
from hwsim.capture import quant, quant_device
from hwsim.capture.session import capture
from hwsim.capture.train import resolve_device
from hwsim.sim.replay import TraceArchMismatch
from hwsim.trace.format import layer_stats, load

torch.set_num_threads(1)
Z = 5.0  # sigmas
SMALL = 64  # a host transfer of more elements than this counts as a full-tensor copy


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- distributions


def test_device_uniform_is_the_numpy_grid_of_midpoints():
    n = 2_000_001
    u = quant_device.uniform(torch.empty(n), generator=_gen(1))
    assert u.dtype == torch.float32
    j = u.double() * 2**23 - 0.5  # (j + ½)/2^23, j in [0, 2^23): the CPU path's grid
    assert torch.equal(j, j.round()) and float(j.min()) >= 0 and float(j.max()) < 2**23
    cpu = quant.uniform(torch.empty(n), generator=quant.new_generator(1)).double() * 2**23 - 0.5
    assert torch.equal(cpu, cpu.round())  # both paths draw from the same set of values
    ud = u.double()
    assert abs(float(ud.mean()) - 0.5) <= Z * math.sqrt(1 / 12 / n)
    assert abs(float(ud.var()) - 1 / 12) <= Z * math.sqrt((1 / 80 - 1 / 144) / n)
    counts = torch.histc(ud, bins=64, min=0, max=1)
    chi2 = float(((counts - n / 64) ** 2 / (n / 64)).sum())
    assert chi2 < 63 + Z * math.sqrt(2 * 63)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_device_nsd_is_unbiased_with_delta_of_the_numpy_path(dtype):
    ys = torch.tensor([0.5, -0.25, 0.1, -0.9, 1.75, -2.3, 0.0], dtype=torch.float64)
    m = 60_000
    x = ys.repeat_interleave(m).to(dtype)  # bf16 holds these values to its 8-bit mantissa
    xw = x.double()
    s = 1.0 / float(xw.std(correction=0))
    q = quant_device.nsd(x, s=s, generator=_gen(2))
    assert q.values.dtype == dtype and q.levels.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert torch.equal(q.values, (q.levels * q.delta).to(dtype))  # computed in float32, cast back
    assert q.delta == pytest.approx(1.0, rel=1e-6)  # s = 1/std in float64: Δ = 1
    assert q.delta == pytest.approx(quant.nsd(x, s=s, generator=quant.new_generator(3)).delta, rel=1e-5)
    err = (q.levels.double() - xw / q.delta).view(len(ys), m)
    for j in range(len(ys)):
        f = float(xw[j * m] / q.delta) % 1.0
        var = f * (1 - f)
        if var < 1e-4:
            assert float(err[j].abs().max()) < 1e-4
            continue
        assert abs(float(err[j].mean())) <= Z * math.sqrt(var / m), (float(ys[j]), float(err[j].mean()))
        assert float(err[j].abs().max()) < 1.0  # ⌊y + u⌋ ∈ {⌊y⌋, ⌊y⌋ + 1}
    assert q.stats == quant.level_stats(q.levels.contiguous())


def test_device_and_numpy_paths_agree_in_distribution_on_gaussian_gradients():
    x = torch.randn(1_000_000, generator=_gen(4)) * 1e-3
    qd = quant.nsd(x, s=4.0, generator=_gen(5))  # a torch.Generator selects the device path
    qn = quant.nsd(x, s=4.0, generator=quant.new_generator(5), compiled=False)  # the numpy path itself
    assert qd.stats is not None and qn.stats is None
    assert qd.delta == pytest.approx(qn.delta, rel=1e-6)
    assert not torch.equal(qd.levels, qn.levels)  # different streams ...
    p = (x.double().abs() / qd.delta).clamp(max=1.0)
    sd = math.sqrt(float((p * (1 - p)).sum()))
    for q in (qd, qn):  # ... the same expected density E[min(|x|/Δ, 1)]
        assert abs(int((q.levels != 0).sum()) - float(p.sum())) <= Z * sd
        err = q.values.double() - x.double()
        assert abs(float(err.mean())) <= Z * q.delta / (2 * math.sqrt(x.numel()))


def test_device_seed_fixes_the_stream():
    x = torch.randn(50_000, generator=_gen(6))
    a = quant.nsd(x, s=3.0, generator=_gen(7))
    b = quant.nsd(x, s=3.0, generator=_gen(7))
    c = quant.nsd(x, s=3.0, generator=_gen(8))
    assert torch.equal(a.levels, b.levels) and not torch.equal(a.levels, c.levels)


# ----------------------------------------------------------------------------- statistics


def test_device_level_stats_equal_the_numpy_ones():
    rng = np.random.default_rng(9)
    cases = [rng.integers(-5, 6, 10_000) * (rng.random(10_000) < 0.1),
             np.array([0, 1, -1, 2, 3, -4, 7, 8, 255, 256, -300, 5000, 16383, 16384, -32768, 70000, 2**30]),
             np.zeros(7, np.int64), rng.integers(-200, 201, 50_000)]
    for lv in cases:
        want = quant.level_stats(torch.from_numpy(lv.astype(np.float32)))
        fmt = layer_stats(lv)
        assert (want.density, want.max_bits, want.hist) == (fmt["density"], fmt["max_bits"], fmt["hist"])
        for dt in (torch.float32, torch.float64):
            assert quant_device.level_stats(torch.from_numpy(lv).to(dt)) == want, (lv[:5], dt)
    assert quant_device.level_stats(torch.empty(0)) == quant.level_stats(torch.empty(0))


@pytest.mark.parametrize("method", ["meprop", "none"])
def test_device_int_view_equals_the_numpy_path(method):
    dz = torch.randn(6, 3, 5, 5, generator=_gen(10))
    dz[0, 0] = 0.0
    d = quant.quantize(dz, method=method, k=7, generator=_gen(0))
    c = quant.quantize(dz, method=method, k=7)
    assert torch.equal(d.values, c.values) and torch.equal(d.levels, c.levels)
    assert d.delta == pytest.approx(c.delta, rel=1e-6)
    assert d.stats == quant.level_stats(c.levels)


@pytest.mark.parametrize("method", ["dither", "meprop", "none"])
def test_device_path_non_finite_gradients_raise(method):
    x = torch.randn(10, 10)
    x[3, 4] = float("nan")
    with pytest.raises(quant.NonFiniteError, match="1 of 100 elements"):
        quant.quantize(x, method=method, s=2.0, k=3, generator=_gen(0))
    x[3, 4] = float("-inf")
    with pytest.raises(quant.NonFiniteError):
        quant.quantize(x, method=method, s=2.0, k=3, generator=_gen(0))


def test_device_nsd_zero_sigma_and_empty():
    for flat in (torch.zeros(50), torch.full((50,), 3.0), torch.tensor([2.5]), torch.empty(0)):
        q = quant_device.nsd(flat, s=2.0, generator=_gen(0))
        assert q.delta == 0.0 and not torch.isnan(q.values).any() and int((q.levels != 0).sum()) == 0
        assert q.stats is not None and q.stats.nnz == 0 and q.stats.numel == flat.numel()


# ----------------------------------------------------------------------------- host transfers


class _HostTransfers:
    """Counts Tensor → host conversions (the ones that are a device sync or a copy on a GPU)."""

    NAMES = ("cpu", "numpy", "tolist", "item", "__float__", "__int__", "__bool__", "__index__", "__array__")

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.small = 0
        self.large: list[tuple[str, tuple[int, ...]]] = []
        for name in self.NAMES:
            monkeypatch.setattr(torch.Tensor, name, self._wrap(name, getattr(torch.Tensor, name)))

    def _wrap(self, name, orig):
        def counted(t, *args, **kwargs):
            if t.numel() > SMALL:
                self.large.append((name, tuple(t.shape)))
            else:
                self.small += 1
            return orig(t, *args, **kwargs)
        return counted

    def reset(self) -> None:
        self.small, self.large = 0, []


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3)
        self.fc1 = nn.Linear(6 * 8 * 8, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(F.relu(self.conv(x)).flatten(1))))


@pytest.mark.parametrize("rng", ["counter", "sfc64"])  # the counter dither's torch path / the torch.Generator one
@pytest.mark.parametrize("method", ["dither", "meprop", "none"])
def test_pinned_device_path_copies_no_tensor_to_host_on_non_sampled_iterations(monkeypatch, tmp_path, method, rng):
    monkeypatch.setenv(quant.QUANT_PATH_ENV, "torch")
    torch.manual_seed(0)
    net = _Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    x, y = torch.randn(16, 1, 10, 10), torch.randint(0, 10, (16,))
    seen: list[tuple[bool, int, int]] = []
    with capture(net, method=method, s=4.0, k=5, out=tmp_path / "t", sample_every=3, dither_rng=rng) as cap:
        hx = _HostTransfers(monkeypatch)
        for i in range(6):
            hx.reset()
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen.append((i % 3 == 0, hx.small, len(hx.large)))
        monkeypatch.undo()  # restore torch before the trace is closed
    assert cap._meta["quant_path"] == "torch"
    for sampled, small, large in seen:
        if sampled:
            assert large > 0  # the operands are stored: full tensors do reach the host here
        else:
            # one small transfer per layer (3 GEMMs) and, for methods that add noise, one per iteration for every
            # layer's noise statistics (hwsim.trace.noise); nothing else
            assert large == 0 and small == 3 + (method != "none"), seen
    tr = load(tmp_path / "t")
    assert [it.index for it in tr.iterations if it.sampled] == [0, 3]
    st = tr.iterations[4].layers["fc1"]
    assert 0 < st.density <= 1 and sum(st.hist) == round(st.density * 16 * 32)


def test_numpy_path_is_still_the_default_on_cpu(monkeypatch):
    monkeypatch.delenv(quant.QUANT_PATH_ENV, raising=False)
    net = _Net()
    calls = []
    orig = quant_device.nsd
    monkeypatch.setattr(quant_device, "nsd", lambda *a, **k: calls.append(1) or orig(*a, **k))
    with capture(net, s=4.0) as cap:
        F.cross_entropy(net(torch.randn(4, 1, 10, 10)), torch.tensor([1, 2, 3, 4])).backward()
    assert calls == [] and cap.iterations_done == 1 and "quant_path" not in cap._meta


def test_bad_quant_path_env_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(quant.QUANT_PATH_ENV, "cuda")
    with pytest.raises(ValueError, match="HWSIM_QUANT_PATH='cuda' is not allowed; use one of"):
        capture(_Net(), s=4.0)


@pytest.mark.parametrize("rng", ["counter", "sfc64"])
def test_capture_seed_fixes_the_device_stream(monkeypatch, rng):
    monkeypatch.setenv(quant.QUANT_PATH_ENV, "torch")

    def run(seed: int) -> list:
        torch.manual_seed(0)
        net = _Net()
        opt = torch.optim.SGD(net.parameters(), lr=0.05)
        x, y = torch.randn(8, 1, 10, 10), torch.randint(0, 10, (8,))
        out = []
        with capture(net, s=4.0, seed=seed, dither_rng=rng) as cap:
            for _ in range(3):
                opt.zero_grad()
                F.cross_entropy(net(x), y).backward()
                opt.step()
                out.append(json.dumps(cap.last_stats, sort_keys=True))
        return out

    assert run(1) == run(1) != run(2)


# ----------------------------------------------------------------------------- bf16 / fp16


def _train(net: nn.Module, x: torch.Tensor, y: torch.Tensor, out, *, steps: int = 4, autocast: bool = False):
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    losses = []
    with capture(net, s=4.0, out=out, sample_every=2, optimizer=opt):
        for _ in range(steps):
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                logits = net(x)
            loss = F.cross_entropy(logits.float(), y)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_model_trains_under_capture_and_the_trace_says_16_bits(tmp_path, dtype):
    torch.manual_seed(0)
    net = _Net().to(dtype)
    x, y = torch.randn(16, 1, 10, 10).to(dtype), torch.randint(0, 10, (16,))
    losses = _train(net, x, y, tmp_path / "t", steps=8)
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    assert all(p.dtype == dtype for p in net.parameters())
    tr = load(tmp_path / "t")
    assert tr.sampled_iterations == [0, 2, 4, 6]
    for it in tr.sampled_iterations:
        smp = tr.sample(it)
        assert {(s.w_bits, s.a_bits) for s in smp.values()} == {(16, 16)}
        assert all(np.any(s.dz_levels != 0) for s in smp.values())
    with pytest.raises(TraceArchMismatch, match=r"w_bits=16 is wider than the arch's pe.mac_bits=8.*"
                                                r"--set pe.mac_bits=16"):
        hwsim.simulate(tr, "scnn")
    r = hwsim.simulate(tr, "scnn16")  # 16-bit MACs take 16-bit operands
    assert r.speedup() > 0


def test_autocast_bf16_gemms_are_recorded_as_16_bits_and_float_ones_as_32(tmp_path):
    torch.manual_seed(0)
    x, y = torch.randn(16, 1, 10, 10), torch.randint(0, 10, (16,))
    _train(_Net(), x, y, tmp_path / "bf", steps=2, autocast=True)
    _train(_Net(), x, y, tmp_path / "f32", steps=2)
    for name, bits in (("bf", 16), ("f32", 32)):
        smp = load(tmp_path / name).sample(0)
        assert {(s.w_bits, s.a_bits) for s in smp.values()} == {(bits, bits)}, name


def test_int8_tag_and_half_width_take_the_narrower(tmp_path):
    from hwsim.capture.int8 import quantize_model

    torch.manual_seed(0)
    net = _Net()
    quantize_model(net)
    net = net.to(torch.bfloat16)
    _train(net, torch.randn(8, 1, 10, 10).to(torch.bfloat16), torch.randint(0, 10, (8,)), tmp_path / "t", steps=1)
    smp = load(tmp_path / "t").sample(0)
    assert {(s.w_bits, s.a_bits) for s in smp.values()} == {(8, 8)}


# ----------------------------------------------------------------------------- --device


def test_resolve_device_errors_name_the_flag():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"--device 'nope' is not a torch device; allowed: cpu, cuda"):
        resolve_device("nope")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="--device cuda: CUDA is not available here"):
            resolve_device("cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
@pytest.mark.parametrize("argv", [["-m", "hwsim", "trace", "--model", "mlp500", "--device", "cuda"],
                                  ["benchmarks/bench_capture.py", "--device", "cuda"]])
def test_cli_device_cuda_without_a_gpu_is_a_clear_error(argv, tmp_path):
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    if argv[0].startswith("benchmarks/"):
        argv = [str(root / argv[0]), *argv[1:]]
    else:
        argv = [*argv, "--out", str(tmp_path / "t")]
    p = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=120, cwd=root)
    assert p.returncode == 2, p.stderr
    assert "--device cuda: CUDA is not available here" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "t").exists()
