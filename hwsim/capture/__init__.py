"""The torch side of hwsim: dithered backprop applied during real training, recorded as a trace.

* :func:`capture` (``hwsim.capture(model, method="dither", s=4, out=...)``) — context manager around
  *your* training loop; see :mod:`hwsim.capture.session`. Its settings form a frozen, self-validating
  :class:`CaptureConfig`; a run of hwsim's own training loop is a :class:`TrainConfig`, and a
  data-parallel run of it adds :class:`DistributedOptions` (:mod:`hwsim.capture.config`).
* :mod:`hwsim.capture.quant` — the NSD and meProp quantizers and level statistics.
* :mod:`hwsim.capture.train` — hwsim's own training loop (``hwsim trace``); :mod:`~hwsim.capture.distributed`
  the same under torchrun; :mod:`~hwsim.capture.int8` 8-bit forward operands (Banner et al. 2018).

Everything here imports torch; the numpy-only trace contract (schema, storage, the one reader) is
:mod:`hwsim.trace`. ``hwsim.capture`` is both this package and the :func:`capture` function: the
module object is callable, so ``hwsim.capture(model, ...)`` works whether or not the package was
imported first.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from hwsim.capture.config import CaptureConfig, DistributedOptions, TrainConfig
from hwsim.capture.session import Capture, NonFiniteGradientError, capture

__all__ = ["Capture", "CaptureConfig", "DistributedOptions", "NonFiniteGradientError", "TrainConfig", "capture"]


class _CallableModule(types.ModuleType):
    """``hwsim.capture(...)`` is :func:`hwsim.capture.session.capture` (the package is also the function)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Capture:
        return capture(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
