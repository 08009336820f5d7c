"""The compiled CPU quantizers (hwsim.capture.quant_compiled, the C extension hwsim.capture._nsdkernel) against the
numpy path they replace: the same random stream, levels, values, Δ, statistics and generator state at a seed, noise
sums to float32 rounding; the must-shows of a fused NSD (unbiased, uniform dither, deterministic); a capture's trace
equal on both paths; and that the extension is built wherever a C compiler is."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hwsim.capture import quant, quant_compiled
from hwsim.capture.quantized import NonFiniteError, noise_sums
from hwsim.capture.session import capture
from hwsim.trace.format import load

Z = 5.0  # standard errors allowed in the statistical checks
COMPILER = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def test_the_extension_is_built_where_a_c_compiler_is():
    """pip install (setup.py) builds it when a compiler is present; a checkout needs ``python setup.py build_ext
    --inplace``. Without a compiler the numpy path serves and nothing asks for the kernel."""
    if COMPILER:
        assert quant_compiled.available(), (
            f"a C compiler is present ({COMPILER}) but hwsim.capture._nsdkernel is not importable "
            f"({quant_compiled.IMPORT_ERROR}): run `pip install -e .` or `python setup.py build_ext --inplace`")
        assert quant_compiled.torch_fuses() in (True, False)  # torch's add_ matches one of the two roundings
    assert quant.compiled_on(True) == quant_compiled.available()
    assert not quant.compiled_on(False)


KERNEL = quant_compiled.available()  # without it (no compiler) every comparison below is numpy against numpy


def _data(kind: str, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g)
    if kind == "heavy":  # a few |δz| of many σ: levels of several bits
        x = x ** 5
    elif kind == "sparse":  # ReLU-like: most δz exactly 0
        x = torch.where(torch.rand(n, generator=g) < 0.8, 0.0, x)
    elif kind == "tiny":
        x = x * 1e-30
    elif kind == "huge":
        x = x * 1e30
    elif kind == "offset":  # the mean dominates: σ ≪ rms, |x|/Δ up to ~1e3 (levels of 10+ bits)
        x = 1.0 + 1e-3 * x
    elif kind == "cells":  # x/Δ near cell boundaries: values on a coarse grid
        x = torch.round(x * 8) / 8
    elif kind == "far":  # |x|/Δ ~ 1e5: x·(1/Δ) is inexact by up to ~1/128, so an FMA (one rounding) and a multiply
        x = 1.0 + 1e-6 * x  # then add (two) give different levels in ~1 % of the elements: which one is used matters
    return x


def _state(g: np.random.Generator) -> tuple:
    st = g.bit_generator.state
    return tuple(int(v) for v in st["state"]["state"]), st["has_uint32"], st["uinteger"]


def _pair(x: torch.Tensor, s: float, seed: int, **kw) -> tuple:
    gk, gn = quant.new_generator(seed), quant.new_generator(seed)
    qk = quant.nsd(x, s=s, generator=gk, compiled=True, **kw)
    qn = quant.nsd(x, s=s, generator=gn, compiled=False, **kw)
    return qk, qn, gk, gn


@pytest.mark.parametrize("kind", ["gauss", "heavy", "sparse", "tiny", "huge", "offset", "cells", "far"])
@pytest.mark.parametrize("n", [5, 640, 4095, 4096, 4097, 8191, 8192, 8193, 12_345, 70_001])
def test_kernel_equals_the_numpy_path(kind, n):
    for seed, s in ((0, 4.0), (1, 0.5)):
        x = _data(kind, n, seed)
        qk, qn, gk, gn = _pair(x, s, seed + 10)
        assert (qk.stats is not None) == (KERNEL and qk.delta > 0) and qn.stats is None  # numpy: the reference
        assert qk.delta == qn.delta  # σ is the numpy path's own
        assert torch.equal(qk.levels, qn.levels), int((qk.levels != qn.levels).sum())
        assert torch.equal(qk.values, qn.values)
        assert (qk.stats or quant.level_stats(qk.levels)) == quant.level_stats(qn.levels)
        assert _state(gk) == _state(gn)  # the stream goes on where numpy's does
        # noise sums: float64 sums over the kernel's pass, against float64 sums of the numpy path's levels (its own
        # float32 dots underflow for δz ~1e-30 and overflow for ~1e30)
        xd, kd = x.double().reshape(-1), qn.levels.double().reshape(-1)
        want = [float(xd @ xd), float(kd @ kd) * qk.delta ** 2, float(xd @ kd) * qk.delta]
        got = noise_sums(x, qk).tolist()
        assert got[:2] == pytest.approx(want[:2], rel=1e-5)
        assert got[2] == pytest.approx(want[2], rel=1e-5, abs=1e-6 * math.sqrt(want[0] * want[1]))


def test_the_far_case_tells_one_rounding_from_two():
    """The "far" data above do separate fused from unfused arithmetic (else the comparisons could not tell)."""
    x = _data("far", 8192, 0)
    q = quant.nsd(x, s=4.0, generator=quant.new_generator(0), compiled=False)
    alpha = torch.tensor(1.0 / q.delta, dtype=torch.float32)
    u = torch.from_numpy(quant._uniform_np(8192, np.float32, quant.new_generator(0)))
    once = torch.floor((x.double() * alpha.double() + u.double()).float())  # exact product + u, rounded once
    twice = torch.floor(x * alpha + u)
    assert int((once != twice).sum()) > 20


def test_kernel_levels_and_max_bits_by_hand():
    # x = [3, -3] ×2048: σ = 3, s = 1 → Δ = 3, x/Δ = ±1 exactly: ⌊±1 + u⌋ = ±1 for every u ∈ (0, 1)
    # (the one u of 2^23 that rounds 1 + u up to 2 in float32 does not occur in these 4096 draws at seed 0)
    x = torch.tensor([3.0, -3.0]).repeat(2048)
    q = quant.nsd(x, s=1.0, generator=quant.new_generator(0), compiled=True)
    st = q.stats or quant.level_stats(q.levels)
    assert q.delta == 3.0
    assert torch.equal(q.levels, x / 3) and torch.equal(q.values, x)
    assert (st.nnz, st.max_abs, st.max_bits) == (4096, 1, 2) and st.hist[0] == 4096
    assert noise_sums(x, q, st).tolist() == [9.0 * 4096, 9.0 * 4096, 9.0 * 4096]
    # a level of 3 bits: x = [12, -12, 0, 0] ×1024: σ = √72, s = 2/√72: Δ = 2, x/Δ = ±6 → levels ±6
    x = torch.tensor([12.0, -12.0, 0.0, 0.0]).repeat(1024)
    q = quant.nsd(x, s=2 / math.sqrt(72.0), generator=quant.new_generator(0), compiled=True)
    st = q.stats or quant.level_stats(q.levels)
    assert q.delta == pytest.approx(2.0, rel=1e-12)
    assert torch.equal(q.levels, torch.round(x / 2))  # ⌊±6 + u⌋ = ±6 (6 needs sign + 3 bits)
    assert (st.nnz, st.max_abs, st.max_bits, st.hist[2]) == (2048, 6, 4, 2048)


def test_kernel_on_non_contiguous_shaped_and_unkept_levels():
    base = _data("heavy", 64 * 300, 3).view(64, 300)
    for x in (base.t(), base[:, ::2], base.view(8, 8, 300).permute(2, 0, 1), base.view(-1)[::3],
              base[:1, :1].expand(64, 300), base[0, :1].expand(5000)):
        qk, qn, gk, gn = _pair(x, 2.0, 4)
        assert qk.levels.shape == x.shape and torch.equal(qk.levels, qn.levels) and torch.equal(qk.values, qn.values)
    gk, gn = quant.new_generator(5), quant.new_generator(5)
    qk = quant.nsd(base, s=2.0, generator=gk, compiled=True, lazy_values=True, keep_levels=False)
    qn = quant.nsd(base, s=2.0, generator=gn, compiled=False, lazy_values=True)
    assert (qk.levels is None) == KERNEL  # not written: rebuilt from δ̃z when a sampled iteration stores them
    assert torch.equal(qk.level_tensor(), qn.levels)
    assert torch.equal(qk.take_values(), qn.take_values())


def test_a_stream_of_mixed_sizes_stays_numpys():
    """Small tensors (``Generator.random``'s 32-bit draws: half a word may stay buffered) between large ones."""
    gk, gn = quant.new_generator(7), quant.new_generator(7)
    for i, n in enumerate([5000, 3, 70_001, 4095, 1, 9000, 4097, 100]):
        x = _data("gauss", n, i)
        qk = quant.nsd(x, s=3.0, generator=gk, compiled=True)
        qn = quant.nsd(x, s=3.0, generator=gn, compiled=False)
        assert torch.equal(qk.levels, qn.levels) and (qk.stats is not None) == (KERNEL and n > 1)  # n = 1: σ = 0
    assert _state(gk) == _state(gn)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_kernel_path_raises_on_nan_and_inf(bad):
    x = torch.randn(10_000)
    x[1234] = bad
    with pytest.raises(NonFiniteError, match="1 of 10000 elements are NaN/Inf"):
        quant.nsd(x, s=4.0, generator=quant.new_generator(0), compiled=True)


def test_kernel_zero_and_denormal_steps_give_zero_levels():
    for x in (torch.zeros(10_000), torch.randn(10_000) * 1e-42):
        q = quant.nsd(x, s=4.0, generator=quant.new_generator(0), compiled=True)
        assert q.delta == 0.0 and not q.levels.any() and not q.values.any()


def test_kernel_is_deterministic_at_a_seed():
    x = _data("heavy", 50_000, 1)
    a = quant.nsd(x, s=4.0, generator=quant.new_generator(3), compiled=True)
    b = quant.nsd(x, s=4.0, generator=quant.new_generator(3), compiled=True)
    c = quant.nsd(x, s=4.0, generator=quant.new_generator(4), compiled=True)
    assert torch.equal(a.levels, b.levels) and a.stats == b.stats
    assert not torch.equal(a.levels, c.levels)


def test_kernel_nsd_is_unbiased_and_its_dither_uniform():
    """Values y_j = x_j/Δ with fractional parts f_j spread over (0, 1): E[level] = y_j (unbiased, mean of δ̃z − δz
    ≈ 0), and P(level = ⌈y_j⌉) = f_j for every f_j — the dither's CDF at f_j is f_j (uniform)."""
    m, groups = 20_000, 16
    ys = torch.linspace(-3.9, 3.9, groups, dtype=torch.float64)
    x = ys.repeat_interleave(m).float()
    s = 1.0 / float(x.double().std(correction=0))  # Δ = 1 (to float32 rounding of σ): y_j = x_j / Δ
    tot_err = 0.0
    for rep in range(3):
        q = quant.nsd(x, s=s, generator=quant.new_generator(100 + rep), compiled=True)
        assert (q.stats is not None) == KERNEL
        y = (x.double() / q.delta).view(groups, m)
        lv = q.levels.double().view(groups, m)
        for j in range(groups):
            f = float(y[j, 0] - math.floor(y[j, 0]))
            up = float((lv[j] == math.floor(y[j, 0]) + 1).double().mean())
            assert float(((lv[j] - math.floor(y[j, 0])) ** 2 - (lv[j] - math.floor(y[j, 0]))).abs().max()) == 0.0
            assert abs(up - f) <= Z * math.sqrt(f * (1 - f) / m) + 1e-9, (j, f, up)
        err = q.values.double() - x.double()  # δ̃z − δz
        tot_err += float(err.mean())
        assert abs(float(err.mean())) <= Z * q.delta * 0.5 / math.sqrt(x.numel())
    assert abs(tot_err / 3) <= Z * 0.5 / math.sqrt(3 * x.numel())


def _at_thresholds(mx: float) -> torch.Tensor:
    """|x| at and a few floats either side of (2^b − ½)·Δ, Δ = mx/127 (mx the largest): where rint(|x|/Δ) crosses
    2^b, b = 1..6 (2^7 − ½ is above 127)."""
    d = np.float32(np.float32(mx) / 127)
    vals = [float(np.float32(mx))]
    for b in range(1, 7):
        c = np.float32((2**b - 0.5) * d)
        for k in range(-3, 4):
            v = c
            for _ in range(abs(k)):
                v = np.nextafter(v, np.float32(np.inf if k > 0 else 0))
            vals += [float(v), -float(v)]
    return torch.tensor(vals, dtype=torch.float32)


@pytest.mark.parametrize("mx", [1.0, 127.0, 3.0e-3, 0.7071, 1e30, 5e-36])
def test_compiled_int8_view_counts_at_the_rounding_thresholds(mx):
    """The kernel counts rint(|x|/Δ) >= 2^b by comparing |x| with precomputed thresholds: exactly numpy's counts
    one float below, at and above every threshold."""
    x = _at_thresholds(mx)
    qk, qn = quant.counted_view(x, compiled=True), quant.counted_view(x, compiled=False)
    assert qk.delta == qn.delta and qk.stats == qn.stats


@pytest.mark.parametrize("case", ["gauss", "ties", "zeros", "tiny_nonzero", "wide", "nan", "tiny_max"])
def test_compiled_int8_view_counts_equal_the_numpy_counts(case):
    g = torch.Generator().manual_seed(9)
    x = {"gauss": torch.randn(20_001, generator=g),
         "ties": torch.tensor([127.0, -1.5, 2.5, -3.5, 4.5, 0.49, 0.5, 0.0, 63.5, -64.5] * 7),
         "zeros": torch.where(torch.rand(20_000, generator=g) < 0.7, 0.0, torch.randn(20_000, generator=g)),
         "tiny_nonzero": torch.tensor([1.0, 1e-6, -1e-5, 0.0, 0.004, 1e-44]),
         "wide": torch.randn(20_000, generator=g) ** 5,
         "nan": torch.tensor([1.0, float("nan"), 2.0]),
         "tiny_max": torch.tensor([1e-40, 0.0, -2e-40])}[case]
    for v in (x, x.view(-1, 1).expand(-1, 2).t(), x[::2], x[:1].expand(4097)):  # and non-contiguous views
        qk = quant.counted_view(v, compiled=True)
        qn = quant.counted_view(v, compiled=False)
        if qn is None:
            assert qk is None
            continue
        assert qk.delta == qn.delta and qk.stats == qn.stats
        assert torch.equal(qk.level_tensor(), qn.level_tensor())


class _Net(nn.Module):
    """δz of 16·8·10·10 = 12,800 (torch route), 16·300 = 4,800 (numpy raw route) and 160 elements (rng.random)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3)
        self.fc1 = nn.Linear(8 * 10 * 10, 300)
        self.fc2 = nn.Linear(300, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(F.relu(self.conv(x)).flatten(1))))


@pytest.mark.parametrize("rng", ["sfc64", "counter"])
@pytest.mark.parametrize("method", ["dither", "none"])
def test_a_capture_writes_the_same_trace_on_both_paths(tmp_path, monkeypatch, method, rng):
    def run(path: str):
        monkeypatch.setenv(quant.QUANT_PATH_ENV, path)
        torch.manual_seed(0)
        net = _Net()
        opt = torch.optim.SGD(net.parameters(), lr=0.05)
        with capture(net, method=method, s=4.0, seed=3, out=tmp_path / path, sample_every=2, dither_rng=rng) as cap:
            assert cap.dither.compiled == (path == "auto")
            for _ in range(5):
                x, y = torch.randn(16, 1, 12, 12), torch.randint(0, 10, (16,))
                F.cross_entropy(net(x), y).backward()
                opt.step()
                opt.zero_grad()
        return load(tmp_path / path), [p.detach().clone() for p in net.parameters()]

    (ta, pa), (tn, pn) = run("auto"), run("numpy")
    assert all(torch.equal(a, b) for a, b in zip(pa, pn, strict=True))  # the same δ̃z trained the same weights
    for ia, in_ in zip(ta.iterations, tn.iterations, strict=True):
        for name, sa in ia.layers.items():
            sn = in_.layers[name]
            assert (sa.density, sa.max_bits, list(sa.hist), sa.delta) == (sn.density, sn.max_bits, list(sn.hist),
                                                                         sn.delta)
            assert sa.dz_norm == sn.dz_norm  # Σδz² is the std's on both paths
            if method == "none":
                assert sa.noise is None and sn.noise is None
            else:  # Σδz·δ̃z: float64 sums in C, a float32 BLAS dot on the numpy path
                assert sa.noise == pytest.approx(sn.noise, rel=1e-5)
    for it in (0, 2, 4):
        for name, sa in ta.sample(it).items():
            assert np.array_equal(sa.dz_levels, tn.sample(it)[name].dz_levels)


@pytest.mark.skipif(not quant_compiled.available(), reason="the NSD kernel is not built here (no C compiler)")
def test_both_nsd_entry_points_refuse_output_buffers_of_the_wrong_size():
    ext = quant_compiled.extension()
    x = np.ones(100, np.float32)
    ok, short = np.empty(100, np.float32), np.empty(50, np.float32)
    state = np.zeros(4, np.uint64)
    for call in (lambda v, lev: ext.nsd_ctr(x, 1, 2, 4.0, v, lev),
                 lambda v, lev: ext.nsd(x, state, 1.0, 1.0, 0, v, lev)):
        with pytest.raises(ValueError, match=r"^_nsdkernel: values holds 200 bytes, expected 100 float32 values$"):
            call(short, None)
        with pytest.raises(ValueError, match=r"^_nsdkernel: levels holds 200 bytes, expected 100 float32 values$"):
            call(ok, short)
