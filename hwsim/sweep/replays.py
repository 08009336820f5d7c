"""Whole-run replays (:func:`simulate_run`): many sampled iterations × architectures through the sweep executor.

Each (architecture, iteration, seed) is a sweep point (:class:`~hwsim.sweep.points.PointTask`, the
same content-hash key), evaluated in-process, in a local process pool (``jobs``) or on a Dask
cluster (``scheduler``) by the sweep runner's executors, and — when ``out`` is given — stored as
``out/points/<key>.json`` as it arrives, so an interrupted replay resumes where it stopped. The
progress bar counts GEMMs (layer-passes) and shows the iterations done.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwsim.results import SimResult
from hwsim.results.provenance import diff_overrides, flatten, for_simulation
from hwsim.results.run import RunResult, hold_weights
from hwsim.sweep.evaluate import cached_arch, evaluate_point, evaluate_result, given_trace
from hwsim.sweep.executor import Evaluator, run_points
from hwsim.sweep.points import (
    PointTask,
    manifest_sha,
    point_key,
    point_path,
    read_point,
    trace_sha,
    write_point,
)
from hwsim.sweep.spec import SweepError

if TYPE_CHECKING:
    from hwsim.arch import Arch
    from hwsim.trace.format import Trace
    from hwsim.trace.records import IterationRecord as TraceIteration


def select_iterations(sampled: Sequence[int], spec: str | int | Sequence[int] | None) -> list[int]:
    """Sampled iterations chosen by ``spec``: ``"all"``, ``"last"``, ``"every:N"`` (every N-th sampled
    iteration from the first, and the last), ``"LIST"`` (comma-separated) or a sequence of ints."""
    its = sorted(int(i) for i in sampled)
    if not its:
        raise SweepError("--iterations: the trace has no sampled iteration")
    allowed = f"allowed: all, last, every:N, or sampled iterations from {its}"
    if spec is None or spec == "last":
        return [its[-1]]
    if spec == "all":
        return its
    if isinstance(spec, str) and spec.startswith("every:"):
        try:
            n = int(spec.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            raise SweepError(f"--iterations: {spec!r}: N must be an integer >= 1; {allowed}")
        return sorted(set(its[::n]) | {its[-1]})
    if isinstance(spec, str):
        try:
            want = [int(x) for x in spec.split(",") if x.strip()]
        except ValueError:
            raise SweepError(f"--iterations: {spec!r} is not understood; {allowed}") from None
    elif isinstance(spec, int):
        want = [spec]
    else:
        want = [int(x) for x in spec]
    missing = [i for i in want if i not in set(its)]
    if missing or not want:
        raise SweepError(f"--iterations: {missing or want} not sampled in the trace; {allowed}")
    return sorted(set(want))


def gemms_per_iteration(trace: Trace, iteration: int | None = None) -> int:
    """Layer-passes one training iteration replays (default: the last sampled one): the GEMMs that ran,
    as the samples record them (:func:`hwsim.sim.replay.replayed_passes`; without the record, the
    network input has no backward-data GEMM)."""
    from hwsim.sim.replay import first_layer_input_grad, replayed_passes

    flags = trace.grad_flags(iteration).values()
    return len(replayed_passes(flags, first_input_grad=first_layer_input_grad(trace.meta)))


def replay_tasks(trace_or_path: Trace | str | os.PathLike, archs: Sequence[tuple[str, Mapping[str, Any]]],
                 iterations: Sequence[int], *, seed: int = 0, loaded: Sequence[Arch] | None = None
                 ) -> list[PointTask]:
    """One point per architecture × iteration (``archs``: (YAML path or name, overrides) pairs).

    ``trace_or_path``: a loaded trace or its directory. ``loaded``: the architectures ``archs`` load to, when the
    caller has them (``load_arch(path, overrides)`` each); else each is loaded here, for its point key."""
    from hwsim.arch import load_arch
    from hwsim.trace.format import Trace

    if isinstance(trace_or_path, Trace):
        trace_path, sha = trace_or_path.path, trace_sha(trace_or_path)
    else:
        trace_path, sha = trace_or_path, manifest_sha(trace_or_path)
    if loaded is not None and len(loaded) != len(archs):
        raise ValueError(f"replay_tasks: {len(loaded)} loaded architectures for {len(archs)} (path, overrides) pairs")
    tasks = []
    for ci, (arch, overrides) in enumerate(archs):
        arch_dict = (loaded[ci] if loaded is not None else load_arch(arch, dict(overrides) or None)).to_dict()
        for it in iterations:
            key = point_key(arch_dict=arch_dict, trace_sha=sha, iteration=it, seed=seed)
            tasks.append(PointTask(key=key, config_index=ci, overrides=dict(overrides), arch=str(arch),
                                   trace_label=Path(trace_path).name, trace_path=str(trace_path), iteration=int(it),
                                   seed=seed))
    return tasks


def run_replays(tasks: Sequence[PointTask], *, gemms: int, out: str | os.PathLike | None = None, jobs: int = 1,
                scheduler: str | None = None, progress: bool = True, evaluate: Evaluator = evaluate_point,
                connect_timeout_s: float = 10.0) -> dict[str, SimResult]:
    """Evaluate (or, with ``out``, resume) every task; returns ``{task.key: SimResult}``.

    ``gemms``: layer-passes per iteration, for the progress bar. The real evaluator run in this process (``jobs=1``
    or a single point, no scheduler) hands over its results as they are (:func:`evaluate_result`): no JSON round
    trip, which only a worker in another process needs (the JSON is still written with ``out``).
    """
    if jobs < 1:
        raise SweepError(f"--jobs: {jobs} must be >= 1")
    done: dict[str, SimResult] = {}
    pending = []
    for t in tasks:
        p = point_path(out, t.key) if out is not None else None
        if p is not None and p.exists():
            done[t.key] = SimResult.from_json(read_point(p)["result"], where=str(p))
        else:
            pending.append(t)
    n_it = len({t.iteration for t in tasks})
    if evaluate is evaluate_point and not scheduler and (jobs == 1 or len(pending) < 2):
        evaluate = evaluate_result  # in-process: the records themselves
    if progress and pending:
        from tqdm import tqdm

        shown = tqdm(total=len(tasks) * gemms, initial=len(done) * gemms, desc="replay", unit="gemm",
                     file=sys.stderr, delay=2.0)  # none for a quick failure
    else:
        shown = contextlib.nullcontext(_NoBar())
    with shown as bar:
        def store(task: PointTask, result: Mapping[str, Any] | SimResult) -> None:
            res = result if isinstance(result, SimResult) else SimResult.from_json(result, where=f"iteration "
                                                                                                 f"{task.iteration}")
            if out is not None:
                write_point(out, task, res.to_json() if isinstance(result, SimResult) else result)
            done[task.key] = res
            bar.update(gemms)
            its = len({t.iteration for t in tasks if t.key in done})
            bar.set_postfix_str(f"iterations {its}/{n_it}, points {len(done)}/{len(tasks)}", refresh=False)  # keeps delay

        run_points(pending, evaluate, on_result=store, jobs=jobs, scheduler=scheduler,
                   connect_timeout_s=connect_timeout_s, describe=lambda t: f"iteration {t.iteration} on {t.arch}")
    return done


class _NoBar:
    """The progress bar's two calls, doing nothing (no bar asked for: tqdm is not even imported)."""

    def update(self, n: int) -> None:
        pass

    def set_postfix_str(self, s: str, refresh: bool = True) -> None:
        pass


