"""Dithered backprop against meProp (seed paper §4.2, Fig. 5; supplement Fig. 3).

An MLP with two hidden layers of 500 is trained with plain backprop, with NSD on δz at several
s, and with meProp (the k largest |δz| of each example kept, the rest zeroed — a biased
estimate) at several k, over several seeds. Every run reports its final test accuracy and the
paper's sparsity measure (1 − mean δ̃z density over layers and iterations). The report plots
accuracy against sparsity (mean ± std over seeds) and tabulates both.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hwsim.capture.config import (
    DEFAULT_BATCH,
    DEFAULT_DATASETS,
    DEFAULT_DITHER_RNG,
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    check_dither_rng,
)
from hwsim.experiments.output import (
    markdown_table,
    mean_std,
    pm,
    save_figure,
    write_csv,
    write_json,
    write_text,
)


@dataclass(frozen=True)
class MepropConfig:
    """What to run. Defaults: the paper's MLP on the embedded digits, 6 s × 6 k × 3 seeds."""

    model: str = "mlp500"
    dataset: str = DEFAULT_DATASETS["image"]
    data_dir: str | None = None
    s_values: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
    k_values: tuple[int, ...] = (2, 5, 10, 20, 50, 100)
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH
    lr: float = DEFAULT_LR
    dither_rng: str = DEFAULT_DITHER_RNG  # the dither's random stream (hwsim.capture.config.DITHER_RNGS)

    def __post_init__(self) -> None:
        check_dither_rng(self.dither_rng, "MepropConfig.dither_rng")  # at construction, not at the first capture

    def runs(self) -> list[tuple[str, float | None, int]]:
        """(method, s or k, seed) of every training run, baseline first."""
        grid: list[tuple[str, float | None]] = [("none", None)]
        grid += [("dither", float(s)) for s in self.s_values] + [("meprop", int(k)) for k in self.k_values]
        return [(m, p, seed) for m, p in grid for seed in self.seeds]


QUICK = MepropConfig(s_values=(2.0, 8.0), k_values=(10, 50), seeds=(0,), epochs=3)


@dataclass(frozen=True)
class RunRow:
    """One training run's measurements."""

    method: str
    param: float | None  # s (dither) or k (meprop)
    seed: int
    test_acc: float
    sparsity: float  # 1 − mean over (layer, iteration) of δ̃z density (the paper's Table 1 measure)
    weighted_sparsity: float  # 1 − non-zeros / elements over all layers and iterations
    max_bits: int
    iterations: int
    seconds: float


def run_all(config: MepropConfig, *, progress: Callable[[str], None] | None = None) -> list[RunRow]:
    """Train every (method, parameter, seed) of ``config`` in this process, one after another."""
    from hwsim.capture.train import CaptureConfig, TrainConfig, train_and_capture

    base = TrainConfig(model=config.model, dataset=config.dataset, data_dir=config.data_dir, epochs=config.epochs,
                       batch_size=config.batch_size, lr=config.lr,
                       capture=CaptureConfig(sample_every=0, dither_rng=config.dither_rng))
    rows = []
    for method, param, seed in config.runs():
        t0 = time.perf_counter()
        r = train_and_capture(base.with_capture(method=method, s=param if method == "dither" else None,
                                                k=int(param) if method == "meprop" and param is not None else None,
                                                seed=seed))
        row = RunRow(method=method, param=param, seed=seed, test_acc=r.test_acc,
                     sparsity=1.0 - (r.mean_density if r.mean_density is not None else 1.0),
                     weighted_sparsity=1.0 - (r.weighted_density if r.weighted_density is not None else 1.0),
                     max_bits=r.max_bits, iterations=r.iterations, seconds=time.perf_counter() - t0)
        rows.append(row)
        if progress is not None:
            progress(f"{method:6s} {_label(method, param):8s} seed {seed}: acc {r.test_acc:.2%}, "
                     f"sparsity {row.sparsity:.2%} ({row.seconds:.1f} s)")
    return rows


def summarize(rows: Sequence[RunRow]) -> list[dict[str, Any]]:
    """Mean ± std over seeds per (method, parameter), in run order."""
    keys: list[tuple[str, float | None]] = []
    for r in rows:
        if (r.method, r.param) not in keys:
            keys.append((r.method, r.param))
    out = []
    for method, param in keys:
        sel = [r for r in rows if r.method == method and r.param == param]
        acc, acc_sd = mean_std([r.test_acc for r in sel])
        sp, sp_sd = mean_std([r.sparsity for r in sel])
        out.append({"method": method, "param": param, "label": _label(method, param), "seeds": len(sel),
                    "acc_mean": acc, "acc_std": acc_sd, "sparsity_mean": sp, "sparsity_std": sp_sd,
                    "max_bits": max(r.max_bits for r in sel)})
    return out


# Label offsets (points) cycled along a series: neighbours at almost the same sparsity alternate sides/heights.
_LABEL_OFFSETS = ((-4, -13, "right"), (4, 8, "left"), (-4, -13, "right"), (4, 20, "left"))


