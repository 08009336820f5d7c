"""Step-time cost of dithered backprop capture on CPU, and of the dither's random numbers.

Prints, for lenet5, resnet18_cifar and the zoo's character-level transformer gpt_char (batch 64 × 32 tokens,
HF-style Conv1D projections, explicit attention products), the ratio of the mean training-step time under
``capture(method="dither")`` (statistics only) and under ``capture(..., out=dir,
sample_every=50)`` (statistics + operands written every 50 steps) to plain training.
Targets: ≤ 1.15× and ≤ 1.25×. A third ratio, ``intercept``, is the capture with the quantizer replaced by
the identity (δz unchanged, fixed statistics, no noise sums): what the interception alone costs — the
module hooks, the ``TorchFunctionMode``, the non-GEMM tally, the autograd hand-over and the records. Configurations are interleaved in rounds of ``sample_every``
steps so that load from other processes hits all of them alike; ratios are medians over rounds.
``dither`` and ``dither+record`` use the compiled NSD kernel where it is built
(:mod:`hwsim.capture.quant_compiled`); ``--fallback`` adds ``dither/numpy`` and ``dither+record/numpy``, the same
captures on the numpy path (``HWSIM_QUANT_PATH=numpy``: the same traces), in the same rounds. The dither draws from
capture's default stream (``dither_rng="counter"``, :mod:`hwsim.capture.quant_counter`); ``--sfc64`` adds
``dither/sfc64`` and ``dither+record/sfc64``, the same captures on the older SFC64 stream (its compiled kernel where
built), in the same rounds: counter against sfc64 measured side by side.

Times are CPU time of the training thread (robust when other processes share the cores), with
wall-clock ratios in parentheses. Then it compares ways of drawing the dither's uniforms (the
known CPU cost of NSD): the bias of ⌊x/Δ + u⌋ is at most one grid step of u.

``--device cuda`` (machines with a GPU) runs the same comparison with model, data and δz on the
GPU, where capture quantizes in torch on the device (:mod:`hwsim.capture.quant_device`: one small
host transfer per layer and iteration); CPU time then means little, so read the wall-clock
ratios, and the dither rows time the device quantizer (wall, synchronized). A device this machine
does not have is a clear error naming ``--device``.

    python benchmarks/bench_capture.py [--rounds 3] [--quick] [--device cpu|cuda] [--no-rng] [--fallback] [--sfc64]
                                       [--json FILE]

``--json FILE`` writes the ratios with the command, the date and the 1-minute load average before and after
(``benchmarks/results/capture_overhead.json`` is rendered into the README by ``scripts/readme_tables.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hwsim.capture import quant, quant_compiled, quant_counter, quant_device, session
from hwsim.capture.quantized import LevelStats, Quantized
from hwsim.capture.session import capture
from hwsim.capture.train import resolve_device
from hwsim.capture.zoo.models import KIND, build_model

SAMPLE_EVERY = 50
CONFIGS = ("plain", "intercept", "dither", "dither+record")
FALLBACK = ("dither/numpy", "dither+record/numpy")  # --fallback: the numpy path beside the compiled kernel
SFC64 = ("dither/sfc64", "dither+record/sfc64")  # --sfc64: the older stream (dither_rng="sfc64") beside the counter
TARGETS = {"dither": 1.15, "dither+record": 1.25}


def _identity(g: torch.Tensor, **_: object) -> Quantized:
    """The ``intercept`` configuration's quantizer: δz unchanged, statistics of an all-zero level tensor."""
    return Quantized(values=g, levels=g, delta=1.0, stats=LevelStats(numel=g.numel(), nnz=0, max_abs=0, hist=[0] * 15))


@contextlib.contextmanager
def _quant_path(path: str | None) -> Iterator[None]:
    """``HWSIM_QUANT_PATH`` while a capture is opened (read when the capture starts); None leaves it alone."""
    saved = os.environ.get(quant.QUANT_PATH_ENV)
    if path is not None:
        os.environ[quant.QUANT_PATH_ENV] = path
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(quant.QUANT_PATH_ENV, None)
        else:
            os.environ[quant.QUANT_PATH_ENV] = saved


@contextlib.contextmanager
def _interception_only() -> Iterator[None]:
    """Capture with the quantizer and the noise sums replaced (benchmark only): what interception alone costs."""
    saved = quant.quantize, quant.passthrough, session.noise_sums
    quant.quantize = quant.passthrough = _identity  # type: ignore[assignment]
    session.noise_sums = lambda g, q, st=None: torch.zeros(3, dtype=torch.float64)  # type: ignore[assignment]
    try:
        yield
    finally:
        quant.quantize, quant.passthrough, session.noise_sums = saved


