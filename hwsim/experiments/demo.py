"""``hwsim demo``: the whole pipeline, offline, on the embedded digits dataset.

1. capture real training traces (LeNet-5 and an MLP, plain backprop and dithered backprop; in the full
   demo also a small Vision Transformer, ``vit_digits``, dithered only), side by side in ``--jobs`` worker
   processes on one torch thread each (so the traces are the same on every machine),
2. simulate each on the SCNN-like architecture against its dense baselines (steps 2–4 on one pool of
   ``--jobs`` workers: :func:`hwsim.sweep.executor.shared_pool`), and put every shipped design against a dense
   array of its own area on the last full batch of each dithered trace ("which accelerator for dithered
   backprop?": :func:`hwsim.sweep.designs.compare_designs`),
3. run the architecture sweep of ``arch_configs/sweeps/demo.yaml`` on the dithered traces, and the NSD-unit
   sweep of ``arch_configs/sweeps/nsd.yaml`` (lanes per PE and their area × σ current | delayed) on them,
4. run the density sweep of ``arch_configs/sweeps/density.yaml`` (synthetic, for the crossover),
5. write the report (its figures as the PNGs the page shows, no SVG copies).

Intermediate files live in ``<out>/work/`` and are reused: traces whose manifest is complete are
not recaptured, simulated points are keyed by content hash, so an interrupted demo resumes.
``quick`` shrinks every step for CI (LeNet-5 only, fewer epochs, 4-point sweeps).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


def _sweeps_dir() -> Path:
    from hwsim.arch.loader import ARCH_DIR  # arch_configs/ in a checkout, the package data when installed

    return ARCH_DIR / "sweeps"


REPO_SWEEPS = _sweeps_dir()


@dataclass(frozen=True)
class ExtraTrace:
    """One more capture beside the plan's models × methods (simulated and reported; not swept)."""

    model: str
    method: str = "dither"
    epochs: int = 10
    sample_every: int = 115  # 5 epochs of 23 iterations: iterations 0, 115 and the last are replayed
    threads: int | None = 1  # torch threads while it trains: its GEMMs are tiny, and a second thread spinning on a
                             # shared 2-core box made this capture ~10× slower (CPU time) than one thread


@dataclass(frozen=True)
class DemoPlan:
    """Sizes of every step: the full demo (< 5 min on 2 cores) or the CI quick mode (< 60 s)."""

    models: tuple[str, ...]
    methods: tuple[str, ...] = ("none", "dither")
    epochs: int = 10
    max_examples: int | None = None  # examples stored per sampled iteration (None: the whole mini-batch;
                                     # a few examples misrepresent δ̃z, which concentrates on hard ones)
    limit_train: int | None = None
    sweep_grid: dict[str, Any] | None = None   # None: arch_configs/sweeps/demo.yaml as shipped
    nsd_grid: dict[str, Any] | None = None     # None: arch_configs/sweeps/nsd.yaml as shipped
    densities: tuple[float, ...] | None = None  # None: arch_configs/sweeps/density.yaml as shipped
    sweep_models: tuple[str, ...] = ("lenet5",)
    jobs: int = 2
    sample_every: int = 10**9  # iterations between stored operand samples (the last iteration is always stored)
    extra: tuple[ExtraTrace, ...] = ()
    designs: tuple[str, ...] | None = None  # compared at equal area; None: every shipped design (sweep.designs)
    design_models: tuple[str, ...] | None = None  # their dithered traces (None: every one; vit_digits ≈ 4.5 CPU s)
    threads: int | None = 1  # torch threads of the models × methods captures (None: torch's default). One thread
                             # makes the traces the same on every machine (torch's intra-op threads change the
                             # summation order, so 1 and 2 threads train to different weights and traces) and
                             # lets ``jobs`` captures run side by side, one per core


# The full demo stores operands every 23 iterations — the iterations per epoch of the digits' 1,437 training
# images at batch 64, so every sample is an epoch's first, full batch (a sampled partial batch would stand for
# full ones: simulate_run warns) — and replays them all: its results are whole-run costs (hwsim.results.run).
# The transformer (vit_digits: nn.MultiheadAttention, its QKᵀ and P·V products) is captured dithered only and
# sampled rarely, to keep the demo's cost small.
FULL = DemoPlan(models=("lenet5", "mlp500"), epochs=10, sweep_models=("lenet5", "mlp500"), sample_every=23,
                extra=(ExtraTrace("vit_digits"),))
QUICK = DemoPlan(models=("lenet5",), epochs=3, limit_train=512,
                 sweep_grid={"pe_array.rows,pe_array.cols": [4, 8], "pe.mac_bits": [8, 16]},
                 nsd_grid={"quantizer.lanes_per_pe": [1, 4], "quantizer.sigma": ["current", "delayed"]},
                 densities=(0.1, 0.3, 0.6, 1.0), jobs=1, designs=("scnn", "tensordash"))


