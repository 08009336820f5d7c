"""The README's "which accelerator for dithered backprop" tables, from ``benchmarks/results/accelerator_table.json``.

Kept apart from ``scripts/readme_tables.py`` (which loads this file and adds the ``accelerators`` block) so each
stays a readable size. Input: the document ``benchmarks/accelerator_table.py`` writes — ``designs`` (per design:
area, equal-area array shape, geometric mean and range over the traces of the iteration speed-up and energy gain),
``traces`` (how each was captured and which iterations were replayed) and ``rows`` (per trace × design: speed-up
and energy gain over the design's equal-area dense array per scope). Output: a headline table (one row per
design), a detail table (one row per trace × design, one cell per scope: speed-up / energy gain) and a line
saying how each trace was made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hwsim.results import times  # the one ratio formatter (reports, sweep summaries, these tables)
from hwsim.results.designs import WHAT, describe  # what each design is: one home (the demo report's too)

SCOPE_LABELS = {"forward": "forward", "backward_data": "backward-data", "backward_weight": "backward-weight",
                "update": "update", "iteration": "iteration"}




def accelerators_table(doc: Mapping[str, Any]) -> list[str]:
    """Headline (per design), detail (per trace × design × scope) and the traces' line (module doc)."""
    n = max((d["traces"] for d in doc["designs"]), default=0)
    lines = [f"| design | what it is | area | equal-area dense array | iteration speed-up: geo-mean of {n} traces "
             "(range) | iteration energy gain: geo-mean (range) |", "|---|---|---|---|---|---|"]
    for d in doc["designs"]:
        shape = "×".join(str(x) for x in d["equal_area_shape"])
        lines.append(f"| `{d['design']}` | {describe(d['design'])} | {d['area_mm2']:.2f} mm² | {shape} | "
                     f"{times(d['speedup_geomean'])} ({times(d['speedup_min'])}–{times(d['speedup_max'])}) | "
                     f"{times(d['energy_gain_geomean'])} ({times(d['energy_gain_min'])}–{times(d['energy_gain_max'])}) |")
    scopes = doc["scopes"]
    lines += ["", "| trace | design | " + " | ".join(SCOPE_LABELS.get(s, s) for s in scopes) + " |",
              "|---|---|" + "---|" * len(scopes)]
    for r in doc["rows"]:
        lines.append(f"| {r['model']} | `{r['design']}` | "
                     + " | ".join(f"{times(r['speedup'][s])} / {times(r['energy_gain'][s])}" for s in scopes) + " |")
    made = []
    for t in doc["traces"]:
        dens = f", δ̃z density {t['dz_density']:.3f}" if t.get("dz_density") is not None else ""
        dens += f", test accuracy {100 * t['test_acc']:.1f} %" if t.get("test_acc") is not None else ""
        made.append(f"{t['model']} (`{t['capture']}`: {t['iterations']} iterations{dens}; {t['replayed']})")
    return [*lines, "", "Cells: speed-up / energy gain over the design's equal-area dense array. Traces: "
            + "; ".join(made) + "."]


__all__ = ["WHAT", "accelerators_table"]
