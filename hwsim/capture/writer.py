"""The trace writer's calls, in order, on one background thread (encoding overlaps training)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from hwsim.trace.format import TraceWriter


class BackgroundWriter:
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
