"""The numbers ``hwsim inspect`` prints (hwsim/commands/inspect.py ``inspect_trace``), by hand on a two-layer trace
written here: the element-weighted δ̃z density over layers × iterations (each layer's elements counted at its real
mini-batch), the plain mean beside it, the widest level, and the zeroth-order entropy per stored element.

fc1: linear 2 rows (of a mini-batch of 4) × 4 → 2, δ̃z 2×2 stored, 8 elements at the real batch;
fc2: linear 2 × 2 → 3, δ̃z 2×3, 6 elements. Iteration 0: fc1 ½, fc2 ⅙; iteration 1 (sampled): fc1 ¼, fc2 ½.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.commands.inspect import inspect_trace, layer_table
from hwsim.trace.schema import LayerGeometry, LayerSample, layer_stats
from hwsim.trace.writer import TraceWriter

FC1 = LayerGeometry(name="fc1", kind="linear", N=2, C=4, K=2, batch_size=4)
FC2 = LayerGeometry(name="fc2", kind="linear", N=2, C=2, K=3)
LV = {0: {"fc1": [[1, 0], [0, -1]], "fc2": [[1, 0, 0], [0, 0, 0]]},
      1: {"fc1": [[2, 0], [0, 0]], "fc2": [[1, 1, 1], [0, 0, 0]]}}


@pytest.fixture(scope="module")
def info(tmp_path_factory):
    path = tmp_path_factory.mktemp("inspect") / "t"
    with TraceWriter(path, meta={"model": "two", "method": "dither", "s": 2.0}) as w:
        w.add_layer(FC1)
        w.add_layer(FC2)
        w.add_iteration(0, stats={n: layer_stats(np.array(v)) for n, v in LV[0].items()})
        a1 = np.array([[1, 0, 1, 0], [1, 0, 1, 0]], bool)
        samples = [LayerSample(geometry=FC1, delta=0.1, dz_levels=np.array(LV[1]["fc1"]), a_mask=a1),
                   LayerSample(geometry=FC2, delta=0.1, dz_levels=np.array(LV[1]["fc2"]), a_mask=np.ones((2, 2), bool))]
        w.add_iteration(1, stats={n: layer_stats(np.array(v)) for n, v in LV[1].items()}, samples=samples)
    return inspect_trace(str(path))


def test_density_is_element_weighted_at_the_real_batch(info):
    s = info["summary"]
    # fc1: (½ + ¼)·8 = 6 non-zeros of 16; fc2: (⅙ + ½)·6 = 4 of 12 → 10 / 28
    assert s["density"] == pytest.approx(10 / 28)
    assert s["mean_density"] == pytest.approx((0.5 + 0.25 + 1 / 6 + 0.5) / 4)
    assert (s["max_bits"], s["gemms"], s["plain"], s["inspected_iteration"]) == (3, 2, None, 1)   # |2| → 3 bits
    by = {r["name"]: r for r in info["layers"]}
    assert by["fc1"]["density"] == pytest.approx(0.375) and by["fc2"]["density"] == pytest.approx(1 / 3)
    assert (by["fc1"]["max_bits"], by["fc2"]["max_bits"], by["fc1"]["iterations"]) == (3, 2, 2)


def test_entropy_per_element_of_the_inspected_sample(info):
    by = {r["name"]: r for r in info["layers"]}
    # fc1: δ̃z mask 1 of 4 → 4·H(¼) = 3.2451 bits, one level value → 0; input mask 4 of 8 → 8 bits; 12 elements
    h1 = 4 * (-(0.25 * np.log2(0.25)) - 0.75 * np.log2(0.75)) + 8
    assert by["fc1"]["entropy_bits_per_element"] == pytest.approx(h1 / 12)
    # fc2: δ̃z mask 3 of 6 → 6 bits; a dense input mask carries none; 10 elements
    assert by["fc2"]["entropy_bits_per_element"] == pytest.approx(6 / 10)
    assert info["summary"]["entropy_bits_per_element"] == pytest.approx((h1 + 6) / 22)
    assert (by["fc1"]["sample_density"], by["fc1"]["a_density"], by["fc2"]["elements"]) == (0.25, 0.5, 10)
    for r in by.values():
        assert r["bits_per_element"] == pytest.approx(8 * r["bytes"] / r["elements"])


def test_the_table_prints_one_row_per_layer(info):
    lines = layer_table(info["layers"], "dither")
    assert lines[0].split()[:4] == ["layer", "kind", "output", "shape"] and set(lines[1]) == {"-"}
    assert lines[2].split()[:6] == ["fc1", "linear", "2×2", "0.3750", "3", "0.500"]
    assert lines[3].split()[:6] == ["fc2", "linear", "2×3", "0.3333", "2", "1.000"]
    assert len(lines) == 5 and "δz" not in lines[0]          # no plain GEMMs: no δz column
