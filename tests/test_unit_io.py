"""Unit tests of hwsim._io: atomic writes (temp + fsync + rename, nothing partial on failure), the output
policy (check_output / replacing_dir / swap_dir), in-place status marking, bounded reads and CSV rows.

Disk-full and permission failures are simulated by monkeypatching the OS calls to raise ``OSError``."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
from pathlib import Path

import pytest

from hwsim import _io
from hwsim._io import (
    atomic_write_bytes,
    atomic_write_text,
    check_output,
    mark_status_in_place,
    read_regular,
    replacing_dir,
    rows_to_csv,
    swap_dir,
)


def _names(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def _enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/tmp/.whatever.tmp")


# ----------------------------------------------------------------------------- atomic writes


def test_atomic_write_creates_parents_sets_mode_and_leaves_no_temp(tmp_path):
    p = tmp_path / "a" / "b" / "out.bin"
    assert atomic_write_bytes(p, b"\x00\x01data", mode=0o600) == p
    assert p.read_bytes() == b"\x00\x01data"
    assert (p.stat().st_mode & 0o777) == 0o600
    assert _names(p.parent) == ["out.bin"]
    atomic_write_bytes(p, b"new")                            # replaces; default mode 0644
    assert p.read_bytes() == b"new" and (p.stat().st_mode & 0o777) == 0o644
    assert _names(p.parent) == ["out.bin"]


def test_atomic_write_text_is_utf8(tmp_path):
    p = atomic_write_text(tmp_path / "t.txt", "δz → ∞\n")
    assert p.read_bytes() == "δz → ∞\n".encode()


@pytest.mark.parametrize("target", ["replace", "fsync"])
def test_disk_full_leaves_the_old_file_and_no_temp_and_names_the_target(tmp_path, monkeypatch, target):
    p = tmp_path / "result.json"
    p.write_bytes(b"old")
    monkeypatch.setattr(_io.os, target, _enospc)
    with pytest.raises(OSError) as ei:
        atomic_write_bytes(p, b"new contents")
    e = ei.value
    assert e.errno == errno.ENOSPC and e.filename == str(p)  # the file asked for, not the temporary one
    assert "No space left" in str(e) and str(p) in str(e)
    monkeypatch.undo()
    assert p.read_bytes() == b"old" and _names(tmp_path) == ["result.json"]


def test_disk_full_on_a_new_file_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(_io.os, "replace", _enospc)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_bytes(tmp_path / "new.bin", b"x" * 100)
    monkeypatch.undo()
    assert _names(tmp_path) == []


def test_interrupt_during_the_write_removes_the_temp_and_propagates(tmp_path, monkeypatch):
    def interrupt(_fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(_io.os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(tmp_path / "x.bin", b"data")
    monkeypatch.undo()
    assert _names(tmp_path) == []


def test_permission_error_creating_the_temp_names_the_target(tmp_path, monkeypatch):
    def denied(**_k):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(_io.tempfile, "mkstemp", denied)
    with pytest.raises(PermissionError) as ei:
        atomic_write_bytes(tmp_path / "ro" / "x.bin", b"data")
    assert ei.value.filename == str(tmp_path / "ro" / "x.bin") and ei.value.errno == errno.EACCES


def test_a_parent_component_that_is_a_file_keeps_that_components_name(tmp_path):
    (tmp_path / "afile").write_text("not a dir")
    with pytest.raises((FileExistsError, NotADirectoryError)) as ei:
        atomic_write_bytes(tmp_path / "afile" / "sub" / "x.bin", b"data")
    assert ei.value.filename == str(tmp_path / "afile" / "sub")    # the component mkdir failed on, not x.bin


def test_errors_without_errno_pass_through_unchanged():
    e = OSError("custom")
    assert _io._named(e, Path("/x")) is e


# ----------------------------------------------------------------------------- output policy


def test_check_output_refuses_an_existing_file_without_overwrite(tmp_path):
    p = tmp_path / "out.csv"
    p.write_text("x")
    with pytest.raises(FileExistsError, match=rf"^--csv {p}: already exists; pass --overwrite .*new file"):
        check_output(p, overwrite=False, flag="--csv")
    assert check_output(p, overwrite=True) == p


def test_check_output_kinds(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    with pytest.raises(IsADirectoryError, match=rf"--out {d}: is a directory; give a file path"):
        check_output(d, overwrite=True)
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(NotADirectoryError, match=rf"--out {f}: exists and is a file; give a directory path"):
        check_output(f, overwrite=True, kind="directory")
    assert check_output(d, overwrite=False, kind="directory") == d      # an empty directory is fine
    (d / "x").write_text("x")
    with pytest.raises(FileExistsError, match="new directory"):
        check_output(d, overwrite=False, kind="directory")
    assert check_output(d, overwrite=True, kind="directory") == d


def test_check_output_dangling_symlink_counts_as_existing(tmp_path):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileExistsError):
        check_output(link, overwrite=False)


def test_check_output_names_an_ancestor_that_is_a_file_and_creates_the_parent(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError, match=rf"--out {tmp_path}/f/a/b/out: {tmp_path}/f is a file"):
        check_output(tmp_path / "f" / "a" / "b" / "out", overwrite=False)
    p = check_output(tmp_path / "new" / "deep" / "out.json", overwrite=False)
    assert p.parent.is_dir() and _names(p.parent) == []   # the probe file is gone


def test_check_output_probe_failure_names_the_parent(tmp_path, monkeypatch):
    def full(**_k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/tmp/.hwsim-probe-xyz")

    monkeypatch.setattr(_io.tempfile, "TemporaryFile", full)
    with pytest.raises(OSError) as ei:
        check_output(tmp_path / "o" / "x.json", overwrite=False)
    assert ei.value.errno == errno.ENOSPC and ei.value.filename == str(tmp_path / "o")


def test_swap_dir_into_a_new_and_an_existing_place(tmp_path):
    new, final = tmp_path / "new", tmp_path / "final"
    new.mkdir()
    (new / "a").write_text("1")
    swap_dir(new, final)
    assert (final / "a").read_text() == "1" and not new.exists()
    new.mkdir()
    (new / "b").write_text("2")
    swap_dir(new, final)
    assert _names(final) == ["b"] and _names(tmp_path) == ["final"]   # the old one removed, no leftovers


def test_swap_dir_restores_the_old_directory_if_the_second_rename_fails(tmp_path, monkeypatch):
    new, final = tmp_path / "new", tmp_path / "final"
    new.mkdir()
    final.mkdir()
    (final / "old").write_text("keep")
    real = os.rename
    calls = []

    def rename(a, b):
        calls.append((Path(a), Path(b)))
        if len(calls) == 2:
            _enospc()
        real(a, b)

    monkeypatch.setattr(_io.os, "rename", rename)
    with pytest.raises(OSError, match="No space left"):
        swap_dir(new, final)
    monkeypatch.undo()
    assert calls[1] == (new, final)
    assert (final / "old").read_text() == "keep" and sorted(_names(tmp_path)) == ["final", "new"]


def test_replacing_dir_swaps_in_on_success_only(tmp_path):
    final = tmp_path / "report"
    final.mkdir()
    (final / "old.html").write_text("old")
    with pytest.raises(RuntimeError, match="boom"), replacing_dir(final, overwrite=True) as tmp:
        (tmp / "half.html").write_text("half")
        raise RuntimeError("boom")
    assert _names(final) == ["old.html"] and _names(tmp_path) == ["report"]   # untouched, temp removed
    with replacing_dir(final, overwrite=True) as tmp:
        assert tmp.parent == tmp_path and tmp != final
        (tmp / "new.html").write_text("new")
        assert _names(final) == ["old.html"]                                  # not yet swapped
    assert _names(final) == ["new.html"] and _names(tmp_path) == ["report"]


def test_replacing_dir_refuses_a_non_empty_output_without_overwrite(tmp_path):
    final = tmp_path / "report"
    final.mkdir()
    (final / "x").write_text("x")
    with pytest.raises(FileExistsError, match="--report"), replacing_dir(final, overwrite=False, flag="--report"):
        pytest.fail("body must not run")


def test_replacing_dir_names_the_output_not_the_temporary_folder(tmp_path):
    final = tmp_path / "out"
    with pytest.raises(OSError) as ei, replacing_dir(final, overwrite=False) as tmp:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp / "fig" / "a.png"))
    assert ei.value.filename == str(final / "fig" / "a.png") and ei.value.errno == errno.ENOSPC
    assert _names(tmp_path) == []
    other = "/elsewhere/file"
    with pytest.raises(OSError) as ei, replacing_dir(final, overwrite=False):
        raise OSError(errno.EACCES, "denied", other)
    assert ei.value.filename == other


# ----------------------------------------------------------------------------- status marking after ENOSPC


def test_mark_status_in_place_keeps_size_and_json_valid(tmp_path):
    p = tmp_path / "m.json"
    p.write_text(json.dumps({"a": 1, "status": "running", "z": [1, 2]}, indent=1))
    size = p.stat().st_size
    assert mark_status_in_place(p) is True
    assert p.stat().st_size == size
    doc = json.loads(p.read_text())
    assert doc == {"a": 1, "status": "failed", "z": [1, 2]}
    assert mark_status_in_place(p) is False                   # no longer 'running'


def test_mark_status_in_place_refusals(tmp_path):
    p = tmp_path / "m.json"
    p.write_text('{"status": "ok"}')
    assert mark_status_in_place(p, old="ok", new="failed") is False      # would need more bytes
    assert p.read_text() == '{"status": "ok"}'
    assert mark_status_in_place(tmp_path / "missing.json") is False
    p.write_text('{"state": "running"}')
    assert mark_status_in_place(p) is False
    p.write_text('{"status":"running"}')
    assert mark_status_in_place(p, new="x") is True and json.loads(p.read_text()) == {"status": "x"}


# ----------------------------------------------------------------------------- bounded reads


def test_read_regular_limits_and_errors(tmp_path):
    p = tmp_path / "s.bin"
    p.write_bytes(b"12345")
    assert read_regular(p, 5, "sample file") == b"12345"
    with pytest.raises(ValueError, match=rf"^{p}: sample file is 5 bytes, more than the limit of 4 bytes$"):
        read_regular(p, 4, "sample file")
    with pytest.raises(KeyError, match="sample file is missing"):
        read_regular(tmp_path / "nope", 5, "sample file", KeyError)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ValueError, match=r"fifo: the log is not a regular file .*refused"):
        read_regular(tmp_path / "fifo", 5, "the log")
    with pytest.raises(ValueError, match="not a regular file"):
        read_regular(tmp_path, 5, "x")


def test_read_regular_refuses_a_file_that_grows_while_read(tmp_path, monkeypatch):
    p = tmp_path / "g.bin"
    p.write_bytes(b"123")
    real_read = os.read
    monkeypatch.setattr(_io.os, "read", lambda fd, n: real_read(fd, n) + b"more" if n > 1 else real_read(fd, n))
    with pytest.raises(ValueError, match="grew beyond the limit of 4 bytes while being read"):
        read_regular(p, 4, "x")


# ----------------------------------------------------------------------------- CSV


def test_rows_to_csv_union_of_columns_in_first_seen_order():
    rows = [{"b": 1, "a": None}, {"a": "x,y", "c": {"k": [1, 2]}}, {"d": (1, "z"), "b": 2.5}]
    text = rows_to_csv(rows)
    assert text.splitlines()[0] == "b,a,c,d"
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert parsed[0] == {"b": "1", "a": "", "c": "", "d": ""}
    assert parsed[1] == {"b": "", "a": "x,y", "c": '{"k": [1, 2]}', "d": ""}
    assert json.loads(parsed[2]["d"]) == [1, "z"] and parsed[2]["b"] == "2.5"
    assert text.endswith("\n") and "\r" not in text


def test_rows_to_csv_of_no_rows_is_an_empty_header():
    assert rows_to_csv([]) == "\n"
