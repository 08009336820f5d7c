"""Bit-serial / Bit-Pragmatic / Bit Fusion cycle model (hwsim.sim.bitserial): bit math, grouping, invariants."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.arch import load_arch
from hwsim.sim import bitserial as bs
from hwsim.sim.bitserial import MacModel

F = I = 4  # noqa: E741 - SCNN's F×I multiplier array


def model(kind: str, mode: str = "magnitude", *, lanes: int = I, side: int = I, other: int = F,
          sign_cycle: bool = True) -> MacModel:
    return MacModel(kind=kind, mode=mode, widths=(2, 4, 8), mac_bits=8, lanes=lanes, side=side, other=other,
                    sign_cycle=sign_cycle)


KINDS = [("parallel", "magnitude"), ("bit_serial", "magnitude"), ("bit_serial", "essential_bits"),
         ("bit_fusion", "magnitude")]


def split_edges(n: int, parts: int) -> np.ndarray:
    return (np.arange(parts + 1) * n) // parts


def random_levels(rng, shape, density, max_level):
    mask = rng.random(shape) < density
    mag = rng.integers(1, max_level + 1, size=shape)
    sign = rng.choice([-1, 1], size=shape)
    return np.where(mask, mag * sign, 0).astype(np.int64)


def scatter(levels, nw, m: MacModel, *, tiles=(2, 3), skip=True):
    """Backward-data layout: levels (N, C, H, W) streamed over planar tiles, nw (G, C, 1) broadcast."""
    eh, ew = split_edges(levels.shape[2], tiles[0]), split_edges(levels.shape[3], tiles[1])
    h = bs.tile_histogram(m.classes(levels), row_edges=eh, col_edges=ew, lanes=m.lanes, skip_zeros=skip)
    return bs.scatter_cycles(nw, bs.stack_phases([h]), m), eh, ew


def tile_counts(mask, eh, ew):
    n, c = mask.shape[:2]
    out = np.zeros((n, c, len(eh) - 1, len(ew) - 1), dtype=np.int64)
    for i in range(len(eh) - 1):
        for j in range(len(ew) - 1):
            out[:, :, i, j] = mask[:, :, eh[i]:eh[i + 1], ew[j]:ew[j + 1]].sum(axis=(2, 3))
    return out.reshape(n, c, -1)


# ----------------------------------------------------------------------------- bit math


def test_bit_math():
    x = np.array([0, 1, -1, 2, -3, 4, 7, -8, 127, 128, -255, 256])
    assert bs.bit_length(x).tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 7, 8, 8, 9]
    assert bs.popcount(x).tolist() == [0, 1, 1, 1, 2, 1, 3, 1, 7, 1, 8, 1]
    assert bs.signed_width(x).tolist() == [0, 2, 2, 3, 3, 4, 4, 5, 8, 9, 9, 10]


def test_classes_per_kind():
    x = np.array([0, 1, -3, 5, 8, 127, 200])
    assert model("bit_serial").classes(x).tolist() == [0, 2, 3, 4, 5, 8, 9]              # sign + magnitude
    assert model("bit_serial", "essential_bits").classes(x).tolist() == [0, 2, 3, 3, 2, 8, 4]  # sign + popcount
    assert model("bit_serial", sign_cycle=False).classes(x).tolist() == [0, 1, 2, 3, 4, 7, 8]
    assert model("bit_serial", "essential_bits", sign_cycle=False).classes(x).tolist() == [0, 1, 2, 2, 1, 7, 3]
    assert model("bit_fusion").classes(x).tolist() == [0, 2, 4, 4, 8, 8, 16]   # signed width rounded up
    assert model("parallel").classes(x).tolist() == [0, 1, 1, 1, 1, 1, 2]      # 200 needs 9 bits: 2 passes


def test_group_terms():
    div, mult, bops = model("bit_fusion").group_terms(np.array([2, 4, 8, 16]))
    assert div.tolist() == [16, 8, 4, 4] and mult.tolist() == [1, 1, 1, 2]  # F × (8/ws) products per cycle
    assert bops.tolist() == [16, 32, 64, 128]                              # ws·wp bit-ops, 8×8 = 64
    div, mult, bops = model("bit_serial").group_terms(np.array([0, 1, 5]))
    assert div.tolist() == [32] * 3 and mult.tolist() == [1, 1, 5] and bops.tolist() == [8, 8, 40]
    assert model("parallel").bitops_per_cycle == model("bit_serial").bitops_per_cycle == 16 * 64
    # more serial values in lock-step leave fewer parallel lanes behind each (area stays F·I·mac_bits)
    assert model("bit_serial", lanes=32).group_terms(np.array([3]))[0].tolist() == [4]
    assert model("bit_serial", lanes=128).group_terms(np.array([3]))[0].tolist() == [1]
    assert model("bit_fusion", lanes=16).group_terms(np.array([2, 8]))[0].tolist() == [4, 1]


def test_mac_model_from_arch():
    m = bs.mac_model(load_arch("scnn_bitserial").pe, side=4, other=4)
    assert (m.kind, m.lanes, m.mac_bits) == ("bit_serial", 4, 8)
    assert bs.mac_model(load_arch("scnn", {"pe.serial_lanes": 8}).pe, side=4, other=4).lanes == 8
    with pytest.raises(ValueError, match="lanes"):
        MacModel(kind="bit_fusion", mode="magnitude", widths=(2, 4, 8), mac_bits=8, lanes=3, side=4, other=4)


# ----------------------------------------------------------------------------- grouping


def test_group_segments_by_hand():
    # segment 0: [1 3 2 1 | 1] → groups of max 3 and 1; segment 1 empty; segment 2: [5 2] → one group of 5
    h = bs.group_segments(np.array([1, 3, 2, 1, 1, 5, 2]), np.array([0, 0, 0, 0, 0, 2, 2]), nseg=3, lanes=4)
    assert h.classes.tolist() == [1, 3, 5]
    assert h.groups.tolist() == [[1, 0, 0], [1, 0, 0], [0, 0, 1]]
    assert h.members.tolist() == [[1, 0, 0], [4, 0, 0], [0, 0, 2]]


def test_tile_histogram_order_is_row_major_inside_a_tile():
    # one 2×4 plane split into two 2×2 tiles, lanes = 2 (groups of two consecutive streamed values).
    # Tile 0 is [[1, 1], [5, 5]]: row-major streams 1, 1 | 5, 5 → one group of class 1, one of class 5;
    # column-major would stream 1, 5 | 1, 5 → two groups of class 5 (and none of class 1).
    # Tile 1 is [[2, 3], [2, 3]]: row-major 2, 3 | 2, 3 → two class-3 groups; column-major 2, 2 | 3, 3 →
    # one class-2 and one class-3 group. A whole-row order (ignoring tiles) would mix the two tiles.
    cls = np.array([[[[1, 1, 2, 3], [5, 5, 2, 3]]]])
    h = bs.tile_histogram(cls, row_edges=np.array([0, 2]), col_edges=np.array([0, 2, 4]), lanes=2, skip_zeros=True)
    got = {int(c): h.groups[k, 0, 0].tolist() for k, c in enumerate(h.classes)}
    assert got == {1: [1, 0], 3: [0, 2], 5: [1, 0]}  # classes with no group are not listed
    mem = {int(c): h.members[k, 0, 0].tolist() for k, c in enumerate(h.classes)}
    assert mem == {1: [2, 0], 3: [0, 4], 5: [2, 0]}  # values carried by those groups


def test_zeros_are_packed_when_skipped_and_occupy_lanes_when_not():
    lv = np.zeros((1, 1, 4, 4), dtype=np.int64)
    lv[0, 0, 0, 0] = lv[0, 0, 3, 3] = 3
    m = model("bit_serial")
    nw = np.full((1, 1, 1), 4)
    (skip, _, _), _, _ = scatter(lv, nw, m, tiles=(1, 1), skip=True)
    (dense, _, _), _, _ = scatter(lv, nw, m, tiles=(1, 1), skip=False)
    assert skip.sum() == 3          # both non-zeros in one group of class 3 (sign + 2 bits)
    assert dense.sum() == 3 + 1 + 1 + 3  # 4 groups of 4 values: first and last hold a 3, the others zeros (1 issue)


# ----------------------------------------------------------------------------- parallel = SCNN's formula


def test_parallel_kind_reproduces_scnn_cartesian_cycles():
    rng = np.random.default_rng(0)
    lv = random_levels(rng, (2, 5, 9, 11), 0.3, 7)
    nw = rng.integers(0, 40, size=(3, 5, 1))
    (cyc, prod, bitops), eh, ew = scatter(lv, nw, model("parallel"))
    nx = tile_counts(lv != 0, eh, ew)                                      # (N, C, T)
    ref = np.einsum("gc,nct->gnt", np.ceil(nw[:, :, 0] / F), np.ceil(nx / I))
    assert np.array_equal(cyc, ref.astype(np.int64))
    assert np.array_equal(prod, np.einsum("gc,nct->gnt", nw[:, :, 0], nx)) and bitops == 64 * prod.sum()


def test_parallel_kind_reproduces_weight_grad_cycles():
    rng = np.random.default_rng(1)
    kc = 8
    lv = random_levels(rng, (2, 12, 5, 6), 0.25, 9)                       # δ̃z (N, K, P, Q), K not a multiple of Kc
    field = rng.integers(0, 30, size=(2, 3, 5, 6))                       # (N, chunks, P, Q)
    m = model("parallel", side=F, other=I, lanes=F)
    h = bs.channel_histogram(m.classes(lv), group=kc, lanes=m.lanes, skip_zeros=True)
    cyc, prod, _ = bs.pixel_cycles(field, h, m)
    xg = np.concatenate([(lv != 0), np.zeros((2, 4, 5, 6), bool)], axis=1).reshape(2, 2, kc, 5, 6).sum(axis=2)
    ref = np.ceil(xg / F) * np.ceil(field / I).sum(axis=1)[:, None]
    # 9 needs 5 signed bits: still one 8-bit pass
    assert np.array_equal(cyc, ref.astype(np.int64))
    assert np.array_equal(prod, xg * field.sum(axis=1)[:, None])


# ----------------------------------------------------------------------------- the invariants


def levels_with_magnitudes(mask, rng, lo, hi):
    mag = rng.integers(lo, hi + 1, size=mask.shape)
    return np.where(mask, mag * rng.choice([-1, 1], size=mask.shape), 0).astype(np.int64)


@pytest.mark.parametrize("kind,mode", KINDS[1:])
def test_all_ones_give_the_largest_gain(kind, mode):
    rng = np.random.default_rng(2)
    mask = rng.random((2, 6, 16, 16)) < 0.4
    nw = rng.integers(1, 73, size=(2, 6, 1))
    m, par = model(kind, mode), model("parallel")
    (base, _, _), _, _ = scatter(np.where(mask, 1, 0), nw, par)
    gains = {}
    for hi in (1, 3, 7, 15, 127):
        lv = levels_with_magnitudes(mask, rng, 1, hi)
        (cyc, _, _), _, _ = scatter(lv, nw, m)
        gains[hi] = base.sum() / cyc.sum()
    assert gains[1] == max(gains.values()) and gains[1] > 1.5, gains
    assert gains[1] <= 4                                                   # ±1: 2 of 8 bits / 2-bit bricks
    assert list(gains.values()) == sorted(gains.values(), reverse=True)   # wider levels never gain more


@pytest.mark.parametrize("kind,mode", KINDS[1:])
@pytest.mark.parametrize("skip", [True, False])
def test_levels_needing_8_bits_are_no_better_than_the_8bit_mac(kind, mode, skip):
    rng = np.random.default_rng(3)
    # Unskipped zeros would be groups of precision 0 (dynamic precision skips them): every level non-zero there.
    mask = rng.random((2, 5, 12, 10)) < (0.5 if skip else 2.0)
    nw = rng.integers(0, 90, size=(3, 5, 1))
    if mode == "magnitude":    # 8 bits = sign + 7 magnitude bits: |k| in 64..127
        lv = levels_with_magnitudes(mask, rng, 64, 127)
    else:                      # Pragmatic: 8 bits and all of them essential
        lv = np.where(mask, 127, 0) * rng.choice([-1, 1], size=mask.shape)
    (cyc, _, bops), _, _ = scatter(lv, nw, model(kind, mode), skip=skip)
    (base, prod, _), _, _ = scatter(lv, nw, model("parallel"), skip=skip)
    assert np.all(cyc >= base)                                             # per tile, not just in total
    assert bops >= 64 * prod.sum()


@pytest.mark.parametrize("kind,mode", KINDS)
@pytest.mark.parametrize("seed", range(4))
def test_never_faster_than_the_ideal(kind, mode, seed):
    rng = np.random.default_rng(seed)
    lv = random_levels(rng, (2, 4, 13, 7), rng.uniform(0.05, 0.9), int(rng.integers(1, 300)))
    nw = rng.integers(0, 50, size=(3, 4, 1))
    lanes = [4, 1, 2, 8, 16][seed] if kind != "bit_serial" or seed < 3 else [32, 128][seed - 3]
    m = model(kind, mode, lanes=lanes)
    (cyc, _, bops), eh, ew = scatter(lv, nw, m)
    # Ideal per tile: bit-ops of every product at its own class over one PE's bit-op capacity.
    vb = bs.value_bitops(m.classes(lv), m)
    per_tile = np.stack([vb[:, :, eh[i]:eh[i + 1], ew[j]:ew[j + 1]].sum(axis=(2, 3))
                         for i in range(len(eh) - 1) for j in range(len(ew) - 1)], axis=-1)  # (N, C, T)
    ideal = np.einsum("gc,nct->gnt", nw[:, :, 0], per_tile) / m.bitops_per_cycle
    assert np.all(cyc >= ideal - 1e-9)
    assert bops >= np.einsum("gc,nct->", nw[:, :, 0], per_tile)          # lock-step only adds bit-ops
    assert bs.ideal_cycles(float(ideal.sum() * m.bitops_per_cycle), pes=1, model=m) == pytest.approx(ideal.sum())


@pytest.mark.parametrize("kind,mode", KINDS)
def test_weight_grad_never_faster_than_the_ideal(kind, mode):
    rng = np.random.default_rng(5)
    lv = random_levels(rng, (2, 16, 6, 5), 0.3, 20)
    field = rng.integers(0, 40, size=(2, 2, 6, 5))
    m = model(kind, mode, side=F, other=I, lanes=F)
    cyc, _, _ = bs.pixel_cycles(field, bs.channel_histogram(m.classes(lv), group=8, lanes=F, skip_zeros=True), m)
    vb = bs.value_bitops(m.classes(lv), m).reshape(2, 2, 8, 6, 5).sum(axis=2)   # (N, G, P, Q)
    assert np.all(cyc >= vb * field.sum(axis=1)[:, None] / m.bitops_per_cycle - 1e-9)


def test_free_sign_is_the_optimistic_bound():
    rng = np.random.default_rng(8)
    mask = rng.random((2, 4, 16, 16)) < 0.5
    nw = rng.integers(1, 60, size=(2, 4, 1))
    ones = np.where(mask, 1, 0)
    (base, _, _), _, _ = scatter(ones, nw, model("parallel"))
    (two, _, _), _, _ = scatter(ones, nw, model("bit_serial"))
    (one, _, _), _, _ = scatter(ones, nw, model("bit_serial", sign_cycle=False))
    assert np.array_equal(two, 2 * one) and base.sum() / one.sum() <= 8


def test_essential_bits_never_slower_than_magnitude():
    rng = np.random.default_rng(6)
    lv = random_levels(rng, (2, 4, 16, 16), 0.3, 31)
    nw = rng.integers(1, 60, size=(2, 4, 1))
    (mag, _, _), _, _ = scatter(lv, nw, model("bit_serial", "magnitude"))
    (ess, _, _), _, _ = scatter(lv, nw, model("bit_serial", "essential_bits"))
    assert np.all(ess <= mag) and ess.sum() < mag.sum()


def test_vectorised_on_a_large_tensor():
    import time
    rng = np.random.default_rng(7)
    lv = random_levels(rng, (32, 64, 32, 32), 0.1, 15)                   # 2M values
    nw = rng.integers(0, 72, size=(8, 64, 1))
    t = time.perf_counter()
    scatter(lv, nw, model("bit_serial"), tiles=(8, 8))
    assert time.perf_counter() - t < 5.0
