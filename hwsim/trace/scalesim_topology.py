"""SCALE-Sim topology CSVs (convolutions or GEMMs) → :class:`LayerSpec`, in SCALE-Sim's conventions or conv arithmetic.

SCALE-Sim v3 (Samajdar et al.; ``scalesim`` 3.0.0 on PyPI) reads two topology formats:

* **Convolutions** — ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter,
  Strides``: unpadded layers whose output size SCALE-Sim computes as ``⌈(H − R + stride) / stride⌉``
  (``topology_utils.topo_calc_hyperparams``), one row and column more than conv arithmetic
  ``⌊(H − R) / stride⌋ + 1`` whenever ``stride`` does not divide ``H − R`` (every stride-2 layer of ResNet-18).
* **GEMMs** (its ``mnk`` inputs) — ``Layer, M, N, K``: the GEMM (M × K)·(K × N). SCALE-Sim turns each row into
  the convolution ifmap M × K, filter 1 × K, 1 channel, N filters, stride 1 (``topology_utils.load_arrays_gemm``),
  whose M output pixels, window K and N filters are hwsim's ``linear`` layer of M rows, K input and N output
  features; stride 1 leaves nothing for the two conventions to disagree on.

``conventions`` (:data:`CONVENTIONS`): ``scalesim`` pads each conv layer so that conv arithmetic gives SCALE-Sim's
output size (padding ⌈(stride − (H − R) mod stride) / 2⌉ per axis; 0 where stride divides H − R); ``conv`` keeps
the file's unpadded layers and conv arithmetic (hwsim's convention for a trace, whose geometry is what the
framework ran). :func:`read_scalesim_topology` defaults to ``conv`` (the file as written); synthetic traces made
from a SCALE-Sim file default to ``scalesim`` (:func:`hwsim.trace.synth.synthesize`, ``hwsim synth
--scalesim-csv``), so its cycles are SCALE-Sim's (checked on ResNet-18: ``tests/test_cli_scalesim.py``).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import replace
from pathlib import Path

from hwsim.trace.layerspec import LayerSpec
from hwsim.trace.schema import TraceError

__all__ = ["CONVENTIONS", "SCALESIM_COLUMNS", "SCALESIM_GEMM_COLUMNS", "apply_conventions", "read_scalesim_topology",
           "scalesim_ofmap", "scalesim_padding"]

SCALESIM_COLUMNS = ("Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width",
                    "Channels", "Num Filter", "Strides")
SCALESIM_GEMM_COLUMNS = ("Layer", "M", "N", "K")  # (M × K)·(K × N): M rows, K inner, N output columns
CONVENTIONS = ("scalesim", "conv")


def scalesim_ofmap(h: int, r: int, stride: int) -> int:
    """SCALE-Sim v3's output size of an unpadded layer: ⌈(H − R + stride) / stride⌉."""
    return math.ceil((h - r + stride) / stride)


def scalesim_padding(h: int, r: int, stride: int) -> int:
    """Symmetric padding for which conv arithmetic gives :func:`scalesim_ofmap` (0 when stride divides H − R)."""
    rem = (h - r) % stride
    return 0 if rem == 0 else -(-(stride - rem) // 2)


def apply_conventions(specs: list[LayerSpec], conventions: str, where: str = "conventions") -> list[LayerSpec]:
    """``specs`` of a SCALE-Sim file as read (unpadded) in ``conventions``: ``conv`` unchanged, ``scalesim`` with each
    conv layer padded to SCALE-Sim's output size (GEMM rows, ``linear``, are the same in both)."""
    if conventions not in CONVENTIONS:
        raise ValueError(f"{where}: {conventions!r} is not allowed; allowed: {', '.join(CONVENTIONS)}")
    if conventions == "conv":
        return list(specs)
    out = []
    for s in specs:
        if s.kind != "conv2d":
            out.append(s)
            continue
        st = (s.stride, s.stride) if isinstance(s.stride, int) else tuple(s.stride)
        out.append(replace(s, padding=(scalesim_padding(s.H, s.R, st[0]), scalesim_padding(s.W, s.S, st[1]))))
    return out


def _int_cell(v: str, where: str) -> int:
    try:
        iv = int(v)
    except ValueError:
        iv = 0
    if iv < 1 or str(iv) != v.lstrip("+"):
        raise TraceError(f"{where} is {v!r}; allowed: integer >= 1")
    return iv


def read_scalesim_topology(path: str | os.PathLike, conventions: str = "conv") -> list[LayerSpec]:
    """Parse a SCALE-Sim topology CSV: convolutions or GEMMs, told apart by the header.

    Conv files: ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter,
    Strides`` (no padding, one stride for both axes). GEMM files (SCALE-Sim's ``M, N, K`` inputs):
    ``Layer, M, N, K`` — the GEMM (M × K)·(K × N), read as a ``linear`` layer of M rows, K input and N
    output features (MACs M·N·K per example). Real files have trailing commas and spaces, and some add
    columns after these (ignored, e.g. a sparsity ratio). Errors name the file, the line and the column.
    ``conventions``: ``conv`` (default: the unpadded layers as written) or ``scalesim`` (module doc).
    """
    if conventions not in CONVENTIONS:
        raise ValueError(f"conventions: {conventions!r} is not allowed; allowed: {', '.join(CONVENTIONS)}")
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise TraceError(f"{p}: SCALE-Sim topology file not found") from None
    rows = [(i + 1, [c.strip() for c in r]) for i, r in enumerate(csv.reader(text.splitlines()))]
    rows = [(n, r) for n, r in rows if any(r) and not r[0].startswith("#")]
    allowed = f"a header '{', '.join(SCALESIM_COLUMNS)}' (convolutions) or '{', '.join(SCALESIM_GEMM_COLUMNS)}' (GEMMs)"
    if not rows:
        raise TraceError(f"{p}: empty topology file; allowed: {allowed} and rows")
    header_line, header = rows[0]
    low = [h.lower() for h in header]
    if low[:8] == [c.lower() for c in SCALESIM_COLUMNS]:
        columns, gemm = SCALESIM_COLUMNS, False
    elif low[0] in ("layer", "layer name") and low[1:4] == ["m", "n", "k"]:
        columns, gemm = SCALESIM_GEMM_COLUMNS, True
    else:
        raise TraceError(f"{p}:{header_line}: header {header[:8]} is not a SCALE-Sim topology; allowed: {allowed}")
    n = len(columns)
    specs: list[LayerSpec] = []
    seen: set[str] = set()
    for line, r in rows[1:]:
        if len(r) < n or not all(r[:n]):
            raise TraceError(f"{p}:{line}: expected {n} values ({', '.join(columns)}), got {r[:n]}")
        name = r[0]
        if name in seen:
            raise TraceError(f"{p}:{line}: duplicate layer name {name!r}")
        seen.add(name)
        vals = [_int_cell(v, f"{p}:{line}: column '{col}' of layer {name!r}")
                for col, v in zip(columns[1:], r[1:n], strict=True)]
        if gemm:
            m, nn, k = vals
            specs.append(LayerSpec(name=name, kind="linear", C=k, K=nn, tokens=m))
            continue
        H, W, R, S, C, K, st = vals
        if R > H or S > W:
            raise TraceError(f"{p}:{line}: layer {name!r} filter {R}×{S} is larger than its input {H}×{W} "
                             "(SCALE-Sim topologies are unpadded)")
        specs.append(LayerSpec(name=name, C=C, K=K, H=H, W=W, R=R, S=S, stride=st))
    if not specs:
        raise TraceError(f"{p}: no layers after the header")
    return apply_conventions(specs, conventions)
