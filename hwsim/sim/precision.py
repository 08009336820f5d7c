"""Bit-serial and bit-fusion PEs on the Cartesian array: per-interval work from the real δ̃z levels.

The parallel path (:mod:`hwsim.sim.gemm`) counts ⌈nnz_w/F⌉·⌈nnz_x/I⌉ per tile from the masks;
this module is its twin for ``pe.mac: bit_serial | bit_fusion`` and mirrors the same tiling
(planar tiles, cluster rounds of groups and image shares, output-channel groups of Kc, stride phases, receptive-
field chunks), replacing the ⌈·/I⌉ (or ⌈·/F⌉) of the serial operand by the lock-step groups of
:mod:`hwsim.sim.bitserial`. Everything downstream — SimPy barriers (inter-PE imbalance), DRAM,
the cycle breakdown — is the parallel path's, so the kinds differ only where the hardware does.

Serial operand per pass (the one whose bits set the cycles):

=================  ================================  ==============================
pass               serial operand (its side)         parallel operand (other side)
=================  ================================  ==============================
forward            a (I), at mac_bits: no values     W (F)
backward_data      δ̃z levels (I)                     Wᵀ (F)
backward_weight    δ̃z levels of a pixel's Kc (F)     receptive-field a (I)
=================  ================================  ==============================

Accumulators: a PE that finishes more products per cycle than it has accumulator banks waits for
them (each bank retires one product per cycle). A parallel PE never hits this (F·I = 16 products
per cycle, 32 banks), a bit-serial one does: F·I·mac_bits lanes finish up to 128 products every
2 cycles on ±1 levels. So the busy cycles of a tile are at least ⌈products / banks⌉; the excess
over the multiplier cycles is reported as ``bank_conflict``, on top of the address-conflict rate
the parallel F×I issue pattern measures on the same masks (:mod:`hwsim.sim.banks`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hwsim.sim import bitserial as bs
from hwsim.sim import capacity, tiling, work

if TYPE_CHECKING:
    from hwsim.arch import Arch
    from hwsim.sim.operands import Operands


@dataclass(frozen=True, kw_only=True)
class PrecisionWork:
    """Per-interval × per-PE cycles of one GEMM on bit_serial / bit_fusion multipliers."""

    mult_cycles: np.ndarray        # (B, P) lock-step group cycles
    accumulator_floor: np.ndarray  # (B, P) Σ over the interval's tiles of ⌈products / banks⌉
    products: int                  # products issued
    bit_ops: int                   # 1b×1b partial products spent (lock-step losses included)


def serial_model(arch: Arch, pass_name: str) -> bs.MacModel:
    """The multiplier model of ``arch`` for ``pass_name`` (serial operand on the I side, or F in backward-weight)."""
    pe = arch.pe
    side, other = (pe.mult_f, pe.mult_i) if pass_name == "backward_weight" else (pe.mult_i, pe.mult_f)
    return bs.mac_model(pe, side=side, other=other)


def serial_classes(model: bs.MacModel, pass_name: str, *, levels: np.ndarray, a_mask: np.ndarray) -> np.ndarray:
    """Per-value classes of the serial operand: δ̃z levels, or the forward activations at mac_bits."""
    if pass_name == "forward":
        return model.constant_classes(a_mask, model.mac_bits)
    return model.classes(levels)


def _intervals(per_tile: np.ndarray, clusters: int, num_pes: int) -> np.ndarray:
    return tiling._intervals(per_tile, clusters, num_pes)  # the parallel path's interval mapping, shared on purpose


def scatter_precision(conv: work.ScatterConv, cls: np.ndarray, arch: Arch, *, kc: int,
                      model: bs.MacModel, skip_zeros: bool) -> PrecisionWork:
    """Forward / backward-data on ``arch``: ``cls`` (N, C, Hx, Wx) classes of the streamed operand ``conv.x``."""
    rows, cols, banks = arch.pe_array.rows, arch.pe_array.cols, arch.pe.accumulator_banks
    hx, wx = conv.x.shape[2:]
    tr, tc, clusters = tiling.tile_grid(rows, cols, hx, wx, **tiling.scatter_mapping_inputs(conv, kc, model.side, arch))
    eh, ew = work.split_edges(hx, tr), work.split_edges(wx, tc)
    hists = []
    for ph in conv.phases:  # same phase split as work.planar_counts
        h0, w0 = conv.x_phase(ph)
        sh, sw = (1, 1) if conv.mode == "up" else conv.stride
        sub = cls[:, :, h0::sh, w0::sw]
        seh = np.clip(-(-(eh - h0) // sh), 0, sub.shape[2])
        sew = np.clip(-(-(ew - w0) // sw), 0, sub.shape[3])
        hists.append(bs.tile_histogram(sub, row_edges=seh, col_edges=sew, lanes=model.lanes, skip_zeros=skip_zeros))
    nw = work.group_weight_counts(conv, kc)
    cyc, prod, bops = bs.scatter_cycles(nw, bs.stack_phases(hists), model)
    floor = -(-prod // banks)
    return PrecisionWork(mult_cycles=_intervals(cyc, clusters, rows * cols),
                         accumulator_floor=_intervals(floor, clusters, rows * cols),
                         products=int(prod.sum()), bit_ops=bops)


def weight_grad_precision(op: work.PixelOuterProduct, cls: np.ndarray, arch: Arch, *, kc: int,
                          model: bs.MacModel, skip_zeros: bool) -> PrecisionWork:
    """Backward-weight on ``arch`` as :func:`hwsim.sim.gemm.weight_grad_counts`: ``cls`` (N, K, P, Q) are the
    δ̃z classes of ``op.dz``, ``op.a`` the (role) activation mask."""
    rows, cols, banks = arch.pe_array.rows, arch.pe_array.cols, arch.pe.accumulator_banks
    n, k, p, q = cls.shape
    kg = k // op.groups
    chunk = op.field_chunk(kc, arch.pe.accumulator_banks * arch.pe.accumulator_bank_entries)
    tr, tc, clusters = tiling.tile_grid(rows, cols, p, q, groups=-(-k // kc), images=n,  # as the parallel path
                                        min_balance=arch.pe_array.planar_min_balance)
    eh, ew = work.split_edges(p, tr), work.split_edges(q, tc)
    gk = -(-k // kc)
    hist = bs.channel_histogram(cls, group=kc, lanes=model.lanes, skip_zeros=skip_zeros)  # (K, N, G, P, Q)
    cyc = np.zeros((gk, n, tr * tc), dtype=np.int64)
    prod = np.zeros_like(cyc)
    bops = 0

    def tiles(x: np.ndarray) -> np.ndarray:  # (N, g, P, Q) → (g, N, T)
        t = work.segment_sum(work.segment_sum(x, eh, axis=2), ew, axis=3)
        return t.reshape(n, x.shape[1], tr * tc).transpose(1, 0, 2)

    for gi in range(op.groups):
        y = op.field_counts(gi, chunk=chunk)                     # (N, chunks, P, Q)
        ks = slice((gi * kg) // kc, -(-((gi + 1) * kg) // kc))
        sub = bs.GroupHistogram(classes=hist.classes, groups=hist.groups[:, :, ks], members=hist.members[:, :, ks])
        c_pix, p_pix, b = bs.pixel_cycles(y, sub, model)
        cyc[ks] += tiles(c_pix)
        prod[ks] += tiles(p_pix)
        bops += b
    floor = -(-prod // banks)
    return PrecisionWork(mult_cycles=_intervals(cyc, clusters, rows * cols),
                         accumulator_floor=_intervals(floor, clusters, rows * cols),
                         products=int(prod.sum()), bit_ops=bops)


def precision_work(ops: Operands, pass_name: str, arch: Arch, masks: tuple[np.ndarray, np.ndarray], *,
                   kc: int | None = None) -> PrecisionWork:
    """Work of one layer-pass of ``ops`` (:class:`~hwsim.sim.operands.Operands`) on a bit_serial/bit_fusion ``arch``.

    ``masks`` are the (broadcast, streamed) role masks the parallel path uses (real where the role
    is skipped, else ones), so both paths see exactly the same operands.
    """
    if ops.dz_levels is None:
        raise ValueError(f"layer {ops.name!r}: pe.mac={arch.pe.mac} needs the δ̃z levels (Operands.dz_levels)")
    model = serial_model(arch, pass_name)
    kc = kc or capacity.group_kc(ops, pass_name, arch, masks)
    cls = serial_classes(model, pass_name, levels=ops.dz_levels, a_mask=masks[1])
    if pass_name == "backward_weight":
        return weight_grad_precision(capacity.outer_product(ops, masks), cls, arch, kc=kc, model=model,
                                     skip_zeros=arch.zero_skip.gradients)
    # forward: an unskipped a is all ones, so skipping zero classes changes nothing
    skip_zeros = True if pass_name == "forward" else arch.zero_skip.gradients
    return scatter_precision(capacity.scatter_conv(ops, pass_name, masks), cls, arch, kc=kc, model=model,
                             skip_zeros=skip_zeros)


def busy_split(pw: PrecisionWork, conflict_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """(multiplier cycles, bank-conflict cycles): the sampled address-conflict rate, raised to the accumulator floor."""
    mult = pw.mult_cycles
    rate_cycles = np.ceil(mult * conflict_rate - 1e-9).astype(np.int64) if conflict_rate > 0 else np.zeros_like(mult)
    return mult, np.maximum(rate_cycles, pw.accumulator_floor - mult)


def useful_bit_ops(ops: Operands, pass_name: str, arch: Arch, *, real_only: bool) -> tuple[int, int]:
    """(products, bit-ops) of the products that land on a valid output, each at its serial value's own class.

    ``real_only``: both operands non-zero (the ideal's work); else the operands the arch streams
    (its role masks; streamed zero levels at the smallest issue class). ``bit-ops // mac_bits²``
    is the work in ``mac_bits`` MAC-equivalents that the cycle breakdown's ``compute`` is measured in.
    """
    model = serial_model(arch, pass_name)
    z = arch.zero_skip
    skip_w, skip_a, skip_g = (True, True, True) if real_only else (z.weights, z.activations, z.gradients)
    w = ops.w if skip_w else ops.w_struct
    a = ops.a if skip_a else np.ones_like(ops.a)
    geo = dict(stride=ops.stride, padding=ops.padding, dilation=ops.dilation)
    if pass_name == "forward":
        per = int(model.group_terms(model.constant_classes(np.ones(1, bool), model.mac_bits))[2][0])
        prod = work.effectual_macs_forward(w, a, out_hw=ops.dz.shape[2:], groups=ops.groups, **geo)
        return prod, prod * per
    cls = model.classes(ops.dz_levels)
    streamed = (cls > 0) if skip_g else np.ones(cls.shape, dtype=bool)
    weight = np.where(streamed, model.group_terms(cls)[2], 0)
    if pass_name == "backward_data":
        f = work.effectual_macs_backward_data
        return (f(w, streamed, in_hw=ops.a.shape[2:], **geo), f(w, weight, in_hw=ops.a.shape[2:], **geo))
    f = work.effectual_macs_backward_weight
    kw = dict(groups=ops.groups, kernel=ops.kernel, **geo)
    return f(streamed, a, **kw), f(weight, a, **kw)
