"""The design-comparison document's rules by hand (hwsim.results.designs) and which designs and iterations a
comparison replays (hwsim.sweep.designs.designs / chosen_iterations), without replaying anything."""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest

from hwsim.results import CycleBreakdown, EnergyBreakdown, LayerPassResult, SimResult, VariantResult
from hwsim.results.breakdown import ResultsError
from hwsim.results.designs import (
    BASELINE,
    FORMAT,
    SCOPES,
    check_comparison,
    comparison,
    describe,
    equal_area_figures,
    geomean,
    summary,
)
from hwsim.sweep.designs import BASE_DESIGNS, chosen_iterations, designs
from hwsim.sweep.spec import SweepError


def _row(model: str, design: str, sp: float | None, en: float | None, *, area: float = 2.0,
         shape: tuple[int, int] = (16, 32)) -> dict:
    """One trace × design row with the same figure in every scope but ``iteration`` set to ``sp`` / ``en``."""
    return {"model": model, "design": design, "area_mm2": area, "equal_area_mm2": area * 0.9,
            "equal_area_shape": list(shape),
            "speedup": {**{s: 1.0 for s in SCOPES}, "iteration": sp},
            "energy_gain": {**{s: 1.0 for s in SCOPES}, "iteration": en}}


# ---------------------------------------------------------------- equal_area_figures by hand


def _v(cycles: int, pj: float) -> VariantResult:
    return VariantResult(cycle_breakdown=CycleBreakdown(compute=cycles), energy_breakdown=EnergyBreakdown(mac=pj),
                         macs=cycles, multipliers=1, analytical_cycles=cycles)


def _lp(pass_name: str, mine: tuple[int, float], ea: tuple[int, float]) -> LayerPassResult:
    one = _v(1, 1.0)
    return LayerPassResult(name="fc", pass_name=pass_name, macs_dense=10, macs_effectual=5, sparse=_v(*mine),
                           dense=one, dense_gated=one, ideal=one, dense_equal_area=_v(*ea))


def _result(*layers: LayerPassResult) -> SimResult:
    return SimResult(trace={"path": "t", "model": "m"}, layers=layers,
                     arch={"name": "x", "area_mm2": 2.0, BASELINE: {"area_mm2": 1.9, "shape": [16, 17]}})


def test_equal_area_figures_by_hand():
    # forward: design 100 cycles / 50 pJ, equal-area array 300 / 200 → 3×, 4×;
    # backward-data: 200 / 100 against 100 / 300 → 0.5×, 3×; iteration: 400 / 300 = 4/3×, 500 / 150 = 10/3×
    r = _result(_lp("forward", (100, 50.0), (300, 200.0)), _lp("backward_data", (200, 100.0), (100, 300.0)))
    f = equal_area_figures(r)
    assert (f["area_mm2"], f["equal_area_mm2"], f["equal_area_shape"]) == (2.0, 1.9, [16, 17])
    assert f["speedup"]["forward"] == pytest.approx(3.0) and f["energy_gain"]["forward"] == pytest.approx(4.0)
    assert f["speedup"]["backward_data"] == pytest.approx(0.5)
    assert f["energy_gain"]["backward_data"] == pytest.approx(3.0)
    assert f["speedup"]["iteration"] == pytest.approx(4 / 3)
    assert f["energy_gain"]["iteration"] == pytest.approx(10 / 3)


def test_a_scope_without_work_is_none_not_a_tie():
    """An inference-like result: no backward-weight and no update passes at all, and a backward-data pass the
    design skips entirely (0 cycles) while the equal-area array does not (an infinite speed-up: no JSON number)."""
    f = equal_area_figures(_result(_lp("forward", (100, 50.0), (300, 200.0)),
                                   _lp("backward_data", (0, 0.0), (40, 10.0))))
    for part in ("speedup", "energy_gain"):
        assert f[part]["backward_weight"] is None and f[part]["update"] is None, part  # not 1.0 (0 / 0)
        assert f[part]["backward_data"] is None, part
    assert f["speedup"]["iteration"] == pytest.approx(340 / 100)   # the skipped pass still counts in the whole
    assert f["energy_gain"]["iteration"] == pytest.approx(210 / 50)


# ---------------------------------------------------------------- geomean / summary by hand


def test_geomean_leaves_out_none_and_zero():
    assert geomean([2.0, 8.0]) == pytest.approx(4.0)              # sqrt(16)
    assert geomean([2.0, None, 8.0, 0.0]) == pytest.approx(4.0)   # None and 0 are not traces with work
    assert geomean([1.0, 3.0, 9.0]) == pytest.approx(3.0)         # cbrt(27)
    assert geomean([0.5]) == pytest.approx(0.5)
    assert geomean([None, 0.0]) is None and geomean([]) is None


