"""The report's numbers: per-layer ratios, per-network summaries, CSV/JSON writers.

Everything plotted is computed here first, as plain rows, so the figure modules only draw and
every number in every figure is also written out as CSV and JSON.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hwsim._io import atomic_write_text, rows_to_csv
from hwsim.report.inputs import ResultEntry
from hwsim.report.style import PASS_LABEL, percent, times
from hwsim.results import SCOPES, UPDATE, VARIANTS, SimResult, ratio_cell, scope_passes
from hwsim.results.views import nongemm_share


def layer_ratio_rows(entry: ResultEntry) -> list[dict[str, Any]]:
    """Per layer (plus ``total``) × scope × variant: cycles, energy, speed-up and normalised energy."""
    r = entry.result
    rows = []
    for scope in SCOPES:
        names = [*r.layer_names(), "total"]
        for name in names:
            layer = None if name == "total" else name
            dense = r.scope_total(scope, "dense", layer=layer)
            for v in VARIANTS:
                vr = r.scope_total(scope, v, layer=layer)
                rows.append({"result": entry.label, "layer": name, "scope": scope, "variant": v,
                             "cycles": vr.cycles, "energy_pj": vr.energy_pj,
                             "speedup_vs_dense": ratio_cell(dense.cycles, vr.cycles),
                             "energy_norm_to_dense": ratio_cell(vr.energy_pj, dense.energy_pj),
                             "utilization": vr.utilization})
    return rows


def breakdown_rows(entry: ResultEntry) -> list[dict[str, Any]]:
    """Cycle and energy components per scope × variant and per layer (whole iteration)."""
    r = entry.result
    rows = []
    for scope in (*SCOPES, *([UPDATE] if any(lp.pass_name == UPDATE for lp in r.layers) else [])):
        for v in VARIANTS:
            vr = r.scope_total(scope, v)
            rows.append({"result": entry.label, "layer": "total", "scope": scope, "variant": v,
                         **{f"cycles_{k}": x for k, x in vr.cycle_breakdown.to_json().items()},
                         **{f"energy_pj_{k}": x for k, x in vr.energy_breakdown.to_json().items()}})
    for name in r.layer_names():
        for v in VARIANTS:
            vr = r.scope_total("iteration", v, layer=name)
            rows.append({"result": entry.label, "layer": name, "scope": "iteration", "variant": v,
                         **{f"cycles_{k}": x for k, x in vr.cycle_breakdown.to_json().items()},
                         **{f"energy_pj_{k}": x for k, x in vr.energy_breakdown.to_json().items()}})
    return rows


def mean_density(result: SimResult, role: str, scope: str) -> float | None:
    """MAC-weighted mean operand density of one role over the layers of a pass (or all passes)."""
    num = den = 0.0
    for lp in result.layers:
        if lp.pass_name not in scope_passes(scope):
            continue
        d = lp.density.get(role)
        if d is None:
            continue
        num += float(d) * lp.macs_dense
        den += lp.macs_dense
    return num / den if den else None


def bound_cells(r: SimResult, scope: str, sparse_cycles: int) -> dict[str, float | None]:
    """The sparse run's speed-up against each bound and baseline of a scope (issue 17): ``speedup_sparse_vs_<b>``
    = b's cycles ÷ sparse cycles for the dense baselines and ``dense_full`` (dense @ 100 % of the multipliers),
    ``fraction_of_<bound>`` the same ratio for the MAC and roofline bounds (≤ 1). Empty where a result predates a
    baseline (no cycles recorded)."""
    cells: dict[str, float | None] = {}
    for name, key in (("dense_full", "speedup_sparse_vs_dense_full"),
                      ("dense_systolic", "speedup_sparse_vs_dense_systolic"),
                      ("dense_equal_area", "speedup_sparse_vs_dense_equal_area"),
                      ("mac_bound", "fraction_of_mac_bound"), ("roofline", "fraction_of_roofline")):
        c = r.scope_cycles(scope, name)
        cells[key] = ratio_cell(c, sparse_cycles) if c else None
    return cells


def summary_rows(entries: Sequence[ResultEntry]) -> list[dict[str, Any]]:
    """One row per result × scope: the per-network summary table of the report."""
    rows = []
    for e in entries:
        r = e.result
        for scope in SCOPES:
            dense, sparse = r.scope_total(scope, "dense"), r.scope_total(scope, "sparse")
            gated, ideal = r.scope_total(scope, "dense_gated"), r.scope_total(scope, "ideal")
            macs = sum(lp.macs_dense for lp in r.layers if lp.pass_name in scope_passes(scope))
            eff = sum(lp.macs_effectual for lp in r.layers if lp.pass_name in scope_passes(scope))
            rows.append({
                "network": e.model, "method": e.method, "arch": e.arch_name, "overrides": e.overrides,
                "result": e.label, "scope": scope,
                "macs_dense": macs, "effectual_fraction": ratio_cell(eff, macs),
                "dz_density": mean_density(r, "dz", scope),
                "cycles_dense": dense.cycles, "cycles_sparse": sparse.cycles,
                "speedup_sparse": ratio_cell(dense.cycles, sparse.cycles),
                "nongemm_share_sparse": nongemm_share(sparse), "nongemm_share_dense": nongemm_share(dense),
                "speedup_ideal": ratio_cell(dense.cycles, ideal.cycles),  # the MAC bound's (key kept: README data)
                **bound_cells(r, scope, sparse.cycles),
                "energy_uj_dense": dense.energy_pj * 1e-6, "energy_uj_sparse": sparse.energy_pj * 1e-6,
                "energy_ratio_sparse": ratio_cell(dense.energy_pj, sparse.energy_pj),
                "energy_ratio_dense_gated": ratio_cell(dense.energy_pj, gated.energy_pj),
                "utilization_dense": dense.utilization, "utilization_sparse": sparse.utilization,
                "pj_per_effectual_mac_sparse": ratio_cell(sparse.energy_pj, eff),
                "pj_per_effectual_mac_dense": ratio_cell(dense.energy_pj, eff),
                "test_acc": (e.provenance.get("trace") or {}).get("test_acc"),
                # the weight update's share of the sparse iteration (hwsim/sim/update.py); None where not simulated
                "update_share_sparse": ratio_cell(r.scope_total("update", "sparse").cycles, sparse.cycles)
                if scope == "iteration" and any(lp.pass_name == "update" for lp in r.layers) else None,
                # memory.schedule: iteration charges a DRAM wait to the pass that waits: the share of the scope's
                # sparse cycles spent waiting on other passes' transfers (hwsim/sim/schedule.py); None: isolated,
                # or a results file written before the measurement (its zeros are "not measured")
                "foreign_wait_share_sparse": ratio_cell(sparse.cycle_breakdown.memory_stall_foreign, sparse.cycles)
                if _schedule(r) == "iteration" and _foreign_measured(r) else None,
            })
    return rows


def _foreign_measured(result: Any) -> bool:  # noqa: ANN401
    """Whether the results measured ``memory_stall_foreign`` (``run.schedule.foreign_waits``, hwsim/sim/replay.py)."""
    return ((result.run or {}).get("schedule") or {}).get("foreign_waits") == "measured"


def _schedule(result: Any) -> str | None:  # noqa: ANN401
    """The results' ``memory.schedule`` (None where the arch block does not record one)."""
    return ((result.arch.get("params") or {}).get("memory") or {}).get("schedule")


