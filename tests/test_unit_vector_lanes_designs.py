"""The vector unit's lanes (Arch.vector_lanes) and the derived baselines' lanes (vector.baseline_lanes) on the
shipped systolic32, training and tensordash configs, by hand; the equal-area array is the largest that fits."""

from __future__ import annotations

import pytest

from hwsim.arch import (
    ArchError,
    area_breakdown_um2,
    area_mm2,
    dense_equal_area_variant,
    dense_gated_variant,
    dense_systolic_variant,
    dense_variant,
    load_arch,
)
from hwsim.arch.variants import equal_area_shape
from hwsim.arch.vector import LANE_UM2


@pytest.mark.parametrize(("name", "lanes"), [
    ("systolic32", 32),      # systolic: lanes_per_pe 1 × 32 PE columns (not × 1,024 PEs)
    ("systolic32_os", 32),   # the same array, output stationary
    ("training", 64),        # Cartesian: lanes_per_pe 1 × 8 × 8 PEs (not × 8 columns)
    ("tensordash", 32),      # systolic: lanes_per_pe 4 × 8 PE columns (not × 64 PEs = 256)
])
def test_shipped_vector_lanes_by_hand(name, lanes):
    arch = load_arch(name)
    assert arch.vector_lanes == lanes
    # every lane is one fp32 multiplier + one fp32 adder: 7,700 + 4,184 = 11,884 µm²
    assert LANE_UM2 == 11_884.0
    assert area_breakdown_um2(arch)["vector"] == pytest.approx(lanes * 11_884.0)


def test_a_total_lane_count_overrides_lanes_per_pe_on_a_systolic_array():
    assert load_arch("systolic32", {"vector.lanes_per_pe": 3}).vector_lanes == 96   # 3 × 32 columns
    assert load_arch("systolic32", {"vector.lanes": 5, "vector.lanes_per_pe": 3}).vector_lanes == 5
    # one more lane per column costs 32 lanes' area: 32 × 11,884 µm² = 0.380288 mm²
    assert area_mm2(load_arch("systolic32", {"vector.lanes_per_pe": 2})) - area_mm2(load_arch("systolic32")) == \
        pytest.approx(0.380288)


@pytest.mark.parametrize(("name", "lanes"), [("training", 64), ("tensordash", 32), ("systolic32", 32)])
def test_by_default_every_baseline_keeps_the_designs_lanes(name, lanes):
    arch = load_arch(name)
    assert arch.vector.baseline_lanes == "design"
    for variant in (dense_variant, dense_gated_variant, dense_systolic_variant, dense_equal_area_variant):
        assert variant(arch).vector_lanes == lanes, variant.__name__


def test_own_lanes_are_lanes_per_pe_per_column_of_the_baselines_own_array():
    tr = load_arch("training", {"vector.baseline_lanes": "own"})
    ds = dense_systolic_variant(tr)                    # 1,024 multipliers → 32 × 32
    assert (ds.pe_array.rows, ds.pe_array.cols, ds.vector_lanes) == (32, 32, 32)   # 1 × 32 columns
    ea = dense_equal_area_variant(tr)
    assert ea.vector_lanes == ea.pe_array.cols         # 1 lane per column of whatever fits
    td = load_arch("tensordash", {"vector.baseline_lanes": "own"})
    assert dense_systolic_variant(td).vector_lanes == 128                          # 4 × 32 columns
    ea = dense_equal_area_variant(td)
    assert ea.vector_lanes == 4 * ea.pe_array.cols
    # the same-silicon dense variant is the design's own array: its lanes either way
    assert dense_variant(tr).vector_lanes == 64 and dense_variant(td).vector_lanes == 32


def test_systolic32_is_its_own_equal_area_array_either_way():
    for lanes in ("design", "own"):
        arch = load_arch("systolic32", {"vector.baseline_lanes": lanes})
        assert equal_area_shape(arch) == (32, 32)
        assert area_mm2(dense_equal_area_variant(arch)) == pytest.approx(area_mm2(arch))


def _next(shape: tuple[int, int]) -> tuple[int, int]:
    """The next shape of the square-ish order 1×1, 1×2, 2×2, 2×3, …"""
    r, c = shape
    return (r, r + 1) if c == r else (c, c)


@pytest.mark.parametrize(("name", "lanes"), [("training", "design"), ("training", "own"),
                                             ("tensordash", "design"), ("tensordash", "own")])
def test_the_equal_area_array_is_the_largest_square_ish_one_that_fits(name, lanes):
    arch = load_arch(name, {"vector.baseline_lanes": lanes})
    ea = dense_equal_area_variant(arch)
    shape = (ea.pe_array.rows, ea.pe_array.cols)
    assert shape[1] in (shape[0], shape[0] + 1)
    assert area_mm2(ea) <= area_mm2(arch)
    bigger = load_arch(ea, {"pe_array.rows": _next(shape)[0], "pe_array.cols": _next(shape)[1]})
    assert area_mm2(bigger) > area_mm2(arch)          # one row or column more no longer fits
    if lanes == "own":                                # and the bigger array's own lanes grow with its columns
        assert bigger.vector_lanes == arch.vector.lanes_per_pe * _next(shape)[1]


def test_own_lanes_cost_area_so_the_equal_area_array_shrinks():
    """training: the design's 64 lanes are in c0 either way; with ``own`` every one of the m columns adds a lane
    (11,884 µm², about 28 PEs of 419 µm²), so the largest array that fits is smaller than with ``design``."""
    design = dense_equal_area_variant(load_arch("training"))
    own = dense_equal_area_variant(load_arch("training", {"vector.baseline_lanes": "own"}))
    assert own.pe_array.rows * own.pe_array.cols < design.pe_array.rows * design.pe_array.cols
    assert own.vector_lanes > design.vector_lanes == 64


def test_a_bad_baseline_lanes_value_is_one_line_naming_the_field():
    with pytest.raises(ArchError, match=r"vector\.baseline_lanes") as err:
        load_arch("training", {"vector.baseline_lanes": "mine"})
    assert "design" in str(err.value) and "own" in str(err.value) and "\n" not in str(err.value)


def test_own_lanes_ignore_the_designs_lane_total():
    """``baseline_lanes: own`` is lanes_per_pe per column of the baseline's own array (vector.py), also when the
    design sets its own total (``vector.lanes``): that total is the design's unit, not the baseline's."""
    arch = load_arch("training", {"vector.lanes": 10, "vector.lanes_per_pe": 2, "vector.baseline_lanes": "own"})
    assert arch.vector_lanes == 10
    assert dense_systolic_variant(arch).vector_lanes == 64          # 2 × 32 columns, not the design's 10
    ea = dense_equal_area_variant(arch)
    assert ea.vector_lanes == 2 * ea.pe_array.cols
    design = load_arch("training", {"vector.lanes": 10, "vector.lanes_per_pe": 2})
    assert dense_systolic_variant(design).vector_lanes == dense_equal_area_variant(design).vector_lanes == 10
