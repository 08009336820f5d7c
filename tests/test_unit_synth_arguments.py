"""What ``synthesize`` accepts before it writes anything (hwsim/trace/synth.py): the order densities are resolved
in (global, per GEMM kind, the dense first input, per layer) and one named refusal for each bad argument — no
trace directory is created for a refused call."""

from __future__ import annotations

import re

import pytest

from hwsim.trace.layerspec import LayerSpec
from hwsim.trace.synth import resolve_densities, synthesize, synthesize_density_sweep

SPECS = [LayerSpec(name="attn.q", kind="linear", C=4, K=8), LayerSpec(name="mlp.fc2", kind="linear", C=8, K=2)]


def _resolve(**kw):
    args = dict(w_density=0.5, a_density=0.25, dz_density=0.1, per_layer=None, dense_first_input=True) | kw
    return resolve_densities(SPECS, **args)


def test_the_first_input_is_dense_unless_a_layer_override_says_otherwise():
    assert _resolve() == {"attn.q": {"w": 0.5, "a": 1.0, "dz": 0.1}, "mlp.fc2": {"w": 0.5, "a": 0.25, "dz": 0.1}}
    assert _resolve(dense_first_input=False)["attn.q"]["a"] == 0.25
    assert _resolve(per_layer={"attn.q": {"a": 0.75}})["attn.q"] == {"w": 0.5, "a": 0.75, "dz": 0.1}   # per layer last
    # per kind: mlp.fc2 is an MLP layer by its name, attn.q a projection
    got = _resolve(per_kind={"mlp": {"dz": 0.0}, "proj": {"w": 1}})
    assert got == {"attn.q": {"w": 1.0, "a": 1.0, "dz": 0.1}, "mlp.fc2": {"w": 0.5, "a": 0.25, "dz": 0.0}}


@pytest.mark.parametrize("kw,message", [
    (dict(w_density=1.5), "w_density: density 1.5 is not allowed; allowed: a number in [0, 1]"),
    (dict(dz_density=True), "dz_density: density True is not allowed; allowed: a number in [0, 1]"),
    (dict(a_density="0.5"), "a_density: density '0.5' is not allowed"),
    (dict(per_layer={"fc3": {"a": 0.5}}), "per_layer: unknown layer(s) ['fc3']; allowed: attn.q, mlp.fc2"),
    (dict(per_layer={"attn.q": {"b": 0.5}}), "per_layer.attn.q.b: unknown role; allowed: w, a, dz"),
    (dict(per_layer={"attn.q": {"a": -0.1}}), "per_layer.attn.q.a: density -0.1 is not allowed"),
    (dict(per_kind=[0.5]), "per_kind: [0.5] is not allowed; allowed: {kind: {w|a|dz: density}}"),
    (dict(per_kind={"mlp": 0.5}), "per_kind.mlp: 0.5 is not allowed; allowed: an object {w|a|dz: density}"),
    (dict(per_kind={"mlp": {"x": 0.5}}), "per_kind.mlp.x: unknown role; allowed: w, a, dz"),
])
def test_a_bad_density_argument_is_named(kw, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        _resolve(**kw)


@pytest.mark.parametrize("kw,message", [
    (dict(), "synthesize: give exactly one of model=, layers= or scalesim_csv="),
    (dict(model="lenet5", layers=[{"name": "a", "kind": "linear", "C": 1, "K": 1}]),
     "synthesize: give exactly one of model=, layers= or scalesim_csv="),
    (dict(layers=[{"name": "a", "kind": "linear", "C": 1, "K": 1}], seq=8),
     "synthesize: seq apply to a named transformer (model=) only"),
    (dict(layers=[]), "layers: must be a non-empty list of LayerSpec with unique names"),
    (dict(layers=[{"name": "a", "kind": "linear", "C": 1, "K": 1}] * 2),
     "layers: must be a non-empty list of LayerSpec with unique names"),
    (dict(model="lenet5", scalesim_conventions="conv"), "scalesim_conventions: applies to scalesim_csv= only"),
    (dict(model="lenet5", scalesim_conventions="tf"), "scalesim_conventions: 'tf' is not allowed; allowed: "
                                                      "scalesim, conv"),
    (dict(model="lenet5", batch=0), "batch: 0 is not allowed; allowed: integer >= 1"),
    (dict(model="lenet5", batch=True), "batch: True is not allowed; allowed: integer >= 1"),
    (dict(model="lenet5", level_p=0.0), "level_p: 0.0 is not allowed; allowed: 0 < level_p <= 1"),
    (dict(model="lenet5", max_level=0), "max_level: 0 is not allowed; allowed: integer >= 1"),
    (dict(model="lenet5", per_kind={"attn": []}), "per_kind.attn: [] is not allowed; allowed: an object"),
])
def test_synthesize_refuses_before_writing(tmp_path, kw, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        synthesize(tmp_path / "t", **kw)
    assert not (tmp_path / "t").exists()


def test_a_density_sweep_needs_known_roles(tmp_path):
    for roles, shown in ((["w", "x"], "['x']"), ([], "[]")):
        with pytest.raises(ValueError, match="^" + re.escape(f"roles: {shown} not allowed; allowed: a non-empty "
                                                             "subset of w, a, dz")):
            synthesize_density_sweep(tmp_path / "s", "lenet5", roles=roles)
    with pytest.raises(ValueError, match=r"^densities: density 2 is not allowed"):
        synthesize_density_sweep(tmp_path / "s", "lenet5", densities=[2])
    assert not (tmp_path / "s").exists()
