"""Non-GEMM work of one training iteration: which elementwise, normalisation, softmax, pooling, residual
and look-up ops ran, where, and over how many elements.

A training accelerator runs these on a vector (post-processing) unit beside its GEMM array. A trace
records them per iteration as a compact summary — not one record per call — in the iteration
record's ``nongemm`` field (``traces/FORMAT.md``), written when it differs from the last record that
has it (an iteration without the field did the nearest earlier record's work: ``Trace.nongemm``)::

    "nongemm": {"<layer>": {"<kind>": [calls, elements, read, written,            # forward
                                       b_calls, b_elements, b_read, b_written]}}  # backward

* ``layer`` is the GEMM whose forward output the op consumes: the last GEMM the forward ran before
  it (ops before the first GEMM — an embedding look-up, an input normalisation — take the first
  GEMM's name). Backward entries are the same op's derivative, charged to the same layer.
* ``kind`` is one of :data:`KINDS`; ``other`` counts ops capture did not recognise (listed by name
  in ``meta.nongemm.other``) and is never charged.
* ``elements`` = the elements the op works over (its larger operand: the input of a pooling or a
  norm, the output of a broadcasting add), summed over calls; ``read`` / ``written`` = tensor
  elements it reads and writes (for the backward: δout plus the saved inputs read, δin written).

The manifest's ``meta.nongemm`` says who wrote the records and how much was recognised::

    {"version": 1, "source": "capture" | "topology", "kinds": [kinds seen],
     "other": {op name: calls per iteration}, "recognised": fraction of elements in known kinds}

:class:`NonGemmWork` is the typed record (validated: errors name the file and field); traces
without the field load with ``nongemm=None``. Plain Python, no numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from hwsim.trace.schema import TraceError

VERSION = 1
KINDS = ("relu", "gelu", "silu", "sigmoid", "tanh", "activation", "batchnorm", "layernorm", "rmsnorm", "groupnorm",
         "softmax", "maxpool", "avgpool", "reduce", "add", "mul", "dropout", "embedding", "loss", "other")
PASSES = ("forward", "backward")
SOURCES = ("capture", "topology")
ROW = ("calls", "elements", "read", "written", "b_calls", "b_elements", "b_read", "b_written")


def call_row(kind: str, ins: Iterable[int], out: int, grads: Iterable[int] | None) -> list[int]:
    """The ``ROW`` of one call from its sizes: ``ins`` = numel of its tensor inputs (the main one first),
    ``out`` = numel of its output, ``grads`` = numel of the inputs that get a gradient (None: no backward).

    Forward: elements = max(first input, output), read = Σ inputs, written = output. Backward: the same
    elements, read = δout + the saved inputs, written = Σ grads. An embedding reads only the rows it
    gathers (= output) and the indices, and its backward scatters the output's size into δweight.
    """
    ins = list(ins)
    first = ins[0] if ins else out
    if kind == "embedding":
        read = out + first
        back = [1, out, out + first, out]
    else:
        read = sum(ins)
        back = [1, max(first, out), out + read, sum(grads or ())]
    return [1, max(first, out), read, out, *(back if grads is not None else [0, 0, 0, 0])]


@dataclass(frozen=True, slots=True)
class OpCount:
    """One kind of op at one layer in one pass, summed over its calls."""

    calls: int
    elements: int
    read: int
    written: int

    def __add__(self, o: OpCount) -> OpCount:
        return OpCount(self.calls + o.calls, self.elements + o.elements, self.read + o.read, self.written + o.written)


ZERO = OpCount(0, 0, 0, 0)


@dataclass(frozen=True)
class NonGemmWork:
    """The ``nongemm`` field of one iteration: ``ops[(layer, kind, pass)] -> OpCount`` (pass in ``PASSES``)."""

    ops: Mapping[tuple[str, str, str], OpCount]

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, Iterable[int]]]) -> NonGemmWork:
        """From ``(layer, kind, [8 integers in ROW order])`` rows; rows of the same layer and kind add up."""
        ops: dict[tuple[str, str, str], OpCount] = {}
        for layer, kind, row in rows:
            r = [int(x) for x in row]
            for p, c in (("forward", OpCount(*r[:4])), ("backward", OpCount(*r[4:]))):
                if c.calls or c.elements:
                    ops[(layer, kind, p)] = ops.get((layer, kind, p), ZERO) + c
        return cls(MappingProxyType(ops))

    @classmethod
    def from_json(cls, d: Any, *, file: str, field: str = "nongemm") -> NonGemmWork:
        """Validate an iteration record's ``nongemm`` object; errors name ``file`` and ``field.<layer>.<kind>``."""
        if not isinstance(d, Mapping):
            raise TraceError(f"{file}: field {field!r} must be an object {{layer: {{kind: [8 integers]}}}}, "
                             f"got {type(d).__name__}")
        rows = []
        for layer, kinds in d.items():
            if not isinstance(kinds, Mapping):
                raise TraceError(f"{file}: field '{field}.{layer}' must be an object {{kind: [8 integers]}}, "
                                 f"got {type(kinds).__name__}")
            for kind, row in kinds.items():
                where = f"{file}: field '{field}.{layer}.{kind}'"
                if kind not in KINDS:
                    raise TraceError(f"{where}: kind {kind!r} is not allowed; allowed: {', '.join(KINDS)}"[:400])
                if (not isinstance(row, list) or len(row) != len(ROW)
                        or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in row)):
                    raise TraceError(f"{where}: {str(row)[:60]} is not allowed; allowed: a list of {len(ROW)} "
                                     f"integers >= 0 ({', '.join(ROW)})")
                rows.append((str(layer), kind, row))
        return cls.from_rows(rows)

    def to_json(self) -> dict[str, dict[str, list[int]]]:
        out: dict[str, dict[str, list[int]]] = {}
        for (layer, kind, p), c in self.ops.items():
            row = out.setdefault(layer, {}).setdefault(kind, [0] * len(ROW))
            o = 0 if p == "forward" else 4
            row[o:o + 4] = [c.calls, c.elements, c.read, c.written]
        return out

    def at(self, layer: str, pass_name: str) -> dict[str, OpCount]:
        """``{kind: OpCount}`` of one layer and pass (``forward`` or ``backward``)."""
        return {k: c for (ly, k, p), c in self.ops.items() if ly == layer and p == pass_name}

    def layers(self) -> list[str]:
        """Layers with non-GEMM work, in first-seen order."""
        return list(dict.fromkeys(ly for ly, _, _ in self.ops))

    def totals(self, pass_name: str | None = None) -> dict[str, OpCount]:
        """``{kind: OpCount}`` summed over layers (and over both passes unless ``pass_name``)."""
        out: dict[str, OpCount] = {}
        for (_, k, p), c in self.ops.items():
            if pass_name is None or p == pass_name:
                out[k] = out.get(k, ZERO) + c
        return out

    def __iter__(self) -> Iterator[tuple[tuple[str, str, str], OpCount]]:
        return iter(self.ops.items())


