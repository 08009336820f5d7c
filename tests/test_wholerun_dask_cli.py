"""A whole-run replay on a Dask cluster started the way a user starts one (``dask scheduler`` and ``dask worker`` as
separate processes), driven by ``hwsim simulate --iterations … --scheduler``: the same run as two local workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "traces" / "samples" / "lenet5-digits-dither"


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def _hwsim(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwsim", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=_env())


def _dask(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_" + args[0], *args[1:]], cwd=cwd, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_whole_run_on_a_dask_scheduler_and_worker_equals_two_local_workers(tmp_path):
    distributed = pytest.importorskip("distributed")
    sched_file = tmp_path / "scheduler.json"
    procs = [_dask("scheduler", "--scheduler-file", str(sched_file), "--port", "0", "--no-dashboard", cwd=tmp_path)]
    try:
        for _ in range(600):  # the scheduler writes its address when it listens
            if sched_file.exists() and sched_file.stat().st_size:
                break
            time.sleep(0.1)
        procs.append(_dask("worker", "--scheduler-file", str(sched_file), "--nthreads", "1", "--no-dashboard",
                           cwd=tmp_path))
        address = json.loads(sched_file.read_text())["address"]
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=120)
        args = ["simulate", str(SAMPLE), "--arch", "scnn", "--iterations", "every:3", "--quiet"]
        dask = _hwsim(*args, "--scheduler", address, "--out", "dask.json", cwd=tmp_path)
        assert dask.returncode == 0, dask.stderr
    finally:
        for p in procs[::-1]:
            p.terminate()
            p.wait(timeout=30)
    local = _hwsim(*args, "--jobs", "2", "--out", "local.json", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("dask.json", "local.json"))
    assert [it["iteration"] for it in a["iterations"]] == [it["iteration"] for it in b["iterations"]] == [0, 30, 45]
    assert a["run"]["scheduler"] == address and b["run"]["jobs"] == 2       # where each ran
    assert _results(a) == _results(b) and a["total"]["sparse"]["cycles"] > 0


def _results(doc: object) -> object:
    """A run's numbers: everything but where and how long it ran (provenance, wall time, scheduler, jobs)."""
    if isinstance(doc, dict):
        return {k: _results(v) for k, v in doc.items() if k not in ("provenance", "wall_s", "scheduler", "jobs")}
    return [_results(v) for v in doc] if isinstance(doc, list) else doc
