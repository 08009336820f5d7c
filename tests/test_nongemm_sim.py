"""Non-GEMM work charged on the vector unit: op counts per kind, ⌈ops/lanes⌉ cycles, traffic, attribution."""

from __future__ import annotations

import pytest

import hwsim
from hwsim.arch import load_arch
from hwsim.sim import nongemm
from hwsim.trace.nongemm import NonGemmWork, OpCount


def test_layernorm_and_softmax_vector_ops():
    ln = {"layernorm": OpCount(1, 80, 96, 80)}
    # mean (add), x−μ (add), Σ(x−μ)² (fma), ×1/σ (mul), ×γ+β (fma) per element
    assert nongemm.vector_ops(ln, "forward") == {"add": 160, "fma": 160, "mul": 80}
    assert nongemm.vector_ops(ln, "backward") == {"add": 240, "fma": 160, "mul": 160}
    sm = {"softmax": OpCount(2, 100, 100, 100)}
    # max (compare), x−max (add), exp, Σ (add), ÷Σ (div)
    assert nongemm.vector_ops(sm, "forward") == {"compare": 100, "add": 200, "exp": 100, "div": 100}
    assert nongemm.vector_ops(sm, "backward") == {"fma": 100, "add": 100, "mul": 100}
    assert nongemm.vector_ops({"other": OpCount(3, 999, 999, 999)}, "forward") == {}


def test_cycles_are_ops_over_lanes_and_bytes_on_chip():
    arch = load_arch("scnn")
    assert arch.vector_lanes == 64  # 1 lane per PE, 8 × 8 PEs
    sm = {"softmax": OpCount(2, 100, 100, 100)}
    cycles, acts = nongemm.cost(sm, "forward", arch)
    # lane cycles 100·1 + 200·1 + 100·exp 6 + 100·div 5 = 1400 → ⌈1400 / 64⌉ = 22
    assert cycles == 22
    assert acts["vec_exp"] == 100 and acts["vec_sram_bytes"] == 200 * arch.pe.mac_bits / 8
    assert acts.count("dram_bytes") == 0  # 50 elements per call fit on chip


def test_spilled_tensors_cross_dram_and_bound_the_cycles():
    arch = load_arch("scnn", overrides={"memory.inter_layer_residency": False})  # nothing stays on chip
    relu = {"relu": OpCount(1, 6400, 6400, 6400)}
    cycles, acts = nongemm.cost(relu, "forward", arch)
    # 6400 compares / 64 lanes = 100 cycles, but 12,800 bytes at 16 B/cycle take 800
    assert cycles == 800 and acts["dram_bytes"] == 12800 and acts.count("vec_sram_bytes") == 0


def test_attribution_forward_backward_and_first_layer():
    work = NonGemmWork.from_rows([("conv1", "relu", [1, 10, 10, 10, 1, 10, 20, 10]),
                                  ("fc1", "relu", [1, 4, 4, 4, 1, 4, 8, 4]),
                                  ("gone", "add", [1, 7, 14, 7, 0, 0, 0, 0])])
    present = [("conv1", "forward"), ("conv1", "backward_weight"), ("fc1", "forward"), ("fc1", "backward_data"),
               ("fc1", "backward_weight")]
    per = nongemm.attribute(work, present)
    assert per[("conv1", "forward")] == {"relu": OpCount(1, 10, 10, 10), "add": OpCount(1, 7, 14, 7)}
    assert per[("conv1", "backward_weight")] == {"relu": OpCount(1, 10, 20, 10)}  # conv1 has no backward-data
    assert per[("fc1", "backward_data")] == {"relu": OpCount(1, 4, 8, 4)}
    assert ("fc1", "backward_weight") not in per