def test_summary_takes_the_geomean_and_range_per_design_in_the_given_order():
    rows = [_row("a", "x", 2.0, 0.5, area=3.0, shape=(24, 24)), _row("a", "y", 1.0, 1.0),
            _row("b", "x", 8.0, 2.0, area=3.0, shape=(24, 24)), _row("b", "y", 4.0, None),
            _row("c", "x", None, 8.0, area=3.0, shape=(24, 24))]
    out = summary(rows, ["y", "missing", "x"])
    assert [d["design"] for d in out] == ["y", "x"]  # the order asked for; a design without rows is left out
    y, x = out
    # x: speed-ups 2, 8, None → geomean sqrt(16) = 4, range 2..8; energy 0.5, 2, 8 → cbrt(8) = 2, range 0.5..8
    assert x["traces"] == 3 and x["area_mm2"] == 3.0 and x["equal_area_shape"] == [24, 24]
    assert x["speedup_geomean"] == pytest.approx(4.0)
    assert (x["speedup_min"], x["speedup_max"]) == (2.0, 8.0)
    assert x["energy_gain_geomean"] == pytest.approx(2.0)
    assert (x["energy_gain_min"], x["energy_gain_max"]) == (0.5, 8.0)
    # y: speed-ups 1, 4 → 2; energy 1 and None → 1, range 1..1
    assert y["traces"] == 2 and y["speedup_geomean"] == pytest.approx(2.0)
    assert (y["speedup_min"], y["speedup_max"]) == (1.0, 4.0)
    assert y["energy_gain_geomean"] == pytest.approx(1.0) and (y["energy_gain_min"], y["energy_gain_max"]) == (1, 1)


def test_summary_of_a_design_with_no_work_is_none_not_a_number():
    (d,) = summary([_row("a", "z", None, 0.0)], ["z"])
    assert d["traces"] == 1
    assert all(d[k] is None for k in ("speedup_geomean", "speedup_min", "speedup_max", "energy_gain_geomean",
                                      "energy_gain_min", "energy_gain_max"))


def test_comparison_document_holds_rows_traces_and_the_summary():
    rows = [_row("a", "x", 2.0, 0.5), _row("b", "x", 8.0, 2.0)]
    doc = comparison(rows, [{"model": "a", "replayed": "r", "extra": 1}], ["x"], command="hwsim demo")
    assert doc["format"] == FORMAT and doc["baseline"] == BASELINE == "dense_equal_area"
    assert doc["command"] == "hwsim demo" and doc["scopes"] == list(SCOPES)
    assert doc["designs"] == summary(rows, ["x"]) and doc["rows"] == rows and doc["traces"][0]["extra"] == 1
    assert doc["rows"][0] is not rows[0]  # copied: the caller's rows stay its own
    assert "command" not in comparison(rows, [], ["x"])
    assert check_comparison(doc, "d.json") == doc


def test_describe_names_the_shipped_designs_and_any_tensordash_config():
    assert describe("systolic32_os") == "dense 32×32 systolic array, output stationary"
    assert describe("scnn") == "SCNN: sparse Cartesian product in every pass"
    assert describe("tensordash") == describe("tensordash_wide") == ("TensorDash-style operand scheduling on a "
                                                                      "dense array")
    assert describe("my/own.yaml") == "my/own.yaml"  # not shipped: shown by its name


# ---------------------------------------------------------------- check_comparison: one line naming the field


def _doc() -> dict:
    rows = [_row("a", "x", 2.0, 0.5), _row("a", "y", None, None)]
    return comparison(rows, [{"model": "a", "replayed": "last full batch"}], ["x", "y"])


def _broken(edit) -> dict:
    doc = copy.deepcopy(_doc())
    edit(doc)
    return doc


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.update(format="hwsim-results"), "f.json: field 'format' must be 'hwsim-designs'"),
    (lambda d: d.pop("designs"), "f.json: field 'designs' must be a list"),
    (lambda d: d.update(traces={}), "f.json: field 'traces' must be a list"),
    (lambda d: d.update(scopes=["iteration", 3]), "f.json: field 'scopes' must list scope names"),
    (lambda d: d["traces"][0].pop("model"), r"f.json: field 'traces\[0\].model' must be a string"),
    (lambda d: d["rows"][1].update(design=7), r"f.json: field 'rows\[1\]' must be an object with string fields"),
    (lambda d: d["rows"][0].update(area_mm2=-0.5), r"field 'rows\[0\].area_mm2': -0.5 is not allowed; allowed: "
                                                   r"a finite number >= 0 or null"),
    (lambda d: d["rows"][0].update(equal_area_mm2="2"), r"field 'rows\[0\].equal_area_mm2': '2' is not allowed"),
    (lambda d: d["rows"][0].update(equal_area_shape=[16, 0]), r"field 'rows\[0\].equal_area_shape' must be a list "
                                                               r"of positive integers, got \[16, 0\]"),
    (lambda d: d["rows"][0].update(equal_area_shape="16x32"), r"'rows\[0\].equal_area_shape' must be a list"),
    (lambda d: d["rows"][1].update(energy_gain=[1.0]), r"field 'rows\[1\].energy_gain' must be an object of scope"),
    (lambda d: d["rows"][0]["speedup"].update(forward=math.nan), r"'rows\[0\].speedup.forward': nan is not allowed"),
    (lambda d: d["rows"][0]["energy_gain"].update(update=math.inf), r"'rows\[0\].energy_gain.update': inf is not"),
    (lambda d: d["rows"][0]["speedup"].update(iteration=True), r"'rows\[0\].speedup.iteration': True is not "),
    (lambda d: d["designs"][1].pop("design"), r"f.json: field 'designs\[1\].design' must be a string"),
    (lambda d: d["designs"][0].update(speedup_max=-1), r"field 'designs\[0\].speedup_max': -1 is not allowed"),
])
def test_a_malformed_comparison_names_the_file_and_field(edit, message):
    with pytest.raises(ResultsError, match=message) as err:
        check_comparison(_broken(edit), "f.json")
    assert "\n" not in str(err.value)


