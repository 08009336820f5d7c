"""Results: frozen records that add up — one iteration (:class:`SimResult`: layers → passes → variants), a whole
training run (:class:`RunResult`), their cycle and energy breakdowns, action counts, and the provenance that says
what produced them. Pure records with a JSON round trip: nothing here imports the simulator, torch or matplotlib.

Modules, one concept each: ``actions`` (counted hardware actions), ``breakdown`` (one variant's cycles and energy
by cause), ``records`` (layer-pass and iteration records, results JSON), ``run`` (a whole run: per-iteration
records and their integral), ``views`` (scopes, scope totals, the ratio rules every table uses), ``provenance``
(what produced a result, for reports).
"""

from __future__ import annotations

from hwsim.results.actions import Actions
from hwsim.results.breakdown import (
    CYCLE_PARTS,
    ENERGY_PARTS,
    CycleBreakdown,
    EnergyBreakdown,
    ResultsError,
    VariantResult,
    sum_variants,
)
from hwsim.results.records import (
    RESULTS_VERSION,
    LayerPassResult,
    SimResult,
    load_results,
    read_results_json,
    save_results,
)
from hwsim.results.run import RunResult, load_run_results, save_run_results
from hwsim.results.views import (
    ALL_PASSES,
    ALL_SCOPES,
    BOUNDS,
    LABELS,
    OPTIONAL_VARIANTS,
    PASSES,
    SCOPES,
    UPDATE,
    VARIANTS,
    finite_cell,
    ratio,
    ratio_cell,
    scope_cycles,
    scope_passes,
    scope_total,
    times,
)

__all__ = ["ALL_PASSES", "ALL_SCOPES", "UPDATE", "BOUNDS", "LABELS", "Actions", "CYCLE_PARTS", "ENERGY_PARTS", "OPTIONAL_VARIANTS", "PASSES", "RESULTS_VERSION",
           "SCOPES", "VARIANTS", "CycleBreakdown", "EnergyBreakdown", "LayerPassResult", "ResultsError", "RunResult",
           "SimResult", "VariantResult", "finite_cell", "load_results", "load_run_results", "ratio", "ratio_cell",
           "read_results_json", "save_results", "save_run_results", "scope_cycles", "scope_passes", "scope_total", "sum_variants", "times"]
