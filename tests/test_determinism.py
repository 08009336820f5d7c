"""Same inputs, same seed → the same trace and the same cycles and energy (the brief's determinism rule)."""

from __future__ import annotations

import hwsim
from hwsim.capture.train import CaptureConfig, TrainConfig, train_and_capture
from hwsim.trace.format import load


def _run(tmp_path, name: str, seed: int):
    config = TrainConfig(model="lenet300", epochs=1, batch_size=64, limit_train=384,
                         capture=CaptureConfig(method="dither", s=4.0, sample_every=2, seed=seed))
    res = train_and_capture(config, out=tmp_path / name)
    return res, load(tmp_path / name)


def test_capture_and_simulation_are_deterministic_for_a_seed(tmp_path):
    r1, m1 = _run(tmp_path, "a", seed=7)
    r2, m2 = _run(tmp_path, "b", seed=7)
    assert [it.loss for it in m1.iterations] == [it.loss for it in m2.iterations]
    assert [it.layers for it in m1.iterations] == [it.layers for it in m2.iterations]  # same per-layer statistics
    assert [s["sha256"] for s in m1.manifest["samples"]] == [s["sha256"] for s in m2.manifest["samples"]]
    assert m1.manifest["iteration_log"]["sha256"] == m2.manifest["iteration_log"]["sha256"]  # bit-identical records
    assert r1.test_acc == r2.test_acc
    s1 = hwsim.simulate(tmp_path / "a", "scnn", seed=0).to_json()
    s2 = hwsim.simulate(tmp_path / "b", "scnn", seed=0).to_json()
    assert s1["total"] == s2["total"] and s1["layers"] == s2["layers"]


def test_another_seed_gives_another_dither(tmp_path):
    _, m1 = _run(tmp_path, "a", seed=7)
    _, m3 = _run(tmp_path, "c", seed=8)
    assert [s["sha256"] for s in m1.manifest["samples"]] != [s["sha256"] for s in m3.manifest["samples"]]
