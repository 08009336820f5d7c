"""Non-GEMM work on the vector unit: activations, norms, softmax, pooling, residual adds, and their derivatives.

A trace's ``nongemm`` records (:mod:`hwsim.trace.nongemm`) say, per layer and op kind, how many elements
forward and backward process and how many tensor elements they read and write. Every variant — sparse,
dense, dense-gated and both systolic baselines — runs the same work on its own vector unit (it is not
sparse work: the same cost wherever zero skipping applies to the GEMMs); the MAC bound does not include it.

**Operations per element** (:data:`OPS_PER_ELEMENT`, ``{kind: (forward, backward)}`` in the vector unit's
operation kinds, :data:`hwsim.arch.VECTOR_OPS`), counted from the textbook formulas, one lane operation per
arithmetic step; per-row or per-channel scalars (a norm's 1/√var, a softmax's row sum) are amortised over
the row and not counted:

* ReLU: one compare; its derivative a compare-select. Max-pooling: one compare per input element both ways.
* Sigmoid 1/(1+e^−x): exp, add, div; derivative δ·y·(1−y): add, 2 mul. Tanh 1 − 2/(e^{2x}+1): exp, 2 add,
  div; derivative δ·(1−y²): fma, mul. SiLU x·σ(x): σ + mul; derivative σ again + 2 add, 3 mul.
  GELU, tanh form 0.5·x·(1+tanh(√(2/π)(x+0.044715x³))) (Hendrycks & Gimpel 2016): 4 mul, fma, exp, div,
  3 add; derivative 6 mul, 2 fma, exp, div, 3 add. Other pointwise functions: leaky ReLU's compare + mul.
* BatchNorm / LayerNorm / GroupNorm forward (training): sum (add), x−μ (add), Σ(x−μ)² (fma), ×1/σ (mul),
  ×γ+β (fma); backward δx = γ/σ·(δ − mean δ − x̂·mean(δ·x̂)) with δγ, δβ: 3 add, 2 fma, 2 mul.
  RMSNorm: Σx² (fma), ×1/rms (mul), ×γ (mul); backward 3 mul, 3 fma.
* Softmax: max (compare), x−max (add), exp, sum (add), div; backward δx = y·(δ − Σδ·y): fma, add, mul.
  Cross-entropy loss: the softmax's count forward, y − onehot (add) backward.
* Average pooling and reductions (mean, sum): one add per input element; backward one mul (δ/n).
* Add/sub: one add; its backward copies δ to both inputs (traffic only). Mul/div/where: one mul; backward
  2 mul. Dropout: compare + mul (the random bits are not counted); backward one mul.
* Embedding look-ups: none (a gather: traffic only); backward one add per element (scatter-add).
* ``other`` (ops capture did not recognise): not charged.

**Cycles** of a layer-pass's non-GEMM work on a variant's ``arch``: ⌈Σ ops·op cycles / vector lanes⌉
(:func:`hwsim.sim.vector.vector_cost`), and not less than its DRAM transfer cycles when its tensors
spill (below). By default they are serial, after the layer-pass's GEMM work (the cycle cause ``nongemm``): a
norm or a softmax needs its whole row first. ``vector.overlap_nongemm: true`` lets them hide behind the
layer-pass's array cycles (compute, fragmentation, imbalance, bank conflicts; :func:`exposed`).

**Traffic**: the tensors are stored at ``pe.mac_bits`` per element, dense (uncompressed). A kind's
tensors stay on chip when the tensor one of its calls works over (elements ÷ calls) fits what the
residency model keeps on chip (:func:`hwsim.sim.residency.capacity_bytes`: the rule of the GEMMs'
neighbouring tensors): then its read and written bytes go through the global buffer
(``vec_sram_bytes``); otherwise they cross DRAM (``dram_bytes``), and the layer-pass's DRAM transfer
bounds its non-GEMM cycles from below. By default ops are not fused: each reads and writes its own tensors;
``vector.fuse_pointwise: true`` applies the pointwise kinds (:data:`POINTWISE`) as the GEMM's outputs stream by,
so they cost their operations but no traffic (norms, softmax and pooling keep theirs). The GEMM operands' own DRAM traffic
is the residency model's; the bytes here are the non-GEMM ops' reads and writes on top of it.

**Attribution**: forward work recorded at layer L is charged to L's forward layer-pass (the op consumes
L's output); backward work to L's backward-data layer-pass (it produces δz of L, which L's backward GEMMs
consume), or to L's backward-weight when L has no backward-data GEMM. Work at a layer the replay does not
have is charged to the first layer-pass of that pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from hwsim.results import LayerPassResult, VariantResult
from hwsim.results.actions import Actions
from hwsim.sim import energy, shape_memo
from hwsim.sim.model import transfer_cycles
from hwsim.sim.residency import capacity_bytes
from hwsim.sim.vector import vector_cost

if TYPE_CHECKING:
    from hwsim.arch import Arch
    from hwsim.trace.nongemm import NonGemmWork, OpCount

_SOFTMAX = {"compare": 1, "add": 2, "exp": 1, "div": 1}
_NORM = ({"add": 2, "fma": 2, "mul": 1}, {"add": 3, "fma": 2, "mul": 2})
OPS_PER_ELEMENT: dict[str, tuple[dict[str, int], dict[str, int]]] = {
    "relu": ({"compare": 1}, {"compare": 1}),
    "gelu": ({"mul": 4, "fma": 1, "exp": 1, "div": 1, "add": 3}, {"mul": 6, "fma": 2, "exp": 1, "div": 1, "add": 3}),
    "silu": ({"exp": 1, "add": 1, "div": 1, "mul": 1}, {"exp": 1, "add": 3, "div": 1, "mul": 3}),
    "sigmoid": ({"exp": 1, "add": 1, "div": 1}, {"add": 1, "mul": 2}),
    "tanh": ({"exp": 1, "add": 2, "div": 1}, {"fma": 1, "mul": 1}),
    "activation": ({"compare": 1, "mul": 1}, {"compare": 1, "mul": 1}),
    "batchnorm": _NORM,
    "layernorm": _NORM,
    "groupnorm": _NORM,
    "rmsnorm": ({"fma": 1, "mul": 2}, {"mul": 3, "fma": 3}),
    "softmax": (_SOFTMAX, {"fma": 1, "add": 1, "mul": 1}),
    "loss": (_SOFTMAX, {"add": 1}),
    "maxpool": ({"compare": 1}, {"compare": 1}),
    "avgpool": ({"add": 1}, {"mul": 1}),
    "reduce": ({"add": 1}, {"mul": 1}),
    "add": ({"add": 1}, {}),
    "mul": ({"mul": 1}, {"mul": 2}),
    "dropout": ({"compare": 1, "mul": 1}, {"mul": 1}),
    "embedding": ({}, {"add": 1}),
    "other": ({}, {}),
}
# Kinds ``vector.fuse_pointwise`` applies on the GEMM's output stream (no tensor traffic of their own).
POINTWISE = frozenset({"relu", "gelu", "silu", "sigmoid", "tanh", "activation", "add", "mul", "dropout"})


def vector_ops(counts: Mapping[str, OpCount], direction: str) -> dict[str, int]:
    """``{vector op: operations}`` of one layer-pass's ``{kind: OpCount}`` (``direction``: forward | backward)."""
    side = 0 if direction == "forward" else 1
    out: dict[str, int] = {}
    for kind, c in counts.items():
        for op, n in OPS_PER_ELEMENT[kind][side].items():
            out[op] = out.get(op, 0) + n * c.elements
    return {op: n for op, n in out.items() if n}


