"""Assemble a report folder from results, sweeps, traces and design comparisons.

Layout of ``out``::

    index.md, index.html        # the pages (HTML self-contained)
    figures/<name>.png|.svg     # every figure in both formats (PNG only with svg=False)
    data/<name>.csv|.json       # every number of every figure and table

Sections appear only when their inputs exist: per-network summaries and per-layer figures need
results files; "Which accelerator for dithered backprop?" needs a design comparison (``designs.json``,
:mod:`hwsim.report.designs`); density and parameter plots need sweeps; training curves need trace directories.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwsim.report import designs, fig_density
from hwsim.report.fig_sweep import pareto_front
from hwsim.report.inputs import ReportInputError, ReportInputs, SweepEntry, TraceEntry, load_inputs
from hwsim.report.page import Page, Table, write_html, write_markdown
from hwsim.report.render import (
    BRIEF_FIGURES,
    DATA,
    FIGURES,
    RESULT_FIGURES,
    TRACE_FIGURES,
    Fig,
    render_figures,
)
from hwsim.report.style import SavedPlot, energy_unit, param_label, percent, times
from hwsim.report.tables import SUMMARY_COLUMNS, fmt, format_table, summary_rows, write_rows
from hwsim.results import provenance


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
                 title: str | None = None, progress: bool = False, dpi: int = 150, jobs: int = 1,
                 svg: bool = True, brief_methods: Collection[str] = ()) -> ReportOutcome:
    """Write the report for ``inputs`` (paths or already-loaded inputs) into ``out``.

    ``dpi`` sets the PNG resolution (and so the size of the self-contained HTML): 150 for
    reading, ~100 for a report meant to be committed or mailed. ``jobs`` > 1 draws the figures in
    that many spawned worker processes (:func:`hwsim.report.render.render_figures`); the files are byte-for-byte those
    of ``jobs=1``. ``svg=False`` writes each figure as the PNG the pages show and no SVG copy (about a sixth of
    the report's time; ``hwsim demo`` does that), the PNGs and data byte-for-byte those of ``svg=True``.
    ``brief_methods``: results whose trace's gradient method is one of these (``hwsim demo``: ``none``, its
    plain-backprop baselines) get only :data:`~hwsim.report.render.BRIEF_FIGURES` (layer speed-up, cycle
    breakdown); they keep their summary rows and their place in the overview, and the page says so.
    """
    if not isinstance(inputs, ReportInputs):
        inputs = load_inputs(inputs)
    if inputs.empty:
        raise ReportInputError("nothing to report: give results.json files, sweep directories, trace directories or "
                               "design comparisons (designs.json)")
    root = Path(out)
    (root / FIGURES).mkdir(parents=True, exist_ok=True)
    (root / DATA).mkdir(parents=True, exist_ok=True)
    tables: list[Table] = []
    sections: list[str] = []

    # The page's sections in order: a figure's section joins when its figure exists, a table's at its place.
    order: list[Fig | str] = []
    if inputs.results:
        sections.append("Overview")
        tables.extend(_summary_tables(inputs, root))
        order.append(Fig("overview", -1, "overview_speedup_energy"))
        for i, e in enumerate(inputs.results):
            s = slug(e.label)
            kinds = BRIEF_FIGURES if e.method in brief_methods else RESULT_FIGURES
            order += [Fig(kind, i, f"{s}_{kind}") for kind in kinds]
    for i, de in enumerate(inputs.designs):  # "which accelerator for dithered backprop?": tables, then the figure
        s = "designs" if i == 0 else f"designs_{i + 1}"
        tables.extend(designs.tables(de, root, DATA, name=s))
        order += [designs.SECTION, Fig("designs", i, f"{s}_speedup_energy")]
    for i, sw in enumerate(inputs.sweeps):
        s = slug(sw.label)
        order += [Fig("density", i, f"{s}_density_{k}", k) for k in range(len(fig_density.density_groups(sw)[:3]))]
        order += [Fig("parameters", i, f"{s}_parameters"), Fig("pareto", i, f"{s}_pareto")]
        tables.append(_sweep_table(sw, root))
        order.append(tables[-1].section)
    if inputs.traces:
        order += [Fig(kind, -1, kind) for kind in TRACE_FIGURES]
        tables.append(_training_table(inputs.traces, root))
        order.append("Training")
    rendered = iter(render_figures(inputs, [f for f in order if isinstance(f, Fig)], root=root, dpi=dpi, jobs=jobs,
                                   progress=progress, svg=svg))
    saved: list[SavedPlot] = []
    for item in order:
        sp = next(rendered) if isinstance(item, Fig) else None  # in order: one result per figure
        if sp is not None:
            saved.append(sp)
        section = sp.section if sp is not None else item if isinstance(item, str) else None
        if section is not None and section not in sections:
            sections.append(section)
    intro = _intro(inputs)
    brief = [e.label for e in inputs.results if e.method in brief_methods]
    if brief:
        intro.append(f"{', '.join(brief)}: only the {' and '.join(_FIGURE_NAMES.get(k, k) for k in BRIEF_FIGURES)} "
                     f"figures here (a baseline beside the others; hwsim report of the same inputs draws all "
                     f"{len(RESULT_FIGURES)}); every number is in the summary tables.")
    page = Page(title=title or "hwsim report", intro=intro, sections=sections, plots=saved, tables=tables,
                provenance=provenance_blocks(inputs), headline=_headline(inputs))
    md = write_markdown(page, out=root)
    html = write_html(page, out=root)
    return ReportOutcome(out=root, index_md=md, index_html=html, plots=tuple(saved), tables=tuple(tables))


_FIGURE_NAMES = {"layer_speedup": "per-layer speed-up", "cycle_breakdown": "cycle breakdown"}


def _headline(inputs: ReportInputs) -> list[str]:
    """The page's first lines: per results file, the whole-iteration speed-up and energy gain of sparse over dense."""
    return [f"{r['result']}: speed-up {times(r['speedup_sparse'])}, energy gain {times(r['energy_ratio_sparse'])}"
            + (f", non-GEMM work {percent(r['nongemm_share_sparse'])} of the sparse cycles"
               if r["nongemm_share_sparse"] else "")
            for r in summary_rows(inputs.results) if r["scope"] == "iteration"]


