"""Unit tests of hwsim.report.build's helpers on hand-built inputs: slugs, empty-column dropping, the ranked sweep
rows (ranks and Pareto numbers by hand), the ranked sweep table, the coverage warning, the intro and the
provenance blocks (architectures shared between inputs listed once)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from hwsim.report import build, render  # noqa: E402
from hwsim.report.inputs import ReportInputs, ResultEntry, SweepEntry  # noqa: E402
from hwsim.report.style import Plot, new_figure  # noqa: E402
from hwsim.results import SimResult  # noqa: E402


@pytest.mark.parametrize("text,s", [("Sweep 'demo' (8×8)", "sweep_demo_8_8"), ("---", "x"), ("A" * 70, "a" * 60),
                                    ("lenet5 dither @ scnn", "lenet5_dither_scnn")])
def test_slug(text, s):
    assert build.slug(text) == s


def test_drop_empty_keeps_columns_with_a_value_somewhere():
    cols = [("a", "A", "{}"), ("b", "B", "{}"), ("c", "C", "{}")]
    rows = [{"a": 1, "b": None, "c": ""}, {"a": None, "b": 0, "c": None}]
    assert build._drop_empty(rows, cols) == [("a", "A", "{}"), ("b", "B", "{}")]  # 0 is a value, "" is not


def test_ranked_sweep_rows_rank_per_trace_by_cycles_and_energy_and_number_the_front():
    rows = [
        {"trace": "t", "id": "slow-frugal", "cycles_sparse": 300, "energy_pj_sparse": 1.0},
        {"trace": "t", "id": "fast-hungry", "cycles_sparse": 100, "energy_pj_sparse": 9.0},
        {"trace": "t", "id": "dominated", "cycles_sparse": 200, "energy_pj_sparse": 9.5},
        {"trace": "u", "id": "alone", "cycles_sparse": None, "energy_pj_sparse": None},
        {"trace": "t", "id": "middle", "cycles_sparse": 200, "energy_pj_sparse": 5.0},
    ]
    out = build.ranked_sweep_rows(rows)
    got = [(r["id"], r["rank_cycles"], r["rank_energy"], r["pareto"]) for r in out]
    # t by cycles: fast-hungry 100, middle 200 (5.0 before 9.5 on a tie), dominated 200, slow-frugal 300;
    # by energy: slow-frugal 1, middle 5, fast-hungry 9, dominated 9.5; front numbered by cycles
    assert got == [("fast-hungry", 1, 3, 1), ("middle", 2, 2, 2), ("dominated", 3, 4, ""), ("slow-frugal", 4, 1, 3),
                   ("alone", 1, 1, "")]  # no numbers: ranked, but on no front
    assert "rank_cycles" not in rows[0]  # the input rows are not modified


def _sweep(rows, parameters=("pe.mac_bits",)):
    return SweepEntry(label="My sweep", source=Path("/x/sw"), parameters=parameters, rows=tuple(rows), spec={})


def test_sweep_table_shows_the_fastest_and_every_pareto_point(tmp_path):
    # 4 points of one trace, fewer cycles always costing more energy: all on the front
    rows = [{"trace": "t", "pe.mac_bits": b, "cycles_sparse": c, "energy_pj_sparse": e, "speedup_sparse": 2.0}
            for b, c, e in ((8, 400, 1e3), (16, 300, 2e3), (32, 200, 3e3), (4, 500, 4e3))]
    t = build._sweep_table(_sweep(rows), tmp_path, limit=2)
    # 400 / 1 nJ and 300 / 2 nJ... the (4, 500, 4 nJ) point is dominated and past the limit: not shown
    assert [r[5] for r in t.body] == ["200", "300", "400"] and [r[4] for r in t.body] == ["32", "16", "8"]
    assert t.header[:5] == ["trace", "rank (cycles)", "rank (energy)", "Pareto front", "MAC width (bit)"]
    assert t.header[6] == "sparse energy (nJ)" and [r[6] for r in t.body] == ["3", "2", "1"]
    assert "the 2 fastest per trace and every Pareto point shown" in t.note and "(source: sw)" in t.note
    assert t.title == "Sweep 'My sweep' points, ranked" and t.section == "Sweep My sweep"
    assert [p.name for p in t.files] == ["my_sweep_sweep.csv", "my_sweep_sweep.json"]


def test_sweep_table_adds_the_area_column_when_rows_have_it(tmp_path):
    rows = [{"trace": "t", "pe.mac_bits": 8, "cycles_sparse": 10, "energy_pj_sparse": 1.0, "area_mm2_sparse": 1.25}]
    t = build._sweep_table(_sweep(rows), tmp_path)
    assert "area (mm²)" in t.header and t.body[0][t.header.index("area (mm²)")] == "1.25"
    assert "fastest per trace" not in t.note  # everything shown
    # simulated sweep points record the arch's area as area_mm2 (e.g. NSD lanes against area: sweeps/nsd.yaml)
    rows = [{"trace": "t", "quantizer.lanes_per_pe": n, "cycles_sparse": c, "energy_pj_sparse": 1.0, "area_mm2": a}
            for n, c, a in ((1, 20, 18.957), (4, 10, 19.763))]
    t = build._sweep_table(_sweep(rows), tmp_path)
    assert [r[t.header.index("area (mm²)")] for r in t.body] == ["19.8", "19"]


def _plot(suptitle=None, width=6.0):
    fig = new_figure(width=width, height=3)
    if suptitle:
        fig.suptitle(suptitle)
    return Plot(name="p", title="T", caption="Cap.", figure=fig)


def test_with_coverage_warns_in_the_caption_and_on_the_figure():
    p = render._with_coverage(_plot(), ["2 of 9 GEMMs not captured"])
    assert p.caption == "Cap. Partial coverage — 2 of 9 GEMMs not captured."
    assert p.figure.get_suptitle() == "⚠ Partial coverage — 2 of 9 GEMMs not captured"
    q = render._with_coverage(_plot("Layers"), ["a", "b"])
    assert q.figure.get_suptitle() == "Layers\n⚠ Partial coverage — a; b"
    same = _plot()
    assert render._with_coverage(same, []) is same and render._with_coverage(None, ["x"]) is None


def test_with_coverage_shortens_a_long_warning_to_two_lines_of_the_figure_width():
    # a 3-inch figure: max(40, 3·72 / 6) = 40 characters a line; the text is cut to 2 · 40 = 80 characters
    # (79 and "…") behind "⚠ ": 82 characters, wrapped inside the run of x (no space lost)
    p = render._with_coverage(_plot(width=3.0), ["x" * 200])
    lines = p.figure.get_suptitle().split("\n")
    assert all(len(ln) <= 40 for ln in lines) and lines[-1].endswith("…")
    assert sum(len(ln) for ln in lines) == 82


def _result(model, arch_hash, overrides=None):
    prov = {"trace": {"model": model}, "arch": {"name": "scnn", "hash": arch_hash, "overrides": overrides or {}}}
    r = SimResult.from_json({"trace": {"model": model}, "arch": {"name": "scnn"}, "layers": [], "provenance": prov})
    return ResultEntry(label=f"{model} @ scnn", source=Path(f"/r/{model}.json"), result=r)


def test_intro_counts_the_inputs_and_names_the_architectures():
    inp = ReportInputs(results=(_result("a", "h1"), _result("b", "h1")), sweeps=(_sweep([]),))
    lines = build._intro(inp)
    assert "from 2 results file(s), 1 sweep(s) and 0 trace(s)." in lines[0]
    assert lines[1].endswith("Architectures: scnn.")
    assert len(build._intro(ReportInputs())) == 2  # no variants paragraph without results


def test_provenance_blocks_list_each_architecture_once_with_its_users():
    inp = ReportInputs(results=(_result("a", "h1"), _result("b", "h1"), _result("c", "h2", {"pe.mac_bits": 16})))
    blocks = build.provenance_blocks(inp)
    heads = [h for h, _ in blocks]
    assert heads == ["architecture 1", "architecture 2", "results: a @ scnn", "results: b @ scnn",
                     "results: c @ scnn", "this page"]
    assert dict(blocks[0][1])["used by"] == "a @ scnn, b @ scnn"
    assert dict(blocks[1][1])["overrides"] == "mac_bits=16"
    assert dict(blocks[3][1])["on"] == "architecture 1" and dict(blocks[4][1])["on"] == "architecture 2"
    assert dict(blocks[2][1])["file"] == "/r/a.json"


def test_provenance_blocks_of_a_sweep_group_traces_with_the_same_description():
    prov = {"traces": {f"t{i}": {"model": "lenet5"} for i in range(3)} | {"v": {"model": "mlp500"}}}
    sw = SweepEntry(label="s", source=Path("/x/sw"), parameters=(), rows=({},) * 5, spec={}, provenance=prov)
    (block, page) = build.provenance_blocks(ReportInputs(sweeps=(sw,)))
    items = dict(block[1])
    assert block[0] == "sweep: s" and items["points"] == "5" and items["swept"] == "nothing (one config)"
    assert "trace t0 … t2 (3)" in items and "trace v" in items and page[0] == "this page"


def test_a_sweep_base_arch_shares_the_block_of_a_result_on_the_same_arch():
    prov = {"arch": {"name": "scnn", "hash": "h1", "overrides": {}}, "hwsim_version": "9.9",
            "command": ["hwsim", "sweep", "s.yaml"], "traces": {}}
    sw = SweepEntry(label="s", source=Path("/x/sw"), parameters=("pe.mac_bits",), rows=({},), spec={},
                    provenance=prov)
    blocks = build.provenance_blocks(ReportInputs(results=(_result("a", "h1"),), sweeps=(sw,)))
    assert [h for h, _ in blocks] == ["architecture 1", "results: a @ scnn", "sweep: s", "this page"]
    assert dict(blocks[0][1])["used by"] == "a @ scnn, sweep s (base)"
    items = dict(blocks[2][1])
    assert items["base"] == "architecture 1" and items["swept"] == "MAC width (bit)"
    assert items["hwsim_version"] == "9.9" and items["command"] == "hwsim sweep s.yaml"


def test_a_trace_block_counts_its_recorded_iterations():
    from hwsim.report.inputs import TraceEntry
    from hwsim.trace.records import IterationRecord, TraceMeta

    t = TraceEntry(label="lenet5 dither", source=Path("/tr"), meta=TraceMeta(model="lenet5", method="dither"),
                   iterations=tuple(IterationRecord(index=i) for i in range(3)), layer_order=())
    (block, _page) = build.provenance_blocks(ReportInputs(traces=(t,)))
    assert block[0] == "trace: lenet5 dither"
    assert dict(block[1])["folder"] == "/tr" and dict(block[1])["recorded iterations"] == "3"
