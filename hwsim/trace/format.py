"""The hwsim trace format: one directory per captured (or synthetic) training run.

A trace is what the simulator replays, so it must rebuild *exactly* the operands of every
GEMM of every sampled iteration: layer geometry, the integer levels of the quantized
pre-activation gradient (δ̃z = Δ·k), the sparsity pattern of the layer input ``a``, and the
weight density (or mask). Everything else (loss, accuracy, per-layer density and bit-width
of every iteration, not only the sampled ones) is there for the reports.

Layout (``FORMAT_VERSION`` = 3 written, 1, 2 and 3 read, documented field by field in ``traces/FORMAT.md``)::

    trace_dir/
      manifest.json          # metadata, layer table, sample index + sha256, summary (small)
      iterations.jsonl       # one line per training iteration: loss, accuracy, per-layer statistics
      samples/it000042.npz   # one file per sampled iteration, arrays keyed "<layer>/<field>"

Versions 1 and 2 kept the per-iteration records in the manifest (``iterations``), which a long run
rewrote whole every few seconds; version 3 appends them to ``iterations.jsonl`` (O(1) per step,
nothing kept in memory; :mod:`hwsim.trace.iterlog`). :func:`load` returns the same typed records
(:mod:`hwsim.trace.records`) for all three.

Masks are stored bit-packed (``np.packbits``) and only the non-zero levels are stored, in
mask order; the arrays file is then compressed with LZMA, whose adaptive binary coder brings
a 90 %-sparse mask close to its 0.47 bit/element entropy.

Writes are atomic (temp file + ``os.replace``): the manifest only lists sample files that are
complete on disk and declares only iteration lines already fsync'ed, so a run killed by Ctrl-C
(or SIGKILL) leaves a trace of the iterations that finished.
This module imports numpy only (the simulator reads traces without torch).
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwsim._io import atomic_write_bytes
from hwsim.trace.iterlog import ITERATION_LOG, IterationLog, read_iteration_log
from hwsim.trace.reading import (  # bounded, confined reading and validation
    MAX_MANIFEST_BYTES,
    MAX_TENSOR_ELEMENTS,
    SAMPLES_DIR,
    _array_budget,
    _decode_sample,
    _file_limit,
    _layer_entries,
    _raw_limit,
    _read_regular,
    check_geometry_size,
    sample_file_path,
)
from hwsim.trace.records import IterationRecord, LayerStats, TraceMeta, TraceWarning, iterations_from_manifest
from hwsim.trace.schema import (  # re-exported: the format's public names, defined by concept in schema.py
    LAYER_KINDS,
    LayerGeometry,
    LayerSample,
    TraceError,
    bit_width,
    entropy_bits,
    layer_stats,
    level_histogram,
)

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "ITERATION_LOG", "LAYER_KINDS", "MAX_MANIFEST_BYTES",
           "MAX_TENSOR_ELEMENTS", "IterationRecord", "LayerGeometry", "LayerSample", "LayerStats", "Trace",
           "TraceError", "TraceMeta", "TraceWarning", "TraceWriter", "bit_width", "entropy_bits", "layer_stats",
           "level_histogram", "load"]

FORMAT_NAME = "hwsim-trace"
FORMAT_VERSION = 3
# v1: linear and conv2d only, symmetric padding; v1 and v2: iterations inside the manifest
READABLE_VERSIONS = (1, 2, 3)
MANIFEST = "manifest.json"


# ----------------------------------------------------------------------------- io helpers


def _level_dtype(levels: np.ndarray) -> np.dtype:
    m = int(np.abs(levels).max(initial=0))
    for dt in (np.int8, np.int16, np.int32):
        if m <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def _encode_sample(samples: Sequence[LayerSample]) -> tuple[bytes, dict[str, Any]]:
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    for s in samples:
        nm = s.geometry.name
        mask = s.dz_levels != 0
        arrays[f"{nm}/dz_mask"] = np.packbits(mask.ravel())
        nz = s.dz_levels[mask]
        arrays[f"{nm}/dz_levels"] = nz.astype(_level_dtype(nz))
        arrays[f"{nm}/a_mask"] = np.packbits(np.asarray(s.a_mask, dtype=bool).ravel())
        if s.w_mask is not None:
            arrays[f"{nm}/w_mask"] = np.packbits(np.asarray(s.w_mask, dtype=bool).ravel())
        meta[nm] = {
            "geometry": s.geometry.to_json(),
            "delta": float(s.delta),
            "w_density": float(s.w_density),
            "w_bits": int(s.w_bits),
            "a_bits": int(s.a_bits),
            "has_w_mask": s.w_mask is not None,
            "nnz": int(nz.size),
        }
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return lzma.compress(buf.getvalue(), preset=6), meta


# ----------------------------------------------------------------------------- writer


class TraceWriter:
    """Writes a trace directory incrementally and atomically.

    Use as a context manager; on an exception (including ``KeyboardInterrupt``) the manifest
    is flushed with ``complete: false`` and ``status`` naming the exception, so the trace of
    the finished iterations stays readable.

    Each :meth:`add_iteration` appends one line to ``iterations.jsonl`` (O(1), nothing kept in
    memory); the manifest — meta, layers, the sample index, summary — is rewritten after every
    sampled iteration, at most every ``flush_every_s`` seconds otherwise, and on close, each time
    after fsync'ing the iteration log it declares.

    >>> with TraceWriter(out, meta={"model": "lenet5", "method": "dither", "s": 4.0}) as w:
    ...     w.add_iteration(0, loss=2.3, acc=0.1, stats={"fc1": {...}}, samples=[...])
    """

    def __init__(self, path: str | os.PathLike, *, meta: Mapping[str, Any], overwrite: bool = False,
                 flush_every_s: float = 2.0) -> None:
        self.path = Path(path)
        if (self.path / MANIFEST).exists() and not overwrite:
            raise FileExistsError(f"{self.path}: a trace already exists here (pass overwrite=True / --overwrite)")
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(f"{self.path}: exists and is not a directory")
        self.path.mkdir(parents=True, exist_ok=True)
        if overwrite and (self.path / SAMPLES_DIR).exists():
            for p in (self.path / SAMPLES_DIR).glob("*.npz.xz"):
                p.unlink()
        self._manifest: dict[str, Any] = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "meta": dict(meta),
            "layers": [],
            "complete": False,
            "status": "running",
        }
        # the sample index, each entry JSON-encoded once: a flush joins them instead of re-encoding
        self._samples: dict[int, str] = {}
        self._layer_names: set[str] = set()
        self._flush_every_s = flush_every_s
        self._last_flush = 0.0
        self._log = IterationLog(self.path)
        self.flush()

    # -- api -----------------------------------------------------------------------
    def set_meta(self, **kv: Any) -> None:
        self._manifest["meta"].update(kv)

    def add_layer(self, geometry: LayerGeometry, **extra: Any) -> None:
        """Declare a layer (order = execution order of the first forward pass)."""
        if geometry.name in self._layer_names:
            return
        self._layer_names.add(geometry.name)
        self._manifest["layers"].append({**geometry.to_json(), **extra})

    def add_iteration(self, index: int, *, stats: Mapping[str, Mapping[str, Any]] | None,
                      loss: float | None = None, acc: float | None = None, epoch: int | None = None,
                      samples: Sequence[LayerSample] | None = None, **extra: Any) -> None:
        """Record one training iteration and, if given, its full operands.

        ``stats=None`` writes the record without per-layer statistics (``layers`` absent: an
        iteration whose statistics are not kept, see ``Capture(stats_every=...)``).
        """
        rec: dict[str, Any] = {"index": int(index), "epoch": epoch, "loss": _num(loss), "acc": _num(acc)}
        if stats is not None:
            rec["layers"] = {k: dict(v) for k, v in stats.items()}
        rec.update(extra)
        if samples:
            for s in samples:
                self.add_layer(s.geometry)
            data, meta = _encode_sample(samples)
            rel = f"{SAMPLES_DIR}/it{int(index):07d}.npz.xz"
            atomic_write_bytes(self.path / rel, data)
            self._samples.pop(int(index), None)
            self._samples[int(index)] = json.dumps({
                "iteration": int(index), "file": rel, "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(), "layers": meta,
            }, separators=(",", ":"))
            rec["sampled"] = True
        self._log.append(rec)
        now = time.monotonic()
        if samples or now - self._last_flush >= self._flush_every_s:
            self.flush()

    def add_summary(self, **kv: Any) -> None:
        """Attach run-level results (e.g. final test accuracy) to the manifest."""
        self._manifest.setdefault("summary", {}).update(kv)

    @property
    def iterations_written(self) -> int:
        """Lines appended to ``iterations.jsonl`` so far."""
        return self._log.lines

    def flush(self) -> None:
        """fsync the iteration log, then atomically rewrite the manifest declaring it."""
        head = json.dumps({**self._manifest, "iteration_log": self._log.sync()}, separators=(",", ":"))
        text = f'{head[:-1]},"samples":[{",".join(self._samples.values())}]}}'
        atomic_write_bytes(self.path / MANIFEST, text.encode())
        self._last_flush = time.monotonic()

    def close(self, *, status: str = "complete") -> None:
        self._manifest["complete"] = status == "complete"
        self._manifest["status"] = status
        self.flush()
        self._log.close()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.close(status=f"interrupted: {exc_type.__name__}: {exc}"[:500])


def _num(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


# ----------------------------------------------------------------------------- reader


@dataclass(eq=False)
class Trace:
    """A loaded trace: typed meta and iteration records, the layer table, lazy access to the sampled operands.

    ``manifest`` is the validated manifest document as written (for versions 1 and 2 it still holds
    the raw ``iterations`` list); read the typed attributes instead. ``iterations`` of a version-3
    trace are read from ``iterations.jsonl`` when :func:`load` verifies the trace, else on first use.
    """

    path: Path
    manifest: dict[str, Any]
    layers: list[LayerGeometry] = field(default_factory=list)
    meta: TraceMeta = field(default_factory=TraceMeta)
    _iterations: tuple[IterationRecord, ...] | None = field(default=None, repr=False)

    @property
    def iterations(self) -> tuple[IterationRecord, ...]:
        """Every recorded iteration, in order (validated; errors name the file and line or field)."""
        if self._iterations is None:
            self._iterations = _read_iterations(self.path, self.manifest)
        return self._iterations

    @property
    def version(self) -> int:
        return int(self.manifest["version"])

    @property
    def status(self) -> str:
        """``running``, ``complete``, ``interrupted: …``, ``failed`` or ``empty: …``."""
        return str(self.manifest.get("status", ""))

    @property
    def summary(self) -> Mapping[str, Any]:
        """Run-level results (``test_acc``, ``mean_density``, …); empty if the run wrote none."""
        return self.manifest.get("summary") or {}

    @property
    def sampled_iterations(self) -> list[int]:
        return [s["iteration"] for s in self.manifest.get("samples", [])]

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete"))

    def layer(self, name: str) -> LayerGeometry:
        for g in self.layers:
            if g.name == name:
                return g
        raise KeyError(f"{self.path}: no layer {name!r}; layers: {[g.name for g in self.layers]}")

    def sample(self, iteration: int | None = None) -> dict[str, LayerSample]:
        """Operands of one sampled iteration (default: the last one), keyed by layer name, in layer order."""
        entries = self.manifest.get("samples", [])
        if not entries:
            raise TraceError(f"{self.path / MANIFEST}: field 'samples' is empty; this trace holds no operands")
        if iteration is None:
            ent = entries[-1]
        else:
            match = [e for e in entries if e["iteration"] == iteration]
            if not match:
                raise TraceError(f"{self.path}: iteration {iteration} was not sampled; sampled: {self.sampled_iterations}")
            ent = match[0]
        idx = entries.index(ent)
        where = f"{self.path / MANIFEST}: field samples[{idx}].layers"
        fpath, data = _read_sample(self.path, ent, idx)
        return _decode_sample(fpath, data, ent["layers"], where=where)

    def samples(self) -> Iterator[tuple[int, dict[str, LayerSample]]]:
        for it in self.sampled_iterations:
            yield it, self.sample(it)

    def sample_bytes(self) -> int:
        return sum(int(s["bytes"]) for s in self.manifest.get("samples", []))

    def sample_entry_bytes(self, iteration: int | None) -> int:
        """Size of the sample file of ``iteration`` (0 if it was not sampled)."""
        return next((int(s["bytes"]) for s in self.manifest.get("samples", []) if s["iteration"] == iteration), 0)


def _read_iterations(root: Path, man: Mapping[str, Any]) -> tuple[IterationRecord, ...]:
    mpath = root / MANIFEST
    if man["version"] < 3:
        return iterations_from_manifest(man["iterations"], str(mpath))
    return read_iteration_log(root, man["iteration_log"], mpath=mpath, complete=bool(man.get("complete")))


_REQUIRED = {"format": str, "version": int, "meta": dict, "layers": list, "samples": list}
_REQUIRED_BY_VERSION = {1: {"iterations": list}, 2: {"iterations": list}, 3: {"iteration_log": dict}}


def _read_sample(root: Path, ent: Mapping[str, Any], idx: int) -> tuple[Path, bytes]:
    """Read and checksum one sample file, bounded by the shapes its manifest entry declares."""
    mpath = root / MANIFEST
    where = f"{mpath}: field samples[{idx}].layers"
    limit = _file_limit(_raw_limit(_array_budget(_layer_entries(ent["layers"], where), where)))
    fpath = sample_file_path(root, ent["file"], f"samples[{idx}]")
    data = _read_regular(fpath, limit, f"sample file (declared shapes in {where} allow at most {limit:,} bytes)")
    if hashlib.sha256(data).hexdigest() != ent["sha256"]:
        raise TraceError(f"{fpath}: checksum mismatch (field 'samples[{idx}].sha256'); the file is corrupted or truncated")
    return fpath, data


def load(path: str | os.PathLike, *, verify: bool = True) -> Trace:
    """Open and validate a trace directory.

    Checks the format name and version, every manifest field's type, the meta keys, every
    layer's geometry (and its size against :data:`MAX_TENSOR_ELEMENTS`), and the per-iteration
    records. With ``verify=True`` it also checks that every sample file is a regular file inside
    ``samples/`` with its recorded sha256, and reads ``iterations.jsonl`` (version 3) now rather
    than on first use of ``Trace.iterations``. Errors are :class:`TraceError` naming the file and
    the field (or line); a torn last line of an interrupted run's iteration log is skipped with a
    :class:`TraceWarning`.
    """
    root = Path(path)
    mpath = root / MANIFEST
    if not root.exists():
        raise TraceError(f"{root}: no such trace directory")
    if not root.is_dir():
        raise TraceError(f"{root}: is not a directory; a trace is a directory holding {MANIFEST}")
    if not mpath.exists():
        raise TraceError(f"{mpath}: missing; {root} is not an hwsim trace directory")
    text = _read_regular(mpath, MAX_MANIFEST_BYTES, "the manifest")
    try:
        man = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TraceError(f"{mpath}: not valid JSON ({e}); the manifest is truncated or corrupted") from None
    except RecursionError:
        raise TraceError(f"{mpath}: JSON nested too deeply; not an hwsim manifest") from None
    if not isinstance(man, dict):
        raise TraceError(f"{mpath}: top level must be a JSON object")
    _check_fields(man, _REQUIRED, mpath)
    if man["format"] != FORMAT_NAME:
        raise TraceError(f"{mpath}: field 'format' is {man['format']!r}, expected {FORMAT_NAME!r}")
    if man["version"] not in READABLE_VERSIONS or isinstance(man["version"], bool):
        raise TraceError(f"{mpath}: field 'version' is {man['version']}, this hwsim reads version {FORMAT_VERSION} "
                         f"(and the older {READABLE_VERSIONS[:-1]})")
    _check_fields(man, _REQUIRED_BY_VERSION[man["version"]], mpath)
    meta = TraceMeta.from_json(man["meta"], file=str(mpath))
    layers = []
    for i, d in enumerate(man["layers"]):
        g = LayerGeometry.from_json(d, where=f"{mpath}: field 'layers[{i}]'")
        check_geometry_size(g, f"{mpath}: field 'layers[{i}]'")
        layers.append(g)
    iterations = _read_iterations(root, man) if verify or man["version"] < 3 else None
    for i, s in enumerate(man["samples"]):
        if not isinstance(s, dict):
            raise TraceError(f"{mpath}: field 'samples[{i}]' must be an object, got {s!r}")
        for key, typ in (("iteration", int), ("file", str), ("sha256", str), ("layers", dict)):
            if key not in s:
                raise TraceError(f"{mpath}: field 'samples[{i}].{key}' is missing")
            if not isinstance(s[key], typ):
                raise TraceError(f"{mpath}: field 'samples[{i}].{key}' must be {typ.__name__}, got {s[key]!r}")
        sample_file_path(root, s["file"], f"samples[{i}]")
        if verify:
            _read_sample(root, s, i)
    return Trace(path=root, manifest=man, layers=layers, meta=meta, _iterations=iterations)


def _check_fields(man: Mapping[str, Any], required: Mapping[str, type], mpath: Path) -> None:
    for key, typ in required.items():
        if key not in man:
            raise TraceError(f"{mpath}: field {key!r} is missing")
        if not isinstance(man[key], typ):
            raise TraceError(f"{mpath}: field {key!r} must be {typ.__name__}, got {type(man[key]).__name__}")
