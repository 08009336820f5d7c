"""Stacked cycle and energy breakdowns: where the time and the picojoules go.

Left: the whole network, per pass × variant, so a reader sees *why* sparse is faster (compute
shrinks) and what it pays for it (fragmentation, imbalance, bank conflicts). Right: per layer,
sparse variant, whole iteration, to find the layer that dominates.
"""

from __future__ import annotations

import numpy as np

from hwsim.report.inputs import ResultEntry
from hwsim.report.style import (
    CYCLE_COLOR,
    ENERGY_COLOR,
    PART_LABEL,
    PASS_LABEL,
    Plot,
    energy_unit,
    new_figure,
)
from hwsim.report.tables import breakdown_rows
from hwsim.results import ALL_PASSES, CYCLE_PARTS, ENERGY_PARTS, PASSES, UPDATE

_VARIANTS = ("dense", "dense_gated", "sparse", "ideal")
_SHORT = {"dense": "D", "dense_gated": "DG", "sparse": "S", "ideal": "M"}


def breakdown(entry: ResultEntry, *, kind: str, name: str) -> Plot:
    """``kind`` is ``cycles`` or ``energy``."""
    rows = breakdown_rows(entry)
    r = entry.result
    parts, colors = (CYCLE_PARTS, CYCLE_COLOR) if kind == "cycles" else (ENERGY_PARTS, ENERGY_COLOR)
    prefix = "cycles_" if kind == "cycles" else "energy_pj_"
    scale, unit = _unit(kind, rows, prefix, parts)
    layers = entry.result.layer_names()
    fig = new_figure(width=min(15.0, 10.0 + 0.45 * len(layers)), height=5.0)
    left, right = fig.subplots(1, 2, width_ratios=[12, max(5, len(layers))])
    # Left: per pass × variant, network totals.
    labels, x, pos = [], [], 0.0
    groups = []
    passes = [p for p in ALL_PASSES if p in PASSES or any(lp.pass_name == p for lp in entry.result.layers)]
    for p in passes:
        start = pos
        for v in _VARIANTS:
            labels.append(_SHORT[v])
            x.append(pos)
            pos += 1
        groups.append(((start + pos - 1) / 2, PASS_LABEL[p]))
        pos += 0.7
    bottom = np.zeros(len(x))
    stall_at = np.zeros(len(x))  # where each bar's memory stall starts (the waits on other passes are drawn in it)
    for part in parts:
        vals = np.array([next(r[prefix + part] for r in rows if r["layer"] == "total" and r["scope"] == p
                              and r["variant"] == v) for p in passes for v in _VARIANTS], dtype=float) * scale
        if part == "memory_stall":
            stall_at = bottom.copy()
        left.bar(x, vals, 0.8, bottom=bottom, color=colors[part], label=PART_LABEL[part])
        bottom += vals
    waits = np.array([r.scope_total(p, v).cycle_breakdown.memory_stall_foreign if kind == "cycles" else 0
                      for p in passes for v in _VARIANTS], dtype=float) * scale
    if waits.any():
        left.bar(x, waits, 0.8, bottom=stall_at, fill=False, hatch="///", edgecolor="white", linewidth=0)
    left.set_xticks(x, labels)
    for cx, text in groups:
        left.annotate(text, xy=(cx, 0), xycoords=("data", "axes fraction"), xytext=(0, -22),
                      textcoords="offset points", ha="center", va="top", fontsize=10)
    left.set_ylabel(unit)
    left.set_title("per pass: D dense, DG dense-gated, S sparse, M MAC bound")
    # Right: per layer, sparse, whole iteration.
    xl = np.arange(len(layers))
    bottom = np.zeros(len(layers))
    for part in parts:
        vals = np.array([next(r[prefix + part] for r in rows if r["layer"] == ln and r["variant"] == "sparse")
                         for ln in layers], dtype=float) * scale
        if part == "memory_stall":
            stall_at = bottom.copy()
        right.bar(xl, vals, 0.7, bottom=bottom, color=colors[part])
        bottom += vals
    lwaits = np.array([r.scope_total("iteration", "sparse", layer=ln).cycle_breakdown.memory_stall_foreign
                       if kind == "cycles" else 0 for ln in layers], dtype=float) * scale
    if lwaits.any():
        right.bar(xl, lwaits, 0.7, bottom=stall_at, fill=False, hatch="///", edgecolor="white", linewidth=0)
    right.set_xticks(xl, [entry.layer_label(n) for n in layers], rotation=35 if len(layers) > 3 else 0,
                     ha="right" if len(layers) > 3 else "center", fontsize=8)
    right.set_ylabel(unit)
    ran = [p for p in ALL_PASSES if any(lp.pass_name == p for lp in r.layers)]
    right.set_title("sparse, per layer, " + (" + ".join(PASS_LABEL[p] for p in ran) if len(ran) < 3 else
                                             f"{len([p for p in ran if p != UPDATE])} passes"
                                             + (" + update" if UPDATE in ran else "")))
    handles, names = left.get_legend_handles_labels()
    if waits.any():  # a stand-in handle: the hatch is white on the memory stall's colour
        from matplotlib.patches import Patch

        handles.append(Patch(facecolor=colors["memory_stall"], edgecolor="white", hatch="///", linewidth=0))
        names.append("memory stall: waits on other passes")
    fig.legend(handles, names, loc="outside lower center", ncol=min(len(names), 5), frameon=False)
    what = "Cycle" if kind == "cycles" else "Energy"
    fig.suptitle(f"{what} breakdown — {entry.label}\n{entry.batch_text}", fontsize=11)
    caption = ("Cycles split into compute, intra-PE fragmentation, inter-PE imbalance, bank conflicts and memory "
               "stall; the stacks add up to the simulated cycles." + (
                   " Hatched, inside the memory stall: the cycles a pass waited while the DRAM channel carried other "
                   "layer-passes' transfers (one schedule per iteration charges a wait to the pass that waits)."
                   if waits.any() else "") if kind == "cycles" else
               "Energy split into MAC, registers/accumulators, SRAM, crossbar and DRAM (Σ actions × energy "
               "table); the stacks add up to the simulated energy.")
    return Plot(name=name, title=f"{what} breakdown — {entry.label}", caption=caption, figure=fig, rows=rows,
                section=entry.label)


def _unit(kind: str, rows, prefix: str, parts) -> tuple[float, str]:
    peak = max((sum(r[prefix + p] for p in parts) for r in rows), default=0.0)
    if kind == "energy":
        scale, unit = energy_unit(peak)
        return scale, f"energy ({unit})"
    if peak >= 1e6:
        return 1e-6, "cycles (millions)"
    return (1e-3, "cycles (thousands)") if peak >= 1e4 else (1.0, "cycles")
