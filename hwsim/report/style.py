"""One look for every figure: Agg backend, readable fonts, one colour per variant, PNG + SVG output.

Colours and names are fixed per variant and per breakdown component so that a reader who has
learnt them on one figure can read every other one without the legend.
"""

from __future__ import annotations

import importlib.util
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

from hwsim._io import atomic_write_bytes
from hwsim.results.views import times  # noqa: F401  (the one ratio formatter; report modules import it from here)

matplotlib.use("Agg")  # reports are files: never open a window, work on headless machines

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

VARIANT_ORDER = ("dense", "dense_gated", "sparse", "ideal")
VARIANT_LABEL = {"dense": "dense (DCNN)", "dense_gated": "dense, zero-gated (DCNN-opt)",
                 "sparse": "sparse (zero-skipping)", "ideal": "MAC bound (effectual MACs ÷ multipliers)",
                 "dense_systolic": "dense systolic, equal multipliers", "dense_equal_area": "dense systolic, equal area"}
VARIANT_COLOR = {"dense": "#7f7f7f", "dense_gated": "#9ecae1", "sparse": "#d62728", "ideal": "#2ca02c",
                 "dense_systolic": "#393b79", "dense_equal_area": "#8c6d31"}
PASS_LABEL = {"forward": "forward", "backward_data": "backward-data", "backward_weight": "backward-weight",
              "update": "weight update", "iteration": "whole iteration"}
PASS_COLOR = {"forward": "#4c72b0", "backward_data": "#dd8452", "backward_weight": "#55a868", "update": "#8172b3",
              "iteration": "#222222"}
# One colour per gradient method in every figure (training curves, histograms, sweeps, overview).
METHOD_COLOR = {"none": "#1f77b4", "dither": "#ff7f0e", "meprop": "#9467bd", "synthetic": "#8c564b",
                "int8": "#17becf"}
_EXTRA_COLORS = ("#e377c2", "#bcbd22", "#7f7f7f", "#17becf", "#aec7e8", "#ffbb78")
MODEL_MARKER = ("o", "s", "^", "D", "v", "P", "X", "*")
CYCLE_COLOR = {"compute": "#1f77b4", "fragmentation": "#ff7f0e", "imbalance": "#bcbd22",
               "bank_conflict": "#9467bd", "memory_stall": "#8c564b", "fill_drain": "#c49c94",
               "reduction": "#e377c2", "nsd": "#17becf", "vector": "#393b79", "nongemm": "#2ca02c"}
ENERGY_COLOR = {"mac": "#1f77b4", "accumulator": "#ff7f0e", "sram": "#2ca02c", "crossbar": "#9467bd",
                "dram": "#8c564b", "reduction": "#e377c2", "nsd": "#17becf", "vector": "#bcbd22",
                "leakage": "#c7c7c7"}
PART_LABEL = {"compute": "compute", "fragmentation": "intra-PE fragmentation", "imbalance": "inter-PE imbalance",
              "bank_conflict": "bank conflicts", "memory_stall": "memory stall",
              "fill_drain": "exposed fill / drain", "mac": "MAC",
              "accumulator": "registers + accumulators", "sram": "SRAM", "crossbar": "crossbar", "dram": "DRAM",
              "reduction": "cross-PE reduction / halo", "nsd": "NSD unit (δz quantizer)",
              "vector": "vector unit", "nongemm": "non-GEMM work (vector unit)",
              "leakage": "leakage"}

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
    svg: Path | None  # None: saved without an SVG copy (save_figure(svg=False))
    csv: Path | None
    json: Path | None


def new_figure(*, width: float, height: float) -> Figure:
    """A figure under the report's rcParams; a bare Figure, so no pyplot state is kept alive."""
    apply_style()
    return Figure(figsize=(width, height), layout="constrained")


def apply_style() -> None:
    plt.rcParams.update(RC)


