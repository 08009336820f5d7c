"""Unit tests of hwsim.experiments.demo without training or simulating: the plans, the step order and timings of
run_demo, reusing complete traces, and how the two sweeps are specialised (the expensive steps are stand-ins)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from hwsim.experiments import demo
from hwsim.experiments.demo import FULL, QUICK, DemoPlan, ExtraTrace


def test_full_plan_samples_the_first_batch_of_every_epoch():
    # the digits' 1,437 training images at batch 64: ⌈1437 / 64⌉ = 23 iterations per epoch
    assert FULL.sample_every == math.ceil(1437 / 64)
    assert FULL.models == ("lenet5", "mlp500") and FULL.methods == ("none", "dither")
    assert [e.model for e in FULL.extra] == ["vit_digits"] and FULL.extra[0].method == "dither"
    assert set(FULL.sweep_models) <= set(FULL.models)


def test_quick_plan_is_smaller_than_the_full_one():
    assert set(QUICK.models) < set(FULL.models) and QUICK.epochs < FULL.epochs and not QUICK.extra
    # two designs at equal area (one that tends to win, one that tends to lose); the full demo: every shipped one
    assert QUICK.designs == ("scnn", "tensordash") and FULL.designs is None
    assert QUICK.limit_train == 512 and QUICK.jobs == 1
    # a 2 × 2 grid: 4 sweep points; 4 densities
    assert math.prod(len(v) for v in QUICK.sweep_grid.values()) == 4 and len(QUICK.densities) == 4


def test_captures_run_on_one_torch_thread_by_default():
    # one thread: the same traces on every machine (torch's intra-op threads change the summation order)
    assert FULL.threads == 1 and QUICK.threads == 1 and DemoPlan(models=()).threads == 1


def test_extra_trace_defaults_sample_every_five_epochs_on_one_thread():
    e = ExtraTrace("vit_digits")
    assert e.sample_every == 5 * 23 and e.threads == 1 and e.epochs == 10


def test_timed_records_the_seconds_and_logs_start_and_end(capsys):
    timings: dict[str, float] = {}
    assert demo._timed(timings, "step", lambda: 42) == 42
    assert list(timings) == ["step"] and timings["step"] >= 0.0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "[demo] step ..." and err[1].startswith("[demo] step: done in ")


def test_torch_threads_are_restored_after_the_block_and_untouched_for_none():
    import torch

    old = torch.get_num_threads()
    with demo._torch_threads(old + 1):  # a count different from the current one
        assert torch.get_num_threads() == old + 1
    assert torch.get_num_threads() == old
    with pytest.raises(RuntimeError), demo._torch_threads(old + 1):
        raise RuntimeError("capture failed")
    assert torch.get_num_threads() == old
    with demo._torch_threads(None):
        assert torch.get_num_threads() == old


def test_complete_trace_is_none_for_a_missing_or_broken_trace(tmp_path):
    assert demo._complete_trace(tmp_path / "nothing") is None
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{ half written")
    assert demo._complete_trace(broken) is None


def test_complete_trace_returns_a_finished_trace(tmp_path):
    from hwsim.trace.synth import synthesize

    p = synthesize(tmp_path / "t", model="lenet5", w_density=0.5, a_density=0.5, dz_density=0.1, batch=1, seed=0)
    tr = demo._complete_trace(Path(p))
    assert tr is not None and tr.complete


def test_complete_trace_is_none_for_a_trace_still_running(tmp_path):
    from hwsim.trace.synth import synthesize

    p = Path(synthesize(tmp_path / "t", model="lenet5", w_density=0.5, a_density=0.5, dz_density=0.1, batch=1,
                        seed=0))
    man = json.loads((p / "manifest.json").read_text())
    man["complete"] = False  # what a capture killed before its end leaves
    (p / "manifest.json").write_text(json.dumps(man))
    assert demo._complete_trace(p) is None


def _train_module():
    import importlib

    return importlib.import_module("hwsim.capture.train")  # hwsim.capture.train is also a function's name


def _fake_train(calls):
    def train_and_capture(config, *, out, overwrite, progress):
        import torch

        calls.append((config.model, config.capture.method, config.epochs, config.capture.sample_every,
                      config.capture.k, torch.get_num_threads()))
        return SimpleNamespace(test_acc=0.5, weighted_density=0.1, max_bits=3, iterations=7)
    return train_and_capture


def test_capture_trains_models_times_methods_then_the_extras_and_reuses_finished_traces(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(_train_module(), "train_and_capture", _fake_train(calls))
    finished = SimpleNamespace(summary={"test_acc": 0.875})
    monkeypatch.setattr(demo, "_complete_trace", lambda p: finished if p.name == "lenet5_dither" else None)
    plan = DemoPlan(models=("lenet5", "mlp500"), methods=("none", "dither", "meprop"), epochs=2, sample_every=5,
                    extra=(ExtraTrace("lenet300", epochs=4, sample_every=9, threads=None),), jobs=1)
    traces, accs = demo._capture(plan, tmp_path, progress=False)
    assert list(traces) == ["lenet5_none", "lenet5_dither", "lenet5_meprop", "mlp500_none", "mlp500_dither",
                            "mlp500_meprop", "lenet300_dither"]
    assert traces["mlp500_none"] == tmp_path / "mlp500_none"
    assert accs["lenet5_dither"] == 0.875 and accs["mlp500_none"] == 0.5  # a reused trace: its stored accuracy
    DEFAULT_K = _train_module().DEFAULT_K  # noqa: N806
    before = __import__("torch").get_num_threads()
    # the models × methods on the plan's one thread; the extra on torch's own count (threads=None)
    assert [t for *_, t in calls] == [1] * 5 + [before]
    trained = [(m, meth, ep, se, k) for m, meth, ep, se, k, _ in calls]
    assert trained == [("lenet5", "none", 2, 5, None), ("lenet5", "meprop", 2, 5, DEFAULT_K),
                       ("mlp500", "none", 2, 5, None), ("mlp500", "dither", 2, 5, None),
                       ("mlp500", "meprop", 2, 5, DEFAULT_K), ("lenet300", "dither", 4, 9, None)]


def test_capture_trains_an_extra_trace_on_its_own_thread_count(tmp_path, monkeypatch):
    import torch

    calls: list = []
    monkeypatch.setattr(_train_module(), "train_and_capture", _fake_train(calls))
    monkeypatch.setattr(demo, "_complete_trace", lambda p: None)
    before = torch.get_num_threads()
    plan = DemoPlan(models=(), extra=(ExtraTrace("lenet300", threads=before + 1),), jobs=1)
    demo._capture(plan, tmp_path, progress=False)
    assert calls[0][-1] == before + 1 and torch.get_num_threads() == before


def _trace_files(path: Path) -> dict[str, bytes]:
    """A trace's arrays and iteration log, and its manifest without the fields that say when and how long."""
    out = {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
           if p.is_file() and p.name != "manifest.json"}
    man = json.loads((path / "manifest.json").read_text())
    man.pop("created")
    man["summary"].pop("seconds")
    out["manifest.json"] = json.dumps(man, sort_keys=True).encode()
    return out


