"""Sweeps: expansion, validation errors, resume, and the Dask path giving the local pool's results."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from _hwsim_fixtures import fake_evaluate

from hwsim.sweep import SweepError, load_sweep, parse_sweep
from hwsim.sweep.runner import run_sweep
from hwsim.sweep.summary import SUMMARY_CSV, SUMMARY_JSON

REPO = Path(__file__).resolve().parents[1]
SYN = {"synthetic": {"model": "lenet5", "dz_density": [0.1, 0.3], "batch": 1}}


def _doc(**kw):
    d = {"version": 1, "name": "t", "arch": "scnn", "grid": {"pe_array.rows,pe_array.cols": [4, 8],
                                                             "pe.mac_bits": [8, 16]}, "traces": [SYN]}
    d.update(kw)
    return d


COUNT: list[str] = []


def counting_evaluate(task):
    COUNT.append(task.key)
    return fake_evaluate(task)


class Boom(RuntimeError):
    pass


def failing_after_two(task):
    if len(COUNT) >= 2:
        raise Boom("simulated crash")
    return counting_evaluate(task)


# ----------------------------------------------------------------------------- spec


def test_grid_expands_cartesian_with_joined_keys():
    spec = parse_sweep(_doc())
    assert spec.mode == "grid"
    assert len(spec.configs) == 4 and len(spec.traces) == 2 and spec.num_points == 8
    assert spec.parameters == ("pe_array.rows", "pe_array.cols", "pe.mac_bits")
    assert {(c.overrides["pe_array.rows"], c.overrides["pe_array.cols"], c.overrides["pe.mac_bits"])
            for c in spec.configs} == {(4, 4, 8), (4, 4, 16), (8, 8, 8), (8, 8, 16)}
    assert [t.label for t in spec.traces] == ["lenet5-synth[dz_density=0.1]", "lenet5-synth[dz_density=0.3]"]


def test_list_mode_and_density_shorthand():
    spec = parse_sweep({"version": 1, "arch": "scnn", "list": [{}, {"pe.mac_bits": 16}],
                        "traces": [{"name": "d", "synthetic": {"model": "lenet5", "density": [0.2, 0.5]}}]})
    assert spec.mode == "list"
    assert [c.overrides for c in spec.configs] == [{}, {"pe.mac_bits": 16}]
    assert spec.traces[1].synthetic == {"model": "lenet5", "w_density": 0.5, "a_density": 0.5, "dz_density": 0.5}


def test_shipped_sweeps_are_valid():
    for f in sorted((REPO / "arch_configs" / "sweeps").glob("*.yaml")):
        spec = load_sweep(f)
        assert spec.num_points >= 1, f


def test_unknown_key_is_named():
    with pytest.raises(SweepError, match=r"pe\.bogus.*allowed"):
        parse_sweep(_doc(grid={"pe.bogus": [1, 2]}))


def test_bad_value_names_the_point():
    with pytest.raises(SweepError, match=r"point 1 .*pe_array\.rows"):
        parse_sweep(_doc(grid={"pe_array.rows": [4, 0]}))


@pytest.mark.parametrize("grid", [{}, {"pe.mac_bits": []}, None])
def test_empty_grid_is_an_error(grid):
    with pytest.raises(SweepError, match="empty|exactly one"):
        parse_sweep(_doc(grid=grid) if grid is not None else {k: v for k, v in _doc().items() if k != "grid"})


def test_unknown_top_level_field_and_version(tmp_path):
    with pytest.raises(SweepError, match="unknown field.*gird"):
        parse_sweep(_doc(gird={}))
    f = tmp_path / "s.yaml"
    f.write_text("version: 2\narch: scnn\ngrid: {pe.mac_bits: [8]}\ntraces: [x]\n")
    with pytest.raises(SweepError, match=r"s\.yaml: version"):
        load_sweep(f)


# ----------------------------------------------------------------------------- running


def test_resume_runs_only_the_missing_points(tmp_path):
    spec = parse_sweep(_doc())
    COUNT.clear()
    with pytest.raises(SweepError, match="simulated crash"):
        run_sweep(spec, out=tmp_path, evaluate=failing_after_two, progress=False)
    assert len(list((tmp_path / "points").glob("*.json"))) == 2
    assert not list((tmp_path / "points").glob(".*tmp"))  # atomic writes leave no temp files
    COUNT.clear()
    out = run_sweep(spec, out=tmp_path, evaluate=counting_evaluate, progress=False)
    assert len(COUNT) == 6 and out.evaluated == 6 and out.skipped == 2
    COUNT.clear()
    out = run_sweep(spec, out=tmp_path, evaluate=counting_evaluate, progress=False)
    assert COUNT == [] and out.skipped == 8
    doc = json.loads((tmp_path / SUMMARY_JSON).read_text())
    assert doc["points_done"] == 8 and len(doc["rows"]) == 8
    row = doc["rows"][0]
    for col in ("pe_array.rows", "pe.mac_bits", "trace", "cycles_sparse", "energy_pj_dense", "speedup_sparse",
                "energy_ratio_sparse"):
        assert col in row
    assert (tmp_path / SUMMARY_CSV).read_text().count("\n") == 9


def test_max_points_and_same_point_computed_once(tmp_path):
    # 8 == 8 on the base arch: an explicit override equal to the base is the same point (same key).
    spec = parse_sweep({"version": 1, "arch": "scnn", "list": [{}, {"pe_array.rows": 8}],
                        "traces": [{"synthetic": {"model": "lenet5", "batch": 1}}]})
    COUNT.clear()
    out = run_sweep(spec, out=tmp_path, evaluate=counting_evaluate, progress=False)
    assert len(out.tasks) == 1 and len(COUNT) == 1


def test_process_pool_matches_in_process(tmp_path):
    spec = parse_sweep(_doc(grid={"pe.mac_bits": [8, 16]}))
    a = run_sweep(spec, out=tmp_path / "a", evaluate=fake_evaluate, progress=False)
    b = run_sweep(spec, out=tmp_path / "b", jobs=2, evaluate=fake_evaluate, progress=False)
    assert b.evaluated == 4
    assert _rows(a.out) == _rows(b.out)


def _rows(out: Path):
    rows = json.loads((out / SUMMARY_JSON).read_text())["rows"]
    return sorted(({k: v for k, v in r.items()} for r in rows), key=lambda r: r["key"])


def test_dask_local_cluster_matches_local_pool(tmp_path):
    distributed = pytest.importorskip("distributed")
    spec = parse_sweep(_doc())
    local = run_sweep(spec, out=tmp_path / "local", jobs=2, evaluate=fake_evaluate, progress=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as c:
        dask = run_sweep(spec, out=tmp_path / "dask", scheduler=c.scheduler_address, evaluate=fake_evaluate,
                         progress=False)
    assert dask.evaluated == 8
    assert _rows(local.out) == _rows(dask.out)
    for f in (local.out / "points").glob("*.json"):
        assert json.loads(f.read_text())["result"] == json.loads((dask.out / "points" / f.name).read_text())["result"]


def test_unreachable_scheduler_fails_fast_and_clearly(tmp_path):
    pytest.importorskip("distributed")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = parse_sweep(_doc(grid={"pe.mac_bits": [8]}))
    t0 = time.monotonic()
    with pytest.raises(SweepError, match=rf"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"):
        run_sweep(spec, out=tmp_path, scheduler=f"tcp://127.0.0.1:{port}", evaluate=fake_evaluate, progress=False,
                  connect_timeout_s=2.0)
    assert time.monotonic() - t0 < 15


def test_scheduler_address_must_have_a_scheme(tmp_path):
    spec = parse_sweep(_doc(grid={"pe.mac_bits": [8]}))
    with pytest.raises(SweepError, match="tcp://HOST:PORT"):
        run_sweep(spec, out=tmp_path, scheduler="localhost:8786", evaluate=fake_evaluate, progress=False)


def _retyped_trace(src: Path, dst: Path, **meta) -> Path:
    """A copy of the trace ``src`` whose manifest meta has ``meta`` set (the operands are unchanged)."""
    import shutil

    shutil.copytree(src, dst)
    man = json.loads((dst / "manifest.json").read_text())
    man["meta"].update(meta)
    (dst / "manifest.json").write_text(json.dumps(man))
    return dst


def test_rows_carry_each_traces_method_s_and_k(tmp_path):
    import csv

    from hwsim.sweep.summary import collect_rows

    sample = Path(__file__).resolve().parents[1] / "traces" / "samples" / "lenet5-digits-dither"
    meprop = _retyped_trace(sample, tmp_path / "meprop", method="meprop", s=None, k=7)
    spec = parse_sweep({"version": 1, "name": "t", "arch": "scnn", "grid": {"pe_array.rows": [4, 8]},
                        "traces": [{"path": str(sample), "name": "dither"}, {"path": str(meprop), "name": "meprop"},
                                   {"name": "syn", "synthetic": {"model": "lenet5", "batch": 1}}]})
    out = run_sweep(spec, out=tmp_path / "out", evaluate=fake_evaluate, progress=False)  # fake results say dither
    want = {"dither": ("dither", 4.0, None), "meprop": ("meprop", None, 7), "syn": ("synthetic", None, None)}
    rows = json.loads((tmp_path / "out" / SUMMARY_JSON).read_text())["rows"]
    assert sorted((r["trace"], r["pe_array.rows"]) for r in rows) == sorted((t, n) for t in want for n in (4, 8))
    for r in rows:
        assert (r["method"], r["s"], r["k"]) == want[r["trace"]], r["trace"]
    with open(tmp_path / "out" / SUMMARY_CSV, newline="") as f:
        csv_rows = list(csv.DictReader(f))
    assert [(r["trace"], r["method"], r["s"], r["k"]) for r in csv_rows] == [
        (r["trace"], r["method"], "" if r["s"] is None else str(r["s"]), "" if r["k"] is None else str(r["k"]))
        for r in rows]
    # without the runner's metas, the rows read each trace's meta from its manifest: the same columns
    again = collect_rows(spec, tasks=list(out.tasks), out=tmp_path / "out")
    assert [(r["trace"], r["method"], r["s"], r["k"]) for r in again] == [
        (r["trace"], r["method"], r["s"], r["k"]) for r in rows]
