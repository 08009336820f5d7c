"""Layer geometries without a model: named networks (ImageNet/MNIST shapes); SCALE-Sim topology CSVs are read by
:mod:`hwsim.trace.scalesim_topology` (re-exported here).

Synthetic traces need only the shapes of the Linear/Conv2d calls, not a torch model, so the zoo
here is plain data. Geometry follows the usual definitions (torchvision for ResNet-18 and VGG-16;
single-tower AlexNet as SCNN evaluated it). torch-free.
"""

from __future__ import annotations

from typing import Any

from hwsim.trace.layerspec import PARTS, LayerSpec, as_layer_spec
from hwsim.trace.reading import check_geometry_size
from hwsim.trace.scalesim_topology import (
    SCALESIM_COLUMNS,
    SCALESIM_GEMM_COLUMNS,
    read_scalesim_topology,
)
from hwsim.trace.schema import TraceError
from hwsim.trace.transformers import OPTIONS, TRANSFORMERS, transformer_layers

__all__ = ["MODELS", "PARTS", "SCALESIM_COLUMNS", "SCALESIM_GEMM_COLUMNS", "TRANSFORMERS", "LayerSpec",
           "as_layer_spec", "check_synthetic_size", "model_layers", "read_scalesim_topology"]



def _conv(name: str, C: int, K: int, HW: int, RS: int, stride: int = 1, pad: int = 0) -> LayerSpec:
    return LayerSpec(name=name, C=C, K=K, H=HW, W=HW, R=RS, S=RS, stride=stride, padding=pad)


def _fc(name: str, C: int, K: int) -> LayerSpec:
    return LayerSpec(name=name, kind="linear", C=C, K=K)


def alexnet(*, fc: bool = True) -> list[LayerSpec]:
    """AlexNet, ImageNet 227², single tower (ungrouped 96/256/384/384/256, as SCNN evaluated it).

    Max-pools (3×3/2) after conv1, conv2 and conv5 set the next layer's input size: 55→27, 27→13, 13→6.
    """
    layers = [
        _conv("conv1", 3, 96, 227, 11, stride=4),
        _conv("conv2", 96, 256, 27, 5, pad=2),
        _conv("conv3", 256, 384, 13, 3, pad=1),
        _conv("conv4", 384, 384, 13, 3, pad=1),
        _conv("conv5", 384, 256, 13, 3, pad=1),
    ]
    if fc:
        layers += [_fc("fc6", 256 * 6 * 6, 4096), _fc("fc7", 4096, 4096), _fc("fc8", 4096, 1000)]
    return layers


def resnet18() -> list[LayerSpec]:
    """ResNet-18 at 224² (torchvision names): every conv incl. the 1×1 downsamples, then fc."""
    layers = [_conv("conv1", 3, 64, 224, 7, stride=2, pad=3)]  # → 112, max-pool → 56
    hw, cin = 56, 64
    for stage, cout in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            p = f"layer{stage}.{block}"
            layers.append(_conv(f"{p}.conv1", cin, cout, hw, 3, stride=stride, pad=1))
            hw_out = (hw + 2 - 3) // stride + 1
            layers.append(_conv(f"{p}.conv2", cout, cout, hw_out, 3, pad=1))
            if stride != 1 or cin != cout:
                layers.append(_conv(f"{p}.downsample.0", cin, cout, hw, 1, stride=stride))
            hw, cin = hw_out, cout
    layers.append(_fc("fc", 512, 1000))
    return layers


def vgg16() -> list[LayerSpec]:
    """VGG-16 (configuration D) at 224²: 13 3×3 convs (pad 1) in 5 stages, max-pool after each, 3 fc."""
    layers: list[LayerSpec] = []
    hw, cin = 224, 3
    for stage, (cout, n) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)), start=1):
        for i in range(1, n + 1):
            layers.append(_conv(f"conv{stage}_{i}", cin, cout, hw, 3, pad=1))
            cin = cout
        hw //= 2
    return layers + [_fc("fc6", 512 * 7 * 7, 4096), _fc("fc7", 4096, 4096), _fc("fc8", 4096, 1000)]


def lenet5() -> list[LayerSpec]:
    """LeNet-5 on 28² MNIST (conv1 padded to the classic 32² input): 6 and 16 5×5 maps, 120-84-10."""
    return [
        _conv("conv1", 1, 6, 28, 5, pad=2),   # → 28, pool → 14
        _conv("conv2", 6, 16, 14, 5),         # → 10, pool → 5
        _fc("fc1", 16 * 5 * 5, 120), _fc("fc2", 120, 84), _fc("fc3", 84, 10),
    ]


MODELS = {
    "alexnet": alexnet,
    "alexnet_conv": lambda: alexnet(fc=False),
    "resnet18": resnet18,
    "vgg16": vgg16,
    "lenet5": lenet5,
}


def model_layers(name: str, **options: Any) -> list[LayerSpec]:
    """Layer specs of a named network (``MODELS`` or ``TRANSFORMERS``); unknown names raise ValueError listing both.

    ``options`` (transformers only, :data:`hwsim.trace.transformers.OPTIONS`): ``seq``, ``heads``, ``kv_heads``,
    ``blocks``, ``head``; ``None`` values are the model's defaults.
    """
    given = {k: v for k, v in options.items() if v is not None and v is not False}
    bad = sorted(set(options) - set(OPTIONS))
    if bad:
        raise ValueError(f"model_layers: unknown option(s) {bad}; allowed: {', '.join(OPTIONS)}")
    if name in TRANSFORMERS:
        return transformer_layers(name, **given)
    if name not in MODELS:
        raise ValueError(f"model {name!r} is not known for synthetic traces; allowed: "
                         f"{', '.join([*MODELS, *TRANSFORMERS])}")
    if given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise ValueError(f"{flags}: {name} is not a transformer; allowed with: {', '.join(TRANSFORMERS)}")
    return MODELS[name]()


def check_synthetic_size(model: str, batch: int, where: str, **options: Any) -> None:
    """Refuse a synthetic trace whose layers would exceed :data:`hwsim.trace.layout.MAX_TENSOR_ELEMENTS`, before
    any array exists (``options``: a transformer's seq, heads, ... as :func:`model_layers` takes them)."""
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise TraceError(f"{where}.batch: {batch!r} is not allowed; allowed: an integer >= 1")
    try:
        specs = model_layers(model, **options)
    except TraceError:
        raise
    except ValueError as e:  # an unknown model or option: say where it was given
        raise TraceError(f"{where}: {e}") from None
    for spec in specs:
        check_geometry_size(spec.geometry(batch), f"{where}: model {model}, layer {spec.name} at batch {batch}")
