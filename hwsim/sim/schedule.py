"""One schedule per training iteration (``memory.schedule: iteration``): all layer-passes in one SimPy run.

With ``memory.schedule: isolated`` (the default for now) every layer-pass is its own SimPy run
(:func:`hwsim.sim.model.simulate_intervals`): its first load and its last write-back are exposed, and a
memory-bound layer-pass cannot borrow the compute of the others. Here the intervals of every layer-pass
of one iteration run back to back on one array, one DMA engine and one DRAM channel, in execution order:

* forward, layers 1..L; then backward, layers L..1, each layer's backward-data then backward-weight; then the
  weight update of layers L..1 (:mod:`hwsim.sim.update`: its chunks are intervals whose spans are vector-unit
  cycles) (:func:`execution_order`; only the layer-passes the replay has);
* the rules of :mod:`hwsim.sim.model` apply across layer-pass boundaries unchanged: the loader runs at
  most one interval ahead of the array (two tile buffers; ``memory.tile_buffers`` B: B − 1 ahead), so it prefetches the next layer-pass's first
  tile behind the current layer-pass's last interval; the writer drains an interval's outputs after its
  barrier, behind the next layer-pass's compute; loads and stores share the one channel, which serves them as
  ``memory.dram_arbiter`` says (:mod:`hwsim.sim.model`: ``reads_first`` — a waiting load before a waiting
  write-back, also when a barrier wakes both in the same cycle — or ``in_order``, first come first served);
* **barriers only where a data dependency forces one** (:func:`producers`): a layer-pass that reads a
  tensor from DRAM which an earlier layer-pass of the iteration writes (a spilled activation or δ̃z, the
  training stash) does not start its *first load* before that producer's write-backs are complete (the
  writer drains in order, so: before every write-back up to the producer's last). A tensor kept on chip
  by residency (:mod:`hwsim.sim.residency`) needs no such wait: the consumer's first tile follows the
  producer's last barrier on the same array anyway. Weights have no producer inside the iteration; an
  activation × activation product's second operand (attention's K, V) has one, the forward of its source
  (:func:`hwsim.sim.residency.operand_sources`), and its gradient is part of that source's δ̃z.

Attribution (records add up): layer-pass k owns the cycles from the previous layer-pass's last barrier to
its own last barrier; the last one also owns the final write-back. So Σ attributed = the makespan, and
each layer-pass's ``memory_stall`` = attributed − Σ of its barrier spans − its ``fill_drain``, where
``fill_drain`` is the iteration's exposed first load (cycles before the first tile starts, on the first
layer-pass) and exposed last write-back (cycles after the last barrier, on the last layer-pass): the part
no schedule can hide. Everything else the PEs wait for DRAM is bandwidth- or dependency-bound stall.

**What the per-pass numbers mean.** A wait is charged to the layer-pass that waits, not to the passes whose
transfers hold the channel meanwhile: a consumer of a spilled tensor waits behind every write-back queued ahead
of its producer's (the writer drains in order), e.g. the δW of earlier backward-weight passes, whose write-back
then costs them nothing. So per-pass and per-phase figures move (a backward-weight pass looks faster, the next
DRAM consumer slower) while the makespan does not. The same holds for ``memory.dram_arbiter``: which transfer
the channel serves first barely moves the makespan but moves waits between passes (synthetic ResNet-18 224² b1 on
scnn, sparse: backward-data 1.60 M → 2.86 M cycles and backward-weight 2.52 M → 1.25 M from ``in_order`` to
``reads_first``, the iteration −0.01 %). The schedule measures how much: ``memory_stall_foreign``
(:attr:`Timeline.memory_stall_foreign`, stored in the results as ``CycleBreakdown.memory_stall_foreign``, a share
of ``memory_stall``, never a part of the total) counts the cycles of a layer-pass's memory stall during which the
DRAM channel carried a transfer (a load or a write-back) of *another* layer-pass, and :attr:`Timeline.waited_on`
names those owners. The rest of the stall is the pass waiting for its own transfers (or an idle channel).
``hwsim simulate`` prints each pass's
share as the row "waits on other passes" and footnotes the layer-passes with the most
(:func:`hwsim.commands.simulate.foreign_waits`). Under ``isolated`` it is 0 everywhere: a pass has the channel to
itself. Owners are found per transfer (:func:`~hwsim.sim.model.run_intervals`' ``held``: one record per
transfer, never per MAC) by one merge of the array's idle gaps with the channel's busy spans.

Not in the SimPy timeline, added serially after it exactly as in the isolated model: the backward-weight
cross-PE δW reduction (``reduction`` cycles, :mod:`hwsim.sim.reduction`) and the NSD unit (``nsd``,
:mod:`hwsim.sim.nsd_unit`). Serial means the DMA engine is taken as idle during them — conservative: the
reduction uses the PE links and adders, not the DRAM channel, so prefetching behind it would be physically
possible, but the reduction network's use of the global buffer port is not modelled, so no overlap is
claimed. The iteration's cycles are the makespan plus those extras.

The closed-form ``analytical_cycles`` stay the per-layer-pass pipeline estimate of :mod:`hwsim.sim.analytic`
(an isolated-model figure, printed beside the SimPy result).

``log=[]`` records ``(cycle, kind, segment, interval, pe)`` tuples sorted by cycle (events of one cycle in
execution order; ``segment`` = the layer-pass's index in execution order, ``interval`` local to it; pe = -1):
``load_start``/``load_end``, ``store_start``/``store_end`` (a transfer holding the DRAM channel), ``tile_start``
(the PEs start the interval's tiles) and ``barrier`` (its slowest PE is done). The schedule keeps only each
interval's slowest tile, so there are no per-PE ``tile_end`` events (:mod:`hwsim.sim.model` has them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from hwsim.sim import shape_memo
from hwsim.sim.model import TILE_BUFFERS, IntervalRun, run_intervals, transfer_cycles

if TYPE_CHECKING:
    from hwsim.arch import MemoryConfig
    from hwsim.results import VariantResult

Key = tuple[str, str]  # (layer name, pass name)


@dataclass(frozen=True, kw_only=True)
class Segment:
    """One layer-pass as the schedule sees it: per interval, the barrier span and the DRAM cycles.

    ``after``: indices (in the schedule's segment list) of earlier segments whose write-backs must be
    complete before this segment's first load (module doc).
    """

    key: Key
    spans: tuple[int, ...]
    load: tuple[int, ...]
    store: tuple[int, ...]
    after: tuple[int, ...] = ()


def intervals(busy: np.ndarray, load_bytes: np.ndarray, store_bytes: np.ndarray, *,
              dram_bytes_per_cycle: float) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(spans, load cycles, store cycles) of one layer-pass, exactly as :func:`~hwsim.sim.model.simulate_intervals`
    derives them (the slowest PE of each interval; ⌈bytes / bandwidth⌉ per transfer)."""
    nb, npe = busy.shape
    spans = tuple(int(x) for x in busy.max(axis=1).tolist()) if npe else (0,) * nb
    return (spans, tuple(transfer_cycles(x, dram_bytes_per_cycle) for x in load_bytes.tolist()),
            tuple(transfer_cycles(x, dram_bytes_per_cycle) for x in store_bytes.tolist()))


@dataclass(frozen=True)
class Timeline:
    """The result of one schedule: makespan and its attribution to the segments (module doc)."""

    makespan: int
    attributed: tuple[int, ...]  # per segment; Σ = makespan
    fill_drain: tuple[int, ...]  # per segment: exposed first load (first) / last write-back (last)
    memory_stall: tuple[int, ...]  # per segment: attributed − Σ spans − fill_drain
    fill: int                    # cycles before the first tile starts
    drain: int                   # cycles after the last barrier
    # per segment: of its memory_stall, the cycles the DRAM channel carried other segments' transfers (≤ memory_stall)
    memory_stall_foreign: tuple[int, ...] = ()
    # per segment: {owner segment: cycles} — whose transfers held the channel during those foreign cycles
    waited_on: tuple[Mapping[int, int], ...] = ()


_TIMELINES: dict[tuple, Timeline] = {}  # the last schedules run (without a log), by (arbiter, buffers, *segments)
MAX_TIMELINES = 64


def simulate_schedule(segments: Sequence[Segment], *, log: list[tuple[int, str, int, int, int]] | None = None,
                      remember: bool = False, arbiter: str = "in_order", tile_buffers: int = TILE_BUFFERS) -> Timeline:
    """Run ``segments`` (execution order) as one SimPy schedule; attribute its cycles (module doc).

    ``arbiter``: who gets the DRAM channel when a load and a write-back both wait (``memory.dram_arbiter``,
    :data:`hwsim.sim.model.ARBITERS`); ``tile_buffers``: how many intervals' operands the chip holds
    (``memory.tile_buffers``, :func:`hwsim.sim.model.run_intervals`). A pure function of the segments, the arbiter
    and the buffers. ``remember`` (a schedule that repeats: the baselines that ignore the masks
    schedule the same layer-passes in every iteration of a run): the timeline is kept, and segments equal to a kept
    call's return its timeline without another run (at most :data:`MAX_TIMELINES`, then the cache starts over).
    Schedules built from one iteration's masks never repeat and are not kept (their segments can be large)."""
    if log is not None or not remember:
        return _simulate(segments, log=log, arbiter=arbiter, tile_buffers=tile_buffers)
    key = (arbiter, tile_buffers, *segments)
    hit = _TIMELINES.get(key)
    if hit is None:
        hit = _simulate(tuple(segments), log=None, arbiter=arbiter, tile_buffers=tile_buffers)
        if len(_TIMELINES) >= MAX_TIMELINES:
            _TIMELINES.clear()
        _TIMELINES[key] = hit
    return hit


def _simulate(segments: Sequence[Segment], *, log: list[tuple[int, str, int, int, int]] | None,
              arbiter: str, tile_buffers: int) -> Timeline:
    spans: list[int] = []
    load_t: list[int] = []
    store_t: list[int] = []
    seg: list[int] = []        # segment of each global interval
    local: list[int] = []      # its index inside the segment
    first: dict[int, int] = {}  # global interval -> segment it opens
    last: dict[int, int] = {}   # global interval -> segment it closes
    for k, s in enumerate(segments):
        if not len(s.spans) == len(s.load) == len(s.store):
            raise ValueError(f"segment {k} {s.key}: {len(s.spans)} spans, {len(s.load)} loads, {len(s.store)} stores")
        if any(not 0 <= p < k for p in s.after):
            raise ValueError(f"segment {k} {s.key}: after={s.after}; allowed: indices of earlier segments (0..{k - 1})")
        if not s.spans:
            continue
        first[len(spans)] = k
        spans += s.spans
        load_t += s.load
        store_t += s.store
        seg += [k] * len(s.spans)
        local += range(len(s.spans))
        last[len(spans) - 1] = k
    n = len(spans)
    nseg = len(segments)
    if n == 0:
        return Timeline(0, (0,) * nseg, (0,) * nseg, (0,) * nseg, 0, 0, (0,) * nseg, tuple({} for _ in range(nseg)))
    end_of = {k: j for j, k in last.items()}  # segment -> its last global interval
    waits = {j: [end_of[p] for p in segments[k].after if p in end_of] for j, k in first.items() if segments[k].after}
    events: list[tuple[int, str, int]] | None = [] if log is not None else None
    held: list[tuple[float, int, int]] = []
    run = run_intervals(spans, load_t, store_t, waits=waits, log=events, held=held, arbiter=arbiter,
                       tile_buffers=tile_buffers)
    if log is not None:
        n0 = len(log)
        log.extend((t, kind, seg[j], local[j], -1) for t, kind, j in events)
        log[n0:] = sorted(log[n0:], key=lambda e: e[0])  # stable: events of one cycle in execution order
    ends = [0] * nseg
    for j, k in last.items():
        ends[k] = run.barriers[j]
    foreign, by = _foreign_waits(run, held, seg, nseg)
    return replace(_attribute(segments, ends, run.makespan, fill=run.starts[0]), memory_stall_foreign=foreign,
                   waited_on=by)


def _foreign_waits(run: IntervalRun, held: Sequence[tuple[float, int, int]], seg: Sequence[int],
                   nseg: int) -> tuple[tuple[int, ...], tuple[dict[int, int], ...]]:
    """Per segment, the cycles of its memory stall during which the DRAM channel carried another segment's
    transfer, in all and by that segment (module doc, "What the per-pass numbers mean").

    A segment's memory stall is exactly the array's idle gaps before its intervals, [barrier of the interval
    before, start of the interval), without the iteration's fill (the gap before the first interval) and drain
    (after the last barrier, no gap): :func:`_attribute`. ``held`` (:func:`~hwsim.sim.model.run_intervals`) lists
    the transfers in the order the one channel served them — disjoint and sorted, as the gaps are — so one merge
    pass finds every overlap: O(intervals + transfers)."""
    foreign = [0] * nseg
    by: list[dict[int, int]] = [{} for _ in range(nseg)]
    starts, barriers = run.starts, run.barriers
    m = len(held)
    t = 0
    for j in range(1, len(starts)):
        a, b = barriers[j - 1], starts[j]
        if b <= a:
            continue
        k = seg[j]
        while t < m and held[t][0] + held[t][1] <= a:
            t += 1
        u = t
        while u < m and held[u][0] < b:
            s0, c, i = held[u]
            owner = seg[i]
            c = min(b, s0 + c) - max(a, s0)  # > 0: the transfer overlaps the gap
            if owner != k and c > 0:
                foreign[k] += c
                by[k][owner] = by[k].get(owner, 0) + c
            u += 1
    return tuple(foreign), tuple(by)


def _attribute(segments: Sequence[Segment], ends: list[int], makespan: int, *, fill: int) -> Timeline:
    nonempty = [k for k, s in enumerate(segments) if s.spans]
    k_first, k_last = nonempty[0], nonempty[-1]
    drain = makespan - ends[k_last]
    attributed, fd, stall = [], [], []
    prev = 0
    for k, s in enumerate(segments):
        if not s.spans:
            attributed.append(0)
            fd.append(0)
            stall.append(0)
            continue
        a = ends[k] - prev + (drain if k == k_last else 0)
        f = (fill if k == k_first else 0) + (drain if k == k_last else 0)
        prev = ends[k]
        attributed.append(a)
        fd.append(f)
        stall.append(a - sum(s.spans) - f)
    return Timeline(makespan, tuple(attributed), tuple(fd), tuple(stall), fill, drain)


# ----------------------------------------------------------------------------- the iteration's order and dependencies


def execution_order(keys: Iterable[Key], layer_names: Sequence[str]) -> list[Key]:
    """``keys`` in training order: forward 1..L, then per layer L..1 backward-data, backward-weight, then the
    weight update L..1 (:mod:`hwsim.sim.update`: the order the layers' δW complete)."""
    have = set(keys)
    order = [(n, "forward") for n in layer_names]
    for n in reversed(layer_names):
        order += [(n, "backward_data"), (n, "backward_weight")]
    order += [(n, "update") for n in reversed(layer_names)]
    out = [k for k in order if k in have]
    if len(out) != len(have):
        raise ValueError(f"layer-passes {sorted(have - set(out))} are not in the layers {list(layer_names)} "
                         "× (forward, backward_data, backward_weight, update)")
    return out


def producers(key: Key, layer_names: Sequence[str], plan: Mapping[Key, object], *,
              sources: Sequence[int | None] | None = None) -> list[Key]:
    """Earlier layer-passes whose DRAM write-backs ``key`` reads (``plan``: :func:`hwsim.sim.residency.plan`).

    * forward l (l > 1) reads a_l from DRAM unless it is resident: written by forward l−1;
    * backward-data l (l < L) reads δ̃z_l from DRAM unless resident: written by backward-data l+1;
    * backward-weight l reads the stash a_l unless it stayed on chip (``memory.stash: on_chip`` and it fit;
      l > 1: written by forward l−1) and, unless it stayed on chip, δ̃z_l (l < L: written by backward-data l+1).

    Activation × activation products (``sources``: :func:`hwsim.sim.residency.operand_sources` of the layers, in
    ``layer_names``' order; None = no such products): the forward of a product j reads its second operand (attention's
    K or V) from DRAM, written by the forward of its source s = ``sources[j]`` (the forward hand-over), and so does
    its backward-data unless the operand stayed on chip from the forward (resident weights). In the backward
    direction, the second operand's gradient (δK, δV) is computed by product j's backward-weight and is part of
    δ̃z_s: so the backward passes of s that read δ̃z_s from DRAM also wait for the backward-weight of every product
    whose source is s (for GPT-2, c_attn's backward waits for QKᵀ's and P·V's backward-weight, not only for QKᵀ's
    backward-data, on which the hand-over's write is booked).

    The network input, the loss gradient δ̃z_L and the weights are in DRAM before the iteration starts (resident
    weights are loaded by forward l and read on chip by backward-data l: no DRAM producer either).
    The update of layer l reads δW_l, which backward-weight l writes to DRAM. A producer that was not
    replayed (a missing key) imposes nothing. Each producer is listed once, in the order the rules above find it.
    """
    name, pname = key
    if pname == "update":
        return [(name, "backward_weight")]
    names = list(layer_names)
    i = names.index(name)
    src = list(sources) if sources is not None else [None] * len(names)
    if len(src) != len(names):
        raise ValueError(f"sources: {len(src)} entries for {len(names)} layers; allowed: one per layer "
                         "(hwsim.sim.residency.operand_sources)")
    res = plan[key]
    prev = names[i - 1] if i > 0 else None
    nxt = names[i + 1] if i + 1 < len(names) else None
    operand_of = names[src[i]] if src[i] is not None else None     # the forward that wrote this product's K / V
    grads_from = [names[j] for j, s in enumerate(src) if s == i]    # products whose δK / δV are part of δ̃z_i
    out: list[Key] = []
    if pname == "forward":
        if prev is not None and not res.stream_on_chip:
            out.append((prev, "forward"))
        if operand_of is not None:
            out.append((operand_of, "forward"))
    elif pname == "backward_data":
        if nxt is not None and not res.stream_on_chip:
            out.append((nxt, "backward_data"))
        if not res.stream_on_chip:
            out += [(p, "backward_weight") for p in grads_from]
        if operand_of is not None and not res.broadcast_on_chip:
            out.append((operand_of, "forward"))
    else:
        if prev is not None and not res.stream_on_chip:
            out.append((prev, "forward"))
        if nxt is not None and not res.broadcast_on_chip:
            out.append((nxt, "backward_data"))
        if not res.broadcast_on_chip:
            out += [(p, "backward_weight") for p in grads_from]
    return list(dict.fromkeys(out))


def segments_for(order: Sequence[Key], timed: Mapping[Key, tuple[tuple[int, ...], ...]], layer_names: Sequence[str],
                 plan: Mapping[Key, object], *, sources: Sequence[int | None] | None = None) -> list[Segment]:
    """The schedule's segments: ``timed[key]`` = :func:`intervals` of each layer-pass, ``order`` from
    :func:`execution_order`, dependencies from :func:`producers` (``sources``: the activation products' operand
    sources, :func:`hwsim.sim.residency.operand_sources`)."""
    pos = {k: i for i, k in enumerate(order)}
    return [Segment(key=k, spans=timed[k][0], load=timed[k][1], store=timed[k][2],
                    after=tuple(sorted(pos[p] for p in producers(k, layer_names, plan, sources=sources) if p in pos)))
            for k in order]


def retime(results: Sequence, timed: Mapping[str, Mapping[Key, tuple]], plans: Mapping[str, Mapping],
           layer_names: Sequence[str], *, sources: Sequence[int | None] | None = None,
           follow: Mapping[str, str] | None = None, remember: Iterable[str] = (),
           memory: Mapping[str, MemoryConfig] | None = None) -> tuple[list, dict[str, Timeline]]:
    """``results`` (:class:`~hwsim.results.LayerPassResult`, timed without memory) with each scheduled variant's
    ``memory_stall`` and ``fill_drain`` set from one schedule per variant.

    ``timed``: variant → key → :func:`intervals`; ``plans``: variant → residency plan; ``sources``: the layers'
    :func:`hwsim.sim.residency.operand_sources` (the activation products' dependencies, :func:`producers`); ``follow``: variant →
    variant whose timeline it shares (dense-gated runs the dense schedule); ``remember``: variants whose schedule
    repeats every iteration (:func:`simulate_schedule`); ``memory``: variant → its arch's ``memory`` section
    (:class:`~hwsim.arch.MemoryConfig`: its ``dram_arbiter`` and ``tile_buffers`` shape the schedule; a variant not
    named: ``in_order`` and :data:`~hwsim.sim.model.TILE_BUFFERS`). Returns (results, timelines).
    """
    remember = set(remember)
    follow = dict(follow or {})
    order = execution_order([(lp.name, lp.pass_name) for lp in results], layer_names)
    pos = {k: i for i, k in enumerate(order)}
    memory = dict(memory or {})
    lines = {v: simulate_schedule(segments_for(order, per, layer_names, plans[v], sources=sources),
                                  remember=v in remember,
                                  arbiter=getattr(memory.get(v), "dram_arbiter", "in_order"),
                                  tile_buffers=getattr(memory.get(v), "tile_buffers", TILE_BUFFERS))
             for v, per in timed.items()}
    out = []
    for lp in results:
        i = pos[(lp.name, lp.pass_name)]
        changes = {}
        for v in [*timed, *(f for f, src in follow.items() if src in timed)]:
            tl = lines[follow.get(v, v)]
            vr = getattr(lp, v)
            cb = vr.cycle_breakdown
            if cb.memory_stall or cb.fill_drain:
                raise AssertionError(f"{lp.name} {lp.pass_name} {v}: timed with memory ({cb}); the schedule adds it")
            ms, fd, mf = tl.memory_stall[i], tl.fill_drain[i], tl.memory_stall_foreign[i]
            if ms or fd:  # else the record stays as it is (all already 0); a shared record's once per run
                changes[v] = shape_memo.derive(vr, None, ("schedule", ms, fd, mf),
                                               partial(_with_memory, vr, ms, fd, mf))
        out.append(replace(lp, **changes) if changes else lp)
    return out, lines


def _with_memory(vr: VariantResult, memory_stall: int, fill_drain: int, foreign: int) -> VariantResult:
    return replace(vr, cycle_breakdown=replace(vr.cycle_breakdown, memory_stall=memory_stall, fill_drain=fill_drain,
                                               memory_stall_foreign=foreign))
