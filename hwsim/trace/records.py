"""Typed, validated records of a trace's manifest: its ``meta`` and its per-iteration statistics.

:func:`hwsim.trace.format.load` turns the raw JSON into these frozen records, so every reader
gets the same types and the same errors. A record is built with ``from_json(doc, file=..., field=...)``
and a wrong type raises :class:`~hwsim.trace.schema.TraceError` naming the file (and line, for
``iterations.jsonl``) and the field, e.g.
``…/iterations.jsonl: line 7: field 'layers.conv1.density': 'x' is not allowed; allowed: a number in [0, 1]``.

- :class:`TraceMeta` — how the trace was made. The documented keys are typed attributes; keys
  other producers add are kept in ``extra``. It also reads as a read-only mapping of the manifest's
  ``meta`` object (``meta.get("lr")``), since ``meta`` is open-ended by design.
- :class:`IterationRecord` — one training iteration: index, epoch, loss, accuracy, whether its
  operands were sampled, and the per-layer :class:`LayerStats` (absent on iterations whose
  statistics were not kept, see ``meta.stats_every``).

Numpy-free (plain Python); field meanings are documented in ``traces/FORMAT.md``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from hwsim.trace.nongemm import NonGemmWork, check_meta
from hwsim.trace.schema import TraceError

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class TraceWarning(UserWarning):
    """A recoverable defect of a trace (e.g. a torn last line of ``iterations.jsonl`` after a crash)."""


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_PLAIN_NUMBERS = frozenset((int, float))


def _all_numbers(values: Any) -> bool:
    """``all(_is_number(x) for x in values)``; a list of plain ints and floats (what JSON gives) in one pass."""
    return set(map(type, values)) <= _PLAIN_NUMBERS or all(_is_number(x) for x in values)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class _Where:
    """Formats the errors of one record: ``<file>: field '<prefix><key>': <message>``."""

    __slots__ = ("file", "prefix")

    def __init__(self, file: str, prefix: str) -> None:
        self.file, self.prefix = file, prefix

    def error(self, key: str, msg: str) -> TraceError:
        return TraceError(f"{self.file}: field '{self.prefix}{key}': {msg}")

    def number(self, d: Mapping[str, Any], key: str, *, lo: float | None = None, hi: float | None = None
               ) -> float | None:
        v = d.get(key)
        if v is None:
            return None
        if type(v) is float and (lo is None or v >= lo) and (hi is None or v <= hi):  # the common case, checked once
            return v
        if not _is_number(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
            rng = f" in [{lo:g}, {hi:g}]" if lo is not None and hi is not None else ""
            raise self.error(key, f"{v!r} is not allowed; allowed: a number{rng} or null"[:300])
        return float(v)

    def integer(self, d: Mapping[str, Any], key: str, *, lo: int = 0, hi: int | None = None) -> int | None:
        v = d.get(key)
        if v is None:
            return None
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if not _is_int(v) or v < lo or (hi is not None and v > hi):
            rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            raise self.error(key, f"{v!r} is not allowed; allowed: an integer {rng} or null"[:300])
        return int(v)

    def string(self, d: Mapping[str, Any], key: str) -> str | None:
        v = d.get(key)
        if v is not None and not isinstance(v, str):
            raise self.error(key, f"must be a string or null, got {v!r}"[:300])
        return v

    def flag(self, d: Mapping[str, Any], key: str) -> bool | None:
        v = d.get(key)
        if v is not None and not isinstance(v, bool):
            raise self.error(key, f"must be true, false or null, got {v!r}"[:300])
        return v


# ----------------------------------------------------------------------------- meta

# meta keys readers use as numbers (null allowed) although they are not typed attributes: a string
# there would fail far from the file.
_EXTRA_NUMBERS = ("epochs", "batch_size", "lr", "momentum", "weight_decay", "batch", "world_size", "rank", "steps",
                  "image_size", "context", "tokens_per_example")
_META_FIELDS = ("model", "dataset", "method", "s", "k", "seed", "int8", "sample_every", "stats_every",
                "max_examples", "torch_version", "dither_attention", "dither_rng", "coverage", "nongemm")
DITHER_RNGS = ("counter", "sfc64")  # meta.dither_rng (hwsim.capture.config.DITHER_RNGS; trace does not import capture)


@dataclass(frozen=True, eq=False)
class TraceMeta(Mapping[str, Any]):
    """The manifest's ``meta`` object: typed known keys, ``extra`` for the rest, read-only mapping of all.

    ``stats_every`` is ``1`` when absent (traces before version 3 kept every iteration's statistics).
    ``dither_rng`` (the dither's random stream, :data:`DITHER_RNGS`) is ``sfc64`` when absent (traces made before
    the counter-based stream).
    """

    model: str | None = None
    dataset: str | None = None
    method: str | None = None
    s: float | None = None
    k: int | None = None
    seed: int | None = None
    int8: bool | None = None
    sample_every: int | None = None
    stats_every: int = 1
    max_examples: int | None = None
    torch_version: str | None = None
    dither_attention: bool | None = None
    dither_rng: str = "sfc64"
    coverage: Mapping[str, Any] | None = None
    nongemm: Mapping[str, Any] | None = None  # what non-GEMM work the records hold (hwsim.trace.nongemm)
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    raw: Mapping[str, Any] = field(default_factory=lambda: _EMPTY, repr=False)

    @classmethod
    def from_json(cls, d: Any, *, file: str, field_name: str = "meta") -> TraceMeta:
        """Validate a manifest's ``meta`` object (errors name ``file`` and ``meta.<key>``)."""
        w = _Where(file, f"{field_name}.")
        if not isinstance(d, Mapping):
            raise TraceError(f"{file}: field {field_name!r} must be an object, got {type(d).__name__}")
        for key in _EXTRA_NUMBERS:
            w.number(d, key)
        cov = d.get("coverage")
        if cov is not None and not isinstance(cov, Mapping):
            raise w.error("coverage", f"must be an object or null, got {type(cov).__name__}")
        rng = w.string(d, "dither_rng")
        if rng is not None and rng not in DITHER_RNGS:
            raise w.error("dither_rng", f"{rng!r} is not allowed; allowed: {', '.join(DITHER_RNGS)} (absent: sfc64)")
        raw = MappingProxyType(dict(d))
        return cls(model=w.string(d, "model"), dataset=w.string(d, "dataset"), method=w.string(d, "method"),
                   s=w.number(d, "s"), k=w.integer(d, "k"), seed=w.integer(d, "seed", lo=-(1 << 63)),
                   int8=w.flag(d, "int8"), sample_every=w.integer(d, "sample_every"),
                   stats_every=w.integer(d, "stats_every", lo=1) or 1, max_examples=w.integer(d, "max_examples"),
                   torch_version=w.string(d, "torch_version"), dither_attention=w.flag(d, "dither_attention"),
                   dither_rng=rng or "sfc64",
                   coverage=cov, nongemm=check_meta(d.get("nongemm"), file=file, field=f"{field_name}.nongemm"),
                   extra=MappingProxyType({k: v for k, v in d.items() if k not in _META_FIELDS}), raw=raw)

    # read-only mapping over the manifest's meta object, as written
    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def to_json(self) -> dict[str, Any]:
        """The ``meta`` object as written in the manifest."""
        return dict(self.raw)


# ----------------------------------------------------------------------------- iterations

_STATS_FIELDS = ("density", "max_bits", "hist", "delta", "a_density", "w_density", "noise", "dz_norm")


@dataclass(frozen=True, slots=True)
class LayerStats:
    """Statistics of δ̃z of one layer in one iteration, over the whole mini-batch (FORMAT.md, ``layers.<name>``)."""

    density: float | None = None
    max_bits: int | None = None
    hist: tuple[float, ...] | None = None
    delta: float | None = None
    a_density: float | None = None
    w_density: float | None = None
    noise: float | None = None  # ‖δ̃z − δz‖ / ‖δz‖ (hwsim.trace.noise)
    dz_norm: float | None = None  # ‖δz‖ before quantization
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    @classmethod
    def from_json(cls, d: Any, w: _Where, name: str) -> LayerStats:
        plain = _plain_stats(d)
        if plain is not None:  # what capture writes: the same record, each value checked once
            return cls(*plain)
        key = f"layers.{name}"
        if not isinstance(d, Mapping):
            raise w.error(key, f"must be an object {{density, max_bits, hist}}, got {d!r}"[:300])
        lw = _Where(w.file, f"{w.prefix}{key}.")
        h = d.get("hist")
        counts = h.values() if isinstance(h, Mapping) else h if isinstance(h, list) else None
        if h is not None and (counts is None or not _all_numbers(counts)):
            raise lw.error("hist", f"must be a list of counts, got {str(h)[:40]}")
        extra = {k: v for k, v in d.items() if k not in _STATS_FIELDS}
        return cls(density=lw.number(d, "density", lo=0.0, hi=1.0), max_bits=lw.integer(d, "max_bits", hi=64),
                   hist=tuple(counts) if counts is not None else None, delta=lw.number(d, "delta"),
                   a_density=lw.number(d, "a_density", lo=0.0, hi=1.0),
                   w_density=lw.number(d, "w_density", lo=0.0, hi=1.0),
                   noise=lw.number(d, "noise", lo=0.0), dz_norm=lw.number(d, "dz_norm", lo=0.0),
                   extra=MappingProxyType(extra) if extra else _EMPTY)


_STATS_KEYS = frozenset(_STATS_FIELDS)


def _unit(v: Any) -> bool:
    return v is None or (type(v) is float and 0.0 <= v <= 1.0)


def _non_negative(v: Any) -> bool:
    return v is None or (type(v) is float and v >= 0.0)


def _plain_stats(d: Any) -> tuple | None:
    """:class:`LayerStats` fields of a record holding only its known keys, as plain JSON floats in range (a
    max_bits int in 0..64, a hist list of numbers); ``None`` for anything else, which the checked path reads
    (and names, when wrong)."""
    if type(d) is not dict or not _STATS_KEYS.issuperset(d):
        return None
    density, max_bits, hist, delta, a_density, w_density, noise, dz_norm = map(d.get, _STATS_FIELDS)
    if not (_unit(density) and _unit(a_density) and _unit(w_density) and _non_negative(noise)
            and _non_negative(dz_norm) and (delta is None or type(delta) is float)):
        return None
    if max_bits is not None and not (type(max_bits) is int and 0 <= max_bits <= 64):
        return None
    if hist is not None and not (type(hist) is list and set(map(type, hist)) <= _PLAIN_NUMBERS):
        return None
    return density, max_bits, None if hist is None else tuple(hist), delta, a_density, w_density, noise, dz_norm


_ITERATION_FIELDS = ("index", "epoch", "loss", "acc", "sampled", "layers", "nongemm")


@dataclass(frozen=True, slots=True)
class IterationRecord:
    """One training iteration (FORMAT.md, ``iterations[]`` / lines of ``iterations.jsonl``).

    ``layers`` maps layer name to :class:`LayerStats` in recording order; it is empty on iterations
    whose statistics were not kept (``meta.stats_every`` > 1, not sampled). ``extra`` holds the keys
    a training loop added through ``Capture.step(**extra)``.
    """

    index: int
    epoch: int | None = None
    loss: float | None = None
    acc: float | None = None
    sampled: bool = False
    layers: Mapping[str, LayerStats] = field(default_factory=lambda: _EMPTY)
    nongemm: NonGemmWork | None = None  # the iteration's non-GEMM work (None: not recorded)
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    @property
    def has_stats(self) -> bool:
        """Whether this iteration's per-layer statistics were kept."""
        return bool(self.layers)

    def mean_density(self) -> float | None:
        """Mean δ̃z density over the layers with statistics (``None`` if none)."""
        d = [st.density for st in self.layers.values() if st.density is not None]
        return sum(d) / len(d) if d else None

    @classmethod
    def from_json(cls, d: Any, *, file: str, field_prefix: str = "", position: int = 0) -> IterationRecord:
        """Validate one record; ``position`` is its index if the record has none (old traces).

        Errors read ``<file>: field '<field_prefix><key>' …``: for a manifest, ``file`` is the
        manifest and ``field_prefix`` ``iterations[3].``; for ``iterations.jsonl`` the file and line.
        """
        w = _Where(file, field_prefix)
        plain = _plain_record(d, w, position)
        if plain is not None:  # what capture writes: the same record, each value checked once
            return plain
        if not isinstance(d, Mapping):
            where = f"field '{field_prefix[:-1]}'" if field_prefix else "the record"
            raise TraceError(f"{file}: {where} must be an object, got {type(d).__name__} {str(d)[:40]!r}")
        layers = d.get("layers")
        if layers is None:
            layers = {}
        if not isinstance(layers, Mapping):
            raise w.error("layers", f"must be an object {{layer: {{density, max_bits, hist}}}}, got {layers!r}"[:300])
        index = w.integer(d, "index", lo=0)
        sampled = w.flag(d, "sampled")
        extra = {k: v for k, v in d.items() if k not in _ITERATION_FIELDS}
        ng = d.get("nongemm")
        return cls(index=position if index is None else index, epoch=w.integer(d, "epoch"),
                   loss=w.number(d, "loss"), acc=w.number(d, "acc"), sampled=bool(sampled),
                   layers=MappingProxyType({str(n): LayerStats.from_json(st, w, str(n)) for n, st in layers.items()}),
                   nongemm=None if ng is None else NonGemmWork.from_json(ng, file=file, field=f"{field_prefix}nongemm"),
                   extra=MappingProxyType(extra) if extra else _EMPTY)


_ITERATION_KEYS = frozenset(_ITERATION_FIELDS)


def _plain_record(d: Any, w: _Where, position: int) -> IterationRecord | None:
    """:meth:`IterationRecord.from_json` of a record holding only its known keys with plain JSON values (an index and
    epoch int >= 0, a loss and accuracy float, sampled a bool, each layer's statistics :func:`_plain_stats`); ``None``
    for anything else, which the checked path reads (and names, when wrong)."""
    if type(d) is not dict or not _ITERATION_KEYS.issuperset(d):
        return None
    index, epoch, loss, acc, sampled, layers, ng = map(d.get, _ITERATION_FIELDS)
    if not ((index is None or (type(index) is int and index >= 0)) and (epoch is None or (type(epoch) is int
            and epoch >= 0)) and (loss is None or type(loss) is float) and (acc is None or type(acc) is float)
            and (sampled is None or type(sampled) is bool) and (layers is None or type(layers) is dict)):
        return None
    stats = {}
    for name, st in (layers or {}).items():
        p = _plain_stats(st)
        if p is None:
            return None
        stats[name] = LayerStats(*p)
    return IterationRecord(index=position if index is None else index, epoch=epoch, loss=loss, acc=acc,
                           sampled=bool(sampled), layers=MappingProxyType(stats),
                           nongemm=None if ng is None else NonGemmWork.from_json(ng, file=w.file,
                                                                                 field=f"{w.prefix}nongemm"))


def iterations_from_manifest(its: Any, file: str) -> tuple[IterationRecord, ...]:
    """The typed records of a version 1/2 manifest's ``iterations`` list."""
    if not isinstance(its, list):
        raise TraceError(f"{file}: field 'iterations' must be a list of objects, got {type(its).__name__}")
    return tuple(IterationRecord.from_json(it, file=file, field_prefix=f"iterations[{i}].", position=i)
                 for i, it in enumerate(its))
