"""Run a sweep: every config × trace × seed → one stored result per point, then a summary table.

Three executors run the *same* list of points: in-process (``jobs=1``), a local process pool
(``jobs>1``, spawned workers so a parent that imported torch is never forked), or an existing
Dask distributed cluster (``scheduler="tcp://host:port"``). Workers only compute; the parent
writes every result atomically as it arrives, under its content-hash key, so an interrupted
sweep resumes where it stopped and points shared by two sweeps are computed once.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwsim.sweep.evaluate import evaluate_point
from hwsim.sweep.points import PointTask, point_key, point_path, write_point
from hwsim.sweep.spec import SweepError, SweepSpec
from hwsim.sweep.summary import write_summary
from hwsim.sweep.traces import prepare_traces

Evaluator = Callable[[PointTask], Mapping[str, Any]]
SPEC_FILE = "sweep_spec.json"


@dataclass(frozen=True)
class SweepOutcome:
    """What a run did: all points of the sweep, how many were computed now vs. found on disk."""

    out: Path
    tasks: tuple[PointTask, ...]
    evaluated: int
    skipped: int
    rows: tuple[Mapping[str, Any], ...]


def plan_points(spec: SweepSpec, *, out: str | os.PathLike) -> list[PointTask]:
    """Expand the sweep into point tasks (generating synthetic traces on first use)."""
    from hwsim.arch import load_arch

    traces = prepare_traces(spec, out=out)
    tasks: list[PointTask] = []
    seen: set[str] = set()
    for c in spec.configs:
        try:
            arch_dict = load_arch(spec.arch, dict(c.overrides)).to_dict()
        except ValueError as e:
            raise SweepError(f"{spec.source or spec.name}: point {c.index} ({c.label}): {e}") from None
        for t in traces:
            for seed in spec.seeds:
                key = point_key(arch_dict=arch_dict, trace_sha=t.sha, iteration=t.iteration, seed=seed)
                if key in seen:  # two spellings of the same point: compute it once
                    continue
                seen.add(key)
                tasks.append(PointTask(key=key, config_index=c.index, overrides=dict(c.overrides), arch=spec.arch,
                                       trace_label=t.spec.label, trace_path=str(t.path), iteration=t.iteration,
                                       seed=seed))
    return tasks


def run_sweep(spec: SweepSpec, *, out: str | os.PathLike, jobs: int = 1, scheduler: str | None = None,
              evaluate: Evaluator = evaluate_point, progress: bool = True, connect_timeout_s: float = 10.0,
              max_points: int | None = None) -> SweepOutcome:
    """Run (or resume) a sweep into ``out`` and write ``sweep.json``/``sweep.csv``.

    ``max_points`` stops after that many new evaluations (a deliberate partial run; the rest
    are picked up by the next call). ``evaluate`` is injectable for tests; the default runs the
    real simulator.
    """
    import json

    from hwsim._io import atomic_write_text

    if jobs < 1:
        raise SweepError(f"--jobs: {jobs} must be >= 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / SPEC_FILE, json.dumps(spec.to_json(), indent=1, default=str))
    tasks = plan_points(spec, out=out)
    pending = [t for t in tasks if not point_path(out, t.key).exists()]
    skipped = len(tasks) - len(pending)
    if max_points is not None:
        pending = pending[:max(0, max_points)]
    where = f"scheduler {scheduler}" if scheduler else (f"{jobs} processes" if jobs > 1 else "in-process")
    if progress:
        print(f"sweep {spec.name}: {len(tasks)} points, {skipped} already done, {len(pending)} to run ({where})",
              file=sys.stderr)
    evaluated = 0
    if pending:
        if scheduler:
            stream = _run_dask(pending, evaluate, scheduler, connect_timeout_s)
        elif jobs > 1:
            stream = _run_pool(pending, evaluate, jobs)
        else:
            stream = _run_serial(pending, evaluate)
        evaluated = _drain(stream, out=out, total=len(pending), label=spec.name, progress=progress)
    rows = write_summary(spec, tasks=tasks, out=out)
    return SweepOutcome(out=out, tasks=tuple(tasks), evaluated=evaluated, skipped=skipped, rows=tuple(rows))


def _drain(stream: Iterator[tuple[PointTask, Mapping[str, Any]]], *, out: Path, total: int, label: str,
           progress: bool) -> int:
    """Write each finished point as it arrives; a failure names the point and stops the sweep."""
    from tqdm import tqdm

    done = 0
    with tqdm(total=total, desc=f"sweep {label}", unit="pt", disable=not progress, file=sys.stderr) as bar:
        try:
            for task, result in stream:
                write_point(out, task, result)
                done += 1
                bar.update(1)
        except _PointFailed as e:
            raise SweepError(f"point {e.task.trace_label} / {_label(e.task)}: {type(e.cause).__name__}: "
                             f"{e.cause}") from e.cause
        finally:
            close = getattr(stream, "close", None)
            if close:  # stops the pool / Dask client now, not at garbage collection
                close()
    return done


def _label(task: PointTask) -> str:
    return ", ".join(f"{k}={v}" for k, v in task.overrides.items()) or "base arch"


class _PointFailed(Exception):
    def __init__(self, task: PointTask, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.task = task
        self.cause = cause


def _run_serial(tasks: Sequence[PointTask], evaluate: Evaluator) -> Iterator[tuple[PointTask, Any]]:
    for t in tasks:
        try:
            result = evaluate(t)
        except Exception as e:  # noqa: BLE001 - reported with the point's name
            raise _PointFailed(t, e) from e
        yield t, result


def _run_pool(tasks: Sequence[PointTask], evaluate: Evaluator, jobs: int) -> Iterator[tuple[PointTask, Any]]:
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=ctx)
    try:
        futures: dict[Future, PointTask] = {pool.submit(evaluate, t): t for t in tasks}
        remaining = set(futures)
        while remaining:
            finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for f in finished:
                exc = f.exception()
                if exc is not None:
                    raise _PointFailed(futures[f], exc)
                yield futures[f], f.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_dask(tasks: Sequence[PointTask], evaluate: Evaluator, address: str,
              timeout_s: float) -> Iterator[tuple[PointTask, Any]]:
    client = connect_dask(address, timeout_s=timeout_s)
    try:
        futures = client.map(evaluate, list(tasks), key=[f"hwsim-point-{t.key}" for t in tasks], pure=False)
        by_key = {f.key: t for f, t in zip(futures, tasks, strict=True)}
        from distributed import as_completed

        for f in as_completed(futures, loop=client.loop):
            task = by_key[f.key]
            if f.status == "error":
                raise _PointFailed(task, f.exception())
            yield task, f.result()
    finally:
        client.close()


def connect_dask(address: str, *, timeout_s: float = 10.0) -> Any:
    """A Dask client for an existing scheduler; an unreachable one is a clear error after ``timeout_s``."""
    try:
        from distributed import Client
    except ImportError:
        raise SweepError("--scheduler needs dask.distributed: pip install 'hwsim[dask]'") from None
    if "://" not in address:
        raise SweepError(f"--scheduler: {address!r} must look like tcp://HOST:PORT")
    try:
        return Client(address, timeout=f"{timeout_s}s", set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise SweepError(f"--scheduler: cannot reach the Dask scheduler at {address} within {timeout_s:g} s "
                         f"({type(e).__name__}); start one with 'dask scheduler' (and 'dask worker {address}') "
                         f"or drop --scheduler to run locally") from None
