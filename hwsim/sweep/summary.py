"""The sweep summary table: one row per point, written as ``sweep.json`` and ``sweep.csv``.

Swept parameters are reported as the *effective* value of each dotted key in the validated
architecture (from the result's ``arch.params``), not as written in the sweep file, so a list
sweep that leaves a key at its base value still gets a number in that column. Speed-up is
``dense cycles / variant cycles`` and energy ratio ``dense energy / variant energy``: both are
"× better than dense", as SCNN states its 2.7× / 2.3×.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwsim._io import atomic_write_text, rows_to_csv
from hwsim.results import PASSES, VARIANTS, SimResult, finite_cell, ratio_cell, times
from hwsim.sweep.points import PointTask, point_path, read_point
from hwsim.sweep.spec import SweepSpec

if TYPE_CHECKING:
    from hwsim.trace.records import TraceMeta

SUMMARY_JSON = "sweep.json"
SUMMARY_CSV = "sweep.csv"


def dotted_get(d: Mapping[str, Any], key: str) -> Any:
    """``d["a"]["b"]`` for ``"a.b"``; None when a part is missing."""
    cur: Any = d
    for part in key.split("."):
        if not isinstance(cur, Mapping):
            return None
        if part in cur:
            cur = cur[part]
        elif part.isdigit() and int(part) in cur:
            cur = cur[int(part)]
        else:
            return None
    return cur


def point_row(spec: SweepSpec, task: PointTask, result: SimResult, meta: TraceMeta) -> dict[str, Any]:
    """One summary row: parameters, trace (``meta``: its typed meta: model, method, s, k), and per-variant
    totals of one point."""
    params = result.arch.get("params", {}) if isinstance(result.arch, Mapping) else {}
    row: dict[str, Any] = {"key": task.key, "config": task.config_index}
    for p in spec.parameters:
        v = dotted_get(params, p)
        row[p] = v if v is not None else task.overrides.get(p)
    tspec = {t.label: t for t in spec.traces}.get(task.trace_label)
    syn = dict(tspec.synthetic) if tspec and tspec.synthetic else {}
    row.update({
        "trace": task.trace_label,
        "model": meta.model,
        "method": meta.method,
        "s": meta.s,
        "k": meta.k,
        "iteration": task.iteration,
        "seed": task.seed,
        "synthetic_w_density": syn.get("w_density"),
        "synthetic_a_density": syn.get("a_density"),
        "synthetic_dz_density": syn.get("dz_density"),
    })
    macs_dense = sum(lp.macs_dense for lp in result.layers)
    macs_eff = sum(lp.macs_effectual for lp in result.layers)
    row["macs_dense"] = macs_dense
    row["macs_effectual"] = macs_eff
    row["effectual_fraction"] = ratio_cell(macs_eff, macs_dense)
    for v in VARIANTS:
        tot = result.total(v)
        row[f"cycles_{v}"] = tot.cycles
        row[f"energy_pj_{v}"] = tot.energy_pj
    for v in VARIANTS:
        row[f"speedup_{v}"] = finite_cell(result.speedup(v))
        row[f"energy_ratio_{v}"] = finite_cell(result.energy_ratio(v))
    for p in PASSES:
        row[f"speedup_sparse_{p}"] = finite_cell(result.speedup("sparse", pass_name=p))
    row["area_mm2"] = result.arch.get("area_mm2") if isinstance(result.arch, Mapping) else None
    row["speedup_sparse_vs_dense_systolic"] = finite_cell(result.speedup("sparse", baseline="dense_systolic"))
    row["utilization_sparse"] = result.total("sparse").utilization
    row["utilization_dense"] = result.total("dense").utilization
    prov = dict(result.provenance or {})
    tprov = prov.get("trace") or {}
    row["overrides"] = ", ".join(f"{k}={v}" for k, v in task.overrides.items())
    row["test_acc"] = tprov.get("test_acc")
    row["epochs"] = tprov.get("epochs")
    row["dataset"] = tprov.get("dataset")
    return row


def collect_rows(spec: SweepSpec, *, tasks: Sequence[PointTask], out: str | os.PathLike,
                 metas: Mapping[str, TraceMeta] | None = None) -> list[dict[str, Any]]:
    """Rows of the points of this sweep that are on disk, in sweep order.

    ``metas``: the typed meta of each trace label (as prepared by the runner); a label without one has its
    trace's manifest read once here."""
    metas = dict(metas or {})
    rows = []
    for t in tasks:
        p = point_path(out, t.key)
        if not p.exists():
            continue
        if t.trace_label not in metas:
            from hwsim.trace.format import load

            metas[t.trace_label] = load(t.trace_path, verify=False).meta
        d = read_point(p)
        rows.append(point_row(spec, t, SimResult.from_json(d["result"], where=str(p)), metas[t.trace_label]))
    return rows


