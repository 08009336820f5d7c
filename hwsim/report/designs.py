"""The report section "Which accelerator for dithered backprop?": designs against dense arrays of their own area.

Input: a design comparison (:mod:`hwsim.results.designs`, e.g. ``hwsim demo``'s ``designs.json``): per trace ×
design, the speed-up and energy gain over the design's equal-area dense array per pass and over the whole
iteration. Output: a headline table (one row per design: its area, the dense array its area buys, the iteration
speed-up and energy gain — the geometric mean over the traces and their range — and a verdict in words), a table
per trace × design with the per-pass speed-ups, and a figure of the iteration speed-up and energy gain per design
and trace; their numbers in ``data/``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hwsim.report.inputs import DesignsEntry
from hwsim.report.page import Table
from hwsim.report.style import PASS_LABEL, Plot, new_figure, plain_log, times
from hwsim.report.tables import format_table, write_rows
from hwsim.results.designs import describe

SECTION = "Which accelerator for dithered backprop?"
_PASS_SCOPES = ("forward", "backward_data", "backward_weight", "update")


def verdict(speedup: float | None, energy_gain: float | None) -> str:
    """In words, against the equal-area dense array: 'wins' when both ratios are above 1, 'loses' when both are
    below, else each said on its own ('faster, more energy')."""
    if speedup is None or energy_gain is None:
        return "–"
    if speedup > 1 and energy_gain > 1:
        return "wins: faster, less energy"
    if speedup < 1 and energy_gain < 1:
        return "loses: slower, more energy"
    time = "faster" if speedup > 1 else "slower" if speedup < 1 else "as fast"
    energy = "less energy" if energy_gain > 1 else "more energy" if energy_gain < 1 else "the same energy"
    return f"{time}, {energy}"


def design_rows(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per design (the document's summary): what it is, area, equal-area array, iteration figures and verdict."""
    area = {r["design"]: r.get("equal_area_mm2") for r in doc["rows"]}
    out = []
    for d in doc["designs"]:
        shape = "×".join(str(x) for x in d.get("equal_area_shape") or [])
        ea = area.get(d["design"])
        out.append({"design": d["design"], "what": describe(d["design"]), "area_mm2": d.get("area_mm2"),
                    "equal_area": f"{shape} PEs, {ea:.2f} mm²" if shape and ea is not None else shape or None,
                    "traces": d.get("traces"), "speedup_geomean": d.get("speedup_geomean"),
                    "speedup_min": d.get("speedup_min"), "speedup_max": d.get("speedup_max"),
                    "energy_gain_geomean": d.get("energy_gain_geomean"), "energy_gain_min": d.get("energy_gain_min"),
                    "energy_gain_max": d.get("energy_gain_max"),
                    "verdict": verdict(d.get("speedup_geomean"), d.get("energy_gain_geomean"))})
    return out


