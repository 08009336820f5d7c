"""One GEMM-like layer by its shape, without a model: :class:`LayerSpec` → the trace's :class:`LayerGeometry`.

Synthetic traces (:mod:`hwsim.trace.synth`), the CNN and transformer zoos (:mod:`hwsim.trace.topology`,
:mod:`hwsim.trace.transformers`) and SCALE-Sim topology files all describe layers this way. A spec is
per example; ``geometry(batch)`` scales it to a mini-batch. numpy-free.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hwsim.trace.schema import LayerGeometry, TraceError

SPEC_KINDS = ("conv2d", "linear", "matmul")
PARTS = ("proj", "attn", "mlp", "other")  # GEMM kinds of a transformer (densities per kind)
CAUSAL = ("", "output", "input")


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


@dataclass(frozen=True, kw_only=True)
class LayerSpec:
    """One Linear, Conv2d or matmul layer of one example; ``geometry(batch)`` gives the trace's LayerGeometry.

    * ``linear``: ``tokens`` rows per example (a sequence; 1 for a classifier), so N = batch·tokens rows, C → K.
    * ``conv2d``: the usual (C, K, H, W, R, S, stride, padding, groups); N = batch examples.
    * ``matmul``: ``groups`` independent (tokens × C/groups) @ (C/groups × K/groups) products per example (the
      heads of QKᵀ or P·V); the trace's geometry holds batch·groups products of ``tokens`` rows.
      ``causal`` says which operand is a causal attention matrix (zero above the diagonal): ``output``
      (the QKᵀ scores, so δ̃z there is zero) or ``input`` (P of P·V); "" = none.

    ``part`` is the GEMM kind for per-kind densities (``PARTS``: projections, attention products, MLP,
    other = embeddings, heads and convolutions); "" = inferred from the name (:func:`hwsim.trace.gemm_kinds.part_of`).
    """

    name: str
    kind: str = "conv2d"
    C: int
    K: int
    H: int = 1
    W: int = 1
    R: int = 1
    S: int = 1
    stride: int | tuple[int, int] = 1
    padding: int | tuple[int, int] = 0
    groups: int = 1
    tokens: int = 1
    causal: str = ""
    part: str = ""

    def __post_init__(self) -> None:
        where = f"LayerSpec({self.name!r})"
        if self.kind not in SPEC_KINDS:
            raise TraceError(f"{where}.kind: {self.kind!r} is not allowed; allowed: {', '.join(SPEC_KINDS)}")
        if isinstance(self.tokens, bool) or not isinstance(self.tokens, int) or self.tokens < 1:
            raise TraceError(f"{where}.tokens: {self.tokens!r} is not allowed; allowed: an integer >= 1")
        if self.kind == "conv2d" and self.tokens != 1:
            raise TraceError(f"{where}.tokens: {self.tokens} is not allowed for a conv2d; allowed: 1")
        if self.causal not in CAUSAL or (self.causal and self.kind != "matmul"):
            raise TraceError(f"{where}.causal: {self.causal!r} is not allowed; allowed: 'output' or 'input' "
                             "for a matmul, else ''")
        if self.part and self.part not in PARTS:
            raise TraceError(f"{where}.part: {self.part!r} is not allowed; allowed: {', '.join(PARTS)} or ''")

    def geometry(self, batch: int = 1) -> LayerGeometry:
        st, pd = _pair(self.stride), _pair(self.padding)
        if self.kind == "linear":
            return LayerGeometry(name=self.name, kind="linear", N=batch * self.tokens, C=self.C, K=self.K)
        if self.kind == "matmul":
            return LayerGeometry(name=self.name, kind="matmul", N=self.tokens, C=batch * self.C, K=batch * self.K,
                                 groups=batch * self.groups)
        if self.R > self.H + 2 * pd[0] or self.S > self.W + 2 * pd[1]:
            raise TraceError(f"LayerSpec({self.name!r}): filter {self.R}×{self.S} is larger than the "
                             f"padded input {self.H + 2 * pd[0]}×{self.W + 2 * pd[1]}")
        P = (self.H + 2 * pd[0] - self.R) // st[0] + 1
        Q = (self.W + 2 * pd[1] - self.S) // st[1] + 1
        return LayerGeometry(name=self.name, kind=self.kind, N=batch, C=self.C, K=self.K, H=self.H, W=self.W,
                             P=P, Q=Q, R=self.R, S=self.S, stride=st, padding=pd, groups=self.groups)


def as_layer_spec(item: LayerSpec | Mapping[str, Any], where: str = "layers") -> LayerSpec:
    """A LayerSpec, or a mapping of its fields (e.g. from YAML/JSON); bad keys raise ValueError."""
    if isinstance(item, LayerSpec):
        return item
    if not isinstance(item, Mapping):
        raise ValueError(f"{where}: {item!r} is not a layer spec; allowed: LayerSpec or a mapping of its fields")
    fields = [f.name for f in dataclasses.fields(LayerSpec)]
    unknown = sorted(set(item) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; allowed: {', '.join(fields)}")
    try:
        kw = {k: tuple(v) if k in ("stride", "padding") and isinstance(v, list) else v for k, v in item.items()}
        return LayerSpec(**kw)
    except TypeError as e:
        raise ValueError(f"{where}: {e}; allowed: {', '.join(fields)}") from None
    except TraceError as e:
        raise ValueError(f"{where}: {e}") from None
