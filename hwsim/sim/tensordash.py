"""TensorDash-style operand scheduling on a dense output-stationary array: cycles from the real masks.

**The array.** ``dataflow: systolic_os`` with ``pe.mult_i = L`` dot-product lanes per PE: PE (m, n) of an
R × C fold accumulates out[m, n] over the reduction dimension Kr, L values per step, so one dense fold
streams T = ⌈Kr / L⌉ steps (:func:`hwsim.sim.systolic.fold_plan` with ``lanes``). Each dot product's
operand is a *stream*: an (L lanes × T steps) block, value k at step k // L, lane k % L.

**The scheduler** (``zero_skip`` on, :mod:`hwsim.arch.tensordash`), per stream, cycle by cycle: the staging
window holds steps h … h + lookahead (h starts at 0; below). Each multiplier lane i tries,
in this priority order, until it finds a non-zero nobody took yet:

1. its own lane at step h, h + 1, …, h + lookahead (the lookahead options), then
2. the lanes i + 1, i − 1, i + 2, i − 2, … (mod L, ``lookaside`` of them) at step h + min(1, lookahead).

All lanes try option 1 together, then option 2, …: the lanes an option names are a permutation of the lanes,
so two lanes never claim one value in the same option (this is the level-by-level priority selection of a
hardware scheduler; TensorDash's own connectivity pattern and tie-breaking differ in detail — hwsim's pattern
is the rule above). The partner operand is selected by the same (lookahead + 1 + lookaside)-input mux, and the
product is summed into the same dot product, so moving it never changes the result. After the picks the
window advances past every leading step that has no non-zero left (at most lookahead + 1 steps a cycle).

Properties, by construction: every lane's first option is its own value at step h, so step h always drains
and a stream never takes more than T cycles (1.0× at density 1: T cycles exactly); the window advances at most
lookahead + 1 steps a cycle, so a stream never takes fewer than ⌈T / (lookahead + 1)⌉ cycles (the *staging
bound*), even all-zero.

**Lock-step folds.** The PEs of a fold share their operand streams along rows and columns, so a fold advances
at the pace of its slowest scheduled stream: a fold's streaming time is the max of its streams' cycles (rows
of A when A is scheduled, columns of B when B is), plus the dense fold's load and skew (a ``broadcast``
array: none per fold, R + C − 2 once per GEMM). What is
scheduled: forward the activations (A = im2col(a), M = N·P·Q rows of C·R·S), backward-data δ̃z (A = δ̃z,
N·P·Q rows of K), backward-weight δ̃z (B = δ̃z, K columns of N·P·Q) or a (A = im2col(a)ᵀ, C·R·S rows of N·P·Q)
per ``tensordash.backward_weight_operand``; ``auto`` takes the sparser tensor (lower non-zero fraction) of
those whose role ``zero_skip`` names. A zero of the scheduled operand costs no multiply; every product of a
non-zero (the partner's zeros included) is issued.

Everything is vectorised over streams with numpy (a step's lanes are the bits of one integer, so an option is a
few bitwise operations per stream per cycle, never an event per MAC); the loop runs over the cycles of the longest
stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hwsim.sim.systolic import FoldPlan

if TYPE_CHECKING:
    from hwsim.arch import Arch
    from hwsim.sim.operands import Operands


def options(lookahead: int, lookaside: int) -> list[tuple[int, int]]:
    """(step offset, lane offset) of each lane's candidates, in priority order (module doc)."""
    own = [(dt, 0) for dt in range(lookahead + 1)]
    side = [(min(1, lookahead), (j // 2 + 1) * (1 if j % 2 == 0 else -1)) for j in range(lookaside)]
    return own + side


def stream_cycles(mask: np.ndarray, *, lanes: int, lookahead: int, lookaside: int) -> np.ndarray:
    """Cycles the scheduler needs for each stream of ``mask`` (S streams × Kr values, bool) on ``lanes`` lanes.

    Value k of a stream sits at step k // lanes, lane k % lanes (the tail of the last step is zero).
    Returns an int64 array of S cycle counts, each in [⌈T / (lookahead + 1)⌉, T], T = ⌈Kr / lanes⌉.
    A step's lanes are the bits of one unsigned integer (≤ 64 lanes), so an option is a bit rotation.
    """
    if lookaside > lanes - 1:
        raise ValueError(f"lookaside {lookaside} needs at least {lookaside + 1} lanes, got {lanes}")
    if lanes > 64:
        raise ValueError(f"at most 64 lanes per stream are modelled, got {lanes}")
    s, kr = mask.shape
    t = math.ceil(kr / lanes) if kr else 0
    depth = lookahead + 1
    grid = _pack(mask, lanes, t, depth)                      # (S, t + depth) lane bits; `depth` zero steps past the end
    full = np.uint64((1 << lanes) - 1)
    head = np.zeros(s, dtype=np.int64)
    cycles = np.zeros(s, dtype=np.int64)
    live = np.flatnonzero(head < t)
    window = np.arange(depth)
    opts = options(lookahead, lookaside)
    while live.size:
        rows = head[live][:, None] + window                  # (n, depth) steps of each live stream's window
        win = grid[live[:, None], rows]                      # (n, depth) copy
        free = np.full(live.size, full)
        for dt, off in opts:
            src = _rotate(win[:, dt], off, lanes, full)      # bit i = lane (i + off) mod L
            take = free & src
            win[:, dt] &= ~_rotate(take, -off, lanes, full)
            free &= ~take
        advance = np.cumprod(win == 0, axis=1).sum(axis=1)   # leading drained steps (≥ 1: step h drains)
        grid[live[:, None], rows] = win
        head[live] += advance
        cycles[live] += 1
        live = live[head[live] < t]
    return cycles


def _pack(mask: np.ndarray, lanes: int, t: int, depth: int) -> np.ndarray:
    """(S, t + depth) uint64: bit i of step k is value k·lanes + i of the stream (little-endian bytes)."""
    s, kr = mask.shape
    nbytes = 1 << max(0, math.ceil(math.log2(max(1, math.ceil(lanes / 8)))))   # 1, 2, 4 or 8 bytes per step
    flat = np.zeros((s, t * lanes), dtype=bool)
    flat[:, :kr] = mask
    steps = np.zeros((s, t, nbytes * 8), dtype=bool)
    steps[:, :, :lanes] = flat.reshape(s, t, lanes)
    packed = np.packbits(steps, axis=2, bitorder="little").view(f"<u{nbytes}")[:, :, 0]
    grid = np.zeros((s, t + depth), dtype=np.uint64)
    grid[:, :t] = packed
    return grid


def _rotate(x: np.ndarray, off: int, lanes: int, full: np.uint64) -> np.ndarray:
    """Rotate ``lanes``-bit words so that bit i holds bit (i + off) mod lanes."""
    off %= lanes
    if not off:
        return x
    return ((x >> np.uint64(off)) | (x << np.uint64(lanes - off))) & full


def im2col_rows(a: np.ndarray, *, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                dilation: tuple[int, int], out_hw: tuple[int, int], transpose: bool = False) -> np.ndarray:
    """The im2col matrix of the bool mask ``a`` (N, C, H, W): (N·P·Q, C·R·S), or (C·R·S, N·P·Q) if ``transpose``.

    Padding positions are zeros (the scheduler skips them, as it skips any zero).
    """
    (r, s), (sh, sw), (ph, pw), (dh, dw), (p, q) = kernel, stride, padding, dilation, out_hw
    ap = np.pad(a, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, c = ap.shape[:2]
    st = ap.strides
    view = np.lib.stride_tricks.as_strided(ap, shape=(n, c, p, q, r, s),
                                           strides=(st[0], st[1], st[2] * sh, st[3] * sw, st[2] * dh, st[3] * dw),
                                           writeable=False)
    if transpose:
        return view.transpose(1, 4, 5, 0, 2, 3).reshape(c * r * s, n * p * q)
    return view.transpose(0, 2, 3, 1, 4, 5).reshape(n * p * q, c * r * s)


def scheduled_operand(ops: Operands, pass_name: str, arch: Arch) -> str | None:
    """Which tensor the scheduler works on in ``pass_name`` ("a" | "dz"), or None (dense; module doc)."""
    skip = arch.zero_skip
    if pass_name == "forward":
        return "a" if skip.activations else None
    if pass_name == "backward_data":
        return "dz" if skip.gradients else None
    roles = [r for r, on in (("dz", skip.gradients), ("a", skip.activations)) if on]
    choice = arch.tensordash.backward_weight_operand
    if choice != "auto":
        return choice if choice in roles else None
    if len(roles) < 2:
        return roles[0] if roles else None
    return "a" if float(ops.a.mean()) < float(ops.dz.mean()) else "dz"


def _streams(ops: Operands, pass_name: str, operand: str, g: int) -> tuple[np.ndarray, str]:
    """(streams × reduction) mask of group ``g``'s scheduled operand, and the fold side it runs along."""
    kg, cg = ops.dz.shape[1] // ops.groups, ops.a.shape[1] // ops.groups
    dz, a = ops.dz[:, g * kg:(g + 1) * kg], ops.a[:, g * cg:(g + 1) * cg]
    geo = dict(kernel=ops.kernel, stride=ops.stride, padding=ops.padding, dilation=ops.dilation,
               out_hw=tuple(ops.dz.shape[2:]))
    if pass_name == "forward":
        return im2col_rows(a, **geo), "rows"
    if pass_name == "backward_data":
        return dz.transpose(0, 2, 3, 1).reshape(-1, kg), "rows"
    if operand == "dz":
        return dz.transpose(1, 0, 2, 3).reshape(kg, -1), "cols"
    return im2col_rows(a, transpose=True, **geo), "rows"


@dataclass(frozen=True)
class ScheduledWork:
    """One layer-pass on the scheduling array: cycles per column fold (execution order) and products issued."""

    column_fold_cycles: np.ndarray
    products: int
    operand: str


def fold_cycles(stream: np.ndarray, side: str, plan: FoldPlan) -> np.ndarray:
    """Cycles of each column fold of one GEMM (one group) given its streams' scheduled ``stream`` cycles."""
    fixed = plan.cycles_per_fold - plan.t             # load + skew: what the scheduler does not shorten (plan.once:
    #                                                   the caller adds a broadcast array's one fill/drain)
    per, folds = (plan.rows, plan.row_folds) if side == "rows" else (plan.cols, plan.col_folds)
    padded = np.zeros(per * folds, dtype=np.int64)
    padded[:stream.size] = stream
    t_fold = padded.reshape(folds, per).max(axis=1) + fixed
    if side == "rows":                                # every column fold runs all row folds
        return np.full(plan.col_folds, int(t_fold.sum()), dtype=np.int64)
    return t_fold * plan.row_folds


def schedule(ops: Operands, pass_name: str, arch: Arch, plan: FoldPlan) -> ScheduledWork | None:
    """The scheduled GEMM of ``ops`` (all groups) on ``arch`` with the dense ``plan`` of one group; None if dense."""
    operand = scheduled_operand(ops, pass_name, arch)
    if operand is None:
        return None
    td, lanes = arch.tensordash, arch.pe.mult_i
    per_group, products = [], 0
    for g in range(ops.groups):
        mask, side = _streams(ops, pass_name, operand, g)
        cyc = stream_cycles(mask, lanes=lanes, lookahead=td.lookahead, lookaside=td.lookaside)
        per_group.append(fold_cycles(cyc, side, plan))
        partners = plan.sc if side == "rows" else plan.sr   # each scheduled non-zero meets every partner value
        products += int(mask.sum()) * partners
    out = np.concatenate(per_group)
    out[-1] += plan.once - 1                                       # SCALE-Sim counts the last busy cycle from 0 (systolic.py)
    return ScheduledWork(column_fold_cycles=out, products=products, operand=operand)


__all__ = ["ScheduledWork", "fold_cycles", "im2col_rows", "options", "schedule", "scheduled_operand",
           "stream_cycles"]
