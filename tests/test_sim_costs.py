"""Issue 10, training-only costs: δW cross-PE reduction (hand-computed) and accumulator capacity (Kc)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwsim.arch import load_arch
from hwsim.sim import capacity, passes, reduction, work
from hwsim.sim.capacity import AccumulatorOverflow
from hwsim.sim.replay import layer_operands, replay
from hwsim.trace.format import load
from hwsim.trace.synth import synthesize
from hwsim.trace.topology import LayerSpec

# 2×2 PEs, 24-bit accumulators (3-byte values), ring over 12 B/cycle links: rate = min(16 adders, 12/3) = 4
# values per cycle; unlimited DRAM so nothing but compute and the reduction shows.
SMALL = {"pe_array.rows": 2, "pe_array.cols": 2, "memory.dram_bytes_per_cycle": math.inf,
         "reduction.network": "ring", "reduction.adders_per_pe": 16, "reduction.link_bytes_per_cycle": 12.0,
         "reduction.link_pj_per_byte": 0.8, "reduction.global_bytes_per_cycle": 64.0}


@pytest.fixture(scope="module")
def conv_trace(tmp_path_factory):
    """One 3×3 conv, C=2 → K=8 on a 4×4 plane (padding 1): P×Q = 4×4 covers the 2×2 grid, so the four PEs
    form one cluster, Kc = 8 makes one group, and every PE holds Kc·C·R·S = 8·2·9 = 144 δW partial sums."""
    out = tmp_path_factory.mktemp("costs") / "conv"
    synthesize(out, layers=[LayerSpec(name="c", kind="conv2d", C=2, K=8, H=4, W=4, R=3, S=3, padding=1)],
               w_density=1.0, a_density=0.5, dz_density=0.3, batch=1, seed=0, dense_first_input=False)
    return load(out)


def _bwd_weight(trace, **over):
    arch = load_arch("scnn", {**SMALL, **over})
    (lp,) = replay(trace.sample(), arch, passes=("backward_weight",))
    return arch, lp


def test_reduction_cycles_and_energy_hand_computed(conv_trace):
    arch, lp = _bwd_weight(conv_trace)
    # ring reduce-scatter over P = 4 PEs: 3 steps of ⌈⌈144/4⌉ / 4⌉ = 9 cycles
    assert lp.sparse.cycle_breakdown.reduction == 27
    assert lp.dense.cycle_breakdown.reduction == 27          # same silicon, same dataflow
    adds = 3 * 144
    a = lp.sparse.actions
    assert (a["red_add"], a["red_acc"], a["red_link_bytes"]) == (adds, 2 * adds, 3 * adds)
    # 432 adds × 0.1 pJ (24-bit add → the 32-bit entry) + 864 accumulator accesses × 1.0 + 1,296 B × 0.8 pJ
    assert lp.sparse.energy_breakdown.reduction == pytest.approx(432 * 0.1 + 864 * 1.0 + 1296 * 0.8)
    assert lp.sparse.energy_breakdown.reduction == pytest.approx(1944.0)
    # the reduction adds to the pass: cycles = SimPy makespan + reduction, and the breakdown still sums
    cb = lp.sparse.cycle_breakdown
    assert lp.sparse.cycles == sum(cb.to_json().values())
    assert cb.reduction > 0 and lp.sparse.cycles >= cb.compute + cb.reduction
    # partial sums are additions, not multiplies: no multiply is booked for them any more
    assert a["mult"] == a["add"]


def test_reduction_networks_hand_computed(conv_trace):
    _, tree = _bwd_weight(conv_trace, **{"reduction.network": "tree"})
    assert tree.sparse.cycle_breakdown.reduction == 2 * 36          # ⌈log2 4⌉ levels × ⌈144 / 4⌉
    _, inplace = _bwd_weight(conv_trace, **{"reduction.network": "accumulate_in_place"})
    assert inplace.sparse.cycle_breakdown.reduction == 4 * 144 * 3 // 64   # 1,728 B through a 64 B/cycle port
    assert inplace.sparse.actions["red_sram_bytes"] == 2 * 4 * 144 * 3
    _, free = _bwd_weight(conv_trace, **{"reduction.link_bytes_per_cycle": math.inf})
    assert free.sparse.cycle_breakdown.reduction == 3 * math.ceil(36 / 16)  # adder-bound: 16 adds per cycle


def test_group_cycles_take_the_slowest_group_per_interval():
    cfg = load_arch("scnn").reduction  # ring, 16 adders, 16 B/cycle → 16/3 values per cycle
    vb = 3.0
    pes, vals = np.array([4, 4, 1, 8]), np.array([144, 72, 500, 64])
    c = reduction.group_cycles(pes, vals, cfg, vb)
    assert c.tolist() == [3 * math.ceil(36 / (16 / 3)), 3 * math.ceil(18 / (16 / 3)), 0, 7 * math.ceil(8 / (16 / 3))]
    assert reduction.interval_cycles(pes, vals, [0, 0, 1, 1], cfg, vb) == c[0] + c[3]


def test_forward_and_backward_data_reduce_only_output_halos(conv_trace):
    arch = load_arch("scnn", {**SMALL, "reduction.halo_exchange": False})
    for lp in replay(conv_trace.sample(), arch, passes=("forward", "backward_data")):
        assert lp.sparse.cycle_breakdown.reduction == 0 and lp.sparse.energy_breakdown.reduction == 0
    # with SCNN's halo exchange (hwsim/sim/halo.py, tests/test_sim_halo.py) the same silicon pays it in every variant
    for lp in replay(conv_trace.sample(), load_arch("scnn", SMALL), passes=("forward", "backward_data")):
        assert lp.sparse.cycle_breakdown.reduction == lp.dense.cycle_breakdown.reduction


# ----------------------------------------------------------------------------- accumulator capacity


def _plane_trace(tmp_path, h=16):
    synthesize(tmp_path / "p", layers=[LayerSpec(name="big", kind="conv2d", C=8, K=8, H=h, W=h, R=3, S=3, padding=1)],
               dz_density=0.3, batch=1, seed=0, dense_first_input=False)
    return load(tmp_path / "p")


def test_kc_is_sized_to_fit_the_accumulators(tmp_path):
    trace = _plane_trace(tmp_path)
    (s,) = trace.sample().values()
    ops = layer_operands(s, seed=0, out_density=1.0, where="t")
    # 16×16 plane on 2×2 PEs: 8×8 tiles; a 3×3 stride-1 kernel needs (8 + 2)² = 100 entries per channel
    roomy = load_arch("scnn", SMALL)                                                  # 32 × 32 = 1,024
    tight = load_arch("scnn", {**SMALL, "pe.accumulator_banks": 4, "pe.accumulator_bank_entries": 64})  # 256
    for pname in ("forward", "backward_data"):
        masks = passes._role_masks(ops, pname, roomy.zero_skip)
        assert capacity.group_kc(ops, pname, roomy, masks) == 8                       # min(8, 1024 // 100)
        assert capacity.group_kc(ops, pname, tight, masks) == 2                       # 256 // 100
        cw = passes._cartesian(ops, pname, tight, np.random.default_rng(0), masks, sample=False)
        assert cw.groups == 8 // 2
    masks = passes._role_masks(ops, "backward_weight", tight.zero_skip)
    assert capacity.group_kc(ops, "backward_weight", tight, masks) == 8               # 256 // 9 = 28, capped at 8
    tiny = load_arch("scnn", {**SMALL, "pe.accumulator_banks": 2, "pe.accumulator_bank_entries": 20})  # 40
    assert capacity.group_kc(ops, "backward_weight", tiny, masks) == 4                # 40 // 9


def test_scatter_entries_strided_and_transposed():
    x = np.ones((1, 1, 29, 29), bool)
    w = np.ones((4, 1, 11, 11), bool)
    down = work.ScatterConv(x=x, w=w, stride=(4, 4), padding=(0, 0), dilation=(1, 1), mode="down")
    assert capacity.scatter_entries(down, 1, 1) == (8 + 3) ** 2          # ⌈29/4⌉ + ⌈10/4⌉ per side
    up = work.ScatterConv(x=x, w=w, stride=(2, 2), padding=(0, 0), dilation=(1, 1), mode="up")
    assert capacity.scatter_entries(up, 1, 1) == (29 * 2 + 10) ** 2


def test_accumulator_overflow_names_layer_and_pass(tmp_path):
    trace = _plane_trace(tmp_path)
    # 100 entries per channel for forward / backward-data, 9 for backward-weight; capacity 64
    arch = load_arch("scnn", {**SMALL, "pe.accumulator_banks": 2, "pe.accumulator_bank_entries": 32})
    with pytest.raises(AccumulatorOverflow, match=r"layer 'big' pass forward: .*needs 100 accumulator entries.*"
                                                   r"2 × 32 = 64"):
        replay(trace.sample(), arch, passes=("forward",), training=False)
    (lp,) = replay(trace.sample(), arch, passes=("backward_weight",))   # 9 entries per channel fit
    assert lp.sparse.cycles > 0
    arch = load_arch("scnn", {**SMALL, "pe.accumulator_banks": 2, "pe.accumulator_bank_entries": 4})
    with pytest.raises(ValueError, match=r"layer 'big' pass backward_weight: .*needs 9 "):
        replay(trace.sample(), arch, passes=("backward_weight",))
