"""Which dataflow maps each GEMM of a layer (the ``dataflow:`` YAML key), and the gather unit's parameters.

A training iteration runs three GEMMs per layer — forward, backward-data, backward-weight — and one
dataflow need not suit all three. ``dataflow:`` is either one name for every pass (what every config
before per-pass dataflows wrote; it still means exactly that)::

    dataflow: cartesian

or one name per pass::

    dataflow: {forward: cartesian, backward_data: dz_gather, backward_weight: dz_gather}

======================  ============================================================================
name                    what it is (where it is modelled)
======================  ============================================================================
``cartesian``           SCNN's planar-tiled F×I Cartesian product (:mod:`hwsim.sim.gemm`)
``systolic_ws/_os``     a dense systolic array (:mod:`hwsim.sim.systolic`); the whole array is then
                        systolic, so every pass must name the same systolic dataflow
``dz_gather``           backward passes only: each non-zero δ̃z times the non-zero operands of its
                        receptive field or row, F·I products per cycle per PE, work balanced over the
                        PEs (:mod:`hwsim.sim.gather`); it runs on the Cartesian PE's multipliers,
                        accumulator banks and crossbar plus the ``gather:`` unit below
======================  ============================================================================

The dense baselines derived from an architecture (:mod:`hwsim.arch.variants`) keep its per-pass
dataflows and only stop skipping zeros: a dense ``dz_gather`` multiplies every δz with every operand
of its field (same silicon, zeros handled differently — the rule every derived baseline follows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from hwsim._yaml import did_you_mean
from hwsim.arch.errors import ArchError
from hwsim.arch.fields import Validated, spec

DATAFLOWS = ("cartesian", "systolic_ws", "systolic_os")   # array dataflows (valid for every pass)
SYSTOLIC_DATAFLOWS = ("systolic_ws", "systolic_os")
BACKWARD_DATAFLOWS = (*DATAFLOWS, "dz_gather")            # the backward passes may also gather
PASS_NAMES = ("forward", "backward_data", "backward_weight")


@dataclass(frozen=True, kw_only=True, eq=False)
class Dataflows(Validated):
    """The dataflow of each pass (module doc). Equal to a plain name when every pass uses that name."""

    ALLOWED: ClassVar[str] = (f"one of {', '.join(DATAFLOWS)} (every pass), or a mapping {{{', '.join(PASS_NAMES)}}} "
                              "whose backward passes may also be dz_gather")

    forward: str = spec(choices=DATAFLOWS, doc="forward GEMM (z = W ⋆ a)")
    backward_data: str = spec(choices=BACKWARD_DATAFLOWS, doc="backward-data GEMM (δa = Wᵀ ⋆ δ̃z)")
    backward_weight: str = spec(choices=BACKWARD_DATAFLOWS, doc="backward-weight GEMM (δW = δ̃z ⋆ a)")

    @classmethod
    def coerce(cls, value: Any) -> Dataflows:
        """A name (every pass) or a ``{pass: name}`` mapping (all three passes) → :class:`Dataflows`."""
        if isinstance(value, Dataflows):
            return value
        if isinstance(value, str):
            if value not in DATAFLOWS:
                raise ArchError(f"{value!r} is not a known value", key="Arch.dataflow", field="dataflow",
                                allowed=cls.ALLOWED)
            return cls(forward=value, backward_data=value, backward_weight=value)
        if isinstance(value, Mapping):
            unknown = [k for k in value if k not in PASS_NAMES]
            missing = [k for k in PASS_NAMES if k not in value]
            if unknown or missing:
                what = (f"unknown key {unknown[0]!r}{did_you_mean(str(unknown[0]), PASS_NAMES)}" if unknown
                        else f"missing key {missing[0]!r}")
                raise ArchError(what, key="Arch.dataflow", field="dataflow",
                                allowed="a mapping with exactly the keys " + ", ".join(PASS_NAMES))
            try:
                return cls(**dict(value))
            except ArchError as e:
                key = "dataflow" if e.field == "Dataflows" else f"dataflow.{e.field}"
                raise ArchError(e.problem, key=key, allowed=e.allowed) from None
        raise ArchError(f"must be a dataflow name or a mapping, got {type(value).__name__}", key="Arch.dataflow",
                        field="dataflow", allowed=cls.ALLOWED)

    @staticmethod
    def as_mapping(value: Any) -> Any:
        """A YAML ``dataflow:`` value as the per-pass mapping (a name repeated); other values unchanged."""
        if isinstance(value, str):
            return {p: value for p in PASS_NAMES}
        return value

    def _check(self) -> None:
        names = {self.forward, self.backward_data, self.backward_weight}
        systolic = names & set(SYSTOLIC_DATAFLOWS)
        if systolic and len(names) > 1:
            raise ArchError(f"{sorted(names)} mixes a systolic array with other dataflows", key="Dataflows",
                            allowed="one systolic dataflow for every pass, or cartesian / dz_gather")

    def of(self, pass_name: str) -> str:
        """The dataflow of ``pass_name`` (forward | backward_data | backward_weight)."""
        return getattr(self, pass_name)

    def uses(self, name: str) -> bool:
        """Does any pass use dataflow ``name``?"""
        return name in (self.forward, self.backward_data, self.backward_weight)

    @property
    def uniform(self) -> str | None:
        """The one name every pass uses, or ``None``."""
        return self.forward if self.forward == self.backward_data == self.backward_weight else None

    def to_dict(self) -> Any:  # type: ignore[override]
        """A name when every pass shares it (so configs written before per-pass dataflows hash as before)."""
        return self.uniform or super().to_dict()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return self.uniform == other
        if isinstance(other, Dataflows):
            return (self.forward, self.backward_data, self.backward_weight) == \
                (other.forward, other.backward_data, other.backward_weight)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.uniform or (self.forward, self.backward_data, self.backward_weight))

    def __str__(self) -> str:
        return self.uniform or ", ".join(f"{p}: {self.of(p)}" for p in PASS_NAMES)


# Work-queue entry: a δ̃z level (1 B at mac_bits ≤ 8) and its (k, n·p·q) index (3 B) — hwsim estimate.
QUEUE_ENTRY_BYTES = 4
# 512 entries per PE: at LeNet-5-sized layers a PE holds ~100–400 work items; larger layers refill it from
# the global buffer while the PE works (double-buffered halves) — hwsim estimate.
QUEUE_BYTES_PER_PE = 512 * QUEUE_ENTRY_BYTES
# The compactor packs the non-zero operands of a 64-value bitmask line into the PE's F·I multiplier lanes
# (a prefix-sum compaction network, as SparTen's inner-join logic: Gondimalla et al., MICRO 2019);
# 64 = one 64-bit bitmask word per line — hwsim choice.
COMPACTOR_INPUTS = 64


@dataclass(frozen=True, kw_only=True)
class GatherConfig(Validated):
    """The ``dz_gather`` dataflow's extra hardware per PE (charged only when a pass uses it)."""

    queue_bytes_per_pe: int = spec(ge=1, default=QUEUE_BYTES_PER_PE,
                                   doc="work-queue SRAM per PE (entries of queue_entry_bytes)")
    queue_entry_bytes: int = spec(ge=1, default=QUEUE_ENTRY_BYTES,
                                  doc="one work item: the δ̃z level and its (k, n·p·q) index")
    compactor_inputs: int = spec(ge=1, default=COMPACTOR_INPUTS,
                                 doc="operand values per line the compactor packs into the F·I lanes")
