"""The real point evaluator: build the architecture, replay the trace, return results JSON.

It is a module-level function so process pools and Dask workers can pickle it by reference;
tests inject their own evaluator into :func:`hwsim.sweep.runner.run_sweep` instead.
"""

from __future__ import annotations

import functools
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

    arch, base = _arch(task.arch, tuple(sorted(task.overrides.items())))
    return simulate(_trace(task.trace_path), arch, iteration=task.iteration, seed=task.seed, progress=False,
                    arch_base=base)


# A worker evaluates many points of the same trace and arch (a whole-run replay: every sampled iteration):
# parse the manifest (per-iteration statistics of the whole run) and validate the arch once per process.
# Keyed by the manifest's mtime and size too, so a trace rewritten in place is re-read.
_TRACES: dict[tuple, Any] = {}


def _trace(path: str) -> Trace:
    import os

    from hwsim.trace.format import load

    st = os.stat(os.path.join(path, "manifest.json"))
    key = (os.path.abspath(path), st.st_mtime_ns, st.st_size)
    if key not in _TRACES:
        _TRACES.clear()  # one trace at a time: a sweep over many traces must not pile them up
        _TRACES[key] = load(path, verify=False)
    return _TRACES[key]


@functools.lru_cache(maxsize=8)
def _arch(arch: str, overrides: tuple) -> tuple[Arch, dict[str, Any]]:
    """``load_arch(arch, overrides)`` and the file as written (validated ``to_dict()``, which the provenance
    diffs the overrides against), from one read of the file per process (:func:`_arch_file`)."""
    from hwsim.arch import apply_overrides, arch_from_dict, resolve_arch_path

    path = resolve_arch_path(arch)
    raw = _arch_file(str(path))
    base = arch_from_dict(apply_overrides(raw, None), source=str(path))
    if not overrides:
        return base, base.to_dict()
    return arch_from_dict(apply_overrides(raw, dict(overrides), file=str(path)), source=str(path)), base.to_dict()


def _arch_file(path: str) -> dict[str, Any]:
    """The YAML mapping of an architecture file, read once per process and file version (a sweep's configs all
    override the same file). Keyed by mtime and size too, so a file edited in place is re-read."""
    import os

    st = os.stat(path)
    return _read_arch_file(path, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _read_arch_file(path: str, mtime_ns: int, size: int) -> dict[str, Any]:  # mtime, size: cache key only
    from pathlib import Path

    from hwsim.arch.loader import read_yaml

    return read_yaml(Path(path))
