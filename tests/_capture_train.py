"""The capture tests' training loop (never shipped): a few SGD steps of one net, with or without capture.

``test_capture_ops.py`` and ``test_capture_attention.py`` train a net and a deep copy of it the same way, once
plain and once under ``hwsim.capture``, and compare every tensor: this is that loop, written once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from hwsim.capture.session import capture


def train_steps(net: nn.Module, loss: Callable[[nn.Module], torch.Tensor], steps: int,
                capture_kw: Mapping[str, Any] | None = None) -> list[torch.Tensor]:
    """``steps`` SGD steps (lr 0.1) on ``loss(net)``, inside ``capture(net, **capture_kw)`` when that is given.

    Returns every step's parameter gradients in order, then the parameters after the last step (all cloned).
    """
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    out: list[torch.Tensor] = []
    ctx = capture(net, **capture_kw) if capture_kw else None
    if ctx is not None:
        ctx.__enter__()
    try:
        for _ in range(steps):
            opt.zero_grad()
            loss(net).backward()
            out += [p.grad.clone() for p in net.parameters()]
            opt.step()
    finally:
        if ctx is not None:
            ctx.__exit__(None, None, None)
    return out + [p.detach().clone() for p in net.parameters()]
