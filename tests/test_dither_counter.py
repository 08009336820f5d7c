"""The counter-based dither (hwsim.capture.quant_counter, ``dither_rng: counter``): the C kernel (AVX2 and baseline
loops), numpy and torch give the same uniforms, Δ, levels, values and statistics to the bit; the uniforms are
uniform, independent between neighbours, calls, layers and iterations and avalanche; NSD stays unbiased with the
levels ⌊δz/Δ + u⌋ by hand; a capture is deterministic at a seed and writes the same trace on every path; the
stream is recorded in the trace's meta (absent: sfc64) and a bad value is a one-line error."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _counter_ref import hash_by_hand
from torch import nn

from hwsim.capture import config as capture_config
from hwsim.capture import quant, quant_compiled
from hwsim.capture import quant_counter as qc
from hwsim.capture.quantized import NonFiniteError
from hwsim.capture.session import capture
from hwsim.trace import records
from hwsim.trace.format import load
from hwsim.trace.schema import TraceError

Z = 5.0  # standard errors allowed in the statistical checks
KERNEL = quant_compiled.available()
KEY = qc.call_key(3, 7, qc.site_hash("fc1"), 0)


def _all_uniforms(key: qc.CounterKey, n: int, start: int) -> list[np.ndarray]:
    got = [qc.uniform_numpy(key, n, start), qc.uniform_torch(key, n, "cpu", start).numpy()]
    return got + ([qc.uniform_kernel(key, n, start)] if KERNEL else [])


@pytest.mark.parametrize("start", [0, 5, (1 << 32) - 7, (3 << 32) + 1])
@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 511, 512, 513, 4097])
def test_uniforms_are_the_same_bits_on_every_path_and_by_hand(n, start):
    a, *others = _all_uniforms(KEY, n, start)
    assert all(np.array_equal(a, b) for b in others)
    for i in range(min(n, 20)):  # u = (2·⌊H / 2^9⌋ + 1)·2^-24
        h = hash_by_hand(start + i, KEY.k0, KEY.k1)
        assert a[i] == np.float32((2 * (h >> 9) + 1) * 2.0**-24)


def test_quant_uniform_takes_a_counter_key():
    like = torch.empty(3, 5, dtype=torch.float64)
    u = quant.uniform(like, generator=KEY)
    assert u.shape == (3, 5) and u.dtype == torch.float64
    assert np.array_equal(u.reshape(-1).numpy(), qc.uniform_numpy(KEY, 15).astype(np.float64))
    assert torch.equal(quant.uniform(like, generator=KEY._replace(device_path=True)), u)


def _data(kind: str, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(n)
    x = torch.randn(n, generator=g)
    return {"normal": x, "heavy": x ** 5, "sparse": torch.where(torch.rand(n, generator=g) < 0.8, 0.0, x),
            "tiny": x * 1e-30, "huge": x * 1e30, "offset": 1.0 + 1e-3 * x, "zeros": x * 0}[kind]


def _paths(x: torch.Tensor, s: float = 4.0) -> list[qc.Quantized]:
    out = [qc.nsd_numpy(x, s=s, key=KEY), qc.nsd_torch(x, s=s, key=KEY)]
    if KERNEL:
        for avx2 in (True, False):
            before = qc._ext.set_isa(avx2)
            try:
                out.append(qc.nsd_kernel(x, s=s, key=KEY))
            finally:
                qc._ext.set_isa(before)
    return out


@pytest.mark.parametrize("kind", ["normal", "heavy", "sparse", "tiny", "huge", "offset", "zeros"])
@pytest.mark.parametrize("n", [1, 7, 9, 511, 513, 4096, 70001])
def test_every_path_gives_the_same_delta_levels_values_and_statistics(kind, n):
    ref, *others = _paths(_data(kind, n))
    st = quant.level_stats(ref.level_tensor())
    for q in others:
        assert q.delta == ref.delta
        assert torch.equal(q.level_tensor(), ref.level_tensor())
        assert torch.equal(q.take_values(), ref.take_values() if q is others[0] else ref.values)
        assert (q.stats or quant.level_stats(q.level_tensor())) == st
        assert q.sum_sq is None or q.sum_sq == ref.sum_sq  # Σx² in the kernel's lane order (torch: its own order)


@pytest.mark.parametrize("n", [0, 1, 127, 129, 1000, 32768 + 300])
def test_the_sums_of_sigma_follow_the_lane_order_by_hand(n):
    """Element i to lane i mod 128 in index order, the lanes added left to right (plain Python floats)."""
    x = (torch.randn(n, generator=torch.Generator().manual_seed(n)) * 1e3).numpy()
    lanes1, lanes2 = [0.0] * 128, [0.0] * 128
    for i, v in enumerate(x.tolist()):
        lanes1[i % 128] += v
        lanes2[i % 128] += v * v
    want = (sum_left(lanes1), sum_left(lanes2))
    assert qc.sums_numpy(x) == want
    if KERNEL and n:
        q = qc.nsd_kernel(torch.from_numpy(x), s=4.0, key=KEY)
        assert q.sum_sq == want[1]
        mean = want[0] / n
        assert q.delta == float(np.float32(4.0 * math.sqrt(max(want[1] / n - mean * mean, 0.0))))


def sum_left(v: list[float]) -> float:
    t = 0.0
    for a in v:
        t += a
    return t


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_is_quantized_in_float32_alike_on_every_path(dtype):
    x = torch.randn(5000, generator=torch.Generator().manual_seed(2)).to(dtype)
    a, b = qc.nsd_numpy(x, s=4.0, key=KEY), qc.nsd_torch(x, s=4.0, key=KEY)
    c = quant.nsd(x, s=4.0, generator=KEY, compiled=True)
    ref = qc.nsd_numpy(x.float(), s=4.0, key=KEY)  # the same as quantizing its float32 copy
    for q in (a, b, c):
        assert q.delta == ref.delta and torch.equal(q.level_tensor(), ref.level_tensor())
        assert q.take_values().dtype == dtype


def test_a_device_without_float64_takes_sigma_from_the_host(monkeypatch):
    """Apple's MPS has no float64: its Σx, Σx² come from a host copy in the kernel's order (pinned here on CPU)."""
    monkeypatch.setattr(qc, "NO_FLOAT64", {"cpu"})
    for kind in ("normal", "heavy", "zeros"):
        x = _data(kind, 4097)
        q, ref = qc.nsd_torch(x, s=4.0, key=KEY), qc.nsd_numpy(x, s=4.0, key=KEY)
        assert q.delta == ref.delta and torch.equal(q.level_tensor(), ref.level_tensor())
        assert q.stats == quant.level_stats(ref.level_tensor())
    bad = torch.ones(10)
    bad[2] = math.inf
    with pytest.raises(NonFiniteError):
        qc.nsd_torch(bad, s=4.0, key=KEY)


def test_non_contiguous_and_shaped_tensors_use_the_row_major_index():
    base = torch.randn(64, 130)
    for x in (base.t(), base[:, ::3], base[::2].reshape(8, 4, 130)):
        flat = x.contiguous()
        for q in _paths(x):
            assert q.level_tensor().shape == x.shape
            assert torch.equal(q.level_tensor(), _paths(flat)[0].level_tensor())


def test_levels_by_hand():
    """x = (1, −1, 0, 2): mean ½, σ² = 6/4 − ¼ = 1.25, Δ = float32(4·√1.25), k = ⌊float32(float32(x·α) + u)⌋."""
    x = torch.tensor([1.0, -1.0, 0.0, 2.0])
    delta = np.float32(4.0 * math.sqrt(1.25))
    alpha = np.float32(1.0 / float(delta))
    u = [np.float32((2 * (hash_by_hand(i, KEY.k0, KEY.k1) >> 9) + 1) * 2.0**-24) for i in range(4)]
    want = [math.floor(np.float32(np.float32(np.float32(v) * alpha) + u[i])) for i, v in enumerate(x.tolist())]
    for q in _paths(x):
        assert q.delta == float(delta)
        assert q.level_tensor().tolist() == want
        st = q.stats or quant.level_stats(q.level_tensor())
        assert (st.nnz, st.max_abs) == (sum(k != 0 for k in want), max(abs(k) for k in want))


def test_uniforms_are_uniform_on_their_grid():
    n = 1 << 20
    u = qc.uniform_numpy(KEY, n).astype(np.float64)
    m = (u * 2**24 - 1) / 2  # the 23-bit cell index
    assert np.array_equal(m, np.round(m)) and m.min() >= 0 and m.max() < 2**23
    counts = np.bincount((u * 256).astype(int), minlength=256)
    chi2 = float(((counts - n / 256) ** 2 / (n / 256)).sum())  # 255 degrees of freedom: mean 255, sd 22.6
    assert abs(chi2 - 255) < Z * math.sqrt(2 * 255), chi2
    s = np.sort(u)
    ks = float(np.max(np.abs(s - np.arange(1, n + 1) / n)))
    assert ks < 1.95 / math.sqrt(n), ks  # Kolmogorov's 0.1 % point
    assert abs(u.mean() - 0.5) < Z * math.sqrt(1 / 12 / n)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def test_neighbours_calls_layers_iterations_and_seeds_are_independent():
    n = 1 << 18
    bound = Z / math.sqrt(n)
    u = qc.uniform_numpy(KEY, n).astype(np.float64)
    for lag in (1, 2, 8, 512):
        assert abs(_corr(u[:-lag], u[lag:])) < bound, lag
    pairs = np.bincount((u[:-1] * 16).astype(int) * 16 + (u[1:] * 16).astype(int), minlength=256)
    chi2 = float(((pairs - (n - 1) / 256) ** 2 / ((n - 1) / 256)).sum())  # neighbouring pairs over 16 × 16 cells
    assert abs(chi2 - 255) < Z * math.sqrt(2 * 255), chi2
    h = qc.site_hash("fc1")
    others = [qc.call_key(3, 8, h, 0), qc.call_key(3, 7, qc.site_hash("fc2"), 0), qc.call_key(3, 7, h, 1),
              qc.call_key(4, 7, h, 0)]  # next iteration, another layer, the next call of the layer, another seed
    assert len({(k.k0, k.k1) for k in others + [KEY]}) == 5
    for k in others:
        v = qc.uniform_numpy(k, n).astype(np.float64)
        assert abs(_corr(u, v)) < bound
        assert np.count_nonzero(u == v) < 5  # ~n / 2^23 equal by chance


def test_the_hash_avalanches_on_index_and_key_bits():
    """Flipping one input bit flips each of the 23 bits u is made of with probability ½ (within 5 σ)."""
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 1 << 32, 1 << 14, dtype=np.uint64).astype(np.uint32)
    k0, k1 = KEY.k0, KEY.k1
    base = qc.hash_words(idx.copy(), k0, k1) >> np.uint32(9)
    tol = Z * 0.5 / math.sqrt(idx.size)
    flips = [(idx ^ np.uint32(1 << b), k0, k1) for b in range(32)]
    flips += [(idx, k0 ^ (1 << b), k1) for b in range(0, 32, 5)] + [(idx, k0, k1 ^ (1 << b)) for b in range(0, 32, 5)]
    for i2, a, b in flips:
        diff = base ^ (qc.hash_words(i2.copy(), a, b) >> np.uint32(9))
        p = np.unpackbits(diff.view(np.uint8)).reshape(-1, 32).mean(axis=0)  # per bit (byte order does not matter)
        bits = p[np.unpackbits(np.array([(1 << 23) - 1], np.uint32).view(np.uint8)).astype(bool)]
        assert np.all(np.abs(bits - 0.5) < tol), (bits.min(), bits.max())


def test_nsd_is_unbiased_over_many_calls():
    """E[Δ·⌊x/Δ + u⌋] = x for u uniform; the 2^-23 grid of u biases it by at most Δ·2^-24."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1000, generator=g)
    calls = 2000
    acc = torch.zeros(1000, dtype=torch.float64)
    delta = None
    for c in range(calls):
        q = quant.nsd(x, s=4.0, generator=qc.call_key(0, c, 1, 0))
        acc += q.take_values().double()
        delta = q.delta
    err = (acc / calls - x.double()).numpy()
    assert np.max(np.abs(err)) < Z * delta / (2 * math.sqrt(calls)) + delta * 2.0**-24
    assert abs(err.mean()) < Z * delta / (2 * math.sqrt(calls * 1000))


