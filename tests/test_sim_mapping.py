"""Mapping on planes smaller than the PE grid, bank-conflict model, first-layer backward-data, dense fallback.

Regression tests for three review findings (each fails on the code before the fix):
* a plane smaller than the grid used to go channel-parallel (one PE per Kc group: LeNet-5's
  conv2 ran on 2 of 256 PEs of a 16×16 array, 6× slower than on 8×8);
* the first layer's backward-data (δ of the network input) was simulated;
* run-length / bitmask tensors were never stored plain, so dense tensors cost more DRAM than dense.
Bank conflicts: the default queues (depth 4, 2·F·I banks) absorb the bursts; shallow queues do not.
"""

from __future__ import annotations

import numpy as np
import pytest
from _hwsim_fixtures import cartesian_arch

from hwsim.arch import load_arch
from hwsim.sim import banks, gemm, simulate, tiling, traffic, work
from hwsim.sim.replay import first_layer_input_grad
from hwsim.trace.synth import synthesize

LENET_LIKE = [  # LeNet-5 on 28² digits: conv2's 14² input and 10² output are smaller than a 16×16 grid
    {"name": "conv1", "C": 1, "K": 6, "H": 28, "W": 28, "R": 5, "S": 5, "padding": 2},
    {"name": "conv2", "C": 6, "K": 16, "H": 14, "W": 14, "R": 5, "S": 5},
    {"name": "fc1", "kind": "linear", "C": 400, "K": 120},
    {"name": "fc2", "kind": "linear", "C": 120, "K": 64},
]
WORK = ("compute", "fragmentation", "imbalance")


def _work_cycles(lp) -> int:
    cb = lp.sparse.cycle_breakdown
    return sum(getattr(cb, k) for k in WORK)


def _grid(n: int, **kw):
    return load_arch("scnn", {"pe_array.rows": n, "pe_array.cols": n, "memory.dram_bytes_per_cycle": float("inf"),
                              **kw})


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    return synthesize(tmp_path_factory.mktemp("map") / "lenet", layers=LENET_LIKE, batch=8, w_density=0.6,
                      a_density=0.5, dz_density=0.1, seed=1)


def test_planes_smaller_than_the_grid_use_the_array(lenet):
    r8, r16 = simulate(lenet, _grid(8)), simulate(lenet, _grid(16))
    for lp8 in r8.layers:
        lp16 = r16.layer(lp8.name, lp8.pass_name)
        # here every 16×16 mapping nests in the 8×8 one (module doc of gemm): never more work cycles
        assert _work_cycles(lp16) <= _work_cycles(lp8), (lp8.name, lp8.pass_name, _work_cycles(lp16),
                                                         _work_cycles(lp8))
        cb = lp16.sparse.cycle_breakdown
        assert cb.imbalance <= 4 * (cb.compute + cb.fragmentation) + 64, (lp8.name, lp8.pass_name, cb)
    assert r16.total("sparse").cycles < r8.total("sparse").cycles


def test_cluster_mapping_shapes():
    assert tiling.tile_grid(8, 8, 28, 28, groups=1, images=8, i=4, density=0.5) == (8, 8, 1)
    assert tiling.tile_grid(16, 16, 14, 14, groups=1, images=1, i=1) == (14, 14, 1)   # per-pixel work
    assert tiling.tile_grid(16, 16, 5, 5, groups=9, images=1, i=1) == (5, 5, 9)
    assert tiling.tile_grid(8, 8, 1, 1, groups=15, images=29, i=4) == (1, 1, 64)
    cyc = np.arange(3 * 4 * 2, dtype=np.int64).reshape(3, 4, 2) + 1     # (G=3, N=4, T=2)
    one = tiling._intervals(cyc, 1, 4)                                    # one group per interval, all images
    assert one.shape == (3, 4) and (one[:, :2] == cyc.sum(axis=1)).all() and not one[:, 2:].any()
    many = tiling._intervals(cyc, 6, 12)                                  # one round, each group on 2 image shares
    assert many.shape == (1, 12) and many.sum() == cyc.sum()
    assert many.max() == max(cyc[g, s].sum(axis=0).max() for g in range(3) for s in (slice(0, 2), slice(2, 4)))
    assert tiling._group_pes(3, 4, 2, 6).tolist() == [4, 4, 4]
    rr = tiling._intervals(cyc, 2, 4)                                     # rounds {0, 1}, {2 on 2 shares}
    assert rr.shape == (2, 4) and rr.sum() == cyc.sum()


