"""Non-GEMM ops of a captured training forward, tallied per iteration by kind and layer (shapes only).

The capture's ``TorchFunctionMode`` (:class:`hwsim.capture.ops.GemmMode`) hands every op that is
not a GEMM to :meth:`NonGemmTally.on_op` after it ran. The tally classifies it by the torch function
(:data:`KIND`: ``F.relu`` and ``Tensor.relu`` → ``relu``, ``F.layer_norm`` → ``layernorm``, ``x + y`` →
``add``, …) and adds its element counts — read from shapes, never from values — to the row of
(the last GEMM the forward ran, kind) (``hwsim.trace.nongemm``). Softmax inside a fused
``scaled_dot_product_attention`` is counted from the call's shapes (batch·heads·L·S scores) and
charged to its P·V product, which consumes it.

What a call adds (its tensor arguments ``ins``, its first tensor output ``out``):

* forward: ``elements`` = max(numel of the first input, numel of out); ``read`` = Σ numel(ins);
  ``written`` = numel(out). An embedding reads the rows it gathers (numel(out)) and the indices.
* backward (when out requires grad: torch runs the op's derivative): the same ``elements``;
  ``read`` = numel(out) (δout) + Σ numel(ins) (the saved inputs; an in-place op saves its output,
  the same size); ``written`` = Σ numel of the inputs that require grad (δin; an embedding
  scatters numel(out) into its weight's gradient).

Ops the table does not know are counted as ``other`` — by torch function name, in
``meta.nongemm.other`` — only when they make a new tensor of the autograd graph (not a view, not
metadata), so ``x.view(...)``, ``x.shape`` and ``x.dim()`` stay free and uncounted. A loss computed
outside the model's forward (the usual ``F.cross_entropy(model(x), y)``) is not seen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from hwsim.trace.nongemm import NonGemmWork, call_row, meta_for

T = torch.Tensor


def _table() -> dict[Callable, str]:
    by_kind: dict[str, list[Any]] = {
        "relu": [F.relu, F.relu_, torch.relu, torch.relu_, T.relu, T.relu_, F.relu6, F.hardtanh, F.hardtanh_],
        "gelu": [F.gelu, getattr(T, "gelu", F.gelu)],
        "silu": [F.silu, getattr(T, "silu", F.silu), F.mish, F.hardswish],
        "sigmoid": [F.sigmoid, torch.sigmoid, T.sigmoid, T.sigmoid_, F.hardsigmoid],
        "tanh": [F.tanh, torch.tanh, T.tanh, T.tanh_],
        "activation": [F.leaky_relu, F.leaky_relu_, F.elu, F.elu_, F.selu, F.celu, F.softplus, F.prelu, F.glu,
                       F.logsigmoid, F.softsign, F.rrelu, torch.exp, T.exp, torch.abs, T.abs, torch.square,
                       T.square, torch.sqrt, T.sqrt, torch.rsqrt, T.rsqrt, torch.pow, T.pow, T.__pow__],
        "batchnorm": [F.batch_norm, torch.batch_norm, F.instance_norm],
        "layernorm": [F.layer_norm, torch.layer_norm],
        "rmsnorm": [fn for fn in (getattr(F, "rms_norm", None), getattr(torch, "rms_norm", None)) if fn is not None],
        "groupnorm": [F.group_norm, torch.group_norm, F.local_response_norm, F.normalize],
        "softmax": [F.softmax, F.log_softmax, torch.softmax, torch.log_softmax, T.softmax, T.log_softmax,
                    F.softmin, F.gumbel_softmax],
        "maxpool": [F.max_pool1d, F.max_pool2d, F.max_pool3d, F.adaptive_max_pool1d, F.adaptive_max_pool2d,
                    torch.max_pool1d, torch.max_pool2d, F.max_unpool1d, F.max_unpool2d, F.lp_pool2d],
        "avgpool": [F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d,
                    F.adaptive_avg_pool3d, torch.avg_pool1d],
        "reduce": [torch.mean, T.mean, torch.sum, T.sum, torch.var, T.var, torch.amax, T.amax, torch.logsumexp],
        "add": [torch.add, T.add, T.add_, T.__add__, T.__radd__, T.__iadd__, torch.sub, T.sub, T.sub_, T.__sub__,
                T.__rsub__, T.__isub__],
        "mul": [torch.mul, T.mul, T.mul_, T.__mul__, T.__rmul__, T.__imul__, torch.div, T.div, T.div_,
                T.__truediv__, T.__rtruediv__, T.__itruediv__, T.masked_fill, T.masked_fill_, torch.where],
        "dropout": [F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout,
                    torch.dropout, torch.dropout_],
        "embedding": [F.embedding, torch.embedding, F.embedding_bag, F.one_hot],
        "loss": [F.cross_entropy, F.nll_loss, F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss,
                 F.binary_cross_entropy, F.binary_cross_entropy_with_logits, F.kl_div],
    }
    return {fn: kind for kind, fns in by_kind.items() for fn in fns}


KIND: dict[Callable, str] = _table()
SDPA = F.scaled_dot_product_attention


class NonGemmTally:
    """Rows ``(layer, kind) -> [8 integers]`` (``hwsim.trace.nongemm.ROW``) of the iteration in progress.

    Each counted call is logged as ``(layer, kind, input sizes, output size, gradient sizes)``; the rows are summed
    from the log when the iteration ends (:meth:`take`), and only when the log differs from the last iteration's
    (then that iteration's record is returned as it is): a training loop repeats the same ops on the same shapes,
    so a call costs one tuple in the forward, not a row's arithmetic.
    """

    def __init__(self) -> None:
        self.layer = ""            # the last GEMM the current forward ran ("" before the first)
        self.first = ""            # the iteration's first GEMM: ops before it are charged there
        self.log: list[tuple[Any, ...]] = []  # the iteration's counted calls (class doc)
        self.other: dict[str, int] = {}   # unrecognised op name -> calls in the iteration
        self.meta_version = 0  # bumped whenever :meth:`meta` changes (new kinds or unknown ops)
        self._meta_key: tuple[Any, ...] = ()
        self._meta: dict[str, Any] | None = None
        self._written: dict[str, Any] | None = None  # the last record written (records repeat only on change)
        self._last: tuple[Any, ...] | None = None  # (log, first, other, record) of the last record built

    @property
    def rows(self) -> dict[tuple[str, str], list[int]]:
        """The iteration's rows so far, ``(layer, kind) -> ROW`` (summed from the log)."""
        rows: dict[tuple[str, str], list[int]] = {}
        for layer, kind, ins, out, grads in self.log:
            call = list(out) if ins is None else call_row(kind, ins, out, grads)
            row = rows.get((layer, kind))
            if row is None:
                rows[(layer, kind)] = call
            else:
                for i, v in enumerate(call):
                    row[i] += v
        return rows

    def new_forward(self) -> None:
        self.layer = ""

    def gemm(self, name: str) -> None:
        """A GEMM named ``name`` ran: the non-GEMM ops after it consume its output."""
        self.layer = name
        if not self.first:
            self.first = name

    def on_op(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        """One non-GEMM op ran inside the captured forward (``out``: what it returned); never raises."""
        try:
            if isinstance(out, torch.Tensor):
                o = out
            elif isinstance(out, (tuple, list)):
                o = next((x for x in out if isinstance(x, torch.Tensor)), None)
                if o is None:
                    return
            else:
                return  # metadata (a shape, a dtype, a number): free
            kind = KIND.get(func)
            if kind is None:
                if not o.requires_grad or o._base is not None or o.grad_fn is None:
                    return  # a view, or outside the graph: free
                name = getattr(func, "__name__", str(func))
                self.other[name] = self.other.get(name, 0) + 1
                kind = "other"
            ins = [a for a in args if isinstance(a, torch.Tensor)]
            if kwargs:
                ins += [v for v in kwargs.values() if isinstance(v, torch.Tensor)]
            if not ins or not o.is_floating_point():
                return  # integer book-keeping (BatchNorm's num_batches_tracked += 1), index arithmetic
            grads = tuple([t.numel() for t in ins if t.requires_grad]) if o.requires_grad else None
            self.log.append((self.layer, kind, tuple([t.numel() for t in ins]), o.numel(), grads))
        except Exception:  # noqa: BLE001 - counting never breaks training: the op is listed as not recognised
            name = f"{getattr(func, '__name__', func)} (unreadable)"
            self.other[name] = self.other.get(name, 0) + 1

    def sdpa(self, args: tuple, kwargs: dict, out: Any) -> None:
        """The softmax (and dropout) inside a fused SDPA call, from its shapes; charged to its P·V (the last GEMM)."""
        q = args[0] if args else kwargs.get("query")
        k = args[1] if len(args) > 1 else kwargs.get("key")
        if not (isinstance(q, torch.Tensor) and isinstance(k, torch.Tensor)) or q.dim() < 2:
            return
        scores = q.numel() // q.shape[-1] * k.shape[-2]
        grads = (scores,) if isinstance(out, torch.Tensor) and out.requires_grad else None
        self.log.append((self.layer, "softmax", (scores,), scores, grads))
        p = args[4] if len(args) > 4 else kwargs.get("dropout_p", 0.0)
        if isinstance(p, (int, float)) and p > 0:
            self.log.append((self.layer, "dropout", (scores,), scores, grads))

    def add(self, kind: str, call: list[int]) -> None:
        """Add one call's ``ROW`` (``hwsim.trace.nongemm.call_row``) to (current layer, kind)."""
        self.log.append((self.layer, kind, None, tuple(call), None))

    def take(self) -> dict[str, dict[str, list[int]]] | None:
        """The iteration's ``nongemm`` record (ops before any GEMM go to the first GEMM); resets the log."""
        log, other = self.log, self.other
        self.log, self.other = [], {}
        if not log:
            return None
        last = self._last
        if last is not None and last[1] == self.first and last[0] == log and last[2] == other:
            return last[3]  # the same ops on the same shapes as the last iteration: its record, not rebuilt
        self.log = log
        rows = self.rows
        self.log = []
        work = NonGemmWork.from_rows((layer or self.first, kind, row) for (layer, kind), row in rows.items())
        key = (tuple(sorted({k for _, k in rows})), tuple(sorted(other)))
        if key != self._meta_key:  # the meta changes only when new kinds or unknown ops appear
            self._meta_key, self._meta = key, meta_for(work, source="capture", other=other)
            self.meta_version += 1
        record = work.to_json()
        self._last = (log, self.first, other, record)
        return record

    def changed(self, record: dict[str, Any] | None) -> bool:
        """Whether ``record`` (a :meth:`take`) differs from the last one written, which it then becomes."""
        if not record or record is self._written or record == self._written:
            return False
        self._written = record
        return True

    def meta(self) -> dict[str, Any] | None:
        """``meta.nongemm`` as of the last finished iteration (None before)."""
        return self._meta
