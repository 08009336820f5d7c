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

The work inside a tile comes precomputed from vectorised numpy (``busy``), so the event count is
(intervals × PEs) + 2·intervals, never one per MAC.

``log=[]`` records what happened as ``(cycle, kind, interval, pe)`` tuples in SimPy's execution
order — kinds ``load_start``/``load_end`` and ``store_start``/``store_end`` (a DRAM transfer holding
the channel; pe = -1), ``tile_start``/``tile_end`` (PE ``pe`` on its tile of ``interval``) and
``barrier`` (the last PE of the interval arrived; pe = -1). Off (None) it costs one test per event.
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
    busy_l = busy.tolist()
    load_t = [transfer_cycles(x, dram_bytes_per_cycle) for x in load_bytes.tolist()]
    store_t = [transfer_cycles(x, dram_bytes_per_cycle) for x in store_bytes.tolist()]
    env = simpy.Environment()
    dram = simpy.Resource(env, capacity=1)
    loaded = [env.event() for _ in range(nb)]
    done = [env.event() for _ in range(nb)]
    start = [env.event() for _ in range(nb)]
    finished = env.event()
    arrivals = [0] * nb

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

    def pe(p: int):
        for b in range(nb):
            yield start[b]
            t = busy_l[b][p]
            if log is not None:
                log.append((int(env.now), "tile_start", b, p))
            if t:
                yield env.timeout(t)
            if log is not None:
                log.append((int(env.now), "tile_end", b, p))
            arrivals[b] += 1
            if arrivals[b] == npe:
                if log is not None:
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
    for p in range(npe):
        env.process(pe(p))
    env.process(writer())
    env.run(until=finished)
    return int(env.now)
