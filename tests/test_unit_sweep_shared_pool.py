"""hwsim.sweep.executor.shared_pool: the runs inside it share one pool of spawned workers (started once), a failing
point stops its run only, and outside it every run has a pool of its own as before."""

from __future__ import annotations

import os

import pytest

from hwsim.sweep import executor
from hwsim.sweep.points import PointTask
from hwsim.sweep.spec import SweepError


def _task(key: str) -> PointTask:
    return PointTask(key=key, config_index=0, overrides={}, arch="scnn", trace_label="t", trace_path="/tr",
                     iteration=0, seed=0)


def _pid(task: PointTask) -> int:
    """The worker's process id (a module-level function: spawned workers import it by name)."""
    if task.key.startswith("bad"):
        raise ValueError(f"bad point {task.key}")
    return os.getpid()


def _run(keys: list[str], jobs: int = 2) -> dict[str, int]:
    got: dict[str, int] = {}
    executor.run_points([_task(k) for k in keys], _pid, on_result=lambda t, r: got.__setitem__(t.key, r),
                        describe=lambda t: f"point {t.key}", jobs=jobs)
    return got


def test_runs_inside_a_shared_pool_reuse_its_workers():
    keys = [f"p{i}" for i in range(6)]
    with executor.shared_pool(2):
        first, second = _run(keys), _run(keys)
        pool = executor._SHARED[-1]
        workers = set(pool._processes)  # the pool's worker pids, started once
    assert sorted(first) == sorted(second) == keys
    assert os.getpid() not in first.values()
    assert set(first.values()) | set(second.values()) <= workers and len(workers) == 2
    assert executor._SHARED == []  # gone on leaving


def test_without_a_shared_pool_each_run_starts_its_own_workers():
    keys = [f"p{i}" for i in range(4)]
    first, second = _run(keys), _run(keys)
    assert not set(first.values()) & set(second.values())


def test_a_failing_point_stops_its_run_and_the_shared_pool_serves_the_next():
    with executor.shared_pool(2):
        with pytest.raises(SweepError, match=r"^point bad1: ValueError: bad point bad1$"):
            _run(["a", "bad1", "b", "c"])
        assert sorted(_run(["d", "e"])) == ["d", "e"]


def test_a_shared_pool_of_one_job_is_no_pool():
    with executor.shared_pool(1):
        assert executor._SHARED == []
        assert set(_run(["a", "b"], jobs=1).values()) == {os.getpid()}


def _spin(task: PointTask) -> int:
    """Burn ~0.3 s of CPU in the worker."""
    import time

    t0 = time.process_time()
    while time.process_time() - t0 < 0.3:
        pass
    return os.getpid()


def test_shared_pool_cpu_seconds_counts_the_live_workers_then_nothing_outside():
    import resource

    def children() -> float:
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    assert executor.shared_pool_cpu_seconds() == 0.0
    kids0 = children()
    with executor.shared_pool(2):
        before = executor.shared_pool_cpu_seconds()
        executor.run_points([_task(f"s{i}") for i in range(4)], _spin, on_result=lambda t, r: None,
                            describe=str, jobs=2)
        used = executor.shared_pool_cpu_seconds() - before
    assert used >= 4 * 0.3 * 0.9  # four points of 0.3 s each, in the workers
    assert executor.shared_pool_cpu_seconds() == 0.0 and children() - kids0 >= used * 0.9  # reaped: the parent's
