"""``hwsim report RESULTS... --out reports/NAME``: SCNN-style figures and tables from results."""

from __future__ import annotations

import argparse

HELP = "SCNN-style report (figures, tables, index.md/html) from results, sweeps and traces"
DESCRIPTION = (
    "Build a report folder from results.json files, sweep output directories (hwsim sweep --out DIR) and, "
    "for training curves, trace directories: per-layer speed-up and energy bars normalised to dense, cycle and "
    "energy breakdowns, latency/energy against density with the crossover, sweep parameter plots and the "
    "cycles-vs-energy Pareto front, δ̃z density and bit-width over training, and a summary table per network. "
    "Writes index.md, a self-contained index.html, PNG and SVG figures and every number as CSV and JSON."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="RESULTS",
                        help="results.json files, directories of them, sweep directories or trace directories")
    parser.add_argument("--out", required=True, metavar="DIR", help="report folder, e.g. reports/NAME")
    parser.add_argument("--title", default=None, help="page title")
    parser.add_argument("--dpi", type=int, default=150, help="PNG resolution (100 keeps a committed report small)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines")


def run(args: argparse.Namespace) -> int:
    from hwsim.report import build_report

    if not 50 <= args.dpi <= 600:
        raise ValueError(f"--dpi: {args.dpi} is outside 50..600")
    outcome = build_report(args.inputs, out=args.out, title=args.title, progress=not args.quiet, dpi=args.dpi)
    print(f"report: {len(outcome.plots)} figures, {len(outcome.tables)} tables -> {outcome.index_html}")
    return 0
