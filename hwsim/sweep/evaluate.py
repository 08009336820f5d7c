"""The real point evaluator: build the architecture, replay the trace, return results JSON.

It is a module-level function so process pools and Dask workers can pickle it by reference;
tests inject their own evaluator into :func:`hwsim.sweep.runner.run_sweep` instead.
"""

from __future__ import annotations

import functools
from typing import Any

from hwsim.sweep.points import PointTask


def evaluate_point(task: PointTask) -> dict[str, Any]:
    """Simulate one point with the real simulator (imported here, in the worker)."""
    from hwsim.sim import simulate

    result = simulate(_trace(task.trace_path), _arch(task.arch, tuple(sorted(task.overrides.items()))),
                      iteration=task.iteration, seed=task.seed, progress=False)
    return result.to_json()


# A worker evaluates many points of the same trace and arch (a whole-run replay: every sampled iteration):
# parse the manifest (per-iteration statistics of the whole run) and validate the arch once per process.
# Keyed by the manifest's mtime and size too, so a trace rewritten in place is re-read.
_TRACES: dict[tuple, Any] = {}


def _trace(path: str):
    import os

    from hwsim.trace.format import load

    st = os.stat(os.path.join(path, "manifest.json"))
    key = (os.path.abspath(path), st.st_mtime_ns, st.st_size)
    if key not in _TRACES:
        _TRACES.clear()  # one trace at a time: a sweep over many traces must not pile them up
        _TRACES[key] = load(path, verify=False)
    return _TRACES[key]


@functools.lru_cache(maxsize=8)
def _arch(arch: str, overrides: tuple):
    from hwsim.arch import load_arch

    return load_arch(arch, dict(overrides) or None)
