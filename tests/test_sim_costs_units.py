"""Issue 10: NSD unit (elements × table), ideal split, dense systolic baseline, area and leakage."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from hwsim.arch import (
    area_breakdown_um2,
    area_mm2,
    dense_systolic_variant,
    leakage_mw,
    load_arch,
    systolic_shape,
)
from hwsim.results import VARIANTS, SimResult
from hwsim.sim import nsd_unit, simulate
from hwsim.sim.replay import replay
from hwsim.trace.format import load
from hwsim.trace.synth import synthesize
from hwsim.trace.topology import LayerSpec

SAMPLE = Path(__file__).resolve().parents[1] / "traces" / "samples" / "lenet5-digits-dither"
INF = {"memory.dram_bytes_per_cycle": math.inf}
# the pre-issue-18 NSD unit (two serial passes over every element, booked on backward-weight, δz assumed to fit)
OLD_NSD = {"quantizer.overlap": "none", "quantizer.booked_on": "backward_weight", "quantizer.skip_zeros": False,
           "quantizer.check_capacity": False}
LAYERS = [LayerSpec(name="c1", kind="conv2d", C=3, K=8, H=12, W=12, R=3, S=3, padding=1),
          LayerSpec(name="fc", kind="linear", C=8 * 12 * 12, K=10)]


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    out = tmp_path_factory.mktemp("units") / "t"
    synthesize(out, layers=LAYERS, w_density=1.0, a_density=0.5, dz_density=0.05, batch=2, seed=0)
    return load(out)


@pytest.fixture(scope="module")
def result(trace):
    return simulate(trace, "scnn")


def test_nsd_unit_is_elements_times_table(trace):
    arch = load_arch("scnn", OLD_NSD)
    result = simulate(trace, arch)
    q = arch.quantizer
    lanes = q.lanes_per_pe * arch.num_pes
    acc_bytes = arch.pe.accumulator_bits / 8
    pj_sram = arch.energy.sram_pj_per_64b(arch.pe.output_buffer_bytes)
    assert result.trace["method"] == "synthetic"   # synthetic δ̃z stands for NSD output: it pays the NSD unit
    for g in trace.layers:
        e = g.N * g.K * g.P * g.Q                   # dense δz elements of the layer
        lp = result.layer(g.name, "backward_weight")
        assert lp.sparse.cycle_breakdown.nsd == 2 * math.ceil(e / lanes)
        want = e * (q.std_pj_per_element + q.rng_pj_per_element + q.quantize_pj_per_element) \
            + 2 * e * acc_bytes / 8 * pj_sram
        assert lp.sparse.energy_breakdown.nsd == pytest.approx(want)
        assert lp.sparse.actions["nsd_std"] == e
        for v in ("dense", "dense_gated", "ideal", "dense_systolic"):   # baselines and bound do not pay it
            assert lp.variant(v).cycle_breakdown.nsd == 0 and lp.variant(v).energy_breakdown.nsd == 0
    for lp in result.layers:
        if lp.pass_name != "backward_weight":
            assert lp.sparse.cycle_breakdown.nsd == 0
    # defaults are the seed paper's op counts priced at Horowitz 45 nm (fp16 mult 1.1, add 0.4; int16 ≈ 0.8/0.05)
    assert (q.std_pj_per_element, q.rng_pj_per_element, q.quantize_pj_per_element) == pytest.approx((1.5, 1.7, 1.5))


def test_nsd_unit_scales_with_lanes_and_prices(trace):
    base = replay(trace.sample(), load_arch("scnn"), passes=("backward_weight",), method="dither")
    wide = replay(trace.sample(), load_arch("scnn", {"quantizer.lanes_per_pe": 4, "quantizer.rng_pj_per_element": 0.0}),
                  passes=("backward_weight",), method="dither")
    for a, b in zip(base, wide, strict=True):
        e = a.sparse.actions["nsd_std"]
        assert b.sparse.cycle_breakdown.nsd == 2 * math.ceil(e / (4 * 64))
        assert a.sparse.energy_breakdown.nsd - b.sparse.energy_breakdown.nsd == pytest.approx(e * 1.7)
    none = replay(trace.sample(), load_arch("scnn"), passes=("backward_weight",), method="none")
    assert all(lp.sparse.cycle_breakdown.nsd == 0 and lp.sparse.energy_breakdown.nsd == 0 for lp in none)
    # an arch that does not skip zero gradients has no use for the quantizer: a dense design pays nothing
    dense = replay(trace.sample(), load_arch("systolic32"), passes=("backward_weight",), method="dither")
    assert all(lp.sparse.cycle_breakdown.nsd == 0 and lp.sparse.energy_breakdown.nsd == 0 for lp in dense)


def test_meprop_pays_top_k_comparisons(trace):
    arch = load_arch("scnn")
    cyc, acts = nsd_unit.layer_cost(1000, 2, arch, "meprop", k=5)    # 500 elements per example > k
    assert acts["nsd_compare"] == 1000 * (1 + 3) and cyc == math.ceil(4000 / 64)
    assert nsd_unit.layer_cost(1000, 2, arch, "meprop", k=500) == (0, {})   # keeps everything: no selection
    (lp, *_) = replay(trace.sample(), arch, passes=("backward_weight",), method="meprop", k=5)
    g = trace.layers[0]
    e = g.N * g.K * g.P * g.Q
    assert lp.sparse.energy_breakdown.nsd == pytest.approx(
        e * 4 * arch.quantizer.compare_pj + e * 3 / 8 * arch.energy.sram_pj_per_64b(arch.pe.output_buffer_bytes))
    with pytest.raises(ValueError, match="meta key 'k'"):
        nsd_unit.layer_cost(1000, 2, arch, "meprop", k=None)


@pytest.mark.parametrize("bw", [16.0, math.inf])
def test_ideal_is_a_lower_bound_of_every_variant(bw):
    res = simulate(SAMPLE, load_arch("scnn", {"memory.schedule": "isolated", **({} if bw == 16.0 else INF)}))
    for lp in res.layers:
        for v in VARIANTS:
            vr = lp.variant(v)
            assert lp.ideal.cycles <= vr.cycles, (lp.name, lp.pass_name, v)
            if v != "ideal":   # every real run moves at least the minimum bytes through the DRAM channel
                assert lp.bandwidth_floor_cycles <= vr.cycles, (lp.name, lp.pass_name, v)
        if bw == math.inf:
            assert lp.bandwidth_floor_cycles == 0
    assert res.fraction_of_ideal() == res.total("ideal").cycles / res.total("sparse").cycles <= 1.0
    assert res.bandwidth_floor() == sum(lp.bandwidth_floor_cycles for lp in res.layers)
    if bw == 16.0:
        assert res.bandwidth_floor() > 0


def test_dense_systolic_baseline(result):
    arch = load_arch("scnn")
    sysa = dense_systolic_variant(arch)
    assert systolic_shape(1024) == (32, 32) and systolic_shape(512) == (16, 32) and systolic_shape(7) == (1, 7)
    assert (sysa.dataflow, sysa.total_multipliers, sysa.variant) == ("systolic_ws", arch.total_multipliers, "dense")
    assert sysa.pe.mac_bits == arch.pe.mac_bits and sysa.memory.global_buffer_bytes == arch.memory.global_buffer_bytes
    for lp in result.layers:
        ds = lp.dense_systolic
        assert ds.cycles > 0 and ds.multipliers == 1024 and ds.macs == lp.macs_dense
        assert ds.cycle_breakdown.reduction == 0
    assert result.speedup(baseline="dense_systolic") == result.total("dense_systolic").cycles / result.total("sparse").cycles
    assert result.arch["dense_systolic"]["shape"] == [32, 32]


def test_old_results_without_new_keys_load_with_zeros(result):
    d = json.loads(json.dumps(result.to_json()))
    for lp in d["layers"]:
        lp.pop("dense_systolic")
        lp.pop("bandwidth_floor_cycles")
        for v in ("sparse", "dense", "dense_gated", "ideal"):
            vr = lp[v]
            bd = vr["breakdown"]
            vr["cycles"] -= bd["cycles"].pop("reduction") + bd["cycles"].pop("nsd")
            vr["energy_pj"] -= sum(bd["energy_pj"].pop(k) for k in ("reduction", "nsd", "leakage"))
    old = SimResult.from_json(d)
    assert old.total("dense_systolic").cycles == 0 and old.bandwidth_floor() == 0
    assert old.total("sparse").cycle_breakdown.nsd == 0 and old.total("sparse").energy_breakdown.leakage == 0
    assert SimResult.from_json(result.to_json()) == result


def test_area_follows_the_table_and_validate_prints_it(capsys):
    arch = load_arch("scnn")
    parts = area_breakdown_um2(arch)
    assert parts["multipliers"] == 1024 * 282.0                      # Horowitz int8 multiplier, 282 µm²
    assert parts["adders"] == 64 * 32 * 137.0                        # 24-bit bank adders → the 32-bit entry
    assert area_mm2(arch) == pytest.approx(sum(parts.values()) / 1e6)
    assert leakage_mw(arch) == pytest.approx(area_mm2(arch) * arch.area.leakage_mw_per_mm2)
    assert area_breakdown_um2(dense_systolic_variant(arch))["pe_sram"] == 0.0
    from hwsim.cli import main
    assert main(["validate", "scnn"]) == 0
    out = capsys.readouterr().out
    assert f"{area_mm2(arch):.2f} mm²" in out and "leakage" in out


def test_area_and_leakage_move_with_array_size_and_bandwidth_in_a_sweep(tmp_path):
    from hwsim.sweep.runner import run_sweep
    from hwsim.sweep.spec import load_sweep

    spec = {"version": 1, "name": "costs", "description": "area/leakage", "arch": "scnn",
            "grid": {"pe_array.rows,pe_array.cols": [2, 4], "memory.dram_bytes_per_cycle": [8.0, 64.0]},
            "traces": [{"name": "t", "synthetic": {"model": "lenet5", "w_density": 1.0, "a_density": 0.5,
                                                    "dz_density": 0.1, "batch": 1, "seed": 0}}],
            "seeds": [0]}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    run_sweep(load_sweep(tmp_path / "s.yaml"), out=tmp_path / "out", progress=False)
    rows = json.loads((tmp_path / "out" / "sweep.json").read_text())["rows"]
    by = {(r["pe_array.rows"], r["memory.dram_bytes_per_cycle"]): r for r in rows}
    assert len(by) == 4
    for bw in (8.0, 64.0):   # a larger array has more silicon
        assert by[(4, bw)]["area_mm2"] > by[(2, bw)]["area_mm2"]
    for n in (2, 4):         # same silicon, but a starved DRAM keeps it leaking for more cycles
        slow, fast = by[(n, 8.0)], by[(n, 64.0)]
        assert slow["area_mm2"] == fast["area_mm2"]
        assert slow["cycles_sparse"] > fast["cycles_sparse"]
        assert slow["energy_pj_sparse"] != fast["energy_pj_sparse"]
    results = [SimResult.from_json(json.loads(p.read_text())["result"])
               for p in sorted((tmp_path / "out" / "points").glob("*.json"))]
    leak = {(x.arch["params"]["pe_array"]["rows"], x.arch["params"]["memory"]["dram_bytes_per_cycle"]):
            x.total("sparse").energy_breakdown.leakage for x in results}
    assert leak[(2, 8.0)] > leak[(2, 64.0)] > 0 and leak[(4, 8.0)] > leak[(4, 64.0)] > 0


def test_shipped_configs_state_the_new_sections_at_their_documented_defaults():
    from hwsim.arch import (
        ARCH_DIR,
        AreaTable,
        GatherConfig,
        QuantizerConfig,
        ReductionConfig,
        VectorConfig,
        shipped_arch_names,
    )

    for name in shipped_arch_names():
        raw = yaml.safe_load((ARCH_DIR / f"{name}.yaml").read_text())
        text = (ARCH_DIR / f"{name}.yaml").read_text()
        arch = load_arch(name)
        assert "area" in raw and arch.area == AreaTable(), name
        # every design has a vector unit; tensordash's 4 lanes per column give systolic32's 32 (arch_configs/tensordash.yaml)
        assert "vector" in raw and arch.vector == VectorConfig(lanes_per_pe=4 if name == "tensordash" else 1), name
        if not arch.is_systolic:   # Cartesian arrays, whatever their backward passes use
            assert {"reduction", "quantizer"} <= set(raw), name
            assert arch.reduction == ReductionConfig() and arch.quantizer == QuantizerConfig(), name
        if arch.dataflow.uses("dz_gather"):
            assert "gather" in raw and arch.gather == GatherConfig(), name
        for section in ("reduction", "quantizer", "area", "gather", "vector"):   # every value carries a source comment
            lines = text.split(f"\n{section}:", 1)[1].split("\n\n")[0].splitlines() if section in raw else []
            for line in lines[1:]:
                if line.startswith("  ") and ":" in line:
                    assert "#" in line, (name, line)


def test_sensitivity_table_moves_one_assumption_at_a_time(trace):
    from hwsim.sim.sensitivity import sensitivity, table

    rows = sensitivity(trace, load_arch("scnn"))
    assert [r["setting"] for r in rows] == ["queue depth 0", "queue depth 1", "queue depth 4 (arch)", "DRAM 8 B/cycle",
                                            "DRAM 16 B/cycle (arch)", "DRAM 64 B/cycle", "DRAM ∞ B/cycle",
                                            "DRAM arbiter reads_first (arch)", "DRAM arbiter in_order",
                                            "tile buffers 1", "tile buffers 3",
                                            "update: W and state on chip when they fit", "update: bf16 optimizer state",
                                            "non-GEMM: pointwise ops fused into the GEMM output",
                                            "non-GEMM: vector unit overlapped with the array",
                                            "baselines: own vector lanes (1 per column)"]
    by = {r["setting"]: r for r in rows}
    assert by["queue depth 4 (arch)"]["speedup_vs_dense"] == by["DRAM 16 B/cycle (arch)"]["speedup_vs_dense"] \
        == by["DRAM arbiter reads_first (arch)"]["speedup_vs_dense"]
    assert by["queue depth 0"]["speedup_vs_dense"] <= by["queue depth 4 (arch)"]["speedup_vs_dense"]
    # one tile buffer exposes loads the double buffering hid: the sparse design's share of its ideal falls
    assert by["tile buffers 1"]["fraction_of_ideal"] < by["queue depth 4 (arch)"]["fraction_of_ideal"]
    assert all(r["speedup_vs_dense_systolic"] > 0 and 0 < r["fraction_of_ideal"] <= 1 for r in rows)
    text = table(rows)
    assert text.count("\n") == len(rows) + 1 and "vs dense systolic" in text
