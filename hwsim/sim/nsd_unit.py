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
* **overlap** — ``producer``: the *first* pass streams behind the backward-data GEMM of the layer
  above (trace order; it produces δa, the post-processing unit applies the activation derivative
  element by element as its output groups drain). Exposed = max(0, first pass − producer array cycles) +
  the passes after it: two-pass σ ``current`` hides at most its std pass, never the quantize pass
  (it needs the σ of the whole tensor). The last layer's δz comes from the loss (no GEMM producer),
  so nothing hides; nor with ``none``.
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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hwsim.results.actions import Actions
from hwsim.sim.model import transfer_cycles

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
    hidden_cycles: int     # of the first pass, hidden behind the producer GEMM
    spill_bytes: float     # DRAM bytes of the dense δz that does not fit (write + reads)
    spill_cycles: int      # serial DRAM cycles of the spill
    actions: Actions

    @property
    def exposed_cycles(self) -> int:
        """Cycles the layer pays: both passes minus what hides behind the producer, plus the spill."""
        return self.std_cycles + self.quantize_cycles - self.hidden_cycles + self.spill_cycles


def nsd_cost(elements: int, arch: Arch, *, nonzero: int | None = None,
             producer_cycles: int | None = None) -> NsdCost:
    """NSD cost of a dense δz of ``elements`` (module doc). ``nonzero``: its non-zero count if known;
    ``producer_cycles``: cycles of the backward-data GEMM producing it (``None``: no GEMM producer)."""
    q, npe = arch.quantizer, arch.num_pes
    lanes = q.lanes_per_pe * npe
    acc_bytes = arch.pe.accumulator_bits / 8
    skip = q.skip_zeros and nonzero is not None
    e = min(max(int(nonzero), 0), elements) if skip else elements
    one = -(-e // lanes)
    std, quant = (one, one) if q.sigma == "current" else (0, one)
    streams = q.overlap == "producer" and producer_cycles is not None
    hidden = min(one, max(0, int(producer_cycles))) if streams else 0   # of the first pass (std, or the only one)
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


def layer_cost(elements: int, examples: int, arch: Arch, method: str | None, k: int | None = None, *,
               nonzero: int | None = None, producer_cycles: int | None = None) -> tuple[int, Actions]:
    """(exposed cycles, actions) of quantizing one layer's dense δz of ``elements`` over ``examples`` examples."""
    if method is None or elements <= 0 or not arch.zero_skip.gradients:
        return 0, Actions()
    if method in NSD_METHODS:
        c = nsd_cost(elements, arch, nonzero=nonzero, producer_cycles=producer_cycles)
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
    layer above; absent for the last layer: its δz comes from the loss). ``booked_on: first_consumer``
    books on the layer's backward-data when it has one, else its backward-weight; ``backward_weight``
    always there. A layer with neither consumer replayed is not charged.
    """
    names = list(geometries)
    nonzero = nonzero or {}
    out: dict[Key, tuple[int, Actions]] = {}
    for i, name in enumerate(names):
        order = ("backward_data", "backward_weight") if arch.quantizer.booked_on == "first_consumer" \
            else ("backward_weight",)
        target = next(((name, p) for p in order if (name, p) in cycles), None)
        if target is None:
            continue
        above = (names[i + 1], "backward_data") if i + 1 < len(names) else None
        el, ex = dense_dz_elements(geometries[name])
        cyc, acts = layer_cost(el, ex, arch, method, k, nonzero=nonzero.get(name),
                               producer_cycles=cycles.get(above) if above else None)
        if cyc or acts:
            out[target] = (cyc, acts)
    return out
