"""Baselines derived from an architecture: same silicon, different handling of zeros.

SCNN compares against DCNN (dense, no sparse machinery) and DCNN-opt (zero operands gate the
multiplier and DRAM traffic is compressed: energy saved, cycles not). Deriving them from the
sparse config, instead of shipping separate files, guarantees the comparison changes nothing else —
including the dataflow of each pass: a design whose backward passes gather (``dataflow: {…: dz_gather}``)
is compared with the same gather multiplying every δz (hwsim/arch/dataflows.py); only the systolic
baselines replace the dataflow (one systolic array for every pass).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from hwsim.arch.loader import load_arch
from hwsim.arch.silicon import area_mm2
from hwsim.arch.spec import Arch

_NO_SKIP = {"zero_skip.weights": False, "zero_skip.activations": False, "zero_skip.gradients": False}
# Baselines use today's parallel mac_bits MACs whatever the arch's multiplier kind (same area by
# construction, see PEConfig.mac): so a bit-serial or bit-fusion arch is measured against the very
# same dense 8-bit DCNN as scnn.yaml, and speed-ups of different multiplier kinds share one denominator.
_PARALLEL = {"pe.mac": "parallel", "pe.bit_serial_mode": "magnitude", "pe.serial_sign_cycle": True,
             "pe.bit_fusion_widths": [2, 4, 8], "pe.serial_lanes": 0}


def _derive(arch: Arch, suffix: str, extra: dict[str, Any]) -> Arch:
    return load_arch(arch, {**_NO_SKIP, **_PARALLEL, "name": f"{_base_name(arch)}-{suffix}", **extra})


def dense_variant(arch: Arch) -> Arch:
    """DCNN: same array and buffers, parallel MACs, no zero skipping, no gating, uncompressed operands.

    It runs the arch's own dataflow: on a Cartesian array every product of the F×I multipliers is still scattered
    to its accumulator bank through the crossbar and bank queues, so the dense baselines pay their energy
    (``energy.crossbar_pj_per_product``, ``energy.bank_queue_pj_per_product``) as the sparse run does (issue 18;
    before, only variants that skip zeros paid the crossbar).
    """
    return _derive(arch, "dense", {"zero_gating": False, "memory.compression": "none"})


def dense_gated_variant(arch: Arch) -> Arch:
    """DCNN-opt: parallel MACs, no skipping (dense cycles), zero gating, compressed DRAM traffic.

    Keeps the arch's compression format; an uncompressed arch gets ``bitmask`` (SCNN's DCNN-opt
    compresses activations).
    """
    comp = arch.memory.compression if arch.memory.compression != "none" else "bitmask"
    return _derive(arch, "dense_gated", {"zero_gating": True, "memory.compression": comp})


def systolic_shape(multipliers: int) -> tuple[int, int]:
    """rows × cols = ``multipliers`` with rows the largest divisor <= √multipliers (1,024 → 32 × 32)."""
    rows = max(d for d in range(1, math.isqrt(multipliers) + 1) if multipliers % d == 0)
    return rows, multipliers // rows


def dense_systolic_variant(arch: Arch, dataflow: str = "systolic_ws") -> Arch:
    """The best dense design of equal multipliers: a weight-stationary systolic array (TPU-like).

    ``systolic_shape(arch.total_multipliers)`` one-MAC PEs, the arch's MAC and accumulator widths,
    global buffer, DRAM and energy table; no skipping, no gating, uncompressed operands. Run through
    the same simulator (:mod:`hwsim.sim.systolic`), so speed-ups can be stated against what a dense
    designer would build, as SCNN did against DCNN, beside the same-silicon ``dense`` baseline.
    """
    rows, cols = systolic_shape(arch.total_multipliers)
    return _systolic(arch, "dense_systolic", rows, cols, dataflow=dataflow)


def _base_name(arch: Arch) -> str:
    base = arch.name
    for s in ("-dense_equal_area", "-dense_gated", "-dense_systolic", "-dense"):
        base = base.removesuffix(s)
    return base


def _systolic(arch: Arch, suffix: str, rows: int, cols: int, *, dataflow: str = "systolic_ws",
              extra: dict[str, Any] | None = None) -> Arch:
    # design: the design's lane count; own: lanes_per_pe per column of this array (a design's vector.lanes total
    # describes the design's unit, not the baseline's)
    lanes = {"vector.lanes": arch.vector_lanes if arch.vector.baseline_lanes == "design" else 0}
    return load_arch(arch, {**_NO_SKIP, **_PARALLEL, "name": f"{_base_name(arch)}-{suffix}", "dataflow": dataflow,
                            "pe_array.rows": rows, "pe_array.cols": cols, "pe.mult_f": 1, "pe.mult_i": 1,
                            "zero_gating": False, "memory.compression": "none", **lanes, **(extra or {})})


# The equal-area array keeps resident tensors in its global buffer: a systolic array has no PE RAMs, and its
# on-chip buffer is where a dense designer keeps activations between layers (TPU v1's Unified Buffer, Jouppi et
# al., ISCA 2017). Without it the baseline would re-stream every tensor — a straw man.
_EQUAL_AREA_MEMORY = {"memory.residency_in_global_buffer": True}
MAX_EQUAL_AREA_PES = 65_536  # the loader's bound on pe_array.rows × cols


def square_ish_shapes():
    """Shapes in order of growing size, one PE row or column at a time: 1×1, 1×2, 2×2, 2×3, 3×3, …"""
    n = 1
    while True:
        yield n, n
        yield n, n + 1
        n += 1


def _reshaped(base: Arch, rows: int, cols: int) -> Arch:
    """``base`` (an array :func:`_systolic` built) with ``rows`` × ``cols`` PEs: the arch :func:`_systolic` builds for
    that shape, as only ``pe_array`` differs; checked by the dataclasses' own field and cross-field rules, without
    :func:`load_arch`'s YAML round trip (≈ 1 ms a call, the search probes up to four shapes)."""
    if (rows, cols) == (base.pe_array.rows, base.pe_array.cols):
        return base
    return dataclasses.replace(base, pe_array=dataclasses.replace(base.pe_array, rows=rows, cols=cols))


