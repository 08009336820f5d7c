"""Whole-run replay: the left-hold estimator's error, and the time of replaying a whole trace.

1. ``--error TRACE`` (a trace captured with ``--sample-every 1``): replays every iteration (cached in
   ``TRACE.points`` beside nothing else: ``--cache``), takes their plain sum as the truth, and prints the
   error of the estimator (:mod:`hwsim.results.run`) that replays only every N-th sampled iteration
   (and the last), for several N, plus the single-iteration practice (last iteration × T).
2. ``--timing TRACE [--old PATH]``: wall time of replaying all sampled iterations of TRACE in-process
   (``jobs=1``) against 5 × the time one iteration took on the code at ``--old`` (e.g. a checkout of the
   pre-speed-up simulator), both measured now on this machine. The old code runs in its own checkout (``cwd``:
   ``python -c`` imports from the working directory first) on a copy of TRACE in the layout it reads
   (:func:`old_format_copy`), and the run stops if it imported hwsim from anywhere else. Both sides import the simulator, read the
   trace's manifest and read and validate the architecture file before their clock starts (the figures "with
   imports + manifest" include them; the new side's read is the one its whole run reuses,
   :func:`hwsim.sweep.evaluate.cached_arch`).
3. ``--max-examples TRACE``: for each sampled iteration of a full-batch trace, cycles and energy of the
   whole batch against its first ``--keep`` examples (what ``max_examples`` stores) scaled to the batch.

``--json PATH`` writes what ``--error`` / ``--max-examples`` measured (raw figures, not only the errors) with
the command line, the trace's meta and ``--capture`` (how the trace was made) — the committed results
``benchmarks/results/wholerun_error.json`` and ``max_examples.json`` that ``scripts/readme_tables.py`` turns
into the README's ``estimator-error`` and ``max-examples`` tables::

    python benchmarks/bench_wholerun.py --error traces/lenet5-se1 --arch scnn --json benchmarks/results/wholerun_error.json
    python benchmarks/bench_wholerun.py --timing traces/lenet5-dither --old /path/to/old/checkout
    python benchmarks/bench_wholerun.py --max-examples traces/resnet18c-digits32-b128 --keep 8 32 \
        --json benchmarks/results/max_examples.json
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

EVERY = (2, 5, 10, 20, 23, 50, 100)
PASSES = ("forward", "backward_data", "backward_weight")
META = ("model", "dataset", "image_size", "method", "s", "epochs", "batch_size", "seed", "sample_every",
        "max_examples")
OLD_ONE = """
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import hwsim
from hwsim.arch import load_arch
from hwsim.sim.replay import simulate_trace
from hwsim.trace.format import load
tr = load(sys.argv[1]); arch = load_arch(sys.argv[2]); it = tr.sampled_iterations[0]  # a full batch
t1, c1 = time.perf_counter(), time.process_time()
simulate_trace(tr, arch, iteration=it)
print(json.dumps({"one_s": time.perf_counter() - t1, "one_cpu_s": time.process_time() - c1,
                  "cmd_s": time.perf_counter() - t0, "cmd_cpu_s": time.process_time() - c0, "hwsim": hwsim.__file__}))
