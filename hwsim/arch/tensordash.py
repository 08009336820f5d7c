"""The TensorDash-style operand scheduler of a dense output-stationary array (the ``tensordash:`` YAML section).

TensorDash (Mahmoud et al., "TensorDash: Exploiting Sparsity to Accelerate Deep Neural Network Training",
MICRO 2020) keeps a dense array of dot-product PEs and adds, per multiplier lane, a small staging window over
one operand stream and a scheduler that, each cycle, gives the lane a non-zero from up to ``lookahead`` steps
ahead in its own lane or from ``lookaside`` neighbouring lanes; the other operand is picked by a matching
(lookahead + 1 + lookaside)-input multiplexer. TensorDash uses lookahead 2 and lookaside 5: an 8-input mux.

In hwsim the scheduler is switched on by ``zero_skip`` on a ``systolic_os`` array (the reduction dimension
runs along time there, so moving a product to an earlier step or a neighbouring lane keeps it in the same
dot product); ``pe.mult_i`` is the dot-product lanes per PE (``mult_f`` stays 1). Which operand is scheduled
per pass: forward the activations a (``zero_skip.activations``), backward-data δ̃z (``zero_skip.gradients``),
backward-weight ``backward_weight_operand`` among the roles skipped. The dense baseline (``dense_variant``)
is the same array with ``zero_skip`` off: no scheduler, no mux or staging area. Cycle model:
:mod:`hwsim.sim.tensordash`; area: :mod:`hwsim.arch.silicon` (``td_mux``, ``td_staging``).
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.arch.fields import Validated, spec

# TensorDash's published design point (MICRO 2020, §III): lookahead 2, lookaside 5 → 8-input multiplexers.
LOOKAHEAD = 2
LOOKASIDE = 5
BACKWARD_WEIGHT_OPERANDS = ("auto", "dz", "a")
# Energy of one scheduled product beyond the dense array's: the staging-register read and the traversal of the
# two (lookahead + 1 + lookaside)-input operand muxes — priced like one operand-register read (Horowitz-scale
# register_pj = 0.1 pJ; hwsim estimate, the paper gives no per-product figure).
MUX_PJ_PER_PRODUCT = 0.1


@dataclass(frozen=True, kw_only=True)
class TensorDashConfig(Validated):
    """Scheduler depths and the operand it schedules in backward-weight (module doc)."""

    lookahead: int = spec(ge=0, le=16, default=LOOKAHEAD,
                          doc="steps ahead in its own lane a multiplier may take a non-zero from (staging depth)")
    lookaside: int = spec(ge=0, le=15, default=LOOKASIDE,
                          doc="neighbouring lanes a multiplier may take a non-zero from (one step ahead)")
    backward_weight_operand: str = spec(choices=BACKWARD_WEIGHT_OPERANDS, default="auto",
                                        doc="operand scheduled in backward-weight: auto = the sparser of δ̃z and "
                                            "a on each layer's masks (among the zero_skip roles) | dz | a")
    mux_pj_per_product: float = spec(ge=0, default=MUX_PJ_PER_PRODUCT,
                                     doc="staging read + operand mux energy per scheduled product (pJ)")

    @property
    def mux_inputs(self) -> int:
        """Inputs of each multiplier's operand mux: own lane at lookahead + 1 steps, plus the lookaside lanes."""
        return self.lookahead + 1 + self.lookaside


__all__ = ["BACKWARD_WEIGHT_OPERANDS", "LOOKAHEAD", "LOOKASIDE", "MUX_PJ_PER_PRODUCT", "TensorDashConfig"]
