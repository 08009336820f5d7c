"""``hwsim sweep FILE --out DIR``: run every config × trace of a sweep file, resumably."""

from __future__ import annotations

import argparse

HELP = "run an architecture sweep (configs × traces), resumable, locally or on a Dask cluster"
DESCRIPTION = (
    "Run every architecture config × trace of a sweep YAML file (see arch_configs/sweeps/demo.yaml). "
    "Each point's results are stored as DIR/points/<content-hash>.json as soon as they are computed, so "
    "re-running the same command resumes a killed sweep; DIR/sweep.json and DIR/sweep.csv summarise every "
    "point (overrides, trace, cycles/energy per variant, speed-up and energy ratio against dense). "
    "Plot it with 'hwsim report DIR --out reports/NAME'."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="sweep YAML file (version 1)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (created; reused to resume)")
    parser.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                        help="local worker processes (ignored with --scheduler)")
    parser.add_argument("--scheduler", metavar="ADDRESS", default=None,
                        help="run on an existing Dask distributed scheduler, e.g. tcp://10.0.0.5:8786")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="S",
                        help="seconds to wait for the Dask scheduler before giving up")
    parser.add_argument("--dry-run", action="store_true", help="validate and list the points, run nothing")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import sys

    from hwsim.sweep.runner import run_sweep
    from hwsim.sweep.spec import load_sweep

    spec = load_sweep(args.file)
    if args.dry_run:
        print(f"sweep {spec.name}: {len(spec.configs)} configs × {len(spec.traces)} traces × "
              f"{len(spec.seeds)} seeds = {spec.num_points} points")
        for c in spec.configs:
            print(f"  config {c.index}: {c.label}")
        for t in spec.traces:
            print(f"  trace {t.label}: {t.path or dict(t.synthetic or {})}")
        return 0
    outcome = run_sweep(spec, out=args.out, jobs=args.jobs, scheduler=args.scheduler,
                        progress=not args.quiet, connect_timeout_s=args.timeout)
    print(f"sweep {spec.name}: {outcome.evaluated} points computed, {outcome.skipped} reused; "
          f"summary in {outcome.out / 'sweep.csv'}", file=sys.stderr)
    from hwsim.sweep.summary import ranking_lines

    for line in ranking_lines(outcome.rows, spec.parameters):  # by absolute cycles / energy, and Pareto front
        print(line)
    return 0
