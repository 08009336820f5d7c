"""The sweep summary table: one row per point, written as ``sweep.json`` and ``sweep.csv``.

Swept parameters are reported as the *effective* value of each dotted key in the validated
architecture (from the result's ``arch.params``), not as written in the sweep file, so a list
sweep that leaves a key at its base value still gets a number in that column. Speed-up is
``dense cycles / variant cycles`` and energy ratio ``dense energy / variant energy``: both are
"× better than dense", as SCNN states its 2.7× / 2.3×.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hwsim._io import atomic_write_text, rows_to_csv
from hwsim.results import PASSES, VARIANTS, SimResult
from hwsim.sweep.points import PointTask, point_path, read_point
from hwsim.sweep.spec import SweepSpec

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


def point_row(spec: SweepSpec, task: PointTask, result: SimResult) -> dict[str, Any]:
    """One summary row: parameters, trace, and per-variant totals of one point."""
    params = result.arch.get("params", {}) if isinstance(result.arch, Mapping) else {}
    row: dict[str, Any] = {"key": task.key, "config": task.config_index}
    for p in spec.parameters:
        v = dotted_get(params, p)
        row[p] = v if v is not None else task.overrides.get(p)
    tspec = {t.label: t for t in spec.traces}.get(task.trace_label)
    syn = dict(tspec.synthetic) if tspec and tspec.synthetic else {}
    row.update({
        "trace": task.trace_label,
        "model": result.trace.get("model"),
        "method": result.trace.get("method"),
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
    row["effectual_fraction"] = macs_eff / macs_dense if macs_dense else None
    for v in VARIANTS:
        tot = result.total(v)
        row[f"cycles_{v}"] = tot.cycles
        row[f"energy_pj_{v}"] = tot.energy_pj
    for v in VARIANTS:
        row[f"speedup_{v}"] = _finite(result.speedup(v))
        row[f"energy_ratio_{v}"] = _finite(result.energy_ratio(v))
    for p in PASSES:
        row[f"speedup_sparse_{p}"] = _finite(result.speedup("sparse", pass_name=p))
    row["area_mm2"] = result.arch.get("area_mm2") if isinstance(result.arch, Mapping) else None
    row["speedup_sparse_vs_dense_systolic"] = _finite(result.speedup("sparse", baseline="dense_systolic"))
    row["utilization_sparse"] = result.total("sparse").utilization
    row["utilization_dense"] = result.total("dense").utilization
    return row


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def collect_rows(spec: SweepSpec, *, tasks: Sequence[PointTask], out: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of the points of this sweep that are on disk, in sweep order."""
    rows = []
    for t in tasks:
        p = point_path(out, t.key)
        if not p.exists():
            continue
        d = read_point(p)
        rows.append(point_row(spec, t, SimResult.from_json(d["result"], where=str(p))))
    return rows


def write_summary(spec: SweepSpec, *, tasks: Sequence[PointTask], out: str | os.PathLike) -> list[dict[str, Any]]:
    """Write ``sweep.json`` (spec + rows) and ``sweep.csv`` (rows) for the finished points."""
    rows = collect_rows(spec, tasks=tasks, out=out)
    doc = {"sweep": spec.to_json(), "parameters": list(spec.parameters), "points_total": len(tasks),
           "points_done": len(rows), "rows": rows}
    atomic_write_text(Path(out) / SUMMARY_JSON, json.dumps(doc, indent=1, default=str))
    atomic_write_text(Path(out) / SUMMARY_CSV, rows_to_csv(rows))
    return rows
