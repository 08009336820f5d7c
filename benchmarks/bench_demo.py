"""Wall time of ``hwsim demo`` and of its report, figures drawn serially against ``--jobs`` worker processes.

1. ``hwsim demo --out OUT --quiet`` once, to fill ``OUT/work`` (captures, simulations, sweeps; skipped when a
   previous demo left it complete: a rerun reuses it), timed as the cold run.
2. ``--repeat`` warm reruns (``OUT/work`` reused: what is left is mostly the report), alternating this checkout
   with the one at ``--old`` (e.g. ``git archive <commit> hwsim arch_configs | tar -x -C /tmp/old``) when given.
3. ``hwsim report`` of the demo's inputs with ``--jobs 1`` and ``--jobs N``: times, and whether every figure and
   data file is byte-for-byte the same (it must be).

Each time is printed with the 1-minute load average before and after it (a shared 2-core box is noisy), and the
first run's steps with their wall and CPU seconds (the demo's own ``OUT/work/full/timings.json``). ``--json``
writes them (and the warm reruns of this checkout) to a small file that ``scripts/readme_tables.py`` renders into
the README's "How long the demo takes" (``benchmarks/results/demo_time.json``)::

    python benchmarks/bench_demo.py --out /tmp/bench-demo --jobs 2 --old /tmp/old --repeat 2
    python benchmarks/bench_demo.py --out /tmp/bench-demo --no-report-check --json benchmarks/results/demo_time.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], *, src: Path, loads: list | None = None) -> tuple[float, str]:
    """Seconds ``cmd`` took with hwsim imported from ``src``, and the load averages around it (appended to
    ``loads`` as [before, after] when given)."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    before = os.getloadavg()[0]
    t0 = time.perf_counter()
    # run from src: ``python -m`` puts the working directory first on sys.path, so from another checkout's root
    # it would import that checkout's hwsim whatever PYTHONPATH says
    subprocess.run(cmd, env=env, cwd=src, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    after = os.getloadavg()[0]
    if loads is not None:
        loads.append([round(before, 2), round(after, 2)])
    return seconds, f"load {before:.2f} → {after:.2f}"


def _steps(out: Path) -> dict[str, dict[str, float | None]]:
    """The demo's steps as it timed them: wall and CPU seconds (worker processes included)."""
    doc = json.loads((out / "work" / "full" / "timings.json").read_text())
    cpu = doc.get("cpu_seconds") or {}
    return {name: {"wall": round(s, 1), "cpu": None if cpu.get(name) is None else round(cpu[name], 1)}
            for name, s in doc["steps"].items()}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for sub in ("figures", "data")
            for p in sorted((root / sub).rglob("*")) if p.is_file()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="demo folder (its work/ is reused between runs)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (the demo's --jobs and report's --jobs)")
    ap.add_argument("--old", type=Path, default=None, help="a checkout of the code to compare with (PYTHONPATH)")
    ap.add_argument("--repeat", type=int, default=1, help="warm reruns per checkout")
    ap.add_argument("--no-report-check", action="store_true",
                    help="skip step 3 (the report alone, --jobs 1 against --jobs N)")
    ap.add_argument("--json", type=Path, default=None, help="write the first run's and the reruns' times here")
    args = ap.parse_args(argv)
    args.out = args.out.resolve()  # the runs start in the checkout they time
    hwsim = [sys.executable, "-m", "hwsim"]
    demo = [*hwsim, "demo", "--out", str(args.out), "--quiet", "--jobs", str(args.jobs)]
    print(f"cpus {os.cpu_count()}, jobs {args.jobs}, this checkout {HERE}" + (f", old {args.old}" if args.old else ""))
    cold = not (args.out / "work" / "full" / "timings.json").exists()
    loads: list = []
    first, load = _run(demo, src=HERE, loads=loads)
    print(f"demo, first run ({'cold' if cold else 'work/ reused'}): {first:.1f} s ({load})", flush=True)
    steps = _steps(args.out)
    for name, t in steps.items():
        print(f"  {name}: {t['wall']} s wall, {t['cpu']} s CPU", flush=True)
    checkouts = [("new", HERE)] + ([("old", args.old)] if args.old else [])
    warm = []
    for i in range(args.repeat):
        for name, src in checkouts:
            rl: list = []
            s, load = _run(demo, src=src, loads=rl)
            print(f"demo, warm rerun {i + 1} ({name}): {s:.1f} s ({load})", flush=True)
            if name == "new":
                warm.append({"seconds": round(s, 1), "load": rl[0]})
    if args.json:
        doc = {"command": " ".join(["python", "benchmarks/bench_demo.py", *(argv if argv is not None else sys.argv[1:])]),
               "date": time.strftime("%Y-%m-%d", time.gmtime()), "cpus": os.cpu_count(), "jobs": args.jobs,
               "first_run": {"cold": cold, "seconds": round(first, 1), "load": loads[0], "steps": steps},
               "warm_reruns": warm}
        args.json.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {args.json}")
    if args.no_report_check:
        return 0
    work = args.out / "work" / "full"
    inputs = [*sorted(str(p) for p in (work / "results").glob("*.json")), str(work / "sweep_demo"),
              str(work / "sweep_nsd"), str(work / "sweep_density"),
              *sorted(str(p) for p in (work / "traces").iterdir() if p.is_dir())]
    outs = {}
    for jobs in (1, args.jobs):
        rep = args.out.parent / f"{args.out.name}-report-j{jobs}"
        s, load = _run([*hwsim, "report", *inputs, "--out", str(rep), "--overwrite", "--quiet", "--jobs", str(jobs)],
                       src=HERE)
        outs[jobs] = _files(rep)
        print(f"report alone, --jobs {jobs}: {s:.1f} s, {sum(k.startswith('figures/') for k in outs[jobs]) // 2} "
              f"figures ({load})", flush=True)
    same = outs[1] == outs[args.jobs]
    print(f"figures and data of --jobs 1 and --jobs {args.jobs}: {'byte-for-byte identical' if same else 'DIFFER'}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
