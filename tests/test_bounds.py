"""Bounds and baselines named for what they are (issue 17 item 5): MAC bound, roofline bound, dense @ 100 % of
the multipliers, and the equal-area dense baseline.

Hand-computed numbers on one tiny Linear layer, bounds ≤ variants on every layer-pass of every shipped
architecture (sample trace and a synthetic one), the equal-area array's area within one PE row/column step of
the sparse design's, JSON round-trip and older files.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from hwsim.arch import (
    area_mm2,
    dense_equal_area_variant,
    dense_systolic_variant,
    dense_variant,
    equal_area_shape,
    load_arch,
    shipped_arch_names,
)
from hwsim.arch.variants import _EQUAL_AREA_MEMORY, _systolic
from hwsim.results import BOUNDS, LABELS, LayerPassResult, SimResult
from hwsim.sim import bounds, replay
from hwsim.trace.schema import LayerGeometry, LayerSample

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "traces" / "samples" / "lenet5-digits-dither"

# --------------------------------------------------------------------------- hand-computed tiny case
# One Linear layer, N=2 examples, C=4 inputs, K=2 outputs, dense weights. a (N×C): example 0 has inputs 0,1,2,
# example 1 has input 3 (4 of 8 non-zero). δ̃z (N×K): example 0 has outputs 0,1; example 1 output 0 (3 of 4), levels ±1
# (2 bits: one MAC pass). Arch: one PE of 2×2 multipliers (4), bitmask compression, 2 DRAM bytes per cycle.
A = np.array([[1, 1, 1, 0], [0, 0, 0, 1]], bool)
DZ = np.array([[1, -1], [1, 0]])


def _tiny():
    g = LayerGeometry(name="fc", kind="linear", N=2, C=4, K=2)
    s = LayerSample(geometry=g, delta=0.1, dz_levels=DZ, a_mask=A, w_mask=np.ones((2, 4), bool), w_density=1.0)
    arch = load_arch("scnn", {"pe_array.rows": 1, "pe_array.cols": 1, "pe.mult_f": 2, "pe.mult_i": 2,
                              "pe.accumulator_banks": 8, "memory.compression": "bitmask",
                              "memory.dram_bytes_per_cycle": 2.0,
                              # the memory policies before issue 17 item 2: the stash and weights cross DRAM
                              "memory.stash": "dram", "memory.weights_resident": False})
    return s, arch


def test_tiny_case_bounds_by_hand():
    s, arch = _tiny()
    layers = {lp.pass_name: lp for lp in replay.replay({"fc": s}, arch, first_input_grad=True)}
    # effectual MACs: forward K·nnz(a) = 2·4 = 8; backward-data C·nnz(δz) = 4·3 = 12;
    # backward-weight Σ_n nnz(δz[n])·nnz(a[n]) = 2·3 + 1·1 = 7. 4 multipliers → ⌈8/4⌉, ⌈12/4⌉, ⌈7/4⌉.
    # The weight update (default SGD with momentum and weight decay) of 8 parameters: 6 lane cycles each
    # (2 mul, 1 compare, 3 fma) = 48 lane cycles; its bound is the variant with the most vector lanes — every
    # baseline keeps the design's one lane (vector.baseline_lanes: design) → 48.
    # The equal-area shape: the tiny PE is 4.3109 mm² with its 4,147,200 µm² global buffer and its one vector lane
    # (11,884 µm², kept by the baseline), so n × m systolic PEs (419 µm²) get 163,719 − 11,884 = 151,835 µm²:
    # 19 × 19 needs 151,259, 19 × 20 159,220.
    assert equal_area_shape(arch) == (19, 19)
    assert {p: lp.bound_cycles("mac_bound") for p, lp in layers.items()} == \
        {"forward": 2, "backward_data": 3, "backward_weight": 2, "update": 48}
    assert layers["update"].sparse.cycle_breakdown.vector == 48
    # dense @ 100 %: 16 MACs per pass / 4 multipliers; the update (no MACs): the vector unit at 100 %, 48
    assert {p: lp.bound_cycles("dense_full") for p, lp in layers.items()} == \
        {"forward": 4, "backward_data": 4, "backward_weight": 4, "update": 48}
    # with the baselines' own lanes (one per column) the equal-area array is 10 × 10 with 10 lanes: ⌈48 / 10⌉ = 5
    own = load_arch(arch, {"vector.baseline_lanes": "own"})
    assert equal_area_shape(own) == (10, 10)
    own_layers = {lp.pass_name: lp for lp in replay.replay({"fc": s}, own, first_input_grad=True)}
    assert own_layers["update"].bound_cycles("mac_bound") == 5
    # DRAM bytes, each tensor in min(plain, bitmask + 1/8-byte flag):
    #   a  (8 el., 4 nz): min(8, 1 + 4 + .125) = 5.125;  w (8 el., dense): min(8, 1 + 8 + .125) = 8
    #   δz (4 el., 3 nz): min(4, .5 + 3 + .125) = 3.625; forward out (4 el., density 1): min(4, .5 + 4 + .125) = 4
    #   δa (8 el., a's density .5): min(8, 1 + 4 + .125) = 5.125; δW: 8 weights × 24-bit accumulators = 24
    # forward a + w + out = 17.125 → ⌈8.5625⌉ = 9; backward-data δz + w + δa = 16.75 → ⌈8.375⌉ = 9;
    # backward-weight: δz stays on chip from backward-data (fits the PE's 10 KB), a + δW = 29.125 → ⌈14.5625⌉ = 15.
    # update: 8 parameters × (read δW 3 + W 4 + momentum 4, write W 4 + momentum 4 + int8 copy 1 = 20 B) = 160 → 80.
    ops = replay.layer_operands(s, seed=0, out_density=1.0, where="t")
    assert bounds.dram_bound_bytes(ops, "backward_weight", arch) == pytest.approx(5.125 + 3.625 + 24)  # nothing on chip
    assert {p: lp.dram_bound_cycles for p, lp in layers.items()} == \
        {"forward": 9, "backward_data": 9, "backward_weight": 15, "update": 80}
    assert {p: lp.bound_cycles("roofline") for p, lp in layers.items()} == \
        {"forward": 9, "backward_data": 9, "backward_weight": 15, "update": 80}
    # before issue 17 the floor wrote δW at 8 bits (8 bytes): a + δW = 13.125 → 7
    assert layers["backward_weight"].bandwidth_floor_cycles == 7
    r = SimResult(trace={}, arch={}, layers=tuple(layers.values()))
    assert (r.bound("mac_bound"), r.bound("roofline"), r.bound("dense_full")) == (7 + 48, 33 + 80, 12 + 48)
    assert r.bound("roofline", "backward_weight") == 15
    assert r.scope_cycles("backward", "roofline") == 24 and r.scope_cycles("backward", "mac_bound") == 5
    sparse = r.total("sparse").cycles
    assert r.speedup(baseline="roofline") == pytest.approx(113 / sparse)
    assert r.speedup(baseline="dense_full") == pytest.approx(60 / sparse)
    assert r.speedup("mac_bound") == pytest.approx(r.total("dense").cycles / 55)   # what "ideal" reported


def test_roofline_is_summed_per_layer_pass_not_max_of_sums():
    from hwsim.results import CycleBreakdown, VariantResult

    def lp(pass_name, ideal, dram, macs):
        return LayerPassResult(name="l", pass_name=pass_name, macs_dense=macs, macs_effectual=0, sparse=VariantResult(),
                               dense=VariantResult(multipliers=4), dense_gated=VariantResult(),
                               ideal=VariantResult(cycle_breakdown=CycleBreakdown(compute=ideal)),
                               dram_bound_cycles=dram)
    r = SimResult(trace={}, arch={}, layers=(lp("forward", 10, 2, 10), lp("backward_weight", 1, 8, 17)))
    # Σ max(10, 2) + max(1, 8) = 18, not max(Σ MAC = 11, Σ DRAM = 10) = 11; dense_full ⌈10/4⌉ + ⌈17/4⌉ = 3 + 5
    assert r.bound("roofline") == 18 and r.bound("mac_bound") == 11 and r.bound("dense_full") == 8
    assert r.bound("roofline", "backward_weight") == 8 and r.scope_cycles("iteration", "roofline", layer="l") == 18


def test_dz_is_counted_at_its_mac_passes():
    # a level of 300 needs 10 bits (sign + 9): two 8-bit MAC passes, so δ̃z moves at 16 bits:
    # min(4·2, .5 + 3·2 + .125) = 6.625; backward-data δz + w + δa = 6.625 + 8 + 5.125
    s, arch = _tiny()
    wide = dataclasses.replace(s, dz_levels=DZ * 300)
    ops = replay.layer_operands(wide, seed=0, out_density=1.0, where="t")
    assert bounds.dram_bound_bytes(ops, "backward_data", arch) == pytest.approx(6.625 + 8 + 5.125)


# --------------------------------------------------------------------------- bounds ≤ variants, every shipped arch
SAME_MULTIPLIERS = ("sparse", "dense", "dense_gated", "dense_systolic")
DENSE = ("dense", "dense_gated", "dense_systolic")


def _check_bounds(result, where: str) -> None:
    """Per layer-pass: the MAC bound and dense @ 100 % everywhere, the roofline of isolated layer-passes; in one
    schedule per iteration a layer-pass's DRAM traffic can hide behind its neighbour's compute, so the roofline
    there is max(Σ MAC bound, Σ DRAM bound) and a strict bound of the iteration only."""
    layers = result.layers
    assert layers
    per_layer = ("mac_bound",) if result.overlapped else ("mac_bound", "roofline")
    for v in SAME_MULTIPLIERS:
        assert result.scope_cycles("iteration", "roofline") <= result.scope_cycles("iteration", v), f"{where}: {v}"
    if result.overlapped:
        assert result.scope_cycles("iteration", "roofline") == max(
            sum(lp.ideal.cycles for lp in layers), sum(lp.dram_cycles() for lp in layers))
    for lp in layers:
        at = f"{where} {lp.name} {lp.pass_name}"
        for b in per_layer:  # bounds of the design's multipliers and its DRAM
            for v in SAME_MULTIPLIERS:
                assert lp.bound_cycles(b) <= lp.variant(v).cycles, f"{at}: {b} > {v}"
        for v in DENSE:  # no dense design of these multipliers beats 100 % of them
            assert lp.bound_cycles("dense_full") <= lp.variant(v).cycles, f"{at}: dense_full > {v}"
        assert lp.bound_cycles("mac_bound") <= lp.bound_cycles("roofline") and lp.dram_bound_cycles is not None
        ea = lp.dense_equal_area  # the equal-area array has its own multipliers: its own MAC floor
        assert ea.multipliers > 0 and ea.cycles >= -(-lp.macs_dense // ea.multipliers), at


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from hwsim.trace.synth import synthesize

    return synthesize(tmp_path_factory.mktemp("syn") / "lenet", model="lenet5", w_density=0.6, a_density=0.4,
                      dz_density=0.05, batch=2, seed=3)


@pytest.mark.parametrize("name", shipped_arch_names())
def test_bounds_below_every_variant_on_every_shipped_arch(name, synthetic):
    from hwsim.sim.replay import simulate_trace
    from hwsim.trace.format import load

    for sched in ("iteration", "isolated"):
        arch = load_arch(name, {"memory.schedule": sched})
        _check_bounds(simulate_trace(load(SAMPLE), arch), f"sample/{name}/{sched}")
        _check_bounds(simulate_trace(load(synthetic), arch), f"synthetic/{name}/{sched}")


# --------------------------------------------------------------------------- equal-area baseline


@pytest.mark.parametrize("name", shipped_arch_names())
def test_equal_area_array_is_within_one_row_or_column_step(name):
    arch = load_arch(name)
    ea = dense_equal_area_variant(arch)
    rows, cols = ea.pe_array.rows, ea.pe_array.cols
    assert (rows, cols) == equal_area_shape(arch) and cols in (rows, rows + 1)
    assert ea.is_systolic and not ea.zero_skip.any and ea.memory.residency_in_global_buffer
    assert ea.memory.global_buffer_bytes == arch.memory.global_buffer_bytes
    assert area_mm2(ea) <= area_mm2(arch) + 1e-12
    nxt = (rows, cols + 1) if cols == rows else (rows + 1, cols)  # the next square-ish shape
    assert area_mm2(_systolic(arch, "dense_equal_area", *nxt, extra=_EQUAL_AREA_MEMORY)) > area_mm2(arch)


@pytest.mark.parametrize("name", shipped_arch_names())
def test_a_reshaped_probe_is_the_array_loaded_at_that_shape(name):
    """The search loads one array (1 × 1) and reshapes it for every other probe and for the result: each is the arch
    loading that shape gives (fields, source, area to the last digit), for the design's lanes and its own."""
    from hwsim.arch.variants import _reshaped

    for arch in (load_arch(name), load_arch(name, {"vector.baseline_lanes": "own"})):
        base = _systolic(arch, "dense_equal_area", 1, 1, extra=_EQUAL_AREA_MEMORY)
        for r, c in ((1, 1), (2, 1), (1, 2), (7, 8), (214, 215)):
            loaded = _systolic(arch, "dense_equal_area", r, c, extra=_EQUAL_AREA_MEMORY)
            got = _reshaped(base, r, c)
            assert got == loaded and got.to_dict() == loaded.to_dict() and got.source == loaded.source
            assert area_mm2(got) == area_mm2(loaded)
        assert dense_equal_area_variant(arch) == _systolic(arch, "dense_equal_area", *equal_area_shape(arch),
                                                           extra=_EQUAL_AREA_MEMORY)


