"""The report's index pages: ``index.md`` (links to the files) and a self-contained ``index.html``.

The HTML embeds every figure as a base64 PNG data URI and its CSS in a ``<style>`` block, and
contains no link, script or stylesheet reference of any kind, so it can be mailed, archived or
opened offline and always shows exactly what was generated.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hwsim.report.style import SavedPlot


@dataclass(frozen=True)
class Table:
    """A table shown on the page (formatted cells) and its data files."""

    title: str
    header: list[str]
    body: list[list[str]]
    section: str
    note: str = ""
    files: tuple[Path, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Page:
    title: str
    intro: list[str]
    sections: list[str]
    plots: Sequence[SavedPlot]
    tables: Sequence[Table]
    # What produced every input: (heading, [(label, value), ...]) blocks: a collapsed <details> above the first
    # section (HTML), the last section (Markdown) — one click away, never a page above the numbers (issue 20).
    provenance: Sequence[tuple[str, Sequence[tuple[str, str]]]] = ()
    # The headline numbers (one line per results file: whole-iteration speed-up and energy gain over dense),
    # shown first, right under the title.
    headline: Sequence[str] = ()


HEADLINE, HEADLINE_SCOPE = "Headline", "(sparse vs dense, whole iteration)"


def _rel(p: Path, root: Path) -> str:
    return os.path.relpath(p, root).replace(os.sep, "/")


def write_markdown(page: Page, *, out: Path) -> Path:
    lines = [f"# {page.title}", ""]
    if page.headline:
        lines += [f"**{HEADLINE}** {HEADLINE_SCOPE}", "", *(f"- {h}" for h in page.headline), ""]
    lines += [*page.intro, ""]
    for sec in page.sections:
        lines += [f"## {sec}", ""]
        for t in (t for t in page.tables if t.section == sec):
            lines += [f"### {t.title}", ""]
            if t.note:
                lines += [t.note, ""]
            lines.append("| " + " | ".join(t.header) + " |")
            lines.append("|" + "|".join("---" for _ in t.header) + "|")
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in t.body]
            if t.files:
                lines += ["", "Data: " + ", ".join(f"[{p.name}]({_rel(p, out)})" for p in t.files)]
            lines.append("")
        for p in (p for p in page.plots if p.section == sec):
            lines += [f"### {p.title}", "", f"![{p.title}]({_rel(p.png, out)})", "", p.caption, ""]
            files = [f"[SVG]({_rel(p.svg, out)})"] if p.svg else []
            files += [f"[{x.suffix[1:].upper()}]({_rel(x, out)})" for x in (p.csv, p.json) if x]
            lines += ["Files: " + " · ".join(files), ""]
    if page.provenance:
        lines += ["## Provenance", ""]
        for head, items in page.provenance:
            lines += [f"**{head}**", ""]
            lines += [f"- {k}: {v}" for k, v in items]
            lines.append("")
    path = out / "index.md"
    path.write_text("\n".join(lines))
    return path


_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;border-bottom:2px solid #ddd;padding-bottom:.3em}
h2{font-size:1.3em;margin-top:2em;border-bottom:1px solid #eee}
h3{font-size:1.05em;margin-bottom:.3em}
figure{margin:1em 0 2em 0}
figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#444}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0 1.5em 0}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}
th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}
code{background:#f6f6f6;padding:0 3px}
.files{font-size:.8em;color:#666}
nav ul{columns:2}
.headline{font-size:1.1em;margin:1em 0}.headline ul{margin:.3em 0}
.prov{font-size:.85em;background:#fafafa;border:1px solid #eee;padding:.4em .8em;margin:1em 0}
.prov h4{margin:.6em 0 .2em 0}
.prov dl{display:grid;grid-template-columns:max-content auto;gap:.1em 1em;margin:0}
.prov dt{color:#555}.prov dd{margin:0;overflow-wrap:anywhere}
"""


def write_html(page: Page, *, out: Path) -> Path:
    e = html.escape
    anchor = {sec: f"s{i}" for i, sec in enumerate(page.sections)}
    parts = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
             f"<title>{e(page.title)}</title><style>{_CSS}</style></head><body>", f"<h1>{e(page.title)}</h1>"]
    if page.headline:
        parts.append(f"<div class=\"headline\"><strong>{e(HEADLINE)}</strong> {e(HEADLINE_SCOPE)}<ul>"
                     + "".join(f"<li>{e(h)}</li>" for h in page.headline) + "</ul></div>")
    parts += [f"<p>{e(p)}</p>" for p in page.intro]
    if page.provenance:
        parts.append("<details class=\"prov\"><summary>Provenance: what produced these results</summary>")
        for head, items in page.provenance:
            parts.append(f"<h4>{e(head)}</h4><dl>" + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in items)
                         + "</dl>")
        parts.append("</details>")
    parts.append("<nav><ul>" + "".join(f"<li><a href=\"#{anchor[s]}\">{e(s)}</a></li>" for s in page.sections)
                 + "</ul></nav>")
    for sec in page.sections:
        parts.append(f"<h2 id=\"{anchor[sec]}\">{e(sec)}</h2>")
        for t in (t for t in page.tables if t.section == sec):
            parts.append(f"<h3>{e(t.title)}</h3>")
            if t.note:
                parts.append(f"<p>{e(t.note)}</p>")
            parts.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in t.header) + "</tr></thead><tbody>")
            parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in t.body]
            parts.append("</tbody></table>")
            if t.files:
                parts.append("<p class=\"files\">Data: " + ", ".join(f"<code>{e(_rel(p, out))}</code>"
                                                                     for p in t.files) + "</p>")
        for p in (p for p in page.plots if p.section == sec):
            data = base64.b64encode(p.png.read_bytes()).decode("ascii")
            files = [_rel(x, out) for x in (p.svg, p.csv, p.json) if x]
            parts.append(f"<figure><h3>{e(p.title)}</h3><img alt=\"{e(p.title)}\" src=\"data:image/png;base64,{data}\">"
                         f"<figcaption>{e(p.caption)}</figcaption>"
                         f"<p class=\"files\">Files: {', '.join(f'<code>{e(f)}</code>' for f in files)}</p></figure>")
    parts.append("</body></html>")
    path = out / "index.html"
    path.write_text("\n".join(parts))
    return path
