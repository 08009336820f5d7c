"""One variant's cycles and energy, by component: records that add up.

:class:`VariantResult` is the cycles and energy of one design (sparse, dense, …) on one GEMM, split
into :data:`CYCLE_PARTS` and :data:`ENERGY_PARTS` (:class:`CycleBreakdown`, :class:`EnergyBreakdown`);
totals are computed from the parts, never stored, and ``+`` adds records component by component.
:mod:`hwsim.results` builds layers, passes and whole runs from these (and re-exports them).
Pure: imports nothing from hwsim but the :class:`~hwsim.results.actions.Actions` record.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hwsim.results.actions import Actions

CYCLE_PARTS: tuple[str, ...] = ("compute", "fragmentation", "imbalance", "bank_conflict", "memory_stall",
                                "fill_drain", "reduction", "nsd", "vector", "nongemm")
ENERGY_PARTS: tuple[str, ...] = ("mac", "accumulator", "sram", "crossbar", "dram", "reduction", "nsd", "vector",
                                 "leakage")
# Added in issue 10: results written before it lack these keys and load with zeros. ``fill_drain`` (issue 17)
# likewise, and it is written only when non-zero (the isolated schedule never has any: its files are unchanged).
# ``vector`` (issue 17 item 3, the vector unit) likewise loads as 0 from older files.
# ``nongemm`` (issue 17 item 4, non-GEMM work on the vector unit) too; both written only when non-zero.
OPTIONAL_PARTS: frozenset[str] = frozenset({"reduction", "nsd", "leakage", "fill_drain", "vector", "nongemm"})
_OMIT_ZERO_PARTS: frozenset[str] = frozenset({"fill_drain", "vector", "nongemm"})


class ResultsError(ValueError):
    """A results file or mapping is malformed; the message names the file and the field."""


# ----------------------------------------------------------------------------- breakdowns


@dataclass(frozen=True)
class CycleBreakdown:
    """Where the cycles go. All integers; their sum is the variant's cycle count.

    * ``compute`` — cycles in which every multiplier could do useful work (effectual MACs /
      multipliers, rounded per tile),
    * ``fragmentation`` — intra-PE: partly filled F×I multiplier rows (⌈nnz/F⌉ rounding) and,
      for systolic arrays, partly used folds,
    * ``imbalance`` — inter-PE: PEs idle at a barrier waiting for the slowest one,
    * ``bank_conflict`` — products waiting for a busy accumulator bank,
    * ``memory_stall`` — PEs waiting for DRAM tiles that double buffering could not hide (with
      ``memory.schedule: isolated`` this includes every layer-pass's first load and last write-back),
    * ``fill_drain`` — ``memory.schedule: iteration`` only: the iteration's exposed first load (on its
      first layer-pass) and last write-back (on its last); bandwidth-bound stall stays ``memory_stall``,
    * ``reduction`` — backward-weight: adding the PEs' partial δW sums across PEs (hwsim.sim.reduction),
    * ``nsd`` — the NSD unit's exposed cycles over dense δz (what does not hide behind the producer GEMM, plus
      a spilled δz's serial DRAM cycles; or meProp's top-k), on the layer's first δ̃z consumer, hwsim.sim.nsd_unit,
    * ``vector`` — the vector unit's arithmetic (the weight update, hwsim.sim.update; written only when non-zero),
    * ``nongemm`` — non-GEMM work (activations, norms, softmax, pooling, residual adds and their
      derivatives) on the vector unit, after the layer-pass's GEMM (hwsim.sim.nongemm).

    Not a part (not in :data:`CYCLE_PARTS`, never in :attr:`total`): ``memory_stall_foreign``, the share of
    ``memory_stall`` during which the DRAM channel carried *other* layer-passes' transfers (``memory.schedule:
    iteration`` only, :mod:`hwsim.sim.schedule`; 0 under ``isolated``, where a pass has the channel to itself).
    ``memory_stall − memory_stall_foreign`` is what the layer-pass waited for its own traffic (or an idle channel).
    """

    compute: int = 0
    fragmentation: int = 0
    imbalance: int = 0
    bank_conflict: int = 0
    memory_stall: int = 0
    fill_drain: int = 0
    reduction: int = 0
    nsd: int = 0
    vector: int = 0
    nongemm: int = 0
    memory_stall_foreign: int = 0  # a share of memory_stall, not a part (class doc)

    @property
    def total(self) -> int:
        return sum(getattr(self, f) for f in CYCLE_PARTS)

    def __add__(self, other: CycleBreakdown) -> CycleBreakdown:
        return CycleBreakdown(*(getattr(self, f) + getattr(other, f) for f in CYCLE_PARTS),
                              memory_stall_foreign=self.memory_stall_foreign + other.memory_stall_foreign)

    def to_json(self) -> dict[str, int]:
        """The parts (:data:`CYCLE_PARTS`), which sum to :attr:`total`; ``memory_stall_foreign`` is not one."""
        return {f: int(getattr(self, f)) for f in CYCLE_PARTS}

    def to_file_json(self) -> dict[str, int]:
        """:meth:`to_json` as results files store it: parts of ``_OMIT_ZERO_PARTS`` only when non-zero."""
        return {f: x for f, x in self.to_json().items() if f not in _OMIT_ZERO_PARTS or x}


@dataclass(frozen=True)
class EnergyBreakdown:
    """Where the picojoules go (Σ action counts × energy table); the sum is ``energy_pj``.

    ``accumulator`` includes operand-register reads and accumulator read-modify-writes;
    ``sram`` the per-PE buffers and the global buffer; ``dram`` off-chip traffic; ``reduction``
    the cross-PE δW reduction (adds, accumulator accesses, links); ``nsd`` the NSD unit (or meProp
    top-k); ``vector`` the vector unit's operations and its global-buffer bytes; ``leakage`` static power × cycles.
    """

    mac: float = 0.0
    accumulator: float = 0.0
    sram: float = 0.0
    crossbar: float = 0.0
    dram: float = 0.0
    reduction: float = 0.0
    nsd: float = 0.0
    vector: float = 0.0
    leakage: float = 0.0

    @property
    def total(self) -> float:
        return sum(getattr(self, f) for f in ENERGY_PARTS)

    def __add__(self, other: EnergyBreakdown) -> EnergyBreakdown:
        return EnergyBreakdown(*(getattr(self, f) + getattr(other, f) for f in ENERGY_PARTS))

    def to_json(self) -> dict[str, float]:
        return {f: float(getattr(self, f)) for f in ENERGY_PARTS}


# ----------------------------------------------------------------------------- variant


@dataclass(frozen=True)
class VariantResult:
    """Cycles and energy of one variant (on one layer/pass, one pass, or the whole iteration).

    ``macs`` are the multiplications the variant actually performs (dense: all of them,
    including zeros; sparse: the effectual ones, times the operand passes for wide δ̃z);
    ``multipliers`` the multipliers of the array, so ``utilization`` = macs / (cycles ×
    multipliers). ``analytical_cycles`` is the closed-form estimate printed beside the
    SimPy result.
    """

    cycle_breakdown: CycleBreakdown = field(default_factory=CycleBreakdown)
    energy_breakdown: EnergyBreakdown = field(default_factory=EnergyBreakdown)
    macs: int = 0
    multipliers: int = 1
    analytical_cycles: int = 0
    actions: Actions = field(default_factory=Actions)

    def __post_init__(self) -> None:
        if not isinstance(self.actions, Actions):  # a plain {action: count} mapping is accepted
            object.__setattr__(self, "actions", Actions.from_mapping(self.actions))

    @property
    def cycles(self) -> int:
        return self.cycle_breakdown.total

    @property
    def energy_pj(self) -> float:
        return self.energy_breakdown.total

    @property
    def utilization(self) -> float:
        denom = self.cycles * self.multipliers
        return self.macs / denom if denom else 0.0

    def __add__(self, other: VariantResult) -> VariantResult:
        return VariantResult(
            cycle_breakdown=self.cycle_breakdown + other.cycle_breakdown,
            energy_breakdown=self.energy_breakdown + other.energy_breakdown,
            macs=self.macs + other.macs,
            multipliers=max(self.multipliers, other.multipliers),
            analytical_cycles=self.analytical_cycles + other.analytical_cycles,
            actions=self.actions + other.actions,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "cycles": int(self.cycles),
            "energy_pj": float(self.energy_pj),
            "utilization": float(self.utilization),
            "analytical_cycles": int(self.analytical_cycles),
            "macs": int(self.macs),
            "multipliers": int(self.multipliers),
            "actions": self.actions.to_json(),
            "breakdown": {"cycles": self.cycle_breakdown.to_file_json(), "energy_pj": self.energy_breakdown.to_json()},
            # a share of breakdown.cycles.memory_stall, not a part: written only when non-zero (iteration schedule)
            **({"memory_stall_foreign": int(self.cycle_breakdown.memory_stall_foreign)}
               if self.cycle_breakdown.memory_stall_foreign else {}),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any], *, where: str = "variant") -> VariantResult:
        """Rebuild from :meth:`to_json` output, validating as it reads (errors name the field and what is allowed)."""
        if not isinstance(d, Mapping):
            raise ResultsError(f"{where}: must be an object, got {type(d).__name__}")
        for key in ("cycles", "energy_pj", "macs", "analytical_cycles", "memory_stall_foreign"):
            if key in d:
                check_number(d[key], f"{where}.{key}")
        bd = d.get("breakdown")
        if bd is not None:
            if not isinstance(bd, Mapping):
                raise ResultsError(f"{where}.breakdown: must be an object, got {type(bd).__name__}")
            for kind, parts in bd.items():
                if not isinstance(parts, Mapping):
                    raise ResultsError(f"{where}.breakdown.{kind}: must be an object, got {type(parts).__name__}")
                for k, x in parts.items():
                    check_number(x, f"{where}.breakdown.{kind}.{k}")
        try:
            bd = d["breakdown"]
            cyc = CycleBreakdown(**{k: int(_part(bd["cycles"], k)) for k in CYCLE_PARTS},
                                 memory_stall_foreign=int(d.get("memory_stall_foreign", 0)))
            en = EnergyBreakdown(**{k: float(_part(bd["energy_pj"], k)) for k in ENERGY_PARTS})
            v = cls(cycle_breakdown=cyc, energy_breakdown=en, macs=int(d.get("macs", 0)),
                    multipliers=int(d.get("multipliers", 1)), analytical_cycles=int(d.get("analytical_cycles", 0)),
                    actions=Actions.from_mapping({str(k): float(x) for k, x in d.get("actions", {}).items()},
                                                 where="actions"))
        except KeyError as e:
            raise ResultsError(f"{where}: field {e.args[0]!r} is missing") from None
        except (TypeError, ValueError) as e:
            raise ResultsError(f"{where}: {e}") from None
        if cyc.memory_stall_foreign > cyc.memory_stall:
            raise ResultsError(f"{where}.memory_stall_foreign: {cyc.memory_stall_foreign} is not allowed; allowed: "
                               f"at most breakdown.cycles.memory_stall ({cyc.memory_stall}), of which it is a share")
        if "cycles" in d and int(d["cycles"]) != v.cycles:
            raise ResultsError(f"{where}.cycles: {d['cycles']} != sum of breakdown.cycles ({v.cycles})")
        if "energy_pj" in d and not math.isclose(float(d["energy_pj"]), v.energy_pj, rel_tol=1e-9, abs_tol=1e-9):
            raise ResultsError(f"{where}.energy_pj: {d['energy_pj']} != sum of breakdown.energy_pj ({v.energy_pj})")
        return v


def check_number(x: Any, where: str, *, hi: float | None = None, nullable: bool = False) -> None:  # noqa: ANN401
    """A finite number >= 0 (and <= ``hi``), else a :class:`ResultsError` naming ``where`` and what is allowed."""
    if x is None and nullable:
        return
    ok = isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0
    if not ok or (hi is not None and x > hi):
        allowed = f"a number in [0, {hi:g}]" if hi is not None else "a finite number >= 0"
        raise ResultsError(f"{where}: {x!r} is not allowed; allowed: {allowed}{' or null' if nullable else ''}")


def _part(d: Mapping[str, Any], k: str) -> Any:
    """A breakdown component; the parts added in issue 10 default to 0 in older files."""
    return d.get(k, 0) if k in OPTIONAL_PARTS else d[k]


def sum_variants(items: Iterable[VariantResult]) -> VariantResult:
    """Sum of variant results (cycles, energy, MACs add; the array size is shared)."""
    return sum(items, VariantResult())
