"""Writing an experiment's report folder: CSV, JSON and a Markdown index, each written atomically.

Kept separate from :mod:`hwsim.report` (which renders simulator results): experiments report
training measurements, and a half-written file must never look like a finished report.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hwsim._io import atomic_write_bytes, atomic_write_text, rows_to_csv


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (the project's one atomic-write helper)."""
    return atomic_write_text(path, text)


def write_json(path: Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=1, default=_jsonable) + "\n")


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Rows with the union of their keys as columns (first-seen order); floats to 6 significant digits."""
    return atomic_write_text(path, rows_to_csv([{k: _cell(v) for k, v in r.items()} for r in rows]))


def save_figure(fig: Any, path: Path) -> Path:
    """Lay out, render and write a matplotlib figure atomically, then free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (0 for a single value); NaN for none."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return float("nan"), float("nan")
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return m, sd


def pm(mean: float, sd: float, *, scale: float = 100.0, digits: int = 2) -> str:
    """``mean ± sd`` in percent (by default) for tables."""
    if not math.isfinite(mean):
        return "—"
    return f"{mean * scale:.{digits}f} ± {sd * scale:.{digits}f}"


def _cell(v: Any) -> Any:
    return f"{v:.6g}" if isinstance(v, float) else v


def _jsonable(v: Any) -> Any:
    if isinstance(v, Path):
        return str(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")
