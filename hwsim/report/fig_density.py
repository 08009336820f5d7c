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


CROSSOVER_TOLERANCE = 0.01  # within 1 % of dense is "equal", not a crossover


def crossovers(x: Sequence[float], y: Sequence[float], *, tol: float = 0.0) -> list[float]:
    """x where y crosses 1 (x ascending, linear interpolation between neighbouring points).

    A crossover needs a point clearly below 1 and a later point clearly above (or the reverse):
    points within ``tol`` of 1 only touch it. A curve that ends *at* 1 has no crossover.
    """
    pts = list(zip(x, y, strict=True))
    signs = [(i, 1 if yi > 1.0 + tol else -1) for i, (_, yi) in enumerate(pts) if abs(yi - 1.0) > tol]
    out = []
    for (i0, s0), (i1, s1) in zip(signs, signs[1:], strict=False):
        if s0 == s1:
            continue
        for j in range(i0, i1):
            (xa, ya), (xb, yb) = pts[j], pts[j + 1]
            if (ya - 1.0) * (yb - 1.0) <= 0 and ya != yb:
                out.append(xa + (1.0 - ya) * (xb - xa) / (yb - ya))
                break
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


def _batch_note(sweep: SweepEntry, rows: Sequence[Mapping[str, Any]]) -> str:
    """'one training iteration (3 passes), synthetic batch of 4' from the sweep's trace spec."""
    batches = {((t.get("synthetic") or {}).get("batch")) for t in sweep.spec.get("traces") or []
               if isinstance(t, Mapping)}
    batches.discard(None)
    training = sweep.spec.get("training", True)
    what = "one training iteration (forward + backward-data + backward-weight)" if training else "inference"
    return what + (f", synthetic batch of {', '.join(map(str, sorted(batches)))}" if batches else "")


def density_figure(sweep: SweepEntry, group: tuple[str, str, list[Mapping[str, Any]], list[float]], *,
                   name: str) -> Plot:
    """Sparse, dense-gated and dense against density (the MAC bound on its own panel: it spans decades more)."""
    title, xlabel, rows, xs = group
    fig = new_figure(width=13.0, height=4.8)
    ax_c, ax_e, ax_i = fig.subplots(1, 3, width_ratios=[5, 5, 3.4])
    data = []
    norm: dict[str, dict[str, list[float]]] = {"cycles": {}, "energy_pj": {}}
    style = {"dense": {"linewidth": 5.0, "alpha": 0.45, "zorder": 1, "marker": None},
             "dense_gated": {"linewidth": 1.4, "linestyle": (0, (4, 2)), "zorder": 3, "marker": "s",
                             "markerfacecolor": "white", "markersize": 5},
             "sparse": {"linewidth": 1.8, "zorder": 2, "marker": "o", "markersize": 4}}
    for metric, ax in (("cycles", ax_c), ("energy_pj", ax_e)):
        for v in VARIANT_ORDER:
            y = [float(r[f"{metric}_{v}"]) / float(r[f"{metric}_dense"]) for r in rows]
            norm[metric][v] = y
            if v == "ideal":
                continue
            label = VARIANT_LABEL[v] + (" = dense cycles" if v == "dense_gated" and metric == "cycles" else "")
            ax.plot(xs, y, color=VARIANT_COLOR[v], label=label if metric == "cycles" or v != "dense_gated"
                    else VARIANT_LABEL[v], **style[v])
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_xlim(0, max(1.0, max(xs)) * 1.02)
    for v, metric, ls in (("ideal", "cycles", "--"), ("ideal", "energy_pj", ":")):
        ax_i.plot(xs, norm[metric][v], color=VARIANT_COLOR[v], linestyle=ls, marker="o", markersize=3,
                  label=f"MAC bound {'cycles' if metric == 'cycles' else 'energy'}")
    ax_i.set_yscale("log")
    ax_i.set_xlabel(xlabel)
    ax_i.set_xlim(0, max(1.0, max(xs)) * 1.02)
    ax_i.set_title("MAC bound (effectual MACs) ÷ dense", fontsize=10)
    ax_i.legend(fontsize=8, loc="lower right")
    for ax in (ax_c, ax_e, ax_i):
        plain_log(ax)
    ax_c.set_ylabel("cycles ÷ dense cycles (log)")
    ax_e.set_ylabel("energy ÷ dense energy (log)")
    ax_i.set_ylabel("MAC bound ÷ dense (log)")
    ax_c.set_title("latency vs density")
    ax_e.set_title("energy vs density")
    marks = [(ax_c, "latency", "dense", norm["cycles"]["sparse"]),
             (ax_e, "energy", "dense", norm["energy_pj"]["sparse"]),
             (ax_e, "energy", "dense_gated", [s / g for s, g in zip(
                 norm["energy_pj"]["sparse"], norm["energy_pj"]["dense_gated"], strict=True)])]
    notes = []
    for ax, what, base, curve in marks:
        xcs = crossovers(xs, curve, tol=CROSSOVER_TOLERANCE)
        shown = base.replace("_", "-")
        for xc in xcs:
            style_ = ":" if base == "dense_gated" else "-."
            ax.axvline(xc, color="black", linestyle=style_, linewidth=1.0)
            ax.annotate(f"{what} crossover\nvs {shown}: {xc:.2f}",
                        xy=(xc, 0.06 if base == "dense" else 0.22), xycoords=("data", "axes fraction"),
                        xytext=(-6, 0), textcoords="offset points", ha="right",
                        fontsize=8, bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.6", "alpha": 0.9})
            notes.append(f"{what} vs {shown} at {xc:.2f}")
        if not xcs:
            worst = max(curve)
            notes.append(f"no {what} crossover vs {shown} in [{min(xs):.2f}, {max(xs):.2f}] (sparse ÷ {shown} "
                         f"peaks at {worst:.3f}; within {CROSSOVER_TOLERANCE:.0%} counts as equal)")
    for i, r in enumerate(rows):
        data.append({"density": xs[i], "trace": r.get("trace"), "config": r.get("config"),
                     **{f"cycles_norm_{v}": norm["cycles"][v][i] for v in VARIANT_ORDER},
                     **{f"energy_norm_{v}": norm["energy_pj"][v][i] for v in VARIANT_ORDER},
                     **{f"cycles_{v}": r.get(f"cycles_{v}") for v in VARIANT_ORDER},
                     **{f"energy_pj_{v}": r.get(f"energy_pj_{v}") for v in VARIANT_ORDER}})
    fig.legend(*ax_c.get_legend_handles_labels(), loc="outside lower center", ncol=3, frameon=False)
    batch = _batch_note(sweep, rows)
    fig.suptitle(f"{title}\n{batch} — not SCNN's inference", fontsize=11)
    caption = (f"Cycles and energy of each variant ÷ dense, against {xlabel} (synthetic traces; {batch}: compare "
               "with SCNN's inference figures only with that in mind). Dense-gated has the dense run's cycles by "
               "construction (gating saves energy, not time). MAC bound = effectual MACs ÷ multipliers, on its own "
               "panel because it spans decades more. Crossovers: " + "; ".join(notes) + ".")
    return Plot(name=name, title=f"Latency and energy vs density — {title}", caption=caption, figure=fig,
                rows=data, section="Density")
