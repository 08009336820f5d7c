"""``hwsim simulate TRACE --arch FILE --out results.json``: replay a trace on an architecture."""

from __future__ import annotations

import argparse

from hwsim.cli import OVERWRITE_HELP, int_range

HELP = "replay a trace on an architecture: cycles and energy per layer and pass vs dense"
DESCRIPTION = (
    "Simulate one sampled iteration of TRACE on the architecture (sparse) and its derived baselines "
    "(dense, dense_gated, ideal), for the forward, backward-data and backward-weight GEMM of every layer. "
    "Writes results.json and prints a per-layer table of speed-up and energy ratio vs dense."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace", metavar="TRACE", help="trace directory (captured or synthetic)")
    parser.add_argument("--arch", required=True, metavar="FILE", help="architecture YAML or shipped name (scnn)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override an arch field, e.g. pe.mac_bits=16 (repeatable)")
    parser.add_argument("--iteration", type=int_range(0), default=None, help="sampled iteration (default: the last)")
    parser.add_argument("--seed", type=int_range(0), default=0, help="seed for masks the trace does not store")
    parser.add_argument("--inference", action="store_true",
                        help="replay the forward pass only, without the training stash of activations "
                             "(for comparisons with inference accelerators such as SCNN)")
    parser.add_argument("--out", default="results.json", metavar="FILE", help="results file to write (atomically)")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no table")


def table(result) -> str:  # noqa: ANN001 - hwsim.results.SimResult
    """Per-layer speed-up and energy ratio of the sparse variant vs dense, per pass, plus totals."""
    from hwsim.results import PASSES

    short = {"forward": "fwd", "backward_data": "bwd-data", "backward_weight": "bwd-weight"}
    head = f"{'layer':<14}" + "".join(f"{short[p] + ' speed-up':>20}{'energy':>9}" for p in PASSES)
    lines = [head, "-" * len(head)]
    ran: set[str] = set()
    for name in result.layer_names():
        row = f"{name:<14}"
        for p in PASSES:
            try:
                lp = result.layer(name, p)
                row += f"{lp.speedup():>19.2f}×{lp.energy_ratio():>8.2f}×"
                ran.add(p)
            except KeyError:
                row += f"{'-':>20}{'-':>9}"
        lines.append(row)
    lines.append("-" * len(head))
    row = f"{'total':<14}"
    for p in PASSES:
        if p in ran:
            row += f"{result.speedup(pass_name=p):>19.2f}×{result.energy_ratio(pass_name=p):>8.2f}×"
        else:  # e.g. --inference: no backward pass was replayed
            row += f"{'-':>20}{'-':>9}"
    lines.append(row)
    ideal = result.speedup("ideal")
    lines.append(f"iteration: sparse {result.speedup():.2f}× faster, {result.energy_ratio():.2f}× less energy "
                 f"than dense (ideal {ideal:.2f}×; dense-gated {result.energy_ratio('dense_gated'):.2f}× energy)")
    from hwsim.trace.schema import coverage_line

    cov = result.trace.get("coverage")
    lines.append(coverage_line(cov) + (" — whole-model figures cover the captured GEMMs only"
                                       if cov and cov.get("missed") else ""))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from hwsim._io import check_output
    from hwsim.arch import load_arch, parse_overrides
    from hwsim.results import save_results
    from hwsim.sim import simulate

    check_output(args.out, overwrite=args.overwrite)  # before simulating: an existing or unwritable --out fails now
    arch = load_arch(args.arch, overrides=parse_overrides(args.overrides) if args.overrides else None)
    result = simulate(args.trace, arch, iteration=args.iteration, seed=args.seed, progress=not args.quiet,
                      training=not args.inference)
    path = save_results(result, args.out)
    if not args.quiet:
        print(table(result))
    print(f"wrote {path}")
    return 0
