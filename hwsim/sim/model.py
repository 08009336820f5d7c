"""The SimPy model: PEs as processes, one event per tile, DRAM as a shared bandwidth resource.

Time is in cycles (integers). One layer-pass is a sequence of *intervals* (output-channel groups
on the Cartesian array, column folds on a systolic array). In interval b every PE p works
``busy[b, p]`` cycles on its tile, then waits at a barrier until all PEs are done (inter-PE load
imbalance). Operands arrive from DRAM through double-buffered tile buffers: a loader process
fetches interval b's inputs while the PEs compute b − 1 (it may run at most one interval ahead,
since only two buffers exist), and a writer drains interval b's outputs after its barrier. Both
share the single DRAM channel (a ``simpy.Resource``) at ``dram_bytes_per_cycle``; a transfer of
x bytes holds it ⌈x / bandwidth⌉ cycles. PEs that find their input not yet loaded wait: that,
plus the final write-back, is the memory stall.

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
    env = simpy.Environment()
    dram = simpy.Resource(env, capacity=1)
    loaded = [env.event() for _ in range(nb)]
    done = [env.event() for _ in range(nb)]
    start = [env.event() for _ in range(nb)]
    finished = env.event()
    n0 = len(log) if log is not None else 0
    busy_l = busy.tolist() if log is not None else None

    def loader():
        for b in range(nb):
            if b >= 2:
                yield done[b - 2]  # double buffering: buffer of b − 2 is free once b − 2 is done
            if load_t[b]:
                with dram.request() as req:
                    yield req
                    if log is not None:
                        log.append((int(env.now), "load_start", b, -1))
                    yield env.timeout(load_t[b])
                    if log is not None:
                        log.append((int(env.now), "load_end", b, -1))
            loaded[b].succeed()

    def coordinator():
        for b in range(nb):
            yield loaded[b]
            if b:
                yield done[b - 1]
            start[b].succeed()

    def array():
        # The PEs of one interval start together at its barrier and the barrier releases when the
        # slowest is done: one timeout of max_p busy[b, p] per interval stands for the PEs' tiles.
        # It is created at the point where the per-PE timeouts were (on start[b]), so events that
        # tie with it in time are ordered as before (results identical, tests/test_wholerun_golden.py).
        for b in range(nb):
            yield start[b]
            t0 = int(env.now)
            if log is not None:
                log.extend((t0, "tile_start", b, p) for p in range(npe))
            if span[b]:
                yield env.timeout(span[b])
            if log is not None:
                log.extend((t0 + int(busy_l[b][p]), "tile_end", b, p) for p in range(npe))
                log.append((int(env.now), "barrier", b, -1))
            done[b].succeed()

    def writer():
        for b in range(nb):
            yield done[b]
            if store_t[b]:
                with dram.request() as req:
                    yield req
                    if log is not None:
                        log.append((int(env.now), "store_start", b, -1))
                    yield env.timeout(store_t[b])
                    if log is not None:
                        log.append((int(env.now), "store_end", b, -1))
        finished.succeed()

    env.process(loader())
    env.process(coordinator())
    env.process(array())
    env.process(writer())
    env.run(until=finished)
    if log is not None:  # tile ends were written at their barrier: put every event at its cycle
        log[n0:] = sorted(log[n0:], key=lambda e: e[0])
    return int(env.now)