def test_nan_inf_raise_and_zero_or_denormal_steps_give_zero_levels():
    for bad in (math.nan, math.inf):
        x = torch.randn(100)
        x[3] = bad
        for f in (qc.nsd_numpy, qc.nsd_torch) + ((qc.nsd_kernel,) if KERNEL else ()):
            with pytest.raises(NonFiniteError, match="1 of 100 elements are NaN/Inf"):
                f(x, s=4.0, key=KEY)
    for x in (torch.zeros(50), torch.full((50,), 1e-44)):
        for q in _paths(x):
            assert q.delta == 0.0 and not q.level_tensor().any()


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3)
        self.fc1 = nn.Linear(8 * 10 * 10, 300)
        self.fc2 = nn.Linear(300, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.fc1(F.relu(self.conv(x)).flatten(1))))


def _run(tmp, monkeypatch, path: str, seed: int = 3, rng: str = "counter", accumulate: int = 1):
    monkeypatch.setenv(quant.QUANT_PATH_ENV, path)
    torch.manual_seed(0)
    net = _Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    out = tmp / f"{path}-{seed}-{rng}-{accumulate}"
    with capture(net, s=4.0, seed=seed, out=out, sample_every=2, dither_rng=rng):
        for _ in range(4):
            for _ in range(accumulate):
                x, y = torch.randn(16, 1, 12, 12), torch.randint(0, 10, (16,))
                F.cross_entropy(net(x), y).backward()
            opt.step()
            opt.zero_grad()
    return load(out), [p.detach().clone() for p in net.parameters()]


