"""The one executor: a list of points evaluated in-process, in a local process pool or on a Dask cluster.

Sweeps (:mod:`hwsim.sweep.runner`) and whole-run replays (:mod:`hwsim.sweep.replays`) both hand their points to
:func:`run_points`: ``jobs=1`` runs in-process, ``jobs>1`` in a pool of spawned workers (a parent that imported
torch is never forked), ``scheduler="tcp://host:port"`` on an existing Dask cluster. Workers only compute; the
caller's ``on_result`` stores each result as it arrives. A failing point stops the run with one
:class:`~hwsim.sweep.spec.SweepError` naming it (``describe``), and the pool or Dask client is closed at once.

Inside :func:`shared_pool` every local pool is one pool, started once: a pipeline of many short runs (``hwsim
demo``: the whole-run replay of each trace, then three sweeps) pays the workers' start-up and imports once, and
their per-process caches (the trace last read, validated architectures) carry over from one run to the next.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from hwsim.sweep.points import PointTask
from hwsim.sweep.spec import SweepError

Evaluator = Callable[[PointTask], Mapping[str, Any]]


def run_points(tasks: Sequence[PointTask], evaluate: Evaluator, *, on_result: Callable[[PointTask, Any], None],
               describe: Callable[[PointTask], str], jobs: int = 1, scheduler: str | None = None,
               connect_timeout_s: float = 10.0) -> int:
    """Evaluate every task, calling ``on_result(task, result)`` as each finishes (in completion order); returns
    how many were evaluated. ``describe(task)`` names a failing point in the :class:`SweepError` raised."""
    if jobs < 1:
        raise SweepError(f"--jobs: {jobs} must be >= 1")
    if not tasks:
        return 0
    if scheduler:
        stream = _run_dask(tasks, evaluate, scheduler, connect_timeout_s)
    elif jobs > 1 and len(tasks) > 1:
        stream = _run_pool(tasks, evaluate, jobs)
    else:
        stream = _run_serial(tasks, evaluate)
    done = 0
    try:
        for task, result in stream:
            on_result(task, result)
            done += 1
    except _PointFailed as e:
        raise SweepError(f"{describe(e.task)}: {type(e.cause).__name__}: {e.cause}") from e.cause
    finally:
        close = getattr(stream, "close", None)
        if close:  # stops the pool / Dask client now, not at garbage collection
            close()
    return done


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


_SHARED: list[ProcessPoolExecutor] = []  # the pool of the innermost shared_pool(), if any


@contextlib.contextmanager
def shared_pool(jobs: int) -> Iterator[None]:
    """Inside, :func:`run_points` with ``jobs`` > 1 (and no scheduler) runs on one pool of ``jobs`` spawned
    workers, started here and shut down on leaving, instead of a pool per call. A failing point still stops
    its run (its pending points are cancelled) and raises; the pool stays for the next run. ``jobs`` < 2: no
    pool, every run as it would be without this."""
    if jobs < 2:
        yield
        return
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))
    _SHARED.append(pool)
    try:
        yield
    finally:
        _SHARED.remove(pool)
        pool.shutdown(wait=True, cancel_futures=True)


def shared_pool_cpu_seconds() -> float:
    """CPU seconds used so far by the live workers of the current :func:`shared_pool` (0 outside one, or where
    ``/proc`` is not there). Once the pool is shut down its workers count in the parent's
    ``resource.getrusage(RUSAGE_CHILDREN)`` instead, so the sum of the two only grows."""
    if not _SHARED:
        return 0.0
    total, tick = 0.0, os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for pid in list(getattr(_SHARED[-1], "_processes", None) or {}):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14 and 15 of proc(5))
    return total


def _run_pool(tasks: Sequence[PointTask], evaluate: Evaluator, jobs: int) -> Iterator[tuple[PointTask, Any]]:
    if _SHARED:
        yield from _drain(_SHARED[-1], tasks, evaluate, shared=True)
        return
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=ctx)
    yield from _drain(pool, tasks, evaluate, shared=False)


def _drain(pool: ProcessPoolExecutor, tasks: Sequence[PointTask], evaluate: Evaluator, *,
           shared: bool) -> Iterator[tuple[PointTask, Any]]:
    """Submit every task to ``pool`` and yield (task, result) as they finish; at the end, on a failure or when
    the consumer stops early, a pool of its own is shut down and a shared one only loses this run's pending tasks."""
    futures: dict[Future, PointTask] = {}
    try:
        futures = {pool.submit(evaluate, t): t for t in tasks}
        remaining = set(futures)
        while remaining:
            finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for f in finished:
                exc = f.exception()
                if exc is not None:
                    raise _PointFailed(futures[f], exc)
                yield futures[f], f.result()
    finally:
        if shared:
            for f in futures:
                f.cancel()
            wait(futures)  # what already runs finishes: the next run starts on idle workers
        else:
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


__all__ = ["Evaluator", "connect_dask", "run_points"]
