"""Capture overhead of the non-GEMM tally (issue 17 item 4): dithered-capture training steps with it on and off.

For each zoo model (default lenet5 on 28² digits-sized inputs, gpt_char at 64 × 32 tokens), one capture
(``method="dither"``, statistics only) trains on a fixed batch; rounds of 10 steps alternate the tally on
and off (``GemmMode.nongemm``), and the ratio of the median CPU time per step (training thread, one
torch thread) is printed. Everything else capture does runs in both.

    python benchmarks/bench_nongemm_tally.py [--rounds 24] [--models lenet5 gpt_char]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from hwsim.capture.session import capture
from hwsim.capture.zoo.models import KIND, build_model


def _model_and_batch(name: str) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    if KIND[name] == "text":
        m = build_model(name, in_channels=1, num_classes=128, image_size=32)
        return m, torch.randint(0, 128, (64, 32)), torch.randint(0, 128, (64, 32))
    m = build_model(name, in_channels=1, num_classes=10, image_size=28)
    return m, torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))


def measure(name: str, rounds: int, steps: int = 10) -> tuple[float, float]:
    """Median CPU seconds per step with the tally on and off."""
    torch.manual_seed(0)
    m, x, y = _model_and_batch(name)
    opt = torch.optim.SGD(m.parameters(), lr=0.01)
    times: dict[bool, list[float]] = {True: [], False: []}
    with capture(m, method="dither", s=4, seed=0) as cap:
        tally = cap._mode.nongemm
        for _ in range(rounds):
            for on in (True, False):
                cap._mode.nongemm = tally if on else None
                t0 = time.thread_time()
                for _ in range(steps):
                    out = m(x)
                    loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                times[on].append((time.thread_time() - t0) / steps)
        cap._mode.nongemm = tally
    warm = min(2, rounds - 1)
    return statistics.median(times[True][warm:]), statistics.median(times[False][warm:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=24)
    ap.add_argument("--models", nargs="+", default=["lenet5", "gpt_char"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name in args.models:
        on, off = measure(name, args.rounds)
        print(f"{name}: {on * 1e3:.2f} ms per step with the tally, {off * 1e3:.2f} ms without: {on / off:.3f}×")


if __name__ == "__main__":
    main()
