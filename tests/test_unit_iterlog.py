"""Unit tests of ``iterations.jsonl`` (hwsim.trace.iterlog): the append-only writer, its ``sync`` entry
and the bounded reader (declared prefix, torn last line after a crash, errors naming file and line)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from hwsim.trace import iterlog
from hwsim.trace.iterlog import IterationLog, read_iteration_log
from hwsim.trace.layout import ITERATION_LOG
from hwsim.trace.records import TraceWarning
from hwsim.trace.schema import TraceError

MPATH = Path("/somewhere/manifest.json")


def _rec(i: int, density: float = 0.5) -> dict:
    return {"index": i, "epoch": 0, "loss": 1.0 / (i + 1), "acc": None,
            "layers": {"fc": {"density": density, "max_bits": 3}}}


def _log(root: Path, n: int) -> tuple[IterationLog, dict]:
    log = IterationLog(root)
    for i in range(n):
        log.append(_rec(i))
    return log, log.sync()


def _read(root: Path, entry: dict, *, complete: bool = True):
    return read_iteration_log(root, entry, mpath=MPATH, complete=complete)


# ----------------------------------------------------------------------------- writer


def test_append_writes_one_compact_line_per_record_and_sync_declares_what_is_on_disk(tmp_path):
    log, entry = _log(tmp_path, 3)
    data = (tmp_path / ITERATION_LOG).read_bytes()
    lines = data.splitlines(keepends=True)
    assert len(lines) == 3 and all(ln.endswith(b"\n") for ln in lines)
    assert b" " not in data                                   # compact separators
    assert json.loads(lines[1]) == _rec(1)
    assert entry == {"file": ITERATION_LOG, "lines": 3, "bytes": len(data),
                     "sha256": hashlib.sha256(data).hexdigest()}
    log.append(_rec(3))
    later = log.sync()                                        # the entry grows with the file
    data = (tmp_path / ITERATION_LOG).read_bytes()
    assert later["lines"] == 4 and later["bytes"] == len(data) > entry["bytes"]
    assert later["sha256"] == hashlib.sha256(data).hexdigest()
    log.close()
    log.close()                                               # idempotent
    assert log.sync() == later                                # still answers after close (no fsync)


def test_a_new_log_replaces_an_old_file(tmp_path):
    (tmp_path / ITERATION_LOG).write_bytes(b"old line\n" * 10)
    log, entry = _log(tmp_path, 1)
    log.close()
    assert (tmp_path / ITERATION_LOG).read_bytes().count(b"\n") == 1 and entry["lines"] == 1


def test_append_loops_over_short_writes(tmp_path):
    """A write that accepts only part of a line is continued until the whole line is on disk."""
    log = IterationLog(tmp_path)
    real = log._fp

    class Short:
        closed = False

        def write(self, view):
            return real.write(view[:7])                   # at most 7 bytes per call

        def fileno(self):
            return real.fileno()

    log._fp = Short()
    log.append(_rec(0))
    log._fp = real
    log.close()
    data = (tmp_path / ITERATION_LOG).read_bytes()
    assert json.loads(data) == _rec(0) and log.bytes == len(data) > 7


def test_written_log_reads_back(tmp_path):
    log, entry = _log(tmp_path, 4)
    log.close()
    recs = _read(tmp_path, entry)
    assert [r.index for r in recs] == [0, 1, 2, 3]
    assert recs[3].loss == pytest.approx(0.25) and recs[2].layers["fc"].max_bits == 3


def test_an_empty_log_reads_as_no_iterations(tmp_path):
    log, entry = _log(tmp_path, 0)
    assert entry["lines"] == 0 and entry["bytes"] == 0
    assert _read(tmp_path, entry) == ()


# ----------------------------------------------------------------------------- the manifest entry


@pytest.mark.parametrize(("entry", "msg"), [
    ([1], r"field 'iteration_log' must be an object .*got list"),
    ({"file": ITERATION_LOG, "lines": 0, "bytes": 0}, r"field 'iteration_log\.sha256' is missing"),
    ({"lines": 0, "bytes": 0, "sha256": ""}, r"field 'iteration_log\.file' is missing"),
    ({"file": ITERATION_LOG, "lines": -1, "bytes": 0, "sha256": ""},
     r"field 'iteration_log\.lines': -1 is not allowed; allowed: an integer >= 0"),
    ({"file": ITERATION_LOG, "lines": True, "bytes": 0, "sha256": ""}, r"field 'iteration_log\.lines': True"),
    ({"file": ITERATION_LOG, "lines": 0, "bytes": "3", "sha256": ""}, r"field 'iteration_log\.bytes': '3'"),
    ({"file": ITERATION_LOG, "lines": 0, "bytes": 0, "sha256": 5},
     r"field 'iteration_log\.sha256': 5 is not allowed; allowed: a string"),
    ({"file": "../../etc/passwd", "lines": 0, "bytes": 0, "sha256": ""},
     r"field 'iteration_log\.file': '\.\./\.\./etc/passwd' is not allowed; allowed: 'iterations\.jsonl'"),
])
def test_bad_manifest_entry_names_the_manifest_and_field(tmp_path, entry, msg):
    _log(tmp_path, 1)[0].close()
    with pytest.raises(TraceError, match=r"^/somewhere/manifest\.json: " + msg):
        _read(tmp_path, entry)


# ----------------------------------------------------------------------------- declared prefix


def test_missing_file_is_named(tmp_path):
    with pytest.raises(TraceError, match=r"iterations\.jsonl: the iteration log is missing .*'iteration_log'"):
        _read(tmp_path, {"file": ITERATION_LOG, "lines": 0, "bytes": 0, "sha256": hashlib.sha256().hexdigest()})


def test_truncated_at_a_line_boundary(tmp_path):
    log, entry = _log(tmp_path, 3)
    log.close()
    p = tmp_path / ITERATION_LOG
    first = p.read_bytes().splitlines(keepends=True)[0]
    p.write_bytes(first)
    with pytest.raises(TraceError, match=rf"holds {len(first):,} bytes \(1 lines\), not the {entry['bytes']:,} "
                                         r"bytes \(3 lines\) .*truncated or altered"):
        _read(tmp_path, entry)


def test_truncated_inside_a_declared_line(tmp_path):
    log, entry = _log(tmp_path, 3)
    log.close()
    p = tmp_path / ITERATION_LOG
    data = p.read_bytes()
    cut = len(data.splitlines(keepends=True)[0]) + 5            # 5 bytes into line 2
    p.write_bytes(data[:cut])
    with pytest.raises(TraceError, match=r"ends inside line 2, before the .* \(3 lines\) .*truncated"):
        _read(tmp_path, entry)


def test_a_line_crossing_the_declared_end_is_an_alteration(tmp_path):
    log, entry = _log(tmp_path, 3)
    log.close()
    short = {**entry, "bytes": entry["bytes"] - 1}      # the last newline is outside
    with pytest.raises(TraceError, match=r"line 3 crosses the end of the .* 'iteration_log\.bytes' .*altered"):
        _read(tmp_path, short, complete=False)


def test_wrong_line_count_with_the_right_bytes(tmp_path):
    log, entry = _log(tmp_path, 3)
    log.close()
    with pytest.raises(TraceError, match=r"\(3 lines\), not the .* \(2 lines\)"):
        _read(tmp_path, {**entry, "lines": 2})


def test_checksum_mismatch_names_the_field_and_manifest(tmp_path):
    log, entry = _log(tmp_path, 2)
    log.close()
    p = tmp_path / ITERATION_LOG
    p.write_bytes(p.read_bytes().replace(b'"max_bits":3', b'"max_bits":4', 1))   # same length, still valid
    with pytest.raises(TraceError, match=r"iterations\.jsonl: checksum mismatch \(field 'iteration_log\.sha256' "
                                         r"of manifest\.json\)"):
        _read(tmp_path, entry)


def test_a_complete_trace_may_not_hold_more_than_declared(tmp_path):
    log, entry = _log(tmp_path, 2)
    log.append(_rec(2))
    log.close()
    with pytest.raises(TraceError, match=r"holds more than the 2 lines .*\(manifest\.json, field 'iteration_log'\) "
                                         r"declares for this complete trace"):
        _read(tmp_path, entry, complete=True)
    assert [r.index for r in _read(tmp_path, entry, complete=False)] == [0, 1, 2]


# ----------------------------------------------------------------------------- after a crash


@pytest.mark.parametrize("tail", [b'{"index":3,"lo', b'{"index":3}', b"[3]\n", b"7\n"])
def test_torn_or_non_object_last_line_is_ignored_with_a_warning(tmp_path, tail):
    log, entry = _log(tmp_path, 2)
    log.append(_rec(2))                                       # written after the last sync: read too
    log._fp.write(tail)
    log._fp.close()
    with pytest.warns(TraceWarning, match=r"iterations\.jsonl: line 4 is torn or unreadable .*ignored, "
                                          r"3 iterations read"):
        recs = _read(tmp_path, entry, complete=False)
    assert [r.index for r in recs] == [0, 1, 2]


def test_a_bad_line_that_is_not_the_last_is_corruption(tmp_path):
    log, entry = _log(tmp_path, 1)
    log._fp.write(b"{broken\n")
    log.append(_rec(2))
    log.close()
    with pytest.raises(TraceError, match=r"iterations\.jsonl: line 2 is not a JSON object .*corrupted"):
        _read(tmp_path, entry, complete=False)


def test_a_bad_declared_line_is_corruption_even_if_last(tmp_path):
    log = IterationLog(tmp_path)
    log._fp.write(b"{broken\n")
    log.close()
    data = (tmp_path / ITERATION_LOG).read_bytes()
    entry = {"file": ITERATION_LOG, "lines": 1, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    with pytest.raises(TraceError, match=r"line 1 is not a JSON object"):
        _read(tmp_path, entry, complete=False)


def test_a_bad_record_names_file_line_and_field(tmp_path):
    log, _ = _log(tmp_path, 1)
    log.append({"index": 1, "layers": {"fc": {"density": 2.0}}})
    entry = log.sync()
    log.close()
    with pytest.raises(TraceError, match=r"iterations\.jsonl: line 2: field 'layers\.fc\.density': 2\.0 "
                                         r"is not allowed; allowed: a number in \[0, 1\]"):
        _read(tmp_path, entry)


# ----------------------------------------------------------------------------- bounds


def test_a_line_longer_than_the_limit_is_refused(tmp_path, monkeypatch):
    log, entry = _log(tmp_path, 2)
    log.close()
    longest = max(len(x) for x in (tmp_path / ITERATION_LOG).read_bytes().splitlines(keepends=True))
    monkeypatch.setattr(iterlog, "MAX_LINE_BYTES", longest)
    assert len(_read(tmp_path, entry)) == 2                  # exactly at the limit is fine
    monkeypatch.setattr(iterlog, "MAX_LINE_BYTES", longest - 1)
    with pytest.raises(TraceError, match=rf"line 1 is longer than the limit of {longest - 1:,} bytes; refused"):
        _read(tmp_path, entry)


def test_a_file_larger_than_the_limit_is_refused_before_reading(tmp_path, monkeypatch):
    log, entry = _log(tmp_path, 2)
    log.close()
    size = (tmp_path / ITERATION_LOG).stat().st_size
    monkeypatch.setattr(iterlog, "MAX_LOG_BYTES", size)
    assert len(_read(tmp_path, entry)) == 2
    monkeypatch.setattr(iterlog, "MAX_LOG_BYTES", size - 1)
    with pytest.raises(TraceError, match=rf"the iteration log is {size:,} bytes, more than the limit of "
                                         rf"{size - 1:,} bytes"):
        _read(tmp_path, entry)


def test_symlinks_and_non_regular_files_are_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    log, entry = _log(real, 1)
    log.close()
    link = tmp_path / "link"
    link.mkdir()
    (link / ITERATION_LOG).symlink_to(real / ITERATION_LOG)
    with pytest.raises(TraceError, match=r"cannot open the iteration log .*symlinks are refused"):
        _read(link, entry)
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / ITERATION_LOG)
    with pytest.raises(TraceError, match=r"the iteration log is not a regular file .*refused"):
        _read(fifo, entry)                                    # does not block on the FIFO
    d = tmp_path / "dir"
    (d / ITERATION_LOG).mkdir(parents=True)
    with pytest.raises(TraceError, match=r"not a regular file"):
        _read(d, entry)