def test_simulated_lenet5_charges_every_variant_the_same(tmp_path):
    hwsim.synthesize(tmp_path / "l", model="lenet5", batch=1)
    r = hwsim.simulate(tmp_path / "l", "scnn")
    lp = next(x for x in r.layers if x.name == "conv1" and x.pass_name == "forward")
    # ReLU over 6·28·28 = 4704 elements and the 2×2 max-pool over the same input: 9408 compares / 64 lanes
    assert lp.sparse.cycle_breakdown.nongemm == 147
    assert lp.dense.cycle_breakdown.nongemm == lp.dense_gated.cycle_breakdown.nongemm == 147
    assert lp.sparse.actions["vec_sram_bytes"] == 4704 * 2 + 4704 + 1176  # ReLU in + out, pool in + out, 8 bit
    # the equal-multiplier systolic array keeps scnn's 64 lanes (vector.baseline_lanes: design) and has no PE RAMs; its
    # global buffer holds the tensors (memory.residency_in_global_buffer, issue 17 item 2): lane-bound, 147
    assert lp.dense_systolic.cycle_breakdown.nongemm == 147
    # with its own lanes (32 columns, a lane each): ⌈9408 / 32⌉ = 294
    own = hwsim.simulate(tmp_path / "l", load_arch("scnn", {"vector.baseline_lanes": "own"}))
    lp_own = next(x for x in own.layers if x.name == "conv1" and x.pass_name == "forward")
    assert lp_own.dense_systolic.cycle_breakdown.nongemm == -(-9408 // 32) == 294
    # without the global buffer for residency the same 15,288 bytes cross DRAM at 16 B/cycle, slower than its lanes
    off = hwsim.simulate(tmp_path / "l", load_arch("scnn", {"memory.residency_in_global_buffer": False}))
    lp_off = next(x for x in off.layers if x.name == "conv1" and x.pass_name == "forward")
    assert lp_off.dense_systolic.cycle_breakdown.nongemm == max(-(-9408 // 64), -(-15288 // 16)) == 956
    assert lp.ideal.cycle_breakdown.nongemm == 0  # the MAC bound stays a bound on the GEMMs
    tot = r.total("sparse")
    assert tot.cycle_breakdown.nongemm == sum(x.sparse.cycle_breakdown.nongemm for x in r.layers)
    assert tot.energy_breakdown.vector > 0
    assert r.trace["nongemm"]["source"] == "topology"


def test_traces_without_records_charge_nothing(tmp_path):
    hwsim.synthesize(tmp_path / "c", layers=[{"name": "a", "kind": "linear", "C": 8, "K": 8}], batch=4)
    r = hwsim.simulate(tmp_path / "c", "scnn")
    assert all(x.sparse.cycle_breakdown.nongemm == 0 for x in r.layers)
    assert "nongemm" not in r.to_json()["total"]["sparse"]["breakdown"]["cycles"]  # files stay as they were


@pytest.mark.parametrize("kind", sorted(nongemm.OPS_PER_ELEMENT))
def test_every_kind_has_costs(kind):
    from hwsim.trace.nongemm import KINDS
    assert kind in KINDS
    assert set(nongemm.OPS_PER_ELEMENT) == set(KINDS)


def test_share_in_simulate_table_and_report_rows(tmp_path):
    from hwsim.commands.simulate import nongemm_line
    from hwsim.results.views import nongemm_share

    hwsim.synthesize(tmp_path / "l", model="lenet5", batch=1)
    r = hwsim.simulate(tmp_path / "l", "scnn")
    sp = r.total("sparse")
    share = sp.cycle_breakdown.nongemm / sp.cycles
    assert nongemm_share(sp) == share and 0 < share < 1
    line = nongemm_line(r)
    assert line.startswith("non-GEMM work (topology): relu, maxpool, loss;") and f"{share:.1%} of sparse cycles" in line


def test_each_kind_is_placed_on_its_own_tensor_size():
    # on chip: 64 PEs × (10 KB input + 10 KB output RAM) + the 1 MB global buffer = 2,359,296 bytes at 8 bits/element
    arch = load_arch("scnn")
    counts = {"relu": OpCount(1, 3_000_000, 3_000_000, 3_000_000),
              "maxpool": OpCount(2, 4_000_000, 4_000_000, 1_000_000)}
    cycles, acts = nongemm.cost(counts, "forward", arch)
    assert acts["dram_bytes"] == 6_000_000  # ReLU's 3,000,000-element tensor spills: read and written
    assert acts["vec_sram_bytes"] == 5_000_000  # each pool call works over 2,000,000 elements: on chip
    # 7 M compares / 64 lanes = 109,375 cycles < 6 MB / 16 B per cycle = 375,000
    assert cycles == 375_000


def test_fused_pointwise_ops_cost_operations_but_no_traffic():
    # one layer-pass: a 3,000,000-element ReLU (spills: 6 MB of DRAM) and a LayerNorm over 1,000 elements per call
    counts = {"relu": OpCount(1, 3_000_000, 3_000_000, 3_000_000), "layernorm": OpCount(4, 4_000, 4_000, 4_000)}
    serial = load_arch("scnn")
    fused = load_arch("scnn", {"vector.fuse_pointwise": True})
    c0, a0 = nongemm.cost(counts, "forward", serial)
    c1, a1 = nongemm.cost(counts, "forward", fused)
    assert a0["dram_bytes"] == 6_000_000 and "dram_bytes" not in a1  # the ReLU's traffic is gone
    assert a1["vec_sram_bytes"] == 8_000  # the LayerNorm keeps its 4,000 + 4,000 bytes (on chip)
    assert a0["vec_compare"] == a1["vec_compare"] == 3_000_000  # the ReLU's compares are still paid
    # 3 M compares + LayerNorm's 4,000·(2 add + 2 fma + 1 mul) = 3,020,000 ops / 64 lanes = 47,188 cycles (no DRAM bound)
    assert c1 == -(-3_020_000 // 64) == 47_188 and c0 == 6_000_000 // 16 == 375_000


def test_overlapped_vector_unit_hides_behind_the_array_time():
    from hwsim.results import CycleBreakdown, VariantResult

    vr = VariantResult(cycle_breakdown=CycleBreakdown(compute=100, fragmentation=30, imbalance=20, bank_conflict=10,
                                                      memory_stall=500))
    serial, over = load_arch("scnn"), load_arch("scnn", {"vector.overlap_nongemm": True})
    assert nongemm.exposed(vr, serial, 400) == 400
    assert nongemm.exposed(vr, over, 400) == 400 - 160  # the array's 160 busy cycles hide it; memory stall does not
    assert nongemm.exposed(vr, over, 100) == 0
