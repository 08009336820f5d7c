"""One figure across all results: speed-up and energy gain over dense per network/method and pass.

This is the headline picture (SCNN's 2.7× / 2.3×): one group per results file, so captured
none-vs-dither traces of the same network sit side by side.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np

from hwsim.report.inputs import ResultEntry
from hwsim.report.style import PASS_COLOR, PASS_LABEL, Plot, new_figure, times
from hwsim.report.tables import summary_rows
from hwsim.results import SCOPES


def overview(entries: Sequence[ResultEntry], *, name: str) -> Plot:
    rows = summary_rows(entries)
    labels = [e.label for e in entries]
    fig = new_figure(width=min(16.0, 5.0 + 1.8 * len(labels)), height=5.2)
    ax_s, ax_e = fig.subplots(1, 2)
    x = np.arange(len(labels))
    width = 0.8 / len(SCOPES)
    for j, scope in enumerate(SCOPES):
        sp = [next((r["speedup_sparse"] for r in rows if r["result"] == lab and r["scope"] == scope), None)
              for lab in labels]
        en = [next((r["energy_ratio_sparse"] for r in rows if r["result"] == lab and r["scope"] == scope), None)
              for lab in labels]
        for ax, vals in ((ax_s, sp), (ax_e, en)):
            y = np.array([np.nan if v is None else v for v in vals], dtype=float)
            bars = ax.bar(x + (j - 1.5) * width, y, width, color=PASS_COLOR[scope], label=PASS_LABEL[scope])
            if scope == "iteration":
                ax.bar_label(bars, labels=[times(v) if np.isfinite(v) else "" for v in y], fontsize=8, padding=2)
    for ax, what in ((ax_s, "speed-up over dense (×)"), (ax_e, "energy gain over dense (×)")):
        ax.axhline(1.0, color="black", linewidth=0.8)
        crowded = len(labels) > 6
        ax.set_xticks(x, _wrap(labels), rotation=30 if crowded else 0, ha="right" if crowded else "center",
                      fontsize=8 if crowded else 9)
        ax.set_ylabel(what)
        ax.margins(y=0.12)
    ax_s.set_title("sparse vs dense: cycles")
    ax_e.set_title("sparse vs dense: energy")
    fig.legend(*ax_s.get_legend_handles_labels(), loc="outside lower center", ncol=4, frameon=False)
    title = ("Sparse vs dense per results file — one training iteration, or a whole run for whole-run results "
             "(what was replayed: provenance block)")
    # Wrapped to the figure's width (about 0.6 em per character at 11 pt): one results file makes a 6.8 in figure.
    fig.suptitle(textwrap.fill(title, max(40, int(fig.get_figwidth() * 72 / (11 * 0.6)))), fontsize=11)
    return Plot(name=name, title="Speed-up and energy gain per network", figure=fig, rows=rows,
                caption="Sparse (zero-skipping) accelerator against the dense baseline built from the same "
                        "architecture file: dense cycles ÷ sparse cycles and dense energy ÷ sparse energy, per pass "
                        "and for the whole training iteration (labelled).", section="Overview")


def _wrap(labels: Sequence[str]) -> list[str]:
    return [lab.replace(" @ ", "\n@ ").replace(" [", "\n[") for lab in labels]
