"""Where a captured training step's extra time goes, measured inside the step (CPU, one thread).

``bench_capture.py`` gives the ratios of issue 21 item 4; this script splits the dither's extra time per step
into parts, each measured in the same rounds as plain training (configurations interleaved, medians over rounds,
CPU time of the training thread):

- **mechanism**: capture with every handler a no-op — the ``TorchFunctionMode`` dispatching each op of the
  forward to Python, the module hooks, the iteration boundaries; no GEMM is described, named, counted or handed
  over (``intercept`` minus this is the interception's own book-keeping);
- **interception**: ``bench_capture.py``'s ``intercept`` configuration (the quantizer replaced by the identity);
- **dither**: the default capture (``method="dither"``, the compiled counter-based NSD where it is built), with
  the compiled calls timed where they run: the NSD kernel (σ's read and the quantizing read of every dithered δz)
  and the int8-view counts of the undithered attention products. The rest of dither − interception is the
  quantizer's Python around them (keys, dispatch, results, statistics records, noise sums).

The compiled calls are timed by wrapping them (~1 µs a call added, a few per step). The last line says what a
≤ 1.15× target leaves for the Python book-keeping once the mechanism and the compiled passes are paid.

    python benchmarks/capture_breakdown.py [--model gpt_char] [--rounds 5] [--steps 40]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_capture  # noqa: E402  (a sibling script: its model set-up, step loop and identity quantizer)

from hwsim.capture import intercept, nongemm, quant_compiled, quant_counter  # noqa: E402
from hwsim.capture.session import capture  # noqa: E402

SIZES = {"lenet5": (64, 28, 1), "resnet18_cifar": (32, 32, 3), "gpt_char": (64, 32, 3)}  # batch, size, channels


@contextlib.contextmanager
def _quiet_capture_log() -> Iterator[None]:
    """The mechanism-only capture records nothing by design: its "0 iterations recorded" goes to the capture's
    logger as well as to ``warnings``, so that logger is held at ERROR meanwhile (a user reading the output would
    take it for a failed run)."""
    logger = logging.getLogger("hwsim.capture")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _mechanism_only() -> Iterator[None]:
    """Captures opened inside see every op but do nothing with it (benchmark only)."""
    saved = intercept.Interceptor._on_gemm, nongemm.NonGemmTally.on_op, nongemm.NonGemmTally.sdpa

    def run(self: Any, func: Callable, handler: Any, args: tuple, kwargs: dict, *, label: str | None = None) -> Any:
        return func(*args, **kwargs)

    intercept.Interceptor._on_gemm = run  # type: ignore[method-assign]
    nongemm.NonGemmTally.on_op = nongemm.NonGemmTally.sdpa = lambda self, *a: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        intercept.Interceptor._on_gemm, nongemm.NonGemmTally.on_op, nongemm.NonGemmTally.sdpa = saved


class _Timed:
    """A stand-in for a compiled module whose named functions add their CPU time to ``spent``."""

    def __init__(self, ext: Any, names: tuple[str, ...]) -> None:
        self._ext, self.spent = ext, dict.fromkeys(names, 0.0)
        for n in names:
            setattr(self, n, self._wrap(n, getattr(ext, n)))

    def _wrap(self, name: str, f: Callable) -> Callable:
        def timed(*a: Any) -> Any:
            t = time.thread_time()
            try:
                return f(*a)
            finally:
                self.spent[name] += time.thread_time() - t
        return timed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ext, name)


@contextlib.contextmanager
def _timed_kernels() -> Iterator[tuple[_Timed, _Timed]]:
    nsd, view = _Timed(quant_counter._ext, ("nsd_ctr",)), _Timed(quant_compiled._ext, ("view_stats",))
    saved = quant_counter._ext, quant_compiled._ext
    quant_counter._ext, quant_compiled._ext = nsd, view
    try:
        yield nsd, view
    finally:
        quant_counter._ext, quant_compiled._ext = saved


def breakdown(name: str, *, rounds: int, steps: int) -> dict[str, float]:
    """Median ms per step over ``rounds`` of: plain, mechanism, interception, dither and its compiled parts."""
    batch, size, channels = SIZES[name]
    torch.manual_seed(0)
    if bench_capture.KIND[name] == "text":
        classes = 128
        x, y = torch.randint(0, classes, (batch, size)), torch.randint(0, classes, (batch, size))
    else:
        classes = 10
        x, y = torch.randn(batch, channels, size, size), torch.randint(0, classes, (batch,))
    model = bench_capture.build_model(name, in_channels=channels, num_classes=classes, image_size=size)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def run(n: int) -> float:
        return 1e3 * bench_capture._steps(model, opt, x, y, n)[0]

    run(3)
    got: dict[str, list[float]] = {k: [] for k in ("plain", "mechanism", "interception", "dither", "nsd", "view")}
    for r in range(rounds):
        got["plain"].append(run(steps))
        with warnings.catch_warnings(), _mechanism_only(), _quiet_capture_log():
            warnings.simplefilter("ignore")  # "0 iterations recorded": nothing is, by design
            with capture(model, method="dither", s=4.0, seed=r):
                run(2)
                got["mechanism"].append(run(steps))
        with bench_capture._interception_only(), capture(model, method="dither", s=4.0, seed=r):
            run(2)
            got["interception"].append(run(steps))
        with capture(model, method="dither", s=4.0, seed=r):
            run(2)
            with _timed_kernels() as (nsd, view):
                got["dither"].append(run(steps))
        got["nsd"].append(1e3 * nsd.spent["nsd_ctr"] / steps)
        got["view"].append(1e3 * view.spent["view_stats"] / steps)
    return {k: statistics.median(v) for k, v in got.items()}


def report(name: str, m: dict[str, float], target: float = 1.15) -> list[str]:
    """The table's lines: each part in ms per step and as a share of the plain step."""
    p = m["plain"]
    python = m["dither"] - m["interception"] - m["nsd"] - m["view"]
    rows = [("plain training step", p),
            ("mechanism (mode dispatch, module hooks)", m["mechanism"] - p),
            ("interception book-keeping", m["interception"] - m["mechanism"]),
            ("compiled NSD kernel (σ read + quantizing read)", m["nsd"]),
            ("compiled int8-view counts (undithered products)", m["view"]),
            ("quantizer's Python (keys, results, records, noise sums)", python)]
    out = [f"{name}: {p:.2f} ms per plain step; dither/plain {m['dither'] / p:.3f}×, "
           f"interception/plain {m['interception'] / p:.3f}×, mechanism/plain {m['mechanism'] / p:.3f}×"]
    out += [f"  {label:56s} {v:7.2f} ms  {100 * v / p:6.1f} %" for label, v in rows[1:]]
    floor = m["mechanism"] - p + m["nsd"] + m["view"]
    left = target * p - p - floor
    out.append(f"  mechanism + compiled passes = {1 + floor / p:.3f}×: a {target}× target leaves {left:.2f} ms "
               f"({100 * left / p:.1f} %) for the book-keeping, which now takes "
               f"{m['interception'] - m['mechanism'] + python:.2f} ms")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=sorted(SIZES), default="gpt_char")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=40, help="training steps per configuration and round")
    args = ap.parse_args()
    if args.rounds < 1 or args.steps < 1:
        ap.error("--rounds and --steps must be at least 1")
    if not quant_compiled.available() or quant_counter._ext is None:
        sys.exit("capture_breakdown: the compiled NSD kernel is not built (pip install -e . builds it)")
    torch.set_num_threads(1)
    load0 = os.getloadavg()[0]
    m = breakdown(args.model, rounds=args.rounds, steps=args.steps)
    print(f"torch {torch.__version__}, 1 thread, {args.rounds} rounds × {args.steps} steps, "
          f"1-minute load {load0:.2f} → {os.getloadavg()[0]:.2f}")
    print("\n".join(report(args.model, m)))


if __name__ == "__main__":
    main()
