"""Replay traces on several designs and compare each with a dense array of its own area (issue 18 item 7).

:func:`compare_designs` makes the document of :mod:`hwsim.results.designs`: every trace × design × replayed
iteration is one point of the sweep executor (:func:`hwsim.sweep.replays.run_replays`: all of them in one run, so
they share the pool's workers — ``hwsim demo``'s :func:`~hwsim.sweep.executor.shared_pool` — and a ``cache_dir``
of points already replayed, by content hash, is reused), then each trace × design is integrated over its replayed
iterations (one iteration: its result) and measured against its ``dense_equal_area`` variant
(:func:`hwsim.results.designs.equal_area_figures`).

The designs compared by default (:func:`designs`): ``scnn`` (SCNN's Cartesian product in every pass),
``training`` (SCNN's silicon, δz-driven gathers for both backward passes), the dense systolic arrays
``systolic32`` (weight stationary) and ``systolic32_os`` (output stationary), ``scnn_bitserial`` (Stripes-style
bit-serial lanes) and any ``tensordash*.yaml`` shipped in ``arch_configs/``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwsim.results import RunResult, SimResult
from hwsim.results.designs import comparison, equal_area_figures
from hwsim.sweep.points import PointTask
from hwsim.sweep.replays import gemms_per_iteration, replay_tasks, run_length, run_replays, select_iterations
from hwsim.sweep.spec import SweepError

if TYPE_CHECKING:
    from hwsim.trace.format import Trace

BASE_DESIGNS: tuple[str, ...] = ("scnn", "training", "systolic32", "systolic32_os", "scnn_bitserial")
ITERATIONS = ("last", "all")  # the last full batch (Trace.default_iteration) or every sampled iteration


def designs(arch_dir: str | os.PathLike | None = None) -> tuple[str, ...]:
    """:data:`BASE_DESIGNS`, then every ``tensordash*.yaml`` of ``arch_dir`` (default: the shipped
    ``arch_configs/``), by name, sorted."""
    from hwsim.arch import ARCH_DIR

    return BASE_DESIGNS + tuple(sorted(p.stem for p in Path(arch_dir or ARCH_DIR).glob("tensordash*.yaml")))


def chosen_iterations(trace: Trace, mode: str) -> tuple[list[int], str]:
    """The sampled iterations ``mode`` replays (:data:`ITERATIONS`) and a phrase saying which."""
    if mode == "all":
        its = select_iterations(trace.sampled_iterations, "all")
        return its, f"whole run: {len(its)} sampled iterations of {run_length(trace, its)}, integrated"
    if mode == "last":
        it, _ = trace.default_iteration()
        return [it], f"last full batch: iteration {it} of {len(trace.iterations)}"
    raise SweepError(f"iterations: {mode!r} is not allowed; allowed: {', '.join(ITERATIONS)}")


def compare_designs(traces: Mapping[str, Trace | str | os.PathLike], design_names: Sequence[str], *,
                    iterations: str | Mapping[str, str] = "last", jobs: int = 1,
                    cache_dir: str | os.PathLike | None = None, command: str | None = None) -> dict[str, Any]:
    """Every trace of ``traces`` (label → trace or its directory) on every design (shipped name or YAML path) →
    the design-comparison document (:func:`hwsim.results.designs.comparison`; rows in trace-major order).

    ``iterations``: ``"last"`` (the last full batch) or ``"all"`` (every sampled iteration, integrated over the
    run), for every trace or per label. ``jobs``: worker processes (inside a ``shared_pool``, its workers);
    ``cache_dir``: where replayed points are stored and found again. Per trace the document notes which
    iterations were replayed and, from the trace's summary, its iterations, δ̃z density and test accuracy."""
    from hwsim.trace.format import Trace, load

    loaded = {name: t if isinstance(t, Trace) else load(t, verify=False) for name, t in traces.items()}
    plan: dict[str, tuple[list[int], str]] = {}
    tasks: dict[str, list[PointTask]] = {}
    for name, trace in loaded.items():
        mode = iterations if isinstance(iterations, str) else iterations.get(name, "last")
        plan[name] = chosen_iterations(trace, mode)
        tasks[name] = replay_tasks(trace, [(d, {}) for d in design_names], plan[name][0])
    gemms = max((gemms_per_iteration(t) for t in loaded.values()), default=1)
    done = run_replays([t for ts in tasks.values() for t in ts], gemms=gemms, out=cache_dir, jobs=jobs,
                       progress=False)
    rows, info = [], []
    for name, trace in loaded.items():
        its, phrase = plan[name]
        for ci, design in enumerate(design_names):
            recs = [(t.iteration, done[t.key]) for t in tasks[name] if t.config_index == ci]
            rows.append({"model": name, "design": design, **equal_area_figures(_integrated(recs, run_length(trace, its)))})
        summ = trace.summary or {}
        info.append({"model": name, "replayed": phrase, "iterations": summ.get("iterations"),
                     "dz_density": summ.get("weighted_density"), "test_acc": summ.get("test_acc")})
    return comparison(rows, info, design_names, command=command)


def _integrated(records: list[tuple[int, SimResult]], total: int) -> SimResult:
    """One replayed iteration's result as it is; several integrated over the run (:class:`RunResult`)."""
    if len(records) == 1:
        return records[0][1]
    return RunResult.build(records, total_iterations=total).integrated


__all__ = ["BASE_DESIGNS", "ITERATIONS", "chosen_iterations", "compare_designs", "designs"]