def run_length(trace: Trace, replayed: Sequence[int]) -> int:
    """Iterations of the training run the replayed ones stand for: up to the last recorded (or replayed) one."""
    return max([s.index for s in trace.iterations] + [max(replayed)]) + 1


def simulate_run(trace_or_path: Trace | str | os.PathLike, arch_or_path: Arch | str | os.PathLike, *,
                 iterations: str | int | Sequence[int] = "all", seed: int = 0, progress: bool = False, jobs: int = 1,
                 scheduler: str | None = None, cache_dir: str | os.PathLike | None = None,
                 overrides: Mapping[str, Any] | None = None) -> RunResult:
    """Replay the chosen sampled iterations of a trace and integrate them over the training run.

    ``iterations``: ``"all"``, ``"last"``, ``"every:N"``, ``"0,10,45"`` or a list of sampled iterations
    (:func:`select_iterations`) → a :class:`~hwsim.results.run.RunResult` (per-iteration results and their
    left-hold integral over the run; training replays). The iterations run through the sweep executor:
    ``jobs`` local processes or a Dask ``scheduler`` address; ``cache_dir`` stores each replayed iteration as it
    finishes so an interrupted run resumes. ``arch_or_path``: a YAML path or shipped name (with dotted
    ``overrides``), or an :class:`~hwsim.arch.Arch` loaded from a YAML file (workers reload it).
    """
    import time

    from hwsim.arch import Arch
    from hwsim.trace.format import Trace, load

    t0 = time.perf_counter()
    trace = trace_or_path if isinstance(trace_or_path, Trace) else load(trace_or_path, verify=False)
    its = select_iterations(trace.sampled_iterations, iterations)
    # The one read of the architecture file in this process (evaluate.cached_arch, shared with the points evaluated
    # here; workers in other processes reload it).
    if isinstance(arch_or_path, Arch):
        if not arch_or_path.source:
            raise ValueError("arch: a whole-run replay needs an arch loaded from a YAML file (workers reload it)")
        arch, arch_ref = arch_or_path, arch_or_path.source
        file_arch, base = cached_arch(arch_ref)  # the file as written: the workers' overrides are the difference
        ov = {} if arch == file_arch else _diff_overrides(arch, file_arch)
    else:
        arch_ref, ov = os.fspath(arch_or_path), dict(overrides or {})
        arch, file_dict = cached_arch(arch_ref, ov)  # validated here, before any replay
        base = None if ov else file_dict  # without overrides the arch is the file as written
    tasks = replay_tasks(trace, [(arch_ref, ov)], its, seed=seed, loaded=[arch])
    with given_trace(trace):  # points evaluated in this process replay the trace loaded here
        done = run_replays(tasks, gemms=gemms_per_iteration(trace), out=cache_dir, jobs=jobs, scheduler=scheduler,
                           progress=progress)
    stats = trace.iterations
    total = run_length(trace, its)
    training = [{"iteration": s.index, "epoch": s.epoch, "loss": s.loss, "dz_density": s.mean_density(),
                 "sampled": s.sampled} for s in stats]
    caveats = _batch_caveats(stats, its, total)
    for c in caveats:
        warnings.warn(f"{trace.path}: {c}", stacklevel=2)
    prov = for_simulation(trace, arch, iteration=its, overrides=ov or None, base=base)
    prov["mode"] = "whole training run (left-hold estimator over the replayed iterations); iterations"
    return RunResult.build([(t.iteration, done[t.key]) for t in tasks], total_iterations=total, training=training,
                           run={"seed": seed, "iterations_spec": str(iterations), "replayed": len(its),
                                "jobs": jobs, "scheduler": scheduler, "caveats": caveats,
                                "wall_s": round(time.perf_counter() - t0, 3)}, provenance=prov)


