"""The figure of ``hwsim compare --plot``: several architectures on one trace, cycles and energy per pass.

Input is :meth:`hwsim.sim.compare.Comparison.rows` (plain dicts), so this module does not import the
simulator. Stacked bars split cycles into their causes (compute … memory stall) and energy into
MAC … DRAM; the label on each bar is the ratio to the reference (the first arch's sparse run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hwsim.report.style import (
    CYCLE_COLOR,
    ENERGY_COLOR,
    PART_LABEL,
    PASS_LABEL,
    Plot,
    energy_unit,
    new_figure,
    times,
)
from hwsim.results import CYCLE_PARTS, ENERGY_PARTS, SCOPES


def compare_figure(rows: Sequence[Mapping[str, Any]], *, title: str, name: str = "compare") -> Plot:
    whole = [r for r in rows if r.get("layer") == "*" and r.get("scope") in SCOPES]
    archs = list(dict.fromkeys(r["arch"] for r in whole))
    scopes = [s for s in SCOPES if any(r["scope"] == s for r in whole)]
    fig = new_figure(width=min(16.0, 4.0 + 1.0 * len(archs) * len(scopes)), height=8.4)
    ax_c, ax_e = fig.subplots(2, 1)
    peak_e = max((float(r["energy_pj"]) for r in whole), default=0.0)
    escale, eunit = energy_unit(peak_e)
    ref = archs[1] if len(archs) > 1 else archs[0]
    for ax, parts, colors, prefix, scale, ylabel in (
            (ax_c, CYCLE_PARTS, CYCLE_COLOR, "cycles_", 1e-3, "cycles (thousands)"),
            (ax_e, ENERGY_PARTS, ENERGY_COLOR, "energy_", escale, f"energy ({eunit})")):
        x, labels, centers = [], [], []
        pos = 0.0
        for s in scopes:
            start = pos
            for a in archs:
                x.append(pos)
                labels.append(a)
                pos += 1
            centers.append(((start + pos - 1) / 2, PASS_LABEL[s]))
            pos += 0.8
        bottom = np.zeros(len(x))
        for part in parts:
            vals = np.array([float(next(r for r in whole if r["scope"] == s and r["arch"] == a).get(prefix + part, 0.0))
                             for s in scopes for a in archs]) * scale
            ax.bar(x, vals, 0.8, bottom=bottom, color=colors[part], label=PART_LABEL[part])
            bottom += vals
        key = "speedup_vs_ref" if prefix == "cycles_" else "energy_vs_ref"
        ratios = [next(r for r in whole if r["scope"] == s and r["arch"] == a)[key] for s in scopes for a in archs]
        for xi, top, rt in zip(x, bottom, ratios, strict=True):
            ax.annotate(times(rt), (xi, top), xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                        fontsize=7)
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
        for cx, text in centers:
            ax.annotate(text, xy=(cx, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 4),
                        textcoords="offset points", ha="center", va="bottom", fontsize=9, fontweight="bold")
        ax.set_ylabel(ylabel)
        ax.margins(y=0.15)
        ax.legend(fontsize=8, ncol=min(len(parts), 5), loc="upper left", bbox_to_anchor=(0, -0.32), frameon=False)
    fig.suptitle(title, fontsize=11)
    return Plot(name=name, title=title, figure=fig, rows=[dict(r) for r in whole], section="Compare",
                caption=f"Cycles (top) and energy (bottom) of each architecture's sparse run beside the first "
                        f"architecture's dense baseline, per pass and for the whole iteration; labels: ratio to "
                        f"{ref}'s sparse run (> 1 = better than {ref}).")
