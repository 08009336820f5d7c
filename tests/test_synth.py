"""Synthetic traces: densities as asked, deterministic by seed, SCALE-Sim CSVs, loadable by the reader."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from hwsim.arch import ARCH_DIR
from hwsim.trace import load
from hwsim.trace.format import TraceError
from hwsim.trace.synth import (
    HAN2015_OUTPUT_ACT_DENSITY,
    HAN2015_WEIGHT_DENSITY,
    alexnet_han2015,
    bernoulli_mask,
    synth_levels,
    synthesize,
    synthesize_density_sweep,
)
from hwsim.trace.topology import LayerSpec, model_layers, read_scalesim_topology

CONV3_CSV = ARCH_DIR / "topologies" / "resnet18_conv3.csv"


def test_densities_within_tolerance(tmp_path):
    p = synthesize(tmp_path / "t", model="lenet5", w_density=0.4, a_density=0.6, dz_density=0.15, seed=3)
    t = load(p)
    assert t.meta["method"] == "synthetic" and t.meta["model"] == "lenet5" and t.complete
    s = t.sample()
    assert list(s) == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    for i, (name, x) in enumerate(s.items()):
        n_w, n_a, n_dz = x.w_mask.size, x.a_mask.size, x.dz_levels.size
        tol = lambda n: 4 * np.sqrt(0.25 / n) + 1e-9  # noqa: E731 - 4 sigma of a Bernoulli mean
        assert abs(x.w_mask.mean() - 0.4) < tol(n_w), name
        assert x.w_density == pytest.approx(x.w_mask.mean())
        assert abs(x.a_density - (1.0 if i == 0 else 0.6)) < tol(n_a), name  # conv1 reads the dense image
        assert abs(x.dz_density - 0.15) < tol(n_dz) + 0.02, name
        assert x.w_bits == x.a_bits == 8
        assert 2 <= x.max_bits <= 5
    assert t.iterations[0].layers["conv2"].density == pytest.approx(s["conv2"].dz_density)


def test_levels_small_and_signed():
    lv = synth_levels((200_000,), 0.3, seed=1, name="x", level_p=0.6, max_level=7)
    nz = lv[lv != 0]
    assert abs(nz.size / lv.size - 0.3) < 0.01
    assert np.abs(nz).max() == 7 and (np.abs(nz) == 1).mean() == pytest.approx(0.6, abs=0.01)
    assert abs((nz > 0).mean() - 0.5) < 0.01


def test_masks_nested_across_densities():
    lo = bernoulli_mask((5000,), 0.2, seed=0, name="conv1", role="a")
    hi = bernoulli_mask((5000,), 0.7, seed=0, name="conv1", role="a")
    assert not np.any(lo & ~hi)
    assert bernoulli_mask((10,), 1.0, seed=0, name="x", role="w").all()
    assert not bernoulli_mask((10,), 0.0, seed=0, name="x", role="w").any()


def test_deterministic_by_seed(tmp_path):
    kw = {"model": "lenet5", "w_density": 0.5, "a_density": 0.5, "dz_density": 0.2}
    a = load(synthesize(tmp_path / "a", seed=7, **kw)).sample()
    b = load(synthesize(tmp_path / "b", seed=7, **kw)).sample()
    c = load(synthesize(tmp_path / "c", seed=8, **kw)).sample()
    for name in a:
        assert np.array_equal(a[name].dz_levels, b[name].dz_levels)
        assert np.array_equal(a[name].a_mask, b[name].a_mask)
        assert np.array_equal(a[name].w_mask, b[name].w_mask)
    assert not np.array_equal(a["conv2"].dz_levels, c["conv2"].dz_levels)


def test_per_layer_overrides(tmp_path):
    p = synthesize(tmp_path / "t", model="lenet5", dz_density=0.1,
                   per_layer={"conv1": {"a": 0.5}, "fc1": {"w": 0.25, "dz": 0.5}})
    s = load(p).sample()
    assert abs(s["conv1"].a_density - 0.5) < 0.05  # per_layer beats the dense first input
    assert abs(s["fc1"].w_density - 0.25) < 0.02 and abs(s["fc1"].dz_density - 0.5) < 0.2
    assert s["fc2"].w_mask is None and s["fc2"].w_density == 1.0  # dense weights: no mask stored


@pytest.mark.parametrize("kw, match", [
    ({"per_layer": {"conv9": {"w": 0.5}}}, r"per_layer: unknown layer\(s\) \['conv9'\]; allowed: conv1, conv2"),
    ({"per_layer": {"conv1": {"x": 0.5}}}, r"per_layer\.conv1\.x: unknown role; allowed: w, a, dz"),
    ({"w_density": 1.5}, r"w_density: density 1\.5 is not allowed; allowed: a number in \[0, 1\]"),
    ({"batch": 0}, r"batch: 0 is not allowed; allowed: integer >= 1"),
])
def test_bad_arguments(tmp_path, kw, match):
    with pytest.raises(ValueError, match=match):
        synthesize(tmp_path / "t", model="lenet5", **kw)


def test_exactly_one_source(tmp_path):
    with pytest.raises(ValueError, match="exactly one of"):
        synthesize(tmp_path / "t")
    with pytest.raises(ValueError, match="exactly one of"):
        synthesize(tmp_path / "t", model="lenet5", scalesim_csv=CONV3_CSV)
    with pytest.raises(ValueError, match="allowed: alexnet, alexnet_conv, resnet18, vgg16, lenet5"):
        synthesize(tmp_path / "t", model="googlenet")


def test_model_geometries():
    macs = {m: sum(s.geometry(1).macs for s in model_layers(m)) for m in ("alexnet", "resnet18", "vgg16", "lenet5")}
    assert macs["resnet18"] == pytest.approx(1.814e9, rel=1e-3)  # the well-known 1.8 GMACs
    assert macs["vgg16"] == pytest.approx(15.47e9, rel=1e-3)
    g = {s.name: s.geometry(1) for s in model_layers("alexnet")}
    assert (g["conv1"].P, g["conv2"].P, g["conv5"].P, g["fc6"].C) == (55, 27, 13, 9216)
    r = {s.name: s.geometry(2) for s in model_layers("resnet18")}
    assert r["layer2.0.downsample.0"].output_shape == (2, 128, 28, 28) and r["fc"].kind == "linear"
    assert len([n for n in r if n != "fc"]) == 20


def test_layer_specs_and_batch(tmp_path):
    specs = [LayerSpec(name="c", C=4, K=8, H=10, W=10, R=3, S=3, padding=1),
             LayerSpec(name="f", kind="linear", C=800, K=10)]
    s = load(synthesize(tmp_path / "t", layers=specs, batch=3, a_density=0.5)).sample()
    assert s["c"].geometry.output_shape == (3, 8, 10, 10) and s["f"].a_mask.shape == (3, 800)
    d = load(synthesize(tmp_path / "d", layers=[{"name": "c", "C": 4, "K": 8, "H": 10, "W": 10, "R": 3, "S": 3,
                                                 "stride": [2, 2]}])).sample()
    assert d["c"].geometry.stride == (2, 2) and d["c"].geometry.P == 4
    with pytest.raises(ValueError, match=r"layers\[0\]: unknown field\(s\) \['k'\]; allowed: name, kind, C, K"):
        synthesize(tmp_path / "e", layers=[{"name": "c", "C": 4, "k": 8}])


def test_scalesim_csv_parse():
    specs = read_scalesim_topology(CONV3_CSV)
    g = {s.name: s.geometry(1) for s in specs}
    c = g["Conv3_1b"]  # the line: 28,28,3,3,128,128,1 (SCALE-Sim: no padding)
    assert (c.H, c.W, c.R, c.S, c.C, c.K, c.stride, c.padding) == (28, 28, 3, 3, 128, 128, (1, 1), (0, 0))
    assert (c.P, c.Q) == (26, 26)
    assert g["Conv3_1a"].stride == (2, 2) and g["Conv3_1a"].P == 27


def test_scalesim_csv_real_file_quirks(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                 " Conv1 , 224 , 224 , 7 , 7 , 3 , 64 , 2 ,  \n\n"
                 "Conv3_1b,28,28,3,3,128,128,1,\n"
                 "FC,1,1,1,1,512,1000,1,\n")
    specs = read_scalesim_topology(p)
    assert [s.name for s in specs] == ["Conv1", "Conv3_1b", "FC"]
    assert specs[0].geometry().P == 109


@pytest.mark.parametrize("body, match", [
    ("Layer, M, X, K,\nL1,1,2,3,\n", r"is not a SCALE-Sim topology; allowed: a header 'Layer name, .*' \(convolutions\) "
                                       r"or 'Layer, M, N, K' \(GEMMs\)"),
    ("Layer, M, N, K,\nL1,1,0,3,\n", r":2: column 'N' of layer 'L1' is '0'; allowed: integer >= 1"),
    ("Layer, M, N, K,\nL1,1,2\n", r":2: expected 4 values \(Layer, M, N, K\)"),
    ("Conv3_1b,28,28,3,3,128,x,1,\n", r":2: column 'Num Filter' of layer 'Conv3_1b' is 'x'; allowed: integer >= 1"),
    ("A,28,28,3,3,128,0,1,\n", r"column 'Num Filter' of layer 'A' is '0'"),
    ("A,2,2,3,3,1,1,1,\n", "filter 3×3 is larger than its input 2×2"),
    ("A,28,28,3,3\n", "expected 8 values"),
    ("A,8,8,3,3,1,1,1,\nA,8,8,3,3,1,1,1,\n", "duplicate layer name 'A'"),
])
def test_scalesim_csv_errors(tmp_path, body, match):
    p = tmp_path / "bad.csv"
    header = "" if body.startswith("Layer") else \
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
    p.write_text(header + body)
    with pytest.raises(TraceError, match=match):
        read_scalesim_topology(p)


def test_scalesim_trace(tmp_path):
    t = load(synthesize(tmp_path / "t", scalesim_csv=CONV3_CSV, w_density=0.5, a_density=0.5))
    assert t.meta["model"] == "resnet18_conv3" and len(t.layers) == 5
    s = t.sample()
    assert s["Conv3_1a"].a_density == 1.0  # first layer of the file: dense input by default
    assert abs(s["Conv3_1b"].a_density - 0.5) < 0.02


def test_alexnet_han2015(tmp_path):
    t = load(alexnet_han2015(tmp_path / "han", seed=0))
    s = t.sample()
    assert list(s) == ["conv1", "conv2", "conv3", "conv4", "conv5"] and t.meta["model"] == "alexnet_han2015"
    outs = list(HAN2015_OUTPUT_ACT_DENSITY.values())
    for i, (name, x) in enumerate(s.items()):
        assert abs(x.w_density - HAN2015_WEIGHT_DENSITY[name]) < 0.01
        want_a = 1.0 if i == 0 else outs[i - 1]
        assert abs(x.a_density - want_a) < 0.01, name
    assert s["conv1"].geometry.input_shape == (1, 3, 227, 227) and s["conv2"].geometry.C == 96


def test_density_sweep(tmp_path):
    paths = synthesize_density_sweep(tmp_path / "sw", "lenet5", densities=[1.0, 0.5, 0.1], seed=0)
    assert [p.name for p in paths] == ["d1.00", "d0.50", "d0.10"]
    idx = json.loads((tmp_path / "sw" / "index.json").read_text())
    assert [e["density"] for e in idx["traces"]] == [1.0, 0.5, 0.1]
    samples = [load(p).sample()["conv2"] for p in paths]
    for d, x in zip([1.0, 0.5, 0.1], samples, strict=True):
        assert abs(x.a_density - d) < 0.05 and abs(x.w_density - d) < 0.05 and abs(x.dz_density - d) < 0.05
    assert not np.any(samples[2].a_mask & ~samples[1].a_mask)  # nested: only density changes
    assert load(paths[2]).sample()["conv1"].a_density < 0.2  # the sweep sparsifies the first input too


def test_synth_is_numpy_only():
    code = "import sys, hwsim.trace.synth; assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_a_synthetic_sample_is_stored_at_the_fast_lzma_level_and_reads_back_as_at_the_default(tmp_path):
    import lzma

    from hwsim.trace.synth import SYNTH_LZMA_PRESET
    from hwsim.trace.writer import LZMA_PRESET, TraceWriter, encode_sample

    path = synthesize(tmp_path / "t", model="lenet5", batch=2, seed=3, a_density=0.5, dz_density=0.1)
    tr = load(path)
    stored = (path / tr.manifest["samples"][0]["file"]).read_bytes()
    raw = lzma.decompress(stored)
    assert SYNTH_LZMA_PRESET == 0 and stored == lzma.compress(raw, preset=0)  # level 0, not xz's default 6
    samples = list(tr.sample().values())
    assert lzma.decompress(encode_sample(samples, preset=LZMA_PRESET)[0]) == raw  # same arrays at any level
    with pytest.raises(ValueError, match="lzma_preset=10; allowed: an integer 0..9"):
        TraceWriter(tmp_path / "bad", meta={}, lzma_preset=10)
