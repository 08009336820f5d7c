"""Unit tests of hwsim.report.build's training table and per-network summary tables on hand-built traces and
results: which iterations the density averages over, bits only for methods with levels, one table per network,
the overrides column only when some result has overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwsim.report import build
from hwsim.report.inputs import ReportInputs, ResultEntry, TraceEntry
from hwsim.results import CycleBreakdown, EnergyBreakdown, LayerPassResult, SimResult, VariantResult
from hwsim.trace.records import IterationRecord, LayerStats, TraceMeta


def _it(i, density=None, bits=None, loss=None):
    layers = {} if density is None else {"fc": LayerStats(density=density, max_bits=bits)}
    return IterationRecord(index=i, loss=loss, layers=layers)


def _trace(label, method, its, summary=None):
    return TraceEntry(label=label, source=Path("/t"), meta=TraceMeta(model="m", method=method), iterations=tuple(its),
                      layer_order=("fc",), summary=summary or {})


def test_training_table_by_hand(tmp_path):
    # 20 iterations with stats: the last 10 % of those are the last 2 (densities 0.3 and 0.5 → 40 %); 10 more
    # iterations without stats (stats_every > 1) do not count; bits are the maximum over every iteration
    its = [_it(i, density=0.9, bits=3, loss=2.0) for i in range(18)]
    its += [_it(18, 0.3, 7, 1.0), _it(19, 0.5, 4, 0.5)] + [_it(20 + k, loss=0.25) for k in range(10)]
    dith = _trace("m dither", "dither", its, summary={"test_acc": 0.875})
    none = _trace("m none", "none", [_it(0, 0.5, 9, 1.5)], summary={"train_loss": 0.75})
    t = build._training_table([dith, none], tmp_path)
    assert t.header == ["trace", "epochs", "iterations", "training loss (last epoch)", "test accuracy",
                        "mean δ̃z density (last 10%)", "worst-case δ̃z bits"]
    assert t.body[0] == ["m dither", "–", "30", "0.250", "87.5%", "40.00%", "7"]
    # method none: loss from the summary, no test accuracy, no bit-width (float δz has no levels)
    assert t.body[1] == ["m none", "–", "1", "0.750", "–", "50.00%", "–"]
    rows = json.loads((tmp_path / "data" / "training_summary.json").read_text())
    assert rows[0]["dz_density_last10pct"] == pytest.approx(0.4) and rows[1]["worst_case_bits"] is None
    assert t.section == "Training" and [p.name for p in t.files] == ["training_summary.csv", "training_summary.json"]


def test_training_table_of_a_trace_without_iterations(tmp_path):
    t = build._training_table([_trace("x", "dither", [])], tmp_path)
    assert t.body == [["x", "–", "0", "–", "–", "–", "–"]]


def _v(cycles, pj):
    return VariantResult(cycle_breakdown=CycleBreakdown(compute=cycles), energy_breakdown=EnergyBreakdown(mac=pj),
                         macs=cycles, multipliers=1)


def _entry(model, overrides=None):
    lp = LayerPassResult(name="fc", pass_name="forward", macs_dense=100, macs_effectual=25, sparse=_v(25, 10.0),
                         dense=_v(100, 40.0), dense_gated=_v(100, 20.0), ideal=_v(25, 5.0), density={"dz": 0.25})
    prov = {"trace": {"model": model}, "arch": {"name": "scnn", "overrides": overrides or {}}}
    r = SimResult(trace={"model": model, "method": "dither"}, arch={"name": "scnn"}, layers=(lp,), provenance=prov)
    return ResultEntry(label=f"{model} [{overrides}]", source=Path(f"/{model}.json"), result=r)


def test_one_summary_table_per_network_and_overrides_only_when_present(tmp_path):
    inp = ReportInputs(results=(_entry("lenet5"), _entry("mlp"), _entry("lenet5", {"pe.mac_bits": 16})))
    tables = build._summary_tables(inp, tmp_path)
    assert [t.title for t in tables] == ["Summary — lenet5", "Summary — mlp"]
    lenet, mlp = tables
    assert "overrides" in lenet.header and "overrides" not in mlp.header
    # 2 results × 4 scopes (three passes and the iteration) for lenet5
    assert len(lenet.body) == 8 and len(mlp.body) == 4
    fwd = dict(zip(mlp.header, mlp.body[0], strict=True))
    # forward: 25 of 100 MACs effectual, 100 vs 25 cycles (4×), 40 vs 10 pJ (4×), gated 40 / 20 (2×)
    assert (fwd["effectual MACs"], fwd["speed-up sparse"], fwd["energy gain sparse"], fwd["energy gain gated"]) == (
        "25.0%", "4.00×", "4.00×", "2.00×")
    assert fwd["sparse pJ / effectual MAC"] == "0.4"
    assert (tmp_path / "data" / "summary.csv").exists()


def _retagged_trace(tmp_path, name, **meta):
    from hwsim.trace.synth import synthesize

    p = Path(synthesize(tmp_path / name, model="lenet5", w_density=0.5, a_density=0.5, dz_density=0.1, batch=1,
                        seed=0))
    man = json.loads((p / "manifest.json").read_text())
    man["meta"].update(meta)
    (p / "manifest.json").write_text(json.dumps(man))
    return p


@pytest.mark.parametrize("meta,label,levels", [
    ({"method": "dither", "s": 2.0}, "lenet5 dither s=2", True),
    ({"method": "meprop", "k": 10}, "lenet5 meprop k=10", True),
    ({"method": "none", "s": 2.0}, "lenet5 none", False),   # s means nothing without dither
    ({"method": "dither", "k": 10}, "lenet5 dither", True),  # nor k without meprop
])
def test_trace_labels_name_the_method_parameter_that_applies(tmp_path, meta, label, levels):
    from hwsim.report.inputs import load_inputs

    (t,) = load_inputs([_retagged_trace(tmp_path, "t", **meta)]).traces
    assert t.label == label and t.has_levels is levels and t.model == "lenet5"


def test_a_trace_without_method_has_no_levels_and_is_named_by_its_label():
    t = TraceEntry(label="folder", source=Path("/t"), meta=TraceMeta(), iterations=(), layer_order=())
    assert t.method == "?" and not t.has_levels and t.model == "folder"


def test_the_whole_iteration_row_includes_the_weight_update_and_its_note_says_so(tmp_path):
    fwd = LayerPassResult(name="fc", pass_name="forward", macs_dense=100, macs_effectual=25, sparse=_v(25, 10.0),
                          dense=_v(100, 40.0), dense_gated=_v(100, 20.0), ideal=_v(25, 5.0), density={"dz": 0.25})
    upd = LayerPassResult(name="fc", pass_name="update", macs_dense=0, macs_effectual=0, sparse=_v(15, 6.0),
                          dense=_v(15, 6.0), dense_gated=_v(15, 6.0), ideal=_v(15, 6.0))
    r = SimResult(trace={"model": "m", "method": "dither"}, arch={"name": "scnn"}, layers=(fwd, upd))
    (t,) = build._summary_tables(ReportInputs(results=(ResultEntry(label="m", source=Path("/m.json"), result=r),)),
                                 tmp_path)
    it = dict(zip(t.header, next(row for row in t.body if row[t.header.index("pass")] == "whole iteration"),
                  strict=True))
    # forward 25 + update 15 = 40 sparse cycles against 100 + 15 = 115 dense: 2.875×; the update is 15/40 of it
    assert (it["sparse cycles"], it["dense cycles"], it["speed-up sparse"]) == ("40", "115", "2.88×")
    assert it["weight update (sparse)"] == "38%"
    assert "weight update" in t.note and "all three passes" not in t.note


def test_the_waits_column_is_explained_in_the_note_where_it_appears(tmp_path):
    """'waits on other passes (sparse)' is a share a newcomer cannot guess: the table's note says what it is, only
    for tables that carry the column (iteration-schedule results that measured it)."""
    e = _entry("mlp")
    (plain,) = build._summary_tables(ReportInputs(results=(e,)), tmp_path)
    assert "waits on other passes (sparse)" not in plain.header and "Waits on other passes" not in plain.note
    from dataclasses import replace

    r = replace(e.result, arch={"name": "scnn", "params": {"memory": {"schedule": "iteration"}}},
                run={"schedule": {"mode": "iteration", "foreign_waits": "measured"}})
    (t,) = build._summary_tables(ReportInputs(results=(replace(e, result=r),)), tmp_path)
    assert "waits on other passes (sparse)" in t.header
    assert t.note.endswith(build.FOREIGN_NOTE) and "charges a wait to the pass that waits" in t.note


def test_a_pass_above_its_roofline_is_explained_in_the_note(tmp_path, monkeypatch):
    """Under the iteration schedule a pass can reach more than 100 % of its roofline bound (its traffic overlaps
    other passes' compute): the note says why, only when some row is above 100 %."""
    e = _entry("mlp")
    (plain,) = build._summary_tables(ReportInputs(results=(e,)), tmp_path)
    assert "above 100 %" not in plain.note
    real = build.summary_rows

    def above(entries):
        rows = real(entries)
        rows[0]["fraction_of_roofline"] = 3.41  # lenet5's backward-weight in a whole-run report
        return rows

    monkeypatch.setattr(build, "summary_rows", above)
    (t,) = build._summary_tables(ReportInputs(results=(e,)), tmp_path)
    assert "341%" in [c for row in t.body for c in row] and t.note.endswith(build.ROOFLINE_NOTE)