def _elements(stats: TraceIteration, names: Collection[str] | None = None) -> int | None:
    """δz elements of one iteration (Σ over layers of non-zeros ÷ density): proportional to its mini-batch.
    ``names``: count only these layers."""
    n = [sum(v.hist) / float(v.density) for k, v in stats.layers.items()
         if v.hist and v.density and (names is None or k in names)]
    return round(sum(n)) if n else None


def _batch_caveats(stats: Sequence[TraceIteration], its: list[int], total: int) -> list[str]:
    """Replayed iterations whose mini-batch differs from the iterations they stand for (e.g. an epoch's last,
    partial batch): the left-hold estimator counts them as they are, so the whole-run cost is biased.

    Only layers with statistics in all the compared iterations count: some are recorded on sampled
    iterations only (fused attention's QKᵀ), which says nothing about the batch."""
    by_index = {s.index: s for s in stats}
    out = []
    for it, w in zip(its, hold_weights(its, total), strict=True):
        start = 0 if it == its[0] else it  # the first also stands for the iterations before it
        window = [by_index[j] for j in range(start, start + w) if j in by_index]
        if it not in by_index or not window:
            continue
        names = set(by_index[it].layers).intersection(*(s.layers for s in window))
        mine = _elements(by_index[it], names)
        others = sorted(e for s in window if (e := _elements(s, names)) is not None)
        if not mine or not others:
            continue
        typical = others[len(others) // 2]
        if abs(mine - typical) > 0.01 * typical:
            out.append(f"replayed iteration {it} has {mine / typical:.0%} of the δz elements of the typical iteration "
                       f"it stands for (a partial mini-batch?); it is counted for {w} iteration(s), so the whole-run "
                       f"cost is {'under' if mine < typical else 'over'}estimated — sample other iterations "
                       f"(sample_every a multiple of the iterations per epoch) or replay every iteration")
    return out


def _diff_overrides(arch: Arch, file_arch: Arch) -> dict[str, Any]:
    """Dotted overrides that turn ``file_arch`` (the arch's YAML file as written) into ``arch`` (for workers that
    reload the file)."""
    params = arch.to_dict()
    present = flatten(params)
    return {k: v for k, v in diff_overrides(params, file_arch.to_dict()).items() if k in present}


__all__ = ["select_iterations", "gemms_per_iteration", "replay_tasks", "run_length", "run_replays", "simulate_run"]
