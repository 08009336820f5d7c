"""The real point evaluator: build the architecture, replay the trace, return results JSON.

It is a module-level function so process pools and Dask workers can pickle it by reference;
tests inject their own evaluator into :func:`hwsim.sweep.runner.run_sweep` instead.
"""

from __future__ import annotations

from typing import Any

from hwsim.sweep.points import PointTask


def evaluate_point(task: PointTask) -> dict[str, Any]:
    """Simulate one point with the real simulator (imported here, in the worker)."""
    from hwsim.arch import load_arch
    from hwsim.sim import simulate

    arch = load_arch(task.arch, dict(task.overrides))
    result = simulate(task.trace_path, arch, iteration=task.iteration, seed=task.seed, progress=False)
    return result.to_json()