@pytest.mark.parametrize("hw,stride,mode", [((5, 5), 1, "down"), ((12, 12), 2, "down"), ((6, 7), 1, "up"),
                                            ((1, 1), 1, "down")])
def test_doubling_the_grid_never_adds_work_when_the_mapping_nests(hw, stride, mode):
    rng = np.random.default_rng(7)
    x = rng.random((8, 6) + hw) < 0.4
    w = rng.random((32, 6, 3, 3) if hw != (1, 1) else (32, 6, 1, 1)) < 0.5
    pad = 1 if hw != (1, 1) else 0
    conv = work.ScatterConv(x=x, w=w, stride=(stride, stride), padding=(pad, pad), dilation=(1, 1), mode=mode)

    def barrier_sum(n: int) -> int:
        cw = gemm.scatter_work(conv, cartesian_arch(n, n), kc=8)
        return int(cw.mult_cycles.max(axis=1).sum())

    # 2→4→8 (planes ≥ grid or one cluster on the smaller grid); 1×1: 4, 16, 64 clusters over 4 groups × 8 images
    sums = [barrier_sum(n) for n in (2, 4, 8)]
    assert sums[0] >= sums[1] >= sums[2], sums


def test_weight_grad_on_small_planes_uses_the_array_and_reduces_partials():
    rng = np.random.default_rng(3)
    dz = rng.random((8, 16, 4, 4)) < 0.2
    a = rng.random((8, 6, 8, 8)) < 0.5
    op = work.PixelOuterProduct(dz=dz, a=a, groups=1, kernel=(5, 5), stride=(1, 1), padding=(0, 0), dilation=(1, 1))
    small = gemm.weight_grad_work(op, cartesian_arch(4, 4), kc=8)          # 32 × 32 = 1024 accumulator entries
    big = gemm.weight_grad_work(op, cartesian_arch(16, 16), kc=8)
    assert small.products == big.products
    assert big.mult_cycles.max(axis=1).sum() <= small.mult_cycles.max(axis=1).sum()
    # 16 PEs per group on 4×4, 16 clusters × 16 PEs over 2 groups on 16×16: more partial δW to reduce
    assert small.partial_sums == 2 * 15 * 8 * 6 * 25
    assert big.partial_sums == 2 * (8 * 16 - 1) * 8 * 6 * 25


def test_first_layer_has_no_backward_data(lenet, tmp_path):
    r = simulate(lenet, _grid(8))
    assert ("conv1", "backward_data") not in {(lp.name, lp.pass_name) for lp in r.layers}
    assert {lp.pass_name for lp in r.layers if lp.name == "conv2"} == {"forward", "backward_data", "backward_weight",
                                                                      "update"}
    assert r.run["first_layer_input_grad"] is False
    assert r.pass_total("backward_data", "sparse").cycles > 0
    again = type(r).from_json(r.to_json())                     # schema stays valid with the pass left out
    assert again.total("sparse").cycles == r.total("sparse").cycles
    # a slice of a network (first input = an activation) or meta saying so keeps it
    assert first_layer_input_grad({"first_layer_input_grad": True})
    assert first_layer_input_grad({"synthetic": {"dense_first_input": False}})
    assert not first_layer_input_grad({"method": "dither"})
    sl = synthesize(tmp_path / "slice", layers=LENET_LIKE[1:3], batch=2, dense_first_input=False)
    assert ("conv2", "backward_data") in {(lp.name, lp.pass_name) for lp in simulate(sl, _grid(8)).layers}


def test_compressed_tensors_fall_back_to_plain_values():
    for comp in ("run_length", "bitmask"):
        dense = traffic.tensor_bytes(nnz=1000, size=1000, value_bits=8, compression=comp, rl_bits=4)
        assert dense == 1000 + 1 / 8                           # plain values + the format flag
        sparse = traffic.tensor_bytes(nnz=100, size=1000, value_bits=8, compression=comp, rl_bits=4)
        assert sparse < 1000 / 2
    assert traffic.tensor_bytes(nnz=10, size=1000, value_bits=8, compression="none") == 1000


