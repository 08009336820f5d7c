"""On-chip capacity over a training iteration: which tensors stay on chip, placed greedily in execution order.

The memory policies of ``memory:`` (:class:`hwsim.arch.MemoryConfig`) decide which tensors *may* stay on chip;
this module decides which *do*, by one simple rule a reader can redo by hand.

**Time.** The iteration is a sequence of steps, its layer-passes in execution order (forward 1..L, then per
layer L..1 backward-data, backward-weight: :func:`steps`). A tensor kept on chip is *live* over an interval of
steps: from the step that produces (or first loads) it to the last step that reads it, both included.

**Space.** Two pools:

* the **PE RAMs**: each PE's ``input_buffer_bytes + output_buffer_bytes`` (SCNN's IARAM and OARAM swap roles
  between layers — layer l's output RAM is layer l+1's input RAM — so they are taken as one pool per PE; how a
  tensor splits between the two RAMs is not checked). Activations and δ̃z are partitioned over the PEs
  (:func:`pe_shares`), so a tensor fits only if **every PE's share** fits that PE's free space, not just the
  aggregate. Systolic arrays have no PE RAMs (operand registers only).
* the **global buffer** (``global_buffer_bytes``), only if ``memory.residency_in_global_buffer``: one shared
  array, so a tensor there is checked in aggregate. Weights, the broadcast operand every PE reads, live only
  here (a PE has a weight FIFO, no weight RAM).

**Greedy allocation.** Candidates (:class:`Candidate`) are visited in order of their first step (ties:
activations, then δ̃z, then weights; then layer order). Each takes the first pool in which it fits at *every*
step of its interval beside what is already placed there — PE RAMs first, then the global buffer — or stays in
DRAM. Nothing is ever evicted, and a placed tensor holds its bytes for its whole interval. Since every tensor
placed before starts no later, a pool's occupancy never rises after a candidate's first step: a candidate fits
for its whole interval exactly when it fits at its first step. So early tensors win: a stash kept from the
first layers can leave no room for a later layer's chain (a smarter placement is not modelled).

Not modelled: fragmentation inside a pool, the staging space of operands streamed from DRAM (the chunking
of :func:`hwsim.sim.traffic.dram_traffic` still sees the whole global buffer and input RAMs), halos.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hwsim.sim import traffic

if TYPE_CHECKING:
    from hwsim.arch import Arch

KIND_RANK = {"a": 0, "dz": 1, "w": 2}


def steps(n_layers: int) -> dict[tuple[int, str], int]:
    """Step of every (layer index, pass) of an ``n_layers`` iteration in execution order (module doc)."""
    out = {(i, "forward"): i for i in range(n_layers)}
    for k, i in enumerate(reversed(range(n_layers))):
        out[(i, "backward_data")] = n_layers + 2 * k
        out[(i, "backward_weight")] = n_layers + 2 * k + 1
    return out


def pe_counts(mask: np.ndarray, *, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """(non-zeros, elements) each of the ``rows × cols`` PEs holds of a (N, C, H, W) tensor with non-zeros ``mask``.

    Each PE holds whole channel vectors of its pixels. A plane at least as large as the grid is split in
    planar tiles of ⌈H / rows⌉ × ⌈W / cols⌉ pixels of every image (SCNN's planar tiling); a smaller plane
    (and a Linear layer's (1, C, 1, N) batch-as-width) is dealt out over the PEs in contiguous runs of
    (n, h, w) positions. Flat arrays of ``rows · cols`` integers.
    """
    n, c, h, w = mask.shape
    npe = rows * cols
    if h >= rows and w >= cols:
        th, tw = -(-h // rows), -(-w // cols)
        plane = np.zeros((rows * th, cols * tw), dtype=np.int64)
        plane[:h, :w] = np.count_nonzero(mask, axis=(0, 1))
        nnz = plane.reshape(rows, th, cols, tw).sum(axis=(1, 3)).ravel()
        valid = np.zeros_like(plane)
        valid[:h, :w] = 1
        size = valid.reshape(rows, th, cols, tw).sum(axis=(1, 3)).ravel() * n * c
        return nnz, size
    per_pos = np.count_nonzero(mask, axis=1).reshape(-1)  # (n, h, w) positions
    q, r = divmod(per_pos.size, npe)  # np.array_split's runs: the first r PEs take one position more
    bounds = (np.full(npe, q, dtype=np.int64) + (np.arange(npe) < r)).cumsum()
    starts = np.concatenate([[0], bounds[:-1]])
    csum = np.concatenate([[0], per_pos.cumsum()])
    return csum[bounds] - csum[starts], (bounds - starts) * c


def pe_shares(mask: np.ndarray, *, value_bits: int, compression: str, rl_bits: int, rows: int, cols: int,
              fillers: int = 0, counts: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Bytes each of the ``rows × cols`` PEs holds of ``mask``'s tensor (:func:`pe_counts`; ``counts``: them,
    precomputed): its slice in the arch's format (:func:`hwsim.sim.traffic.tensor_bytes`; run-length fillers
    pro-rated by non-zeros). A flat array of ``rows · cols`` bytes."""
    nnz, size = counts if counts is not None else pe_counts(mask, rows=rows, cols=cols)
    nnz, size = np.asarray(nnz, dtype=np.int64), np.asarray(size, dtype=np.int64)
    total = int(nnz.sum())
    # every PE's slice at once; run-length fillers pro-rated by non-zeros (round half to even, as round())
    fill = np.round(fillers * nnz / total).astype(np.int64) if total and compression == "run_length" else 0
    out = traffic.tensor_bytes(nnz=nnz, size=size, value_bits=value_bits, compression=compression, rl_bits=rl_bits,
                               fillers=fill)
    return np.where(size > 0, out, 0.0)


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """A tensor that may stay on chip: live over steps ``[start, end]``, its bytes per PE (``shares``,
    ``None``: it may not use PE RAMs) and in total (``nbytes``, for the global buffer)."""

    key: tuple[str, int]          # (kind "a" | "dz" | "w", layer index)
    start: int
    end: int
    nbytes: float
    shares: np.ndarray | None


@dataclass
class Pools:
    """Free space of the two pools at every step (module doc)."""

    pe: np.ndarray                # (steps, PEs) bytes used
    pe_capacity: float            # per PE
    gb: np.ndarray                # (steps,) bytes used
    gb_capacity: float

    @classmethod
    def for_arch(cls, arch: Arch, n_steps: int) -> Pools:
        pe = 0.0 if arch.is_systolic else float(arch.pe.input_buffer_bytes + arch.pe.output_buffer_bytes)
        gb = float(arch.memory.global_buffer_bytes) if arch.memory.residency_in_global_buffer else 0.0
        return cls(np.zeros((n_steps, arch.num_pes)), pe, np.zeros(n_steps), gb)

    def place(self, c: Candidate) -> str | None:
        """Place ``c`` in the first pool it fits ("pe" / "gb") for its whole interval, or return None."""
        span = slice(c.start, c.end + 1)
        if c.shares is not None and self.pe_capacity > 0 and \
                np.all(self.pe[span] + c.shares[None, :] <= self.pe_capacity):
            self.pe[span] += c.shares[None, :]
            return "pe"
        if self.gb_capacity > 0 and np.all(self.gb[span] + c.nbytes <= self.gb_capacity):
            self.gb[span] += c.nbytes
            return "gb"
        return None


def allocate(candidates: Sequence[Candidate], arch: Arch, n_steps: int) -> dict[tuple[str, int], str]:
    """``{key: pool}`` ("pe" / "gb") of every candidate placed on chip (module doc); the others stay in DRAM."""
    pools = Pools.for_arch(arch, n_steps)
    out = {}
    for c in sorted(candidates, key=lambda c: (c.start, KIND_RANK[c.key[0]], c.key[1])):
        where = pools.place(c)
        if where is not None:
            out[c.key] = where
    return out


def pool_bytes(arch: Arch) -> tuple[int, int]:
    """(bytes per PE, global-buffer bytes) resident tensors may use (0 where a pool is not available)."""
    pe = 0 if arch.is_systolic else arch.pe.input_buffer_bytes + arch.pe.output_buffer_bytes
    return pe, arch.memory.global_buffer_bytes if arch.memory.residency_in_global_buffer else 0


__all__ = ["Candidate", "Pools", "allocate", "pe_counts", "pe_shares", "pool_bytes", "steps"]