@dataclass(frozen=True)
class DemoOutcome:
    out: Path
    index_html: Path
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds per step, in order
    accuracies: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per step, worker processes included


def _log(msg: str) -> None:
    print(f"[demo] {msg}", file=sys.stderr, flush=True)


def _cpu_seconds() -> float:
    """CPU time of this process, of its finished children and of the shared pool's live workers."""
    import resource

    from hwsim.sweep.executor import shared_pool_cpu_seconds

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime + shared_pool_cpu_seconds()


def _timed(timings: dict[str, float], name: str, fn: Callable[[], Any], cpu: dict[str, float] | None = None) -> Any:
    """``fn()``, its wall seconds recorded in ``timings[name]`` (and its CPU seconds in ``cpu[name]``)."""
    t0, c0 = time.perf_counter(), _cpu_seconds()
    _log(f"{name} ...")
    value = fn()
    timings[name] = time.perf_counter() - t0
    if cpu is not None:
        cpu[name] = _cpu_seconds() - c0
    _log(f"{name}: done in {timings[name]:.1f} s")
    return value


def timing_table(timings: dict[str, float], cpu: dict[str, float], total: float) -> str:
    """Where the demo's time went: per step wall seconds, share of the total and CPU seconds (all processes).

    CPU seconds above the wall seconds mean the step used more than one core; a wall time well above the
    CPU time over the cores used means the machine was busy with other work.
    """
    width = max(len(n) for n in timings) if timings else 4
    lines = [f"{'step':<{width}}  {'wall s':>7}  {'share':>6}  {'CPU s':>7}"]
    for name, s in timings.items():
        c = cpu.get(name)
        lines.append(f"{name:<{width}}  {s:7.1f}  {s / total if total else 0:6.0%}  "
                     + (f"{c:7.1f}" if c is not None else f"{'–':>7}"))
    lines.append(f"{'total':<{width}}  {total:7.1f}  {1:6.0%}  {sum(cpu.values()):7.1f}")
    return "\n".join(lines)


def run_demo(*, out: str | os.PathLike = "reports/demo", quick: bool = False, jobs: int | None = None,
             progress: bool = True) -> DemoOutcome:
    """Run the demo into ``out`` and return where the report is."""
    plan = QUICK if quick else FULL
    if jobs is not None:
        plan = replace(plan, jobs=jobs)
    root = Path(out)
    work = root / "work" / ("quick" if quick else "full")
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        return _timed(timings, name, fn, cpu)

    traces, accs = timed("1/5 capture traces", lambda: _capture(plan, work / "traces", progress))
    from hwsim.sweep.executor import shared_pool

    with shared_pool(plan.jobs):  # the replays and the three sweeps: one pool of workers, started once
        results = timed("2/5 simulate on scnn (every sampled iteration)",
                        lambda: _simulate(plan, traces, work, progress))
        core = {n: p for n, p in traces.items() if any(n == f"{m}_{x}" for m in plan.models for x in plan.methods)}
        timed("2b/5 sensitivity", lambda: _sensitivity(core, root, plan.jobs))
        designs = timed("2c/5 designs at equal area", lambda: _designs(plan, traces, work))
        sweep_dir = timed("3/5 architecture sweep", lambda: _arch_sweep(plan, traces, work, progress))
        nsd_dir = timed("3b/5 NSD unit sweep", lambda: _nsd_sweep(plan, traces, work, progress))
        dens_dir = timed("4/5 density sweep", lambda: _density_sweep(plan, work, progress))
    outcome = timed("5/5 report", lambda: _report(root, [*results, designs, sweep_dir, nsd_dir, dens_dir,
                                                         *traces.values()],
                                                  progress, plan.jobs))
    total = time.perf_counter() - t0
    (work / "timings.json").write_text(json.dumps({"quick": quick, "seconds": total, "steps": timings,
                                                   "cpu_seconds": cpu, "jobs": plan.jobs, "test_acc": accs},
                                                  indent=1))
    if progress:
        _log("where the time went:\n" + timing_table(timings, cpu, total))
    _log(f"finished in {total:.0f} s: open {outcome.index_html}")
    return DemoOutcome(out=root, index_html=outcome.index_html, seconds=total, timings=timings, accuracies=accs,
                       cpu=cpu)


