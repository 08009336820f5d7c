"""SCNN's output-halo exchange: cycles and actions of forward and backward-data on a planar-tiled Cartesian array.

With planar tiling (input-stationary), a PE's streamed tile contributes partial sums to output positions
beyond the outputs it owns: the *output halo* (a 3×3 stride-1 convolution reaches one row and column past
each edge of the tile). SCNN (Parashar et al., ISCA 2017, §IV) accumulates the halo locally and, at the end
of each output-channel group, sends those partial sums to the neighbouring PEs that own the outputs, which
add them. ``reduction.halo_exchange`` (default true) charges that exchange; false makes it free, as hwsim
was before issue 18.

Per axis (rows, then columns alike) of the streamed plane split into tiles by ``split_edges``:
``count[t, o]`` = streamed positions of tile t whose products land on output position o (forward: input row
h feeds p where p·stride = h + pad − r·dil; backward-data: δz row p feeds h = p·stride + r·dil − pad).
Output o is owned by the tile that contributes most to it (ties: the lower tile) — for a stride-1 "same"
convolution, the PE whose own tile holds o. Per tile t: ``F_t`` outputs it contributes to, ``FO_t`` of them
owned by t, ``R_t`` = Σ over outputs owned by t of the tiles contributing to them. Contribution and
ownership are products of the row and column ones, so PE (i, j) per output channel and image

    sends    F_i·F_j − FO_i·FO_j       (partial sums of outputs it does not own)
    receives R_i·R_j − FO_i·FO_j       (partial sums of its own outputs computed elsewhere)

and Σ sends = Σ receives = the values exchanged (each one moved over a PE-to-PE link and added at the
owner). A group of Kc_g output channels on a PE that worked on ``n`` images exchanges Kc_g·n·max(sends,
receives) values at ``rate = min(reduction.adders_per_pe, reduction.link_bytes_per_cycle / value bytes)``
values per cycle (the halo uses the PE-to-PE links and adders of the δW reduction, :mod:`hwsim.sim.reduction`);
values are ``pe.accumulator_bits`` wide. Groups and image shares are laid over the PEs and barrier intervals
exactly as the multiplier work is (:func:`hwsim.sim.tiling._intervals`); an interval's exchange takes its
busiest PE and, like the δW reduction, is not overlapped with the next interval (the accumulator entries it
drains are the ones the next group fills, Kc being sized to them): the pass gains Σ_interval cycles, booked
as breakdown cause ``reduction`` (cross-PE reduction of partial sums). Actions, energy category
``reduction``: ``red_add`` one add per value, ``red_acc`` two accumulator accesses per value (the sender's
read, the owner's read-modify-write), ``red_link_bytes`` value bytes over the links.

Halos depend on shapes only (the whole halo region is exchanged, zeros included), so the sparse variant and
its same-silicon dense baselines pay the same. 1×1 kernels of stride 1 (every ``linear`` / ``matmul``) have
none; a plane on one PE has none.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import numpy as np

from hwsim.results.actions import Actions
from hwsim.sim import work
from hwsim.sim.tiling import _intervals

if TYPE_CHECKING:
    from hwsim.arch import Arch


def axis_contributions(edges: np.ndarray, n_out: int, *, kernel: int, stride: int, pad: int, dilation: int,
                       mode: str) -> np.ndarray:
    """``count[t, o]``: streamed positions of tile t (``[edges[t], edges[t+1])``) landing on output o, int64."""
    pos = np.arange(int(edges[-1]), dtype=np.int64)[:, None]
    taps = np.arange(kernel, dtype=np.int64)[None, :] * dilation
    if mode == "down":                       # forward: p = (h + pad − r·dil) / stride, when it divides
        num = pos + pad - taps
        ok = (num >= 0) & (num % stride == 0)
        out = num // stride
    else:                                    # backward-data (transposed): h = p·stride + r·dil − pad
        out = pos * stride + taps - pad
        ok = out >= 0
    ok &= out < n_out
    tile = np.repeat(np.arange(edges.size - 1, dtype=np.int64), np.diff(edges))[:, None]
    idx = np.broadcast_to(tile, out.shape)[ok] * n_out + out[ok]
    return np.bincount(idx, minlength=(edges.size - 1) * n_out).reshape(edges.size - 1, n_out)


def axis_terms(count: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(F, FO, R) per tile of one axis (module doc) from ``count`` (tiles × outputs)."""
    hit = count > 0
    owner = np.argmax(count, axis=0)                         # first maximum: the lower tile on ties
    own = owner[None, :] == np.arange(count.shape[0])[:, None]   # an output no tile reaches adds 0 to R
    f = hit.sum(axis=1)
    fo = (hit & own).sum(axis=1)
    r = (own * hit.sum(axis=0)[None, :]).sum(axis=1)
    return f.astype(np.int64), fo.astype(np.int64), r.astype(np.int64)