def _sync(device: torch.device) -> None:
    """Wait for queued GPU work (timings of asynchronous devices would stop too early)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _steps(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
           n: int) -> tuple[float, float]:
    """Mean (CPU seconds of this thread, wall seconds) per training step."""
    _sync(x.device)
    c0, w0 = time.thread_time(), time.perf_counter()
    for _ in range(n):
        out = model(x)
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(x.device)
    return (time.thread_time() - c0) / n, (time.perf_counter() - w0) / n


def bench_model(name: str, *, batch: int, size: int, channels: int, rounds: int, steps: int,
                tmp: Path, device: torch.device = torch.device("cpu"), fallback: bool = False,
                sfc64: bool = False) -> dict[str, float]:
    """Median over rounds of (config step time / plain step time), CPU time and wall time.

    A text model (``KIND`` "text") gets ``batch`` sequences of ``size`` tokens of a 128-symbol vocabulary.
    ``fallback``: also the :data:`FALLBACK` configurations (numpy path) in the same rounds; ``sfc64``: also the
    :data:`SFC64` ones (the older random stream)."""
    configs = CONFIGS + (FALLBACK if fallback else ()) + (SFC64 if sfc64 else ())
    torch.manual_seed(0)
    classes = 10
    if KIND[name] == "text":
        classes = 128
        x = torch.randint(0, classes, (batch, size)).to(device)
        y = torch.randint(0, classes, (batch, size)).to(device)
    else:
        x = torch.randn(batch, channels, size, size).to(device)
        y = torch.randint(0, classes, (batch,)).to(device)
    models = {c: build_model(name, in_channels=channels, num_classes=classes, image_size=size) for c in configs}
    for m in models.values():
        m.load_state_dict(models["plain"].state_dict())
        m.to(device)
    opts = {c: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4) for c, m in models.items()}
    for c in configs:  # warm-up (allocator, kernels)
        _steps(models[c], opts[c], x, y, 3)
    ratios: dict[str, list[float]] = {f"{c}/{k}": [] for c in configs[1:] for k in ("cpu", "wall")}
    plain: list[float] = []
    for r in range(rounds):
        t = {"plain": _steps(models["plain"], opts["plain"], x, y, steps)}
        with _interception_only(), capture(models["intercept"], method="dither", s=4.0, seed=r):
            t["intercept"] = _steps(models["intercept"], opts["intercept"], x, y, steps)
        for c in configs[2:]:
            rng = "sfc64" if c in SFC64 else "counter"
            with _quant_path("numpy" if c in FALLBACK else None):
                cap = (capture(models[c], method="dither", s=4.0, seed=r, dither_rng=rng)
                       if not c.startswith("dither+record") else
                       capture(models[c], method="dither", s=4.0, seed=r, out=tmp / f"{name}-{r}",
                               sample_every=SAMPLE_EVERY, overwrite=True, dither_rng=rng))
            with cap:
                t[c] = _steps(models[c], opts[c], x, y, steps)
        plain.append(t["plain"][0])
        for c in configs[1:]:
            ratios[f"{c}/cpu"].append(t[c][0] / t["plain"][0])
            ratios[f"{c}/wall"].append(t[c][1] / t["plain"][1])
    out = {k: statistics.median(v) for k, v in ratios.items()}
    out["plain_ms"] = 1e3 * statistics.median(plain)
    return out


# ----------------------------------------------------------------------------- RNG alternatives


def _ns_per_elem(fn: Callable[[], object], n: int, reps: int,
                 device: torch.device = torch.device("cpu")) -> float:
    """Best of 5 runs of ``reps`` calls, ns per element: CPU time of this thread (wall, synchronized, on a GPU)."""
    clock = time.thread_time if device.type == "cpu" else time.perf_counter
    fn()
    best = float("inf")
    for _ in range(5):
        _sync(device)
        t0 = clock()
        for _ in range(reps):
            fn()
        _sync(device)
        best = min(best, (clock() - t0) / reps / n * 1e9)
    return best


def bench_device_quant(device: torch.device, n: int = 1_000_000, reps: int = 20) -> list[tuple[str, float, str]]:
    """ns/element of the torch-on-the-device quantizer (what capture runs for δz on ``device``)."""
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(n, device=device)
    rows = [
        ("torch.rand f32 on the device", lambda: torch.rand(n, generator=g, device=device), "i.i.d."),
        ("quant_device.uniform (2^23 midpoints)", lambda: quant_device.uniform(x, generator=g),
         "i.i.d., cell midpoints: mean exactly ½"),
        ("whole quant_device.nsd (+ level stats, 1 sync)", lambda: quant_device.nsd(x, s=4.0, generator=g), ""),
        ("whole quant_device.nsd, bf16 δz", lambda: quant_device.nsd(x.bfloat16(), s=4.0, generator=g),
         "in float32, values cast back"),
    ]
    return [(nm, _ns_per_elem(fn, n, reps, device), note) for nm, fn, note in rows]


def _capture_nsd(x: torch.Tensor, g: quant.Rng, *, compiled: bool) -> torch.Tensor:
    """What capture's backward hook runs for one dithered δz: NSD, level statistics, noise sums, δ̃z."""
    q = quant.nsd(x, s=4.0, generator=g, lazy_values=True, compiled=compiled, keep_levels=False)
    st = q.stats if q.stats is not None else quant.level_stats(q.levels, bound=q.bound)
    session.noise_sums(x, q, st)
    return q.take_values()


