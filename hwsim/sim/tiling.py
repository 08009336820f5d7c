"""Cluster mapping of a GEMM's plane onto the PE grid: tile choice, rounds, barrier intervals.

The mapping half of :mod:`hwsim.sim.gemm` (whose module doc describes it in full): :func:`tile_grid`
picks ``tr × tc`` tiles by :func:`mapping_cost` (shapes, Kc groups, batch, I and one scalar density —
never the mask pattern), optionally only among tilings whose partial sums fit the accumulators
(:func:`scatter_mapping_inputs` with an arch); :func:`_intervals`, :func:`group_intervals` and
:func:`_group_pes` lay groups and image shares over the clusters. numpy only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hwsim.sim import work

if TYPE_CHECKING:
    from hwsim.arch import Arch


def _round_factor(groups: int, images: int, clusters: int) -> int:
    """Σ over rounds of the largest image share (in images) of the cluster mapping."""
    cg = max(1, min(clusters, groups))
    full, rem = divmod(groups, cg)
    out = full * -(-images // max(1, min(clusters // cg, images)))
    if rem:
        out += -(-images // max(1, min(clusters // rem, images)))
    return out


def mapping_cost(rows: int, cols: int, h: int, w: int, tr: int, tc: int, *, groups: int, images: int,
                 i: int, density: float) -> float:
    """Structural estimate of a tile grid's barrier-interval cycles per (reduction channel × F-vector).

    Per PE and channel, a tile of ``px`` pixels at density d costs about d·px/I vectors plus half a
    vector of rounding when it holds any non-zero (``i = 1``: d·px, per-pixel work as in
    backward-weight); times the rounds and image shares of :func:`_round_factor`. Uses shapes and
    one scalar density only — what a mapper knows before the masks — never the mask pattern.
    """
    px = -(-h // tr) * -(-w // tc)
    return per_pe_cost(px, i=i, density=density) * _round_factor(groups, images, (rows // tr) * (cols // tc))


def per_pe_cost(px: int, *, i: int, density: float) -> float:
    """:func:`mapping_cost`'s per-PE term: a tile of ``px`` pixels at ``density`` (clamped to [0, 1]) with ``i``
    activation lanes (it depends on nothing else, so :func:`tile_grid` computes it once per tile size)."""
    d = min(max(density, 0.0), 1.0)
    return d * px if i <= 1 else d * px / i + 0.5 * (1.0 - (1.0 - d) ** px)


def planar_balance(rows: int, cols: int, h: int, w: int) -> float:
    """Mean ÷ largest tile of SCNN's planar split of an ``h × w`` plane over ``rows × cols`` PEs (10×10 on 8×8: 0.39)."""
    return (h * w) / (rows * cols) / (-(-h // rows) * -(-w // cols))


def tile_grid(rows: int, cols: int, h: int, w: int, *, groups: int = 1, images: int = 1, i: int = 1,
              density: float = 1.0, fits: Callable[[int, int], bool] | None = None,
              min_balance: float = 0.0) -> tuple[int, int, int]:
    """(tile rows, tile cols, clusters) of an ``h × w`` plane on a ``rows × cols`` PE grid (module doc).

    Every ``tr ≤ min(rows, h)``, ``tc ≤ min(cols, w)`` is a candidate; the one with the lowest
    :func:`mapping_cost` wins (ties: more PEs per cluster). A plane at least as large as the grid
    with few groups gets the full grid (SCNN's planar tiling); a small plane with many groups may
    get whole-plane tiles on many clusters (channel-parallel), where 1-pixel tiles would leave the
    I activation lanes empty. A plane that covers the grid always gets SCNN's mapping (full grid, one
    cluster), which is what the SCNN reproduction measures — unless that split balances worse than
    ``min_balance`` (:func:`planar_balance`; the arch's ``pe_array.planar_min_balance``): then every tiling
    competes, and clusters of smaller tiles or whole planes per PE (image / channel partitioning) win
    where the planar split would idle most PEs at every barrier. ``fits(tr, tc)``: whether a tiling's
    partial sums fit the PE's accumulators; tilings that do not are skipped (e.g. a Linear over 2,048
    tokens, a 1×2048 plane, gets tiles of the token row instead of the whole row on one PE), unless
    none fits (the caller then reports the overflow).
    """
    if h >= rows and w >= cols and planar_balance(rows, cols, h, w) >= min_balance:
        return rows, cols, 1
    best = best_fit = None
    per: dict[int, float] = {}  # mapping_cost's per-PE term by tile size
    for tr, tc, px, rounds, fit in _candidates(rows, cols, h, w, groups, images, fits):
        if px not in per:
            per[px] = per_pe_cost(px, i=i, density=density)
        key = (per[px] * rounds, -tr * tc)  # == (mapping_cost(…, tr, tc, …), −tr·tc), the same float operations
        if best is None or key < best[0]:
            best = (key, tr, tc)
        if fit and (best_fit is None or key < best_fit[0]):
            best_fit = (key, tr, tc)
    _, tr, tc = best_fit or best
    return tr, tc, (rows // tr) * (cols // tc)


def _candidates(rows: int, cols: int, h: int, w: int, groups: int, images: int,
                fits: Callable[[int, int], bool] | None) -> list[tuple[int, int, int, int, bool]]:
    """:func:`tile_grid`'s candidates in its order, with what does not depend on the density: (tr, tc, pixels per
    tile, :func:`_round_factor`, fits). Remembered per shape when ``fits`` is None or an :class:`AccumulatorFit`
    (a replay asks for the same shapes in every iteration); another callable is asked each time."""
    key = (rows, cols, h, w, groups, images, fits)
    hit = _CANDIDATES.get(key) if fits is None or isinstance(fits, AccumulatorFit) else None
    if hit is not None:
        return hit
    out = [(tr, tc, -(-h // tr) * -(-w // tc), _round_factor(groups, images, (rows // tr) * (cols // tc)),
            fits is not None and bool(fits(tr, tc)))
           for tr in range(1, max(1, min(rows, h)) + 1) for tc in range(1, max(1, min(cols, w)) + 1)]
    if fits is None or isinstance(fits, AccumulatorFit):
        global _KEPT
        if _KEPT + len(out) > MAX_KEPT_CANDIDATES:  # many shapes or a large grid: start again (bounded memory)
            _CANDIDATES.clear()
            _KEPT = 0
        _CANDIDATES[key] = out
        _KEPT += len(out)
    return out


MAX_KEPT_CANDIDATES = 200_000  # remembered candidates (≈ 25 MB) before the memo starts again
_CANDIDATES: dict[tuple, list[tuple[int, int, int, int, bool]]] = {}
_KEPT = 0


def _rounds(g: int, n: int, clusters: int) -> list[tuple[int, int, int]]:
    """Rounds of the cluster mapping as (first group, groups, image shares per group)."""
    cg = max(1, min(clusters, g))
    out = []
    for g0 in range(0, g, cg):
        gr = min(cg, g - g0)
        out.append((g0, gr, max(1, min(clusters // gr, n))))
    return out


def _intervals(per_g_n_t: np.ndarray, clusters: int, num_pes: int) -> np.ndarray:
    """(G, N, T) cycles → (intervals, PEs) under the cluster mapping (module doc).

    ``clusters = 1``: one group per interval, every PE its tile of all images (SCNN's planar
    mapping). More clusters: rounds of up to ``clusters`` groups, each group's images split into
    contiguous shares over the clusters a round leaves free. Unused PEs get 0 cycles.
    """
    g, n, t = per_g_n_t.shape
    if g == 0:
        return np.zeros((0, num_pes), dtype=np.int64)
    rounds = _rounds(g, n, clusters)
    out = np.zeros((len(rounds), num_pes), dtype=np.int64)
    g0, gr, lanes = rounds[0]
    full = sum(1 for r in rounds if r[1] == gr)  # every round but possibly the last has gr groups
    blk = per_g_n_t[:full * gr].reshape(full, gr, n, t)
    seg = work.segment_sum(blk, work.split_edges(n, lanes), axis=2)          # (full, gr, lanes, T)
    out[:full, :gr * lanes * t] = seg.reshape(full, -1)
    if full < len(rounds):
        g0, gl, ll = rounds[-1]
        seg = work.segment_sum(per_g_n_t[g0:], work.split_edges(n, ll), axis=1)  # (gl, ll, T)
        out[-1, :gl * ll * t] = seg.reshape(-1)
    return out


def group_intervals(g: int, n: int, clusters: int) -> np.ndarray:
    """Barrier interval (round) of each output-channel group under the cluster mapping: int64 (G,)."""
    out = np.zeros(g, dtype=np.int64)
    for r, (g0, gr, _) in enumerate(_rounds(g, n, clusters)):
        out[g0:g0 + gr] = r
    return out


def _group_pes(g: int, n: int, t: int, clusters: int) -> np.ndarray:
    """PEs that work on each output-channel group under the cluster mapping: int64 (G,)."""
    out = np.zeros(g, dtype=np.int64)
    for g0, gr, lanes in _rounds(g, n, clusters):
        out[g0:g0 + gr] = lanes * t
    return out


def _density(x: np.ndarray) -> float:
    """``x.mean()`` of a mask, exactly (an exact count and one correctly rounded division), without a float pass."""
    if work.is_broadcast_ones(x):
        return 1.0
    return int(np.count_nonzero(x)) / x.size


def scatter_entries(conv: work.ScatterConv, tr: int, tc: int) -> int:
    """Accumulator entries one output channel needs per PE for a ``tr × tc`` tiling (:mod:`hwsim.sim.capacity`)."""
    return AccumulatorFit.of(conv, 0).entries(tr, tc)


@dataclass(frozen=True)
class AccumulatorFit:
    """``fits(tr, tc)`` of :func:`tile_grid` for a forward / backward-data GEMM: do one output channel's partial sums
    of a ``tr × tc`` tiling (:meth:`entries`) fit ``capacity`` accumulator entries? A value (the GEMM's plane, kernel,
    strides, dilations, direction and the capacity), so the candidates it marks are remembered per shape."""

    hx: int
    wx: int
    r: int
    s: int
    stride: tuple[int, int]
    dilation: tuple[int, int]
    up: bool
    capacity: int

    @classmethod
    def of(cls, conv: work.ScatterConv, capacity: int) -> AccumulatorFit:
        hx, wx = conv.x.shape[2:]
        r, s = conv.w.shape[2:]
        return cls(hx, wx, r, s, tuple(conv.stride), tuple(conv.dilation), conv.mode == "up", capacity)

    def entries(self, tr: int, tc: int) -> int:
        th, tw = -(-self.hx // tr), -(-self.wx // tc)
        (sh, sw), (dh, dw) = self.stride, self.dilation
        if self.up:
            return (th * sh + (self.r - 1) * dh) * (tw * sw + (self.s - 1) * dw)
        return (-(-th // sh) + -(-(self.r - 1) * dh // sh)) * (-(-tw // sw) + -(-(self.s - 1) * dw // sw))

    def __call__(self, tr: int, tc: int) -> bool:
        return self.entries(tr, tc) <= self.capacity


def scatter_mapping_inputs(conv: work.ScatterConv, kc: int, i: int, arch: Arch | None = None) -> dict:
    """What :func:`tile_grid` is told about a forward / backward-data GEMM (shared with capacity.py and
    precision.py); with ``arch``, only tilings whose partial sums fit its accumulators qualify."""
    kw: dict = dict(groups=-(-conv.w.shape[0] // kc), images=conv.x.shape[0], i=i,
                    density=_density(conv.x) if conv.x.size else 1.0)
    if arch is not None:
        cap = arch.pe.accumulator_banks * arch.pe.accumulator_bank_entries
        kw["fits"] = AccumulatorFit.of(conv, cap)
        kw["min_balance"] = arch.pe_array.planar_min_balance
    return kw
