"""Closed-form cycle estimate and the exact cycle breakdown of one layer-pass.

The closed form replaces the SimPy run by the pipeline recurrence of a double-buffered loader,
barrier-synchronised PEs and a write-back channel, assuming loads and stores of neighbouring
intervals share the DRAM channel:

    T ≈ L₀ + Σ_b max(C_b, L_{b+1} + S_{b−1}) + S_last,   C_b = max_p busy[b, p]

With unlimited bandwidth every L and S is 0 and T = Σ_b C_b, which is exactly what the SimPy
model computes (a test checks it). With finite bandwidth the two differ only in how transfers
queue behind each other.

The breakdown splits the SimPy makespan into parts that add up exactly (all integers):

* compute       = ⌈MACs / multipliers⌉ (every multiplier busy with useful work),
* fragmentation = ⌈Σ multiplier cycles / PEs⌉ − compute (partly filled F×I vectors, products that
  land outside the output, idle rows/columns of systolic folds and their fill/drain),
* bank_conflict = ⌈Σ (multiplier + conflict cycles) / PEs⌉ − ⌈Σ multiplier cycles / PEs⌉,
* imbalance     = Σ_b max_p busy[b, p] − ⌈Σ busy / PEs⌉ (PEs idle at barriers),
* memory_stall  = makespan − Σ_b max_p busy[b, p].
"""

from __future__ import annotations

import math

import numpy as np

from hwsim.results import CycleBreakdown
from hwsim.sim.model import transfer_cycles


def closed_form_cycles(busy: np.ndarray, load_bytes: np.ndarray, store_bytes: np.ndarray, *,
                       dram_bytes_per_cycle: float) -> int:
    """Closed-form makespan of one layer-pass (see module doc)."""
    nb = busy.shape[0]
    if nb == 0:
        return 0
    c = busy.max(axis=1).astype(np.int64)
    lt = np.array([transfer_cycles(x, dram_bytes_per_cycle) for x in load_bytes.tolist()], dtype=np.int64)
    st = np.array([transfer_cycles(x, dram_bytes_per_cycle) for x in store_bytes.tolist()], dtype=np.int64)
    nxt = np.concatenate([lt[1:], [0]])
    prev = np.concatenate([[0], st[:-1]])
    return int(lt[0] + np.maximum(c, nxt + prev).sum() + st[-1])


def cycle_breakdown(*, mult_cycles: np.ndarray, conflict: np.ndarray, macs: int, multipliers: int,
                    makespan: int) -> CycleBreakdown:
    """Exact additive breakdown of ``makespan`` (see module doc)."""
    npe = mult_cycles.shape[1] if mult_cycles.ndim == 2 and mult_cycles.size else 1
    busy = mult_cycles + conflict
    barrier_sum = int(busy.max(axis=1).sum()) if busy.size else 0
    m_tot = int(mult_cycles.sum())
    b_tot = int(busy.sum())
    compute = math.ceil(macs / multipliers) if macs else 0
    frag_end = -(-m_tot // npe)
    conf_end = -(-b_tot // npe)
    if compute > frag_end or makespan < barrier_sum:
        raise AssertionError(f"inconsistent work: compute {compute} > multiplier cycles {frag_end} "
                             f"or makespan {makespan} < barrier sum {barrier_sum}")
    return CycleBreakdown(compute=compute, fragmentation=frag_end - compute, bank_conflict=conf_end - frag_end,
                          imbalance=barrier_sum - conf_end, memory_stall=makespan - barrier_sum)
