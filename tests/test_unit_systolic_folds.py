"""The SCALE-Sim fold model as plain arithmetic (hwsim/sim/systolic.py), by hand on a 2×2 array: the GEMM of each
pass, folds of partial blocks and of repeated (grouped) GEMMs, WS vs the three OS drains, and the per-column-fold
cycles the simulator schedules (they sum to the compute cycles)."""

from __future__ import annotations

import pytest

from hwsim.sim.systolic import fold_plan, gemm_dims

# n = 2 examples, c = 3 → k = 4 channels, 3×3 kernel, 5×5 output: NPQ = 50, CRS = 27
CONV = dict(n=2, k=4, c=3, p=5, q=5, r=3, s=3)


def test_the_gemm_of_each_pass():
    assert gemm_dims("forward", **CONV) == (50, 27, 4)             # (NPQ × CRS)·(CRS × K)
    assert gemm_dims("backward_data", **CONV) == (50, 4, 27)       # (NPQ × K)·(K × CRS)
    assert gemm_dims("backward_weight", **CONV) == (27, 50, 4)     # (CRS × NPQ)·(NPQ × K)
    with pytest.raises(ValueError, match=r"^pass 'update' is not one of forward, backward_data, backward_weight$"):
        gemm_dims("update", **CONV)


def test_weight_stationary_folds_by_hand():
    # B (3 × 5) on 2×2: ⌈3/2⌉ = 2 row folds × ⌈5/2⌉ = 3 column folds, twice (2 groups) = 12 folds;
    # a fold loads 2 rows, streams T = 5 rows of A, skews 2 + 2 − 2: 2·2 + 2 + 5 − 2 = 9 cycles
    plan = fold_plan("systolic_ws", m=5, kr=3, ncol=5, rows=2, cols=2, repeat=2)
    assert (plan.row_folds, plan.col_folds, plan.folds, plan.cycles_per_fold) == (2, 3, 12, 9)
    assert plan.compute_cycles == 12 * 9 - 1 == 107
    # one entry per column fold of each repeat, each its 2 row folds; the last carries the −1
    assert plan.column_fold_cycles().tolist() == [18, 18, 18, 18, 18, 17]
    with pytest.raises(ValueError, match=r"^systolic_ws PEs have one lane, got lanes=2$"):
        fold_plan("systolic_ws", m=5, kr=3, ncol=5, rows=2, cols=2, lanes=2)


@pytest.mark.parametrize("drain,per_fold,compute", [
    ("scalesim", 0 + 3 + 2, 9 * 5 - 1),     # outputs drain during the next fold's skew: no load term
    ("serial", 2 + 3 + 2, 9 * 7 - 1),       # + R cycles of drain that does not overlap
    ("broadcast", 3, 9 * 3 + 2 - 1),        # no skew per fold; the R + C − 2 fill and drain once
])
def test_output_stationary_drains(drain, per_fold, compute):
    # outputs 5 × 5 on 2×2: 3 × 3 = 9 folds, each streaming Kr = 3 operands
    plan = fold_plan("systolic_os", m=5, kr=3, ncol=5, rows=2, cols=2, os_drain=drain)
    assert (plan.folds, plan.cycles_per_fold, plan.compute_cycles) == (9, per_fold, compute)
    assert int(plan.column_fold_cycles().sum()) == compute


def test_dot_product_lanes_shorten_the_stream():
    # 2 lanes per PE: ⌈7/2⌉ = 4 steps a fold instead of 7
    assert fold_plan("systolic_os", m=2, kr=7, ncol=2, rows=2, cols=2, lanes=2).t == 4
    assert fold_plan("systolic_os", m=2, kr=7, ncol=2, rows=2, cols=2).t == 7


def test_unknown_dataflow_or_drain_is_refused():
    with pytest.raises(ValueError, match=r"^os_drain 'late' is not one of \('scalesim', 'serial', 'broadcast'\)$"):
        fold_plan("systolic_os", m=2, kr=2, ncol=2, rows=2, cols=2, os_drain="late")
    with pytest.raises(ValueError, match=r"^dataflow 'cartesian' is not systolic \(systolic_ws \| systolic_os\)$"):
        fold_plan("cartesian", m=2, kr=2, ncol=2, rows=2, cols=2)
