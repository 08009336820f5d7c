"""Whole-training-run results: per-iteration records and their integral over the run (pure records).

A trace samples the operands of some iterations (``sample_every``) and keeps per-iteration statistics
of every one. Replaying several sampled iterations gives one :class:`~hwsim.results.SimResult` each;
a :class:`RunResult` integrates them over the training run.

**Estimator** (piecewise constant, left-hold): sorted replayed iterations i_1 < … < i_m of a run of T
iterations; iteration i_k stands for the iterations from i_k up to the next replayed one,
``weight_k = i_{k+1} − i_k`` (the last: ``T − i_m``; the first also stands for the iterations before
it, ``0 … i_1``). So Σ weight_k = T and a whole-run figure is Σ_k weight_k · figure(i_k) for every
layer, pass, variant, cycle cause, energy category and action count. Because every record is scaled
by the same integer weight and summed, the integrated :class:`SimResult` still adds up (layers →
passes → total) and all its ratios (speed-up, energy gain) are whole-run ratios
(Σ dense cycles / Σ sparse cycles). The estimator's error, measured against replaying every
iteration, is in ``docs/whole_run.md``.

**Spread**: per layer and pass (and for the whole iteration), the sparse and dense cycles and energy,
speed-up and energy gain of the replayed iterations — mean, min, max and the 10/50/90 percentiles
(unweighted over the replayed iterations; linear interpolation).

JSON: the integrated result is written *as a results file* (``trace``, ``arch``, ``run``,
``layers``, ``passes``, ``total`` — so :func:`hwsim.results.load_results` and reports read it as the
whole-run cost), plus ``kind: "hwsim-run"``, ``estimator``, ``spread``, ``training`` (per-iteration
δ̃z density and loss of every iteration of the trace) and ``iterations`` (one record per replayed
iteration: its index, weight and layers). Imports nothing from hwsim but :mod:`hwsim.results` and
:mod:`hwsim._io`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hwsim._io import atomic_write_text
from hwsim.results.records import (
    ALL_PASSES,
    CYCLE_PARTS,
    ENERGY_PARTS,
    PASSES,
    VARIANTS,
    CycleBreakdown,
    EnergyBreakdown,
    LayerPassResult,
    ResultsError,
    SimResult,
    VariantResult,
    read_results_json,
)

RUN_KIND = "hwsim-run"
ESTIMATOR = ("left-hold: each replayed iteration i_k stands for iterations i_k … i_{k+1}−1 (the first also for "
             "0 … i_1−1, the last up to the run's end); whole-run figure = Σ_k weight_k · figure(i_k)")
PERCENTILES = (10, 50, 90)


def hold_weights(iterations: Sequence[int], total: int) -> list[int]:
    """Left-hold weights of sorted, distinct replayed ``iterations`` in a run of ``total`` iterations (module doc)."""
    its = list(iterations)
    if not its:
        raise ResultsError("iterations: none replayed; allowed: at least one sampled iteration")
    if any(b <= a for a, b in zip(its, its[1:], strict=False)):
        raise ResultsError(f"iterations: {its} are not sorted and distinct")
    if its[0] < 0:
        raise ResultsError(f"iterations: {its[0]} is negative")
    total = max(int(total), its[-1] + 1)
    nxt = its[1:] + [total]
    w = [b - a for a, b in zip(its, nxt, strict=True)]
    w[0] += its[0]
    return w


# ----------------------------------------------------------------------------- scaling and summing


def scale_variant(v: VariantResult, k: int) -> VariantResult:
    """``v`` counted ``k`` times (k an integer weight: cycles stay integers)."""
    return VariantResult(
        cycle_breakdown=CycleBreakdown(*(getattr(v.cycle_breakdown, f) * k for f in CYCLE_PARTS),
                                       memory_stall_foreign=v.cycle_breakdown.memory_stall_foreign * k),
        energy_breakdown=EnergyBreakdown(*(getattr(v.energy_breakdown, f) * k for f in ENERGY_PARTS)),
        macs=v.macs * k, multipliers=v.multipliers, analytical_cycles=v.analytical_cycles * k,
        actions=v.actions.scaled(k))


def integrate(results: Sequence[SimResult], weights: Sequence[int], *, run: Mapping[str, Any] | None = None,
              trace: Mapping[str, Any] | None = None) -> SimResult:
    """Σ_k weights[k] · results[k], layer-pass by layer-pass (layers in first-seen order).

    Densities are weight-averaged, ``dz_bits`` and ``operand_passes`` the largest seen; a layer-pass
    missing from some iteration is integrated over the iterations that have it.
    """
    if len(results) != len(weights) or not results:
        raise ResultsError(f"integrate: {len(results)} results and {len(weights)} weights; allowed: equal, ≥ 1")
    acc: dict[tuple[str, str], dict[str, Any]] = {}
    for r, w in zip(results, weights, strict=True):
        for lp in r.layers:
            key = (lp.name, lp.pass_name)
            a = acc.setdefault(key, {"macs_dense": 0, "macs_effectual": 0, "w": 0, "density": {}, "dz_bits": 0,
                                     "operand_passes": 1, "floor": 0, "dram": 0,
                                     **{v: VariantResult() for v in VARIANTS}})
            a["macs_dense"] += lp.macs_dense * w
            a["floor"] += lp.bandwidth_floor_cycles * w
            # the DRAM bound of the roofline: None (not recorded) if any iteration's result predates it
            a["dram"] = None if a["dram"] is None or lp.dram_bound_cycles is None else a["dram"] + lp.dram_bound_cycles * w
            a["macs_effectual"] += lp.macs_effectual * w
            a["w"] += w
            for k, x in lp.density.items():
                a["density"][k] = a["density"].get(k, 0.0) + float(x) * w
            a["dz_bits"] = max(a["dz_bits"], lp.dz_bits)
            a["operand_passes"] = max(a["operand_passes"], lp.operand_passes)
            for v in VARIANTS:
                a[v] = a[v] + scale_variant(lp.variant(v), w)
    layers = tuple(
        LayerPassResult(name=n, pass_name=p, macs_dense=a["macs_dense"], macs_effectual=a["macs_effectual"],
                        density={k: x / a["w"] for k, x in a["density"].items()} if a["w"] else {},
                        dz_bits=a["dz_bits"], operand_passes=a["operand_passes"],
                        bandwidth_floor_cycles=a["floor"], dram_bound_cycles=a["dram"],
                        **{v: a[v] for v in VARIANTS})
        for (n, p), a in acc.items())
    first = results[0]
    return SimResult(trace=dict(trace if trace is not None else first.trace), arch=dict(first.arch), layers=layers,
                     run=dict(run if run is not None else first.run), hwsim_version=first.hwsim_version)


# ----------------------------------------------------------------------------- spread


def _quantile(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    if not s:
        return math.nan
    pos = (len(s) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def stats(xs: Sequence[float]) -> dict[str, float]:
    """mean, min, max and the :data:`PERCENTILES` of ``xs`` (unweighted)."""
    xs = [float(x) for x in xs]
    out = {"mean": sum(xs) / len(xs) if xs else math.nan, "min": min(xs, default=math.nan),
           "max": max(xs, default=math.nan)}
    out.update({f"p{q}": _quantile(xs, q) for q in PERCENTILES})
    return out


def _figures(dense: VariantResult, sparse: VariantResult) -> dict[str, float]:
    return {"cycles_sparse": sparse.cycles, "cycles_dense": dense.cycles, "energy_pj_sparse": sparse.energy_pj,
            "energy_pj_dense": dense.energy_pj,
            "speedup": dense.cycles / sparse.cycles if sparse.cycles else math.inf,
            "energy_ratio": dense.energy_pj / sparse.energy_pj if sparse.energy_pj else math.inf}


def spread(results: Sequence[SimResult]) -> dict[str, Any]:
    """Spread over iterations: ``{"iteration": {figure: stats}, "passes": {pass: …}, "layers": {"name/pass": …}}``."""
    def summarise(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
        return {k: stats([r[k] for r in rows]) for k in rows[0]} if rows else {}

    out: dict[str, Any] = {"iteration": summarise([_figures(r.total("dense"), r.total("sparse")) for r in results])}
    out["passes"] = {p: summarise([_figures(r.pass_total(p, "dense"), r.pass_total(p, "sparse")) for r in results
                                   if any(lp.pass_name == p for lp in r.layers)]) for p in ALL_PASSES
                     if p in PASSES or any(lp.pass_name == p for r in results for lp in r.layers)}
    per: dict[str, list[dict[str, float]]] = {}
    for r in results:
        for lp in r.layers:
            per.setdefault(f"{lp.name}/{lp.pass_name}", []).append(_figures(lp.dense, lp.sparse))
    out["layers"] = {k: summarise(v) for k, v in per.items()}
    return out


# ----------------------------------------------------------------------------- the record


@dataclass(frozen=True)
class ReplayedIteration:
    """One replayed iteration: its index, how many training iterations it stands for, its result."""

    iteration: int
    weight: int
    result: SimResult

    def __post_init__(self) -> None:
        if self.iteration < 0:
            raise ValueError(f"field 'iteration' must be >= 0, got {self.iteration}")
        if self.weight < 1:
            raise ValueError(f"field 'weight' (training iterations this one stands for) must be >= 1, got {self.weight}")


@dataclass(frozen=True)
class RunResult:
    """Replayed iterations of one training run on one architecture, and their integral (module doc)."""

    iterations: tuple[ReplayedIteration, ...]
    total_iterations: int
    training: tuple[Mapping[str, Any], ...] = ()   # per-iteration trace statistics (every iteration)
    run: Mapping[str, Any] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)  # hwsim.results.provenance of the whole replay

    @classmethod
    def build(cls, records: Iterable[tuple[int, SimResult]], *, total_iterations: int,
              training: Sequence[Mapping[str, Any]] = (), run: Mapping[str, Any] | None = None,
              provenance: Mapping[str, Any] | None = None) -> RunResult:
        recs = sorted(records, key=lambda x: x[0])
        w = hold_weights([i for i, _ in recs], total_iterations)
        return cls(iterations=tuple(ReplayedIteration(i, wi, r) for (i, r), wi in zip(recs, w, strict=True)),
                   total_iterations=max(int(total_iterations), recs[-1][0] + 1), training=tuple(training),
                   run=dict(run or {}), provenance=dict(provenance or {}))

    @property
    def replayed(self) -> list[int]:
        return [r.iteration for r in self.iterations]

    @property
    def last(self) -> SimResult:
        """The last replayed iteration (what a single-iteration ``simulate`` reports)."""
        return self.iterations[-1].result

    @property
    def integrated(self) -> SimResult:
        """Σ weight · result over the replayed iterations: the whole run's cost (a SimResult that adds up)."""
        first = self.iterations[0].result
        trace = {**first.trace, "iteration": "run", "iterations": self.replayed,
                 "total_iterations": self.total_iterations}
        total = integrate([r.result for r in self.iterations], [r.weight for r in self.iterations],
                          trace=trace, run={**first.run, **self.run})
        return replace(total, provenance=dict(self.provenance)) if self.provenance else total

    def spread(self) -> dict[str, Any]:
        return spread([r.result for r in self.iterations])

    def to_json(self) -> dict[str, Any]:
        d = self.integrated.to_json()
        d.update({
            "kind": RUN_KIND, "estimator": {"name": "left-hold", "text": ESTIMATOR,
                                            "total_iterations": self.total_iterations},
            "spread": self.spread(), "training": [dict(t) for t in self.training],
            "iterations": [{"iteration": r.iteration, "weight": r.weight, "trace": dict(r.result.trace),
                            "run": dict(r.result.run), "layers": [lp.to_json() for lp in r.result.layers]}
                           for r in self.iterations]})
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any], *, where: str = "run results") -> RunResult:
        if not isinstance(d, Mapping) or d.get("kind") != RUN_KIND:
            raise ResultsError(f"{where}: field 'kind' is not {RUN_KIND!r} (a single-iteration results file? "
                               "read it with hwsim.results.load_results)")
        base = SimResult.from_json(d, where=where)
        recs = []
        for k, it in enumerate(d.get("iterations") or []):
            if not isinstance(it, Mapping):
                raise ResultsError(f"{where}: iterations[{k}] must be an object, got {type(it).__name__}")
            try:
                r = SimResult.from_json({"trace": it.get("trace", base.trace), "arch": base.arch,
                                         "layers": it["layers"], "run": it.get("run", {})},
                                        where=f"{where}: iterations[{k}]")
                recs.append(ReplayedIteration(int(it["iteration"]), int(it["weight"]), r))
            except (KeyError, TypeError) as e:
                raise ResultsError(f"{where}: iterations[{k}]: field {e} is missing or malformed") from None
            except ValueError as e:
                if isinstance(e, ResultsError):
                    raise
                raise ResultsError(f"{where}: iterations[{k}]: {e}") from None
        if not recs:
            raise ResultsError(f"{where}: field 'iterations' is empty")
        est = d.get("estimator") or {}
        return cls(iterations=tuple(recs), total_iterations=int(est.get("total_iterations", sum(r.weight for r in recs))),
                   training=tuple(d.get("training") or ()),
                   run={k: v for k, v in base.run.items()}, provenance=dict(base.provenance))


def is_run_json(d: Any) -> bool:
    return isinstance(d, Mapping) and d.get("kind") == RUN_KIND


def save_run_results(result: RunResult, path: str | os.PathLike) -> Path:
    """Write a run results file atomically (readable by :func:`hwsim.results.load_results` as the whole-run cost)."""
    p = Path(path)
    atomic_write_text(p, json.dumps(result.to_json(), indent=1))
    return p


def load_run_results(path: str | os.PathLike) -> RunResult:
    return RunResult.from_json(read_results_json(path), where=str(path))


__all__ = ["RUN_KIND", "ESTIMATOR", "hold_weights", "scale_variant", "integrate", "stats", "spread",
           "ReplayedIteration", "RunResult", "is_run_json", "save_run_results", "load_run_results"]
