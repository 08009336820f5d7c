"""Ctrl-C on `hwsim trace` in each phase: exit time and whether the trace on disk is readable.

    python benchmarks/bench_sigint.py [--reps 10] [--phases startup,training,writing,finalisation]

Per run it starts ``python -m hwsim trace`` (mlp500 on the embedded digits, one torch thread),
sends one SIGINT at a point of the chosen phase and prints: wall seconds from SIGINT to exit,
the child's CPU seconds in that interval (from /proc and wait4: independent of how loaded the
machine is — on 2 shared cores the wall time mostly measures the other processes), exit code,
and the trace's state (``hwsim.load_trace`` with checksums: complete / interrupted /
absent / UNREADABLE / RUNNING). Target: exit < 5 s and a readable trace saying ``complete`` or
``interrupted`` (or no trace at all when the signal came before the capture opened one).

Phases (how the SIGINT is placed):
  startup       a random delay of 0.1–1.5 s after spawn (interpreter, torch import, data), before
                any manifest exists — runs where the manifest already existed are reported as such;
  training      after >= 3 iterations are on disk, sampling every 1000 iterations (no sample write);
  writing       --sample-every 1: every iteration hands its operands (LZMA) to the writer thread,
                so a sample write is in flight at nearly every instant; signal after >= 3 iterations;
  finalisation  a 10-iteration run; the signal is sent as soon as the manifest lists the last
                (always sampled) iteration, i.e. during the test-set evaluation / final close.

Not run in CI (it takes a few minutes). The child's SIGINT is reset to SIG_DFL (a background job of a
non-interactive shell would otherwise inherit it ignored).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHASES = ("startup", "training", "writing", "finalisation")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _child_setup() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _iterations(out: Path) -> int:
    from hwsim.trace.format import load

    try:
        return len(load(out, verify=False).iterations)
    except Exception:  # noqa: BLE001 - not written yet / mid-replace
        return -1


def _args(phase: str, out: Path) -> list[str]:
    base = [sys.executable, "-m", "hwsim", "trace", "--model", "mlp500", "--out", str(out), "--quiet",
            "--threads", "1"]
    if phase == "finalisation":
        return base + ["--epochs", "1", "--limit-train", "640", "--sample-every", "0"]
    return base + ["--epochs", "200", "--sample-every", "1" if phase == "writing" else "1000"]


def _cpu_s(pid: int) -> float:
    """utime + stime of a running process, seconds (Linux /proc)."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def _wait(p: subprocess.Popen, timeout: float) -> tuple[int, float]:
    """Reap ``p`` within ``timeout`` s (else kill it): (exit code, its total CPU seconds)."""
    if p.returncode is not None:  # already reaped (it ended before the signal)
        return p.returncode, float("nan")
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            return p.returncode, ru.ru_utime + ru.ru_stime
        if time.monotonic() > deadline:
            p.kill()
        time.sleep(0.005)


def one_run(phase: str, work: Path, rng: random.Random) -> dict:
    out = work / f"{phase}-{rng.randrange(10**9)}"
    log = work / f"{out.name}.err"
    with open(log, "w") as err_f:
        p = subprocess.Popen(_args(phase, out), stdout=subprocess.DEVNULL, stderr=err_f, env=ENV,
                             preexec_fn=_child_setup, start_new_session=True)
    note = ""
    try:
        if phase == "startup":
            time.sleep(rng.uniform(0.1, 1.5))
            note = "manifest existed" if (out / "manifest.json").exists() else "before capture"
        else:
            need = 10 if phase == "finalisation" else 3
            deadline = time.monotonic() + 120
            while p.poll() is None and time.monotonic() < deadline and _iterations(out) < need:
                time.sleep(0.01 if phase == "finalisation" else 0.1)
        if p.poll() is not None:
            note = (note + " already exited before SIGINT").strip()
        cpu0 = _cpu_s(p.pid)
        p.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        rc, cpu1 = _wait(p, 60)
        exit_s = time.monotonic() - t0
        if exit_s > 60:
            note += " KILLED after 60 s"
    finally:
        if p.returncode is None:
            p.kill()
            p.wait()
    err = log.read_text(errors="replace")
    state = _trace_state(out)
    # 130: hwsim's "interrupted"; -2: killed by SIGINT before Python's handler existed; 1 (startup only):
    # Python's own exit code for a KeyboardInterrupt raised while `python -m` is still importing the
    # package, before any hwsim code runs (nothing written).
    codes = (0, 130, -2) + ((1,) if state == "absent" and err.rstrip().endswith("KeyboardInterrupt") else ())
    ok = exit_s < 5 and state in ("complete", "interrupted", "absent") and p.returncode in codes
    if "already exited" in note:
        note += " | " + " / ".join(err.strip().splitlines()[-2:])[:200]
    elif "Traceback" in err and p.returncode != -2:
        note += " traceback: " + err.strip().splitlines()[-1][:120]
    return {"phase": phase, "exit_s": exit_s, "cpu_s": cpu1 - cpu0, "rc": p.returncode, "state": state, "ok": ok,
            "note": note.strip()}


def _trace_state(out: Path) -> str:
    import hwsim

    if not (out / "manifest.json").exists():
        return "absent"
    try:
        tr = hwsim.load_trace(out)
        if tr.sampled_iterations:
            tr.sample()
    except Exception as e:  # noqa: BLE001 - report it
        return f"UNREADABLE ({type(e).__name__}: {str(e)[:80]})"
    status = str(tr.manifest.get("status"))
    if tr.complete and status == "complete":
        return "complete"
    return "interrupted" if status.startswith("interrupted") else f"RUNNING ({status})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--phases", default=",".join(PHASES))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    phases = [x for x in a.phases.split(",") if x]
    bad = [x for x in phases if x not in PHASES]
    if bad:
        ap.error(f"unknown phase(s) {bad}; choose from {PHASES}")
    rng = random.Random(a.seed)
    work = Path(tempfile.mkdtemp(prefix="hwsim-bench-sigint-"))
    failures = 0
    try:
        for phase in phases:
            rows = [one_run(phase, work, rng) for _ in range(a.reps)]
            for i, r in enumerate(rows):
                print(f"{phase:12s} #{i:2d}  exit {r['exit_s']:5.2f} s (cpu {r['cpu_s']:4.2f} s)  rc {r['rc']:4d}  trace {r['state']:12s}  "
                      f"{'ok' if r['ok'] else 'FAIL'}  {r['note']}", flush=True)
            n_ok = sum(r["ok"] for r in rows)
            failures += len(rows) - n_ok
            print(f"{phase:12s} {n_ok}/{len(rows)} ok, max exit {max(r['exit_s'] for r in rows):.2f} s wall, "
                  f"{max(r['cpu_s'] for r in rows):.2f} s cpu; load average {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
