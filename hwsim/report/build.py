"""Assemble a report folder from results, sweeps and traces.

Layout of ``out``::

    index.md, index.html        # the pages (HTML self-contained)
    figures/<name>.png|.svg     # every figure in both formats
    data/<name>.csv|.json       # every number of every figure and table

Sections appear only when their inputs exist: per-network summaries and per-layer figures need
results files; density and parameter plots need sweeps; training curves need trace directories.
"""

from __future__ import annotations

import copyreg
import io
import math
import multiprocessing
import os
import pickle
import re
import textwrap
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hwsim.report import (
    fig_breakdown,
    fig_density,
    fig_layers,
    fig_memory,
    fig_run,
    fig_summary,
    fig_sweep,
    fig_training,
)
from hwsim.report.fig_sweep import pareto_front
from hwsim.report.inputs import ReportInputError, ReportInputs, SweepEntry, TraceEntry, load_inputs
from hwsim.report.page import Page, Table, write_html, write_markdown
from hwsim.report.style import Plot, SavedPlot, energy_unit, param_label, percent, save_figure, times
from hwsim.report.tables import SUMMARY_COLUMNS, fmt, format_table, summary_rows, write_rows
from hwsim.results import provenance

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
                 title: str | None = None, progress: bool = False, dpi: int = 150, jobs: int = 1) -> ReportOutcome:
    """Write the report for ``inputs`` (paths or already-loaded inputs) into ``out``.

    ``dpi`` sets the PNG resolution (and so the size of the self-contained HTML): 150 for
    reading, ~100 for a report meant to be committed or mailed. ``jobs`` > 1 draws the figures in
    that many spawned worker processes (:func:`render_figures`); the files are byte-for-byte those
    of ``jobs=1``.
    """
    if not isinstance(inputs, ReportInputs):
        inputs = load_inputs(inputs)
    if inputs.empty:
        raise ReportInputError("nothing to report: give results.json files, sweep directories or trace directories")
    root = Path(out)
    (root / FIGURES).mkdir(parents=True, exist_ok=True)
    (root / DATA).mkdir(parents=True, exist_ok=True)
    tables: list[Table] = []
    sections: list[str] = []

    # The page's sections in order: a figure's section joins when its figure exists, a table's at its place.
    order: list[_Fig | str] = []
    if inputs.results:
        sections.append("Overview")
        tables.extend(_summary_tables(inputs, root))
        order.append(_Fig("overview", -1, "overview_speedup_energy"))
        for i, e in enumerate(inputs.results):
            s = slug(e.label)
            order += [_Fig(kind, i, f"{s}_{kind}") for kind in _RESULT_FIGURES]
    for i, sw in enumerate(inputs.sweeps):
        s = slug(sw.label)
        order += [_Fig("density", i, f"{s}_density_{k}", k) for k in range(len(fig_density.density_groups(sw)[:3]))]
        order += [_Fig("parameters", i, f"{s}_parameters"), _Fig("pareto", i, f"{s}_pareto")]
        tables.append(_sweep_table(sw, root))
        order.append(tables[-1].section)
    if inputs.traces:
        order += [_Fig(kind, -1, kind) for kind in _TRACE_FIGURES]
        tables.append(_training_table(inputs.traces, root))
        order.append("Training")
    rendered = iter(render_figures(inputs, [f for f in order if isinstance(f, _Fig)], root=root, dpi=dpi, jobs=jobs,
                                   progress=progress))
    saved: list[SavedPlot] = []
    for item in order:
        sp = next(rendered) if isinstance(item, _Fig) else None  # in order: one result per figure
        if sp is not None:
            saved.append(sp)
        section = sp.section if sp is not None else item if isinstance(item, str) else None
        if section is not None and section not in sections:
            sections.append(section)
    page = Page(title=title or "hwsim report", intro=_intro(inputs), sections=sections, plots=saved, tables=tables,
                provenance=provenance_blocks(inputs), headline=_headline(inputs))
    md = write_markdown(page, out=root)
    html = write_html(page, out=root)
    return ReportOutcome(out=root, index_md=md, index_html=html, plots=tuple(saved), tables=tuple(tables))


@dataclass(frozen=True)
class _Fig:
    """One figure to draw: its kind, the input it shows (an index into ``inputs.results`` or
    ``inputs.sweeps``; -1: all of them) and its file name. Small and picklable: a worker gets this, not a Figure."""

    kind: str
    index: int
    name: str
    group: int = 0  # density figures: which of the sweep's density groups