def test_the_search_loads_one_array(monkeypatch):
    from hwsim.arch import variants

    loads = []
    load = variants.load_arch
    monkeypatch.setattr(variants, "load_arch", lambda *a: loads.append(a[1]["pe_array.rows"]) or load(*a))
    ea = dense_equal_area_variant(load_arch("scnn"))
    assert loads == [1] and (ea.pe_array.rows, ea.pe_array.cols) == (214, 215)


def test_equal_area_of_scnn_by_hand():
    # scnn: 18.957 mm² before issue 18, + its bank queues (64 PEs × 32 banks × 4 entries × 21 bits = 21 KB ×
    # 28,350 µm²/KB = 0.5954 mm²) + 4 more crossbar outputs per bank (a bank takes depth + 1 = 5 products a cycle:
    # 4 × 64 × 16 × 32 × 16 bits × 1.862 µm² = 3.9049 mm²) + its vector unit (issue 17: 64 fp32 lanes × 11,884 µm²
    # = 0.7606 mm²) = 24.2179 mm². A systolic PE is one int8 multiplier (282 µm²) and one 24-bit adder (the 32-bit
    # entry, 137 µm²) = 419 µm²; the 1 MB global buffer is 1024 KB × 4050 µm²/KB = 4.1472 mm².
    # vector.baseline_lanes: design (default) — the baseline keeps scnn's 64 lanes (0.7606 mm², fixed): n × m fits
    # while n·m·419 ≤ (24.2179 − 4.1472 − 0.7606) mm² = 19,310,100 µm²: 214 × 215 gives 19,278,190; 215 × 215 needs
    # 19,368,275 (too much).
    arch = load_arch("scnn")
    assert area_mm2(arch) == pytest.approx(18.957 + 0.5954 + 3.9049 + 64 * 11_884e-6, abs=1e-3)
    assert equal_area_shape(arch) == (214, 215)
    ea = dense_equal_area_variant(arch)
    assert ea.vector_lanes == 64
    assert area_mm2(ea) == pytest.approx(4.1472 + 214 * 215 * 419e-6 + 64 * 11_884e-6)
    # baseline_lanes: own — one lane per column of the baseline's own array: n·m·419 + m·11,884 ≤ 20,070,676 µm²:
    # 205 × 205 gives 20,044,695; 205 × 206 needs 20,142,474 (too much).
    own = load_arch("scnn", {"vector.baseline_lanes": "own"})
    assert equal_area_shape(own) == (205, 205)
    assert dense_equal_area_variant(own).vector_lanes == 205
    assert area_mm2(dense_equal_area_variant(own)) == pytest.approx(4.1472 + 205 * 205 * 419e-6 + 205 * 11_884e-6)


