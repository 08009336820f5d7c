"""The real point evaluator: build the architecture, replay the trace, return results JSON.

It is a module-level function so process pools and Dask workers can pickle it by reference;
tests inject their own evaluator into :func:`hwsim.sweep.runner.run_sweep` instead.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from hwsim.sweep.points import PointTask

if TYPE_CHECKING:
    from hwsim.arch import Arch
    from hwsim.results import SimResult
    from hwsim.trace.format import Trace


def evaluate_point(task: PointTask) -> dict[str, Any]:
    """Simulate one point with the real simulator (imported here, in the worker); its results JSON."""
    return evaluate_result(task).to_json()


def evaluate_result(task: PointTask) -> SimResult:
    """:func:`evaluate_point` without the JSON: the :class:`~hwsim.results.SimResult` itself, for a caller in the
    same process (a serial run), which would otherwise rebuild it from the JSON."""
    from hwsim.sim import simulate

    arch, base = cached_arch(task.arch, task.overrides)
    return simulate(_trace(task.trace_path), arch, iteration=task.iteration, seed=task.seed, progress=False,
                    arch_base=base)


# A worker evaluates many points of the same trace and arch (a whole-run replay: every sampled iteration):
# parse the manifest (per-iteration statistics of the whole run) and validate the arch once per process.
# Keyed by the manifest's mtime and size too, so a trace rewritten in place is re-read.
_TRACES: dict[tuple, Any] = {}
_GIVEN: dict[str, Trace] = {}  # traces a caller in this process has loaded (:func:`given_trace`), by directory


@contextlib.contextmanager
def given_trace(trace: Trace) -> Iterator[None]:
    """Inside, points of ``trace``'s directory evaluated in this process replay ``trace`` itself (the caller's
    loaded trace: its manifest and per-iteration records are not parsed a second time). Workers in other
    processes load their own."""
    key = os.path.abspath(trace.path)
    _GIVEN[key] = trace
    try:
        yield
    finally:
        _GIVEN.pop(key, None)


def _trace(path: str) -> Trace:
    from hwsim.trace.format import load

    given = _GIVEN.get(os.path.abspath(path))
    if given is not None:
        return given
    st = os.stat(os.path.join(path, "manifest.json"))
    key = (os.path.abspath(path), st.st_mtime_ns, st.st_size)
    if key not in _TRACES:
        _TRACES.clear()  # one trace at a time: a sweep over many traces must not pile them up
        _TRACES[key] = load(path, verify=False)
    return _TRACES[key]


def cached_arch(arch: str, overrides: Mapping[str, Any] | None = None) -> tuple[Arch, dict[str, Any]]:
    """``load_arch(arch, overrides)`` and the file as written (validated ``to_dict()``, which the provenance
    diffs the overrides against), from one read and validation per process and file version: the caller of a
    whole-run replay and its in-process points share the one :class:`~hwsim.arch.Arch`. Keyed by the file's
    mtime and size too, so a file edited in place is re-read."""
    from hwsim.arch import resolve_arch_path

    path = str(resolve_arch_path(arch))
    st = os.stat(path)
    return _arch(path, st.st_mtime_ns, st.st_size, tuple(sorted((overrides or {}).items())))


@functools.lru_cache(maxsize=8)
def _arch(path: str, mtime_ns: int, size: int, overrides: tuple) -> tuple[Arch, dict[str, Any]]:
    from hwsim.arch import apply_overrides, arch_from_dict

    raw = _read_arch_file(path, mtime_ns, size)
    base = arch_from_dict(apply_overrides(raw, None), source=path)
    if not overrides:
        return base, base.to_dict()
    return arch_from_dict(apply_overrides(raw, dict(overrides), file=path), source=path), base.to_dict()


@functools.lru_cache(maxsize=8)
def _read_arch_file(path: str, mtime_ns: int, size: int) -> dict[str, Any]:  # mtime, size: cache key only
    from pathlib import Path

    from hwsim.arch.loader import read_yaml

    return read_yaml(Path(path))