def plot(summary: Sequence[dict[str, Any]], path: Path, *, title: str) -> Path:
    """Accuracy against sparsity, one series per method, error bars = std over seeds (both axes).

    The x axis is δz density on a log scale, labelled in sparsity: 90 %, 99 % and 99.5 % would
    otherwise pile up at the right edge. Runs that collapsed (mean accuracy more than 10 points
    under the baseline) are drawn as ▼ on the bottom edge with their value written out, so they do
    not squash the interesting range.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    style = {"none": ("Baseline (backprop)", "k", "s"), "dither": ("Dithered backprop", "tab:blue", "o"),
             "meprop": ("meProp (top-k)", "tab:red", "^")}
    base = [p["acc_mean"] for p in summary if p["method"] == "none"]
    ref = max(base) if base else max(p["acc_mean"] for p in summary)
    ok = [p for p in summary if p["acc_mean"] >= ref - 0.10]
    lo = 100 * min(p["acc_mean"] - p["acc_std"] for p in ok) - 1.0
    fig, ax = plt.subplots(figsize=(8, 5), dpi=150)
    for method, (name, color, marker) in style.items():
        pts = sorted((p for p in summary if p["method"] == method), key=lambda p: p["sparsity_mean"])
        if not pts:
            continue
        shown = [p for p in pts if p in ok]
        x = [100 * (1 - p["sparsity_mean"]) for p in shown]
        y = [100 * p["acc_mean"] for p in shown]
        ax.errorbar(x, y, xerr=[100 * p["sparsity_std"] for p in shown], yerr=[100 * p["acc_std"] for p in shown],
                    color=color, marker=marker, ms=6, lw=1.5, capsize=3, label=name)
        for i, (p, xi, yi) in enumerate(zip(shown, x, y, strict=True)):
            if method != "none":
                dx, dy, ha = _LABEL_OFFSETS[(i + (method == "dither")) % len(_LABEL_OFFSETS)]
                ax.annotate(p["label"], (xi, yi), textcoords="offset points", xytext=(dx, dy), fontsize=8, color=color,
                            ha=ha)
        for p in pts:
            if p not in ok:
                xi = 100 * (1 - p["sparsity_mean"])
                ax.plot([xi], [lo + 0.15], marker="v", ms=8, color=color, clip_on=False)
                ax.annotate(f"{p['label']}: {100 * p['acc_mean']:.0f} ± {100 * p['acc_std']:.0f} %", (xi, lo + 0.15),
                            textcoords="offset points", xytext=(-10, 8), fontsize=8, color=color, ha="right")
    ax.set_xscale("log")
    ticks = (30, 50, 70, 90, 95, 98, 99, 99.5, 99.8)
    ax.set_xticks([100 - s for s in ticks])
    ax.set_xticklabels([f"{s:g}" for s in ticks], fontsize=9)
    ax.minorticks_off()
    ax.invert_xaxis()
    ax.set_ylim(lo, min(100.0, 100 * max(p["acc_mean"] + p["acc_std"] for p in ok) + 0.7))
    ax.set_xlabel("δz sparsity, % (mean over layers and iterations; log scale of density)", fontsize=10)
    ax.set_ylabel("test accuracy, % (mean ± std over seeds)", fontsize=10)
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9.5, loc="lower left")
    return save_figure(fig, path)


def write_report(rows: Sequence[RunRow], config: MepropConfig, out: str | os.PathLike) -> Path:
    """``out/index.md``, ``meprop.png``, ``runs.csv``, ``summary.csv``, ``results.json``."""
    out = Path(out)
    summary = summarize(rows)
    title = f"{config.model} on {config.dataset}: accuracy vs δz sparsity ({len(config.seeds)} seeds)"
    plot(summary, out / "meprop.png", title=title)
    write_csv(out / "runs.csv", [asdict(r) for r in rows])
    write_csv(out / "summary.csv", summary)
    write_json(out / "results.json", {"config": asdict(config), "summary": summary, "runs": [asdict(r) for r in rows]})
    table = markdown_table(
        ["method", "s / k", "test acc. % (mean ± std)", "δz sparsity %", "max bits", "seeds"],
        [[p["method"], p["label"], pm(p["acc_mean"], p["acc_std"]), pm(p["sparsity_mean"], p["sparsity_std"]),
          p["max_bits"], p["seeds"]] for p in summary])
    text = (f"# Dithered backprop vs meProp — {config.model} on {config.dataset}\n\n"
            f"Seed paper §4.2 / Fig. 5. {config.epochs} epochs, batch {config.batch_size}, SGD lr {config.lr} "
            f"(momentum 0.9, weight decay 5e-4, cosine), seeds {list(config.seeds)}, dither stream {config.dither_rng}. "
            "Sparsity = 1 − mean δ̃z density "
            "over (layer, iteration) pairs, as in the paper's Table 1. meProp keeps the k largest |δz| per example "
            "(full precision, biased); dither quantizes δz with Δ = s·std(δz) (unbiased, integer levels).\n\n"
            "![accuracy vs sparsity](meprop.png)\n\n" + table +
            "\nFiles: `runs.csv` (every run), `summary.csv`, `results.json`.\n")
    write_text(out / "index.md", text)
    return out


def run_experiment(config: MepropConfig, out: str | os.PathLike, *,
                   progress: Callable[[str], None] | None = None) -> Path:
    """Train all runs of ``config`` and write the report folder ``out``."""
    rows = run_all(config, progress=progress)
    return write_report(rows, config, out)


def _label(method: str, param: float | None) -> str:
    if method == "dither":
        return f"s={param:g}"
    if method == "meprop":
        return f"k={int(param or 0)}"
    return "—"