def test_parallel_captures_write_the_traces_a_serial_run_writes(tmp_path, capsys):
    plan = DemoPlan(models=("mlp500",), epochs=1, limit_train=128, sample_every=1, jobs=1)
    serial, accs1 = demo._capture(plan, tmp_path / "serial", progress=False)
    parallel, accs2 = demo._capture(replace(plan, jobs=2), tmp_path / "parallel", progress=False)
    assert list(serial) == list(parallel) == ["mlp500_none", "mlp500_dither"] and list(accs2) == list(serial)
    assert accs1 == accs2
    assert "capturing 2 traces in 2 worker processes" in capsys.readouterr().err
    for name in serial:
        a, b = _trace_files(serial[name]), _trace_files(parallel[name])
        assert len(a) > 3 and a == b, name  # samples, iteration log and manifest: byte for byte


def test_capture_reused_trace_without_an_accuracy_reads_nan(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "_complete_trace", lambda p: SimpleNamespace(summary={}))
    _, accs = demo._capture(DemoPlan(models=("lenet5",), methods=("none",), jobs=1), tmp_path, progress=False)
    assert math.isnan(accs["lenet5_none"])


def _capture_sweeps(monkeypatch):
    seen = {}

    def run_sweep(spec, *, out, jobs, progress):
        seen.update(spec=spec, out=out, jobs=jobs)

    monkeypatch.setattr("hwsim.sweep.runner.run_sweep", run_sweep)
    return seen


