"""Issue 18 item 4: the NSD unit as a design space (hwsim.sim.nsd_unit, hwsim.sim.dz_zeros, hwsim.sim.charges).

Every expected number is computed by hand from arch_configs/scnn.yaml's fields (64 PEs, 1 lane each, 24-bit
accumulators, 10 KB output RAM per PE, 16 B/cycle DRAM): one pass over e elements = ⌈e / 64⌉ cycles."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from hwsim.arch import ArchError, load_arch
from hwsim.results.actions import Actions
from hwsim.sim import dz_zeros, energy, nsd_unit
from hwsim.sim.replay import replay
from hwsim.trace.schema import LayerGeometry, LayerSample

YAML = yaml.safe_load((Path(__file__).resolve().parents[1] / "arch_configs" / "scnn.yaml").read_text())
NO_SPILL = {"quantizer.check_capacity": False}


def _arch(**q):
    return load_arch("scnn", {f"quantizer.{k}": v for k, v in q.items()})


def test_scnn_fields_this_file_computes_from():
    assert YAML["pe_array"]["rows"] * YAML["pe_array"]["cols"] * YAML["quantizer"]["lanes_per_pe"] == 64
    assert (YAML["pe"]["accumulator_bits"], YAML["pe"]["output_buffer_bytes"]) == (24, 10240)
    assert YAML["memory"]["dram_bytes_per_cycle"] == 16.0
    q = YAML["quantizer"]
    assert (q["sigma"], q["overlap"], q["booked_on"], q["skip_zeros"], q["check_capacity"]) == \
        ("current", "producer", "first_consumer", True, True)


# ----------------------------------------------------------------------------- one pass vs two passes


def test_sigma_current_is_two_passes_delayed_is_one_with_the_same_op_counts():
    cur = nsd_unit.nsd_cost(1000, _arch(sigma="current"))         # ⌈1000/64⌉ = 16 cycles a pass
    assert (cur.std_cycles, cur.quantize_cycles, cur.exposed_cycles) == (16, 16, 32)
    assert cur.actions == Actions(nsd_std=1000, nsd_rng=1000, nsd_quantize=1000, nsd_sram_bytes=2 * 1000 * 3.0)
    dly = nsd_unit.nsd_cost(1000, _arch(sigma="delayed"))
    assert (dly.std_cycles, dly.quantize_cycles, dly.exposed_cycles) == (0, 16, 16)
    # σ for the next iteration is still accumulated (nsd_std counted); the δz is read once, not twice
    assert dly.actions == Actions(nsd_std=1000, nsd_rng=1000, nsd_quantize=1000, nsd_sram_bytes=1000 * 3.0)
    assert energy.price(cur.actions, _arch()).nsd - energy.price(dly.actions, _arch()).nsd == \
        pytest.approx(1000 * 3 / 8 * YAML["energy"]["sram_medium_pj_per_64b"])


# ----------------------------------------------------------------------------- overlap with the producer of δa


@pytest.mark.parametrize(("sigma", "producer", "hidden", "exposed", "sram_reads"), [
    ("current", 10, 10, 16 - 10 + 16, 1),     # the std pass streams behind the producer: 10 of its 16 hide
    ("current", 100, 16, 16, 1),              # all of the std pass hides; the quantize pass never does
    ("delayed", 10, 10, 6, 0),                # the one pass streams: only what exceeds the producer shows
    ("delayed", 100, 16, 0, 0),
])
def test_overlap_hides_the_first_pass_behind_the_producer(sigma, producer, hidden, exposed, sram_reads):
    c = nsd_unit.nsd_cost(1000, _arch(sigma=sigma), producer_cycles=producer)
    assert (c.hidden_cycles, c.exposed_cycles) == (hidden, exposed)
    assert c.actions["nsd_sram_bytes"] == sram_reads * 1000 * 3.0   # a streamed pass does not read the RAM
    none = nsd_unit.nsd_cost(1000, _arch(sigma=sigma, overlap="none"), producer_cycles=producer)
    assert none.hidden_cycles == 0 and none.exposed_cycles == (32 if sigma == "current" else 16)


def test_no_producer_gemm_nothing_hides():
    assert nsd_unit.nsd_cost(1000, _arch()).exposed_cycles == 32            # δz of the last layer: the loss
    assert nsd_unit.layer_cost(1000, 1, _arch(sigma="delayed"), "dither", producer_cycles=0)[0] == 16


# ----------------------------------------------------------------------------- booking


G2 = {"a": LayerGeometry(name="a", kind="linear", N=2, C=3, K=64),      # δz 128 elements: 2 cycles a pass
      "b": LayerGeometry(name="b", kind="linear", N=2, C=64, K=10)}     # δz 20 elements: 1 cycle a pass
CYC = {("a", "forward"): 50, ("b", "forward"): 40, ("b", "backward_data"): 1, ("b", "backward_weight"): 30,
       ("a", "backward_weight"): 60}


def test_booked_on_the_first_consumer_with_the_producer_above():
    got = nsd_unit.book(CYC, G2, _arch(), method="dither")
    # b (last layer): its first δ̃z consumer is its backward-data; no producer GEMM → 1 + 1 cycles
    # a (first layer, no backward-data): backward-weight; producer = b's backward-data (1 cycle) hides 1 of 2
    assert {k: c for k, (c, _) in got.items()} == {("b", "backward_data"): 2, ("a", "backward_weight"): 2 - 1 + 2}
    assert got[("a", "backward_weight")][1]["nsd_std"] == 128 and got[("b", "backward_data")][1]["nsd_std"] == 20
    old = nsd_unit.book(CYC, G2, _arch(booked_on="backward_weight", overlap="none"), method="dither")
    assert {k: c for k, (c, _) in old.items()} == {("b", "backward_weight"): 2, ("a", "backward_weight"): 4}
    only_bd = {k: v for k, v in CYC.items() if k != ("b", "backward_weight")}
    assert ("b", "backward_weight") not in nsd_unit.book(only_bd, G2, _arch(booked_on="backward_weight"),
                                                           method="dither")


def test_booked_through_replay_by_hand():
    samples = _two_layer_samples(inside=20)
    res = replay(samples, load_arch(_arch(), {"memory.dram_bytes_per_cycle": math.inf}), method="dither")
    by = {(lp.name, lp.pass_name): lp.sparse.cycle_breakdown.nsd for lp in res}
    bd2 = next(lp.sparse for lp in res if (lp.name, lp.pass_name) == ("f2", "backward_data"))
    assert bd2.cycles - bd2.cycle_breakdown.nsd >= 1                         # f2's backward-data: f1's producer
    # f2 (last): δz of 10 elements, no producer: std 1 + quantize 1, on its backward-data
    # f1 (no backward-data): 64 non-zeros of 128 (f2's input mask): 1 cycle a pass, the std pass hidden → 1
    assert {k: v for k, v in by.items() if v} == {("f2", "backward_data"): 2, ("f1", "backward_weight"): 1}


# ----------------------------------------------------------------------------- exact zeros


def _two_layer_samples(*, inside: int, outside: int = 0) -> dict[str, LayerSample]:
    """f1 (2×64 δz) → f2 (input 2×64, 64 of 128 inputs non-zero); f1's δ̃z: ``inside`` non-zeros where f2's
    input is non-zero, ``outside`` where it is zero."""
    g1 = LayerGeometry(name="f1", kind="linear", N=2, C=3, K=64)
    g2 = LayerGeometry(name="f2", kind="linear", N=2, C=64, K=5)
    a2 = np.zeros((2, 64), bool)
    a2[:, ::2] = True                                     # 64 non-zeros: d = 0.5
    lv = np.zeros((2, 64), np.int8)
    lv.reshape(-1)[np.flatnonzero(a2)[:inside]] = 1
    lv.reshape(-1)[np.flatnonzero(~a2)[:outside]] = -1
    return {"f1": LayerSample(geometry=g1, delta=1.0, dz_levels=lv, a_mask=np.ones((2, 3), bool)),
            "f2": LayerSample(geometry=g2, delta=1.0, dz_levels=np.ones((2, 5), np.int8), a_mask=a2)}


@pytest.mark.parametrize(("inside", "outside", "known"), [
    (20, 0, 64),       # 0.5^20 = 9.5e-7 ≤ 1e-6: f2's input mask is f1's ReLU derivative mask, nnz(δz) ≤ 64
    (19, 0, None),     # 0.5^19 = 1.9e-6: chance could pass the test, nothing is known
    (40, 1, None),     # a non-zero δ̃z where the next input is zero: not a ReLU mask (e.g. BatchNorm between)
])
def test_dense_dz_nonzero_from_the_relu_mask(inside, outside, known):
    got = dz_zeros.dense_dz_nonzero(_two_layer_samples(inside=inside, outside=outside))
    assert got == ({} if known is None else {"f1": known})          # f2 is last: its δz comes from the loss
    assert 0.5 ** 20 <= dz_zeros.EVIDENCE < 0.5 ** 19


def test_zero_skipping_counts():
    c = nsd_unit.nsd_cost(128, _arch(), nonzero=64)
    assert (c.processed, c.std_cycles, c.quantize_cycles) == (64, 1, 1)
    # two reads of the stored δz, each 64 values × 3 B plus the 128-bit zero mask (16 B)
    assert c.actions == Actions(nsd_std=64, nsd_rng=64, nsd_quantize=64, nsd_sram_bytes=2 * (64 * 3.0 + 16))
    off = nsd_unit.nsd_cost(128, _arch(skip_zeros=False), nonzero=64)
    assert (off.processed, off.std_cycles, off.actions["nsd_rng"]) == (128, 2, 128)
    unknown = nsd_unit.nsd_cost(128, _arch(), nonzero=None)
    assert unknown.processed == 128 and unknown.actions["nsd_sram_bytes"] == 2 * 128 * 3.0
    samples = _two_layer_samples(inside=20)
    on = replay(samples, _arch(), passes=("backward_weight",), method="dither")
    off = replay(samples, _arch(skip_zeros=False), passes=("backward_weight",), method="dither")
    assert (on[0].sparse.actions["nsd_rng"], off[0].sparse.actions["nsd_rng"]) == (64, 128)


# ----------------------------------------------------------------------------- capacity and spill


LENET_C1 = 64 * 6 * 28 * 28         # LeNet-5's first conv at batch 64: 301,056 δz elements, 903 KB at 24 bits


@pytest.mark.parametrize(("q", "reads"), [
    ({"overlap": "none"}, 2),                        # σ current, stored: std pass and quantize pass read it
    ({}, 1),                                         # σ current, std pass streamed: the quantize pass reads it
    ({"sigma": "delayed", "overlap": "none"}, 1),
    ({"sigma": "delayed"}, 0),                       # one streamed pass: the dense δz is never held whole
])
def test_spill_of_a_dense_dz_that_does_not_fit(q, reads):
    per_pe = math.ceil(LENET_C1 / 64) * 3            # 4,704 values × 3 B = 14,112 B > 10,240 B
    assert per_pe == 14112
    # 3,872 B per PE: written once, read back ``reads`` times; never stored whole (0 reads): nothing spills
    spill = (per_pe - 10240) * 64 * (1 + reads) if reads else 0
    c = nsd_unit.nsd_cost(LENET_C1, _arch(**q), producer_cycles=10**9)
    assert c.spill_bytes == spill and c.spill_cycles == math.ceil(spill / 16.0)
    assert c.actions.count("dram_bytes") == spill
    assert c.exposed_cycles == c.std_cycles + c.quantize_cycles - c.hidden_cycles + c.spill_cycles
    assert energy.price(c.actions, _arch()).dram == pytest.approx(spill / 8 * YAML["energy"]["dram_pj_per_64b"])
    assert nsd_unit.nsd_cost(LENET_C1, _arch(check_capacity=False, **q)).spill_bytes == 0


def test_a_dz_that_fits_spills_nothing():
    fits = 64 * (10240 // 3)                             # 3,413 values a PE (10,239 B) fit the 10 KB RAM
    assert nsd_unit.nsd_cost(fits, _arch(overlap="none")).spill_bytes == 0
    # one element more: some PE holds 3,414 values = 10,242 B, 2 B over; the share is the same on every PE
    assert nsd_unit.nsd_cost(fits + 1, _arch(overlap="none")).spill_bytes == 2 * 64 * 3


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("sigma", "later", "one of current, delayed"), ("overlap", "consumer", "one of none, producer"),
    ("booked_on", "forward", "one of first_consumer, backward_weight"), ("skip_zeros", "yes", "true or false"),
    ("check_capacity", 1, "true or false")])
def test_bad_quantizer_fields_name_the_field_and_what_is_allowed(key, value, allowed):
    with pytest.raises(ArchError, match=rf"quantizer\.{key}: .*; allowed: {allowed}$"):
        load_arch("scnn", {f"quantizer.{key}": value})


# ----------------------------------------------------------------------------- area of the lanes (sweeps/nsd.yaml)


def test_lanes_are_counted_in_the_area_the_nsd_sweep_trades_against():
    from hwsim.arch import area_breakdown_um2, area_mm2
    from hwsim.sweep.spec import load_sweep

    lane = YAML["area"]["quantizer_lane_um2"]                 # 4,195 µm² a lane
    assert area_breakdown_um2(_arch(lanes_per_pe=4))["quantizer"] == 64 * 4 * lane
    assert area_mm2(_arch(lanes_per_pe=4)) - area_mm2(_arch()) == pytest.approx(64 * 3 * lane / 1e6)   # 0.805 mm²
    assert area_mm2(_arch(sigma="delayed")) == area_mm2(_arch())   # one pass: same lanes (a σ register per layer)
    spec = load_sweep(Path(__file__).resolve().parents[1] / "arch_configs" / "sweeps" / "nsd.yaml")
    assert sorted((c.overrides["quantizer.lanes_per_pe"], c.overrides["quantizer.sigma"]) for c in spec.configs) \
        == [(n, s) for n in (1, 2, 4, 8) for s in ("current", "delayed")]
