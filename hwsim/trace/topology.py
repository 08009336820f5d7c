"""Layer geometries without a model: named networks (ImageNet/MNIST shapes) and SCALE-Sim topology CSVs.

Synthetic traces need only the shapes of the Linear/Conv2d calls, not a torch model, so the zoo
here is plain data. Geometry follows the usual definitions (torchvision for ResNet-18 and VGG-16;
single-tower AlexNet as SCNN evaluated it). torch-free.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwsim.trace.reading import check_geometry_size
from hwsim.trace.schema import LayerGeometry, TraceError

SCALESIM_COLUMNS = ("Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width",
                    "Channels", "Num Filter", "Strides")


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


@dataclass(frozen=True, kw_only=True)
class LayerSpec:
    """One Linear or Conv2d layer by its shape; ``geometry(batch)`` gives the trace's LayerGeometry."""

    name: str
    kind: str = "conv2d"
    C: int
    K: int
    H: int = 1
    W: int = 1
    R: int = 1
    S: int = 1
    stride: int | tuple[int, int] = 1
    padding: int | tuple[int, int] = 0
    groups: int = 1

    def geometry(self, batch: int = 1) -> LayerGeometry:
        st, pd = _pair(self.stride), _pair(self.padding)
        if self.kind == "linear":
            return LayerGeometry(name=self.name, kind="linear", N=batch, C=self.C, K=self.K)
        if self.R > self.H + 2 * pd[0] or self.S > self.W + 2 * pd[1]:
            raise TraceError(f"LayerSpec({self.name!r}): filter {self.R}×{self.S} is larger than the "
                             f"padded input {self.H + 2 * pd[0]}×{self.W + 2 * pd[1]}")
        P = (self.H + 2 * pd[0] - self.R) // st[0] + 1
        Q = (self.W + 2 * pd[1] - self.S) // st[1] + 1
        return LayerGeometry(name=self.name, kind=self.kind, N=batch, C=self.C, K=self.K, H=self.H, W=self.W,
                             P=P, Q=Q, R=self.R, S=self.S, stride=st, padding=pd, groups=self.groups)


def as_layer_spec(item: LayerSpec | Mapping[str, Any], where: str = "layers") -> LayerSpec:
    """A LayerSpec, or a mapping of its fields (e.g. from YAML/JSON); bad keys raise ValueError."""
    if isinstance(item, LayerSpec):
        return item
    if not isinstance(item, Mapping):
        raise ValueError(f"{where}: {item!r} is not a layer spec; allowed: LayerSpec or a mapping of its fields")
    fields = [f.name for f in dataclasses.fields(LayerSpec)]
    unknown = sorted(set(item) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; allowed: {', '.join(fields)}")
    try:
        kw = {k: tuple(v) if k in ("stride", "padding") and isinstance(v, list) else v for k, v in item.items()}
        return LayerSpec(**kw)
    except TypeError as e:
        raise ValueError(f"{where}: {e}; allowed: {', '.join(fields)}") from None


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


def model_layers(name: str) -> list[LayerSpec]:
    """Layer specs of a named network; unknown names raise ValueError listing the known ones."""
    if name not in MODELS:
        raise ValueError(f"model {name!r} is not known for synthetic traces; allowed: {', '.join(MODELS)}")
    return MODELS[name]()


def read_scalesim_topology(path: str | os.PathLike) -> list[LayerSpec]:
    """Parse a SCALE-Sim conv topology CSV (no padding, one stride for both axes).

    Columns: ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels,
    Num Filter, Strides`` — real files have trailing commas and spaces, and some add columns after
    these (ignored). Errors name the file, the line and the column.
    """
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise TraceError(f"{p}: SCALE-Sim topology file not found") from None
    rows = [(i + 1, [c.strip() for c in r]) for i, r in enumerate(csv.reader(text.splitlines()))]
    rows = [(n, r) for n, r in rows if any(r) and not r[0].startswith("#")]
    if not rows:
        raise TraceError(f"{p}: empty topology file; allowed: a header '{', '.join(SCALESIM_COLUMNS)}' and rows")
    header_line, header = rows[0]
    if [h.lower() for h in header[:8]] != [c.lower() for c in SCALESIM_COLUMNS]:
        raise TraceError(f"{p}:{header_line}: header {header[:8]} is not a SCALE-Sim conv topology; "
                         f"allowed: {', '.join(SCALESIM_COLUMNS)} (GEMM 'M, N, K' files are not supported)")
    specs: list[LayerSpec] = []
    seen: set[str] = set()
    for line, r in rows[1:]:
        if len(r) < 8 or not all(r[:8]):
            raise TraceError(f"{p}:{line}: expected 8 values ({', '.join(SCALESIM_COLUMNS)}), got {r[:8]}")
        name = r[0]
        if name in seen:
            raise TraceError(f"{p}:{line}: duplicate layer name {name!r}")
        seen.add(name)
        vals = []
        for col, v in zip(SCALESIM_COLUMNS[1:], r[1:8], strict=True):
            try:
                iv = int(v)
            except ValueError:
                iv = 0
            if iv < 1 or str(iv) != v.lstrip("+"):
                raise TraceError(f"{p}:{line}: column '{col}' of layer {name!r} is {v!r}; allowed: integer >= 1")
            vals.append(iv)
        H, W, R, S, C, K, st = vals
        if R > H or S > W:
            raise TraceError(f"{p}:{line}: layer {name!r} filter {R}×{S} is larger than its input {H}×{W} "
                             "(SCALE-Sim topologies are unpadded)")
        specs.append(LayerSpec(name=name, C=C, K=K, H=H, W=W, R=R, S=S, stride=st))
    if not specs:
        raise TraceError(f"{p}: no layers after the header")
    return specs


def check_synthetic_size(model: str, batch: int, where: str) -> None:
    """Refuse a synthetic trace whose layers would exceed :data:`hwsim.trace.layout.MAX_TENSOR_ELEMENTS`, before
    any array exists."""
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise TraceError(f"{where}.batch: {batch!r} is not allowed; allowed: an integer >= 1")
    for spec in model_layers(model):
        check_geometry_size(spec.geometry(batch), f"{where}: model {model}, layer {spec.name} at batch {batch}")
