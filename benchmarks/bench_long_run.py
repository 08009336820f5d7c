"""Long captured runs: does recording stay O(1) per step (trace format v3, ``iterations.jsonl``)?

Trains a small synthetic MLP of ``--layers`` Linear layers (width 32, batch 16: fast steps, so the
writer's cost shows) for ``--iterations`` steps under ``capture(..., out=dir)`` and prints

- the mean step time (wall, and CPU of the training thread) of the first and of the last
  ``--window`` steps, and their ratio (target: within 10 %: the manifest is no longer rewritten
  whole with every iteration inside);
- the growth of the peak RSS from the end of the first window to the end of the run (the writer
  keeps no iteration in memory);
- the sizes of ``manifest.json`` and ``iterations.jsonl`` at the end.

It runs on any hwsim: against an older checkout (format v2, ``PYTHONPATH=/path/to/old``) it gives
the "before" numbers (``--stats-every`` is then not available).

    python benchmarks/bench_long_run.py [--iterations 20000] [--layers 20] [--stats-every 1]
                                        [--sample-every 500] [--window 1000] [--threads 1]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hwsim.capture.session import capture


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _model(layers: int, width: int) -> nn.Module:
    mods: list[nn.Module] = []
    for i in range(layers):
        mods.append(nn.Linear(width, width if i < layers - 1 else 10))
        if i < layers - 1:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


def run(*, iterations: int, layers: int, stats_every: int, sample_every: int, window: int, out: Path,
        width: int = 32, batch: int = 16, seed: int = 0) -> dict[str, float]:
    torch.manual_seed(seed)
    net = _model(layers, width)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, width)
    y = torch.randint(0, 10, (batch,))
    kw = {"stats_every": stats_every} if stats_every != 1 else {}  # older hwsim: no stats_every
    wall: list[float] = []
    cpu: list[float] = []
    rss_after_first = 0.0
    with capture(net, method="dither", s=2.0, out=out, sample_every=sample_every, seed=seed, **kw) as cap:
        for i in range(iterations):
            w0, c0 = time.perf_counter(), time.thread_time()
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            cap.step(loss=loss.item(), epoch=0)
            wall.append(time.perf_counter() - w0)
            cpu.append(time.thread_time() - c0)
            if i == window - 1:
                rss_after_first = _rss_mb()
    rss_end = _rss_mb()
    w = min(window, iterations // 2)
    first_w, last_w = statistics.fmean(wall[:w]), statistics.fmean(wall[-w:])
    first_c, last_c = statistics.fmean(cpu[:w]), statistics.fmean(cpu[-w:])
    log = out / "iterations.jsonl"
    return {"first_wall_ms": 1e3 * first_w, "last_wall_ms": 1e3 * last_w, "wall_ratio": last_w / first_w,
            "first_cpu_ms": 1e3 * first_c, "last_cpu_ms": 1e3 * last_c, "cpu_ratio": last_c / first_c,
            "median_first_ms": 1e3 * statistics.median(wall[:w]), "median_last_ms": 1e3 * statistics.median(wall[-w:]),
            "rss_after_first_mb": rss_after_first, "rss_end_mb": rss_end, "rss_growth_mb": rss_end - rss_after_first,
            "manifest_mb": (out / "manifest.json").stat().st_size / 1e6,
            "iteration_log_mb": log.stat().st_size / 1e6 if log.exists() else 0.0,
            "total_s": sum(wall)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=20_000)
    ap.add_argument("--layers", type=int, default=20)
    ap.add_argument("--stats-every", type=int, default=1)
    ap.add_argument("--sample-every", type=int, default=500)
    ap.add_argument("--window", type=int, default=1000, help="steps averaged at the start and at the end")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a shared box)")
    ap.add_argument("--out", type=Path, default=None, help="trace directory (default: a temporary one)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "t"
        r = run(iterations=args.iterations, layers=args.layers, stats_every=args.stats_every,
                sample_every=args.sample_every, window=args.window, out=out)
    w = min(args.window, args.iterations // 2)
    print(f"{args.iterations} iterations × {args.layers} layers, stats every {args.stats_every}, "
          f"operands every {args.sample_every}: {r['total_s']:.0f} s of steps")
    print(f"step time, first {w}: {r['first_wall_ms']:.3f} ms wall (median {r['median_first_ms']:.3f}), "
          f"{r['first_cpu_ms']:.3f} ms CPU")
    print(f"step time, last {w}:  {r['last_wall_ms']:.3f} ms wall (median {r['median_last_ms']:.3f}), "
          f"{r['last_cpu_ms']:.3f} ms CPU")
    print(f"last / first: {r['wall_ratio']:.3f} wall, {r['cpu_ratio']:.3f} CPU (target: within 10 %)")
    print(f"peak RSS: {r['rss_after_first_mb']:.0f} MB after the first {w} steps, {r['rss_end_mb']:.0f} MB at the end "
          f"(+{r['rss_growth_mb']:.1f} MB)")
    print(f"manifest.json {r['manifest_mb']:.3f} MB, iterations.jsonl {r['iteration_log_mb']:.2f} MB")


if __name__ == "__main__":
    main()
