"""Unit tests of hwsim.report.page's section handling (what is shown where, navigation, optional notes and data
files) and of hwsim.report.fig_memory's bandwidth lookup and per-tensor DRAM split, on hand-built inputs."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from hwsim.report import fig_memory  # noqa: E402
from hwsim.report.inputs import ResultEntry  # noqa: E402
from hwsim.report.page import Page, Table, write_html, write_markdown  # noqa: E402
from hwsim.report.style import SavedPlot  # noqa: E402
from hwsim.results import CycleBreakdown, EnergyBreakdown, LayerPassResult, SimResult, VariantResult  # noqa: E402


def _saved(root: Path, name: str, section: str) -> SavedPlot:
    (root / "figures").mkdir(exist_ok=True)
    png, svg = root / "figures" / f"{name}.png", root / "figures" / f"{name}.svg"
    png.write_bytes(b"\x89PNG" + name.encode())
    svg.write_text("<svg/>")
    return SavedPlot(name=name, title=f"T {name}", caption="c", section=section, png=png, svg=svg, csv=None,
                     json=None)


def _page(root: Path, **kw) -> Page:
    d = dict(title="R", intro=["i"], sections=["A", "B"],
             plots=[_saved(root, "shown", "B"), _saved(root, "orphan", "Z")],
             tables=[Table(title="Bare", header=["h"], body=[["1"]], section="A")])
    d.update(kw)
    return Page(**d)


def test_a_plot_of_a_section_not_listed_is_not_shown(tmp_path):
    md = write_markdown(_page(tmp_path), out=tmp_path).read_text()
    html = write_html(_page(tmp_path), out=tmp_path).read_text()
    assert "T shown" in md and "T shown" in html
    assert "T orphan" not in md and "T orphan" not in html


def test_sections_in_order_with_navigation_anchors(tmp_path):
    html = write_html(_page(tmp_path), out=tmp_path).read_text()
    assert '<li><a href="#s0">A</a></li><li><a href="#s1">B</a></li>' in html
    assert html.index('<h2 id="s0">A</h2>') < html.index("<h3>Bare</h3>") < html.index('<h2 id="s1">B</h2>')
    md = write_markdown(_page(tmp_path), out=tmp_path).read_text()
    assert [ln for ln in md.splitlines() if ln.startswith("#")] == ["# R", "## A", "### Bare", "## B", "### T shown"]


def test_a_table_without_note_or_files_has_neither(tmp_path):
    md = write_markdown(_page(tmp_path), out=tmp_path).read_text()
    assert "### Bare\n\n| h |\n|---|\n| 1 |\n\n## B" in md and "Data:" not in md
    html = write_html(_page(tmp_path), out=tmp_path).read_text()
    assert "<h3>Bare</h3><table>" in html.replace("\n", "") and 'class="files">Data' not in html


def test_no_provenance_block_without_provenance(tmp_path):
    md = write_markdown(_page(tmp_path, provenance=()), out=tmp_path).read_text()
    assert "## Provenance" not in md and md.startswith("# R\n\ni\n")


# ----------------------------------------------------------------------------- fig_memory

def _variant(compute: int, acts: dict, stall: int = 0) -> VariantResult:
    return VariantResult(cycle_breakdown=CycleBreakdown(compute=compute, memory_stall=stall),
                         energy_breakdown=EnergyBreakdown(mac=1.0),
                         macs=compute, multipliers=2, actions=acts)


def _entry(params, acts) -> ResultEntry:
    lp = LayerPassResult(name="fc", pass_name="forward", macs_dense=40, macs_effectual=10,
                         sparse=_variant(10, acts, stall=5), dense=_variant(20, acts), dense_gated=_variant(20, {}),
                         ideal=_variant(5, {}))
    r = SimResult(trace={"model": "m", "method": "dither"}, arch={"name": "a", "params": params}, layers=(lp,))
    return ResultEntry(label="m", source=Path("m.json"), result=r)


@pytest.mark.parametrize("params,bw", [({"memory": {"dram_bytes_per_cycle": 16}}, 16.0), ({}, None),
                                       ({"memory": {"dram_bytes_per_cycle": "fast"}}, None), (None, None)])
def test_bandwidth_is_the_arch_parameter_when_numeric(params, bw):
    e = _entry(params, {"dram_bytes": 100.0})
    assert fig_memory._bandwidth(e) == bw
    assert {r["available_bytes_per_cycle"] for r in fig_memory.memory_rows(e)} == {bw}


def test_memory_rows_of_sparse_and_dense_and_the_caption_on_tensor_totals():
    e = _entry({"memory": {"dram_bytes_per_cycle": 8}}, {"dram_bytes": 100.0, "mult": 7})
    (sparse, dense) = fig_memory.memory_rows(e)
    assert (sparse["variant"], dense["variant"]) == ("sparse", "dense") and "mult" not in sparse
    # sparse: 10 compute + 5 stall cycles; 100 bytes over the 10 busy ones; 10 effectual MACs per 100 bytes and
    # per 15 cycles; dense: 100 bytes over 20 cycles
    assert sparse["cycles"] == 15 and sparse["memory_stall_cycles"] == 5
    assert sparse["required_bytes_per_cycle"] == 10.0 and sparse["macs_per_dram_byte"] == 0.1
    assert sparse["effectual_macs_per_cycle"] == pytest.approx(10 / 15)
    assert dense["required_bytes_per_cycle"] == 5.0 and dense["effectual_macs_per_cycle"] == 0.5
    p = fig_memory.bandwidth_figure(e, name="bw")
    assert p.caption.endswith("The DRAM bytes are totals per layer-pass (results do not split them by tensor).")