def test_arch_sweep_uses_the_plan_grid_and_only_the_dithered_sweep_models(tmp_path, monkeypatch):
    seen = _capture_sweeps(monkeypatch)
    plan = DemoPlan(models=("lenet5", "mlp500"), sweep_models=("lenet5",), jobs=3,
                    sweep_grid={"memory.dram_bytes_per_cycle": [4.0, 8.0, 32.0]})
    traces = {n: tmp_path / n for n in ("lenet5_none", "lenet5_dither", "mlp500_dither")}
    assert demo._arch_sweep(plan, traces, tmp_path, progress=False) == tmp_path / "sweep_demo"
    spec = seen["spec"]
    assert [t.label for t in spec.traces] == ["lenet5_dither"] and spec.traces[0].path == tmp_path / "lenet5_dither"
    assert [dict(c.overrides) for c in spec.configs] == [{"memory.dram_bytes_per_cycle": v} for v in (4.0, 8.0, 32.0)]
    assert seen["out"] == tmp_path / "sweep_demo" and seen["jobs"] == 3


def test_arch_sweep_keeps_the_shipped_grid_without_a_plan_grid(tmp_path, monkeypatch):
    seen = _capture_sweeps(monkeypatch)
    demo._arch_sweep(DemoPlan(models=("lenet5",)), {"lenet5_dither": tmp_path / "t"}, tmp_path, progress=False)
    # arch_configs/sweeps/demo.yaml: 3 array sizes × 2 multiplier shapes × 2 MAC widths × 3 DRAM bandwidths
    assert len(seen["spec"].configs) == 3 * 2 * 2 * 3


def test_nsd_sweep_trades_lanes_against_sigma_on_the_dithered_sweep_models(tmp_path, monkeypatch):
    seen = _capture_sweeps(monkeypatch)
    traces = {n: tmp_path / n for n in ("lenet5_none", "lenet5_dither")}
    assert demo._nsd_sweep(DemoPlan(models=("lenet5",)), traces, tmp_path, progress=False) == tmp_path / "sweep_nsd"
    assert [t.label for t in seen["spec"].traces] == ["lenet5_dither"] and seen["out"] == tmp_path / "sweep_nsd"
    # arch_configs/sweeps/nsd.yaml: 4 lane counts × 2 σ modes
    assert sorted((c.overrides["quantizer.lanes_per_pe"], c.overrides["quantizer.sigma"]) for c in seen["spec"].configs) \
        == [(n, m) for n in (1, 2, 4, 8) for m in ("current", "delayed")]
    demo._nsd_sweep(QUICK, traces, tmp_path, progress=False)
    assert len(seen["spec"].configs) == 4


