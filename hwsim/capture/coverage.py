"""Which GEMM-like ops of a training iteration capture saw, and what fraction of the MACs it recorded.

Every GEMM a captured model's training forward issues is noted once per name (its first call):
its MACs and which of the three GEMMs of training exist (forward always; backward-data when its
input needs a gradient; backward-weight when its second operand does). A GEMM is *captured* when
capture recorded it (and quantized its δz where the method says so); *missed* otherwise, with why.
``meta()`` is the trace meta's ``coverage`` entry (a contract; see traces/FORMAT.md)::

    {"forward": f, "backward_data": f, "backward_weight": f,   # captured MACs / all GEMM MACs, per pass
     "captured_macs": int, "total_macs": int,                   # summed over the three passes
     "missed": [{"op": str, "module": str, "macs": int, "why": str}, ...]}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hwsim.trace.schema import coverage_line as describe  # noqa: F401 - re-exported

PASSES = ("forward", "backward_data", "backward_weight")


@dataclass
class _Op:
    op: str
    module: str
    macs: int
    passes: tuple[bool, bool, bool]
    captured: bool
    why: str = ""


class Coverage:
    """Accumulates GEMM-like ops by name; :meth:`meta` summarizes them."""

    def __init__(self) -> None:
        self.ops: dict[str, _Op] = {}
        self.version = 0  # bumped by every change (a new op, :meth:`touch`): capture re-reports only then

    def touch(self) -> None:
        """Say that an op's ``passes``, ``captured`` or ``why`` was changed in place (the report is rebuilt)."""
        self.version += 1

    def seen(self, name: str, *, op: str, module: str, macs: int, a_grad: bool = True, b_grad: bool = True,
             captured: bool = True, why: str = "") -> bool:
        """Note one op (first call of ``name`` wins); True if it is new."""
        if name in self.ops:
            return False
        self.version += 1
        self.ops[name] = _Op(op=op, module=module, macs=int(macs), passes=(True, bool(a_grad), bool(b_grad)),
                             captured=captured, why=why)
        return True

    def miss(self, key: str, *, op: str, module: str, macs: int, why: str, backward: bool = False) -> bool:
        """Note an op capture did not take (``backward``: its backward GEMMs would run too)."""
        return self.seen(f"missed:{key}", op=op, module=module, macs=macs, a_grad=backward, b_grad=backward,
                         captured=False, why=why)

    def meta(self) -> dict[str, Any]:
        tot = [0, 0, 0]
        cap = [0, 0, 0]
        for o in self.ops.values():
            for i, has in enumerate(o.passes):
                if has:
                    tot[i] += o.macs
                    if o.captured:
                        cap[i] += o.macs
        frac = {p: (cap[i] / tot[i] if tot[i] else 1.0) for i, p in enumerate(PASSES)}
        missed = [{"op": o.op, "module": o.module, "macs": o.macs, "why": o.why}
                  for o in self.ops.values() if not o.captured]
        return {**frac, "captured_macs": sum(cap), "total_macs": sum(tot), "missed": missed}

    @property
    def complete(self) -> bool:
        return all(o.captured for o in self.ops.values())
