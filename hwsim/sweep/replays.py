"""Whole-run replays: many sampled iterations × architectures through the sweep executors.

Each (architecture, iteration, seed) is a sweep point (:class:`~hwsim.sweep.points.PointTask`, the
same content-hash key), evaluated in-process, in a local process pool (``jobs``) or on a Dask
cluster (``scheduler``) by the sweep runner's executors, and — when ``out`` is given — stored as
``out/points/<key>.json`` as it arrives, so an interrupted replay resumes where it stopped. The
progress bar counts GEMMs (layer-passes) and shows the iterations done.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwsim.results import SimResult
from hwsim.sweep.evaluate import evaluate_point
from hwsim.sweep.points import PointTask, manifest_sha, point_key, point_path, read_point, write_point
from hwsim.sweep.runner import Evaluator, _PointFailed, _run_dask, _run_pool, _run_serial
from hwsim.sweep.spec import SweepError

if TYPE_CHECKING:
    from hwsim.trace.format import Trace


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


def gemms_per_iteration(trace: Trace) -> int:
    """Layer-passes one training iteration replays (the network input has no backward-data GEMM)."""
    from hwsim.sim.replay import first_layer_input_grad

    n = len(trace.layers)
    return 3 * n - (0 if first_layer_input_grad(trace.meta) or not n else 1)


def replay_tasks(trace_path: str | os.PathLike, archs: Sequence[tuple[str, Mapping[str, Any]]],
                 iterations: Sequence[int], *, seed: int = 0) -> list[PointTask]:
    """One point per architecture × iteration (``archs``: (YAML path or name, overrides) pairs)."""
    from hwsim.arch import load_arch

    sha = manifest_sha(trace_path)
    tasks = []
    for ci, (arch, overrides) in enumerate(archs):
        arch_dict = load_arch(arch, dict(overrides) or None).to_dict()
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

    ``gemms``: layer-passes per iteration, for the progress bar.
    """
    from tqdm import tqdm

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
    if not pending:
        return done
    if scheduler:
        stream = _run_dask(pending, evaluate, scheduler, connect_timeout_s)
    elif jobs > 1 and len(pending) > 1:
        stream = _run_pool(pending, evaluate, jobs)
    else:
        stream = _run_serial(pending, evaluate)
    n_it = len({t.iteration for t in tasks})
    with tqdm(total=len(tasks) * gemms, initial=len(done) * gemms, desc="replay", unit="gemm",
              disable=not progress, file=sys.stderr) as bar:
        try:
            for task, result in stream:
                if out is not None:
                    write_point(out, task, result)
                done[task.key] = SimResult.from_json(result, where=f"iteration {task.iteration}")
                bar.update(gemms)
                its = len({t.iteration for t in tasks if t.key in done})
                bar.set_postfix_str(f"iterations {its}/{n_it}, points {len(done)}/{len(tasks)}")
        except _PointFailed as e:
            raise SweepError(f"iteration {e.task.iteration} on {e.task.arch}: {type(e.cause).__name__}: "
                             f"{e.cause}") from e.cause
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()
    return done


__all__ = ["select_iterations", "gemms_per_iteration", "replay_tasks", "run_replays"]
