"""Step-time cost of dithered backprop capture on CPU, and of the dither's random numbers.

Prints, for lenet5 and resnet18_cifar, the ratio of the mean training-step time under
``capture(method="dither")`` (statistics only) and under ``capture(..., out=dir,
sample_every=50)`` (statistics + operands written every 50 steps) to plain training.
Targets: ≤ 1.15× and ≤ 1.25×. Configurations are interleaved in rounds of ``sample_every``
steps so that load from other processes hits all of them alike; ratios are medians over rounds.

Then it compares ways of drawing the dither's uniforms (the known CPU cost of NSD) and prints
how many random bits each keeps: the bias of ⌊x/Δ + u⌋ is at most one grid step of u.

    python benchmarks/bench_capture.py [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from hwsim.models import build_model
from hwsim.trace.capture import capture

SAMPLE_EVERY = 50
CONFIGS = ("plain", "dither", "dither+record")


def _steps(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / n


def bench_model(name: str, *, batch: int, size: int, channels: int, rounds: int, steps: int,
                tmp: Path) -> dict[str, float]:
    """Median over rounds of (config step time / plain step time)."""
    torch.manual_seed(0)
    x = torch.randn(batch, channels, size, size)
    y = torch.randint(0, 10, (batch,))
    models = {c: build_model(name, in_channels=channels, num_classes=10, image_size=size) for c in CONFIGS}
    for m in models.values():
        m.load_state_dict(models["plain"].state_dict())
    opts = {c: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4) for c, m in models.items()}
    for c in CONFIGS:  # warm-up (allocator, kernels)
        _steps(models[c], opts[c], x, y, 3)
    ratios: dict[str, list[float]] = {"dither": [], "dither+record": []}
    times: dict[str, list[float]] = {c: [] for c in CONFIGS}
    for r in range(rounds):
        t: dict[str, float] = {}
        t["plain"] = _steps(models["plain"], opts["plain"], x, y, steps)
        with capture(models["dither"], method="dither", s=4.0, seed=r):
            t["dither"] = _steps(models["dither"], opts["dither"], x, y, steps)
        with capture(models["dither+record"], method="dither", s=4.0, seed=r, out=tmp / f"{name}-{r}",
                     sample_every=SAMPLE_EVERY, overwrite=True):
            t["dither+record"] = _steps(models["dither+record"], opts["dither+record"], x, y, steps)
        for c in CONFIGS:
            times[c].append(t[c])
        for c in ratios:
            ratios[c].append(t[c] / t["plain"])
    out = {c: statistics.median(v) for c, v in ratios.items()}
    out["plain_ms"] = 1e3 * statistics.median(times["plain"])
    return out


# ----------------------------------------------------------------------------- RNG alternatives


def _ns_per_elem(fn: Callable[[], object], n: int, reps: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps / n * 1e9


def bench_rng(n: int = 1_000_000, reps: int = 30) -> list[tuple[str, float, str]]:
    """ns/element of uniform draws and of the whole NSD level computation, with the u resolution kept."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n)
    buf = torch.empty(n)
    inv = 1.0 / 4.0

    def bits64() -> torch.Tensor:  # one 64-bit draw → two 32-bit uniforms
        r = torch.empty((n + 1) // 2, dtype=torch.int64).random_(-(2**63), 2**63 - 1, generator=g)
        return r.view(torch.int32)[:n].to(torch.float32)

    rows = [
        ("torch.rand f32 (global generator)", lambda: torch.rand(n), "24 bits"),
        ("torch.rand_like f32", lambda: torch.rand_like(x), "24 bits"),
        ("torch.rand f32, own Generator", lambda: torch.rand(n, generator=g), "24 bits"),
        ("uniform_ into reused buffer", lambda: buf.uniform_(generator=g), "24 bits"),
        ("torch.rand f16", lambda: torch.rand(n, dtype=torch.float16, generator=g), "11 bits: biased ≤ 2^-11 Δ"),
        ("torch.rand bf16", lambda: torch.rand(n, dtype=torch.bfloat16, generator=g), "8 bits: biased ≤ 2^-8 Δ"),
        ("torch.rand f64", lambda: torch.rand(n, dtype=torch.float64, generator=g), "53 bits"),
        ("int32 random_ → f32", lambda: torch.empty(n, dtype=torch.int32).random_(generator=g).float(), "31 bits"),
        ("int64 random_ split in 2×int32 → f32", bits64, "32 bits"),
        ("NSD levels, f32 rand (hwsim)", lambda: torch.rand(n, generator=g).add_(x, alpha=inv).floor_(), "24 bits"),
        ("NSD levels, int64 bits", lambda: bits64().mul_(2**-32).add_(x, alpha=inv).add_(0.5).floor_(), "32 bits"),
        ("NSD levels, f16 rand", lambda: torch.rand(n, dtype=torch.float16, generator=g).float()
         .add_(x, alpha=inv).floor_(), "11 bits: biased"),
    ]
    return [(nm, _ns_per_elem(fn, n, reps), note) for nm, fn, note in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer/smaller steps (smoke test, numbers not meaningful)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    steps = 10 if args.quick else SAMPLE_EVERY
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {steps} steps per round, "
          f"{args.rounds} rounds, s=4, sample_every={SAMPLE_EVERY}")
    print(f"{'model':16s} {'batch':>5s} {'plain ms/step':>14s} {'dither/plain':>13s} {'dither+record/plain':>20s}")
    with tempfile.TemporaryDirectory() as d:
        for name, batch, size in (("lenet5", 64, 28), ("resnet18_cifar", 8 if args.quick else 32, 32)):
            r = bench_model(name, batch=batch, size=size, channels=1 if name == "lenet5" else 3,
                            rounds=args.rounds, steps=steps, tmp=Path(d))
            print(f"{name:16s} {batch:5d} {r['plain_ms']:14.1f} {r['dither']:12.3f}× {r['dither+record']:19.3f}×",
                  flush=True)
    print("\nRNG for the dither (1M float32 elements, ns/element; lower is faster):")
    for nm, ns, note in bench_rng(reps=5 if args.quick else 30):
        print(f"  {nm:40s} {ns:6.2f}   u resolution: {note}")


if __name__ == "__main__":
    main()
