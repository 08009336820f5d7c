"""``iterations.jsonl``: the per-iteration records of a version-3 trace, appended one line per step.

Writing costs O(1) per iteration and keeps nothing in memory but a running sha256: each record is
one JSON object on one line, written with a single ``write`` on an unbuffered file, so a line is
either whole on disk or — if the process dies inside that write — the *last* line is torn.
:meth:`IterationLog.sync` fsyncs the file and returns the manifest's ``iteration_log`` entry
(lines, bytes and sha256 of everything synced so far); the manifest is written only after that,
so it never declares more than is on disk.

Reading (:func:`read_iteration_log`) checks the declared prefix (byte count and sha256), bounds
every line by :data:`MAX_LINE_BYTES` and the file by :data:`MAX_LOG_BYTES`, and validates every
record into an :class:`~hwsim.trace.records.IterationRecord`. Lines after the declared prefix
(written after the last manifest flush of a run that was then killed) are read too; a torn or
unparsable *last* line there is ignored with a :class:`~hwsim.trace.records.TraceWarning` naming
file and line. Numpy-free.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hwsim.trace.layout import ITERATION_LOG, MAX_LINE_BYTES, MAX_LOG_BYTES
from hwsim.trace.records import IterationRecord, TraceWarning
from hwsim.trace.schema import TraceError


class IterationLog:
    """Appends iteration records to ``<trace>/iterations.jsonl`` (created empty, replacing any old one)."""

    def __init__(self, root: Path) -> None:
        self.path = root / ITERATION_LOG
        self._fp = open(self.path, "wb", buffering=0)  # noqa: SIM115 - kept open for the run, closed by close()
        self._sha = hashlib.sha256()
        self.lines = 0
        self.bytes = 0

    def append(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":")).encode() + b"\n"
        view = memoryview(line)
        while view:  # one write for any line a regular file accepts at once; loop for the rest
            n = self._fp.write(view)
            view = view[n:]
        self._sha.update(line)
        self.lines += 1
        self.bytes += len(line)

    def sync(self) -> dict[str, Any]:
        """fsync the file; the manifest's ``iteration_log`` entry for what is now durable."""
        if not self._fp.closed:
            os.fsync(self._fp.fileno())
        return {"file": ITERATION_LOG, "lines": self.lines, "bytes": self.bytes, "sha256": self._sha.hexdigest()}

    def close(self) -> None:
        if not self._fp.closed:
            os.fsync(self._fp.fileno())
            self._fp.close()


def _entry(entry: Any, mpath: Path) -> tuple[str, int, int, str]:
    if not isinstance(entry, Mapping):
        raise TraceError(f"{mpath}: field 'iteration_log' must be an object {{file, lines, bytes, sha256}}, "
                         f"got {type(entry).__name__}")
    out = []
    for key, typ in (("file", str), ("lines", int), ("bytes", int), ("sha256", str)):
        if key not in entry:
            raise TraceError(f"{mpath}: field 'iteration_log.{key}' is missing")
        v = entry[key]
        if not isinstance(v, typ) or isinstance(v, bool) or (typ is int and v < 0):
            allowed = "an integer >= 0" if typ is int else "a string"
            raise TraceError(f"{mpath}: field 'iteration_log.{key}': {v!r} is not allowed; allowed: {allowed}"[:300])
        out.append(v)
    if out[0] != ITERATION_LOG:
        raise TraceError(f"{mpath}: field 'iteration_log.file': {out[0]!r} is not allowed; allowed: {ITERATION_LOG!r}"
                         f" (inside the trace directory)"[:300])
    return out[0], out[1], out[2], out[3]


def _open_regular(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise TraceError(f"{path}: the iteration log is missing (the manifest's field 'iteration_log' names it)") \
            from None
    except OSError as e:
        raise TraceError(f"{path}: cannot open the iteration log ({e.strerror}; symlinks are refused)") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise TraceError(f"{path}: the iteration log is not a regular file (a FIFO, device or directory); refused")
    if st.st_size > MAX_LOG_BYTES:
        os.close(fd)
        raise TraceError(f"{path}: the iteration log is {st.st_size:,} bytes, more than the limit of "
                         f"{MAX_LOG_BYTES:,} bytes")
    return fd


def read_iteration_log(root: Path, entry: Any, *, mpath: Path, complete: bool) -> tuple[IterationRecord, ...]:
    """The records of ``iterations.jsonl`` as the manifest's ``iteration_log`` entry declares them.

    The first ``bytes`` bytes must hold exactly ``lines`` lines with the declared sha256. A complete
    trace's file must end there; an interrupted one may hold more whole lines (they are read), and
    a bad last line is ignored with a warning. Errors are :class:`TraceError` naming file and line.
    """
    _, lines, nbytes, sha = _entry(entry, mpath)
    path = root / ITERATION_LOG
    fd = _open_regular(path)
    out: list[IterationRecord] = []
    h = hashlib.sha256()
    pos = declared_lines = 0
    with os.fdopen(fd, "rb") as fp:
        n = 0
        while True:
            line = fp.readline(MAX_LINE_BYTES + 1)
            if not line:
                break
            n += 1
            if len(line) > MAX_LINE_BYTES:
                raise TraceError(f"{path}: line {n} is longer than the limit of {MAX_LINE_BYTES:,} bytes; refused")
            declared = pos < nbytes
            if declared:
                h.update(line)
                declared_lines += 1
            pos += len(line)
            if declared and not line.endswith(b"\n") and pos < nbytes:
                raise TraceError(f"{path}: ends inside line {n}, before the {nbytes:,} bytes ({lines} lines) the "
                                 "manifest's field 'iteration_log' declares; the file is truncated")
            if declared and pos > nbytes:
                raise TraceError(f"{path}: line {n} crosses the end of the {nbytes:,} bytes the manifest's field "
                                 "'iteration_log.bytes' declares; the file was altered")
            if not declared and complete:
                raise TraceError(f"{path}: holds more than the {lines} lines ({nbytes:,} bytes) the manifest "
                                 f"({mpath.name}, field 'iteration_log') declares for this complete trace")
            last = not declared and not fp.peek(1)
            try:
                if not line.endswith(b"\n"):
                    raise ValueError("no line end: the write was cut short")
                doc = json.loads(line)
                if not isinstance(doc, dict) and last:
                    raise ValueError(f"a JSON {type(doc).__name__}, not an object")
            except (ValueError, RecursionError) as e:
                if last:
                    warnings.warn(f"{path}: line {n} is torn or unreadable ({str(e)[:80]}); the run was interrupted "
                                  f"while writing it — ignored, {len(out)} iterations read", TraceWarning,
                                  stacklevel=3)
                    break
                raise TraceError(f"{path}: line {n} is not a JSON object ({str(e)[:80]}); the file is corrupted") \
                    from None
            out.append(IterationRecord.from_json(doc, file=f"{path}: line {n}", position=n - 1))
    if pos < nbytes or declared_lines != lines:
        raise TraceError(f"{path}: holds {min(pos, nbytes):,} bytes ({declared_lines} lines), not the {nbytes:,} bytes ({lines} "
                         f"lines) the manifest's field 'iteration_log' declares; the file is truncated or altered")
    if h.hexdigest() != sha:
        raise TraceError(f"{path}: checksum mismatch (field 'iteration_log.sha256' of {mpath.name}); the file is "
                         "corrupted")
    return tuple(out)
