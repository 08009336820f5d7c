"""Linear layers tile their batch over the PEs: the I activation slots hold different examples."""

from __future__ import annotations

import hwsim
from hwsim.trace.synth import synthesize


def test_dense_linear_layer_fills_the_multipliers(tmp_path):
    # 64 examples × (256 → 256): with F = I = 4 and 64 PEs, a mapping that gives each activation
    # slot one value per cycle would waste 3/4 of the multipliers (fragmentation ≈ 3× compute).
    tr = synthesize(tmp_path / "t", layers=[{"name": "fc", "kind": "linear", "C": 256, "K": 256}],
                    batch=64, w_density=1.0, a_density=1.0, dz_density=1.0, seed=0)
    res = hwsim.simulate(tr, "scnn")
    fwd = next(r for r in res.to_json()["layers"] if r["pass"] == "forward")
    cyc = fwd["dense"]["breakdown"]["cycles"]
    assert fwd["macs_effectual"] == 64 * 256 * 256
    assert cyc["fragmentation"] + cyc["imbalance"] <= 0.25 * cyc["compute"], cyc


def test_linear_effectual_macs_are_exact_with_sparse_operands(tmp_path):
    tr = synthesize(tmp_path / "t", layers=[{"name": "fc", "kind": "linear", "C": 96, "K": 40}],
                    batch=24, w_density=0.5, a_density=0.3, dz_density=0.2, seed=3, dense_first_input=False)
    t = hwsim.load_trace(tr)
    s = t.sample()["fc"]
    w = s.w_mask.astype(int) if s.w_mask is not None else None
    a = s.a_mask.astype(int)
    dz = (s.dz_levels != 0).astype(int)
    res = {(r["pass"]): r for r in hwsim.simulate(tr, "scnn").to_json()["layers"]}
    assert res["forward"]["macs_effectual"] == int((a @ w.T).sum())          # Σ_n,k Σ_c a·w
    assert res["backward_weight"]["macs_effectual"] == int((dz.T @ a).sum())  # Σ_k,c Σ_n dz·a
