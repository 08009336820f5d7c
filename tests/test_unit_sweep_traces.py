"""Unit tests of hwsim.sweep.traces and hwsim.sweep.runner.plan_points on tiny synthetic traces: where synthetic
traces are generated and reused, which iteration is replayed, and how points are keyed and de-duplicated."""

from __future__ import annotations

import pytest

from hwsim.sweep import traces as swt
from hwsim.sweep.runner import plan_points
from hwsim.sweep.spec import SweepError, parse_sweep

TINY = {"model": "lenet5", "w_density": 0.5, "a_density": 0.5, "dz_density": 0.2, "batch": 1, "seed": 0}


def _spec(traces, grid=None, **kw):
    doc = {"version": 1, "arch": "scnn", "grid": grid or {"pe.mac_bits": [16]}, "traces": traces, **kw}
    return parse_sweep(doc, validate_arch=False)


def test_synthetic_kwargs_drop_unset_fields():
    assert swt.synthetic_kwargs({"model": "lenet5", "batch": None, "seed": 0}) == {"model": "lenet5", "seed": 0}


def test_a_synthetic_trace_is_generated_once_under_a_hashed_safe_name(tmp_path):
    spec = _spec([{"name": "my trace/1", "synthetic": TINY}])
    (r,) = swt.prepare_traces(spec, out=tmp_path)
    assert r.path.parent == tmp_path / "traces" and r.path.name.startswith("my_trace_1-")
    assert (r.path / "manifest.json").exists() and r.meta["method"] == "synthetic"
    assert r.iteration == 0 and len(r.sha) == 64
    stamp = (r.path / "manifest.json").stat().st_mtime_ns
    (again,) = swt.prepare_traces(spec, out=tmp_path)  # found on disk: not generated again
    assert again.path == r.path and (r.path / "manifest.json").stat().st_mtime_ns == stamp
    assert not [p for p in (tmp_path / "traces").iterdir() if p.name.startswith(".")]  # no temporary left


def test_same_label_different_synthetic_spec_gets_its_own_folder(tmp_path):
    (a,) = swt.prepare_traces(_spec([{"name": "t", "synthetic": TINY}]), out=tmp_path)
    (b,) = swt.prepare_traces(_spec([{"name": "t", "synthetic": {**TINY, "dz_density": 0.3}}]), out=tmp_path)
    assert a.path != b.path and a.sha != b.sha


def test_a_failed_generation_leaves_no_folder_behind(tmp_path, monkeypatch):
    def synthesize(path, **kw):
        path.mkdir(parents=True)
        (path / "manifest.json").write_text("{}")  # half written
        raise TypeError("synthesize() got an unexpected keyword argument 'per_layer'")

    monkeypatch.setattr("hwsim.trace.synth.synthesize", synthesize)
    with pytest.raises(SweepError, match=r"trace 'x': synthetic spec .*unexpected keyword argument 'per_layer'"):
        swt.prepare_traces(_spec([{"name": "x", "synthetic": TINY}]), out=tmp_path)
    assert list((tmp_path / "traces").iterdir()) == []


def test_a_path_that_is_not_a_trace_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SweepError, match=r"trace 'empty': .*empty is not a trace directory \(no manifest.json\)"):
        swt.prepare_traces(_spec([str(tmp_path / "empty")]), out=tmp_path)


def test_an_iteration_that_was_not_sampled_is_refused(tmp_path):
    with pytest.raises(SweepError, match=r"iteration 3 was not sampled; sampled: \[0\]"):
        swt.prepare_traces(_spec([{"synthetic": TINY, "iteration": 3}]), out=tmp_path)
    with pytest.raises(SweepError, match="iteration 5 was not sampled"):
        swt.prepare_traces(_spec([{"synthetic": TINY}], iteration=5), out=tmp_path)


def test_plan_points_one_task_per_config_trace_and_seed(tmp_path):
    spec = _spec([{"name": "t", "synthetic": TINY}], grid={"pe.mac_bits": [8, 16]}, seeds=[0, 1])
    tasks = plan_points(spec, out=tmp_path)
    assert [(t.config_index, t.seed) for t in tasks] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert len({t.key for t in tasks}) == 4 and all(t.trace_label == "t" and t.iteration == 0 for t in tasks)
    assert tasks[2].overrides == {"pe.mac_bits": 16} and tasks[0].arch == "scnn"


def test_plan_points_computes_two_spellings_of_one_arch_once(tmp_path):
    # scnn.yaml's MAC width is 8 bits: overriding it with 8 is the base architecture again
    spec = parse_sweep({"version": 1, "arch": "scnn", "list": [{}, {"pe.mac_bits": 8}],
                        "traces": [{"synthetic": TINY}]}, validate_arch=False)
    tasks = plan_points(spec, out=tmp_path)
    assert [t.config_index for t in tasks] == [0]


def test_plan_points_names_a_config_the_arch_refuses(tmp_path):
    spec = _spec([{"synthetic": TINY}], grid={"pe.mac_bits": [64]})
    with pytest.raises(SweepError, match=r"point 0 \(pe.mac_bits=64\)"):
        plan_points(spec, out=tmp_path)


def test_a_captured_trace_replays_its_last_full_batch_by_default(tmp_path):
    """iteration: null → the last sampled iteration with a full mini-batch (the sample's 45 is a batch of 29 of 64),
    an explicit iteration as given."""
    from pathlib import Path

    sample = Path(__file__).resolve().parents[1] / "traces" / "samples" / "lenet5-digits-dither"
    (r,) = swt.prepare_traces(_spec([{"name": "s", "path": str(sample)}]), out=tmp_path)
    assert r.iteration == 40
    (r,) = swt.prepare_traces(_spec([{"name": "s", "path": str(sample), "iteration": 45}]), out=tmp_path)
    assert r.iteration == 45
