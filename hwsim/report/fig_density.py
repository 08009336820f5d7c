"""Latency and energy against operand density, with the crossover marked (SCNN Fig. 7 style).

Input is a sweep whose traces are synthetic at several densities (``density: [...]`` in the
sweep file). The crossover is where the sparse design stops paying: its cycles (or energy)
equal the dense baseline's, found by linear interpolation between the swept densities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hwsim.report.inputs import SweepEntry
from hwsim.report.style import VARIANT_COLOR, VARIANT_LABEL, VARIANT_ORDER, Plot, new_figure, plain_log

_COLS = ("synthetic_w_density", "synthetic_a_density", "synthetic_dz_density")
_NAMES = {"synthetic_w_density": "weight", "synthetic_a_density": "activation", "synthetic_dz_density": "δ̃z"}


def density_axis(rows: Sequence[Mapping[str, Any]]) -> tuple[str, list[float]] | None:
    """The x label and per-row density, if the rows sweep synthetic density; else None."""
    if len(rows) < 3 or any(r.get(c) is None for r in rows for c in _COLS[2:]):
        return None
    varying = [c for c in _COLS if len({r.get(c) for r in rows}) > 1]
    if not varying:
        return None
    if len(varying) == 1:
        c = varying[0]
        return f"{_NAMES[c]} density", [float(r[c]) for r in rows]
    if all(len({r.get(c) for c in varying}) == 1 for r in rows):
        return " = ".join(_NAMES[c] for c in varying) + " density", [float(r[varying[0]]) for r in rows]
    return None


def crossovers(x: Sequence[float], y: Sequence[float]) -> list[float]:
    """x where y crosses 1 (linear interpolation between neighbouring points, x ascending)."""
    out = []
    pts = list(zip(x, y, strict=True))
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        if (y0 - 1.0) * (y1 - 1.0) < 0:
            out.append(x0 + (1.0 - y0) * (x1 - x0) / (y1 - y0))
        elif y1 == 1.0 and y0 != 1.0:
            out.append(x1)
    return out


def density_groups(sweep: SweepEntry) -> list[tuple[str, str, list[Mapping[str, Any]], list[float]]]:
    """(title, x label, rows sorted by density, densities) per config × model that sweeps density."""
    groups: dict[tuple[Any, Any, Any], list[Mapping[str, Any]]] = {}
    for r in sweep.rows:
        groups.setdefault((r.get("config"), r.get("model"), r.get("seed")), []).append(r)
    out = []
    for (cfg, model, _seed), rows in groups.items():
        axis = density_axis(rows)
        if axis is None:
            continue
        label, xs = axis
        order = np.argsort(xs, kind="stable")
        rows_sorted = [rows[i] for i in order]
        params = ", ".join(f"{p}={rows[0].get(p)}" for p in sweep.parameters)
        arch = Path(str(sweep.spec.get("arch", "arch"))).stem
        title = (f"{model}, synthetic density sweep '{sweep.label}' on {arch}"
                 + (f" (config {cfg}: {params})" if params else ""))
        out.append((title, label, rows_sorted, [xs[i] for i in order]))
    return out


def density_figure(sweep: SweepEntry, group: tuple[str, str, list[Mapping[str, Any]], list[float]], *,
                   name: str) -> Plot:
    title, xlabel, rows, xs = group
    fig = new_figure(width=11.0, height=4.4)
    ax_c, ax_e = fig.subplots(1, 2, sharex=True)
    data = []
    norm: dict[str, dict[str, list[float]]] = {"cycles": {}, "energy_pj": {}}
    for metric, ax in (("cycles", ax_c), ("energy_pj", ax_e)):
        for v in VARIANT_ORDER:
            y = [float(r[f"{metric}_{v}"]) / float(r[f"{metric}_dense"]) for r in rows]
            norm[metric][v] = y
            ax.plot(xs, y, marker="o", markersize=4, color=VARIANT_COLOR[v], label=VARIANT_LABEL[v],
                    linestyle="--" if v == "ideal" else "-", linewidth=4.0 if v == "dense" else 1.6,
                    alpha=0.6 if v == "dense" else 1.0, zorder=1 if v == "dense" else 2)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_xlim(0, max(1.0, max(xs)) * 1.02)
    plain_log(ax_c)
    plain_log(ax_e)
    ax_c.set_ylabel("cycles ÷ dense cycles (log)")
    ax_e.set_ylabel("energy ÷ dense energy (log)")
    ax_c.set_title("latency vs density")
    ax_e.set_title("energy vs density")
    marks = [(ax_c, "latency", "dense", crossovers(xs, norm["cycles"]["sparse"])),
             (ax_e, "energy", "dense", crossovers(xs, norm["energy_pj"]["sparse"])),
             (ax_e, "energy", "dense_gated", crossovers(xs, [s / g for s, g in zip(
                 norm["energy_pj"]["sparse"], norm["energy_pj"]["dense_gated"], strict=True)]))]
    notes = []
    for ax, what, base, xcs in marks:
        for xc in xcs:
            style = ":" if base == "dense_gated" else "-."
            ax.axvline(xc, color="black", linestyle=style, linewidth=1.0)
            ax.annotate(f"{what} crossover\nvs {base.replace('_', '-')}: {xc:.2f}",
                        xy=(xc, 0.06 if base == "dense" else 0.22), xycoords=("data", "axes fraction"),
                        xytext=(-6, 0), textcoords="offset points", ha="right",
                        fontsize=8, bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.6", "alpha": 0.9})
            notes.append(f"{what} vs {base.replace('_', '-')} at {xc:.2f}")
        if not xcs and base == "dense":
            notes.append(f"no {what} crossover vs dense in [{min(xs):.2f}, {max(xs):.2f}]")
    for i, r in enumerate(rows):
        data.append({"density": xs[i], "trace": r.get("trace"), "config": r.get("config"),
                     **{f"cycles_norm_{v}": norm["cycles"][v][i] for v in VARIANT_ORDER},
                     **{f"energy_norm_{v}": norm["energy_pj"][v][i] for v in VARIANT_ORDER},
                     **{f"cycles_{v}": r.get(f"cycles_{v}") for v in VARIANT_ORDER},
                     **{f"energy_pj_{v}": r.get(f"energy_pj_{v}") for v in VARIANT_ORDER}})
    fig.legend(*ax_c.get_legend_handles_labels(), loc="outside lower center", ncol=4, frameon=False)
    fig.suptitle(title, fontsize=11)
    caption = (f"Cycles and energy of each variant ÷ dense, against {xlabel} (synthetic traces). Crossovers: "
               + "; ".join(notes) + ".")
    return Plot(name=name, title=f"Latency and energy vs density — {title}", caption=caption, figure=fig,
                rows=data, section="Density")
