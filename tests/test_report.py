"""Reports: every figure and table is written, numbers as CSV/JSON, and the HTML is self-contained."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from _hwsim_fixtures import fake_sweeps, write_result, write_trace_manifest

from hwsim.report import ReportInputError, build_report
from hwsim.report.fig_density import crossovers
from hwsim.report.fig_sweep import pareto_front


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    r1 = write_result(tmp / "results" / "lenet5_dither.json", dz=0.08)
    r3 = write_result(tmp / "results" / "mlp500_dither.json", model="mlp500", dz=0.05)
    trace = write_trace_manifest(tmp / "traces" / "lenet5_dither")
    fake_sweeps(tmp, grid={"pe_array.rows,pe_array.cols": [4, 8], "pe.mult_f,pe.mult_i": [2, 4]}, densities=[0.1, 0.3, 0.6, 0.9, 1.0])
    out = tmp / "report"
    outcome = build_report([r1, tmp / "results" / "mlp500_dither.json", tmp / "sweep_grid",
                            tmp / "sweep_density", trace], out=out, title="test report")
    assert r3.exists()
    return outcome


def test_every_figure_is_written_as_png_and_svg_with_its_numbers(report):
    names = {p.name for p in report.plots}
    for label in ("lenet5_dither_scnn", "mlp500_dither_scnn"):
        for kind in ("layer_speedup", "layer_energy", "cycle_breakdown", "energy_breakdown"):
            assert f"{label}_{kind}" in names
    expected = {"overview_speedup_energy", "grid_parameters", "grid_pareto", "density_density_0",
                "training_dz_density", "training_worst_bits"}
    assert expected <= names
    for p in report.plots:
        assert p.png.stat().st_size > 5000 and p.png.read_bytes()[:4] == b"\x89PNG"
        assert p.svg.read_text().lstrip().startswith("<?xml")
        assert p.csv and p.csv.exists() and p.json and json.loads(p.json.read_text())


def test_tables_summary_per_network_sweep_and_training(report):
    titles = [t.title for t in report.tables]
    assert "Summary — lenet5" in titles and "Summary — mlp500" in titles
    assert "Sweep 'grid' points, ranked" in titles and "Training runs" in titles
    summary = json.loads((report.out / "data" / "summary.json").read_text())
    assert {r["scope"] for r in summary} == {"forward", "backward_data", "backward_weight", "iteration"}
    assert len(summary) == 2 * 4
    lenet = next(r for r in summary if r["result"].startswith("lenet5 dither") and r["scope"] == "iteration")
    assert lenet["speedup_sparse"] == pytest.approx(lenet["cycles_dense"] / lenet["cycles_sparse"])
    md = report.index_md.read_text()
    for t in titles:
        assert f"### {t}" in md
    for p in report.plots:
        assert f"(figures/{p.png.name})" in md


def test_the_headline_comes_first_the_provenance_one_click_away(report):
    """issue 20: the page opened with a page-long provenance block above the headline numbers."""
    summary = json.loads((report.out / "data" / "summary.json").read_text())
    its = [r for r in summary if r["scope"] == "iteration"]
    lines = [f"{r['result']}: speed-up {r['speedup_sparse']:.2f}×, energy gain {r['energy_ratio_sparse']:.2f}×"
             for r in its]
    md = report.index_md.read_text()
    first_section = md.index("\n## ")
    assert md.index("**Headline**") < first_section
    for line in lines:
        assert md.index(f"- {line}") < first_section
    assert md.index("## Overview") < md.index("## Training") < md.index("## Provenance")
    assert [ln for ln in md.splitlines() if ln.startswith("## ")][-1] == "## Provenance"  # it ends the page
    html = report.index_html.read_text()
    assert html.index("Headline") < html.index('<details class="prov">') < html.index('<h2 id="s0">')
    assert "<details open" not in html
    for line in lines:
        assert html.index(f"<li>{line}</li>") < html.index("Provenance: what produced")


def test_density_figure_marks_the_crossover(report):
    p = next(p for p in report.plots if p.name == "density_density_0")
    assert "crossovers: latency vs dense at" in p.caption.lower()
    rows = json.loads(p.json.read_text())
    assert [r["density"] for r in rows] == sorted(r["density"] for r in rows)


def test_html_is_self_contained(report):
    html = report.index_html.read_text()
    assert html.startswith("<!DOCTYPE html>")
    lowered = html.lower()
    for bad in ("src=\"http", "src='http", "href=\"http", "<link", "@import", "url(", "<script", "<iframe",
                "<object", "<embed", "//cdn", "xlink:href"):
        assert bad not in lowered, bad
    for attr in re.findall(r"\b(?:src|href)\s*=\s*\"([^\"]*)\"", html):
        assert attr.startswith(("data:", "#")), attr
    assert html.count("<img") == len(report.plots)
    assert html.count("data:image/png;base64,") == len(report.plots)
    for t in report.tables:
        assert t.title.replace("'", "&#x27;") in html


def test_crossover_and_pareto_helpers():
    assert crossovers([0.1, 0.5, 0.9], [0.5, 0.9, 1.3]) == [pytest.approx(0.6)]
    assert crossovers([0.1, 0.5], [0.5, 0.9]) == []
    assert pareto_front([(1, 5), (2, 3), (3, 4), (4, 1)]) == [0, 1, 3]


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(ReportInputError, match="no such file"):
        build_report([tmp_path / "nope.json"], out=tmp_path / "r")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportInputError, match="empty"):
        build_report([tmp_path / "empty"], out=tmp_path / "r")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"trace": {}, "arch": {}}))
    with pytest.raises(ReportInputError, match=r"bad\.json.*layers"):
        build_report([bad], out=tmp_path / "r")


def test_report_does_not_need_the_simulator():
    import subprocess
    import sys

    code = ("import sys, hwsim.report.build, hwsim.report.inputs; "
            "print(any(m.startswith('hwsim.sim') for m in sys.modules), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    assert Path(hwsim_report_file()).read_text().count("import hwsim.sim") == 0


def hwsim_report_file() -> str:
    import hwsim.report.build as b

    return b.__file__