def attribute(work: NonGemmWork, present: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict[str, OpCount]]:
    """``{(layer, pass): {kind: OpCount}}`` over the replayed layer-passes ``present`` (module doc)."""
    have = set(present)
    firsts = {}
    for key in present:
        firsts.setdefault(key[1], key)
    out: dict[tuple[str, str], dict[str, OpCount]] = {}
    for (layer, kind, direction), c in work:
        if direction == "forward":
            target = (layer, "forward") if (layer, "forward") in have else firsts.get("forward")
        else:
            target = next((k for k in ((layer, "backward_data"), (layer, "backward_weight")) if k in have),
                          firsts.get("backward_data") or firsts.get("backward_weight"))
        if target is None:
            continue  # inference replay: no backward pass to charge
        slot = out.setdefault(target, {})
        slot[kind] = slot[kind] + c if kind in slot else c
    return out


def cost(counts: Mapping[str, OpCount], direction: str, arch: Arch) -> tuple[int, Actions]:
    """(cycles, actions) of one layer-pass's non-GEMM work on ``arch`` (module doc)."""
    ops = vector_ops(counts, direction)
    cap, width = capacity_bytes(arch), arch.pe.mac_bits / 8
    sram = dram = 0.0
    fused = POINTWISE if arch.vector.fuse_pointwise else frozenset()
    for kind, c in counts.items():
        if not c.calls or kind in fused:
            continue
        nbytes = (c.read + c.written) * width
        if cap > 0 and math.ceil(c.elements / c.calls) * width <= cap:
            sram += nbytes
        else:
            dram += nbytes
    cycles, acts = vector_cost(ops, arch, sram_bytes=sram)
    if dram:
        acts = acts + Actions(dram_bytes=dram)
        cycles = max(cycles, transfer_cycles(dram, arch.memory.dram_bytes_per_cycle))
    return cycles, acts


