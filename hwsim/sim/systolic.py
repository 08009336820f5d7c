"""Dense systolic arrays (weight- and output-stationary): the SCALE-Sim fold model.

A GEMM out (M × Ncol) = A (M × Kr) · B (Kr × Ncol) is mapped onto an R × C array:

* **WS** keeps a Kr × Ncol block of B in the PEs: Sr = Kr rows, Sc = Ncol columns, and streams
  T = M rows of A past them;
* **OS** keeps an M × Ncol block of outputs: Sr = M, Sc = Ncol, and streams T = Kr operands.

The operand is split into ⌈Sr/R⌉·⌈Sc/C⌉ *folds*. A WS fold costs R cycles to load the stationary
weights, T cycles of streaming, and R + C − 2 cycles of skew (fill and drain of the diagonal
wavefront); an OS fold has no weights to load — SCALE-Sim v3 drains its outputs during the next
fold's skew (``pe.systolic_os_drain: scalesim``, the default); ``serial`` charges R more cycles for
a drain that does not overlap (hwsim's model before issue 10):

    WS: cycles per fold = 2R + C + T − 2,   OS: R + C + T − 2 (+ R if serial),
    compute cycles = folds · cycles per fold − 1

``broadcast`` (OS only) is a tensor-core-like array instead of a systolic one: each fold's operands are
broadcast along its rows and columns (no diagonal skew) and the outputs drain behind the next fold
(double-buffered accumulators), so a fold costs its T streaming steps and the GEMM pays the pipeline's
fill and drain, R + C − 2 cycles, once: compute cycles = folds · T + R + C − 2 − 1. hwsim's model of
the TensorDash-style array (``arch_configs/tensordash.yaml``), whose PEs take operands from buffers.

The final −1: SCALE-Sim reports the index of the last busy cycle (it counts from cycle 0). On
ResNet-18 Conv3_1b (28×28×128 input, 3×3, 128 filters, stride 1, no pad → 26×26) on 32×32 WS:
Sr = 1152, Sc = 128, T = 676 → 36·4 = 144 folds · 770 − 1 = 110,879, SCALE-Sim v3's number.

A fold uses ``rows_used × cols_used`` of the R × C multipliers for T cycles; everything else
(idle rows/columns of partial folds, fill, drain, weight load) is fragmentation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

OS_DRAINS = ("scalesim", "serial", "broadcast")


@dataclass(frozen=True, kw_only=True)
class FoldPlan:
    """The folds of one GEMM on one array (identical GEMMs repeated ``repeat`` times, e.g. conv groups)."""

    sr: int
    sc: int
    t: int
    rows: int
    cols: int
    repeat: int = 1
    load: int = -1       # cycles to load the stationary operand per fold (-1: rows, i.e. WS / serial OS drain)
    skewed: bool = True  # False (OS broadcast): no per-fold skew; the R + C − 2 fill/drain is paid once (``once``)

    @property
    def row_folds(self) -> int:
        return math.ceil(self.sr / self.rows)

    @property
    def col_folds(self) -> int:
        return math.ceil(self.sc / self.cols)

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds * self.repeat

    @property
    def cycles_per_fold(self) -> int:
        load = self.rows if self.load < 0 else self.load
        return load + self.t + (self.rows + self.cols - 2 if self.skewed else 0)

    @property
    def once(self) -> int:
        """Cycles the GEMM pays once, beside its folds: a broadcast array's pipeline fill and drain."""
        return 0 if self.skewed else self.rows + self.cols - 2

    @property
    def compute_cycles(self) -> int:
        """SCALE-Sim compute cycles of the whole GEMM."""
        return self.folds * self.cycles_per_fold + self.once - 1

    def column_fold_cycles(self) -> np.ndarray:
        """Cycles of each column fold (all its row folds), in execution order; sums to ``compute_cycles``.

        A column fold (up to C output columns) is the natural tile: its outputs are complete when
        it ends, so it is where the simulator places a barrier and the DRAM write-back.
        """
        per = np.full(self.col_folds * self.repeat, self.row_folds * self.cycles_per_fold, dtype=np.int64)
        per[-1] += self.once - 1
        return per


def gemm_dims(pass_name: str, *, n: int, k: int, c: int, p: int, q: int, r: int, s: int) -> tuple[int, int, int]:
    """(M, Kr, Ncol) of one conv-group GEMM of a pass (see DESIGN §1 table)."""
    npq, crs = n * p * q, c * r * s
    if pass_name == "forward":          # (NPQ × CRS)·(CRS × K)
        return npq, crs, k
    if pass_name == "backward_data":    # (NPQ × K)·(K × CRS), then col2im
        return npq, k, crs
    if pass_name == "backward_weight":  # (CRS × NPQ)·(NPQ × K) = δWᵀ
        return crs, npq, k
    raise ValueError(f"pass {pass_name!r} is not one of forward, backward_data, backward_weight")


def fold_plan(dataflow: str, *, m: int, kr: int, ncol: int, rows: int, cols: int, repeat: int = 1,
              os_drain: str = "scalesim", lanes: int = 1) -> FoldPlan:
    """Fold plan of a GEMM for ``systolic_ws`` or ``systolic_os`` (``os_drain``: scalesim | serial | broadcast,
    module doc).

    ``lanes`` (``systolic_os`` only): dot-product lanes per PE (``pe.mult_i``), which stream the reduction
    ⌈Kr / lanes⌉ steps (the TensorDash-style array, :mod:`hwsim.sim.tensordash`).
    """
    if dataflow == "systolic_ws":
        if lanes != 1:
            raise ValueError(f"systolic_ws PEs have one lane, got lanes={lanes}")
        return FoldPlan(sr=kr, sc=ncol, t=m, rows=rows, cols=cols, repeat=repeat)
    if dataflow == "systolic_os":
        if os_drain not in OS_DRAINS:
            raise ValueError(f"os_drain {os_drain!r} is not one of {OS_DRAINS}")
        return FoldPlan(sr=m, sc=ncol, t=math.ceil(kr / lanes), rows=rows, cols=cols, repeat=repeat,
                        load=rows if os_drain == "serial" else 0, skewed=os_drain != "broadcast")
    raise ValueError(f"dataflow {dataflow!r} is not systolic (systolic_ws | systolic_os)")
