"""Charges applied to finished layer-passes: the NSD unit, leakage and the bandwidth floor.

Run after every variant of a layer-pass has its cycles (so leakage sees the final cycles):

1. NSD unit (:mod:`hwsim.sim.nsd_unit`): the sparse variant's entry of each layer's first δ̃z consumer
   (``quantizer.booked_on``: backward-data, else backward-weight) gains cycle cause and energy category
   ``nsd`` (its spill, if any, adds DRAM bytes); what hides behind the producer GEMM is decided from the
   producer's sparse cycles before any charge, without its memory stall and fill/drain (conservative: the
   array's time only, so DRAM bandwidth never moves NSD cycles between layer-passes);
2. leakage (:mod:`hwsim.arch.area`): every variant gains ``leak_cycles`` = its cycles, priced at
   its own arch's area × ``area.leakage_mw_per_mm2`` (category ``leakage``);
3. bandwidth floor: ⌈ideal DRAM bytes / DRAM bandwidth⌉ (``LayerPassResult.bandwidth_floor_cycles``, kept
   as it was before issue 17: δW at ``mac_bits``; the roofline bound reads ``dram_bound_cycles``, at the widths
   the variants use: :mod:`hwsim.sim.bounds`).

Energies are priced from the final action counts (:func:`hwsim.sim.energy.price`), once per record, so results stay
Σ counts × table whatever energy the records arrive with (the replay leaves the records of one iteration's masks
unpriced until here: :mod:`hwsim.sim.replay`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from hwsim.results import LayerPassResult, VariantResult
from hwsim.results.actions import Actions
from hwsim.sim import energy, nsd_unit, shape_memo
from hwsim.sim.model import transfer_cycles

if TYPE_CHECKING:
    from hwsim.arch import Arch


def _add(vr: VariantResult, arch: Arch, actions: Actions, *, nsd_cycles: int = 0, priced: bool = True) -> VariantResult:
    """``vr`` with ``actions`` added (re-priced on ``arch`` unless ``priced=False``) and ``nsd_cycles`` added to its
    ``nsd`` cause."""
    acts = vr.actions + actions
    cb = replace(vr.cycle_breakdown, nsd=vr.cycle_breakdown.nsd + int(nsd_cycles)) if nsd_cycles else vr.cycle_breakdown
    energy_breakdown = energy.price(acts, arch) if priced else vr.energy_breakdown
    return replace(vr, cycle_breakdown=cb, energy_breakdown=energy_breakdown, actions=acts,
                   analytical_cycles=vr.analytical_cycles + nsd_cycles)


def _leaked(vr: VariantResult, arch: Arch) -> VariantResult:
    """``vr`` with its leakage charged: ``leak_cycles`` = its cycles."""
    return _add(vr, arch, Actions(leak_cycles=vr.cycles))


def finish(results: list[LayerPassResult], geometries: Mapping[str, Any], archs: Mapping[str, Any], *,
           method: str | None = None, k: int | None = None,
           dz_nonzero: Mapping[str, int] | None = None) -> list[LayerPassResult]:
    """``results`` with NSD, leakage and bandwidth floor charged (module doc). ``archs``: variant → Arch;
    ``geometries`` in trace order; ``dz_nonzero``: non-zeros of the dense δz where known
    (:func:`hwsim.sim.dz_zeros.dense_dz_nonzero`)."""
    sparse = archs["sparse"]
    busy = {(lp.name, lp.pass_name): lp.sparse.cycles - lp.sparse.cycle_breakdown.memory_stall
            - lp.sparse.cycle_breakdown.fill_drain for lp in results}   # array time: what the NSD unit can hide behind
    nsd = nsd_unit.book(busy, geometries, sparse, method=method, k=k, nonzero=dz_nonzero)
    out = []
    for lp in results:
        variants = {v: getattr(lp, v) for v in archs}
        cyc, acts = nsd.get((lp.name, lp.pass_name), (0, None))
        if acts is not None:
            variants["sparse"] = _add(variants["sparse"], sparse, acts, nsd_cycles=cyc, priced=False)  # leakage prices
        for v, arch in archs.items():
            vr = variants[v]
            if v in ("dense_systolic", "dense_equal_area") and not vr.multipliers:
                continue
            variants[v] = shape_memo.derive(vr, arch, ("leak",), partial(_leaked, vr, arch))
        floor = transfer_cycles(lp.ideal.actions.count("dram_bytes"), sparse.memory.dram_bytes_per_cycle)
        out.append(replace(lp, bandwidth_floor_cycles=floor, **variants))
    return out