def exposed(vr: VariantResult, arch: Arch, cycles: int) -> int:
    """The part of ``cycles`` of non-GEMM work the layer-pass's array time does not hide
    (``vector.overlap_nongemm``; all of it when the vector unit runs after the GEMM)."""
    if not arch.vector.overlap_nongemm:
        return cycles
    cb = vr.cycle_breakdown
    return max(0, cycles - (cb.compute + cb.fragmentation + cb.imbalance + cb.bank_conflict))


def _add(vr: VariantResult, arch: Arch, cycles: int, actions: Actions, *, priced: bool = True) -> VariantResult:
    cycles = exposed(vr, arch, cycles)
    acts = vr.actions + actions
    cb = replace(vr.cycle_breakdown, nongemm=vr.cycle_breakdown.nongemm + int(cycles))
    energy_breakdown = energy.price(acts, arch) if priced else vr.energy_breakdown
    return replace(vr, cycle_breakdown=cb, energy_breakdown=energy_breakdown, actions=acts,
                   analytical_cycles=vr.analytical_cycles + int(cycles))


def charge(results: Sequence[LayerPassResult], work: NonGemmWork | None,
           archs: Mapping[str, Arch], *, priced: bool = True) -> list[LayerPassResult]:
    """``results`` with the non-GEMM work charged to every variant of ``archs`` but ``ideal`` (module doc).

    ``priced=False``: the charged records keep their energy as it was, for a caller that prices them once at the
    end (:func:`hwsim.sim.charges.finish` does)."""
    if work is None:
        return list(results)
    per = attribute(work, [(lp.name, lp.pass_name) for lp in results])
    out = []
    for lp in results:
        counts = per.get((lp.name, lp.pass_name))
        if not counts:
            out.append(lp)
            continue
        direction = "forward" if lp.pass_name == "forward" else "backward"
        key = ("nongemm", direction, tuple(counts.items()), priced)  # what the charge reads besides record and arch
        variants = {}
        for v, arch in archs.items():
            vr = getattr(lp, v)
            if v == "ideal" or (v in ("dense_systolic", "dense_equal_area") and not vr.multipliers):
                continue
            variants[v] = shape_memo.derive(vr, arch, key, partial(_charged, vr, arch, key))
        out.append(replace(lp, **variants))
    return out


def _charged(vr: VariantResult, arch: Arch, key: tuple) -> VariantResult:
    """``vr`` with the non-GEMM work of ``key`` (("nongemm", direction, counts' items, priced)) charged on ``arch``."""
    cycles, acts = _cost(key, arch)
    return _add(vr, arch, cycles, acts, priced=key[3])


def _cost(key: tuple, arch: Arch) -> tuple[int, Actions]:
    """:func:`cost` of ``key``'s counts and direction on ``arch``, once per arch object and key (the same work
    recurs in every iteration of a run; at most 1,024 kept, then the cache starts over)."""
    k = (id(arch), key)
    hit = _COSTS.get(k)
    if hit is not None and hit[0] is arch:
        return hit[1]
    value = cost(dict(key[2]), key[1], arch)
    if len(_COSTS) >= 1024:
        _COSTS.clear()
    _COSTS[k] = (arch, value)  # the arch kept so its id stays its own
    return value


_COSTS: dict[tuple, tuple[Arch, tuple[int, Actions]]] = {}
