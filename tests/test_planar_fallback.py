"""The mapper leaves SCNN's planar tiling when a plane divides badly over the PE grid (issue 18 item 1).

``pe_array.planar_min_balance`` (default 0.5): a plane that covers the grid keeps the planar split while its
mean tile ÷ largest tile is at least that; a 10×10 plane on 8×8 PEs (0.39) lets clustered and whole-plane
mappings compete (hwsim/sim/tiling.py). Hand-computed estimates and cycles.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.arch import ArchError, load_arch
from hwsim.sim import gemm, tiling, work


def test_planar_balance_by_hand():
    # 10 rows over 8 PE rows: 8 tiles of 1 or 2 rows → largest tile 2×2 = 4 pixels, mean 100/64
    assert tiling.planar_balance(8, 8, 10, 10) == 100 / 64 / 4
    assert tiling.planar_balance(8, 8, 13, 13) == 169 / 64 / 4      # AlexNet conv3–5: 0.66, stays planar
    assert tiling.planar_balance(8, 8, 16, 16) == 1.0


def test_a_10x10_plane_on_8x8_leaves_planar_tiling():
    kw = dict(groups=2, images=64, i=1)
    assert tiling.tile_grid(8, 8, 10, 10, **kw) == (8, 8, 1)                      # min_balance 0: SCNN's mapping
    assert tiling.tile_grid(8, 8, 10, 10, **kw, min_balance=0.39) == (8, 8, 1)    # 0.390625 ≥ 0.39
    # estimates (i = 1, density 1: pixels of the largest tile × Σ rounds of the largest image share):
    # planar 4 px × 2 groups × 64 images = 512; 2×2 tiles of 5×5 on 16 clusters: 25 × ⌈64 / (16 / 2)⌉ = 200;
    # whole plane per PE (1×1, 64 clusters): 100 × ⌈64 / 32⌉ = 200 (ties go to more PEs per cluster)
    assert tiling.tile_grid(8, 8, 10, 10, **kw, min_balance=0.5) == (2, 2, 16)
    assert tiling.mapping_cost(8, 8, 10, 10, 8, 8, **kw, density=1.0) == 512
    assert tiling.mapping_cost(8, 8, 10, 10, 2, 2, **kw, density=1.0) == 200
    assert tiling.tile_grid(8, 8, 13, 13, **kw, min_balance=0.5) == (8, 8, 1)    # 0.66: planar


def _dense_weight_grad(arch):
    # backward-weight of a dense 1×1 conv, C = K = 1, 64 images of 10×10: one product per output pixel
    op = work.PixelOuterProduct(dz=np.ones((64, 1, 10, 10), bool), a=np.ones((64, 1, 10, 10), bool), groups=1,
                                kernel=(1, 1), stride=(1, 1), padding=(0, 0), dilation=(1, 1))
    return gemm.weight_grad_counts(op, arch, kc=1).work.mult_cycles


def test_fallback_cycles_by_hand():
    # planar: the largest PE tile holds 2×2 pixels of all 64 images → 256 cycles at the one barrier (mean 100)
    planar = _dense_weight_grad(load_arch("scnn", {"pe_array.planar_min_balance": 0.0}))
    assert planar.max(axis=1).sum() == 4 * 64 and planar.sum() == 6400
    # fallback: 16 clusters of 2×2 PEs, each cluster 4 of the 64 images, each PE a 5×5 tile → 25 × 4 = 100
    fallback = _dense_weight_grad(load_arch("scnn"))
    assert fallback.max(axis=1).sum() == 100 and fallback.sum() == 6400


def test_field_is_validated_and_omitted_at_its_default():
    assert "planar_min_balance" not in load_arch("scnn").to_dict()["pe_array"]
    assert load_arch("scnn", {"pe_array.planar_min_balance": 0.0}).to_dict()["pe_array"]["planar_min_balance"] == 0.0
    with pytest.raises(ArchError, match=r"pe_array.planar_min_balance: 1.5 is out of range; allowed: number >= 0 "
                                        r"and <= 1"):
        load_arch("scnn", {"pe_array.planar_min_balance": 1.5})
