"""One look for every figure: Agg backend, readable fonts, one colour per variant, PNG + SVG output.

Colours and names are fixed per variant and per breakdown component so that a reader who has
learnt them on one figure can read every other one without the legend.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # reports are files: never open a window, work on headless machines

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

VARIANT_ORDER = ("dense", "dense_gated", "sparse", "ideal")
VARIANT_LABEL = {"dense": "dense (DCNN)", "dense_gated": "dense, zero-gated (DCNN-opt)",
                 "sparse": "sparse (zero-skipping)", "ideal": "ideal (effectual MACs)",
                 "dense_systolic": "dense systolic, equal multipliers"}
VARIANT_COLOR = {"dense": "#7f7f7f", "dense_gated": "#9ecae1", "sparse": "#d62728", "ideal": "#2ca02c",
                 "dense_systolic": "#393b79"}
PASS_LABEL = {"forward": "forward", "backward_data": "backward-data", "backward_weight": "backward-weight",
              "iteration": "whole iteration"}
CYCLE_COLOR = {"compute": "#1f77b4", "fragmentation": "#ff7f0e", "imbalance": "#bcbd22",
               "bank_conflict": "#9467bd", "memory_stall": "#8c564b", "reduction": "#e377c2", "nsd": "#17becf"}
ENERGY_COLOR = {"mac": "#1f77b4", "accumulator": "#ff7f0e", "sram": "#2ca02c", "crossbar": "#9467bd",
                "dram": "#8c564b", "reduction": "#e377c2", "nsd": "#17becf", "leakage": "#c7c7c7"}
PART_LABEL = {"compute": "compute", "fragmentation": "intra-PE fragmentation", "imbalance": "inter-PE imbalance",
              "bank_conflict": "bank conflicts", "memory_stall": "memory stall", "mac": "MAC",
              "accumulator": "registers + accumulators", "sram": "SRAM", "crossbar": "crossbar", "dram": "DRAM",
              "reduction": "δW cross-PE reduction", "nsd": "NSD unit (δz quantizer)", "leakage": "leakage"}

RC = {
    "font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 10,
    "xtick.labelsize": 10, "ytick.labelsize": 10, "figure.dpi": 100, "savefig.dpi": 150,
    "axes.grid": True, "grid.alpha": 0.3, "axes.axisbelow": True, "axes.spines.top": False,
    "axes.spines.right": False, "svg.fonttype": "none", "svg.hashsalt": "hwsim",
}


@dataclass(frozen=True)
class Plot:
    """A finished figure plus the numbers it shows (written next to it as CSV and JSON)."""

    name: str
    title: str
    caption: str
    figure: Figure
    rows: list[dict[str, Any]] = field(default_factory=list)
    section: str = ""


@dataclass(frozen=True)
class SavedPlot:
    name: str
    title: str
    caption: str
    section: str
    png: Path
    svg: Path
    csv: Path | None
    json: Path | None


def new_figure(*, width: float, height: float) -> Figure:
    """A figure under the report's rcParams; a bare Figure, so no pyplot state is kept alive."""
    apply_style()
    return Figure(figsize=(width, height), layout="constrained")


def apply_style() -> None:
    plt.rcParams.update(RC)


def save_figure(fig: Figure, *, out_dir: str | os.PathLike, name: str, dpi: int = 150) -> tuple[Path, Path]:
    """Write ``name.png`` (``dpi``) and ``name.svg`` (metadata stripped so reruns are byte-stable)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png, svg = out / f"{name}.png", out / f"{name}.svg"
    with plt.rc_context(RC):
        fig.savefig(png, dpi=dpi, metadata={"Software": None})
        fig.savefig(svg, metadata={"Date": None, "Creator": None})
    _palettise(png)
    return png, svg


def _palettise(path: Path) -> None:
    """Re-encode a plot PNG with a 256-colour palette: ~3× smaller (and so is the HTML), same look.

    Plots are flat colours plus anti-aliasing, which a median-cut palette keeps; the result
    is what makes a self-contained index.html with a dozen figures small enough to mail.
    """
    try:
        from PIL import Image
    except ImportError:  # Pillow ships with matplotlib; keep the RGBA file if it is missing
        return
    with Image.open(path) as im:
        rgb = Image.new("RGB", im.size, "white")
        rgb.paste(im, mask=im.getchannel("A") if im.mode == "RGBA" else None)
    rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


def short_layer(name: str, limit: int = 14) -> str:
    """Tick labels stay readable: long module paths keep their last parts."""
    if len(name) <= limit:
        return name
    parts = name.split(".")
    tail = parts[-1]
    for p in reversed(parts[:-1]):
        if len(tail) + len(p) + 1 > limit:
            break
        tail = f"{p}.{tail}"
    return tail if len(tail) <= limit else "…" + name[-(limit - 1):]


def plain_number(v: float) -> str:
    """1500000 → 1.5M, 20000 → 20k, 0.05 → 0.05: short tick labels a reader can say aloud."""
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:g}G"
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e4:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def plain_log(ax: Any, *, axis: str = "y") -> None:
    """Log axis with plain numbers (0.1, 2, 30) instead of 10^x / 2×10^0 tick labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fmt = FuncFormatter(lambda v, _pos: plain_number(v))
    target = ax.yaxis if axis == "y" else ax.xaxis
    lo, hi = (ax.get_ylim() if axis == "y" else ax.get_xlim())
    target.set_major_formatter(fmt)
    if lo > 0 and hi / lo < 20:  # less than ~1 decade: label 2, 3, 5 too
        target.set_minor_locator(LogLocator(subs=(2.0, 3.0, 5.0)))
        target.set_minor_formatter(fmt)
    else:
        target.set_minor_formatter(NullFormatter())
