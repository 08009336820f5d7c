"""Dithered backprop on any ``nn.Module``, recorded as an hwsim trace.

``capture(model, method="dither", s=..., out=...)`` puts a forward hook on every ``nn.Linear``
and ``nn.Conv2d``. The hook passes the layer output z through an identity autograd Function
whose *backward* receives δz, quantizes it (NSD / meProp / none) and returns δ̃z, so the
layer's own backward computes both GEMMs (δa = Wᵀδ̃z and δW = δ̃z·aᵀ, and the bias sum) from
δ̃z. The Function marks z dirty (an in-place identity), so in-place ReLU right after the conv,
BatchNorm in between, residual ``out += x`` and repeated calls all keep working — unlike
``register_full_backward_pre_hook`` (pytorch issue 61519).

Iterations: a forward after a backward starts a new one (nothing to add to the user's loop);
``cap.step(loss=, acc=)`` or ``cap.mark_iteration()`` end one explicitly. Every iteration
records per-layer density / max bit-width / level histogram / Δ; every ``sample_every``-th
also stores the operands (δ̃z levels, input mask, weight density) through ``TraceWriter``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hwsim.capture import quant
from hwsim.trace.format import LayerGeometry, LayerSample, TraceWriter

HOOKED = (nn.Linear, nn.Conv2d)


class NonFiniteGradientError(ValueError):
    """δz of a layer holds NaN/Inf (learning rate too high?). The trace so far is kept."""


@dataclass
class _Site:
    """One call position of a hooked module (``name``, ``name#1``, … for repeated calls)."""

    name: str
    module: nn.Module
    geometry: LayerGeometry | None = None
    shape_key: tuple[Any, ...] | None = None  # (input shape, output shape, kept examples) of ``geometry``


@dataclass(frozen=True)
class _Call:
    """What a forward call hands to its backward: where, which iteration, what to keep."""

    site: _Site
    iteration: int
    sampled: bool
    keep: int  # examples (dim 0) kept for the sample
    batch: int
    geometry: LayerGeometry


@dataclass
class _Iteration:
    index: int
    sampled: bool
    calls: dict[str, int] = field(default_factory=dict)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    a_masks: dict[str, tuple[torch.Tensor, float, np.ndarray | None]] = field(default_factory=dict)
    samples: dict[str, LayerSample] = field(default_factory=dict)
    numel: int = 0
    nnz: int = 0


class _BackgroundWriter:
    """Runs the TraceWriter's calls in order on one worker thread.

    Encoding a sample (bit-packing, LZMA, which releases the GIL) and rewriting the manifest
    then overlap with training instead of stalling it. At most one sampled iteration is in
    flight; a failed write is re-raised in the training thread at the next call or at exit.
    """

    def __init__(self, writer: TraceWriter) -> None:
        self.writer = writer
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hwsim-trace-writer")
        self._pending: list[Future] = []

    def submit(self, fn: Callable[..., Any], *args: Any, wait_first: bool = False, **kw: Any) -> None:
        if wait_first:
            self.drain()
        self._raise_failed()
        self._pending.append(self._pool.submit(fn, *args, **kw))

    def drain(self) -> None:
        for f in self._pending:
            f.result()
        self._pending.clear()

    def _raise_failed(self) -> None:
        done = [f for f in self._pending if f.done()]
        self._pending = [f for f in self._pending if not f.done()]
        for f in done:
            f.result()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


class _QuantizeGrad(torch.autograd.Function):
    """Identity in forward; in backward δz → δ̃z (what the layer's GEMMs then consume)."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, call: _Call, cap: Capture) -> torch.Tensor:  # type: ignore[override]
        ctx.call, ctx.cap = call, cap
        ctx.mark_dirty(z)
        return z

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        return ctx.cap._backward(ctx.call, g), None, None


class Capture:
    """Context manager returned by :func:`capture`; see the module docstring."""

    def __init__(self, model: nn.Module, *, method: str = "dither", s: float | None = None, k: int | None = None,
                 out: str | os.PathLike | None = None, sample_every: int = 50, seed: int = 0,
                 max_examples: int | None = None, meta: Mapping[str, Any] | None = None,
                 overwrite: bool = False) -> None:
        quant.validate_params(method=method, s=s, k=k)
        if sample_every is None or sample_every < 0:
            raise ValueError(f"sample_every must be >= 0 (0 = never), got {sample_every!r}")
        if max_examples is not None and max_examples < 1:
            raise ValueError(f"max_examples must be >= 1 or None, got {max_examples!r}")
        self.model, self.method, self.s, self.k = model, method, s, k
        self.sample_every, self.seed, self.max_examples = int(sample_every), int(seed), max_examples
        self.generator = quant.new_generator(int(seed))  # the dither's uniforms
        self.out = Path(out) if out is not None else None
        self._meta = {"model": type(model).__name__, "method": method, "s": float(s) if method == "dither" else None,
                      "k": k if method == "meprop" else None, "seed": int(seed),
                      "int8": any(getattr(m, "hwsim_w_bits", 32) <= 8 for m in model.modules()),
                      "sample_every": int(sample_every), "max_examples": max_examples,
                      "torch_version": torch.__version__, **(meta or {})}
        self._overwrite = overwrite
        self.writer: TraceWriter | None = None
        self._bg: _BackgroundWriter | None = None
        self._names = {m: (n or type(m).__name__.lower()) for n, m in model.named_modules() if isinstance(m, HOOKED)}
        if not self._names:
            raise ValueError(f"{type(model).__name__}: no nn.Linear or nn.Conv2d layer to capture")
        self._sites: dict[str, _Site] = {}
        self._handles: list[Any] = []
        self._phase = "idle"  # idle -> forward -> backward -> (next forward or step) idle
        self._it: _Iteration | None = None
        self._next_index = 0
        self._force_sample = False
        # run-level aggregates (over all finished iterations)
        self.iterations_done = 0
        self.last_density: float | None = None
        self.last_stats: dict[str, dict[str, Any]] = {}
        self._dens_sum = 0.0
        self._dens_n = 0
        self._nnz = 0
        self._numel = 0
        self._max_bits = 0

    # -- context ---------------------------------------------------------------------
    def __enter__(self) -> Capture:
        if self.out is not None:
            self.writer = TraceWriter(self.out, meta=self._meta, overwrite=self._overwrite)
            self._bg = _BackgroundWriter(self.writer)
        for m in self._names:
            self._handles.append(m.register_forward_hook(self._forward_hook))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        try:
            if exc_type is None and self._phase == "backward":
                self._finish()
        finally:
            if self._bg is not None:
                bg, self._bg = self._bg, None
                bg.shutdown()  # every submitted write finishes (also after Ctrl-C)
                err: BaseException | None = None
                if exc_type is None:
                    try:
                        bg.drain()
                    except Exception as e:  # noqa: BLE001 - a failed write: close with its status, then raise
                        err = e
                if err is not None:
                    self._close_writer(type(err), err, err.__traceback__)
                    raise err
                self._close_writer(exc_type, exc, tb)

    def _close_writer(self, exc_type, exc, tb) -> None:
        assert self.writer is not None
        self.writer.add_summary(**self.summary())
        self.writer.__exit__(exc_type, exc, tb)

    # -- public ----------------------------------------------------------------------
    def step(self, *, loss: float | None = None, acc: float | None = None, epoch: int | None = None,
             **extra: Any) -> None:
        """End the current iteration (call after ``backward``/``optimizer.step``) with its loss/accuracy."""
        if self._phase != "idle":
            self._finish(loss=loss, acc=acc, epoch=epoch, **extra)

    def mark_iteration(self) -> None:
        """End the current iteration without loss/accuracy."""
        self.step()

    def sample_next(self) -> None:
        """Store the operands of the next iteration too (e.g. the last one of a run)."""
        self._force_sample = True

    def add_summary(self, **kv: Any) -> None:
        """Run-level results (e.g. final test accuracy) for the manifest's ``summary``."""
        if self._bg is not None:
            self._bg.submit(self._bg.writer.add_summary, **kv)
        elif self.writer is not None:
            self.writer.add_summary(**kv)

    def summary(self) -> dict[str, Any]:
        """Mean δ̃z density over (layer, iteration) pairs (as the paper's Table 1), element-weighted density, max bits."""
        return {
            "iterations": self.iterations_done,
            "mean_density": self._dens_sum / self._dens_n if self._dens_n else None,
            "weighted_density": self._nnz / self._numel if self._numel else None,
            "max_bits": self._max_bits,
        }

    # -- hooks -----------------------------------------------------------------------
    def _forward_hook(self, module: nn.Module, inputs: tuple[Any, ...], output: Any) -> Any:
        if not (torch.is_grad_enabled() and isinstance(output, torch.Tensor) and output.requires_grad):
            return None
        if torch._C._current_autograd_node() is not None:  # recomputation inside backward (checkpointing)
            return None
        if self._phase == "backward":
            self._finish()
        if self._phase == "idle":
            idx = self._next_index
            sampled = self._force_sample or (self.sample_every > 0 and idx % self.sample_every == 0)
            self._force_sample = False
            self._it = _Iteration(index=idx, sampled=sampled and self._bg is not None)
            self._phase = "forward"
        it = self._it
        assert it is not None
        base = self._names[module]
        n_call = it.calls.get(base, 0)
        it.calls[base] = n_call + 1
        name = base if n_call == 0 else f"{base}#{n_call}"
        site = self._sites.get(name)
        if site is None:
            site = self._sites[name] = _Site(name=name, module=module)
        x = inputs[0]
        batched = x.dim() > (1 if isinstance(module, nn.Linear) else 3)
        batch = x.shape[0] if batched else 1
        keep = min(batch, self.max_examples or batch)
        key = (x.shape, output.shape, keep)
        if site.shape_key != key:  # building a LayerGeometry is slow Python: only when shapes change
            geom = _geometry(name, module, x, output, keep=keep, batch=batch)
            if site.geometry is None and self._bg is not None:
                self._bg.submit(self._bg.writer.add_layer, geom)
            site.geometry, site.shape_key = geom, key
        geom = site.geometry
        assert geom is not None
        if it.sampled:
            w = module.weight.detach()
            nnz_w = int(torch.count_nonzero(w))
            w_mask = (w != 0).numpy() if nnz_w < w.numel() else None
            a = x.detach()[:keep] if batched else x.detach()
            it.a_masks[name] = (a.reshape(geom.input_shape) != 0, nnz_w / w.numel(), w_mask)
        call = _Call(site=site, iteration=it.index, sampled=it.sampled, keep=keep, batch=batch, geometry=geom)
        return _QuantizeGrad.apply(output, call, self)

    def _backward(self, call: _Call, g: torch.Tensor) -> torch.Tensor:
        name = call.site.name
        try:
            q = quant.quantize(g, method=self.method, s=self.s, k=self.k, generator=self.generator,
                               lazy_values=True)
        except quant.NonFiniteError as e:
            raise NonFiniteGradientError(f"layer {name!r}, iteration {call.iteration}: δz holds NaN/Inf ({e}); "
                                         "lower the learning rate or s") from None
        self._phase = "backward"
        it = self._it
        if it is None or it.index != call.iteration:  # a backward for an iteration already finished
            return q.take_values()
        st = quant.level_stats(q.levels, bound=q.bound)
        it.stats[name] = st.to_json(delta=q.delta)
        it.numel += st.numel
        it.nnz += st.nnz
        if call.sampled and name in it.a_masks:
            a_mask, w_density, w_mask = it.a_masks.pop(name)
            geom = call.geometry
            levels = q.levels[: call.keep] if call.keep < call.batch else q.levels
            it.samples[name] = LayerSample(
                geometry=geom, delta=q.delta,
                dz_levels=levels.reshape(geom.output_shape).to(torch.int32).numpy(),
                a_mask=a_mask.numpy(), w_density=w_density, w_mask=w_mask,
                # operand widths of the forward pass: 8 where hwsim.capture.int8 tagged the layer
                w_bits=int(getattr(call.site.module, "hwsim_w_bits", 32)),
                a_bits=int(getattr(call.site.module, "hwsim_a_bits", 32)))
        return q.take_values()  # levels are scaled in place: use them before this line

    def _finish(self, *, loss: float | None = None, acc: float | None = None, epoch: int | None = None,
                **extra: Any) -> None:
        it = self._it
        self._phase = "idle"
        self._it = None
        if it is None:
            return
        self._next_index = it.index + 1
        if not it.stats:
            return
        order = [n for n in self._sites if n in it.stats]
        stats = {n: it.stats[n] for n in order}
        samples = [it.samples[n] for n in order if n in it.samples]
        if self._bg is not None:
            self._bg.submit(self._bg.writer.add_iteration, it.index, stats=stats, loss=loss, acc=acc, epoch=epoch,
                            samples=samples or None, wait_first=bool(samples), **extra)
        self.iterations_done += 1
        self.last_stats = stats
        self.last_density = it.nnz / it.numel if it.numel else None
        self._nnz += it.nnz
        self._numel += it.numel
        for st in stats.values():
            self._dens_sum += st["density"]
            self._dens_n += 1
            self._max_bits = max(self._max_bits, int(st["max_bits"]))


def capture(model: nn.Module, *, method: str = "dither", s: float | None = None, k: int | None = None,
            out: str | os.PathLike | None = None, sample_every: int = 50, seed: int = 0,
            max_examples: int | None = None, meta: Mapping[str, Any] | None = None,
            overwrite: bool = False) -> Capture:
    """Make training of ``model`` use δ̃z (NSD with Δ = s·std(δz), meProp top-k or none) and record it.

    ``out=None`` records nothing (statistics stay available on the returned object).
    ``max_examples`` stores only the first examples of each mini-batch in sampled iterations
    (statistics always cover the whole batch). ``meta`` adds manifest fields (model, dataset...).
    """
    if method == "dither" and s is None:
        s = quant.DEFAULT_S
    return Capture(model, method=method, s=s, k=k, out=out, sample_every=sample_every, seed=seed,
                   max_examples=max_examples, meta=meta, overwrite=overwrite)


def _geometry(name: str, module: nn.Module, x: torch.Tensor, out: torch.Tensor, *, keep: int,
              batch: int) -> LayerGeometry:
    """LayerGeometry of one call; ``N`` counts stored examples, ``batch_size`` the real ones."""
    if isinstance(module, nn.Linear):
        c, kk = module.in_features, module.out_features
        rows = x.numel() // c  # extra leading dims (tokens) fold into N
        per = rows // batch
        return LayerGeometry(name=name, kind="linear", N=keep * per, C=c, K=kk, batch_size=rows)
    assert isinstance(module, nn.Conv2d)
    h, w = x.shape[-2:]
    p, q = out.shape[-2:]
    r, s = module.kernel_size
    dil = tuple(module.dilation)
    if isinstance(module.padding, str):
        pad = (0, 0) if module.padding == "valid" else (dil[0] * (r - 1) // 2, dil[1] * (s - 1) // 2)
    else:
        pad = tuple(module.padding)
    return LayerGeometry(name=name, kind="conv2d", N=keep, C=module.in_channels, K=module.out_channels,
                         H=h, W=w, P=p, Q=q, R=r, S=s, stride=tuple(module.stride), padding=pad,
                         dilation=dil, groups=module.groups, batch_size=batch)
