"""The cluster mapping of output-channel groups and images onto the PE grid (hwsim/sim/tiling.py), by hand: rounds
of up to ``clusters`` groups, a round's free clusters splitting each group's images into contiguous shares, the
barrier interval and PEs of each group, the per-interval cycles of every PE, and the structural cost that picks
a tiling. These decide how many cycles every barrier interval of a Cartesian pass takes."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.sim import tiling


def test_rounds_of_groups_and_image_shares():
    # 3 groups, 4 images, 2 clusters: round 0 takes groups 0–1 (one cluster each, all 4 images on it);
    # round 1 takes group 2 alone, its images split over both clusters
    assert tiling._rounds(3, 4, 2) == [(0, 2, 1), (2, 1, 2)]
    assert tiling.group_intervals(3, 4, 2).tolist() == [0, 0, 1]
    assert tiling._group_pes(3, 4, 2, 2).tolist() == [2, 2, 4]          # 2 PEs a cluster
    # one cluster (SCNN's planar mapping): one group per interval, all images
    assert tiling._rounds(2, 4, 1) == [(0, 1, 1), (1, 1, 1)]
    # more clusters than images: a group takes at most one share per image
    assert tiling._rounds(1, 2, 8) == [(0, 1, 2)]


@pytest.mark.parametrize("g,n,clusters,factor", [
    (3, 4, 2, 4 + 2),     # round 0: 4 images on one cluster; round 1: ⌈4/2⌉ = 2
    (1, 1, 4, 1),
    (8, 3, 1, 8 * 3),     # planar: every group runs every image
    (2, 6, 8, 2),         # 2 groups on 4 clusters each: shares of ⌈6/4⌉ = 2 images
])
def test_round_factor_is_the_sum_of_the_largest_image_share_per_round(g, n, clusters, factor):
    assert tiling._round_factor(g, n, clusters) == factor


def test_intervals_sum_each_pes_work_per_round():
    # cycles (group, image, tile) = 0..23; 2 clusters × 2 tiles = 4 PEs
    per = np.arange(24).reshape(3, 4, 2)
    got = tiling._intervals(per, 2, 4)
    # round 0: group 0 on PEs 0–1 (tile 0: 0 + 2 + 4 + 6 = 12, tile 1: 16), group 1 on PEs 2–3 (44, 48);
    # round 1: group 2, images 0–1 on PEs 0–1 (16 + 18 = 34, 36), images 2–3 on PEs 2–3 (42, 44)
    assert got.tolist() == [[12, 16, 44, 48], [34, 36, 42, 44]]
    # 5 images in 2 shares: 2 | 3 (contiguous, near-equal); unused PEs get 0
    five = tiling._intervals(np.arange(30).reshape(3, 5, 2), 2, 6)
    assert five[1].tolist() == [20 + 22, 21 + 23, 24 + 26 + 28, 25 + 27 + 29, 0, 0]
    assert tiling._intervals(np.zeros((0, 4, 2), np.int64), 2, 4).shape == (0, 4)


def test_mapping_cost_by_hand():
    # 6×6 plane in 2×2 tiles → 3·3 = 9 pixels a PE, 4 clusters; one group, one image: factor 1.
    # I = 4 lanes at density ½: 0.5·9/4 vectors + ½ vector of rounding when any pixel is non-zero (1 − 0.5⁹)
    assert tiling.mapping_cost(4, 4, 6, 6, 2, 2, groups=1, images=1, i=4, density=0.5) == pytest.approx(
        0.5 * 9 / 4 + 0.5 * (1 - 0.5 ** 9))
    # I = 1 (per-pixel work, backward-weight): d·px; a density above 1 counts as 1
    assert tiling.mapping_cost(4, 4, 6, 6, 2, 2, groups=1, images=1, i=1, density=1.7) == 9.0
    # 3 groups on the 4 clusters, 2 images: one round, shares of ⌈2 / min(4 // 3, 2)⌉ = 2 images
    assert tiling.mapping_cost(4, 4, 6, 6, 2, 2, groups=3, images=2, i=1, density=1.0) == 9.0 * 2


def test_small_plane_with_many_groups_goes_channel_parallel():
    # a 1×1 plane (a Linear's single pixel) cannot tile: every PE takes whole planes of its own groups
    assert tiling.tile_grid(4, 4, 1, 1, groups=16, i=4) == (1, 1, 16)
    # a plane at least the grid's size keeps SCNN's planar mapping
    assert tiling.tile_grid(4, 4, 6, 6, groups=16, i=4) == (4, 4, 1)


def test_equal_costs_prefer_more_pes_per_cluster():
    # a 2×2 plane, 4 groups, on 2×2 PEs: 1-pixel tiles (4 clusters, 1 round) cost 4 · 1, 2-pixel tiles (2 clusters,
    # 2 rounds) 2 · 2, the whole plane (1 cluster, 4 rounds) 1 · 4: a tie, won by the whole-plane tile
    assert tiling.tile_grid(2, 2, 2, 2, groups=4, i=1, min_balance=1.1) == (2, 2, 1)


def test_tilings_that_do_not_fit_are_skipped_unless_none_fits():
    # a 1×8 token row on a 1×4 grid (planar split forced off): 2-pixel tiles on the 4 PEs cost 2, 1-pixel tiles
    # on 4 clusters of one PE 8; when only 1-pixel tiles fit they win, when none fits the cheapest is kept
    assert tiling.tile_grid(1, 4, 1, 8, groups=1, i=1, min_balance=1.1) == (1, 4, 1)
    fits_one = lambda tr, tc: tr * tc <= 1  # noqa: E731
    assert tiling.tile_grid(1, 4, 1, 8, groups=1, i=1, fits=fits_one, min_balance=1.1) == (1, 1, 4)
    never = lambda tr, tc: False  # noqa: E731
    assert tiling.tile_grid(1, 4, 1, 8, groups=1, i=1, fits=never, min_balance=1.1) == (1, 4, 1)