def _intro(inputs: ReportInputs) -> list[str]:
    lines = [f"Generated by hwsim on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from {len(inputs.results)} results file(s), "
             f"{len(inputs.sweeps)} sweep(s) and {len(inputs.traces)} trace(s)."]
    if inputs.results:
        archs = sorted({e.arch_name for e in inputs.results})
        lines.append("Variants: dense = same multipliers and buffers without zero skipping (SCNN's DCNN); "
                     "dense-gated = zero operands gate the multipliers and DRAM traffic is compressed (DCNN-opt, "
                     "saves energy, not cycles); sparse = zero-skipping architecture as configured; bounds: MAC bound = "
                     "effectual MACs ÷ multipliers (memory-free; the results key 'ideal'), roofline bound = "
                     "max(Σ MAC bound, Σ DRAM bytes ÷ bandwidth) when the layer-passes share one schedule per "
                     "iteration (memory.schedule: iteration, the default; a strict bound of the whole iteration, "
                     "indicative per pass), Σ per layer-pass max(MAC bound, DRAM bytes ÷ bandwidth) when each runs "
                     "on its own (isolated); dense @ 100 % = dense MACs ÷ multipliers; "
                     "equal-area dense = a systolic array of the sparse design's area, buffers included. "
                     f"Architectures: {', '.join(archs)}.")
    lines.append("Speed-up = dense cycles ÷ variant cycles; energy gain = dense energy ÷ variant energy. "
                 "Every figure has its numbers in data/ as CSV and JSON.")
    return lines