def test_equal_multiplier_baseline_keeps_the_design_vector_unit():
    # scnn: 1,024 multipliers → a 32 × 32 systolic array; with the design's lanes it has scnn's 64, not 32
    assert dense_systolic_variant(load_arch("scnn")).vector_lanes == 64
    assert dense_systolic_variant(load_arch("scnn", {"vector.baseline_lanes": "own"})).vector_lanes == 32
    # the same-silicon dense baseline is the design's own array either way
    assert dense_variant(load_arch("scnn", {"vector.baseline_lanes": "own"})).vector_lanes == 64


# --------------------------------------------------------------------------- records


def test_labels_never_call_a_bound_ideal():
    assert LABELS["ideal"] == LABELS["mac_bound"] == "MAC bound"
    assert all("ideal" not in LABELS[k].lower() for k in (*BOUNDS, "ideal", "dense_equal_area"))


def test_json_round_trip_and_older_files():
    s, arch = _tiny()
    lp = next(x for x in replay.replay({"fc": s}, arch, first_input_grad=True) if x.pass_name == "backward_weight")
    d = json.loads(json.dumps(lp.to_json()))
    assert d["dram_bound_cycles"] == 15 and "dense_equal_area" in d
    assert LayerPassResult.from_json(d) == lp
    old = {k: v for k, v in d.items() if k not in ("dram_bound_cycles", "dense_equal_area")}
    back = LayerPassResult.from_json(old)
    assert back.dram_bound_cycles is None and back.dense_equal_area.cycles == 0
    assert back.bound_cycles("roofline") == max(back.ideal.cycles, back.bandwidth_floor_cycles)  # older: the floor
    assert "dram_bound_cycles" not in back.to_json()


def test_integrated_run_sums_the_memory_bounds():
    from hwsim.results.run import integrate

    s, arch = _tiny()
    r = SimResult(trace={}, arch={}, layers=tuple(replay.replay({"fc": s}, arch, first_input_grad=True)))
    whole = integrate([r, r], [3, 2])
    assert whole.bound("roofline") == 5 * r.bound("roofline")
    assert sum(lp.bandwidth_floor_cycles for lp in whole.layers) == 5 * r.bandwidth_floor()
    old = SimResult(trace={}, arch={}, layers=tuple(dataclasses.replace(lp, dram_bound_cycles=None)
                                                     for lp in r.layers))
    assert all(lp.dram_bound_cycles is None for lp in integrate([r, old], [1, 1]).layers)
