"""Per-layer bars in the style of SCNN Figs. 8–9: speed-up and energy of each variant, normalised to dense.

One panel per pass (forward, backward-data, backward-weight) and one for the whole training
iteration; the last group of each panel is the whole network, as SCNN puts it at the right.
"""

from __future__ import annotations

import numpy as np

from hwsim.report.inputs import ResultEntry
from hwsim.report.style import (
    PASS_LABEL,
    VARIANT_COLOR,
    VARIANT_LABEL,
    VARIANT_ORDER,
    Plot,
    new_figure,
    plain_log,
)
from hwsim.report.tables import layer_ratio_rows
from hwsim.results import SCOPES


def _panel_grid(n_layers: int):
    width = min(16.0, max(9.0, 2.2 + 0.62 * (n_layers + 1) * 2))
    fig = new_figure(width=width, height=7.2)
    axes = fig.subplots(2, 2, sharey=True)
    return fig, axes.ravel(), width


def _bars(entry: ResultEntry, *, metric: str, name: str, title: str, ylabel: str, log: bool, caption: str) -> Plot:
    rows = layer_ratio_rows(entry)
    layers = [*entry.result.layer_names(), "total"]
    fig, axes, fig_width = _panel_grid(len(layers))
    x = np.arange(len(layers))
    width = 0.8 / len(VARIANT_ORDER)
    vmax, vmin = 1.0, 1.0
    for ax, scope in zip(axes, SCOPES, strict=True):
        for j, v in enumerate(VARIANT_ORDER):
            vals = [next((r[metric] for r in rows if r["layer"] == ln and r["scope"] == scope and r["variant"] == v),
                         None) for ln in layers]
            y = np.array([np.nan if val is None else val for val in vals], dtype=float)
            ax.bar(x + (j - 1.5) * width, y, width, color=VARIANT_COLOR[v], label=VARIANT_LABEL[v],
                   edgecolor="white", linewidth=0.3)
            for i, ln in enumerate(layers):  # mark what has no bar instead of dropping it silently
                row = next(r for r in rows if r["layer"] == ln and r["scope"] == scope and r["variant"] == v)
                dense = next(r for r in rows if r["layer"] == ln and r["scope"] == scope and r["variant"] == "dense")
                if dense["cycles"] == 0:  # the pass does not exist (first layer: no input gradient)
                    if j == 0:
                        ax.annotate("n/a", (x[i], 1.0 if log else 0.0), xytext=(0, 4), textcoords="offset points",
                                    ha="center", va="bottom", fontsize=10, color="dimgray")
                elif metric == "speedup_vs_dense" and row["cycles"] == 0:  # no effectual work at all
                    ax.annotate("∞", (x[i] + (j - 1.5) * width, 1.0), xytext=(0, 2), textcoords="offset points",
                                ha="center", va="bottom", fontsize=9, color=VARIANT_COLOR[v])
            finite = y[np.isfinite(y) & (y > 0)]
            if finite.size:
                vmax, vmin = max(vmax, float(finite.max())), min(vmin, float(finite.min()))
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.axvline(len(layers) - 1.5, color="black", linewidth=0.6, linestyle=":")
        ax.set_title(PASS_LABEL[scope])
        labels = [entry.layer_label(n) if n != "total" else "total" for n in layers]
        longest = max(len(part) for lb in labels for part in lb.split("\n"))
        crowded = longest * 0.075 > fig_width / 2 / len(layers)  # ~0.075 in per character at 10 pt
        ax.set_xticks(x, labels, rotation=30 if crowded else 0, ha="right" if crowded else "center",
                      fontsize=8 if "\n" in "".join(labels) else 10)
        ax.set_xlim(-0.6, len(layers) - 0.4)
        if ax in (axes[0], axes[2]):
            ax.set_ylabel(ylabel)
    if log:
        for ax in axes:
            ax.set_yscale("log")
        axes[0].set_ylim(max(vmin / 1.5, 1e-4), vmax * 1.6)
        for ax in axes:
            plain_log(ax)
    else:
        axes[0].set_ylim(0, vmax * 1.12)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4 if fig_width >= 12 else 2, frameon=False)
    fig.suptitle(f"{title} — {entry.label}\n{entry.batch_text}", fontsize=11)
    data = [r for r in rows]
    return Plot(name=name, title=f"{title} — {entry.label}", caption=caption, figure=fig, rows=data,
                section=entry.label)


def speedup_bars(entry: ResultEntry, *, name: str) -> Plot:
    """Speed-up over dense per layer (log axis: the MAC bound can be 10–100×)."""
    return _bars(entry, metric="speedup_vs_dense", name=name, title="Per-layer speed-up over dense",
                 ylabel="speed-up over dense (×, log)", log=True,
                 caption="Dense cycles ÷ variant cycles per layer and pass; 'total' is the whole network. "
                         "Dense-gated saves energy, not cycles, so it sits at 1×; MAC bound = effectual MACs ÷ multipliers, memory-free "
                         "(∞: no effectual MAC at all in this GEMM).")


def energy_bars(entry: ResultEntry, *, name: str) -> Plot:
    """Energy relative to dense per layer (linear: the interesting range is 0–1)."""
    return _bars(entry, metric="energy_norm_to_dense", name=name, title="Per-layer energy relative to dense",
                 ylabel="energy ÷ dense energy", log=False,
                 caption="Variant energy ÷ dense energy per layer and pass (lower is better); "
                         "'total' is the whole network.")
