"""The weight update, every iteration and every variant: traffic on the DMA engine, arithmetic on the vector unit.

After the backward passes every layer with parameters — a GEMM whose second operand is a weight that receives a
gradient (``w_role == "weight"``, ``weight_grad`` not false; attention's activation products have none) — applies
the optimizer (:class:`Optimizer`, from the trace's meta: :func:`optimizer_from_meta`) to its P =
∏ ``weight_shape`` parameters (biases and normalisation parameters are not in a trace: not counted; a weight
shared by two GEMMs is counted twice). Per parameter, with b_acc = ``pe.accumulator_bits``, b_W =
``update.master_weight_bits``, b_s = ``update.state_bits``, s states (:data:`hwsim.arch.update.OPTIMIZER_STATES`),
b_mac = ``pe.mac_bits``:

* reads: δW (b_acc: backward-weight writes it to DRAM at accumulator width), W (b_W), s states (b_s);
* writes: W (b_W), s states (b_s) and the b_mac copy of W that forward and backward-data stream from DRAM.

DRAM bytes are all of these, except W and the states when ``update.on_chip`` is true and the whole model's W and
states fit on chip — Σ P·(b_W + s·b_s)/8 ≤ :func:`hwsim.sim.residency.capacity_bytes` (only these tensors are
checked: the iteration's activations are assumed to leave room) — then only δW and the b_mac copy cross DRAM.
Actions: ``dram_bytes`` and ``sram_global_bytes`` (the DMA stages them through the global buffer), the vector
unit's operations ``vec_<op>`` and ``vec_sram_bytes`` (every byte it reads and writes, in the global buffer).

Operations per parameter (torch.optim's arithmetic; bias corrections and learning-rate schedules are per-tensor
scalars, free per element):

==================  =========================================================================================
every optimizer     δW fixed point → float (1 mul); the b_mac copy of W (1 mul by the scale, 1 compare for the
                    next scale's max |W|)
sgd                 w −= lr·g (1 fma)
sgd_momentum        buf = μ·buf + g (1 fma), w −= lr·buf (1 fma); Nesterov: g + μ·buf (1 fma)
adam, adamw         m = β1·m + (1−β1)·g (1 mul + 1 fma), v = β2·v + (1−β2)·g² (2 mul + 1 fma),
                    denominator √v·c + ε (1 sqrt + 1 fma), w −= step·m / denominator (1 div + 1 fma)
weight decay        sgd, sgd_momentum, adam: g += wd·w (1 fma); adamw (decoupled): w ·= 1 − lr·wd (1 mul)
==================  =========================================================================================

Timing: a layer's parameters stream through the global buffer in chunks, two in flight (double buffering:
⌊``global_buffer_bytes`` / (2 · DRAM bytes per parameter)⌋ parameters per chunk, at least 1). Each chunk is an
interval like a GEMM's output-channel group: its reads are loaded, the vector unit computes it
(:func:`hwsim.sim.vector.vector_cost`), its writes are stored — one SimPy run of its own with ``memory.schedule:
isolated`` (:func:`hwsim.sim.model.simulate_intervals`), or segments of the iteration's schedule after the
backward passes, layers L..1, each waiting for its layer's backward-weight write-backs (its δW):
:mod:`hwsim.sim.schedule`. The vector unit's cycles are the cycle cause ``vector``, waiting for DRAM is
``memory_stall``.

Every variant pays it on its own arch (sparse and dense on the same silicon pay the same). The ``ideal`` (MAC
bound) entry is the fewest vector-unit cycles of any variant (the most lanes) without memory, with that variant's
action counts priced on the sparse arch; the roofline's DRAM term is the fewest update bytes of any variant ÷
bandwidth. Results: one ``update`` layer-pass record per layer
(:data:`hwsim.results.UPDATE`), so the iteration adds up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hwsim.arch.update import OPTIMIZER_STATES, OPTIMIZERS
from hwsim.results import CycleBreakdown, LayerPassResult, VariantResult
from hwsim.results.actions import Actions
from hwsim.sim import energy, schedule
from hwsim.sim.analytic import closed_form_cycles
from hwsim.sim.model import simulate_intervals, transfer_cycles
from hwsim.sim.residency import capacity_bytes
from hwsim.sim.vector import vector_cost

if TYPE_CHECKING:
    from hwsim.arch import Arch
    from hwsim.trace.schema import LayerSample

UPDATE = "update"
# meta ``optimizer`` names (lower case, before any "+schedule") → kind; sgd becomes sgd_momentum when momentum > 0
_NAMES = {"sgd": "sgd", "adam": "adam", "adamw": "adamw"}
# torch.optim's default weight decay when a trace names the optimizer but not its weight_decay
_TORCH_DEFAULT_DECAY = {"sgd": 0.0, "adam": 0.0, "adamw": 1e-2}


@dataclass(frozen=True)
class Optimizer:
    """The optimizer the update models (module doc); ``source`` says where it came from, for the results."""

    kind: str
    weight_decay: bool = False
    nesterov: bool = False
    source: str = ""

    def __post_init__(self) -> None:
        if self.kind not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.kind!r} is not modelled; allowed: {', '.join(OPTIMIZERS)}")

    @property
    def states(self) -> int:
        return OPTIMIZER_STATES[self.kind]

    def ops_per_param(self) -> dict[str, int]:
        """Vector operations per parameter by kind (module doc)."""
        ops = {"mul": 2, "compare": 1, "fma": 0}  # δW → float; W → the mac_bits copy (scale, max |W|)
        if self.kind == "sgd":
            ops["fma"] += 1
        elif self.kind == "sgd_momentum":
            ops["fma"] += 2 + int(self.nesterov)
        else:  # adam, adamw
            ops["mul"] += 3
            ops["fma"] += 4
            ops.update(sqrt=1, div=1)
        if self.weight_decay:
            ops["mul" if self.kind == "adamw" else "fma"] += 1
        return ops

    def to_json(self) -> dict[str, Any]:
        return {"optimizer": self.kind, "states": self.states, "weight_decay": self.weight_decay,
                "nesterov": self.nesterov, "from": self.source}


def optimizer_from_meta(meta: Mapping[str, Any] | None, default: str) -> Optimizer:
    """The optimizer a trace's meta names (``optimizer``, ``momentum``, ``nesterov``, ``weight_decay``), else
    ``default`` (``update.default_optimizer``, with weight decay: hwsim trace's default 5e-4).

    ``optimizer`` is read case-insensitively up to a ``+`` (``"sgd+cosine"``, ``"SGD"``, ``"AdamW"``); SGD with
    ``momentum`` > 0 is ``sgd_momentum``. A name hwsim does not model (e.g. ``RMSprop``) falls back to ``default``
    and ``source`` says so. A non-string ``optimizer`` is a ``ValueError`` naming the key.
    """
    meta = meta or {}
    named = meta.get("optimizer")
    if named is None:
        return Optimizer(default, weight_decay=True, source="update.default_optimizer (the trace names none)")
    if not isinstance(named, str):
        raise ValueError(f"trace meta optimizer: {named!r} is not allowed; allowed: a name such as 'SGD', "
                         "'sgd+cosine', 'Adam' or 'AdamW'")
    base = _NAMES.get(named.lower().split("+")[0].strip())
    if base is None:
        return Optimizer(default, weight_decay=True,
                         source=f"update.default_optimizer (the trace's optimizer {named!r} is not modelled)")
    wd = meta.get("weight_decay")
    decay = (_TORCH_DEFAULT_DECAY[base] if wd is None else float(wd)) > 0
    momentum = meta.get("momentum") or 0.0
    kind = "sgd_momentum" if base == "sgd" and momentum > 0 else base
    nesterov = kind == "sgd_momentum" and meta.get("nesterov") is True
    said = ", ".join(f"{k}={meta[k]!r}" for k in ("optimizer", "momentum", "nesterov", "betas", "weight_decay")
                     if meta.get(k) is not None)
    return Optimizer(kind, weight_decay=decay, nesterov=nesterov, source=f"trace meta ({said})")


def layer_params(sample: LayerSample) -> int:
    """Parameters the optimizer updates for one traced GEMM (0 for activation products and frozen weights)."""
    g = sample.geometry
    if g.w_role != "weight" or sample.weight_grad is False:
        return 0
    return int(math.prod(g.weight_shape))


def model_params(samples: Mapping[str, LayerSample]) -> dict[str, int]:
    """``{layer: parameters}`` of the layers that have any, in trace order."""
    return {n: p for n, s in samples.items() if (p := layer_params(s))}


@dataclass(frozen=True)
class Widths:
    """Bytes per parameter of one arch's update: DRAM reads, DRAM writes, all bytes the vector unit touches."""

    dram_read: float
    dram_write: float
    touched: float

    @property
    def dram(self) -> float:
        return self.dram_read + self.dram_write


def fits_on_chip(total_params: int, arch: Arch, opt: Optimizer) -> bool:
    """``update.on_chip`` and the model's W and states fit :func:`~hwsim.sim.residency.capacity_bytes`."""
    u = arch.update
    resident = total_params * (u.master_weight_bits + opt.states * u.state_bits) / 8
    return u.on_chip and resident <= capacity_bytes(arch)


def widths(arch: Arch, opt: Optimizer, *, on_chip: bool) -> Widths:
    """Bytes per parameter (module doc)."""
    u, pe = arch.update, arch.pe
    grad, w, st, copy = pe.accumulator_bits / 8, u.master_weight_bits / 8, opt.states * u.state_bits / 8, pe.mac_bits / 8
    reads, writes = grad + w + st, w + st + copy
    if on_chip:
        return Widths(dram_read=grad, dram_write=copy, touched=reads + writes)
    return Widths(dram_read=reads, dram_write=writes, touched=reads + writes)


@dataclass(frozen=True)
class LayerUpdate:
    """One layer's update on one arch: per-chunk spans and DRAM bytes, the unit's bound, the actions."""

    spans: np.ndarray        # (chunks,) vector cycles
    load_bytes: np.ndarray   # (chunks,)
    store_bytes: np.ndarray  # (chunks,)
    compute_cycles: int      # the whole layer on the vector unit at once: ⌈lane cycles / lanes⌉
    actions: Actions
    dram_bytes: float


def layer_cost(params: int, arch: Arch, opt: Optimizer, *, on_chip: bool) -> LayerUpdate:
    """The update of ``params`` parameters on ``arch`` (module doc)."""
    wd = widths(arch, opt, on_chip=on_chip)
    per = opt.ops_per_param()
    chunk = max(1, min(params, int(arch.memory.global_buffer_bytes // (2 * wd.dram)) if wd.dram else params))
    full, rem = divmod(params, chunk)
    sizes = [chunk] * full + ([rem] if rem else [])
    span_of = {n: vector_cost({k: n * c for k, c in per.items()}, arch)[0] for n in set(sizes)}
    spans = np.array([span_of[n] for n in sizes], dtype=np.int64)
    n_arr = np.array(sizes, dtype=float)
    cycles, acts = vector_cost({k: params * c for k, c in per.items()}, arch, sram_bytes=params * wd.touched)
    dram = params * wd.dram
    acts = acts + Actions(dram_bytes=dram, sram_global_bytes=dram)
    return LayerUpdate(spans=spans, load_bytes=n_arr * wd.dram_read, store_bytes=n_arr * wd.dram_write,
                       compute_cycles=cycles, actions=acts, dram_bytes=dram)


def _variant(u: LayerUpdate, arch: Arch, *, ideal: bool = False, timed_later: bool = False) -> VariantResult:
    """The variant record of ``u`` on ``arch``; memory stall from an isolated SimPy run unless the iteration's
    schedule adds it (``timed_later``) or it is the bound (``ideal``)."""
    vec = u.compute_cycles if ideal else int(u.spans.sum())
    busy = u.spans[:, None]
    bw = arch.memory.dram_bytes_per_cycle
    stall = 0
    if not ideal and not timed_later:
        stall = simulate_intervals(busy, u.load_bytes, u.store_bytes, dram_bytes_per_cycle=bw) - vec
    analytical = vec if ideal else closed_form_cycles(busy, u.load_bytes, u.store_bytes, dram_bytes_per_cycle=bw)
    return VariantResult(cycle_breakdown=CycleBreakdown(vector=vec, memory_stall=stall),
                         energy_breakdown=energy.price(u.actions, arch), macs=0, multipliers=arch.total_multipliers,
                         analytical_cycles=analytical, actions=u.actions)


def update_results(samples: Mapping[str, LayerSample], archs: Mapping[str, Arch], opt: Optimizer, *,
                   timed: dict[str, dict], follow: Mapping[str, str]) -> list[LayerPassResult]:
    """One ``update`` record per layer with parameters (module doc), in trace order.

    ``archs``: variant → Arch for every variant but ``ideal`` (which uses ``archs["sparse"]``). ``timed``: the
    replay's variant → key → :func:`hwsim.sim.schedule.intervals` of the variants the iteration's schedule times;
    the update's intervals are added to it. ``follow``: variants that share another's timeline (not timed here).
    The records depend on the layers' parameter counts, not on the masks: computed once for every iteration of a
    run (the same architecture objects, optimizer and schedule).
    """
    params = tuple(model_params(samples).items())
    key = (params, tuple((v, id(a)) for v, a in archs.items()), opt, tuple(sorted(timed)), tuple(sorted(follow.items())))
    hit = _UPDATES.get(key)
    if hit is None or any(x is not y for x, y in zip(hit[0], archs.values(), strict=True)):
        hit = (tuple(archs.values()), *_update_results(dict(params), archs, opt, timed=set(timed), follow=follow))
        if len(_UPDATES) >= 32:
            _UPDATES.clear()
        _UPDATES[key] = hit  # the archs are kept so their ids stay theirs
    for v, intervals in hit[2].items():
        timed[v].update(intervals)
    return list(hit[1])


_UPDATES: dict[tuple, tuple] = {}


def _update_results(params: Mapping[str, int], archs: Mapping[str, Arch], opt: Optimizer, *, timed: set[str],
                    follow: Mapping[str, str]) -> tuple[list[LayerPassResult], dict[str, dict]]:
    """(records, variant → key → intervals for the iteration's schedule) of :func:`update_results`."""
    total = sum(params.values())
    on_chip = {v: fits_on_chip(total, a, opt) for v, a in archs.items()}
    out = []
    added: dict[str, dict] = {v: {} for v in timed}
    for name, p in params.items():
        costs = {v: layer_cost(p, a, opt, on_chip=on_chip[v]) for v, a in archs.items()}
        variants = {}
        for v, a in archs.items():
            later = v in timed or follow.get(v) in timed
            variants[v] = _variant(costs[v], a, timed_later=later)
            if v in timed:
                c = costs[v]
                added[v][(name, UPDATE)] = schedule.intervals(c.spans[:, None], c.load_bytes, c.store_bytes,
                                                              dram_bytes_per_cycle=a.memory.dram_bytes_per_cycle)
        sparse = archs["sparse"]
        dram_bound = min(transfer_cycles(c.dram_bytes, archs[v].memory.dram_bytes_per_cycle)
                         for v, c in costs.items())
        fastest = min(costs, key=lambda v: costs[v].compute_cycles)   # the most vector lanes
        out.append(LayerPassResult(name=name, pass_name=UPDATE, macs_dense=0, macs_effectual=0, **variants,
                                   ideal=_variant(costs[fastest], sparse, ideal=True),
                                   dram_bound_cycles=dram_bound))
    return out, added


def update_record(samples: Mapping[str, LayerSample], arch: Arch, opt: Optimizer) -> dict[str, Any]:
    """``run["update"]`` of a result: the optimizer modelled and where it came from, parameters, placement."""
    params = model_params(samples)
    total = sum(params.values())
    u = arch.update
    return {**opt.to_json(), "params": total, "master_weight_bits": u.master_weight_bits,
            "state_bits": u.state_bits, "on_chip": fits_on_chip(total, arch, opt)}
