"""The SimPy model: PEs as processes, one event per tile, DRAM as a shared bandwidth resource.

Time is in cycles (integers). One layer-pass is a sequence of *intervals* (output-channel groups
on the Cartesian array, column folds on a systolic array). In interval b every PE p works
``busy[b, p]`` cycles on its tile, then waits at a barrier until all PEs are done (inter-PE load
imbalance). Operands arrive from DRAM through double-buffered tile buffers: a loader process
fetches interval b's inputs while the PEs compute b − 1 (it may run at most one interval ahead,
since only two buffers exist; the iteration schedule takes the count from ``memory.tile_buffers``, below), and a
writer drains interval b's outputs after its barrier. Both
share the single DRAM channel (a ``simpy.Resource``) at ``dram_bytes_per_cycle``; a transfer of
x bytes holds it ⌈x / bandwidth⌉ cycles. PEs that find their input not yet loaded wait: that,
plus the final write-back, is the memory stall.

Who gets the channel when a load and a write-back both want it is ``memory.dram_arbiter`` (``arbiter``):

* ``reads_first`` (the shipped configs): whenever the channel is free it serves a pending load before a pending
  write-back, and it decides after every other event of the cycle, so a load and a write-back requested in the same
  cycle (a barrier wakes the loader and the writer together) go load first. A write-back already queued waits for a
  load requested later, too (read priority, as an FR-FCFS memory controller with a write queue gives it) — until
  its outputs' tile buffer is needed again: the outputs of interval j wait in one of the B tile buffers
  (``tile_buffers``, default :data:`TILE_BUFFERS` = 2), so once the array has passed the barrier of j + B − 1 (the
  next interval to start is j + B, which would reuse j's buffer) the write-back of j goes before a load (the write queue drains at its high-water mark).
  Without that bound the write-backs of whole phases (the weight update's) would pile up behind the loads and
  drain at the end of the iteration, as if the chip buffered them all. Non-preemptive: a transfer that holds the
  channel keeps it to its end.
* ``in_order``: first come, first served (a ``simpy.Resource``); requests of the same cycle go in SimPy's event
  order — in effect whichever of the loader and the writer was woken first (the model before the field existed).

Either way the writer drains in order and the loader runs at most B − 1 intervals ahead, so at most one load and
one write-back ever wait.

How many tile buffers there are is ``memory.tile_buffers`` (``tile_buffers``, B ≥ 1): the loader loads interval j
once interval j − B is done (its buffer is free), so B = 2 is the double buffering (ping-pong) of SCNN's and
Eyeriss's DMA, B = 1 serializes each load behind the previous interval's compute, and B = 3 lets the loader run two
intervals ahead (a longer load hides behind two intervals' compute). The array still starts interval j only after
j − 1's barrier (one array); B moves only when loads may start and when ``reads_first`` drains.

The work inside a tile comes precomputed from vectorised numpy (``busy``); the PEs of an interval
share one barrier, so their tiles are one timeout of the slowest tile's cycles (the makespan only
sees the barrier). The event count is a few per interval, never one per MAC.

``log=[]`` records what happened as ``(cycle, kind, interval, pe)`` tuples, sorted by cycle (events
of one cycle in execution order, an interval's tiles in PE order) — kinds ``load_start``/``load_end``
and ``store_start``/``store_end`` (a DRAM transfer holding the channel; pe = -1), ``tile_start``/
``tile_end`` (PE ``pe`` on its tile of ``interval``: start + busy[interval, pe]; written from
``busy`` when the interval starts and ends, not SimPy events) and ``barrier`` (the slowest PE is
done; pe = -1). Off (None, the default) it costs one test per SimPy event.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import simpy


def transfer_cycles(nbytes: float, bytes_per_cycle: float) -> int:
    """Cycles the DRAM channel is held for ``nbytes`` (0 with unlimited bandwidth)."""
    if nbytes <= 0 or math.isinf(bytes_per_cycle):
        return 0
    return math.ceil(nbytes / bytes_per_cycle - 1e-9)


def simulate_intervals(busy: np.ndarray, load_bytes: np.ndarray, store_bytes: np.ndarray, *,
                       dram_bytes_per_cycle: float, log: list[tuple[int, str, int, int]] | None = None) -> int:
    """Makespan (cycles) of one layer-pass: SimPy run of PEs, barriers and the shared DRAM channel.

    ``busy``: (intervals, PEs) cycles per tile; ``load_bytes``/``store_bytes``: (intervals,) DRAM
    bytes read before / written after each interval. ``log``: a list to append events to (see the
    module docstring).
    """
    nb, npe = busy.shape
    if nb == 0:
        return 0
    span = busy.max(axis=1).tolist() if npe else [0] * nb
    load_t = [transfer_cycles(x, dram_bytes_per_cycle) for x in load_bytes.tolist()]
    store_t = [transfer_cycles(x, dram_bytes_per_cycle) for x in store_bytes.tolist()]
    if log is None:
        return run_intervals(span, load_t, store_t).makespan
    events: list[tuple[int, str, int]] = []
    run = run_intervals(span, load_t, store_t, log=events)
    busy_l = busy.tolist()
    n0 = len(log)
    for t, kind, b in events:  # the PEs' tiles of an interval, in PE order, where the interval starts and ends
        if kind == "tile_start":
            log.extend((t, "tile_start", b, p) for p in range(npe))
        elif kind == "barrier":
            t0 = run.starts[b]
            log.extend((t0 + int(busy_l[b][p]), "tile_end", b, p) for p in range(npe))
            log.append((t, "barrier", b, -1))
        else:
            log.append((t, kind, b, -1))
    log[n0:] = sorted(log[n0:], key=lambda e: e[0])  # tile ends were written at their barrier
    return run.makespan


ARBITERS = ("reads_first", "in_order")  # memory.dram_arbiter (module doc)
TILE_BUFFERS = 2  # memory.tile_buffers' default: double buffering (the loader runs one interval ahead; module doc)
_LATE = 2  # an event priority after SimPy's URGENT (0) and NORMAL (1): processed after every other event of its cycle


class _EndOfCycle(simpy.events.Event):
    """An event that fires in the current cycle after every URGENT and NORMAL event of that cycle (heap order
    is (time, priority, id)), set up as :class:`simpy.events.Timeout` sets up its own."""

    def __init__(self, env: simpy.Environment):
        self.env = env
        self.callbacks = []
        self._value = None
        self._ok = True
        env.schedule(self, _LATE)


class _InOrder:
    """The channel under ``in_order``: a one-place ``simpy.Resource`` (FIFO; module doc)."""

    def __init__(self, env: simpy.Environment):
        self._res = simpy.Resource(env, capacity=1)

    def request(self, read: bool) -> simpy.Event:  # FIFO: the kind does not matter
        return self._res.request()

    def release(self, req: simpy.Event) -> None:
        self._res.release(req)


class _ReadsFirst:
    """The channel under ``reads_first`` (module doc): pending requests wait in two queues, and the channel picks
    the next at the end of the cycle in which it becomes free or a request arrives, loads before write-backs unless
    ``drain()`` says the waiting write-back's buffer is needed."""

    def __init__(self, env: simpy.Environment, drain: Callable[[], bool]):
        self._env = env
        self._drain = drain
        self._busy = False
        self._deciding = False
        self._reads: list[simpy.Event] = []
        self._writes: list[simpy.Event] = []

    def request(self, read: bool) -> simpy.Event:
        ev = self._env.event()
        (self._reads if read else self._writes).append(ev)
        self._poke()
        return ev

    def release(self, req: simpy.Event) -> None:  # one holder at a time
        self._busy = False
        self._poke()

    def _poke(self) -> None:
        if not self._busy and not self._deciding:
            self._deciding = True
            _EndOfCycle(self._env).callbacks.append(self._decide)

    def _decide(self, _event: simpy.Event) -> None:
        self._deciding = False
        queue = (self._writes if self._writes and self._drain() else None) or self._reads or self._writes
        if queue and not self._busy:
            self._busy = True
            queue.pop(0).succeed()


