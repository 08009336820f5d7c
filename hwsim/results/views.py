"""Views of results: the names every table uses, the totals over a scope, and the rules for ratios (one home).

A *scope* is what a figure or table row sums over: one pass (``forward``, ``backward_data``, ``backward_weight``),
``backward`` (both backward passes), ``update`` (the weight update, one entry per layer with parameters:
:data:`UPDATE`) or ``iteration`` (all of them). :func:`scope_total` sums one variant of a
result's layer-pass records over a scope, for the whole model or one layer; ``hwsim simulate``'s table,
``hwsim compare``, the reports and the sweep summaries all read totals through it (:func:`scope_cycles` also
sums the bounds, :data:`BOUNDS`, and :data:`LABELS` names everything for readers), and ratios through
:func:`ratio` (headline numbers: a float, ``0/0 = 1``) or :func:`ratio_cell` (table cells: ``None`` where the
ratio is undefined, so a CSV/JSON cell stays empty instead of holding ``inf``).

At the bottom of :mod:`hwsim.results`: imports only the variant record (:mod:`hwsim.results.breakdown`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Protocol

from hwsim.results.breakdown import ResultsError, VariantResult, sum_variants

PASSES: tuple[str, ...] = ("forward", "backward_data", "backward_weight")  # the GEMM passes
# Issue 17 item 3: the optimizer step of each layer's parameters (hwsim.sim.update), after the backward passes.
# Its entries are layer-pass records like the GEMMs' (no MACs), so the iteration adds up; results before it
# have none.
UPDATE = "update"
ALL_PASSES: tuple[str, ...] = (*PASSES, UPDATE)
VARIANTS: tuple[str, ...] = ("sparse", "dense", "dense_gated", "ideal", "dense_systolic", "dense_equal_area")
# Added in issue 10 (dense_systolic) and 17 (dense_equal_area): older results lack these keys and load with zeros.
OPTIONAL_VARIANTS: frozenset[str] = frozenset({"dense_systolic", "dense_equal_area"})
# Bounds (issue 17 item 5): cycles only, per layer-pass, summed over scopes like the variants (:func:`bound_cycles`).
# ``mac_bound`` is the ``ideal`` variant's cycles (the JSON key stays ``ideal`` for older files).
BOUNDS: tuple[str, ...] = ("mac_bound", "roofline", "dense_full")
# What a reader sees: every table, figure and printed line names variants and bounds through this.
LABELS: dict[str, str] = {
    "sparse": "sparse", "dense": "dense (same silicon)", "dense_gated": "dense-gated",
    "ideal": "MAC bound", "mac_bound": "MAC bound", "roofline": "roofline bound",
    "dense_full": "dense @ 100 % of multipliers", "dense_systolic": "dense systolic (equal multipliers)",
    "dense_equal_area": "dense systolic (equal area)",
}
BACKWARD: tuple[str, ...] = ("backward_data", "backward_weight")
SCOPES: tuple[str, ...] = (*PASSES, "iteration")  # the scopes of reports and tables
ALL_SCOPES: tuple[str, ...] = (*PASSES, "backward", UPDATE, "iteration")  # ... and of ``hwsim compare``


class LayerPass(Protocol):
    """What a scope total reads of a layer-pass record (:class:`~hwsim.results.records.LayerPassResult`)."""

    name: str
    pass_name: str

    def variant(self, name: str) -> VariantResult: ...

    def bound_cycles(self, name: str) -> int: ...

    def dram_cycles(self) -> int: ...


def scope_passes(scope: str) -> tuple[str, ...]:
    """The passes a scope sums over."""
    if scope in ALL_PASSES:
        return (scope,)
    if scope == "backward":
        return BACKWARD
    if scope == "iteration":
        return ALL_PASSES
    raise ResultsError(f"scope {scope!r} is not allowed; allowed: {', '.join(ALL_SCOPES)}")


def scope_total(layers: Iterable[LayerPass], scope: str, variant: str, *, layer: str | None = None) -> VariantResult:
    """One variant summed over the layer-passes of a scope (of one layer, or of all with ``layer=None``).

    A scope the layers do not have (a layer without backward-data) is the empty sum: zero cycles and energy."""
    passes = scope_passes(scope)
    return sum_variants(lp.variant(variant) for lp in layers
                        if lp.pass_name in passes and (layer is None or lp.name == layer))


def scope_cycles(layers: Iterable[LayerPass], scope: str, name: str, *, layer: str | None = None,
                 overlapped: bool = False) -> int:
    """Cycles of a variant (:data:`VARIANTS`) or a bound (:data:`BOUNDS`) summed over a scope's layer-passes.

    Bounds: the MAC bound and dense @ 100 % are summed per layer-pass. The roofline depends on the schedule the
    result was simulated with: layer-passes in isolation (``overlapped=False``, ``memory.schedule: isolated``)
    cannot hide one's DRAM traffic behind another's compute, so the scope's roofline is Σ max(MAC bound, DRAM
    bound); in one schedule per iteration (``overlapped=True``) they can, so it is max(Σ MAC bound, Σ DRAM bound).
    In that schedule a pass's or a layer's cycles are an attribution of the iteration's (its loads may run during
    its neighbour's compute): only the iteration's roofline is a strict bound, narrower ones are indicative."""
    if name in VARIANTS:
        return scope_total(layers, scope, name, layer=layer).cycles
    if name not in BOUNDS:
        raise ResultsError(f"{name!r} is not a variant or a bound; allowed: {', '.join((*VARIANTS, *BOUNDS))}")
    passes = scope_passes(scope)
    chosen = [lp for lp in layers if lp.pass_name in passes and (layer is None or lp.name == layer)]
    if name == "roofline" and overlapped:
        return max(sum(lp.bound_cycles("mac_bound") for lp in chosen), sum(lp.dram_cycles() for lp in chosen))
    return sum(lp.bound_cycles(name) for lp in chosen)


def ratio(num: float, den: float) -> float:
    """``num / den`` for headline figures (speed-ups, energy gains): ``x / 0`` is ``inf``, ``0 / 0`` is 1 (no work
    on either side: nothing changed)."""
    if den == 0:
        return math.inf if num else 1.0
    return num / den


def ratio_cell(num: float, den: float) -> float | None:
    """``num / den`` for a table cell: ``None`` (an empty cell) where ``den`` is 0."""
    return num / den if den else None


def finite_cell(x: float) -> float | None:
    """A figure for a table cell: ``None`` for ``inf`` and NaN (JSON has neither)."""
    return x if math.isfinite(x) else None


def times(x: object) -> str:
    """A ratio as text without false precision: 300×, 30.1×, 2.61×; ``∞`` for +inf, "–" for None, NaN or −inf.
    The one formatter of every table and page (reports, sweep summaries, the README's generated tables)."""
    if x is None:
        return "–"
    v = float(x)  # type: ignore[arg-type]
    if not math.isfinite(v):
        return "∞" if v == math.inf else "–"
    if abs(v) >= 100:
        return f"{v:.0f}×"
    return f"{v:.1f}×" if abs(v) >= 10 else f"{v:.2f}×"


__all__ = ["ALL_PASSES", "ALL_SCOPES", "BACKWARD", "UPDATE", "BOUNDS", "LABELS", "OPTIONAL_VARIANTS", "PASSES", "SCOPES", "VARIANTS",
           "finite_cell", "ratio", "ratio_cell", "scope_cycles", "scope_passes", "scope_total", "times"]


def nongemm_share(vr: VariantResult) -> float | None:
    """The share of ``vr``'s cycles spent on non-GEMM work on the vector unit (cycle cause ``nongemm``;
    0 for results without it), ``None`` without cycles."""
    return ratio_cell(vr.cycle_breakdown.nongemm, vr.cycles)
