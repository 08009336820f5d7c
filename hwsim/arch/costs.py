"""Training-only units of the architecture: the δW reduction network and the δz quantizer (NSD unit).

Both are optional top-level YAML sections (``reduction:``, ``quantizer:``) whose defaults are stated
here with their source or reason; the shipped configs write them out with the same comments. The
cycle and energy models that use them are :mod:`hwsim.sim.reduction` and :mod:`hwsim.sim.nsd_unit`.

Reduction (backward-weight): every PE of a group holds a different spatial tile of the same δW
block (Kc output channels × C_chunk·R·S), so the PEs' partial sums must be added across PEs before
the δW write-back. ``network`` picks how:

* ``ring`` — reduce-scatter over a ring of the group's P PEs: P − 1 steps, each moving and adding
  ⌈block / P⌉ values per PE (bandwidth-optimal; the reduced δW ends up spread over the PEs, which
  write it back);
* ``tree`` — pairwise tree: ⌈log2 P⌉ levels, each moving and adding the whole block;
* ``accumulate_in_place`` — every PE adds its block into one δW copy in the global buffer
  (read-modify-write through the global buffer port of ``global_bytes_per_cycle``).

A step moves ``min(adders_per_pe, link_bytes_per_cycle / value bytes)`` values per cycle per PE;
values are accumulator-width (``pe.accumulator_bits``).
The same links and adders carry SCNN's output-halo exchange in forward and backward-data
(``halo_exchange``, :mod:`hwsim.sim.halo`): partial sums a PE computed for outputs its neighbours own.

Quantizer (issue 18 item 4): the NSD unit as a design space. ``sigma`` — ``current`` quantizes with
σ of this iteration's δz (seed paper Algorithm 1: a std pass, then a quantize pass), ``delayed`` with
σ of the previous iteration's δz of the same layer (one pass; the std of this δz is accumulated during
that pass for the next iteration) — the precedent is FP8 training's delayed scaling with an amax
history (Micikevicius et al. 2022, "FP8 formats for deep learning"; NVIDIA Transformer Engine); it
changes the algorithm, and traces are captured with the current σ, so its accuracy effect is not
measured here. ``overlap`` — ``producer`` lets the NSD unit stream behind the backward-data GEMM of
the layer above (which produces δa, to which the post-processing unit applies the activation
derivative) — and, for a layer whose output feeds attention's products (GPT-2's c_attn), behind the
products' backward-weight too, which produce its δK and δV parts; ``none`` runs it after those GEMMs. ``booked_on`` — where the exposed NSD cycles are
booked. ``skip_zeros`` — exact zeros of δz stay zero under NSD (⌊0/Δ + u⌋ = 0 for u ∈ [0, 1)), so
they need no RNG or quantize work. ``check_capacity`` — the dense δz, held at accumulator width
until quantized, must fit the PE output RAMs, else the excess is spilled to DRAM. The cycle model is
:mod:`hwsim.sim.nsd_unit`.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.arch.energy import HOROWITZ_45NM
from hwsim.arch.fields import Validated, spec

REDUCTION_NETWORKS = ("ring", "tree", "accumulate_in_place")
RNG_KINDS = ("lcg", "lfsr")
SIGMA_MODES = ("current", "delayed")
OVERLAP_MODES = ("none", "producer")
BOOKINGS = ("first_consumer", "backward_weight")

_H = HOROWITZ_45NM
# Seed paper §3.4 (Algorithm 1), per dense δz element, priced with Horowitz 45 nm fp16 / int16 figures:
#   std reduction: 1 mul + 1 add (square and accumulate, fp16)          = 1.1 + 0.4          = 1.5 pJ
#   uniform dither: ~2 mul + 2 add + modulo (LCG on rng_bits integers;
#     a power-of-two modulus is a truncation, free)                     = 2·0.8 + 2·0.05     = 1.7 pJ
#   quantize: 1 add + 1 mul + truncation (x + ν, then · 1/Δ, fp16)      = 0.4 + 1.1          = 1.5 pJ
STD_PJ = round(_H["fp_mult_pj"][16] + _H["fp_add_pj"][16], 6)
RNG_PJ = round(2 * _H["mult_pj"][16] + 2 * _H["add_pj"][16], 6)
QUANTIZE_PJ = round(_H["fp_add_pj"][16] + _H["fp_mult_pj"][16], 6)
COMPARE_PJ = _H["fp_add_pj"][16]   # meProp top-k: one fp16 magnitude comparison ~ one fp16 add


@dataclass(frozen=True, kw_only=True)
class ReductionConfig(Validated):
    """Cross-PE reduction of backward-weight partial sums (module doc)."""

    network: str = spec(choices=REDUCTION_NETWORKS, default="ring",
                        doc="ring reduce-scatter | pairwise tree | accumulate_in_place in the global buffer")
    adders_per_pe: int = spec(ge=1, default=16, doc="adds per cycle per PE during the reduction (the PE's "
                              "F·I accumulation adders, idle while the multipliers wait)")
    link_bytes_per_cycle: float = spec(gt=0, allow_inf=True, default=16.0,
                                       doc="PE-to-PE link width (.inf = free data movement)")
    global_bytes_per_cycle: float = spec(gt=0, allow_inf=True, default=64.0,
                                         doc="global-buffer read-modify-write port (accumulate_in_place)")
    link_pj_per_byte: float = spec(ge=0, default=0.8, doc="moving one byte one PE-to-PE hop")
    # Issue 18 item 5 (hwsim/sim/halo.py): SCNN (Parashar et al., ISCA 2017, §IV) exchanges the output halos of
    # planar tiles between neighbouring PEs after each output-channel group, over these links and adders.
    halo_exchange: bool = spec(default=True, doc="forward / backward-data: PEs send their output-halo partial "
                               "sums to the neighbours owning those outputs after each output-channel group "
                               "(SCNN §IV); false = free, as before issue 18")


@dataclass(frozen=True, kw_only=True)
class QuantizerConfig(Validated):
    """The NSD unit: std reduction, dither RNG and quantization of dense δz (seed paper Algorithm 1)."""

    lanes_per_pe: int = spec(ge=1, default=1, doc="δz elements per cycle per PE (one lane in each PE's "
                             "post-processing unit)")
    rng: str = spec(choices=RNG_KINDS, default="lcg", doc="dither source: linear congruential | LFSR")
    rng_bits: int = spec(ge=1, le=64, default=16, doc="bits of one uniform dither sample")
    std_pj_per_element: float = spec(ge=0, default=STD_PJ, doc="std reduction: 1 mul + 1 add (fp16)")
    rng_pj_per_element: float = spec(ge=0, default=RNG_PJ, doc="one dither sample: 2 mul + 2 add (+ free "
                                     "power-of-two modulo) at rng_bits")
    quantize_pj_per_element: float = spec(ge=0, default=QUANTIZE_PJ, doc="x + ν, · 1/Δ, truncate (fp16)")
    compare_pj: float = spec(ge=0, default=COMPARE_PJ, doc="meProp top-k: one magnitude comparison")
    # Designer defaults (issue 18): the seed paper's algorithm unchanged (σ current), with the hardware freedoms
    # that do not change it — stream behind the producer, skip exact zeros, book where δ̃z is first needed,
    # and check (not assume) that the dense δz fits. sigma=current, overlap=none, booked_on=backward_weight,
    # skip_zeros=false, check_capacity=false is the pre-issue-18 model.
    sigma: str = spec(choices=SIGMA_MODES, default="current",
                      doc="σ of this iteration's δz (std pass + quantize pass, seed paper Algorithm 1) | "
                      "σ of the previous iteration (one pass; FP8 delayed scaling, Micikevicius et al. 2022)")
    overlap: str = spec(choices=OVERLAP_MODES, default="producer",
                        doc="none | producer: the first NSD pass streams behind the GEMMs producing δz (the "
                        "backward-data of the layer above; attention products' backward-weight for δK / δV); "
                        "only what is left when the last of them ends is exposed")
    booked_on: str = spec(choices=BOOKINGS, default="first_consumer",
                          doc="first_consumer: the layer's backward-data (else backward-weight), which needs "
                          "δ̃z first | backward_weight (pre-issue-18)")
    skip_zeros: bool = spec(default=True, doc="exact zeros of δz (known from the ReLU mask) cost no std/RNG/"
                            "quantize work: they stay zero under NSD")
    check_capacity: bool = spec(default=True, doc="the dense δz (accumulator width) must fit pe.output_buffer_bytes "
                                "per PE; the excess is spilled to DRAM (false: assumed to fit)")
