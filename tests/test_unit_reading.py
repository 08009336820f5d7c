"""Unit tests of hwsim.trace.reading: sample files confined to ``samples/``, every read bounded by the declared
shapes (file size, LZMA output, each .npy header), arrays checked against their layer, size limits."""

from __future__ import annotations

import io
import json
import lzma
import math
import zipfile
from pathlib import Path

import numpy as np
import numpy.lib.format as npformat
import pytest

from hwsim.trace import format as tformat
from hwsim.trace import reading
from hwsim.trace.layout import SAMPLES_DIR
from hwsim.trace.reading import (
    _array_budget,
    _decode_sample,
    _file_limit,
    _layer_entries,
    _raw_limit,
    check_geometry_size,
    sample_file_path,
)
from hwsim.trace.schema import LayerGeometry, LayerSample, TraceError
from hwsim.trace.topology import check_synthetic_size
from hwsim.trace.writer import TraceWriter, encode_sample

FC = LayerGeometry(name="fc", kind="linear", N=2, C=5, K=3)     # out 2x3, in 2x5, weight 3x5
P = Path("/t/samples/it0000000.npz.xz")


def _sample(w_mask: bool = True) -> LayerSample:
    lv = np.array([[0, 3, 0], [-200, 0, 1]], dtype=np.int64)
    a = np.array([[1, 0, 1, 1, 0], [0, 0, 1, 0, 1]], dtype=bool)
    wm = (np.arange(15).reshape(3, 5) % 3 == 0) if w_mask else None
    return LayerSample(geometry=FC, delta=0.125, dz_levels=lv, a_mask=a, w_density=0.4, w_mask=wm, w_bits=8, a_bits=4)


def _xz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for k, v in members.items():
            zf.writestr(k, v)
    return lzma.compress(buf.getvalue())


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    npformat.write_array(buf, a, allow_pickle=True)
    return buf.getvalue()


def _members(s: LayerSample) -> dict[str, bytes]:
    """The .npy members encode_sample would store, editable one by one."""
    mask = s.dz_levels != 0
    return {"fc/dz_mask.npy": _npy(np.packbits(mask.ravel())),
            "fc/dz_levels.npy": _npy(s.dz_levels[mask].astype(np.int16)),
            "fc/a_mask.npy": _npy(np.packbits(s.a_mask.ravel()))}


def _meta(nnz: int = 3, **kv) -> dict:
    return {"fc": {"geometry": FC.to_json(), "delta": 0.125, "w_density": 0.4, "nnz": nnz, **kv}}


# ----------------------------------------------------------------------------- round trip and budget


def test_encoded_sample_decodes_back_exactly():
    s = _sample()
    data, meta = encode_sample([s])
    out = _decode_sample(P, data, meta)["fc"]
    assert np.array_equal(out.dz_levels, s.dz_levels) and np.array_equal(out.a_mask, s.a_mask)
    assert np.array_equal(out.w_mask, s.w_mask)
    assert (out.delta, out.w_density, out.w_bits, out.a_bits) == (0.125, 0.4, 8, 4)


def test_missing_bit_widths_default_to_float_and_no_weight_mask():
    s = _sample(w_mask=False)
    data = _xz(_members(s))
    out = _decode_sample(P, data, _meta())["fc"]
    assert out.w_mask is None and out.w_bits == 32 and out.a_bits == 32
    assert np.array_equal(out.dz_levels, s.dz_levels)


def test_array_budget_is_computed_from_the_declared_shapes():
    entries = _layer_entries(_meta(nnz=4, has_w_mask=True), "m")
    budget = _array_budget(entries, "m")
    # out 2*3 = 6 bits -> 1 byte; 4 levels of at most 8 bytes; in 2*5 = 10 bits -> 2 bytes; weight 15 bits -> 2 bytes
    assert budget == {"fc/dz_mask": 1, "fc/dz_levels": 32, "fc/a_mask": 2, "fc/w_mask": 2}
    assert "fc/w_mask" not in _array_budget(_layer_entries(_meta(), "m"), "m")
    raw = _raw_limit(budget)
    assert raw == sum(budget.values()) + 4 * 1024 + 3 * sum(map(len, budget)) + 4096
    assert _file_limit(raw) == raw + raw // 64 + 65536


@pytest.mark.parametrize("nnz", [-1, 7])
def test_nnz_outside_the_output_is_refused(nnz):
    with pytest.raises(TraceError, match=rf"^m\.fc\.nnz: {nnz} is outside 0\.\.6 \(the output's elements\)"):
        _array_budget(_layer_entries(_meta(nnz=nnz), "m"), "m")


