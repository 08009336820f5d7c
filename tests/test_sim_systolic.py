"""Dense systolic arrays follow the SCALE-Sim fold model (checked against SCALE-Sim v3)."""

from __future__ import annotations

from hwsim.arch import load_arch
from hwsim.sim import simulate
from hwsim.sim.systolic import fold_plan, gemm_dims
from hwsim.trace.synth import synthesize


def test_conv3_1b_ws_matches_scalesim():
    # ResNet-18 Conv3_1b: 28×28×128 input, 3×3, 128 filters, stride 1, no pad → 26×26; 32×32 WS.
    m, kr, ncol = gemm_dims("forward", n=1, k=128, c=128, p=26, q=26, r=3, s=3)
    plan = fold_plan("systolic_ws", m=m, kr=kr, ncol=ncol, rows=32, cols=32)
    assert (plan.sr, plan.sc, plan.t, plan.folds) == (1152, 128, 676, 144)
    assert plan.compute_cycles == 110_879
    assert int(plan.column_fold_cycles().sum()) == 110_879


def test_systolic_simulation_uses_fold_cycles(tmp_path):
    t = synthesize(tmp_path / "c31b", layers=[{"name": "Conv3_1b", "C": 128, "K": 128, "H": 28, "W": 28,
                                               "R": 3, "S": 3}], a_density=0.5, dz_density=0.1,
                   dense_first_input=False)
    r = simulate(t, load_arch("systolic32", overrides={"memory.dram_bytes_per_cycle": float("inf")}))
    fw = r.layer("Conv3_1b", "forward")
    assert fw.dense.cycles == fw.sparse.cycles == 110_879
    assert fw.dense.cycle_breakdown.imbalance == 0 and fw.dense.cycle_breakdown.bank_conflict == 0
    assert fw.dense_gated.energy_pj < fw.dense.energy_pj   # zero gating saves multiplier energy
    assert fw.ideal.cycles < fw.dense.cycles


def test_os_dataflow_folds():
    m, kr, ncol = gemm_dims("forward", n=1, k=128, c=128, p=26, q=26, r=3, s=3)
    plan = fold_plan("systolic_os", m=m, kr=kr, ncol=ncol, rows=32, cols=32)
    assert plan.folds == 22 * 4                         # ⌈676/32⌉ · ⌈128/32⌉
    # SCALE-Sim v3: the outputs drain during the next fold's skew, R + C + T − 2 per fold (issue 10)
    assert plan.compute_cycles == 88 * (32 + 32 + 1152 - 2) - 1
    serial = fold_plan("systolic_os", m=m, kr=kr, ncol=ncol, rows=32, cols=32, os_drain="serial")
    assert serial.compute_cycles == 88 * (64 + 32 + 1152 - 2) - 1   # hwsim's earlier serial drain
