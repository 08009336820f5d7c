"""The MobileNet-V2 inverted residual block shared by ``coverage_table.py`` and ``noise_table.py`` (not a
benchmark itself): a 1×1 expand, a 3×3 depthwise convolution, a 1×1 project, each with BatchNorm, the first two
with an in-place ReLU6 (Sandler et al. 2018); the input is added back when the block keeps the shape (stride 1,
as many channels out as in).

The benchmarks run as files: each puts this folder on ``sys.path`` and imports this module by name.
"""

from __future__ import annotations

import torch
from torch import nn


class InvertedResidual(nn.Module):
    """MobileNet-V2 block: 1×1 expand, 3×3 depthwise, 1×1 project, BatchNorm, ReLU6; residual at stride 1."""

    def __init__(self, c_in: int, c_out: int, expand: int, stride: int) -> None:
        super().__init__()
        h = c_in * expand
        self.body = nn.Sequential(nn.Conv2d(c_in, h, 1, bias=False), nn.BatchNorm2d(h), nn.ReLU6(inplace=True),
                                  nn.Conv2d(h, h, 3, stride=stride, padding=1, groups=h, bias=False),
                                  nn.BatchNorm2d(h), nn.ReLU6(inplace=True), nn.Conv2d(h, c_out, 1, bias=False),
                                  nn.BatchNorm2d(c_out))
        self.res = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.res else y


__all__ = ["InvertedResidual"]
