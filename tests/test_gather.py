"""The δz-driven gather dataflow (hwsim/sim/gather.py) and per-pass dataflows (hwsim/arch/dataflows.py).

Hand-computed cycles on tiny δz / activation / weight patterns (conv with and without padding, a Linear layer
through the whole replay), products equal to the effectual MACs, the contiguous balanced split, the reduction
of δW blocks cut across PEs, the YAML forms of ``dataflow:`` and their errors, and the gather unit's area.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hwsim.arch import ArchError, area_breakdown_um2, area_mm2, dense_variant, load_arch
from hwsim.sim import gather, work
from hwsim.sim.operands import Operands
from hwsim.sim.passes import _tensor_bytes, run_pass
from hwsim.sim.replay import replay
from hwsim.trace.schema import LayerGeometry, LayerSample

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "traces" / "samples" / "lenet5-digits-dither"
GEO = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1))

# ----------------------------------------------------------------------------- backward-weight, by hand
# One image, one input channel, a 3×3 activation mask and a 2×2 kernel (stride 1, no padding): P = Q = 2.
A = np.array([[1, 1, 0],
              [0, 1, 0],
              [1, 0, 1]], bool)[None, None]
# receptive fields (2×2 windows) hold 3, 2 / 2, 2 non-zero activations at output pixels (0,0), (0,1) / (1,0), (1,1)
DZ = np.zeros((1, 2, 2, 2), bool)
DZ[0, 0, 0, 0] = DZ[0, 0, 1, 1] = True   # output channel 0: pixels (0,0) and (1,1)
DZ[0, 1, 0, 1] = True                    # output channel 1: pixel (0,1)


def _wg(pes: int, lanes: int = 2, acc: int = 4) -> gather.GatherWork:
    return gather.weight_grad(DZ, A, groups=1, kernel=(2, 2), lanes=lanes, acc_entries=acc, pes=pes, **GEO)


def test_weight_grad_cycles_by_hand():
    # items in (k, chunk, n, p, q) order: k0·(0,0) 3 products → ⌈3/2⌉ = 2 cycles, k0·(1,1) 2 → 1, k1·(0,1) 2 → 1.
    # 2 PEs, 4 cycles: starts 0, 2, 3 → PE ⌊start·2/4⌋ = 0, 1, 1 → busy [2, 2]
    w = _wg(pes=2)
    assert w.products == 7 and w.items == 3
    assert w.busy.tolist() == [[2, 2]]
    # block k0 (one chunk: 1 channel · 2·2 taps = 4 values) is cut over PEs 0 and 1; block k1 is PE 1's alone
    assert w.block_pes.tolist() == [2] and w.block_values.tolist() == [4]
    # 3 PEs: PE ⌊start·3/4⌋ = 0, 1, 2 → busy [2, 1, 1]; one PE: everything, no block cut
    assert _wg(pes=3).busy.tolist() == [[2, 1, 1]]
    one = _wg(pes=1)
    assert one.busy.tolist() == [[4]] and one.block_pes.size == 0
    # 4 lanes: every item one cycle → 3 cycles over 2 PEs: starts 0, 1, 2 → PEs 0, 0, 1 → busy [2, 1], k0 owned by PE 0
    four = _wg(pes=2, lanes=4)
    assert four.busy.tolist() == [[2, 1]] and four.block_pes.size == 0


def test_weight_grad_equals_effectual_macs_on_random_masks():
    rng = np.random.default_rng(3)
    for groups, st, pd, dl in ((1, (1, 1), (2, 2), (1, 1)), (2, (2, 2), (1, 1), (1, 1)), (1, (2, 1), (0, 1), (2, 1))):
        n, c, k, h, w_, r, s = 3, 4, 6, 9, 8, 3, 3
        p = (h + 2 * pd[0] - dl[0] * (r - 1) - 1) // st[0] + 1
        q = (w_ + 2 * pd[1] - dl[1] * (s - 1) - 1) // st[1] + 1
        a, dz = rng.random((n, c, h, w_)) < 0.5, rng.random((n, k, p, q)) < 0.2
        w = work.expand_groups(rng.random((k, c // groups, r, s)) < 0.6, groups)
        geo = dict(stride=st, padding=pd, dilation=dl)
        wg = gather.weight_grad(dz, a, groups=groups, kernel=(r, s), lanes=16, acc_entries=20, pes=4, **geo)
        assert wg.products == work.effectual_macs_backward_weight(dz, a, groups=groups, kernel=(r, s), **geo)
        bd = gather.data_grad(w, dz, in_hw=(h, w_), lanes=16, pes=4, **geo)
        assert bd.products == work.effectual_macs_backward_data(w, dz, in_hw=(h, w_), **geo)


# ----------------------------------------------------------------------------- backward-data, by hand
def test_data_grad_cycles_by_hand():
    # W (K=2, C=2, 2×2): k0 has all 4 taps of c0 and tap (0,0) of c1 → 5 non-zeros; k1 has tap (1,1) of c1 → 1.
    w = np.zeros((2, 2, 2, 2), bool)
    w[0, 0] = True
    w[0, 1, 0, 0] = True
    w[1, 1, 1, 1] = True
    dz = np.zeros((1, 2, 2, 2), bool)             # 3×3 input, no padding: every tap of every pixel lands inside
    dz[0, 0, 0, 0] = dz[0, 1, 0, 0] = dz[0, 1, 1, 1] = True
    # items in (n, p, q, k) order: (0,0)k0 5 products → ⌈5/4⌉ = 2 cycles, (0,0)k1 1 → 1, (1,1)k1 1 → 1; 4 cycles
    # 3 PEs: starts 0, 2, 3 → PE ⌊start·3/4⌋ = 0, 1, 2 → busy [2, 1, 1]; 2 PEs: PEs 0, 1, 1 → [2, 2]
    bd = gather.data_grad(w, dz, in_hw=(3, 3), lanes=4, pes=3, **GEO)
    assert (bd.products, bd.items, bd.busy.tolist()) == (7, 3, [[2, 1, 1]])
    assert gather.data_grad(w, dz, in_hw=(3, 3), lanes=4, pes=2, **GEO).busy.tolist() == [[2, 2]]


def test_data_grad_skips_taps_outside_the_input():
    # one channel each side, dense 2×2 kernel, 2×2 input, padding 1: P = Q = 3. Output row p reaches input rows
    # p + r − 1: p = 0 only r = 1, p = 1 both, p = 2 only r = 0 → valid taps 1, 2, 1 per row (and per column)
    w = np.ones((1, 1, 2, 2), bool)
    dz = np.zeros((1, 1, 3, 3), bool)
    dz[0, 0, 0, 0] = dz[0, 0, 1, 1] = dz[0, 0, 2, 1] = True   # 1·1, 2·2, 1·2 = 1 + 4 + 2 products
    geo = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1))
    bd = gather.data_grad(w, dz, in_hw=(2, 2), lanes=2, pes=1, **geo)
    assert bd.products == 7 == work.effectual_macs_backward_data(w, dz, in_hw=(2, 2), **geo)
    assert bd.busy.tolist() == [[1 + 2 + 1]]


# ----------------------------------------------------------------------------- balance
def test_balanced_split_by_hand_and_its_bound():
    # costs 3, 1, 1, 1, 2 (total 8): starts 0, 3, 4, 5, 6
    assert gather.pe_cycles(np.array([3, 1, 1, 1, 2]), 2)[0].tolist() == [4, 4]   # PEs 0, 0, 1, 1, 1
    assert gather.pe_cycles(np.array([3, 1, 1, 1, 2]), 3)[0].tolist() == [3, 3, 2]  # PEs 0, 1, 1, 1, 2
    rng = np.random.default_rng(0)
    for pes in (1, 7, 64):
        costs = rng.integers(0, 12, size=5000)
        busy, pe = gather.pe_cycles(costs, pes)
        assert busy.sum() == costs.sum() and np.all(np.diff(pe) >= 0)          # contiguous runs, nothing lost
        assert busy.max() <= costs.sum() / pes + costs.max()                   # within one item of the mean
        assert busy.min() >= costs.sum() / pes - costs.max()


# ----------------------------------------------------------------------------- through run_pass and replay
def _tiny_arch(**extra):
    # 2 PEs of 1×2 multipliers (2 products per cycle), 4 accumulator entries, free DRAM
    return load_arch("training", {"pe_array.rows": 1, "pe_array.cols": 2, "pe.mult_f": 1, "pe.mult_i": 2,
                                  "pe.accumulator_banks": 4, "pe.accumulator_bank_entries": 1,
                                  "memory.dram_bytes_per_cycle": math.inf, **extra})


def _bw(arch, dz):
    w = np.ones((2, 1, 2, 2), bool)
    ops = Operands(name="conv", w=w, w_struct=w, a=A, dz=dz, dz_bits=2, groups=1, out_density=1.0, **GEO)
    return ops, run_pass(ops, "backward_weight", arch, rng=np.random.default_rng(0), macs_dense=2 * 4 * 4,
                         macs_effectual=int(gather.weight_grad(dz, A, groups=1, kernel=(2, 2), lanes=1, acc_entries=4,
                                                               pes=1, **GEO).products))


def test_lpt_by_hand():
    # 3, 3, 2, 2, 2 on 2 PEs, longest first onto the least loaded: 3|3, 5|3, 5|5, 7|5 (the best is 6|6)
    assert gather.lpt_cycles(np.array([2, 3, 2, 3, 2]), 2).tolist() == [7, 5]
    assert gather.lpt_cycles(np.array([0, 4, 1]), 3).tolist() == [4, 1, 0]


def test_cut_blocks_are_reduced_unless_whole_blocks_finish_no_later():
    # DZ: cut runs [2, 2] + the ring reduction of block k0 (4 values at 24 bits over 2 PEs:
    # (2 − 1)·⌈⌈4/2⌉ / min(16 adders, 16 B / 3 B)⌉ = 1 cycle) = 3; whole blocks k0 = 3, k1 = 1 by LPT: [3, 1] = 3
    # → no later: whole blocks, no reduction
    ops, t = _bw(_tiny_arch(), DZ)
    assert t.mult_cycles.tolist() == [[3, 1]] and t.reduction_cycles == 0 and not t.actions.red_add
    assert t.actions.mult == 7
    # only output channel 0, at all 4 pixels (2 + 1 + 1 + 1 cycles): cut runs [3, 2] + 1 reduction cycle = 4 beat the
    # one block on one PE (5)
    one = np.zeros_like(DZ)
    one[0, 0] = True
    _, t1 = _bw(_tiny_arch(), one)
    assert t1.mult_cycles.tolist() == [[3, 2]] and t1.reduction_cycles == 1 and t1.analytical == 3 + 1
    assert t1.actions.red_add == 4          # (P − 1) · values
    # a free reduction (accumulated in place through an unlimited global-buffer port): DZ's cut runs win, 0 cycles,
    # the reduction's adds still charged
    free = _tiny_arch(**{"reduction.network": "accumulate_in_place", "reduction.global_bytes_per_cycle": math.inf})
    _, tf = _bw(free, DZ)
    assert tf.mult_cycles.tolist() == [[2, 2]] and tf.reduction_cycles == 0 and tf.actions.red_add == 4
    # compactor + scatter crossbar per product; δ̃z read once; the 5 non-zero activations 7 times in all
    # (bytes × 7/5) plus 3 work items written and read at 4 B each
    a_bytes, dz_bytes, _ = _tensor_bytes(ops, "backward_weight", free, 1)
    assert tf.actions.xbar == 2 * 7 and tf.actions.sram_weight_bytes == dz_bytes
    assert tf.actions.sram_input_bytes == pytest.approx(a_bytes * 7 / 5 + 2 * 3 * 4)


def _linear_sample():
    # Linear, N = 2, C = 4, K = 2, dense W. a: example 0 inputs {0, 1, 2}, example 1 input {3};
    # δ̃z: example 0 outputs {0, 1}, example 1 output {0}
    g = LayerGeometry(name="fc", kind="linear", N=2, C=4, K=2)
    a = np.array([[1, 1, 1, 0], [0, 0, 0, 1]], bool)
    dz = np.array([[1, -1], [1, 0]])
    return {"fc": LayerSample(geometry=g, delta=0.1, dz_levels=dz, a_mask=a, w_mask=np.ones((2, 4), bool),
                              w_density=1.0)}


def test_linear_layer_through_replay_by_hand():
    arch = load_arch("training", {"pe_array.rows": 1, "pe_array.cols": 2, "pe.mult_f": 2, "pe.mult_i": 2,
                                  "memory.dram_bytes_per_cycle": math.inf})
    res = {(r.name, r.pass_name): r for r in replay(_linear_sample(), arch, first_input_grad=True, method="none")}
    bw, bd = res[("fc", "backward_weight")], res[("fc", "backward_data")]
    # backward-weight items (k, n): k0·ex0 3 products, k0·ex1 1, k1·ex0 3 → 1 cycle each at 4 lanes;
    # 2 PEs: PEs 0, 0, 1 → busy [2, 1]; block k0 stays on PE 0 and k1 on PE 1: no reduction
    assert (bw.macs_effectual, bw.sparse.macs) == (7, 7)
    cb = bw.sparse.cycle_breakdown
    assert (cb.compute, cb.fragmentation, cb.imbalance, cb.reduction, bw.sparse.cycles) == (1, 1, 0, 0, 2)
    # backward-data items (n, k): ex0·k0, ex0·k1, ex1·k0, each × the 4 weights of row k → 1 cycle; busy [2, 1]
    assert (bd.macs_effectual, bd.sparse.macs, bd.sparse.cycles) == (12, 12, 2)
    # the forward pass keeps the Cartesian product; the dense baseline gathers every δz × every operand:
    # backward-weight 4 items × ⌈4/4⌉ → busy [2, 2]
    assert bw.dense.cycles == 2 and dense_variant(arch).pass_dataflow("backward_weight") == "dz_gather"


def test_products_equal_effectual_macs_on_the_lenet5_sample():
    from hwsim.trace.format import load
    trace = load(SAMPLE)
    it, _ = trace.default_iteration()
    arch = load_arch("training", {"memory.dram_bytes_per_cycle": math.inf})
    layers = replay(trace.sample(it), arch, method=None)
    seen = 0
    for r in layers:
        if r.pass_name in ("backward_data", "backward_weight"):  # the gathered GEMMs (not the weight update)
            seen += 1
            assert r.sparse.actions.mult == r.macs_effectual == r.sparse.macs
    assert seen >= 8


# ----------------------------------------------------------------------------- dataflow: in YAML
PER_PASS = {"forward": "cartesian", "backward_data": "dz_gather", "backward_weight": "dz_gather"}


def test_dataflow_forms():
    scnn = load_arch("scnn")
    assert scnn.dataflow == "cartesian" and scnn.pass_dataflow("backward_weight") == "cartesian"
    same = load_arch("scnn", {"dataflow": dict.fromkeys(PER_PASS, "cartesian")})
    assert same.content_hash() == scnn.content_hash() and same.to_dict()["dataflow"] == "cartesian"
    t = load_arch("training")
    assert t.to_dict()["dataflow"] == PER_PASS and t.dataflow != "cartesian"
    assert [t.pass_dataflow(p) for p in PER_PASS] == list(PER_PASS.values())
    one = load_arch("scnn", {"dataflow.backward_weight": "dz_gather"})
    assert one.to_dict()["dataflow"] == {**dict.fromkeys(PER_PASS, "cartesian"), "backward_weight": "dz_gather"}
    assert str(load_arch("systolic32").dataflow) == "systolic_ws"


@pytest.mark.parametrize("value, message", [
    ({**PER_PASS, "forward": "dz_gather"}, "dataflow.forward: 'dz_gather' is not a known value; allowed: one of "
                                           "cartesian, systolic_ws, systolic_os"),
    ({"forward": "cartesian"}, "dataflow: missing key 'backward_data'; allowed: a mapping with exactly the keys"),
    ({**PER_PASS, "backwards": "x"}, "dataflow: unknown key 'backwards'"),
    ({"forward": "cartesian", "backward_data": "dz_gather", "backward_wieght": "dz_gather"},
     "dataflow: unknown key 'backward_wieght' (did you mean 'backward_weight'?)"),
    ({**PER_PASS, "forward": "systolic_ws"}, "mixes a systolic array with other dataflows"),
    ("row_stationary", "dataflow: 'row_stationary' is not a known value; allowed: one of cartesian, systolic_ws"),
    (3, "dataflow: must be a dataflow name or a mapping, got int"),
])
def test_dataflow_errors_name_file_and_field(value, message):
    with pytest.raises(ArchError) as e:
        load_arch("scnn", {"dataflow": value})
    assert message in str(e.value) and "scnn.yaml" in str(e.value)
    assert "\n" not in str(e.value)


def test_bit_serial_needs_cartesian_every_pass():
    with pytest.raises(ArchError, match="pe.mac: bit_serial with dataflow"):
        load_arch("scnn_bitserial", {"dataflow": PER_PASS})


def test_gather_unit_area_by_hand():
    t, s = area_breakdown_um2(load_arch("training")), area_breakdown_um2(load_arch("scnn"))
    # 64 PEs × 2 KB work queue at the small-SRAM 9,450 µm²/KB; 64 PEs × 16 lanes × 64 inputs × 8 bits × 1.862 µm²
    assert t["gather_queue"] == pytest.approx(64 * 2 * 9450.0)
    assert t["gather_compactor"] == pytest.approx(64 * 16 * 64 * 8 * 1.862)
    assert "gather_queue" not in s
    assert area_mm2(load_arch("training")) - area_mm2(load_arch("scnn")) == pytest.approx(
        (64 * 2 * 9450.0 + 64 * 16 * 64 * 8 * 1.862) / 1e6)


def test_periodic_cycles_by_hand():
    # 2, 0, 1 repeated twice (total 6) on 4 PEs: starts 0, 2, 2, 3, 5, 5 → PEs ⌊start·4/6⌋ = 0, 1, 1, 2, 3, 3
    assert gather.periodic_cycles([(np.array([2, 0, 1]), 2)], 4).tolist() == [2, 1, 2, 1]
    assert gather.pe_cycles(np.array([2, 0, 1, 2, 0, 1]), 4)[0].tolist() == [2, 1, 2, 1]
    # segments 2, 0, 1 | 0, 0 five times | 1 three times = 2, 0, 1, (zeros), 1, 1, 1 (total 6) on 2 PEs, split
    # at ⌈6/2⌉ = 3: starts 0, 2, 2, 3, 4, 5 → PEs 0, 0, 0, 1, 1, 1
    segs = [(np.array([2, 0, 1]), 1), (np.array([0, 0]), 5), (np.array([1]), 3)]
    assert gather.periodic_cycles(segs, 2).tolist() == [3, 3]
    rng = np.random.default_rng(4)
    for pes in (1, 5, 64):
        segs = [(rng.integers(0, 4, size=int(rng.integers(1, 9))), int(rng.integers(1, 6))) for _ in range(4)]
        flat = np.concatenate([np.tile(c, r) for c, r in segs])
        assert gather.periodic_cycles(segs, pes).tolist() == gather.pe_cycles(flat, pes)[0].tolist()


def test_unskipped_dz_counts_like_an_explicit_all_ones_mask():
    # the dense baseline streams δz as a broadcast all-ones view (no index arrays): same work as real ones
    rng = np.random.default_rng(5)
    n, c, k, h, w_, r, s = 3, 8, 6, 9, 8, 3, 3
    for groups, geo in ((1, dict(stride=(1, 1), padding=(2, 2), dilation=(1, 1))),
                        (2, dict(stride=(2, 2), padding=(1, 1), dilation=(1, 1)))):
        p = (h + 2 * geo["padding"][0] - (r - 1) - 1) // geo["stride"][0] + 1
        q = (w_ + 2 * geo["padding"][1] - (s - 1) - 1) // geo["stride"][1] + 1
        a = rng.random((n, c, h, w_)) < 0.5
        if groups > 1:
            a[:, : c // groups] = False   # the first group sees no activation at all: a period of zero cycles
        w = work.expand_groups(rng.random((k, c // groups, r, s)) < 0.6, groups)
        for acc in (20, 1024):   # 2 channels per δW block, or all of them
            x, y = (gather.weight_grad(d, a, groups=groups, kernel=(r, s), lanes=16, acc_entries=acc, pes=5, **geo)
                    for d in (work.ones_view((n, k, p, q)), np.ones((n, k, p, q), bool)))
            assert (x.products, x.items) == (y.products, y.items)
            for f in ("busy", "block_pes", "block_values", "owned_busy"):
                assert np.array_equal(getattr(x, f), getattr(y, f)), f
        x, y = (gather.data_grad(w, d, in_hw=(h, w_), lanes=16, pes=5, **geo)
                for d in (work.ones_view((n, k, p, q)), np.ones((n, k, p, q), bool)))
        assert (x.products, x.items, x.busy.tolist()) == (y.products, y.items, y.busy.tolist())


def test_no_nonzero_gradient_means_no_work():
    dz = np.zeros_like(DZ)
    w = _wg(pes=3)
    z = gather.weight_grad(dz, A, groups=1, kernel=(2, 2), lanes=2, acc_entries=4, pes=3, **GEO)
    assert (z.products, z.items, z.busy.tolist(), z.block_pes.size, z.owned_busy.tolist()) == (0, 0, [[0, 0, 0]], 0,
                                                                                                 [[0, 0, 0]])
    d = gather.data_grad(np.ones((2, 1, 2, 2), bool), dz, in_hw=(3, 3), lanes=2, pes=3, **GEO)
    assert (d.products, d.items, d.busy.tolist()) == (0, 0, [[0, 0, 0]]) and w.products == 7


def test_dense_fast_path_matches_the_item_by_item_split_on_random_layers():
    # random shapes, strides, paddings, groups, densities (0 included), lanes, accumulator sizes and PE counts
    rng = np.random.default_rng(11)
    for _ in range(120):
        g = int(rng.choice([1, 2, 3]))
        n, c, k = int(rng.integers(1, 4)), g * int(rng.integers(1, 4)), g * int(rng.integers(1, 4))
        h, w_, r, s = (int(x) for x in rng.integers((3, 3, 1, 1), (9, 9, 4, 4)))
        geo = dict(stride=tuple(int(x) for x in rng.integers(1, 3, 2)), padding=tuple(int(x) for x in rng.integers(0, 2, 2)),
                   dilation=(1, 1))
        p = (h + 2 * geo["padding"][0] - r) // geo["stride"][0] + 1
        q = (w_ + 2 * geo["padding"][1] - s) // geo["stride"][1] + 1
        dens = float(rng.choice([0.0, 0.05, 0.5, 1.0]))
        a = rng.random((n, c, h, w_)) < dens
        kw = dict(groups=g, kernel=(r, s), lanes=int(rng.choice([1, 2, 16])), pes=int(rng.choice([1, 3, 7, 64])),
                  acc_entries=int(rng.choice([r * s, 2 * r * s + 1, 1024])), **geo)
        x, y = (gather.weight_grad(d, a, **kw) for d in (work.ones_view((n, k, p, q)), np.ones((n, k, p, q), bool)))
        assert (x.products, x.items) == (y.products, y.items)
        for f in ("busy", "block_pes", "block_values", "owned_busy"):
            assert np.array_equal(getattr(x, f), getattr(y, f)), f
