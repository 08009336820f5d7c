"""Cycles and actions of work on the vector unit (the ``vector:`` YAML section, :mod:`hwsim.arch.vector`).

:func:`vector_cost` turns a count of elementwise operations by kind (:data:`hwsim.arch.VECTOR_OPS`: add, mul,
fma, compare, exp, div, sqrt) into the unit's cycles and the action counts the energy model prices
(``vec_<op>``, ``vec_sram_bytes``; energy category ``vector``, :mod:`hwsim.sim.energy`):

    cycles = ⌈Σ_op count(op) · vector.<op>_cycles / lanes⌉,   lanes = :attr:`hwsim.arch.Arch.vector_lanes`

— the lanes are fully pipelined and every lane takes any operation, so only the total of lane cycles
matters (elementwise work has no dependencies across elements). A count of zero operations costs zero
cycles. Users: the weight update (:mod:`hwsim.sim.update`) and the non-GEMM operators.

>>> from hwsim.arch import load_arch
>>> cycles, acts = vector_cost({"fma": 128, "sqrt": 64}, load_arch("scnn"))  # 64 lanes: 2 + 7 cycles
>>> cycles, acts["vec_fma"], acts["vec_sqrt"]
(9, 128.0, 64.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from hwsim.arch.vector import VECTOR_OPS
from hwsim.results.actions import Actions

if TYPE_CHECKING:
    from hwsim.arch import Arch

__all__ = ["vector_cost"]


def vector_cost(op_counts: Mapping[str, int], arch: Arch, *, sram_bytes: float = 0.0) -> tuple[int, Actions]:
    """(cycles, actions) of ``op_counts`` (``{op kind: operations}``) on ``arch``'s vector unit (module doc).

    ``sram_bytes``: the bytes the unit reads and writes in the global buffer for them (``vec_sram_bytes``).
    An unknown kind or a negative count is a ``ValueError`` naming it and what is allowed.
    """
    unknown = sorted(str(k) for k in op_counts if k not in VECTOR_OPS)
    if unknown:
        raise ValueError(f"vector ops {unknown} are not known; allowed: {', '.join(VECTOR_OPS)}")
    bad = {k: v for k, v in op_counts.items() if not v >= 0}
    if bad or not sram_bytes >= 0:
        raise ValueError(f"vector op counts {bad or {'sram_bytes': sram_bytes}} are not allowed; allowed: counts >= 0")
    v = arch.vector
    lane_cycles = sum(int(n) * v.op_cycles(op) for op, n in op_counts.items())
    cycles = -(-lane_cycles // arch.vector_lanes)
    acts = Actions.from_mapping({f"vec_{op}": float(n) for op, n in op_counts.items()})
    if sram_bytes:
        acts = acts + Actions(vec_sram_bytes=sram_bytes)
    return int(cycles), acts
