"""Unit tests of the synthetic-trace zoo geometries (hwsim.trace.topology), worked out by hand from the papers'
layer tables; the padded-filter check of LayerSpec; the sample-file name rules of hwsim.trace.reading."""

from __future__ import annotations

import pytest

from hwsim.trace.reading import sample_file_path
from hwsim.trace.schema import TraceError
from hwsim.trace.topology import LayerSpec, alexnet, lenet5


def _convs(specs):
    return [(s.name, s.C, s.K, s.H, s.R, s.geometry().stride, s.geometry().padding, s.geometry().P)
            for s in specs if s.kind != "linear"]


def test_alexnet_single_tower_geometry():
    # conv1: (227 − 11) / 4 + 1 = 55; conv2: 27 + 4 − 5 + 1 = 27; conv3–5: 13 + 2 − 3 + 1 = 13
    assert _convs(alexnet()) == [
        ("conv1", 3, 96, 227, 11, (4, 4), (0, 0), 55), ("conv2", 96, 256, 27, 5, (1, 1), (2, 2), 27),
        ("conv3", 256, 384, 13, 3, (1, 1), (1, 1), 13), ("conv4", 384, 384, 13, 3, (1, 1), (1, 1), 13),
        ("conv5", 384, 256, 13, 3, (1, 1), (1, 1), 13)]
    fcs = [(s.name, s.C, s.K) for s in alexnet() if s.kind == "linear"]
    assert fcs == [("fc6", 256 * 6 * 6, 4096), ("fc7", 4096, 4096), ("fc8", 4096, 1000)]
    assert [s.name for s in alexnet(fc=False)] == ["conv1", "conv2", "conv3", "conv4", "conv5"]


def test_lenet5_geometry():
    # conv1 on 28² padded by 2: 28 + 4 − 5 + 1 = 28; conv2 on the pooled 14²: 14 − 5 + 1 = 10
    assert _convs(lenet5()) == [("conv1", 1, 6, 28, 5, (1, 1), (2, 2), 28), ("conv2", 6, 16, 14, 5, (1, 1), (0, 0), 10)]
    assert [(s.name, s.C, s.K) for s in lenet5() if s.kind == "linear"] == [
        ("fc1", 400, 120), ("fc2", 120, 84), ("fc3", 84, 10)]


def test_a_filter_may_fill_the_padded_input_but_not_exceed_it():
    # 5 high, padded by 1: 7 rows; a 7-row filter gives one output row, an 8-row one is refused
    assert LayerSpec(name="c", C=1, K=1, H=5, W=5, R=7, S=1, padding=(1, 0)).geometry().P == 1
    with pytest.raises(TraceError, match=r"filter 8×1 is larger than the padded input 7×5"):
        LayerSpec(name="c", C=1, K=1, H=5, W=5, R=8, S=1, padding=(1, 0)).geometry()
    with pytest.raises(TraceError, match=r"filter 1×8 is larger than the padded input 5×7"):
        LayerSpec(name="c", C=1, K=1, H=5, W=5, R=1, S=8, padding=(0, 1)).geometry()


@pytest.mark.parametrize("rel", ["samples/a\\b.npz", "samples/a\x00.npz", "samples/..", "samples/", "other/x.npz",
                                 "samples/sub/x.npz", "/samples/x.npz", 7])
def test_sample_file_names_must_be_plain_names_in_samples(tmp_path, rel):
    with pytest.raises(TraceError, match="is not allowed|must be a string"):
        sample_file_path(tmp_path, rel, "samples[0]")


def test_a_plain_sample_name_resolves_and_a_missing_one_is_named(tmp_path):
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "it0000001.npz.xz").write_bytes(b"x")
    assert sample_file_path(tmp_path, "samples/it0000001.npz.xz", "samples[0]").name == "it0000001.npz.xz"
    with pytest.raises(TraceError, match=r"sample file listed in field 'samples\[1\]' is missing"):
        sample_file_path(tmp_path, "samples/it0000002.npz.xz", "samples[1]")
