"""A large iteration's replay holds one layer's arrays at a time (hwsim.sim.replay.LEAN_ELEMENTS): same results."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hwsim.sim.replay as replay_mod
from hwsim.arch import load_arch
from hwsim.sim import residency
from hwsim.sim.operands import released
from hwsim.sim.replay import layer_operands, simulate_trace
from hwsim.trace.format import load
from hwsim.trace.layout import MANIFEST
from hwsim.trace.synth import synthesize


def _result(trace, arch):
    d = simulate_trace(trace, arch).to_json()
    d["run"].pop("wall_s")
    return d


@pytest.mark.parametrize(("model", "kw"), [("gpt2_small", dict(seq=16, blocks=1, head=False)), ("lenet5", {})])
def test_lean_replay_gives_the_eager_replays_results(tmp_path, monkeypatch, model, kw):
    path = synthesize(tmp_path / model, model=model, batch=2, seed=1, w_density=0.8, a_density=0.5, dz_density=0.1,
                      **kw)
    trace, arch = load(path), load_arch("scnn")
    eager = _result(trace, arch)
    monkeypatch.setattr(replay_mod, "LEAN_ELEMENTS", 0)
    lean = _result(trace, arch)
    assert lean == eager
    assert eager["layers"] and eager["total"]["sparse"]["cycles"] > 0


def test_released_operands_hold_no_arrays_and_keep_the_counted_statistics(tmp_path):
    path = synthesize(tmp_path / "g", model="gpt2_small", seq=16, blocks=1, batch=1, seed=0, dz_density=0.2)
    sample = next(s for s in load(path).sample().values() if s.geometry.kind == "matmul")
    ops = layer_operands(sample, seed=0, out_density=1.0, where="t")
    arch = load_arch("scnn")
    residency.warm(ops, [arch])
    before = residency.role_bytes(ops, "dz", arch)
    lean = released(ops)
    for x in (lean.w, lean.w_struct, lean.a, lean.dz, lean.dz_levels):
        assert not any(x.strides) and not x.any()  # a broadcast view: no memory, reads as zeros
    assert lean.a.shape == ops.a.shape and lean.memo is ops.memo
    assert residency.role_bytes(lean, "dz", arch) == before > 0
    assert np.array_equal(residency.role_shares(lean, "a", arch), residency.role_shares(ops, "a", arch))


def test_baselines_are_derived_once_per_arch_and_equal_the_variants():
    from hwsim.arch import (
        dense_equal_area_variant,
        dense_gated_variant,
        dense_systolic_variant,
        dense_variant,
    )
    from hwsim.sim.replay import baselines

    arch = load_arch("scnn")
    first = baselines(arch)
    assert baselines(load_arch("scnn")) is first  # an equal arch from the same file: the cached tuple
    assert first == (dense_variant(arch), dense_gated_variant(arch), dense_systolic_variant(arch),
                     dense_equal_area_variant(arch))
    other = load_arch("scnn", {"pe_array.rows": 4})
    assert baselines(other)[0].pe_array.rows == 4  # another arch: its own variants


def _two_layer_relu(inside: int):
    """f1 → f2 (linear, batch 2): f1's δ̃z has ``inside`` non-zeros, all where f2's input (density 0.5) is non-zero."""
    from hwsim.trace.schema import LayerGeometry, LayerSample
    g1 = LayerGeometry(name="f1", kind="linear", N=2, C=3, K=64)
    g2 = LayerGeometry(name="f2", kind="linear", N=2, C=64, K=5)
    a2 = np.zeros((2, 64), bool)
    a2[:, ::2] = True
    lv = np.zeros((2, 64), np.int8)
    lv.reshape(-1)[np.flatnonzero(a2)[:inside]] = 1
    return {"f1": LayerSample(geometry=g1, delta=1.0, dz_levels=lv, a_mask=np.ones((2, 3), bool)),
            "f2": LayerSample(geometry=g2, delta=1.0, dz_levels=np.ones((2, 5), np.int8), a_mask=a2)}


@pytest.mark.parametrize("lean", [False, True])
def test_survey_counts_the_dense_dz_from_the_next_input_with_one_layer_kept(lean):
    from hwsim.sim.survey import survey
    arch = load_arch("scnn")
    # 20 δ̃z non-zeros all on f2's non-zero inputs: chance 0.5**20 < EVIDENCE, so nnz(δz_f1) = nnz(a_f2) = 64
    sv = survey(_two_layer_relu(20), arch, [arch], seed=0, where="t", lean=lean, training=True, dz_nonzero=True)
    assert sv.dz_nonzero == {"f1": 64}
    assert sv.out_densities == {"f1": 0.5, "f2": 1.0}
    assert [g.name for g in sv.geometries] == ["f1", "f2"] and sv.flags == [(None, None), (None, None)]
    assert not any(sv.shapes_only["f2"].a_mask.strides)  # arrays dropped: broadcast views
    assert survey(_two_layer_relu(19), arch, [arch], seed=0, where="t", lean=lean, training=True,
                  dz_nonzero=True).dz_nonzero == {}  # 0.5**19 > EVIDENCE: not believed
    assert sv.layers[0].out_density == 0.5
    if lean:
        assert not any(sv.layers[0].a.strides)  # released: statistics only


def test_a_lazy_sample_is_decoded_twice_per_layer_but_the_first_and_gives_the_eager_results(tmp_path, monkeypatch):
    from hwsim.sim import replay as replay_mod
    from hwsim.sim import survey as survey_mod
    from hwsim.sim.replay import replay
    from hwsim.trace.reading import SampleArchive
    path = synthesize(tmp_path / "g", model="gpt2_small", seq=16, blocks=1, head=False, batch=2, seed=1,
                      w_density=0.8, a_density=0.5, dz_density=0.1)
    trace, arch = load(path), load_arch("scnn")
    eager = replay(trace.sample(), arch, method="synthetic")
    decoded: list[str] = []
    real = SampleArchive.decode
    monkeypatch.setattr(SampleArchive, "decode", lambda self, nm: decoded.append(nm) or real(self, nm))
    built: list[tuple[str, str]] = []  # (walk, layer) of every operand build
    for mod, walk in ((survey_mod, "survey"), (replay_mod, "run")):
        real_build = mod.layer_operands
        monkeypatch.setattr(mod, "layer_operands", lambda m, *, _r=real_build, _w=walk, **kw:
                            built.append((_w, m.geometry.name)) or _r(m, **kw))
    lazy_samples = trace.sample(lazy=True)
    names = list(lazy_samples)
    lazy = replay(lazy_samples, arch, method="synthetic")
    assert lazy == eager
    # the survey walks last to first and hands its last-built layer (the first) to the run loop: that layer is
    # decoded and built once, every other twice (once to survey, once to run): never the whole iteration held
    assert sorted(decoded) == sorted(names + names[1:])
    assert built == [("survey", nm) for nm in names[::-1]] + [("run", nm) for nm in names[1:]]


def test_simulate_trace_of_a_large_trace_decodes_the_first_layer_once_and_the_others_twice(tmp_path, monkeypatch):
    from hwsim.trace.reading import SampleArchive
    path = synthesize(tmp_path / "g", model="gpt2_small", seq=16, blocks=1, head=False, batch=2, seed=1,
                      w_density=0.8, a_density=0.5, dz_density=0.1)
    manifest = json.loads((path / MANIFEST).read_text())
    first = next(iter(manifest["samples"][0]["layers"].values()))
    first["input_grad"] = True  # recorded by a capture: the first layer's input needed a gradient (meta says not)
    (path / MANIFEST).write_text(json.dumps(manifest))
    trace, arch = load(path), load_arch("scnn")
    eager = _result(trace, arch)
    assert eager["run"]["first_layer_input_grad"] is True
    decoded: list[str] = []
    real = SampleArchive.decode
    monkeypatch.setattr(SampleArchive, "decode", lambda self, nm: decoded.append(nm) or real(self, nm))
    monkeypatch.setattr(replay_mod, "LEAN_ELEMENTS", 0)  # every trace is large: the lazy reader
    lean = _result(trace, arch)
    assert lean == eager
    names = [g.name for g in trace.layers]
    # the first layer's recorded input_grad comes from the manifest; the survey builds that layer last and hands it
    # to the run loop: decoded once; every other layer once to survey and once to run
    assert sorted(decoded) == sorted(names + names[1:])
    assert lean["run"]["first_layer_input_grad"] is True