def _same(a, b) -> bool:
    (ta, pa), (tb, pb) = a, b
    if not all(torch.equal(x, y) for x, y in zip(pa, pb, strict=True)):
        return False
    for ia, ib in zip(ta.iterations, tb.iterations, strict=True):
        for name, sa in ia.layers.items():
            sb = ib.layers[name]
            if (sa.density, sa.max_bits, list(sa.hist), sa.delta) != (sb.density, sb.max_bits, list(sb.hist), sb.delta):
                return False
    return all(np.array_equal(sa.dz_levels, tb.sample(it)[name].dz_levels)
               for it in (0, 2) for name, sa in ta.sample(it).items())


def test_a_capture_is_the_same_on_every_path_deterministic_at_a_seed_and_recorded(tmp_path, monkeypatch):
    auto = _run(tmp_path, monkeypatch, "auto")
    assert auto[0].meta.dither_rng == "counter" and auto[0].meta["dither_rng"] == "counter"
    assert _same(auto, _run(tmp_path, monkeypatch, "numpy"))
    assert _same(auto, _run(tmp_path, monkeypatch, "torch"))  # the device path, pinned on CPU
    assert not _same(auto, _run(tmp_path, monkeypatch, "auto", seed=4))
    old = _run(tmp_path, monkeypatch, "auto", rng="sfc64")
    assert old[0].meta.dither_rng == "sfc64" and not _same(auto, old)
    assert _same(old, _run(tmp_path, monkeypatch, "numpy", rng="sfc64"))  # the old stream, kernel = numpy


