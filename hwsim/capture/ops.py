"""GEMM-like torch operations → :class:`Gemm` descriptions, found by a ``TorchFunctionMode``.

Capture intercepts *operations*, not module classes: ``F.linear``, ``addmm`` (Hugging Face's
``Conv1D``: a weight of shape (in, out)), ``mm``/``matmul``/``bmm``/``baddbmm``/``einsum`` when they
are GEMMs, ``conv1d``/``conv2d``, ``conv_transpose1d``/``conv_transpose2d`` and
``scaled_dot_product_attention`` (its QKᵀ and P·V products). ``nn.MultiheadAttention`` runs
``F.multi_head_attention_forward``, a Python function that hands itself whole to an active mode:
:func:`reenter` runs its body with the mode still active, so its ``F.linear``/``bmm``/SDPA calls are
seen one by one.

A handler reads shapes only (no copies): the operand tensors are canonicalized (to the trace
layouts of :class:`hwsim.trace.schema.LayerGeometry`) lazily, on sampled iterations. A handler
raises :class:`Unsupported` (with the MACs when known) for a GEMM-like op hwsim cannot take; the
session counts it as missed in the coverage, and the op runs unchanged.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hwsim.trace.schema import LayerGeometry


class Unsupported(Exception):
    """A GEMM-like op hwsim does not record; ``why`` names it and the fix, ``macs`` when known."""

    def __init__(self, why: str, macs: int = 0) -> None:
        super().__init__(why)
        self.why, self.macs = why, int(macs)


def is_weight(t: torch.Tensor) -> bool:
    """A parameter, a view of one (``w.t()``, a chunk of ``in_proj_weight``) or a leaf that requires grad."""
    base = t._base if t._base is not None else t
    return isinstance(base, nn.Parameter) or (base.is_leaf and base.requires_grad)


@dataclass
class Gemm:
    """One GEMM call: what it is, its MACs, and (lazily) its operands in the trace's layouts."""

    op: str                     # naming label: linear, conv2d, matmul, qk, pv, ...
    kind: str                   # trace kind (LAYER_KINDS)
    macs: int
    fields: dict[str, Any]      # LayerGeometry fields except name, N, batch_size
    a: Callable[[], torch.Tensor]   # activation operand → input_shape layout (full batch)
    b: Callable[[], torch.Tensor]   # second operand → weight_shape layout
    z: Callable[[torch.Tensor], torch.Tensor]  # output (or its gradient) → output_shape layout
    b_tensor: torch.Tensor      # the second operand as passed (weight ownership)
    rows: int                   # N of the full call (rows for linear/matmul, examples for convs)
    batch: int                  # examples (dim 0) the rows come from; max_examples keeps a prefix
    a_grad: bool                # backward-data GEMM exists (the input needs a gradient)
    b_grad: bool                # backward-weight GEMM exists
    attention: bool = False     # activation × activation (dithered only with dither_attention)
    key: tuple[Any, ...] = field(default=())

    @property
    def w_role(self) -> str:
        return self.fields.get("w_role") or ("activation" if self.kind == "matmul" else "weight")

    def geometry(self, name: str, keep: int) -> LayerGeometry:
        """Geometry with the first ``keep`` examples stored (all rows of a matmul are kept)."""
        n = self.rows if self.kind == "matmul" else self.rows // self.batch * keep
        return LayerGeometry(name=name, kind=self.kind, N=n, batch_size=self.rows, **self.fields)

    def keep_rows(self, t: torch.Tensor, keep: int) -> torch.Tensor:
        """The stored prefix of a tensor in input/output layout."""
        if self.kind == "matmul" or keep >= self.batch:
            return t
        return t[: self.rows // self.batch * keep]


def _grad(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and t.requires_grad


def _arg(args: tuple, kwargs: dict, i: int, name: str, default: Any = None) -> Any:
    return args[i] if len(args) > i else kwargs.get(name, default)


# ----------------------------------------------------------------------------- linear / matmul family


def _linear_form(op: str, a2: Callable[[], torch.Tensor], w_kc: Callable[[], torch.Tensor], *, rows: int, c: int,
                 k: int, batch: int, a: torch.Tensor, b: torch.Tensor, role: str,
                 z: Callable[[torch.Tensor], torch.Tensor]) -> Gemm:
    return Gemm(op=op, kind="linear", macs=rows * c * k, fields={"C": c, "K": k, "w_role": role}, a=a2, b=w_kc,
                z=z, b_tensor=b, rows=rows, batch=batch, a_grad=_grad(a), b_grad=_grad(b),
                attention=role == "activation", key=(op, tuple(a.shape), tuple(b.shape)))


def linear(args: tuple, kwargs: dict) -> Gemm:
    x, w = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "weight")
    if w.dim() != 2 or x.dim() < 1:
        raise Unsupported(f"linear with a {w.dim()}-D weight / {x.dim()}-D input")
    k, c = w.shape
    rows = x.numel() // c
    batch = x.shape[0] if x.dim() > 1 else 1
    return _linear_form("linear", lambda: x.reshape(rows, c), lambda: w, rows=rows, c=c, k=k, batch=batch, a=x, b=w,
                        role="weight", z=lambda t: t.reshape(rows, k))


def matmul_gemm(op: str, a: torch.Tensor, b: torch.Tensor) -> Gemm:
    """``a @ b`` (torch.matmul semantics, 2-D or batched operands) as a linear or matmul record."""
    if a.dim() < 2 or b.dim() < 2:
        raise Unsupported(f"{op}: matrix-vector product (a 1-D operand) is not a GEMM hwsim records",
                          macs=a.numel() * (b.shape[-1] if b.dim() > 1 else 1))
    m, kc = a.shape[-2:]
    n = b.shape[-1]
    if b.shape[-2] != kc:
        raise Unsupported(f"{op}: inner dimensions {kc} and {b.shape[-2]} differ")
    wb = is_weight(b)
    if b.dim() == 2 and (wb or not (a.dim() == 2 and is_weight(a))):
        rows = a.numel() // kc  # leading dims (batch × sequence) fold into rows
        batch = a.shape[0] if a.dim() > 2 else rows
        return _linear_form(op if op != "mm" else "linear", lambda: a.reshape(rows, kc), lambda: b.t(), rows=rows,
                            c=kc, k=n, batch=batch, a=a, b=b, role="weight" if wb else "activation",
                            z=lambda t: t.reshape(rows, n))
    if a.dim() == 2 and b.dim() == 2:  # W @ X: a linear layer over X's columns
        return _linear_form(op if op != "mm" else "linear", lambda: b.t(), lambda: a, rows=n, c=kc, k=m, batch=n,
                            a=b, b=a, role="weight", z=lambda t: t.t())
    bs = _batch_shape(a.shape[:-2], b.shape[:-2])
    bt = math.prod(bs)
    return Gemm(op="matmul" if op in ("mm", "bmm", "baddbmm") else op, kind="matmul", macs=bt * m * n * kc,
                fields={"C": bt * kc, "K": bt * n, "groups": bt, "w_role": "weight" if wb else "activation"},
                a=lambda: a.expand(*bs, m, kc).reshape(bt, m, kc), b=lambda: b.expand(*bs, kc, n).reshape(bt, kc, n),
                z=lambda t: t.reshape(bt, m, n), b_tensor=b, rows=m, batch=1, a_grad=_grad(a), b_grad=_grad(b),
                attention=not wb, key=(op, tuple(a.shape), tuple(b.shape)))


def _batch_shape(a: torch.Size, b: torch.Size) -> torch.Size:
    """The broadcast batch dimensions of a batched matmul (``torch.broadcast_shapes``, which costs ~50 µs a call
    through its Python reference; equal shapes, the common case, return at once)."""
    return a if a == b else torch.broadcast_shapes(a, b)


def mm(args: tuple, kwargs: dict) -> Gemm:
    return matmul_gemm("mm", _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "mat2"))


