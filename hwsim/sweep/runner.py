"""Run a sweep: every config × trace × seed → one stored result per point, then a summary table.

The points run through the one executor (:mod:`hwsim.sweep.executor`): in-process (``jobs=1``), a
local process pool (``jobs>1``) or an existing Dask cluster (``scheduler="tcp://host:port"``). Workers
only compute; the parent writes every result atomically as it arrives, under its content-hash key, so an interrupted
sweep resumes where it stopped and points shared by two sweeps are computed once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwsim.sweep.evaluate import evaluate_point
from hwsim.sweep.executor import Evaluator, run_points
from hwsim.sweep.points import PointTask, point_key, point_path, write_point
from hwsim.sweep.spec import SweepError, SweepSpec
from hwsim.sweep.summary import write_summary
from hwsim.sweep.traces import ReadyTrace, prepare_traces

SPEC_FILE = "sweep_spec.json"


@dataclass(frozen=True)
class SweepOutcome:
    """What a run did: all points of the sweep, how many were computed now vs. found on disk."""

    out: Path
    tasks: tuple[PointTask, ...]
    evaluated: int
    skipped: int
    rows: tuple[Mapping[str, Any], ...]


def plan_points(spec: SweepSpec, *, out: str | os.PathLike, traces: list[ReadyTrace] | None = None
                ) -> list[PointTask]:
    """Expand the sweep into point tasks (``traces``: prepared by the caller, else here, generating synthetic
    traces on first use)."""
    from hwsim.arch import load_arch

    if traces is None:
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

    if jobs < 1:  # before anything is written
        raise SweepError(f"--jobs: {jobs} must be >= 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / SPEC_FILE, json.dumps(spec.to_json(), indent=1, default=str))
    traces = prepare_traces(spec, out=out)
    tasks = plan_points(spec, out=out, traces=traces)
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
        from tqdm import tqdm

        with tqdm(total=len(pending), desc=f"sweep {spec.name}", unit="pt", disable=not progress,
                  file=sys.stderr) as bar:
            def store(task: PointTask, result: Mapping[str, Any]) -> None:
                write_point(out, task, result)
                bar.update(1)

            evaluated = run_points(pending, evaluate, on_result=store, jobs=jobs, scheduler=scheduler,
                                   connect_timeout_s=connect_timeout_s,
                                   describe=lambda t: f"point {t.trace_label} / {_label(t)}")
    rows = write_summary(spec, tasks=tasks, out=out, metas={t.spec.label: t.meta for t in traces})
    return SweepOutcome(out=out, tasks=tuple(tasks), evaluated=evaluated, skipped=skipped, rows=tuple(rows))


def _label(task: PointTask) -> str:
    return ", ".join(f"{k}={v}" for k, v in task.overrides.items()) or "base arch"