SUMMARY_COLUMNS = (
    ("method", "method", "{}"), ("arch", "arch", "{}"), ("overrides", "overrides", "{}"), ("scope", "pass", lambda v: PASS_LABEL.get(v, v)),
    ("effectual_fraction", "effectual MACs", "{:.1%}"), ("dz_density", "δ̃z density", "{:.1%}"),
    ("cycles_dense", "dense cycles", "{:,}"), ("cycles_sparse", "sparse cycles", "{:,}"),
    ("speedup_sparse", "speed-up sparse", times), ("nongemm_share_sparse", "non-GEMM share (sparse)", percent),
    ("speedup_ideal", "MAC bound speed-up", times),
    ("speedup_sparse_vs_dense_full", "sparse vs dense @ 100 %", times),
    ("speedup_sparse_vs_dense_equal_area", "sparse vs equal-area dense", times),
    ("fraction_of_mac_bound", "of MAC bound", percent), ("fraction_of_roofline", "of roofline bound", percent),
    ("update_share_sparse", "weight update (sparse)", percent),
    ("foreign_wait_share_sparse", "waits on other passes (sparse)", percent),
    ("energy_uj_dense", "dense energy (µJ)", lambda v: _sig3(v)), ("energy_uj_sparse", "sparse energy (µJ)",
                                                                     lambda v: _sig3(v)),
    ("energy_ratio_sparse", "energy gain sparse", times),
    ("energy_ratio_dense_gated", "energy gain gated", times),
    ("pj_per_effectual_mac_sparse", "sparse pJ / effectual MAC", "{:.3g}"),
    ("utilization_dense", "dense util.", percent), ("utilization_sparse", "sparse util.", percent),
)


def _sig3(v: Any) -> str:
    """Three significant digits without an exponent: 28,900 and 0.0123, never 2.89e+04."""
    if v is None or not math.isfinite(float(v)):
        return "–"
    x = float(v)
    if x == 0:
        return "0"
    digits = 2 - int(math.floor(math.log10(abs(x))))
    return f"{round(x, digits):,.{max(0, digits)}f}"


def fmt(value: Any, pattern: Any) -> str:
    """Format a cell: ``pattern`` is a ``str.format`` pattern or a function (``style.times``, ``style.percent``)."""
    if callable(pattern):
        return pattern(value) if value is not None else "–"
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    try:
        return pattern.format(value)
    except (ValueError, TypeError):
        return str(value)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str, str]]) -> tuple[
        list[str], list[list[str]]]:
    """Header and formatted cells for the Markdown/HTML tables."""
    header = [c[1] for c in columns]
    body = [[fmt(r.get(k), pat) for k, _, pat in columns] for r in rows]
    return header, body


def write_rows(rows: Sequence[Mapping[str, Any]], *, out_dir: str | os.PathLike, name: str) -> tuple[Path, Path]:
    """``name.csv`` and ``name.json`` with the same rows (None → empty CSV cell / JSON null)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / f"{name}.csv", out / f"{name}.json"
    atomic_write_text(csv_path, rows_to_csv(rows))
    # One row per line: diff-able and about half the size of an indented dump.
    atomic_write_text(json_path, "[\n" + ",\n".join(json.dumps({k: _json_cell(v) for k, v in r.items()}, default=str)
                                             for r in rows) + "\n]\n")
    return csv_path, json_path


def _json_cell(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
