"""What every sub-command shares: argument types, the ``--overwrite`` and ``--dither-rng`` options, the user-error type.

The sub-commands (``hwsim/commands/<name>.py``) import these; the dispatcher (:mod:`hwsim.cli`) imports the
sub-commands — never the other way round.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from hwsim.capture.config import DEFAULT_DITHER_RNG, DITHER_RNGS  # torch-free: the names and the default


class UserError(Exception):
    """A problem with the user's input: printed as one clear line, exit code 2, no traceback."""


OVERWRITE_HELP = ("replace an existing output; without it hwsim refuses to touch one. The new output is written "
                  "aside and swapped in only once complete, so a failed run leaves the old one intact")


def add_dither_rng(parser: argparse.ArgumentParser) -> None:
    """``--dither-rng {counter,sfc64}`` (dest ``dither_rng``), one definition for ``hwsim trace`` and ``hwsim experiment``."""
    parser.add_argument("--dither-rng", default=DEFAULT_DITHER_RNG, choices=DITHER_RNGS,
                        help="the dither's random stream: counter (default; each element's u a hash of seed, "
                             "iteration, layer call and index: the same bits on every device and path) or sfc64 "
                             "(numpy's sequential stream, that of traces made before 2026-12-07; on a GPU a "
                             "torch.Generator); recorded as meta.dither_rng (absent in a trace: sfc64)")


def int_range(lo: int | None = None, hi: int | None = None) -> Any:  # noqa: ANN401 - an argparse type
    """argparse type: an integer in [lo, hi] (either bound optional)."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"{v} is out of range; allowed: {_range_text(lo, hi, 'an integer')}")
        return v
    parse.__name__ = "integer"
    return parse


def float_range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
                hi_open: bool = False) -> Any:  # noqa: ANN401 - an argparse type
    """argparse type: a finite number in [lo, hi] ((lo, hi] with ``lo_open``, [lo, hi) with ``hi_open``)."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        bad = not math.isfinite(v)
        bad |= lo is not None and (v <= lo if lo_open else v < lo)
        bad |= hi is not None and (v >= hi if hi_open else v > hi)
        if bad:
            rng = f"{'(' if lo_open else '['}{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}" \
                  f"{')' if hi_open or hi is None else ']'}"
            raise argparse.ArgumentTypeError(f"{text} is out of range; allowed: a finite number in {rng}")
        return v
    parse.__name__ = "number"
    return parse


def _range_text(lo: int | None, hi: int | None, kind: str) -> str:
    if lo is not None and hi is not None:
        return f"{kind} in {lo}..{hi}"
    if lo is not None:
        return f"{kind} >= {lo}"
    return f"{kind} <= {hi}"


__all__ = ["OVERWRITE_HELP", "UserError", "add_dither_rng", "float_range", "int_range"]
