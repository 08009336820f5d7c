"""Action counts: the record the simulator fills and the energy table prices.

An :class:`Actions` is a frozen record with one named field per action the simulator counts
(multiplies, accumulator accesses, bytes per buffer, ...; the full list and the energy category
of each is in :mod:`hwsim.sim.energy`). It is what flows from the work model to the energy model
(``hwsim.sim.passes`` → ``hwsim.sim.energy.price``) and what ``VariantResult.actions`` holds, so it
adds up like the breakdowns beside it:

>>> a = Actions(mult=10.0, dram_bytes=64.0)
>>> (a + Actions(mult=5.0)).to_json()
{'mult': 15.0, 'dram_bytes': 64.0}
>>> a.scaled(2.0)["dram_bytes"], "xbar" in a
(128.0, False)

A field is ``None`` when the producer did not count that action (a parallel-MAC PE has no
``bit_ops``; a forward pass no ``red_*``), and ``0.0`` when it counted none: only counted actions
appear in :meth:`to_json` and in the read-only mapping view (``a["mult"]``, ``a.get``,
``a.items()``), which is how ``results.json`` lists them. Sums keep an action counted when either
side counted it. ``to_json`` lists actions in :data:`ACTIONS` order.

This module is pure (no hwsim imports): :mod:`hwsim.results` builds records from JSON with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields

ACTIONS: tuple[str, ...] = ("mult", "bit_ops", "add", "acc_access", "reg_read", "xbar", "sram_input_bytes",
                            "sram_weight_bytes", "sram_output_bytes", "sram_global_bytes", "dram_bytes",
                            "red_add", "red_acc", "red_link_bytes", "red_sram_bytes", "nsd_std", "nsd_rng",
                            "nsd_quantize", "nsd_compare", "nsd_sram_bytes", "vec_add", "vec_mul", "vec_fma",
                            "vec_compare", "vec_exp", "vec_div", "vec_sqrt", "vec_sram_bytes", "leak_cycles")


@dataclass(frozen=True, eq=False)
class Actions(Mapping):
    """Counts of every action of one variant (on one layer-pass, one pass or the iteration); module doc."""

    mult: float | None = None
    bit_ops: float | None = None
    add: float | None = None
    acc_access: float | None = None
    reg_read: float | None = None
    xbar: float | None = None
    sram_input_bytes: float | None = None
    sram_weight_bytes: float | None = None
    sram_output_bytes: float | None = None
    sram_global_bytes: float | None = None
    dram_bytes: float | None = None
    red_add: float | None = None
    red_acc: float | None = None
    red_link_bytes: float | None = None
    red_sram_bytes: float | None = None
    nsd_std: float | None = None
    nsd_rng: float | None = None
    nsd_quantize: float | None = None
    nsd_compare: float | None = None
    nsd_sram_bytes: float | None = None
    vec_add: float | None = None
    vec_mul: float | None = None
    vec_fma: float | None = None
    vec_compare: float | None = None
    vec_exp: float | None = None
    vec_div: float | None = None
    vec_sqrt: float | None = None
    vec_sram_bytes: float | None = None
    leak_cycles: float | None = None

    def __post_init__(self) -> None:
        d = self.__dict__  # the fields (a frozen record: written once, here)
        for f, v in d.items():  # counts arrive as ints / numpy scalars; store floats (as results.json does)
            if v is not None and type(v) is not float:
                d[f] = float(v)

    @classmethod
    def _of(cls, counts: dict[str, float | None]) -> Actions:
        """A record from every field's value, already a float or ``None`` (the sums below: no re-validation)."""
        a = object.__new__(cls)
        a.__dict__.update(counts)
        return a

    @classmethod
    def from_mapping(cls, counts: Mapping[str, float], *, where: str = "actions") -> Actions:
        """A record from ``{action: count}``; an unknown action name raises ``ValueError`` naming it."""
        if isinstance(counts, Actions):
            return counts
        unknown = [k for k in counts if k not in _FIELDS]
        if unknown:
            raise ValueError(f"{where}: unknown action(s) {sorted(map(str, unknown))}; allowed: {', '.join(ACTIONS)}")
        return cls(**{str(k): v for k, v in counts.items()})

    # arithmetic --------------------------------------------------------------------
    def __add__(self, other: Mapping[str, float]) -> Actions:
        mine, theirs = self.__dict__, Actions.from_mapping(other).__dict__
        out = {}
        for f in ACTIONS:
            a, b = mine[f], theirs[f]
            out[f] = a if b is None else (b if a is None else a + b)
        return Actions._of(out)

    def scaled(self, k: float) -> Actions:
        """Every counted action × ``k`` (e.g. one iteration's counts over a run)."""
        return Actions(**{f: v * k for f, v in self.items()})

    def count(self, name: str) -> float:
        """The count of action ``name``, 0.0 when not counted (what pricing uses)."""
        v = getattr(self, name)
        return 0.0 if v is None else v

    # views -------------------------------------------------------------------------
    def to_json(self) -> dict[str, float]:
        """``{action: count}`` of the counted actions, in :data:`ACTIONS` order."""
        return dict(self.items())

    def __getitem__(self, name: str) -> float:
        v = getattr(self, name, None) if name in _FIELDS else None
        if v is None:
            raise KeyError(name)
        return v

    def __iter__(self) -> Iterator[str]:
        return (f for f in ACTIONS if getattr(self, f) is not None)

    def __len__(self) -> int:
        return sum(getattr(self, f) is not None for f in ACTIONS)

    def __hash__(self) -> int:
        return hash(tuple(self.items()))

    def __repr__(self) -> str:
        return f"Actions({', '.join(f'{k}={v!r}' for k, v in self.items())})"


_FIELDS = frozenset(f.name for f in fields(Actions))
assert tuple(f.name for f in fields(Actions)) == ACTIONS  # noqa: S101 - the record and the list are one