def save_figure(fig: Figure, *, out_dir: str | os.PathLike, name: str, dpi: int = 150,
                svg: bool = True) -> tuple[Path, Path | None]:
    """Write ``name.png`` (``dpi``) and ``name.svg`` (metadata stripped so reruns are byte-stable); ``svg=False``:
    the PNG only (the same bytes: it is drawn first) and None for the SVG.

    Both are drawn in memory and written aside then renamed (:func:`hwsim._io.atomic_write_bytes`): a reader,
    a crash or a stopped worker never leaves half a figure.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png, svg_path = out / f"{name}.png", out / f"{name}.svg"
    png_buf, svg_buf = io.BytesIO(), io.BytesIO()
    with plt.rc_context({**RC, "figure.autolayout": False, "figure.constrained_layout.use": False}):
        # The PNG is decoded again and palettised (_palettise): without Pillow it is the file, so compressed;
        # with it, an uncompressed intermediate (same pixels, so the same palettised bytes) saves a zlib pass.
        fig.savefig(png_buf, format="png", dpi=dpi, metadata={"Software": None},
                    pil_kwargs={"compress_level": 0} if _HAVE_PIL else None)
        if not svg:
            atomic_write_bytes(png, _palettise(png_buf.getvalue()))
            return png, None
        engine = fig.get_layout_engine()
        # Positions from the PNG's layout pass: the SVG does not redo it. No engine at all (None, not "none",
        # which leaves a placeholder engine) also spares savefig its layout pre-draw: the same bytes, ~10 % faster.
        fig.set_layout_engine(None)
        fig.savefig(svg_buf, format="svg", metadata={"Date": None, "Creator": None})
        if engine is not None:
            fig.set_layout_engine(engine)
    atomic_write_bytes(png, _palettise(png_buf.getvalue()))
    atomic_write_bytes(svg_path, svg_buf.getvalue())
    return png, svg_path


_HAVE_PIL = importlib.util.find_spec("PIL") is not None


def _palettise(data: bytes) -> bytes:
    """Re-encode a plot PNG with a 256-colour palette: ~3× smaller (and so is the HTML), same look.

    Plots are flat colours plus anti-aliasing, which a median-cut palette keeps; the result
    is what makes a self-contained index.html with a dozen figures small enough to mail.
    """
    try:
        from PIL import Image
    except ImportError:  # Pillow ships with matplotlib; keep the RGBA file if it is missing
        return data
    with Image.open(io.BytesIO(data)) as im:
        rgb = Image.new("RGB", im.size, "white")
        rgb.paste(im, mask=im.getchannel("A") if im.mode == "RGBA" else None)
    out = io.BytesIO()
    # zlib at its default level: optimize=True (level 9) makes the file ~10 % smaller for ~75 % more time here
    rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, format="PNG")
    return out.getvalue()


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
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    fmt = FuncFormatter(lambda v, _pos: plain_number(v))
    target = ax.yaxis if axis == "y" else ax.xaxis
    lo, hi = (ax.get_ylim() if axis == "y" else ax.get_xlim())
    target.set_major_formatter(fmt)
    import math

    majors = math.floor(math.log10(hi)) - math.ceil(math.log10(lo)) + 1 if lo > 0 and hi > 0 else 2
    if lo > 0 and hi / lo < 4:  # a narrow range: evenly spaced round numbers, several of them
        target.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
        target.set_minor_formatter(NullFormatter())
    elif lo > 0 and (hi / lo < 20 or majors < 2):  # fewer than two labelled decades: label 2, 3, 5 too
        target.set_minor_locator(LogLocator(subs=(2.0, 3.0, 5.0)))
        target.set_minor_formatter(fmt)
    else:
        target.set_minor_formatter(NullFormatter())


def method_color(method: Any) -> str:
    """The method's colour; unknown methods get a stable colour from their name."""
    m = str(method or "").lower()
    if m in METHOD_COLOR:
        return METHOD_COLOR[m]
    return _EXTRA_COLORS[sum(map(ord, m)) % len(_EXTRA_COLORS)]


def series_style(method: Any, model: Any, models: list[Any]) -> dict[str, Any]:
    """Colour by method, marker (and line style) by model: a trace looks the same in every figure."""
    k = models.index(model) if model in models else 0
    return {"color": method_color(method), "marker": MODEL_MARKER[k % len(MODEL_MARKER)],
            "linestyle": ("-", "--", ":", "-.")[k % 4]}


# Display name and unit of every YAML key a sweep can move (axis labels never show raw dotted keys).
PARAM_DISPLAY: dict[str, tuple[str, str]] = {
    "clock_ghz": ("clock", "GHz"),
    "dataflow": ("dataflow", ""),
    "pe_array.rows": ("PE rows", "PEs"),
    "pe_array.cols": ("PE columns", "PEs"),
    "pe.mult_f": ("multipliers F (weights)", "per PE"),
    "pe.mult_i": ("multipliers I (activations)", "per PE"),
    "pe.mac": ("MAC kind", ""),
    "pe.mac_bits": ("MAC width", "bit"),
    "pe.accumulator_bits": ("accumulator width", "bit"),
    "pe.accumulator_banks": ("accumulator banks", "banks"),
    "pe.accumulator_bank_entries": ("entries per bank", "entries"),
    "pe.bank_queue_depth": ("bank queue depth", "products"),
    "pe.input_buffer_bytes": ("input buffer", "B"),
    "pe.output_buffer_bytes": ("output buffer", "B"),
    "pe.weight_fifo_bytes": ("weight FIFO", "B"),
    "pe.output_channel_group": ("output-channel group Kc", "channels"),
    "zero_skip.weights": ("skip zero weights", ""),
    "zero_skip.activations": ("skip zero activations", ""),
    "zero_skip.gradients": ("skip zero δ̃z", ""),
    "zero_gating": ("zero gating", ""),
    "memory.global_buffer_bytes": ("global buffer", "B"),
    "memory.dram_bytes_per_cycle": ("DRAM bandwidth", "B/cycle"),
    "memory.compression": ("DRAM compression", ""),
    "memory.run_length_bits": ("run-length index", "bit"),
    "memory.inter_layer_residency": ("inter-layer residency", ""),
    "memory.residency_in_global_buffer": ("residency in the global buffer", ""),
    "memory.stash": ("training stash", ""),
    "memory.weights_resident": ("resident weights", ""),
    "quantizer.lanes_per_pe": ("NSD lanes per PE", "lanes"),
    "quantizer.sigma": ("NSD σ (current: two passes, delayed: one)", ""),
}
_SUFFIX_UNITS = (("_bytes_per_cycle", "B/cycle"), ("_pj_per_64b", "pJ/64 bit"), ("_pj_per_product", "pJ"),
                 ("_pj", "pJ"), ("_bytes", "B"), ("_bits", "bit"), ("_ghz", "GHz"), ("_mm2", "mm²"))


