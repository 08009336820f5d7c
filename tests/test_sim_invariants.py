"""Simulator invariants on small synthetic layers (fast: a few seconds in all)."""

from __future__ import annotations

import math
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim.arch import load_arch
from hwsim.results import CYCLE_PARTS, PASSES, VARIANTS
from hwsim.sim import simulate, tiling
from hwsim.sim.energy import ACTIONS, buffer_sizes
from hwsim.trace.synth import synthesize

LAYERS = [
    {"name": "c1", "C": 3, "K": 16, "H": 18, "W": 18, "R": 3, "S": 3, "stride": 2, "padding": 1},
    {"name": "c2", "C": 16, "K": 24, "H": 9, "W": 9, "R": 3, "S": 3, "padding": 1},
    {"name": "c3", "C": 24, "K": 16, "H": 9, "W": 9, "R": 3, "S": 3},
    {"name": "fc", "kind": "linear", "C": 16 * 7 * 7, "K": 10},
]


def _trace(tmp_path, d: float, dz: float = 0.1, seed: int = 0, layers=LAYERS, **kw):
    return synthesize(tmp_path / f"t_{d:.3f}_{dz:.3f}_{seed}", layers=layers, w_density=d, a_density=d,
                      dz_density=dz, seed=seed, dense_first_input=False, overwrite=True, **kw)


@pytest.fixture(scope="module")
def scnn():
    """Per-layer-pass invariants hold for layer-passes in isolation; in one schedule per iteration a layer-pass's
    cycles are an attribution of the iteration's (its loads may overlap its neighbour's compute): the iteration
    totals are checked there."""
    return load_arch("scnn", {"memory.schedule": "isolated"})


@pytest.fixture(scope="module")
def base(tmp_path_factory, scnn):
    tp = tmp_path_factory.mktemp("inv")
    return simulate(_trace(tp, 0.5), scnn)


def test_breakdowns_add_up_and_sparse_not_below_ideal(base):
    for lp in base.layers:
        for v in VARIANTS:
            vr = lp.variant(v)
            assert vr.cycles == sum(getattr(vr.cycle_breakdown, k) for k in CYCLE_PARTS)
            assert min(vr.cycle_breakdown.to_json().values()) >= 0
        assert lp.sparse.cycles >= lp.ideal.cycles
        assert lp.dense.cycles >= lp.ideal.cycles
        assert lp.dense_gated.cycles == lp.dense.cycles          # gating saves energy, not cycles
        assert lp.dense_gated.energy_pj <= lp.dense.energy_pj
        assert lp.macs_effectual <= lp.macs_dense
    assert {lp.pass_name for lp in base.layers} == {*PASSES, "update"}   # the GEMMs and the weight update


def test_energy_is_counts_times_table_exactly(base, scnn):
    from hwsim.arch import dense_gated_variant, dense_variant

    archs = {"sparse": scnn, "dense": dense_variant(scnn), "dense_gated": dense_gated_variant(scnn), "ideal": scnn}
    for lp in base.layers:
        for v, arch in archs.items():
            vr = lp.variant(v)
            a, e = vr.actions, arch.energy
            assert set(a) <= set(ACTIONS)
            n = a.count  # the weight update's records count no MAC actions (0)
            mac = n("mult") * e.mult_pj_for(arch.pe.mac_bits) + n("add") * e.add_pj_for(arch.pe.accumulator_bits)
            acc = n("acc_access") * e.accumulator_access_pj + n("reg_read") * e.register_pj
            sram = sum(n(k) / 8 * e.sram_pj_per_64b(size) for k, size in buffer_sizes(arch).items())
            xbar = e.crossbar_pj_per_product + e.bank_queue_pj_per_product * (arch.pe.bank_queue_depth > 0)
            want = {"mac": mac, "accumulator": acc, "sram": sram, "crossbar": n("xbar") * xbar,
                    "dram": n("dram_bytes") / 8 * e.dram_pj_per_64b}
            got = vr.energy_breakdown.to_json()
            assert {k: got[k] for k in want} == want
            # issue 10 categories (reduction, NSD unit, leakage) and the vector unit (issue 17): tests/test_sim_costs*.py
            # and tests/test_unit_vector.py check their prices
            assert math.isclose(vr.energy_pj, sum(want.values()) + got["reduction"] + got["nsd"] + got["vector"]
                                + got["leakage"])


def test_same_seed_same_numbers(tmp_path, scnn, base):
    again = simulate(_trace(tmp_path, 0.5), scnn)
    assert [lp.to_json() for lp in again.layers] == [lp.to_json() for lp in base.layers]


def test_dense_independent_of_density(tmp_path, scnn):
    r1 = simulate(_trace(tmp_path, 0.9, dz=0.3), scnn)
    r2 = simulate(_trace(tmp_path, 0.2, dz=0.05), scnn)
    for a, b in zip(r1.layers, r2.layers, strict=True):
        assert a.dense.cycles == b.dense.cycles, (a.name, a.pass_name)
        assert a.dense.macs == b.dense.macs


def test_density_one_sparse_not_faster_than_dense(tmp_path, scnn):
    r = simulate(_trace(tmp_path, 1.0, dz=1.0), scnn)
    for lp in r.layers:
        assert lp.sparse.cycles >= lp.dense.cycles, (lp.name, lp.pass_name)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(d=st.sampled_from([0.15, 0.3, 0.5, 0.7, 0.9]), step=st.sampled_from([0.05, 0.1, 0.3]),
       seed=st.integers(0, 3))
