"""Unit tests of hwsim.sweep.replays: iteration selection, task keys, resuming from stored points."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from _hwsim_fixtures import fake_evaluate

from hwsim.sweep.points import point_path
from hwsim.sweep.replays import gemms_per_iteration, replay_tasks, run_replays, select_iterations
from hwsim.sweep.spec import SweepError

SAMPLE = Path(__file__).resolve().parents[1] / "traces" / "samples" / "lenet5-digits-dither"
ITS = [0, 5, 10, 15, 20, 25, 30]


# ---- select_iterations ----

def test_all_and_last():
    assert select_iterations([30, 0, 10], "all") == [0, 10, 30]  # sorted
    assert select_iterations([30, 0, 10], "last") == [30]
    assert select_iterations([30, 0, 10], None) == [30]


@pytest.mark.parametrize("n,want", [(1, ITS), (2, [0, 10, 20, 30]), (3, [0, 15, 30]), (4, [0, 20, 30]),
                                    (7, [0, 30]), (100, [0, 30])])
def test_every_n_counts_sampled_iterations_and_keeps_the_last(n, want):
    assert select_iterations(ITS, f"every:{n}") == want


@pytest.mark.parametrize("spec", ["every:0", "every:-2", "every:x", "every:", "every:1.5"])
def test_every_bad_n(spec):
    with pytest.raises(SweepError) as ei:
        select_iterations(ITS, spec)
    msg = str(ei.value)
    assert msg.startswith("--iterations: ") and repr(spec) in msg and "N must be an integer >= 1" in msg
    assert str(ITS) in msg  # names what is allowed


def test_list_spec():
    assert select_iterations(ITS, "20,5") == [5, 20]
    assert select_iterations(ITS, " 20 , 5 ,") == [5, 20]  # spaces and a trailing comma
    assert select_iterations(ITS, "5,5") == [5]
    assert select_iterations(ITS, 25) == [25]
    assert select_iterations(ITS, [30, 0]) == [0, 30]
    assert select_iterations(ITS, (10,)) == [10]


def test_list_with_unsampled_iteration_names_it():
    with pytest.raises(SweepError, match=r"\[7, 8\] not sampled in the trace; allowed: all, last, every:N"):
        select_iterations(ITS, "0,7,8")
    with pytest.raises(SweepError, match=r"\[3\] not sampled"):
        select_iterations(ITS, 3)


@pytest.mark.parametrize("spec", ["first", "1-3", "a,b"])
def test_unknown_words_are_not_understood(spec):
    with pytest.raises(SweepError, match=f"{spec!r} is not understood; allowed"):
        select_iterations(ITS, spec)


def test_empty_list_refused():
    with pytest.raises(SweepError, match=r"\[\] not sampled"):
        select_iterations(ITS, "")
    with pytest.raises(SweepError, match="not sampled"):
        select_iterations(ITS, [])


def test_trace_without_samples():
    with pytest.raises(SweepError, match="the trace has no sampled iteration"):
        select_iterations([], "all")


# ---- gemms_per_iteration ----

def _fake_trace(meta, flags):
    return SimpleNamespace(meta=meta, grad_flags=lambda iteration=None: dict(enumerate(flags)))


@pytest.mark.parametrize("meta,n,want", [({}, 5, 14), ({"first_layer_input_grad": True}, 5, 15),
                                         ({"first_layer_input_grad": False}, 1, 2), ({}, 0, 0)])
def test_gemms_per_iteration(meta, n, want):
    assert gemms_per_iteration(_fake_trace(meta, [(None, None)] * n)) == want


@pytest.mark.parametrize("flags,want", [([(True, True), (True, True)], 6),      # embedding first: δa of layer 0 ran
                                        ([(False, True), (True, False)], 4),    # input first, frozen second layer
                                        ([(None, None), (True, None)], 5)])     # partly recorded: the old rule fills in
def test_gemms_per_iteration_counts_the_recorded_passes(flags, want):
    assert gemms_per_iteration(_fake_trace({"first_layer_input_grad": False}, flags)) == want


# ---- replay_tasks ----

def test_replay_tasks_one_per_arch_and_iteration():
    archs = [("scnn", {}), ("scnn", {"pe_array.rows": 4})]
    tasks = replay_tasks(SAMPLE, archs, [0, 45], seed=3)
    assert [(t.config_index, t.iteration) for t in tasks] == [(0, 0), (0, 45), (1, 0), (1, 45)]
    assert len({t.key for t in tasks}) == 4  # every arch × iteration its own key
    assert all(t.seed == 3 and t.trace_label == SAMPLE.name and t.trace_path == str(SAMPLE) for t in tasks)
    assert tasks[2].overrides == {"pe_array.rows": 4} and tasks[0].overrides == {}
    assert tasks[0].arch == "scnn"


def test_replay_task_keys_are_content_hashes():
    a = replay_tasks(SAMPLE, [("scnn", {})], [0])[0].key
    assert a == replay_tasks(SAMPLE, [("scnn", {})], [0])[0].key  # stable
    assert a != replay_tasks(SAMPLE, [("scnn", {})], [0], seed=1)[0].key
    assert a != replay_tasks(SAMPLE, [("scnn", {})], [45])[0].key
    assert a != replay_tasks(SAMPLE, [("scnn", {"pe_array.rows": 2})], [0])[0].key


# ---- run_replays ----

def _tasks():
    return replay_tasks(SAMPLE, [("scnn", {}), ("scnn", {"pe_array.rows": 4})], [0, 45])


class _Counting:
    def __init__(self):
        self.calls = []

    def __call__(self, task):
        self.calls.append(task.key)
        return fake_evaluate(task)


def test_run_replays_in_memory():
    tasks = _tasks()
    ev = _Counting()
    got = run_replays(tasks, gemms=14, progress=False, evaluate=ev)
    assert set(got) == {t.key for t in tasks} and sorted(ev.calls) == sorted(got)
    for t in tasks:
        assert got[t.key].to_json() == fake_evaluate(t)


def test_run_replays_stores_and_resumes(tmp_path):
    tasks = _tasks()
    first = run_replays(tasks[:2], gemms=14, out=tmp_path, progress=False, evaluate=_Counting())
    for t in tasks[:2]:
        doc = json.loads(point_path(tmp_path, t.key).read_text())
        assert doc["point"]["iteration"] == t.iteration and doc["result"] == fake_evaluate(t)
    # tamper with a stored point: resuming reads it back rather than recomputing it
    p = point_path(tmp_path, tasks[0].key)
    doc = json.loads(p.read_text())
    doc["result"]["trace"]["model"] = "from-disk"
    p.write_text(json.dumps(doc))
    ev = _Counting()
    got = run_replays(tasks, gemms=14, out=tmp_path, progress=False, evaluate=ev)
    assert sorted(ev.calls) == sorted(t.key for t in tasks[2:])  # only the missing ones ran
    assert got[tasks[0].key].trace["model"] == "from-disk"
    assert got[tasks[1].key].to_json() == first[tasks[1].key].to_json()
    assert len(list((tmp_path / "points").glob("*.json"))) == 4
    ev2 = _Counting()
    run_replays(tasks, gemms=14, out=tmp_path, progress=False, evaluate=ev2)
    assert ev2.calls == []  # all done: nothing evaluated


def test_run_replays_failure_names_iteration_and_arch(tmp_path):
    tasks = _tasks()

    def boom(task):
        if task.iteration == 45:
            raise RuntimeError("no such layer")
        return fake_evaluate(task)

    with pytest.raises(SweepError, match="iteration 45 on scnn: RuntimeError: no such layer"):
        run_replays(tasks, gemms=14, out=tmp_path, progress=False, evaluate=boom)
    assert point_path(tmp_path, tasks[0].key).exists()  # the points before the failure are kept


def test_run_replays_rejects_bad_jobs():
    with pytest.raises(SweepError, match="--jobs: 0 must be >= 1"):
        run_replays(_tasks(), gemms=1, jobs=0, progress=False, evaluate=fake_evaluate)


def test_corrupt_stored_point_is_a_clear_error(tmp_path):
    tasks = _tasks()[:1]
    p = point_path(tmp_path, tasks[0].key)
    p.parent.mkdir(parents=True)
    p.write_text("{not json")
    with pytest.raises(ValueError, match="delete it to recompute this point"):
        run_replays(tasks, gemms=1, out=tmp_path, progress=False, evaluate=fake_evaluate)


# ---- the architecture file is read once per process ----

def _count_yaml_reads(monkeypatch) -> list[str]:
    """Every read of an architecture YAML file from now on (hwsim.arch.loader.read_yaml), caches cleared."""
    import hwsim.arch.loader as loader
    from hwsim.results import provenance
    from hwsim.sweep import evaluate

    for cached in (evaluate._arch, evaluate._read_arch_file, provenance._base_params):
        cached.cache_clear()
    calls: list[str] = []
    real = loader.read_yaml
    monkeypatch.setattr(loader, "read_yaml", lambda p: calls.append(str(p)) or real(p))
    return calls


@pytest.mark.filterwarnings("ignore:.*partial mini-batch")  # the sample's last iteration is an epoch's last
@pytest.mark.parametrize("how", ["path", "path+overrides", "arch", "arch+overrides"])
def test_an_in_process_whole_run_reads_the_arch_file_once(tmp_path, monkeypatch, how):
    """Once per process: the parent (validate, point keys, provenance) and the points it evaluates itself (jobs=1)
    share one read and one validated Arch (a worker in another process, jobs > 1, reads it again)."""
    import hwsim
    from hwsim.arch import ARCH_DIR, load_arch
    from hwsim.results.provenance import for_simulation
    from hwsim.trace.format import load

    f = tmp_path / "a.yaml"
    f.write_text((ARCH_DIR / "scnn.yaml").read_text())
    ov = {"memory.dram_bytes_per_cycle": 64} if how.endswith("overrides") else {}
    arch = load_arch(str(f), ov or None)
    trace = load(SAMPLE, verify=False)
    calls = _count_yaml_reads(monkeypatch)
    if how.startswith("arch"):
        run = hwsim.simulate_run(trace, arch, iterations="last", jobs=1)
    else:
        run = hwsim.simulate_run(trace, str(f), iterations="last", jobs=1, overrides=ov)
    assert calls == [str(f)]
    # the same provenance as reading the file for it, and the same point as the per-config load
    assert run.provenance["arch"]["overrides"] == for_simulation(trace, arch, iteration=[0])["arch"]["overrides"]
    assert run.provenance["arch"]["overrides"] == ({"memory.dram_bytes_per_cycle": 64.0} if ov else {})
    it = trace.sampled_iterations[-1]
    assert run.last.provenance["arch"] == for_simulation(trace, arch, iteration=it)["arch"]
    loaded = replay_tasks(trace, [(str(f), ov)], [it], loaded=[arch])[0].key
    assert loaded == replay_tasks(SAMPLE, [(str(f), ov)], [it])[0].key


# ---- in-process points: the records themselves, the caller's trace ----

@pytest.mark.filterwarnings("ignore:.*partial mini-batch")
def test_in_process_points_skip_the_json_round_trip_and_replay_the_callers_trace(tmp_path, monkeypatch):
    from hwsim.results import SimResult
    from hwsim.sweep import evaluate
    from hwsim.trace.format import load

    trace = load(SAMPLE, verify=False)
    it = trace.sampled_iterations[-1]
    tasks = replay_tasks(trace, [("scnn", {})], [it])
    via_json = SimResult.from_json(evaluate.evaluate_point(tasks[0]))
    rebuilt = []
    real = SimResult.from_json
    monkeypatch.setattr(SimResult, "from_json", classmethod(lambda cls, d, **kw: rebuilt.append(1) or real(d, **kw)))
    got = run_replays(tasks, gemms=14, out=tmp_path, progress=False)[tasks[0].key]
    assert rebuilt == []                                    # no JSON read back in-process
    def figures(r):  # everything but the wall time
        return {**r.to_json(), "run": {k: v for k, v in r.run.items() if k != "wall_s"}}

    assert figures(got) == figures(via_json)                 # the same records as through the JSON
    stored = json.loads(point_path(tmp_path, tasks[0].key).read_text())["result"]
    assert stored == json.loads(json.dumps(got.to_json()))  # still stored (JSON: tuples as lists)
    run_replays(tasks, gemms=14, out=tmp_path, progress=False)  # resumed from the stored point: read back
    assert rebuilt == [1]
    assert evaluate._trace(SAMPLE) is not trace
    with evaluate.given_trace(trace):
        assert evaluate._trace(SAMPLE) is trace
    assert evaluate._trace(SAMPLE) is not trace
