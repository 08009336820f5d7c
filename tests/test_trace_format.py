"""Trace format: bit-exact round trip; truncated, corrupted or foreign traces fail cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hwsim.trace.format import (
    FORMAT_VERSION,
    LayerGeometry,
    LayerSample,
    TraceError,
    TraceWriter,
    layer_stats,
    load,
)


def _samples(rng: np.random.Generator) -> list[LayerSample]:
    conv = LayerGeometry(name="conv1", kind="conv2d", N=3, C=4, K=6, H=9, W=7, P=5, Q=4, R=3, S=3,
                         stride=(2, 2), padding=(1, 1), groups=2, batch_size=8)
    lin = LayerGeometry(name="fc#1", kind="linear", N=3, C=13, K=11)
    out = []
    for g in (conv, lin):
        lv = rng.integers(-3, 4, size=g.output_shape) * (rng.random(g.output_shape) < 0.2)
        lv.flat[0] = 40000  # needs int32 storage
        lv.flat[1] = -129
        out.append(LayerSample(geometry=g, delta=float(rng.random()), dz_levels=lv.astype(np.int64),
                               a_mask=rng.random(g.input_shape) < 0.4, w_density=0.5,
                               w_mask=rng.random(g.weight_shape) < 0.5, w_bits=8, a_bits=8))
    return out


def _write(path: Path, samples: list[LayerSample]) -> None:
    with TraceWriter(path, meta={"model": "toy", "method": "dither", "s": 2.0}) as w:
        for s in samples:
            w.add_layer(s.geometry)
        w.add_iteration(0, stats={s.geometry.name: layer_stats(s.dz_levels) for s in samples}, loss=1.5, acc=0.25,
                        samples=samples)
        w.add_iteration(1, stats={s.geometry.name: layer_stats(s.dz_levels) for s in samples}, loss=float("nan"))
        w.add_summary(test_acc=0.5)


@pytest.fixture()
def trace_dir(tmp_path: Path) -> tuple[Path, list[LayerSample]]:
    samples = _samples(np.random.default_rng(0))
    _write(tmp_path / "t", samples)
    return tmp_path / "t", samples


def test_round_trip_is_bit_exact(trace_dir):
    path, samples = trace_dir
    tr = load(path)
    assert tr.complete and tr.meta["s"] == 2.0 and tr.manifest["summary"]["test_acc"] == 0.5
    assert [g.name for g in tr.layers] == ["conv1", "fc#1"]
    assert tr.layers[0] == samples[0].geometry
    assert tr.iterations[0].loss == 1.5 and tr.iterations[1].loss is None  # NaN is stored as null
    got = tr.sample()  # iteration 0 is the only sampled one
    for s in samples:
        g = got[s.geometry.name]
        assert g.geometry == s.geometry
        assert g.delta == s.delta and g.w_density == s.w_density and (g.w_bits, g.a_bits) == (8, 8)
        np.testing.assert_array_equal(g.dz_levels, s.dz_levels)
        np.testing.assert_array_equal(g.a_mask, s.a_mask)
        np.testing.assert_array_equal(g.w_mask, s.w_mask)
        assert g.max_bits == 17  # |40000| needs 16 magnitude bits + sign


def test_truncated_manifest_names_the_file(trace_dir):
    path, _ = trace_dir
    m = path / "manifest.json"
    m.write_bytes(m.read_bytes()[:200])
    with pytest.raises(TraceError, match=r"manifest\.json.*truncated or corrupted"):
        load(path)


@pytest.mark.parametrize(("edit", "field"), [
    (lambda m: m.pop("layers"), "'layers' is missing"),
    (lambda m: m.update(samples={}), "'samples' must be list"),
    (lambda m: m.update(format="other"), "'format'"),
    (lambda m: m["layers"][0].update(P=99), r"layers\[0\].*P"),
    (lambda m: m["layers"][1].update(N="3"), r"layers\[1\].*N"),
    (lambda m: m["layers"][0].update(stride=["a", 1]), r"layers\[0\].*stride"),
    (lambda m: m["layers"].__setitem__(0, 7), r"layers\[0\]"),
    (lambda m: m["samples"][0].pop("sha256"), r"samples\[0\]\.sha256"),
    (lambda m: m["samples"][0].update(file=5), r"samples\[0\]\.file"),
    (lambda m: m["samples"][0]["layers"]["conv1"].pop("geometry"), r"samples\[0\].*conv1.*geometry"),
    (lambda m: m["samples"][0]["layers"]["conv1"].update(delta="x"), r"samples\[0\].*conv1.*delta"),
])
def test_corrupted_manifest_fields_are_named(trace_dir, edit, field):
    path, _ = trace_dir
    m = path / "manifest.json"
    man = json.loads(m.read_text())
    edit(man)
    m.write_text(json.dumps(man))
    with pytest.raises(TraceError, match=field) as ei:
        tr = load(path)
        tr.sample()
    assert "manifest.json" in str(ei.value)


def test_version_mismatch(trace_dir):
    path, _ = trace_dir
    m = path / "manifest.json"
    man = json.loads(m.read_text())
    man["version"] = FORMAT_VERSION + 1
    m.write_text(json.dumps(man))
    with pytest.raises(TraceError, match=rf"'version' is {FORMAT_VERSION + 1}, this hwsim reads version {FORMAT_VERSION}"):
        load(path)


def test_corrupted_or_truncated_sample_file(trace_dir):
    path, _ = trace_dir
    f = next((path / "samples").glob("*.npz.xz"))
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(TraceError, match=rf"{f.name}: checksum mismatch .*sha256"):
        load(path)
    tr = load(path, verify=False)
    with pytest.raises(TraceError, match=rf"{f.name}: checksum mismatch"):
        tr.sample()
    f.write_bytes(bytes(data[:100]))
    with pytest.raises(TraceError, match=rf"{f.name}: checksum mismatch"):
        load(path)
    f.unlink()
    with pytest.raises(TraceError, match=rf"{f.name}: sample file listed in field 'samples\[0\]' is missing"):
        load(path)


def test_sample_with_valid_checksum_but_bad_arrays(trace_dir):
    """A sample rewritten consistently (checksum updated) but holding wrong arrays still fails cleanly."""
    import hashlib
    import io
    import lzma

    path, _ = trace_dir
    f = next((path / "samples").glob("*.npz.xz"))
    buf = io.BytesIO()
    np.savez(buf, **{"conv1/dz_mask": np.zeros(3, np.uint8)})
    data = lzma.compress(buf.getvalue())
    f.write_bytes(data)
    m = path / "manifest.json"
    man = json.loads(m.read_text())
    man["samples"][0]["sha256"] = hashlib.sha256(data).hexdigest()
    m.write_text(json.dumps(man))
    with pytest.raises(TraceError, match=rf"{f.name}: array 'conv1/dz_mask' has 3 bytes"):
        load(path).sample()
    f.write_bytes(b"not lzma")
    man["samples"][0]["sha256"] = hashlib.sha256(b"not lzma").hexdigest()
    m.write_text(json.dumps(man))
    with pytest.raises(TraceError, match=rf"{f.name}: cannot decode sample arrays"):
        load(path).sample()


def test_missing_trace_and_existing_trace(tmp_path):
    with pytest.raises(TraceError, match="no such trace directory"):
        load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TraceError, match="manifest.json: missing"):
        load(tmp_path / "empty")
    _write(tmp_path / "t", _samples(np.random.default_rng(1)))
    with pytest.raises(FileExistsError, match="overwrite"):
        TraceWriter(tmp_path / "t", meta={})


def test_interrupted_writer_leaves_readable_trace(tmp_path):
    samples = _samples(np.random.default_rng(2))
    with pytest.raises(KeyboardInterrupt), TraceWriter(tmp_path / "t", meta={"model": "toy"}) as w:
        w.add_iteration(0, stats={}, samples=samples)
        raise KeyboardInterrupt
    tr = load(tmp_path / "t")
    assert not tr.complete and tr.manifest["status"].startswith("interrupted: KeyboardInterrupt")
    assert set(tr.sample()) == {"conv1", "fc#1"}


def test_committed_sample_trace_is_readable():
    """traces/samples/ holds a real capture (lenet5, digits, dither) that other tests and users can replay."""
    tr = load(Path(__file__).resolve().parents[1] / "traces" / "samples" / "lenet5-digits-dither")
    assert tr.complete and tr.meta["method"] == "dither" and tr.meta["s"] == 4.0
    assert [g.name for g in tr.layers] == ["features.0", "features.4", "classifier.1", "classifier.3", "classifier.5"]
    for it, layers in tr.samples():
        s = layers["features.0"]
        assert s.geometry.N == 8 and s.geometry.batch_size in (64, 29) and s.dz_levels.shape == (8, 6, 28, 28)
        assert 0 < s.dz_density < 0.5 and s.delta > 0
        stats = next(r for r in tr.iterations if r.index == it).layers
        assert set(stats) == set(layers)
