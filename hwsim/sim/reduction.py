"""Cross-PE reduction of backward-weight partial sums: cycles and actions (arch ``reduction:`` section).

In backward-weight every PE working on an output-channel group holds a different spatial tile (or
image share) of the *same* δW block — ``values`` = Kc_g × C_group × R × S partial sums per PE — so
the group's P PEs must add their blocks before the δW write-back. With ``v`` bytes per value
(``pe.accumulator_bits`` / 8) and a per-PE step rate ``rate = min(adders_per_pe, link_bytes_per_cycle / v)``
values per cycle, the cycles of one group are

=====================  ===========================================  ===============================
network                cycles                                       values moved / adds
=====================  ===========================================  ===============================
ring (reduce-scatter)  (P − 1) · ⌈⌈values / P⌉ / rate⌉              (P − 1)·values / (P − 1)·values
tree (pairwise)        ⌈log2 P⌉ · ⌈values / rate⌉                   (P − 1)·values / (P − 1)·values
accumulate_in_place    ⌈P · values · v / global_bytes_per_cycle⌉    P·values / (P − 1)·values
=====================  ===========================================  ===============================

(ring and tree: a step needs adders and link bandwidth at once; ``rate`` is the slower of the two.)
Groups of one barrier interval run on disjoint clusters of PEs, in parallel: an interval's reduction
takes its slowest group. The reduction is **not overlapped** with the next interval's products: the
accumulator entries it drains are the ones the next group needs (Kc is sized to fill them,
:mod:`hwsim.sim.capacity`), so the pass's cycles grow by Σ_interval max_group cycles (breakdown
cause ``reduction``).

Actions (energy category ``reduction``): ``red_add`` adds at accumulator width; ``red_acc``
accumulator accesses (ring/tree: the sender's read and the receiver's read-modify-write per add;
in place: one read per value leaving a PE); ``red_link_bytes`` bytes over PE-to-PE links (in place:
PE → global buffer); ``red_sram_bytes`` global-buffer read + write per value (in place only).
Partial sums that exist only once (P = 1) cost nothing here. Operand passes of wide δ̃z accumulate
into the same accumulators before the reduction, so it runs once per group.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from hwsim.results.actions import Actions

if TYPE_CHECKING:
    import numpy.typing as npt

    from hwsim.arch import Arch, ReductionConfig

ACTIONS: tuple[str, ...] = ("red_add", "red_acc", "red_link_bytes", "red_sram_bytes")


def group_cycles(pes: np.ndarray, values: np.ndarray, cfg: ReductionConfig, value_bytes: float) -> np.ndarray:
    """Reduction cycles of each group (``pes``, ``values`` per group; ``cfg`` = arch.reduction)."""
    pes = np.asarray(pes, dtype=np.int64)
    values = np.asarray(values, dtype=np.int64)
    out = np.zeros(pes.shape, dtype=np.int64)
    multi = pes > 1
    if not multi.any():
        return out
    p, v = pes[multi], values[multi]
    if cfg.network == "accumulate_in_place":
        bw = cfg.global_bytes_per_cycle
        out[multi] = 0 if math.isinf(bw) else np.ceil(p * v * value_bytes / bw - 1e-9).astype(np.int64)
        return out
    rate = float(cfg.adders_per_pe)
    if not math.isinf(cfg.link_bytes_per_cycle):
        rate = min(rate, cfg.link_bytes_per_cycle / value_bytes)
    if cfg.network == "ring":
        chunk = -(-v // p)
        out[multi] = (p - 1) * np.ceil(chunk / rate - 1e-9).astype(np.int64)
    else:  # tree
        levels = np.ceil(np.log2(p) - 1e-9).astype(np.int64)
        out[multi] = levels * np.ceil(v / rate - 1e-9).astype(np.int64)
    return out


def interval_cycles(pes: npt.ArrayLike, values: npt.ArrayLike, interval: npt.ArrayLike, cfg: ReductionConfig,
                    value_bytes: float) -> int:
    """Σ over barrier intervals of the slowest group's reduction (groups of an interval in parallel)."""
    c = group_cycles(pes, values, cfg, value_bytes)
    if c.size == 0:
        return 0
    iv = np.asarray(interval, dtype=np.int64)
    per = np.zeros(int(iv.max()) + 1, dtype=np.int64)
    np.maximum.at(per, iv, c)
    return int(per.sum())


def actions(pes: npt.ArrayLike, values: npt.ArrayLike, cfg: ReductionConfig, value_bytes: float) -> Actions:
    """Action counts of the reduction of every group (module doc)."""
    p = np.asarray(pes, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    multi = p > 1
    p, v = p[multi], v[multi]
    adds = float(((p - 1) * v).sum())
    if cfg.network == "accumulate_in_place":
        moved = float((p * v).sum())
        return Actions(red_add=adds, red_acc=moved, red_link_bytes=moved * value_bytes,
                       red_sram_bytes=2 * moved * value_bytes)
    return Actions(red_add=adds, red_acc=2 * adds, red_link_bytes=adds * value_bytes, red_sram_bytes=0.0)


def cost(group_pes: np.ndarray, group_values: np.ndarray, group_interval: np.ndarray,
         arch: Arch) -> tuple[int, Actions]:
    """(cycles, actions) of reducing one backward-weight GEMM's groups on ``arch``."""
    vb = arch.pe.accumulator_bits / 8
    return (interval_cycles(group_pes, group_values, group_interval, arch.reduction, vb),
            actions(group_pes, group_values, arch.reduction, vb))