def test_check_comparison_reads_every_listed_scope_and_keeps_extra_keys():
    doc = _broken(lambda d: d.update(scopes=["iteration", "warmup"], note="kept"))
    doc["rows"][0]["speedup"]["warmup"] = "absent"
    with pytest.raises(ResultsError, match=r"'rows\[0\].speedup.warmup': 'absent' is not allowed"):
        check_comparison(doc, "f.json")
    doc["rows"][0]["speedup"]["warmup"] = 0  # 0 and a missing cell (None: no work) are allowed
    out = check_comparison(doc, "f.json")
    assert out["note"] == "kept" and out is not doc
    assert check_comparison(_broken(lambda d: d["rows"][0].update(area_mm2=None)), "f.json")["rows"][0][
        "area_mm2"] is None


def test_something_that_is_not_a_mapping_is_refused():
    with pytest.raises(ResultsError, match="f.json: field 'format' must be 'hwsim-designs'"):
        check_comparison([1, 2], "f.json")


# ---------------------------------------------------------------- which designs, which iterations


def test_designs_appends_every_tensordash_yaml_of_the_directory_sorted(tmp_path):
    for name in ("tensordash_b.yaml", "tensordash_a.yaml", "other.yaml", "tensordash_c.yml", "xtensordash.yaml"):
        (tmp_path / name).write_text("name: x\n")
    assert designs(tmp_path) == BASE_DESIGNS + ("tensordash_a", "tensordash_b")
    assert designs(tmp_path / "empty") == BASE_DESIGNS  # no such directory: the base designs alone
    assert BASE_DESIGNS == ("scnn", "training", "systolic32", "systolic32_os", "scnn_bitserial")


def test_designs_by_default_reads_the_shipped_configs():
    from hwsim.arch import ARCH_DIR

    shipped = tuple(sorted(p.stem for p in ARCH_DIR.glob("tensordash*.yaml")))
    assert shipped and designs() == BASE_DESIGNS + shipped
    assert all((ARCH_DIR / f"{d}.yaml").is_file() for d in designs())  # every default design is a shipped file


def _fake_trace(sampled: list[int], recorded: int, default: int) -> SimpleNamespace:
    return SimpleNamespace(sampled_iterations=sampled, iterations=[SimpleNamespace(index=i) for i in range(recorded)],
                           default_iteration=lambda: (default, "why"))


def test_chosen_iterations_last_is_the_traces_default_iteration():
    t = _fake_trace([30, 0, 10], recorded=50, default=10)  # e.g. iteration 30 is an epoch's short last batch
    assert chosen_iterations(t, "last") == ([10], "last full batch: iteration 10 of 50")


def test_chosen_iterations_all_is_every_sampled_one_sorted_over_the_run_length():
    # run length: the last recorded iteration (49) + 1 = 50
    assert chosen_iterations(_fake_trace([30, 0, 10], recorded=50, default=10), "all") == (
        [0, 10, 30], "whole run: 3 sampled iterations of 50, integrated")
    # a sampled iteration past the recorded ones stretches the run to it: 60 + 1
    assert chosen_iterations(_fake_trace([60, 5], recorded=50, default=60), "all")[1] == (
        "whole run: 2 sampled iterations of 61, integrated")


@pytest.mark.parametrize("mode", ["every:2", "LAST", "", "0"])
def test_chosen_iterations_refuses_any_other_mode(mode):
    with pytest.raises(SweepError, match=rf"^iterations: {mode!r} is not allowed; allowed: last, all$"):
        chosen_iterations(_fake_trace([0], recorded=1, default=0), mode)
