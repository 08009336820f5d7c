"""Which accelerator for dithered backprop: each design against a dense array of its own area (issue 18 item 7).

Every simulation carries the ``dense_equal_area`` variant (:func:`hwsim.arch.dense_equal_area_variant`: the largest
square-ish weight-stationary systolic array whose area, global buffer included, is at most the design's own, with
the design's MAC width, DRAM, energy table and a global-buffer residency of its own). A *design comparison* puts
several designs side by side on the same traces by that yardstick: per trace × design, the speed-up and energy gain
over the equal-area dense array per scope (forward, backward-data, backward-weight, the weight update and the whole
iteration, non-GEMM work included) — so each design is compared with what the same silicon budget buys as a dense
array, and a figure below 1× means that array wins.

This module holds the rules (:func:`equal_area_figures`, :func:`summary`) and the document they fill (a JSON object,
``"format": "hwsim-designs"``: :func:`comparison`, checked on reading by :func:`check_comparison`). Producing one
(replaying the traces on every design) is :func:`hwsim.sweep.designs.compare_designs`; ``hwsim demo``'s report and
``benchmarks/accelerator_table.py`` (the README's table) both use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from hwsim.results.breakdown import ResultsError
from hwsim.results.records import SimResult
from hwsim.results.views import finite_cell

FORMAT = "hwsim-designs"
BASELINE = "dense_equal_area"
SCOPES: tuple[str, ...] = ("forward", "backward_data", "backward_weight", "update", "iteration")
# What each shipped design is, in a few words (a design not listed is shown by its name; tensordash*: below).
WHAT: dict[str, str] = {"scnn": "SCNN: sparse Cartesian product in every pass",
                        "training": "SCNN's silicon, δz-driven gather in both backward passes",
                        "systolic32": "dense 32×32 systolic array, weight stationary",
                        "systolic32_os": "dense 32×32 systolic array, output stationary",
                        "scnn_bitserial": "SCNN with bit-serial lanes (Stripes)"}


def describe(design: str) -> str:
    """A design's one-line description (:data:`WHAT`; any ``tensordash*`` config is the TensorDash-style design)."""
    if design.startswith("tensordash"):
        return "TensorDash-style operand scheduling on a dense array"
    return WHAT.get(design, design)


def equal_area_figures(result: SimResult) -> dict[str, Any]:
    """A design's figures against its equal-area dense array, from one simulated (or integrated) result.

    ``speedup[scope]`` = equal-area dense cycles ÷ the design's cycles and ``energy_gain[scope]`` = equal-area
    dense energy ÷ the design's energy, each summed over the scope's layer-passes (``iteration``: all of them,
    the weight update included); ``None`` where the scope has no work (the design spends no cycles in it: not a
    1× tie) and where a figure is not finite (JSON has no ``inf``)."""
    ea = result.arch.get(BASELINE) or {}
    work = {s: result.scope_cycles(s, "sparse") > 0 for s in SCOPES}
    return {"area_mm2": result.arch.get("area_mm2"), "equal_area_mm2": ea.get("area_mm2"),
            "equal_area_shape": list(ea.get("shape") or []),
            "speedup": {s: finite_cell(result.speedup(pass_name=None if s == "iteration" else s, baseline=BASELINE))
                        if work[s] else None for s in SCOPES},
            "energy_gain": {s: finite_cell(result.energy_ratio(pass_name=None if s == "iteration" else s,
                                                               baseline=BASELINE)) if work[s] else None
                            for s in SCOPES}}


def geomean(xs: Sequence[float | None]) -> float | None:
    """The geometric mean of the positive values (None and 0 left out); None when there is none."""
    v = [x for x in xs if x]
    return math.exp(sum(math.log(x) for x in v) / len(v)) if v else None


def summary(rows: Sequence[Mapping[str, Any]], designs: Sequence[str]) -> list[dict[str, Any]]:
    """Per design (in ``designs``' order; one without rows is left out): the geometric mean over the traces of its
    iteration speed-up and energy gain, and their range."""
    out = []
    for d in designs:
        mine = [r for r in rows if r["design"] == d]
        if not mine:
            continue
        sp = [r["speedup"]["iteration"] for r in mine]
        en = [r["energy_gain"]["iteration"] for r in mine]
        out.append({"design": d, "area_mm2": mine[0]["area_mm2"], "equal_area_shape": mine[0]["equal_area_shape"],
                    "traces": len(mine), "speedup_geomean": geomean(sp), "speedup_min": _least(sp, min),
                    "speedup_max": _least(sp, max), "energy_gain_geomean": geomean(en),
                    "energy_gain_min": _least(en, min), "energy_gain_max": _least(en, max)})
    return out


