"""Reading a trace safely: every byte read is confined to the trace and bounded by its declared shapes.

A trace is input from anywhere (a colleague, a download, a fuzzer), so the reader trusts nothing:

- sample files must be plain names inside the trace's ``samples/`` folder (no ``..``, no absolute
  paths, no symlinks leading out) and regular files (a FIFO or ``/dev/zero`` is refused before it is
  read);
- every layer's tensors are bounded by :data:`MAX_TENSOR_ELEMENTS`, the manifest by
  :data:`MAX_MANIFEST_BYTES` (both in :mod:`hwsim.trace.layout`);
- a sample file may hold at most the bytes its manifest entry's shapes need: its size is checked
  before it is read, the LZMA stream is decoded with that limit, and every ``.npy`` header is
  checked against its layer's shape before the array is read;
- per-iteration records and meta keys are type-checked (:mod:`hwsim.trace.records`), the
  iteration log line by line (:mod:`hwsim.trace.iterlog`).

Errors are :class:`TraceError` naming the file and the field. Numpy only.
"""

from __future__ import annotations

import io
import lzma
import math
import os
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.lib.format as npformat

from hwsim._io import read_regular
from hwsim.trace.layout import MAX_TENSOR_ELEMENTS, SAMPLES_DIR
from hwsim.trace.schema import LayerGeometry, LayerSample, TraceError

# Bounds on what a reader accepts (hwsim.trace.layout), so a crafted trace fails fast instead of exhausting memory.
# Largest real tensor of the zoo: VGG-16 conv1 output at batch 64 = 64·64·224·224 ≈ 2.1e8 elements.


def _meta(m: Any, key: str, conv: Any, where: str, default: Any = ...) -> Any:
    """One field of a sample's per-layer manifest entry, converted, or a TraceError naming it."""
    if not isinstance(m, Mapping):
        raise TraceError(f"{where}: must be an object, got {m!r}")
    if key not in m:
        if default is not ...:
            return default
        raise TraceError(f"{where}.{key}: missing")
    try:
        return conv(m[key])
    except (TypeError, ValueError) as e:
        raise TraceError(f"{where}.{key}: invalid value {m[key]!r} ({e})") from None


def _flag(m: Mapping[str, Any], key: str, where: str) -> bool | None:
    """An optional true/false field of a sample's per-layer entry (absent or null: ``None``)."""
    v = m.get(key)
    if v is not None and not isinstance(v, bool):
        raise TraceError(f"{where}.{key}: {v!r} is not allowed; allowed: true, false or null"[:300])
    return v


def grad_flags(meta: Any, where: str) -> dict[str, tuple[bool | None, bool | None]]:
    """``{layer: (input_grad, weight_grad)}`` of one sample's per-layer entries, without reading its arrays."""
    if not isinstance(meta, Mapping):
        raise TraceError(f"{where}: must be an object {{layer: {{...}}}}, got {type(meta).__name__}")
    out = {}
    for nm, m in meta.items():
        if not isinstance(m, Mapping):
            raise TraceError(f"{where}.{nm}: must be an object, got {m!r}"[:300])
        out[str(nm)] = (_flag(m, "input_grad", f"{where}.{nm}"), _flag(m, "weight_grad", f"{where}.{nm}"))
    return out


def _layer_entries(meta: Any, where: str) -> list[tuple[str, LayerGeometry, Mapping[str, Any]]]:
    """The per-layer entries of one sample, geometry validated and size-bounded (no array read yet)."""
    if not isinstance(meta, Mapping):
        raise TraceError(f"{where}: must be an object {{layer: {{...}}}}, got {type(meta).__name__}")
    out = []
    for nm, m in meta.items():
        mw = f"{where}.{nm}"
        g = LayerGeometry.from_json(_meta(m, "geometry", lambda v: v, mw), where=f"{mw}.geometry")
        check_geometry_size(g, f"{mw}.geometry")
        out.append((str(nm), g, m))
    return out