def provenance_blocks(inputs: ReportInputs) -> list[tuple[str, list[tuple[str, str]]]]:
    """What produced each input and this page, as (heading, [(label, value)]): one block per distinct
    architecture (hash + overrides), then per results file, sweep and trace."""
    blocks: list[tuple[str, list[tuple[str, str]]]] = []
    archs: dict[Any, tuple[list[tuple[str, str]], list[str]]] = {}

    def arch_ref(prov: dict, user: str) -> str:
        a = prov.get("arch") or {}
        key = (a.get("hash"), provenance.override_label(prov))
        if key not in archs:
            archs[key] = (provenance.describe_arch(prov), [])
        archs[key][1].append(user)
        return f"architecture {list(archs).index(key) + 1}"

    body: list[tuple[str, list[tuple[str, str]]]] = []
    for e in inputs.results:
        p = e.provenance
        items = [("file", str(e.source)), *provenance.describe_trace(p), ("on", arch_ref(p, e.label))]
        items += [(k, str(p[k]) if k != "command" else " ".join(map(str, p[k]))) for k in ("hwsim_version", "command")
                  if p.get(k)]
        note = (p.get("arch") or {}).get("note")
        if note:
            items.append(("note", note))
        body.append((f"results: {e.label}", items))
    for sw in inputs.sweeps:
        pv = dict(sw.provenance)
        items = [("folder", str(sw.source)), ("points", f"{len(sw.rows)}"),
                 ("swept", ", ".join(param_label(p) for p in sw.parameters) or "nothing (one config)")]
        if pv.get("arch"):
            items.append(("base", arch_ref(pv, f"sweep {sw.label} (base)")))
        items += [(k, str(pv[k]) if k != "command" else " ".join(map(str, pv[k]))) for k in ("hwsim_version", "command")
                  if pv.get(k)]
        groups: dict[str, list[str]] = {}
        for label, tp in (pv.get("traces") or {}).items():
            text = "; ".join(v for _, v in provenance.describe_trace({"trace": tp, "mode": "iteration"}))
            groups.setdefault(text, []).append(str(label))
        for text, labels in groups.items():
            items.append(("trace " + (labels[0] if len(labels) == 1 else f"{labels[0]} … {labels[-1]} ({len(labels)})"),
                          text))
        body.append((f"sweep: {sw.label}", items))
    for d in inputs.designs:
        items = [("file", str(d.source)), ("designs", ", ".join(x["design"] for x in d.doc["designs"]))]
        items += [(f"trace {t['model']}", str(t.get("replayed") or "?")) for t in d.doc["traces"]]
        if d.doc.get("command"):
            items.append(("command", str(d.doc["command"])))
        body.append(("design comparison", items))
    for t in inputs.traces:
        tp = provenance.run_provenance(t.meta, t.summary, iterations=len(t.iterations))
        items = [("folder", str(t.source)), *provenance.describe_trace({"trace": tp})]
        items.append(("recorded iterations", str(len(t.iterations))))
        body.append((f"trace: {t.label}", items))
    for i, (lines, users) in enumerate(archs.values(), 1):
        blocks.append((f"architecture {i}", [*lines, ("used by", ", ".join(users))]))
    blocks += body
    blocks.append(("this page", [("hwsim", provenance.hwsim_version()),
                                 ("command", " ".join(provenance.command_line())),
                                 ("generated", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))]))
    return blocks


def _drop_empty(rows: Sequence[dict], columns: Sequence[tuple]) -> list[tuple]:
    """Columns that have a value in at least one row (e.g. 'overrides' only when some result has them)."""
    return [c for c in columns if any(r.get(c[0]) not in (None, "") for r in rows)]


# The summary's 'waits on other passes' column (hwsim/sim/schedule.py), explained where it appears
FOREIGN_NOTE = (" 'Waits on other passes' = the share of the pass's sparse cycles the PEs waited while the DRAM "
                "channel carried other layer-passes' transfers: one schedule per iteration (memory.schedule: "
                "iteration) charges a wait to the pass that waits, so this share moves cycles between passes, not the "
                "iteration's total, and memory.dram_arbiter moves it too (– where not measured).")

