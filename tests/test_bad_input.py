"""Hostile inputs and faults, as a user (or an attacker) meets them: every case is a real ``python -m hwsim``.

Each refusal asserts: exit code 2, one line on stderr naming the culprit (file, field or flag), no
traceback, memory bounded (``RLIMIT_AS`` in the child; 2 GiB, enough for numpy/simpy/matplotlib,
far below what a bomb would take) and every file that existed before is byte-identical after.

How faults are simulated (also in notes/hostile.md):
- full disk (ENOSPC) and read-only file system (EROFS): a real tmpfs (``mount -t tmpfs -o size=…``,
  remounted ``ro``) when the tests may mount (root); otherwise the same cases run with the fault
  injected into the child (``os.open``/``os.mkdir``/``io.open``... raise the errno under that folder);
- permission denied (EACCES): always injected (root ignores file modes);
- FIFOs, device nodes, symlinks: real (``os.mkfifo``, ``os.mknod`` when allowed, ``os.symlink``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import lzma
import os
import resource
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MEM = 2 << 30
SAMPLE = "samples/it0000000.npz.xz"

# The child re-raises an errno for any path under HWSIM_FAULT's folder (see the module docstring).
_INJECT = r"""
import builtins, errno, io, os, runpy, sys
kind, root = os.environ["HWSIM_FAULT"].split(":", 1)
code = getattr(errno, kind)
def guard(fn):
    def f(path, *a, **k):
        if not isinstance(path, int) and os.path.abspath(os.fspath(path)).startswith(root):
            raise OSError(code, os.strerror(code), os.fspath(path))
        return fn(path, *a, **k)
    return f
for name in ("open", "mkdir", "rename", "replace", "makedirs"):
    setattr(os, name, guard(getattr(os, name)))
io.open = builtins.open = guard(builtins.open)
sys.argv = ["hwsim", *sys.argv[1:]]
runpy.run_module("hwsim", run_name="__main__")
"""


def _preexec(mem: int) -> Callable[[], None]:
    def pre() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    return pre


def hwsim(*args: str, cwd: Path, mem: int = MEM, timeout: float = 120, fault: str | None = None
          ) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "hwsim", *args]
    if fault:
        env["HWSIM_FAULT"] = fault
        cmd = [sys.executable, "-c", _INJECT, *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env,
                          preexec_fn=_preexec(mem))


def assert_refused(r: subprocess.CompletedProcess, *needles: str) -> None:
    err = r.stderr
    assert "Traceback" not in err, err
    assert r.returncode == 2, (r.returncode, err, r.stdout[-500:])
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every regular file under ``root`` (symlinks and FIFOs by their own identity)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = "special"
    return out


def assert_intact(before: dict[str, str], root: Path) -> None:
    after = snapshot(root)
    changed = {k for k in before if after.get(k) != before[k]}
    assert not changed, f"files changed or lost: {sorted(changed)}"
    leftovers = [k for k in after if k not in before and (".new-" in k or ".old-" in k or ".tmp" in k)]
    assert not leftovers, leftovers


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tiny_trace(tmp_path_factory) -> Path:
    from hwsim.trace.synth import synthesize
    from hwsim.trace.topology import LayerSpec

    out = tmp_path_factory.mktemp("tiny") / "t"
    synthesize(out, layers=[LayerSpec(name="c1", kind="conv2d", C=2, K=4, H=6, W=6, R=3, S=3),
                            LayerSpec(name="fc", kind="linear", C=64, K=10)], batch=2, seed=1)
    return out


@pytest.fixture(scope="module")
def tiny_result(tmp_path_factory) -> Path:
    sys.path.insert(0, str(Path(__file__).parent))
    from _hwsim_fixtures import make_result

    from hwsim.results import save_results

    p = tmp_path_factory.mktemp("res") / "results.json"
    save_results(make_result(), p)
    return p


@pytest.fixture
def work(tmp_path, tiny_trace, tiny_result) -> Path:
    """A folder holding a copy of the tiny trace (t/) and a results file (results.json)."""
    shutil.copytree(tiny_trace, tmp_path / "t")
    shutil.copy(tiny_result, tmp_path / "results.json")
    return tmp_path


def _man(d: Path) -> dict:
    return json.loads((d / "t" / "manifest.json").read_text())


def _save_man(d: Path, man: dict) -> None:
    (d / "t" / "manifest.json").write_text(json.dumps(man))


def _set_sample(d: Path, data: bytes) -> None:
    (d / "t" / SAMPLE).write_bytes(data)
    man = _man(d)
    man["samples"][0]["sha256"] = hashlib.sha256(data).hexdigest()
    _save_man(d, man)


def _edit(d: Path, fn: Callable[[dict], object]) -> None:
    man = _man(d)
    fn(man)
    _save_man(d, man)


def _npz(arrays: dict[str, bytes]) -> bytes:
    """An .npz whose members are raw .npy bytes (so headers can lie)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for k, v in arrays.items():
            zf.writestr(f"{k}.npy", v)
    return buf.getvalue()


