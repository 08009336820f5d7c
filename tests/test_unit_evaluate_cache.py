"""The point evaluator's per-process caches (hwsim.sweep.evaluate): an arch file or trace is read once per file
version — keyed by path, mtime and size — so a file rewritten in place is read again; overrides share one read."""

from __future__ import annotations

import os
from pathlib import Path

from hwsim.arch import ARCH_DIR
from hwsim.sweep import evaluate
from hwsim.sweep.evaluate import cached_arch, given_trace
from hwsim.trace.format import load
from hwsim.trace.synth import synthesize


def _arch_file(tmp_path: Path) -> Path:
    p = tmp_path / "sys.yaml"
    p.write_text((ARCH_DIR / "systolic32.yaml").read_text())
    return p


def _rewrite(p: Path, old: str, new: str, *, mtime_ns: int | None = None) -> None:
    """Replace ``old`` by ``new`` in place; the new mtime is ``mtime_ns`` (default: 1 s later than before)."""
    st = p.stat()
    text = p.read_text()
    assert old in text
    p.write_text(text.replace(old, new, 1))
    t = st.st_mtime_ns + 1_000_000_000 if mtime_ns is None else mtime_ns
    os.utime(p, ns=(t, t))


def test_one_read_per_file_version(tmp_path):
    p = _arch_file(tmp_path)
    arch, base = cached_arch(str(p))
    assert arch.pe_array.rows == 32 and base["pe_array"]["rows"] == 32
    again = cached_arch(str(p))
    assert again[0] is arch  # the same validated Arch: not read and validated a second time


def test_a_file_rewritten_in_place_with_a_new_mtime_is_read_again(tmp_path):
    p = _arch_file(tmp_path)
    first, _ = cached_arch(str(p))
    _rewrite(p, "rows: 32 ", "rows: 16 ")  # same size: only the mtime tells the versions apart
    second, base = cached_arch(str(p))
    assert (first.pe_array.rows, second.pe_array.rows, base["pe_array"]["rows"]) == (32, 16, 16)


def test_a_file_rewritten_with_the_same_mtime_but_a_new_size_is_read_again(tmp_path):
    p = _arch_file(tmp_path)
    before = p.stat().st_mtime_ns
    first, _ = cached_arch(str(p))
    _rewrite(p, "rows: 32 ", "rows: 4 ", mtime_ns=before)  # e.g. a coarse-mtime file system: the size differs
    assert p.stat().st_mtime_ns == before
    assert cached_arch(str(p))[0].pe_array.rows == 4 and first.pe_array.rows == 32


def test_overrides_share_the_files_one_read_and_give_the_file_as_written(tmp_path):
    p = _arch_file(tmp_path)
    arch, base = cached_arch(str(p), {"pe_array.rows": 16, "pe_array.cols": 8})
    assert (arch.pe_array.rows, arch.pe_array.cols) == (16, 8)
    assert (base["pe_array"]["rows"], base["pe_array"]["cols"]) == (32, 32)  # what provenance diffs against
    # the same overrides in another order are the same point: the cached Arch
    assert cached_arch(str(p), {"pe_array.cols": 8, "pe_array.rows": 16})[0] is arch
    assert cached_arch(str(p), None)[0] is cached_arch(str(p), {})[0]
    assert cached_arch(str(p))[0].pe_array.rows == 32  # overrides never leak into the file's own Arch


def test_a_shipped_name_and_its_path_are_one_file():
    by_name, _ = cached_arch("systolic32")
    assert cached_arch(str(ARCH_DIR / "systolic32.yaml"))[0] is by_name


def _tiny(tmp_path: Path, name: str) -> Path:
    return synthesize(tmp_path / name, layers=[{"name": "fc", "kind": "linear", "C": 8, "K": 4}], batch=2)


def test_a_trace_is_loaded_once_and_again_when_its_manifest_changes(tmp_path):
    path = str(_tiny(tmp_path, "t"))
    first = evaluate._trace(path)
    assert evaluate._trace(path) is first
    m = Path(path) / "manifest.json"
    t = m.stat().st_mtime_ns + 1_000_000_000
    os.utime(m, ns=(t, t))  # rewritten in place (same bytes, a new mtime)
    second = evaluate._trace(path)
    assert second is not first and evaluate._trace(path) is second


def test_only_one_trace_is_held_at_a_time(tmp_path):
    a, b = str(_tiny(tmp_path, "a")), str(_tiny(tmp_path, "b"))
    ta = evaluate._trace(a)
    evaluate._trace(b)
    assert len(evaluate._TRACES) == 1  # a sweep over many traces does not pile them up
    assert evaluate._trace(a) is not ta  # a was dropped: loaded again


def test_a_given_trace_is_replayed_itself_inside_and_only_inside(tmp_path):
    path = _tiny(tmp_path, "g")
    mine = load(path)
    with given_trace(mine):
        assert evaluate._trace(str(path)) is mine
        assert evaluate._trace(str(path) + os.sep + ".") is mine  # the same directory, spelled otherwise
    assert evaluate._trace(str(path)) is not mine
    assert not evaluate._GIVEN
