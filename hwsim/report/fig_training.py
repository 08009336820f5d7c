"""Training curves from trace manifests: δ̃z density over training and worst-case bit-width per layer.

These are the seed paper's Figs. 4 and 8: they show the sparsity the accelerator exploits is a
property of the whole run (not one lucky iteration) and how wide the non-zero levels get, which
decides how many MAC passes an 8-bit datapath needs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hwsim.report.inputs import TraceEntry
from hwsim.report.style import Plot, method_color, new_figure, plain_log, series_style, short_layer

_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")


def _series(trace: TraceEntry, layer: str, field: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for it in trace.iterations:
        st = it.layers.get(layer)
        v = getattr(st, field) if st is not None else None
        if v is not None:
            xs.append(it.index)
            ys.append(float(v))
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
    """Worst-case bit-width per layer; method 'none' is left out (float δz has no level bit-width)."""
    floats = [t.label for t in traces if not t.has_levels]
    traces = [t for t in traces if t.has_levels and any(_series(t, ln, "max_bits")[0] for ln in t.layer_order)][:8]
    if not traces:
        return None
    models = list(dict.fromkeys(t.model for t in traces))
    by_model = {m: [t for t in traces if t.model == m] for m in models}
    widths = [max(2, len(by_model[m][0].layer_order)) for m in models]
    fig = new_figure(width=min(14.0, 3.0 + 1.5 * sum(widths)), height=4.8)
    axs = np.atleast_1d(fig.subplots(1, len(models), sharey=True, width_ratios=widths, squeeze=False)[0])
    rows = []
    top = 8
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
            bars = ax.bar(x + (j - (len(group) - 1) / 2) * width, vals, width, color=method_color(t.method),
                          alpha=1.0 if j == 0 else 0.7, hatch=None if j == 0 else "//", label=t.label,
                          edgecolor="white")
            ax.bar_label(bars, labels=[f"{v:.0f}" if np.isfinite(v) else "" for v in vals], fontsize=9, padding=1)
        ax.axhline(8, color="black", linestyle="--", linewidth=0.9, label="8-bit MAC width" if m == models[0] else None)
        ax.set_xticks(x, [_layer_label(group[0], n) for n in layers], rotation=30 if len(layers) > 3 else 0,
                      ha="right" if len(layers) > 3 else "center", fontsize=8)
        ax.set_title(m)
    axs[0].set_ylabel("worst-case δ̃z bits (sign + magnitude)")
    axs[0].set_ylim(0, top * 1.3)
    handles, labels = [], []
    for ax in axs:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)), frameon=False)
    fig.suptitle("Worst-case δ̃z bit-width per layer over training (cf. seed paper Fig. 8)", fontsize=12)
    omitted = (f" Not shown: {', '.join(floats)} (method none: float δz has no level bit-width)." if floats else "")
    return Plot(name=name, title="Worst-case δ̃z bit-width per layer", figure=fig, rows=rows, section="Training",
                caption="Largest sign+magnitude bit-width of the non-zero δ̃z levels over all recorded iterations; "
                        "above the dashed line an 8-bit datapath needs more than one MAC pass." + omitted)


def training_curves(traces: Sequence[TraceEntry], *, name: str) -> Plot | None:
    """Training loss per iteration (and per-epoch mean) and accuracy: mini-batch per epoch, test at the end."""
    traces = [t for t in traces if any(it.loss is not None for it in t.iterations)][:8]
    if not traces:
        return None
    models = list(dict.fromkeys(t.model for t in traces))
    fig = new_figure(width=12.0, height=4.8)
    ax_l, ax_a = fig.subplots(1, 2)
    rows = []
    for t in traces:
        st = series_style(t.method, t.model, models)
        its = [it for it in t.iterations if it.loss is not None]
        xs = [it.index for it in its]
        loss = [float(it.loss) for it in its]
        ax_l.plot(xs, loss, color=st["color"], linewidth=0.6, alpha=0.35)
        epochs: dict[int, list[int]] = {}
        for i, it in enumerate(its):
            epochs.setdefault(it.epoch or 0, []).append(i)
        ex = [float(np.mean([xs[i] for i in idx])) for idx in epochs.values()]
        el = [float(np.mean([loss[i] for i in idx])) for idx in epochs.values()]
        ea = [float(np.mean([float(its[i].acc) for i in idx if its[i].acc is not None] or [np.nan]))
              for idx in epochs.values()]
        ax_l.plot(ex, el, color=st["color"], linestyle=st["linestyle"], marker=st["marker"], markersize=4,
                  linewidth=1.6, label=t.label)
        ax_a.plot(ex, ea, color=st["color"], linestyle=st["linestyle"], marker=st["marker"], markersize=4,
                  linewidth=1.4, label=f"{t.label}: training mini-batches")
        test = t.summary.get("test_acc")
        if test is not None:
            ax_a.plot([xs[-1]], [float(test)], marker="*", markersize=13, color=st["color"], markeredgecolor="black",
                      linestyle="none", label=f"{t.label}: test {float(test):.1%}")
        for e, (x, lo, ac) in enumerate(zip(ex, el, ea, strict=True)):
            rows.append({"trace": t.label, "epoch": e, "iteration_mid": x, "train_loss_epoch_mean": lo,
                         "train_acc_epoch_mean": ac, "test_acc_final": test})
    ax_l.set_yscale("log")
    plain_log(ax_l)
    ax_l.set_xlabel("training iteration")
    ax_l.set_ylabel("training loss (cross-entropy, log)")
    ax_l.set_title("loss: every iteration (thin), epoch mean (markers)", fontsize=10)
    ax_a.set_xlabel("training iteration")
    ax_a.set_ylabel("accuracy")
    ax_a.yaxis.set_major_formatter(_percent_formatter())
    ax_a.set_title("accuracy: training mini-batches per epoch, test set at the end (★)", fontsize=10)
    lo = min((r["train_acc_epoch_mean"] for r in rows if np.isfinite(r["train_acc_epoch_mean"])), default=0.0)
    ax_a.set_ylim(max(0.0, lo - 0.05), 1.005)
    fig.legend(*ax_a.get_legend_handles_labels(), loc="outside lower center", ncol=2, frameon=False, fontsize=8)
    fig.suptitle("Training curves (from the trace manifests)", fontsize=12)
    return Plot(name=name, title="Training loss and accuracy", figure=fig, rows=rows, section="Training",
                caption="Cross-entropy loss of every training mini-batch and its per-epoch mean; mini-batch accuracy "
                        "per epoch (training data, so optimistic) and the held-out test accuracy after training "
                        "(★, manifest summary). Colour = method, line style and marker = model.")


def level_histograms(traces: Sequence[TraceEntry], *, name: str) -> Plot | None:
    """How wide the non-zero δ̃z levels are: share of non-zeros per bit-width, summed over the recorded run."""
    traces = [t for t in traces if t.has_levels and any(st.hist for it in t.iterations for st in it.layers.values())]
    if not traces:
        return None
    models = list(dict.fromkeys(t.model for t in traces))
    fig = new_figure(width=min(13.0, 4.0 + 4.2 * len(models)), height=4.4)
    axs = np.atleast_1d(fig.subplots(1, len(models), sharey=True, squeeze=False)[0])
    rows = []
    for ax, m in zip(axs, models, strict=True):
        group = [t for t in traces if t.model == m]
        width = 0.8 / len(group)
        hi_bits = 2
        for j, t in enumerate(group):
            total = np.zeros(15)
            for it in t.iterations:
                for st in it.layers.values():
                    if st.hist:
                        h = np.asarray(st.hist, dtype=float)[:15]
                        total[: len(h)] += h
            share = total / total.sum() if total.sum() else total
            bits = np.arange(2, 17)
            used = share > 0
            if used.any():
                hi_bits = max(hi_bits, int(bits[used].max()))
            ax.bar(bits + (j - (len(group) - 1) / 2) * width, np.where(share > 0, share, np.nan), width,
                   color=method_color(t.method), alpha=1.0 if j == 0 else 0.7, hatch=None if j == 0 else "//",
                   edgecolor="white", label=t.label)
            rows.extend({"trace": t.label, "model": m, "bits": int(b), "nonzero_levels": int(c), "share": float(f)}
                        for b, c, f in zip(bits, total, share, strict=True))
        ax.set_yscale("log")
        low = min((r["share"] for r in rows if r["share"] > 0), default=1e-3)
        ax.set_ylim(low / 4, 1.5)
        right = max(hi_bits, 8) + 1
        ax.set_xticks(range(2, right + 1))
        ax.set_xlim(1.4, right + 0.6)
        ax.axvline(8.5, color="black", linestyle="--", linewidth=0.9)
        ax.set_xlabel("bits of a non-zero δ̃z level (sign + magnitude)")
        ax.set_title(m)
        ax.legend(fontsize=8, loc="upper right")
    axs[0].set_ylabel("share of non-zero levels (log)")
    for ax in axs:
        plain_log(ax)
    fig.suptitle("δ̃z level widths over the whole recorded run (dashed: 8-bit MAC width)", fontsize=12)
    return Plot(name=name, title="δ̃z level bit-width histogram", figure=fig, rows=rows, section="Training",
                caption="Share of non-zero δ̃z levels needing b bits (sign + magnitude), summed over all layers and "
                        "recorded iterations (manifest 'hist'). Levels right of the dashed line need more than one "
                        "8-bit MAC pass. Method none is left out: float δz has no levels.")


def _layer_label(t: TraceEntry, name: str) -> str:
    desc = t.layers.get(name)
    return f"{short_layer(name)}\n{desc}" if desc else short_layer(name)


def _percent_formatter():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: f"{v:.0%}")
