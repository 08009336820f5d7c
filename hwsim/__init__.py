"""hwsim: cycles and energy of sparse-aware training accelerators, from real dithered-backprop gradients.

The public API is re-exported here and imported lazily, so ``import hwsim`` stays cheap and
the simulator can be used without PyTorch installed:

* :func:`capture` — context manager that applies NSD/meProp to δz during real training and records a trace.
* :class:`CaptureConfig` / :class:`TrainConfig` — frozen, validated settings of a capture / of ``hwsim trace``'s run;
  :class:`DistributedOptions` — what ``hwsim trace --distributed`` adds.
* :func:`load_trace` — open and validate a trace directory.
* :func:`load_arch` — YAML architecture → frozen, validated :class:`~hwsim.arch.Arch`.
* :func:`synthesize` — synthetic traces with given densities (same format as captured ones).
* :func:`simulate` — replay one iteration of a trace on an architecture → :class:`~hwsim.results.SimResult`.
* :func:`simulate_run` — replay many sampled iterations and integrate them over the training run →
  :class:`~hwsim.results.run.RunResult` (through the sweep executor: local processes or Dask).
"""

from __future__ import annotations

import importlib
from typing import Any

from hwsim._version import __version__

_LAZY = {
    "capture": ("hwsim.capture.session", "capture"),
    "CaptureConfig": ("hwsim.capture.config", "CaptureConfig"),
    "TrainConfig": ("hwsim.capture.config", "TrainConfig"),
    "DistributedOptions": ("hwsim.capture.config", "DistributedOptions"),
    "load_trace": ("hwsim.trace.format", "load"),
    "TraceError": ("hwsim.trace.format", "TraceError"),
    "load_arch": ("hwsim.arch", "load_arch"),
    "synthesize": ("hwsim.trace.synth", "synthesize"),
    "simulate": ("hwsim.sim", "simulate"),
    "simulate_run": ("hwsim.sweep.replays", "simulate_run"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'hwsim' has no attribute {name!r}")
