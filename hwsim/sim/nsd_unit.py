"""The NSD unit (arch ``quantizer:`` section): cycles and actions of quantizing one layer's dense δz.

Dithered backprop (seed paper Algorithm 1) quantizes every element of a layer's *dense* δz before the
two backward GEMMs that consume δ̃z. The unit has ``quantizer.lanes_per_pe × PEs`` lanes, one element
per lane per cycle; a pass over e elements takes ⌈e / lanes⌉ cycles. What a layer costs depends on
the design (:class:`~hwsim.arch.QuantizerConfig`):

* **σ** — ``current`` (Algorithm 1): a std pass (1 mul + 1 add per element), then a dither + quantize
  pass (RNG sample, x + ν, · 1/Δ, truncate); σ must be known before the first element is quantized,
  so the two passes never overlap each other. ``delayed``: Δ from the previous iteration's σ, one
  pass; the std of this δz is still accumulated in that pass for the next iteration (``nsd_std`` is
  counted; the first iteration's σ is not modelled).
* **overlap** — ``producer``: the *first* pass streams behind the GEMM passes that produce δz (the
  post-processing unit applies the activation derivative element by element as their output groups drain).
  Exposed = what of the first pass is left when the last producer is done + the passes after it: two-pass σ
  ``current`` hides at most its std pass, never the quantize pass (it needs the σ of the whole tensor). The
  last layer's δz comes from the loss (no GEMM producer), so nothing hides; nor with ``none``. The producer is
  the backward-data GEMM of the layer above (trace order) — for most layers the only one, and then exposed =
  max(0, first pass − producer array cycles). A δz with several producers is several parts
  (:func:`producer_parts`): GPT-2's c_attn output Q | K | V gets δQ from QKᵀ's backward-data, but δK and δV from
  the backward-weight of QKᵀ and P·V (:func:`hwsim.sim.residency.operand_sources`, the links
  :func:`hwsim.sim.schedule.producers` draws). Each part's share of the first pass arrives at an even rate while
  its producer runs, in execution order (P·V's backward-weight, QKᵀ's backward-data, QKᵀ's backward-weight),
  and the lanes serve one element per cycle: the backlog after a part is max(0, backlog before + its share −
  its producer's cycles) (a fluid queue), and what is left after the last part is exposed. So the pass can
  only finish after the last part's producer, and a part cannot hide behind another part's producer before it
  arrives. A part's share of the first pass is its share of the elements (with ``skip_zeros``, the non-zeros
  are taken to be spread evenly over the parts). Idle time between producer passes (non-GEMM work such as the
  softmax backward) is not counted as hiding (conservative).
* **zeros** — ``skip_zeros``: an exact zero of δz stays zero (⌊0/Δ + u⌋ = 0, u ∈ [0, 1)) and adds
  nothing to Σx or Σx², so only the non-zeros of the dense δz are processed (e = nnz; the unit reads
  the zero mask, ⌈E/8⌉ bytes, each time it reads the stored δz). The count comes from
  :func:`hwsim.sim.dz_zeros.dense_dz_nonzero` — known only for some layers; elsewhere e = E. The lanes are
  taken to be fed the non-zeros only (the post-processing unit, which computes f'(z), compacts its stream, as
  SCNN's PPU compresses outputs).
* **capacity** — a dense δz that some pass reads back (every design but σ ``delayed`` streaming
  behind its producer) is held whole at accumulator width in the PE output RAMs, ⌈E / PEs⌉ values
  per PE. With ``check_capacity`` the part above ``pe.output_buffer_bytes`` per PE is spilled: written
  to DRAM once and read back by each pass that reads the stored δz. Spill bytes = excess per PE ·
  PEs · (1 + reads), charged as **serial** DRAM cycles ⌈bytes / ``memory.dram_bytes_per_cycle``⌉
  (added to the exposed NSD cycles, energy category ``dram``), not in the schedule's DMA traffic.
  The whole output RAM is taken as free for δz (optimistic: the producer's outputs share it).

Actions: ``nsd_std`` = ``nsd_rng`` = ``nsd_quantize`` = e; ``nsd_sram_bytes`` = (passes reading the
stored δz) · (e · accumulator bytes + mask bytes when skipping zeros) — a streamed pass takes δz from
the post-processing pipeline, not the RAM; ``dram_bytes`` = the spill. Priced by the ``quantizer``
table (:mod:`hwsim.sim.energy`).

meProp (``method: meprop``, keep the k largest |δz| of each example): one pass, never overlapped, no
zero skipping or capacity check; each element costs 1 + ⌈log2 k⌉ magnitude comparisons (compare with
a size-k heap's minimum, and a worst-case heap insert), ``nsd_compare`` = E·(1 + ⌈log2 k⌉), cycles =
⌈E·(1 + ⌈log2 k⌉) / lanes⌉, ``nsd_sram_bytes`` = E·accumulator bytes; an example with ≤ k elements
keeps everything and costs nothing.

Only the ``sparse`` variant pays, and only on an arch that skips zero gradients (dense baselines train
with plain backprop; the ideal bound counts effectual MACs only). Where the exposed cycles are booked
(``booked_on``) is :func:`book`. Traces with method ``dither`` or ``synthetic`` (synthetic δ̃z stands
for NSD output) pay the NSD cost, ``meprop`` the top-k cost, ``none`` nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hwsim.results.actions import Actions
from hwsim.sim.model import transfer_cycles
from hwsim.sim.residency import operand_sources

if TYPE_CHECKING:
    from hwsim.arch import Arch
    from hwsim.trace.schema import LayerGeometry

NSD_METHODS = ("dither", "synthetic")
Key = tuple[str, str]  # (layer name, pass name)


@dataclass(frozen=True)
class NsdCost:
    """One layer's NSD cost on one arch (module doc): passes, what is exposed, the spill, the actions."""

    elements: int          # E, dense δz elements
    processed: int         # e, elements the lanes process (E, or the non-zeros when skipping zeros)
    std_cycles: int        # the std pass (0 with σ delayed: folded into the quantize pass)
    quantize_cycles: int   # the dither + quantize pass
    hidden_cycles: int     # of the first pass, hidden behind the producer GEMMs
    spill_bytes: float     # DRAM bytes of the dense δz that does not fit (write + reads)
    spill_cycles: int      # serial DRAM cycles of the spill
    actions: Actions

    @property
    def exposed_cycles(self) -> int:
        """Cycles the layer pays: both passes minus what hides behind the producer, plus the spill."""
        return self.std_cycles + self.quantize_cycles - self.hidden_cycles + self.spill_cycles


