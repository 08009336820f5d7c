"""The replay's first walk over an iteration (hwsim.sim.survey.survey) on hand-written linear layers: what it keeps
per layer, lean or not, and when it believes the next layer's input tells the dense δz's non-zeros."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.arch import load_arch
from hwsim.sim import residency
from hwsim.sim.layerops import TraceArchMismatch
from hwsim.sim.survey import survey
from hwsim.trace.schema import LayerGeometry, LayerSample


def _layer(name: str, C: int, K: int, a: np.ndarray, *, levels: np.ndarray | None = None, **kw) -> LayerSample:
    g = LayerGeometry(name=name, kind="linear", N=2, C=C, K=K)
    lv = np.ones((2, K), np.int8) if levels is None else levels
    return LayerSample(geometry=g, delta=1.0, dz_levels=lv, a_mask=a, **kw)


def _three() -> dict[str, LayerSample]:
    """f1 (3 → 4) → f2 (4 → 4, input density 0.5) → f3 (5 → 2: its input is not f2's output, density 0.3)."""
    a2 = np.zeros((2, 4), bool)
    a2[:, :2] = True
    a3 = np.zeros((2, 5), bool)
    a3[0, :2] = a3[1, 0] = True  # 3 of 10
    return {"f1": _layer("f1", 3, 4, np.ones((2, 3), bool), input_grad=False, weight_grad=True),
            "f2": _layer("f2", 4, 4, a2, w_density=0.5, input_grad=True, weight_grad=False),
            "f3": _layer("f3", 5, 2, a3)}


@pytest.mark.parametrize("lean", [False, True])
def test_survey_keeps_names_geometries_flags_and_output_densities(lean):
    arch = load_arch("scnn")
    sv = survey(_three(), arch, [arch], seed=0, where="t", lean=lean, training=True, dz_nonzero=False)
    assert sv.names == ["f1", "f2", "f3"] and [g.name for g in sv.geometries] == sv.names
    assert sv.flags == [(False, True), (True, False), (None, None)]  # as recorded; None: not recorded
    # f1's output (2, 4) is f2's input: f2's input density 4/8; f2's (2, 4) is not f3's (2, 5) input: 1; last: 1
    assert sv.out_densities == {"f1": 0.5, "f2": 1.0, "f3": 1.0}
    assert [o.out_density for o in sv.layers] == [0.5, 1.0, 1.0]
    assert [o.name for o in sv.layers] == sv.names
    assert sv.dz_nonzero is None  # not asked for
    assert sv.shapes_only["f2"].w_density == 0.5 and not any(sv.shapes_only["f3"].a_mask.strides)


def test_a_lean_survey_releases_the_arrays_after_counting_what_the_plans_read():
    arch, other = load_arch("scnn"), load_arch("systolic32")  # another plan arch: other statistics
    eager = survey(_three(), arch, [arch, other], seed=0, where="t", lean=False, training=True, dz_nonzero=False)
    lean = survey(_three(), arch, [arch, other], seed=0, where="t", lean=True, training=True, dz_nonzero=False)
    for e, le in zip(eager.layers, lean.layers, strict=True):
        assert e.a.shape == le.a.shape and e.a.any() and not le.a.any() and not any(le.a.strides)
        assert le.memo  # the statistics were counted before the arrays went
        for plan_arch in (arch, other):  # for every plan arch: the released layer answers as the full one
            for role in ("a", "dz", "w"):
                assert residency.role_bytes(le, role, plan_arch) == residency.role_bytes(e, role, plan_arch)
    # the eager layers are the full operands: f2's input is its 4 of 8 examples·channels, folded to (1, 4, 1, 2)
    assert eager.layers[1].a.shape == (1, 4, 1, 2) and int(eager.layers[1].a.sum()) == 4


def test_a_lean_survey_hands_over_the_first_layer_whole_sharing_its_statistics():
    arch = load_arch("scnn")
    eager = survey(_three(), arch, [arch], seed=0, where="t", lean=False, training=True, dz_nonzero=False)
    lean = survey(_three(), arch, [arch], seed=0, where="t", lean=True, training=True, dz_nonzero=False)
    assert eager.first is None  # not lean: every layer is kept whole anyway
    f = lean.first
    assert f is not None and f.name == "f1" and f.memo is lean.layers[0].memo  # the counted statistics, shared
    assert f.out_density == 0.5  # f2's input density, set after the walk
    assert np.array_equal(f.a, eager.layers[0].a) and np.array_equal(f.dz, eager.layers[0].dz) and f.a.all()
    assert not any(lean.layers[0].a.strides)  # the plans' copy is still the released one


@pytest.mark.parametrize("lean", [False, True])
def test_the_dense_dz_is_believed_from_a_dense_next_input_and_only_along_a_chain(lean):
    arch = load_arch("scnn")
    samples = {"f1": _layer("f1", 3, 4, np.ones((2, 3), bool), levels=np.array([[1, 0, 0, 2], [0, 0, 3, 0]],
                                                                                 np.int8)),
               "f2": _layer("f2", 4, 4, np.ones((2, 4), bool)),   # dense input: every element of δz_f1 counts
               "f3": _layer("f3", 5, 2, np.ones((2, 5), bool))}   # not f2's output: f2 gets no count
    sv = survey(samples, arch, [arch], seed=0, where="t", lean=lean, training=True, dz_nonzero=True)
    assert sv.dz_nonzero == {"f1": 8}  # nnz(a_f2) = 2 × 4, whatever δ̃z_f1's 3 non-zeros say


def test_a_dz_nonzero_outside_the_next_input_is_not_believed():
    arch = load_arch("scnn")
    a2 = np.zeros((2, 4), bool)
    a2[:, :2] = True
    lv = np.zeros((2, 4), np.int8)
    lv[0, 3] = 1  # a δ̃z non-zero where f2's input is zero: that input is not f1's ReLU mask
    samples = {"f1": _layer("f1", 3, 4, np.ones((2, 3), bool), levels=lv), "f2": _layer("f2", 4, 4, a2)}
    for lean in (False, True):
        sv = survey(samples, arch, [arch], seed=0, where="t", lean=lean, training=True, dz_nonzero=True)
        assert sv.dz_nonzero == {}


def test_a_layer_wider_than_the_macs_stops_the_survey_naming_it():
    arch = load_arch("scnn")  # 8-bit MACs
    samples = _three()
    samples["f3"] = _layer("f3", 5, 2, np.ones((2, 5), bool), w_bits=16)
    with pytest.raises(TraceArchMismatch, match=r"^run/it3: layer 'f3': w_bits=16 is wider than the arch's "
                                                r"pe\.mac_bits=8"):
        survey(samples, arch, [arch], seed=0, where="run/it3", lean=True, training=True, dz_nonzero=False)
