"""Unit test of hwsim.sim.gemm.scatter_counts' broadcast-operand SRAM reads: every output-channel group is the same
size, so the weights are read the *mean* number of PEs per group times, not the largest."""

from __future__ import annotations

import numpy as np
from _hwsim_fixtures import cartesian_arch

from hwsim.sim import gemm, work


def test_broadcast_reads_are_the_mean_pes_per_group_not_the_max():
    # 2×2 PE grid, 1×1 plane: the only tiling is 1×1 tiles, 4 clusters of 1 PE. Kc = 1 and K = 5 output
    # channels give 5 equal groups; 4 images. Round 1 holds 4 groups, one cluster (1 PE) each; round 2 holds the
    # 5th group alone, its 4 images over all 4 clusters (4 PEs). PEs per group: 1, 1, 1, 1, 4 — each reads its
    # group's weights once, so the weights are read (1 + 1 + 1 + 1 + 4) / 5 = 1.6 times (the max would be 4).
    x = np.ones((4, 2, 1, 1), dtype=bool)
    w = np.ones((5, 2, 1, 1), dtype=bool)
    conv = work.ScatterConv(x=x, w=w, stride=(1, 1), mode="down", padding=(0, 0), dilation=(1, 1))
    cw = gemm.scatter_counts(conv, cartesian_arch(2, 2), kc=1).work
    assert cw.groups == 5 and cw.stream_reads == 5.0
    assert abs(cw.broadcast_reads - 1.6) < 1e-12
    assert cw.mult_cycles.shape == (2, 4)  # two rounds (barrier intervals) × four PEs
