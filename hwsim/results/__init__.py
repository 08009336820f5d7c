"""Results: frozen records that add up — one iteration (:class:`SimResult`: layers → passes → variants), a whole
training run (:class:`RunResult`), their cycle and energy breakdowns, action counts, and the provenance that says
what produced them. Pure records with a JSON round trip: nothing here imports the simulator, torch or matplotlib.

Modules, one concept each: ``actions`` (counted hardware actions), ``breakdown`` (one variant's cycles and energy
by cause), ``records`` (layer-pass and iteration records, results JSON), ``run`` (a whole run: per-iteration
records and their integral), ``provenance`` (what produced a result, for reports).
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
    OPTIONAL_VARIANTS,
    PASSES,
    RESULTS_VERSION,
    VARIANTS,
    LayerPassResult,
    SimResult,
    energy_ratio,
    load_results,
    read_results_json,
    save_results,
    speedup,
)
from hwsim.results.run import RunResult, load_run_results, save_run_results

__all__ = ["Actions", "CYCLE_PARTS", "ENERGY_PARTS", "OPTIONAL_VARIANTS", "PASSES", "RESULTS_VERSION", "VARIANTS",
           "CycleBreakdown", "EnergyBreakdown", "LayerPassResult", "ResultsError", "RunResult", "SimResult",
           "VariantResult", "energy_ratio", "load_results", "load_run_results", "read_results_json", "save_results",
           "save_run_results", "speedup", "sum_variants"]