def _array_budget(entries: list[tuple[str, LayerGeometry, Mapping[str, Any]]], where: str) -> dict[str, int]:
    """Most bytes each stored array may hold, from the declared shapes (and ``nnz``) alone."""
    budget: dict[str, int] = {}
    for nm, g, m in entries:
        n_out = math.prod(g.output_shape)
        nnz = _meta(m, "nnz", int, f"{where}.{nm}")
        if not 0 <= nnz <= n_out:
            raise TraceError(f"{where}.{nm}.nnz: {nnz} is outside 0..{n_out} (the output's elements)")
        budget[f"{nm}/dz_mask"] = (n_out + 7) // 8
        budget[f"{nm}/dz_levels"] = nnz * 8
        budget[f"{nm}/a_mask"] = (math.prod(g.input_shape) + 7) // 8
        if _meta(m, "has_w_mask", bool, f"{where}.{nm}", False):
            budget[f"{nm}/w_mask"] = (math.prod(g.weight_shape) + 7) // 8
    return budget


def _raw_limit(budget: Mapping[str, int]) -> int:
    """Bytes of the .npz holding arrays of at most these sizes (per member: zip headers + .npy header)."""
    return sum(v + 1024 + 3 * len(k) for k, v in budget.items()) + 4096


def _file_limit(raw_limit: int) -> int:
    """Most bytes an LZMA stream of ``raw_limit`` bytes can take on disk (incompressible data grows < 1 %)."""
    return raw_limit + raw_limit // 64 + 65536


def _npz_arrays(path: Path, raw: bytes, budget: Mapping[str, int]) -> dict[str, np.ndarray]:
    """Parse an .npz held in memory, refusing any array larger than its declared shape allows.

    Every .npy header is read and checked before the array's bytes are touched, so a header
    declaring 10¹² elements costs nothing.
    """
    arrays: dict[str, np.ndarray] = {}
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise TraceError(f"{path}: cannot decode sample arrays (not an .npz archive: {e})") from None
    with zf:
        for info in zf.infolist():
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if key not in budget:
                raise TraceError(f"{path}: array {key!r} is not declared by the manifest; allowed: {sorted(budget)}")
            if key in arrays:
                raise TraceError(f"{path}: array {key!r} is stored twice")
            limit = budget[key]
            if info.file_size > limit + 1024:
                raise TraceError(f"{path}: array {key!r} holds {info.file_size:,} bytes, more than the {limit:,} "
                                 "its declared shape allows")
            try:
                with zf.open(info) as fp:
                    version = npformat.read_magic(fp)
                    reader = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
                    shape, fortran, dtype = reader(fp)
                    if dtype.hasobject:
                        raise TraceError(f"{path}: array {key!r} has dtype {dtype} (objects are not allowed)")
                    nbytes = math.prod(shape) * dtype.itemsize
                    if nbytes > limit:
                        raise TraceError(f"{path}: array {key!r} declares shape {shape} ({nbytes:,} bytes), more than "
                                         f"the {limit:,} bytes its layer's declared shape allows")
                    data = fp.read(nbytes)
            except TraceError:
                raise
            except Exception as e:  # noqa: BLE001 - any decoding failure is a corrupt file
                raise TraceError(f"{path}: cannot decode array {key!r} ({type(e).__name__}: {e})") from None
            if len(data) != nbytes:
                raise TraceError(f"{path}: array {key!r} is truncated ({len(data)} of {nbytes} bytes)")
            arrays[key] = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return arrays


def _decode_sample(path: Path, data: bytes, meta: Mapping[str, Any], *, where: str = "manifest") -> dict[str, LayerSample]:
    """Every layer of one sample file, decoded (:class:`SampleArchive`)."""
    archive = open_sample(path, data, meta, where=where)
    return {nm: archive.decode(nm) for nm in archive.names}


def open_sample(path: Path, data: bytes, meta: Mapping[str, Any], *, where: str = "manifest") -> SampleArchive:
    """The LZMA-compressed ``.npz`` ``data`` of one sample file, decompressed and checked against ``meta`` (its
    manifest entry's layers), its arrays still bit-packed: :meth:`SampleArchive.decode` unpacks one layer."""
    entries = _layer_entries(meta, where)
    budget = _array_budget(entries, where)
    limit = _raw_limit(budget)
    dec = lzma.LZMADecompressor()
    try:
        raw = dec.decompress(data, max_length=limit + 1)
    except lzma.LZMAError as e:
        raise TraceError(f"{path}: cannot decode sample arrays (LZMAError: {e})") from None
    if len(raw) > limit:
        raise TraceError(f"{path}: decompresses to more than {limit:,} bytes, the most the shapes declared in "
                         f"{where} need; refused")
    if not dec.eof:
        raise TraceError(f"{path}: cannot decode sample arrays (the LZMA stream is truncated)")
    return SampleArchive(path, where, entries, _npz_arrays(path, raw, budget))


