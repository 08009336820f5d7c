"""More tests of hwsim.sim.work.field_sums' narrow integers (the int16 / int32 / int64 boundaries, where one wrong
comparison wraps a sum around) and of hwsim.sim.tiling's remembered candidates (AccumulatorFit by hand with
stride and dilation; what is remembered and what is asked again). Hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.sim import tiling, work

PAIR = dict(out_hw=(1, 2), kernel=(1, 2), stride=(1, 1), padding=(0, 0), dilation=(1, 1))  # two taps a pixel


@pytest.mark.parametrize("vmax,want", [
    (16_383, 32_766),          # bound 32,766 < 2^15: int16 holds the sum
    (16_384, 32_768),          # bound 2^15: int16 would wrap to −32,768, so int32
    (2**30 - 1, 2**31 - 2),    # int32 holds it
    (2**30, 2**31),            # bound 2^31: int32 would wrap, so int64
])
def test_field_sums_at_the_narrow_integer_boundaries(vmax, want):
    x = np.full((1, 1, 1, 3), vmax, dtype=np.int64)
    got = work.field_sums(x, vmax=vmax, **PAIR)
    assert got.dtype == np.int64
    assert got[0, 0, 0].tolist() == [want, want]


def test_field_sums_without_vmax_run_in_int64():
    x = np.full((1, 1, 1, 3), 2**40, dtype=np.int64)
    assert work.field_sums(x, **PAIR)[0, 0, 0].tolist() == [2**41, 2**41]


def test_field_sums_of_a_bool_mask_count_the_taps_with_padding():
    x = np.ones((2, 1, 2, 2), dtype=bool)
    # 3×3 kernel, padding 1 on a 2×2 plane: every output pixel's field covers all four pixels
    got = work.field_sums(x, out_hw=(2, 2), kernel=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1))
    assert got.dtype == np.int64 and got.tolist() == [[[[4, 4], [4, 4]]]] * 2


def test_field_sums_one_tap_over_the_whole_plane_is_the_plane():
    x = np.array([[[[True, False], [False, True]]]])
    got = work.field_sums(x, out_hw=(2, 2), kernel=(1, 1), stride=(1, 1), padding=(0, 0), dilation=(1, 1))
    assert got.dtype == np.int64 and got[0, 0].tolist() == [[1, 0], [0, 1]]


def test_field_sums_stride_larger_than_the_kernel_skips_pixels():
    x = np.arange(16, dtype=np.int64).reshape(1, 1, 4, 4)
    # 1×1 kernel, stride 3: outputs read pixels (0, 0), (0, 3), (3, 0), (3, 3)
    got = work.field_sums(x, out_hw=(2, 2), kernel=(1, 1), stride=(3, 3), padding=(0, 0), dilation=(1, 1), vmax=15)
    assert got[0, 0].tolist() == [[0, 3], [12, 15]]


def _conv(h: int, w: int, *, kernel=(3, 3), stride=(1, 1), dilation=(1, 1), mode="down") -> work.ScatterConv:  # noqa: ANN001
    return work.ScatterConv(x=np.zeros((1, 1, h, w), bool), w=np.zeros((1, 1, *kernel), bool), stride=stride,
                            padding=(0, 0), dilation=dilation, mode=mode)


def test_accumulator_fit_with_stride_and_dilation_by_hand():
    # down, a 9×7 plane on 2×2 tiles: 5×4 pixels a tile; stride 2 → ⌈5/2⌉ = 3 rows, ⌈4/2⌉ = 2 cols; a 3×3 kernel at
    # dilation 2 spans (3 − 1)·2 = 4 more input rows → ⌈4/2⌉ = 2 more outputs: (3 + 2)·(2 + 2) = 20
    fit = tiling.AccumulatorFit.of(_conv(9, 7, stride=(2, 2), dilation=(2, 2)), 20)
    assert fit.entries(2, 2) == 20 and fit(2, 2)
    assert not tiling.AccumulatorFit.of(_conv(9, 7, stride=(2, 2), dilation=(2, 2)), 19)(2, 2)
    # up, stride (2, 1), dilation (1, 3), 1×2 kernel: (5·2 + 0)·(4·1 + 1·3) = 70
    up = tiling.AccumulatorFit.of(_conv(9, 7, kernel=(1, 2), stride=(2, 1), dilation=(1, 3), mode="up"), 70)
    assert up.entries(2, 2) == 70 and up(2, 2)
    # down, 2×2 kernel, stride 2: the kernel's one extra row is ⌈1/2⌉ = 1 more output, not 0: (3 + 1)·(2 + 1) = 12
    assert tiling.AccumulatorFit.of(_conv(9, 7, kernel=(2, 2), stride=(2, 2)), 0).entries(2, 2) == 12
    # one tile of the whole plane, 1×1 kernel, stride 1: the plane itself
    assert tiling.AccumulatorFit.of(_conv(9, 7, kernel=(1, 1)), 0).entries(1, 1) == 63


def test_accumulator_fits_of_the_same_shape_are_equal_values():
    a = tiling.AccumulatorFit.of(_conv(8, 8), 50)
    assert a == tiling.AccumulatorFit.of(_conv(8, 8), 50) and hash(a) == hash(tiling.AccumulatorFit.of(_conv(8, 8), 50))
    assert a != tiling.AccumulatorFit.of(_conv(8, 8), 51)
    assert a != tiling.AccumulatorFit.of(_conv(8, 8, mode="up"), 50)


def test_candidates_are_remembered_for_fits_values_and_asked_again_for_other_callables(monkeypatch):
    monkeypatch.setattr(tiling, "_CANDIDATES", {})  # a fresh memo, the module's restored afterwards
    monkeypatch.setattr(tiling, "_KEPT", 0)
    fit = tiling.AccumulatorFit.of(_conv(5, 4), 12)
    first = tiling._candidates(2, 3, 5, 4, 1, 1, fit)
    assert tiling._candidates(2, 3, 5, 4, 1, 1, fit) is first  # the same list: remembered
    assert tiling._KEPT == 6 == len(first)  # tr ∈ 1..2, tc ∈ 1..3
    # (tr, tc, pixels a tile, round factor, fits): tr = 2, tc = 3 → 3×2 pixels, (3 + 2)·(2 + 2) = 20 > 12
    by_tile = {(c[0], c[1]): (c[2], c[4]) for c in first}
    assert by_tile[(2, 3)] == (6, False)
    assert by_tile[(1, 1)] == (20, False)  # (5 + 2)·(4 + 2) = 42 entries
    calls = []

    def ask(tr: int, tc: int) -> bool:
        calls.append((tr, tc))
        return tr == 1

    tiling._candidates(2, 3, 5, 4, 1, 1, ask)
    tiling._candidates(2, 3, 5, 4, 1, 1, ask)
    assert len(calls) == 12  # asked for each of the 6 candidates on both calls
    assert tiling._KEPT == 6  # and not remembered


def test_without_fits_every_candidate_is_marked_not_fitting(monkeypatch):
    monkeypatch.setattr(tiling, "_CANDIDATES", {})
    monkeypatch.setattr(tiling, "_KEPT", 0)
    out = tiling._candidates(3, 1, 2, 9, 1, 1, None)
    assert [(c[0], c[1], c[2]) for c in out] == [(1, 1, 18), (2, 1, 9)]  # tr ≤ min(3, 2); tc ≤ min(1, 9)
    assert not any(c[4] for c in out)
