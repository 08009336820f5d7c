"""Whole-run replay: the left-hold estimator's error, and the time of replaying a whole trace.

1. ``--error TRACE`` (a trace captured with ``--sample-every 1``): replays every iteration (cached in
   ``TRACE.points`` beside nothing else: ``--cache``), takes their plain sum as the truth, and prints the
   error of the estimator (:mod:`hwsim.run_results`) that replays only every N-th sampled iteration
   (and the last), for several N, plus the single-iteration practice (last iteration × T).
2. ``--timing TRACE [--old PATH]``: wall time of replaying all sampled iterations of TRACE in-process
   (``jobs=1``) against 5 × the time one iteration took on the code at ``--old`` (e.g. a checkout of the
   pre-speed-up simulator), both measured now on this machine.

    python benchmarks/bench_wholerun.py --error traces/lenet5-se1 --arch scnn
    python benchmarks/bench_wholerun.py --timing traces/lenet5-dither --old /path/to/old/checkout
    python benchmarks/bench_wholerun.py --max-examples traces/resnet18c-b128 --keep 8

3. ``--max-examples TRACE``: for each sampled iteration of a full-batch trace, cycles and energy of the
   whole batch against its first ``--keep`` examples (what ``max_examples`` stores) scaled to the batch.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

EVERY = (2, 5, 10, 23, 50)
OLD_ONE = """
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
from hwsim.arch import load_arch
from hwsim.sim.replay import simulate_trace
from hwsim.trace.format import load
tr = load(sys.argv[1]); arch = load_arch(sys.argv[2]); it = tr.sampled_iterations[0]  # a full batch
t1, c1 = time.perf_counter(), time.process_time()
simulate_trace(tr, arch, iteration=it)
print(json.dumps({"one_s": time.perf_counter() - t1, "one_cpu_s": time.process_time() - c1,
                  "cmd_s": time.perf_counter() - t0, "cmd_cpu_s": time.process_time() - c0}))
