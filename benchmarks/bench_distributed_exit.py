"""Does a 2-rank distributed capture exit cleanly every time? N torchrun jobs, counted by outcome.

    python benchmarks/bench_distributed_exit.py [--n 50] [--steps 16] [--script tests/ddp_grad_worker.py]

Each job runs ``python -m torch.distributed.run --nproc-per-node 2 -m hwsim trace --distributed
--model lenet300 --steps STEPS --threads 1`` (OMP_NUM_THREADS=1) into a fresh folder, or, with
``--script``, ``torchrun SCRIPT OUT`` (e.g. the test's worker). Printed per job: exit code,
seconds, and the failure class — ``sigabrt`` ("terminate called without an active exception" /
signal 6 at interpreter exit, the Gloo-threads-alive-at-exit abort this repository had in ~4 % of
runs with the DDP wrapper), ``port`` (the rendezvous port was taken: infrastructure, not the
product), or ``other``. Then the totals and whether both rank traces are complete.

Not run in CI: 50 jobs take 10–20 minutes on 2 shared cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwsim.experiments.distributed import free_port, port_collision  # noqa: E402
from hwsim.trace.format import load  # noqa: E402

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def classify(r: subprocess.CompletedProcess) -> str:
    if r.returncode == 0:
        return "ok"
    text = r.stdout + r.stderr
    if port_collision(text):
        return "port"
    if "terminate called" in text or "SIGABRT" in text or "Signal 6" in text:
        return "sigabrt"
    return "other"


def one_job(out: Path, *, steps: int, script: str | None) -> tuple[subprocess.CompletedProcess, float]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(free_port())]
    if script:
        cmd += [script, str(out)]
    else:
        cmd += ["-m", "hwsim", "trace", "--distributed", "--model", "lenet300", "--method", "dither",
                "--steps", str(steps), "--sample-every", "8", "--out", str(out), "--quiet", "--threads", "1"]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    return r, time.monotonic() - t0


def traces_complete(out: Path) -> bool:
    try:
        return all(load(out / f"rank{i}").complete for i in range(2))
    except Exception:  # noqa: BLE001 - missing or unreadable
        return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=50, help="number of torchrun jobs")
    ap.add_argument("--steps", type=int, default=16, help="training iterations per job")
    ap.add_argument("--script", default=None, help="run `torchrun SCRIPT OUT` instead of hwsim trace")
    a = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="hwsim-bench-ddp-exit-"))
    counts: dict[str, int] = {}
    complete = 0
    try:
        for i in range(a.n):
            out = work / f"job{i:03d}"
            r, sec = one_job(out, steps=a.steps, script=a.script)
            kind = classify(r)
            counts[kind] = counts.get(kind, 0) + 1
            done = traces_complete(out)
            complete += done
            tail = "" if kind == "ok" else " | " + " / ".join((r.stderr or r.stdout).strip().splitlines()[-3:])[:300]
            print(f"job {i:3d}: exit {r.returncode:4d}  {sec:5.1f} s  {kind:8s} traces complete: {done}{tail}",
                  flush=True)
            shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n_ok = counts.get("ok", 0)
    print(f"exited 0: {n_ok}/{a.n}; " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
          + f"; both rank traces complete: {complete}/{a.n}")
    return 0 if n_ok == a.n else 1


if __name__ == "__main__":
    sys.exit(main())
