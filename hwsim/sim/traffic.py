"""Bytes moved: compressed tensor sizes and DRAM traffic of one GEMM.

Formats (``memory.compression``):

* ``none`` — every element at its bit-width;
* ``bitmask`` — one presence bit per element plus the non-zero values;
* ``run_length`` — each non-zero carries an ``rl``-bit count of the zeros before it (SCNN);
  a run longer than 2**rl − 1 needs a filler entry (a stored zero), counted exactly from the mask.

Dense fallback: a compressed format costs more than the plain values on dense-ish tensors
(run-length with 8-bit values and 4-bit runs: 12 bits per non-zero, so above density 2/3 it loses
to 8 bits per element; bitmask above 1 − 1/bits). The compressor that writes a tensor knows its
non-zero count, so — as compressed-memory engines do (e.g. a per-block "uncompressed" flag) —
each tensor is stored in the cheaper of its compressed and its plain form plus one format-flag
bit (:func:`tensor_bytes`). The readers (the PEs' sequencers) decode either: plain values carry
their coordinates implicitly. The choice is per tensor, not per tile (a per-tile flag would save a
little more on tensors whose density varies across tiles; not modelled). ``compression: none``
is plain only (no flag): the dense baseline.

DRAM traffic of a layer-pass: the broadcast operand and the streamed operand are read once and
the output written once, if the streamed operand fits on chip (global buffer + all PE input
buffers); otherwise it is processed in chunks that fit and the broadcast operand is re-read
once per chunk (the cheaper of the two loop orders is not searched: SCNN keeps activations
resident and streams weights).

A :class:`Residency` (planned by :mod:`hwsim.sim.residency` from the layer chain) changes that:
an operand already on chip is not read (and, being whole on chip, needs no chunking), and the
output's DRAM write is what the chain needs (0 if it stays on chip for the next GEMM and no
training stash is due, else the stash / spill bytes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwsim.sim import compiled


def run_length_fillers(mask: np.ndarray, rl_bits: int) -> int:
    """Filler entries a run-length code needs for zero runs longer than 2**rl − 1 (exact, from the mask).

    Σ over zero runs (before each non-zero, and the trailing one) of ⌊run / 2**rl⌋. For rl ≥ 3 a
    run inside one byte of the bit-packed mask (≤ 6 zeros) needs no filler, so only the runs
    between consecutive non-zero *bytes* are measured: one pass packing the mask, then work on
    its non-zero bytes (a performance path; equal to counting every run).
    """
    m = np.asarray(mask)
    n = m.size
    if n == 0:
        return 0
    if rl_bits < 3:
        flat = np.flatnonzero(m.ravel())
        gaps = np.diff(np.concatenate([[-1], flat, [n]])) - 1  # zeros before each non-zero, and trailing
        return int((gaps // (1 << rl_bits)).sum())
    packed = np.packbits(m.ravel() != 0 if m.dtype != bool else m.ravel())   # MSB first
    known = compiled.fillers(packed, n, rl_bits)  # the same sum over the packed bytes in one compiled pass
    if known is not None:
        return known
    nzb = np.flatnonzero(packed)
    if nzb.size == 0:
        return n // (1 << rl_bits)
    byte = packed[nzb]
    first = nzb * 8 + _LEADING[byte]               # first set bit of each non-zero byte
    last = nzb * 8 + 7 - _TRAILING[byte]           # last set bit
    gaps = np.concatenate([[first[0]], first[1:] - last[:-1] - 1, [n - 1 - last[-1]]])
    return int((gaps // (1 << rl_bits)).sum())


_BYTES = np.arange(256, dtype=np.uint8)
_BITS = np.unpackbits(_BYTES[:, None], axis=1)                    # (256, 8), MSB first
_LEADING = np.where(_BYTES > 0, np.argmax(_BITS, axis=1), 8).astype(np.int64)
_TRAILING = np.where(_BYTES > 0, np.argmax(_BITS[:, ::-1], axis=1), 8).astype(np.int64)


def tensor_bytes(*, nnz: int | np.ndarray, size: int | np.ndarray, value_bits: int, compression: str,
                 rl_bits: int = 4, fillers: int | np.ndarray = 0) -> float | np.ndarray:
    """Bytes of a tensor with ``nnz`` non-zeros out of ``size`` elements in the given format.

    A compressed format falls back to the plain values when those are smaller, plus a 1-bit
    format flag per tensor (module doc). ``nnz``, ``size`` and ``fillers`` may be integer arrays (one tensor
    slice each, e.g. every PE's share: :func:`hwsim.sim.onchip.pe_shares`); the bytes are then an array.
    """
    plain = size * value_bits / 8
    if compression == "none":
        return plain
    if compression == "bitmask":
        packed = size / 8 + nnz * value_bits / 8
    elif compression == "run_length":
        packed = (nnz + fillers) * (value_bits + rl_bits) / 8
    else:
        raise ValueError(f"compression: {compression!r} is not one of ('none', 'bitmask', 'run_length')")
    if isinstance(packed, np.ndarray):
        return np.minimum(packed, plain) + 1 / 8
    return min(packed, plain) + 1 / 8


def mask_bytes(mask: np.ndarray, *, value_bits: int, compression: str, rl_bits: int) -> float:
    """Bytes of a masked tensor in ``compression`` (fillers counted for run_length)."""
    nnz = int(np.count_nonzero(mask))
    fill = run_length_fillers(mask, rl_bits) if compression == "run_length" else 0
    return tensor_bytes(nnz=nnz, size=int(np.asarray(mask).size), value_bits=value_bits,
                        compression=compression, rl_bits=rl_bits, fillers=fill)


def density_bytes(*, density: float, size: int, value_bits: int, compression: str, rl_bits: int) -> float:
    """Bytes of a tensor known only by its density (outputs not in the trace)."""
    nnz = int(round(density * size))
    fill = 0
    if compression == "run_length" and 0 < density < 1:
        # Expected fillers of an i.i.d. mask: each non-zero's preceding run exceeds 2**rl − 1 w.p. (1−d)**2**rl.
        fill = int(round(nnz * (1 - density) ** (1 << rl_bits)))
    return tensor_bytes(nnz=nnz, size=size, value_bits=value_bits, compression=compression, rl_bits=rl_bits,
                        fillers=fill)


@dataclass(frozen=True, kw_only=True)
class Residency:
    """Where one layer-pass finds its operands and what it must write off chip.

    ``stream_on_chip`` / ``broadcast_on_chip``: the operand is already on chip (produced there by
    the previous GEMM of the chain, or left there by the other backward GEMM of the layer), so it
    costs no DRAM read. ``out_bytes``: DRAM bytes written for the output (``None``: the pass's own
    output size, as without residency). ``broadcast_kept``: the broadcast operand, read from DRAM,
    stays on chip for the whole pass (resident weights), so it is read once even when the streamed
    operand is processed in chunks. ``global_bytes``: bytes the layer-pass reads from or writes
    to the global buffer for tensors kept *there* (:mod:`hwsim.sim.onchip`): priced as global-buffer
    accesses on top of the DRAM staging (tensors kept in the PE RAMs cost the PE RAM accesses the
    dataflow counts anyway).
    """

    stream_on_chip: bool = False
    broadcast_on_chip: bool = False
    out_bytes: float | None = None
    broadcast_kept: bool = False
    global_bytes: float = 0.0


NO_RESIDENCY = Residency()


def dram_parts(*, stream_bytes: float, broadcast_bytes: float, out_bytes: float, on_chip_bytes: int,
               residency: Residency = NO_RESIDENCY) -> tuple[float, float, float, int]:
    """(streamed operand bytes read, broadcast operand bytes read, bytes written, chunks) for one GEMM given the
    on-chip capacity and residency: :func:`dram_traffic` per tensor (the broadcast read counts every chunk's
    re-read)."""
    if residency.stream_on_chip:
        chunks = 1  # the whole streamed operand is on chip: the broadcast one is read once
    else:
        chunks = max(1, math.ceil(stream_bytes / on_chip_bytes)) if on_chip_bytes > 0 else 1
    reads = 1 if residency.broadcast_kept else chunks  # resident weights are read once, whatever the chunks
    rd_s = 0.0 if residency.stream_on_chip else stream_bytes
    rd_b = 0.0 if residency.broadcast_on_chip else broadcast_bytes * reads
    wr = out_bytes if residency.out_bytes is None else residency.out_bytes
    return rd_s, rd_b, wr, chunks


def dram_traffic(*, stream_bytes: float, broadcast_bytes: float, out_bytes: float,
                 on_chip_bytes: int, residency: Residency = NO_RESIDENCY) -> tuple[float, float, int]:
    """(bytes read, bytes written, chunks) for one GEMM given the on-chip capacity and residency."""
    rd_s, rd_b, wr, chunks = dram_parts(stream_bytes=stream_bytes, broadcast_bytes=broadcast_bytes,
                                        out_bytes=out_bytes, on_chip_bytes=on_chip_bytes, residency=residency)
    return rd_s + rd_b, wr, chunks
