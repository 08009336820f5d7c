"""Training curves from trace manifests: δ̃z density over training and worst-case bit-width per layer.

These are the seed paper's Figs. 4 and 8: they show the sparsity the accelerator exploits is a
property of the whole run (not one lucky iteration) and how wide the non-zero levels get, which
decides how many MAC passes an 8-bit datapath needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hwsim.report.inputs import TraceEntry
from hwsim.report.style import Plot, new_figure, plain_log, short_layer

_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")


def _series(trace: TraceEntry, layer: str, field: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for it in trace.iterations:
        st = (it.get("layers") or {}).get(layer)
        if isinstance(st, dict) and st.get(field) is not None:
            xs.append(int(it.get("index", len(xs))))
            ys.append(float(st[field]))
    return xs, ys


def density_over_training(traces: Sequence[TraceEntry], *, name: str) -> Plot | None:
    traces = [t for t in traces if any(_series(t, ln, "density")[0] for ln in t.layer_order)][:6]
    if not traces:
        return None
    n = len(traces)
    cols = min(2, n)
    nrows = (n + cols - 1) // cols
    fig = new_figure(width=5.6 * cols + 0.6, height=3.8 * nrows + 0.6)
    axs = np.atleast_1d(fig.subplots(nrows, cols, squeeze=False, sharey=True).ravel())
    rows = []
    for ax, t in zip(axs, traces, strict=False):
        for k, ln in enumerate(t.layer_order):
            xs, ys = _series(t, ln, "density")
            if not xs:
                continue
            y = np.array(ys)
            ax.plot(xs, np.clip(y, 1e-5, None), color=_COLORS[k % len(_COLORS)], linewidth=1.2,
                    label=short_layer(ln))
            rows.extend({"trace": t.label, "layer": ln, "iteration": x, "dz_density": v}
                        for x, v in zip(xs, ys, strict=True))
        ax.set_yscale("log")
        plain_log(ax)
        ax.set_title(t.label, fontsize=10)
        ax.set_xlabel("training iteration")
        ax.legend(fontsize=7, ncol=2, loc="best")
    for ax in axs[len(traces):]:
        ax.set_visible(False)
    for ax in axs[::cols]:
        ax.set_ylabel("δ̃z density (non-zero fraction, log)")
    fig.suptitle("δ̃z density over training (cf. seed paper Fig. 4)", fontsize=12)
    return Plot(name=name, title="δ̃z density over training", figure=fig, rows=rows, section="Training",
                caption="Fraction of non-zero quantized pre-activation gradients per layer at every recorded "
                        "iteration (from the trace manifests). For method 'none' the float δz is only binned at the "
                        "recorded Δ for statistics.")


def worst_case_bits(traces: Sequence[TraceEntry], *, name: str) -> Plot | None:
    traces = [t for t in traces if any(_series(t, ln, "max_bits")[0] for ln in t.layer_order)][:8]
    if not traces:
        return None
    models = list(dict.fromkeys(str(t.meta.get("model") or t.label) for t in traces))
    by_model = {m: [t for t in traces if str(t.meta.get("model") or t.label) == m] for m in models}
    widths = [max(2, len(by_model[m][0].layer_order)) for m in models]
    fig = new_figure(width=min(14.0, 2.0 + 1.1 * sum(widths)), height=4.4)
    axs = np.atleast_1d(fig.subplots(1, len(models), sharey=True, width_ratios=widths, squeeze=False)[0])
    rows = []
    top = 8
    color_of = {t.label: _COLORS[j % len(_COLORS)] for j, t in enumerate(traces)}
    for ax, m in zip(axs, models, strict=True):
        group = by_model[m]
        layers = list(dict.fromkeys(ln for t in group for ln in t.layer_order))
        x = np.arange(len(layers))
        width = 0.8 / len(group)
        for j, t in enumerate(group):
            vals = []
            for ln in layers:
                _, ys = _series(t, ln, "max_bits")
                worst = int(max(ys)) if ys else np.nan
                vals.append(worst)
                if ys:
                    rows.append({"trace": t.label, "model": m, "layer": ln, "worst_case_bits": worst,
                                 "median_bits": float(np.median(ys)), "iterations": len(ys)})
                    top = max(top, worst)
            bars = ax.bar(x + (j - (len(group) - 1) / 2) * width, vals, width, color=color_of[t.label],
                          label=t.label)
            ax.bar_label(bars, labels=[f"{v:.0f}" if np.isfinite(v) else "" for v in vals], fontsize=9, padding=1)
        ax.axhline(8, color="black", linestyle="--", linewidth=0.9, label="8-bit MAC width" if m == models[0] else None)
        ax.set_xticks(x, [short_layer(n) for n in layers], rotation=30 if len(layers) > 4 else 0,
                      ha="right" if len(layers) > 4 else "center")
        ax.set_title(m)
    axs[0].set_ylabel("worst-case δ̃z bits (incl. sign)")
    axs[0].set_ylim(0, top * 1.3)
    handles, labels = [], []
    for ax in axs:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside lower center", ncol=min(5, len(labels)), frameon=False)
    fig.suptitle("Worst-case δ̃z bit-width per layer over training (cf. seed paper Fig. 8)", fontsize=12)
    return Plot(name=name, title="Worst-case δ̃z bit-width per layer", figure=fig, rows=rows, section="Training",
                caption="Largest sign+magnitude bit-width of the non-zero δ̃z levels over all recorded iterations; "
                        "above the dashed line an 8-bit datapath needs more than one MAC pass. For method 'none' "
                        "the float δz is binned at the recorded Δ only for these statistics.")
