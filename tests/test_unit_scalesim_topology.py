"""SCALE-Sim topology files at their edges (hwsim/trace/scalesim_topology.py): the output-size convention and the
padding that reproduces it, worked out by hand, comments and blank lines, integer cells written as SCALE-Sim writes
them, and the files that hold nothing (each named in one line)."""

from __future__ import annotations

import re

import pytest

from hwsim.trace.layerspec import LayerSpec
from hwsim.trace.scalesim_topology import (
    apply_conventions,
    read_scalesim_topology,
    scalesim_ofmap,
    scalesim_padding,
)
from hwsim.trace.schema import TraceError

HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"


@pytest.mark.parametrize("h,r,s,ofmap,pad", [
    (227, 11, 4, 55, 0),     # ⌈(227 − 11 + 4)/4⌉ = 55 = ⌊216/4⌋ + 1: stride divides H − R, no padding
    (224, 7, 2, 110, 1),     # ⌈219/2⌉ = 110; unpadded conv gives ⌊217/2⌋ + 1 = 109; padding 1: ⌊219/2⌋ + 1 = 110
    (10, 3, 4, 3, 1),        # ⌈11/4⌉ = 3; unpadded ⌊7/4⌋ + 1 = 2; remainder 3: pad ⌈1/2⌉ = 1 → ⌊9/4⌋ + 1 = 3
    (6, 1, 4, 3, 2),         # ⌈9/4⌉ = 3; unpadded ⌊5/4⌋ + 1 = 2; remainder 1: pad ⌈3/2⌉ = 2 → ⌊9/4⌋ + 1 = 3
    (5, 1, 4, 2, 0),
])
def test_scalesim_output_size_and_the_padding_that_gives_it(h, r, s, ofmap, pad):
    assert (scalesim_ofmap(h, r, s), scalesim_padding(h, r, s)) == (ofmap, pad)
    spec = LayerSpec(name="c", C=1, K=1, H=h, W=h, R=r, S=r, stride=s)
    assert apply_conventions([spec], "scalesim")[0].geometry().P == ofmap


def test_conventions_pad_convolutions_only_and_per_axis():
    conv = LayerSpec(name="c", C=3, K=8, H=224, W=6, R=7, S=1, stride=(2, 4))
    fc = LayerSpec(name="fc", kind="linear", C=8, K=4)
    padded, same = apply_conventions([conv, fc], "scalesim")
    assert padded.padding == (1, 2) and (padded.geometry().P, padded.geometry().Q) == (110, 3) and same is fc
    assert apply_conventions([conv, fc], "conv") == [conv, fc]
    with pytest.raises(ValueError, match=r"^--conventions: 'tf' is not allowed; allowed: scalesim, conv$"):
        apply_conventions([conv], "tf", "--conventions")


def test_comments_blank_lines_extra_columns_and_a_plus_sign(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("# exported by hand\n\n" + HEADER + "A, +8, 8, 3, 3, 1, 2, 1, 0.5\n# B,8,8,3,3,1,1,1\n")
    [a] = read_scalesim_topology(p)
    assert (a.name, a.H, a.C, a.K, a.geometry().P) == ("A", 8, 1, 2, 6)


@pytest.mark.parametrize("text,message", [
    ("", "{p}: empty topology file; allowed: a header 'Layer name, IFMAP Height, "),
    ("# nothing\n\n", "{p}: empty topology file"),
    (HEADER, "{p}: no layers after the header"),
    (HEADER + "A, 08, 8, 3, 3, 1, 1, 1\n", "{p}:2: column 'IFMAP Height' of layer 'A' is '08'; allowed: integer >= 1"),
    (HEADER + "A, 8.0, 8, 3, 3, 1, 1, 1\n", "{p}:2: column 'IFMAP Height' of layer 'A' is '8.0'"),
])
def test_a_file_with_no_usable_layer_is_named(tmp_path, text, message):
    p = tmp_path / "t.csv"
    p.write_text(text)
    with pytest.raises(TraceError, match="^" + re.escape(message.format(p=p))):
        read_scalesim_topology(p)


def test_a_missing_file_and_unknown_conventions(tmp_path):
    with pytest.raises(TraceError, match="^" + re.escape(f"{tmp_path / 'no.csv'}: SCALE-Sim topology file not found")):
        read_scalesim_topology(tmp_path / "no.csv")
    with pytest.raises(ValueError, match=r"^conventions: 'x' is not allowed; allowed: scalesim, conv$"):
        read_scalesim_topology(tmp_path / "no.csv", "x")
