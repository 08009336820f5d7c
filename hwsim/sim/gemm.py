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

When the plane is smaller than the PE grid (Linear layers, 1×1 feature maps) the PEs take
different output-channel groups instead (channel-parallel): the interval is then a round of
``num_pes`` groups.

An operand role that the architecture does not skip is streamed in full (mask of ones within
the layer's structural — e.g. grouped — connectivity): that is how the dense baseline runs
through the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.sim import banks, work


@dataclass(frozen=True, kw_only=True)
class CartesianWork:
    """Per-interval × per-PE multiplier cycles of one GEMM and what they are made of."""

    mult_cycles: np.ndarray     # (B, P) int64, multiplier cycles (one MAC pass)
    products: int               # Cartesian products issued (one MAC pass)
    groups: int                 # output-channel groups
    stall_units: list           # sampled (ax, ay) address parts for the bank-conflict model
    broadcast_reads: float      # SRAM reads of the broadcast operand, in units of the whole operand
    stream_reads: float         # SRAM reads of the streamed operand, in units of the whole operand
    partial_sums: int           # partial sums reduced across PEs (backward-weight)


def _intervals(per_g_n_t: np.ndarray, planar: bool, num_pes: int) -> np.ndarray:
    """(G, N, T) cycles → (intervals, PEs): a group per interval (planar) or rounds of groups."""
    if planar:
        return per_g_n_t.sum(axis=1)
    per_g = per_g_n_t.sum(axis=(1, 2))
    rounds = -(-per_g.size // num_pes)
    out = np.zeros(rounds * num_pes, dtype=np.int64)
    out[:per_g.size] = per_g
    return out.reshape(rounds, num_pes)


def scatter_work(conv: work.ScatterConv, *, rows: int, cols: int, kc: int, f: int, i: int,
                 sample: bool, rng: np.random.Generator) -> CartesianWork:
    """Work of a forward / backward-data GEMM on the Cartesian array."""
    hx, wx = conv.x.shape[2:]
    planar = hx >= rows and wx >= cols
    tr, tc = (rows, cols) if planar else (1, 1)
    nx = work.planar_counts(conv, tr, tc)
    nw = work.group_weight_counts(conv, kc)
    cyc, prod = work.cartesian_work(nw, nx, f, i)
    units = _scatter_units(conv, nw, nx, tr, tc, kc, rng) if sample else []
    g = nw.shape[0]
    return CartesianWork(mult_cycles=_intervals(cyc, planar, rows * cols), products=int(prod.sum()), groups=g,
                         stall_units=units, broadcast_reads=float(rows * cols if planar else 1),
                         stream_reads=float(g), partial_sums=0)


def _sample_where(nw: np.ndarray, nx: np.ndarray, rng: np.random.Generator):
    """Up to MAX_UNITS random (g, n, c, φ, t) with work on both sides, without materialising all of them."""
    g = nw.shape[0]
    n, c, ph, t = nx.shape
    shape = (g, n, c, ph, t)
    total = g * n * c * ph * t
    found: list[np.ndarray] = []
    for _ in range(4):  # rejection sampling: cheap when work is not vanishingly rare
        idx = rng.integers(0, total, size=16 * banks.MAX_UNITS)
        gi, ni, ci, pi, ti = np.unravel_index(idx, shape)
        ok = (nw[gi, ci, pi] > 0) & (nx[ni, ci, pi, ti] > 0)
        found.extend(np.stack([gi, ni, ci, pi, ti])[:, ok].T)
        if len(found) >= banks.MAX_UNITS:
            break
    if len(found) < banks.MAX_UNITS:  # rare work: enumerate
        allw = np.argwhere((nw[:, None, :, :, None] > 0) & (nx[None] > 0))
        if allw.shape[0] == 0:
            return (np.zeros(0, dtype=np.int64),) * 5
        found = list(allw[rng.permutation(allw.shape[0])])
    sel = np.unique(np.array(found[:banks.MAX_UNITS * 4]), axis=0)[:banks.MAX_UNITS]
    return tuple(sel.T)


def _scatter_units(conv, nw, nx, tr, tc, kc, rng) -> list[tuple[np.ndarray, np.ndarray]]:
    """Sample units (group, channel, phase, image, tile) and return their bank-address parts."""
    gi, ni, ci, pi, ti = _sample_where(nw, nx, rng)
    if gi.size == 0:
        return []
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
    units = []
    phases = conv.phases
    for u in pick:
        gg, cc, pp, nn, tt = (int(v[u]) for v in (gi, ci, pi, ni, ti))
        ph = phases[pp]
        rr, ss = conv.w_phase(ph)
        k, rix, six = np.nonzero(conv.w[gg * kc:(gg + 1) * kc, cc][:, rr][:, :, ss])
        r, s = rr[rix], ss[six]
        y0, x0 = divmod(tt, tc)
        h0, w0 = conv.x_phase(ph)
        hs = np.arange(eh[y0], eh[y0 + 1])
        ws = np.arange(ew[x0], ew[x0 + 1])
        hs = hs[(hs - h0) % st[0] == 0]
        ws = ws[(ws - w0) % st[1] == 0]
        yy, xx = np.nonzero(conv.x[nn, cc][np.ix_(hs, ws)])
        h, w = hs[yy], ws[xx]
        if conv.mode == "up":
            ax = k * hh * wh + r * dl[0] * wh + s * dl[1]
            ay = h * conv.stride[0] * wh + w * conv.stride[1]
        else:
            ax = k * hh * wh - ((r * dl[0] - ph[0]) // st[0]) * wh - (s * dl[1] - ph[1]) // st[1]
            ay = ((h + pd[0] - ph[0]) // st[0]) * wh + (w + pd[1] - ph[1]) // st[1]
        off = -min(int(ax.min()), 0)
        units.append((ax + off, ay - int(ay.min()) if ay.size else ay))
    return units


def weight_grad_work(dz: np.ndarray, a: np.ndarray, *, groups: int, kernel, stride, padding, dilation,
                     rows: int, cols: int, kc: int, f: int, i: int, acc_entries: int,
                     sample: bool, rng: np.random.Generator) -> CartesianWork:
    """Work of backward-weight (outer product per output pixel) on the Cartesian array."""
    n, k, p, q = dz.shape
    c = a.shape[1]
    kg, cg = k // groups, c // groups
    rs = kernel[0] * kernel[1]
    chunk = max(1, min(cg, acc_entries // max(1, kc * rs)))
    planar = p >= rows and q >= cols
    tr, tc = (rows, cols) if planar else (1, 1)
    eh, ew = work.split_edges(p, tr), work.split_edges(q, tc)
    gk = -(-k // kc)
    # F side: non-zero δ̃z per (k-group, pixel); I side: Σ_chunks ⌈field non-zeros / I⌉ per pixel.
    padk = np.zeros((n, gk * kc - k, p, q), dtype=np.int64)
    xg = np.concatenate([dz.astype(np.int64), padk], axis=1).reshape(n, gk, kc, p, q).sum(axis=2)  # (N, G, P, Q)
    cyc = np.zeros((gk, n, tr * tc), dtype=np.int64)
    prod = 0
    ys = []
    for gi in range(groups):
        y = work.patch_counts(a[:, gi * cg:(gi + 1) * cg], chunk=chunk, out_hw=(p, q), kernel=kernel,
                              stride=stride, padding=padding, dilation=dilation)  # (N, chunks, P, Q)
        ys.append(y)
        ks = slice((gi * kg) // kc, -(-((gi + 1) * kg) // kc))
        ceil_y = np.ceil(y / i).sum(axis=1)                      # (N, P, Q)
        per_pix = np.ceil(xg[:, ks] / f) * ceil_y[:, None]       # (N, g, P, Q)
        tiles = work.segment_sum(work.segment_sum(per_pix.astype(np.int64), eh, axis=2), ew, axis=3)
        cyc[ks] += tiles.reshape(n, -1, tr * tc).transpose(1, 0, 2)
        prod += int((xg[:, ks] * y.sum(axis=1)[:, None]).sum())
    units = _weight_grad_units(dz, a, ys, kc=kc, chunk=chunk, kernel=kernel, stride=stride, padding=padding,
                               dilation=dilation, groups=groups, rng=rng) if sample else []
    return CartesianWork(mult_cycles=_intervals(cyc, planar, rows * cols), products=prod, groups=gk,
                         stall_units=units, broadcast_reads=1.0, stream_reads=float(rs * gk),
                         partial_sums=(rows * cols - 1) * k * cg * rs if planar else 0)


def _weight_grad_units(dz, a, ys, *, kc, chunk, kernel, stride, padding, dilation, groups, rng):
    n, k, p, q = dz.shape
    kg, cg = k // groups, a.shape[1] // groups
    rs = kernel[0] * kernel[1]
    xn = dz.reshape(n, -1, kc, p, q).sum(axis=2) if k % kc == 0 else None
    cand = np.argwhere(xn > 0) if xn is not None else np.argwhere(dz.any(axis=1, keepdims=True))
    if cand.shape[0] == 0:
        return []
    pick = rng.choice(cand.shape[0], size=min(banks.MAX_UNITS, cand.shape[0]), replace=False)
    apad = np.pad(a, ((0, 0), (0, 0), (padding[0], padding[0]), (padding[1], padding[1])))
    units = []
    for u in pick:
        nn, gg, pp, qq = (int(v) for v in cand[u])
        if xn is None:
            gg = 0
        kk = np.nonzero(dz[nn, gg * kc:(gg + 1) * kc, pp, qq])[0]
        gi = min((gg * kc) // kg, groups - 1)
        h = pp * stride[0] + np.arange(kernel[0]) * dilation[0]
        w = qq * stride[1] + np.arange(kernel[1]) * dilation[1]
        field = apad[nn, gi * cg:gi * cg + min(chunk, cg)][:, h][:, :, w]
        cc, rr, ss = np.nonzero(field)
        units.append((kk * (chunk * rs), cc * rs + rr * kernel[1] + ss))
    return units
