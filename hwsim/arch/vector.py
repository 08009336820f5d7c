"""The vector / post-processing unit (the ``vector:`` YAML section): elementwise work beside the GEMM array.

Everything a training iteration computes that is not a GEMM runs here: the optimizer's weight update
(:mod:`hwsim.sim.update`) and the non-GEMM operators of forward and backward (activations, normalisation,
softmax, pooling, residual adds). The unit is a set of SIMD lanes; one lane starts one operation per
cycle, and an operation kind of :data:`VECTOR_OPS` takes ``cycles`` lane cycles (1 for add, mul, fma and
compare; more for exp, div and sqrt, which the lane computes iteratively on its multiplier and adder).

Lanes (:attr:`hwsim.arch.Arch.vector_lanes`): ``lanes_per_pe`` in every PE of a Cartesian array (each PE's
post-processing unit, where SCNN applies ReLU and compresses outputs), or in every PE *column* of a systolic
array (the array's edge, where TPU v1's activation unit takes one value per column per cycle).

Precision: the lanes compute in ``compute_bits`` floating point (default fp32: the optimizer updates fp32
master weights in mixed-precision training, Micikevicius et al., ICLR 2018). The pJ and area defaults are
Horowitz's (ISSCC 2014, 45 nm) fp32 figures; the multi-cycle operations are priced as the sequences of
multiplies and adds below:

========  =====================================================================  ======  ======
op        sequence on one lane (fp32)                                             cycles  pJ
========  =====================================================================  ======  ======
add       one add                                                                 1       0.9
mul       one multiply                                                            1       3.7
fma       one multiply + one add                                                  1       4.6
compare   one compare (max, ReLU, clipping) ≈ one add                            1       0.9
exp       x·log2(e) (1 mul), degree-5 polynomial of the fraction (5 fma),          6       26.7
          scale by 2^n (exponent add, free)
div       reciprocal by Newton-Raphson from a table seed, 2 iterations of          5       20.3
          (2 mul + 1 add), then a·(1/b) (1 mul): 5 mul + 2 add
sqrt      reciprocal square root by Newton-Raphson, 2 iterations of                7       27.7
          (3 mul + 1 add), then x·rsqrt(x) (1 mul): 7 mul + 2 add
========  =====================================================================  ======  ======

Cycles of a multi-cycle op = its multiplies (the lane has one multiplier; its adds overlap them).
A lane's area is one fp32 multiplier + one fp32 adder (Horowitz: 7,700 + 4,184 µm²); the seed table of
div/sqrt and control are not counted. The bytes the unit reads and writes go through the global buffer
(``vec_sram_bytes``, priced at its size class). :func:`hwsim.sim.vector.vector_cost` prices a count of
operations; :mod:`hwsim.sim.energy` books it under the energy category ``vector``.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.arch.energy import HOROWITZ_45NM
from hwsim.arch.fields import Validated, spec

VECTOR_OPS: tuple[str, ...] = ("add", "mul", "fma", "compare", "exp", "div", "sqrt")

_ADD, _MUL = HOROWITZ_45NM["fp_add_pj"][32], HOROWITZ_45NM["fp_mult_pj"][32]
ADD_PJ = _ADD
MUL_PJ = _MUL
FMA_PJ = round(_MUL + _ADD, 6)
COMPARE_PJ = _ADD
EXP_PJ = round(_MUL + 5 * (_MUL + _ADD), 6)
DIV_PJ = round(5 * _MUL + 2 * _ADD, 6)
SQRT_PJ = round(7 * _MUL + 2 * _ADD, 6)
# Horowitz, ISSCC 2014, 45 nm: fp32 multiplier 7,700 µm², fp32 adder 4,184 µm².
LANE_UM2 = 7700.0 + 4184.0
# The derived dense baselines' vector unit (``baseline_lanes``): the design's lanes (default) or the baseline's own
# (lanes_per_pe per column). hwsim's reason for the default: non-GEMM work and the weight update run on the vector
# unit in every variant, so a baseline with more lanes (an equal-area 205×205 array has 205 columns against scnn's 64
# PE lanes) would win on Amdahl's share, not on its GEMM engine; the area of the design's lanes stays in its budget.
BASELINE_LANES = ("design", "own")


@dataclass(frozen=True, kw_only=True)
class VectorConfig(Validated):
    """SIMD lanes for elementwise work (module doc)."""

    lanes_per_pe: int = spec(ge=1, default=1, doc="lanes in each PE (Cartesian) or each PE column (systolic); "
                             "one operation per lane per cycle")
    lanes: int = spec(ge=0, default=0, omit_default=True, doc="total lanes of the unit, overriding lanes_per_pe "
                      "(0: lanes_per_pe per PE, or per PE column of a systolic array)")
    baseline_lanes: str = spec(choices=BASELINE_LANES, default="design", omit_default=True,
                               doc="vector unit of the derived dense baselines (dense systolic of equal multipliers, "
                               "of equal area): design = the design's lanes, so design and baseline differ only in "
                               "their GEMM engine; own = lanes_per_pe per column of the baseline's own array")
    compute_bits: int = spec(choices=(16, 32), default=32, doc="float width the lanes compute in (the pJ and area "
                             "defaults are fp32)")
    add_pj: float = spec(ge=0, default=ADD_PJ, doc="one add")
    mul_pj: float = spec(ge=0, default=MUL_PJ, doc="one multiply")
    fma_pj: float = spec(ge=0, default=FMA_PJ, doc="one fused multiply-add")
    compare_pj: float = spec(ge=0, default=COMPARE_PJ, doc="one compare / max")
    exp_pj: float = spec(ge=0, default=EXP_PJ, doc="one exp (1 mul + 5 fma)")
    div_pj: float = spec(ge=0, default=DIV_PJ, doc="one divide (5 mul + 2 add)")
    sqrt_pj: float = spec(ge=0, default=SQRT_PJ, doc="one square root (7 mul + 2 add)")
    exp_cycles: int = spec(ge=1, default=6, doc="lane cycles of one exp (its multiplies)")
    div_cycles: int = spec(ge=1, default=5, doc="lane cycles of one divide")
    sqrt_cycles: int = spec(ge=1, default=7, doc="lane cycles of one square root")
    lane_um2: float = spec(ge=0, default=LANE_UM2, doc="area of one lane (µm², 45 nm)")
    # How non-GEMM work meets the array (hwsim/sim/nongemm.py). hwsim's defaults are the conservative ends, stated
    # because no paper gives them; the sensitivity rows (hwsim.sim.sensitivity) show what each moves.
    fuse_pointwise: bool = spec(default=False, doc="pointwise ops (activations, adds, multiplies, dropout) are applied "
                                "as the GEMM's outputs stream by, with no tensor traffic of their own (norms, "
                                "softmax, pooling keep theirs)")
    overlap_nongemm: bool = spec(default=False, doc="the vector unit works beside the array: a layer-pass's non-GEMM "
                                 "cycles hide behind its array cycles (compute, fragmentation, imbalance, bank "
                                 "conflicts); false = serial after the GEMM (a norm or softmax needs its row first)")

    def op_pj(self, op: str) -> float:
        """pJ of one operation of kind ``op`` (:data:`VECTOR_OPS`)."""
        return getattr(self, f"{op}_pj")

    def op_cycles(self, op: str) -> int:
        """Lane cycles of one operation of kind ``op`` (1 for add, mul, fma, compare)."""
        return getattr(self, f"{op}_cycles", 1)


__all__ = ["BASELINE_LANES", "VECTOR_OPS", "VectorConfig"]
