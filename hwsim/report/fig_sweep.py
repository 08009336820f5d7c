"""Sweep plots: speed-up, energy gain and latency against each swept parameter; cycles-vs-energy Pareto front.

With a full grid the other parameters vary too, so each point is the median over them and the
error bar their full range: the plot answers "how much does this knob matter, all else varying".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hwsim.report.inputs import SweepEntry
from hwsim.report.labels import label_points
from hwsim.report.style import Plot, new_figure, param_display, param_label, plain_log, series_style

_METRICS = (("cycles_sparse", "sparse cycles per iteration (log)", True),
            ("energy_pj_sparse", "sparse energy per iteration (µJ)", False),
            ("speedup_sparse", "speed-up over own dense (×)", False))


def swept_axes(sweep: SweepEntry) -> list[tuple[str, list[Any]]]:
    """(axis label, per-row values) for each parameter that takes ≥ 2 values; keys moved together merge."""
    axes: list[tuple[str, list[Any]]] = []
    for p in sweep.parameters:
        vals = [r.get(p) for r in sweep.rows]
        if len({_hashable(v) for v in vals}) < 2:
            continue
        for i, (lab, other) in enumerate(axes):
            if [_hashable(v) for v in other] == [_hashable(v) for v in vals]:
                axes[i] = (f"{lab} = {p}", other)
                break
        else:
            axes.append((p, vals))
    return axes


def _hashable(v: Any) -> Any:
    return repr(v) if isinstance(v, (list, dict)) else v


def _numeric(vals: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in vals)


def parameter_figure(sweep: SweepEntry, *, name: str) -> Plot | None:
    axes_def = swept_axes(sweep)
    if not axes_def or not sweep.rows:
        return None
    traces = list(dict.fromkeys(r.get("trace") for r in sweep.rows))
    first = {tr: next(r for r in sweep.rows if r.get("trace") == tr) for tr in traces}
    models = list(dict.fromkeys(first[tr].get("model") for tr in traces))
    styles = {tr: series_style(first[tr].get("method"), first[tr].get("model"), models) for tr in traces}
    n = len(axes_def)
    fig = new_figure(width=min(13.0, 1.6 + 3.0 * n), height=8.6)
    grid = np.atleast_2d(fig.subplots(len(_METRICS), n, squeeze=False))
    stats: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    for col, (label, vals) in enumerate(axes_def):
        levels = sorted({_hashable(v) for v in vals}, key=lambda v: (isinstance(v, str), v))
        # Evenly spaced positions labelled with the values: sweeps are usually geometric (4, 8, 16).
        xpos = {lv: float(i) for i, lv in enumerate(levels)}
        for row, (metric, ylabel, logy) in enumerate(_METRICS):
            ax = grid[row, col]
            for k, tr in enumerate(traces):
                st = styles[tr]
                xs, med, lo, hi = [], [], [], []
                for lv in levels:
                    scale = 1e-6 if metric.startswith("energy_pj") else 1.0
                    ys = [float(r[metric]) * scale for r, v in zip(sweep.rows, vals, strict=True)
                          if _hashable(v) == lv and r.get("trace") == tr and r.get(metric) is not None]
                    if not ys:
                        continue
                    xs.append(xpos[lv] + 0.06 * (k - (len(traces) - 1) / 2))  # keep bars apart
                    med.append(float(np.median(ys)))
                    lo.append(min(ys))
                    hi.append(max(ys))
                    stats.setdefault((label, lv, tr), {"parameter": label, "value": lv, "trace": tr,
                                                       "points": len(ys)}).update(
                        {f"{metric}_median": med[-1], f"{metric}_min": lo[-1], f"{metric}_max": hi[-1]})
                if not xs:
                    continue
                err = np.array([np.subtract(med, lo), np.subtract(hi, med)])
                ax.errorbar(xs, med, yerr=err if err.any() else None, marker=st["marker"], markersize=4, capsize=3,
                            color=st["color"], linestyle=st["linestyle"], label=str(tr))
            ax.set_xticks(range(len(levels)), [f"{v:g}" if _numeric([v]) else str(v) for v in levels])
            ax.set_xlim(-0.4, len(levels) - 0.6)
            if logy:
                ax.set_yscale("log")
                plain_log(ax)
            elif metric.startswith("speedup"):
                ax.axhline(1.0, color="black", linewidth=0.8)
            if col == 0:
                ax.set_ylabel(ylabel)
            if row == len(_METRICS) - 1:
                text = param_label(label)
                ax.set_xlabel(text.replace(" = ", " =\n") if len(text) > 26 else text)
    handles, labels = grid[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(4, len(labels)), frameon=False,
               title="trace")
    fig.suptitle(f"Sweep '{sweep.label}': effect of each parameter", fontsize=12)
    return Plot(name=name, title=f"Sweep '{sweep.label}': speed-up, energy and latency per parameter",
                caption="Median over the other swept parameters (bars: min–max). Top rows: absolute sparse cycles "
                        "and energy per training iteration (what ranks designs); bottom row: speed-up over the dense "
                        "baseline of the same configuration (a small array can skip well relative to its own slow "
                        "dense run and still be slow). Colour = method, marker = model.", figure=fig, rows=list(stats.values()), section=f"Sweep {sweep.label}")


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (minimise both), by ascending x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front, best = [], math.inf
    for i in order:
        if points[i][1] < best:
            front.append(i)
            best = points[i][1]
    return front


def pareto_figure(sweep: SweepEntry, *, name: str) -> Plot | None:
    rows = [r for r in sweep.rows if r.get("cycles_sparse") and r.get("energy_pj_sparse")]
    if len(rows) < 2:
        return None
    traces = list(dict.fromkeys(r.get("trace") for r in rows))[:4]
    axes_def = swept_axes(SweepEntry(label=sweep.label, source=sweep.source, parameters=sweep.parameters,
                                     rows=tuple(rows), spec=sweep.spec))
    if not axes_def:  # one architecture (e.g. a density sweep): no trade-off to show
        return None
    fig = new_figure(width=min(16.0, max(6.4, 1.0 + 4.6 * len(traces))), height=4.8)
    axs = np.atleast_1d(fig.subplots(1, len(traces), squeeze=False)[0])
    data = []
    fronts: dict[str, list[str]] = {}
    for ax, tr in zip(axs, traces, strict=False):
        idx = [i for i, r in enumerate(rows) if r.get("trace") == tr]
        pts = [(float(rows[i]["cycles_sparse"]), float(rows[i]["energy_pj_sparse"]) * 1e-6) for i in idx]
        dpts = [(float(rows[i]["cycles_dense"]), float(rows[i]["energy_pj_dense"]) * 1e-6) for i in idx
                if rows[i].get("cycles_dense") is not None and rows[i].get("energy_pj_dense") is not None]
        front = pareto_front(pts)
        ax.scatter([p[0] for p in dpts], [p[1] for p in dpts], s=14, color="#7f7f7f", marker="s", alpha=0.6,
                   label="dense baseline of each config")
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=18, color="#f4a582", label="sparse config")
        fx, fy = [pts[i][0] for i in front], [pts[i][1] for i in front]
        ax.plot(fx, fy, "-o", color="#d62728", markersize=5, label="Pareto front (sparse)")
        # Numbers on the plot (config names of nearby points would not fit), placed so that none overlaps
        # another or a front marker (labels.py); the configs are in the caption and the table.
        label_points(ax, [pts[j] for j in front], [str(n) for n in range(1, len(front) + 1)], color="#d62728",
                     marker_pt=5)
        legend_lines = [f"{n}: {config_text(rows[idx[j]], axes_def, idx[j])}" for n, j in enumerate(front, 1)]
        fronts[str(tr)] = legend_lines
        for j, i in enumerate(idx):
            data.append({"trace": tr, "config": rows[i].get("config"), "cycles_sparse": pts[j][0],
                         "energy_uj_sparse": pts[j][1], "on_front": j in front,
                         "front_number": front.index(j) + 1 if j in front else None,
                         **{lab: rows[i].get(lab.split(" = ")[0]) for lab, _ in axes_def}})
        ax.set_xscale("log")
        ax.set_yscale("log")
        plain_log(ax, axis="x")
        plain_log(ax, axis="y")
        ax.set_xlabel("cycles per training iteration (log)")
        ax.set_ylabel("energy per iteration (µJ, log)")
        ax.set_title(str(tr), fontsize=10)
    fig.legend(*axs[0].get_legend_handles_labels(), loc="outside lower center", ncol=3 if len(traces) > 1 else 2,
               frameon=False)
    fig.suptitle(f"Sweep '{sweep.label}': cycles vs energy per training iteration", fontsize=12)
    listing = "; ".join(f"{tr}: " + ", ".join(f"[{x}]" for x in lines) for tr, lines in fronts.items())
    return Plot(name=name, title=f"Sweep '{sweep.label}': cycles-vs-energy Pareto front", figure=fig, rows=data,
                caption="Every configuration of the sweep (sparse, and its dense baseline in grey); the red line "
                        "joins the configurations no other beats on both cycles and energy, numbered by cycles "
                        f"(the 'Pareto front' column of the table below). Front: {listing}.",
                section=f"Sweep {sweep.label}")


def config_text(row: Mapping[str, Any], axes_def: Sequence[tuple[str, Sequence[Any]]], i: int) -> str:
    """'PE rows = PE columns 16, MAC width 8 bit, DRAM bandwidth 64 B/cycle' for row ``i`` of a sweep."""
    parts = []
    for lab, vals in axes_def:
        names = " = ".join(dict.fromkeys(param_display(k.strip())[0] for k in lab.split(" = ")))
        unit = param_display(lab.split(" = ")[0].strip())[1]
        unit = "" if unit in ("PEs", "per PE") else unit
        parts.append(f"{names} {_short_value(vals[i])}{(' ' + unit) if unit else ''}")
    return ", ".join(parts)


def _short_value(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)