class SampleArchive:
    """One sample file's arrays as stored (masks bit-packed, only the non-zero δ̃z levels): ≈ 1/8 of a byte per
    mask element, against 1 byte per element (and per level) decoded. Layers are decoded one at a time."""

    def __init__(self, path: Path, where: str, entries: list[tuple[str, LayerGeometry, Mapping[str, Any]]],
                 arrays: Mapping[str, np.ndarray]) -> None:
        self.path, self.where, self._arrays = path, where, arrays
        self._entries = {nm: (g, m) for nm, g, m in entries}

    @property
    def names(self) -> list[str]:
        """Layer names in execution order."""
        return list(self._entries)

    def geometry(self, nm: str) -> LayerGeometry:
        """Layer ``nm``'s geometry, without decoding its arrays."""
        return self._entries[nm][0]

    def decode(self, nm: str) -> LayerSample:
        """Layer ``nm``'s :class:`LayerSample` (masks unpacked, levels scattered), checked as it is decoded."""
        g, m = self._entries[nm]
        path, arrays = self.path, self._arrays
        mw = f"{self.where}.{nm}"
        delta = _meta(m, "delta", float, mw)
        w_density = _meta(m, "w_density", float, mw)
        w_bits = _meta(m, "w_bits", int, mw, 32)
        a_bits = _meta(m, "a_bits", int, mw, 32)
        nnz = _meta(m, "nnz", int, mw)
        has_w_mask = _meta(m, "has_w_mask", bool, mw, False)
        grads = {f: _flag(m, f, mw) for f in ("input_grad", "weight_grad")}

        def get(key: str) -> np.ndarray:
            k = f"{nm}/{key}"
            if k not in arrays:
                raise TraceError(f"{path}: array {k!r} is missing")
            return arrays[k]

        def unpack(key: str, shape: tuple[int, ...]) -> np.ndarray:
            packed = get(key)
            n = int(np.prod(shape))
            if packed.dtype != np.uint8:
                raise TraceError(f"{path}: array '{nm}/{key}' has dtype {packed.dtype}, expected uint8 (packed bits)")
            if packed.size != (n + 7) // 8:
                raise TraceError(f"{path}: array '{nm}/{key}' has {packed.size} bytes, expected {(n + 7) // 8} "
                                 f"for shape {shape}")
            return np.unpackbits(packed.ravel(), count=n).view(bool).reshape(shape)  # 0/1 bytes: a bool view

        mask = unpack("dz_mask", g.output_shape)
        nz = get("dz_levels")
        if not np.issubdtype(nz.dtype, np.integer):
            raise TraceError(f"{path}: array '{nm}/dz_levels' has dtype {nz.dtype}, expected integers")
        on = int(np.count_nonzero(mask))  # a bool mask's count: ≈ 10× faster than mask.sum()
        if nz.size != on or nz.size != nnz:
            raise TraceError(f"{path}: array '{nm}/dz_levels' has {nz.size} values, mask has {on} non-zeros, "
                             f"{mw}.nnz declares {nnz}")
        if nz.size and np.any(nz == 0):
            raise TraceError(f"{path}: array '{nm}/dz_levels' holds zeros (only non-zero levels are stored)")
        levels = np.zeros(g.output_shape, dtype=level_dtype(nz))
        levels[mask] = nz.ravel()
        w_mask = unpack("w_mask", g.weight_shape) if has_w_mask else None
        try:
            return LayerSample(geometry=g, delta=delta, dz_levels=levels, a_mask=unpack("a_mask", g.input_shape),
                               w_density=w_density, w_mask=w_mask, w_bits=w_bits, a_bits=a_bits, **grads)
        except TraceError as e:
            raise TraceError(f"{mw}: {e}") from None


