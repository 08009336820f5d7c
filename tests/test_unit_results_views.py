"""Unit tests of hwsim.results.views: scopes, scope totals (whole model and one layer), the ratio rules, and that
``simulate``'s table, ``compare``, reports and sweep summaries read totals through them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hwsim.results import (
    ALL_SCOPES,
    PASSES,
    SCOPES,
    CycleBreakdown,
    EnergyBreakdown,
    LayerPassResult,
    ResultsError,
    SimResult,
    VariantResult,
    finite_cell,
    ratio,
    ratio_cell,
    scope_total,
)
from hwsim.results.views import scope_passes


def _v(cycles: int, pj: float) -> VariantResult:
    return VariantResult(cycle_breakdown=CycleBreakdown(compute=cycles), energy_breakdown=EnergyBreakdown(mac=pj),
                         macs=cycles, multipliers=1)


def _lp(name: str, p: str, sparse: int, dense: int) -> LayerPassResult:
    return LayerPassResult(name=name, pass_name=p, macs_dense=dense, macs_effectual=sparse, sparse=_v(sparse, sparse),
                           dense=_v(dense, 2.0 * dense), dense_gated=_v(dense, dense), ideal=_v(1, 1.0))


# a: forward 3 / 30, backward_weight 5 / 50; b: forward 7 / 70, backward_data 11 / 110, backward_weight 13 / 130
LAYERS = (_lp("a", "forward", 3, 30), _lp("a", "backward_weight", 5, 50), _lp("b", "forward", 7, 70),
          _lp("b", "backward_data", 11, 110), _lp("b", "backward_weight", 13, 130))
RESULT = SimResult(trace={}, arch={}, layers=LAYERS)


def test_scopes_are_the_passes_then_the_iteration():
    assert SCOPES == (*PASSES, "iteration")
    assert ALL_SCOPES == (*PASSES, "backward", "update", "iteration")
    assert scope_passes("backward") == ("backward_data", "backward_weight")
    # the iteration includes the weight update (hwsim/sim/update.py), when a result has it
    assert scope_passes("iteration") == (*PASSES, "update") and scope_passes("forward") == ("forward",)
    assert scope_passes("update") == ("update",)


def test_an_unknown_scope_names_it_and_what_is_allowed():
    with pytest.raises(ResultsError, match=r"scope 'backwards' is not allowed; allowed: forward, .*backward, update, iteration"):
        scope_total(LAYERS, "backwards", "sparse")


@pytest.mark.parametrize(("scope", "layer", "sparse", "dense"), [
    ("forward", None, 3 + 7, 30 + 70),
    ("backward_data", None, 11, 110),
    ("backward_weight", None, 5 + 13, 50 + 130),
    ("backward", None, 5 + 11 + 13, 50 + 110 + 130),
    ("iteration", None, 3 + 5 + 7 + 11 + 13, 30 + 50 + 70 + 110 + 130),
    ("iteration", "a", 3 + 5, 30 + 50),
    ("backward", "b", 11 + 13, 110 + 130),
    ("backward_data", "a", 0, 0),  # a layer without the pass: the empty sum
])
def test_scope_totals_by_hand(scope, layer, sparse, dense):
    assert scope_total(LAYERS, scope, "sparse", layer=layer).cycles == sparse
    assert RESULT.scope_total(scope, "dense", layer=layer).cycles == dense
    assert RESULT.scope_total(scope, "dense", layer=layer).energy_pj == 2.0 * dense


def test_pass_total_and_total_are_scope_totals():
    for p in PASSES:
        assert RESULT.pass_total(p, "sparse") == RESULT.scope_total(p, "sparse")
    assert RESULT.total("dense") == RESULT.scope_total("iteration", "dense")
    assert RESULT.speedup(pass_name="backward_weight") == (50 + 130) / (5 + 13)


def test_ratio_rules():
    assert ratio(6, 3) == 2.0
    assert ratio(5, 0) == math.inf  # infinitely faster
    assert ratio(0, 0) == 1.0  # no work on either side: nothing changed
    assert ratio_cell(6, 3) == 2.0
    assert ratio_cell(5, 0) is None and ratio_cell(0, 0) is None  # an empty table cell
    assert finite_cell(2.5) == 2.5 and finite_cell(math.inf) is None and finite_cell(math.nan) is None


def test_compare_rows_use_the_scope_totals():
    from hwsim.sim.compare import Comparison

    rows = Comparison(names=("x",), results=(RESULT,)).rows()
    got = {(r["layer"], r["scope"], r["arch"]): r for r in rows}
    assert {s for (layer, s, _) in got if layer == "*"} == set(ALL_SCOPES)
    back = got[("*", "backward", "x")]
    assert back["cycles"] == 5 + 11 + 13
    assert back["speedup_vs_dense"] == pytest.approx((50 + 110 + 130) / (5 + 11 + 13))
    assert got[("b", "backward_data", "dense")]["cycles"] == 110
    assert ("a", "backward_data", "x") not in got  # a pass the layer does not have is no row


def test_report_summary_rows_use_the_scope_totals_and_empty_cells():
    from hwsim.report.inputs import ResultEntry
    from hwsim.report.tables import layer_ratio_rows, summary_rows

    entry = ResultEntry(label="r", source=Path("r.json"), result=RESULT)
    rows = {r["scope"]: r for r in summary_rows([entry])}
    assert list(rows) == list(SCOPES)
    assert rows["backward_weight"]["speedup_sparse"] == pytest.approx(180 / 18)
    assert rows["iteration"]["macs_dense"] == 390 and rows["iteration"]["effectual_fraction"] == pytest.approx(39 / 390)
    cells = {(r["layer"], r["scope"], r["variant"]): r for r in layer_ratio_rows(entry)}
    assert cells[("a", "backward_data", "sparse")]["speedup_vs_dense"] is None  # 0 / 0: an empty cell
    assert cells[("a", "iteration", "sparse")]["speedup_vs_dense"] == pytest.approx(80 / 8)


# --- results.json validated once, in from_json ----------------------------------------------------------------


def _doc() -> dict:
    return RESULT.to_json()


@pytest.mark.parametrize(("edit", "msg"), [
    (lambda d: d.__setitem__("trace", [1]), r"^r\.json: field 'trace' must be an object, got list$"),
    (lambda d: d.__setitem__("layers", {}), r"^r\.json: field 'layers' must be a list, got dict$"),
    (lambda d: d["layers"].__setitem__(1, 5), r"^r\.json: layers\[1\]: must be an object, got int$"),
    (lambda d: d["layers"][0].__setitem__("name", 3), r"^r\.json: layers\[0\]\.name: 3 is not allowed; allowed: a str"),
    (lambda d: d["layers"][0].__setitem__("macs_dense", -1), r"layers\[0\]\.macs_dense: -1 is not allowed; allowed: a f"),
    (lambda d: d["layers"][0].__setitem__("macs_dense", True), r"layers\[0\]\.macs_dense: True is not allowed"),
    (lambda d: d["layers"][2]["density"].__setitem__("dz", 1.5), r"layers\[2\]\.density\.dz: 1\.5 is not allowed; "
                                                                  r"allowed: a number in \[0, 1\] or null"),
    (lambda d: d["layers"][0].__setitem__("density", [0.5]), r"layers\[0\]\.density: must be an object"),
    (lambda d: d["layers"][0]["sparse"].__setitem__("cycles", "abc"), r"layers\[0\]\.sparse\.cycles: 'abc' is not"),
    (lambda d: d["layers"][0]["dense"]["breakdown"]["energy_pj"].__setitem__("mac", float("nan")),
     r"layers\[0\]\.dense\.breakdown\.energy_pj\.mac: nan is not allowed"),
    (lambda d: d["layers"][0]["dense"].__setitem__("breakdown", 7), r"layers\[0\]\.dense\.breakdown: must be an obj"),
    (lambda d: d["layers"][3].pop("pass"), r"^r\.json: layers\[3\]: field 'pass' is missing$"),
])
def test_a_bad_results_document_names_the_field(edit, msg):
    d = _doc()
    edit(d)
    with pytest.raises(ResultsError, match=msg):
        SimResult.from_json(d, where="r.json")


def test_the_report_reads_results_through_from_json_only(tmp_path):
    """One validation: the report's error for a bad results file is from_json's, with the file name."""
    import json

    from hwsim.report.inputs import ReportInputError, load_inputs

    d = _doc()
    d["layers"][2]["density"]["dz"] = -0.5
    (tmp_path / "r.json").write_text(json.dumps(d))
    with pytest.raises(ReportInputError, match=r"r\.json: layers\[2\]\.density\.dz: -0\.5 is not allowed"):
        load_inputs([tmp_path / "r.json"])
