"""Unit tests of hwsim.capture.reports (CaptureReports, the half of Capture that writes its coverage meta, the
empty-run message and the closing summary), on a hand-made Capture stand-in: which meta is written when, which
warnings are raised, and the writer's closing status."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from hwsim.capture import reports
from hwsim.capture.reports import CaptureReports


class Writer:
    def __init__(self) -> None:
        self.meta: list[dict] = []
        self.summaries: list[dict] = []
        self.closed: list[str] = []
        self.exited: list[tuple] = []

    def set_meta(self, **kw) -> None:  # noqa: ANN003 - records what it is given
        self.meta.append(kw)

    def add_summary(self, **kw) -> None:  # noqa: ANN003
        self.summaries.append(kw)

    def close(self, *, status: str) -> None:
        self.closed.append(status)

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self.exited.append(exc)


class Coverage:
    def __init__(self, ops: int, missed: list[dict], version: int = 1) -> None:
        self.ops, self.version, self.missed = ops, version, missed

    @property
    def complete(self) -> bool:
        return not self.missed

    def meta(self) -> dict:
        return {"ops": self.ops, "missed": list(self.missed)}


class TinyNet:
    pass


class Fake(CaptureReports):
    def __init__(self, *, ops: int = 3, missed: list[dict] | None = None, eval_forwards: int = 0,
                 iterations: int = 1, bg: bool = False) -> None:
        self.coverage = Coverage(ops, missed or [])
        self._nongemm = SimpleNamespace(meta_version=0, meta=lambda: {"ops": 2})
        self.writer = Writer()
        self._bg = SimpleNamespace(writer=self.writer, jobs=[], submit=None) if bg else None
        if bg:
            self._bg.submit = lambda fn, **kw: self._bg.jobs.append((fn, kw))
        self.model = TinyNet()
        self.eval_forwards = eval_forwards
        self.iterations_done = iterations
        self._coverage_reported = None
        self._coverage_key = None
        self.warnings: list[tuple[str, str]] = []

    def _warn(self, key: str, msg: str) -> None:
        self.warnings.append((key, msg))

    def summary(self) -> dict:
        return {"iterations": self.iterations_done}


@pytest.fixture(autouse=True)
def _plain_describe(monkeypatch):
    monkeypatch.setattr(reports, "describe", lambda cov: f"missed {len(cov['missed'])} of {cov['ops']} ops")


def test_complete_coverage_is_written_once_without_a_warning():
    c = Fake()
    c._report_coverage()
    assert c.writer.meta == [{"coverage": {"ops": 3, "missed": []}, "nongemm": {"ops": 2}}]
    assert c.warnings == []
    c._report_coverage()  # the same versions: not rebuilt, not written again
    assert len(c.writer.meta) == 1


def test_no_ops_yet_writes_nothing():
    c = Fake(ops=0)
    c._report_coverage()
    assert c.writer.meta == [] and c.warnings == [] and c._coverage_key is None


def test_incomplete_coverage_warns_once_per_set_of_missed_ops_naming_the_model():
    missed = [{"module": "blk.", "op": "einsum"}, {"module": "head.", "op": "bmm"}]
    c = Fake(missed=missed)
    c._report_coverage()
    assert c.warnings == [("coverage:blk.einsum,head.bmm", "hwsim capture of TinyNet: missed 2 of 3 ops")]
    assert c.writer.meta[0]["coverage"]["missed"] == missed


def test_a_new_version_with_an_unchanged_report_is_not_written_again():
    c = Fake()
    c._report_coverage()
    c.coverage.version = 2  # new ops were seen, but the report is the same
    c._report_coverage()
    assert len(c.writer.meta) == 1
    assert c._coverage_key == (2, 0)


def test_a_changed_report_under_a_new_nongemm_version_is_written_again():
    c = Fake()
    c._report_coverage()
    c._nongemm.meta_version = 1
    c._nongemm.meta = lambda: {"ops": 5}
    c._report_coverage()
    assert [m["nongemm"] for m in c.writer.meta] == [{"ops": 2}, {"ops": 5}]


def test_a_background_writer_gets_the_meta_as_a_job_not_directly():
    c = Fake(bg=True)
    c._report_coverage()
    assert c.writer.meta == []
    assert c._bg.jobs == [(c.writer.set_meta, {"coverage": {"ops": 3, "missed": []}, "nongemm": {"ops": 2}})]


def test_the_reported_dict_is_not_aliased_to_what_the_writer_got():
    c = Fake()
    c._report_coverage()
    assert "nongemm" in c._coverage_reported  # kept whole for the next comparison
    assert "nongemm" not in c.writer.meta[0]["coverage"]


def test_empty_message_without_and_with_eval_forwards():
    assert Fake()._empty_message() == ("hwsim capture of TinyNet: 0 iterations recorded — no training forward + "
                                       "backward ran inside the capture block")
    assert Fake(eval_forwards=4)._empty_message().endswith(
        "block (4 forward(s) ran in eval mode: call model.train() for training)")


def test_closing_an_empty_capture_warns_and_closes_with_the_empty_status():
    c = Fake(iterations=0, eval_forwards=1)
    c._close_writer(None, None, None)
    assert c.writer.summaries == [{"iterations": 0}]
    assert [k for k, _ in c.warnings] == ["empty"]
    assert c.writer.closed == [f"empty: {c._empty_message()}"]
    assert c.writer.exited == []


def test_the_empty_status_is_cut_to_500_characters():
    c = Fake(iterations=0)
    TinyNet.__name__ = "N" * 600
    try:
        c._close_writer(None, None, None)
    finally:
        TinyNet.__name__ = "TinyNet"
    assert len(c.writer.closed[0]) == 500 and c.writer.closed[0].startswith("empty: hwsim capture of NNN")


def test_closing_after_iterations_or_on_an_exception_exits_the_writer():
    c = Fake(iterations=2)
    c._close_writer(None, None, None)
    assert c.writer.exited == [(None, None, None)] and c.writer.closed == [] and c.warnings == []
    err = ValueError("boom")
    d = Fake(iterations=0)
    d._close_writer(ValueError, err, None)  # an exception in the block: not reported as an empty run
    assert d.writer.exited == [(ValueError, err, None)] and d.writer.closed == []
    assert d.writer.summaries == [{"iterations": 0}]


def test_the_same_versions_do_not_even_rebuild_the_report():
    c = Fake()
    calls = []
    meta = c.coverage.meta
    c.coverage.meta = lambda: calls.append(1) or meta()
    for _ in range(5):
        c._report_coverage()
    assert len(calls) == 1  # built once: the key (coverage version, non-GEMM version) did not change
    c.coverage.version = 7
    c._report_coverage()
    assert len(calls) == 2


def test_one_eval_forward_is_named_in_the_empty_message():
    assert Fake(eval_forwards=1)._empty_message().endswith(
        " (1 forward(s) ran in eval mode: call model.train() for training)")