class LazySamples(Mapping[str, LayerSample]):
    """One sampled iteration's layers, decoded when looked up (:meth:`hwsim.trace.format.Trace.sample` with
    ``lazy=True``): the memory of the packed sample plus one decoded layer — the last one looked up is kept, so
    looking a layer up twice in a row decodes it once; any other look-up decodes again."""

    def __init__(self, archive: SampleArchive) -> None:
        self.archive = archive
        self._last: tuple[str, LayerSample] | None = None

    def __getitem__(self, nm: str) -> LayerSample:
        if self._last is not None and self._last[0] == nm:
            return self._last[1]
        if nm not in self.archive._entries:
            raise KeyError(nm)
        sample = self.archive.decode(nm)
        self._last = (nm, sample)
        return sample

    def __iter__(self) -> Iterator[str]:
        return iter(self.archive.names)

    def __len__(self) -> int:
        return len(self.archive.names)


def level_dtype(nz: np.ndarray) -> np.dtype:
    """The narrowest of int8/16/32/64 that holds ±max|level| of the stored non-zero levels ``nz``.

    Dithered levels need 2–6 bits, so a layer's dense level array is int8 — a quarter of the int32 it used to
    be (the largest array of a transformer's attention products). The range is symmetric (−127..127 for
    int8), so ``abs`` of a level never overflows its dtype."""
    if nz.size == 0:
        return np.dtype(np.int8)
    m = max(int(nz.max()), -int(nz.min()))
    for dt in (np.int8, np.int16, np.int32):
        if m <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def check_geometry_size(g: LayerGeometry, where: str) -> None:
    """Refuse a geometry whose tensors exceed :data:`MAX_TENSOR_ELEMENTS` (names the field and the limit)."""
    for role, shape in (("output (δ̃z) N·K·P·Q", g.output_shape), ("input N·C·H·W", g.input_shape),
                        ("weight K·C/groups·R·S", g.weight_shape)):
        n = math.prod(shape)
        if n > MAX_TENSOR_ELEMENTS:
            raise TraceError(f"{where}: {role} = {n:,} elements (shape {shape}) exceeds the limit of "
                             f"{MAX_TENSOR_ELEMENTS:,} elements per tensor")


def _read_regular(path: Path, limit: int, what: str) -> bytes:
    """Bytes of a regular file of at most ``limit`` bytes (:func:`hwsim._io.read_regular`), errors as TraceError."""
    return read_regular(path, limit, what, TraceError)


def sample_file_path(root: Path, rel: Any, field: str) -> Path:
    """The sample file that manifest field ``field`` (e.g. ``samples[0]``) names, confined to ``root/samples/``.

    Only a plain file name inside ``samples/`` is accepted (no ``..``, no absolute path, no
    sub-folder); a symlink is followed only if it stays inside the trace's own ``samples/``.
    """
    where = f"{root / 'manifest.json'}: field '{field}.file'"
    allowed = f"allowed: a plain file name inside {SAMPLES_DIR}/, e.g. {SAMPLES_DIR}/it0000042.npz.xz"
    if not isinstance(rel, str):
        raise TraceError(f"{where}: must be a string; {allowed}")
    parts = rel.split("/")
    if (len(parts) != 2 or parts[0] != SAMPLES_DIR or not parts[1] or parts[1] in (".", "..")
            or "\\" in rel or "\x00" in rel or os.path.isabs(rel)):
        raise TraceError(f"{where}: {rel!r} is not allowed; {allowed}")
    path = root / SAMPLES_DIR / parts[1]
    try:
        real = path.resolve(strict=True)
    except FileNotFoundError:
        raise TraceError(f"{path}: sample file listed in field '{field}' is missing") from None
    except (OSError, RuntimeError) as e:
        raise TraceError(f"{path}: cannot resolve the sample file listed in field '{field}' ({e})") from None
    if real.parent != root.resolve() / SAMPLES_DIR:
        raise TraceError(f"{path}: resolves to {real}, outside the trace's {SAMPLES_DIR}/ folder ({where}); refused")
    return real
