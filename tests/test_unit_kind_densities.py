"""Mean densities per GEMM kind of a trace (``hwsim synth --densities-from``; hwsim/trace/gemm_kinds.py), by hand
on a stand-in trace: element-weighted over every iteration's statistics, and — where no iteration recorded the
operand densities — taken from the last sampled iteration's operands."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from hwsim.trace.gemm_kinds import kind_densities, plain_dz
from hwsim.trace.schema import LayerGeometry

# q: a projection, input 2×4 = 8, weight 8×4 = 32, δ̃z 2×8 = 16 elements;
# k: a projection, input 8, weight 2×4 = 8, δ̃z 2×2 = 4; mlp.fc1: an MLP layer, input 2×8 = 16, weight 4×8 = 32,
# δ̃z 2×4 = 8 elements
Q = LayerGeometry(name="q", kind="linear", N=2, C=4, K=8)
K = LayerGeometry(name="k", kind="linear", N=2, C=4, K=2)
FC = LayerGeometry(name="mlp.fc1", kind="linear", N=2, C=8, K=4)


def _stats(dz: float, a: float | None = None, w: float | None = None) -> NS:
    return NS(density=dz, a_density=a, w_density=w)


def _trace(records: list[dict], sampled: list[int], sample: dict | None = None) -> NS:
    return NS(layers=[Q, K, FC], iterations=[NS(layers=r) for r in records], sampled_iterations=sampled,
              sample=lambda: sample)


def test_dz_is_element_weighted_over_iterations_and_operands_come_from_the_sample():
    records = [{"q": _stats(0.5), "k": _stats(1.0), "mlp.fc1": _stats(0.25)},
               {"q": _stats(0.25), "k": _stats(0.0), "mlp.fc1": _stats(0.75), "not.a.layer": _stats(1.0)}]
    sample = {"q": NS(a_density=0.5, w_density=1.0), "k": NS(a_density=0.0, w_density=0.0),
              "mlp.fc1": NS(a_density=0.25, w_density=0.5)}
    got = kind_densities(_trace(records, [1], sample))
    # proj δ̃z: (0.5·16 + 1·4 + 0.25·16 + 0·4) / 40 = 0.4 (the plain mean of the four is 0.4375);
    # a: (0.5·8 + 0·8) / 16; w: (1·32 + 0·8) / 40; mlp δ̃z: (0.25·8 + 0.75·8) / 16
    assert got == {"proj": {"w": 0.8, "a": 0.25, "dz": 0.4}, "mlp": {"w": 0.5, "a": 0.25, "dz": 0.5}}


def test_recorded_operand_densities_win_and_only_the_missing_role_falls_back():
    records = [{"q": _stats(1.0, a=0.25), "mlp.fc1": _stats(0.0, a=0.75)}]
    sample = {"q": NS(a_density=0.9, w_density=0.5), "mlp.fc1": NS(a_density=0.9, w_density=0.25)}
    got = kind_densities(_trace(records, [0], sample))
    assert got == {"proj": {"w": 0.5, "a": 0.25, "dz": 1.0}, "mlp": {"w": 0.25, "a": 0.75, "dz": 0.0}}


def test_without_a_sample_the_operand_densities_are_absent():
    got = kind_densities(_trace([{"q": _stats(0.125)}], []))
    assert got == {"proj": {"dz": 0.125}}            # kinds without layers in the records are absent
    assert kind_densities(_trace([], [])) == {}


@pytest.mark.parametrize("method,dither_attention,role,plain", [
    ("dither", False, "activation", True),     # attention products keep plain δz unless dithered
    ("dither", True, "activation", False),
    ("meprop", None, "activation", True),
    ("dither", False, "weight", False),        # weight GEMMs are quantized
    ("none", False, "activation", False),      # nothing quantized: no GEMM differs
    ("synthetic", None, "activation", False),
])
def test_which_gemms_keep_a_plain_dz(method, dither_attention, role, plain):
    g = LayerGeometry(name="attn:qk", kind="matmul", N=2, C=2, K=2, w_role=role)
    assert plain_dz(g, method, dither_attention) is plain
