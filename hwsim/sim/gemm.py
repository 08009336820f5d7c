"""Mapping the three GEMMs of a layer onto the Cartesian (SCNN-like) PE array.

=================  =====================  ======================  =====================
pass               broadcast operand (F)  streamed operand (I)    output
=================  =====================  ======================  =====================
forward            W (weights)            a (activations)         z      (conv)
backward_data      Wᵀ (weights)           δ̃z (gradients)          δa     (transposed conv = col2im)
backward_weight    δ̃z of one pixel        a in its receptive field δW    (outer product per pixel)
=================  =====================  ======================  =====================

Forward and backward-data are a :class:`~hwsim.sim.work.ScatterConv`: the streamed operand is
planar-tiled over the PEs (input-stationary), the broadcast one is processed in groups of Kc
output channels; a group is one barrier interval. Backward-weight has no useful Cartesian
product across pixels (a product of δ̃z at one pixel with an activation outside its receptive
field lands nowhere), so each PE takes a planar tile of *output pixels* and, pixel by pixel,
multiplies the non-zero δ̃z of a group of Kc output channels (F side) with the non-zero
activations of the pixel's receptive field (I side) into δW partial sums; accumulators hold
Kc × (C_chunk·R·S) sums, so the field is split into channel chunks that fit. Partial δW of all
PEs are reduced at the end of a group (counted as accumulator and crossbar actions).

Mapping (:mod:`hwsim.sim.tiling`: :func:`~hwsim.sim.tiling.tile_grid`, :func:`~hwsim.sim.tiling._intervals`): the plane (streamed operand's H×W; output P×Q in
backward-weight) is tiled over ``tr × tc`` PEs, ``tr ≤ min(rows, H)``, ``tc ≤ min(cols, W)``, and
the array holds ``(rows // tr) · (cols // tc)`` such *clusters*. Clusters take different
output-channel groups in parallel (an interval = a round of up to ``clusters`` groups, barrier at
its end); when a round has fewer groups than clusters, each group's images of the batch are split
over ``clusters // groups`` clusters (contiguous, near-equal shares; in backward-weight their δW
partial sums are reduced across PEs). ``tr × tc`` is chosen per GEMM by :func:`~hwsim.sim.tiling.mapping_cost`, a
structural estimate (shapes, Kc groups, batch, I and the streamed operand's scalar density; never
the mask pattern), among the candidates for a plane smaller than the grid; a plane that covers the
grid keeps SCNN's planar tiling (``tr × tc = rows × cols``, one cluster, one group per interval) unless
that split balances worse than ``pe_array.planar_min_balance`` (mean ÷ largest tile; a 10×10 output on
8×8 PEs: 0.39), when it competes with the other candidates like a small plane.
Chosen for small planes: smaller planar tiles on many clusters when groups and images allow
(LeNet-5's 14² conv2 input on 16×16: 64 clusters of 2×2 PEs, 7² pixels each, over 2 groups × the
batch's images; before: 2 of 256 PEs busy); whole-plane tiles on many clusters (channel-parallel, the old behaviour for every plane
smaller than the grid) when 1-pixel tiles would leave the I lanes empty (ResNet's 7² planes: 64
groups on 64 PEs). Guarantees (tested): the estimate of the chosen mapping never grows with the
grid (a larger grid has every smaller-grid candidate with at least as many clusters); doubling the
grid refines every tile (``split_edges`` nests), so when the two chosen mappings nest (same
cluster structure, or one cluster on the smaller grid) Σ_interval max_PE cycles never grows.

An operand role that the architecture does not skip is streamed in full (mask of ones within
the layer's structural — e.g. grouped — connectivity): that is how the dense baseline runs
through the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from hwsim.sim import banks, blockdiag, compiled, work
from hwsim.sim.tiling import (
    _group_pes,
    _intervals,
    group_intervals,
    scatter_mapping_inputs,
    tile_grid,
)

if TYPE_CHECKING:
    from hwsim.arch import Arch


@dataclass(frozen=True, kw_only=True)
class CartesianWork:
    """Per-interval × per-PE multiplier cycles of one GEMM and what they are made of."""

    mult_cycles: np.ndarray     # (B, P) int64, multiplier cycles (one MAC pass)
    products: int               # Cartesian products issued (one MAC pass)
    groups: int                 # output-channel groups
    stall_units: Sequence       # sampled (ax, ay) address parts for the bank-conflict model (banks.Units, or [])
    broadcast_reads: float      # SRAM reads of the broadcast operand, in units of the whole operand
    stream_reads: float         # SRAM reads of the streamed operand, in units of the whole operand
    partial_sums: int           # partial sums reduced across PEs (backward-weight)
    # backward-weight, per output-channel group: PEs holding partial δW, δW values per PE, barrier
    # interval (hwsim.sim.reduction); empty for forward / backward-data
    group_pes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    group_values: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    group_interval: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    tiling: tuple[int, int, int] = (1, 1, 1)  # (tile rows, tile cols, clusters) of the mapping (hwsim.sim.halo)


@dataclass(frozen=True)
class Counted:
    """The work of one GEMM counted from its masks (no bank-conflict sample yet) and how to sample it.

    Computed once per layer, pass and set of role masks (:func:`hwsim.sim.passes._cartesian` caches it):
    every variant that streams the same masks on the same array shares it.
    """

    work: CartesianWork
    sampler: object  # rng -> sampled units

    def sample_units(self, rng: np.random.Generator) -> Sequence:
        return self.sampler(rng)


def scatter_counts(conv: work.ScatterConv, arch: Arch, *, kc: int) -> Counted:
    """Work of a forward / backward-data GEMM on the Cartesian ``arch`` in groups of ``kc``, units not yet sampled."""
    rows, cols, f, i = arch.pe_array.rows, arch.pe_array.cols, arch.pe.mult_f, arch.pe.mult_i
    hx, wx = conv.x.shape[2:]
    tr, tc, clusters = tile_grid(rows, cols, hx, wx, **scatter_mapping_inputs(conv, kc, i, arch))
    nx = compiled.planar_counts(conv, tr, tc)
    if blockdiag.applies(conv, kc):  # grouped (e.g. attention's batched products): the diagonal blocks only
        nw = blockdiag.group_weight_counts(conv, kc)
        cyc, prod = blockdiag.cartesian_work(nw, nx, f, i)
    else:
        nw = work.group_weight_counts(conv, kc)
        cyc, prod = work.cartesian_work(nw, nx, f, i)
    g = nw.shape[0]
    # every PE working on a group reads that group's weights once
    pes = _group_pes(g, cyc.shape[1], tr * tc, clusters)
    cw = CartesianWork(mult_cycles=_intervals(cyc, clusters, rows * cols), products=prod, groups=g,
                       stall_units=[], broadcast_reads=float(pes.mean()) if g else 0.0,
                       stream_reads=float(g), partial_sums=0, tiling=(tr, tc, clusters))
    return Counted(cw, lambda rng: _scatter_units(conv, nw, nx, tr, tc, kc, rng))


def scatter_work(conv: work.ScatterConv, arch: Arch, *, kc: int,
                 rng: np.random.Generator | None = None) -> CartesianWork:
    """Work of a forward / backward-data GEMM on the Cartesian ``arch``; with ``rng``, bank-conflict units sampled."""
    c = scatter_counts(conv, arch, kc=kc)
    return c.work if rng is None else replace(c.work, stall_units=c.sample_units(rng))


def _sample_where(nw: np.ndarray | blockdiag.BlockCounts, nx: np.ndarray, rng: np.random.Generator):
    """Up to MAX_UNITS random (g, n, c, φ, t) with work on both sides, without materialising all of them."""
    g = nw.shape[0]
    n, c, ph, t = nx.shape
    shape = (g, n, c, ph, t)
    total = g * n * c * ph * t
    found: list[np.ndarray] = []  # flat indices into ``shape`` of the units found, in draw order
    count = 0
    for _ in range(4):  # rejection sampling: cheap when work is not vanishingly rare
        idx = rng.integers(0, total, size=16 * banks.MAX_UNITS)
        gi, ni, ci, pi, ti = np.unravel_index(idx, shape)
        ok = blockdiag.positive(nw, gi, ci, pi) & (nx[ni, ci, pi, ti] > 0)
        found.append(idx[ok])
        count += int(np.count_nonzero(ok))
        if count >= banks.MAX_UNITS:
            break
    if count < banks.MAX_UNITS:  # rare work: a random order of all of it (only its head is built)
        head = blockdiag.shuffled_pairs(nw, nx, rng, banks.MAX_UNITS * 4)
        if head.shape[0] == 0:
            return (np.zeros(0, dtype=np.int64),) * 5
        flat = np.ravel_multi_index(tuple(head.T), shape)
    else:
        flat = np.concatenate(found)
    # the distinct units in (g, n, c, φ, t) order — the order of their flat indices (C order); np.unique's result
    # by a sort (np.unique would import numpy.ma on its first call)
    head = np.sort(flat[:banks.MAX_UNITS * 4])
    distinct = head[np.concatenate(([True], head[1:] != head[:-1]))] if head.size else head
    return np.unravel_index(distinct[:banks.MAX_UNITS], shape)


def _scatter_units(conv: work.ScatterConv, nw: np.ndarray | blockdiag.BlockCounts, nx: np.ndarray, tr: int, tc: int, kc: int,
                   rng: np.random.Generator) -> banks.Units | list:
    """Sample units (group, channel, phase, image, tile) and return their bank-address parts (``[]``: none)."""
    gi, ni, ci, pi, ti = _sample_where(nw, nx, rng)
    if gi.size == 0:
        return []
    if banks.compiled_on():
        return compiled.scatter_units(conv, (gi, ni, ci, pi, ti), tr, tc, kc)
    pick = np.arange(gi.size)
    hx, wx = conv.x.shape[2:]
    eh, ew = work.split_edges(hx, tr), work.split_edges(wx, tc)
    r_, s_ = conv.w.shape[2:]
    st = (1, 1) if conv.mode == "up" else conv.stride
    dl, pd = conv.dilation, conv.padding
    th = int(np.diff(eh).max())
    tw = int(np.diff(ew).max())
    if conv.mode == "up":
        hh, wh = th * conv.stride[0] + (r_ - 1) * dl[0], tw * conv.stride[1] + (s_ - 1) * dl[1]
    else:
        hh = -(-th // st[0]) + -(-(r_ - 1) * dl[0] // st[0])
        wh = -(-tw // st[1]) + -(-(s_ - 1) * dl[1] // st[1])
    # All sampled units at once (same per-unit arrays, in the same order, as one nonzero() per unit).
    phases = conv.phases
    nu = pick.size
    o = conv.w.shape[0]
    tapmask = np.zeros((len(phases), r_, s_), dtype=bool)
    for p_i, ph in enumerate(phases):
        rr, ss = conv.w_phase(ph)
        tapmask[p_i][np.ix_(rr, ss)] = True
    oi = gi[:, None] * kc + np.arange(kc)                                # (U, kc) output channels of the group
    slab = blockdiag.weight_slab(conv, np.minimum(oi, o - 1), ci[:, None]) & (oi < o)[:, :, None, None] \
        & tapmask[pi][:, None]
    wu, k, r, s = np.nonzero(slab)                                       # per unit in (k, r, s) order
    y0, x0 = np.divmod(ti, tc)
    ph_h = np.array([conv.x_phase(ph)[0] for ph in phases])[pi]
    ph_w = np.array([conv.x_phase(ph)[1] for ph in phases])[pi]

    def coords(edges: np.ndarray, first: np.ndarray, start: np.ndarray, step: int) -> np.ndarray:
        # the tile's rows (cols) of each unit's phase, padded with -1
        lo, hi = edges[first], edges[first + 1]
        span = int((hi - lo).max(initial=0))
        c = lo[:, None] + np.arange(span)
        ok = (c < hi[:, None]) & ((c - start[:, None]) % step == 0)
        # keep the valid ones first, in increasing order (as the per-unit filter does)
        order = np.argsort(~ok, axis=1, kind="stable")
        return np.take_along_axis(np.where(ok, c, -1), order, axis=1)

    hs = coords(eh, y0, ph_h, st[0])
    ws = coords(ew, x0, ph_w, st[1])
    vals = conv.x[ni[:, None, None], ci[:, None, None], np.maximum(hs, 0)[:, :, None], np.maximum(ws, 0)[:, None, :]]
    vals &= (hs >= 0)[:, :, None] & (ws >= 0)[:, None, :]
    au, yy, xx = np.nonzero(vals)
    h, w = hs[au, yy], ws[au, xx]
    phr = np.array([ph[0] for ph in phases])
    phc = np.array([ph[1] for ph in phases])
    if conv.mode == "up":
        ax = k * hh * wh + r * dl[0] * wh + s * dl[1]
        ay = h * conv.stride[0] * wh + w * conv.stride[1]
    else:
        pr, pc = phr[pi[wu]], phc[pi[wu]]
        ax = k * hh * wh - ((r * dl[0] - pr) // st[0]) * wh - (s * dl[1] - pc) // st[1]
        ay = ((h + pd[0] - phr[pi[au]]) // st[0]) * wh + (w + pd[1] - phc[pi[au]]) // st[1]
    # per unit: ax shifted up by −min(ax, 0), ay down by its min (one pass over all units, then split by unit)
    ax = ax - np.minimum(_unit_min(ax, wu, nu), 0)[wu]
    ay = ay - _unit_min(ay, au, nu)[au]
    return banks.Units.from_runs(ax, wu, ay, au, nu)


def _unit_min(x: np.ndarray, unit: np.ndarray, nu: int) -> np.ndarray:
    """Per unit (``unit`` sorted, 0 ≤ unit < ``nu``) the least of its ``x`` (0 for a unit without any)."""
    out = np.zeros(nu, dtype=x.dtype)
    if x.size:
        first = np.flatnonzero(np.r_[True, unit[1:] != unit[:-1]])
        out[unit[first]] = np.minimum.reduceat(x, first)
    return out


def weight_grad_counts(op: work.PixelOuterProduct, arch: Arch, *, kc: int) -> Counted:
    """Work of backward-weight (outer product per output pixel) on the Cartesian ``arch``, units not yet sampled."""
    rows, cols, f, i = arch.pe_array.rows, arch.pe_array.cols, arch.pe.mult_f, arch.pe.mult_i
    n, k, p, q = op.dz.shape
    kg, cg = k // op.groups, op.a.shape[1] // op.groups
    rs = op.kernel[0] * op.kernel[1]
    chunk = op.field_chunk(kc, arch.pe.accumulator_banks * arch.pe.accumulator_bank_entries)
    tr, tc, clusters = tile_grid(rows, cols, p, q, groups=-(-k // kc), images=n,  # per-pixel work: i = 1
                                 min_balance=arch.pe_array.planar_min_balance)
    eh, ew = work.split_edges(p, tr), work.split_edges(q, tc)
    gk = -(-k // kc)
    # F side: non-zero δ̃z per (k-group, pixel); I side: Σ_chunks ⌈field non-zeros / I⌉ per pixel.
    xg = work.block_sums(op.dz, kc, axis=1)  # (N, G, P, Q)
    cyc = np.zeros((gk, n, tr * tc), dtype=np.int64)
    prod = 0
    fast = banks.compiled_on()
    xc = np.ascontiguousarray(xg) if fast else xg  # an all-dense δ̃z's counts are a broadcast view
    for gi in range(op.groups):
        y = op.field_counts(gi, chunk=chunk)                     # (N, chunks, P, Q)
        ks = slice((gi * kg) // kc, -(-((gi + 1) * kg) // kc))
        ceil_y = (-(-y // i)).sum(axis=1)                        # (N, P, Q)
        if fast:  # the same sums in one pass (hwsim.sim.compiled)
            prod += compiled.weight_grad_cycles(xc, ceil_y, y.sum(axis=1), eh, ew, f=f, ks=ks, cyc=cyc)
            continue
        per_pix = -(-xg[:, ks] // f) * ceil_y[:, None]           # (N, g, P, Q)
        tiles = work.segment_sum(work.segment_sum(per_pix, eh, axis=2), ew, axis=3)
        cyc[ks] += tiles.reshape(n, -1, tr * tc).transpose(1, 0, 2)
        prod += int((xg[:, ks] * y.sum(axis=1)[:, None]).sum())
    # δW partial sums of a group are reduced across the PEs that worked on it (tiles and image shares)
    k_in_group = np.minimum(kc, k - np.arange(gk) * kc)
    pes = _group_pes(gk, n, tr * tc, clusters)
    cw = CartesianWork(mult_cycles=_intervals(cyc, clusters, rows * cols), products=prod, groups=gk,
                       stall_units=[], broadcast_reads=1.0, stream_reads=float(rs * gk),
                       partial_sums=int(((pes - 1) * k_in_group).sum()) * cg * rs,
                       group_pes=pes, group_values=k_in_group.astype(np.int64) * cg * rs,
                       group_interval=group_intervals(gk, n, clusters))
    return Counted(cw, lambda rng: _weight_grad_units(op, xg, kc=kc, chunk=chunk, rng=rng))


def weight_grad_work(op: work.PixelOuterProduct, arch: Arch, *, kc: int,
                     rng: np.random.Generator | None = None) -> CartesianWork:
    """Work of backward-weight on the Cartesian ``arch``; with ``rng``, bank-conflict units sampled."""
    c = weight_grad_counts(op, arch, kc=kc)
    return c.work if rng is None else replace(c.work, stall_units=c.sample_units(rng))


def _weight_grad_units(op: work.PixelOuterProduct, xg: np.ndarray, *, kc: int, chunk: int,
                       rng: np.random.Generator) -> banks.Units | list:
    """Sampled bank-address parts (``[]``: none); ``xg``: non-zero δ̃z per (image, Kc group, pixel), as :func:`weight_grad_counts`."""
    dz, a, groups, kernel = op.dz, op.a, op.groups, op.kernel
    stride, padding, dilation = op.stride, op.padding, op.dilation
    n, k, p, q = dz.shape
    kg, cg = k // groups, a.shape[1] // groups
    rs = kernel[0] * kernel[1]
    xn = xg if k % kc == 0 else None
    has = xn > 0 if xn is not None else dz.any(axis=1, keepdims=True)
    cand = np.flatnonzero(has)  # the (n, g, p, q) with work, in C order (np.argwhere's rows, as flat indices)
    if cand.size == 0:
        return []
    pick = rng.choice(cand.size, size=min(banks.MAX_UNITS, cand.size), replace=False)
    nn, gg, pp, qq = np.unravel_index(cand[pick], has.shape)
    if xn is None:
        gg = np.zeros_like(gg)
    if banks.compiled_on():
        return compiled.weight_grad_units(op, (nn, gg, pp, qq), kc=kc, chunk=chunk)
    # All picked units at once (the same arrays, in the same order, as one nonzero() per unit).
    ko = gg[:, None] * kc + np.arange(kc)                                  # (U, kc)
    dk = dz[nn[:, None], np.minimum(ko, k - 1), pp[:, None], qq[:, None]] & (ko < k)
    ku, kk = np.nonzero(dk)
    gi = np.minimum((gg * kc) // kg, groups - 1)
    ch = gi[:, None] * cg + np.arange(min(chunk, cg))                     # (U, chunk)
    h = pp[:, None] * stride[0] + np.arange(kernel[0]) * dilation[0] - padding[0]   # (U, R)
    w = qq[:, None] * stride[1] + np.arange(kernel[1]) * dilation[1] - padding[1]   # (U, S)
    hv = (h >= 0) & (h < a.shape[2])
    wv = (w >= 0) & (w < a.shape[3])
    field = a[nn[:, None, None, None], ch[:, :, None, None], np.clip(h, 0, a.shape[2] - 1)[:, None, :, None],
              np.clip(w, 0, a.shape[3] - 1)[:, None, None, :]] & hv[:, None, :, None] & wv[:, None, None, :]
    fu, cc, rr, ss = np.nonzero(field)
    nu = pick.size
    return banks.Units.from_runs(kk * (chunk * rs), ku, cc * rs + rr * kernel[1] + ss, fu, nu)
