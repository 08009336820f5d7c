"""One layer's trace sample → the simulator's :class:`~hwsim.sim.operands.Operands` (real masks, 4-D).

:func:`layer_operands` builds them; :func:`check` refuses a sample whose forward operands are wider than the
arch's MACs (:class:`TraceArchMismatch`). Used by the replay (:mod:`hwsim.sim.replay`) and its per-layer survey
(:mod:`hwsim.sim.survey`).
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

import numpy as np

from hwsim.sim.operands import Operands
from hwsim.sim.segments import transposed
from hwsim.trace.schema import bit_width

if TYPE_CHECKING:
    from hwsim.arch import Arch
    from hwsim.trace.schema import LayerSample


class TraceArchMismatch(ValueError):
    """The trace cannot run on this architecture; the message says which layer and field."""


def layer_operands(sample: LayerSample, *, seed: int, out_density: float, where: str,
                   memo: dict | None = None) -> Operands:
    """Real masks of one :class:`~hwsim.trace.format.LayerSample`, 4-D, a grouped layer's weights compact
    ((K, C/groups, R, S): :attr:`~hwsim.sim.operands.Operands.compact`; the passes read them block by block);
    ``memo``: statistics already counted for this layer (:func:`hwsim.sim.operands.released`), shared."""
    g = sample.geometry
    wshape = g.weight_shape if g.kind == "conv2d" else (g.K, g.C, 1, 1)
    if sample.w_mask is not None:
        w = np.asarray(sample.w_mask, dtype=bool).reshape(wshape)
    elif sample.w_density >= 1.0:  # dense weights: what the seeded draw below would give (random() < 1 always)
        w = np.ones(wshape, dtype=bool)
    else:  # no stored mask: a seeded i.i.d. mask at the recorded density
        rng = np.random.default_rng([seed, zlib.crc32(g.name.encode()), 11])
        w = rng.random(wshape) < sample.w_density
    a = np.asarray(sample.a_mask, dtype=bool).reshape(g.N, g.C, g.H, g.W)
    levels = np.asarray(sample.dz_levels).reshape(g.N, g.K, g.P, g.Q)
    if g.kind == "linear":
        # A Linear layer's GEMM has no plane; its batch is the natural one. Fold N into the width
        # (a 1×N "image", 1×1 kernel) so PEs tile the batch and the I activation slots of a PE
        # hold different examples instead of one value each. The GEMM and its effectual MACs are
        # unchanged: out[k, n] = Σ_c w[k, c]·a[c, n].
        a = _batch_as_width(a)
        levels = _batch_as_width(levels)
    return Operands(
        name=g.name, w=w, w_struct=np.ones(wshape, bool), groups=g.groups,
        a=a, dz=levels != 0, dz_bits=_max_bits(levels), dz_levels=levels,
        stride=tuple(g.stride), padding=tuple(g.padding), dilation=tuple(g.dilation), out_density=out_density,
        **({} if memo is None else {"memo": memo}))


def _max_bits(levels: np.ndarray) -> int:
    """``LayerSample.max_bits`` (sign + magnitude bits of the widest level) without an ``abs`` copy."""
    if levels.size == 0:
        return 0
    return bit_width(max(int(levels.max()), -int(levels.min())))


def _batch_as_width(x: np.ndarray) -> np.ndarray:
    """(N, C, 1, 1) → (1, C, 1, N): the batch of a Linear layer as the width of one image."""
    n, c = x.shape[:2]
    return transposed(x.reshape(n, c)).reshape(1, c, 1, n)


def check(sample: LayerSample, arch: Arch, where: str) -> None:
    """Refuse ``sample`` if its quantized forward operands are wider than ``arch``'s MACs (message names the field)."""
    mb = arch.pe.mac_bits
    for f in ("w_bits", "a_bits"):
        bits = getattr(sample, f)
        if bits < 32 and bits > mb:  # quantized forward operands must fit the MAC; floats are quantized to it
            raise TraceArchMismatch(f"{where}: layer {sample.geometry.name!r}: {f}={bits} is wider than the arch's "
                                    f"pe.mac_bits={mb} ({arch.source}); allowed: {f} <= {mb} (only δ̃z levels "
                                    f"are split into extra MAC passes); a {bits}-bit capture (e.g. bf16/fp16 "
                                    f"training) needs an arch with pe.mac_bits >= {bits}: --set pe.mac_bits={bits}")


