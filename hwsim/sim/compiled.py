"""The simulator's counting steps run by the compiled extension (``hwsim.sim._bankkernel``), beside their numpy paths.

Each function here gives the same integers, in the same order, as the numpy code it stands for, which stays the
definition and the fallback (no C compiler at install, or ``HWSIM_SIM_KERNEL=numpy``: :func:`hwsim.sim.banks.compiled_on`):

* :func:`planar_counts` — :func:`hwsim.sim.work.planar_counts`, the streamed operand's non-zeros per (image,
  channel, phase, planar tile), one pass over the mask instead of a reduction per tile row and column;
* :func:`weight_grad_cycles` — the backward-weight cycles per (Kc group, image, tile) and products of
  :func:`hwsim.sim.gemm.weight_grad_counts` (``hwsim/sim/_bankcounts.h``);
* :func:`fillers` — the run-length fillers of a bit-packed mask (:func:`hwsim.sim.traffic.run_length_fillers`);
* :func:`scatter_units` / :func:`weight_grad_units` — the bank-address parts of the sampled units of
  :func:`hwsim.sim.gemm._scatter_units` / :func:`hwsim.sim.gemm._weight_grad_units` (``hwsim/sim/_bankunits.h``).
"""

from __future__ import annotations

import numpy as np

from hwsim.sim import banks, work


def planar_counts(conv: work.ScatterConv, rows: int, cols: int) -> np.ndarray:
    """:func:`hwsim.sim.work.planar_counts` (int64 (N, C, Φ, rows·cols)), compiled when :func:`banks.compiled_on`.

    An all-ones streamed operand (a role the arch does not skip) keeps the numpy path: it is counted on one plane."""
    if not banks.compiled_on() or work.is_broadcast_ones(conv.x) or conv.x.size == 0:
        return work.planar_counts(conv, rows, cols)
    n, c, hx, wx = conv.x.shape
    phases = np.array([conv.x_phase(ph) for ph in conv.phases], dtype=np.int64)
    steps = (1, 1) if conv.mode == "up" else conv.stride
    out = np.empty((n, c, len(phases), rows * cols), dtype=np.int64)
    banks.compiled().planar_counts(conv.x, work.split_edges(hx, rows), work.split_edges(wx, cols), phases, *steps,
                                   out)
    return out


def weight_grad_cycles(xg: np.ndarray, ceil_y: np.ndarray, ysum: np.ndarray, eh: np.ndarray, ew: np.ndarray, *,
                       f: int, ks: slice, cyc: np.ndarray) -> int:
    """Adds ⌈xg / F⌉ · ceil_y of the Kc groups ``ks`` over each tile's pixels into ``cyc`` (G, N, tiles) and returns
    Σ xg · ysum over them — :func:`hwsim.sim.gemm.weight_grad_counts`' per-pixel sums (``xg``: (N, G, P, Q),
    ``ceil_y`` / ``ysum``: (N, P, Q), C-contiguous int64), in one pass."""
    return banks.compiled().weight_grad_cycles(xg, np.ascontiguousarray(ceil_y, dtype=np.int64),
                                               np.ascontiguousarray(ysum, dtype=np.int64), eh, ew, f, ks.start,
                                               ks.stop, cyc)


def fillers(packed: np.ndarray, n: int, rl_bits: int) -> int | None:
    """:func:`hwsim.sim.traffic.run_length_fillers` of the mask of ``n`` elements bit-packed into ``packed`` (MSB
    first, ``rl_bits`` >= 3), compiled; ``None`` when the numpy path runs (:func:`banks.compiled_on` is false)."""
    if not banks.compiled_on():
        return None
    return banks.compiled().fillers(packed, n, rl_bits)


def _halo(conv: work.ScatterConv, th: int, tw: int) -> tuple[int, int]:
    """(rows, cols) of a PE's accumulator address space for a ``th × tw`` tile, halo included (as the numpy path)."""
    r_, s_ = conv.w.shape[2:]
    dl = conv.dilation
    if conv.mode == "up":
        return th * conv.stride[0] + (r_ - 1) * dl[0], tw * conv.stride[1] + (s_ - 1) * dl[1]
    st = conv.stride
    return -(-th // st[0]) + -(-(r_ - 1) * dl[0] // st[0]), -(-tw // st[1]) + -(-(s_ - 1) * dl[1] // st[1])


def scatter_units(conv: work.ScatterConv, units: tuple[np.ndarray, ...], tr: int, tc: int, kc: int) -> banks.Units:
    """The address parts of the sampled forward / backward-data ``units`` (g, n, c, φ, t) of
    :func:`hwsim.sim.gemm._scatter_units`, built by the compiled bank model: the same integers in the same order."""
    hx, wx = conv.x.shape[2:]
    eh, ew = work.split_edges(hx, tr), work.split_edges(wx, tc)
    th, tw = -(-hx // tr), -(-wx // tc)  # the largest tile of a near-equal split
    hh, wh = _halo(conv, th, tw)
    o, cw, r_, s_ = conv.w.shape
    og, cb = (o // conv.groups, cw) if conv.compact else (0, 0)
    geo = np.array([kc, conv.mode == "up", *conv.stride, *conv.dilation, *conv.padding, hh, wh, og, cb],
                   dtype=np.int64)
    phases = np.array([(*ph, *conv.x_phase(ph)) for ph in conv.phases], dtype=np.int64)
    rows = np.stack(units, axis=1).astype(np.int64, copy=False)
    nu = rows.shape[0]
    ax, ay = np.empty(nu * kc * r_ * s_, dtype=np.int64), np.empty(nu * th * tw, dtype=np.int64)
    ax_off, ay_off = np.empty(nu + 1, dtype=np.int64), np.empty(nu + 1, dtype=np.int64)
    nx, ny = banks.compiled().scatter_units(conv.x, conv.w, geo, rows, phases, eh, ew, tc, ax, ax_off, ay, ay_off)
    return banks.Units(ax[:nx], ax_off, ay[:ny], ay_off)


def weight_grad_units(op: work.PixelOuterProduct, units: tuple[np.ndarray, ...], *, kc: int,
                      chunk: int) -> banks.Units:
    """The address parts of the sampled backward-weight ``units`` (n, Kc group, p, q) of
    :func:`hwsim.sim.gemm._weight_grad_units`, built by the compiled bank model: the same integers in the same order."""
    rows = np.stack(units, axis=1).astype(np.int64, copy=False)
    geo = np.array([kc, chunk, op.groups, *op.stride, *op.dilation, *op.padding, *op.kernel], dtype=np.int64)
    nu = rows.shape[0]
    cg = op.a.shape[1] // op.groups
    ax, ay = np.empty(nu * kc, dtype=np.int64), np.empty(nu * min(chunk, cg) * op.kernel[0] * op.kernel[1], dtype=np.int64)
    ax_off, ay_off = np.empty(nu + 1, dtype=np.int64), np.empty(nu + 1, dtype=np.int64)
    nx, ny = banks.compiled().weight_grad_units(op.dz, op.a, geo, rows, ax, ax_off, ay, ay_off)
    return banks.Units(ax[:nx], ax_off, ay[:ny], ay_off)
