"""Bit-serial / Bit-Pragmatic / Bit Fusion archs through the whole simulator (hwsim.sim.precision, compare)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hwsim.arch import load_arch
from hwsim.sim import passes, precision
from hwsim.sim.compare import compare
from hwsim.sim.replay import layer_operands, replay
from hwsim.trace.format import load
from hwsim.trace.synth import synthesize

INF = {"memory.dram_bytes_per_cycle": float("inf")}   # compute-bound view: no memory stalls
KINDS = ("scnn_bitserial", "scnn_pragmatic", "scnn_bitfusion")
BACKWARD = ("backward_data", "backward_weight")


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    out = tmp_path_factory.mktemp("bs") / "lenet5"
    synthesize(out, model="lenet5", batch=4, a_density=0.5, dz_density=0.3, seed=3)
    return load(out)


def with_levels(samples, make):
    """Samples with δ̃z levels replaced by ``make(mask, rng)`` on the same non-zero pattern."""
    rng = np.random.default_rng(0)
    return {n: dataclasses.replace(s, dz_levels=make(s.dz_levels != 0, rng)) for n, s in samples.items()}


def ones(mask, rng):
    return np.where(mask, rng.choice([-1, 1], size=mask.shape), 0)


def eight_bit(mask, rng):  # sign + 7 magnitude bits: 8 bits, no more
    return np.where(mask, rng.integers(64, 128, size=mask.shape) * rng.choice([-1, 1], size=mask.shape), 0)


def cycles(results, pass_names=BACKWARD, variant="sparse"):
    return {(lp.name, lp.pass_name): lp.variant(variant).cycles for lp in results if lp.pass_name in pass_names}


def test_parallel_arch_untouched_and_baselines_shared(trace):
    samples = trace.sample()
    par = replay(samples, load_arch("scnn"))
    assert all("bit_ops" not in lp.sparse.actions for lp in par)
    for name in KINDS:
        res = replay(samples, load_arch(name))
        for a, b in zip(par, res, strict=True):   # the same dense DCNN / DCNN-opt for every multiplier kind
            assert (a.dense.cycles, a.dense.energy_pj) == (b.dense.cycles, b.dense.energy_pj)
            assert a.dense_gated.energy_pj == b.dense_gated.energy_pj
            if b.pass_name != "update":   # the weight update runs on the vector unit: no MAC actions
                assert b.sparse.actions["mult"] == 0 and b.sparse.actions["bit_ops"] > 0


@pytest.mark.parametrize("name", KINDS)
def test_same_products_as_the_parallel_path(trace, name):
    arch = load_arch(name)
    for li, s in enumerate(trace.sample().values()):
        ops = layer_operands(s, seed=0, out_density=1.0, where="t")
        for pname in passes.PASSES:
            masks = passes._role_masks(ops, pname, arch.zero_skip)
            cw = passes._cartesian(ops, pname, arch, np.random.default_rng(li), masks, sample=False)
            assert precision.precision_work(ops, pname, arch, masks).products == cw.products, (s.geometry.name, pname)


@pytest.mark.parametrize("name", KINDS)
def test_all_ones_give_the_largest_gain_over_8bit_zero_skipping(trace, name):
    gains = {}
    for label, make in (("ones", ones), ("wide", lambda m, r: np.where(m, r.integers(1, 16, m.shape), 0)),
                        ("eight", eight_bit)):
        samples = with_levels(trace.sample(), make)
        ref = sum(cycles(replay(samples, load_arch("scnn", INF))).values())
        gains[label] = ref / sum(cycles(replay(samples, load_arch(name, INF))).values())
    assert gains["ones"] > gains["wide"] > gains["eight"] and gains["ones"] > 1.3, gains


def all_essential(mask, rng):  # 8 bits, every magnitude bit set: Bit-Pragmatic's worst case
    return np.where(mask, 127 * rng.choice([-1, 1], size=mask.shape), 0)


@pytest.mark.parametrize("name", KINDS)
def test_levels_needing_8_bits_are_no_better_than_the_8bit_mac(trace, name):
    samples = with_levels(trace.sample(), all_essential if name == "scnn_pragmatic" else eight_bit)
    ref = cycles(replay(samples, load_arch("scnn", INF)))
    got = cycles(replay(samples, load_arch(name, INF)))
    assert all(got[k] >= ref[k] for k in ref), {k: (got[k], ref[k]) for k in ref}


@pytest.mark.parametrize("name", ["scnn", *KINDS])
def test_never_faster_than_the_ideal_and_energy_is_counts_times_table(trace, name):
    arch = load_arch(name)
    e = arch.energy
    for lp in replay(trace.sample(), arch):
        assert lp.sparse.cycles >= lp.ideal.cycles > 0 or lp.macs_effectual == 0
        for v in (lp.sparse, lp.ideal):
            a = v.actions
            mac = (a.count("mult") * e.mult_pj_for(arch.pe.mac_bits) + a.get("bit_ops", 0.0) * e.bit_op_pj
                   + a.count("add") * e.add_pj_for(arch.pe.accumulator_bits))
            assert v.energy_breakdown.mac == pytest.approx(mac, rel=1e-12)


def test_ideal_is_serial_bits_over_lanes(trace):
    samples = with_levels(trace.sample(), ones)
    arch = load_arch("scnn_bitserial")
    lanes = arch.total_multipliers * arch.pe.mac_bits
    for lp in replay(samples, arch, passes=("backward_data",)):
        # every effectual product: 2 serial bits (sign + 1) × 8-bit lane step = 16 bit-ops, a quarter of 8×8
        assert lp.ideal.actions["bit_ops"] == 16 * lp.macs_effectual
        serial_bits = 2 * lp.macs_effectual
        assert lp.ideal.cycles == -(-serial_bits // lanes)
        assert lp.sparse.cycles >= lp.ideal.cycles


def test_accumulator_banks_bound_a_bit_serial_pe(trace):
    samples = with_levels(trace.sample(), ones)
    dense_dz = {n: dataclasses.replace(s, dz_levels=np.where(s.dz_levels == 0, 1, s.dz_levels))
                for n, s in samples.items()}   # every δ̃z ±1: full lock-step groups, 64 products/cycle
    many = cycles(replay(dense_dz, load_arch("scnn_bitserial", {**INF, "pe.accumulator_banks": 128})), ("backward_data",))
    few = cycles(replay(dense_dz, load_arch("scnn_bitserial", INF)), ("backward_data",))
    assert all(few[k] >= many[k] for k in few) and sum(few.values()) > sum(many.values())


def test_compare_rows_and_table(trace):
    cmp = compare(trace, ["scnn", "scnn_bitserial", "scnn_bitfusion"], overrides=INF)
    rows = [r for r in cmp.rows() if r["layer"] == "*" and r["scope"] == "backward"]
    assert [r["arch"] for r in rows] == ["dense", "scnn", "scnn_bitserial", "scnn_bitfusion"]
    assert rows[0]["speedup_vs_dense"] == 1.0 and rows[1]["speedup_vs_ref"] == 1.0
    assert rows[2]["mac"] == "bit_serial/magnitude" and rows[3]["mac"] == "bit_fusion"
    it = [r for r in cmp.rows() if r["layer"] == "*" and r["scope"] == "iteration"]
    assert it[1]["cycles"] == sum(r["cycles"] for r in cmp.rows()
                                  if r["layer"] == "*" and r["arch"] == "scnn" and r["scope"] in (*passes.PASSES, "update"))
    text = cmp.table()
    assert "scnn_bitfusion" in text and "×scnn" in text
