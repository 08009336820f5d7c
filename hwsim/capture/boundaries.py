"""Where a captured training iteration ends.

Iterations follow optimizer steps: an iteration ends when an optimizer holding the model's
parameters steps (torch's global optimizer-step hook; ``optimizer=`` restricts it to that one), so a
step accumulated over micro-batches is one iteration, whatever the loop calls ``cap.step()`` for (its
loss/accuracy are kept for the iteration: the mean over its calls). Without an optimizer (none holds
the model's parameters: looked up once, at the first training forward that follows a backward)
``cap.step()`` ends iterations, and before the first ``cap.step()`` a training forward after a
backward starts a new one. ``iteration="step"``: only ``cap.step()`` ends them.

:class:`IterationBoundaries` is the half of :class:`~hwsim.capture.session.Capture` that decides it: optimizer steps
(torch's global optimizer-step hook) when an optimizer holds the model's parameters, else ``cap.step()``, and what
``cap.step()`` reported for the iteration meanwhile (:class:`IterationNotes`). It reads and sets the Capture's state
(``config``, ``_optimizer``, ``_param_ids``, ``_opt_stepped``, ``_opt_found``, ``_step_pending``, ``_explicit``,
``_it``, ``_notes``, ``_phase``, ``_merged_forwards``, ``_bg``) and calls its ``_finish``.
"""

from __future__ import annotations

import gc
from typing import Any

from torch.optim.optimizer import Optimizer


class IterationBoundaries:
    """Mixed into :class:`~hwsim.capture.session.Capture` (which owns the state)."""

    _opt_noted = False  # the optimizer's class and hyper-parameters are in the meta (set once, per instance)

    # -- public ----------------------------------------------------------------------
    def step(self, *, loss: float | None = None, acc: float | None = None, epoch: int | None = None,
             **extra: Any) -> None:
        """Report the iteration's loss/accuracy (call after ``optimizer.step``); ends it (module doc).

        When optimizer steps mark the iterations (an optimizer holds the model's parameters and
        ``iteration`` is not ``"step"``), this ends the iteration only if the optimizer stepped since
        it began, and otherwise keeps the values for it (mean loss/accuracy over its calls): a step
        accumulated over micro-batches stays one iteration. Else it ends the current iteration.
        """
        if self._it is not None:
            self._notes.add(loss=loss, acc=acc, epoch=epoch, **extra)
        self._look_for_optimizer()
        if self._by_optimizer():
            if self._step_pending:
                self._finish()
            return
        self._explicit = True
        if self._it is not None:
            self._finish()

    def mark_iteration(self) -> None:
        """End the current iteration now (also between optimizer steps); ``cap.step()``'s values so far are kept."""
        self._explicit = True
        if self._it is not None:
            self._finish()

    # -- inside the Capture -------------------------------------------------------------
    def _forward_boundary(self) -> None:
        """A training forward begins: the iteration ends if an optimizer stepped, or — without an optimizer and
        before any ``cap.step()`` — if it follows a backward; with one, that forward is accumulated into it."""
        if self._step_pending:
            self._finish()
        elif self._phase == "backward" and not self._explicit:  # a forward after a backward, no step between
            self._look_for_optimizer()
            if self._by_optimizer():
                self._merged_forwards += not self._opt_stepped  # gradient accumulation: the step ends it
            else:
                self._finish()

    def _optimizer_stepped(self, optimizer: Any, *_: Any) -> None:
        """torch's global optimizer-step post-hook: a step of the model's optimizer ends the iteration."""
        if self.config.iteration != "step" and self._holds_params(optimizer):
            self._note_optimizer(optimizer)
            self._opt_stepped = True
            self._step_pending = True  # finished at the next forward, cap.step() or exit (which may add loss)

    def _holds_params(self, optimizer: Any) -> bool:
        if self._optimizer is not None:
            return optimizer is self._optimizer
        ids = self._param_ids
        return any(id(p) in ids for g in getattr(optimizer, "param_groups", ()) for p in g.get("params", ()))

    def _by_optimizer(self) -> bool:
        """Do optimizer steps mark the iterations (module doc)?"""
        return self.config.iteration != "step" and (self._optimizer is not None or self._opt_stepped
                                                     or bool(self._opt_found))

    def _look_for_optimizer(self) -> None:
        """Before the first optimizer step and ``cap.step()``: does a live ``torch.optim.Optimizer`` hold the
        model's parameters? (one walk over the heap's objects, done once)"""
        if self._opt_found is None and not self._explicit and not self._by_optimizer():
            self._opt_found = self._find_optimizer()

    def _find_optimizer(self) -> bool:
        # The trace writer's thread must be idle during the heap walk: gc.get_objects() also returns a tuple another
        # thread is still building from a generator (dataclasses.asdict does), and CPython then fails that thread's
        # tuple resize with "SystemError: bad argument to internal function" (seen in CI, CPython 3.11).
        if self._bg is not None:
            self._bg.drain()
        found = next((o for o in gc.get_objects() if issubclass(type(o), Optimizer) and self._holds_params(o)), None)
        if found is not None:
            self._note_optimizer(found)
        return found is not None

    def _note_optimizer(self, optimizer: Any) -> None:
        """The optimizer of the model's parameters, once: its class and hyper-parameters into the trace meta
        (:func:`optimizer_meta`; the weight update's cost follows it), unless the meta already names one (hwsim's own
        training loop writes ``optimizer``); keys the meta already has are kept."""
        if self._opt_noted or "optimizer" in self._meta:
            return
        self._opt_noted = True
        info = {k: v for k, v in optimizer_meta(optimizer).items() if k not in self._meta}
        self._meta.update(info)
        if self._bg is not None:
            self._bg.submit(self._bg.writer.set_meta, **info)
        elif self.writer is not None:
            self.writer.set_meta(**info)


def optimizer_meta(optimizer: Any) -> dict[str, Any]:
    """``{"optimizer": class name, "lr", "momentum", "nesterov", "betas", "weight_decay"}`` of the first parameter
    group (the keys it has; numbers as floats, ``betas`` a list) — the trace meta keys of traces/FORMAT.md."""
    group = (getattr(optimizer, "param_groups", None) or [{}])[0]
    out: dict[str, Any] = {"optimizer": type(optimizer).__name__}
    for key in ("lr", "momentum", "weight_decay"):
        v = group.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) or hasattr(v, "item"):
            out[key] = float(v)
    if isinstance(group.get("nesterov"), bool):
        out["nesterov"] = group["nesterov"]
    betas = group.get("betas")
    if isinstance(betas, (tuple, list)):
        out["betas"] = [float(b) for b in betas]
    return out



class IterationNotes:
    """What ``cap.step()`` reported for the current iteration: mean loss and accuracy, the last epoch and extras."""

    def __init__(self) -> None:
        self.loss: list[float] = []
        self.acc: list[float] = []
        self.epoch: int | None = None
        self.extra: dict[str, Any] = {}

    def add(self, *, loss: float | None, acc: float | None, epoch: int | None, **extra: Any) -> None:
        if loss is not None:
            self.loss.append(float(loss))
        if acc is not None:
            self.acc.append(float(acc))
        if epoch is not None:
            self.epoch = epoch
        self.extra.update(extra)

    def values(self) -> tuple[float | None, float | None, int | None, dict[str, Any]]:
        def mean(xs: list[float]) -> float | None:
            return sum(xs) / len(xs) if xs else None
        return mean(self.loss), mean(self.acc), self.epoch, self.extra


__all__ = ["IterationBoundaries", "IterationNotes"]