def tile_exchange(conv: work.ScatterConv, tr: int, tc: int, out_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(sends, receives) per PE tile (row-major, ``tr·tc``) per output channel and image (module doc): geometry
    only (no mask), so computed once per layer shape and tiling (read-only arrays, shared by every call)."""
    return _exchange(tuple(conv.x.shape[2:]), tuple(conv.w.shape[2:]), tuple(conv.stride), tuple(conv.padding),
                     tuple(conv.dilation), conv.mode, tr, tc, tuple(out_hw))


@functools.lru_cache(maxsize=256)
def _exchange(in_hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
              dilation: tuple[int, int], mode: str, tr: int, tc: int,
              out_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    per_axis = []
    for ax, parts in ((0, tr), (1, tc)):
        count = axis_contributions(work.split_edges(in_hw[ax], parts), out_hw[ax], kernel=kernel[ax], stride=stride[ax],
                                   pad=padding[ax], dilation=dilation[ax], mode=mode)
        per_axis.append(axis_terms(count))
    (fr, for_, rr), (fc, foc, rc) = per_axis
    own = np.outer(for_, foc)
    sends, receives = (np.outer(fr, fc) - own).reshape(-1), (np.outer(rr, rc) - own).reshape(-1)
    sends.flags.writeable = receives.flags.writeable = False
    return sends, receives


def cost(conv: work.ScatterConv, tiling: tuple[int, int, int], kc: int, out_hw: tuple[int, int],
         arch: Arch) -> tuple[int, Actions]:
    """(cycles, actions) of the halo exchange of one forward / backward-data GEMM (module doc).

    ``tiling``: the GEMM's (tile rows, tile cols, clusters) (:func:`hwsim.sim.tiling.tile_grid`); ``kc``: its
    output-channel group; ``out_hw``: the output plane (forward: P × Q; backward-data: H × W).
    """
    tr, tc, clusters = tiling
    if not arch.reduction.halo_exchange or tr * tc == 1:
        return 0, Actions()
    sends, receives = tile_exchange(conv, tr, tc, out_hw)
    if not sends.any():
        return 0, Actions()
    n, o = conv.x.shape[0], conv.w.shape[0]
    k_in_group = np.minimum(kc, o - np.arange(-(-o // kc)) * kc).astype(np.int64)       # (G,)
    per = np.maximum(sends, receives)
    per_g_n_t = np.broadcast_to(k_in_group[:, None, None] * per[None, None, :], (k_in_group.size, n, per.size))
    values = _intervals(np.ascontiguousarray(per_g_n_t), clusters, arch.num_pes)          # (intervals, PEs)
    vb = arch.pe.accumulator_bits / 8
    cfg = arch.reduction
    rate = float(cfg.adders_per_pe)
    if not math.isinf(cfg.link_bytes_per_cycle):
        rate = min(rate, cfg.link_bytes_per_cycle / vb)
    cycles = int(np.ceil(values.max(axis=1) / rate - 1e-9).sum())
    moved = float(int(sends.sum()) * int(k_in_group.sum()) * n)
    return cycles, Actions(red_add=moved, red_acc=2 * moved, red_link_bytes=moved * vb, red_sram_bytes=0.0)
