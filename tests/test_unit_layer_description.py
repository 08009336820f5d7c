"""Figure labels of every GEMM kind (hwsim.provenance.layer_description), from real geometries."""

from __future__ import annotations

import pytest

from hwsim.provenance import layer_description
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