def param_display(key: str) -> tuple[str, str]:
    """(display name, unit) of a dotted YAML key; unknown keys get a readable name and a unit from the suffix."""
    if key in PARAM_DISPLAY:
        return PARAM_DISPLAY[key]
    leaf = key.split(".")[-1]
    for suffix, unit in _SUFFIX_UNITS:
        if leaf.endswith(suffix):
            return leaf[: -len(suffix)].replace("_", " "), unit
    if key.startswith("energy."):
        return key.split(".", 1)[1].replace("_", " ").replace(".", " "), "pJ"
    return leaf.replace("_", " "), ""


def param_label(key: str) -> str:
    """Axis label of a swept key (or keys moved together, joined by ' = '): 'DRAM bandwidth (B/cycle)'."""
    parts = [param_display(k.strip()) for k in key.split(" = ")]
    names = " = ".join(dict.fromkeys(n for n, _ in parts))
    units = list(dict.fromkeys(u for _, u in parts if u))
    return f"{names} ({', '.join(units)})" if units else names


def percent(x: Any) -> str:
    """0.004 → '<1%', 0 → '0%', 0.253 → '25%': no 'util. 0 %' for something that is not zero."""
    if x is None:
        return "–"
    x = float(x)
    if x != x:
        return "–"
    if 0 < x < 0.01:
        return "<1%"
    return f"{x:.0%}"


def energy_unit(peak_pj: float) -> tuple[float, str]:
    """(scale from pJ, unit) so the largest value reads 1–999: one SI family (pJ, nJ, µJ, mJ) everywhere."""
    for scale, unit in ((1e9, "mJ"), (1e6, "µJ"), (1e3, "nJ")):
        if abs(peak_pj) >= scale:
            return 1.0 / scale, unit
    return 1.0, "pJ"


def canvas_overflow(fig: Figure, *, tolerance_px: float = 1.0) -> list[str]:
    """What of ``fig`` sticks out of the canvas (a reader would see it clipped): [] when nothing does.

    Compares matplotlib's tight bounding box (every drawn axis, tick label, title, legend and text)
    with the figure's own box, then names the offending parts (axes, figure legends, figure texts).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)  # a bare Figure has no renderer: attach the Agg canvas the PNG is drawn with
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox

    def outside(bb) -> bool:
        return (bb.x0 < box.x0 - tolerance_px or bb.y0 < box.y0 - tolerance_px or bb.x1 > box.x1 + tolerance_px
                or bb.y1 > box.y1 + tolerance_px)

    tight = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)
    if not outside(tight):
        return []
    out = []
    for i, ax in enumerate(fig.axes):
        if ax.get_visible():
            bb = ax.get_tightbbox(renderer)
            if bb is not None and outside(bb):
                out.append(f"axes {i} ({ax.get_title() or ax.get_xlabel() or 'untitled'}) at {_bounds(bb)}")
    for leg in fig.legends:
        bb = leg.get_window_extent(renderer)
        if outside(bb):
            out.append(f"figure legend at {_bounds(bb)}")
    for t in fig.texts:
        if t.get_visible() and t.get_text().strip() and outside(t.get_window_extent(renderer)):
            out.append(f"text {t.get_text()!r} at {_bounds(t.get_window_extent(renderer))}")
    return out or [f"figure content at {_bounds(tight)} outside the canvas {_bounds(box)}"]


def _bounds(bb) -> str:
    return f"x {bb.x0:.0f}..{bb.x1:.0f}, y {bb.y0:.0f}..{bb.y1:.0f} px"