def test_designs_compares_the_dithered_traces_by_model_on_the_plan_designs_sharing_the_replay_cache(tmp_path,
                                                                                                   monkeypatch):
    seen = {}

    def compare_designs(traces, names, *, iterations, jobs, cache_dir):
        seen.update(traces=traces, names=names, iterations=iterations, jobs=jobs, cache_dir=cache_dir)
        return {"format": "hwsim-designs", "rows": []}

    monkeypatch.setattr("hwsim.sweep.designs.compare_designs", compare_designs)
    traces = {n: tmp_path / n for n in ("lenet5_none", "lenet5_dither", "vit_digits_dither")}
    out = demo._designs(replace(QUICK, jobs=2), traces, tmp_path)
    assert out == tmp_path / "designs.json" and json.loads(out.read_text())["format"] == "hwsim-designs"
    assert seen == {"traces": {"lenet5": tmp_path / "lenet5_dither", "vit_digits": tmp_path / "vit_digits_dither"},
                    "names": ("scnn", "tensordash"), "iterations": "last", "jobs": 2,
                    "cache_dir": tmp_path / "simulate"}  # step 2's points: scnn's last batch is replayed once
    from hwsim.sweep.designs import designs

    demo._designs(FULL, traces, tmp_path)
    assert seen["names"] == designs()
    demo._designs(replace(FULL, design_models=("lenet5",)), traces, tmp_path)  # a subset of the dithered traces
    assert seen["traces"] == {"lenet5": tmp_path / "lenet5_dither"}


def test_density_sweep_replaces_the_shipped_densities(tmp_path, monkeypatch):
    seen = _capture_sweeps(monkeypatch)
    out = demo._density_sweep(DemoPlan(models=("x",), densities=(0.2, 0.9)), tmp_path, progress=False)
    assert out == tmp_path / "sweep_density"
    # one synthetic trace per density, w = a = δ̃z at that density
    assert [(t.synthetic["w_density"], t.synthetic["a_density"], t.synthetic["dz_density"])
            for t in seen["spec"].traces] == [(0.2, 0.2, 0.2), (0.9, 0.9, 0.9)]
    demo._density_sweep(DemoPlan(models=("x",)), tmp_path, progress=False)
    assert len(seen["spec"].traces) == 8  # density.yaml ships 8 densities


def test_run_demo_runs_the_five_steps_in_order_and_writes_the_timings(tmp_path, monkeypatch):
    order = []
    traces = {"lenet5_none": tmp_path / "a", "lenet5_dither": tmp_path / "b", "vit_digits_dither": tmp_path / "c"}

    shared = {}

    def step(name, value):
        def fn(*args, **kw):
            from hwsim.sweep import executor

            order.append((name, args))
            shared[name] = len(executor._SHARED)  # inside the demo's one pool of workers?
            return value
        return fn

    monkeypatch.setattr(demo, "_capture", step("capture", (traces, {"lenet5_dither": 0.9})))
    monkeypatch.setattr(demo, "_simulate", step("simulate", [tmp_path / "r.json"]))
    monkeypatch.setattr(demo, "_sensitivity", step("sensitivity", tmp_path / "s.md"))
    monkeypatch.setattr(demo, "_designs", step("designs", tmp_path / "designs.json"))
    monkeypatch.setattr(demo, "_arch_sweep", step("arch", tmp_path / "sw"))
    monkeypatch.setattr(demo, "_nsd_sweep", step("nsd", tmp_path / "sn"))
    monkeypatch.setattr(demo, "_density_sweep", step("density", tmp_path / "sd"))
    monkeypatch.setattr(demo, "_report", step("report", SimpleNamespace(index_html=tmp_path / "index.html")))
    res = demo.run_demo(out=tmp_path / "out", quick=True, jobs=5, progress=False)
    assert [n for n, _ in order] == ["capture", "simulate", "sensitivity", "designs", "arch", "nsd", "density",
                                     "report"]
    # the replays and sweeps share one pool of --jobs workers; capture and report have pools of their own
    assert shared == {"capture": 0, "simulate": 1, "sensitivity": 1, "designs": 1, "arch": 1, "nsd": 1, "density": 1,
                      "report": 0}
    plan = order[0][1][0]
    assert plan.jobs == 5 and plan.models == QUICK.models  # --jobs overrides the quick plan's
    assert order[0][1][1] == tmp_path / "out" / "work" / "quick" / "traces"
    # sensitivity sees only the plan's models × methods, not the extra traces
    assert set(order[2][1][0]) == {"lenet5_none", "lenet5_dither"}
    assert order[7][1][1] == [tmp_path / "r.json", tmp_path / "designs.json", tmp_path / "sw", tmp_path / "sn",
                              tmp_path / "sd", *traces.values()]
    assert res.index_html == tmp_path / "index.html" and res.accuracies == {"lenet5_dither": 0.9}
    assert len(res.timings) == 8
    doc = json.loads((tmp_path / "out" / "work" / "quick" / "timings.json").read_text())
    assert doc["quick"] is True and doc["test_acc"] == {"lenet5_dither": 0.9} and list(doc["steps"]) == list(res.timings)
    assert list(doc["cpu_seconds"]) == list(res.timings) == list(res.cpu) and doc["jobs"] == 5


