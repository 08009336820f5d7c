"""Is ``torch.compile`` in play? Capture must refuse it: a compiled forward skips capture's hooks, so the model
would train uncaptured (or, when dynamo falls back to eager, silently uncompiled). These look, without importing
dynamo, for a compiled module, a live compiled wrapper of the model, and a frame dynamo is evaluating."""

from __future__ import annotations

import gc
import sys
from typing import Any

import torch
from torch import nn


class CaptureSetupError(ValueError):
    """A set-up capture cannot work with (compiled model, nested capture); the message names the fix."""


def dynamo_callback() -> Any:
    """dynamo's frame-evaluation callback: set (not None) while a torch.compile'd module or function runs — also
    when dynamo gave up tracing a frame and runs it eagerly, its callees still under the callback; None in eager code
    and under ``torch.compiler.set_stance("force_eager")`` / ``torch.compiler.disable``."""
    try:
        from torch._C._dynamo.eval_frame import get_eval_frame_callback
    except ImportError:  # a torch without dynamo: nothing can be compiled
        return None
    return get_eval_frame_callback()


def compiled_wrappers(model: nn.Module) -> list[nn.Module]:
    """Live ``torch.compile(m)`` wrappers (OptimizedModule) of the model, a submodule or a module holding it, once
    dynamo compiled anything: their cached graph runs without capture's hooks (dynamo does not guard on hooks added
    later). A heap walk, skipped while dynamo never compiled a frame in this process."""
    cf = sys.modules.get("torch._dynamo.convert_frame")
    seen = getattr(getattr(cf, "input_codes", None), "seen_ids", None)
    if cf is None or seen is not None and not seen:
        return []
    mods = set(model.modules())
    return [o for o in gc.get_objects() if type(o).__name__ == "OptimizedModule"
            and isinstance(getattr(o, "_orig_mod", None), nn.Module) and any(m in mods for m in o._orig_mod.modules())]


def compiled_module(model: nn.Module) -> str | None:
    for n, m in model.named_modules():
        if type(m).__name__ == "OptimizedModule" or getattr(m, "_compiled_call_impl", None) is not None:
            return n or type(model).__name__
    return None


def refuse_compiled_model(model: nn.Module) -> None:
    """At set-up: a module of ``model`` compiled before the capture would skip its hooks."""
    where = compiled_module(model)
    if where is not None:
        raise CaptureSetupError(
            f"{type(model).__name__}: module {where!r} was compiled with torch.compile before capture; a compiled "
            "forward skips capture's hooks. Capture the uncompiled model (with hwsim.capture(model, ...) first), "
            "compile nothing, or compile only after the capture block")


def refuse_if_compiling(label: str) -> None:
    """At a captured forward. While dynamo traces, the refusal is swallowed (it runs the frame eagerly instead, the
    compile silently undone): it is raised again from that eager run, where the callback is still set."""
    if torch.compiler.is_compiling() or dynamo_callback() is not None:
        raise CaptureSetupError(
            f"hwsim capture: module {label!r} is called through torch.compile (a compiled module, function or "
            "Module.compile()) inside capture; dynamo cannot compile capture's hooks and would run them eagerly; "
            "train the uncompiled model inside the capture block and compile only after it")


def refuse_training_through(model: nn.Module, wrapper: nn.Module, args: Any) -> None:
    """Pre-hook on a compiled wrapper made before the capture: its cached graph would skip capture's hooks."""
    if torch.is_grad_enabled() and model.training:
        raise CaptureSetupError(
            f"hwsim capture: {type(model).__name__} is trained through a torch.compile wrapper of "
            f"{type(wrapper._orig_mod).__name__} compiled before the capture; its cached graph skips capture's "
            "hooks (nothing would be recorded); train the uncompiled model inside the capture block and compile "
            "only after it")


__all__ = ["CaptureSetupError", "compiled_module", "compiled_wrappers", "dynamo_callback", "refuse_compiled_model",
           "refuse_if_compiling", "refuse_training_through"]
