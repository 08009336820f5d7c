"""The weight update (the ``update:`` YAML section): precisions and placement of weights and optimizer state.

Every training iteration ends with the optimizer step: it reads δW (written by backward-weight at
``pe.accumulator_bits``), the master weights W and the optimizer state, and writes W and the state back, plus
the ``pe.mac_bits`` copy of W the GEMMs stream. Its arithmetic runs on the vector unit (``vector:``,
:mod:`hwsim.arch.vector`); its traffic, per parameter, is what bounds it on most designs. The cost model is
:mod:`hwsim.sim.update`; this section says at which widths W and the state are kept, whether they stay on chip,
and which optimizer to assume when a trace does not name one.

Optimizers (:data:`OPTIMIZERS`, states per parameter): ``sgd`` (0), ``sgd_momentum`` (1: the momentum buffer),
``adam`` and ``adamw`` (2: first and second moments).
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.arch.fields import Validated, spec

OPTIMIZERS: tuple[str, ...] = ("sgd", "sgd_momentum", "adam", "adamw")
OPTIMIZER_STATES: dict[str, int] = {"sgd": 0, "sgd_momentum": 1, "adam": 2, "adamw": 2}


@dataclass(frozen=True, kw_only=True)
class UpdateConfig(Validated):
    """Widths and placement of the weight update's tensors (module doc)."""

    master_weight_bits: int = spec(choices=(16, 32), default=32,
                                   doc="master weights: fp32 (mixed-precision training keeps an fp32 master copy, "
                                       "Micikevicius et al., ICLR 2018) | 16 = bf16 weights, no master copy")
    state_bits: int = spec(choices=(16, 32), default=32,
                           doc="optimizer state: fp32 (torch.optim keeps it in the parameters' dtype) | 16 = bf16")
    on_chip: bool = spec(default=False,
                         doc="keep W and the state on chip between iterations when the whole model's fit the "
                             "residency capacity (hwsim.sim.residency.capacity_bytes); false = in DRAM")
    default_optimizer: str = spec(choices=OPTIMIZERS, default="sgd_momentum",
                                  doc="optimizer assumed when the trace's meta names none")


__all__ = ["OPTIMIZERS", "OPTIMIZER_STATES", "UpdateConfig"]
