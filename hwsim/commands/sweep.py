"""``hwsim sweep FILE --out DIR``: run every config × trace of a sweep file, resumably."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from hwsim.commands.args import float_range, int_range

if TYPE_CHECKING:
    from hwsim.sweep.spec import SweepSpec

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
    parser.add_argument("--jobs", "-j", type=int_range(1, 256), default=1, metavar="N",
                        help="local worker processes (ignored with --scheduler)")
    parser.add_argument("--scheduler", metavar="ADDRESS", default=None,
                        help="run on an existing Dask distributed scheduler, e.g. tcp://10.0.0.5:8786 (default: local processes)")
    parser.add_argument("--timeout", type=float_range(0, 3600, lo_open=True), default=10.0, metavar="S",
                        help="seconds to wait for the Dask scheduler before giving up")
    parser.add_argument("--max-points", type=int_range(1), default=None, metavar="N",
                        help="refuse sweeps of more than N points (configs × traces × seeds, counted before "
                             "expansion; default: 10000); raise it knowingly for a bigger sweep")
    parser.add_argument("--overwrite", action="store_true",
                        help="let DIR hold a different sweep than the one it was made for (its summary is replaced once "
                             "the new sweep finishes; cached points are content-addressed and kept); without it a "
                             "DIR of another sweep is refused. Re-running the same sweep resumes it")
    parser.add_argument("--dry-run", action="store_true", help="validate and list the points, run nothing")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import sys

    from hwsim.sweep.runner import run_sweep
    from hwsim.sweep.spec import MAX_POINTS, load_sweep

    spec = load_sweep(args.file, max_points=args.max_points or MAX_POINTS)
    if args.dry_run:
        print(f"sweep {spec.name}: {len(spec.configs)} configs × {len(spec.traces)} traces × "
              f"{len(spec.seeds)} seeds = {spec.num_points} points")
        for c in spec.configs:
            print(f"  config {c.index}: {c.label}")
        for t in spec.traces:
            print(f"  trace {t.label}: {t.path or dict(t.synthetic or {})}")
        return 0
    _check_out(spec, args.out, overwrite=args.overwrite)
    outcome = run_sweep(spec, out=args.out, jobs=args.jobs, scheduler=args.scheduler,
                        progress=not args.quiet, connect_timeout_s=args.timeout)
    print(f"sweep {spec.name}: {outcome.evaluated} points computed, {outcome.skipped} reused; "
          f"summary in {outcome.out / 'sweep.csv'}", file=sys.stderr)
    from hwsim.sweep.summary import ranking_lines

    for line in ranking_lines(outcome.rows, spec.parameters):  # by absolute cycles / energy, and Pareto front
        print(line)
    return 0


def _check_out(spec: SweepSpec, out: str, *, overwrite: bool) -> None:
    """DIR may be new, empty, or hold this same sweep (resume); another sweep's DIR needs --overwrite."""
    import json
    from pathlib import Path

    from hwsim._io import check_output
    from hwsim.sweep.runner import SPEC_FILE

    d = Path(out)
    check_output(d, overwrite=True, kind="directory")  # a file at DIR, a read-only or full location: fail now
    if overwrite or not d.is_dir() or not any(d.iterdir()):
        return
    old = None
    for f, key in ((d / SPEC_FILE, None), (d / "sweep.json", "sweep")):
        if f.is_file():
            try:
                doc = json.loads(f.read_text())
                old = doc.get(key) if key else doc
            except (OSError, ValueError, AttributeError):
                old = None
            break
    else:
        raise FileExistsError(f"--out {d}: exists and holds no hwsim sweep; pass --overwrite to use it anyway")

    def same(a: dict) -> dict:
        return {k: v for k, v in a.items() if k != "source"}

    new = json.loads(json.dumps(spec.to_json(), default=str))
    if not isinstance(old, dict) or same(old) != same(new):
        name = old.get("name") if isinstance(old, dict) else "?"
        raise FileExistsError(f"--out {d}: holds the results of another sweep ({name!r}); pass --overwrite to "
                              "replace its summary, or choose another --out")
