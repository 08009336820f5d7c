"""Provenance helpers: figure labels of every GEMM kind (layer_description), the base-arch cache."""

from __future__ import annotations

import pytest

from hwsim.results.provenance import layer_description
from hwsim.trace.format import LayerGeometry


def _g(**kw) -> dict:
    return LayerGeometry(**kw).to_json()


@pytest.mark.parametrize(("geometry", "label"), [
    (dict(name="fc", kind="linear", N=64, C=400, K=120), "linear 400→120"),
    (dict(name="c", kind="conv2d", N=2, C=6, K=16, H=14, W=14, P=10, Q=10, R=5, S=5), "conv 6→16 5×5 @14×14"),
    (dict(name="dw", kind="conv2d", N=2, C=8, K=8, H=6, W=6, P=6, Q=6, R=3, S=3, padding=(1, 1), groups=8),
     "conv 8→8 3×3 g8 @6×6"),
    (dict(name="c1", kind="conv1d", N=2, C=8, K=16, H=1, W=32, P=1, Q=30, R=1, S=3), "conv1d 8→16 k3 @32"),
    (dict(name="up", kind="conv_transpose2d", N=2, C=16, K=8, H=7, W=7, P=14, Q=14, R=4, S=4, stride=(2, 2),
          padding=(1, 1)), "convT 16→8 4×4 @7×7"),
    # attention's QKᵀ for 2 examples × 4 heads of 17 tokens, head width 12: 8 products 17×12 · 12×17
    (dict(name="attn:qk", kind="matmul", N=17, C=8 * 12, K=8 * 17, groups=8), "matmul 17×12·12×17 ×8"),
    (dict(name="mm", kind="matmul", N=5, C=3, K=4), "matmul 5×3·3×4"),
])
def test_each_kind_reads_as_its_shape(geometry, label):
    assert layer_description(_g(**geometry)) == label


def test_unknown_or_partial_geometry_still_gets_a_label():
    assert layer_description({"kind": "matmul", "C": 6, "K": 4}) == "matmul 6→4"  # no groups: treated as one
    assert layer_description({"kind": "einsum", "C": 2, "K": 3}) == "einsum 2→3"
    assert layer_description({}) == ""


def test_base_params_are_parsed_once_per_file_version(tmp_path, monkeypatch):
    import hwsim.arch.loader as loader
    from hwsim.arch.loader import ARCH_DIR
    from hwsim.results.provenance import base_params_for

    f = tmp_path / "a.yaml"
    f.write_text((ARCH_DIR / "scnn.yaml").read_text())
    calls = []
    real = loader.read_yaml
    monkeypatch.setattr(loader, "read_yaml", lambda p: calls.append(p) or real(p))
    first = base_params_for(str(f))
    first["name"] = "mutated by a caller"          # a caller's edit must not leak into the cache
    again = base_params_for(str(f))
    assert len(calls) == 1 and again["name"] != "mutated by a caller"
    f.write_text(f.read_text().replace("name: scnn", "name: scnn-edited", 1) + "\n")  # a new version: re-read
    assert base_params_for(str(f))["name"] == "scnn-edited" and len(calls) == 2
    assert base_params_for(str(tmp_path / "missing.yaml")) is None and base_params_for(None) is None


def test_trace_provenance_reads_the_typed_trace():
    from pathlib import Path

    from hwsim.results.provenance import trace_provenance
    from hwsim.trace.format import load

    tr = load(Path(__file__).resolve().parents[1] / "traces" / "samples" / "lenet5-digits-dither", verify=False)
    it = tr.sampled_iterations[-1]
    t = trace_provenance(tr, replayed=[it], path="p")
    m = tr.meta
    assert (t["model"], t["dataset"], t["method"], t["s"], t["k"], t["seed"]) == (m.model, m.dataset, m.method, m.s,
                                                                                   m.k, m.seed)
    assert t["epochs"] == m.extra["epochs"] and t["iterations"] == len(tr.iterations) > 1
    assert t["test_acc"] == tr.summary["test_acc"] and t["replayed_iterations"] == [it] and t["path"] == "p"
    assert list(t["layers"]) == [g.name for g in tr.layers]
    assert t["replayed_examples"] == tr.sample_batch(it) == max(g.N for g in tr.layers)


def test_sample_batch_is_the_largest_layer_batch_of_that_iteration():
    from _hwsim_fixtures import trace_from_manifest

    tr = trace_from_manifest({"samples": [
        {"iteration": 0, "layers": [{"name": "a", "N": 64}, {"name": "b", "N": 8}]},          # version 1: a list
        {"iteration": 3, "layers": {"a": {"geometry": {"N": 5}}, "b": {"geometry": {"N": 29}}}}]})
    assert tr.sample_batch(0) == 64 and tr.sample_batch(3) == 29
    assert tr.sample_batch(1) is None


@pytest.mark.parametrize("meta, want", [
    ({"method": "dither", "dither_rng": "counter"}, "counter"),
    ({"method": "dither"}, "sfc64"),  # absent: a trace made before the counter stream (traces/FORMAT.md)
    ({"method": "none", "dither_rng": "counter"}, None),  # no dither, no stream to name
    ({"method": "synthetic"}, None),
])
def test_the_dither_stream_is_part_of_what_was_trained(meta, want):
    """Two traces of one seed differ between the counter and sfc64 streams, so results and report pages say which."""
    from hwsim.results.provenance import describe_trace, run_provenance
    from hwsim.trace.records import TraceMeta

    run = run_provenance(TraceMeta.from_json(meta, file="manifest.json"), {}, iterations=3)
    assert run.get("dither_rng") == want
    line = dict(describe_trace({"trace": run}))["trace"]
    assert (f"dither stream {want}" in line) if want else ("dither stream" not in line)
