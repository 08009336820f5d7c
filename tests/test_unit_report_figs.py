"""Unit tests of the whole-run and training figures (hwsim.report.fig_run, hwsim.report.fig_training) on small
hand-built inputs: the figures are written (non-empty PNG/SVG), titles and labels carry the data-dependent text,
and the rows saved beside each figure hold the hand-computed numbers it plots. Agg backend, low dpi."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

from _hwsim_fixtures import assert_figure_written, figure_texts  # noqa: E402

from hwsim.report import fig_run, fig_training  # noqa: E402
from hwsim.report.inputs import ResultEntry, TraceEntry  # noqa: E402
from hwsim.results import CycleBreakdown, EnergyBreakdown, LayerPassResult, SimResult, VariantResult  # noqa: E402
from hwsim.results.actions import Actions  # noqa: E402
from hwsim.results.run import RunResult, save_run_results  # noqa: E402
from hwsim.trace.records import IterationRecord, LayerStats, TraceMeta  # noqa: E402

# ----------------------------------------------------------------------------- fig_run


def _v(cycles: int, pj: float) -> VariantResult:
    return VariantResult(cycle_breakdown=CycleBreakdown(compute=cycles), energy_breakdown=EnergyBreakdown(mac=pj),
                         multipliers=64, actions=Actions())


def _res(sparse: int, dense: int, it: int) -> SimResult:
    lps = tuple(LayerPassResult(name="fc", pass_name=p, macs_dense=1, macs_effectual=1, sparse=_v(sparse, sparse * 1e3),
                                dense=_v(dense, dense * 2e3), dense_gated=_v(dense, 1.0), ideal=_v(1, 1.0))
                for p in ("forward", "backward_weight"))
    return SimResult(trace={"name": "toy", "iteration": it}, arch={"name": "scnn"}, layers=lps)


@pytest.fixture()
def run_entry(tmp_path) -> tuple[ResultEntry, RunResult]:
    run = RunResult.build([(0, _res(10, 40, 0)), (6, _res(20, 40, 6))], total_iterations=10,
                          training=[{"iteration": i, "dz_density": 0.1 * (i + 1)} for i in range(10)])
    path = save_run_results(run, tmp_path / "run.json")
    return ResultEntry(label="lenet5·dither", source=path, result=run.integrated), run


def test_load_run_reads_run_files_and_declines_others(run_entry, tmp_path):
    entry, run = run_entry
    got = fig_run.load_run(entry)
    assert got is not None and got.replayed == [0, 6] and [r.weight for r in got.iterations] == [6, 4]
    single = tmp_path / "single.json"
    single.write_text(json.dumps(run.last.to_json()))
    broken = tmp_path / "broken.json"
    d = run.to_json()
    d["iterations"] = []
    broken.write_text(json.dumps(d))
    (tmp_path / "junk.json").write_text("{not json")
    for src in (single, broken, tmp_path / "junk.json", tmp_path / "missing.json"):
        assert fig_run.load_run(ResultEntry(label="x", source=src, result=run.last)) is None
        assert fig_run.cost_over_training(ResultEntry(label="x", source=src, result=run.last), name="c") is None
        assert fig_run.whole_run_summary(ResultEntry(label="x", source=src, result=run.last), name="w") is None


def test_cost_over_training_plots_each_replayed_iteration(run_entry, tmp_path):
    entry, _ = run_entry
    p = fig_run.cost_over_training(entry, name="cost")
    assert p.name == "cost" and p.section == "Whole run" and p.title == "Cost over training — lenet5·dither"
    text = figure_texts(p.figure)
    assert "lenet5·dither: cost per training iteration (2 replayed of 10)" in text
    assert "sparse cycles" in text and "dense energy" in text and "δ̃z density (mean over layers)" in text
    assert "energy per iteration (µJ)" in text and "cycles per iteration" in text
    cyc = {(r["iteration"], r["variant"]): (r["cycles"], r["weight"]) for r in p.rows if "cycles" in r}
    assert cyc == {(0, "sparse"): (20, 6), (6, "sparse"): (40, 4), (0, "dense"): (80, 6), (6, "dense"): (80, 4)}
    en = {(r["iteration"], r["variant"]): r["energy_uj"] for r in p.rows if "energy_uj" in r}
    assert en[(6, "dense")] == pytest.approx(2 * 40 * 2e3 / 1e6)
    dens = [r for r in p.rows if r["variant"] == "trace"]
    assert [r["iteration"] for r in dens] == list(range(10)) and dens[3]["dz_density"] == pytest.approx(0.4)
    assert len(p.figure.axes) == 4                                   # two panels, each with a density twin
    assert_figure_written(p.figure, tmp_path, "cost")


def test_cost_over_training_without_densities_has_no_twin_axis(run_entry):
    entry, run = run_entry
    bare = RunResult(iterations=run.iterations, total_iterations=10)
    p = fig_run.cost_over_training(entry, name="c", run=bare)
    assert len(p.figure.axes) == 2 and all(r["variant"] != "trace" for r in p.rows)


def test_whole_run_summary_rows_are_the_integral_and_the_last_iteration(run_entry, tmp_path):
    entry, run = run_entry
    p = fig_run.whole_run_summary(entry, name="sum")
    assert p.title == "Whole-run speed-up and energy — lenet5·dither"
    text = figure_texts(p.figure)
    assert "lenet5·dither: whole-run speed-up and energy gain vs the last iteration" in text
    ticks = [t.get_text() for t in p.figure.axes[0].get_xticklabels()]
    assert ticks == ["fwd", "bwd-weight", "iteration"]                # backward_data has no layer: left out
    rows = {(r["pass"], r["figure"]): r for r in p.rows}
    assert len(rows) == 6
    sp = rows[("iteration", "speedup")]
    # whole run: Σ dense / Σ sparse = (6·80 + 4·80) / (6·20 + 4·40); last iteration (6): 80 / 40
    assert sp["whole_run"] == pytest.approx(800 / 280) and sp["last_iteration"] == 2.0
    assert (sp["min"], sp["max"], sp["mean"]) == (2.0, 4.0, 3.0)
    en = rows[("forward", "energy_ratio")]
    assert en["last_iteration"] == pytest.approx(40 * 2e3 / (20 * 1e3))
    assert "speed-up vs dense (×)" in text and "energy gain vs dense (×)" in text
    for ax in p.figure.axes:  # every mark drawn is in the legend, the lone min / max ticks too
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [
            "min / max over iterations", "whole run", "last iteration", "p10–p90 over iterations"]
    assert_figure_written(p.figure, tmp_path, "sum")


# ----------------------------------------------------------------------------- fig_training


def _it(i: int, *, epoch: int, loss: float | None, acc: float | None, stats: dict) -> IterationRecord:
    return IterationRecord(index=i, epoch=epoch, loss=loss, acc=acc,
                           layers={k: LayerStats(**v) for k, v in stats.items()})


def _trace(label: str, method: str, model: str = "lenet5", *, with_stats: bool = True) -> TraceEntry:
    its = []
    for i in range(4):
        st = {"conv1": {"density": 0.5 / (i + 1), "max_bits": (3, 6, 4, 5)[i], "hist": (4, 2, 1, 1) + (0,) * 11},
              "features.block.fc2": {"density": 0.2, "max_bits": 2, "hist": (2,) + (0,) * 14}} if with_stats else {}
        its.append(_it(i, epoch=i // 2, loss=2.0 - 0.25 * i, acc=0.25 * i, stats=st))
    return TraceEntry(label=label, source=Path("/t"), meta=TraceMeta(model=model, method=method), iterations=tuple(its),
                      layer_order=("conv1", "features.block.fc2"), summary={"test_acc": 0.875},
                      layers={"conv1": "conv 6×5×5"})


def test_density_over_training_rows_titles_and_empty_input(tmp_path):
    a, b = _trace("lenet5·dither", "dither"), _trace("lenet5·meprop", "meprop")
    p = fig_training.density_over_training([a, b], name="density")
    assert p.section == "Training" and p.title == "δ̃z density over training"
    text = figure_texts(p.figure)
    assert "lenet5·dither" in text and "lenet5·meprop" in text and "block.fc2" in text   # short layer name
    assert "δ̃z density over training (cf. seed paper Fig. 4)" in text
    conv = [r["dz_density"] for r in p.rows if r["trace"] == "lenet5·dither" and r["layer"] == "conv1"]
    assert conv == pytest.approx([0.5, 0.25, 0.5 / 3, 0.125])
    assert all(ax.get_yscale() == "log" for ax in p.figure.axes if ax.get_visible())
    assert_figure_written(p.figure, tmp_path, "density")
    assert fig_training.density_over_training([_trace("x", "dither", with_stats=False)], name="d") is None
    three = fig_training.density_over_training([a, b, _trace("c", "dither")], name="d")
    assert sum(ax.get_visible() for ax in three.figure.axes) == 3    # the 4th panel of the 2×2 grid is hidden


def test_worst_case_bits_by_hand_and_float_traces_left_out(tmp_path):
    p = fig_training.worst_case_bits([_trace("lenet5·dither", "dither"), _trace("lenet5·none", "none")], name="bits")
    rows = {r["layer"]: r for r in p.rows}
    assert set(r["trace"] for r in p.rows) == {"lenet5·dither"}
    assert rows["conv1"]["worst_case_bits"] == 6 and rows["conv1"]["median_bits"] == 4.5 and \
        rows["conv1"]["iterations"] == 4
    assert rows["features.block.fc2"]["worst_case_bits"] == 2
    assert "Not shown: lenet5·none (method none" in p.caption
    text = figure_texts(p.figure)
    assert "8-bit MAC width" in text and "conv1\nconv 6×5×5" in text and "lenet5" in text
    assert_figure_written(p.figure, tmp_path, "bits")
    assert fig_training.worst_case_bits([_trace("n", "none")], name="b") is None
    assert "Not shown" not in fig_training.worst_case_bits([_trace("d", "dither")], name="b").caption


def test_training_curves_epoch_means_and_test_accuracy(tmp_path):
    p = fig_training.training_curves([_trace("lenet5·dither", "dither")], name="curves")
    assert p.title == "Training loss and accuracy"
    e0, e1 = p.rows                                                   # epochs {0, 1} of iterations {0,1}, {2,3}
    assert (e0["epoch"], e0["iteration_mid"], e0["train_loss_epoch_mean"]) == (0, 0.5, pytest.approx(1.875))
    assert e1["train_acc_epoch_mean"] == pytest.approx(0.625) and e1["test_acc_final"] == 0.875
    text = figure_texts(p.figure)
    assert "lenet5·dither: test 87.5%" in text and "lenet5·dither: training mini-batches" in text
    assert "training loss (cross-entropy, log)" in text
    assert_figure_written(p.figure, tmp_path, "curves")
    no_loss = TraceEntry(label="x", source=Path("/t"), meta=TraceMeta(), iterations=(IterationRecord(index=0),),
                         layer_order=())
    assert fig_training.training_curves([no_loss], name="c") is None


def test_level_histograms_shares_by_hand(tmp_path):
    p = fig_training.level_histograms([_trace("lenet5·dither", "dither")], name="hist")
    share = {r["bits"]: r["share"] for r in p.rows}
    count = {r["bits"]: r["nonzero_levels"] for r in p.rows}
    # per iteration conv1 (4, 2, 1, 1) + fc2 (2): over 4 iterations 24, 8, 4, 4 of 40 non-zero levels
    assert (count[2], count[3], count[4], count[5], count[6]) == (24, 8, 4, 4, 0)
    assert share[2] == pytest.approx(0.6) and share[5] == pytest.approx(0.1) and math.fsum(share.values()) == 1.0
    assert "bits of a non-zero δ̃z level (sign + magnitude)" in figure_texts(p.figure)
    assert_figure_written(p.figure, tmp_path, "hist")
    assert fig_training.level_histograms([_trace("n", "none")], name="h") is None


def test_a_run_of_one_replayed_iteration_draws_no_whole_run_figures(tmp_path):
    """One replayed iteration (a synthetic trace: `hwsim simulate` replays its whole run by default) has nothing over
    training: the cost figure would be one marker per variant on a fractional iteration axis, the summary bars equal
    to the last iteration's; both are skipped like a single-iteration file's."""
    run = RunResult.build([(0, _res(10, 40, 0))], total_iterations=1)
    entry = ResultEntry(label="gpt2", source=save_run_results(run, tmp_path / "one.json"), result=run.integrated)
    assert fig_run.load_run(entry) is not None
    assert fig_run.cost_over_training(entry, name="c") is None
    assert fig_run.whole_run_summary(entry, name="w") is None
