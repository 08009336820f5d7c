"""BLAS on one thread while a replay runs.

The simulator's matrix products are small count products: BLAS threads would only contend with the other replays of
a process pool for the cores. numpy's BLAS is the only one the simulator calls (it never imports torch), loaded with
numpy, before any replay.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Keep BLAS on one thread (the count products are small; threads would only contend with the other
    replays of a pool for the cores). A no-op without threadpoolctl. Also a decorator (one limit per call)."""
    ctl = blas_controller()
    if ctl is None:  # pragma: no cover - scikit-learn (a dependency) brings threadpoolctl
        yield
        return
    with ctl.limit(limits=1, user_api="blas"):
        yield


@functools.cache
def blas_controller() -> object | None:
    """threadpoolctl's view of the loaded thread pools, found once per process (finding them is most of the cost of
    a limit: ≈ 0.4 ms a replay). The simulator's BLAS is numpy's, loaded before any replay."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover
        return None
    return ThreadpoolController()
