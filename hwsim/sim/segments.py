"""Segment and block sums of masks and counts (pure numpy): the leaf helpers of :mod:`hwsim.sim.work`.

Bool masks are summed in the narrowest unsigned counters that cannot overflow and widened to int64 after
the reduction (one pass over the mask, no int64 copy of it); an all-true broadcast view
(:func:`ones_view`, a role the architecture does not skip) is counted from its geometry.
"""

from __future__ import annotations

import numpy as np


def split_edges(n: int, parts: int) -> np.ndarray:
    """``parts + 1`` boundaries splitting ``range(n)`` into near-equal contiguous pieces (some may be empty)."""
    return (np.arange(parts + 1, dtype=np.int64) * n) // parts


def segment_sum(x: np.ndarray, edges: np.ndarray, axis: int) -> np.ndarray:
    """Sums of ``x`` over ``[edges[i], edges[i+1])`` along ``axis`` (empty segments give 0), int64.

    Bool masks (the hot path) are summed segment by segment in ``uint8``/``uint16`` (a segment
    of at most 255 / 65535 elements cannot overflow them) and widened after the reduction: one
    pass over the mask, no int64 copy of it. Other inputs use ``np.add.reduceat`` in int64.
    """
    edges = np.asarray(edges, dtype=np.int64)
    nseg = edges.size - 1
    axis = axis % x.ndim
    out_shape = x.shape[:axis] + (nseg,) + x.shape[axis + 1:]
    lens = np.diff(edges)
    if nseg == 0 or not lens.any():
        return np.zeros(out_shape, dtype=np.int64)
    if is_broadcast_ones(x):  # counts are segment lengths: sum one line, broadcast
        line = tuple(slice(None) if d == axis else slice(0, 1) for d in range(x.ndim))
        return np.broadcast_to(segment_sum(np.ones(x[line].shape, dtype=bool), edges, axis), out_shape)
    if x.dtype == bool:
        return _bool_segments(x, edges, axis).astype(np.int64)
    if x.dtype.kind == "f":
        x = x.astype(np.int64)  # as an int64 accumulation casts each element
    nonempty = lens > 0
    ix = [slice(None)] * x.ndim
    ix[axis] = slice(int(edges[0]), int(edges[-1]))
    res = np.add.reduceat(x[tuple(ix)], (edges[:-1] - edges[0])[nonempty], axis=axis, dtype=np.int64)
    if nonempty.all():
        return res
    out = np.zeros(out_shape, dtype=np.int64)
    ix[axis] = np.flatnonzero(nonempty)
    out[tuple(ix)] = res
    return out


def _bool_segments(x: np.ndarray, edges: np.ndarray, axis: int, vmax: int = 1) -> np.ndarray:
    """:func:`segment_sum` of a bool mask (or of small unsigned counts ≤ ``vmax``) in the narrowest
    unsigned type that cannot overflow (no int64 copy of the input)."""
    worst = int(np.diff(edges).max()) * vmax
    acc = np.uint8 if worst <= 255 else (np.uint16 if worst <= 65535 else (np.uint32 if worst < 2**32 else np.int64))
    u = x.view(np.uint8) if x.dtype == bool else x
    out = np.empty(x.shape[:axis] + (edges.size - 1,) + x.shape[axis + 1:], dtype=acc)
    ix = [slice(None)] * x.ndim
    ox = [slice(None)] * x.ndim
    for j, (lo, hi) in enumerate(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True)):
        ix[axis], ox[axis] = slice(lo, hi), j
        np.sum(u[tuple(ix)], axis=axis, dtype=acc, out=out[tuple(ox)])
    return out


TRANSPOSE_ROWS = 64  # rows of the source copied per strip by :func:`transposed` (fastest of 8–512 on 1-byte masks)