# Per results file, in page order; the kind is also the file name's suffix (and a trace figure's whole name).
_RESULT_FIGURES = ("layer_speedup", "layer_energy", "cycle_breakdown", "energy_breakdown", "run_cost", "run_summary",
                   "bandwidth", "utilisation")
_TRACE_FIGURES = ("training_curves", "training_dz_density", "training_worst_bits", "training_level_histogram")


class _Renderer:
    """Draws and saves figures of one report; the same code in-process (``jobs=1``) and in every worker."""

    def __init__(self, inputs: ReportInputs, root: Path, dpi: int) -> None:
        self.inputs, self.root, self.dpi = inputs, root, dpi
        self._runs: dict[int, Any] = {}

    def render(self, f: _Fig) -> SavedPlot | None:
        p = self.draw(f)
        if p is None:
            return None
        try:
            return _save(p, self.root, self.dpi)
        finally:
            p.figure.clf()

    def draw(self, f: _Fig) -> Plot | None:
        inputs, k, name = self.inputs, f.index, f.name
        if f.kind == "overview":
            partial = [f"{e.label}: {provenance.coverage_note(e.provenance)}" for e in inputs.results
                       if provenance.coverage_note(e.provenance)]
            return _with_coverage(fig_summary.overview(inputs.results, name=name), partial)
        if f.kind in _RESULT_FIGURES:
            e = inputs.results[k]
            note = provenance.coverage_note(e.provenance)
            cov = [note] if note else []
            if f.kind == "layer_speedup":
                return _with_coverage(fig_layers.speedup_bars(e, name=name), cov)
            if f.kind == "layer_energy":
                return _with_coverage(fig_layers.energy_bars(e, name=name), cov)
            if f.kind in ("cycle_breakdown", "energy_breakdown"):
                kind = "cycles" if f.kind == "cycle_breakdown" else "energy"
                return _with_coverage(fig_breakdown.breakdown(e, kind=kind, name=name), cov)
            if f.kind in ("run_cost", "run_summary"):  # whole-run results (hwsim simulate --iterations): cost over training
                if k not in self._runs:
                    self._runs[k] = fig_run.load_run(e)
                draw = fig_run.cost_over_training if f.kind == "run_cost" else fig_run.whole_run_summary
                return draw(e, name=name, run=self._runs[k])
            if f.kind == "bandwidth":
                return fig_memory.bandwidth_figure(e, name=name)
            return fig_memory.utilisation_figure(e, name=name)
        if f.kind in ("density", "parameters", "pareto"):
            sw = inputs.sweeps[k]
            if f.kind == "density":
                return fig_density.density_figure(sw, fig_density.density_groups(sw)[f.group], name=name)
            return (fig_sweep.parameter_figure if f.kind == "parameters" else fig_sweep.pareto_figure)(sw, name=name)
        draw_traces = {"training_curves": fig_training.training_curves,
                       "training_dz_density": fig_training.density_over_training,
                       "training_worst_bits": fig_training.worst_case_bits,
                       "training_level_histogram": fig_training.level_histograms}[f.kind]
        return draw_traces(inputs.traces, name=name)


def render_figures(inputs: ReportInputs, figs: Sequence[_Fig], *, root: Path, dpi: int, jobs: int = 1,
                   progress: bool = False) -> list[SavedPlot | None]:
    """Draw and save every figure (None where a figure has nothing to show), in ``figs``' order.

    ``jobs`` > 1: this process and ``jobs - 1`` spawned workers (never forked: the parent may hold torch or
    threads) draw together — the workers from the front of the list, given the loaded inputs once and a
    figure at a time (two queued per worker), this process from the back while they start, so no core
    waits. Every figure is drawn from its inputs alone under the report's fixed rcParams and saved with
    metadata stripped (:func:`hwsim.report.style.save_figure`), so a worker writes the same bytes this
    process would. A failing figure stops the pool; its exception is raised here, naming the figure.
    """
    n = len(figs)
    out: list[SavedPlot | None] = [None] * n
    done = 0
    r = _Renderer(inputs, root, dpi)

    def finished(i: int, result: SavedPlot | None) -> None:
        nonlocal done
        out[i] = result
        done += 1
        if progress:
            print(f"report: figure {done}/{n} {figs[i].name}", flush=True)

    jobs = max(1, min(jobs, n))
    if jobs == 1:
        for i, f in enumerate(figs):
            finished(i, r.render(f))
        return out
    workers = jobs - 1
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_init, initargs=(_dumps(inputs), root, dpi))
    head, tail = 0, n  # figs[head:tail] not handed out yet: the workers take the head, this process the tail
    running: dict[Future, int] = {}
    try:
        while head < tail or running:
            while head < tail and len(running) < 2 * workers:
                running[pool.submit(_worker_render, figs[head])] = head
                head += 1
            if head < tail:
                tail -= 1
                try:
                    finished(tail, r.render(figs[tail]))
                except Exception as e:
                    _name_figure(e, figs[tail], "")
                    raise
            else:
                wait(running, return_when=FIRST_COMPLETED)
            for fut in [f for f in running if f.done()]:
                i = running.pop(fut)
                exc = fut.exception()
                if exc is not None:  # the worker's exception as the serial path would raise it, naming the figure
                    _name_figure(exc, figs[i], " (in a worker process)")
                    raise exc
                finished(i, fut.result())
        return out
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _name_figure(e: BaseException, f: _Fig, where: str) -> None:
    if hasattr(e, "add_note"):  # Python >= 3.11
        e.add_note(f"while drawing report figure {f.name}{where}")


