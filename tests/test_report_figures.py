"""Every report figure keeps its legend, labels and titles inside the canvas, log axes have at least two
labelled ticks, labels carry overrides, and the views added for issue 11 are produced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _hwsim_fixtures import fake_sweeps, make_result, write_trace_manifest

from hwsim.report import build_report, render
from hwsim.report.fig_compare import compare_figure
from hwsim.report.fig_density import crossovers
from hwsim.report.style import canvas_overflow, new_figure, param_label, percent, times


def _with_dram(result_json: dict, provenance: dict | None = None) -> dict:
    """make_result has no DRAM actions: add plausible ones so the bandwidth view has data."""
    for lp in result_json["layers"]:
        for v in ("sparse", "dense", "dense_gated", "ideal"):
            lp[v]["actions"] = {"dram_bytes": 0.3 * lp["macs_dense"] * (0.2 if v != "dense" else 1.0)}
    if provenance:
        result_json["provenance"] = provenance
    return result_json


def _trace(path: Path, **kw) -> Path:
    p = write_trace_manifest(path, **kw)
    man = json.loads((p / "manifest.json").read_text())
    man["summary"] = {"test_acc": 0.9722, "train_loss": 0.05}
    for it in man["iterations"]:
        for st in it["layers"].values():
            st["hist"] = [100, 30, 5, 1] + [0] * 11
    man["layers"] = [{"name": "conv1", "kind": "conv2d", "N": 8, "C": 1, "K": 6, "H": 28, "W": 28, "P": 24, "Q": 24, "R": 5, "S": 5},
                     {"name": "fc1", "kind": "linear", "N": 8, "C": 400, "K": 120}]
    (p / "manifest.json").write_text(json.dumps(man))
    return p


def _prov(dram: float) -> dict:
    return {"trace": {"model": "lenet5", "method": "dither", "replayed_iterations": [9], "replayed_examples": 29,
                      "iterations": 10, "test_acc": 0.97, "layers": {"conv1": "conv 1→6 5×5 @28×28"}},
            "arch": {"name": "scnn", "hash": "ab" * 32, "overrides": {"memory.dram_bytes_per_cycle": dram},
                     "key": {"DRAM bandwidth": f"{dram:g} B/cycle"}}, "hwsim_version": "0", "command": ["hwsim"]}


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    """Build a full report; instead of writing PNG/SVG, record what each figure has outside its canvas."""
    tmp = tmp_path_factory.mktemp("figs")
    res = tmp / "results"
    res.mkdir()
    (res / "a.json").write_text(json.dumps(_with_dram(make_result(dz=0.08).to_json(), _prov(16))))
    p64 = _prov(64)
    p64["trace"]["replayed_iterations"] = list(range(0, 2300, 23))  # a whole-run replay: its label must fit too
    p64["trace"]["replayed_examples_min"] = 29
    p64["mode"] = "whole training run (left-hold estimator over the replayed iterations); iterations"
    p64["trace"]["coverage"] = {"forward": 0.93, "backward_data": 0.93, "backward_weight": 0.93, "missed": ["attn.bmm"]}
    (res / "b.json").write_text(json.dumps(_with_dram(make_result(dz=0.08).to_json(), p64)))
    t1 = _trace(tmp / "t_dither")
    t2 = _trace(tmp / "t_none", method="none")
    fake_sweeps(tmp, grid={"pe_array.rows,pe_array.cols": [4, 8, 16], "memory.dram_bytes_per_cycle": [16, 64]}, densities=[0.1, 0.3, 0.6, 1.0], batch=4)
    seen: dict[str, list[str]] = {}

    def check_then_save(fig, *, out_dir, name, dpi=150, svg=True):
        seen[name] = canvas_overflow(fig) + _single_tick_log_axes(fig)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        png = out / f"{name}.png"
        png.write_bytes(b"\x89PNG placeholder")  # the drawing was checked; skip the slow encoders
        if not svg:
            return png, None
        (out / f"{name}.svg").write_text("<svg/>")
        return png, out / f"{name}.svg"

    mp = pytest.MonkeyPatch()
    mp.setattr(render, "save_figure", check_then_save)  # where the figures are saved (serial path)
    try:
        outcome = build_report([res, tmp / "sweep_grid", tmp / "sweep_density", t1, t2], out=tmp / "report")
    finally:
        mp.undo()
    return outcome, seen


def _single_tick_log_axes(fig) -> list[str]:
    bad = []
    for ax in fig.axes:
        for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
            if scale != "log" or not ax.get_visible():
                continue
            lo, hi = sorted(axis.get_view_interval())
            labelled = {round(t.get_position()[0 if axis is ax.xaxis else 1], 12)
                        for t in axis.get_ticklabels(minor=False) + axis.get_ticklabels(minor=True)
                        if t.get_text().strip()}
            shared = (ax.get_shared_x_axes() if axis is ax.xaxis else ax.get_shared_y_axes()).get_siblings(ax)
            if not labelled and len(shared) > 1:
                continue  # labels shown once on a sibling of a shared axis (which is checked itself)
            inside = [v for v in (axis.get_majorticklocs().tolist() + axis.get_minorticklocs().tolist())
                      if lo <= v <= hi and round(v, 12) in labelled]
            if len(set(inside)) < 2:
                bad.append(f"log axis of '{ax.get_title()}' has {len(set(inside))} labelled tick(s)")
    return bad


def test_every_figure_lies_inside_its_canvas(figures):
    outcome, seen = figures
    assert len(seen) == len(outcome.plots) >= 18
    bad = [f"{n}: {x}" for n, v in seen.items() for x in v]
    assert not bad, "\n".join(bad)


def test_new_views_are_in_the_report(figures):
    outcome, _ = figures
    names = {p.name for p in outcome.plots}
    for want in ("training_curves", "training_level_histogram", "lenet5_dither_scnn_dram_bytes_per_cycle_16_bandwidth",
                 "lenet5_dither_scnn_dram_bytes_per_cycle_64_utilisation"):
        assert want in names, sorted(names)
    html = outcome.index_html.read_text()
    assert "Provenance" in html and "dram_bytes_per_cycle=64" in html and "dram_bytes_per_cycle=16" in html
    assert "test accuracy" in html and "97.22%" in html or "97.2%" in html


def test_partial_coverage_is_shown_beside_whole_model_figures(figures):
    outcome, _ = figures
    caps = {p.name: p.caption for p in outcome.plots}
    assert "attn.bmm" in caps["lenet5_dither_scnn_dram_bytes_per_cycle_64_layer_speedup"]
    assert "attn.bmm" in caps["overview_speedup_energy"]
    assert "Partial coverage" not in caps["lenet5_dither_scnn_dram_bytes_per_cycle_16_layer_speedup"]


def test_results_that_differ_only_in_overrides_get_different_labels(figures):
    outcome, _ = figures
    summary = json.loads((outcome.out / "data" / "summary.json").read_text())
    labels = {r["result"] for r in summary if r["method"] == "dither"}
    assert labels == {"lenet5 dither @ scnn [dram_bytes_per_cycle=16]", "lenet5 dither @ scnn [dram_bytes_per_cycle=64]"}
    assert all(r["pj_per_effectual_mac_sparse"] > 0 for r in summary if r["scope"] == "iteration")


def test_sweep_table_ranks_by_absolute_cycles_not_own_speedup(figures):
    outcome, _ = figures
    rows = json.loads((outcome.out / "data" / "grid_sweep.json").read_text())
    cyc = [r["cycles_sparse"] for r in rows]
    assert cyc == sorted(cyc) and [r["rank_cycles"] for r in rows] == list(range(1, len(rows) + 1))
    assert any(r["pareto"] == 1 for r in rows)
    table = next(t for t in outcome.tables if t.title.startswith("Sweep 'grid'"))
    assert "speed-up over own dense" in table.header and "PE rows (PEs)" in table.header
    assert "DRAM bandwidth (B/cycle)" in table.header


def test_training_table_reports_test_accuracy_and_no_bits_for_float(figures):
    outcome, _ = figures
    rows = json.loads((outcome.out / "data" / "training_summary.json").read_text())
    assert {r["test_acc"] for r in rows} == {0.9722}
    assert next(r for r in rows if r["method"] == "none")["worst_case_bits"] is None
    assert next(r for r in rows if r["method"] == "dither")["worst_case_bits"] is not None
    bits = json.loads((outcome.out / "data" / "training_worst_bits.json").read_text())
    assert {r["trace"] for r in bits} == {"lenet5 dither s=2"}


def test_overflow_check_catches_a_clipped_legend():
    fig = new_figure(width=3.0, height=2.0)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], label="a label far too long to fit into a three inch wide figure at ten points")
    ax.legend(loc="upper left", bbox_to_anchor=(0.5, 1.0))
    fig.set_layout_engine("none")
    assert canvas_overflow(fig)
    assert canvas_overflow(new_figure(width=3.0, height=2.0)) == []


def test_compare_figure_fits_and_labels_ratios():
    from hwsim.sim.compare import Comparison

    cmp = Comparison(names=("scnn", "scnn_bitserial"), results=(make_result(), make_result(dz=0.05)))
    plot = compare_figure(cmp.rows(), title="lenet5 dither: scnn vs scnn_bitserial")
    assert canvas_overflow(plot.figure) == []
    assert {r["arch"] for r in plot.rows} == {"dense", "scnn", "scnn_bitserial"}


def test_crossover_needs_a_clear_sign_change():
    assert crossovers([0.5, 0.9, 1.0], [0.7, 0.95, 1.0]) == []  # ends at parity: not a crossover
    assert crossovers([0.5, 0.9, 1.0], [0.7, 0.95, 1.0009], tol=0.01) == []  # 0.09 % above: equal
    assert crossovers([0.5, 0.9, 1.0], [0.7, 0.95, 1.2], tol=0.01) == [pytest.approx(0.9 + 0.05 / 0.25 * 0.1)]


def test_number_formats():
    assert times(300.1) == "300×" and times(30.14) == "30.1×" and times(2.614) == "2.61×"
    assert percent(0.004) == "<1%" and percent(0.0) == "0%" and percent(0.253) == "25%"
    assert param_label("memory.dram_bytes_per_cycle") == "DRAM bandwidth (B/cycle)"
    assert param_label("pe.mac_bits") == "MAC width (bit)"
