"""Dithered backprop on any ``nn.Module``, recorded as an hwsim trace.

``capture(model, method="dither", s=..., out=...)`` intercepts every GEMM-like *operation* the model's
training forward issues (:mod:`hwsim.capture.ops`: ``F.linear``, ``addmm``, matmuls, convolutions, transposed
convolutions, attention), not only ``nn.Linear``/``nn.Conv2d`` modules. A ``TorchFunctionMode`` is active only
inside the model's forward (module pre-hooks push it and name the GEMMs by the issuing module path). A
pre-hook on each GEMM's own autograd node receives δz in backward, quantizes it (NSD / meProp / none) and
hands the node δ̃z instead, so the op's own backward computes both GEMMs (δa and δW, and the bias sum) from
δ̃z (:class:`~hwsim.capture.intercept.QuantizeGrad`). The hook belongs to the node, so in-place ReLU right
after the conv, BatchNorm in between, residual ``out += x`` and repeated calls all keep working — unlike
``register_full_backward_pre_hook`` (pytorch issue 61519). Attention's activation×activation products (QKᵀ,
P·V) are recorded with their operand masks; their δz is dithered only with ``dither_attention=True``.

Names: a weight GEMM is named by the module that owns the weight (``fc1``, ``attn.out_proj``; the root module
by its class name), other GEMMs by the issuing module and op (``blocks.0.attn:qk``); repeated calls within one
forward get ``#1``, ``#2``. Forwards in eval mode or under no_grad are not captured and never rename anything.

Iterations follow optimizer steps when an optimizer holds the model's parameters, else ``cap.step()``
(:mod:`hwsim.capture.boundaries`: the rule, accumulation, ``iteration="step"``). Micro-batch statistics
are merged; the sampled operands are those of the first micro-batch. Every iteration records per-GEMM density /
max bit-width / level histogram / Δ (written for every ``stats_every``-th and every sampled iteration); every
``sample_every``-th also stores the operands through ``TraceWriter``. The trace meta gets ``coverage``
(:mod:`hwsim.capture.coverage`); capture warns when it is below 100 %. The settings are one
:class:`~hwsim.capture.config.CaptureConfig`.
"""

from __future__ import annotations

import logging
import os
import warnings
import weakref
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from hwsim.capture import ops, quant
from hwsim.capture.boundaries import IterationBoundaries, IterationNotes
from hwsim.capture.compile_guard import (
    CaptureSetupError,
    compiled_wrappers,
    refuse_compiled_model,
    refuse_if_compiling,
    refuse_training_through,
)
from hwsim.capture.config import CaptureConfig
from hwsim.capture.coverage import Coverage
from hwsim.capture.dither import DitherSource
from hwsim.capture.intercept import NO_GRAD_WHY, Interceptor
from hwsim.capture.nongemm import NonGemmTally
from hwsim.capture.quantized import noise_sums
from hwsim.capture.records import Call, Iteration, RunTotals, Site
from hwsim.capture.reports import CaptureReports
from hwsim.capture.writer import BackgroundWriter
from hwsim.trace.format import LayerSample, TraceWriter
from hwsim.trace.noise import compound_warning

log = logging.getLogger("hwsim.capture")
_ACTIVE: weakref.WeakKeyDictionary[nn.Module, Capture] = weakref.WeakKeyDictionary()  # modules under a capture


class NonFiniteGradientError(ValueError):
    """δz of a layer holds NaN/Inf (learning rate too high?). The trace so far is kept."""


