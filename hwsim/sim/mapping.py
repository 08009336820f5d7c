"""Trace-v2 GEMM kinds → the simulator's two machine kinds (``linear``, symmetric-padding ``conv2d``).

The dataflow models (:mod:`hwsim.sim.passes`) know a Linear layer and a Conv2d with symmetric
padding. Every other recorded kind is replayed as the equivalent one, with the same dense MACs
(:attr:`hwsim.trace.schema.LayerGeometry.macs`) and the real operand masks:

* ``conv1d`` — a conv2d with H = P = R = 1.
* asymmetric padding (e.g. an even kernel's ``padding="same"``) — the symmetric part stays padding;
  the extra rows/columns are written into the input mask as zeros (the output size is unchanged).
  Assumption: the Cartesian dense baseline counts those few explicit zeros as real input (a dense
  PE multiplies them; ≤ one row/column per side).
* ``matmul`` (attention's QKᵀ and P·V, batched products) — a grouped 1×1 conv2d on a 1×M image
  (groups = batch, the rows as the width, as the Linear mapping folds its batch): the second operand
  takes the weight's place with its *recorded* mask. Assumption: the dataflow and DRAM model treat
  it as a weight-side operand; both backward GEMMs are then replayed as usual (here both produce
  activation gradients). The machine geometry keeps the trace's ``w_role`` (``activation``), so the residency
  plan writes no δW for it (:mod:`hwsim.sim.residency`: the gradient hand-over).
* ``conv_transpose1d/2d`` — their GEMM form (how frameworks run them): each input pixel times the
  (C/g) × (K/g·R·S) kernel matrix, scattered by col2im; a grouped 1×1 conv2d over N·H·W tokens whose
  output gradient is im2col(δ̃y) (zero where a tap falls outside the output). Dense MACs
  N·C·H·W·(K/g)·R·S, as torch computes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from hwsim.sim.segments import transposed
from hwsim.trace.schema import LayerGeometry, LayerSample


def machine_samples(samples: Mapping[str, LayerSample]) -> dict[str, LayerSample]:
    """Every sample as a ``linear`` or symmetric ``conv2d`` sample (same names, same order)."""
    return {n: to_machine(s) for n, s in samples.items()}


def to_machine(s: LayerSample) -> LayerSample:
    g = s.geometry
    if g.kind == "linear" or (g.kind == "conv2d" and len(g.padding) == 2):
        return s
    if g.kind in ("conv2d", "conv1d"):
        return _symmetric(_as_4d(s))
    if g.kind == "matmul":
        return _matmul(s)
    return _transposed(_as_4d(s))


def _geom(g: LayerGeometry, **kw: object) -> LayerGeometry:
    d = {f: getattr(g, f) for f in ("name", "N", "C", "K", "H", "W", "P", "Q", "R", "S", "stride", "padding",
                                    "dilation", "groups", "batch_size", "w_role")}
    d.update(kind="conv2d", **kw)
    return LayerGeometry(**d)  # type: ignore[arg-type]


def _as_4d(s: LayerSample) -> LayerSample:
    """1-D kinds as their 2-D kind with H = P = R = 1 (arrays get the unit axis)."""
    g = s.geometry
    if g.kind not in ("conv1d", "conv_transpose1d"):
        return s
    kind = "conv2d" if g.kind == "conv1d" else "conv_transpose2d"
    g2 = LayerGeometry(**{**{f: getattr(g, f) for f in g.__dataclass_fields__}, "kind": kind})

    def unit(x: np.ndarray | None) -> np.ndarray | None:
        return None if x is None else x.reshape(*x.shape[:2], 1, x.shape[-1])
    return replace(s, geometry=g2, dz_levels=unit(s.dz_levels), a_mask=unit(s.a_mask), w_mask=unit(s.w_mask))


def _symmetric(s: LayerSample) -> LayerSample:
    g = s.geometry
    t, b, le, r = g.pads
    if t == b and le == r:
        return replace(s, geometry=_geom(g, padding=(t, le)))
    ph, pw = min(t, b), min(le, r)
    a = np.pad(np.asarray(s.a_mask, bool), ((0, 0), (0, 0), (t - ph, b - ph), (le - pw, r - pw)))
    g2 = _geom(g, H=g.H + abs(t - b), W=g.W + abs(le - r), padding=(ph, pw))
    return replace(s, geometry=g2, a_mask=a)


def _tokens(x: np.ndarray) -> np.ndarray:
    """(G, M, X) → (1, G·X, 1, M): groups × channels, the rows as the width of one image."""
    gr, m, c = x.shape
    out = np.empty((gr, c, m), dtype=x.dtype)
    for g in range(gr):  # group by group, each in cache-friendly strips
        out[g] = transposed(x[g])
    return out.reshape(1, gr * c, 1, m)


def _matmul(s: LayerSample) -> LayerSample:
    g = s.geometry
    gr, kc, nn = g.groups, g.C // g.groups, g.K // g.groups
    geo = _geom(g, N=1, H=1, W=g.N, P=1, Q=g.N, R=1, S=1, stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                batch_size=0)
    w = None if s.w_mask is None else np.ascontiguousarray(np.asarray(s.w_mask).transpose(0, 2, 1)).reshape(
        gr * nn, kc, 1, 1)
    return replace(s, geometry=geo, a_mask=_tokens(np.asarray(s.a_mask)), dz_levels=_tokens(s.dz_levels), w_mask=w)


def _transposed(s: LayerSample) -> LayerSample:
    g = s.geometry  # conv_transpose2d: input (N, C, H, W), output (N, K, P, Q), weight (C, K/g, R, S)
    n, c, k, gr = g.N, g.C, g.K, g.groups
    t, _, le, _ = g.pads
    hh = np.arange(g.H)[:, None] * g.stride[0] - t + np.arange(g.R)[None, :] * g.dilation[0]  # (H, R) output rows
    ww = np.arange(g.W)[:, None] * g.stride[1] - le + np.arange(g.S)[None, :] * g.dilation[1]  # (W, S)
    hh = np.where((hh >= 0) & (hh < g.P), hh, g.P)  # out of range → the zero row appended below
    ww = np.where((ww >= 0) & (ww < g.Q), ww, g.Q)
    dy = np.zeros((n, k, g.P + 1, g.Q + 1), dtype=s.dz_levels.dtype)
    dy[:, :, : g.P, : g.Q] = s.dz_levels
    cols = dy[:, :, hh[:, :, None, None], ww[None, None, :, :]]  # (N, K, H, R, W, S)
    tok = n * g.H * g.W
    dz = np.ascontiguousarray(cols.transpose(1, 3, 5, 0, 2, 4)).reshape(1, k * g.R * g.S, 1, tok)
    a = np.ascontiguousarray(np.asarray(s.a_mask, bool).transpose(1, 0, 2, 3)).reshape(1, c, 1, tok)
    w = None
    if s.w_mask is not None:
        wm = np.asarray(s.w_mask).reshape(gr, c // gr, k // gr, g.R, g.S)
        w = np.ascontiguousarray(wm.transpose(0, 2, 3, 4, 1)).reshape(k * g.R * g.S, c // gr, 1, 1)
    geo = _geom(g, N=1, K=k * g.R * g.S, H=1, W=tok, P=1, Q=tok, R=1, S=1, stride=(1, 1), padding=(0, 0),
                dilation=(1, 1), batch_size=0)
    return replace(s, geometry=geo, a_mask=a, dz_levels=dz, w_mask=w)
