"""What every sub-command shares: argument types, the ``--overwrite`` help, and the user-error type.

The sub-commands (``hwsim/commands/<name>.py``) import these; the dispatcher (:mod:`hwsim.cli`) imports the
sub-commands — never the other way round.
"""

from __future__ import annotations

import argparse
import math
from typing import Any


class UserError(Exception):
    """A problem with the user's input: printed as one clear line, exit code 2, no traceback."""


OVERWRITE_HELP = ("replace an existing output; without it hwsim refuses to touch one. The new output is written "
                  "aside and swapped in only once complete, so a failed run leaves the old one intact")


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


__all__ = ["OVERWRITE_HELP", "UserError", "float_range", "int_range"]
