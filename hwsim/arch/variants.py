"""Baselines derived from an architecture: same silicon, different handling of zeros.

SCNN compares against DCNN (dense, no sparse machinery) and DCNN-opt (zero operands gate the
multiplier and DRAM traffic is compressed: energy saved, cycles not). Deriving them from the
sparse config, instead of shipping separate files, guarantees the comparison changes nothing else.
"""

from __future__ import annotations

import math
from typing import Any

from hwsim.arch.loader import load_arch
from hwsim.arch.spec import Arch

_NO_SKIP = {"zero_skip.weights": False, "zero_skip.activations": False, "zero_skip.gradients": False}
# Baselines use today's parallel mac_bits MACs whatever the arch's multiplier kind (same area by
# construction, see PEConfig.mac): so a bit-serial or bit-fusion arch is measured against the very
# same dense 8-bit DCNN as scnn.yaml, and speed-ups of different multiplier kinds share one denominator.
_PARALLEL = {"pe.mac": "parallel", "pe.bit_serial_mode": "magnitude", "pe.serial_sign_cycle": True,
             "pe.bit_fusion_widths": [2, 4, 8], "pe.serial_lanes": 0}


def _derive(arch: Arch, suffix: str, extra: dict[str, Any]) -> Arch:
    base = arch.name
    for s in ("-dense_gated", "-dense_systolic", "-dense"):
        base = base.removesuffix(s)
    return load_arch(arch, {**_NO_SKIP, **_PARALLEL, "name": f"{base}-{suffix}", **extra})


def dense_variant(arch: Arch) -> Arch:
    """DCNN: same array and buffers, parallel MACs, no zero skipping, no gating, uncompressed operands."""
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
    base = arch.name
    for s in ("-dense_gated", "-dense_systolic", "-dense"):
        base = base.removesuffix(s)
    return load_arch(arch, {**_NO_SKIP, **_PARALLEL, "name": f"{base}-dense_systolic", "dataflow": dataflow,
                                "pe_array.rows": rows, "pe_array.cols": cols, "pe.mult_f": 1, "pe.mult_i": 1,
                                "zero_gating": False, "memory.compression": "none"})
