"""The seed paper's Table 1 columns: accuracy and δz sparsity for four training methods.

Methods: baseline (plain backprop), dithered backprop (NSD on δz), 8-bit training (8-bit forward
weights/inputs, :mod:`hwsim.capture.int8`) and 8-bit + dithered. Sparsity is the paper's measure:
1 − mean δ̃z density over all layers and training iterations. Every cell is a real training run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from hwsim.capture.config import (
    DEFAULT_BATCH,
    DEFAULT_DATASETS,
    DEFAULT_DITHER_RNG,
    DEFAULT_LR,
    DEFAULT_S,
    check_dither_rng,
)
from hwsim.experiments.output import markdown_table, mean_std, pm, write_csv, write_json, write_text

METHODS: tuple[tuple[str, str, bool], ...] = (  # (column, δz method, int8 forward)
    ("baseline", "none", False), ("dithered", "dither", False), ("8-bit", "none", True),
    ("8-bit + dithered", "dither", True))

# Seed paper Table 1 (MNIST rows): acc %, sparsity % per column — for the side-by-side in the report.
PAPER = {"lenet5": (99.31, 2.05, 99.35, 97.52, 99.34, 2.09, 99.35, 97.18),
         "lenet300": (98.45, 47.48, 98.40, 94.92, 98.43, 48.61, 98.52, 94.85)}


@dataclass(frozen=True)
class Table1Config:
    """What to run; defaults: the MNIST models of Table 1 (+ the meProp MLP) on the embedded digits."""

    models: tuple[str, ...] = ("mlp500", "lenet300", "lenet5")
    dataset: str = DEFAULT_DATASETS["image"]
    data_dir: str | None = None
    s: float = DEFAULT_S
    epochs: int = 10
    batch_size: int = DEFAULT_BATCH
    lr: float = DEFAULT_LR
    seeds: tuple[int, ...] = (0,)
    dither_rng: str = DEFAULT_DITHER_RNG  # the dither's random stream (hwsim.capture.config.DITHER_RNGS)

    def __post_init__(self) -> None:
        check_dither_rng(self.dither_rng, "Table1Config.dither_rng")  # at construction, not at the first capture


@dataclass(frozen=True)
class Cell:
    """One training run: a model, a Table-1 column, a seed."""

    model: str
    column: str
    seed: int
    test_acc: float
    sparsity: float
    max_bits: int
    seconds: float


def run_all(config: Table1Config, *, progress: Callable[[str], None] | None = None) -> list[Cell]:
    from hwsim.capture.config import CaptureConfig, TrainConfig
    from hwsim.capture.train import train_and_capture

    cells = []
    for model in config.models:
        base = TrainConfig(model=model, dataset=config.dataset, data_dir=config.data_dir, epochs=config.epochs,
                           batch_size=config.batch_size, lr=config.lr,
                           capture=CaptureConfig(sample_every=0, dither_rng=config.dither_rng))
        for column, method, int8 in METHODS:
            for seed in config.seeds:
                t0 = time.perf_counter()
                run = replace(base, int8=int8).with_capture(method=method, s=config.s if method == "dither" else None,
                                                            seed=seed)
                r = train_and_capture(run)
                c = Cell(model=model, column=column, seed=seed, test_acc=r.test_acc,
                         sparsity=1.0 - (r.mean_density if r.mean_density is not None else 1.0),
                         max_bits=r.max_bits, seconds=time.perf_counter() - t0)
                cells.append(c)
                if progress is not None:
                    progress(f"{model:9s} {column:17s} seed {seed}: acc {c.test_acc:.2%}, sparsity {c.sparsity:.2%}, "
                             f"max {c.max_bits} bits ({c.seconds:.1f} s)")
    return cells


def summarize(cells: Sequence[Cell]) -> list[dict[str, Any]]:
    """One row per model: mean (± std over seeds) accuracy and sparsity per column."""
    rows = []
    for model in dict.fromkeys(c.model for c in cells):
        row: dict[str, Any] = {"model": model}
        for column, _, _ in METHODS:
            sel = [c for c in cells if c.model == model and c.column == column]
            acc, sp = mean_std([c.test_acc for c in sel]), mean_std([c.sparsity for c in sel])
            row[column] = {"acc_mean": acc[0], "acc_std": acc[1], "sparsity_mean": sp[0], "sparsity_std": sp[1],
                           "max_bits": max((c.max_bits for c in sel), default=0), "seconds": sum(c.seconds for c in sel)}
        rows.append(row)
    return rows


def markdown(summary: Sequence[dict[str, Any]], config: Table1Config) -> str:
    """The Table-1-shaped Markdown table (acc % and sparsity % per column) plus the bits of the non-zeros."""
    multi = len(config.seeds) > 1
    header = ["model", "dataset"]
    for column, _, _ in METHODS:
        header += [f"{column} acc%", f"{column} sparsity%"]
    header.append("max bits (dith. / 8-bit+dith.)")
    body = []
    for row in summary:
        line = [row["model"], config.dataset]
        for column, _, _ in METHODS:
            v = row[column]
            line += [pm(v["acc_mean"], v["acc_std"]) if multi else f"{100 * v['acc_mean']:.2f}",
                     pm(v["sparsity_mean"], v["sparsity_std"]) if multi else f"{100 * v['sparsity_mean']:.2f}"]
        line.append(f"{row['dithered']['max_bits']} / {row['8-bit + dithered']['max_bits']}")
        body.append(line)
    return markdown_table(header, body)


def paper_markdown(models: Sequence[str]) -> str:
    header = ["model", "dataset"] + [f"{c} {m}" for c, _, _ in METHODS for m in ("acc%", "sparsity%")]
    body = [[m, "MNIST", *(f"{v:.2f}" for v in PAPER[m])] for m in models if m in PAPER]
    return markdown_table(header, body) if body else ""


def write_report(cells: Sequence[Cell], config: Table1Config, out: str | os.PathLike) -> Path:
    """``out/index.md``, ``cells.csv``, ``results.json``."""
    out = Path(out)
    summary = summarize(cells)
    write_csv(out / "cells.csv", [asdict(c) for c in cells])
    write_json(out / "results.json", {"config": asdict(config), "summary": summary, "cells": [asdict(c) for c in cells]})
    text = (f"# Table 1 columns on {config.dataset}\n\n"
            f"{config.epochs} epochs, batch {config.batch_size}, SGD lr {config.lr} (momentum 0.9, weight decay 5e-4, "
            f"cosine), s = {config.s:g}, seeds {list(config.seeds)}, dither stream {config.dither_rng}. "
            "Sparsity = 1 − mean δ̃z density over layers and iterations (the paper's measure).\n\n" + markdown(summary, config) +
            "\nSeed paper, Table 1 (MNIST):\n\n" + paper_markdown(config.models) + "\n")
    write_text(out / "index.md", text)
    return out


def run_experiment(config: Table1Config, out: str | os.PathLike, *,
                   progress: Callable[[str], None] | None = None) -> Path:
    return write_report(run_all(config, progress=progress), config, out)
