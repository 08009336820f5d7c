"""Dithered backprop's gradient noise, layer by layer: the statistics a trace keeps and what they compound to.

NSD (seed paper eq. 4) is unbiased, E[δ̃z] = δz, but each layer adds noise of its own, and the next layer down
quantizes a gradient that already carries the noise of every layer above it. Two cheap figures per layer and
iteration (``iterations.jsonl``, ``layers.<name>.noise`` and ``.dz_norm``, traces/FORMAT.md) make that visible:

* ``noise`` = ‖δ̃z − δz‖ / ‖δz‖ — the relative quantization noise this layer adds (0 for plain backprop; for
  Gaussian δz at Δ = s·σ it grows roughly like √(0.8·s) once most levels are 0);
* ``dz_norm`` = ‖δz‖ — the gradient this layer received, before its own quantization. Its *growth against the
  layer above* (:func:`norm_growth`) is measured in the run itself.

:func:`compound_gain` is an estimate, stated as one: if the noise a layer adds travelled down the network as its
signal does (independent noise, a plain chain of layers), the gradient norm reaching layer l would be inflated by
Π over the layers above l of ‖δ̃z‖/‖δz‖ = √(1 + noise²). Residual paths and normalisation make the real growth
smaller or larger; the one-step measurement of ``benchmarks/noise_table.py`` (‖δW‖ with dither over plain, from
the same weights) is the ground truth the README shows beside it.

Plain Python (no numpy, no torch): capture, ``hwsim inspect`` and the report share it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

# Above this estimated compound gain (the gradient norm reaching a layer inflated 100× by the noise of the layers
# above it, i.e. > 99.99 % of its energy noise under the estimate's assumption), capture warns once per run.
# hwsim's choice, not a paper's: LeNet-5 at s = 4 (4 layers above its first, ≈ 2× each) stays below it and trains
# (README accuracy table); deep plain chains at s = 4 (ResNet-18: 20 layers) are far above it.
COMPOUND_WARN = 100.0


def layer_noise(sum_dz2: float, sum_q2: float, sum_dzq: float) -> dict[str, float] | None:
    """``{"noise", "dz_norm"}`` from Σδz², Σδ̃z² and Σδz·δ̃z over a layer's calls (None when δz is all zero)."""
    if not sum_dz2 > 0.0 or not math.isfinite(sum_dz2):
        return None
    err2 = max(0.0, sum_dz2 - 2.0 * sum_dzq + sum_q2)  # ‖δ̃z − δz‖², clipped at 0 against rounding
    return {"noise": math.sqrt(err2 / sum_dz2), "dz_norm": math.sqrt(sum_dz2)}


def _stat(st: Any, key: str) -> float | None:
    """``key`` (``noise`` or ``dz_norm``) of a layer's statistics: a JSON mapping or a ``LayerStats`` record."""
    v = st.get(key) if isinstance(st, Mapping) else getattr(st, key, None)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def compound_gain(order: Sequence[str], stats: Mapping[str, Any]) -> dict[str, float]:
    """Per layer (``order`` = forward execution order), the estimated noise gain of the gradient reaching it.

    Π over the layers *after* it in ``order`` (backward runs them first) of √(1 + noise²); layers without a
    ``noise`` figure (plain GEMMs, statistics not kept) count as 1. The last layer's estimate is 1.
    """
    out: dict[str, float] = {}
    g = 1.0
    for name in reversed(order):
        out[name] = g
        n = _stat(stats.get(name), "noise")
        if n is not None:
            g *= math.sqrt(1.0 + n * n)
    return out


def norm_growth(order: Sequence[str], stats: Mapping[str, Any]) -> dict[str, float | None]:
    """Per layer, measured ‖δz‖ over the ‖δz‖ of the next layer in ``order`` that has one (None where unknown)."""
    out: dict[str, float | None] = {}
    above: float | None = None
    for name in reversed(order):
        n = _stat(stats.get(name), "dz_norm")
        out[name] = n / above if n is not None and above else None
        if n is not None:
            above = n
    return out


def compound_warning(order: Sequence[str], stats: Mapping[str, Any], *, threshold: float = COMPOUND_WARN
                     ) -> str | None:
    """The one-line warning capture prints when :func:`compound_gain` passes ``threshold`` somewhere, else None."""
    if not any(_stat(stats.get(n), "noise") is not None for n in order):
        return None
    gains = compound_gain(order, stats)
    worst = max(order, key=gains.__getitem__)
    if gains[worst] <= threshold:
        return None
    above = len(order) - order.index(worst) - 1
    return (f"dithered-backprop noise compounds over depth: the gradient reaching layer {worst!r} carries an "
            f"estimated {gains[worst]:.3g}× noise gain from the {above} layers above it (threshold {threshold:g}); "
            "deep nets may not train at one s for every layer: try s_layers='budget:2' (hwsim trace --s-layers "
            "budget:2; README, 'NSD's noise over depth'); `hwsim inspect TRACE` shows the noise per layer")
