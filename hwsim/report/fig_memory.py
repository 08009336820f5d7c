"""Where the memory stall comes from: per-layer DRAM bandwidth, a roofline, and per-layer utilisation.

Bandwidth: the DRAM bytes each layer-pass moves, and the bandwidth it would need to hide them behind
its compute (bytes ÷ non-stall cycles) against what the architecture has (``memory.dram_bytes_per_cycle``).
Roofline (Williams et al. 2009): effectual MACs per cycle against effectual MACs per DRAM byte, under
the compute roof (multipliers) and the bandwidth roof. Utilisation: MACs done ÷ (cycles × multipliers).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwsim.report.inputs import ResultEntry
from hwsim.report.style import (
    PASS_COLOR,
    PASS_LABEL,
    VARIANT_COLOR,
    VARIANT_LABEL,
    Plot,
    new_figure,
    percent,
    plain_log,
)
from hwsim.results import PASSES
from hwsim.results.provenance import dotted_get

_MARK = {"sparse": "o", "dense": "s"}


def _bandwidth(entry: ResultEntry) -> float | None:
    v = dotted_get(entry.result.arch.get("params") or {}, "memory.dram_bytes_per_cycle")
    return float(v) if isinstance(v, (int, float)) else None


def memory_rows(entry: ResultEntry) -> list[dict[str, Any]]:
    """Per layer × pass × (sparse, dense): DRAM bytes (a total: results do not split them by tensor), cycles,
    required bandwidth, operational intensity and achieved effectual MACs per cycle."""
    rows = []
    for lp in entry.result.layers:
        for v in ("sparse", "dense"):
            vr = lp.variant(v)
            acts = dict(vr.actions)
            dram = float(acts.get("dram_bytes", 0.0))
            busy = vr.cycles - vr.cycle_breakdown.memory_stall
            rows.append({
                "layer": lp.name, "pass": lp.pass_name, "variant": v, "dram_bytes": dram,
                "cycles": vr.cycles, "memory_stall_cycles": vr.cycle_breakdown.memory_stall,
                "required_bytes_per_cycle": dram / busy if busy > 0 else None,
                "available_bytes_per_cycle": _bandwidth(entry),
                "effectual_macs": lp.macs_effectual,
                "macs_per_dram_byte": lp.macs_effectual / dram if dram > 0 else None,
                "effectual_macs_per_cycle": lp.macs_effectual / vr.cycles if vr.cycles else None,
                "multipliers": vr.multipliers, "utilization": vr.utilization,
            })
    return rows


def bandwidth_figure(entry: ResultEntry, *, name: str) -> Plot | None:
    rows = memory_rows(entry)
    if not any(r["dram_bytes"] for r in rows):
        return None
    bw = _bandwidth(entry)
    layers = entry.result.layer_names()
    fig = new_figure(width=min(16.0, 8.0 + 0.9 * len(layers)), height=5.4)
    ax_b, ax_r = fig.subplots(1, 2, width_ratios=[max(4, len(layers)), 4])
    # Left: required bandwidth per layer and pass (sparse solid, dense hollow) vs the available line.
    x = np.arange(len(layers))
    width = 0.8 / len(PASSES)
    for j, p in enumerate(PASSES):
        for v in ("sparse", "dense"):
            vals = [next((r["required_bytes_per_cycle"] for r in rows
                          if r["layer"] == ln and r["pass"] == p and r["variant"] == v), None) for ln in layers]
            y = np.array([np.nan if val is None else val for val in vals], dtype=float)
            ax_b.scatter(x + (j - 1) * width, y, marker=_MARK[v], s=36 if v == "sparse" else 30,
                         color=PASS_COLOR[p] if v == "sparse" else "none", edgecolors=PASS_COLOR[p],
                         label=f"{PASS_LABEL[p]}, {v}", zorder=3)
    if bw is not None and np.isfinite(bw):
        ax_b.axhline(bw, color="black", linestyle="--", linewidth=1.0, label=f"available: {bw:g} B/cycle")
    ax_b.set_yscale("log")
    plain_log(ax_b)
    ax_b.set_xticks(x, [entry.layer_label(n) for n in layers], rotation=30 if len(layers) > 3 else 0,
                    ha="right" if len(layers) > 3 else "center", fontsize=8)
    ax_b.set_xlim(-0.6, len(layers) - 0.4)
    ax_b.set_ylabel("DRAM bandwidth to hide traffic (B/cycle, log)")
    ax_b.set_title("required = DRAM bytes ÷ non-stall cycles", fontsize=10)
    # Right: roofline of the whole layer-passes.
    mults = max((r["multipliers"] for r in rows), default=1)
    ois = [r["macs_per_dram_byte"] for r in rows if r["macs_per_dram_byte"]]
    if ois:
        lo, hi = min(ois) / 2, max(ois) * 2
        xs = np.geomspace(lo, hi, 64)
        roof = np.minimum(mults, (bw if bw and np.isfinite(bw) else np.inf) * xs)
        ax_r.plot(xs, roof, color="black", linewidth=1.2, label=f"roof: min({mults} multipliers, "
                                                               f"{bw:g} B/cycle × intensity)" if bw else "roof")
    for r in rows:
        if r["macs_per_dram_byte"] and r["effectual_macs_per_cycle"]:
            ax_r.scatter(r["macs_per_dram_byte"], r["effectual_macs_per_cycle"], marker=_MARK[r["variant"]], s=26,
                         color=PASS_COLOR[r["pass"]] if r["variant"] == "sparse" else "none",
                         edgecolors=PASS_COLOR[r["pass"]], zorder=3)
    ax_r.set_xscale("log")
    ax_r.set_yscale("log")
    plain_log(ax_r, axis="x")
    plain_log(ax_r, axis="y")
    ax_r.set_xlabel("effectual MACs per DRAM byte (log)")
    ax_r.set_ylabel("effectual MACs per cycle (log)")
    ax_r.set_title("roofline, one point per layer × pass", fontsize=10)
    handles, labels = ax_b.get_legend_handles_labels()
    h2, l2 = ax_r.get_legend_handles_labels()
    fig.legend(handles + h2, labels + l2, loc="outside lower center", ncol=4, frameon=False, fontsize=8)
    fig.suptitle(f"DRAM bandwidth per layer — {entry.label}\n{entry.batch_text}", fontsize=11)
    backward = ("backward_data", "backward_weight")  # not the weight update, which is mostly DRAM traffic
    stall = sum(r["memory_stall_cycles"] for r in rows if r["variant"] == "sparse" and r["pass"] in backward)
    back = sum(r["cycles"] for r in rows if r["variant"] == "sparse" and r["pass"] in backward)
    # the part of that stall spent waiting on other layer-passes' transfers (hwsim/sim/schedule.py)
    foreign = sum(lp.sparse.cycle_breakdown.memory_stall_foreign for lp in entry.result.layers
                  if lp.pass_name in backward)
    above = sum(1 for r in rows if r["macs_per_dram_byte"] and r["effectual_macs_per_cycle"] and bw
                and r["effectual_macs_per_cycle"] > 1.001 * min(mults, bw * r["macs_per_dram_byte"]))
    return Plot(name=name, title=f"DRAM bandwidth and roofline — {entry.label}", figure=fig, rows=rows,
                section=entry.label,
                caption="Left: the DRAM bandwidth each layer-pass would need to hide its traffic behind compute "
                        "(filled: sparse, hollow: dense) against the architecture's bandwidth (dashed); points above "
                        "the line stall on memory. Right: roofline — effectual MACs per cycle against effectual "
                        "MACs per DRAM byte; points on the sloped roof are bandwidth-bound. Memory stall is "
                        f"{percent(stall / back if back else None)} of the sparse backward cycles"
                        + (f", {percent(foreign / back)} of them spent waiting while the DRAM channel carried "
                           "other layer-passes' transfers (part of that stall: a wait is charged to the pass that "
                           "waits)" if foreign and back else "") + ". "
                        "The DRAM bytes are totals per layer-pass (results do not split them by tensor)."
                        + (f" {above} point(s) sit above the roof: with one memory schedule per iteration "
                           "(memory.schedule: iteration, the default) a layer-pass's DRAM traffic also moves while "
                           "the layer-passes around it compute (prefetch, drain), so per layer-pass the roof is "
                           "indicative; it bounds the whole iteration." if above else ""))


def utilisation_figure(entry: ResultEntry, *, name: str) -> Plot:
    rows = [r for r in memory_rows(entry)]
    layers = entry.result.layer_names()
    fig = new_figure(width=min(16.0, 5.0 + 2.2 * len(layers)), height=4.8)
    axs = fig.subplots(1, len(PASSES), sharey=True)
    x = np.arange(len(layers))
    for ax, p in zip(axs, PASSES, strict=True):
        for j, v in enumerate(("dense", "sparse")):
            vals = [next((r["utilization"] for r in rows if r["layer"] == ln and r["pass"] == p
                          and r["variant"] == v and r["cycles"]), np.nan) for ln in layers]
            # a NaN bar would get no label at all (matplotlib blanks them): draw it at 0 so "n/a" shows
            bars = ax.bar(x + (j - 0.5) * 0.38, np.nan_to_num(np.asarray(vals, dtype=float), nan=0.0), 0.38,
                          color=VARIANT_COLOR[v], label=VARIANT_LABEL[v])
            ax.bar_label(bars, labels=[percent(val) if np.isfinite(val) else "n/a" for val in vals], fontsize=7,
                         padding=1)
        ax.set_xticks(x, [entry.layer_label(n) for n in layers], rotation=30 if len(layers) > 3 else 0,
                      ha="right" if len(layers) > 3 else "center", fontsize=8)
        ax.set_xlim(-0.6, len(layers) - 0.4)
        ax.set_title(PASS_LABEL[p], fontsize=10)
    axs[0].set_ylabel("utilisation (MACs ÷ cycles × multipliers)")
    axs[0].yaxis.set_major_formatter(_pct())
    axs[0].set_ylim(0, 1.08)
    fig.legend(*axs[0].get_legend_handles_labels(), loc="outside lower center", ncol=2, frameon=False)
    fig.suptitle(f"Per-layer utilisation — {entry.label}\n{entry.batch_text}", fontsize=11)
    return Plot(name=name, title=f"Per-layer utilisation — {entry.label}", figure=fig, rows=rows, section=entry.label,
                caption="Multiplications performed ÷ (cycles × multipliers) per layer and pass: the dense run counts "
                        "every multiplication (zeros too), the sparse run only the ones it performs (effectual, "
                        "times operand passes). Low sparse utilisation with a high MAC-bound speed-up is where "
                        "fragmentation, imbalance and memory stall eat the skipping.")


def _pct():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: f"{v:.0%}")
