"""Which GEMMs one training iteration replays: the backward GEMMs that ran, per layer (issue 20 item 1).

A capture records per layer whether its input and its weight needed a gradient (``LayerSample.input_grad`` /
``weight_grad``); the replay runs exactly those backward GEMMs. Older captures and synthetic traces fall back to
the trace meta (:func:`first_layer_input_grad`). Re-exported by :mod:`hwsim.sim.replay`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hwsim.sim.passes import PASSES

__all__ = ["first_layer_input_grad", "layer_grads", "replayed_passes"]


def first_layer_input_grad(meta: Mapping[str, Any]) -> bool:
    """Does the first layer (trace order) of a trace with this meta need its input gradient δa?

    The fallback for traces whose samples do not record ``input_grad`` per layer (:func:`layer_grads`):
    the first layer of such a trace reads the network input, which does not require grad: so
    ``False`` unless the meta says otherwise —
    ``meta["first_layer_input_grad"]`` if present; else, for synthetic traces, ``True`` when the
    first input is *not* the dense image (``synthetic.dense_first_input: false``: a slice of
    layers whose first input is some earlier layer's activation).
    """
    flag = meta.get("first_layer_input_grad")
    if flag is not None:
        return bool(flag)
    syn = meta.get("synthetic")
    if isinstance(syn, Mapping) and "dense_first_input" in syn:
        return not syn["dense_first_input"]
    return False


def layer_grads(flags: Iterable[tuple[bool | None, bool | None]], *, first_input_grad: bool
                ) -> list[tuple[bool, bool]]:
    """(backward-data, backward-weight) GEMM present, for each layer in trace order.

    ``flags``: each layer's recorded ``(input_grad, weight_grad)`` (``LayerSample`` / a sample's
    manifest entry): the GEMMs that ran in training. Where a flag is ``None`` (synthetic traces,
    captures before the flags were recorded): backward-weight always, backward-data for every layer
    but the first, which has it only if ``first_input_grad`` (:func:`first_layer_input_grad`).
    """
    return [(bool(ig) if ig is not None else (i > 0 or first_input_grad), bool(wg) if wg is not None else True)
            for i, (ig, wg) in enumerate(flags)]


def replayed_passes(flags: Iterable[tuple[bool | None, bool | None]], *, first_input_grad: bool,
                    passes: Iterable[str] = PASSES) -> list[tuple[int, str]]:
    """``(layer index, pass)`` of every GEMM one iteration replays (:func:`layer_grads` decides the backward ones)."""
    passes = list(passes)
    out = []
    for i, (bd, bw) in enumerate(layer_grads(flags, first_input_grad=first_input_grad)):
        have = {"forward": True, "backward_data": bd, "backward_weight": bw}
        out.extend((i, p) for p in passes if have[p])
    return out
