"""What a trace tells about the exact zeros of a layer's *dense* δz (before NSD), for ``quantizer.skip_zeros``.

A trace stores δ̃z, not δz. Under NSD an exact zero stays zero, so the δ̃z mask is a *subset* of δz's
non-zeros: it bounds the zeros from above, never from below, and cannot stand for δz's zero mask
(at 5 % δ̃z density most non-zeros of δz are quantized to 0).

What is known: when a layer's output z feeds the next layer (trace order) through an elementwise
activation f with f(z) = 0 ⇒ f'(z) = 0 (ReLU), the next layer's input a = f(z) is zero wherever δz =
δa ⊙ f'(z) is, so nnz(δz) ≤ nnz(a) — the stashed activation mask is the ReLU derivative mask. The
trace does not record the activation (GELU has no exact zeros; BatchNorm between the GEMM and the
ReLU makes δz dense), so the relation is *tested* on the data: it holds only if no non-zero δ̃z of
the layer sits where the next input is zero (necessary, as δ̃z ≠ 0 ⇒ δz ≠ 0 ⇒ f'(z) ≠ 0), and the
test is only believed when chance would pass it with probability ≤ :data:`EVIDENCE`: under no relation
each of the n non-zero δ̃z lands on a non-zero input with probability d (the next input's density), so
d^n ≤ EVIDENCE. Then the dense δz's non-zero count is taken as nnz(a) (an upper bound; exact for
ReLU without pooling). Otherwise — shapes differ (pooling, flatten, the last layer), the test fails,
or too few δ̃z non-zeros — nothing is known and every element is processed.

Not known from a trace: the max-pool routing zeros (3 of 4 δz elements under a 2×2 max-pool are
exact zeros) and the dense δz of ``method: dither`` layers whose activation is not a ReLU. Recording
nnz(δz) at capture would make the count exact everywhere (not done: the trace format has no key).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from hwsim.trace.schema import LayerSample

EVIDENCE = 1e-6  # hwsim: chance of accepting an unrelated mask as the ReLU derivative mask (d^n)


def relu_mask_nonzero(dz_levels: np.ndarray, next_a_mask: np.ndarray) -> int | None:
    """nnz(a) of the next layer's input if it passes for the ReLU derivative mask of δz (module doc), else None."""
    if dz_levels.shape != next_a_mask.shape:
        return None
    a = np.asarray(next_a_mask, dtype=bool)
    nz = dz_levels != 0
    n, na = int(np.count_nonzero(nz)), int(np.count_nonzero(a))
    if na == a.size:
        return na                                   # a dense next input says nothing: every element
    if n == 0 or np.any(nz & ~a):
        return None
    d = na / a.size
    return na if n * math.log(d) <= math.log(EVIDENCE) else None  # 0 < d < 1: na = 0 failed the subset test


def dense_dz_nonzero(samples: Mapping[str, LayerSample]) -> dict[str, int]:
    """Per layer (trace order), the non-zero count of its dense δz where the trace tells it (module doc)."""
    items = list(samples.items())
    out: dict[str, int] = {}
    for (name, s), nxt in zip(items, [*items[1:], None], strict=True):
        if nxt is None or nxt[1].geometry.input_shape != s.geometry.output_shape:
            continue
        known = relu_mask_nonzero(np.asarray(s.dz_levels), np.asarray(nxt[1].a_mask))
        if known is not None:
            out[name] = known
    return out
