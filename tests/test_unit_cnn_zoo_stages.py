"""The synthetic CNN zoo's ResNet-18 and VGG-16 (hwsim/trace/topology.py) stage by stage, by hand from the papers'
tables (He et al. 2016, table 1; Simonyan & Zisserman 2015, configuration D) at 224² inputs: where each stage
downsamples, which blocks carry a 1×1 projection shortcut, and the per-layer output sizes and MACs."""

from __future__ import annotations

import pytest

from hwsim.trace.topology import model_layers


def _convs(name: str) -> dict[str, tuple[int, int, int, int, int]]:
    """name → (C, K, input side, kernel, output side) of every convolution."""
    return {s.name: (s.C, s.K, s.H, s.R, s.geometry().P) for s in model_layers(name) if s.kind == "conv2d"}


def test_resnet18_stages_and_projection_shortcuts():
    c = _convs("resnet18")
    assert c["conv1"] == (3, 64, 224, 7, 112)                    # 7×7/2, pad 3: ⌊(224 + 6 − 7)/2⌋ + 1
    # stage 1 runs at 56 (after the 3×3/2 max-pool), no projection; stages 2–4 halve the side in their first block
    assert c["layer1.0.conv1"] == (64, 64, 56, 3, 56) and c["layer1.1.conv2"] == (64, 64, 56, 3, 56)
    for stage, (cin, cout, side) in enumerate(((64, 128, 56), (128, 256, 28), (256, 512, 14)), start=2):
        assert c[f"layer{stage}.0.conv1"] == (cin, cout, side, 3, side // 2)
        assert c[f"layer{stage}.0.conv2"] == (cout, cout, side // 2, 3, side // 2)
        assert c[f"layer{stage}.0.downsample.0"] == (cin, cout, side, 1, side // 2)   # 1×1/2 projection
        assert c[f"layer{stage}.1.conv1"] == (cout, cout, side // 2, 3, side // 2)
    assert sorted(n for n in c if "downsample" in n) == ["layer2.0.downsample.0", "layer3.0.downsample.0",
                                                          "layer4.0.downsample.0"]
    names = [s.name for s in model_layers("resnet18")]
    assert len(names) == 21 and names[-1] == "fc" and names.index("layer2.0.downsample.0") == 7  # after conv2
    g = {s.name: s.geometry(1) for s in model_layers("resnet18")}
    assert g["conv1"].macs == 112 * 112 * 64 * 3 * 49 == 118_013_952
    assert g["layer2.0.downsample.0"].macs == 28 * 28 * 128 * 64
    assert g["layer4.1.conv2"].macs == 7 * 7 * 512 * 512 * 9 and g["fc"].macs == 512 * 1000


def test_vgg16_stages():
    c = _convs("vgg16")
    sides = {1: 224, 2: 112, 3: 56, 4: 28, 5: 14}              # a 2×2 max-pool after each stage
    widths = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
    assert len(c) == 13 and [n for n in c if n.endswith("_3")] == ["conv3_3", "conv4_3", "conv5_3"]
    for name, (_cin, cout, side, k, out) in c.items():
        stage = int(name[4])
        assert (cout, side, k, out) == (widths[stage], sides[stage], 3, sides[stage]), name
    assert c["conv1_1"][0] == 3 and c["conv2_1"][0] == 64 and c["conv5_1"][0] == 512
    g = {s.name: s.geometry(1) for s in model_layers("vgg16")}
    assert g["conv1_1"].macs == 224 * 224 * 64 * 3 * 9 and g["conv5_3"].macs == 14 * 14 * 512 * 512 * 9
    assert (g["fc6"].C, g["fc6"].K, g["fc8"].K) == (512 * 7 * 7, 4096, 1000)


@pytest.mark.parametrize("kw,message", [
    (dict(name="vgg16", seq=4), r"^--seq: vgg16 is not a transformer; allowed with: gpt2_small, "),
    (dict(name="lenet5", depth=3), r"^model_layers: unknown option\(s\) \['depth'\]; allowed: seq, heads, kv_heads, "
                                   r"blocks, head$"),
    (dict(name="googlenet"), r"^model 'googlenet' is not known for synthetic traces; allowed: alexnet, alexnet_conv, "
                             r"resnet18, vgg16, lenet5, gpt2_small, "),
])
def test_unknown_models_and_options_are_named(kw, message):
    name = kw.pop("name")
    with pytest.raises(ValueError, match=message):
        model_layers(name, **kw)
    assert model_layers("lenet5", seq=None, head=False) == model_layers("lenet5")    # unset options are no options