def test_accumulated_micro_batches_draw_fresh_keys(tmp_path, monkeypatch):
    """Two forward+backward passes in one iteration: the second call of a site gets ordinal 1, not the same u."""
    cap = capture(_Net(), s=4.0, seed=3)
    calls = []
    from hwsim.capture.records import Call, Site

    for it, name in ((0, "fc1"), (0, "fc1"), (0, "fc2"), (1, "fc1"), (0, "fc1")):  # the last: a late backward
        calls.append(cap.dither.generator_for(torch.zeros(1), Call(site=Site(name=name), iteration=it, gemm=None,
                                                                     geometry=None, keep=1, dither=True)))
    assert len(set(calls)) == 5
    assert calls[4] == qc.call_key(3, 0, qc.site_hash("fc1"), 2)
    assert calls[0] == qc.call_key(3, 0, qc.site_hash("fc1"), 0) and calls[1] == qc.call_key(3, 0, qc.site_hash("fc1"), 1)
    assert _same(_run(tmp_path, monkeypatch, "auto", accumulate=2), _run(tmp_path, monkeypatch, "numpy", accumulate=2))


def test_trace_meta_reads_dither_rng_absent_as_sfc64_and_rejects_others():
    assert records.DITHER_RNGS == capture_config.DITHER_RNGS
    assert records.TraceMeta.from_json({}, file="m.json").dither_rng == "sfc64"
    assert records.TraceMeta.from_json({"dither_rng": "counter"}, file="m.json").dither_rng == "counter"
    with pytest.raises(TraceError, match=r"^m.json: field 'meta.dither_rng': 'mt' is not allowed; allowed: counter, "
                                         r"sfc64 \(absent: sfc64\)$"):
        records.TraceMeta.from_json({"dither_rng": "mt"}, file="m.json")


def test_hwsim_trace_help_and_a_bad_flag_name_the_streams():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), ".") if p)}
    out = subprocess.run([sys.executable, "-m", "hwsim", "trace", "--help"], capture_output=True, text=True, env=env,
                         check=True).stdout
    assert "--dither-rng {counter,sfc64}" in " ".join(out.split())
    bad = subprocess.run([sys.executable, "-m", "hwsim", "trace", "--dither-rng", "mt"], capture_output=True,
                         text=True, env=env)
    assert bad.returncode == 2 and "argument --dither-rng: invalid choice: 'mt'" in bad.stderr
    json.dumps(capture_config.CaptureConfig().meta())  # the meta field is JSON


@pytest.mark.skipif(not KERNEL, reason="the NSD kernel is not built here (no C compiler)")
def test_the_counter_kernel_rebuilds_unkept_levels_exactly_and_zero_for_a_zero_step():
    # unsampled iterations keep only δ̃z: the levels are rebuilt from it (quant_compiled.rebuild_levels, shared with
    # the sfc64 kernel) and must equal the numpy path's; an all-zero δz has Δ = 0 and rebuilds to zeros, not NaN
    g = torch.Generator().manual_seed(11)
    dz = torch.randn(3, 257, generator=g) * 1e-3
    q = qc.nsd_kernel(dz, s=0.5, key=KEY, keep_levels=False)
    assert q.levels is None and q.make_levels is not None
    ref = qc.nsd_numpy(dz, s=0.5, key=KEY)
    assert q.delta == ref.delta and torch.equal(q.level_tensor(), ref.levels)
    z = qc.nsd_kernel(torch.zeros(4, 64), s=2.0, key=KEY, keep_levels=False)
    assert z.delta == 0.0 and torch.equal(z.level_tensor(), torch.zeros(4, 64))
