"""Draw a report's figures, serially or in spawned worker processes, and save them (PNG, SVG, CSV, JSON).

:func:`render_figures` takes small picklable descriptions (:class:`Fig`: a kind, the input it shows, a file
name) and returns one :class:`~hwsim.report.style.SavedPlot` per figure, in the order given, byte-for-byte the same
with any ``jobs``. :mod:`hwsim.report.build` decides which figures a page has and where they go.
"""

from __future__ import annotations

import copyreg
import io
import multiprocessing
import pickle
import textwrap
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hwsim.report import (
    designs,
    fig_breakdown,
    fig_density,
    fig_layers,
    fig_memory,
    fig_run,
    fig_summary,
    fig_sweep,
    fig_training,
)
from hwsim.report.inputs import ReportInputs
from hwsim.report.style import Plot, SavedPlot, save_figure
from hwsim.report.tables import write_rows
from hwsim.results import provenance

FIGURES, DATA = "figures", "data"


@dataclass(frozen=True)
class Fig:
    """One figure to draw: its kind, the input it shows (an index into ``inputs.results`` or
    ``inputs.sweeps``; -1: all of them) and its file name. Small and picklable: a worker gets this, not a Figure."""

    kind: str
    index: int
    name: str
    group: int = 0  # density figures: which of the sweep's density groups


# Per results file, in page order; the kind is also the file name's suffix (and a trace figure's whole name).
RESULT_FIGURES = ("layer_speedup", "layer_energy", "cycle_breakdown", "energy_breakdown", "run_cost", "run_summary",
                   "bandwidth", "utilisation")
# What a results file in a report's ``brief_methods`` gets (a baseline beside the main runs: the demo's plain backprop).
BRIEF_FIGURES = ("layer_speedup", "cycle_breakdown")
TRACE_FIGURES = ("training_curves", "training_dz_density", "training_worst_bits", "training_level_histogram")


class _Renderer:
    """Draws and saves figures of one report; the same code in-process (``jobs=1``) and in every worker."""

    def __init__(self, inputs: ReportInputs, root: Path, dpi: int, svg: bool = True) -> None:
        self.inputs, self.root, self.dpi, self.svg = inputs, root, dpi, svg
        self._runs: dict[int, Any] = {}

    def render(self, f: Fig) -> SavedPlot | None:
        p = self.draw(f)
        if p is None:
            return None
        try:
            return _save(p, self.root, self.dpi, self.svg)
        finally:
            p.figure.clf()

    def draw(self, f: Fig) -> Plot | None:
        inputs, k, name = self.inputs, f.index, f.name
        if f.kind == "overview":
            partial = [f"{e.label}: {provenance.coverage_note(e.provenance)}" for e in inputs.results
                       if provenance.coverage_note(e.provenance)]
            return _with_coverage(fig_summary.overview(inputs.results, name=name), partial)
        if f.kind in RESULT_FIGURES:
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
        if f.kind == "designs":
            return designs.figure(inputs.designs[k], name=name)
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


def render_figures(inputs: ReportInputs, figs: Sequence[Fig], *, root: Path, dpi: int, jobs: int = 1,
                   progress: bool = False, svg: bool = True) -> list[SavedPlot | None]:
    """Draw and save every figure (None where a figure has nothing to show), in ``figs``' order; ``svg=False``
    saves the PNGs (which the pages show) without the SVG files. ``progress`` prints a line per figure as it
    is done, ``report: figure k/N name``, N counting the figures written: a figure with nothing to draw says
    so and leaves the count.

    ``jobs`` > 1: this process and ``jobs - 1`` spawned workers (never forked: the parent may hold torch or
    threads) draw together — the workers from the front of the list, given the loaded inputs once and a
    figure at a time (two queued per worker), this process from the back while they start, so no core
    waits. Every figure is drawn from its inputs alone under the report's fixed rcParams and saved with
    metadata stripped (:func:`hwsim.report.style.save_figure`), so a worker writes the same bytes this
    process would. A failing figure stops the pool; its exception is raised here, naming the figure.
    """
    n = len(figs)
    out: list[SavedPlot | None] = [None] * n
    written = skipped = 0
    r = _Renderer(inputs, root, dpi, svg)

    def finished(i: int, result: SavedPlot | None) -> None:
        # The total is the figures that will be written: a figure with nothing to draw (a one-iteration result's
        # cost over training, say) leaves it, so the last line's total is the number of files written.
        nonlocal written, skipped
        out[i] = result
        if result is None:
            skipped += 1
        else:
            written += 1
        if progress:
            line = (f"figure {written}/{n - skipped} {figs[i].name}" if result is not None else
                    f"{figs[i].name}: nothing to draw, skipped ({n - skipped} figure{'s' * (n - skipped != 1)} "
                    "in all)")
            print(f"report: {line}", flush=True)

    jobs = max(1, min(jobs, n))
    if jobs == 1:
        for i, f in enumerate(figs):
            finished(i, r.render(f))
        return out
    workers = jobs - 1
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_init, initargs=(_dumps(inputs), root, dpi, svg))
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


def _name_figure(e: BaseException, f: Fig, where: str) -> None:
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


def _worker_init(inputs: bytes, root: Path, dpi: int, svg: bool = True) -> None:
    global _WORKER
    _WORKER = _Renderer(pickle.loads(inputs), root, dpi, svg)


def _worker_render(f: Fig) -> SavedPlot | None:
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


def _save(p: Plot, root: Path, dpi: int, with_svg: bool = True) -> SavedPlot:
    png, svg = save_figure(p.figure, out_dir=root / FIGURES, name=p.name, dpi=dpi, svg=with_svg)
    csv_path = json_path = None
    if p.rows:
        csv_path, json_path = write_rows(p.rows, out_dir=root / DATA, name=p.name)
    return SavedPlot(name=p.name, title=p.title, caption=p.caption, section=p.section, png=png, svg=svg,
                     csv=csv_path, json=json_path)
