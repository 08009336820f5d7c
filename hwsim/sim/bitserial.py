"""Cycles and bit-operations of precision-exploiting multipliers (pure, vectorised numpy).

Why: at the s that makes δ̃z ~90 % sparse, its non-zero levels need only 2–5 bits, and an 8-bit MAC
wastes most of its width on them. This module turns the *real* levels of the serial operand into
per-tile cycles for three multiplier kinds of the same area (``pe.mac``):

``parallel``
    today's F×I ``mac_bits`` multipliers; a product is one cycle, whatever its bits.
``bit_serial``
    each ``mac_bits`` multiplier becomes ``mac_bits`` one-bit lanes (Stripes, MICRO'16: area-
    equivalent), ``F·I·mac_bits`` lanes per PE. A product takes as many cycles as its serial level has
    magnitude bits (``bit_serial_mode: magnitude``, Stripes) or non-zero bits (``essential_bits``,
    Bit-Pragmatic MICRO'17), plus one cycle for the sign when ``pe.serial_sign_cycle`` (default): then
    ``magnitude`` is exactly the level's two's-complement precision, the p of Stripes and DESIGN §1's
    bit-width, so a level needing 8 bits takes 8 cycles on 8 lanes — never better than the 8-bit MAC.
    ``serial_sign_cycle: false`` models sign-magnitude lanes that apply the sign as add/subtract for
    free (±1 costs 1 cycle instead of 2: the optimistic bound).
``bit_fusion``
    each ``mac_bits`` multiplier becomes a fusion unit of ``(mac_bits/b)²`` b-bit BitBricks (Bit
    Fusion, ISCA'18; b = the smallest of ``bit_fusion_widths``). A ws × wp product (widths rounded up
    to the supported ones, sign included) fuses ``(ws/b)·(wp/b)`` bricks, so a unit does
    ``(mac_bits/ws)·(mac_bits/wp)`` products per cycle; wider than ``mac_bits`` takes ⌈ws/mac_bits⌉
    temporal passes.

Lane geometry (the modelling choice, kept close to the SCNN PE): the serial operand is issued in
*groups* of ``L`` values in lock-step (``pe.serial_lanes``; 0 = the serial side's F or I, so a
group is exactly the vector a parallel PE would take in one cycle). Every lane of a group waits for
the group's slowest member: a group costs the largest class of its members (bits, or fused width).
The remaining area goes to the *parallel* side: each serial value meets ``U = F·I·mac_bits / L``
parallel operands per cycle (bit_serial) or ``F·I/L · products-per-unit`` (bit_fusion). For one
serial group of class c against ``n_p`` parallel operands the cost is ``⌈n_p / divisor(c)⌉ ·
multiplier(c)`` cycles — with ``parallel`` as the special case class 1, divisor F (or I), multiplier
1, i.e. SCNN's ⌈nnz_w/F⌉·⌈nnz_x/I⌉. So zero skipping (non-zeros are packed before grouping),
intra-PE fragmentation (partly filled groups and parallel vectors) and the lock-step loss are all
measured from the real levels, never assumed.

Energy is counted in *bit-ops* (1b×1b partial products, priced by ``energy.bit_op_pj``): a product in
a group of class c costs ``c·wp`` bit-ops on bit_serial (lock-step lanes shift in zero bits: no credit
for finishing early) and ``ws·wp`` on bit_fusion; an 8×8 parallel multiply is 64. The *ideal* is the
bit-ops of all effectual products, each at its own class, over the array's bit-op capacity per cycle
``PEs·F·I·mac_bits²`` — for bit_serial exactly (serial bits of all effectual products) / lanes.

Forward passes stream activations whose values the trace does not store (only masks), so they are
taken at ``mac_bits`` (:func:`constant_classes`): no gain is claimed there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from hwsim.arch import PEConfig

KINDS = ("parallel", "bit_serial", "bit_fusion")
MODES = ("magnitude", "essential_bits")


# ----------------------------------------------------------------------------- per-value bit math


def bit_length(x: np.ndarray) -> np.ndarray:
    """Magnitude bits ⌈log2(|x|+1)⌉ of integers (0 for 0), exact below 2**53."""
    a = np.abs(np.asarray(x, dtype=np.int64))
    return np.frexp(a.astype(np.float64))[1].astype(np.int64)


_POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


def popcount(x: np.ndarray) -> np.ndarray:
    """Non-zero ("essential") bits of |x| (Bit-Pragmatic's work per value)."""
    a = np.abs(np.asarray(x, dtype=np.int64))
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(a).astype(np.int64)
    b = np.ascontiguousarray(a.astype("<u8")).view(np.uint8).reshape(a.shape + (8,))
    return _POP8[b].sum(axis=-1)


def signed_width(x: np.ndarray) -> np.ndarray:
    """Two's-complement bits of a signed level: sign + magnitude bits (0 for 0), DESIGN §1's bit-width."""
    b = bit_length(x)
    return np.where(b > 0, b + 1, 0)


# ----------------------------------------------------------------------------- the multiplier model


@dataclass(frozen=True, kw_only=True)
class MacModel:
    """One PE's multipliers as seen from the serial operand of one GEMM.

    ``lanes``: serial values issued in lock-step (a group); ``side``: the parallel-MAC count on the
    serial operand's side (F or I); ``other``: the count on the other side; ``mac_bits``: MAC width =
    the parallel operand's width.
    """

    kind: str
    mode: str
    widths: tuple[int, ...]
    sign_cycle: bool = True
    mac_bits: int
    lanes: int
    side: int
    other: int

    def __post_init__(self) -> None:
        if self.kind not in KINDS or self.mode not in MODES:
            raise ValueError(f"MacModel: kind {self.kind!r} / mode {self.mode!r}; allowed: {KINDS} / {MODES}")
        if self.lanes < 1 or (self.side * self.other * self.unit_lanes) % self.lanes:
            raise ValueError(f"MacModel: lanes={self.lanes} must divide {self.side * self.other * self.unit_lanes}")

    @property
    def unit_lanes(self) -> int:
        """Lanes one parallel multiplier's area buys: 1 (parallel, bit_fusion unit) or mac_bits (bit_serial)."""
        return self.mac_bits if self.kind == "bit_serial" else 1

    @property
    def bitops_per_cycle(self) -> int:
        """Bit-op capacity of one PE per cycle (same for every kind: the area of F·I mac_bits multipliers)."""
        return self.side * self.other * self.mac_bits * self.mac_bits

    def classes(self, levels: np.ndarray) -> np.ndarray:
        """Per-value class of serial levels: bits (bit_serial), rounded signed width (bit_fusion), 1 (parallel).

        Zero levels get class 0 (they cost nothing unless streamed unskipped, see :func:`group_terms`).
        """
        lv = np.asarray(levels)
        if self.kind == "parallel":
            # A level wider than the MAC takes ⌈bits/mac_bits⌉ passes (never truncated).
            w = signed_width(lv)
            return np.where(w > 0, np.maximum(1, -(-w // self.mac_bits)), 0)
        if self.kind == "bit_serial":
            bits = bit_length(lv) if self.mode == "magnitude" else popcount(lv)
            return np.where(bits > 0, bits + int(self.sign_cycle), 0)
        return self.round_width(signed_width(lv))

    def constant_classes(self, mask: np.ndarray, bits: int) -> np.ndarray:
        """Classes of an operand known only by its mask, every non-zero taken at ``bits`` bits."""
        one = {"parallel": max(1, -(-bits // self.mac_bits)), "bit_serial": bits,  # bits include any sign
               "bit_fusion": int(self.round_width(np.array([bits]))[0])}[self.kind]
        return np.where(np.asarray(mask, dtype=bool), one, 0).astype(np.int64)

    def round_width(self, w: np.ndarray) -> np.ndarray:
        """Smallest supported width >= w; beyond the largest, whole multiples of it (temporal passes)."""
        ws = np.asarray(self.widths, dtype=np.int64)
        w = np.asarray(w, dtype=np.int64)
        idx = np.searchsorted(ws, np.minimum(w, ws[-1]))
        out = np.where(w > ws[-1], -(-w // ws[-1]) * ws[-1], ws[np.minimum(idx, ws.size - 1)])
        return np.where(w > 0, out, 0)

    def group_terms(self, cls: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For group classes ``cls``: (divisor, multiplier, bit-ops per product).

        A group of class c against n_p parallel operands costs ⌈n_p / divisor⌉ · multiplier cycles; each
        of its products costs ``bit-ops per product``. A group of zeros only (streamed unskipped) still
        occupies one issue slot at the smallest class.
        """
        c = np.asarray(cls, dtype=np.int64)
        # parallel operands one serial value meets per cycle: the PE's lanes (or units) over the group size
        per_value = self.side * self.other * self.unit_lanes // self.lanes
        if self.kind == "parallel":
            c = np.maximum(c, 1)
            return np.full(c.shape, per_value, np.int64), c, c * self.mac_bits * self.mac_bits
        if self.kind == "bit_serial":
            c = np.maximum(c, 1)
            return np.full(c.shape, per_value, np.int64), c, c * self.mac_bits
        c = np.maximum(c, self.widths[0])
        passes = -(-c // self.mac_bits)
        per_unit = np.maximum(1, self.mac_bits // c)             # (mac_bits/ws)·(mac_bits/wp), wp = mac_bits
        return per_value * per_unit, passes, c * self.mac_bits


def mac_model(pe: PEConfig, *, side: int, other: int) -> MacModel:
    """The :class:`MacModel` of ``pe`` for a GEMM whose serial operand sits on the side with ``side`` MACs."""
    lanes = pe.serial_lanes or side
    return MacModel(kind=pe.mac, mode=pe.bit_serial_mode, widths=tuple(pe.bit_fusion_widths),
                    sign_cycle=pe.serial_sign_cycle, mac_bits=pe.mac_bits, lanes=lanes, side=side, other=other)


# ----------------------------------------------------------------------------- grouping in stream order


@dataclass(frozen=True, kw_only=True)
class GroupHistogram:
    """Lock-step groups of the serial operand, per segment (a stream: one tile × channel, or one pixel).

    ``classes`` (K,) the distinct group classes; ``groups`` (K, *seg_shape) how many groups of each
    class a segment issues; ``members`` (K, *seg_shape) how many values those groups hold.
    """

    classes: np.ndarray
    groups: np.ndarray
    members: np.ndarray


def group_segments(cls: np.ndarray, seg: np.ndarray, *, nseg: int, lanes: int) -> GroupHistogram:
    """Pack each segment's values (in stream order, ``seg`` non-decreasing) into groups of ``lanes``.

    A group's class is the largest of its members' (the slowest lane sets the pace).
    """
    cls = np.asarray(cls, dtype=np.int64).ravel()
    seg = np.asarray(seg, dtype=np.int64).ravel()
    if cls.size == 0:
        z = np.zeros((0, nseg), dtype=np.int64)
        return GroupHistogram(classes=np.zeros(0, np.int64), groups=z, members=z)
    new_seg = np.ones(seg.size, dtype=bool)
    new_seg[1:] = seg[1:] != seg[:-1]
    first = np.flatnonzero(new_seg)
    rank = np.arange(seg.size) - np.repeat(first, np.diff(np.append(first, seg.size)))
    gstart = np.flatnonzero(rank % lanes == 0)
    gcls = np.maximum.reduceat(cls, gstart)
    gsize = np.diff(np.append(gstart, seg.size))
    gseg = seg[gstart]
    values, inv = np.unique(gcls, return_inverse=True)
    key = inv.astype(np.int64) * nseg + gseg
    size = values.size * nseg
    groups = np.bincount(key, minlength=size).reshape(values.size, nseg)
    members = np.bincount(key, weights=gsize, minlength=size).reshape(values.size, nseg)
    return GroupHistogram(classes=values, groups=groups.astype(np.int64), members=np.rint(members).astype(np.int64))


def tile_histogram(cls: np.ndarray, *, row_edges: np.ndarray, col_edges: np.ndarray, lanes: int,
                   skip_zeros: bool) -> GroupHistogram:
    """Groups of a planar-tiled streamed operand: segments (N, C, tiles), row-major order inside a tile.

    ``cls`` (N, C, H, W) per-value classes (0 = zero value). With ``skip_zeros`` only non-zeros are
    streamed (and packed); otherwise every value of the tile occupies a lane.
    """
    n, c, h, w = cls.shape
    tr, tc = len(row_edges) - 1, len(col_edges) - 1
    trow = np.searchsorted(row_edges, np.arange(h), side="right") - 1
    tcol = np.searchsorted(col_edges, np.arange(w), side="right") - 1
    tile = (trow[:, None] * tc + tcol[None, :]).ravel()                     # (H·W,)
    flat = cls.reshape(n * c, h * w)
    nc_idx, pix = np.nonzero(flat) if skip_zeros else np.divmod(np.arange(flat.size), h * w)
    seg = nc_idx.astype(np.int64) * (tr * tc) + tile[pix]
    order = np.argsort(seg, kind="stable")                                   # keeps row-major inside a tile
    hist = group_segments(flat[nc_idx, pix][order], seg[order], nseg=n * c * tr * tc, lanes=lanes)
    shape = (hist.classes.size, n, c, tr * tc)
    return GroupHistogram(classes=hist.classes, groups=hist.groups.reshape(shape),
                          members=hist.members.reshape(shape))


def stack_phases(hists: list[GroupHistogram]) -> GroupHistogram:
    """Per-phase tile histograms (K_i, N, C, T) → one (K, N, C, Φ, T) over the union of their classes."""
    classes = np.unique(np.concatenate([h.classes for h in hists])) if hists else np.zeros(0, np.int64)
    n, c, t = hists[0].groups.shape[1:]
    groups = np.zeros((classes.size, n, c, len(hists), t), dtype=np.int64)
    members = np.zeros_like(groups)
    for p, h in enumerate(hists):
        idx = np.searchsorted(classes, h.classes)
        groups[idx, :, :, p] = h.groups
        members[idx, :, :, p] = h.members
    return GroupHistogram(classes=classes, groups=groups, members=members)


def channel_histogram(cls: np.ndarray, *, group: int, lanes: int, skip_zeros: bool) -> GroupHistogram:
    """Groups of a per-pixel operand streamed over channels: ``cls`` (N, K, P, Q), segments (N, ⌈K/group⌉, P, Q).

    Backward-weight issues, per output pixel, the non-zero δ̃z of a group of ``group`` (= Kc) output
    channels against the pixel's receptive field.
    """
    n, k, p, q = cls.shape
    g = -(-k // group)
    pad = np.zeros((n, g * group - k, p, q), dtype=np.int64)
    x = np.concatenate([np.asarray(cls, np.int64), pad], axis=1).reshape(n, g, group, p, q)
    x = np.moveaxis(x, 2, -1).reshape(n * g * p * q, group)                  # segment-major, channel order
    if skip_zeros:
        seg, ch = np.nonzero(x)
    else:
        real = (np.arange(g * group) < k).reshape(g, group)                   # padded channels do not exist
        seg, ch = np.nonzero(np.broadcast_to(real[None, :, None, None, :], (n, g, p, q, group)).reshape(-1, group))
    hist = group_segments(x[seg, ch], seg, nseg=n * g * p * q, lanes=lanes)
    shape = (hist.classes.size, n, g, p, q)
    return GroupHistogram(classes=hist.classes, groups=hist.groups.reshape(shape),
                          members=hist.members.reshape(shape))


# ----------------------------------------------------------------------------- cycles and bit-ops


def scatter_cycles(nw: np.ndarray, hist: GroupHistogram, model: MacModel) -> tuple[np.ndarray, np.ndarray, int]:
    """Cartesian-product cycles with a serial *streamed* operand: (cycles, products, bit-ops).

    ``nw`` (G, C, Φ) non-zero parallel operands per output-channel group, channel and phase;
    ``hist`` from :func:`tile_histogram` per phase, stacked as (K, N, C, Φ, T). Cycles =
    Σ_{c,φ} Σ_groups ⌈nw / divisor(class)⌉ · multiplier(class) — one small matrix product per class.
    Cycles and products are per (G, N, T) tile; bit-ops are the total.
    """
    g = nw.shape[0]
    k, n, c, ph, t = hist.groups.shape
    a = nw.reshape(g, c * ph).astype(np.int64)
    div, mult, bops = model.group_terms(hist.classes)
    cyc = np.zeros((g, n * t), dtype=np.int64)
    members = np.zeros((c * ph, n * t), dtype=np.int64)
    bitops = 0
    a_tot = a.sum(axis=0)
    for j in range(k):
        # integer einsum: exact, and no BLAS threads (as work.cartesian_work)
        gr = hist.groups[j].transpose(1, 2, 0, 3).reshape(c * ph, n * t)
        mb = hist.members[j].transpose(1, 2, 0, 3).reshape(c * ph, n * t)
        cyc += np.einsum("ij,jk->ik", (a + div[j] - 1) // div[j] * mult[j], gr)
        members += mb
        bitops += int(bops[j]) * int(a_tot @ mb.sum(axis=1))
    products = np.einsum("ij,jk->ik", a, members)
    return cyc.reshape(g, n, t), products.reshape(g, n, t), bitops


def pixel_cycles(field: np.ndarray, hist: GroupHistogram, model: MacModel) -> tuple[np.ndarray, np.ndarray, int]:
    """Outer-product cycles with a serial *per-pixel* operand (backward-weight): (cycles, products, bit-ops).

    ``field`` (N, chunks, P, Q) non-zero parallel operands per receptive-field chunk; ``hist`` from
    :func:`channel_histogram` (K, N, G, P, Q). Cycles and products per (N, G, P, Q) pixel and group.
    """
    div, mult, bops = model.group_terms(hist.classes)
    y = field.astype(np.int64)
    cyc = np.zeros(hist.groups.shape[1:], dtype=np.int64)
    prod = np.zeros(hist.groups.shape[1:], dtype=np.int64)
    ysum = y.sum(axis=1)[:, None]                                             # (N, 1, P, Q)
    bitops = 0
    for j in range(hist.classes.size):
        per_pix = ((y + div[j] - 1) // div[j] * mult[j]).sum(axis=1)[:, None]  # (N, 1, P, Q)
        cyc += per_pix * hist.groups[j]
        pj = ysum * hist.members[j]
        prod += pj
        bitops += int(pj.sum()) * int(bops[j])
    return cyc, prod, bitops


def value_bitops(cls: np.ndarray, model: MacModel) -> np.ndarray:
    """Bit-ops of one product of each value at its *own* class (no lock-step loss): the ideal's weights."""
    c = np.asarray(cls, dtype=np.int64)
    _, _, b = model.group_terms(c)
    return np.where(c > 0, b, 0)


def ideal_cycles(effectual_bitops: float, *, pes: int, model: MacModel) -> float:
    """Lower bound: bit-ops of all effectual products / the array's bit-op capacity per cycle."""
    return float(effectual_bitops) / (pes * model.bitops_per_cycle)
