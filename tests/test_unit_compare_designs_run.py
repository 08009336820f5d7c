"""compare_designs over a whole run (hwsim.sweep.designs, iterations="all"): the row is the left-hold integral of
the replayed iterations, weights worked out by hand for the shipped lenet5 sample; per-label iteration modes."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwsim.arch import load_arch
from hwsim.results import SimResult
from hwsim.results.designs import BASELINE, SCOPES, check_comparison, equal_area_figures
from hwsim.sim import simulate
from hwsim.sweep.designs import compare_designs
from hwsim.trace.format import load

SAMPLE = Path(__file__).resolve().parents[1] / "traces" / "samples" / "lenet5-digits-dither"
# The sample: 46 training iterations, sampled at 0, 10, 20, 30, 40, 45 (45: an epoch's short batch of 29).
# Left-hold: each sampled iteration stands for itself up to the next sampled one − 1, the last up to 45:
HELD = {0: 10, 10: 10, 20: 10, 30: 10, 40: 5, 45: 1}


def _one(iteration: int) -> SimResult:
    """One sampled iteration on scnn, simulated on its own (seed 0, as the comparison's points)."""
    return simulate(load(SAMPLE, verify=False), load_arch("scnn"), iteration=iteration, seed=0, progress=False)


@pytest.fixture(scope="module")
def doc(tmp_path_factory):
    trace = load(SAMPLE, verify=False)
    assert trace.sampled_iterations == sorted(HELD) and len(trace.iterations) == sum(HELD.values()) == 46
    return compare_designs({"whole": trace, "last": trace}, ["scnn", "systolic32"], iterations={"whole": "all"},
                           cache_dir=tmp_path_factory.mktemp("points"))


def test_the_trace_notes_say_which_iterations_were_replayed(doc):
    check_comparison(doc, "doc")
    whole, last = doc["traces"]
    assert whole["replayed"] == "whole run: 6 sampled iterations of 46, integrated"
    assert last["replayed"] == "last full batch: iteration 40 of 46"  # a label not in the mapping: "last"
    summ = load(SAMPLE, verify=False).summary
    assert whole["iterations"] == 46 and whole["dz_density"] == summ["weighted_density"]
    assert whole["test_acc"] == summ["test_acc"]
    assert [(r["model"], r["design"]) for r in doc["rows"]] == [("whole", "scnn"), ("whole", "systolic32"),
                                                                ("last", "scnn"), ("last", "systolic32")]


def test_the_whole_run_row_weights_each_iteration_by_the_iterations_it_stands_for(doc):
    per = {i: _one(i) for i in HELD}
    for scope in ("forward", "backward_weight", "iteration"):
        ea = sum(w * per[i].scope_cycles(scope, BASELINE) for i, w in HELD.items())
        mine = sum(w * per[i].scope_cycles(scope, "sparse") for i, w in HELD.items())
        assert doc["rows"][0]["speedup"][scope] == pytest.approx(ea / mine, rel=1e-12), scope
    ea_e = sum(w * per[i].scope_total("iteration", BASELINE).energy_pj for i, w in HELD.items())
    my_e = sum(w * per[i].scope_total("iteration", "sparse").energy_pj for i, w in HELD.items())
    assert doc["rows"][0]["energy_gain"]["iteration"] == pytest.approx(ea_e / my_e, rel=1e-12)
    # and not the unweighted mean of the iterations (the short batch 45 would count as much as 40 … 44)
    flat = sum(per[i].scope_cycles("iteration", BASELINE) for i in HELD) / sum(
        per[i].scope_cycles("iteration", "sparse") for i in HELD)
    assert doc["rows"][0]["speedup"]["iteration"] != pytest.approx(flat, rel=1e-9)


def test_the_last_batch_row_is_iteration_40_alone(doc):
    assert doc["rows"][2] == {"model": "last", "design": "scnn", **equal_area_figures(_one(40))}


def test_systolic32_is_its_own_equal_area_array_over_the_run_too(doc):
    for row in (doc["rows"][1], doc["rows"][3]):
        assert row["equal_area_shape"] == [32, 32] and row["equal_area_mm2"] == row["area_mm2"]
        assert row["speedup"] == {s: pytest.approx(1.0) for s in SCOPES}
        assert row["energy_gain"] == {s: pytest.approx(1.0) for s in SCOPES}
    sys32 = next(d for d in doc["designs"] if d["design"] == "systolic32")
    assert sys32["traces"] == 2 and sys32["speedup_geomean"] == pytest.approx(1.0)


def test_the_design_summary_is_the_geomean_of_the_two_rows(doc):
    sc = next(d for d in doc["designs"] if d["design"] == "scnn")
    a, b = doc["rows"][0]["speedup"]["iteration"], doc["rows"][2]["speedup"]["iteration"]
    assert sc["speedup_geomean"] == pytest.approx((a * b) ** 0.5)
    assert (sc["speedup_min"], sc["speedup_max"]) == (min(a, b), max(a, b))
