"""The hwsim trace format: one directory per captured (or synthetic) training run.

A trace is what the simulator replays, so it must rebuild *exactly* the operands of every
GEMM of every sampled iteration: layer geometry, the integer levels of the quantized
pre-activation gradient (δ̃z = Δ·k), the sparsity pattern of the layer input ``a``, and the
weight density (or mask). Everything else (loss, accuracy, per-layer density and bit-width
of every iteration, not only the sampled ones) is there for the reports.

Layout (``FORMAT_VERSION`` = 2 written, 1 and 2 read, documented field by field in ``traces/FORMAT.md``)::

    trace_dir/
      manifest.json          # metadata, layer table, per-iteration stats, sample index + sha256
      samples/it000042.npz   # one file per sampled iteration, arrays keyed "<layer>/<field>"

Masks are stored bit-packed (``np.packbits``) and only the non-zero levels are stored, in
mask order; the arrays file is then compressed with LZMA, whose adaptive binary coder brings
a 90 %-sparse mask close to its 0.47 bit/element entropy.

Writes are atomic (temp file + ``os.replace``): the manifest only lists sample files that are
complete on disk, so a run killed by Ctrl-C leaves a trace of the iterations that finished.
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
from hwsim.trace.reading import (  # bounded, confined reading and validation
    MAX_MANIFEST_BYTES,
    MAX_TENSOR_ELEMENTS,
    SAMPLES_DIR,
    _array_budget,
    _check_meta,
    _decode_sample,
    _file_limit,
    _layer_entries,
    _raw_limit,
    _read_regular,
    check_geometry_size,
    check_iterations,
    sample_file_path,
)
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

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "LAYER_KINDS", "MAX_MANIFEST_BYTES", "MAX_TENSOR_ELEMENTS",
           "LayerGeometry", "LayerSample", "Trace", "TraceError",
           "TraceWriter", "bit_width", "entropy_bits", "layer_stats", "level_histogram", "load"]

FORMAT_NAME = "hwsim-trace"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # v1: linear and conv2d only, symmetric padding
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
            "iterations": [],
            "samples": [],
            "complete": False,
            "status": "running",
        }
        self._layer_names: set[str] = set()
        self._flush_every_s = flush_every_s
        self._last_flush = 0.0
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

    def add_iteration(self, index: int, *, stats: Mapping[str, Mapping[str, Any]], loss: float | None = None,
                      acc: float | None = None, epoch: int | None = None,
                      samples: Sequence[LayerSample] | None = None, **extra: Any) -> None:
        """Record one training iteration's statistics and, if given, its full operands."""
        rec: dict[str, Any] = {"index": int(index), "epoch": epoch, "loss": _num(loss), "acc": _num(acc),
                               "layers": {k: dict(v) for k, v in stats.items()}, **extra}
        if samples:
            for s in samples:
                self.add_layer(s.geometry)
            data, meta = _encode_sample(samples)
            rel = f"{SAMPLES_DIR}/it{int(index):07d}.npz.xz"
            atomic_write_bytes(self.path / rel, data)
            self._manifest["samples"] = [x for x in self._manifest["samples"] if x["iteration"] != int(index)]
            self._manifest["samples"].append({
                "iteration": int(index), "file": rel, "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(), "layers": meta,
            })
            rec["sampled"] = True
        self._manifest["iterations"].append(rec)
        now = time.monotonic()
        if samples or now - self._last_flush >= self._flush_every_s:
            self.flush()

    def add_summary(self, **kv: Any) -> None:
        """Attach run-level results (e.g. final test accuracy) to the manifest."""
        self._manifest.setdefault("summary", {}).update(kv)

    def flush(self) -> None:
        atomic_write_bytes(self.path / MANIFEST, json.dumps(self._manifest, separators=(",", ":")).encode())
        self._last_flush = time.monotonic()

    def close(self, *, status: str = "complete") -> None:
        self._manifest["complete"] = status == "complete"
        self._manifest["status"] = status
        self.flush()

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


@dataclass
class Trace:
    """A loaded trace: the manifest plus lazy access to the sampled iterations' operands."""

    path: Path
    manifest: dict[str, Any]
    layers: list[LayerGeometry] = field(default_factory=list)

    @property
    def meta(self) -> dict[str, Any]:
        return self.manifest.get("meta", {})

    @property
    def iterations(self) -> list[dict[str, Any]]:
        return self.manifest.get("iterations", [])

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


_REQUIRED = {"format": str, "version": int, "meta": dict, "layers": list, "iterations": list, "samples": list}


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

    Checks the format name and version, every manifest field's type, every layer's geometry
    (and its size against :data:`MAX_TENSOR_ELEMENTS`), the per-iteration records, and
    (``verify=True``) that every sample file is a regular file inside ``samples/`` with its
    recorded sha256. Errors are :class:`TraceError` naming the file and the field.
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
    for key, typ in _REQUIRED.items():
        if key not in man:
            raise TraceError(f"{mpath}: field {key!r} is missing")
        if not isinstance(man[key], typ):
            raise TraceError(f"{mpath}: field {key!r} must be {typ.__name__}, got {type(man[key]).__name__}")
    if man["format"] != FORMAT_NAME:
        raise TraceError(f"{mpath}: field 'format' is {man['format']!r}, expected {FORMAT_NAME!r}")
    if man["version"] not in READABLE_VERSIONS:
        raise TraceError(f"{mpath}: field 'version' is {man['version']}, this hwsim reads version {FORMAT_VERSION} "
                         f"(and the older {READABLE_VERSIONS[:-1]})")
    _check_meta(man["meta"], f"{mpath}: field meta")
    layers = []
    for i, d in enumerate(man["layers"]):
        g = LayerGeometry.from_json(d, where=f"{mpath}: field 'layers[{i}]'")
        check_geometry_size(g, f"{mpath}: field 'layers[{i}]'")
        layers.append(g)
    check_iterations(man["iterations"], str(mpath))
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
    return Trace(path=root, manifest=man, layers=layers)