def _least(xs: Sequence[float | None], pick: Any) -> float | None:
    v = [x for x in xs if x]
    return pick(v) if v else None


def comparison(rows: Sequence[Mapping[str, Any]], traces: Sequence[Mapping[str, Any]], designs: Sequence[str], *,
               command: str | None = None) -> dict[str, Any]:
    """The document: ``rows`` (per trace × design: ``model``, ``design`` and :func:`equal_area_figures`),
    ``traces`` (per trace: ``model`` and ``replayed``, a phrase saying which iterations; more keys allowed),
    ``designs`` (:func:`summary`), the baseline and scopes, and the command that made it when given."""
    doc: dict[str, Any] = {"format": FORMAT}
    if command is not None:
        doc["command"] = command
    doc.update({"baseline": BASELINE, "scopes": list(SCOPES), "designs": summary(rows, designs),
                "traces": [dict(t) for t in traces], "rows": [dict(r) for r in rows]})
    return doc


def _number(v: Any, where: str, *, nullable: bool = True) -> None:
    ok = (v is None and nullable) or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                      and v >= 0)
    if not ok:
        raise ResultsError(f"{where}: {v!r} is not allowed; allowed: a finite number >= 0"
                           + (" or null" if nullable else ""))


def check_comparison(doc: Any, where: str) -> dict[str, Any]:
    """``doc`` if it is a design comparison (:func:`comparison`); else :class:`ResultsError` naming ``where`` (the
    file) and the field. Extra keys are kept; the numbers must be finite and >= 0 (None where a scope has no work)."""
    if not isinstance(doc, Mapping) or doc.get("format") != FORMAT:
        raise ResultsError(f"{where}: field 'format' must be {FORMAT!r} (a design comparison)")
    for key in ("scopes", "designs", "traces", "rows"):
        if not isinstance(doc.get(key), list):
            raise ResultsError(f"{where}: field {key!r} must be a list")
    if not all(isinstance(s, str) for s in doc["scopes"]):
        raise ResultsError(f"{where}: field 'scopes' must list scope names (strings)")
    for i, t in enumerate(doc["traces"]):
        if not isinstance(t, Mapping) or not isinstance(t.get("model"), str):
            raise ResultsError(f"{where}: field 'traces[{i}].model' must be a string")
    for i, r in enumerate(doc["rows"]):
        at = f"{where}: field 'rows[{i}]"
        if not isinstance(r, Mapping) or not isinstance(r.get("model"), str) or not isinstance(r.get("design"), str):
            raise ResultsError(f"{at}' must be an object with string fields 'model' and 'design'")
        _number(r.get("area_mm2"), f"{at}.area_mm2'")
        _number(r.get("equal_area_mm2"), f"{at}.equal_area_mm2'")
        shape = r.get("equal_area_shape")
        if not isinstance(shape, list) or not all(isinstance(x, int) and x > 0 for x in shape):
            raise ResultsError(f"{at}.equal_area_shape' must be a list of positive integers, got {shape!r}"[:300])
        for part in ("speedup", "energy_gain"):
            cells = r.get(part)
            if not isinstance(cells, Mapping):
                raise ResultsError(f"{at}.{part}' must be an object of scope → number")
            for s in doc["scopes"]:
                _number(cells.get(s), f"{at}.{part}.{s}'")
    for i, d in enumerate(doc["designs"]):
        if not isinstance(d, Mapping) or not isinstance(d.get("design"), str):
            raise ResultsError(f"{where}: field 'designs[{i}].design' must be a string")
        for k in ("area_mm2", "speedup_geomean", "speedup_min", "speedup_max", "energy_gain_geomean",
                  "energy_gain_min", "energy_gain_max"):
            _number(d.get(k), f"{where}: field 'designs[{i}].{k}'")
    return dict(doc)


__all__ = ["BASELINE", "FORMAT", "SCOPES", "WHAT", "check_comparison", "comparison", "describe",
           "equal_area_figures", "geomean", "summary"]
