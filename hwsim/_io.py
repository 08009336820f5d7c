"""Atomic file writes (a reader, a crash or Ctrl-C never sees half a file) and table rows as CSV.

Every file hwsim writes that another step reads — trace samples and manifests, results,
sweep points and summaries — goes through here: write a temp file in the same directory,
fsync, then ``os.replace`` (atomic on POSIX and Windows).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` atomically (parent directories are created)."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    except OSError as e:
        raise _named(e, p) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, p)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise _named(e, p) from None
        raise
    return p


def _named(e: OSError, p: Path) -> OSError:
    """The same error naming the file the caller asked for (not a temporary name, not no name)."""
    if isinstance(e, (FileExistsError, NotADirectoryError)) and e.filename and Path(e.filename) != p:
        return e  # a parent path component is a file: keep the component's name
    return type(e)(e.errno, e.strerror, str(p)) if e.errno else e


# ----------------------------------------------------------------------------- output policy


def check_output(path: str | os.PathLike, *, overwrite: bool, flag: str = "--out", kind: str = "file") -> Path:
    """Fail fast, before any work, if ``path`` cannot be written as a new ``kind`` ("file" or "directory").

    An existing output is refused without ``overwrite``; a file where a directory is wanted (or the
    reverse) is refused always; the parent is created and probed with a temporary file, so a
    read-only, full or forbidden location fails now, naming the path, not after the run.
    """
    p = Path(path)
    if p.exists() or p.is_symlink():
        if kind == "file" and p.is_dir():
            raise IsADirectoryError(f"{flag} {p}: is a directory; give a file path")
        if kind == "directory" and not p.is_dir():
            raise NotADirectoryError(f"{flag} {p}: exists and is a file; give a directory path")
        if not overwrite and (kind == "file" or any(p.iterdir())):
            raise FileExistsError(f"{flag} {p}: already exists; pass --overwrite to replace it (the new {kind} "
                                  "is written aside and swapped in once complete)")
    parent = p.parent
    for anc in (parent, *parent.parents):
        if anc.exists() and not anc.is_dir():
            raise NotADirectoryError(f"{flag} {p}: {anc} is a file, not a directory")
        if anc.exists():
            break
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=parent, prefix=".hwsim-probe-"):
            pass
    except OSError as e:
        raise _named(e, parent) from None
    return p


def swap_dir(new: Path, final: Path) -> None:
    """Put directory ``new`` at ``final``; an existing ``final`` is removed only after ``new`` is in place.

    Two renames in one directory: a crash between them leaves the old one as ``.NAME.old-*`` beside it.
    """
    if not final.exists():
        os.rename(new, final)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
    os.rmdir(old)
    os.rename(final, old)
    try:
        os.rename(new, final)
    except BaseException:
        os.rename(old, final)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def replacing_dir(final: str | os.PathLike, *, overwrite: bool, flag: str = "--out") -> Iterator[Path]:
    """Yield a fresh directory beside ``final``; on success it replaces ``final``, on any error it is removed.

    >>> with replacing_dir("reports/x", overwrite=True) as tmp:
    ...     build_into(tmp)          # reports/x is untouched until this succeeds
    """
    dst = check_output(final, overwrite=overwrite, flag=flag, kind="directory")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.new-", dir=dst.parent))
    except OSError as e:
        raise _named(e, dst.parent) from None
    try:
        yield tmp
        swap_dir(tmp, dst)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        name = str(e.filename or "")
        if name.startswith(str(tmp)):  # name the output the user asked for, not the temporary folder
            raise type(e)(e.errno, e.strerror, str(dst) + name[len(str(tmp)):]) from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def mark_status_in_place(path: str | os.PathLike, old: str = "running", new: str = "failed") -> bool:
    """Rewrite ``"status": "<old>"`` in a JSON file to ``new`` without allocating disk space.

    After ENOSPC nothing new can be written, but the bytes of an existing file can be: the value is
    overwritten in place and padded with spaces (valid JSON), so ``len(new) <= len(old)``. Returns
    whether the file was changed.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError:
        return False
    m = re.search(rb'"status"\s*:\s*"' + re.escape(old.encode()) + rb'"', data)
    if not m or len(new) > len(old):
        return False
    value = m.group(0)
    repl = value[: value.rindex(b'"', 0, -1) + 1] + new.encode() + b'"'
    repl += b" " * (len(value) - len(repl))
    try:
        fd = os.open(p, os.O_WRONLY)
        try:
            os.pwrite(fd, repl, m.start())
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        return False
    return True



def read_regular(path: str | os.PathLike, limit: int, what: str, error: type[Exception] = ValueError) -> bytes:
    """Bytes of a regular file of at most ``limit`` bytes; FIFOs, devices and oversize files are refused
    before anything is read (the open does not block on a FIFO). Failures raise ``error`` with a message
    that names the file and says what ``what`` is (e.g. "sample file")."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise error(f"{path}: {what} is missing") from None
    except OSError as e:
        raise error(f"{path}: cannot open {what} ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{path}: {what} is not a regular file (a FIFO, device or directory); refused")
        if st.st_size > limit:
            raise error(f"{path}: {what} is {st.st_size:,} bytes, more than the limit of {limit:,} bytes")
        chunks, left = [], limit + 1
        while left > 0:
            b = os.read(fd, min(left, 1 << 20))
            if not b:
                break
            chunks.append(b)
            left -= len(b)
        data = b"".join(chunks)
        if len(data) > limit:
            raise error(f"{path}: {what} grew beyond the limit of {limit:,} bytes while being read")
        return data
    finally:
        os.close(fd)

def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def rows_to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """CSV text with the union of the rows' columns in first-seen order (None → empty, nested → JSON)."""
    cols: dict[str, None] = {}
    for r in rows:
        for k in r:
            cols.setdefault(k, None)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(cols), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _csv_cell(r.get(k)) for k in cols})
    return buf.getvalue()


def _csv_cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, default=str)
    return v
