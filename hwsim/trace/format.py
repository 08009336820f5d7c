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
This module is the one reader (:func:`load`, :class:`Trace`); writing lives in :mod:`hwsim.trace.writer`
(:class:`TraceWriter`, re-exported here). numpy only (the simulator reads traces without torch).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

from hwsim.trace.iterlog import read_iteration_log
from hwsim.trace.layout import (  # re-exported: the on-disk layout
    FORMAT_NAME,
    FORMAT_VERSION,
    ITERATION_LOG,
    MANIFEST,
    MAX_MANIFEST_BYTES,
    MAX_TENSOR_ELEMENTS,
    READABLE_VERSIONS,
)
from hwsim.trace.nongemm import NonGemmWork
from hwsim.trace.reading import (  # bounded, confined reading and validation
    LazySamples,
    _array_budget,
    _decode_sample,
    _file_limit,
    _layer_entries,
    _raw_limit,
    _read_regular,
    check_geometry_size,
    grad_flags,
    open_sample,
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
from hwsim.trace.writer import TraceWriter  # re-exported: the writer

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "ITERATION_LOG", "LAYER_KINDS", "MAX_MANIFEST_BYTES",
           "MAX_TENSOR_ELEMENTS", "IterationRecord", "LayerGeometry", "LayerSample", "LayerStats", "Trace",
           "TraceError", "TraceMeta", "TraceWarning", "TraceWriter", "bit_width", "entropy_bits", "layer_stats",
           "level_histogram", "load"]



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

    @overload
    def sample(self, iteration: int | None = None, *, lazy: Literal[False] = False) -> dict[str, LayerSample]: ...

    @overload
    def sample(self, iteration: int | None = None, *, lazy: Literal[True]) -> LazySamples: ...

    def sample(self, iteration: int | None = None, *, lazy: bool = False) -> Mapping[str, LayerSample]:
        """Operands of one sampled iteration (default: the last one), keyed by layer name, in layer order.

        ``lazy``: a :class:`~hwsim.trace.reading.LazySamples` that keeps the sample bit-packed and decodes a layer
        when it is looked up (memory per layer, not per model: a transformer's iteration decoded whole holds one
        byte per mask element); default: every layer decoded now, a dict."""
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
        if lazy:
            return LazySamples(open_sample(fpath, data, ent["layers"], where=where))
        return _decode_sample(fpath, data, ent["layers"], where=where)

    def minibatch(self, iteration: int) -> int | None:
        """Training mini-batch of a sampled iteration: the largest ``batch_size`` of its layers in the manifest (no
        sample file is read; :meth:`sample_batch` is the batch the stored operands hold); ``None`` if unknown."""
        for ent in self.manifest.get("samples", []):
            if ent["iteration"] == iteration:
                sizes = [g.get("batch_size") for v in ent.get("layers", {}).values()
                         if isinstance(v, Mapping) and isinstance(g := v.get("geometry"), Mapping)]
                sizes = [int(b) for b in sizes if isinstance(b, int) and not isinstance(b, bool) and b > 0]
                return max(sizes) if sizes else None
        raise TraceError(f"{self.path}: iteration {iteration} was not sampled; sampled: {self.sampled_iterations}")

    def default_iteration(self) -> tuple[int, str]:
        """The sampled iteration replayed when none is asked for, and a sentence saying which and why.

        The last sampled iteration with the largest mini-batch sampled: an epoch's short last batch (e.g. 29 of 64)
        would bias a single-iteration answer, and the last sampled iteration often is one."""
        its = self.sampled_iterations
        if not its:
            raise TraceError(f"{self.path / MANIFEST}: field 'samples' is empty; this trace holds no operands")
        batch = {it: self.minibatch(it) for it in its}
        known = [b for b in batch.values() if b is not None]
        if not known:
            return its[-1], f"iteration {its[-1]}: the last sampled (the manifest gives no batch sizes)"
        full = max(known)
        pick = max(it for it in its if batch[it] == full)
        if pick == its[-1]:
            return pick, f"iteration {pick}: the last sampled, a full batch of {full}"
        return pick, (f"iteration {pick}: the last sampled with a full batch of {full} (the last sampled, "
                      f"{its[-1]}, has a partial batch of {batch[its[-1]]})")

    def nongemm(self, iteration: int | None = None) -> NonGemmWork | None:
        """The non-GEMM work of ``iteration`` (default: the last sampled; else the last record that has it):
        its own record, or the nearest earlier one (a record is written only when the work changes);
        ``None`` for traces without non-GEMM records."""
        if iteration is None and self.sampled_iterations:
            iteration = self.sampled_iterations[-1]
        best = None
        for rec in self.iterations:
            if iteration is not None and rec.index > iteration:
                break
            if rec.nongemm is not None:
                best = rec.nongemm
        return best

    def grad_flags(self, iteration: int | None = None) -> dict[str, tuple[bool | None, bool | None]]:
        """``{layer: (input_grad, weight_grad)}`` of one sampled iteration (default: the last), from the manifest
        alone (no sample file read); the layer table with ``(None, None)`` (not recorded) when nothing was sampled."""
        entries = self.manifest.get("samples", [])
        if not entries:
            return {g.name: (None, None) for g in self.layers}
        match = [i for i, e in enumerate(entries) if iteration is None or e["iteration"] == iteration]
        if not match:
            raise TraceError(f"{self.path}: iteration {iteration} was not sampled; sampled: {self.sampled_iterations}")
        idx = match[-1] if iteration is None else match[0]
        return grad_flags(entries[idx]["layers"], f"{self.path / MANIFEST}: field samples[{idx}].layers")

    def samples(self) -> Iterator[tuple[int, dict[str, LayerSample]]]:
        for it in self.sampled_iterations:
            yield it, self.sample(it)

    def sample_bytes(self) -> int:
        return sum(int(s["bytes"]) for s in self.manifest.get("samples", []))

    def sample_batch(self, iteration: int) -> int | None:
        """The largest layer batch ``N`` of sampled iteration ``iteration``, from its manifest entry (no sample file
        is read); ``None`` if the iteration was not sampled or its entry names no batch."""
        ns: list[int] = []
        for ent in self.manifest.get("samples") or []:
            if not isinstance(ent, Mapping) or ent.get("iteration") != iteration:
                continue
            lays = ent.get("layers") or []
            for lay in lays.values() if isinstance(lays, Mapping) else lays:
                if isinstance(lay, Mapping):
                    n = lay.get("N") or (lay.get("geometry") or {}).get("N")
                    if n:
                        ns.append(int(n))
        return max(ns) if ns else None

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