def _stub_steps(monkeypatch, tmp_path):
    for name, value in (("_capture", ({}, {})), ("_simulate", []), ("_sensitivity", None), ("_designs", None),
                        ("_arch_sweep", None),
                        ("_nsd_sweep", None), ("_density_sweep", None),
                        ("_report", SimpleNamespace(index_html=tmp_path / "index.html"))):
        monkeypatch.setattr(demo, name, lambda *a, value=value, **kw: value)


def test_run_demo_prints_where_the_time_went_unless_quiet(tmp_path, monkeypatch, capsys):
    _stub_steps(monkeypatch, tmp_path)
    res = demo.run_demo(out=tmp_path / "a", quick=True, progress=True)
    err = capsys.readouterr().err
    table = err[err.index("where the time went:"):].splitlines()
    assert table[1].split() == ["step", "wall", "s", "share", "CPU", "s"]
    assert [ln.split("  ")[0] for ln in table[2:10]] == list(res.timings) and table[10].startswith("total")
    demo.run_demo(out=tmp_path / "b", quick=True, progress=False)
    assert "where the time went" not in capsys.readouterr().err


def test_timing_table_gives_wall_seconds_shares_and_cpu_seconds():
    text = demo.timing_table({"capture": 30.0, "report": 10.0}, {"capture": 55.0, "report": 18.5}, 40.0)
    rows = [ln.split() for ln in text.splitlines()]
    assert rows[0] == ["step", "wall", "s", "share", "CPU", "s"]
    assert rows[1:] == [["capture", "30.0", "75%", "55.0"], ["report", "10.0", "25%", "18.5"],
                        ["total", "40.0", "100%", "73.5"]]
    assert demo.timing_table({"a": 1.0}, {}, 1.0).splitlines()[1].split() == ["a", "1.0", "100%", "–"]


def test_cpu_seconds_count_finished_child_processes():
    import subprocess
    import sys

    c0 = demo._cpu_seconds()
    subprocess.run([sys.executable, "-c", "sum(i * i for i in range(3_000_000))"], check=True)
    assert demo._cpu_seconds() - c0 > 0.05  # the child's CPU time, not just this process's wait


def test_sensitivity_covers_the_dithered_traces_in_order_the_same_on_one_or_two_workers(tmp_path, capsys):
    from hwsim.arch import load_arch
    from hwsim.sim.sensitivity import sensitivity, table
    from hwsim.trace.format import load
    from hwsim.trace.synth import synthesize

    traces = {name: Path(synthesize(tmp_path / name, model="lenet5", w_density=0.5, a_density=0.5, dz_density=dz,
                                    batch=1, seed=0))
              for name, dz in (("b_dither", 0.1), ("a_none", 1.0), ("a_dither", 0.05))}
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = demo._sensitivity(traces, tmp_path / "one", jobs=1).read_text()
    two = demo._sensitivity(traces, tmp_path / "two", jobs=2).read_text()
    assert one == two
    assert one.index("## b_dither") < one.index("## a_dither") and "a_none" not in one
    want = table(sensitivity(load(traces["a_dither"], verify=False), load_arch("scnn")))
    assert f"## a_dither\n\n{want}\n" in one
    assert "sensitivity of b_dither (scnn.yaml" in capsys.readouterr().err