def matmul(args: tuple, kwargs: dict) -> Gemm:
    return matmul_gemm("matmul", _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "other"))


def addmm(args: tuple, kwargs: dict) -> Gemm:
    a, b = _arg(args, kwargs, 1, "mat1"), _arg(args, kwargs, 2, "mat2")
    g = matmul_gemm("mm", a, b)  # HF Conv1D: addmm(bias, x, W) with W (in, out) → linear, weight W.t()
    if g.kind == "linear":
        g.op = "linear"
    return g


def bmm(args: tuple, kwargs: dict) -> Gemm:
    return matmul_gemm("bmm", _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "mat2"))


def baddbmm(args: tuple, kwargs: dict) -> Gemm:
    return matmul_gemm("baddbmm", _arg(args, kwargs, 1, "batch1"), _arg(args, kwargs, 2, "batch2"))


def einsum(args: tuple, kwargs: dict) -> Gemm | None:
    """A two-operand einsum whose indices split into batch / rows / columns / contracted: a (batched) GEMM."""
    eq = args[0].replace(" ", "")
    ops = list(args[1]) if len(args) == 2 and isinstance(args[1], (list, tuple)) else list(args[1:])
    if len(ops) != 2:
        if len(ops) > 2:
            raise Unsupported(f"einsum {eq!r} of {len(ops)} operands (contract it pairwise)")
        return None  # one operand: a reduction or permutation, not a GEMM
    if "..." in eq:
        raise Unsupported(f"einsum {eq!r} with '...' (write the batch indices out)")
    lhs, out = eq.split("->") if "->" in eq else (eq, None)
    ia, ib = lhs.split(",")
    if out is None:
        out = "".join(sorted(c for c in set(ia + ib) if (ia + ib).count(c) == 1))
    a, b = ops
    if len(set(ia)) != len(ia) or len(set(ib)) != len(ib) or any(c not in ia + ib for c in out):
        raise Unsupported(f"einsum {eq!r}: a repeated or unknown index (a diagonal or trace, not a GEMM)")
    if any(c not in ib and c not in out for c in ia) or any(c not in ia and c not in out for c in ib):
        raise Unsupported(f"einsum {eq!r} sums an index of one operand (not a GEMM)")
    size = {c: a.shape[i] for i, c in enumerate(ia)} | {c: b.shape[i] for i, c in enumerate(ib)}
    bi = [c for c in out if c in ia and c in ib]
    mi = [c for c in out if c in ia and c not in ib]
    ni = [c for c in out if c in ib and c not in ia]
    ki = [c for c in ia if c in ib and c not in out]
    bt, m, n, kc = (math.prod(size[c] for c in idx) for idx in (bi, mi, ni, ki))

    def perm(spec: str, order: list[str]) -> list[int]:
        return [spec.index(c) for c in order]

    pa, pb, pz = perm(ia, bi + mi + ki), perm(ib, bi + ki + ni), perm(out, bi + mi + ni)
    role = "weight" if is_weight(b) else "activation"
    key = ("einsum", eq, tuple(a.shape), tuple(b.shape))
    if bt == 1:
        g = _linear_form("linear" if role == "weight" else "einsum", lambda: a.permute(pa).reshape(m, kc),
                         lambda: b.permute(pb).reshape(kc, n).t(), rows=m, c=kc, k=n, batch=m, a=a, b=b, role=role,
                         z=lambda t: t.permute(pz).reshape(m, n))
        g.key = key
        return g
    return Gemm(op="einsum", kind="matmul", macs=bt * m * n * kc, fields={"C": bt * kc, "K": bt * n, "groups": bt,
                                                                         "w_role": role},
                a=lambda: a.permute(pa).reshape(bt, m, kc), b=lambda: b.permute(pb).reshape(bt, kc, n),
                z=lambda t: t.permute(pz).reshape(bt, m, n), b_tensor=b, rows=m, batch=1, a_grad=_grad(a),
                b_grad=_grad(b), attention=role == "activation", key=key)


