"""The vector unit (``vector:`` YAML section, hwsim/arch/vector.py, hwsim/sim/vector.py): numbers by hand."""

from __future__ import annotations

import pytest

from hwsim.arch import ArchError, area_breakdown_um2, load_arch
from hwsim.arch.vector import VECTOR_OPS, VectorConfig
from hwsim.results.actions import Actions
from hwsim.sim.energy import price
from hwsim.sim.vector import vector_cost


def test_defaults_are_horowitz_fp32_sequences():
    v = VectorConfig()
    # Horowitz fp32: add 0.9, mult 3.7. fma = 4.6; exp = 1 mul + 5 fma; div = 5 mul + 2 add; sqrt = 7 mul + 2 add.
    assert (v.add_pj, v.mul_pj, v.fma_pj, v.compare_pj) == (0.9, 3.7, 4.6, 0.9)
    assert (v.exp_pj, v.div_pj, v.sqrt_pj) == (26.7, 20.3, 27.7)
    assert [v.op_cycles(op) for op in VECTOR_OPS] == [1, 1, 1, 1, 6, 5, 7]
    assert v.lane_um2 == 11_884.0 and v.compute_bits == 32


def test_lanes_per_pe_or_per_column():
    assert load_arch("scnn").vector_lanes == 64                  # 8×8 PEs, one lane each
    assert load_arch("systolic32").vector_lanes == 32             # 32 columns
    assert load_arch("scnn", {"vector.lanes_per_pe": 4}).vector_lanes == 256
    assert load_arch("tensordash").vector_lanes == 32             # 8 columns × 4: systolic32's 32 for 1,024 multipliers
    assert load_arch("scnn", {"vector.lanes": 48}).vector_lanes == 48   # a total overrides lanes_per_pe
    assert load_arch("systolic32", {"vector.lanes": 7, "vector.lanes_per_pe": 3}).vector_lanes == 7


def test_lane_fields_validate():
    with pytest.raises(ArchError, match=r"vector\.baseline_lanes"):
        load_arch("scnn", {"vector.baseline_lanes": "mine"})
    with pytest.raises(ArchError, match=r"vector\.lanes"):
        load_arch("scnn", {"vector.lanes": -1})


def test_cycles_and_actions_by_hand():
    arch = load_arch("scnn")   # 64 lanes
    # 1000 adds + 100 div (5 cycles) + 10 exp (6 cycles) = 1000 + 500 + 60 = 1560 lane cycles → ⌈1560/64⌉ = 25
    cyc, acts = vector_cost({"add": 1000, "div": 100, "exp": 10}, arch, sram_bytes=4096)
    assert cyc == 25
    assert acts.to_json() == {"vec_add": 1000.0, "vec_exp": 10.0, "vec_div": 100.0, "vec_sram_bytes": 4096.0}
    cyc32, _ = vector_cost({"add": 1000, "div": 100, "exp": 10}, load_arch("systolic32"))   # 32 lanes
    assert cyc32 == 49                                                                     # ⌈1560/32⌉
    assert vector_cost({}, arch) == (0, Actions())
    assert vector_cost({"sqrt": 0}, arch)[0] == 0


def test_priced_under_vector_energy():
    arch = load_arch("scnn")
    _, acts = vector_cost({"fma": 10, "sqrt": 2, "div": 1, "compare": 4}, arch, sram_bytes=64)
    e = price(acts, arch)
    # 10·4.6 + 2·27.7 + 1·20.3 + 4·0.9 = 46 + 55.4 + 20.3 + 3.6 = 125.3; 64 B = 8 × 64-bit global-buffer
    # accesses of the 1 MB buffer at 100 pJ = 800 pJ
    assert e.vector == pytest.approx(125.3 + 800.0)
    assert e.total == pytest.approx(e.vector)


def test_area_counts_the_lanes():
    assert area_breakdown_um2(load_arch("scnn"))["vector"] == pytest.approx(64 * 11_884.0)
    assert area_breakdown_um2(load_arch("systolic32"))["vector"] == pytest.approx(32 * 11_884.0)
    two = load_arch("scnn", {"vector.lanes_per_pe": 2, "vector.lane_um2": 100.0})
    assert area_breakdown_um2(two)["vector"] == pytest.approx(128 * 100.0)


def test_bad_input_names_the_field_or_op():
    with pytest.raises(ArchError, match=r"vector\.lanes_per_pe"):
        load_arch("scnn", {"vector.lanes_per_pe": 0})
    with pytest.raises(ArchError, match=r"vector\.compute_bits"):
        load_arch("scnn", {"vector.compute_bits": 8})
    with pytest.raises(ArchError, match=r"vector\.lane\b"):
        load_arch("scnn", {"vector.lane": 2})   # unknown field (a typo of lanes)
    arch = load_arch("scnn")
    with pytest.raises(ValueError, match=r"\['tanh'\] are not known; allowed: add, mul"):
        vector_cost({"tanh": 3}, arch)
    with pytest.raises(ValueError, match="allowed: counts >= 0"):
        vector_cost({"add": -1}, arch)
