"""Per-tile effectual work from real sparsity masks (pure, vectorised numpy).

The SCNN-like dataflow (planar-tiled, input-stationary Cartesian product) is described by a
:class:`ScatterConv`: a *streamed* operand ``x`` (activations, or δ̃z in backward-data) planar-tiled
over the PEs, and a *broadcast* operand ``w`` (weights) processed one output-channel group of
``Kc`` channels at a time. For every reduction channel c, a PE multiplies each non-zero weight of
the group with each non-zero activation of its tile (the Cartesian product, F weights × I
activations per cycle) and scatters the products to the output coordinates they belong to. So the
multiplier cycles of one tile are

    Σ_c ⌈nnz_w[g, c] / F⌉ · ⌈nnz_x[tile, c] / I⌉

which is one matrix product of two small count matrices: the whole layer costs two segment sums
over the masks and one (groups × channels) @ (channels × tiles) product. Intra-PE fragmentation
(partly filled F or I vectors) is therefore *measured*, not assumed.

Strided forward convolutions are split into stride phases: an activation at row h only meets
weights whose row r satisfies (h + pad − r·dil) ≡ 0 (mod stride), so each phase is its own
Cartesian product (a product of mismatched phases would land between output pixels). In the
transposed (backward-data) direction every product is valid and there is one phase.

Products landing outside the output plane (image borders) are multiplier work that produces
nothing; they are counted in the products and show up as fragmentation against the exact
effectual MAC counts of :func:`effectual_macs_forward` & co.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from hwsim.sim.segments import (  # noqa: F401 - re-exported: the leaf helpers live there
    _bool_segments,
    block_sums,
    is_broadcast_ones,
    ones_view,
    segment_sum,
    split_edges,
)

Dims = tuple[int, ...]  # (height, width) of a plane, a kernel, a stride, a padding or a dilation


def is_compact(w: np.ndarray, groups: int, channels: int) -> bool:
    """Are grouped weights ``w`` (O, ·, R, S) of a layer with ``channels`` input channels stored compact,
    (O, channels/groups, R, S) — each output channel's own group only — rather than block-diagonally
    expanded (:func:`expand_groups`, (O, channels, R, S))? The replay keeps them compact (a transformer's
    attention products have batch × heads groups: the expansion would be that many times larger)."""
    return groups > 1 and w.shape[1] != channels and w.shape[1] * groups == channels


def expand_groups(w: np.ndarray, groups: int) -> np.ndarray:
    """Grouped-conv weights (K, C/g, R, S) → block-diagonal (K, C, R, S) (zeros across groups)."""
    if groups == 1:
        return w
    k, cg = w.shape[:2]
    kg = k // groups
    full = np.zeros((k, cg * groups) + w.shape[2:], dtype=w.dtype)
    for gi in range(groups):
        full[gi * kg:(gi + 1) * kg, gi * cg:(gi + 1) * cg] = w[gi * kg:(gi + 1) * kg]
    return full


@dataclass(frozen=True, kw_only=True)
class ScatterConv:
    """One Cartesian-product GEMM: out[o, y] += w[o, c, r] · x[c, y + r] (conv arithmetic in ``mode``).

    ``x``: bool (N, C, Hx, Wx), streamed and planar-tiled; ``w``: bool (O, C, R, S), broadcast
    in groups of output channels (a grouped layer's may be compact, (O, C/groups, R, S): :attr:`compact`). ``mode="down"`` is a forward convolution (output = (h + pad −
    r·dil) / stride); ``mode="up"`` its transpose (output = h·stride + r·dil − pad), used for
    backward-data with x = δ̃z and w = Wᵀ. ``groups``: ``w`` is block-diagonal in that many equal blocks
    (a grouped layer, :func:`expand_groups`; only the diagonal blocks can be non-zero), which lets
    :mod:`hwsim.sim.blockdiag` count it block by block; 1 = no such promise.
    """

    x: np.ndarray
    w: np.ndarray
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    mode: str
    groups: int = 1

    @property
    def compact(self) -> bool:
        """Is ``w`` a grouped layer's compact (O, C/groups, R, S) weights (:func:`is_compact`), not expanded?"""
        return is_compact(self.w, self.groups, self.x.shape[1])

    @property
    def phases(self) -> list[tuple[int, int]]:
        if self.mode == "up":
            return [(0, 0)]
        return [(a, b) for a in range(self.stride[0]) for b in range(self.stride[1])]

    def x_phase(self, ph: tuple[int, int]) -> tuple[int, int]:
        """First row/col of ``x`` in phase ``ph`` (rows h with (h + pad) ≡ ph mod stride)."""
        if self.mode == "up":
            return 0, 0
        return (ph[0] - self.padding[0]) % self.stride[0], (ph[1] - self.padding[1]) % self.stride[1]

    def w_phase(self, ph: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Kernel rows/cols r with r·dil ≡ ph (mod stride)."""
        r = np.arange(self.w.shape[2])
        s = np.arange(self.w.shape[3])
        if self.mode == "up":
            return r, s
        return (r[(r * self.dilation[0]) % self.stride[0] == ph[0]],
                s[(s * self.dilation[1]) % self.stride[1] == ph[1]])


@dataclass(frozen=True, kw_only=True)
class PixelOuterProduct:
    """One backward-weight GEMM: δW[k, c, r, s] += Σ_{n,p,q} dz[n, k, p, q] · a[n, c, tap_r(p), tap_s(q)].

    ``dz``: bool (N, K, P, Q), the broadcast operand (F side); ``a``: bool (N, C, H, W), the streamed
    one, read through each output pixel's receptive field (I side); conv geometry as the forward
    layer's (``groups`` splits K and C alike). The twin of :class:`ScatterConv` for
    :func:`hwsim.sim.gemm.weight_grad_counts`.
    """

    dz: np.ndarray
    a: np.ndarray
    groups: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]

    def field_chunk(self, kc: int, acc_entries: int) -> int:
        """Input channels per receptive-field chunk: Kc × chunk × R·S partial sums fill ``acc_entries``."""
        cg = self.a.shape[1] // self.groups
        return max(1, min(cg, acc_entries // max(1, kc * self.kernel[0] * self.kernel[1])))

    def field_counts(self, group: int, *, chunk: int) -> np.ndarray:
        """:func:`patch_counts` of conv group ``group``'s activations: int64 (N, chunks, P, Q)."""
        cg = self.a.shape[1] // self.groups
        return patch_counts(self.a[:, group * cg:(group + 1) * cg], chunk=chunk, out_hw=self.dz.shape[2:],
                            kernel=self.kernel, stride=self.stride, padding=self.padding, dilation=self.dilation)


def planar_counts(conv: ScatterConv, rows: int, cols: int) -> np.ndarray:
    """Non-zeros of ``x`` per (n, c, phase, tile): int64 (N, C, Φ, rows·cols).

    An all-ones ``x`` (:func:`ones_view`, the streamed operand of a role that is not skipped) is
    counted on one (image, channel) plane and broadcast: the counts are the tile sizes.
    """
    n, c, hx, wx = conv.x.shape
    if is_broadcast_ones(conv.x):
        one = planar_counts(ScatterConv(x=np.ones((1, 1, hx, wx), dtype=bool), w=conv.w, stride=conv.stride,
                                        padding=conv.padding, dilation=conv.dilation, mode=conv.mode), rows, cols)
        return np.broadcast_to(one, (n, c) + one.shape[2:])
    eh, ew = split_edges(hx, rows), split_edges(wx, cols)
    out = []
    for ph in conv.phases:
        h0, w0 = conv.x_phase(ph)
        sh, sw = (1, 1) if conv.mode == "up" else conv.stride
        sub = conv.x[:, :, h0::sh, w0::sw]
        seh = np.clip(-(-(eh - h0) // sh), 0, sub.shape[2])
        sew = np.clip(-(-(ew - w0) // sw), 0, sub.shape[3])
        # rows first: it shrinks the mask most while it is still bool (column sums then run on counts)
        if sub.size == 0:
            cnt = np.zeros((n, c, rows, cols), dtype=np.int64)
        else:
            if sub.dtype == bool:  # rows, then columns of the row counts, both in narrow counters
                rows_first = _bool_segments(sub, seh, 2)
                cnt = _bool_segments(rows_first, sew, 3, vmax=int(np.diff(seh).max())).astype(np.int64)
            else:
                cnt = segment_sum(segment_sum(sub, seh, axis=2), sew, axis=3)
        out.append(cnt.reshape(n, c, rows * cols))
    return np.stack(out, axis=2)


def _tap_counts(w: np.ndarray, rs: np.ndarray, ss: np.ndarray) -> np.ndarray:
    """Σ over taps (r, s) ∈ rs × ss of the (O, C) planes ``w[:, :, r, s]``, one pass, no copy of ``w``.

    A bool ``w`` is summed in ``uint8`` (up to 255 taps; the result is small unsigned counts, widened by the
    caller), and a single tap is returned as a view of its plane; other inputs in int64.
    """
    if w.dtype == bool and rs.size * ss.size == 1:
        return w[:, :, int(rs[0]), int(ss[0])]
    acc_t = np.uint8 if rs.size * ss.size <= 255 and w.dtype == bool else np.int64
    acc = np.zeros(w.shape[:2], dtype=acc_t)
    for r in rs.tolist():
        for s in ss.tolist():
            acc += w[:, :, r, s]
    return acc


def group_weight_counts(conv: ScatterConv, kc: int) -> np.ndarray:
    """Non-zero weights per (group of ``kc`` output channels, c, phase): int64 (G, C, Φ)."""
    w = expand_groups(conv.w, conv.groups) if conv.compact else conv.w  # (Kc not inside one group: rare)
    o, c = w.shape[:2]
    phases = conv.phases
    out = np.empty((-(-o // kc), c, len(phases)), dtype=np.int64)
    for p, ph in enumerate(phases):
        r, s = conv.w_phase(ph)
        out[:, :, p] = block_sums(_tap_counts(w, r, s), kc)   # (G, C)
    return out


def cartesian_work(nw: np.ndarray, nx: np.ndarray, f: int, i: int) -> tuple[np.ndarray, int]:
    """Multiplier cycles per (group, n, tile) and the total products, from count arrays.

    ``nw`` (G, C, Φ) and ``nx`` (N, C, Φ, T); cycles = Σ_{c,φ} ⌈nw/F⌉·⌈nx/I⌉ (int64 (G, N, T)),
    products = Σ nw·nx = (Σ_g nw) · (Σ_{n,t} nx). The cycle product runs as a float64 matrix
    product (one BLAS call) when every partial sum is an integer below
    2**53 — then it is exact whatever the summation order, and ⌈x/I⌉ of an integer x < 2**53 is
    exact in float64 too — else as an int64 ``einsum``.
    """
    g = nw.shape[0]
    n, c, ph, t = nx.shape
    a = nw.reshape(g, c * ph).astype(np.int64, copy=False)
    ca = (a + f - 1) // f
    b = nx.reshape(n, c * ph, t)
    prod = int(a.sum(axis=0) @ b.sum(axis=(0, 2), dtype=np.int64)) if a.size and b.size else 0
    bx = int(b.max(initial=0))
    bound = int(ca.max(initial=0)) * -(-bx // i) * c * ph
    if bound < 2 ** 53 and b.size:
        cb = np.empty((c * ph, n, t), dtype=np.float64)
        cb[...] = b.transpose(1, 0, 2)               # transpose and widen in one copy
        np.divide(cb, i, out=cb)
        np.ceil(cb, out=cb)
        cyc = np.rint(ca.astype(np.float64) @ cb.reshape(c * ph, n * t)).astype(np.int64)
        return cyc.reshape(g, n, t), prod
    cb = (b.transpose(1, 0, 2).reshape(c * ph, n * t).astype(np.int64) + i - 1) // i
    return np.einsum("ij,jk->ik", ca, cb).reshape(g, n, t), prod


# ----------------------------------------------------------------------------- exact effectual MACs


def _padded(mask: np.ndarray, pad: tuple[int, int]) -> np.ndarray:
    if not any(pad):  # nothing to add (linear and matmul layers): no copy
        return mask
    return np.pad(mask, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))


def batch_sum(x: np.ndarray) -> np.ndarray:
    """Σ over axis 0 (the batch) as counts — in uint8/uint16 first for a bool mask of ≤ 255 / 65535 images,
    widened to int64; one image (every linear and matmul layer: the batch is the width) is returned as its own
    plane, a view (bool counts 0/1: callers sum it with ``dtype=np.int64``)."""
    if x.shape[0] == 1:
        return x[0]
    if x.dtype == bool and x.shape[0] <= 65535:
        return x.view(np.uint8).sum(axis=0, dtype=np.uint8 if x.shape[0] <= 255 else np.uint16).astype(np.int64)
    return x.sum(axis=0, dtype=np.int64)


def dense_valid_macs(*, n: int, k: int, c_per_group: int, in_hw: Dims, out_hw: Dims, kernel: Dims, stride: Dims,
                     padding: Dims, dilation: Dims) -> int:
    """MACs of a dense layer that read a real (non-padding) input: the same for all three passes.

    Σ over taps of the output rows (columns) whose tap falls inside the input, times N·K·C/groups:
    a Cartesian dataflow never multiplies padding, so this is its dense work.
    """
    vh = _valid_taps(int(out_hw[0]), int(in_hw[0]), int(kernel[0]), int(stride[0]), int(padding[0]), int(dilation[0]))
    vw = _valid_taps(int(out_hw[1]), int(in_hw[1]), int(kernel[1]), int(stride[1]), int(padding[1]), int(dilation[1]))
    return n * k * c_per_group * vh * vw


@functools.lru_cache(maxsize=1024)
def _valid_taps(o: int, size: int, kk: int, st: int, pd: int, dl: int) -> int:
    """(output position, tap) pairs of one axis whose input position is inside ``[0, size)`` (remembered: a replay
    asks for the same layers in every iteration)."""
    pos = np.arange(o)[:, None] * st + np.arange(kk)[None, :] * dl - pd
    return int(((pos >= 0) & (pos < size)).sum())


def _tap_weights(w_full: np.ndarray, groups: int, channels: int) -> np.ndarray:
    """Non-zero weights per input channel and tap: Σ of ``w_full`` (K, C, R, S) over K → (C, R, S), int64.

    Grouped weights (``groups`` blocks) are read block by block: compact ones (:func:`is_compact`) as they are,
    a block-diagonal expansion (:func:`expand_groups`) over its diagonal blocks only."""
    k, c, r, s = w_full.shape
    if is_compact(w_full, groups, channels):  # (g, K/g, C/g, R, S): each group's channels are its own
        return w_full.reshape(groups, k // groups, c, r, s).sum(axis=1, dtype=np.int64).reshape(-1, r, s)
    if groups <= 1 or k % groups or c % groups:
        return w_full.sum(axis=0, dtype=np.int64)
    idx = np.arange(groups)
    diag = w_full.reshape(groups, k // groups, groups, c // groups, r, s)[idx, :, idx]  # (g, K/g, C/g, R, S)
    return diag.sum(axis=1, dtype=np.int64).reshape(-1, r, s)


def _valid_range(pos: np.ndarray, size: int) -> slice:
    """The positions of the increasing ``pos`` inside ``[0, size)``, as a slice of ``pos``."""
    ok = np.flatnonzero((pos >= 0) & (pos < size))
    return slice(int(ok[0]), int(ok[-1]) + 1) if ok.size else slice(0, 0)


def effectual_macs_forward(w_full: np.ndarray, a: np.ndarray, *, out_hw: Dims, stride: Dims, padding: Dims,
                           dilation: Dims, groups: int = 1) -> int:
    """Σ over (k, c, r, s, n, p, q) of [w ≠ 0]·[a at the tap ≠ 0] — the MACs a perfect engine must do.

    The batch is summed first (Σ_n a is the same for every tap), so each tap reads a C×H×W plane.
    ``groups``: ``w_full`` is grouped in that many blocks, compact or expanded (only the blocks are read).
    """
    wk = _tap_weights(w_full, groups, a.shape[1])  # (C, R, S): non-zero weights per tap and channel
    ap = _padded(batch_sum(a)[None], padding)[0]   # (C, H + 2·pad, W + 2·pad)
    (p, q), (kr, ks), (sh, sw), (dh, dw) = out_hw, w_full.shape[2:], stride, dilation
    if kr * ks == 1:  # one tap (linear and matmul layers): its column read directly
        return int(ap[:, :(p - 1) * sh + 1:sh, :(q - 1) * sw + 1:sw].sum(axis=(1, 2), dtype=np.int64) @ wk[:, 0, 0])
    # Σ over a tap's im2col column = Σ over its P rows, then over its Q columns of those row sums: R + S reductions
    rows = np.stack([ap[:, r * dh:r * dh + (p - 1) * sh + 1:sh].sum(axis=1, dtype=np.int64) for r in range(kr)],
                    axis=1)                        # (C, R, W + 2·pad)
    cols = np.stack([rows[:, :, s * dw:s * dw + (q - 1) * sw + 1:sw].sum(axis=2) for s in range(ks)], axis=2)
    return int(np.vdot(cols.reshape(-1), wk.reshape(-1)))  # (C, R, S) · (C, R, S)


def effectual_macs_backward_data(w_full: np.ndarray, dz: np.ndarray, *, in_hw: Dims, stride: Dims, padding: Dims,
                                 dilation: Dims, groups: int = 1) -> int:
    """Effectual MACs of δa = Wᵀ ⋆ δ̃z: pairs (w ≠ 0, δ̃z ≠ 0) whose target input pixel exists.

    ``w_full`` of a grouped layer compact or expanded: each output channel's weights sum to the same counts
    (``groups`` is not needed)."""
    n, k, p, q = dz.shape
    kr, ks = w_full.shape[2:]
    wc = w_full.sum(axis=1, dtype=np.int64)  # (K, R, S): the expansion's other blocks are zeros
    dn = batch_sum(dz)                       # (K, P, Q): the batch summed once for all taps
    if kr * ks == 1:  # one tap (linear and matmul layers): its valid rows and columns read directly
        rv = _valid_range(np.arange(p) * stride[0] - padding[0], in_hw[0])
        sv = _valid_range(np.arange(q) * stride[1] - padding[1], in_hw[1])
        return int(dn[:, rv, sv].sum(axis=(1, 2), dtype=np.int64) @ wc[:, 0, 0])
    # each tap's valid (row, column) ranges of δ̃z as boxes of the plane's summed-area table
    integral = np.zeros((k, p + 1, q + 1), dtype=np.int64)
    np.cumsum(dn, axis=1, dtype=np.int64, out=integral[:, 1:, 1:])
    np.cumsum(integral[:, 1:, 1:], axis=2, out=integral[:, 1:, 1:])
    rv = [_valid_range(np.arange(p) * stride[0] + r * dilation[0] - padding[0], in_hw[0]) for r in range(kr)]
    sv = [_valid_range(np.arange(q) * stride[1] + s * dilation[1] - padding[1], in_hw[1]) for s in range(ks)]
    r0, r1 = np.array([v.start for v in rv]), np.array([v.stop for v in rv])
    s0, s1 = np.array([v.start for v in sv]), np.array([v.stop for v in sv])
    box = (integral[:, r1][:, :, s1] - integral[:, r0][:, :, s1] - integral[:, r1][:, :, s0]
           + integral[:, r0][:, :, s0])       # (K, R, S): non-zero δ̃z each tap reads
    return int(np.vdot(box.reshape(-1), wc.reshape(-1)))


def effectual_macs_backward_weight(dz: np.ndarray, a: np.ndarray, *, groups: int, stride: Dims, padding: Dims,
                                   dilation: Dims,
                                   kernel: tuple[int, int]) -> int:
    """Effectual MACs of δW = δ̃z ⋆ a: Σ_pixels nnz_k(δ̃z) · nnz_c(a in the pixel's receptive field), per conv group
    (Σ over taps of the products, as one product with the receptive-field counts of :func:`field_sums`)."""
    n, k, p, q = dz.shape
    c = a.shape[1]
    total = 0
    for gi in range(groups):
        dzc = block_sums(dz[:, gi * (k // groups):(gi + 1) * (k // groups)], k // groups, axis=1)  # (N, 1, P, Q)
        ag = block_sums(a[:, gi * (c // groups):(gi + 1) * (c // groups)], c // groups, axis=1)
        field = field_sums(ag, out_hw=(p, q), kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                           vmax=c // groups)
        total += int(np.vdot(field.reshape(-1), dzc.reshape(-1)))
    return total


def field_sums(x: np.ndarray, *, out_hw: Dims, kernel: Dims, stride: Dims, padding: Dims, dilation: Dims,
               vmax: int | None = None) -> np.ndarray:
    """Σ over the taps (r, s) of the (…, H, W) counts ``x`` read at each output pixel's receptive field (padding
    reads 0): int64 (…, P, Q). Separable: the R row taps are summed first, then the S column taps of those
    sums (R + S additions instead of R·S); integer sums, so equal to the tap-by-tap sum. ``vmax``: no count of
    ``x`` exceeds it (a bool ``x``: 1), so the sums run in the narrowest integers that hold ``vmax``·R·S."""
    (p, q), (kr, ks), (sh, sw), (dh, dw), (ph, pw) = out_hw, kernel, stride, dilation, padding
    h, w = x.shape[-2:]
    if kr * ks == 1 and (sh, sw, ph, pw, h, w) == (1, 1, 0, 0, p, q):  # one tap over the whole plane
        return x.astype(np.int64)
    bound = (1 if x.dtype == bool else vmax if vmax is not None else 2 ** 62) * kr * ks
    acc = np.int16 if bound < 2 ** 15 else (np.int32 if bound < 2 ** 31 else np.int64)
    xp = np.zeros(x.shape[:-2] + (h + 2 * ph, w + 2 * pw), dtype=acc)
    xp[..., ph:ph + h, pw:pw + w] = x
    rows = np.zeros(xp.shape[:-2] + (p, xp.shape[-1]), dtype=acc)
    for r in range(kr):
        rows += xp[..., r * dh:r * dh + (p - 1) * sh + 1:sh, :]
    out = np.zeros(xp.shape[:-2] + (p, q), dtype=acc)
    for s in range(ks):
        out += rows[..., s * dw:s * dw + (q - 1) * sw + 1:sw]
    return out.astype(np.int64)


def patch_counts(a: np.ndarray, *, chunk: int, out_hw: Dims, kernel: Dims, stride: Dims, padding: Dims,
                 dilation: Dims) -> np.ndarray:
    """Non-zero activations in each output pixel's receptive field, per channel chunk: (N, chunks, P, Q).

    Backward-weight multiplies, for every output pixel, the non-zero δ̃z of that pixel with the
    non-zero activations of its receptive field (an outer product into δW); the accumulators hold
    ``chunk`` input channels' worth of δW at a time, so the field is counted per channel chunk.
    """
    n, c = a.shape[:2]
    if is_broadcast_ones(a) and n > 1:  # the same field counts for every image
        one = patch_counts(a[:1], chunk=chunk, out_hw=out_hw, kernel=kernel, stride=stride, padding=padding,
                           dilation=dilation)
        return np.broadcast_to(one, (n,) + one.shape[1:])
    nch = -(-c // chunk)
    edges = np.minimum(np.arange(nch + 1, dtype=np.int64) * chunk, c)  # the last chunk may be short
    per = segment_sum(a, edges, axis=1)      # (N, chunks, H, W) non-zeros per channel chunk
    return field_sums(per, out_hw=out_hw, kernel=kernel, stride=stride, padding=padding, dilation=dilation,
                      vmax=chunk)