def check_meta(d: Any, *, file: str, field: str = "meta.nongemm") -> Mapping[str, Any] | None:
    """Validate the manifest's ``meta.nongemm`` (None when absent: a trace written before non-GEMM records)."""
    if d is None:
        return None
    if not isinstance(d, Mapping):
        raise TraceError(f"{file}: field {field!r} must be an object {{version, source, kinds, other, recognised}}, "
                         f"got {type(d).__name__}")
    v = d.get("version")
    if v != VERSION or isinstance(v, bool):
        raise TraceError(f"{file}: field '{field}.version': {v!r} is not allowed; allowed: {VERSION}")
    if d.get("source") not in SOURCES:
        raise TraceError(f"{file}: field '{field}.source': {d.get('source')!r} is not allowed; "
                         f"allowed: {', '.join(SOURCES)}")
    kinds = d.get("kinds", [])
    if not isinstance(kinds, list) or any(k not in KINDS for k in kinds):
        raise TraceError(f"{file}: field '{field}.kinds': {str(kinds)[:60]} is not allowed; allowed: a list of "
                         f"{', '.join(KINDS)}"[:400])
    other = d.get("other", {})
    if not isinstance(other, Mapping) or not all(isinstance(n, int) and not isinstance(n, bool) for n in other.values()):
        raise TraceError(f"{file}: field '{field}.other' must be an object {{op name: calls}}")
    r = d.get("recognised")
    if r is not None and (isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 <= r <= 1):
        raise TraceError(f"{file}: field '{field}.recognised': {r!r} is not allowed; allowed: a number in [0, 1]")
    return MappingProxyType(dict(d))


def meta_for(work: NonGemmWork, *, source: str, other: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The ``meta.nongemm`` entry describing ``work`` (one iteration's records)."""
    tot = work.totals("forward")
    all_el = sum(c.elements for c in tot.values())
    known = sum(c.elements for k, c in tot.items() if k != "other")
    return {"version": VERSION, "source": source, "kinds": [k for k in KINDS if k in tot],
            "other": dict(other or {}), "recognised": known / all_el if all_el else 1.0}


def coverage_line(meta: Mapping[str, Any] | None) -> str:
    """One line on what non-GEMM work a trace records (for ``hwsim inspect`` / ``simulate``)."""
    if not meta:
        return ("non-GEMM work: not recorded (a trace written before non-GEMM records, or a synthetic one of GEMMs "
                "only, as from a SCALE-Sim CSV): charged as zero")
    other = meta.get("other") or {}
    tail = ("; not recognised (not charged): " + ", ".join(f"{n} ×{c}" for n, c in list(other.items())[:6])
            if other else "")
    return (f"non-GEMM work ({meta.get('source')}): {', '.join(meta.get('kinds') or []) or 'none'}; "
            f"{100 * float(meta.get('recognised', 1.0)):.1f} % of its elements in known kinds{tail}")
