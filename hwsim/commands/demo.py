"""``hwsim demo``: capture, simulate, sweep and report on the embedded dataset, offline."""

from __future__ import annotations

import argparse

from hwsim.commands.args import int_range

HELP = "run the whole pipeline offline on the embedded digits dataset and write reports/demo/"
DESCRIPTION = (
    "Capture LeNet-5 and an MLP trained on scikit-learn's embedded handwritten digits with plain and dithered "
    "backprop, simulate every trace on arch_configs/scnn.yaml against its dense baselines, run the sweeps "
    "arch_configs/sweeps/demo.yaml (PE array, multipliers per PE, MAC width, DRAM bandwidth), "
    "arch_configs/sweeps/nsd.yaml (NSD lanes per PE and their area, σ current or delayed) and "
    "arch_configs/sweeps/density.yaml, and write the report (index.html, figures, CSV/JSON). Under 5 minutes "
    "on 2 cores; --quick (< 1 minute) is for CI. Intermediate files in OUT/work/ are reused on a rerun."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="small run for CI: LeNet-5 only, 4-point sweeps")
    parser.add_argument("--out", default="reports/demo", metavar="DIR",
                        help="report folder; the demo is regenerated output, so a rerun reuses DIR/work and rebuilds "
                             "the report in place (no --overwrite needed)")
    parser.add_argument("--jobs", "-j", type=int_range(1, 256), default=None, metavar="N",
                        help="worker processes for the simulations and the report's figures (default: 2, quick: 1)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars and no table of where the time went (the step lines stay)")


def run(args: argparse.Namespace) -> int:
    from hwsim.experiments.demo import run_demo

    outcome = run_demo(out=args.out, quick=args.quick, jobs=args.jobs, progress=not args.quiet)
    print(f"demo: report in {outcome.index_html} ({outcome.seconds:.0f} s)")
    return 0