"""


def old_format_copy(trace_path: str, out: str) -> str:
    """A copy of ``trace_path`` that a simulator from before the iteration log reads (manifest version 1, the
    per-iteration records inline, the sample files copied: the reader refuses links out of a trace): the same
    samples and records in the older layout."""
    with open(os.path.join(trace_path, "manifest.json")) as fh:
        man = json.load(fh)
    log = man.pop("iteration_log", None)
    if log is not None:
        with open(os.path.join(trace_path, log["file"])) as fh:
            man["iterations"] = [json.loads(line) for line in fh if line.strip()]
    man["version"] = 1
    import shutil

    shutil.copytree(os.path.join(trace_path, "samples"), os.path.join(out, "samples"), dirs_exist_ok=True)
    with open(os.path.join(out, "manifest.json"), "w") as fh:
        json.dump(man, fh)
    return out


def _err(est: float, true: float) -> float:
    return (est - true) / true * 100 if true else float("nan")


def figures(res) -> dict:  # noqa: ANN001
    """The raw figures a row of the committed JSON keeps (totals over the three passes, per-pass speed-up)."""
    return {"sparse_cycles": res.total("sparse").cycles, "dense_cycles": res.total("dense").cycles,
            "sparse_energy_pj": res.total("sparse").energy_pj, "dense_energy_pj": res.total("dense").energy_pj,
            "speedup": res.speedup(), "energy_ratio": res.energy_ratio(),
            "speedup_passes": {p: res.speedup(pass_name=p) for p in PASSES}}


_ERR_KEYS = ("sparse_cycles", "dense_cycles", "sparse_energy_pj", "speedup", "energy_ratio")


def _row(label: str, est: dict, truth: dict) -> str:
    return f"| {label} | " + " | ".join(f"{_err(est[k], truth[k]):+.2f} %" for k in _ERR_KEYS) + " |"


def _trace_meta(trace) -> dict:  # noqa: ANN001
    return {k: trace.meta.get(k) for k in META}


def error(trace_path: str, arch: str, cache: str | None, jobs: int) -> dict:
    """Every iteration replayed (the truth) against the left-hold estimator over every N-th one (module doc)."""
    from hwsim.results.run import RunResult
    from hwsim.sweep.replays import simulate_run
    from hwsim.trace.format import load

    trace = load(trace_path, verify=False)
    full = simulate_run(trace, arch, iterations="all", jobs=jobs, cache_dir=cache or trace_path.rstrip("/") + ".points")
    if any(r.weight != 1 for r in full.iterations):
        print(f"note: {trace_path} is not sampled at every iteration; the truth below is itself an estimate")
    truth = figures(full.integrated)
    recs = [(r.iteration, r.result) for r in full.iterations]
    T = full.total_iterations
    its = [i for i, _ in recs]

    def estimate(sub: set[int]) -> dict:
        return figures(RunResult.build([(i, r) for i, r in recs if i in sub], total_iterations=T).integrated)

    print(f"{trace_path}: {T} iterations, all replayed on {arch}; truth = Σ over every iteration: "
          f"speed-up {truth['speedup']:.4f}×, energy gain {truth['energy_ratio']:.4f}×")
    print("| replayed | sparse cycles | dense cycles | sparse energy | speed-up | energy gain |")
    print("|---|---|---|---|---|---|")
    rows = []
    for n in EVERY:
        if n >= len(its):
            continue
        sub = sorted(set(its[::n]) | {its[-1]})
        est = estimate(set(sub))
        # the same N started at every other phase o = 1 … N−1 (iterations o, o+N, …, and the last): how much the
        # error depends on where the samples fall (capture always starts at 0)
        phases = [estimate(set(its[o::n]) | {its[-1]}) for o in range(1, n)]
        worst = {k: max(abs(_err(e[k], truth[k])) for e in [est, *phases]) for k in ("speedup", "energy_ratio")}
        rows.append({"kind": "every", "every": n, "replayed": len(sub), "estimate": est, "phases": len(phases) + 1,
                     "worst_abs_err_pct": worst})
        print(_row(f"every {n} ({len(sub)} its)", est, truth)
              + f"  worst over {n} phases: speed-up ±{worst['speedup']:.2f} %, energy gain ±{worst['energy_ratio']:.2f} %")
    for kind, rec in (("last", recs[-1]), ("first", (0, recs[0][1]))):
        est = figures(RunResult.build([rec], total_iterations=T).integrated)
        rows.append({"kind": kind, "replayed": 1, "estimate": est})
        print(_row(f"{kind} iteration × T", est, truth))
    return {"mode": "error", "arch": arch, "trace": {**_trace_meta(trace), "path": trace_path, "iterations": T,
                                                    "test_acc": trace.summary.get("test_acc")},
            "truth": truth, "rows": rows}


def timing(trace_path: str, arch: str, old: str | None) -> None:
    """Wall and CPU (process) time: on a shared machine the CPU time is the figure that does not depend on load."""
    t0, c0 = time.perf_counter(), time.process_time()
    import hwsim.sim.replay  # noqa: F401 - imported before the clock starts, as the old side (OLD_ONE) does
    from hwsim.sweep.evaluate import cached_arch
    from hwsim.sweep.replays import simulate_run
    from hwsim.trace.format import load

    trace = load(trace_path, verify=False)
    cached_arch(arch)  # the architecture file read and validated before the clock, as the old side's load_arch
    t1, c1 = time.perf_counter(), time.process_time()
    run = simulate_run(trace, arch, iterations="all", jobs=1, progress=False)
    new_s, new_cpu = time.perf_counter() - t1, time.process_time() - c1
    cmd_s, cmd_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"{trace_path}: all {len(run.iterations)} sampled iterations replayed in-process (jobs=1): "
          f"{new_s:.2f} s wall, {new_cpu:.2f} s CPU (with imports + manifest: {cmd_s:.2f} s wall, {cmd_cpu:.2f} s CPU)")
    if old:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            # the old code reads the trace in the layout it knows; it runs in its own checkout, so that `python -c`
            # (whose first import path is the working directory) imports it and not a checkout it is started from
            old_trace = old_format_copy(trace_path, os.path.join(tmp, "trace"))
            out = subprocess.run([sys.executable, "-c", OLD_ONE, old_trace, arch], capture_output=True, text=True,
                                 env={**os.environ, "PYTHONPATH": old}, cwd=old, check=True).stdout
        m = json.loads(out.strip().splitlines()[-1])
        if not os.path.abspath(m["hwsim"]).startswith(os.path.abspath(old) + os.sep):
            raise SystemExit(f"--old {old}: the old side imported hwsim from {m['hwsim']}, not from {old}")
        print(f"  old code ({old}), one full-batch iteration: {m['one_s']:.2f} s wall, {m['one_cpu_s']:.2f} s CPU "
              f"(with imports + manifest: {m['cmd_s']:.2f} s wall, {m['cmd_cpu_s']:.2f} s CPU)")
        print(f"  whole run ÷ (5 × old one): replay {new_s / (5 * m['one_s']):.2f} wall, "
              f"{new_cpu / (5 * m['one_cpu_s']):.2f} CPU; with imports + manifest {cmd_s / (5 * m['cmd_s']):.2f} wall, "
              f"{cmd_cpu / (5 * m['cmd_cpu_s']):.2f} CPU (target < 1)")


def max_examples(trace_path: str, arch_name: str, keeps: list[int]) -> dict:
    """Cycles/energy of each sampled full batch vs its first ``keep`` examples (what ``max_examples`` stores)."""
    from dataclasses import replace

    from hwsim.arch import load_arch
    from hwsim.results import SimResult
    from hwsim.sim.replay import first_layer_input_grad, replay
    from hwsim.trace.format import load

    trace = load(trace_path, verify=False)
    arch = load_arch(arch_name)
    grad = first_layer_input_grad(trace.meta)

    def run(sample) -> dict:  # noqa: ANN001
        return figures(SimResult(trace={}, arch={}, layers=tuple(replay(sample, arch, first_input_grad=grad))))

    print(f"{trace_path} on {arch_name}: full batch vs its first {keeps} examples (cycles, energy scaled by batch / keep)")
    print("| iteration | batch → kept | sparse cycles | dense cycles | sparse energy | speed-up (full → sample) "
          "| energy gain (full → sample) |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for it in trace.sampled_iterations:
        full = trace.sample(it)
        n = next(iter(full.values())).geometry.N
        if n <= min(keeps):
            continue
        f = run(full)
        for keep in (k for k in keeps if k < n):
            cut = {k: replace(s, geometry=replace(s.geometry, N=keep), a_mask=s.a_mask[:keep],
                              dz_levels=s.dz_levels[:keep]) for k, s in full.items()}
            c = run(cut)
            rows.append({"iteration": it, "batch": n, "keep": keep, "full": f, "sample": c})
            scale = n / keep
            e = [_err(scale * c[k], f[k]) for k in ("sparse_cycles", "dense_cycles", "sparse_energy_pj")]
            print(f"| {it} | {n} → {keep} | " + " | ".join(f"{x:+.1f} %" for x in e)
                  + f" | {f['speedup']:.3f}× → {c['speedup']:.3f}× | {f['energy_ratio']:.3f}× → {c['energy_ratio']:.3f}× |")
    return {"mode": "max_examples", "arch": arch_name,
            "trace": {**_trace_meta(trace), "path": trace_path, "iterations": len(trace.iterations),
                      "test_acc": trace.summary.get("test_acc")}, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--error", metavar="TRACE")
    ap.add_argument("--timing", metavar="TRACE")
    ap.add_argument("--max-examples", metavar="TRACE", help="full-batch trace: error of keeping only --keep examples")
    ap.add_argument("--keep", type=int, nargs="+", default=[8], help="examples kept (one or more; default 8)")
    ap.add_argument("--arch", default="scnn")
    ap.add_argument("--old", metavar="PATH", help="PYTHONPATH of the old simulator for --timing")
    ap.add_argument("--cache", metavar="DIR")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", metavar="PATH", help="write the --error / --max-examples measurements here")
    ap.add_argument("--capture", metavar="CMD", help="the command that made TRACE, recorded in --json")
    a = ap.parse_args(argv)
    if a.json and bool(a.error) == bool(a.max_examples):
        ap.error("--json needs exactly one of --error, --max-examples")
    if any(k < 1 for k in a.keep):
        ap.error(f"--keep: {a.keep} must all be ≥ 1")
    doc = None
    if a.error:
        doc = error(a.error, a.arch, a.cache, a.jobs)
    if a.timing:
        timing(a.timing, a.arch, a.old)
    if a.max_examples:
        doc = max_examples(a.max_examples, a.arch, sorted(set(a.keep)))
    if a.json and doc is not None:
        argv_ = list(sys.argv[1:] if argv is None else argv)
        if a.capture:  # recorded on its own: the command without it makes the same measurements
            i = next(j for j, x in enumerate(argv_) if x == "--capture" or x.startswith("--capture="))
            del argv_[i:i + (1 if "=" in argv_[i] else 2)]
        doc = {"command": "python benchmarks/bench_wholerun.py " + shlex.join(argv_), "capture": a.capture, **doc}
        with open(a.json, "w") as fh:
            json.dump(doc, fh, indent=1)
            fh.write("\n")
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
