"""A large iteration's replay holds one layer's arrays at a time (hwsim.sim.replay.LEAN_ELEMENTS): same results."""

from __future__ import annotations

import numpy as np
import pytest

import hwsim.sim.replay as replay_mod
from hwsim.arch import load_arch
from hwsim.sim import residency
from hwsim.sim.operands import released
from hwsim.sim.replay import layer_operands, simulate_trace
from hwsim.trace.format import load
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