def transposed(x: np.ndarray) -> np.ndarray:
    """``np.ascontiguousarray(x.T)`` of a 2-D array, copied in strips of :data:`TRANSPOSE_ROWS` source rows.

    numpy's one-shot transposing copy walks the source or the destination with a stride of a whole row and
    misses the cache on nearly every element (≈ 3–7 ns per element on a 1-byte mask); copying strips of rows
    keeps both sides' lines in cache (≈ 1 ns). Same values, same dtype."""
    n, c = x.shape
    if n * c < 1 << 16:
        return np.ascontiguousarray(x.T)
    out = np.empty((c, n), dtype=x.dtype)
    for i in range(0, n, TRANSPOSE_ROWS):
        out[:, i:i + TRANSPOSE_ROWS] = x[i:i + TRANSPOSE_ROWS].T
    return out


def is_broadcast_ones(x: np.ndarray) -> bool:
    """Is ``x`` a read-only all-true view of one element (:func:`ones_view`)? Then its statistics are geometry."""
    return x.ndim > 0 and x.size > 0 and not any(x.strides) and bool(x.flat[0])


def ones_view(shape: tuple[int, ...]) -> np.ndarray:
    """An all-true bool mask of ``shape`` that costs no memory (a broadcast view; read-only)."""
    return np.broadcast_to(np.True_, shape)


def block_sums(x: np.ndarray, size: int, axis: int = 0) -> np.ndarray:
    """Sums of consecutive blocks of ``size`` entries of ``x`` along ``axis`` (the last block may be short): int64.

    Bool masks and small unsigned counts are summed in the narrowest unsigned type that cannot overflow
    (one pass over ``x``, no int64 copy of it) and widened after the reduction; equal to
    ``segment_sum(x, edges, axis)`` with edges every ``size`` entries.
    """
    axis = axis % x.ndim
    o = x.shape[axis]
    g = -(-o // size)
    if is_broadcast_ones(x):  # counts are block lengths: sum one line, broadcast
        line = tuple(slice(None) if d == axis else slice(0, 1) for d in range(x.ndim))
        one = block_sums(np.ones(x[line].shape, dtype=bool), size, axis)
        return np.broadcast_to(one, x.shape[:axis] + (g,) + x.shape[axis + 1:])
    if x.dtype == bool or x.dtype.kind == "u":
        worst = size * (1 if x.dtype == bool else int(np.iinfo(x.dtype).max))
        acc = np.uint8 if worst <= 255 else (np.uint16 if worst <= 65535 else (np.uint32 if worst < 2**32 else np.uint64))
        u = x.view(np.uint8) if x.dtype == bool else x
    else:
        acc, u = np.int64, x
    if x.ndim == 2 and axis == 0 and not x.flags.c_contiguous and x.T.flags.c_contiguous and size <= 32:
        return _row_blocks(x.T, size).T  # a transposed plane (backward-data's Wᵀ): sum in its memory order
    head, tail = x.shape[:axis], x.shape[axis + 1:]
    out = np.empty(head + (g,) + tail, dtype=np.int64)
    full = o // size
    lead = (slice(None),) * axis
    if full:
        part = u[lead + (slice(0, full * size),)].reshape(head + (full, size) + tail)
        out[lead + (slice(0, full),)] = part.sum(axis=axis + 1, dtype=acc)
    if full < g:
        out[lead + (full,)] = u[lead + (slice(full * size, None),)].sum(axis=axis, dtype=acc)
    return out


def _row_blocks(y: np.ndarray, size: int) -> np.ndarray:
    """:func:`block_sums` along axis 1 of a C-contiguous 2-D bool / small unsigned ``y`` with small blocks: one
    strided add per position in the block (a reduction over a short inner axis would loop per block)."""
    k, o = y.shape
    g, full = -(-o // size), o // size
    worst = size * (1 if y.dtype == bool else int(np.iinfo(y.dtype).max))
    acc_t = np.uint8 if worst <= 255 else (np.uint16 if worst <= 65535 else np.int64)
    u = y.view(np.uint8) if y.dtype == bool else y
    out = np.empty((k, g), dtype=np.int64)
    if full:
        y3 = u[:, :full * size].reshape(k, full, size)
        acc = y3[:, :, 0].astype(acc_t)
        for j in range(1, size):
            acc += y3[:, :, j]
        out[:, :full] = acc
    if full < g:
        out[:, full] = u[:, full * size:].sum(axis=1, dtype=acc_t)
    return out
