"""The torch side of hwsim: dithered backprop applied during real training, recorded as a trace.

* :func:`capture` (``hwsim.capture(model, method="dither", s=4, out=...)``) — context manager around
  *your* training loop; see :mod:`hwsim.capture.session`. Its settings form a frozen, self-validating
  :class:`CaptureConfig`; a run of hwsim's own training loop is a :class:`TrainConfig`, and a
  data-parallel run of it adds :class:`DistributedOptions` (:mod:`hwsim.capture.config`, which is also
  the one home of every default and does not import torch).
* :mod:`hwsim.capture.quant` — the NSD and meProp quantizers and level statistics.
* :mod:`hwsim.capture.train` — hwsim's own training loop (``hwsim trace``), run by a strategy: one process
  (:class:`~hwsim.capture.train.SingleProcess`) or data-parallel under torchrun
  (:class:`~hwsim.capture.distributed.DataParallel`); :mod:`~hwsim.capture.int8` 8-bit forward operands
  (Banner et al. 2018).

Everything here but :mod:`hwsim.capture.config` imports torch, and this package imports it only when
:func:`capture`, :class:`Capture` or :class:`NonFiniteGradientError` is first used (so ``hwsim trace --help``
can read the defaults without torch). The numpy-only trace contract (schema, storage, the one reader) is
:mod:`hwsim.trace`. ``hwsim.capture`` is both this package and the :func:`capture` function: the
module object is callable, so ``hwsim.capture(model, ...)`` works whether or not the package was
imported first, and ``inspect.signature(hwsim.capture)`` / ``help(hwsim.capture)`` (under FUNCTIONS) show
the function's keywords and defaults.
"""

from __future__ import annotations

import inspect
import sys
import types
from typing import TYPE_CHECKING, Any

from hwsim.capture.config import CaptureConfig, DistributedOptions, TrainConfig

if TYPE_CHECKING:
    from hwsim.capture.session import Capture, NonFiniteGradientError, capture

__all__ = ["Capture", "CaptureConfig", "DistributedOptions", "NonFiniteGradientError", "TrainConfig", "capture"]
_SESSION = ("Capture", "NonFiniteGradientError", "capture")  # imported from hwsim.capture.session on first use


def __getattr__(name: str) -> Any:
    if name in _SESSION:
        from hwsim.capture import session

        return getattr(session, name)
    raise AttributeError(f"module 'hwsim.capture' has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    """``hwsim.capture(...)`` is :func:`hwsim.capture.session.capture` (the package is also the function).

    ``inspect.signature(hwsim.capture)`` and ``help(hwsim.capture)`` show that function's own signature
    (its keywords, defaults and return type), read on first use like the function itself.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Capture:
        from hwsim.capture.session import capture

        return capture(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        from hwsim.capture.session import capture

        return inspect.signature(capture)

    def __dir__(self) -> list[str]:
        # the lazily imported names too, so help() lists capture() with its signature under FUNCTIONS
        return sorted({*super().__dir__(), *__all__})


sys.modules[__name__].__class__ = _CallableModule
