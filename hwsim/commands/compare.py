"""``hwsim compare TRACE --arch A --arch B ...``: several architectures side by side on one trace."""

from __future__ import annotations

import argparse

from hwsim.commands.args import OVERWRITE_HELP, int_range

HELP = "several architectures (e.g. 8-bit vs bit-serial/bit-fusion MACs) side by side on one trace"
DESCRIPTION = (
    "Simulate one sampled iteration of TRACE on every --arch and print, per pass, for the backward passes "
    "together and for the whole iteration: cycles and energy of each arch's sparse run beside the first "
    "arch's dense baseline and sparse run (the reference, e.g. scnn = 8-bit zero skipping). --csv writes "
    "every layer × pass row (cycle and energy breakdowns included)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace", metavar="TRACE", help="trace directory (captured or synthetic)")
    parser.add_argument("--arch", action="append", required=True, metavar="FILE",
                        help="architecture YAML or shipped name; repeat; the first is the reference")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a field of every arch, e.g. memory.dram_bytes_per_cycle=.inf (repeatable)")
    parser.add_argument("--iteration", type=int_range(0), default=None, help="sampled iteration (default: the last sampled with a full mini-batch)")
    parser.add_argument("--seed", type=int_range(0), default=0, help="seed for masks the trace does not store")
    parser.add_argument("--csv", default=None, metavar="FILE", help="write all rows as CSV (default: print only)")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    parser.add_argument("--plot", default=None, metavar="FILE",
                        help="write a figure (cycles and energy per pass and arch; .png or .svg) (default: none)")


def run(args: argparse.Namespace) -> int:
    from hwsim._io import atomic_write_text, check_output, rows_to_csv
    from hwsim.arch import parse_overrides
    from hwsim.sim.compare import compare

    if args.csv:
        check_output(args.csv, overwrite=args.overwrite, flag="--csv")
    if args.plot:
        if not str(args.plot).lower().endswith((".png", ".svg")):
            raise ValueError(f"--plot: {args.plot} must end in .png or .svg")
        check_output(args.plot, overwrite=args.overwrite, flag="--plot")
    cmp = compare(args.trace, args.arch, iteration=args.iteration, seed=args.seed,
                  overrides=parse_overrides(args.overrides) or None)
    print(cmp.table())
    if args.csv:
        atomic_write_text(args.csv, rows_to_csv(cmp.rows()))
        print(f"wrote {args.csv}")
    if args.plot:
        print(f"wrote {write_plot(cmp, args.plot)}")
    return 0


def write_plot(cmp, path: str):
    """The compare figure, titled with the trace, its replayed iteration and the overrides."""
    from pathlib import Path

    from hwsim.report.fig_compare import compare_figure
    from hwsim.report.style import save_figure
    from hwsim.results import provenance

    out = Path(path)
    if out.suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"--plot: {path} must end in .png or .svg")
    prov = cmp.results[0].provenance or {}
    t = prov.get("trace") or {}
    what = " ".join(str(t[k]) for k in ("model", "method") if t.get(k)) or str(cmp.results[0].trace.get("path"))
    rep = ", ".join(v for k, v in provenance.describe_trace(prov) if k == "replayed")
    ov = provenance.override_label(prov)
    title = f"{what}: {' vs '.join(cmp.names)}" + (f" [{ov}]" if ov else "") + (f"\n{rep}" if rep else "")
    plot = compare_figure(cmp.rows(), title=title, name=out.stem)
    png, svg = save_figure(plot.figure, out_dir=out.parent, name=out.stem)
    keep, drop = (png, svg) if out.suffix.lower() == ".png" else (svg, png)
    drop.unlink(missing_ok=True)
    return keep
