"""The NSD unit (arch ``quantizer:`` section): cycles and actions of quantizing dense δz, per layer.

Dithered backprop (seed paper Algorithm 1) quantizes every *dense* δz element of a layer before
the two backward GEMMs that consume δ̃z. The unit has ``quantizer.lanes_per_pe × PEs`` lanes (one
element per lane per cycle) and makes two passes over the E = N·K·P·Q elements:

1. std reduction (1 mul + 1 add per element): σ must be known before the first element can be
   quantized (Δ = s·σ), so this pass cannot overlap the quantize pass;
2. dither + quantize (one RNG sample, x + ν, · 1/Δ, truncate per element).

Cycles = 2·⌈E / lanes⌉, **not overlapped** with the GEMMs (hwsim's choice, the conservative bound:
the quantize pass could in principle stream into backward-data, which hwsim does not model).
Actions: ``nsd_std`` = ``nsd_rng`` = ``nsd_quantize`` = E, and ``nsd_sram_bytes`` = 2·E·accumulator
bytes (dense δz read from the PE output RAMs once per pass), priced by the ``quantizer`` table.

meProp (``method: meprop``, keep the k largest |δz| of each example): one pass; each element costs
1 + ⌈log2 k⌉ magnitude comparisons (compare with a size-k heap's minimum, and a worst-case heap
insert), ``nsd_compare`` = E·(1 + ⌈log2 k⌉), cycles = ⌈E·(1 + ⌈log2 k⌉) / lanes⌉, ``nsd_sram_bytes``
= E·accumulator bytes; an example with ≤ k elements keeps everything and costs nothing.

Only the ``sparse`` variant pays, and only on an arch that skips zero gradients (dense baselines
train with plain backprop; the ideal bound counts effectual MACs only). The cost is booked on the
layer's **backward_weight** entry (every layer has one; the first has no backward_data), breakdown
cause and energy category ``nsd``. Traces with method ``dither`` or ``synthetic`` (synthetic δ̃z
stands for NSD output) pay the NSD cost, ``meprop`` the top-k cost, ``none`` nothing.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from hwsim.results.actions import Actions

if TYPE_CHECKING:
    from hwsim.arch import Arch
    from hwsim.trace.schema import LayerGeometry

NSD_METHODS = ("dither", "synthetic")


def layer_cost(elements: int, examples: int, arch: Arch, method: str | None, k: int | None = None
               ) -> tuple[int, Actions]:
    """(cycles, actions) of quantizing one layer's dense δz of ``elements`` over ``examples`` examples."""
    if method is None or elements <= 0 or not arch.zero_skip.gradients:
        return 0, Actions()
    q = arch.quantizer
    lanes = q.lanes_per_pe * arch.num_pes
    vb = arch.pe.accumulator_bits / 8
    if method in NSD_METHODS:
        return 2 * -(-elements // lanes), Actions(nsd_std=elements, nsd_rng=elements, nsd_quantize=elements,
                                                  nsd_sram_bytes=2.0 * elements * vb)
    if method == "meprop":
        if k is None or k < 1:
            raise ValueError(f"method meprop: trace meta key 'k' is {k!r}; allowed: a positive integer")
        per_example = elements // max(1, examples)
        if per_example <= k:
            return 0, Actions()
        comps = elements * (1 + math.ceil(math.log2(k)))
        return -(-comps // lanes), Actions(nsd_compare=comps, nsd_sram_bytes=float(elements) * vb)
    return 0, Actions()


def dense_dz_elements(geometry: LayerGeometry) -> tuple[int, int]:
    """(elements, examples) of a layer's dense δz (its output shape)."""
    n = geometry.N
    size = int(math.prod(geometry.output_shape))
    return size, n