def test_compressed_variants_never_move_more_dram_than_dense(lenet):
    r = simulate(lenet, load_arch("scnn", {"memory.inter_layer_residency": False}))
    for lp in r.layers:  # every tensor in the cheaper format: at most one flag bit per tensor moved more
        for v in ("sparse", "dense_gated"):
            assert lp.variant(v).actions["dram_bytes"] <= lp.dense.actions["dram_bytes"] + 4 / 8, (lp.name, lp.pass_name)


# ----------------------------------------------------------------------------- bank conflicts


def _conv_units(kernel: int, depth: int, nbanks: int = 32) -> float:
    """Stall rate of a dense conv tile (all weights and activations non-zero) through the bank model."""
    rng = np.random.default_rng(0)
    x = np.ones((1, 4, 16, 16), bool)
    w = np.ones((8, 4, kernel, kernel), bool)
    p = kernel // 2
    conv = work.ScatterConv(x=x, w=w, stride=(1, 1), padding=(p, p), dilation=(1, 1), mode="down")
    cw = gemm.scatter_work(conv, cartesian_arch(2, 2), kc=8, rng=rng)
    return banks.stall_rate(cw.stall_units, f=4, i=4, banks=nbanks, depth=depth)


def test_bank_conflicts_substantial_without_queues_absorbed_by_default():
    # 3×3 dense conv: neighbouring taps × neighbouring pixels hit the same output (same bank) in one cycle
    assert _conv_units(3, depth=0) > 0.3
    assert _conv_units(3, depth=1) > 0.1
    assert _conv_units(3, depth=4) < 0.05                    # SCNN-like default: bursts ≤ 5 fit the queue
    assert _conv_units(3, depth=0, nbanks=8) > _conv_units(3, depth=0)
    # 1×1 kernel on an 8×8 tile: the row-major channel stride (64) is a multiple of the 32 banks, so the
    # F = 4 products of one activation share a bank: F − 1 stall cycles per cycle without a queue,
    # absorbed from depth F − 1 on (the next burst to that bank comes 8 cycles later)
    assert _conv_units(1, depth=0) == pytest.approx(3.0)
    assert _conv_units(1, depth=3) == 0.0


def test_bank_conflicts_reach_the_cycle_breakdown(lenet):
    shallow = simulate(lenet, _grid(8, **{"pe.bank_queue_depth": 0}))
    default = simulate(lenet, _grid(8))
    s = shallow.layer("conv1", "forward").sparse.cycle_breakdown
    d = default.layer("conv1", "forward").sparse.cycle_breakdown
    assert s.bank_conflict > 0.2 * (s.compute + s.fragmentation) and d.bank_conflict < s.bank_conflict / 5
    assert shallow.total("sparse").cycle_breakdown.bank_conflict > 0.1 * shallow.total("sparse").cycles


def test_mapping_estimate_never_grows_with_the_grid():
    for h, w, g, n, i, d in ((14, 14, 2, 29, 4, 0.5), (7, 7, 64, 1, 4, 0.5), (5, 5, 8, 8, 4, 0.02), (1, 1, 15, 29, 4, 1.0),
                             (28, 28, 1, 64, 4, 0.3), (10, 10, 2, 64, 1, 1.0)):
        costs = []
        for rows in (4, 8, 16, 32):
            tr, tc, _ = tiling.tile_grid(rows, rows, h, w, groups=g, images=n, i=i, density=d)
            costs.append(tiling.mapping_cost(rows, rows, h, w, tr, tc, groups=g, images=n, i=i, density=d))
        assert costs == sorted(costs, reverse=True), (h, w, g, n, costs)
    # SCNN's planar tiling for a large plane, channel-parallel for ResNet's 7×7 × 64 groups on 8×8
    assert tiling.tile_grid(8, 8, 56, 56, groups=8, images=1, i=4, density=0.5) == (8, 8, 1)
    assert tiling.tile_grid(8, 8, 7, 7, groups=64, images=1, i=4, density=0.5) == (1, 1, 64)
