"""The ``hwsim`` command: a thin layer over the Python API (one module per sub-command)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

from hwsim import __version__

# Order = order in `hwsim --help`.
COMMANDS = ("demo", "trace", "inspect", "synth", "validate", "simulate", "compare", "sweep", "report", "experiment")


class UserError(Exception):
    """A problem with the user's input: printed as one clear line, exit code 2, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hwsim",
        description="Cycles and energy of sparse-aware DNN training accelerators, measured on real "
        "dithered-backprop gradients. Capture a trace, simulate it on YAML architectures, sweep and report.",
        epilog="Run 'hwsim demo' for the whole pipeline on the embedded dataset; 'hwsim COMMAND --help' for details.",
    )
    parser.add_argument("--version", action="version", version=f"hwsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        modname = f"hwsim.commands.{name}"
        if importlib.util.find_spec(modname) is None:
            continue
        mod = importlib.import_module(modname)
        p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP),
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("hwsim: interrupted", file=sys.stderr)
        return 130
    except (UserError, FileNotFoundError, FileExistsError, ValueError) as e:
        # Validation errors (TraceError, ArchError, ...) are ValueErrors whose message names file and field.
        print(f"hwsim {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
