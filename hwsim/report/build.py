"""Assemble a report folder from results, sweeps and traces.

Layout of ``out``::

    index.md, index.html        # the pages (HTML self-contained)
    figures/<name>.png|.svg     # every figure in both formats
    data/<name>.csv|.json       # every number of every figure and table

Sections appear only when their inputs exist: per-network summaries and per-layer figures need
results files; density and parameter plots need sweeps; training curves need trace directories.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hwsim.report import fig_breakdown, fig_density, fig_layers, fig_run, fig_summary, fig_sweep, fig_training
from hwsim.report.inputs import ReportInputError, ReportInputs, SweepEntry, TraceEntry, load_inputs
from hwsim.report.page import Page, Table, write_html, write_markdown
from hwsim.report.style import Plot, SavedPlot, save_figure
from hwsim.report.tables import SUMMARY_COLUMNS, fmt, format_table, summary_rows, write_rows

FIGURES, DATA = "figures", "data"


@dataclass(frozen=True)
class ReportOutcome:
    out: Path
    index_md: Path
    index_html: Path
    plots: tuple[SavedPlot, ...]
    tables: tuple[Table, ...]


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] or "x"


def build_report(inputs: ReportInputs | Iterable[str | os.PathLike], *, out: str | os.PathLike,
                 title: str | None = None, progress: bool = False, dpi: int = 150) -> ReportOutcome:
    """Write the report for ``inputs`` (paths or already-loaded inputs) into ``out``.

    ``dpi`` sets the PNG resolution (and so the size of the self-contained HTML): 150 for
    reading, ~100 for a report meant to be committed or mailed.
    """
    if not isinstance(inputs, ReportInputs):
        inputs = load_inputs(inputs)
    if inputs.empty:
        raise ReportInputError("nothing to report: give results.json files, sweep directories or trace directories")
    root = Path(out)
    (root / FIGURES).mkdir(parents=True, exist_ok=True)
    (root / DATA).mkdir(parents=True, exist_ok=True)
    plots: list[Plot] = []
    tables: list[Table] = []
    sections: list[str] = []

    def add(p: Plot | None) -> None:
        if p is not None:
            plots.append(p)
            if p.section not in sections:
                sections.append(p.section)

    if inputs.results:
        sections.append("Overview")
        tables.extend(_summary_tables(inputs, root))
        add(fig_summary.overview(inputs.results, name="overview_speedup_energy"))
        for e in inputs.results:
            s = slug(e.label)
            add(fig_layers.speedup_bars(e, name=f"{s}_layer_speedup"))
            add(fig_layers.energy_bars(e, name=f"{s}_layer_energy"))
            add(fig_breakdown.breakdown(e, kind="cycles", name=f"{s}_cycle_breakdown"))
            add(fig_breakdown.breakdown(e, kind="energy", name=f"{s}_energy_breakdown"))
            run = fig_run.load_run(e)  # whole-run results (hwsim simulate --iterations): cost over training
            add(fig_run.cost_over_training(e, name=f"{s}_run_cost", run=run))
            add(fig_run.whole_run_summary(e, name=f"{s}_run_summary", run=run))
    for sw in inputs.sweeps:
        s = slug(sw.label)
        for k, group in enumerate(fig_density.density_groups(sw)[:3]):
            add(fig_density.density_figure(sw, group, name=f"{s}_density_{k}"))
        add(fig_sweep.parameter_figure(sw, name=f"{s}_parameters"))
        add(fig_sweep.pareto_figure(sw, name=f"{s}_pareto"))
        tables.append(_sweep_table(sw, root))
        if tables[-1].section not in sections:
            sections.append(tables[-1].section)
    if inputs.traces:
        add(fig_training.density_over_training(inputs.traces, name="training_dz_density"))
        add(fig_training.worst_case_bits(inputs.traces, name="training_worst_bits"))
        tables.append(_training_table(inputs.traces, root))
        if "Training" not in sections:
            sections.append("Training")
    saved = []
    for i, p in enumerate(plots):
        if progress:
            print(f"report: figure {i + 1}/{len(plots)} {p.name}", flush=True)
        saved.append(_save(p, root, dpi))
        p.figure.clf()
    page = Page(title=title or "hwsim report", intro=_intro(inputs), sections=sections, plots=saved, tables=tables)
    md = write_markdown(page, out=root)
    html = write_html(page, out=root)
    return ReportOutcome(out=root, index_md=md, index_html=html, plots=tuple(saved), tables=tuple(tables))


def _save(p: Plot, root: Path, dpi: int) -> SavedPlot:
    png, svg = save_figure(p.figure, out_dir=root / FIGURES, name=p.name, dpi=dpi)
    csv_path = json_path = None
    if p.rows:
        csv_path, json_path = write_rows(p.rows, out_dir=root / DATA, name=p.name)
    return SavedPlot(name=p.name, title=p.title, caption=p.caption, section=p.section, png=png, svg=svg,
                     csv=csv_path, json=json_path)


def _intro(inputs: ReportInputs) -> list[str]:
    lines = [f"Generated by hwsim on {time.strftime('%Y-%m-%d %H:%M')} from {len(inputs.results)} results file(s), "
             f"{len(inputs.sweeps)} sweep(s) and {len(inputs.traces)} trace(s)."]
    if inputs.results:
        archs = sorted({e.arch_name for e in inputs.results})
        lines.append("Variants: dense = same multipliers and buffers without zero skipping (SCNN's DCNN); "
                     "dense-gated = zero operands gate the multipliers and DRAM traffic is compressed (DCNN-opt, "
                     "saves energy, not cycles); sparse = zero-skipping architecture as configured; ideal = "
                     f"effectual MACs ÷ multipliers. Architectures: {', '.join(archs)}.")
    lines.append("Speed-up = dense cycles ÷ variant cycles; energy gain = dense energy ÷ variant energy. "
                 "Every figure has its numbers in data/ as CSV and JSON.")
    return lines


def _summary_tables(inputs: ReportInputs, root: Path) -> list[Table]:
    rows = summary_rows(inputs.results)
    csv_path, json_path = write_rows(rows, out_dir=root / DATA, name="summary")
    out = []
    for net in dict.fromkeys(r["network"] for r in rows):
        sub = [r for r in rows if r["network"] == net]
        header, body = format_table(sub, SUMMARY_COLUMNS)
        out.append(Table(title=f"Summary — {net}", header=header, body=body, section="Overview",
                         note="One row per results file and pass ('iteration' = all three passes).",
                         files=(csv_path, json_path)))
    return out


def _sweep_table(sw: SweepEntry, root: Path, limit: int = 30) -> Table:
    s = slug(sw.label)
    csv_path, json_path = write_rows(list(sw.rows), out_dir=root / DATA, name=f"{s}_sweep")
    rows = sorted(sw.rows, key=lambda r: -(r.get("speedup_sparse") or 0.0))
    cols: list[tuple[str, str, str]] = [(p, p, "{}") for p in sw.parameters]
    cols += [("trace", "trace", "{}"), ("cycles_sparse", "sparse cycles", "{:,}"),
             ("speedup_sparse", "speed-up", "{:.2f}×"), ("energy_pj_sparse", "sparse energy (pJ)", "{:.3g}"),
             ("energy_ratio_sparse", "energy gain", "{:.2f}×"), ("utilization_sparse", "sparse util.", "{:.0%}")]
    header, body = format_table(rows[:limit], cols)
    note = (f"{len(sw.rows)} points, sorted by sparse speed-up" + (f"; top {limit} shown" if len(rows) > limit else "")
            + f" (source: {sw.source.name}).")
    return Table(title=f"Sweep '{sw.label}' points", header=header, body=body, section=f"Sweep {sw.label}",
                 note=note, files=(csv_path, json_path))


def _training_table(traces: Sequence[TraceEntry], root: Path) -> Table:
    rows = []
    for t in traces:
        its = t.iterations
        last = its[-1] if its else {}
        tail = its[-max(1, len(its) // 10):] if its else []
        dens = [float(st["density"]) for it in tail for st in (it.get("layers") or {}).values()
                if isinstance(st, dict) and st.get("density") is not None]
        bits = [int(st["max_bits"]) for it in its for st in (it.get("layers") or {}).values()
                if isinstance(st, dict) and st.get("max_bits") is not None]
        rows.append({"trace": t.label, "model": t.meta.get("model"), "method": t.meta.get("method"),
                     "s": t.meta.get("s"), "iterations": len(its), "final_loss": last.get("loss"),
                     "final_acc": last.get("acc"), "dz_density_last10pct": sum(dens) / len(dens) if dens else None,
                     "worst_case_bits": max(bits) if bits else None})
    csv_path, json_path = write_rows(rows, out_dir=root / DATA, name="training_summary")
    cols = [("trace", "trace", "{}"), ("iterations", "iterations", "{}"), ("final_loss", "final loss", "{:.3f}"),
            ("final_acc", "final acc.", "{:.1%}"), ("dz_density_last10pct", "mean δ̃z density (last 10%)", "{:.2%}"),
            ("worst_case_bits", "worst-case bits", "{}")]
    header, body = format_table(rows, cols)
    return Table(title="Training runs", header=header, body=body, section="Training",
                 note="Per-trace statistics from the manifests (mean over layers and the last 10% of iterations).",
                 files=(csv_path, json_path))


__all__ = ["ReportOutcome", "build_report", "fmt"]
