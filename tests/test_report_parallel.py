"""Figures drawn in worker processes (``build_report(jobs=N)``, ``hwsim report --jobs``) are the serial ones, byte
for byte, and the page lists them in the same order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _hwsim_fixtures import fake_sweeps, make_result, write_result, write_trace_manifest

from hwsim.report import build_report
from hwsim.report.inputs import load_inputs
from hwsim.results.run import RunResult, save_run_results

STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC")  # when the page was generated: the only text allowed to differ


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A small report with every kind of figure: per-layer results, a whole run, two sweeps and a trace."""
    tmp = tmp_path_factory.mktemp("parallel")
    single = write_result(tmp / "results" / "lenet5_dither.json", dz=0.08)
    run = RunResult.build([(i, make_result(model="mlp500", dz=0.2 / (1 + i))) for i in (0, 5, 9)],
                          total_iterations=10)
    whole = save_run_results(run, tmp / "results" / "mlp500_run.json")
    trace = write_trace_manifest(tmp / "traces" / "lenet5_dither")
    fake_sweeps(tmp, grid={"pe_array.rows,pe_array.cols": [4, 8], "pe.mult_f,pe.mult_i": [2, 4]}, densities=[0.1, 0.3, 0.6, 1.0])
    return load_inputs([single, whole, tmp / "sweep_grid", tmp / "sweep_density", trace])


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_parallel_figures_are_the_serial_ones_byte_for_byte(inputs, tmp_path):
    serial = build_report(inputs, out=tmp_path / "serial", dpi=60, jobs=1)
    parallel = build_report(inputs, out=tmp_path / "parallel", dpi=60, jobs=2)
    names = [p.name for p in serial.plots]
    assert any(n.endswith("_run_cost") for n in names) and "density_density_0" in names  # every kind is drawn
    assert len(names) >= 15
    titles = {p.name: p.title for p in serial.plots}  # each figure kind is drawn by its own maker
    assert titles["lenet5_dither_scnn_cycle_breakdown"].startswith("Cycle breakdown")
    assert titles["lenet5_dither_scnn_energy_breakdown"].startswith("Energy breakdown")
    assert [p.name for p in parallel.plots] == names
    assert [(p.title, p.caption, p.section) for p in parallel.plots] == [(p.title, p.caption, p.section)
                                                                         for p in serial.plots]
    a, b = _files(serial.out), _files(parallel.out)
    assert sorted(a) == sorted(b)
    assert sum(k.startswith("figures/") for k in a) == 2 * len(names)
    differ = [k for k in a if a[k] != b[k] and not k.startswith("index.")]
    assert differ == []
    for page in ("index.md", "index.html"):  # same sections, figures and tables in the same order
        assert STAMP.sub("T", a[page].decode()) == STAMP.sub("T", b[page].decode())


def test_without_svg_the_pngs_and_data_are_the_same_and_no_svg_is_written_or_linked(inputs, tmp_path):
    full = build_report(inputs, out=tmp_path / "full", dpi=60, jobs=1)
    png_only = build_report(inputs, out=tmp_path / "png", dpi=60, jobs=2, svg=False)  # the workers get it too
    a, b = _files(full.out), _files(png_only.out)
    assert not [k for k in b if k.endswith(".svg")] and all(p.svg is None for p in png_only.plots)
    assert sorted(k for k in a if not k.endswith(".svg")) == sorted(b)  # every PNG, CSV and JSON, nothing else
    assert [k for k in b if k != "index.md" and k != "index.html" and a[k] != b[k]] == []
    assert [p.name for p in png_only.plots] == [p.name for p in full.plots]
    md, html = b["index.md"].decode(), b["index.html"].decode()
    assert "[SVG](" not in md and ".svg" not in html and md.count("![") == len(full.plots)
    assert "[SVG](" in a["index.md"].decode()


def test_a_figure_that_fails_in_a_worker_is_raised_and_named(inputs, tmp_path):
    from hwsim.report import render

    ok, bad = render.Fig("overview", -1, "overview"), render.Fig("no_such_kind", -1, "broken")
    for figs, where in (([bad, ok], "in a worker process"), ([ok, bad], "broken")):  # the worker takes the head
        with pytest.raises(KeyError, match="no_such_kind") as info:
            render.render_figures(inputs, figs, root=tmp_path, dpi=60, jobs=2)
        if hasattr(info.value, "add_note"):  # Python >= 3.11 names the figure
            assert "broken" in " ".join(info.value.__notes__) and where in " ".join(info.value.__notes__)
