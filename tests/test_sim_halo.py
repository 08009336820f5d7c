"""SCNN's output-halo exchange (hwsim/sim/halo.py, issue 18 item 5): halo values, cycles and actions by hand."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.arch import load_arch
from hwsim.sim import halo, simulate, work
from hwsim.trace.synth import synthesize


def _conv(k: int = 8, c: int = 2) -> work.ScatterConv:
    """A 3×3, stride-1, pad-1 convolution of a 4×4 plane (forward, input-stationary)."""
    return work.ScatterConv(x=np.ones((1, c, 4, 4), dtype=bool), w=np.ones((k, c, 3, 3), dtype=bool),
                            stride=(1, 1), padding=(1, 1), dilation=(1, 1), mode="down")


def test_axis_terms_of_a_stride_two_layer_by_hand():
    # H = 5, R = 3, pad 1, stride 2 → P = 3; tiles of rows {0, 1} and {2, 3, 4}. Input h feeds p = (h + 1 − r)/2:
    # h0 → p0; h1 → p1 (r 0), p0 (r 2); h2 → p1; h3 → p2, p1; h4 → p2.
    count = halo.axis_contributions(np.array([0, 2, 5]), 3, kernel=3, stride=2, pad=1, dilation=1, mode="down")
    assert count.tolist() == [[2, 1, 0], [0, 2, 2]]
    f, fo, r = halo.axis_terms(count)
    # p1 is owned by the second tile (2 contributions against 1): the first sends one row, the second receives it
    assert (f.tolist(), fo.tolist(), r.tolist()) == ([2, 2], [1, 2], [1, 3])


def test_transposed_contributions_of_backward_data():
    # δz rows p of 4, tiles {0, 1} {2, 3}, h = p + r − 1 on a 4-row δa plane: same reach as the forward conv
    count = halo.axis_contributions(np.array([0, 2, 4]), 4, kernel=3, stride=1, pad=1, dilation=1, mode="up")
    assert count.tolist() == [[2, 2, 1, 0], [0, 1, 2, 2]]


def test_halo_of_a_small_conv_by_hand():
    # 4×4 plane on 2×2 PEs, tiles of 2×2 pixels. Per axis each tile reaches 3 output rows and owns 2, so each PE
    # sends 3·3 − 2·2 = 5 partial sums per output channel and receives 5 (its own 4 outputs: one is reached by all
    # four PEs, two by two). Check: the 4 central outputs have 4 contributors, the 8 edge outputs 2, the corners 1
    # → 4·3 + 8·1 = 20 values moved per channel = 4 PEs × 5.
    sends, receives = halo.tile_exchange(_conv(), 2, 2, (4, 4))
    assert sends.tolist() == receives.tolist() == [5, 5, 5, 5]
    arch = load_arch("scnn16", {"pe_array.rows": 2, "pe_array.cols": 2})
    # Kc = 4: two groups of 4 channels, one per interval; per PE 4 · 5 = 20 values at min(16 adders, 16 B / 3 B)
    # = 5.33 values a cycle → ⌈3.75⌉ = 4 cycles per group, 8 in all; 20 · 8 channels = 160 values of 3 bytes
    cycles, acts = halo.cost(_conv(), (2, 2, 1), 4, (4, 4), arch)
    assert cycles == 8
    assert (acts["red_add"], acts["red_acc"], acts["red_link_bytes"]) == (160, 320, 480)
    off = load_arch(arch, {"reduction.halo_exchange": False})
    assert halo.cost(_conv(), (2, 2, 1), 4, (4, 4), off) == (0, halo.Actions())
    assert halo.cost(_conv(), (1, 1, 4), 4, (4, 4), arch)[0] == 0          # a plane on one PE has no halo


def test_simulator_charges_the_halo_in_forward_and_backward_data(tmp_path):
    t = synthesize(tmp_path / "t", layers=[{"name": "c", "C": 2, "K": 8, "H": 4, "W": 4, "R": 3, "S": 3,
                                            "padding": 1}], w_density=0.5, a_density=0.5, dense_first_input=False)
    on = load_arch("scnn16", {"pe_array.rows": 2, "pe_array.cols": 2, "pe.output_channel_group": 4})
    off = load_arch(on, {"reduction.halo_exchange": False})
    r_on, r_off = simulate(t, on), simulate(t, off)
    # forward as above (8 cycles, 160 values); backward-data scatters δz onto the 2 input channels: one group of 2
    # channels, 2 · 5 = 10 values per PE → ⌈10 / 5.33⌉ = 2 cycles, 20 · 2 = 40 values. Both variants pay it.
    for pass_name, cycles, values in (("forward", 8, 160), ("backward_data", 2, 40)):
        for v in ("sparse", "dense"):
            a, b = getattr(r_on.layer("c", pass_name), v), getattr(r_off.layer("c", pass_name), v)
            assert a.cycle_breakdown.reduction == cycles and b.cycle_breakdown.reduction == 0, (pass_name, v)
            assert a.cycles - b.cycles == cycles
            assert a.actions["red_add"] == values and "red_add" not in b.actions
    bw_on, bw_off = r_on.layer("c", "backward_weight").sparse, r_off.layer("c", "backward_weight").sparse
    assert bw_on.cycles == bw_off.cycles     # backward-weight has no halo (its reduction is the δW one)


@pytest.mark.parametrize("kind", ["linear", "one_by_one"])
def test_no_halo_without_spatial_reach(tmp_path, kind):
    layer = {"name": "l", "kind": "linear", "C": 16, "K": 8} if kind == "linear" else \
        {"name": "l", "C": 4, "K": 8, "H": 8, "W": 8, "R": 1, "S": 1}
    t = synthesize(tmp_path / "t", layers=[layer], batch=4, w_density=0.5, a_density=0.5)
    r = simulate(t, load_arch("scnn16"), training=False)
    assert r.layer("l", "forward").sparse.cycle_breakdown.reduction == 0