def _capture(plan: DemoPlan, tdir: Path, progress: bool) -> tuple[dict[str, Path], dict[str, float]]:
    """Capture every trace of the plan not already complete in ``tdir``: the models × methods, then the extras.

    With ``plan.jobs`` > 1 and more than one trace to capture, they train side by side in up to ``jobs``
    spawned worker processes (no progress bars: a line per finished trace), the longest-running first; each
    trains on its own thread count, so the traces are byte-for-byte those of a serial run.
    """
    from hwsim.capture.config import DEFAULT_DATASETS, DEFAULT_K, CaptureConfig, TrainConfig

    traces: dict[str, Path] = {}
    accs: dict[str, float] = {}
    runs = [(m, meth, plan.epochs, plan.sample_every, plan.threads) for m in plan.models for meth in plan.methods]
    runs += [(e.model, e.method, e.epochs, e.sample_every, e.threads) for e in plan.extra]
    todo: list[tuple[str, Any, Path, int | None]] = []
    for model, method, epochs, sample_every, threads in runs:
        name = f"{model}_{method}"
        path = tdir / name
        traces[name] = path
        done = _complete_trace(path)
        if done is not None:
            _log(f"  {name}: reusing {path}")
            accs[name] = float(done.summary.get("test_acc", float("nan")))
            continue
        config = TrainConfig(model=model, dataset=DEFAULT_DATASETS["image"], epochs=epochs, limit_train=plan.limit_train,
                             capture=CaptureConfig(method=method, k=DEFAULT_K if method == "meprop" else None,
                                                   sample_every=sample_every, max_examples=plan.max_examples))
        todo.append((name, config, path, threads))
    workers = min(plan.jobs, len(todo))
    if workers <= 1:
        for name, config, path, threads in todo:
            accs[name] = _report_capture(name, _capture_one(config, path, threads, progress))
    else:
        _log(f"  capturing {len(todo)} traces in {workers} worker processes")
        # the extras (a transformer) take longest: started first, the short runs fill in behind them
        order = sorted(todo, key=lambda t: t[0] not in {f"{e.model}_{e.method}" for e in plan.extra})
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        try:
            futures = {pool.submit(_capture_one, config, path, threads, False): name
                       for name, config, path, threads in order}
            for fut in as_completed(futures):
                accs[futures[fut]] = _report_capture(futures[fut], fut.result())
        finally:  # a failed capture: the queued ones are not started (the next run captures them)
            pool.shutdown(wait=True, cancel_futures=True)
    return traces, {n: accs[n] for n in traces}


def _capture_one(config: Any, path: Path, threads: int | None, progress: bool) -> Any:
    """Train and capture one trace on ``threads`` torch threads (in this process or a spawned worker)."""
    from hwsim.capture.train import train_and_capture

    with _torch_threads(threads):
        return train_and_capture(config, out=path, overwrite=True, progress=progress)


