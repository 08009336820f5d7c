"""Unit tests of hwsim.report.tables: per-layer ratios, breakdown and summary rows by hand, cell formatting, writers."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from hwsim.report.inputs import ResultEntry
from hwsim.report.style import percent, times
from hwsim.report.tables import (
    _sig3,
    breakdown_rows,
    fmt,
    format_table,
    layer_ratio_rows,
    mean_density,
    summary_rows,
    write_rows,
)
from hwsim.results import (
    SCOPES,
    VARIANTS,
    CycleBreakdown,
    EnergyBreakdown,
    LayerPassResult,
    SimResult,
    VariantResult,
)


def _v(cycles: int, pj: float, macs: int = 0) -> VariantResult:
    return VariantResult(cycle_breakdown=CycleBreakdown(compute=cycles - 1, imbalance=1),
                         energy_breakdown=EnergyBreakdown(mac=pj / 4, dram=3 * pj / 4), macs=macs, multipliers=2)


def _lp(name, p, s, d, *, macs=100, eff=30, dz=0.5):
    return LayerPassResult(name=name, pass_name=p, macs_dense=macs, macs_effectual=eff, sparse=_v(s, s * 10.0, eff),
                           dense=_v(d, d * 10.0, macs), dense_gated=_v(d, d * 5.0, macs), ideal=_v(2, 4.0, eff),
                           density={"dz": dz, "a": 0.25})


def _entry(label="net") -> ResultEntry:
    layers = (_lp("a", "forward", 10, 40), _lp("a", "backward_weight", 5, 40, dz=0.1),
              _lp("b", "forward", 20, 40, macs=300, eff=60), _lp("b", "backward_data", 8, 16, macs=50, eff=5, dz=0.3),
              _lp("b", "backward_weight", 4, 16, macs=50, eff=10, dz=0.3))
    r = SimResult(trace={"model": "toy", "method": "dither", "iteration": 1},
                  arch={"name": "scnn", "params": {"pe_array": {"rows": 2}}}, layers=layers)
    return ResultEntry(label=label, source=Path("x.json"), result=r)


def test_scope_total_of_a_layer_sums_passes_for_the_iteration():
    r = _entry().result
    assert r.scope_total("iteration", "sparse", layer="b").cycles == 20 + 8 + 4
    assert r.scope_total("forward", "dense", layer="b").cycles == 40
    assert r.scope_total("backward_data", "dense", layer="a").cycles == 0  # no such pass: an empty sum


def test_layer_ratio_rows_by_hand():
    rows = layer_ratio_rows(_entry())
    assert len(rows) == len(SCOPES) * 3 * len(VARIANTS)  # scopes × (a, b, total) × variants
    get = {(r["layer"], r["scope"], r["variant"]): r for r in rows}
    r = get[("a", "forward", "sparse")]
    assert r["speedup_vs_dense"] == 4.0 and r["energy_norm_to_dense"] == 0.25 and r["cycles"] == 10
    assert r["utilization"] == pytest.approx(30 / (10 * 2))
    t = get[("total", "iteration", "sparse")]
    assert t["speedup_vs_dense"] == pytest.approx((40 + 40 + 40 + 16 + 16) / (10 + 5 + 20 + 8 + 4))
    assert get[("total", "iteration", "dense_gated")]["energy_norm_to_dense"] == pytest.approx(0.5)
    na = get[("a", "backward_data", "sparse")]
    assert na["speedup_vs_dense"] is None and na["energy_norm_to_dense"] is None  # no dense run: no ratio
    assert all(r["result"] == "net" for r in rows)


def test_breakdown_rows_parts_add_up():
    rows = breakdown_rows(_entry())
    assert len(rows) == (len(SCOPES) + 2) * len(VARIANTS)  # totals per scope × variant, then per layer (iteration)
    t = next(r for r in rows if r["layer"] == "total" and r["scope"] == "forward" and r["variant"] == "sparse")
    assert t["cycles_compute"] == 9 + 19 and t["cycles_imbalance"] == 2
    assert t["energy_pj_mac"] == pytest.approx(300 / 4) and t["energy_pj_dram"] == pytest.approx(900 / 4)
    b = next(r for r in rows if r["layer"] == "b" and r["variant"] == "dense")
    assert b["scope"] == "iteration" and b["cycles_compute"] == 39 + 15 + 15


def test_mean_density_is_mac_weighted():
    r = _entry().result
    assert mean_density(r, "dz", "forward") == pytest.approx((0.5 * 100 + 0.5 * 300) / 400)
    assert mean_density(r, "dz", "backward_weight") == pytest.approx((0.1 * 100 + 0.3 * 50) / 150)
    assert mean_density(r, "dz", "iteration") == pytest.approx((50 + 10 + 150 + 15 + 15) / 600)
    assert mean_density(r, "w", "iteration") is None


def test_summary_rows_by_hand():
    rows = summary_rows([_entry("one"), _entry("two")])
    assert [(r["result"], r["scope"]) for r in rows] == [(lab, s) for lab in ("one", "two") for s in SCOPES]
    it = rows[3]
    assert it["network"] == "toy" and it["method"] == "dither" and it["arch"] == "scnn"
    assert it["macs_dense"] == 600 and it["effectual_fraction"] == pytest.approx(135 / 600)
    assert it["cycles_dense"] == 152 and it["cycles_sparse"] == 47
    assert it["speedup_sparse"] == pytest.approx(152 / 47) and it["speedup_ideal"] == pytest.approx(152 / 10)
    assert it["energy_uj_sparse"] == pytest.approx(470e-6)
    assert it["energy_ratio_sparse"] == pytest.approx(152 / 47)
    assert it["energy_ratio_dense_gated"] == pytest.approx(2.0)
    assert it["pj_per_effectual_mac_sparse"] == pytest.approx(470 / 135)
    # bounds (issue 17): dense @ 100 % of 2 multipliers = 50 + 50 + 150 + 25 + 25; MAC bound 5 × 2; roofline the
    # same (no DRAM bound recorded, floors 0); baselines these results predate are empty cells, not 0×
    assert it["speedup_sparse_vs_dense_full"] == pytest.approx(300 / 47)
    assert it["fraction_of_mac_bound"] == pytest.approx(10 / 47) and it["fraction_of_roofline"] == pytest.approx(10 / 47)
    assert it["speedup_sparse_vs_dense_equal_area"] is None and it["speedup_sparse_vs_dense_systolic"] is None
    bd = rows[1]
    assert bd["scope"] == "backward_data" and bd["macs_dense"] == 50 and bd["cycles_sparse"] == 8


@pytest.mark.parametrize("v,text", [(28912, "28,900"), (0.012345, "0.0123"), (1.0, "1.00"), (0, "0"),
                                    (None, "–"), (math.nan, "–"), (math.inf, "–"), (-3.14159, "-3.14"),
                                    (123.4, "123")])
def test_sig3(v, text):
    assert _sig3(v) == text


def test_fmt_patterns_functions_and_missing_values():
    assert fmt(1234, "{:,}") == "1,234"
    assert fmt(0.256, "{:.1%}") == "25.6%"
    assert fmt(None, "{:,}") == "–" and fmt(math.nan, "{:.2f}") == "–"
    assert fmt("scnn", "{:.2f}") == "scnn"  # a pattern that does not fit: the plain value
    assert fmt(2.5, times) == times(2.5) and fmt(None, times) == "–"
    assert fmt(0.004, percent) == "<1%"


def test_format_table():
    header, body = format_table([{"a": 1, "b": 0.5}, {"a": 2}], [("a", "A", "{:d}"), ("b", "B", "{:.0%}")])
    assert header == ["A", "B"] and body == [["1", "50%"], ["2", "–"]]


def test_write_rows_csv_and_json_agree(tmp_path):
    rows = [{"x": 1, "y": math.inf, "z": None}, {"x": 2, "w": [1, 2]}]
    c, j = write_rows(rows, out_dir=tmp_path / "sub", name="t")
    assert c.name == "t.csv" and j.name == "t.json"
    back = json.loads(j.read_text())
    assert back == [{"x": 1, "y": None, "z": None}, {"x": 2, "w": [1, 2]}]
    assert len(j.read_text().splitlines()) == 4  # one row per line
    got = list(csv.DictReader(c.open()))
    assert list(got[0]) == ["x", "y", "z", "w"] and got[0]["z"] == "" and got[1]["w"] == "[1, 2]"