"""


def _err(est: float, true: float) -> float:
    return (est - true) / true * 100 if true else float("nan")


def error(trace_path: str, arch: str, cache: str | None, jobs: int) -> None:
    from hwsim.run_results import RunResult
    from hwsim.sim import simulate_run
    from hwsim.trace.format import load

    trace = load(trace_path, verify=False)
    full = simulate_run(trace, arch, iterations="all", jobs=jobs, cache_dir=cache or trace_path.rstrip("/") + ".points")
    if any(r.weight != 1 for r in full.iterations):
        print(f"note: {trace_path} is not sampled at every iteration; the truth below is itself an estimate")
    truth = full.integrated
    recs = [(r.iteration, r.result) for r in full.iterations]
    T = full.total_iterations

    def row(label: str, est) -> str:  # noqa: ANN001
        figs = []
        for v in ("sparse", "dense"):
            figs.append(_err(est.total(v).cycles, truth.total(v).cycles))
        figs.append(_err(est.total("sparse").energy_pj, truth.total("sparse").energy_pj))
        figs.append(_err(est.speedup(), truth.speedup()))
        figs.append(_err(est.energy_ratio(), truth.energy_ratio()))
        return f"| {label} | " + " | ".join(f"{x:+.2f} %" for x in figs) + " |"

    print(f"{trace_path}: {T} iterations, all replayed on {arch}; truth = Σ over every iteration: "
          f"speed-up {truth.speedup():.4f}×, energy gain {truth.energy_ratio():.4f}×")
    print("| replayed | sparse cycles | dense cycles | sparse energy | speed-up | energy gain |")
    print("|---|---|---|---|---|---|")
    its = [i for i, _ in recs]
    for n in EVERY:
        sub = sorted(set(its[::n]) | {its[-1]})
        est = RunResult.build([(i, r) for i, r in recs if i in sub], total_iterations=T).integrated
        print(row(f"every {n} ({len(sub)} its)", est))
    last = RunResult.build([recs[-1]], total_iterations=T).integrated
    print(row("last iteration × T (single-iteration practice)", last))
    first = RunResult.build([(0, recs[0][1])], total_iterations=T).integrated
    print(row("first iteration × T", first))


def timing(trace_path: str, arch: str, old: str | None) -> None:
    """Wall and CPU (process) time: on a shared machine the CPU time is the figure that does not depend on load."""
    t0, c0 = time.perf_counter(), time.process_time()
    from hwsim.sim import simulate_run
    from hwsim.trace.format import load

    trace = load(trace_path, verify=False)
    t1, c1 = time.perf_counter(), time.process_time()
    run = simulate_run(trace, arch, iterations="all", jobs=1, progress=False)
    new_s, new_cpu = time.perf_counter() - t1, time.process_time() - c1
    cmd_s, cmd_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"{trace_path}: all {len(run.iterations)} sampled iterations replayed in-process (jobs=1): "
          f"{new_s:.2f} s wall, {new_cpu:.2f} s CPU (with imports + manifest: {cmd_s:.2f} s wall, {cmd_cpu:.2f} s CPU)")
    if old:
        out = subprocess.run([sys.executable, "-c", OLD_ONE, trace_path, arch], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": old}, check=True).stdout
        m = json.loads(out.strip().splitlines()[-1])
        print(f"  old code ({old}), one full-batch iteration: {m['one_s']:.2f} s wall, {m['one_cpu_s']:.2f} s CPU "
              f"(with imports + manifest: {m['cmd_s']:.2f} s wall, {m['cmd_cpu_s']:.2f} s CPU)")
        print(f"  whole run ÷ (5 × old one): replay {new_s / (5 * m['one_s']):.2f} wall, "
              f"{new_cpu / (5 * m['one_cpu_s']):.2f} CPU; with imports + manifest {cmd_s / (5 * m['cmd_s']):.2f} wall, "
              f"{cmd_cpu / (5 * m['cmd_cpu_s']):.2f} CPU (target < 1)")


def max_examples(trace_path: str, arch_name: str, keep: int) -> None:
    """Cycles/energy of each sampled full batch vs its first ``keep`` examples (what ``max_examples`` stores)."""
    from dataclasses import replace

    from hwsim.arch import load_arch
    from hwsim.results import SimResult
    from hwsim.sim.replay import first_layer_input_grad, replay
    from hwsim.trace.format import load

    trace = load(trace_path, verify=False)
    arch = load_arch(arch_name)
    grad = first_layer_input_grad(trace.meta)
    print(f"{trace_path} on {arch_name}: full batch vs its first {keep} examples (scaled by batch / {keep})")
    print("| iteration | batch | sparse cycles | dense cycles | sparse energy | speed-up (full → sample) "
          "| energy gain (full → sample) |")
    print("|---|---|---|---|---|---|---|")
    for it in trace.sampled_iterations:
        full = trace.sample(it)
        n = next(iter(full.values())).geometry.N
        if n <= keep:
            continue
        cut = {k: replace(s, geometry=replace(s.geometry, N=keep), a_mask=s.a_mask[:keep],
                          dz_levels=s.dz_levels[:keep]) for k, s in full.items()}
        res = [SimResult(trace={}, arch={}, layers=tuple(replay(x, arch, first_input_grad=grad)))
               for x in (full, cut)]
        f, c = res
        scale = n / keep
        e = [_err(scale * c.total(v).cycles, f.total(v).cycles) for v in ("sparse", "dense")]
        e.append(_err(scale * c.total("sparse").energy_pj, f.total("sparse").energy_pj))
        print(f"| {it} | {n} | " + " | ".join(f"{x:+.1f} %" for x in e)
              + f" | {f.speedup():.3f}× → {c.speedup():.3f}× | {f.energy_ratio():.3f}× → {c.energy_ratio():.3f}× |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--error", metavar="TRACE")
    ap.add_argument("--timing", metavar="TRACE")
    ap.add_argument("--max-examples", metavar="TRACE", help="full-batch trace: error of keeping only --keep examples")
    ap.add_argument("--keep", type=int, default=8)
    ap.add_argument("--arch", default="scnn")
    ap.add_argument("--old", metavar="PATH", help="PYTHONPATH of the old simulator for --timing")
    ap.add_argument("--cache", metavar="DIR")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    if a.error:
        error(a.error, a.arch, a.cache, a.jobs)
    if a.timing:
        timing(a.timing, a.arch, a.old)
    if a.max_examples:
        max_examples(a.max_examples, a.arch, a.keep)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
