"""Cell formatters shared by the README table scripts (``readme_tables.py``, ``readme_runs.py``,
``readme_accelerators.py``), so a ratio reads the same in every generated table.

The scripts run as files, not as a package: each puts this folder on ``sys.path`` and imports this module by name.
"""

from __future__ import annotations

import math
from typing import Any


def times(x: Any) -> str:
    """A ratio without false precision: 300×, 30.1×, 2.61×; "–" for a missing or non-finite value."""
    if x is None or not math.isfinite(float(x)):
        return "–"
    x = float(x)
    return f"{x:.0f}×" if x >= 100 else (f"{x:.1f}×" if x >= 10 else f"{x:.2f}×")


__all__ = ["times"]
