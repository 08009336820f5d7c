"""Unit tests of hwsim.results.run on hand-built results: the left-hold weights, scaling, the weighted integral,
the spread statistics and the run-results JSON (small examples computed by hand in the comments)."""

from __future__ import annotations

import json
import math
import random

import pytest

from hwsim.results import (
    CycleBreakdown,
    EnergyBreakdown,
    LayerPassResult,
    ResultsError,
    SimResult,
    VariantResult,
)
from hwsim.results.actions import Actions
from hwsim.results.run import (
    RUN_KIND,
    RunResult,
    hold_weights,
    integrate,
    is_run_json,
    load_run_results,
    save_run_results,
    scale_variant,
    spread,
    stats,
)


def _v(cycles: int, pj: float, *, stall: int = 0, mult: float | None = None, macs: int = 0) -> VariantResult:
    return VariantResult(cycle_breakdown=CycleBreakdown(compute=cycles, memory_stall=stall),
                         energy_breakdown=EnergyBreakdown(mac=pj, leakage=1.0), macs=macs, multipliers=64,
                         analytical_cycles=cycles, actions=Actions(mult=mult) if mult is not None else Actions())


def _lp(name: str, pass_name: str, sparse: int, dense: int, *, dz: float = 0.5, bits: int = 3) -> LayerPassResult:
    return LayerPassResult(name=name, pass_name=pass_name, macs_dense=dense * 10, macs_effectual=sparse * 10,
                           sparse=_v(sparse, float(sparse), mult=sparse * 10.0, macs=sparse * 10),
                           dense=_v(dense, float(dense)), dense_gated=_v(dense, dense / 2), ideal=_v(sparse // 2, 1.0),
                           density={"dz": dz}, dz_bits=bits, operand_passes=1 + (bits > 8))


def _res(*layers: LayerPassResult, it: int = 0) -> SimResult:
    return SimResult(trace={"name": "toy", "iteration": it}, arch={"name": "a"}, layers=layers, run={"seed": 1})


# ----------------------------------------------------------------------------- hold weights


def test_hold_weights_hand_examples():
    assert hold_weights([0], 1) == [1]
    assert hold_weights([0], 50) == [50]                 # one sample stands for the whole run
    assert hold_weights([4], 10) == [10]                 # ... including the iterations before it
    assert hold_weights([2, 5, 9], 12) == [5, 4, 3]      # 0..4 (2 + prefix 2), 5..8, 9..11
    assert hold_weights([0, 1, 2], 3) == [1, 1, 1]
    assert hold_weights([3, 7], 5) == [7, 1]             # total shorter than the samples: up to the last one


def test_hold_weights_sum_to_the_run_and_each_sample_stands_until_the_next():
    rng = random.Random(0)
    for _ in range(200):
        total = rng.randint(1, 500)
        its = sorted(rng.sample(range(total), rng.randint(1, min(total, 20))))
        w = hold_weights(its, total)
        assert sum(w) == total and len(w) == len(its) and all(x >= 1 for x in w)
        if len(its) == 1:
            assert w == [total]
            continue
        assert w[-1] == total - its[-1]
        for k in range(1, len(its) - 1):
            assert w[k] == its[k + 1] - its[k]
        assert w[0] == its[1]                            # 0 … i_2 − 1


@pytest.mark.parametrize(("its", "msg"), [
    ([], r"^iterations: none replayed; allowed: at least one sampled iteration$"),
    ([3, 3], r"^iterations: \[3, 3\] are not sorted and distinct$"),
    ([5, 2], r"are not sorted and distinct"),
    ([-1, 2], r"^iterations: -1 is negative$"),
])
def test_hold_weights_errors(its, msg):
    with pytest.raises(ResultsError, match=msg):
        hold_weights(its, 10)


# ----------------------------------------------------------------------------- scaling and the integral


def test_scale_variant_multiplies_every_count_but_not_the_multipliers():
    v = _v(7, 2.5, stall=3, mult=11.0, macs=70)
    s = scale_variant(v, 4)
    assert s.cycle_breakdown == CycleBreakdown(compute=28, memory_stall=12) and s.cycles == 40
    assert s.energy_breakdown == EnergyBreakdown(mac=10.0, leakage=4.0) and s.energy_pj == 14.0
    assert (s.macs, s.multipliers, s.analytical_cycles) == (280, 64, 28)
    assert s.actions.to_json() == {"mult": 44.0}
    assert isinstance(s.cycles, int)


def test_integrate_two_iterations_by_hand():
    a = _res(_lp("c1", "forward", 10, 40, dz=0.2, bits=5), _lp("c2", "backward_data", 6, 30, dz=0.4, bits=12))
    b = _res(_lp("c1", "forward", 20, 40, dz=0.6, bits=3), it=7)          # c2 missing in this iteration
    r = integrate([a, b], [3, 2])
    assert [(lp.name, lp.pass_name) for lp in r.layers] == [("c1", "forward"), ("c2", "backward_data")]
    c1, c2 = r.layers
    assert c1.sparse.cycles == 3 * 10 + 2 * 20 == 70 and c1.dense.cycles == 5 * 40
    assert c1.sparse.energy_pj == pytest.approx(3 * 11 + 2 * 21)           # mac = cycles, leakage 1 each
    assert c1.macs_dense == 3 * 400 + 2 * 400 and c1.macs_effectual == 3 * 100 + 2 * 200
    assert c1.density["dz"] == pytest.approx((3 * 0.2 + 2 * 0.6) / 5)     # weight-averaged
    assert c1.dz_bits == 5 and c1.operand_passes == 1                     # largest seen (the first)
    assert c1.sparse.actions["mult"] == 3 * 100.0 + 2 * 200.0
    assert c2.sparse.cycles == 3 * 6 and c2.density["dz"] == pytest.approx(0.4)   # only where present
    assert c2.dz_bits == 12 and c2.operand_passes == 2
    assert r.total("sparse").cycles == 70 + 18                            # still adds up
    assert r.trace == a.trace and r.run == a.run
    r2 = integrate([a], [1], trace={"x": 1}, run={"y": 2})
    assert r2.trace == {"x": 1} and r2.run == {"y": 2}


@pytest.mark.parametrize(("n_res", "weights"), [(0, []), (2, [1]), (1, [1, 2])])
def test_integrate_needs_one_weight_per_result(n_res, weights):
    rs = [_res(_lp("c", "forward", 1, 2))] * n_res
    with pytest.raises(ResultsError, match=rf"integrate: {n_res} results and {len(weights)} weights"):
        integrate(rs, weights)


# ----------------------------------------------------------------------------- spread


def test_stats_by_hand():
    s = stats([4, 1, 3, 2])
    assert s["mean"] == 2.5 and s["min"] == 1 and s["max"] == 4
    # sorted 1,2,3,4: position (n-1)·q = 0.3, 1.5, 2.7 → linear interpolation
    assert s["p10"] == pytest.approx(1.3) and s["p50"] == pytest.approx(2.5) and s["p90"] == pytest.approx(3.7)
    assert stats([5]) == {"mean": 5.0, "min": 5.0, "max": 5.0, "p10": 5.0, "p50": 5.0, "p90": 5.0}
    assert all(math.isnan(x) for x in stats([]).values())
    assert list(stats([1, 2])) == ["mean", "min", "max", "p10", "p50", "p90"]


def test_spread_over_iterations_by_hand():
    a = _res(_lp("c1", "forward", 10, 40), _lp("c1", "backward_weight", 5, 10))
    b = _res(_lp("c1", "forward", 20, 40), _lp("c1", "backward_weight", 10, 10))
    sp = spread([a, b])
    fw = sp["layers"]["c1/forward"]
    assert fw["speedup"]["min"] == 2.0 and fw["speedup"]["max"] == 4.0 and fw["speedup"]["mean"] == 3.0
    assert fw["cycles_sparse"]["p50"] == 15.0 and fw["cycles_dense"]["p90"] == 40.0
    assert fw["energy_ratio"]["max"] == pytest.approx(41 / 11)            # mac = cycles + leakage 1
    it = sp["iteration"]
    assert it["cycles_sparse"]["min"] == 15 and it["cycles_sparse"]["max"] == 30
    assert it["speedup"]["mean"] == pytest.approx((50 / 15 + 50 / 30) / 2)
    assert sp["passes"]["backward_data"] == {}                            # no layer has this pass
    assert sp["passes"]["backward_weight"]["speedup"]["min"] == 1.0
    assert set(sp["layers"]) == {"c1/forward", "c1/backward_weight"}


def test_spread_of_a_zero_cycle_sparse_variant_is_infinite():
    lp = _lp("c", "forward", 0, 10)
    lp = LayerPassResult(**{**lp.__dict__, "sparse": VariantResult()})
    sp = spread([_res(lp)])
    assert sp["layers"]["c/forward"]["speedup"]["max"] == math.inf
    assert sp["layers"]["c/forward"]["energy_ratio"]["max"] == math.inf


# ----------------------------------------------------------------------------- the record and its JSON


def _run(**kw) -> RunResult:
    recs = [(20, _res(_lp("c1", "forward", 20, 40), it=20)), (0, _res(_lp("c1", "forward", 10, 40), it=0))]
    return RunResult.build(recs, total_iterations=30, training=[{"iteration": 0, "loss": 2.0}],
                           run={"replay": "x"}, **kw)


def test_build_sorts_weights_and_integrates():
    r = _run()
    assert r.replayed == [0, 20] and [x.weight for x in r.iterations] == [20, 10] and r.total_iterations == 30
    assert r.last.trace["iteration"] == 20
    t = r.integrated
    assert t.total("sparse").cycles == 20 * 10 + 10 * 20
    assert t.trace["iteration"] == "run" and t.trace["iterations"] == [0, 20] and t.trace["total_iterations"] == 30
    assert t.run == {"seed": 1, "replay": "x"} and t.provenance == {}
    assert _run(provenance={"cmd": "hwsim"}).integrated.provenance == {"cmd": "hwsim"}
    short = RunResult.build([(9, _res(_lp("c", "forward", 1, 2)))], total_iterations=3)
    assert short.total_iterations == 10 and short.iterations[0].weight == 10


def test_json_round_trip(tmp_path):
    r = _run(provenance={"cmd": "hwsim simulate"})
    d = r.to_json()
    assert d["kind"] == RUN_KIND and is_run_json(d) and not is_run_json({"kind": "x"}) and not is_run_json([1])
    assert d["estimator"]["name"] == "left-hold" and d["estimator"]["total_iterations"] == 30
    assert [(x["iteration"], x["weight"]) for x in d["iterations"]] == [(0, 20), (20, 10)]
    assert d["total"]["sparse"]["cycles"] == 400 and d["training"] == [{"iteration": 0, "loss": 2.0}]
    p = save_run_results(r, tmp_path / "run.json")
    assert json.loads(p.read_text())["kind"] == RUN_KIND
    back = load_run_results(p)
    assert back.replayed == [0, 20] and [x.weight for x in back.iterations] == [20, 10]
    assert back.total_iterations == 30 and back.provenance == {"cmd": "hwsim simulate"}
    assert back.integrated.total("dense").cycles == r.integrated.total("dense").cycles
    assert back.spread() == r.spread()


def test_total_iterations_defaults_to_the_sum_of_weights():
    d = _run().to_json()
    del d["estimator"]
    assert RunResult.from_json(d).total_iterations == 30


@pytest.mark.parametrize(("edit", "msg"), [
    (lambda d: d.update(kind="hwsim-results"), r"^r: field 'kind' is not 'hwsim-run' \(a single-iteration"),
    (lambda d: d.update(iterations=[]), r"^r: field 'iterations' is empty$"),
    (lambda d: d["iterations"][1].pop("weight"), r"^r: iterations\[1\]: field 'weight' is missing or malformed$"),
    (lambda d: d["iterations"][0].pop("layers"), r"^r: iterations\[0\]: field 'layers' is missing or malformed$"),
    (lambda d: d["iterations"].__setitem__(0, 5), r"^r: iterations\[0\] must be an object, got int$"),
    (lambda d: d["iterations"][1].update(weight="x"), r"^r: iterations\[1\]: invalid literal for int\(\)"),
    (lambda d: d["iterations"][0]["layers"][0].pop("pass"),
     r"^r: iterations\[0\]: layers\[0\]: field 'pass' is missing$"),      # the inner error is kept
])
def test_from_json_errors_name_the_field(edit, msg):
    d = json.loads(json.dumps(_run().to_json()))
    edit(d)
    with pytest.raises(ResultsError, match=msg):
        RunResult.from_json(d, where="r")


@pytest.mark.parametrize(("field", "value"), [("weight", 0), ("weight", -3), ("iteration", -1)])
def test_a_run_file_with_a_non_positive_weight_or_negative_iteration_names_the_record(field, value):
    d = json.loads(json.dumps(_run().to_json()))
    d["iterations"][1][field] = value
    with pytest.raises(ResultsError, match=rf"^run.json: iterations\[1\]: field '{field}' .*must be >= [01], got {value}$"):
        RunResult.from_json(d, where="run.json")