# ----------------------------------------------------------------------------- convolutions


def _tuple(v: Any, n: int) -> tuple[int, ...]:
    return tuple(int(x) for x in v) if isinstance(v, (tuple, list)) else (int(v),) * n


def _conv(nd: int, transposed: bool, args: tuple, kwargs: dict) -> Gemm:
    x, w = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "weight")
    name = f"conv{'_transpose' if transposed else ''}{nd}d"
    batched = x.dim() == nd + 2
    xb = x if batched else x.unsqueeze(0)
    stride = _tuple(_arg(args, kwargs, 3, "stride", 1), nd)
    if transposed:
        pad = _tuple(_arg(args, kwargs, 4, "padding", 0), nd)
        out_pad = _tuple(_arg(args, kwargs, 5, "output_padding", 0), nd)
        groups = int(_arg(args, kwargs, 6, "groups", 1))
        dil = _tuple(_arg(args, kwargs, 7, "dilation", 1), nd)
        c, k = w.shape[0], w.shape[1] * groups
        pads = [(p, p) for p in pad]
    else:
        padding = _arg(args, kwargs, 4, "padding", 0)
        dil = _tuple(_arg(args, kwargs, 5, "dilation", 1), nd)
        groups = int(_arg(args, kwargs, 6, "groups", 1))
        out_pad = (0,) * nd
        c, k = w.shape[1] * groups, w.shape[0]
        if isinstance(padding, str):  # torch pads 'same' by total//2 before, the rest after
            tot = [0 if padding == "valid" else d * (kk - 1) for d, kk in zip(dil, w.shape[2:], strict=True)]
            pads = [(t // 2, t - t // 2) for t in tot]
        else:
            pads = [(p, p) for p in _tuple(padding, nd)]
    kernel = tuple(w.shape[2:])
    insp = tuple(xb.shape[2:])
    if transposed:
        outsp = tuple((i - 1) * s - 2 * p + d * (kk - 1) + o + 1
                      for i, s, p, d, kk, o in zip(insp, stride, pad, dil, kernel, out_pad, strict=True))
    else:
        outsp = tuple((i + p[0] + p[1] - d * (kk - 1) - 1) // s + 1
                      for i, s, p, d, kk in zip(insp, stride, pads, dil, kernel, strict=True))
    n = xb.shape[0]
    spatial = math.prod(insp if transposed else outsp)
    macs = n * spatial * (c // groups) * k * math.prod(kernel)
    if nd not in (1, 2):
        raise Unsupported(f"{name}: the simulator has no 3-D mapping (reshape it as a conv2d to capture it)", macs)
    if nd == 1:  # a conv2d with H = P = R = 1
        fields = {"C": c, "K": k, "W": insp[0], "Q": outsp[0], "S": kernel[0], "stride": (1, stride[0]),
                  "padding": (0, 0, *pads[0]), "dilation": (1, dil[0]), "groups": groups}
    else:
        fields = {"C": c, "K": k, "H": insp[0], "W": insp[1], "P": outsp[0], "Q": outsp[1], "R": kernel[0],
                  "S": kernel[1], "stride": stride, "padding": (*pads[0], *pads[1]), "dilation": dil, "groups": groups}
    if transposed:
        fields["output_padding"] = out_pad if nd == 2 else (0, out_pad[0])
    return Gemm(op=name, kind=name, macs=macs, fields=fields, a=lambda: xb, b=lambda: w,
                z=lambda t: t if batched else t.unsqueeze(0), b_tensor=w, rows=n, batch=n, a_grad=_grad(x),
                b_grad=_grad(w), key=(name, tuple(x.shape), tuple(w.shape)))


def _unsupported(what: str) -> Callable[[tuple, dict], Gemm]:
    def handler(args: tuple, kwargs: dict) -> Gemm:
        t = [a for a in args if isinstance(a, torch.Tensor)]
        macs = math.prod(t[0].shape) * (t[1].shape[-1] if len(t) > 1 and t[1].dim() else 1) if t else 0
        raise Unsupported(f"{what} is not supported by hwsim (rewrite it with matmul/linear to capture it)", macs)
    return handler


# ----------------------------------------------------------------------------- the mode

SDPA = F.scaled_dot_product_attention
MHA = F.multi_head_attention_forward

HANDLERS: dict[Any, Callable[[tuple, dict], Gemm | None]] = {
    F.linear: linear,
    torch.addmm: addmm, torch.Tensor.addmm: addmm,
    torch.mm: mm, torch.Tensor.mm: mm,
    torch.matmul: matmul, torch.Tensor.matmul: matmul, torch.Tensor.__matmul__: matmul,
    torch.bmm: bmm, torch.Tensor.bmm: bmm,
    torch.baddbmm: baddbmm, torch.Tensor.baddbmm: baddbmm,
    torch.einsum: einsum,
    torch.conv1d: lambda a, k: _conv(1, False, a, k), torch.conv2d: lambda a, k: _conv(2, False, a, k),
    torch.conv3d: lambda a, k: _conv(3, False, a, k),
    torch.conv_transpose1d: lambda a, k: _conv(1, True, a, k), torch.conv_transpose2d: lambda a, k: _conv(2, True, a, k),
    torch.conv_transpose3d: lambda a, k: _conv(3, True, a, k),
    F.bilinear: _unsupported("F.bilinear"), torch.tensordot: _unsupported("torch.tensordot"),
    torch.addbmm: _unsupported("torch.addbmm"), torch.Tensor.addbmm: _unsupported("Tensor.addbmm"),
    torch.mv: _unsupported("torch.mv"), torch.addmv: _unsupported("torch.addmv"),
}
SPECIAL = (SDPA, MHA)  # handled by the session itself
_NO_KWARGS: dict[str, Any] = {}  # (never written to)


class GemmMode(torch.overrides.TorchFunctionMode):
    """Routes every GEMM-like call made inside a captured model's forward to ``on_gemm``."""

    def __init__(self, on_gemm: Callable[[Any, Callable, tuple, dict], Any], nongemm: Any = None) -> None:
        super().__init__()
        self.on_gemm = on_gemm
        self.nongemm = nongemm  # a hwsim.capture.nongemm.NonGemmTally: every other op, after it ran

    def __torch_function__(self, func: Callable, types: tuple[type, ...], args: tuple = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        # every op of the forward passes here (views and ``x.shape`` too): as few Python steps as possible
        h = HANDLERS.get(func)
        if h is None and func is not SDPA and func is not MHA:
            out = func(*args, **kwargs) if kwargs else func(*args)
            if self.nongemm is not None:
                self.nongemm.on_op(func, args, kwargs or _NO_KWARGS, out)
            return out
        kwargs = kwargs or {}
        out = self.on_gemm(func, h, args, kwargs)
        if func is SDPA and self.nongemm is not None:
            self.nongemm.sdpa(args, kwargs, out)
        return out


# F.multi_head_attention_forward checks ``has_torch_function`` and hands itself to the mode whole.
# ``reenter`` runs its body with the mode pushed again: the check is answered False exactly once.
_bypass = threading.local()
_orig_has_torch_function = F.has_torch_function
_installed = 0
_install_lock = threading.Lock()


def _has_torch_function(args: Any) -> bool:
    if getattr(_bypass, "once", False):
        _bypass.once = False
        return False
    return _orig_has_torch_function(args)


def install() -> None:
    global _installed
    with _install_lock:
        if _installed == 0:
            F.has_torch_function = _has_torch_function
        _installed += 1


def uninstall() -> None:
    global _installed
    with _install_lock:
        _installed -= 1
        if _installed == 0:
            F.has_torch_function = _orig_has_torch_function


def reenter(mode: GemmMode, func: Callable, args: tuple, kwargs: dict) -> Any:
    """Run a composite Python function (MHA) with ``mode`` active for the calls inside it."""
    with mode:
        _bypass.once = True
        try:
            return func(*args, **kwargs)
        finally:
            _bypass.once = False
