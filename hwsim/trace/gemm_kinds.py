"""GEMM kinds of a transformer — projections, attention products, MLP, other — and their densities in a trace.

``hwsim synth --densities-from TRACE`` and ``--per-kind-json`` set densities per kind (:data:`PARTS`):

* ``attn``: activation × activation products (``matmul`` with ``w_role: activation``: QKᵀ and P·V);
* ``mlp``: a layer whose name has an MLP component (``mlp``, ``ffn``, ``feed_forward``, ``intermediate``) or
  ends in one of the usual MLP names (``c_fc``, ``fc1``, ``fc2``, ``gate_proj``, ``up_proj``, ``down_proj``,
  ``w1``, ``w2``, ``w3``), or BERT's ``layer.N.output.dense`` (not ``attention.output.dense``);
* ``other``: convolutions, embeddings and heads (a component ``head``, ``lm_head``, ``classifier``, ``cls``,
  ``pooler``, ``patch``, ``patch_embed``, ``embed``, ``embeddings``);
* ``proj``: every other ``linear`` (and a ``matmul`` with a weight operand): q/k/v/out projections.

A synthetic layer's ``LayerSpec.part`` wins over the name. numpy only.
"""

from __future__ import annotations

import math
import re

from hwsim.trace.layerspec import PARTS
from hwsim.trace.schema import LayerGeometry

_MLP_PARTS = {"mlp", "ffn", "feed_forward", "intermediate"}
_MLP_LAST = {"c_fc", "fc1", "fc2", "gate_proj", "up_proj", "down_proj", "w1", "w2", "w3"}
_OTHER_PARTS = {"head", "lm_head", "classifier", "cls", "pooler", "patch", "patch_embed", "embed", "embeddings"}


def part_of(name: str, kind: str, w_role: str = "") -> str:
    """The GEMM kind (``PARTS``) of a layer from its name, kind and second operand's role (module doc)."""
    role = w_role or ("activation" if kind == "matmul" else "weight")
    if kind == "matmul" and role == "activation":
        return "attn"
    if kind not in ("linear", "matmul"):
        return "other"
    comps = [c for c in re.split(r"[.:]", name.split("#")[0]) if c]
    if any(c in _OTHER_PARTS for c in comps):
        return "other"
    if any(c in _MLP_PARTS for c in comps) or (comps and comps[-1] in _MLP_LAST):
        return "mlp"
    if len(comps) >= 2 and comps[-2:] == ["output", "dense"] and "attention" not in comps:
        return "mlp"
    return "proj"


QUANTIZING_METHODS = ("dither", "meprop")  # capture methods that quantize δz (``none`` keeps it float)


def plain_dz(g: LayerGeometry, method: str | None, dither_attention: bool | None) -> bool:
    """Whether capture left this GEMM's δz plain while quantizing the others' with ``method``: attention's
    activation×activation products (``w_role: activation``) unless the trace was captured with ``dither_attention``
    (``hwsim.capture`` quantizes δz of every weight GEMM). False for a method that quantizes nothing (``none``) or a
    trace that was not captured (``synthetic``): there, no GEMM differs from the others."""
    return method in QUANTIZING_METHODS and not dither_attention and g.w_role == "activation"


def geometry_part(g: LayerGeometry) -> str:
    return part_of(g.name, g.kind, g.w_role)


def kind_densities(trace: object) -> dict[str, dict[str, float]]:
    """Mean densities per GEMM kind of a loaded trace (:func:`hwsim.trace.format.load`): ``{part: {w, a, dz}}``.

    δ̃z: the element-weighted mean of the per-layer δ̃z density over every iteration with statistics.
    a and w: from the iteration statistics where they are recorded, else from the operands of the last
    sampled iteration (element-weighted too). Kinds without layers are absent.
    """
    layers: list[LayerGeometry] = list(trace.layers)  # type: ignore[attr-defined]
    part = {g.name: geometry_part(g) for g in layers}
    size = {g.name: (math.prod(g.input_shape), math.prod(g.weight_shape), math.prod(g.output_shape)) for g in layers}
    sums: dict[str, dict[str, list[float]]] = {p: {r: [0.0, 0.0] for r in ("w", "a", "dz")} for p in PARTS}

    def add(p: str, role: str, value: float | None, weight: int) -> None:
        if value is not None:
            sums[p][role][0] += value * weight
            sums[p][role][1] += weight

    for rec in trace.iterations:  # type: ignore[attr-defined]
        for nm, st in rec.layers.items():
            if nm not in part:
                continue
            a_n, w_n, z_n = size[nm]
            add(part[nm], "dz", st.density, z_n)
            add(part[nm], "a", st.a_density, a_n)
            add(part[nm], "w", st.w_density, w_n)
    missing = {r for r in ("a", "w") if all(sums[p][r][1] == 0 for p in PARTS)}
    if missing and trace.sampled_iterations:  # type: ignore[attr-defined]
        for nm, s in trace.sample().items():  # type: ignore[attr-defined]
            if nm not in part:
                continue
            a_n, w_n, _ = size[nm]
            if "a" in missing:
                add(part[nm], "a", s.a_density, a_n)
            if "w" in missing:
                add(part[nm], "w", s.w_density, w_n)
    out: dict[str, dict[str, float]] = {}
    for p in PARTS:
        d = {r: round(v / n, 6) for r, (v, n) in sums[p].items() if n > 0}
        if d:
            out[p] = d
    return out