def _equal_area(arch: Arch, dataflow: str) -> Arch:
    """The equal-area array of ``arch`` (:func:`equal_area_shape`): one array loaded and validated in full (1 × 1),
    every other shape probed and chosen by :func:`_reshaped` (the same arch as loading that shape)."""
    target = area_mm2(arch)
    base = _systolic(arch, "dense_equal_area", 1, 1, dataflow=dataflow, extra=_EQUAL_AREA_MEMORY)

    def probe(r: int, c: int) -> float:
        return area_mm2(_reshaped(base, r, c))

    a11, a21, a12 = probe(1, 1), probe(2, 1), probe(1, 2)
    u = a21 - a11
    lane = a12 - a11 - u
    c0 = a11 - u - lane
    root = (-lane + math.sqrt(lane * lane + 4 * u * max(0.0, target - c0))) / (2 * u)
    n = max(1, min(math.isqrt(MAX_EQUAL_AREA_PES), math.floor(root + 1e-9)))
    shape = (n, n + 1) if n * (n + 1) <= MAX_EQUAL_AREA_PES and c0 + n * (n + 1) * u + (n + 1) * lane <= target \
        else (n, n)
    while shape != (1, 1) and probe(*shape) > target:
        r, c = shape  # float rounding at the boundary: one step down
        shape = (r, c - 1) if c > r else (r - 1, c)
    return _reshaped(base, *shape)


def equal_area_shape(arch: Arch, dataflow: str = "systolic_ws") -> tuple[int, int]:
    """rows × cols of the largest square-ish systolic array (cols = rows or rows + 1) whose area, global buffer
    included (:func:`hwsim.arch.area_mm2`), is at most ``arch``'s.

    The array's area is c0 + rows·cols·u + cols·l: the global buffer and, by default, the design's vector unit
    (fixed: ``vector.baseline_lanes: design``), one PE's multiplier and adder (u) and one column's vector lanes (l;
    0 unless ``baseline_lanes: own``). Three probes (1×1, 2×1, 1×2) give c0, u and l; the largest n×n that fits
    solves a quadratic, and the shape is checked against the real area (stepped down on float rounding).
    """
    ea = _equal_area(arch, dataflow)
    return ea.pe_array.rows, ea.pe_array.cols


def dense_equal_area_variant(arch: Arch, dataflow: str = "systolic_ws") -> Arch:
    """The dense baseline of equal area: a weight-stationary systolic array as large as ``arch``'s area allows.

    Shape: :func:`equal_area_shape` (the largest square-ish array whose area, buffers included, is at most
    ``arch``'s). Otherwise derived like :func:`dense_systolic_variant` — the arch's MAC and accumulator widths,
    global buffer, DRAM, energy and area tables; no skipping, no gating, uncompressed operands — plus its own
    residency: resident tensors may use its global buffer (``memory.residency_in_global_buffer: true``; reason
    above). It is run by the same simulator, with its own residency plan.
    """
    return _equal_area(arch, dataflow)
