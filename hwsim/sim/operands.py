"""The operands of one layer as the simulator sees them (real masks, levels, geometry) and their sizes.

At the bottom of :mod:`hwsim.sim`: the passes (:mod:`hwsim.sim.passes`), the capacity and precision models and
residency all take an :class:`Operands`; it imports nothing from the simulator but ``traffic`` (byte counts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hwsim.sim import traffic


@dataclass(frozen=True, kw_only=True)
class Operands:
    """Real masks of one layer (4-D even for Linear layers) and what the passes need besides."""

    name: str
    w: np.ndarray           # bool (K, C, R, S); a grouped layer's compact (K, C/groups, R, S) or expanded (K, C, R, S)
    w_struct: np.ndarray    # bool, the connectivity (ones inside the groups), in ``w``'s form
    a: np.ndarray           # bool (N, C, H, W)
    dz: np.ndarray          # bool (N, K, P, Q)
    dz_bits: int
    groups: int
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    out_density: float      # density of the forward output as stored (next layer's input), 1 if unknown
    dz_levels: np.ndarray | None = None  # int (N, K, P, Q) levels k of δ̃z (pe.mac bit_serial / bit_fusion)
    memo: dict = field(default_factory=dict, compare=False, repr=False)  # per-layer cache of mask statistics

    @property
    def kernel(self) -> tuple[int, int]:
        return self.w.shape[2], self.w.shape[3]

    @property
    def compact(self) -> bool:
        """Are a grouped layer's weights compact, (K, C/groups, R, S) (:func:`hwsim.sim.work.is_compact`)?"""
        return self.groups > 1 and self.w.shape[1] != self.a.shape[1] and self.w.shape[1] * self.groups == \
            self.a.shape[1]

    @property
    def weight_count(self) -> int:
        """Weights of the layer: ``w_struct.sum()`` (a grouped layer's block-diagonal connectivity from its shape)."""
        if self.groups > 1:
            return self.w_struct.size // (1 if self.compact else self.groups)
        if ("weight_count",) not in self.memo:
            self.memo[("weight_count",)] = int(self.w_struct.sum())
        return self.memo[("weight_count",)]


def real_weights(ops: Operands) -> np.ndarray:
    """The weight mask within its connectivity, flat (``ops.w[ops.w_struct]``, in that order): a grouped
    layer's compact weights as they are, an expansion's diagonal blocks read directly."""
    g = ops.groups
    k, c, r, s = ops.w.shape
    if ops.compact:  # the blocks themselves, in the same (group, K/g, C/g, R, S) order
        return ops.w.reshape(-1)
    if g <= 1:
        return ops.w[ops.w_struct]
    idx = np.arange(g)
    return ops.w.reshape(g, k // g, g, c // g, r, s)[idx, :, idx].reshape(-1)


def released(ops: Operands) -> Operands:
    """``ops`` with its masks and levels replaced by zero-cost broadcast views of their shapes, sharing ``memo``.

    For statistics already counted into the memo (:func:`hwsim.sim.residency.warm`): the layer's arrays can be
    freed while the iteration's residency plan still sees every layer. The views read as all-zero masks,
    so a statistic that was *not* counted first would come out wrong, not crash: count first.
    """
    def stub(x: np.ndarray | None) -> np.ndarray | None:
        return None if x is None else np.broadcast_to(np.zeros((), dtype=x.dtype), x.shape)

    return Operands(name=ops.name, w=stub(ops.w), w_struct=stub(ops.w_struct), a=stub(ops.a), dz=stub(ops.dz),
                    dz_bits=ops.dz_bits, groups=ops.groups, stride=ops.stride, padding=ops.padding,
                    dilation=ops.dilation, out_density=ops.out_density, dz_levels=stub(ops.dz_levels), memo=ops.memo)


def operand_passes(pass_name: str, dz_bits: int, mac_bits: int) -> int:
    """MAC passes a GEMM needs: ⌈δ̃z bits / mac_bits⌉ for the backward passes, else 1."""
    if pass_name == "forward" or dz_bits <= mac_bits:
        return 1
    return math.ceil(dz_bits / mac_bits)


def role_density(ops: Operands, role: str) -> float:
    """Density of a role's real mask (``w`` within its connectivity), counted once per layer."""
    key = ("nnz", role)
    if key not in ops.memo:
        stats = next((v for k, v in ops.memo.items() if k[0] == "stats" and k[1] == role), None)
        if stats is None:
            m = {"w": lambda: real_weights(ops), "a": lambda: ops.a, "dz": lambda: ops.dz}[role]()
            stats = (int(np.count_nonzero(m)), int(m.size))
        ops.memo[key] = stats[:2]
    nnz, size = ops.memo[key]
    return nnz / size if size else float("nan")  # == mask.mean() exactly (an exact count, one rounding)


def mask_bytes(ops: Operands, role: str, *, value_bits: int, compression: str, rl_bits: int) -> float:
    """Compressed bytes of a role's real mask, with the mask statistics cached per layer."""
    key = ("stats", role, rl_bits if compression == "run_length" else 0)
    if key not in ops.memo:
        m = {"w": lambda: real_weights(ops), "a": lambda: ops.a, "dz": lambda: ops.dz}[role]()
        fill = traffic.run_length_fillers(m, rl_bits) if compression == "run_length" else 0
        nnz = ops.memo[("nnz", role)] if ("nnz", role) in ops.memo else (int(np.count_nonzero(m)), int(m.size))
        ops.memo[key] = (*nnz, fill)
    nnz, size, fill = ops.memo[key]
    return traffic.tensor_bytes(nnz=nnz, size=size, value_bits=value_bits, compression=compression,
                                rl_bits=rl_bits, fillers=fill)


__all__ = ["Operands", "mask_bytes", "operand_passes", "real_weights", "released", "role_density"]
