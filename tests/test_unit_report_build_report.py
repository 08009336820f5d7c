"""Unit tests of hwsim.report.build.build_report on hand-written sweep summaries (no simulator, tiny DPI): which
sections, figures and tables a report gets, the cap of three density figures per sweep, progress lines and the
empty-input error; plus small helpers of the figure modules (batch notes, breakdown units, panel widths)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from hwsim.report import build, fig_breakdown, fig_density, fig_layers, fig_sweep, render  # noqa: E402
from hwsim.report.inputs import ReportInputError, ReportInputs, SweepEntry, load_inputs  # noqa: E402


def _arch_sweep_rows():
    # 2 MAC widths × 2 DRAM bandwidths on one trace: a parameter figure and a Pareto front
    rows = []
    for bits in (8, 16):
        for bw in (4.0, 16.0):
            rows.append({"trace": "t", "model": "lenet5", "method": "dither", "config": len(rows),
                         "pe.mac_bits": bits, "memory.dram_bytes_per_cycle": bw,
                         "cycles_sparse": 1000 * bits / bw, "energy_pj_sparse": 1e6 * bits,
                         "speedup_sparse": 2.0, "energy_ratio_sparse": 1.5, "utilization_sparse": 0.5})
    return rows


def _density_rows(configs: int):
    rows = []
    for cfg in range(configs):
        for d in (0.1, 0.5, 1.0):
            rows.append({"trace": f"syn[density={d}]", "model": "lenet5", "config": cfg, "seed": 0,
                         "synthetic_w_density": d, "synthetic_a_density": d, "synthetic_dz_density": d,
                         "cycles_sparse": 100 * d, "cycles_dense": 100.0, "cycles_dense_gated": 100.0,
                         "cycles_ideal": 10 * d, "energy_pj_sparse": 50 * d, "energy_pj_dense": 60.0,
                         "energy_pj_dense_gated": 55.0, "energy_pj_ideal": 5 * d, "pe.mac_bits": 8 + cfg})
    return rows


def _write_sweep(folder: Path, name: str, rows, parameters) -> Path:
    folder.mkdir(parents=True)
    doc = {"sweep": {"name": name, "arch": "scnn", "traces": [{"synthetic": {"batch": 4}}]},
           "parameters": parameters, "rows": rows, "provenance": {}}
    (folder / "sweep.json").write_text(json.dumps(doc))
    return folder


def test_nothing_to_report_is_an_error(tmp_path):
    with pytest.raises(ReportInputError, match="nothing to report"):
        build.build_report(ReportInputs(), out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_an_architecture_sweep_gets_its_section_figures_and_ranked_table(tmp_path, capsys):
    sw = _write_sweep(tmp_path / "sw", "arch", _arch_sweep_rows(), ["pe.mac_bits", "memory.dram_bytes_per_cycle"])
    res = build.build_report([sw], out=tmp_path / "r", title="T", progress=True, dpi=30)
    assert [p.name for p in res.plots] == ["arch_parameters", "arch_pareto"]
    assert [t.title for t in res.tables] == ["Sweep 'arch' points, ranked"]
    assert all(p.section == "Sweep arch" for p in res.plots)
    assert capsys.readouterr().out.splitlines() == ["report: figure 1/2 arch_parameters", "report: figure 2/2 arch_pareto"]
    md = res.index_md.read_text()
    assert md.startswith("# T\n") and [ln for ln in md.splitlines() if ln.startswith("## ")] == [
        "## Sweep arch", "## Provenance"]  # headline first, provenance last (issue 20)
    for p in res.plots:
        assert p.png.exists() and p.svg.exists() and p.csv is not None and p.csv.exists()
    assert (tmp_path / "r" / "data" / "arch_sweep.csv").exists() and res.index_html.exists()


def test_pareto_figure_without_dense_columns_draws_the_sparse_points_only():
    # sweep.json rows need no dense columns to pass the report's checks; the figure must not need them either
    sw = SweepEntry(label="s", source=Path("/s"), parameters=("pe.mac_bits", "memory.dram_bytes_per_cycle"),
                    rows=tuple(_arch_sweep_rows()), spec={})
    p = fig_sweep.pareto_figure(sw, name="p")
    assert p is not None and len(p.rows) == 4
    # cycles 1000·bits/bw: (8, 4) 2000, (8, 16) 500, (16, 4) 4000, (16, 16) 1000; energy 8 or 16 µJ:
    # the front is 500 cycles / 8 µJ alone (it beats every other point on both)
    assert [(r["cycles_sparse"], r["front_number"]) for r in p.rows if r["on_front"]] == [(500.0, 1)]
    offsets = [c.get_offsets() for c in p.figure.axes[0].collections]
    assert [len(o) for o in offsets] == [0, 4]  # no dense points, four sparse points


def test_progress_total_is_the_figures_written_when_some_have_nothing_to_draw(tmp_path, capsys):
    # one configuration: its density figure is drawn; the parameter and Pareto figures (nothing swept) are not
    sw = _write_sweep(tmp_path / "sw", "dens", _density_rows(1), ["pe.mac_bits"])
    res = build.build_report([sw], out=tmp_path / "r", progress=True, dpi=30)
    pngs = sorted(p.name for p in (tmp_path / "r" / "figures").glob("*.png"))
    assert pngs == ["dens_density_0.png"] and [p.name for p in res.plots] == ["dens_density_0"]
    assert capsys.readouterr().out.splitlines() == [
        "report: figure 1/3 dens_density_0",
        "report: dens_parameters: nothing to draw, skipped (2 figures in all)",
        "report: dens_pareto: nothing to draw, skipped (1 figure in all)"]  # the last total: the files written


def test_a_sweep_without_figures_still_gets_its_section_for_the_table(tmp_path):
    rows = [dict(r, **{"pe.mac_bits": 8}) for r in _arch_sweep_rows()[:1]]  # one point: nothing to plot
    sw = _write_sweep(tmp_path / "sw", "one", rows, ["pe.mac_bits"])
    res = build.build_report([sw], out=tmp_path / "r", dpi=30)
    assert res.plots == () and [t.section for t in res.tables] == ["Sweep one"]
    assert "## Sweep one" in res.index_md.read_text()


def test_density_figures_are_capped_at_three_per_sweep(tmp_path):
    sw = _write_sweep(tmp_path / "sw", "dens", _density_rows(4), ["pe.mac_bits"])
    assert len(fig_density.density_groups(load_inputs([sw]).sweeps[0])) == 4
    res = build.build_report([sw], out=tmp_path / "r", dpi=30)
    names = [p.name for p in res.plots]
    assert names[:3] == ["dens_density_0", "dens_density_1", "dens_density_2"]
    assert "dens_density_3" not in names


def test_batch_note_reads_the_synthetic_batches_of_the_spec():
    def entry(spec):
        return SweepEntry(label="s", source=Path("/s"), parameters=(), rows=(), spec=spec)

    spec = {"traces": [{"synthetic": {"batch": 8}}, {"synthetic": {"batch": 4}}, {"path": "t"}, "odd"]}
    assert fig_density._batch_note(entry(spec), []) == (
        "one training iteration (forward + backward-data + backward-weight), synthetic batch of 4, 8")
    assert fig_density._batch_note(entry({"training": False}), []) == "inference"


@pytest.mark.parametrize("kind,peak,scale,label", [
    ("cycles", 5_000, 1.0, "cycles"), ("cycles", 10_000, 1e-3, "cycles (thousands)"),
    ("cycles", 2e6, 1e-6, "cycles (millions)"), ("cycles", 1e6, 1e-6, "cycles (millions)"), ("energy", 3e6, 1e-6, "energy (µJ)"),
])
def test_breakdown_unit_follows_the_tallest_stack(kind, peak, scale, label):
    # two rows; the taller stack (a + b) sets the unit
    rows = [{"x_a": peak / 4, "x_b": peak / 4}, {"x_a": peak / 2, "x_b": peak / 2}]
    assert fig_breakdown._unit(kind, rows, "x_", ("a", "b")) == (scale, label)


@pytest.mark.parametrize("layers,width", [(1, 9.0), (8, 2.2 + 0.62 * 9 * 2), (20, 16.0)])
def test_layer_panels_widen_with_the_layers_between_bounds(layers, width):
    fig, axes, w = fig_layers._panel_grid(layers)
    assert w == pytest.approx(width) and len(axes) == 4 and fig.get_figwidth() == pytest.approx(width)


def test_sweep_value_helpers():
    assert fig_sweep._numeric([1, 2.5]) and not fig_sweep._numeric([1, True]) and not fig_sweep._numeric([float("inf")])
    assert not fig_sweep._numeric(["8"])
    assert fig_sweep._hashable([8, 16]) == "[8, 16]" and fig_sweep._hashable(3) == 3
    assert fig_sweep._short_value(4.0) == "4" and fig_sweep._short_value(0.25) == "0.25"
    assert fig_sweep._short_value("ws") == "ws"


def test_save_writes_data_files_only_for_a_plot_with_rows(tmp_path):
    from hwsim.report.style import Plot, new_figure

    def plot(rows):
        fig = new_figure(width=2, height=2)
        fig.add_subplot().plot([0, 1], [0, 1])
        return Plot(name="p", title="T", caption="C", figure=fig, rows=rows, section="S")

    bare = render._save(plot([]), tmp_path, dpi=20)
    assert bare.csv is None and bare.json is None and bare.png == tmp_path / "figures" / "p.png"
    assert (bare.title, bare.caption, bare.section) == ("T", "C", "S")
    full = render._save(plot([{"x": 1, "y": 2.5}]), tmp_path, dpi=20)
    assert full.csv == tmp_path / "data" / "p.csv" and full.csv.read_text() == "x,y\n1,2.5\n"
    assert json.loads(full.json.read_text()) == [{"x": 1, "y": 2.5}]


def test_the_default_title(tmp_path):
    sw = _write_sweep(tmp_path / "sw", "one", _arch_sweep_rows()[:1], ["pe.mac_bits"])
    res = build.build_report([sw], out=tmp_path / "r", dpi=20)
    assert res.index_md.read_text().startswith("# hwsim report\n")
    assert "<title>hwsim report</title>" in res.index_html.read_text()
