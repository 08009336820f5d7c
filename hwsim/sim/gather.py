"""The δz-driven gather dataflow (``dz_gather``) for the backward passes: work per PE from the real masks.

In the backward passes one operand, δ̃z, is ~1–10 % dense. The gather makes it the driver: every
non-zero δ̃z is a *work item*, multiplied (one scalar, broadcast) with the non-zero operands it meets,
``L = pe.mult_f · pe.mult_i`` products per cycle per PE (the Cartesian PE's multipliers, fed by the
``gather:`` unit's compactor instead of an F×I product):

==================  ==========================================  ========================================
pass                work item (its vector)                      products go to
==================  ==========================================  ========================================
backward_data       δ̃z(n, k, p, q) × the non-zero W(k, c, r, s)  δa(n, c, p·st + r·dil − pad, …), taps
                    of output channel k whose tap lands inside   outside the input are skipped
                    the input (linear: the row W(k, :))
backward_weight     δ̃z(n, k, p, q) × the non-zero a(n, c,        δW(k, c, r, s) of one *block*
                    p·st + r·dil − pad, …) of its receptive      (k, c-chunk): chunk · R · S values
                    field, per channel chunk (linear: the row    fill the accumulator banks
                    a(n, :))
==================  ==========================================  ========================================

An item of ``m`` products takes ⌈m / L⌉ cycles (a partly filled vector is fragmentation). Products are
exact: with both operands' real masks they are the effectual MACs (padding is never multiplied).

**Assignment — contiguous balanced chunks**, not a greedy queue: the items, in a fixed order, are cut
into one contiguous run per PE so each run holds ≈ 1/PEs of the cycles (item i goes to PE
⌊start_i · PEs / total⌋, start_i = cycles before it), so a PE's busy cycles are at most
total / PEs + the largest item. The order keeps locality:

* backward_weight: (k, c-chunk, n, p, q) — *owner blocks*. A block whose items all fall in one PE's run
  is owned by that PE: its δW is finished there, written back, and needs no cross-PE reduction. A block
  cut across m > 1 PEs (few large blocks, e.g. a first conv with C = 1) leaves m partial copies; they
  are reduced by the arch's ``reduction:`` network (:mod:`hwsim.sim.reduction`; all such blocks in
  one barrier interval, in parallel). The alternative is whole blocks per PE — longest first onto the
  least-loaded PE (Graham's LPT rule), no reduction at all; the pass takes whichever finishes first,
  the cut runs plus their reduction or the whole blocks (ties: whole blocks). Both are decided from the
  item costs, which a dispatcher knows from one prefix sum over the queued δ̃z before the PEs start;
* backward_data: (n, p, q, k) — each PE's run covers a band of output pixels, so its δa partial sums
  stay a band of the input image. Assumptions: they accumulate (at accumulator width) in the PE's
  output RAM, whose capacity is not checked (LeNet-5's bands fit its 10 KB; a wide layer at small batch,
  e.g. 56×56×64 over 64 PEs, would need channel chunks or spills that are not modelled); the halo rows two
  neighbouring bands share are not charged (as in the Cartesian model).

A pass is one barrier interval (``busy[0, p]``, PEs independent until the end). Bank conflicts are
not modelled (an assumption): the L products of a cycle go to distinct addresses (distinct c, r, s in
backward-weight; distinct (c, h, w) in backward-data), but distinct addresses may still share one of the
2·L banks, which would stall. numpy only; the work is counted per item, never simulated per MAC.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from hwsim.results.actions import Actions
from hwsim.sim import capacity, reduction, work

if TYPE_CHECKING:
    from hwsim.arch import Arch
    from hwsim.sim.operands import Operands


@dataclass(frozen=True, kw_only=True)
class GatherWork:
    """Per-PE multiplier cycles of one backward GEMM under the gather dataflow, and what they are made of."""

    busy: np.ndarray   # (1, PEs) int64 multiplier cycles, one MAC pass (one barrier interval)
    products: int      # products issued (= effectual MACs on real masks)
    items: int         # work items (non-zero δ̃z × operand chunks) through the work queues
    # backward-weight: per δW block cut across PEs, the PEs holding partial sums and the values per PE
    block_pes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    block_values: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # backward-weight, the alternative: whole δW blocks per PE (longest first onto the least-loaded PE), no
    # reduction; (1, PEs) cycles, None for backward-data. :func:`run` takes whichever finishes first.
    owned_busy: np.ndarray | None = None


def balanced_split(costs: np.ndarray, pes: int) -> np.ndarray:
    """PE of each item when ``costs`` (in order) are cut into ``pes`` contiguous runs of ≈ equal total (module doc)."""
    costs = np.asarray(costs, dtype=np.int64)
    total = int(costs.sum())
    if total == 0:
        return np.zeros(costs.shape, dtype=np.int64)
    start = np.cumsum(costs) - costs
    return np.minimum((start * pes) // total, pes - 1)  # zero-cost items after the last cycle stay on the last PE


def pe_cycles(costs: np.ndarray, pes: int) -> tuple[np.ndarray, np.ndarray]:
    """(cycles per PE (PEs,), PE of each item) of the contiguous balanced split of ``costs``."""
    pe = balanced_split(costs, pes)
    busy = np.bincount(pe, weights=costs, minlength=pes)
    return np.rint(busy).astype(np.int64), pe


def periodic_cycles(segments: list[tuple[np.ndarray, int]], pes: int) -> np.ndarray:
    """:func:`pe_cycles`' cycles per PE of a sequence written as segments, each one period of item costs repeated
    ``reps`` times, without writing the sequence out (the dense baseline: every δz an item, the same costs for
    every output channel or image). PE p takes the items starting in [⌈p·T/P⌉, ⌈(p+1)·T/P⌉) of the total T,
    so its cycles are F(⌈(p+1)·T/P⌉) − F(⌈p·T/P⌉), F(x) = the cost of the items that start before x."""
    per = [np.asarray(c, dtype=np.int64).ravel() for c, _ in segments]
    t1 = np.array([int(c.sum()) for c in per], dtype=np.int64)
    ends = np.cumsum(t1 * np.array([r for _, r in segments], dtype=np.int64))
    total = int(ends[-1]) if ends.size else 0
    if total == 0:
        return np.zeros(pes, dtype=np.int64)
    cum = [np.cumsum(c) for c in per]
    f = []
    for x in (-(-(np.arange(pes + 1, dtype=np.int64) * total) // pes)).tolist():   # ⌈p·T/P⌉
        g = int(np.searchsorted(ends, x, side="right"))   # the segment (of non-zero length) holding start x
        if g == len(per):
            f.append(total)
            continue
        off = int(ends[g - 1]) if g else 0
        reps, rem = divmod(x - off, int(t1[g]))
        j = int(np.searchsorted(cum[g] - per[g], rem, side="left"))   # items of the period starting before rem
        f.append(off + reps * int(t1[g]) + (int(cum[g][j - 1]) if j else 0))
    return np.diff(np.array(f, dtype=np.int64))


def lpt_cycles(costs: np.ndarray, pes: int) -> np.ndarray:
    """Cycles per PE (PEs,) when whole jobs of ``costs`` go, longest first, to the least-loaded PE (ties: lowest PE).

    Graham's LPT rule: within 4/3 of the best assignment. Used for whole δW blocks (no block split, no reduction).
    """
    load = [(0, p) for p in range(pes)]
    for c in sorted((int(x) for x in np.asarray(costs).ravel() if x > 0), reverse=True):
        t, p = heapq.heappop(load)
        heapq.heappush(load, (t + c, p))
    out = np.zeros(pes, dtype=np.int64)
    for t, p in load:
        out[p] = t
    return out


def _ceil_div(x: np.ndarray, d: int) -> np.ndarray:
    return -(-x // d)


def weight_grad(dz: np.ndarray, a: np.ndarray, *, groups: int, kernel: tuple[int, int], stride: tuple[int, int],
                padding: tuple[int, int], dilation: tuple[int, int], lanes: int, acc_entries: int,
                pes: int) -> GatherWork:
    """Backward-weight gather of masks ``dz`` (N, K, P, Q) and ``a`` (N, C, H, W) on ``pes`` PEs (module doc).

    ``lanes``: products per cycle per PE; ``acc_entries``: accumulator entries per PE (a δW block of
    chunk · R · S values must fit; chunk = ⌊acc_entries / (R·S)⌋ input channels, at most C / groups).
    """
    n, k, p, q = dz.shape
    kg, cg = k // groups, a.shape[1] // groups
    rs = kernel[0] * kernel[1]
    chunk = max(1, min(cg, acc_entries // rs))
    nch = -(-cg // chunk)
    chunk_len = np.minimum(chunk, cg - np.arange(nch) * chunk)           # channels per chunk (last may be short)
    costs, prods, blocks = [], 0, []
    op = work.PixelOuterProduct(dz=dz, a=a, groups=groups, kernel=kernel, stride=stride, padding=padding,
                                dilation=dilation)
    if work.is_broadcast_ones(dz):  # a role the arch does not skip: every δz is an item
        return _dense_weight_grad(op, groups=groups, chunk=chunk, chunk_len=chunk_len, lanes=lanes, pes=pes)
    for gi in range(groups):
        fld = op.field_counts(gi, chunk=chunk)                            # (N, chunks, P, Q) non-zero field operands
        dzg = dz[:, gi * kg:(gi + 1) * kg]
        kk, nn, pp, qq = np.nonzero(dzg.transpose(1, 0, 2, 3))            # items in (k, n, p, q) order
        m = fld[nn, :, pp, qq]                                            # (items, chunks) products
        prods += int(m.sum())
        # sequence order (k, chunk, n, p, q): stable sort of (item, chunk) by block id k·chunks + chunk
        bid = ((kk + gi * kg)[:, None] * nch + np.arange(nch)).ravel()
        order = np.argsort(bid, kind="stable") if nch > 1 else slice(None)  # one chunk: already in k order
        costs.append(_ceil_div(m.ravel()[order], lanes))
        blocks.append(bid[order])
    cost = np.concatenate(costs) if costs else np.zeros(0, dtype=np.int64)
    bid = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int64)
    busy, pe = pe_cycles(cost, pes)
    live = cost > 0
    bl = bid[live]                                                        # non-decreasing: blocks in sequence order
    first = np.flatnonzero(np.r_[True, bl[1:] != bl[:-1]]) if bl.size else np.zeros(0, dtype=np.int64)
    ub = bl[first]
    last = np.append(first[1:], bl.size) - 1
    pe_live = pe[live]
    spread = pe_live[last] - pe_live[first] + 1 if ub.size else np.zeros(0, dtype=np.int64)
    cut = spread > 1
    values = chunk_len[ub % nch] * rs
    block_cost = np.bincount(bid, weights=cost) if bid.size else np.zeros(0)
    return GatherWork(busy=busy[None, :], products=prods, items=int(live.sum()),
                      block_pes=spread[cut].astype(np.int64), block_values=values[cut].astype(np.int64),
                      owned_busy=lpt_cycles(np.rint(block_cost).astype(np.int64), pes)[None, :])


def _dense_weight_grad(op: work.PixelOuterProduct, *, groups: int, chunk: int, chunk_len: np.ndarray, lanes: int,
                       pes: int) -> GatherWork:
    """:func:`weight_grad` of an all-ones δz: per group one period of (chunk, n·p·q) costs, repeated for each of
    its output channels (:func:`periodic_cycles`); blocks and their cuts from the period's offsets."""
    kg, nch = op.dz.shape[1] // groups, chunk_len.size
    rs = op.kernel[0] * op.kernel[1]
    segs, prods, items = [], 0, 0
    for gi in range(groups):
        fld = op.field_counts(gi, chunk=chunk)
        m = fld.transpose(1, 0, 2, 3).reshape(nch, -1)                   # (chunks, n·p·q) products per item
        segs.append((_ceil_div(m, lanes), kg))
        prods += kg * int(m.sum())
        items += kg * int(np.count_nonzero(m))
    busy = periodic_cycles(segs, pes)
    total = sum(int(c.sum()) * r for c, r in segs)
    starts, lasts, bcost = [], [], []
    off = 0
    for c, reps in segs:
        cost = c.sum(axis=1)                                              # (chunks,) cycles of one block
        first = np.cumsum(cost) - cost                                    # its offset in the period
        tail = c.shape[1] - 1 - np.argmax(c[:, ::-1] > 0, axis=1)         # its last item with work
        k_off = off + np.arange(reps)[:, None] * int(c.sum())             # (k, 1) period offsets
        starts.append((k_off + first).ravel())
        lasts.append((k_off + first + cost - c[np.arange(nch), tail]).ravel())
        bcost.append(np.broadcast_to(cost, (reps, nch)).ravel())
        off += reps * int(c.sum())
    bcost_all = np.concatenate(bcost)
    live = bcost_all > 0
    if total:
        pe_of = lambda x: np.minimum((np.concatenate(x)[live] * pes) // total, pes - 1)  # noqa: E731
        spread = pe_of(lasts) - pe_of(starts) + 1
    else:
        spread = np.zeros(0, dtype=np.int64)
    values = np.broadcast_to(chunk_len * rs, (groups * kg, nch)).ravel()[live]
    cut = spread > 1
    return GatherWork(busy=busy[None, :], products=prods, items=items, block_pes=spread[cut].astype(np.int64),
                      block_values=values[cut].astype(np.int64), owned_busy=lpt_cycles(bcost_all, pes)[None, :])


def data_grad(w: np.ndarray, dz: np.ndarray, *, in_hw: tuple[int, int], stride: tuple[int, int],
              padding: tuple[int, int], dilation: tuple[int, int], lanes: int, pes: int) -> GatherWork:
    """Backward-data gather of masks ``w`` (K, C, R, S) (a grouped layer's compact
    (K, C/groups, R, S) or expanded: each output channel's counts are the same) and ``dz`` (N, K, P, Q) (module doc)."""
    n, k, p, q = dz.shape
    r, s = w.shape[2:]
    wc = w.sum(axis=1, dtype=np.int64)                                    # (K, R, S) non-zeros per tap
    hp = np.arange(p)[:, None] * stride[0] + np.arange(r)[None, :] * dilation[0] - padding[0]
    wq = np.arange(q)[:, None] * stride[1] + np.arange(s)[None, :] * dilation[1] - padding[1]
    rv = ((hp >= 0) & (hp < in_hw[0])).astype(np.int64)                  # (P, R) tap lands in the input
    sv = ((wq >= 0) & (wq < in_hw[1])).astype(np.int64)                   # (Q, S)
    per = np.einsum("krs,pr,qs->kpq", wc, rv, sv)                         # products of an item at (k, p, q)
    if work.is_broadcast_ones(dz):  # every δz an item: the (p, q, k) costs repeat for each image
        one = _ceil_div(per.transpose(1, 2, 0).ravel(), lanes)
        return GatherWork(busy=periodic_cycles([(one, n)], pes)[None, :], products=n * int(per.sum()),
                          items=n * int(np.count_nonzero(one)))
    nn, pp, qq, kk = np.nonzero(dz.transpose(0, 2, 3, 1))                 # items in (n, p, q, k) order
    m = per[kk, pp, qq]
    cost = _ceil_div(m, lanes)
    busy, _ = pe_cycles(cost, pes)
    return GatherWork(busy=busy[None, :], products=int(m.sum()), items=int((cost > 0).sum()))


def gemm_work(ops: Operands, pass_name: str, arch: Arch, masks: tuple[np.ndarray, np.ndarray]) -> GatherWork:
    """The gather's work for one backward pass of ``ops`` on the (broadcast, streamed) role ``masks``
    (as :func:`hwsim.sim.passes._role_masks` gives them: real where ``arch`` skips the role, else ones)."""
    geo = dict(stride=ops.stride, padding=ops.padding, dilation=ops.dilation)
    pe = arch.pe
    if pass_name == "backward_weight":
        dz, a = masks
        capacity.weight_grad_kc(ops.kernel, arch, name=ops.name)  # one channel's R·S sums must fit (else an error)
        return weight_grad(dz, a, groups=ops.groups, kernel=ops.kernel, lanes=pe.multipliers,
                           acc_entries=pe.accumulator_banks * pe.accumulator_bank_entries, pes=arch.num_pes, **geo)
    if pass_name == "backward_data":
        w, dz = masks
        return data_grad(w, dz, in_hw=ops.a.shape[2:], lanes=pe.multipliers, pes=arch.num_pes, **geo)
    raise ValueError(f"layer {ops.name!r}: dz_gather maps the backward passes only, not {pass_name}")


def run(ops: Operands, pass_name: str, arch: Arch, masks: tuple[np.ndarray, np.ndarray], *, p: int,
        tensor_bytes: tuple[float, float, float], macs_effectual: int) -> tuple[np.ndarray, Actions, int]:
    """(multiplier cycles (1, PEs), actions, reduction cycles) of one backward pass under the gather.

    ``p``: MAC passes of wide δ̃z (cycles and products multiply); ``tensor_bytes``: (streamed, broadcast,
    output) bytes in the arch's format, as :func:`hwsim.sim.passes.run_pass` computes them (δ̃z is the
    broadcast scalar here, the other operand the vector). Energy: every product a multiply, an add and an
    accumulator access; with zero skipping a compactor and a scatter-crossbar traversal (two
    ``crossbar_pj_per_product``); δ̃z read once, each vector operand read once per product it takes part
    in; each work item written to and read from the work queue once (``gather.queue_entry_bytes``).
    DRAM and global-buffer bytes are added by ``run_pass``.
    """
    gw = gemm_work(ops, pass_name, arch, masks)
    s_bytes, b_bytes, o_bytes = tensor_bytes
    dz_bytes, vec_bytes = (b_bytes, s_bytes) if pass_name == "backward_weight" else (s_bytes, b_bytes)
    vec = masks[1] if pass_name == "backward_weight" else masks[0]
    vec_nnz = vec.size if work.is_broadcast_ones(vec) else int(np.count_nonzero(vec))
    issued = gw.products * p
    toggled = macs_effectual * p if arch.zero_gating else issued
    skip = arch.zero_skip.any
    acts = Actions(mult=toggled, add=toggled, acc_access=toggled, reg_read=issued, xbar=2 * issued if skip else 0.0,
                   sram_input_bytes=vec_bytes * (gw.products / max(1, vec_nnz)) * p
                   + 2.0 * gw.items * arch.gather.queue_entry_bytes,
                   sram_weight_bytes=dz_bytes, sram_output_bytes=o_bytes)
    if not gw.block_pes.size:
        return gw.busy * p, acts, 0
    red_cycles, red_acts = reduction.cost(gw.block_pes, gw.block_values, np.zeros_like(gw.block_pes), arch)
    if gw.owned_busy is not None and gw.owned_busy.max() * p <= gw.busy.max() * p + red_cycles:
        return gw.owned_busy * p, acts, 0  # whole blocks per PE finish no later: no reduction
    return gw.busy * p, acts + red_acts, red_cycles
