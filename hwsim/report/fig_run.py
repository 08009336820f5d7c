"""Cost over the training run, from whole-run results files (``hwsim simulate --iterations …``).

For every results entry whose file holds per-iteration records (:mod:`hwsim.results.run`): sparse and
dense cycles and energy of each replayed iteration against the training iteration, with the mean
δ̃z density of every iteration (from the trace statistics) beside them; and the whole-run speed-up and
energy gain per pass with their spread over iterations (p10–p90 bars, min/max ticks) beside the last
iteration's — the figure a single-iteration replay would have reported. A run of one replayed iteration draws
neither (nothing to show over training).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from hwsim.report.inputs import ResultEntry
from hwsim.report.style import Plot, new_figure
from hwsim.results import PASSES, ResultsError
from hwsim.results.run import RunResult, is_run_json

_SHORT = {"forward": "fwd", "backward_data": "bwd-data", "backward_weight": "bwd-weight", None: "iteration"}


def load_run(entry: ResultEntry) -> RunResult | None:
    """The run records behind a results entry, or None for a single-iteration file."""
    try:
        d = json.loads(entry.source.read_text())
    except (OSError, ValueError):
        return None
    if not is_run_json(d):
        return None
    try:
        return RunResult.from_json(d, where=str(entry.source))
    except ResultsError:
        return None


def _over_training(entry: ResultEntry, run: RunResult | None) -> RunResult | None:
    """The run behind ``entry`` if it replayed at least two iterations: with one (a synthetic trace, a capture that
    sampled one iteration) there is nothing *over training* — the whole run is that iteration — and the figures
    would only show one marker on a fractional axis, or bars equal to the last iteration's with no spread."""
    run = run if run is not None else load_run(entry)
    return run if run is not None and len(run.iterations) >= 2 else None


def cost_over_training(entry: ResultEntry, *, name: str, run: RunResult | None = None) -> Plot | None:
    run = _over_training(entry, run)
    if run is None:
        return None
    its = [r.iteration for r in run.iterations]
    fig = new_figure(width=11.0, height=4.2)
    ax_c, ax_e = fig.subplots(1, 2)
    rows = []
    for v, style in (("sparse", "-o"), ("dense", "--s")):
        cyc = [r.result.total(v).cycles for r in run.iterations]
        en = [r.result.total(v).energy_pj / 1e6 for r in run.iterations]
        ax_c.plot(its, cyc, style, markersize=3, linewidth=1.2, label=f"{v} cycles")
        ax_e.plot(its, en, style, markersize=3, linewidth=1.2, label=f"{v} energy")
        for r, c, e in zip(run.iterations, cyc, en, strict=True):
            rows.append({"run": entry.label, "iteration": r.iteration, "weight": r.weight, "variant": v, "cycles": c,
                         "energy_uj": e})
    dens = [(t["iteration"], t["dz_density"]) for t in run.training if t.get("dz_density") is not None]
    for ax in (ax_c, ax_e):
        ax.set_xlabel("training iteration")
        if dens:
            tw = ax.twinx()
            tw.plot([x for x, _ in dens], [y for _, y in dens], color="#2ca02c", linewidth=0.8, alpha=0.7,
                    label="δ̃z density (mean over layers)")
            tw.set_ylabel("δ̃z density", color="#2ca02c")
            tw.set_ylim(bottom=0)
            tw.legend(fontsize=7, loc="lower left")
        ax.legend(fontsize=7, loc="upper right")
    ax_c.set_ylabel("cycles per iteration")
    ax_e.set_ylabel("energy per iteration (µJ)")
    rows.extend({"run": entry.label, "iteration": x, "variant": "trace", "dz_density": y} for x, y in dens)
    fig.suptitle(f"{entry.label}: cost per training iteration ({len(its)} replayed of {run.total_iterations})",
                 fontsize=11)
    return Plot(name=name, title=f"Cost over training — {entry.label}", figure=fig, rows=rows, section="Whole run",
                caption="Sparse and dense cycles and energy of each replayed iteration (markers) and the mean δ̃z "
                        "density of every training iteration (green, right axis). The whole-run figures integrate "
                        "the replayed iterations, each standing for the iterations up to the next one.")


def whole_run_summary(entry: ResultEntry, *, name: str, run: RunResult | None = None) -> Plot | None:
    run = _over_training(entry, run)
    if run is None:
        return None
    whole, last, sp = run.integrated, run.last, run.spread()
    passes: Sequence[str | None] = [p for p in PASSES if any(lp.pass_name == p for lp in whole.layers)] + [None]
    fig = new_figure(width=10.0, height=3.8)
    axs = fig.subplots(1, 2)
    rows = []
    x = np.arange(len(passes))
    for ax, fig_key, getter in ((axs[0], "speedup", "speedup"), (axs[1], "energy_ratio", "energy_ratio")):
        wv = [getattr(whole, getter)(pass_name=p) for p in passes]
        lv = [getattr(last, getter)(pass_name=p) for p in passes]
        st = [(sp["passes"][p] if p else sp["iteration"])[fig_key] for p in passes]
        ax.bar(x - 0.2, wv, 0.4, label="whole run", color="#1f77b4")
        ax.bar(x + 0.2, lv, 0.4, label="last iteration", color="#ff7f0e")
        ax.errorbar(x - 0.2, [s["p50"] for s in st], yerr=[[s["p50"] - s["p10"] for s in st],
                                                          [s["p90"] - s["p50"] for s in st]],
                    fmt="none", ecolor="black", capsize=3, label="p10–p90 over iterations")
        ax.plot(x - 0.2, [s["min"] for s in st], "k_", markersize=8, label="min / max over iterations")
        ax.plot(x - 0.2, [s["max"] for s in st], "k_", markersize=8)
        ax.axhline(1.0, color="grey", linewidth=0.6)
        ax.set_xticks(x, [_SHORT[p] for p in passes])
        ax.set_ylabel("speed-up vs dense (×)" if fig_key == "speedup" else "energy gain vs dense (×)")
        ax.legend(fontsize=7)
        for p, w_, l_, s in zip(passes, wv, lv, st, strict=True):
            rows.append({"run": entry.label, "pass": p or "iteration", "figure": fig_key, "whole_run": w_,
                         "last_iteration": l_, **{k: s[k] for k in ("mean", "min", "p10", "p50", "p90", "max")}})
    fig.suptitle(f"{entry.label}: whole-run speed-up and energy gain vs the last iteration", fontsize=11)
    return Plot(name=name, title=f"Whole-run speed-up and energy — {entry.label}", figure=fig, rows=rows,
                section="Whole run",
                caption="Whole run = Σ dense ÷ Σ sparse over the training run (left-hold estimator over the replayed "
                        "iterations); last iteration = what a single-iteration replay reports; bars: spread of the "
                        "per-iteration figure (p10–p90, min/max ticks).")


__all__ = ["load_run", "cost_over_training", "whole_run_summary"]
