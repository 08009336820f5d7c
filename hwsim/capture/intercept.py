"""Which GEMM a torch op is, what it is called, and the identity Function that hands its δz to capture.

:class:`Interceptor` is the half of :class:`hwsim.capture.session.Capture` the ``TorchFunctionMode``
calls during a training forward: it describes the op (:mod:`hwsim.capture.ops`), names it by the
module path that issued it, notes it in the coverage, keeps the operand masks on sampled iterations
and hands the output's δz to capture in backward (:class:`QuantizeGrad`, a pre-hook on the op's autograd node). Attention: SDPA runs fused (its QKᵀ gradient is
recomputed for the record) or, with dropout or ``dither_attention``, as torch's math kernel with
explicit products (:mod:`hwsim.capture.attention`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from hwsim.capture import attention, ops
from hwsim.capture.records import Call, Site
from hwsim.trace.gemm_kinds import QUANTIZING_METHODS

log = logging.getLogger("hwsim.capture")
WEIGHT_OPS = ("linear", "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d")
NO_GRAD_WHY = ("ran under torch.no_grad inside a training forward: reentrant gradient checkpointing "
               "(use torch.utils.checkpoint.checkpoint(..., use_reentrant=False)) or a frozen part")


def operand_bits(out: torch.Tensor) -> int:
    """Width of a GEMM's operands, read from its output's dtype: 16 for bf16/fp16, 32 for float32/64.

    The output has the dtype the GEMM computed in, also under autocast (which casts the operands
    inside the op, after the mode sees them); float8 outputs give 8.
    """
    dt = out.dtype
    return dt.itemsize * 8 if dt.is_floating_point and dt.itemsize < 4 else 32


class QuantizeGrad:
    """The hand-over of a GEMM output's δz to capture: a pre-hook on the op's own autograd node.

    ``attach(z, call, cap)`` leaves the forward untouched (z itself is returned, nothing is copied
    or wrapped) and registers a pre-hook on ``z.grad_fn``: in backward the hook receives δz (the
    gradient of z as the op produced it, summed over every use), hands it to
    ``cap._backward(call, δz)`` and gives the op's backward δ̃z instead, so the op computes both
    GEMMs (δa and δW, and the bias sum) from δ̃z. The hook belongs to the node, not to the tensor:
    in-place ReLU right after the conv, BatchNorm in between, residual ``out += x`` and repeated
    calls all keep working (autograd hands the node the gradient of z *before* the in-place
    change), and an op that saved its output for its backward (SDPA) keeps it unmodified.
    A node pre-hook costs ~5 µs per GEMM call less in forward and ~20 µs less in backward than an
    identity ``torch.autograd.Function`` (a Python node of its own), which capture used before.
    """

    __slots__ = ("call", "cap", "index")

    def __init__(self, call: Any, cap: Any, index: int) -> None:
        self.call, self.cap, self.index = call, cap, index

    @staticmethod
    def attach(z: torch.Tensor, call: Any, cap: Any) -> torch.Tensor:
        """Hand ``z``'s δz to ``cap._backward(call, δz)`` in backward; returns ``z`` (module doc)."""
        z.grad_fn.register_prehook(QuantizeGrad(call, cap, z.output_nr))
        return z

    def __call__(self, grads: tuple[torch.Tensor | None, ...]) -> tuple[torch.Tensor | None, ...] | None:
        g = grads[self.index]
        if g is None:  # this output got no gradient (another output of a multi-output op did)
            return None
        if len(grads) == 1:  # a GEMM's one output (the common case)
            return (self.cap._backward(self.call, g),)
        out = list(grads)
        out[self.index] = self.cap._backward(self.call, g)
        return tuple(out)