def _npy_header(shape: tuple[int, ...], dtype: str = "|u1") -> bytes:
    hdr = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    hdr += b" " * ((64 - (10 + len(hdr) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little") + hdr


@functools.lru_cache(maxsize=2)
def _big_zeros_xz(nbytes: int) -> bytes:
    c = lzma.LZMACompressor(preset=0)
    chunk = bytes(1 << 22)
    parts = [c.compress(chunk) for _ in range(nbytes >> 22)]
    return b"".join(parts) + c.flush()


# ----------------------------------------------------------------------------- traces that reach outside


def _outside_copy(d: Path) -> Path:
    """The real sample, copied outside the trace: its checksum still matches, so only confinement stops it."""
    out = d / "outside"
    out.mkdir()
    shutil.copy(d / "t" / SAMPLE, out / "it0000000.npz.xz")
    return out


def c_dotdot(d):
    _outside_copy(d)
    _edit(d, lambda m: m["samples"][0].__setitem__("file", "../outside/it0000000.npz.xz"))
    return ["inspect", "t"], ["samples[0].file", "not allowed"]


def c_absolute(d):
    out = _outside_copy(d)
    _edit(d, lambda m: m["samples"][0].__setitem__("file", str(out / "it0000000.npz.xz")))
    return ["inspect", "t"], ["samples[0].file", "not allowed"]


def c_subfolder(d):
    _edit(d, lambda m: m["samples"][0].__setitem__("file", "samples/../samples/it0000000.npz.xz"))
    return ["simulate", "t", "--arch", "scnn", "--out", "r.json"], ["samples[0].file", "not allowed"]


def c_symlink_file_out(d):
    out = _outside_copy(d)
    (d / "t" / SAMPLE).unlink()
    os.symlink(out / "it0000000.npz.xz", d / "t" / SAMPLE)
    return ["inspect", "t"], ["outside the trace's samples/ folder"]


def c_symlink_dir_out(d):
    out = _outside_copy(d)
    shutil.rmtree(d / "t" / "samples")
    os.symlink(out, d / "t" / "samples")
    return ["simulate", "t", "--arch", "scnn", "--out", "r.json"], ["outside the trace's samples/ folder"]


def c_fifo_sample(d):
    (d / "t" / SAMPLE).unlink()
    os.mkfifo(d / "t" / SAMPLE)
    return ["inspect", "t"], [SAMPLE, "not a regular file"]


def c_device_sample(d):
    (d / "t" / SAMPLE).unlink()
    try:
        os.mknod(d / "t" / SAMPLE, 0o644 | 0o020000, os.makedev(1, 5))  # /dev/zero's numbers
        return ["inspect", "t"], [SAMPLE, "not a regular file"]
    except OSError:  # no CAP_MKNOD: the same device reached through a symlink is refused as outside
        os.symlink("/dev/zero", d / "t" / SAMPLE)
        return ["inspect", "t"], [SAMPLE, "outside"]


def c_symlink_devzero(d):
    (d / "t" / SAMPLE).unlink()
    os.symlink("/dev/zero", d / "t" / SAMPLE)
    return ["simulate", "t", "--arch", "scnn", "--out", "r.json"], [SAMPLE, "outside"]


def c_manifest_devzero(d):
    (d / "t" / "manifest.json").unlink()
    os.symlink("/dev/zero", d / "t" / "manifest.json")
    return ["inspect", "t"], ["manifest.json", "not a regular file"]


def c_manifest_fifo(d):
    (d / "t" / "manifest.json").unlink()
    os.mkfifo(d / "t" / "manifest.json")
    return ["report", "t", "--out", "rep"], ["manifest.json", "not a regular file"]


# ----------------------------------------------------------------------------- memory bombs


def c_lzma_bomb(d):
    _set_sample(d, _big_zeros_xz(64 << 20))
    return ["inspect", "t"], [SAMPLE, "decompresses to more than"]


def c_npz_declares_1e12(d):
    man = _man(d)
    fields = man["samples"][0]["layers"]
    arrays = {"c1/dz_mask": _npy_header((10**12,)) + bytes(64)}
    for nm in fields:
        for k in ("dz_levels", "a_mask"):
            arrays.setdefault(f"{nm}/{k}", _npy_header((0,)))
    _set_sample(d, lzma.compress(_npz(arrays)))
    return ["inspect", "t"], ["c1/dz_mask", "declares shape (1000000000000,)"]


def c_npz_member_oversize(d):
    arrays = {"c1/a_mask": _npy_header((5000,)) + bytes(5000)}  # within the file bound, not the array's
    _set_sample(d, lzma.compress(_npz(arrays)))
    return ["simulate", "t", "--arch", "scnn", "--out", "r.json"], ["c1/a_mask", "more than"]


def c_sample_file_oversize(d):
    data = (d / "t" / SAMPLE).read_bytes() + os.urandom(1 << 20)
    _set_sample(d, data)
    return ["inspect", "t"], [SAMPLE, "more than the limit"]


def c_geometry_huge(d):
    _edit(d, lambda m: m["layers"][1].update(N=10**6, C=10**6, batch_size=0))
    return ["inspect", "t"], ["field 'layers[1]'", "exceeds the limit", "268,435,456"]


def c_sample_geometry_huge(d):
    _edit(d, lambda m: m["samples"][0]["layers"]["fc"]["geometry"].update(N=10**7, batch_size=0))
    return ["simulate", "t", "--arch", "scnn", "--out", "r.json"], ["samples[0].layers.fc.geometry", "exceeds the limit"]


def c_nnz_out_of_range(d):
    _edit(d, lambda m: m["samples"][0]["layers"]["fc"].__setitem__("nnz", 10**12))
    return ["inspect", "t"], ["samples[0].layers.fc.nnz", "outside"]


def c_manifest_deep_json(d):
    (d / "t" / "manifest.json").write_text("[" * 200_000 + "]" * 200_000)
    return ["inspect", "t"], ["manifest.json", "nested too deeply"]


_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))


def c_arch_alias_bomb(d):
    (d / "bomb.yaml").write_text("version: 1\nname: bomb\n" + _BOMB)
    return ["validate", "bomb.yaml"], ["bomb.yaml", "alias bomb", "limit"]


def c_sweep_alias_bomb(d):
    (d / "bomb.yaml").write_text(_BOMB + "version: 1\narch: scnn\ngrid: {pe.mac_bits: [8]}\ntraces: [t]\n")
    return ["sweep", "bomb.yaml", "--out", "sw", "--dry-run"], ["bomb.yaml", "alias bomb", "limit"]


def c_arch_deep_yaml(d):
    (d / "deep.yaml").write_text("version: 1\nname: " + "[" * 5000 + "]" * 5000 + "\n")
    return ["validate", "deep.yaml"], ["deep.yaml", "nested more than", "limit"]


def c_sweep_deep_yaml(d):
    (d / "deep.yaml").write_text("version: 1\narch: scnn\ngrid: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n")
    return ["sweep", "deep.yaml", "--out", "sw", "--dry-run"], ["deep.yaml", "nested more than"]


def c_yaml_too_big(d):
    (d / "big.yaml").write_text("version: 1\n# " + "x" * (2 << 20) + "\n")
    return ["validate", "big.yaml"], ["big.yaml", "more than the limit"]


def c_sweep_billion_points(d):
    grid = "\n".join(f"  k{i}: [{', '.join(str(j) for j in range(10))}]" for i in range(9))
    (d / "huge.yaml").write_text(f"version: 1\narch: scnn\ngrid:\n{grid}\ntraces: [t]\n")
    return ["sweep", "huge.yaml", "--out", "sw", "--dry-run"], ["1,000,000,000 points", "limit of 10,000", "--max-points"]


def c_sweep_over_max_points(d):
    (d / "s.yaml").write_text("version: 1\narch: scnn\ngrid: {pe.mac_bits: [8, 16], pe_array.rows: [2, 4, 8]}\n"
                              "traces: [t]\n")
    return ["sweep", "s.yaml", "--out", "sw", "--dry-run", "--max-points", "5"], ["6 points", "limit of 5"]


def c_pe_array_absurd(d):
    return ["validate", "scnn", "--set", "pe_array.rows=100000000", "--set", "pe_array.cols=100000000"], \
        ["pe_array", "exceeds the limit of 65,536"]


def c_pe_array_absurd_simulate(d):
    return ["simulate", "t", "--arch", "scnn", "--set", "pe_array.rows=1000000", "--out", "r.json"], \
        ["pe_array", "exceeds the limit"]


def c_mult_absurd(d):
    return ["validate", "scnn", "--set", "pe.mult_f=100000"], ["pe.mult_f", "exceeds the limit of 256"]


# ----------------------------------------------------------------------------- malformed manifests / results / sweeps


def _log(d: Path) -> list[bytes]:
    return (d / "t" / "iterations.jsonl").read_bytes().splitlines(keepends=True)


def _save_log(d: Path, lines: list[bytes], *, declare: bool = True) -> None:
    """Write iterations.jsonl; ``declare``: make the manifest's iteration_log entry match (so the checksum passes)."""
    data = b"".join(lines)
    (d / "t" / "iterations.jsonl").write_bytes(data)
    if declare:
        _edit(d, lambda m: m.__setitem__("iteration_log", {"file": "iterations.jsonl", "lines": len(lines),
                                                            "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}))


def _edit_record(d: Path, i: int, fn: Callable[[dict], object]) -> None:
    lines = _log(d)
    rec = json.loads(lines[i])
    fn(rec)
    lines[i] = json.dumps(rec).encode() + b"\n"
    _save_log(d, lines)


def _to_v2(d: Path) -> None:
    """Rewrite the (version 3) tiny trace in the version 2 layout: iterations inside the manifest."""
    its = [json.loads(x) for x in _log(d)]
    (d / "t" / "iterations.jsonl").unlink()
    man = _man(d)
    man.pop("iteration_log")
    man.update(version=2, iterations=its)
    _save_man(d, man)


def c_v2_iterations_not_objects(d):
    _to_v2(d)
    _edit(d, lambda m: m.__setitem__("iterations", [1, 2]))
    return ["inspect", "t"], ["manifest.json", "field 'iterations[0]'", "must be an object"]


def c_v2_density_abc(d):
    _to_v2(d)
    _edit(d, lambda m: m["iterations"][0]["layers"]["c1"].__setitem__("density", "abc"))
    return ["inspect", "t"], ["manifest.json", "iterations[0].layers.c1.density", "'abc'"]


def c_v2_density_abc_report(d):
    _to_v2(d)
    _edit(d, lambda m: m["iterations"][0]["layers"]["c1"].__setitem__("density", "abc"))
    return ["report", "t", "--out", "rep"], ["manifest.json", "iterations[0].layers.c1.density"]


def c_log_density_abc(d):
    _edit_record(d, 0, lambda r: r["layers"]["c1"].__setitem__("density", "abc"))
    return ["inspect", "t"], ["iterations.jsonl: line 1", "field 'layers.c1.density'", "'abc'"]


def c_log_density_abc_report(d):
    _edit_record(d, 0, lambda r: r["layers"]["c1"].__setitem__("density", "abc"))
    return ["report", "t", "--out", "rep"], ["iterations.jsonl: line 1", "layers.c1.density"]


def c_log_line_not_object(d):
    _save_log(d, [b"[1, 2]\n"])
    return ["inspect", "t"], ["iterations.jsonl: line 1", "must be an object"]


def c_log_line_not_json(d):
    _save_log(d, [b'{"index": 0, "loss\n'])
    return ["inspect", "t"], ["iterations.jsonl: line 1", "not a JSON object"]


def c_log_torn_line_of_complete_trace(d):
    lines = _log(d)
    _save_log(d, lines, declare=True)
    (d / "t" / "iterations.jsonl").write_bytes(b"".join(lines) + lines[0][:20])  # a tail the manifest never declared
    return ["inspect", "t"], ["iterations.jsonl", "holds more than the 1 lines", "complete trace"]


def c_log_huge_line(d):
    with open(d / "t" / "iterations.jsonl", "ab") as f:
        f.write(b'{"index": 1, "x": "' + b"x" * (17 << 20))  # no line end: bounded read, not a 17 MB parse
    _edit(d, lambda m: m.__setitem__("complete", False))
    return ["inspect", "t"], ["iterations.jsonl: line 2 is longer than the limit"]


def c_log_truncated(d):
    data = (d / "t" / "iterations.jsonl").read_bytes()
    (d / "t" / "iterations.jsonl").write_bytes(data[: len(data) // 2])
    return ["inspect", "t"], ["iterations.jsonl", "truncated"]


def c_log_checksum(d):
    p = d / "t" / "iterations.jsonl"
    p.write_bytes(p.read_bytes().replace(b'"index":0', b'"index":7'))
    return ["inspect", "t"], ["iterations.jsonl", "checksum mismatch", "iteration_log.sha256"]


def c_log_missing(d):
    (d / "t" / "iterations.jsonl").unlink()
    return ["inspect", "t"], ["iterations.jsonl", "missing"]


def c_log_fifo(d):
    (d / "t" / "iterations.jsonl").unlink()
    os.mkfifo(d / "t" / "iterations.jsonl")
    return ["report", "t", "--out", "rep"], ["iterations.jsonl", "not a regular file"]


def c_log_symlink_devzero(d):
    (d / "t" / "iterations.jsonl").unlink()
    os.symlink("/dev/zero", d / "t" / "iterations.jsonl")
    return ["inspect", "t"], ["iterations.jsonl", "symlinks are refused"]


def c_log_entry_lines_abc(d):
    _edit(d, lambda m: m["iteration_log"].__setitem__("lines", "abc"))
    return ["inspect", "t"], ["manifest.json", "iteration_log.lines", "'abc'"]


def c_log_entry_elsewhere(d):
    _edit(d, lambda m: m["iteration_log"].__setitem__("file", "../../etc/passwd"))
    return ["inspect", "t"], ["manifest.json", "iteration_log.file", "not allowed"]


def c_log_entry_missing(d):
    _edit(d, lambda m: m.pop("iteration_log"))
    return ["inspect", "t"], ["manifest.json", "'iteration_log' is missing"]


def c_future_version_inspect(d):
    _edit(d, lambda m: m.__setitem__("version", 99))
    return ["inspect", "t"], ["manifest.json", "'version' is 99"]


def c_future_version_report(d):
    _edit(d, lambda m: m.__setitem__("version", 99))
    return ["report", "t", "--out", "rep"], ["manifest.json", "'version' is 99"]


def c_w_density_abc(d):
    _edit(d, lambda m: m["samples"][0]["layers"]["fc"].__setitem__("w_density", "abc"))
    return ["simulate", "t", "--arch", "scnn", "--out", "r.json"], ["samples[0].layers.fc.w_density", "'abc'"]


def c_meta_s_abc(d):
    _edit(d, lambda m: m["meta"].__setitem__("s", "abc"))
    return ["inspect", "t"], ["manifest.json", "field 'meta.s'", "'abc'"]


def c_manifest_not_json(d):
    (d / "t" / "manifest.json").write_text('{"format": "hwsim-trace", ')
    return ["inspect", "t"], ["manifest.json", "not valid JSON"]


def c_trace_is_a_file(d):
    (d / "f").write_text("x")
    return ["inspect", "f"], ["f: is not a directory"]


def _result_edit(d: Path, fn: Callable[[dict], object]) -> None:
    r = json.loads((d / "results.json").read_text())
    fn(r)
    (d / "results.json").write_text(json.dumps(r))


def c_result_layer_not_object(d):
    _result_edit(d, lambda r: r["layers"].__setitem__(0, 5))
    return ["report", "results.json", "--out", "rep"], ["results.json", "layers[0]", "must be an object"]


def c_result_cycles_abc(d):
    _result_edit(d, lambda r: r["layers"][0]["sparse"].__setitem__("cycles", "abc"))
    return ["report", "results.json", "--out", "rep"], ["results.json", "layers[0].sparse.cycles", "'abc'"]


def c_result_trace_list(d):
    _result_edit(d, lambda r: r.__setitem__("trace", [1]))
    return ["report", "results.json", "--out", "rep"], ["results.json", "field 'trace' must be an object"]


def c_result_not_json(d):
    (d / "results.json").write_text('{"layers": [')
    return ["report", "results.json", "--out", "rep"], ["results.json", "not valid JSON"]


def c_result_not_utf8(d):
    (d / "results.json").write_bytes(b'{"a": "\xff\xfe"}')
    return ["report", "results.json", "--out", "rep"], ["results.json", "not UTF-8"]


def c_report_input_fifo(d):
    os.mkfifo(d / "pipe.json")
    return ["report", "pipe.json", "--out", "rep"], ["pipe.json", "not a regular file"]


def _sweep_summary(d: Path, **kw) -> None:
    (d / "sw").mkdir()
    doc = {"sweep": {"name": "s"}, "parameters": ["pe.mac_bits"], "rows": [{"pe.mac_bits": 8, "speedup_sparse": 2.0}]}
    doc.update(kw)
    (d / "sw" / "sweep.json").write_text(json.dumps(doc))


def c_sweep_rows_not_list(d):
    _sweep_summary(d, rows="abc")
    return ["report", "sw", "--out", "rep"], ["sweep.json", "field 'rows' must be a list"]


def c_sweep_row_value_abc(d):
    _sweep_summary(d, rows=[{"speedup_sparse": "fast"}])
    return ["report", "sw", "--out", "rep"], ["sweep.json", "rows[0].speedup_sparse", "'fast'"]


def c_sweep_parameters_bad(d):
    _sweep_summary(d, parameters=[1, 2])
    return ["report", "sw", "--out", "rep"], ["sweep.json", "field 'parameters'"]


# ----------------------------------------------------------------------------- YAML content


def _scnn_text() -> str:
    return (REPO / "arch_configs" / "scnn.yaml").read_text()


def c_arch_not_utf8(d):
    (d / "a.yaml").write_bytes(_scnn_text().encode() + b"\n# caf\xe9\n")
    return ["validate", "a.yaml"], ["a.yaml", "not UTF-8"]


def c_arch_duplicate_key(d):
    (d / "a.yaml").write_text(_scnn_text() + "\nclock_ghz: 2.0\n")
    return ["validate", "a.yaml"], ["a.yaml", "duplicate key 'clock_ghz'"]


def c_arch_unknown_key_did_you_mean(d):
    (d / "a.yaml").write_text(_scnn_text().replace("pe_array:", "pe_aray:", 1))
    return ["validate", "a.yaml"], ["a.yaml", "pe_aray", "did you mean 'pe_array'"]


def c_arch_python_tag(d):
    (d / "a.yaml").write_text("!!python/object/apply:os.system ['true']\n")
    return ["validate", "a.yaml"], ["a.yaml", "not valid YAML"]


def c_arch_is_directory(d):
    (d / "adir.yaml").mkdir()
    return ["validate", "adir.yaml"], ["adir.yaml", "is a directory"]


def c_arch_name_typo(d):
    return ["validate", "scnnn"], ["scnnn", "did you mean 'scnn'"]


def _sweep_text(extra: str = "") -> str:
    return "version: 1\narch: scnn\ngrid: {pe.mac_bits: [8, 16]}\ntraces: [t]\n" + extra


def c_sweep_duplicate_key(d):
    (d / "s.yaml").write_text(_sweep_text("arch: scnn16\n"))
    return ["sweep", "s.yaml", "--out", "sw", "--dry-run"], ["s.yaml", "duplicate key 'arch'"]


def c_sweep_unknown_key_did_you_mean(d):
    (d / "s.yaml").write_text(_sweep_text().replace("grid:", "gird:"))
    return ["sweep", "s.yaml", "--out", "sw", "--dry-run"], ["s.yaml", "'gird'", "did you mean 'grid'"]


def c_sweep_synthetic_typo(d):
    (d / "s.yaml").write_text(_sweep_text().replace("traces: [t]", "traces: [{synthetic: {model: lenet5, densty: 0.1}}]"))
    return ["sweep", "s.yaml", "--out", "sw", "--dry-run"], ["synthetic", "'densty'", "did you mean 'density'"]


def c_sweep_synthetic_unknown_model(d):
    (d / "s.yaml").write_text(_sweep_text().replace("traces: [t]", "traces: [{synthetic: {model: lenet6}}]"))
    return ["sweep", "s.yaml", "--out", "sw", "--dry-run"], ["s.yaml", "traces[0].synthetic", "'lenet6'", "lenet5"]


def c_synth_unknown_model(d):
    return ["synth", "--model", "lenet6", "--out", "t"], ["--model", "'lenet6'", "allowed", "lenet5"]


def c_sweep_not_utf8(d):
    (d / "s.yaml").write_bytes(_sweep_text().encode() + b"# \xff\n")
    return ["sweep", "s.yaml", "--out", "sw", "--dry-run"], ["s.yaml", "not UTF-8"]


def c_sweep_is_directory(d):
    (d / "sdir").mkdir()
    return ["sweep", "sdir", "--out", "sw"], ["sdir", "is a directory"]


def c_sweep_override_typo(d):
    (d / "s.yaml").write_text(_sweep_text().replace("pe.mac_bits", "pe.mac_bitz"))
    return ["sweep", "s.yaml", "--out", "sw", "--dry-run"], ["pe.mac_bitz", "did you mean 'mac_bits'"]


def c_scalesim_csv_devzero(d):
    return ["synth", "--scalesim-csv", "/dev/zero", "--out", "s"], ["/dev/zero", "not a regular file"]


def c_arch_devzero(d):
    return ["simulate", "t", "--arch", "/dev/zero", "--out", "r.json"], ["/dev/zero", "not a regular file"]


def c_per_layer_json_fifo(d):
    os.mkfifo(d / "p.json")
    return ["synth", "--model", "lenet5", "--per-layer-json", "p.json", "--out", "s"], ["--per-layer-json", "p.json"]


def c_synth_batch_too_big(d):
    return ["synth", "--model", "vgg16", "--batch", "60000", "--out", "s"], ["vgg16", "exceeds the limit"]


def c_sweep_synthetic_batch_too_big(d):
    (d / "s.yaml").write_text(_sweep_text().replace("traces: [t]", "traces: [{synthetic: {model: resnet18, batch: 50000}}]"))
    return ["sweep", "s.yaml", "--out", "sw", "--dry-run"], ["s.yaml", "resnet18", "exceeds the limit"]


# ----------------------------------------------------------------------------- --set values


def c_set_python_tag(d):
    return ["validate", "scnn", "--set", "pe.mac_bits=!!python/object/apply:os.system [true]"], \
        ["--set pe.mac_bits", "uses a YAML tag"]


def c_set_plain_tag(d):
    return ["validate", "scnn", "--set", "pe.mac_bits=!!str 16"], ["--set pe.mac_bits", "uses a YAML tag"]


def c_set_alias(d):
    return ["validate", "scnn", "--set", "pe.mac_bits=&a 16"], ["--set pe.mac_bits", "uses a YAML anchor"]


def c_set_broken_yaml(d):
    return ["simulate", "t", "--arch", "scnn", "--set", "pe.mac_bits=[8,", "--out", "r.json"], \
        ["--set pe.mac_bits", "not valid YAML"]


def c_set_no_equals(d):
    return ["validate", "scnn", "--set", "pe.mac_bits"], ["pe.mac_bits", "key.path=value"]


def c_set_empty_key(d):
    return ["validate", "scnn", "--set", "=16"], ["empty key path"]


def c_set_unknown_path(d):
    return ["validate", "scnn", "--set", "pe.mac_bitz=8"], ["pe.mac_bitz", "did you mean 'mac_bits'"]


def c_set_wrong_type(d):
    return ["compare", "t", "--arch", "scnn", "--set", "pe.mac_bits=[1, 2]"], ["pe.mac_bits"]


# ----------------------------------------------------------------------------- flags


def _flag(args: list[str], needles: list[str]) -> Callable[[Path], tuple[list[str], list[str]]]:
    def case(d):
        return args, needles
    return case


FLAG_CASES = {
    "threads_negative": (["trace", "--model", "lenet5", "--threads", "-1"], ["--threads", "-1", "1..1024"]),
    "limit_train_zero": (["trace", "--model", "lenet5", "--limit-train", "0"], ["--limit-train", "0", ">= 1"]),
    "lr_nan": (["trace", "--model", "lenet5", "--lr", "nan"], ["--lr", "finite"]),
    "momentum_one": (["trace", "--model", "lenet5", "--momentum", "1"], ["--momentum", "[0, 1)"]),
    "s_inf": (["trace", "--model", "lenet5", "--s", "inf"], ["--s/--scale", "inf"]),
    "epochs_text": (["trace", "--model", "lenet5", "--epochs", "many"], ["--epochs", "'many' is not an integer"]),
    "abbreviated_flag": (["trace", "--model", "lenet5", "--epoch", "2"], ["--epoch", "did you mean '--epochs'"]),
    "command_typo": (["simualte", "t"], ["simualte", "did you mean 'simulate'"]),
    "flag_typo_not_required": (["simulate", "t", "--arhc", "scnn"], ["--arhc", "did you mean '--arch'"]),
    "jobs_zero": (["sweep", "s.yaml", "--out", "sw", "--jobs", "0"], ["--jobs", "0"]),
    "timeout_negative": (["sweep", "s.yaml", "--out", "sw", "--timeout", "-1"], ["--timeout", "-1"]),
    "max_points_zero": (["sweep", "s.yaml", "--out", "sw", "--max-points", "0"], ["--max-points", "0"]),
    "dpi_tiny": (["report", "results.json", "--out", "rep", "--dpi", "10"], ["--dpi", "10", "50..600"]),
    "iteration_negative": (["simulate", "t", "--arch", "scnn", "--iteration", "-3"], ["--iteration", "-3"]),
    "dz_density_above_one": (["synth", "--model", "lenet5", "--out", "s", "--dz-density", "1.5"], ["--dz-density", "1.5"]),
    "batch_zero": (["synth", "--model", "lenet5", "--out", "s", "--batch", "0"], ["--batch", "0"]),
    "synth_seq_on_cnn": (["synth", "--model", "lenet5", "--seq", "64", "--out", "s"],
                         ["--seq", "--model lenet5", "allowed with --model gpt2_small"]),
    "synth_blocks_on_csv": (["synth", "--scalesim-csv", "x.csv", "--blocks", "2", "--out", "s"],
                            ["--blocks", "--scalesim-csv", "allowed with --model gpt2_small"]),
    "synth_seq_zero": (["synth", "--model", "gpt2_small", "--seq", "0", "--out", "s"], ["--seq", "0", "1..1048576"]),
    "synth_heads_not_divisor": (["synth", "--model", "gpt2_small", "--heads", "7", "--out", "s"],
                                ["--heads", "7", "hidden size 768", "allowed: 1, 2, 3, 4, 6, 8"]),
    "synth_kv_heads_not_divisor": (["synth", "--model", "llama_block", "--kv-heads", "3", "--out", "s"],
                                   ["--kv-heads", "3", "32 query heads", "allowed: 1, 2, 4, 8, 16, 32"]),
    "synth_vit_seq": (["synth", "--model", "vit_b16", "--seq", "64", "--out", "s"], ["--seq", "vit_b16", "197 tokens"]),
    "synth_per_kind_unknown": (["synth", "--model", "gpt2_small", "--per-kind-json", '{"atn": {"a": 0.5}}', "--out", "s"],
                               ["--per-kind-json", "'atn'", "proj, attn, mlp, other"]),
    "synth_per_kind_density": (["synth", "--model", "gpt2_small", "--per-kind-json", '{"mlp": {"dz": 2}}', "--out", "s"],
                               ["--per-kind-json", "mlp.dz", "[0, 1]"]),
    "synth_densities_from_missing": (["synth", "--model", "gpt2_small", "--densities-from", "nosuch", "--out", "s"],
                                     ["--densities-from", "nosuch"]),
    "synth_transformer_too_big": (["synth", "--model", "gpt2_small", "--seq", "1024", "--batch", "512", "--out", "s"],
                                  ["--model/--batch/--seq", "gpt2_small", "h.0.attn.c_attn", "exceeds the limit"]),
    "experiment_threads": (["experiment", "meprop", "--threads", "0"], ["--threads", "0"]),
    "experiment_abbrev": (["experiment", "meprop", "--thread", "2"], ["--thread", "did you mean '--threads'"]),
}


# ----------------------------------------------------------------------------- outputs: overwrite policy, wrong kinds


def c_simulate_refuses_existing(d):
    return ["simulate", "t", "--arch", "scnn", "--out", "results.json"], ["results.json", "already exists", "--overwrite"]


def c_compare_csv_refuses_existing(d):
    (d / "c.csv").write_text("old\n")
    return ["compare", "t", "--arch", "scnn", "--csv", "c.csv"], ["--csv c.csv", "already exists"]


def c_synth_refuses_existing(d):
    return ["synth", "--model", "lenet5", "--out", "t"], ["--out t", "already exists", "--overwrite"]


def c_synth_overwrite_failure_keeps_old(d):
    return ["synth", "--model", "nosuchmodel", "--out", "t", "--overwrite"], ["nosuchmodel"]


def c_report_refuses_existing(d):
    (d / "rep").mkdir()
    (d / "rep" / "index.html").write_text("<p>previous report</p>")
    return ["report", "results.json", "--out", "rep"], ["--out rep", "already exists", "--overwrite"]


def c_report_overwrite_bad_input_keeps_old(d):
    (d / "rep").mkdir()
    (d / "rep" / "index.html").write_text("<p>previous report</p>")
    (d / "bad.json").write_text("[1]")
    return ["report", "bad.json", "--out", "rep", "--overwrite"], ["bad.json"]


def c_trace_s_inf_overwrite_keeps_trace(d):
    return ["trace", "--model", "lenet5", "--s", "inf", "--overwrite", "--out", "t"], ["--s/--scale"]


def c_trace_refuses_existing(d):
    return ["trace", "--model", "lenet5", "--out", "t"], ["--out t", "already exists", "--overwrite"]


def c_sweep_other_sweeps_dir(d):
    (d / "s.yaml").write_text(_sweep_text())
    (d / "sw").mkdir()
    (d / "sw" / "sweep_spec.json").write_text(json.dumps({"name": "another", "version": 1}))
    return ["sweep", "s.yaml", "--out", "sw"], ["--out sw", "another sweep", "--overwrite"]


def c_simulate_out_under_a_file(d):
    return ["simulate", "t", "--arch", "scnn", "--out", "results.json/r.json"], ["results.json", "is a file"]


def c_simulate_out_is_dir(d):
    return ["simulate", "t", "--arch", "scnn", "--out", "t"], ["--out t", "is a directory"]


def c_report_out_is_file(d):
    return ["report", "results.json", "--out", "results.json"], ["results.json", "is a file"]


def c_synth_out_is_file(d):
    return ["synth", "--model", "lenet5", "--out", "results.json"], ["results.json", "is a file"]


def c_trace_out_is_file(d):
    return ["trace", "--model", "lenet5", "--out", "results.json"], ["results.json", "is a file"]


def c_sweep_out_is_file(d):
    (d / "s.yaml").write_text(_sweep_text())
    return ["sweep", "s.yaml", "--out", "results.json"], ["results.json", "is a file"]


CASES = {k[2:]: v for k, v in globals().items() if k.startswith("c_") and callable(v)}
CASES.update({k: _flag(*v) for k, v in FLAG_CASES.items()})


@pytest.mark.parametrize("name", sorted(CASES))
def test_refused_cleanly(work, name):
    args, needles = CASES[name](work)
    before = snapshot(work)
    r = hwsim(*args, cwd=work, timeout=60)
    assert_refused(r, *needles)
    assert_intact(before, work)


def test_at_least_sixty_cases():
    assert len(CASES) >= 60


# ----------------------------------------------------------------------------- full, read-only, forbidden locations


@contextlib.contextmanager
def _mounted(d: Path, *, size: str, ro: bool = False, fill_leaving: int | None = None,
             prepare: Callable[[Path], None] | None = None) -> Iterator[tuple[Path, str | None]]:
    """A real tmpfs at ``d`` (yields (d, None)), or (d, fault) when mounting is not allowed."""
    d.mkdir()
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)],
                        capture_output=True).returncode == 0 if hasattr(os, "geteuid") and os.geteuid() == 0 else False
    try:
        if prepare:
            prepare(d)
        fault = None
        if ok and fill_leaving is not None:
            free = os.statvfs(d).f_bavail * os.statvfs(d).f_frsize
            with open(d / ".filler", "wb") as f:
                f.write(bytes(max(0, free - fill_leaving)))
        if ok and ro:
            ok = subprocess.run(["mount", "-o", "remount,ro", str(d)], capture_output=True).returncode == 0
        if not ok:
            fault = ("EROFS" if ro else "ENOSPC") + ":" + str(d.resolve())
        yield d, fault
    finally:
        if ok or d.is_mount():
            subprocess.run(["umount", "-l", str(d)], capture_output=True)


def _prev_report(d: Path) -> None:
    (d / "rep" / "figures").mkdir(parents=True)
    (d / "rep" / "index.html").write_text("<p>previous report</p>")
    (d / "rep" / "figures" / "old.png").write_bytes(os.urandom(2000))


FAULT_CASES = {
    # name: (ro?, command args with {m} = the mount, needles)
    "simulate_ro": (True, ["simulate", "t", "--arch", "scnn", "--out", "{m}/r.json"], ["read-only"]),
    "synth_ro": (True, ["synth", "--model", "lenet5", "--out", "{m}/s"], ["read-only"]),
    "report_ro": (True, ["report", "results.json", "--out", "{m}/rep2"], ["read-only"]),
    "sweep_ro": (True, ["sweep", "s.yaml", "--out", "{m}/sw"], ["read-only"]),
    "trace_ro": (True, ["trace", "--model", "lenet5", "--out", "{m}/tr"], ["read-only"]),
    "simulate_full": (False, ["simulate", "t", "--arch", "scnn", "--quiet", "--out", "{m}/r.json"], ["no space left"]),
    "synth_full_overwrite": (False, ["synth", "--model", "lenet5", "--out", "{m}/old", "--overwrite"], ["no space left"]),
    "report_full_keeps_previous": (False, ["report", "results.json", "--out", "{m}/rep", "--overwrite"], ["no space left"]),
}


@pytest.mark.parametrize("name", sorted(FAULT_CASES))
def test_full_or_read_only_location(work, name):
    ro, args, needles = FAULT_CASES[name]
    (work / "s.yaml").write_text(_sweep_text())

    def prepare(m: Path) -> None:
        shutil.copytree(work / "t", m / "old")
        _prev_report(m)

    with _mounted(work / "m", size="384k", ro=ro, fill_leaving=None if ro else 2048, prepare=prepare) as (m, fault):
        before = snapshot(work)
        r = hwsim(*[a.format(m=m) for a in args], cwd=work, fault=fault)
        assert_refused(r, str(m), *needles)
        assert_intact(before, work)


def test_permission_denied_is_one_line(work):
    """EACCES cannot be produced with modes as root: injected into the child for paths under ``denied/``."""
    (work / "denied").mkdir()
    before = snapshot(work)
    r = hwsim("simulate", "t", "--arch", "scnn", "--out", "denied/r.json", cwd=work,
              fault=f"EACCES:{(work / 'denied').resolve()}")
    assert_refused(r, "denied", "permission denied")
    assert_intact(before, work)


# ----------------------------------------------------------------------------- replacements that succeed


def test_report_overwrite_replaces_whole_folder(work):
    """A stale figure from a previous run does not survive a re-run with --overwrite."""
    _prev_report(work)
    r = hwsim("report", "results.json", "--out", "rep", "--overwrite", "--dpi", "50", "--quiet", cwd=work, timeout=300)
    assert r.returncode == 0, r.stderr
    assert not (work / "rep" / "figures" / "old.png").exists()
    assert "previous report" not in (work / "rep" / "index.html").read_text()
    assert [p.name for p in work.iterdir() if p.name.startswith(".")] == []


def test_simulate_overwrite_replaces_results(work):
    old = (work / "results.json").read_bytes()
    r = hwsim("simulate", "t", "--arch", "scnn", "--out", "results.json", "--overwrite", "--quiet", cwd=work)
    assert r.returncode == 0, r.stderr
    new = json.loads((work / "results.json").read_text())
    assert (work / "results.json").read_bytes() != old and new["arch"]["name"] == "scnn"


def test_synth_overwrite_swaps_in_a_complete_trace(work):
    before = json.loads((work / "t" / "manifest.json").read_text())
    r = hwsim("synth", "--model", "lenet5", "--out", "t", "--overwrite", "--seed", "3", cwd=work)
    assert r.returncode == 0, r.stderr
    after = json.loads((work / "t" / "manifest.json").read_text())
    assert after["complete"] and after["meta"]["model"] == "lenet5" != before["meta"].get("model")
    assert [p.name for p in work.iterdir() if p.name.startswith(".")] == []


def test_trace_manifest_is_marked_failed_after_enospc(tmp_path):
    """A real capture into a full tmpfs: the manifest must not stay 'running' (needs torch: 8 GiB limit)."""
    with _mounted(tmp_path / "m", size="256k", fill_leaving=24 << 10) as (m, fault):
        if fault:  # no real full disk: the writer's first manifest would fail too; nothing to mark
            pytest.skip("needs a mountable tmpfs (root) to fill a disk part-way")
        r = hwsim("trace", "--model", "lenet300", "--epochs", "1", "--limit-train", "256", "--batch-size", "32",
                  "--sample-every", "1", "--threads", "1", "--quiet", "--out", str(m / "tr"), cwd=tmp_path,
                  mem=8 << 30, timeout=300)
        assert_refused(r, str(m / "tr"), "no space left")
        man = json.loads((m / "tr" / "manifest.json").read_text())
        assert man["status"] == "failed" and man["complete"] is False


def test_mark_status_in_place_needs_no_new_space(tmp_path):
    from hwsim._io import mark_status_in_place

    p = tmp_path / "m.json"
    p.write_text(json.dumps({"a": 1, "status": "running", "complete": False}, separators=(",", ":")))
    size = p.stat().st_size
    assert mark_status_in_place(p) and p.stat().st_size == size
    assert json.loads(p.read_text())["status"] == "failed"
    assert not mark_status_in_place(p)  # already marked: nothing to do


# ----------------------------------------------------------------------------- the CLI's own conventions (in-process)


def _all_parsers():
    from hwsim.cli import _subparsers, build_parser

    stack, out = [build_parser()], []
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(_subparsers(p).values())
    return out


def test_every_option_has_help_a_visible_default_and_no_abbreviations():
    import argparse

    from hwsim.cli import HelpFormatter

    parsers = _all_parsers()
    assert len(parsers) >= 13  # hwsim, 10 commands, 3 experiments
    for p in parsers:
        assert p.allow_abbrev is False, p.prog
        text = p.format_help()
        assert "default: None" not in text and "(default: [])" not in text, p.prog
        fmt = HelpFormatter(p.prog)
        for a in p._actions:
            if not a.option_strings or a.help == argparse.SUPPRESS or isinstance(a, argparse._HelpAction):
                continue
            assert a.help, f"{p.prog} {a.option_strings[0]}: no help text"
            shown = fmt._get_help_string(a)
            assert shown.count("(default:") <= 1, (p.prog, a.option_strings, shown)
            if a.default not in (None, False, [], argparse.SUPPRESS):
                assert "default" in shown.lower(), (p.prog, a.option_strings, shown)


def test_every_writing_command_has_overwrite():
    writers = {"trace", "synth", "simulate", "compare", "sweep", "report"}
    names = {p.prog.split()[-1]: p for p in _all_parsers()}
    for w in writers:
        assert "--overwrite" in names[w]._option_string_actions, w
    for w in ("meprop", "distributed", "table1"):
        assert "--overwrite" in names[w]._option_string_actions, w


@pytest.mark.parametrize(("argv", "code"), [(["--help"], 0), (["simulate", "--help"], 0), (["--version"], 0),
                                            (["simulate"], 2), (["nope"], 2)])
def test_main_returns_exit_codes(argv, code, capsys):
    from hwsim.cli import main

    assert main(argv) == code


def test_lzma_bomb_is_never_inflated(tmp_path, tiny_trace):
    """The sample is decoded with a byte limit: peak memory stays far below the 64 MB the bomb inflates to."""
    import tracemalloc

    from hwsim.trace.format import TraceError, load

    shutil.copytree(tiny_trace, tmp_path / "t")
    _set_sample(tmp_path, _big_zeros_xz(64 << 20))
    tracemalloc.start()
    try:
        with pytest.raises(TraceError, match="decompresses to more than"):
            load(tmp_path / "t", verify=False).sample()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak


def test_ctrl_c_during_trace_overwrite_keeps_the_old_trace(work):
    """SIGINT while the replacement is being captured: exit 130, the old trace byte-identical, no leftovers."""
    import time

    before = snapshot(work / "t")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, "-m", "hwsim", "trace", "--model", "lenet300", "--epochs", "50",
                          "--limit-train", "256", "--batch-size", "32", "--threads", "1", "--quiet", "--overwrite",
                          "--out", "t"], cwd=work, env=env, stderr=subprocess.PIPE, text=True,
                         preexec_fn=_preexec(8 << 30))
    try:
        deadline = time.monotonic() + 240
        while not list(work.glob(".t.new-*/manifest.json")) and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.2)
        assert p.poll() is None, p.stderr.read()
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130 and "Traceback" not in err, err
    assert "existing trace t was kept" in err
    assert snapshot(work / "t") == before
    assert [x.name for x in work.iterdir() if x.name.startswith(".")] == []
