"""What a capture reports about itself: the trace meta's ``coverage`` (and warnings below 100 %), the empty-run
message, and the summary written when the trace closes.

:class:`CaptureReports` is the half of :class:`~hwsim.capture.session.Capture` that writes them; it reads the
Capture's state (``coverage``, ``_nongemm``, ``_bg``, ``writer``, ``model``, ``eval_forwards``,
``_coverage_reported``, ``_coverage_key``) and calls its ``_warn`` and ``summary``.
"""

from __future__ import annotations

from typing import Any

from hwsim.capture.coverage import describe


class CaptureReports:
    """Mixed into :class:`~hwsim.capture.session.Capture` (which owns the state)."""

    def _empty_message(self) -> str:
        why = (f" ({self.eval_forwards} forward(s) ran in eval mode: call model.train() for training)"
               if self.eval_forwards else "")
        return (f"hwsim capture of {type(self.model).__name__}: 0 iterations recorded — no training forward + "
                f"backward ran inside the capture block{why}")

    def _close_writer(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self.writer is not None
        self.writer.add_summary(**self.summary())
        if exc_type is None and self.iterations_done == 0:
            msg = self._empty_message()
            self._warn("empty", msg)
            self.writer.close(status=f"empty: {msg}"[:500])
            return
        self.writer.__exit__(exc_type, exc, tb)

    def _report_coverage(self, *, final: bool = False) -> None:
        """After the first iteration (and whenever new ops appear): meta ``coverage``, warn if < 100 %."""
        if not self.coverage.ops:
            return
        key = (self.coverage.version, self._nongemm.meta_version)  # both change only when new ops appear
        if key == self._coverage_key:
            return  # the same report as the last one (building it costs ~30 µs an iteration)
        self._coverage_key = key
        cov = {**self.coverage.meta(), "nongemm": self._nongemm.meta()}
        if cov == self._coverage_reported:
            return
        self._coverage_reported = cov
        cov = dict(cov)
        nongemm = cov.pop("nongemm")
        if self._bg is not None:
            self._bg.submit(self._bg.writer.set_meta, coverage=cov, nongemm=nongemm)
        elif self.writer is not None:
            self.writer.set_meta(coverage=cov, nongemm=nongemm)
        if not self.coverage.complete:
            self._warn("coverage:" + ",".join(m["module"] + m["op"] for m in cov["missed"]),
                       f"hwsim capture of {type(self.model).__name__}: {describe(cov)}")
