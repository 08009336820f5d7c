"""NSD's noise over depth, and what a per-layer s rule buys: the README's noise table (issue 20 item 5).

For a ResNet-18 (hwsim's ``resnet18_cifar``: 21 GEMMs, residual, BatchNorm) and a MobileNet-V2-style net (inverted
residuals, depthwise 3×3, ReLU6, BatchNorm; 20 GEMMs) on the embedded digits (8×8 upsampled to ``--image``):

1. **One step from the same weights** (initialisation, one batch of 64): ‖δW‖ of the first, middle and last GEMM
   with dither over plain backprop (mean over ``--seeds`` dither seeds) — the measured blow-up — beside the trace's
   own estimate (:func:`hwsim.trace.noise.compound_gain` at the first GEMM, from that step's noise statistics);
2. **Training** (``--epochs`` epochs, SGD momentum 0.9, lr 0.05 cosine, weight decay 5e-4, batch 64, seed 0): test
   accuracy and δ̃z density of plain backprop (``none``), dither at s = 4 for every layer, and dither with
   ``s_layers="depth"`` (s·(l+1)/L) and ``s_layers="budget:2"`` (s ≤ 4 per layer and iteration, steered so the
   estimated compound noise gain stays ≤ 2; :mod:`hwsim.capture.srule`).

Writes ``benchmarks/results/noise_table.json`` (``scripts/readme_tables.py`` renders the README table from it)::

    python benchmarks/noise_table.py [--epochs 4] [--image 8] [--seeds 3]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import hwsim
from hwsim.capture.zoo.data import load_dataset
from hwsim.capture.zoo.models import build_model
from hwsim.trace.noise import compound_gain

if str(Path(__file__).resolve().parent) not in sys.path:  # run by path from elsewhere
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from mobilenet_block import InvertedResidual  # noqa: E402  (shared with coverage_table.py)

OUT = Path(__file__).resolve().parent / "results" / "noise_table.json"
RULES = (("none", None, None), ("dither", 4.0, None), ("dither", 4.0, "depth"), ("dither", 4.0, "budget:2"))


class MobileNetV2ish(nn.Module):
    """Stem + 6 inverted residual blocks (16→24→32 channels) + linear head: 20 GEMMs."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(inplace=True))
        cfg = ((16, 16, 1), (16, 24, 2), (24, 24, 1), (24, 32, 2), (32, 32, 1), (32, 32, 1))
        self.blocks = nn.Sequential(*(InvertedResidual(a, b, 4, s) for a, b, s in cfg))
        self.head = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))


def make(name: str) -> nn.Module:
    torch.manual_seed(0)
    if name == "resnet18":
        return build_model("resnet18_cifar", in_channels=1, num_classes=10, image_size=8)
    return MobileNetV2ish(10)


def _weight_grads(model: nn.Module) -> list[float]:
    return [float(m.weight.grad.norm()) for m in model.modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.grad is not None]


def one_step(base: nn.Module, x: torch.Tensor, y: torch.Tensor, *, seeds: int, s_layers: str | None) -> dict:
    """‖δW‖ dither/plain of the first, middle and last GEMM from the same weights, and the trace's estimate."""
    def grads(**kw: object) -> tuple[list[float], hwsim.Capture]:
        m = copy.deepcopy(base)
        m.train()
        with hwsim.capture(m, **kw) as cap:  # type: ignore[arg-type]
            F.cross_entropy(m(x), y).backward()
            cap.step()
        return _weight_grads(m), cap

    plain, _ = grads(method="none")
    ratios, est = [], []
    for seed in range(seeds):
        g, cap = grads(method="dither", s=4.0, seed=seed, s_layers=s_layers)
        ratios.append([a / b for a, b in zip(g, plain, strict=True)])
        order = list(cap.last_stats)
        est.append(compound_gain(order, cap.last_stats)[order[0]])
    n = len(plain)
    mean = [sum(r[i] for r in ratios) / seeds for i in range(n)]
    return {"gemms": n, "first": mean[0], "middle": mean[n // 2], "last": mean[-1],
            "estimate_first": sum(est) / seeds}


def train(name: str, data, *, method: str, s: float | None, s_layers: str | None, epochs: int, image: int) -> dict:
    model = make(name)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    steps = epochs * math.ceil(data.size("train") / 64)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    gen = torch.Generator().manual_seed(0)
    dens, t0, diverged = [], time.perf_counter(), False
    with hwsim.capture(model, method=method, s=s, s_layers=s_layers, seed=0) as cap:
        for _ in range(epochs):
            model.train()
            for xb, yb in data.batches(batch_size=64, image_size=image, shuffle=True, generator=gen):
                opt.zero_grad()
                loss = F.cross_entropy(model(xb), yb)
                if not torch.isfinite(loss):
                    diverged = True
                    break
                loss.backward()
                opt.step()
                sched.step()
                cap.step(loss=float(loss))
                if cap.last_density is not None:
                    dens.append(cap.last_density)
            if diverged:
                break
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for xb, yb in data.batches(split="test", batch_size=256, image_size=image):
            correct += int((model(xb).argmax(1) == yb).sum())
            total += len(yb)
    return {"test_acc": None if diverged else correct / total, "diverged": diverged,
            "density": sum(dens[-20:]) / len(dens[-20:]) if dens else None, "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--image", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--models", nargs="+", default=["resnet18", "mobilenet"], choices=["resnet18", "mobilenet"])
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    warnings.simplefilter("ignore")  # the compound-noise warning is the point of the table, not news here
    torch.set_num_threads(2)
    data = load_dataset("digits")
    x, y = next(data.batches(batch_size=64, image_size=a.image))
    rows = []
    for name in a.models:
        base = make(name)
        for method, s, rule in RULES:
            row = {"model": name, "method": method, "s": s, "s_layers": rule}
            if method == "dither":
                row["step"] = one_step(base, x, y, seeds=a.seeds, s_layers=rule)
            row.update(train(name, data, method=method, s=s, s_layers=rule, epochs=a.epochs, image=a.image))
            print(json.dumps(row), file=sys.stderr)
            rows.append(row)
    args = [f"--epochs {a.epochs}", f"--image {a.image}", f"--seeds {a.seeds}", "--models " + " ".join(a.models)]
    doc = {"command": "python benchmarks/noise_table.py " + " ".join(args),  # --out is where, not what
           "epochs": a.epochs, "image": a.image, "seeds": a.seeds, "torch": torch.__version__, "rows": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(a.out)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
