"""Unit tests of hwsim.sweep.points (content keys, stored points), hwsim.sweep.summary's pure helpers (dotted
lookups, Pareto fronts, rankings, number formats) and hwsim.sweep.executor's serial path and errors."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from hwsim.results import times as results_times
from hwsim.sweep import executor, points, summary
from hwsim.sweep.points import PointTask
from hwsim.sweep.spec import SweepError


def _task(key="k1", **kw):
    d = dict(key=key, config_index=2, overrides={"pe.mac_bits": 8}, arch="scnn", trace_label="t",
             trace_path="/tr", iteration=5, seed=1)
    d.update(kw)
    return PointTask(**d)


# ----------------------------------------------------------------------------- points

def test_point_key_changes_with_every_input_and_not_with_dict_order():
    base = dict(arch_dict={"a": 1, "b": {"c": 2}}, trace_sha="s", iteration=3, seed=0)
    k = points.point_key(**base)
    assert len(k) == 32 and k == points.point_key(**{**base, "arch_dict": {"b": {"c": 2}, "a": 1}})
    for change in ({"arch_dict": {"a": 2, "b": {"c": 2}}}, {"trace_sha": "t"}, {"iteration": 4}, {"seed": 1}):
        assert points.point_key(**{**base, **change}) != k, change


def test_trace_sha_ignores_the_creation_time_only():
    man = {"format_version": 3, "created": "2026-01-01", "samples": {"0": "x"}}
    a = points.trace_sha(SimpleNamespace(manifest=man))
    assert a == points.trace_sha(SimpleNamespace(manifest={**man, "created": "2027-05-05"}))
    assert a != points.trace_sha(SimpleNamespace(manifest={**man, "samples": {"0": "y"}}))


def test_write_then_read_a_point(tmp_path):
    t = _task()
    p = points.write_point(tmp_path, t, {"cycles": 7})
    assert p == tmp_path / "points" / "k1.json" == points.point_path(tmp_path, "k1")
    d = points.read_point(p)
    assert d["result"] == {"cycles": 7}
    assert d["point"] == {"key": "k1", "config": 2, "overrides": {"pe.mac_bits": 8}, "arch": "scnn", "trace": "t",
                          "trace_path": "/tr", "iteration": 5, "seed": 1}


@pytest.mark.parametrize("text,match", [
    ("{half", "not valid JSON"), ("[1, 2]", "fields 'point' and 'result' are required"),
    ('{"point": {}}', "fields 'point' and 'result' are required"),
])
def test_read_point_refuses_broken_files_and_says_how_to_recover(tmp_path, text, match):
    p = tmp_path / "x.json"
    p.write_text(text)
    with pytest.raises(ValueError, match=match) as e:
        points.read_point(p)
    assert "delete it to recompute this point" in str(e.value) and str(p) in str(e.value)


# ----------------------------------------------------------------------------- summary helpers

def test_dotted_get_walks_mappings_and_digit_keys():
    d = {"pe": {"mac_bits": 8}, "levels": {0: "dram"}, "x": 3}
    assert summary.dotted_get(d, "pe.mac_bits") == 8
    assert summary.dotted_get(d, "levels.0") == "dram"
    assert summary.dotted_get(d, "pe.missing") is None and summary.dotted_get(d, "x.y") is None
    assert summary.dotted_get(d, "x") == 3


def test_pareto_front_in_three_dimensions_sorted_by_the_first_axis():
    pts = [(3, 1, 1), (1, 3, 3), (2, 2, 2), (2, 2, 3), (4, 4, 0)]
    # (2, 2, 3) is beaten by (2, 2, 2); every other point is best on some axis or trades off
    assert summary.pareto_indices(pts) == [1, 2, 0, 4]
    assert summary.pareto_indices([]) == []
    # equal points do not dominate each other: both stay; (3, 3) is beaten by both
    assert summary.pareto_indices([(3, 3), (2, 2), (2, 2)]) == [1, 2]


def test_area_key_is_the_sparse_area_column():
    assert summary.area_key([{"area_mm2": 1.0}]) == "area_mm2"          # what simulated sweep points record
    assert summary.area_key([{"area_mm2": None}, {"a": 1}]) is None
    assert summary.area_key([{"a": 1}, {"area_mm2_sparse": 2.0, "area_mm2_dense": 1.0}]) == "area_mm2_sparse"


@pytest.mark.parametrize("x,text", [(None, "–"), (2.345, "2.35×"), (12.34, "12.3×"), (150.4, "150×"),
                                    (9.999, "10.00×"), (10.0, "10.0×"), (100.0, "100×")])
def test_times(x, text):
    assert summary.times(x) == text
    assert summary.times is results_times  # the sweep summaries use the one formatter of hwsim.results


@pytest.mark.parametrize("pj,text", [(1.5e9, "1.5 mJ"), (999.0, "999 pJ"), (1e3, "1 nJ"), (-2.5e6, "-2.5 µJ"),
                                     (0.0, "0 pJ")])
def test_format_energy_picks_the_unit_by_magnitude(pj, text):
    assert summary.format_energy(pj) == text


def test_ranking_lines_per_trace_skip_rows_without_cycles_and_name_the_base_arch():
    rows = [
        {"trace": "a", "cycles_sparse": 200.0, "energy_pj_sparse": 5e3, "speedup_sparse": 2.0},
        {"trace": "a", "cycles_sparse": 100.0, "energy_pj_sparse": 5e3, "speedup_sparse": None},
        {"trace": "b", "cycles_sparse": None, "energy_pj_sparse": 1.0},
    ]
    lines = summary.ranking_lines(rows, [])
    assert lines[0] == "trace a (2 points):"
    assert lines[1] == "  fewest cycles: 100 cycles — base arch (speed-up over its own dense –)"
    # equal energy: the tie goes to fewer cycles
    assert lines[2] == "  least energy: 5 nJ — base arch (speed-up over its own dense –)"
    assert lines[3] == "  Pareto front (cycles / energy): 1 of 2 points"
    assert lines[4] == "    100 cycles, 5 nJ — base arch"
    assert not any("trace b" in ln for ln in lines)


# ----------------------------------------------------------------------------- executor

def test_run_points_serial_calls_on_result_in_order_and_counts():
    got = []
    n = executor.run_points([_task("a"), _task("b")], lambda t: {"k": t.key},
                            on_result=lambda t, r: got.append((t.key, r)), describe=lambda t: t.key)
    assert n == 2 and got == [("a", {"k": "a"}), ("b", {"k": "b"})]


def test_run_points_failure_names_the_point_and_keeps_earlier_results():
    got = []

    def evaluate(t):
        if t.key == "b":
            raise ZeroDivisionError("division by zero")
        return 1

    with pytest.raises(SweepError, match=r"^point b: ZeroDivisionError: division by zero$") as e:
        executor.run_points([_task("a"), _task("b"), _task("c")], evaluate, on_result=lambda t, r: got.append(t.key),
                            describe=lambda t: f"point {t.key}")
    assert got == ["a"] and isinstance(e.value.__cause__, ZeroDivisionError)


def test_run_points_refuses_bad_jobs_and_does_nothing_without_tasks():
    with pytest.raises(SweepError, match="--jobs: 0 must be >= 1"):
        executor.run_points([_task()], lambda t: 1, on_result=lambda t, r: None, describe=str, jobs=0)
    called = []
    assert executor.run_points([], called.append, on_result=lambda t, r: None, describe=str, jobs=4) == 0
    assert called == []


def test_run_points_without_tasks_does_not_contact_a_scheduler(monkeypatch):
    def no_dask(*a, **k):
        raise AssertionError("connected for nothing")

    monkeypatch.setattr(executor, "connect_dask", no_dask)
    assert executor.run_points([], lambda t: 1, on_result=lambda t, r: None, describe=str,
                               scheduler="tcp://127.0.0.1:1") == 0


def test_run_points_one_task_with_many_jobs_stays_in_process(monkeypatch):
    def no_pool(*a, **k):
        raise AssertionError("a pool for a single task")

    monkeypatch.setattr(executor, "_run_pool", no_pool)
    assert executor.run_points([_task()], lambda t: 1, on_result=lambda t, r: None, describe=str, jobs=8) == 1


def test_connect_dask_needs_a_scheme():
    with pytest.raises(SweepError, match=r"--scheduler: 'localhost:8786' must look like tcp://HOST:PORT"):
        executor.connect_dask("localhost:8786")


def test_collect_rows_skips_points_not_on_disk(tmp_path):
    spec = SimpleNamespace(parameters=(), traces=())
    assert summary.collect_rows(spec, tasks=[_task("nothing-here")], out=tmp_path) == []


def test_sweep_provenance_falls_back_to_the_arch_file_name(tmp_path):
    spec = SimpleNamespace(arch=str(tmp_path / "nope.yaml"))
    prov = summary.sweep_provenance(spec, tasks=[], out=tmp_path)
    assert prov["arch"] == {"file": str(tmp_path / "nope.yaml")} and prov["traces"] == {}
    json.dumps(prov)  # JSON-ready


def test_sweep_provenance_takes_each_trace_once_and_the_base_arch_from_an_unmodified_point(tmp_path):
    tasks = [_task("p1", trace_label="t1"), _task("p2", trace_label="t1", overrides={}),
             _task("p3", trace_label="t2", overrides={})]
    provs = {"p1": {"trace": {"model": "first"}, "arch": {"name": "overridden"}},
             "p2": {"trace": {"model": "second"}, "arch": {"name": "base"}},
             "p3": {"trace": {"model": "third"}, "arch": {"name": "base too"}}}
    for t in tasks:
        points.write_point(tmp_path, t, {"provenance": provs[t.key]})
    prov = summary.sweep_provenance(SimpleNamespace(arch="scnn"), tasks=tasks, out=tmp_path)
    assert prov["traces"] == {"t1": {"model": "first"}, "t2": {"model": "third"}}
    assert prov["arch"] == {"name": "base"}  # p1 has overrides: not the base arch