@pytest.mark.parametrize(("meta", "msg"), [
    ({"fc": 3}, r"m\.fc: must be an object, got 3"),
    ({"fc": {"delta": 1.0}}, r"m\.fc\.geometry: missing"),
    ([1], r"m: must be an object \{layer: \{\.\.\.\}\}, got list"),
    (_meta(nnz="many"), r"m\.fc\.nnz: invalid value 'many'"),
])
def test_bad_layer_entries_name_the_field(meta, msg):
    with pytest.raises(TraceError, match=msg):
        _array_budget(_layer_entries(meta, "m"), "m")


def test_missing_or_invalid_scalar_fields_are_named():
    data = _xz(_members(_sample()))
    m = _meta()
    del m["fc"]["delta"]
    with pytest.raises(TraceError, match=r"^m\.fc\.delta: missing$"):
        _decode_sample(P, data, m, where="m")
    with pytest.raises(TraceError, match=r"m\.fc\.w_bits: invalid value 'eight'"):
        _decode_sample(P, data, _meta(w_bits="eight"), where="m")


# ----------------------------------------------------------------------------- bounded decoding


def test_lzma_garbage_truncation_and_bombs():
    data = _xz(_members(_sample()))
    with pytest.raises(TraceError, match=r"it0000000\.npz\.xz: cannot decode sample arrays \(LZMAError"):
        _decode_sample(P, b"not xz at all", _meta())
    with pytest.raises(TraceError, match=r"the LZMA stream is truncated"):
        _decode_sample(P, data[: len(data) // 2], _meta())
    limit = _raw_limit(_array_budget(_layer_entries(_meta(), "m"), "m"))
    bomb = lzma.compress(b"\0" * (limit + 2))                 # tiny on disk, too big decompressed
    with pytest.raises(TraceError, match=rf"decompresses to more than {limit:,} bytes, the most the shapes "
                                         r"declared in m need; refused"):
        _decode_sample(P, bomb, _meta(), where="m")
    _decode_sample(P, lzma.compress(_xz_raw(_members(_sample()))), _meta())   # sanity: the helper round-trips


def _xz_raw(members: dict[str, bytes]) -> bytes:
    return lzma.decompress(_xz(members))


def test_not_an_npz_archive():
    with pytest.raises(TraceError, match=r"not an \.npz archive"):
        _decode_sample(P, lzma.compress(b"PK but not really"), _meta())


def test_undeclared_and_duplicate_members_are_refused():
    m = _members(_sample())
    with pytest.raises(TraceError, match=r"array 'fc/extra' is not declared by the manifest; allowed: "
                                         r"\['fc/a_mask', 'fc/dz_levels', 'fc/dz_mask'\]"):
        _decode_sample(P, _xz({**m, "fc/extra.npy": m["fc/a_mask.npy"]}), _meta())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        for k, v in [*m.items(), ("fc/a_mask.npy", m["fc/a_mask.npy"])]:
            zf.writestr(k, v)
    with pytest.raises(TraceError, match=r"array 'fc/a_mask' is stored twice"):
        _decode_sample(P, lzma.compress(buf.getvalue()), _meta())


def test_an_npy_header_larger_than_the_declared_shape_is_refused_before_reading():
    m = _members(_sample())
    hdr = io.BytesIO()
    npformat.write_array_header_1_0(hdr, {"descr": "<i8", "fortran_order": False, "shape": (10**9,)})
    m["fc/dz_levels.npy"] = hdr.getvalue() + b"\0" * 16         # claims 8 GB, holds 16 bytes
    with pytest.raises(TraceError, match=r"array 'fc/dz_levels' declares shape \(1000000000,\) "
                                         r"\(8,000,000,000 bytes\), more than the 24 bytes"):
        _decode_sample(P, _xz(m), _meta())


def test_a_member_larger_than_its_budget_is_refused_from_the_zip_directory():
    m = _members(_sample())
    m["fc/a_mask.npy"] = _npy(np.zeros(2000, dtype=np.uint8))
    with pytest.raises(TraceError, match=r"array 'fc/a_mask' holds [\d,]+ bytes, more than the 2 its declared "
                                         r"shape allows"):
        _decode_sample(P, _xz(m), _meta())


def test_object_arrays_and_truncated_data_are_refused():
    m = _members(_sample())
    m["fc/dz_levels.npy"] = _npy(np.array([1, "x", None], dtype=object))
    with pytest.raises(TraceError, match=r"array 'fc/dz_levels' has dtype object \(objects are not allowed\)"):
        _decode_sample(P, _xz(m), _meta())
    m = _members(_sample())
    m["fc/dz_levels.npy"] = m["fc/dz_levels.npy"][:-2]
    with pytest.raises(TraceError, match=r"array 'fc/dz_levels' is truncated \(4 of 6 bytes\)"):
        _decode_sample(P, _xz(m), _meta())
    m = _members(_sample())
    m["fc/dz_mask.npy"] = b"\x93NUMPY garbage"
    with pytest.raises(TraceError, match=r"cannot decode array 'fc/dz_mask' \(ValueError"):
        _decode_sample(P, _xz(m), _meta())


# ----------------------------------------------------------------------------- array contents


def _with(**repl: np.ndarray) -> bytes:
    m = _members(_sample())
    for k, v in repl.items():
        if v is None:
            del m[f"fc/{k}.npy"]
        else:
            m[f"fc/{k}.npy"] = _npy(v)
    return _xz(m)


@pytest.mark.parametrize(("repl", "meta", "msg"), [
    ({"dz_levels": np.array([3.0, -200.0, 1.0])}, {}, r"'fc/dz_levels' has dtype float64, expected integers"),
    ({"dz_levels": np.array([3, 0, 1], dtype=np.int16)}, {}, r"'fc/dz_levels' holds zeros"),
    ({"dz_levels": np.array([3, 1], dtype=np.int16)}, {"nnz": 2},
     r"'fc/dz_levels' has 2 values, mask has 3 non-zeros, manifest\.fc\.nnz declares 2$"),
    ({}, {"nnz": 2}, r"'fc/dz_levels' has 3 values, mask has 3 non-zeros, manifest\.fc\.nnz declares 2$"),
    ({"a_mask": np.array([1, 2], dtype=np.int8)}, {}, r"'fc/a_mask' has dtype int8, expected uint8"),
    ({"a_mask": np.array([1], dtype=np.uint8)}, {}, r"'fc/a_mask' has 1 bytes, expected 2 for shape \(2, 5\)"),
    ({"a_mask": None}, {}, r"'fc/a_mask' is missing"),
    ({}, {"has_w_mask": True}, r"'fc/w_mask' is missing"),
])
def test_arrays_inconsistent_with_their_layer_are_refused(repl, meta, msg):
    m = _meta(**meta)
    with pytest.raises(TraceError, match=rf"it0000000\.npz\.xz: array {msg}"):
        _decode_sample(P, _with(**repl), m)


def test_an_invalid_layer_sample_names_the_manifest_field():
    with pytest.raises(TraceError, match=r"^m\.fc: LayerSample\('fc'\)\.w_density: 1\.5 not in \[0, 1\]"):
        _decode_sample(P, _with(), _meta(w_density=1.5), where="m")


# ----------------------------------------------------------------------------- size limits


def test_geometry_size_limit_names_the_tensor_and_limit(monkeypatch):
    conv = LayerGeometry(name="c", kind="conv2d", N=2, C=3, K=4, H=8, W=8, P=8, Q=8, R=3, S=3, padding=(1, 1))
    biggest = max(math.prod(s) for s in (conv.output_shape, conv.input_shape, conv.weight_shape))
    assert biggest == 2 * 4 * 8 * 8
    monkeypatch.setattr(reading, "MAX_TENSOR_ELEMENTS", biggest)
    check_geometry_size(conv, "w")                                # at the limit: fine
    monkeypatch.setattr(reading, "MAX_TENSOR_ELEMENTS", biggest - 1)
    with pytest.raises(TraceError, match=rf"^w: output \(δ̃z\) N·K·P·Q = 512 elements \(shape \(2, 4, 8, 8\)\) "
                                         rf"exceeds the limit of {biggest - 1:,} elements per tensor$"):
        check_geometry_size(conv, "w")


def test_synthetic_size_checks_batch_and_layers(monkeypatch):
    check_synthetic_size("lenet5", 4, "s")
    for bad in (0, True, 2.0, "4"):
        with pytest.raises(TraceError, match=rf"^s\.batch: {bad!r} is not allowed; allowed: an integer >= 1"):
            check_synthetic_size("lenet5", bad, "s")
    monkeypatch.setattr(reading, "MAX_TENSOR_ELEMENTS", 1000)
    with pytest.raises(TraceError, match=r"^s: model lenet5, layer \S+ at batch 4: .* exceeds the limit of 1,000"):
        check_synthetic_size("lenet5", 4, "s")


def test_an_oversized_manifest_is_refused_before_parsing(tmp_path, monkeypatch):
    with TraceWriter(tmp_path / "t", meta={"model": "toy"}) as w:
        w.add_iteration(0, stats=None)
    size = (tmp_path / "t" / "manifest.json").stat().st_size
    monkeypatch.setattr(tformat, "MAX_MANIFEST_BYTES", size - 1)
    with pytest.raises(TraceError, match=rf"manifest\.json: the manifest is {size:,} bytes, more than the limit"):
        tformat.load(tmp_path / "t")


def test_an_oversized_sample_file_is_refused_by_its_declared_shapes(tmp_path):
    root = tmp_path / "t"
    with TraceWriter(root, meta={"model": "toy"}) as w:
        w.add_iteration(0, stats=None, samples=[_sample()])
    tformat.load(root).sample(0)
    man = json.loads((root / "manifest.json").read_text())
    ent = man["samples"][0]
    limit = _file_limit(_raw_limit(_array_budget(_layer_entries(ent["layers"], "m"), "m")))
    f = root / ent["file"]
    f.write_bytes(f.read_bytes() + b"\0" * (limit + 1 - f.stat().st_size))
    with pytest.raises(TraceError, match=rf"it0000000\.npz\.xz: sample file \(declared shapes in .* allow at most "
                                         rf"{limit:,} bytes\) is {limit + 1:,} bytes, more than the limit"):
        tformat.load(root)


# ----------------------------------------------------------------------------- confinement


@pytest.mark.parametrize("rel", ["../manifest.json", "samples/../manifest.json", "/etc/passwd", "samples/",
                                 "samples/.", "samples/..", "samples/sub/x.npz.xz", "other/x.npz.xz",
                                 "samples\\x", "samples/a\x00b", "x.npz.xz"])
def test_sample_paths_outside_samples_are_refused(tmp_path, rel):
    with pytest.raises(TraceError, match=rf"manifest\.json: field 'samples\[2\]\.file': .* is not allowed; "
                                         rf"allowed: a plain file name inside {SAMPLES_DIR}/"):
        sample_file_path(tmp_path, rel, "samples[2]")


def test_sample_path_type_missing_and_symlinks(tmp_path):
    with pytest.raises(TraceError, match=r"field 'samples\[0\]\.file': must be a string"):
        sample_file_path(tmp_path, 7, "samples[0]")
    (tmp_path / SAMPLES_DIR).mkdir()
    with pytest.raises(TraceError, match=r"samples/a\.npz\.xz: sample file listed in field 'samples\[0\]' is missing"):
        sample_file_path(tmp_path, "samples/a.npz.xz", "samples[0]")
    real = tmp_path / SAMPLES_DIR / "real.npz.xz"
    real.write_bytes(b"x")
    assert sample_file_path(tmp_path, "samples/real.npz.xz", "samples[0]") == real.resolve()
    (tmp_path / SAMPLES_DIR / "inside.npz.xz").symlink_to(real)
    assert sample_file_path(tmp_path, "samples/inside.npz.xz", "samples[0]") == real.resolve()
    secret = tmp_path / "secret"
    secret.write_bytes(b"s")
    (tmp_path / SAMPLES_DIR / "out.npz.xz").symlink_to(secret)
    with pytest.raises(TraceError, match=r"out\.npz\.xz: resolves to .*secret, outside the trace's samples/ "
                                         r"folder .*; refused"):
        sample_file_path(tmp_path, "samples/out.npz.xz", "samples[0]")
    loop = tmp_path / SAMPLES_DIR / "loop.npz.xz"
    loop.symlink_to(loop)
    with pytest.raises(TraceError, match=r"cannot resolve the sample file listed in field 'samples\[0\]'"):
        sample_file_path(tmp_path, "samples/loop.npz.xz", "samples[0]")


def test_default_iteration_skips_a_partial_last_batch(tmp_path):
    """The iteration replayed by default is the last sampled one with the largest mini-batch (from the manifest)."""
    import shutil

    src = Path(__file__).resolve().parents[1] / "traces" / "samples" / "lenet5-digits-dither"
    tr = tformat.load(src, verify=False)
    assert [tr.minibatch(i) for i in tr.sampled_iterations] == [64, 64, 64, 64, 64, 29]
    it, why = tr.default_iteration()
    assert it == 40 and "partial batch of 29" in why
    t = tmp_path / "t"
    shutil.copytree(src, t)
    man = json.loads((t / "manifest.json").read_text())
    for ent in man["samples"][-1:]:
        for v in ent["layers"].values():
            v["geometry"]["batch_size"] = 64  # a full last batch: the last sampled iteration is replayed
    (t / "manifest.json").write_text(json.dumps(man))
    it, why = tformat.load(t, verify=False).default_iteration()
    assert it == 45 and why == "iteration 45: the last sampled, a full batch of 64"
    with pytest.raises(TraceError, match="iteration 7 was not sampled"):
        tr.minibatch(7)
