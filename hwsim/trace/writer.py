"""Writing a trace directory: the format version written, sample encoding, :class:`TraceWriter`.

Layout and guarantees are described in :mod:`hwsim.trace.format` and ``traces/FORMAT.md``;
:func:`hwsim.trace.format.load` is the one reader. numpy only.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hwsim._io import atomic_write_bytes
from hwsim.trace.iterlog import IterationLog
from hwsim.trace.layout import FORMAT_NAME, FORMAT_VERSION, MANIFEST, SAMPLES_DIR
from hwsim.trace.schema import LayerGeometry, LayerSample

# ----------------------------------------------------------------------------- encoding


def _level_dtype(levels: np.ndarray) -> np.dtype:
    m = int(np.abs(levels).max(initial=0))
    for dt in (np.int8, np.int16, np.int32):
        if m <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.int64)


LZMA_PRESET = 6  # xz's default level: captured (structured) masks come close to their entropy (format.py doc)


def encode_sample(samples: Sequence[LayerSample], *, preset: int = LZMA_PRESET) -> tuple[bytes, dict[str, Any]]:
    """One sampled iteration as stored: the LZMA-compressed ``.npz`` bytes and its manifest entry per layer.

    ``preset``: the LZMA level, 0–9 (any level reads back the same: the reader does not need it)."""
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
        for f in ("input_grad", "weight_grad"):  # optional: which backward GEMMs ran (absent = not recorded)
            if getattr(s, f) is not None:
                meta[nm][f] = bool(getattr(s, f))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return lzma.compress(buf.getvalue(), preset=preset), meta


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
                 flush_every_s: float = 2.0, lzma_preset: int = LZMA_PRESET) -> None:
        if not (isinstance(lzma_preset, int) and 0 <= lzma_preset <= 9):
            raise ValueError(f"TraceWriter: lzma_preset={lzma_preset!r}; allowed: an integer 0..9")
        self._preset = lzma_preset
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
            data, meta = encode_sample(samples, preset=self._preset)
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
