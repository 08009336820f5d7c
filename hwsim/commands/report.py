"""``hwsim report RESULTS... --out reports/NAME``: SCNN-style figures and tables from results."""

from __future__ import annotations

import argparse

from hwsim.commands.args import int_range

HELP = "SCNN-style report (figures, tables, index.md/html) from results, sweeps, traces and design comparisons"
DESCRIPTION = (
    "Build a report folder from results.json files, sweep output directories (hwsim sweep --out DIR) and, "
    "for training curves, trace directories: per-layer speed-up and energy bars normalised to dense, cycle and "
    "energy breakdowns, latency/energy against density with the crossover, sweep parameter plots and the "
    "cycles-vs-energy Pareto front, δ̃z density and bit-width over training, and a summary table per network; "
    "a design comparison (hwsim demo's work/full/designs.json, benchmarks/results/accelerator_table.json) adds "
    "'Which accelerator for dithered backprop?'. "
    "Writes index.md, a self-contained index.html, PNG and SVG figures and every number as CSV and JSON."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="RESULTS",
                        help="results.json files, directories of them, sweep directories, trace directories or "
                             "design comparisons (designs.json)")
    parser.add_argument("--out", required=True, metavar="DIR", help="report folder, e.g. reports/NAME")
    parser.add_argument("--title", default=None, help="page title (default: 'hwsim report')")
    parser.add_argument("--dpi", type=int_range(50, 600), default=150,
                        help="PNG resolution (100 keeps a committed report small)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing report folder; without it hwsim refuses to touch one. The report is "
                             "built in a fresh folder beside --out and swapped in once complete: no stale figures, "
                             "and a failed run leaves the previous report intact")
    parser.add_argument("--jobs", "-j", type=int_range(1, 256), default=1, metavar="N",
                        help="worker processes drawing the figures (default: 1, in-process); the figures are "
                             "byte-for-byte those of --jobs 1")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress lines")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hwsim._io import check_output, replacing_dir
    from hwsim.report import build_report
    from hwsim.report.inputs import load_inputs

    check_output(args.out, overwrite=args.overwrite, kind="directory")
    inputs = load_inputs(args.inputs)  # validated before anything is written
    with replacing_dir(args.out, overwrite=args.overwrite) as tmp:
        outcome = build_report(inputs, out=tmp, title=args.title, progress=not args.quiet, dpi=args.dpi,
                               jobs=args.jobs)
    index = Path(args.out) / outcome.index_html.relative_to(tmp)
    print(f"report: {len(outcome.plots)} figures, {len(outcome.tables)} tables -> {index}")
    return 0