# A pass's 'of roofline bound' above 100 % (the iteration schedule overlaps its traffic with other passes' compute)
ROOFLINE_NOTE = (" 'Of roofline bound' above 100 % on a pass is no error: with one schedule per iteration a pass's "
                 "DRAM traffic also moves while other passes compute, so per pass the roofline is indicative; it "
                 "bounds the whole iteration.")


def _summary_tables(inputs: ReportInputs, root: Path) -> list[Table]:
    rows = summary_rows(inputs.results)
    csv_path, json_path = write_rows(rows, out_dir=root / DATA, name="summary")
    out = []
    for net in dict.fromkeys(r["network"] for r in rows):
        sub = [r for r in rows if r["network"] == net]
        header, body = format_table(sub, _drop_empty(sub, SUMMARY_COLUMNS))
        out.append(Table(title=f"Summary — {net}", header=header, body=body, section="Overview",
                         note="One row per results file and pass ('whole iteration' = every replayed pass and, in "
                              "training, the weight update — its share is the 'weight update' column; one training "
                              "iteration, or the sum over the whole run for whole-run results — see the provenance "
                              "block). Energy per effectual MAC counts everything (DRAM, SRAM, MACs) over the "
                              "MACs with two non-zero operands." + (FOREIGN_NOTE if any(
                                  r.get("foreign_wait_share_sparse") is not None for r in sub) else "")
                              + (ROOFLINE_NOTE if any((r.get("fraction_of_roofline") or 0) > 1 for r in sub)
                                 else ""),
                         files=(csv_path, json_path)))
    return out


def _sweep_table(sw: SweepEntry, root: Path, limit: int = 30) -> Table:
    """Points ranked by absolute sparse cycles per trace, with their energy rank and Pareto front membership.

    Speed-up over each config's own dense baseline is a column, never the sort key: a small array that
    skips well relative to its own slow dense run is not the fast design.
    """
    s = slug(sw.label)
    rows = ranked_sweep_rows(sw.rows)
    csv_path, json_path = write_rows(rows, out_dir=root / DATA, name=f"{s}_sweep")
    peak = max((float(r.get("energy_pj_sparse") or 0) for r in rows), default=0.0)
    scale, unit = energy_unit(peak)
    cols: list[tuple[str, str, Any]] = [("trace", "trace", "{}"), ("rank_cycles", "rank (cycles)", "{}"),
                                        ("rank_energy", "rank (energy)", "{}"), ("pareto", "Pareto front", "{}")]
    cols += [(p, param_label(p), "{}") for p in sw.parameters]
    cols += [("cycles_sparse", "sparse cycles", "{:,}"),
             ("energy_pj_sparse", f"sparse energy ({unit})", lambda v: f"{float(v) * scale:.3g}"),
             ("speedup_sparse", "speed-up over own dense", times), ("energy_ratio_sparse", "energy gain", times),
             ("utilization_sparse", "sparse util.", percent)]
    akey = next((k for r in rows for k in r if k.startswith("area") and k.endswith("sparse")), None) \
        or ("area_mm2" if any(r.get("area_mm2") is not None for r in rows) else None)   # the sparse arch's area
    if akey:
        cols.insert(-3, (akey, "area (mm²)", "{:.3g}"))
    shown = [r for r in rows if r["rank_cycles"] <= limit or r["pareto"]]
    header, body = format_table(shown, cols)
    note = (f"{len(sw.rows)} points, ranked per trace by absolute sparse cycles per training iteration "
            f"(rank (energy): by sparse energy); Pareto front: no other point of the trace has both fewer cycles "
            f"and less energy (numbered by cycles, as in the Pareto figure). Speed-up is over each "
            f"configuration's own dense baseline and is not the ranking"
            + (f"; the {limit} fastest per trace and every Pareto point shown" if len(shown) < len(rows) else "")
            + f" (source: {sw.source.name}).")
    return Table(title=f"Sweep '{sw.label}' points, ranked", header=header, body=body, section=f"Sweep {sw.label}",
                 note=note, files=(csv_path, json_path))