def _report_capture(name: str, r: Any) -> float:
    _log(f"  {name}: test acc {r.test_acc:.1%}, δ̃z density {r.weighted_density or 0:.3f}, "
         f"worst-case {r.max_bits} bits, {r.iterations} iterations")
    return r.test_acc


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` inside (None: unchanged)."""
    if n is None:
        yield
        return
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _complete_trace(path: Path) -> Any:
    """The trace at ``path`` if a previous demo run finished it (a valid, complete trace), else None."""
    from hwsim.trace.format import TraceError, load

    if not (path / "manifest.json").exists():
        return None
    try:
        tr = load(path, verify=False)
    except TraceError:
        return None  # half-written or foreign: captured again (overwrite)
    return tr if tr.complete else None


def _simulate(plan: DemoPlan, traces: dict[str, Path], work: Path, progress: bool) -> list[Path]:
    """Every sampled iteration of every captured trace replayed on scnn.yaml and integrated over the training
    run (``hwsim simulate TRACE --iterations all``): resumable (points cached per trace), parallel."""
    from hwsim.results.run import save_run_results
    from hwsim.sweep.replays import simulate_run
    from hwsim.trace.format import load

    paths = []
    for name, path in traces.items():
        run = simulate_run(load(path, verify=False), "scnn", iterations="all", jobs=plan.jobs, progress=progress,
                           cache_dir=work / "simulate")
        paths.append(save_run_results(run, work / "results" / f"{name}.json"))
    return paths


def _designs(plan: DemoPlan, traces: dict[str, Path], work: Path) -> Path:
    """Every design of the plan (every shipped one by default) against a dense array of its own area, on the last
    full batch of each dithered trace, into ``work/designs.json`` for the report. The points share step 2's
    cache (``work/simulate``: scnn's are already there) and run on the demo's pool."""
    from hwsim._io import atomic_write_text
    from hwsim.sweep.designs import compare_designs, designs

    dithered = {n.removesuffix("_dither"): p for n, p in traces.items() if n.endswith("_dither")
                and (plan.design_models is None or n.removesuffix("_dither") in plan.design_models)}
    doc = compare_designs(dithered, plan.designs or designs(), iterations="last", jobs=plan.jobs,
                          cache_dir=work / "simulate")
    out = work / "designs.json"
    atomic_write_text(out, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    return out


def _sensitivity(traces: dict[str, Path], root: Path, jobs: int = 1) -> Path:
    """The headline (whole-iteration sparse speed-up and energy vs both dense baselines) of each dithered
    trace under bank queue depth {0, 1, 4}, DRAM {8, 16, 64, ∞} B/cycle and the weight update's W / state on chip
    or bf16 state: ``<out>/sensitivity.md``. The traces are done side by side on ``jobs`` workers."""
    from hwsim._io import atomic_write_text
    from hwsim.sim.sensitivity import table
    from hwsim.sweep.executor import run_points
    from hwsim.sweep.points import PointTask

    tasks = [PointTask(key=name, config_index=0, overrides={}, arch="scnn", trace_label=name, trace_path=str(path),
                       iteration=-1, seed=0) for name, path in traces.items() if "dither" in name]
    rows: dict[str, list] = {}
    run_points(tasks, _sensitivity_rows, on_result=lambda t, r: rows.__setitem__(t.key, r), jobs=jobs,
               describe=lambda t: f"sensitivity of {t.trace_label}")
    parts = ["# Sensitivity of the headline to unstated assumptions (scnn.yaml, whole training iteration)\n"]
    for t in tasks:  # in the traces' order, whatever order they finished in
        text = table(rows[t.key])
        parts.append(f"## {t.key}\n\n{text}\n")
        _log(f"sensitivity of {t.key} (scnn.yaml; one assumption moved at a time):\n{text}")
    out = root / "sensitivity.md"
    atomic_write_text(out, "\n".join(parts))
    return out


def _sensitivity_rows(task: Any) -> list:
    """:func:`hwsim.sim.sensitivity.sensitivity` of one trace (in this process or a worker)."""
    from hwsim.arch import load_arch
    from hwsim.sim.sensitivity import sensitivity
    from hwsim.trace.format import load

    return sensitivity(load(task.trace_path, verify=False), load_arch(task.arch))


def _arch_sweep(plan: DemoPlan, traces: dict[str, Path], work: Path, progress: bool) -> Path:
    return _trace_sweep("demo", plan.sweep_grid, plan, traces, work, progress)


def _nsd_sweep(plan: DemoPlan, traces: dict[str, Path], work: Path, progress: bool) -> Path:
    """``arch_configs/sweeps/nsd.yaml``: NSD lanes per PE (their area counted) × σ current | delayed."""
    return _trace_sweep("nsd", plan.nsd_grid, plan, traces, work, progress)


def _trace_sweep(name: str, grid: dict[str, Any] | None, plan: DemoPlan, traces: dict[str, Path], work: Path,
                 progress: bool) -> Path:
    """The shipped sweep ``arch_configs/sweeps/<name>.yaml`` (its grid replaced by ``grid`` unless None) on the
    dithered traces of the plan's sweep models, into ``work/sweep_<name>``."""
    import yaml

    from hwsim.sweep.runner import run_sweep
    from hwsim.sweep.spec import parse_sweep

    src = REPO_SWEEPS / f"{name}.yaml"
    doc = yaml.safe_load(src.read_text())
    if grid is not None:
        doc["grid"] = grid
    doc["traces"] = [{"name": n, "path": str(p)} for n, p in traces.items()
                     if n in {f"{m}_dither" for m in plan.sweep_models}]
    spec = parse_sweep(doc, source=src)
    run_sweep(spec, out=work / f"sweep_{name}", jobs=plan.jobs, progress=progress)
    return work / f"sweep_{name}"


def _density_sweep(plan: DemoPlan, work: Path, progress: bool) -> Path:
    import yaml

    from hwsim.sweep.runner import run_sweep
    from hwsim.sweep.spec import parse_sweep

    src = REPO_SWEEPS / "density.yaml"
    doc = yaml.safe_load(src.read_text())
    if plan.densities is not None:
        for t in doc["traces"]:
            t["synthetic"]["density"] = list(plan.densities)
    spec = parse_sweep(doc, source=src)
    run_sweep(spec, out=work / "sweep_density", jobs=plan.jobs, progress=progress)
    return work / "sweep_density"


def _report(root: Path, inputs: Sequence[Path], progress: bool, jobs: int):
    from hwsim.report import build_report

    # The figures (~40, under a second each) are drawn in --jobs processes, as PNGs only: the page shows those;
    # an SVG copy of each is `hwsim report` of the same inputs away (scripts/readme_tables.py --regenerate). The
    # plain-backprop runs are baselines: two figures each (layer speed-up, cycle breakdown), all their numbers in
    # the summary tables.
    return build_report(inputs, out=root, title="hwsim demo: dithered backprop on an SCNN-like accelerator",
                        progress=progress, jobs=jobs, svg=False, brief_methods=("none",))
