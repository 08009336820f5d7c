"""Simulation results: frozen records that add up, with a JSON round-trip.

One :class:`SimResult` holds, for every layer and pass (forward, backward-data,
backward-weight), the cycles and energy of four variants of the same silicon and one more design:

* ``sparse``      — the architecture as configured (zero skipping),
* ``dense``       — same multipliers and buffers, no zero skipping (SCNN's DCNN),
* ``dense_gated`` — dense dataflow, zero operands gate the multiplier and DRAM traffic is
  compressed (SCNN's DCNN-opt: saves energy, not cycles),
* ``ideal``       — the **MAC bound**: effectual MACs / multipliers, the compute bound no real dataflow
  reaches (the JSON key stays ``ideal`` so older files load; readers see :data:`~hwsim.results.views.LABELS`),
* ``dense_systolic`` — the best dense design of equal multipliers (a systolic array; zero in
  results written before issue 10),
* ``dense_equal_area`` — a dense systolic array of the sparse design's area, buffers included, with its own
  residency (:func:`hwsim.arch.dense_equal_area_variant`; zero in results written before issue 17).

Bounds (cycles only, :data:`~hwsim.results.views.BOUNDS`, :meth:`LayerPassResult.bound_cycles`): ``mac_bound``
(the ``ideal`` cycles), ``roofline`` (max of the MAC bound and ``dram_bound_cycles``, the DRAM bytes of the
layer-pass at the widths the variants use ÷ bandwidth, :mod:`hwsim.sim.bounds`) and ``dense_full`` (dense MACs /
multipliers: a dense array at 100 % of its multipliers). Scope figures sum them per layer-pass.

The records are *additive by construction*: ``cycles`` is the sum of the cycle components
(:data:`CYCLE_PARTS`) and ``energy_pj`` the sum of the energy components (both are computed, never
stored separately), per-pass and whole-iteration figures are sums of layers. So a report can
stack bars and trust that they add up to the totals it prints.

This module is pure: it imports nothing from hwsim but the :class:`~hwsim.results.actions.Actions` record
(``hwsim.report`` reads results without the simulator). The JSON layout is specified in ``docs/contracts.md``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwsim._io import atomic_write_text
from hwsim._version import __version__
from hwsim.results.breakdown import (  # re-exported: one variant's record and its parts
    CYCLE_PARTS,
    ENERGY_PARTS,
    CycleBreakdown,
    EnergyBreakdown,
    ResultsError,
    VariantResult,
    check_number,
    sum_variants,
)
from hwsim.results.views import (
    ALL_PASSES,
    BOUNDS,
    OPTIONAL_VARIANTS,
    PASSES,
    VARIANTS,
    ratio,
    scope_cycles,
    scope_total,
)

RESULTS_VERSION = __version__  # the installed package's (hwsim._version)


# ----------------------------------------------------------------------------- layer × pass


@dataclass(frozen=True)
class LayerPassResult:
    """One GEMM of one layer: forward, backward-data or backward-weight, all four variants.

    ``density`` holds the operand densities of this GEMM's roles: ``w`` (weights), ``a``
    (layer input), ``dz`` (δ̃z), ``out`` (the output of the GEMM, before any activation).
    ``dz_bits`` is the widest δ̃z level (sign + magnitude) and ``operand_passes`` how many
    MAC passes it costs (⌈bits / mac_bits⌉; 1 for the forward pass).
    """

    name: str
    pass_name: str
    macs_dense: int
    macs_effectual: int
    sparse: VariantResult
    dense: VariantResult
    dense_gated: VariantResult
    ideal: VariantResult
    density: Mapping[str, float] = field(default_factory=dict)
    dz_bits: int = 0
    operand_passes: int = 1
    # Added (issue 10): the best dense design of equal multipliers (a systolic array derived from the
    # arch, hwsim.arch.dense_systolic_variant) and the bandwidth floor (the ideal variant's minimum DRAM
    # bytes / DRAM bandwidth, cycles). Older results load with a zero variant and a zero floor.
    dense_systolic: VariantResult = field(default_factory=VariantResult)
    bandwidth_floor_cycles: int = 0
    # Added (issue 17): the equal-area dense baseline and the DRAM term of the roofline bound (bytes at the widths
    # the variants use ÷ bandwidth). Older results load with a zero variant and ``None`` (the roofline then falls
    # back to ``bandwidth_floor_cycles``, a lower bound of it).
    dense_equal_area: VariantResult = field(default_factory=VariantResult)
    dram_bound_cycles: int | None = None

    def __post_init__(self) -> None:
        if self.pass_name not in ALL_PASSES:
            raise ResultsError(f"layer {self.name!r}: pass {self.pass_name!r} is not one of {ALL_PASSES}")

    def variant(self, name: str) -> VariantResult:
        if name not in VARIANTS:
            raise ResultsError(f"variant {name!r} is not one of {VARIANTS}")
        return getattr(self, name)

    def bound_cycles(self, name: str) -> int:
        """Cycles of a bound (:data:`~hwsim.results.views.BOUNDS`): ``mac_bound``, ``roofline`` or ``dense_full``."""
        if name == "mac_bound":
            return self.ideal.cycles
        if name == "roofline":
            return max(self.ideal.cycles, self.dram_cycles())
        if name == "dense_full":
            m = self.dense.multipliers
            return -(-int(self.macs_dense) // m) if m else 0
        raise ResultsError(f"bound {name!r} is not one of {BOUNDS}")

    def dram_cycles(self) -> int:
        """The DRAM term of the roofline: minimum DRAM bytes ÷ bandwidth (the older bandwidth floor in results that
        predate ``dram_bound_cycles``)."""
        return self.bandwidth_floor_cycles if self.dram_bound_cycles is None else self.dram_bound_cycles

    def cycles(self, name: str) -> int:
        """Cycles of a variant or a bound."""
        return self.bound_cycles(name) if name in BOUNDS else self.variant(name).cycles

    def speedup(self, variant: str = "sparse", *, baseline: str = "dense") -> float:
        """baseline cycles / variant cycles; either may be a variant or a bound (``baseline="roofline"``: the
        fraction of the roofline bound the variant reaches)."""
        return ratio(self.cycles(baseline), self.cycles(variant))

    def energy_ratio(self, variant: str = "sparse", *, baseline: str = "dense") -> float:
        """baseline.energy / variant.energy (> 1 means the variant saves energy)."""
        return ratio(self.variant(baseline).energy_pj, self.variant(variant).energy_pj)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name, "pass": self.pass_name, "macs_dense": int(self.macs_dense),
            "macs_effectual": int(self.macs_effectual), "density": {k: float(v) for k, v in self.density.items()},
            "dz_bits": int(self.dz_bits), "operand_passes": int(self.operand_passes),
            "bandwidth_floor_cycles": int(self.bandwidth_floor_cycles),
            **({} if self.dram_bound_cycles is None else {"dram_bound_cycles": int(self.dram_bound_cycles)}),
        }
        for v in VARIANTS:
            d[v] = self.variant(v).to_json()
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any], *, where: str = "layer") -> LayerPassResult:
        """Rebuild from :meth:`to_json` output, validating as it reads (errors name the field and what is allowed)."""
        if not isinstance(d, Mapping):
            raise ResultsError(f"{where}: must be an object, got {type(d).__name__}")
        for key in ("name", "pass"):
            if key not in d:
                raise ResultsError(f"{where}: field {key!r} is missing")
            if not isinstance(d[key], str):
                raise ResultsError(f"{where}.{key}: {d[key]!r} is not allowed; allowed: a string")
        for key in ("macs_dense", "macs_effectual", "dz_bits", "operand_passes", "bandwidth_floor_cycles",
                    "dram_bound_cycles"):
            if key in d:
                check_number(d[key], f"{where}.{key}")
        density = d.get("density", {})
        if not isinstance(density, Mapping):
            raise ResultsError(f"{where}.density: must be an object {{role: density}}, got {type(density).__name__}")
        for role, x in density.items():
            check_number(x, f"{where}.density.{role}", hi=1.0, nullable=True)
        try:
            return cls(
                name=str(d["name"]), pass_name=str(d["pass"]), macs_dense=int(d["macs_dense"]),
                macs_effectual=int(d["macs_effectual"]), density=dict(d.get("density", {})),
                dz_bits=int(d.get("dz_bits", 0)), operand_passes=int(d.get("operand_passes", 1)),
                bandwidth_floor_cycles=int(d.get("bandwidth_floor_cycles", 0)),
                dram_bound_cycles=int(d["dram_bound_cycles"]) if d.get("dram_bound_cycles") is not None else None,
                **{v: VariantResult.from_json(d[v], where=f"{where}.{v}") for v in VARIANTS
                   if v in d or v not in OPTIONAL_VARIANTS},
            )
        except KeyError as e:
            raise ResultsError(f"{where} ({d['name']!r}, {d['pass']!r}): field {e.args[0]!r} is missing") from None


# ----------------------------------------------------------------------------- whole run


@dataclass(frozen=True)
class SimResult:
    """A whole simulation: trace and arch provenance, and every layer × pass.

    Per-pass and total figures are derived (sums of layers), so they always add up.
    """

    trace: Mapping[str, Any]
    arch: Mapping[str, Any]
    layers: tuple[LayerPassResult, ...]
    run: Mapping[str, Any] = field(default_factory=dict)
    hwsim_version: str = RESULTS_VERSION
    # What produced this result (hwsim.results.provenance): trace meta, arch key parameters and overrides,
    # energy table, version, command line. Optional: older files have none.
    provenance: Mapping[str, Any] = field(default_factory=dict)

    # -- aggregation ------------------------------------------------------------------
    def layer_names(self) -> list[str]:
        seen: dict[str, None] = {}
        for lp in self.layers:
            seen.setdefault(lp.name, None)
        return list(seen)

    def layer(self, name: str, pass_name: str = "forward") -> LayerPassResult:
        for lp in self.layers:
            if lp.name == name and lp.pass_name == pass_name:
                return lp
        raise KeyError(f"no layer {name!r} pass {pass_name!r}; layers: {self.layer_names()}")

    def scope_total(self, scope: str, variant: str, *, layer: str | None = None) -> VariantResult:
        """``variant`` summed over a scope (a pass, ``backward`` or ``iteration``), whole model or one ``layer``."""
        return scope_total(self.layers, scope, variant, layer=layer)

    def pass_total(self, pass_name: str, variant: str) -> VariantResult:
        if pass_name not in ALL_PASSES:
            raise ResultsError(f"pass {pass_name!r} is not one of {ALL_PASSES}")
        return self.scope_total(pass_name, variant)

    def total(self, variant: str) -> VariantResult:
        return self.scope_total("iteration", variant)

    @property
    def passes(self) -> dict[str, dict[str, VariantResult]]:
        have = {lp.pass_name for lp in self.layers}  # the GEMM passes always; the update when it was simulated
        return {p: {v: self.pass_total(p, v) for v in VARIANTS} for p in ALL_PASSES if p in PASSES or p in have}

    @property
    def totals(self) -> dict[str, VariantResult]:
        return {v: self.total(v) for v in VARIANTS}

    @property
    def overlapped(self) -> bool:
        """Whether the layer-passes ran in one schedule per iteration (``memory.schedule: iteration``): then a
        layer-pass's DRAM traffic may hide behind another's compute (the roofline of a scope is max of sums)."""
        params = self.arch.get("params") if isinstance(self.arch, Mapping) else None
        mem = params.get("memory") if isinstance(params, Mapping) else None
        return isinstance(mem, Mapping) and mem.get("schedule") == "iteration"

    def scope_cycles(self, scope: str, name: str, *, layer: str | None = None) -> int:
        """Cycles of a variant or a bound (:data:`~hwsim.results.views.BOUNDS`) over a scope, whole model or one
        ``layer`` (:func:`~hwsim.results.views.scope_cycles`: the roofline follows the schedule simulated)."""
        return scope_cycles(self.layers, scope, name, layer=layer, overlapped=self.overlapped)

    def bound(self, name: str, pass_name: str | None = None) -> int:
        """Σ layer-passes' cycles of bound ``name`` (``mac_bound``, ``roofline``, ``dense_full``), one pass or the
        whole iteration."""
        return self.scope_cycles(pass_name or "iteration", name)

    def _select(self, variant: str, pass_name: str | None, baseline: str = "dense") -> tuple[VariantResult, VariantResult]:
        if pass_name is None:
            return self.total(baseline), self.total(variant)
        return self.pass_total(pass_name, baseline), self.pass_total(pass_name, variant)

    def speedup(self, variant: str = "sparse", *, pass_name: str | None = None, baseline: str = "dense") -> float:
        """baseline cycles / variant cycles, for one pass or (default) the whole iteration.

        ``baseline`` and ``variant``: any variant — ``dense`` (same silicon, no skipping), ``dense_systolic`` (best
        dense design of equal multipliers), ``dense_equal_area`` (dense systolic array of equal area) — or bound
        (``mac_bound``, ``roofline``, ``dense_full``: then the ratio is the fraction of the bound reached, ≤ 1)."""
        scope = pass_name or "iteration"
        return ratio(self.scope_cycles(scope, baseline), self.scope_cycles(scope, variant))

    def energy_ratio(self, variant: str = "sparse", *, pass_name: str | None = None,
                     baseline: str = "dense") -> float:
        """baseline energy / variant energy, for one pass or (default) the whole iteration."""
        d, v = self._select(variant, pass_name, baseline)
        return ratio(d.energy_pj, v.energy_pj)

    def bandwidth_floor(self, pass_name: str | None = None) -> int:
        """Σ layers' bandwidth floor (minimum DRAM bytes / bandwidth), one pass or the whole iteration."""
        return sum(lp.bandwidth_floor_cycles for lp in self.layers if pass_name in (None, lp.pass_name))

    def fraction_of_ideal(self, variant: str = "sparse", *, pass_name: str | None = None) -> float:
        """MAC bound cycles / variant cycles (1 = the variant reaches effectual MACs / multipliers); the same as
        ``speedup(variant, baseline="mac_bound")``, kept under its old name."""
        return self.speedup(variant, pass_name=pass_name, baseline="mac_bound")

    def to_rows(self) -> list[dict[str, Any]]:
        """Flat rows (one per layer × pass × variant) for CSV / dataframes."""
        rows = []
        for lp in self.layers:
            for v in VARIANTS:
                vr = lp.variant(v)
                row: dict[str, Any] = {"layer": lp.name, "pass": lp.pass_name, "variant": v,
                                       "cycles": vr.cycles, "energy_pj": vr.energy_pj,
                                       "utilization": vr.utilization, "macs": vr.macs,
                                       "speedup": lp.speedup(v), "energy_ratio": lp.energy_ratio(v)}
                row.update({f"cycles_{k}": x for k, x in vr.cycle_breakdown.to_json().items()})
                row.update({f"energy_{k}": x for k, x in vr.energy_breakdown.to_json().items()})
                rows.append(row)
        return rows

    # -- JSON -------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "hwsim_version": self.hwsim_version,
            "trace": dict(self.trace),
            "arch": dict(self.arch),
            "run": dict(self.run),
            "layers": [lp.to_json() for lp in self.layers],
            "passes": {p: {v: vr.to_json() for v, vr in d.items()} for p, d in self.passes.items()},
            "total": {v: vr.to_json() for v, vr in self.totals.items()},
            **({"provenance": dict(self.provenance)} if self.provenance else {}),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any], *, where: str = "results") -> SimResult:
        """Rebuild from :meth:`to_json` output; ``passes``/``total`` are re-derived from the layers."""
        if not isinstance(d, Mapping):
            raise ResultsError(f"{where}: top level must be a JSON object")
        for key in ("trace", "arch", "layers"):
            if key not in d:
                raise ResultsError(f"{where}: field {key!r} is missing")
        for key in ("trace", "arch", "run", "provenance"):
            if d.get(key) is not None and not isinstance(d[key], Mapping):
                raise ResultsError(f"{where}: field {key!r} must be an object, got {type(d[key]).__name__}")
        if not isinstance(d["layers"], list):
            raise ResultsError(f"{where}: field 'layers' must be a list, got {type(d['layers']).__name__}")
        layers = tuple(LayerPassResult.from_json(x, where=f"{where}: layers[{i}]") for i, x in enumerate(d["layers"]))
        return cls(trace=dict(d["trace"]), arch=dict(d["arch"]), layers=layers, run=dict(d.get("run", {})),
                   hwsim_version=str(d.get("hwsim_version", RESULTS_VERSION)),
                   provenance=dict(d.get("provenance") or {}))


def save_results(result: SimResult, path: str | os.PathLike) -> Path:
    """Write ``results.json`` atomically (temp file + rename): a reader never sees half a file."""
    p = Path(path)
    atomic_write_text(p, json.dumps(result.to_json(), indent=1))
    return p


def read_results_json(path: str | os.PathLike) -> Any:
    """The JSON document of a results file (errors name the file)."""
    p = Path(path)
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise ResultsError(f"{p}: no such results file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultsError(f"{p}: not valid JSON ({e})") from None


def load_results(path: str | os.PathLike) -> SimResult:
    """Read a ``results.json`` written by :func:`save_results` (errors name the file and field)."""
    return SimResult.from_json(read_results_json(path), where=str(path))


__all__ = ["PASSES", "VARIANTS", "CYCLE_PARTS", "ENERGY_PARTS", "ResultsError", "CycleBreakdown",
           "EnergyBreakdown", "VariantResult", "LayerPassResult", "SimResult", "sum_variants",
           "save_results", "load_results"]
