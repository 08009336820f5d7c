"""Unit tests of hwsim.trace.topology.read_scalesim_topology on non-square layers: IFMAP Height / Width and Filter
Height / Width land in H / W and R / S, and the output geometry follows (worked out by hand)."""

from __future__ import annotations

import pytest

from hwsim.trace.schema import TraceError
from hwsim.trace.topology import read_scalesim_topology


def test_scalesim_topology_non_square_layer_keeps_height_and_width_apart(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                 "Tall,10,6,3,1,4,8,2,\n")
    (spec,) = read_scalesim_topology(p)
    assert (spec.H, spec.W, spec.R, spec.S, spec.C, spec.K) == (10, 6, 3, 1, 4, 8)
    g = spec.geometry(batch=2)
    # unpadded, stride 2: P = (10 - 3) // 2 + 1 = 4 rows, Q = (6 - 1) // 2 + 1 = 3 columns
    assert (g.N, g.H, g.W, g.R, g.S, g.P, g.Q) == (2, 10, 6, 3, 1, 4, 3)
    assert g.stride == (2, 2) and g.padding == (0, 0)


def test_scalesim_topology_wide_filter_too_wide_for_a_narrow_input_is_refused(tmp_path):
    # a 1-high, 8-wide filter does not fit a 9-high, 7-wide input (S = 8 > W = 7); read with H and W (or R and
    # S) swapped it would fit and no error would be raised
    p = tmp_path / "t.csv"
    p.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides\n"
                 "Wide,9,7,1,8,1,1,1\n")
    with pytest.raises(TraceError, match=r"filter 1×8 is larger than its input 9×7"):
        read_scalesim_topology(p)
