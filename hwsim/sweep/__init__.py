"""Sweeps: a YAML file of architecture overrides × traces → one stored result per point.

``load_sweep`` (spec.py) validates and expands; ``run_sweep`` (runner.py) evaluates the points
in-process, in a process pool or on a Dask cluster, resumably; ``summary.py`` writes the table.
"""

from __future__ import annotations

from hwsim.sweep.spec import SweepError, SweepSpec, TraceSpec, load_sweep, parse_sweep

__all__ = ["SweepError", "SweepSpec", "TraceSpec", "load_sweep", "parse_sweep", "run_sweep"]


def __getattr__(name: str):
    if name == "run_sweep":  # lazy: the runner pulls in results/arch only when a sweep runs
        from hwsim.sweep.runner import run_sweep

        return run_sweep
    raise AttributeError(name)