def _channel(env: simpy.Environment, arbiter: str, drain: Callable[[], bool]) -> _InOrder | _ReadsFirst:
    if arbiter == "reads_first":
        return _ReadsFirst(env, drain)
    if arbiter == "in_order":
        return _InOrder(env)
    raise ValueError(f"arbiter: {arbiter!r}; allowed: one of {', '.join(ARBITERS)} (memory.dram_arbiter)")


@dataclass(frozen=True)
class IntervalRun:
    """What :func:`run_intervals` measured: the makespan and, per interval, when its tiles started and its
    barrier released."""

    makespan: int
    starts: list[int]
    barriers: list[int]


def run_intervals(spans: Sequence[int], load_t: Sequence[int], store_t: Sequence[int], *,
                  waits: Mapping[int, Sequence[int]] | None = None,
                  log: list[tuple[int, str, int]] | None = None,
                  held: list[tuple[float, int, int]] | None = None, arbiter: str = "in_order",
                  tile_buffers: int = TILE_BUFFERS) -> IntervalRun:
    """The one SimPy loop (module doc): intervals of ``spans`` cycles on the array, each loaded for ``load_t``
    and written back for ``store_t`` DRAM cycles (one channel shared as ``arbiter`` says: :data:`ARBITERS`,
    module doc) with ``tile_buffers`` tile buffers (``memory.tile_buffers``, ≥ 1: module doc).

    ``waits``: interval j → earlier intervals whose write-backs (and every write-back before them: the writer
    drains in order) must be complete before j's load starts (the iteration's data dependencies,
    :mod:`hwsim.sim.schedule`). ``log``: a list to append ``(cycle, kind, interval)`` to, in execution order —
    ``load_start``/``load_end``, ``store_start``/``store_end``, ``tile_start``, ``barrier``. ``held``: a list to
    append ``(start, cycles, interval)`` to for every transfer that held the DRAM channel (a load or a write-back of
    ``interval``), in the order the channel served them (so sorted by start, and disjoint: one channel).
    """
    if isinstance(tile_buffers, bool) or not isinstance(tile_buffers, int) or tile_buffers < 1:
        raise ValueError(f"tile_buffers: {tile_buffers!r}; allowed: an integer >= 1 (memory.tile_buffers)")
    n = len(spans)
    waits = waits or {}
    env = simpy.Environment()
    passed = [0]   # barriers the array has passed
    draining = [0]  # the interval whose write-back the writer is on
    # reads_first drains a write-back once the array needs its tile buffer again (module doc)
    dram = _channel(env, arbiter, lambda: passed[0] >= draining[0] + tile_buffers)
    loaded = [env.event() for _ in range(n)]
    done = [env.event() for _ in range(n)]
    start = [env.event() for _ in range(n)]
    written = {i: env.event() for w in waits.values() for i in w}  # write-backs up to interval i complete
    finished = env.event()
    starts = [0] * n
    barriers = [0] * n

    def transfer(read: bool, cycles: int, j: int):
        """Interval j's load (``read``) or write-back: wait for the channel, hold it ``cycles``, release it."""
        kind = "load" if read else "store"
        req = dram.request(read)
        yield req
        if log is not None:
            log.append((int(env.now), f"{kind}_start", j))
        if held is not None:
            held.append((env.now, cycles, j))
        yield env.timeout(cycles)
        if log is not None:
            log.append((int(env.now), f"{kind}_end", j))
        dram.release(req)

    def loader():
        for j in range(n):
            if j >= tile_buffers:
                yield done[j - tile_buffers]  # the buffer of j − B is free once j − B is done
            for i in waits.get(j, ()):  # data dependency through DRAM: the producer's write-backs first
                yield written[i]
            if load_t[j]:
                yield from transfer(True, load_t[j], j)
            loaded[j].succeed()

    def coordinator():
        for j in range(n):
            yield loaded[j]
            if j:
                yield done[j - 1]
            start[j].succeed()

    def array():
        # The PEs of one interval start together at its barrier and the barrier releases when the
        # slowest is done: one timeout of the slowest tile's span per interval stands for the PEs' tiles.
        # It is created at the point where the per-PE timeouts were (on start[j]), so events that
        # tie with it in time are ordered as before (results identical, tests/test_wholerun_golden.py).
        for j in range(n):
            yield start[j]
            starts[j] = int(env.now)
            if log is not None:
                log.append((starts[j], "tile_start", j))
            if spans[j]:
                yield env.timeout(spans[j])
            barriers[j] = int(env.now)
            passed[0] = j + 1
            if log is not None:
                log.append((barriers[j], "barrier", j))
            done[j].succeed()

    def writer():
        for j in range(n):
            yield done[j]
            draining[0] = j
            if store_t[j]:
                yield from transfer(False, store_t[j], j)
            if j in written:
                written[j].succeed()
        finished.succeed()

    env.process(loader())
    env.process(coordinator())
    env.process(array())
    env.process(writer())
    env.run(until=finished)
    return IntervalRun(int(env.now), starts, barriers)