def sweep_provenance(spec: SweepSpec, *, tasks: Sequence[PointTask], out: str | os.PathLike) -> dict[str, Any]:
    """The sweep's provenance: base arch (key parameters, energy table), version, command, and per trace label
    the trace part of its points' provenance (model, dataset, method, epochs, seed, test accuracy...)."""
    from hwsim.results import provenance

    base_arch: dict[str, Any] = {}
    traces: dict[str, Any] = {}
    for t in tasks:
        p = point_path(out, t.key)
        if not p.exists():
            continue
        prov = (read_point(p).get("result") or {}).get("provenance") or {}
        if prov.get("trace") and t.trace_label not in traces:
            traces[t.trace_label] = prov["trace"]
        if not base_arch and not t.overrides and prov.get("arch"):
            base_arch = dict(prov["arch"])
    if not base_arch:
        try:
            from hwsim.arch import load_arch

            a = load_arch(spec.arch)
            base_arch = provenance.arch_provenance(a.to_dict(), name=a.name, file=a.source,
                                                   content_hash=a.content_hash(), overrides={})
        except ValueError:
            base_arch = {"file": str(spec.arch)}
    return provenance.build(arch=base_arch, extra={"traces": traces})


def write_summary(spec: SweepSpec, *, tasks: Sequence[PointTask], out: str | os.PathLike,
                  metas: Mapping[str, TraceMeta] | None = None) -> list[dict[str, Any]]:
    """Write ``sweep.json`` (spec + rows) and ``sweep.csv`` (rows) for the finished points (``metas``: as
    :func:`collect_rows`)."""
    rows = collect_rows(spec, tasks=tasks, out=out, metas=metas)
    doc = {"sweep": spec.to_json(), "parameters": list(spec.parameters), "points_total": len(tasks),
           "points_done": len(rows), "provenance": sweep_provenance(spec, tasks=tasks, out=out), "rows": rows}
    atomic_write_text(Path(out) / SUMMARY_JSON, json.dumps(doc, indent=1, default=str))
    atomic_write_text(Path(out) / SUMMARY_CSV, rows_to_csv(rows))
    return rows


# ----------------------------------------------------------------------------- rankings

RANK_METRICS: tuple[tuple[str, str, str], ...] = (
    ("cycles_sparse", "fewest cycles", "{:,.0f} cycles"),
    ("energy_pj_sparse", "least energy", "{}"),
)


def pareto_indices(points: Sequence[tuple[float, ...]]) -> list[int]:
    """Indices of the points no other point matches or beats on every axis (minimise all), by ascending first axis."""
    front = []
    for i, p in enumerate(points):
        dominated = any(all(q[d] <= p[d] for d in range(len(p))) and any(q[d] < p[d] for d in range(len(p)))
                        for j, q in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i])


def area_key(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """The sparse-variant area column of the rows: an ``area…sparse`` column, else ``area_mm2`` (the simulated
    arch's area, which every simulated point records); None when no row has one."""
    keys = {k for r in rows for k in r if k.startswith("area") and k.endswith("sparse")}
    if keys:
        return sorted(keys)[0]
    return "area_mm2" if any(r.get("area_mm2") is not None for r in rows) else None


def ranking_lines(rows: Sequence[Mapping[str, Any]], parameters: Sequence[str]) -> list[str]:
    """Per trace: the config with the fewest absolute cycles, the least energy (and area), and the Pareto front.

    Speed-up over a config's *own* dense baseline is printed beside each, never used to rank: a small
    array that skips well relative to its own slow dense run is not the fast design.
    """
    lines = []
    akey = area_key(rows)
    metrics = [*RANK_METRICS, *(((akey, "smallest area", "{:.3g} mm²"),) if akey else ())]
    for tr in dict.fromkeys(r.get("trace") for r in rows):
        sub = [r for r in rows if r.get("trace") == tr and r.get("cycles_sparse") is not None]
        if not sub:
            continue
        lines.append(f"trace {tr} ({len(sub)} points):")
        for key, what, pat in metrics:
            cand = [r for r in sub if r.get(key) is not None]
            if not cand:
                continue
            best = min(cand, key=lambda r, k=key: (float(r[k]), float(r["cycles_sparse"])))
            value = format_energy(float(best[key])) if key.startswith("energy") else pat.format(float(best[key]))
            lines.append(f"  {what}: {value} — {_config_text(best, parameters)} "
                         f"(speed-up over its own dense {times(best.get('speedup_sparse'))})")
        axes = ["cycles_sparse", "energy_pj_sparse", *([akey] if akey else [])]
        pts_rows = [r for r in sub if all(r.get(a) is not None for a in axes)]
        front = pareto_indices([tuple(float(r[a]) for a in axes) for r in pts_rows])
        lines.append(f"  Pareto front ({' / '.join(a.replace('_sparse', '').replace('_pj', '') for a in axes)}): "
                     f"{len(front)} of {len(pts_rows)} points")
        for i in front:
            r = pts_rows[i]
            lines.append(f"    {float(r['cycles_sparse']):,.0f} cycles, {format_energy(float(r['energy_pj_sparse']))}"
                         f" — {_config_text(r, parameters)}")
    return lines


def _config_text(row: Mapping[str, Any], parameters: Sequence[str]) -> str:
    return ", ".join(f"{p}={row.get(p)}" for p in parameters) or "base arch"


def format_energy(pj: float) -> str:
    """One unit family for energy everywhere: pJ, nJ, µJ or mJ, three significant digits."""
    for scale, unit in ((1e9, "mJ"), (1e6, "µJ"), (1e3, "nJ")):
        if abs(pj) >= scale:
            return f"{pj / scale:.3g} {unit}"
    return f"{pj:.3g} pJ"