def trace_rows(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per trace × design: the iteration speed-up and energy gain and the speed-up of every pass."""
    out = []
    for r in doc["rows"]:
        sp, en = r["speedup"], r["energy_gain"]
        out.append({"trace": r["model"], "design": r["design"], "speedup_iteration": sp.get("iteration"),
                    "energy_gain_iteration": en.get("iteration"),
                    **{f"speedup_{s}": sp.get(s) for s in _PASS_SCOPES},
                    "verdict": verdict(sp.get("iteration"), en.get("iteration"))})
    return out


def _with_range(mean_key: str, lo_key: str, hi_key: str):
    def cell(row: Mapping[str, Any]) -> str:
        if row.get(mean_key) is None:
            return "–"
        if row.get("traces", 1) <= 1:
            return times(row[mean_key])
        return f"{times(row[mean_key])} ({times(row.get(lo_key))}–{times(row.get(hi_key))})"
    return cell


def tables(entry: DesignsEntry, root: Path, data_dir: str, name: str = "designs") -> list[Table]:
    """The section's two tables, their rows written to ``data/<name>_summary|_per_trace.csv|json``."""
    doc = entry.doc
    summary = design_rows(doc)
    s_files = write_rows(summary, out_dir=root / data_dir, name=f"{name}_summary")
    n = max((r["traces"] or 0 for r in summary), default=0)
    shown = [{**r, "speedup": _with_range("speedup_geomean", "speedup_min", "speedup_max")(r),
              "energy": _with_range("energy_gain_geomean", "energy_gain_min", "energy_gain_max")(r)}
             for r in summary]
    mean = f"geo-mean of {n} traces (range)" if n > 1 else "one trace"
    header, body = format_table(shown, [
        ("design", "design", "{}"), ("what", "what it is", "{}"), ("area_mm2", "area (mm²)", "{:.2f}"),
        ("equal_area", "equal-area dense array", "{}"), ("speedup", f"iteration speed-up: {mean}", "{}"),
        ("energy", f"iteration energy gain: {mean}", "{}"), ("verdict", "against its equal-area dense array", "{}")])
    traces = "; ".join(f"{t['model']}: {t.get('replayed') or '?'}" for t in doc["traces"])
    t1 = Table(title="Each design against a dense array of its own area", header=header, body=body,
               section=SECTION, files=s_files,
               note="Speed-up = cycles of the equal-area dense array ÷ the design's cycles; energy gain = its energy "
                    "÷ the design's energy, over the whole training iteration (every pass, the weight update and "
                    "non-GEMM work). The equal-area dense array is the largest square-ish weight-stationary "
                    "systolic array whose area, global buffer included, is at most the design's, with its MAC "
                    "width, DRAM and energy table: what the same silicon buys without zero skipping. Below 1× "
                    f"that dense array wins. {_words(summary)} Replayed: {traces}.")
    per = trace_rows(doc)
    p_files = write_rows(per, out_dir=root / data_dir, name=f"{name}_per_trace")
    header, body = format_table(per, [
        ("trace", "trace", "{}"), ("design", "design", "{}"), ("speedup_iteration", "iteration speed-up", times),
        ("energy_gain_iteration", "iteration energy gain", times),
        *[(f"speedup_{s}", f"{PASS_LABEL.get(s, s)} speed-up", times) for s in _PASS_SCOPES],
        ("verdict", "verdict", "{}")])
    t2 = Table(title="Per trace and pass", header=header, body=body, section=SECTION, files=p_files,
               note="The same ratios per trace, and the speed-up of each pass over the same equal-area dense array "
                    "('–': a pass with no work). The δ̃z sparsity of dithered backprop shows in the backward "
                    "passes; the forward pass sees only the activations' and weights' zeros.")
    return [t1, t2]


def _words(summary: Sequence[Mapping[str, Any]]) -> str:
    """One sentence per outcome: which designs beat their equal-area dense array on time, which do not."""
    faster = [r["design"] for r in summary if (r["speedup_geomean"] or 0) > 1]
    slower = [r["design"] for r in summary if r["speedup_geomean"] is not None and r["speedup_geomean"] < 1]
    even = [r["design"] for r in summary if r["speedup_geomean"] == 1]
    parts = []
    if faster:
        parts.append(f"Faster than their equal-area dense array: {', '.join(faster)}.")
    if slower:
        parts.append(f"Slower than it (the same silicon is better spent on a dense array): {', '.join(slower)}.")
    if even:
        parts.append(f"As fast as it (1×, e.g. a dense array that is its own equal-area array): {', '.join(even)}.")
    return " ".join(parts)


def figure(entry: DesignsEntry, *, name: str) -> Plot | None:
    """Iteration speed-up and energy gain per design (bars per trace) on a log axis, 1× marked."""
    rows = trace_rows(entry.doc)
    designs = list(dict.fromkeys(r["design"] for r in rows))
    traces = list(dict.fromkeys(r["trace"] for r in rows))
    if not rows:
        return None
    fig = new_figure(width=11, height=0.9 + 0.42 * len(designs) * max(1, len(traces)) ** 0.5 + 1.2)
    axes = fig.subplots(1, 2, sharey=True)
    width = 0.8 / len(traces)
    colors = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3")
    for ax, key, label in ((axes[0], "speedup_iteration", "speed-up"), (axes[1], "energy_gain_iteration",
                                                                          "energy gain")):
        vals = []
        for j, t in enumerate(traces):
            by = {r["design"]: r[key] for r in rows if r["trace"] == t}
            ys = [i - 0.4 + width * (j + 0.5) for i in range(len(designs))]
            xs = [by.get(d) or math.nan for d in designs]
            vals += [x for x in xs if x == x]
            # bars start at 1×: to the right the design wins, to the left its equal-area dense array does
            ax.barh(ys, [x - 1.0 for x in xs], left=1.0, height=width * 0.9, color=colors[j % len(colors)], label=t)
        ax.axvline(1.0, color="#222222", lw=1)
        ax.set_xscale("log")
        if vals:
            lo, hi = min(min(vals), 1.0), max(max(vals), 1.0)
            ax.set_xlim(lo / 1.3, hi * 1.3)
        plain_log(ax, axis="x")
        ax.set_xlabel(f"iteration {label} over the equal-area dense array")
    axes[0].set_yticks(range(len(designs)), designs)
    axes[0].invert_yaxis()
    axes[0].legend(loc="best", fontsize=9, title="trace")
    fig.suptitle("Which accelerator for dithered backprop? Each design against a dense array of its own area")
    return Plot(name=name, title="Designs against dense arrays of their own area", figure=fig, rows=rows,
                section=SECTION,
                caption="Per design, one bar per trace: the whole-iteration speed-up (left) and energy gain (right) "
                        "over the dense systolic array of the design's own area, on log axes; bars start at 1×: to "
                        "the right the design wins, to the left the dense array of its area does. Numbers: the "
                        "tables above.")


__all__ = ["SECTION", "design_rows", "figure", "tables", "trace_rows", "verdict"]
