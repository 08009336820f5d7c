"""Trace format: bit-exact round trip; truncated, corrupted or foreign traces fail cleanly."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from hwsim.trace.format import (
    FORMAT_VERSION,
    ITERATION_LOG,
    MANIFEST,
    LayerGeometry,
    LayerSample,
    LayerStats,
    TraceError,
    TraceMeta,
    TraceWarning,
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


# ----------------------------------------------------------------------------- version 3: iterations.jsonl


def _stats(density: float) -> dict:
    return {"fc": {"density": density, "max_bits": 3, "hist": [2, 1] + [0] * 13, "delta": 0.5}}


def test_v3_layout_appends_iterations_and_keeps_the_manifest_small(tmp_path):
    """The manifest does not grow with the iterations (v2 rewrote them all into it every flush)."""
    path = tmp_path / "t"
    sizes = []
    with TraceWriter(path, meta={"model": "toy"}, flush_every_s=0.0) as w:  # flush after every iteration
        for i in range(300):
            w.add_iteration(i, stats=_stats(0.5), loss=1.0 / (i + 1), acc=0.5, epoch=i // 100)
            sizes.append((path / MANIFEST).stat().st_size)
            assert w.iterations_written == i + 1
    man = json.loads((path / MANIFEST).read_text())
    assert man["version"] == FORMAT_VERSION == 3 and "iterations" not in man
    assert man["iteration_log"]["lines"] == 300 and man["iteration_log"]["file"] == ITERATION_LOG
    assert max(sizes) - min(sizes) < 16  # only the line/byte counts and the digest change
    assert len((path / ITERATION_LOG).read_bytes().splitlines()) == 300
    tr = load(path)
    assert [r.index for r in tr.iterations] == list(range(300))
    assert tr.iterations[7].loss == pytest.approx(1 / 8) and tr.iterations[250].epoch == 2
    assert tr.iterations[0].layers["fc"] == LayerStats(density=0.5, max_bits=3, hist=(2, 1) + (0,) * 13, delta=0.5)


def test_v3_iterations_are_read_lazily_without_verify(tmp_path):
    path = tmp_path / "t"
    with TraceWriter(path, meta={}) as w:
        w.add_iteration(0, stats=_stats(0.5))
    (path / ITERATION_LOG).write_bytes(b"garbage\n")
    tr = load(path, verify=False)  # the manifest alone
    with pytest.raises(TraceError, match="iterations.jsonl: line 1"):
        _ = tr.iterations
    with pytest.raises(TraceError, match="iterations.jsonl: line 1"):
        load(path)


def test_records_without_stats_and_extra_keys(tmp_path):
    path = tmp_path / "t"
    with TraceWriter(path, meta={"model": "toy", "stats_every": 2, "lr": 0.1, "custom": [1]}) as w:
        w.add_iteration(0, stats=_stats(0.5), loss=2.0, lr_now=0.1)
        w.add_iteration(1, stats=None, loss=1.5)
    tr = load(path)
    a, b = tr.iterations
    assert a.has_stats and not b.has_stats and b.layers == {} and b.loss == 1.5
    assert a.extra == {"lr_now": 0.1} and a.mean_density() == 0.5 and b.mean_density() is None
    m = tr.meta
    assert isinstance(m, TraceMeta) and m.model == "toy" and m.stats_every == 2
    assert m.extra == {"lr": 0.1, "custom": [1]} and m["lr"] == 0.1 and m.get("nope") is None
    assert dict(m) == m.to_json() == {"model": "toy", "stats_every": 2, "lr": 0.1, "custom": [1]}


def _interrupted(path: Path, tail: bytes) -> None:
    """A run killed after 3 flushed and 2 unflushed iterations, with ``tail`` half-written."""
    w = TraceWriter(path, meta={"model": "toy"}, flush_every_s=1e9)
    for i in range(3):
        w.add_iteration(i, stats=_stats(0.5), loss=1.0)
    w.flush()
    for i in range(3, 5):
        w.add_iteration(i, stats=_stats(0.25), loss=0.5)
    w._log._fp.write(tail)  # killed inside the write of iteration 5: no close, manifest says 'running'
    w._log._fp.close()


@pytest.mark.parametrize("tail", [b'{"index":5,"epoch":null,"lo', b'[5]\n', b'{"index":5,"loss":"x"}'])
def test_torn_last_line_after_a_crash_is_skipped_with_a_warning(tmp_path, tail):
    _interrupted(tmp_path / "t", tail)
    man = json.loads((tmp_path / "t" / MANIFEST).read_text())
    assert man["status"] == "running" and man["iteration_log"]["lines"] == 3
    with pytest.warns(TraceWarning, match=r"iterations\.jsonl: line 6 .*ignored, 5 iterations read"):
        tr = load(tmp_path / "t")
    assert [r.index for r in tr.iterations] == [0, 1, 2, 3, 4]  # also the 2 whole lines written after the flush
    assert tr.iterations[4].layers["fc"].density == 0.25 and not tr.complete


def test_a_bad_line_before_the_last_is_an_error(tmp_path):
    _interrupted(tmp_path / "t", b"not json\n" + b'{"index":6}\n')
    with pytest.raises(TraceError, match=r"iterations\.jsonl: line 6 is not a JSON object"):
        load(tmp_path / "t")


def test_v2_manifest_fixture_still_loads():
    """tests/data/trace_v2: a hand-written version 2 manifest (iterations inside it)."""
    tr = load(Path(__file__).parent / "data" / "trace_v2")
    assert tr.version == 2 and tr.complete and tr.sampled_iterations == []
    assert tr.meta.model == "toy" and tr.meta.s == 2.0 and tr.meta.stats_every == 1 and tr.meta.int8 is False
    assert tr.meta.coverage["forward"] == 1.0 and tr.meta.extra["lr"] == 0.05
    a, b = tr.iterations
    assert (a.index, a.epoch, a.loss, a.acc) == (0, 0, 2.25, 0.5) and b.loss is None and b.extra == {"lr_now": 0.04}
    assert a.layers["fc"].hist[:2] == (1, 1) and b.layers["fc"].max_bits == 2 and tr.summary["test_acc"] == 0.5
    assert [g.name for g in tr.layers] == ["fc"]


@pytest.mark.parametrize(("key", "value", "field"), [
    ("model", 3, "meta.model"), ("s", "x", "meta.s"), ("stats_every", 0, "meta.stats_every"),
    ("int8", "yes", "meta.int8"), ("coverage", [1], "meta.coverage"), ("lr", "fast", "meta.lr"),
])
def test_typed_meta_names_the_field(tmp_path, key, value, field):
    with TraceWriter(tmp_path / "t", meta={"model": "toy", key: value}) as w:
        w.add_iteration(0, stats=_stats(0.5))
    with pytest.raises(TraceError, match=rf"manifest\.json: field '{field}'"):
        load(tmp_path / "t")


@pytest.mark.parametrize(("rec", "field"), [
    ({"index": -1}, "index"), ({"index": 0, "epoch": "one"}, "epoch"), ({"index": 0, "sampled": 1}, "sampled"),
    ({"index": 0, "layers": {"fc": {"max_bits": 99}}}, "layers.fc.max_bits"),
    ({"index": 0, "layers": {"fc": {"hist": "many"}}}, "layers.fc.hist"),
    ({"index": 0, "layers": [1]}, "layers"),
])
def test_typed_iteration_records_name_line_and_field(tmp_path, rec, field):
    path = tmp_path / "t"
    with TraceWriter(path, meta={}) as w:
        w.add_iteration(0, stats=_stats(0.5))
        w._log.append(rec)  # a record the writer's API would not produce
    with pytest.raises(TraceError, match=rf"iterations\.jsonl: line 2: field '{re.escape(field)}'"):
        load(path)