class Interceptor:
    """GEMM interception; mixed into :class:`~hwsim.capture.session.Capture` (which owns the state)."""

    # -- GEMMs -------------------------------------------------------------------------
    def _on_gemm(self, func: Callable, handler: Callable | None, args: tuple, kwargs: dict, *,
                 label: str | None = None) -> Any:
        """Called by the mode for every GEMM-like op of a training forward."""
        path = self._stack[-1][0] if self._stack else ""
        if func is ops.MHA:
            self._mha = ["pv", "qk"]
            try:
                return ops.reenter(self._mode, func, args, kwargs)
            finally:
                self._mha = []
        if func is ops.SDPA:
            return self._sdpa(func, args, kwargs, path)
        try:
            g = handler(args, kwargs) if handler is not None else None
        except ops.Unsupported as e:
            opname = getattr(func, "__name__", str(func))
            self._missed(f"{path}:{opname}", opname, path, e.macs, e.why, backward=torch.is_grad_enabled())
            return func(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - an op capture cannot read never breaks training
            opname = getattr(func, "__name__", str(func))
            self._missed(f"{path}:{opname}", opname, path, 0, f"capture could not read this op ({type(e).__name__}: {e})")
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        if g is None:
            return out
        if label is not None:
            g.op = label
        elif self._mha and getattr(func, "__name__", "") in ("bmm", "baddbmm"):
            g.op = self._mha.pop()
        if not torch.is_grad_enabled():
            self._missed(f"{path}:{g.op}", g.op, path, g.macs, NO_GRAD_WHY)
            return out
        if not (isinstance(out, torch.Tensor) and out.requires_grad):
            return out  # nothing of it is trained: no backward GEMMs, not counted
        try:
            return self._attach(out, g, path, dither=self.config.dither_attention or not g.attention)
        except Exception as e:  # noqa: BLE001
            self._missed(f"{path}:{g.op}", g.op, path, g.macs, f"capture failed on it ({type(e).__name__}: {e})",
                         backward=True)
            return out

    def _missed(self, key: str, op: str, module: str, macs: int, why: str, *, backward: bool = False) -> None:
        if self.coverage.miss(key, op=op, module=module, macs=macs, why=why, backward=backward):
            log.info("hwsim capture: not captured: %s in %r (%s)", op, module, why)

    def _name(self, g: ops.Gemm, path: str) -> tuple[str, nn.Module | None]:
        owner: str | None = None
        if g.w_role == "weight":
            t = g.b_tensor
            owner = self._owner.get(id(t._base if t._base is not None else t))
            if owner is None and g.op in WEIGHT_OPS:
                owner = path  # e.g. a parametrized (int8) weight: the module's own GEMM
        base = (owner or self._root_label) if owner is not None else (f"{path}:{g.op}" if path else g.op)
        n = self._fwd_calls.get(base, 0)
        self._fwd_calls[base] = n + 1
        return (base if n == 0 else f"{base}#{n}"), self._by_path.get(owner if owner is not None else path)

    def _attach(self, out: torch.Tensor, g: ops.Gemm, path: str, *, dither: bool,
                after: Callable[[torch.Tensor], None] | None = None) -> torch.Tensor:
        call = self._make_call(g, path, dither=dither, after=after, operand_bits=operand_bits(out))
        return QuantizeGrad.attach(out, call, self)

    def _make_call(self, g: ops.Gemm, path: str, *, dither: bool, operand_bits: int,
                   after: Callable[[torch.Tensor], None] | None = None) -> Call:
        it = self._it
        assert it is not None
        name, mod = self._name(g, path)
        self._nongemm.gemm(name)  # the non-GEMM ops after this GEMM consume its output
        site = self._sites.get(name)
        if site is None:
            site = self._sites[name] = Site(name=name, w_bits=int(getattr(mod, "hwsim_w_bits", 32)),
                                             a_bits=int(getattr(mod, "hwsim_a_bits", 32)))
        if name not in self.coverage.ops:  # (the first call of a name is the one noted)
            self.coverage.seen(name, op=g.op, module=path, macs=g.macs, a_grad=g.a_grad, b_grad=g.b_grad)
        keep = min(g.batch, self.config.max_examples or g.batch)
        key = (g.key, keep)
        if site.shape_key != key:  # building a LayerGeometry is slow Python: only when shapes change
            geom = g.geometry(name, keep)
            if site.geometry is None and self._bg is not None:
                self._bg.submit(self._bg.writer.add_layer, geom)
            site.geometry, site.shape_key = geom, key
        geom = site.geometry
        assert geom is not None
        masks = None
        if it.sampled and name not in it.masked:
            it.masked.add(name)
            with torch.no_grad():
                a = g.keep_rows(g.a(), keep).detach()
                b = g.b().detach()
                nnz_b = int(torch.count_nonzero(b))
                b_mask = (b != 0).cpu().numpy() if nnz_b < b.numel() or g.w_role == "activation" else None
                masks = ((a != 0).reshape(geom.input_shape).cpu().numpy(), nnz_b / max(1, b.numel()), b_mask)
        g.a = g.b = None  # type: ignore[assignment]  # drop the operand references
        g.b_tensor = None  # type: ignore[assignment]
        return Call(site=site, iteration=it.index, gemm=g, geometry=geom, keep=keep, dither=dither, masks=masks,
                    after=after, operand_bits=operand_bits)

    def _sdpa(self, func: Callable, args: tuple, kwargs: dict, path: str) -> Any:
        p = attention.params(args, kwargs)
        try:
            qk, pv = attention.products(p)
        except ops.Unsupported as e:
            self._missed(f"{path}:sdpa", "scaled_dot_product_attention", path, e.macs, e.why, backward=True)
            return func(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - an op capture cannot read never breaks training
            self._missed(f"{path}:sdpa", "scaled_dot_product_attention", path, 0,
                         f"capture could not read this op ({type(e).__name__}: {e})", backward=True)
            return func(*args, **kwargs)
        if not torch.is_grad_enabled():
            for g in (qk, pv):
                self._missed(f"{path}:{g.op}", g.op, path, g.macs, NO_GRAD_WHY)
            return func(*args, **kwargs)
        if p["dropout_p"] > 0 or (self.config.dither_attention and self.config.method in QUANTIZING_METHODS):
            if p["is_causal"] and p["attn_mask"] is not None:
                return func(*args, **kwargs)  # torch's own error
            # torch's math kernel, its products intercepted (and dithered with dither_attention) like any matmul
            return attention.math(p, lambda op, a, b: self._on_gemm(torch.matmul, ops.matmul, (a, b), {}, label=op))
        out = func(*args, **kwargs)
        if not out.requires_grad:
            return out
        shape = (pv.fields["groups"], pv.rows, -1) if pv.kind == "matmul" else (pv.rows, -1)
        pv.a = lambda: attention.probs(p).reshape(shape)
        qk_call = self._make_call(qk, path, dither=False, operand_bits=operand_bits(out))

        def after(d_out: torch.Tensor) -> None:  # the QKᵀ gradient, recomputed on sampled iterations
            if qk_call.masks is not None:
                self._backward(qk_call, attention.grad_scores(p, d_out))
        return self._attach(out, pv, path, dither=False, after=after)