def nsd_cost(elements: int, arch: Arch, *, nonzero: int | None = None, producer_cycles: int | None = None,
             parts: Sequence[tuple[int, int]] | None = None) -> NsdCost:
    """NSD cost of a dense δz of ``elements`` (module doc). ``nonzero``: its non-zero count if known;
    ``producer_cycles``: cycles of the one backward-data GEMM producing it (``None``: no GEMM producer);
    ``parts``: instead, (elements, producer array cycles) of each part of δz, in the order its producers run
    (:func:`producer_parts`)."""
    if parts is None and producer_cycles is not None:
        parts = [(elements, producer_cycles)]
    q, npe = arch.quantizer, arch.num_pes
    lanes = q.lanes_per_pe * npe
    acc_bytes = arch.pe.accumulator_bits / 8
    skip = q.skip_zeros and nonzero is not None
    e = min(max(int(nonzero), 0), elements) if skip else elements
    one = -(-e // lanes)
    std, quant = (one, one) if q.sigma == "current" else (0, one)
    streams = q.overlap == "producer" and parts is not None
    hidden = _hidden(one, parts) if streams else 0   # of the first pass (std, or the only one)
    reads = (2 if q.sigma == "current" else 1) - (1 if streams else 0)   # passes reading the stored δz
    spill = 0.0
    if q.check_capacity and reads:
        excess = max(0.0, -(-elements // npe) * acc_bytes - arch.pe.output_buffer_bytes)
        spill = excess * npe * (1 + reads)
    per_read = e * acc_bytes + (math.ceil(elements / 8) if skip else 0)
    acts = Actions(nsd_std=e, nsd_rng=e, nsd_quantize=e, nsd_sram_bytes=float(reads * per_read),
                   dram_bytes=spill or None)   # None: not counted (no spill)
    return NsdCost(elements=elements, processed=e, std_cycles=std, quantize_cycles=quant, hidden_cycles=hidden,
                   spill_bytes=spill, spill_cycles=transfer_cycles(spill, arch.memory.dram_bytes_per_cycle),
                   actions=acts)


def _hidden(one: int, parts: Sequence[tuple[int, int]]) -> int:
    """Cycles of a first pass of ``one`` cycles that hide behind its producers (module doc: the fluid queue)."""
    total = sum(max(0, int(e)) for e, _ in parts)
    backlog = 0.0
    for e, cycles in parts:
        share = one * max(0, int(e)) / total if total else 0.0
        backlog = max(0.0, backlog + share - max(0, int(cycles)))
    return max(0, one - math.ceil(backlog - 1e-9))


def layer_cost(elements: int, examples: int, arch: Arch, method: str | None, k: int | None = None, *,
               nonzero: int | None = None, producer_cycles: int | None = None,
               parts: Sequence[tuple[int, int]] | None = None) -> tuple[int, Actions]:
    """(exposed cycles, actions) of quantizing one layer's dense δz of ``elements`` over ``examples`` examples
    (``producer_cycles``, ``parts``: :func:`nsd_cost`)."""
    if method is None or elements <= 0 or not arch.zero_skip.gradients:
        return 0, Actions()
    if method in NSD_METHODS:
        c = nsd_cost(elements, arch, nonzero=nonzero, producer_cycles=producer_cycles, parts=parts)
        return c.exposed_cycles, c.actions
    if method == "meprop":
        if k is None or k < 1:
            raise ValueError(f"method meprop: trace meta key 'k' is {k!r}; allowed: a positive integer")
        per_example = elements // max(1, examples)
        if per_example <= k:
            return 0, Actions()
        lanes = arch.quantizer.lanes_per_pe * arch.num_pes
        comps = elements * (1 + math.ceil(math.log2(k)))
        return -(-comps // lanes), Actions(nsd_compare=comps,
                                           nsd_sram_bytes=float(elements) * arch.pe.accumulator_bits / 8)
    return 0, Actions()


def dense_dz_elements(geometry: LayerGeometry) -> tuple[int, int]:
    """(elements, examples) of a layer's dense δz (its output shape)."""
    return int(math.prod(geometry.output_shape)), geometry.N


def book(cycles: Mapping[Key, int], geometries: Mapping[str, LayerGeometry], arch: Arch, *,
         method: str | None, k: int | None = None, nonzero: Mapping[str, int] | None = None
         ) -> dict[Key, tuple[int, Actions]]:
    """Where each layer's NSD cost is booked: layer-pass → (exposed cycles, actions).

    ``cycles``: the sparse variant's array cycles of every replayed layer-pass (before NSD, without memory
    stall: :func:`hwsim.sim.charges.finish`); ``geometries`` in
    trace order. A layer's δz is produced by the backward-data GEMM of the next layer in trace order (the
    layer above; absent for the last layer: its δz comes from the loss), and its δK / δV parts by the
    activation products' backward-weight (:func:`producer_parts`); a layer whose layer above was not replayed
    streams behind nothing. ``booked_on: first_consumer``
    books on the layer's backward-data when it has one, else its backward-weight; ``backward_weight``
    always there. A layer with neither consumer replayed is not charged.
    """
    names = list(geometries)
    sources = operand_sources(list(geometries.values()))
    nonzero = nonzero or {}
    out: dict[Key, tuple[int, Actions]] = {}
    for i, name in enumerate(names):
        order = ("backward_data", "backward_weight") if arch.quantizer.booked_on == "first_consumer" \
            else ("backward_weight",)
        target = next(((name, p) for p in order if (name, p) in cycles), None)
        if target is None:
            continue
        el, ex = dense_dz_elements(geometries[name])
        cyc, acts = layer_cost(el, ex, arch, method, k, nonzero=nonzero.get(name),
                               parts=producer_parts(i, el, cycles, geometries, sources))
        if cyc or acts:
            out[target] = (cyc, acts)
    return out


def producer_parts(i: int, elements: int, cycles: Mapping[Key, int], geometries: Mapping[str, LayerGeometry],
                   sources: Sequence[int | None]) -> list[tuple[int, int]] | None:
    """(elements, producer array cycles) of each part of layer ``i``'s δz of ``elements``, in execution order
    (module doc), or None when its δz has no GEMM producer (the last layer) or the layer above was not replayed.

    The activation products j whose second operand layer i's forward wrote (``sources[j] == i``:
    :func:`hwsim.sim.residency.operand_sources`) produce a part of the second operand's size
    (∏ ``weight_shape``: δK, δV) in their backward-weight; the layer above's backward-data the rest (δQ; for a
    layer without such products, the whole δz). A producer not replayed contributes 0 cycles. Backward runs
    layers L..1, each layer's backward-data before its backward-weight (:func:`hwsim.sim.schedule.execution_order`).
    """
    names = list(geometries)
    if i + 1 >= len(names) or (names[i + 1], "backward_data") not in cycles:
        return None
    products = [j for j, s in enumerate(sources) if s == i]
    sizes = {j: int(math.prod(geometries[names[j]].weight_shape)) for j in products}
    rest = max(0, elements - sum(sizes.values()))
    found = [((i + 1, 0), rest, cycles[(names[i + 1], "backward_data")])]
    found += [((j, 1), sizes[j], cycles.get((names[j], "backward_weight"), 0)) for j in products]
    found.sort(key=lambda f: (-f[0][0], f[0][1]))
    return [(e, c) for _, e, c in found]
