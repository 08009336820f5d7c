"""Whole-run replays: iteration selection, the left-hold integral, run results JSON, CLI, resumability, Dask."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import hwsim
from hwsim.results import load_results, save_results
from hwsim.results.run import RunResult, hold_weights, load_run_results, save_run_results
from hwsim.sweep.replays import gemms_per_iteration, replay_tasks, run_replays, select_iterations
from hwsim.sweep.spec import SweepError
from hwsim.trace.format import load

SAMPLE = Path(__file__).resolve().parents[1] / "traces" / "samples" / "lenet5-digits-dither"


@pytest.fixture(scope="module")
def trace():
    return load(SAMPLE)


@pytest.fixture(scope="module")
def run(trace):
    return hwsim.simulate_run(trace, "scnn", iterations="0,20,45")


def test_select_iterations():
    s = [0, 10, 20, 30, 40, 45]
    assert select_iterations(s, "all") == s
    assert select_iterations(s, "last") == select_iterations(s, None) == [45]
    assert select_iterations(s, "every:2") == [0, 20, 40, 45]
    assert select_iterations(s, "every:10") == [0, 45]
    assert select_iterations(s, "30,0") == [0, 30]
    assert select_iterations(s, [10]) == [10]
    for bad in ("7", "every:0", "every:x", "first", ""):
        with pytest.raises(SweepError, match="allowed: all, last, every:N"):
            select_iterations(s, bad)


def test_hold_weights_cover_the_run():
    assert hold_weights([0, 10, 45], 46) == [10, 35, 1]
    assert hold_weights([5, 10], 20) == [10, 10]      # the first also stands for 0..4
    assert sum(hold_weights([3, 7, 8], 100)) == 100
    assert hold_weights([9], 3) == [10]               # a run shorter than its samples: up to the last sample
    with pytest.raises(ValueError, match="sorted and distinct"):
        hold_weights([10, 0], 20)


def test_integral_is_the_weighted_sum_of_single_iteration_replays(trace, run):
    assert run.replayed == [0, 20, 45] and [r.weight for r in run.iterations] == [20, 25, 1]
    assert run.total_iterations == 46
    singles = {it: hwsim.simulate(trace, "scnn", iteration=it) for it in (0, 20, 45)}
    whole = run.integrated
    for v in ("sparse", "dense", "dense_gated", "ideal"):
        exp_c = sum(w * singles[it].total(v).cycles for it, w in ((0, 20), (20, 25), (45, 1)))
        exp_e = sum(w * singles[it].total(v).energy_pj for it, w in ((0, 20), (20, 25), (45, 1)))
        assert whole.total(v).cycles == exp_c
        assert math.isclose(whole.total(v).energy_pj, exp_e, rel_tol=1e-12)
        for k, x in whole.total(v).cycle_breakdown.to_json().items():   # every cause integrates too
            assert x == sum(w * singles[it].total(v).cycle_breakdown.to_json()[k]
                            for it, w in ((0, 20), (20, 25), (45, 1)))
    d = sum(w * singles[it].total("dense").cycles for it, w in ((0, 20), (20, 25), (45, 1)))
    s = sum(w * singles[it].total("sparse").cycles for it, w in ((0, 20), (20, 25), (45, 1)))
    assert whole.speedup() == pytest.approx(d / s, rel=1e-12)
    assert run.last.speedup() == singles[45].speedup()
    # the integrated record adds up: layers → passes → total
    assert whole.total("sparse").cycles == sum(whole.pass_total(p, "sparse").cycles
                                               for p in ("forward", "backward_data", "backward_weight", "update"))


def test_spread_brackets_the_iterations(run):
    sp = run.spread()
    per = [r.result.speedup() for r in run.iterations]
    st = sp["iteration"]["speedup"]
    assert st["min"] == min(per) and st["max"] == max(per)
    assert st["min"] <= st["p10"] <= st["p50"] <= st["p90"] <= st["max"]
    assert st["mean"] == pytest.approx(sum(per) / len(per))
    assert "features.0/forward" in sp["layers"]


def test_run_json_round_trip_and_single_iteration_files_still_load(tmp_path, run, trace):
    p = save_run_results(run, tmp_path / "run.json")
    back = load_run_results(p)
    assert back.replayed == run.replayed and back.total_iterations == run.total_iterations
    assert back.integrated.to_json()["total"] == run.integrated.to_json()["total"]
    assert len(back.training) == len(trace.iterations) and back.training[0]["dz_density"] > 0
    as_single = load_results(p)           # a run file reads as its whole-run cost
    assert as_single.total("sparse").cycles == run.integrated.total("sparse").cycles
    single = save_results(run.last, tmp_path / "single.json")
    assert load_results(single).speedup() == run.last.speedup()
    with pytest.raises(ValueError, match="'kind' is not 'hwsim-run'"):
        load_run_results(single)


def test_cli_whole_run_resumes_from_its_points(tmp_path, capsys):
    from hwsim.cli import main

    out = tmp_path / "run.json"
    args = ["simulate", str(SAMPLE), "--arch", "scnn", "--iterations", "every:3", "--out", str(out), "--quiet", "--overwrite"]
    assert main(args) == 0
    first = json.loads(out.read_text())
    points = sorted((tmp_path / "run.points" / "points").glob("*.json"))
    assert len(points) == 3 and [it["iteration"] for it in first["iterations"]] == [0, 30, 45]
    # resume: a stored point is read back, not recomputed (tamper with it and see it come back)
    doc = json.loads(points[0].read_text())
    doc["result"]["layers"][0]["sparse"]["breakdown"]["cycles"]["compute"] += 1000
    doc["result"]["layers"][0]["sparse"]["cycles"] += 1000
    points[0].write_text(json.dumps(doc))
    assert main(args) == 0
    second = json.loads(out.read_text())
    assert second["total"]["sparse"]["cycles"] != first["total"]["sparse"]["cycles"]
    assert main(["simulate", str(SAMPLE), "--arch", "scnn", "--iterations", "every:3", "--inference",
                 "--out", str(out), "--overwrite"]) == 2
    assert "--inference" in capsys.readouterr().err


def test_dask_local_cluster_matches_in_process(tmp_path, trace):
    distributed = pytest.importorskip("distributed")
    tasks = replay_tasks(SAMPLE, [("scnn", {})], [10, 45])
    local = run_replays(tasks, gemms=gemms_per_iteration(trace), progress=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as c:
        dask = run_replays(tasks, gemms=gemms_per_iteration(trace), out=tmp_path, scheduler=c.scheduler_address,
                           progress=False)
    assert set(local) == set(dask) == {t.key for t in tasks}
    for k in local:
        assert local[k].to_json()["layers"] == dask[k].to_json()["layers"]
    assert len(list((tmp_path / "points").glob("*.json"))) == 2
    r = RunResult.build([(t.iteration, dask[t.key]) for t in tasks], total_iterations=46)
    assert [x.weight for x in r.iterations] == [45, 1]


def test_report_shows_cost_over_training_only_for_run_files(tmp_path, run):
    from hwsim.report.build import build_report

    p = save_run_results(run, tmp_path / "run.json")
    single = save_results(run.last, tmp_path / "single" / "results.json")
    out = build_report([p, single], out=tmp_path / "rep", dpi=60)
    names = [s.name for s in out.plots]
    assert sum(n.endswith("_run_cost") for n in names) == 1 and sum(n.endswith("_run_summary") for n in names) == 1
    rows = json.loads(next(s.json for s in out.plots if s.name.endswith("_run_summary")).read_text())
    it = next(r for r in rows if r["pass"] == "iteration" and r["figure"] == "speedup")
    assert it["whole_run"] == pytest.approx(run.integrated.speedup())
    assert it["last_iteration"] == pytest.approx(run.last.speedup())


def test_a_replayed_partial_batch_standing_for_full_ones_is_a_caveat():
    from hwsim.sweep.replays import _batch_caveats
    from hwsim.trace.records import IterationRecord, LayerStats

    def it(i, n):  # n non-zeros at density 0.5 → 2n δz elements
        return IterationRecord(index=i, layers={"fc": LayerStats(density=0.5, hist=(n, 0))})

    stats = [it(i, 64) for i in range(10)]
    assert _batch_caveats(stats, [0, 5], 10) == []
    stats[5] = it(5, 29)  # the replayed iteration 5 is a partial batch standing for 5..9
    (c,) = _batch_caveats(stats, [0, 5], 10)
    assert "iteration 5" in c and "45%" in c and "underestimated" in c
    stats[5], stats[0] = it(5, 64), it(0, 128)  # the first stands for 0..4, whose typical batch is half its own
    (c,) = _batch_caveats(stats, [0, 5], 10)
    assert "iteration 0" in c and "200%" in c and "overestimated" in c


def test_run_results_carry_the_provenance_of_the_whole_replay(tmp_path, run):
    p = save_run_results(run, tmp_path / "run.json")
    prov = json.loads(p.read_text())["provenance"]
    assert prov["trace"]["replayed_iterations"] == [0, 20, 45]
    assert prov["arch"]["name"] == "scnn" and len(prov["arch"]["hash"]) == 64
    assert prov["mode"].startswith("whole training run")
    assert load_run_results(p).provenance == prov  # read back with the records


def test_layers_recorded_on_sampled_iterations_only_do_not_look_like_a_larger_batch():
    """Fused attention's QKᵀ has statistics on sampled iterations only: no partial-batch caveat from that."""
    from hwsim.sweep.replays import _batch_caveats
    from hwsim.trace.records import IterationRecord, LayerStats

    def it(i, sampled):
        layers = {"fc": LayerStats(density=0.5, hist=(64, 0))}
        if sampled:
            layers["attn:qk"] = LayerStats(density=0.5, hist=(32, 0))
        return IterationRecord(index=i, layers=layers)

    stats = [it(i, i in (0, 5)) for i in range(10)]
    assert _batch_caveats(stats, [0, 5], 10) == []