def bench_rng(n: int = 1_000_000, reps: int = 20) -> list[tuple[str, float, str]]:
    """ns/element of uniform draws and of the whole NSD level computation, with what keeps them unbiased."""
    g = torch.Generator().manual_seed(0)
    pcg = np.random.default_rng(0)
    sfc = quant.new_generator(0)
    key = quant_counter.call_key(0, 0, quant_counter.site_hash("fc1"), 0)
    x = torch.randn(n)
    inv = 1.0 / 4.0

    def bits64() -> torch.Tensor:  # one torch 64-bit draw → two 32-bit uniforms
        r = torch.empty((n + 1) // 2, dtype=torch.int64).random_(-(2**63), 2**63 - 1, generator=g)
        return r.view(torch.int32)[:n].to(torch.float32).mul_(2**-32).add_(0.5)

    iid = "i.i.d., unbiased to 2^-24"
    rows = [
        ("torch.rand f32 (global generator)", lambda: torch.rand(n), iid),
        ("torch.rand_like f32", lambda: torch.rand_like(x), iid),
        ("torch.rand f32, own Generator", lambda: torch.rand(n, generator=g), iid),
        ("torch.rand f16", lambda: torch.rand(n, dtype=torch.float16, generator=g), "11-bit grid: bias up to 2^-11 Δ"),
        ("torch.rand bf16", lambda: torch.rand(n, dtype=torch.bfloat16, generator=g), "8-bit grid: bias up to 2^-8 Δ"),
        ("torch.rand f64", lambda: torch.rand(n, dtype=torch.float64, generator=g), "i.i.d., 53 bits"),
        ("torch int32 random_ → f32", lambda: torch.empty(n, dtype=torch.int32).random_(generator=g).float(),
         "31 bits (needs 2 more ops to scale)"),
        ("torch int64 random_ → 2× f32", bits64, "i.i.d., can round to 1.0 (p≈2^-26)"),
        ("numpy PCG64 random(float32)", lambda: pcg.random(n, dtype=np.float32), iid),
        ("numpy SFC64 random(float32)", lambda: sfc.random(n, dtype=np.float32), iid),
        ("hwsim uniform(): SFC64 raw → mantissa", lambda: quant.uniform(x, generator=sfc),
         "i.i.d., cell midpoints: mean exactly ½"),
        ("NSD levels, torch.rand", lambda: torch.rand(n, generator=g).add_(x, alpha=inv).floor_(), iid),
        ("NSD levels, hwsim uniform()", lambda: quant.uniform(x, generator=sfc).add_(x, alpha=inv).floor_(), iid),
        ("whole quant.nsd, numpy path (std, levels, values)", lambda: quant.nsd(x, s=4.0, generator=sfc,
                                                                              compiled=False), ""),
        ("quant.level_stats (density, bits, hist)", lambda: quant.level_stats(quant.nsd(x, s=4.0).levels), ""),
        ("capture's NSD, numpy path (+ stats, noise, values)", lambda: _capture_nsd(x, sfc, compiled=False), ""),
        ("capture's NSD, compiled kernel (the same results)", lambda: _capture_nsd(x, sfc, compiled=True),
         "falls back to numpy when not built" if not quant_compiled.available() else "one C pass after the std"),
        ("device path on CPU: quant_device.nsd + stats", lambda: quant_device.nsd(x, s=4.0, generator=g),
         "what a GPU runs (HWSIM_QUANT_PATH=torch), sfc64"),
        ("counter dither: uniforms, numpy", lambda: quant_counter.uniform_numpy(key, n), "the same bits on every path"),
        ("counter dither: uniforms, torch", lambda: quant_counter.uniform_torch(key, n), "int64, masked to 32 bits"),
        ("counter: capture's NSD, numpy path", lambda: _capture_nsd(x, key, compiled=False), "σ included"),
        ("counter: capture's NSD, compiled kernel", lambda: _capture_nsd(x, key, compiled=True),
         "σ in its first read" if quant_compiled.available() else "falls back to numpy when not built"),
        ("counter: torch path on CPU (+ stats)", lambda: quant_counter.nsd_torch(x, s=4.0, key=key),
         "what a GPU runs"),
    ]
    return [(nm, _ns_per_elem(fn, n, reps), note) for nm, fn, note in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer/smaller steps (smoke test, numbers not meaningful)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", nargs="+", default=["lenet5", "resnet18_cifar", "gpt_char"])
    ap.add_argument("--resnet-batch", type=int, default=16)
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda / cuda:N on a machine with a GPU")
    ap.add_argument("--no-rng", action="store_true", help="skip the table of random-number sources")
    ap.add_argument("--fallback", action="store_true",
                    help="also time dither and dither+record on the numpy path (HWSIM_QUANT_PATH=numpy) in the same rounds")
    ap.add_argument("--sfc64", action="store_true",
                    help="also time dither and dither+record on the older SFC64 stream (dither_rng=sfc64) in the same rounds")
    ap.add_argument("--json", type=Path, help="also write the ratios, the command and the load to this file")
    args = ap.parse_args()
    try:
        device = resolve_device(args.device)
    except ValueError as e:
        ap.error(str(e))
    torch.set_num_threads(args.threads)
    steps = 10 if args.quick else SAMPLE_EVERY
    load0 = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {steps} steps per round, "
          f"{args.rounds} rounds, s=4, sample_every={SAMPLE_EVERY}, device {device}; 1-minute load {load0:.2f}")
    if device.type != "cpu":
        print("(on a GPU the CPU-time ratios count only the host's share: read the wall-clock ones)")
    configs = CONFIGS + (FALLBACK if args.fallback else ()) + (SFC64 if args.sfc64 else ())
    print(f"compiled NSD kernel: {'built, ' + quant_compiled.isa() if quant_compiled.available() else 'not built'}; "
          f"{quant.QUANT_PATH_ENV}={quant.quant_path_from_env()}")
    heads = [f"{c}/plain" for c in configs[1:]]
    print(f"{'model':16s} {'batch':>5s} {'plain CPU ms/step':>18s} " + " ".join(f"{h:>26s}" for h in heads))
    print(f"{'':16s} {'':5s} {'':18s} " + " ".join(f"{'CPU (wall)':>26s}" for _ in heads))
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for name, batch, size in (("lenet5", 64, 28), ("resnet18_cifar", 8 if args.quick else args.resnet_batch, 32),
                                  ("gpt_char", 64, 32)):
            if name not in args.models:
                continue
            r = bench_model(name, batch=batch, size=size, channels=1 if name == "lenet5" else 3,
                            rounds=args.rounds, steps=steps, tmp=Path(d), device=device, fallback=args.fallback,
                            sfc64=args.sfc64)
            cells = " ".join(f"{r[c + '/cpu']:.3f}× ({r[c + '/wall']:.3f}×)".rjust(26) for c in configs[1:])
            print(f"{name:16s} {batch:5d} {r['plain_ms']:18.1f} {cells}", flush=True)
            rows.append({"model": name, "batch": f"{batch} × {size} tokens" if KIND[name] == "text" else str(batch),
                         "plain_ms": round(r["plain_ms"], 2),
                         **{c: {k: round(r[f"{c}/{k}"], 4) for k in ("cpu", "wall")} for c in configs[1:]}})
    if args.json is not None:
        doc = {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
               "date": datetime.date.today().isoformat(), "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
               "device": str(device), "rounds": args.rounds, "steps": steps, "sample_every": SAMPLE_EVERY, "s": 4.0,
               "torch": torch.__version__, "load": [round(load0, 2), round(os.getloadavg()[0], 2)],
               "nsd_kernel": quant_compiled.isa() if quant.compiled_on() else "numpy path",
               "targets": TARGETS, "rows": rows}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {args.json}")
    if args.no_rng:
        return
    if device.type != "cpu":
        print(f"\nNSD on {device} (1M float32 elements, wall ns/element, synchronized, best of 5):")
        for nm, ns, note in bench_device_quant(device, reps=3 if args.quick else 20):
            print(f"  {nm:52s} {ns:6.2f}   {note}")
        return
    print("\nRandom numbers for the dither (1M float32 elements, CPU ns/element, best of 5; lower is faster):")
    for nm, ns, note in bench_rng(reps=3 if args.quick else 20):
        print(f"  {nm:52s} {ns:6.2f}   {note}")


if __name__ == "__main__":
    main()
