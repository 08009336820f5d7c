"""Layer geometries without a model: named networks (ImageNet/MNIST shapes) and SCALE-Sim topology CSVs.

Synthetic traces need only the shapes of the Linear/Conv2d calls, not a torch model, so the zoo
here is plain data. Geometry follows the usual definitions (torchvision for ResNet-18 and VGG-16;
single-tower AlexNet as SCNN evaluated it). torch-free.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from hwsim.trace.layerspec import PARTS, LayerSpec, as_layer_spec
from hwsim.trace.reading import check_geometry_size
from hwsim.trace.schema import TraceError
from hwsim.trace.transformers import OPTIONS, TRANSFORMERS, transformer_layers

__all__ = ["MODELS", "PARTS", "SCALESIM_COLUMNS", "SCALESIM_GEMM_COLUMNS", "TRANSFORMERS", "LayerSpec",
           "as_layer_spec", "check_synthetic_size", "model_layers", "read_scalesim_topology"]

SCALESIM_COLUMNS = ("Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width",
                    "Channels", "Num Filter", "Strides")
SCALESIM_GEMM_COLUMNS = ("Layer", "M", "N", "K")  # (M × K)·(K × N): M rows, K inner, N output columns


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


def _int_cell(v: str, where: str) -> int:
    try:
        iv = int(v)
    except ValueError:
        iv = 0
    if iv < 1 or str(iv) != v.lstrip("+"):
        raise TraceError(f"{where} is {v!r}; allowed: integer >= 1")
    return iv


def read_scalesim_topology(path: str | os.PathLike) -> list[LayerSpec]:
    """Parse a SCALE-Sim topology CSV: convolutions or GEMMs, told apart by the header.

    Conv files: ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter,
    Strides`` (no padding, one stride for both axes). GEMM files (SCALE-Sim's ``M, N, K`` inputs):
    ``Layer, M, N, K`` — the GEMM (M × K)·(K × N), read as a ``linear`` layer of M rows, K input and N
    output features (MACs M·N·K per example). Real files have trailing commas and spaces, and some add
    columns after these (ignored, e.g. a sparsity ratio). Errors name the file, the line and the column.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise TraceError(f"{p}: SCALE-Sim topology file not found") from None
    rows = [(i + 1, [c.strip() for c in r]) for i, r in enumerate(csv.reader(text.splitlines()))]
    rows = [(n, r) for n, r in rows if any(r) and not r[0].startswith("#")]
    allowed = f"a header '{', '.join(SCALESIM_COLUMNS)}' (convolutions) or '{', '.join(SCALESIM_GEMM_COLUMNS)}' (GEMMs)"
    if not rows:
        raise TraceError(f"{p}: empty topology file; allowed: {allowed} and rows")
    header_line, header = rows[0]
    low = [h.lower() for h in header]
    if low[:8] == [c.lower() for c in SCALESIM_COLUMNS]:
        columns, gemm = SCALESIM_COLUMNS, False
    elif low[0] in ("layer", "layer name") and low[1:4] == ["m", "n", "k"]:
        columns, gemm = SCALESIM_GEMM_COLUMNS, True
    else:
        raise TraceError(f"{p}:{header_line}: header {header[:8]} is not a SCALE-Sim topology; allowed: {allowed}")
    n = len(columns)
    specs: list[LayerSpec] = []
    seen: set[str] = set()
    for line, r in rows[1:]:
        if len(r) < n or not all(r[:n]):
            raise TraceError(f"{p}:{line}: expected {n} values ({', '.join(columns)}), got {r[:n]}")
        name = r[0]
        if name in seen:
            raise TraceError(f"{p}:{line}: duplicate layer name {name!r}")
        seen.add(name)
        vals = [_int_cell(v, f"{p}:{line}: column '{col}' of layer {name!r}")
                for col, v in zip(columns[1:], r[1:n], strict=True)]
        if gemm:
            m, nn, k = vals
            specs.append(LayerSpec(name=name, kind="linear", C=k, K=nn, tokens=m))
            continue
        H, W, R, S, C, K, st = vals
        if R > H or S > W:
            raise TraceError(f"{p}:{line}: layer {name!r} filter {R}×{S} is larger than its input {H}×{W} "
                             "(SCALE-Sim topologies are unpadded)")
        specs.append(LayerSpec(name=name, C=C, K=K, H=H, W=W, R=R, S=S, stride=st))
    if not specs:
        raise TraceError(f"{p}: no layers after the header")
    return specs


def check_synthetic_size(model: str, batch: int, where: str, **options: Any) -> None:
    """Refuse a synthetic trace whose layers would exceed :data:`hwsim.trace.layout.MAX_TENSOR_ELEMENTS`, before
    any array exists (``options``: a transformer's seq, heads, ... as :func:`model_layers` takes them)."""
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise TraceError(f"{where}.batch: {batch!r} is not allowed; allowed: an integer >= 1")
    for spec in model_layers(model, **options):
        check_geometry_size(spec.geometry(batch), f"{where}: model {model}, layer {spec.name} at batch {batch}")
