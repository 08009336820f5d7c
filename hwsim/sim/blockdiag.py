"""Grouped GEMMs (block-diagonal weights) counted block by block: the work of ``groups`` small products.

A grouped layer's output channel o of conv group i meets only the input channels of group i: its weights are
the diagonal blocks of a block-diagonal (O, C) matrix, held compact ((O, C/groups), as the replay builds them)
or expanded (:func:`hwsim.sim.work.expand_groups`); both read the same. Attention's batched products
(:mod:`hwsim.sim.mapping`: QKᵀ and P·V as a 1×1 conv of batch × heads groups) have hundreds of groups, so
the dense (Kc groups × channels) count matrix of :func:`hwsim.sim.work.group_weight_counts` and its
product with the tile counts in :func:`hwsim.sim.work.cartesian_work` would be almost all zeros — ``groups``
times the work of the products themselves. When each output-channel group of Kc channels lies inside one
conv group (Kc divides the channels per group), the same numbers come from the diagonal blocks alone:

* :class:`BlockCounts` — non-zero weights per (conv group, Kc group within it, channel of the group,
  phase), the diagonal blocks of the dense (G, C, Φ) counts (every other entry is 0);
* :func:`cartesian_work` — one batched product per conv group: the same cycles per (Kc group, image,
  tile) and the same products as :func:`hwsim.sim.work.cartesian_work` on the dense counts, exactly;
* :func:`positive` / :func:`work_pairs` / :func:`shuffled_pairs` — the bank-conflict sampler's look-ups
  (:func:`hwsim.sim.gemm._sample_where`) on either form, in the same order, so sampled units and every
  result are unchanged to the last digit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.sim import work


@dataclass(frozen=True)
class BlockCounts:
    """Diagonal blocks (groups, Kc groups per group, channels per group, phases) of the (G, C, Φ) counts."""

    blocks: np.ndarray  # int64 (gr, gq, cb, Φ)

    @property
    def shape(self) -> tuple[int, int, int]:
        gr, gq, cb, ph = self.blocks.shape
        return gr * gq, gr * cb, ph


def applies(conv: work.ScatterConv, kc: int) -> bool:
    """Can ``conv``'s Kc groups be counted block by block (``groups`` > 1, Kc divides the channels per group)?"""
    g = conv.groups
    o, c = conv.w.shape[0], conv.x.shape[1]  # c: the streamed operand's channels (the expansion's width)
    return g > 1 and o % g == 0 and c % g == 0 and (o // g) % kc == 0


def group_weight_counts(conv: work.ScatterConv, kc: int) -> BlockCounts:
    """:func:`hwsim.sim.work.group_weight_counts` of a block-diagonal ``conv`` as its diagonal blocks."""
    gr = conv.groups
    o, _, r, s = conv.w.shape
    og, cb = o // gr, conv.x.shape[1] // gr
    if conv.compact:  # already the blocks: (O, C/groups, R, S)
        diag = conv.w
    else:
        idx = np.arange(gr)
        diag = conv.w.reshape(gr, og, gr, cb, r, s)[idx, :, idx].reshape(gr * og, cb, r, s)  # the blocks only
    phases = conv.phases
    out = np.empty((gr * og // kc, cb, len(phases)), dtype=np.int64)
    for p, ph in enumerate(phases):
        rs, ss = conv.w_phase(ph)
        out[:, :, p] = work.block_sums(work._tap_counts(diag, rs, ss), kc)
    return BlockCounts(out.reshape(gr, og // kc, cb, len(phases)))


def cartesian_work(nw: BlockCounts, nx: np.ndarray, f: int, i: int) -> tuple[np.ndarray, int]:
    """:func:`hwsim.sim.work.cartesian_work` from the diagonal blocks: cycles int64 (G, N, T) and products."""
    gr, gq, cb, ph = nw.blocks.shape
    n, _, _, t = nx.shape
    a = nw.blocks.reshape(gr, gq, cb * ph)
    ca = (a + f - 1) // f
    b = nx.reshape(n, gr, cb * ph, t)
    prod = int(np.einsum("gk,gk->", a.sum(axis=1), b.sum(axis=(0, 3), dtype=np.int64))) if a.size and b.size else 0
    bx = int(b.max(initial=0))
    bound = int(ca.max(initial=0)) * -(-bx // i) * cb * ph
    if bound < 2 ** 53 and b.size:  # exact in float64 (work.cartesian_work's argument), one batched BLAS call
        cf = np.empty((gr, cb * ph, n, t), dtype=np.float64)
        cf[...] = b.transpose(1, 2, 0, 3)
        np.divide(cf, i, out=cf)
        np.ceil(cf, out=cf)
        cyc = np.rint(np.matmul(ca.astype(np.float64), cf.reshape(gr, cb * ph, n * t))).astype(np.int64)
    else:
        cbi = (b.transpose(1, 2, 0, 3).reshape(gr, cb * ph, n * t).astype(np.int64) + i - 1) // i
        cyc = np.einsum("gij,gjk->gik", ca, cbi)
    return cyc.reshape(gr * gq, n, t), prod


def weight_slab(conv: work.ScatterConv, oi: np.ndarray, ci: np.ndarray) -> np.ndarray:
    """``W[oi, ci]`` of the (expanded) weights: (U, kc, R, S) for output channels ``oi`` (U, kc) and channels ``ci``
    (U, 1); compact weights are read inside the output channel's group and are zero elsewhere, as expanded."""
    if not conv.compact:
        return conv.w[oi, ci]
    og, cb = conv.w.shape[0] // conv.groups, conv.w.shape[1]
    same = (oi // og) == (ci // cb)                                      # (U, kc): channel inside the group
    return conv.w[oi, ci % cb] & same[:, :, None, None]


def positive(nw: np.ndarray | BlockCounts, gi: np.ndarray, ci: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """``nw[gi, ci, pi] > 0`` for dense counts or their diagonal blocks."""
    if isinstance(nw, np.ndarray):
        return nw[gi, ci, pi] > 0
    _, gq, cb, _ = nw.blocks.shape
    blk = gi // gq
    inside = ci // cb == blk
    return inside & (nw.blocks[blk, gi % gq, ci % cb, pi] > 0)


def work_pairs(nw: np.ndarray | BlockCounts, nx: np.ndarray) -> np.ndarray:
    """``argwhere`` of (g, n, c, φ, t) with work on both sides, in lexicographic order, for either form."""
    if isinstance(nw, np.ndarray):
        return np.argwhere((nw[:, None, :, :, None] > 0) & (nx[None] > 0))
    gr, gq, cb, ph = nw.blocks.shape
    n, _, _, t = nx.shape
    xb = nx.reshape(n, gr, cb, ph, t).transpose(1, 0, 2, 3, 4)            # (gr, n, cb, Φ, T)
    hit = np.argwhere((nw.blocks[:, :, None, :, :, None] > 0) & (xb[:, None] > 0))  # (blk, j, n, cb, φ, t)
    # g = blk·gq + j is increasing in (blk, j) and fixes blk, so this order is (g, n, c, φ, t)'s
    return np.stack([hit[:, 0] * gq + hit[:, 1], hit[:, 2], hit[:, 0] * cb + hit[:, 3], hit[:, 4], hit[:, 5]],
                    axis=1)


def shuffled_pairs(nw: np.ndarray | BlockCounts, nx: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
    """The first ``count`` rows of ``work_pairs(nw, nx)[rng.permutation(len)]``, drawing the same permutation
    (so ``rng`` moves on exactly as before), without building every pair's coordinates: only the flat positions
    of the work mask and the coordinates of the rows kept."""
    if isinstance(nw, np.ndarray):
        mask = (nw[:, None, :, :, None] > 0) & (nx[None] > 0)            # (G, N, C, Φ, T)
    else:
        gr, gq, cb, ph = nw.blocks.shape
        n, _, _, t = nx.shape
        xb = nx.reshape(n, gr, cb, ph, t).transpose(1, 0, 2, 3, 4)
        mask = (nw.blocks[:, :, None, :, :, None] > 0) & (xb[:, None] > 0)  # (blk, j, n, cb, Φ, T)
    flat = np.flatnonzero(mask)
    keep = flat[rng.permutation(flat.size)[:count]]
    idx = np.unravel_index(keep, mask.shape)
    if isinstance(nw, np.ndarray):
        return np.stack(idx, axis=1) if keep.size else np.zeros((0, 5), dtype=np.int64)
    blk, j, ni, ci, pi, ti = idx
    return np.stack([blk * gq + j, ni, blk * cb + ci, pi, ti], axis=1)