def test_sparse_cycles_monotone_in_density(tmp_path, scnn, d, step, seed):
    """Same seed → nested masks: more non-zeros never make the sparse engine faster — for the same mapping.

    The mapper picks each plane's tiling from a structural estimate with one scalar density
    (:func:`hwsim.sim.tiling.mapping_cost`), so two densities may get two tilings, and the denser one's can be the
    better one: at c3 backward-data, d 0.3 → 0.35, seed 0, the work falls from 161 to 100 cycles (imbalance 98 → 44).
    That is the estimate's quality (a known gap of the mapper, in the closing notes), not the engine's: here the
    estimate sees density 1 at every point (its one density term, :func:`hwsim.sim.tiling.per_pe_cost`), so both
    densities map alike and the engine itself must be monotone."""
    hi = min(1.0, d + step)
    orig = tiling.per_pe_cost

    def one_mapping(*args: object, **kw: object) -> float:
        return orig(*args, **{**kw, "density": 1.0})

    arch = load_arch(scnn)
    with mock.patch.object(tiling, "per_pe_cost", one_mapping):
        lo_r = simulate(_trace(tmp_path, d, dz=d, seed=seed, layers=LAYERS[1:3]), arch)
        hi_r = simulate(_trace(tmp_path, hi, dz=hi, seed=seed, layers=LAYERS[1:3]), arch)
    for a, b in zip(lo_r.layers, hi_r.layers, strict=True):
        assert b.sparse.cycles >= a.sparse.cycles, (a.name, a.pass_name, d, hi)
        assert b.macs_effectual >= a.macs_effectual
    sched = load_arch("scnn")  # one schedule per iteration: the iteration's total is monotone too
    with mock.patch.object(tiling, "per_pe_cost", one_mapping):
        lo_t = simulate(_trace(tmp_path, d, dz=d, seed=seed, layers=LAYERS[1:3]), sched).total("sparse").cycles
        hi_t = simulate(_trace(tmp_path, hi, dz=hi, seed=seed, layers=LAYERS[1:3]), sched).total("sparse").cycles
    assert hi_t >= lo_t, (d, hi)


def test_analytic_equals_simpy_with_unlimited_dram_no_conflicts(tmp_path):
    arch = load_arch("scnn", overrides={"memory.dram_bytes_per_cycle": math.inf, "pe.bank_queue_depth": 10_000})
    r = simulate(_trace(tmp_path, 0.4), arch)
    for lp in r.layers:
        for v in ("sparse", "dense"):
            vr = lp.variant(v)
            assert vr.analytical_cycles == vr.cycles, (lp.name, lp.pass_name, v)
            assert vr.cycle_breakdown.memory_stall == 0
            assert vr.cycle_breakdown.bank_conflict == 0


def test_finite_dram_only_adds_memory_stall(tmp_path):
    t = _trace(tmp_path, 0.4)
    for sched in ("isolated", "iteration"):
        fast = simulate(t, load_arch("scnn", {"memory.dram_bytes_per_cycle": math.inf, "memory.schedule": sched}))
        slow = simulate(t, load_arch("scnn", {"memory.dram_bytes_per_cycle": 0.5, "memory.schedule": sched}))
        if sched == "isolated":  # per layer-pass
            for a, b in zip(fast.layers, slow.layers, strict=True):
                assert b.sparse.cycles >= a.sparse.cycles
                assert b.sparse.cycles - b.sparse.cycle_breakdown.memory_stall == a.sparse.cycles
        a, b = fast.total("sparse"), slow.total("sparse")  # the iteration: memory stall and fill/drain only
        assert b.cycles - b.cycle_breakdown.memory_stall - b.cycle_breakdown.fill_drain == a.cycles, sched


def test_wide_gradient_levels_cost_extra_passes(tmp_path):
    t = _trace(tmp_path, 0.5, dz=0.3, layers=LAYERS[1:2], max_level=200, level_p=0.01)  # 9-bit levels on 8-bit MACs
    r = simulate(t, load_arch("scnn"))
    bd = r.layer("c2", "backward_data")
    assert bd.dz_bits > 8 and bd.operand_passes == 2
    r16 = simulate(t, load_arch("scnn16"))
    assert r16.layer("c2", "backward_data").operand_passes == 1
    assert bd.dense.cycles > r16.layer("c2", "backward_data").dense.cycles


def test_big_layer_is_tiled_not_rejected(tmp_path):
    big = [{"name": "big", "C": 256, "K": 256, "H": 28, "W": 28, "R": 3, "S": 3, "padding": 1}]
    r = simulate(_trace(tmp_path, 0.3, layers=big), load_arch("scnn"))
    assert r.total("sparse").cycles > 0


def test_trace_arch_mismatch_says_what(tmp_path):
    t = _trace(tmp_path, 0.5, layers=LAYERS[1:2], operand_bits=16)
    with pytest.raises(ValueError, match=r"c2.*w_bits=16.*mac_bits=8"):
        simulate(t, load_arch("scnn"))


def test_simulate_checks_the_checksum_of_the_sample_it_replays(tmp_path):
    import shutil
    from pathlib import Path

    import pytest

    import hwsim
    from hwsim.trace.format import TraceError

    src = Path(__file__).resolve().parents[1] / "traces" / "samples" / "lenet5-digits-dither"
    t = tmp_path / "t"
    shutil.copytree(src, t)
    from hwsim.trace.format import load

    tr = load(t)
    it, _ = tr.default_iteration()  # the iteration replayed by default
    last = t / next(e["file"] for e in tr.manifest["samples"] if e["iteration"] == it)
    data = bytearray(last.read_bytes())
    data[100] ^= 1
    last.write_bytes(bytes(data))
    with pytest.raises(TraceError, match="checksum mismatch"):
        hwsim.simulate(t, "scnn")
