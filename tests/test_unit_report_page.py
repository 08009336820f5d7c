"""Unit tests of hwsim.report.page: index.md links every file, index.html is self-contained (every figure
embedded as a data URI, no link/script/stylesheet reference), escapes its text and shows the provenance."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from hwsim.report.page import Page, Table, write_html, write_markdown
from hwsim.report.style import SavedPlot


def _plot(root: Path, name: str, section: str, *, data: bool = True, png: bytes | None = None) -> SavedPlot:
    fig = root / "figures"
    fig.mkdir(exist_ok=True)
    (fig / f"{name}.png").write_bytes(png if png is not None else f"PNG-{name}".encode() + bytes(range(256)))
    (fig / f"{name}.svg").write_text("<svg/>")
    csv = json = None
    if data:
        (root / "data").mkdir(exist_ok=True)
        csv, json = root / "data" / f"{name}.csv", root / "data" / f"{name}.json"
        csv.write_text("a\n1\n")
        json.write_text("[]")
    return SavedPlot(name=name, title=f"Title of {name} <b>", caption=f"Caption of {name} & more", section=section,
                     png=fig / f"{name}.png", svg=fig / f"{name}.svg", csv=csv, json=json)


@pytest.fixture()
def page(tmp_path) -> Page:
    plots = [_plot(tmp_path, "speedup", "Overview"), _plot(tmp_path, "density", "Training", data=False),
             _plot(tmp_path, "cycles", "Overview")]
    table = Table(title="Speed-ups", header=["arch", "speed-up"], body=[["scnn|8", "2.5×"], ["<x>", "1.0×"]],
                  section="Training", note="Whole run & last.", files=(tmp_path / "data" / "speedup.csv",))
    prov = [("Results file run.json", [("trace", "traces/a <b>"), ("arch", "scnn (pe.bank_queue_depth=0)")]),
            ("Energy table", [("source", "Horowitz 2014")])]
    return Page(title="hwsim <report>", intro=["First & only.", "Second line."], sections=["Overview", "Training"],
                plots=plots, tables=[table], provenance=prov,
                headline=["lenet5 dither @ scnn: speed-up 1.52×, energy gain 1.31× <sparse>"])


def _html(page: Page, tmp_path: Path) -> str:
    return write_html(page, out=tmp_path).read_text()


def test_html_embeds_every_figure_exactly(page, tmp_path):
    text = _html(page, tmp_path)
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(uris) == len(page.plots) == 3
    assert [base64.b64decode(u) for u in uris] == [p.png.read_bytes() for p in
                                                   (page.plots[0], page.plots[2], page.plots[1])]  # section order
    for p in page.plots:
        assert f"<h3>{p.title.replace('<', '&lt;').replace('>', '&gt;')}</h3>" in text
        assert "Caption of " + p.name + " &amp; more" in text


def test_html_is_self_contained(page, tmp_path):
    text = _html(page, tmp_path)
    assert "<script" not in text and "<link" not in text and "@import" not in text and "url(" not in text
    assert re.findall(r'src="(?!data:)', text) == []
    assert re.findall(r'href="(?!#)', text) == []                           # only in-page anchors
    targets = re.findall(r'href="#([^"]+)"', text)
    assert len(targets) == len(page.sections) and all(f'id="{t}"' in text for t in targets)
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</body></html>")
    assert "<style>" in text and "</style>" in text


def test_html_lists_files_relative_to_the_page(page, tmp_path):
    text = _html(page, tmp_path)
    assert "<code>figures/speedup.svg</code>, <code>data/speedup.csv</code>, <code>data/speedup.json</code>" in text
    assert "Files: <code>figures/density.svg</code></p>" in text               # no data files for this one
    assert str(tmp_path) not in text


def test_html_escapes_text_and_shows_provenance_one_click_away(page, tmp_path):
    text = _html(page, tmp_path)
    assert "<title>hwsim &lt;report&gt;</title>" in text and "<h1>hwsim &lt;report&gt;</h1>" in text
    assert "<p>First &amp; only.</p>" in text
    assert "<dt>trace</dt><dd>traces/a &lt;b&gt;</dd>" in text
    assert "<h4>Energy table</h4><dl><dt>source</dt><dd>Horowitz 2014</dd></dl>" in text
    # issue 20: the headline first, the provenance collapsed (one click away), not a page above the numbers
    assert text.index("Headline") < text.index("<p>First &amp; only.</p>") < text.index("Provenance: what produced")
    assert "<li>lenet5 dither @ scnn: speed-up 1.52×, energy gain 1.31× &lt;sparse&gt;</li>" in text
    assert '<details class="prov">' in text and "<details open" not in text
    assert text.index("Provenance: what produced") < text.index('<h2 id="s0">Overview</h2>')
    assert "<td>scnn|8</td><td>2.5×</td>" in text and "<td>&lt;x&gt;</td>" in text
    assert "<p>Whole run &amp; last.</p>" in text
    assert '<a href="#s0">Overview</a>' in text and '<a href="#s1">Training</a>' in text
    assert "<b>" not in text.replace("<body>", "")


def test_html_without_provenance_has_no_block(page, tmp_path):
    bare = Page(title="t", intro=[], sections=page.sections, plots=page.plots, tables=[])
    text = _html(bare, tmp_path)
    assert "Provenance" not in text and "<table>" not in text and text.count("<figure>") == 3
    assert "Headline" not in text and "Headline" not in write_markdown(bare, out=tmp_path).read_text()


def test_markdown_lists_every_figure_table_and_file(page, tmp_path):
    text = write_markdown(page, out=tmp_path).read_text()
    assert text.startswith("# hwsim <report>\n\n**Headline** (sparse vs dense, whole iteration)\n\n"
                           "- lenet5 dither @ scnn: speed-up 1.52×, energy gain 1.31× <sparse>\n\n"
                           "First & only.\nSecond line.\n")
    secs = [ln for ln in text.splitlines() if ln.startswith("## ")]
    assert secs == ["## Overview", "## Training", "## Provenance"]  # issue 20: provenance after the numbers
    for p in page.plots:
        assert f"![{p.title}](figures/{p.name}.png)" in text and f"[SVG](figures/{p.name}.svg)" in text
    assert "Files: [SVG](figures/speedup.svg) · [CSV](data/speedup.csv) · [JSON](data/speedup.json)" in text
    assert "Files: [SVG](figures/density.svg)\n" in text
    assert "| arch | speed-up |\n|---|---|\n| scnn\\|8 | 2.5× |\n| <x> | 1.0× |" in text     # pipes escaped
    assert "Data: [speedup.csv](data/speedup.csv)" in text
    assert "**Results file run.json**\n\n- trace: traces/a <b>\n- arch: scnn (pe.bank_queue_depth=0)" in text
    assert text.index("### Speed-ups") < text.index("### Title of density")      # tables before figures


def test_pages_are_written_into_out(page, tmp_path):
    sub = tmp_path / "r"
    sub.mkdir()
    assert write_html(page, out=sub) == sub / "index.html"
    assert write_markdown(page, out=sub) == sub / "index.md"
    assert "(../figures/speedup.png)" in (sub / "index.md").read_text()      # links stay relative to the page