class Capture(IterationBoundaries, Interceptor, CaptureReports):
    """Context manager returned by :func:`capture`; see the module docstring."""

    def __init__(self, model: nn.Module, config: CaptureConfig, *, out: str | os.PathLike | None = None,
                 meta: Mapping[str, Any] | None = None, overwrite: bool = False, optimizer: Any = None) -> None:
        if not isinstance(config, CaptureConfig):
            raise TypeError(f"config must be a CaptureConfig, got {type(config).__name__}")
        refuse_compiled_model(model)
        if not any(True for _ in model.parameters()):
            raise ValueError(f"{type(model).__name__}: no parameters: nothing is trained, no GEMM to capture")
        self.config = config
        self.dither = DitherSource(config)  # random streams and per-layer s
        self.model = model
        self.out = Path(out) if out is not None else None
        cm = config.meta()
        self._meta = {"model": type(model).__name__, **{f: cm.pop(f) for f in ("method", "s", "k", "seed")},
                      "int8": any(getattr(m, "hwsim_w_bits", 32) <= 8 for m in model.modules()),
                      **cm, "torch_version": torch.__version__}
        dev = next(model.parameters()).device
        if dev.type != "cpu":  # δz is quantized there, with a torch generator (CPU traces keep their meta)
            self._meta["device"] = str(dev)
        if self.dither.torch_only:
            self._meta["quant_path"] = "torch"
        self._meta.update(meta or {})
        self._overwrite = overwrite
        self.writer: TraceWriter | None = None
        self._bg: BackgroundWriter | None = None
        self._paths = {m: n for n, m in model.named_modules()}
        self._by_path = {n: m for m, n in self._paths.items()}
        self._owner = {id(p): n.rpartition(".")[0] for n, p in model.named_parameters(remove_duplicate=False)}
        self._root_label = type(model).__name__.lower()
        self._nongemm = NonGemmTally()  # non-GEMM ops of the iteration, by kind and layer (shapes only)
        self._mode = ops.GemmMode(self._on_gemm, self._nongemm)
        self._stack: list[tuple[str, bool]] = []
        self._fwd_calls: dict[str, int] = {}
        self._mha: list[str] = []  # labels for the bmm products inside nn.MultiheadAttention
        self._sites: dict[str, Site] = {}
        self._handles: list[Any] = []
        self._explicit = config.iteration == "step"  # cap.step() ends iterations (no optimizer / iteration="step")
        self._optimizer = optimizer
        self._param_ids = {id(p) for p in model.parameters()}
        self._opt_stepped = False  # an optimizer of the model's parameters stepped inside the capture
        self._opt_found: bool | None = None  # one exists (looked up once, at the first forward after a backward)
        self._merged_forwards = 0  # forwards after a backward kept in the iteration, waiting for an optimizer step
        self._step_pending = False
        self._notes = IterationNotes()
        self._phase = "idle"  # idle -> forward -> backward -> (next forward or step) idle
        self._it: Iteration | None = None
        self._next_index = 0
        self._force_sample = False
        self.coverage = Coverage()
        self._coverage_reported: dict[str, Any] | None = None
        self._coverage_key: tuple[int, int] | None = None  # (coverage version, nongemm meta version) last reported
        self._warned: set[str] = set()
        self.eval_forwards = 0
        self.totals = RunTotals()  # run-level aggregates (over all finished iterations)
        self.last_density: float | None = None
        self.last_stats: dict[str, dict[str, Any]] = {}

    # -- context ---------------------------------------------------------------------
    def __enter__(self) -> Capture:
        for m in self.model.modules():
            if m in _ACTIVE:
                raise CaptureSetupError(f"{type(self.model).__name__}: module {self._paths.get(m, '?')!r} is already "
                                        "inside an active hwsim capture; nested captures would quantize δz twice — "
                                        "use one capture around the whole model")
        if self.out is not None:
            self.writer = TraceWriter(self.out, meta=self._meta, overwrite=self._overwrite)
            self._bg = BackgroundWriter(self.writer)
        ops.install()
        for m in self.model.modules():
            _ACTIVE[m] = self
            self._handles.append(m.register_forward_pre_hook(self._pre_hook))
            self._handles.append(m.register_forward_hook(self._post_hook, always_call=True))
        self._handles.append(register_optimizer_step_post_hook(self._optimizer_stepped))
        for w in compiled_wrappers(self.model):  # its pre-hook runs eagerly, before the cached compiled graph
            self._handles.append(w.register_forward_pre_hook(partial(refuse_training_through, self.model)))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        ops.uninstall()
        for m in self.model.modules():
            if _ACTIVE.get(m) is self:
                del _ACTIVE[m]
        try:
            if exc_type is None and self._it is not None and self._it.acc:
                self._finish()
            if exc_type is None:
                self._report_coverage(final=True)
                if self._merged_forwards and not self._opt_stepped:
                    self._warn("no-step", f"hwsim capture of {type(self.model).__name__}: an optimizer holds the "
                               f"model's parameters but never stepped inside the capture block, so "
                               f"{self._merged_forwards + 1} forward+backward passes were recorded as one iteration; "
                               "call optimizer.step() inside the block, or mark iterations with cap.step() and "
                               "hwsim.capture(..., iteration=\"step\")")
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
            elif exc_type is None and self.iterations_done == 0:
                self._warn("empty", self._empty_message())

    def _warn(self, key: str, msg: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(msg)
            warnings.warn(msg, stacklevel=3)

    # -- public ----------------------------------------------------------------------
    def sample_next(self) -> None:
        """Store the operands of the next iteration too (e.g. the last one of a run)."""
        self._force_sample = True

    def add_summary(self, **kv: Any) -> None:
        """Run-level results (e.g. final test accuracy) for the manifest's ``summary``."""
        if self._bg is not None:
            self._bg.submit(self._bg.writer.add_summary, **kv)
        elif self.writer is not None:
            self.writer.add_summary(**kv)

    @property
    def iterations_done(self) -> int:
        """Iterations finished so far."""
        return self.totals.iterations

    def summary(self) -> dict[str, Any]:
        """Mean δ̃z density over (layer, iteration) pairs (as the paper's Table 1), element-weighted density, max bits."""
        return self.totals.summary()

    def coverage_meta(self) -> dict[str, Any]:
        """The trace meta's ``coverage`` entry as of now (see :mod:`hwsim.capture.coverage`)."""
        return self.coverage.meta()

    # -- forwards and iterations ---------------------------------------------------------
    def _pre_hook(self, module: nn.Module, args: Any) -> None:
        push = not self._stack and self._begin_forward(module)
        self._stack.append((self._paths.get(module, ""), push))
        if push:
            self._mode.__enter__()

    def _post_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        if self._stack:
            _, pushed = self._stack.pop()
            if pushed:
                self._mode.__exit__(None, None, None)

    def _begin_forward(self, module: nn.Module) -> bool:
        """An outermost module call: is it a training forward to capture? Starts iterations."""
        if not torch.is_grad_enabled():
            return False
        if torch._C._current_autograd_node() is not None:  # recomputation inside backward (checkpointing)
            if any(o.why == NO_GRAD_WHY for o in self.coverage.ops.values()):
                self._warn("reentrant", f"hwsim capture: module {self._paths.get(module, '?')!r} is recomputed inside "
                           "backward after a no_grad forward (reentrant gradient checkpointing): its GEMMs are neither "
                           "quantized nor recorded; use torch.utils.checkpoint.checkpoint(..., use_reentrant=False)")
                for o in self.coverage.ops.values():
                    if o.why == NO_GRAD_WHY:
                        o.passes = (True, True, True)
                self.coverage.touch()
            return False
        refuse_if_compiling(self._paths.get(module) or type(module).__name__)
        if not self.model.training:
            self.eval_forwards += 1  # validation: not captured, no new names, iteration untouched
            return False
        self._forward_boundary()
        if self._it is None:
            idx = self._next_index
            sampled = self._force_sample or (self.config.sample_every > 0 and idx % self.config.sample_every == 0)
            self._force_sample = False
            self._it = Iteration(index=idx, sampled=sampled and self._bg is not None)
        self._phase = "forward"
        self._fwd_calls = {}
        self._nongemm.new_forward()
        return True

    # -- backward ----------------------------------------------------------------------
    def _backward(self, call: Call, g: torch.Tensor) -> torch.Tensor:
        name = call.site.name
        try:
            c, d = self.config, self.dither
            if call.dither:  # the levels are written only where they are stored (sampled iterations)
                s = d.fixed_s if d.fixed_s is not None else d.s_of(name, self._sites)
                q = quant.quantize(g, method=c.method, s=s, k=c.k,
                                   generator=d.generator_for(g, call), lazy_values=True, compiled=d.compiled,
                                   keep_levels=call.masks is not None)
            else:
                q = quant.passthrough(g, generator=d.generator_for(g), lazy_levels=True, compiled=d.compiled)
        except quant.NonFiniteError as e:
            raise NonFiniteGradientError(f"layer {name!r}, iteration {call.iteration}: δz holds NaN/Inf ({e}); "
                                         "lower the learning rate or s") from None
        self._phase = "backward"
        it = self._it
        if it is None or it.index != call.iteration:  # a backward for an iteration already finished
            return q.take_values()
        try:
            st = self._record(call, it, q)
            # noise sums where they are kept (this iteration's statistics are written) or steer s (the budget rule)
            keep = it.sampled or it.index % self.config.stats_every == 0
            if call.dither and self.config.method != "none" and (keep or self.dither.steers):
                sums = noise_sums(g, q, st)
                it.add_noise(name, sums, host=not self.dither.torch_only)
                self.dither.observe(name, sums)
            if call.after is not None:
                call.after(g)
        except Exception as e:  # noqa: BLE001 - recording never breaks training: say which layer, which iteration
            self._warn(f"record:{name}", f"hwsim capture: layer {name!r}, iteration {call.iteration}: could not "
                       f"record ({type(e).__name__}: {e}); training goes on, the layer counts as not captured")
            op = self.coverage.ops.get(name)
            if op is not None:
                op.captured, op.why = False, f"recording failed ({type(e).__name__}: {e})"
                self.coverage.touch()
        return q.take_values()  # levels are scaled in place: use them before this line

    def _record(self, call: Call, it: Iteration, q: quant.Quantized) -> quant.LevelStats:
        name = call.site.name
        st = q.stats if q.stats is not None else quant.level_stats(q.levels, bound=q.bound)
        it.add(name, st, q.delta)
        if call.masks is not None and name not in it.samples:
            a_mask, w_density, w_mask = call.masks
            geom, gm = call.geometry, call.gemm
            levels = gm.keep_rows(gm.z(q.level_tensor()), call.keep)
            it.samples[name] = LayerSample(
                geometry=geom, delta=q.delta,
                dz_levels=levels.reshape(geom.output_shape).to(torch.int32).cpu().numpy(),
                a_mask=a_mask, w_density=w_density, w_mask=w_mask,
                # operand widths of the forward pass: 8 where hwsim.capture.int8 tagged the layer,
                # 16 where the GEMM ran in bf16/fp16 (model.to(torch.bfloat16), autocast)
                w_bits=min(call.site.w_bits, call.operand_bits), a_bits=min(call.site.a_bits, call.operand_bits),
                # which backward GEMMs training runs: the simulator replays exactly these (coverage counts the same)
                input_grad=bool(gm.a_grad), weight_grad=bool(gm.b_grad))
        return st

    def _finish(self) -> None:
        it = self._it
        self._phase = "idle"
        self._it = None
        self._step_pending = False
        notes, self._notes = self._notes, IterationNotes()
        if it is None:
            return
        loss, acc, epoch, extra = notes.values()
        self._next_index = it.index + 1
        if not it.acc:
            return
        order = [n for n in self._sites if n in it.acc]
        it.fetch_noise()
        stats = {n: it.stats(n) for n in order}
        samples = [it.samples[n] for n in order if n in it.samples]
        nongemm = self._nongemm.take()  # written when it changes; readers hold it (traces/FORMAT.md, ``nongemm``)
        if self._bg is not None:
            keep = bool(samples) or it.index % self.config.stats_every == 0  # sampled iterations always keep theirs
            if self._nongemm.changed(nongemm):
                extra = {**extra, "nongemm": nongemm}
            self._bg.submit(self._bg.writer.add_iteration, it.index, stats=stats if keep else None, loss=loss,
                            acc=acc, epoch=epoch, samples=samples or None, wait_first=bool(samples), **extra)
        self.last_stats = stats
        self.last_density = self.totals.add(it, stats)
        # NSD's noise over depth (hwsim.trace.noise): warned once per run, so looked at only until then
        msg = compound_warning(order, stats) if "noise" not in self._warned else None
        if msg is not None:
            self._warn("noise", f"hwsim capture: iteration {it.index}: {msg}")
        self._report_coverage()

def capture(model: nn.Module, *, method: str = "dither", s: float | None = None, k: int | None = None,
            out: str | os.PathLike | None = None, sample_every: int = 50, seed: int = 0,
            max_examples: int | None = None, meta: Mapping[str, Any] | None = None,
            overwrite: bool = False, dither_attention: bool = False, optimizer: Any = None,
            iteration: str = "auto", stats_every: int = 1, s_layers: Any = None,
            dither_rng: str = "counter") -> Capture:
    """Make training of ``model`` use δ̃z (NSD with Δ = s·std(δz), meProp top-k or none) and record it.

    The δz and recording keywords form a :class:`~hwsim.capture.config.CaptureConfig` (which checks
    them; ``s`` defaults to 4 for dither). ``out=None`` records nothing (statistics stay available on
    the returned object). ``max_examples`` stores only the first examples of each mini-batch in
    sampled iterations (statistics always cover the whole batch). ``meta`` adds manifest fields.
    ``dither_attention``: also dither δz of attention's activation×activation products (QKᵀ, P·V).
    ``optimizer`` (only its steps end iterations; default: any optimizer holding the model's
    parameters) / ``iteration="step"`` (only ``cap.step()`` does): iteration boundaries (module doc).
    ``stats_every``: write per-layer statistics (density, max bits, histogram, Δ) of every this
    many iterations (and of every sampled one); loss/accuracy records and the run summary
    (``summary()``, ``last_stats``) still cover every iteration. Recorded as ``meta.stats_every``.
    ``s_layers``: per-layer s for dither (:mod:`hwsim.capture.srule`: ``"depth"`` or ``{glob: s}``).
    ``dither_rng``: the dither's random stream, ``counter`` or ``sfc64`` (older traces'; ``meta.dither_rng``).
    """
    config = CaptureConfig(method=method, s=s, k=k, sample_every=sample_every, seed=seed, max_examples=max_examples,
                           dither_attention=dither_attention, iteration=iteration, stats_every=stats_every,
                           s_layers=s_layers, dither_rng=dither_rng)
    return Capture(model, config, out=out, meta=meta, overwrite=overwrite, optimizer=optimizer)