def ranked_sweep_rows(rows: Sequence[dict]) -> list[dict]:
    """Rows sorted by trace then absolute sparse cycles, with rank_cycles, rank_energy and pareto (front #, '' off)."""
    out: list[dict] = []
    for tr in dict.fromkeys(r.get("trace") for r in rows):
        sub = [dict(r) for r in rows if r.get("trace") == tr]
        sub.sort(key=lambda r: (float(r.get("cycles_sparse") or math.inf), float(r.get("energy_pj_sparse") or 0)))
        by_energy = sorted(range(len(sub)), key=lambda i: float(sub[i].get("energy_pj_sparse") or math.inf))
        for rank, i in enumerate(by_energy, 1):
            sub[i]["rank_energy"] = rank
        pts = [(float(r.get("cycles_sparse") or math.inf), float(r.get("energy_pj_sparse") or math.inf)) for r in sub]
        front = pareto_front(pts)
        for rank, r in enumerate(sub, 1):
            r["rank_cycles"] = rank
            r["pareto"] = ""
        for n, i in enumerate(front, 1):
            sub[i]["pareto"] = n
        out.extend(sub)
    return out


def _training_table(traces: Sequence[TraceEntry], root: Path) -> Table:
    rows = []
    for t in traces:
        its = t.iterations
        last_loss = its[-1].loss if its else None
        with_stats = [it for it in its if it.layers]  # stats_every > 1: only some iterations have them
        tail = with_stats[-max(1, len(with_stats) // 10):] if with_stats else []
        row = {"trace": t.label, "model": t.meta.model, "method": t.meta.method,
               "s": t.meta.s, "epochs": t.meta.get("epochs"), "iterations": len(its),
               "train_loss_last_epoch": t.summary.get("train_loss", last_loss),
               "test_acc": t.summary.get("test_acc")}
        # the GEMMs whose δz was dithered apart from those capture left plain (attention products, issue 20)
        for pre, plain in (("", False), ("plain_", True)):
            dens = [st.density for it in tail for n, st in it.layers.items()
                    if st.density is not None and (n in t.plain) == plain]
            bits = [st.max_bits for it in its for n, st in it.layers.items()
                    if st.max_bits is not None and (n in t.plain) == plain]
            row[pre + "dz_density_last10pct"] = sum(dens) / len(dens) if dens else None
            # float δz has no level bit-width: its 'bits' only bin it at Δ (method none: '–'; plain: noted)
            row[pre + "worst_case_bits"] = (max(bits) if bits else None) if t.has_levels else None
        row["plain_gemms"] = len(t.plain)
        rows.append(row)
    csv_path, json_path = write_rows(rows, out_dir=root / DATA, name="training_summary")
    shown = [{**r, "plain": f"{r['plain_gemms']} GEMMs: {fmt(r['plain_dz_density_last10pct'], '{:.2%}')}, "
                            f"{r['plain_worst_case_bits']} bits" if r["plain_gemms"] else None} for r in rows]
    cols = [("trace", "trace", "{}"), ("epochs", "epochs", "{}"), ("iterations", "iterations", "{}"),
            ("train_loss_last_epoch", "training loss (last epoch)", "{:.3f}"),
            ("test_acc", "test accuracy", "{:.1%}"), ("dz_density_last10pct", "mean δ̃z density (last 10%)", "{:.2%}"),
            ("worst_case_bits", "worst-case δ̃z bits", "{}")]
    if any(r["plain_gemms"] for r in rows):
        cols.append(("plain", "plain δz (not dithered)", "{}"))
    header, body = format_table(shown, cols)
    return Table(title="Training runs", header=header, body=body, section="Training",
                 note="Per-trace statistics from the manifests: test accuracy on the held-out test set after "
                      "training (manifest summary), training loss = mean over the last epoch, δ̃z density = mean "
                      "over layers and the last 10% of recorded iterations; '–' bits for method none (float δz "
                      "has no level bit-width). Density and bits are over the GEMMs whose δz was dithered; "
                      "'plain δz' = attention's activation×activation products capture left undithered (no "
                      "dither_attention): their count, density and bits (float δz binned at Δ).",
                 files=(csv_path, json_path))


__all__ = ["ReportOutcome", "build_report", "fmt"]