_WORKER: _Renderer | None = None


def _dumps(inputs: ReportInputs) -> bytes:
    """The loaded inputs for the workers. Trace records hold read-only mappings (``MappingProxyType``), which plain
    pickle refuses: they travel as dicts and are wrapped again on arrival, so a worker sees what the parent sees."""
    buf = io.BytesIO()
    p = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    p.dispatch_table = {**copyreg.dispatch_table, MappingProxyType: lambda m: (_read_only, (dict(m),))}
    p.dump(inputs)
    return buf.getvalue()


def _read_only(d: dict) -> Mapping[str, Any]:
    return MappingProxyType(d)


def _worker_init(inputs: bytes, root: Path, dpi: int) -> None:
    global _WORKER
    _WORKER = _Renderer(pickle.loads(inputs), root, dpi)


def _worker_render(f: _Fig) -> SavedPlot | None:
    assert _WORKER is not None, "render worker used before its initializer ran"
    return _WORKER.render(f)


def _with_coverage(p: Plot | None, notes: list[str]) -> Plot | None:
    """Whole-model figures of a trace that does not cover every GEMM of the model say so, on the figure too."""
    if p is None or not notes:
        return p
    text = "Partial coverage — " + "; ".join(notes)
    st = getattr(p.figure, "_suptitle", None)  # a second title line: constrained layout makes room for it
    # Wrap to the figure's width (about 0.6 em per character) so the warning never leaves the canvas.
    width = max(40, int(p.figure.get_figwidth() * 72 / (10 * 0.6)))
    warn = "⚠ " + (text if len(text) <= 2 * width else text[: 2 * width - 1] + "…")
    lines = [st.get_text()] if st is not None and st.get_text() else []
    wrapped = "\n".join(textwrap.fill(line, width) for line in "\n".join([*lines, warn]).split("\n"))
    if st is not None and st.get_text():
        st.set_text(wrapped)
    else:
        p.figure.suptitle(wrapped, fontsize=10)
    return replace(p, caption=f"{p.caption} {text}.")


def _save(p: Plot, root: Path, dpi: int) -> SavedPlot:
    png, svg = save_figure(p.figure, out_dir=root / FIGURES, name=p.name, dpi=dpi)
    csv_path = json_path = None
    if p.rows:
        csv_path, json_path = write_rows(p.rows, out_dir=root / DATA, name=p.name)
    return SavedPlot(name=p.name, title=p.title, caption=p.caption, section=p.section, png=png, svg=svg,
                     csv=csv_path, json=json_path)


def _headline(inputs: ReportInputs) -> list[str]:
    """The page's first lines: per results file, the whole-iteration speed-up and energy gain of sparse over dense."""
    return [f"{r['result']}: speed-up {times(r['speedup_sparse'])}, energy gain {times(r['energy_ratio_sparse'])}"
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


def _summary_tables(inputs: ReportInputs, root: Path) -> list[Table]:
    rows = summary_rows(inputs.results)
    csv_path, json_path = write_rows(rows, out_dir=root / DATA, name="summary")
    out = []
    for net in dict.fromkeys(r["network"] for r in rows):
        sub = [r for r in rows if r["network"] == net]
        header, body = format_table(sub, _drop_empty(sub, SUMMARY_COLUMNS))
        out.append(Table(title=f"Summary — {net}", header=header, body=body, section="Overview",
                         note="One row per results file and pass ('whole iteration' = all three passes; one training "
                              "iteration, or the sum over the whole run for whole-run results — see the provenance "
                              "block). Energy per effectual MAC counts everything (DRAM, SRAM, MACs) over the "
                              "MACs with two non-zero operands.",
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
    akey = next((k for r in rows for k in r if k.startswith("area") and k.endswith("sparse")), None)
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
