"""Per-layer s: which quantization step scale each layer's NSD uses (``capture(..., s_layers=...)``).

NSD's noise compounds layer by layer (:mod:`hwsim.trace.noise`): a layer quantizes a gradient that already carries
the noise of every layer above it. A deep net that diverges at one s for every layer may train when the early
layers (reached last by backward, after the most compounding) use a smaller s. Three forms:

* ``None`` — every dithered layer uses ``s`` (the seed paper's setting);
* ``"depth"`` — s grows linearly with depth in forward order: layer l of L (0-based) uses s·(l + 1)/L, so the
  last layer uses ``s`` and the first s/L. L is the number of GEMM call sites of the first iteration; a site that
  appears later uses ``s``. hwsim's rule, chosen because the compound gain is a product over the layers *above*
  a layer: the layers with the most above them get the least noise;
* ``"budget"`` or ``"budget:B"`` — a noise budget (default B = 2): each iteration's backward keeps the estimated
  compound noise gain (:func:`hwsim.trace.noise.compound_gain`) of the gradient reaching every layer at most B.
  Before quantizing a layer, the budget left, B / G (G = Π √(1+noise²) over the layers already quantized in this
  backward), is spread evenly over the layers still to come: target noise n = √(g² − 1) with g = (B/G)^(1/r). The
  layer's s is then its s of the previous iteration scaled by n / (its noise then) — noise is close to
  proportional to s for s ≲ 2 — and clipped to [``S_MIN``, ``s``]; in the first iteration n·√6 (uniform
  quantization plus uniform dither: noise ≈ s/√6). A :class:`NoiseBudget` holds that state (one per capture);
* a mapping ``{glob: s}`` — the first glob (``fnmatch``, on hwsim's layer names as ``hwsim inspect`` prints them)
  that matches a layer's name gives its s; ``"*"`` sets the rest (else ``s``). On the command line:
  ``--s-layers 'features.*=1,classifier.*=4'``.

Torch-free: ``hwsim trace --help`` and the config validate it without importing torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import Any

RULES = ("depth", "budget")
DEFAULT_BUDGET = 2.0  # hwsim's choice: the gradient reaching any layer at most 2× its noise-free norm (estimate)
S_MIN = 0.05  # the budget rule's smallest s (δ̃z then is nearly dense: noise ≈ 0.02)


@dataclass(frozen=True)
class SRule:
    """A validated per-layer s rule (module doc); :meth:`s_for` gives a layer's s."""

    s: float
    rule: str | None = None
    budget: float = DEFAULT_BUDGET
    globs: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def parse(cls, s: float, spec: Any, *, field: str = "s_layers") -> SRule:
        """``spec``: None, ``"depth"``, a ``{glob: s}`` mapping or its text form ``"glob=s,glob=s"``."""
        if spec is None:
            return cls(s=s)
        if isinstance(spec, str) and spec.strip() in RULES:
            return cls(s=s, rule=spec.strip())
        if isinstance(spec, str) and spec.strip().startswith("budget:"):
            val = spec.strip()[len("budget:"):]
            try:
                b = float(val)
            except ValueError:
                b = math.nan
            if not (math.isfinite(b) and b > 1.0):
                raise ValueError(f"{field}: budget {val!r} is not allowed; allowed: a number > 1 (e.g. 'budget:2')")
            return cls(s=s, rule="budget", budget=b)
        if isinstance(spec, str):
            pairs: dict[str, Any] = {}
            for part in spec.split(","):
                glob, eq, val = part.partition("=")
                if not eq or not glob.strip():
                    raise ValueError(f"{field}: {part.strip()!r} is not allowed; allowed: 'depth' or "
                                     "comma-separated GLOB=S pairs, e.g. 'features.*=1,*=4'")
                try:
                    pairs[glob.strip()] = float(val)
                except ValueError:
                    raise ValueError(f"{field}: s of {glob.strip()!r} is {val.strip()!r}; allowed: a number > 0"
                                     ) from None
            spec = pairs
        if not isinstance(spec, Mapping) or not spec:
            raise ValueError(f"{field}: {spec!r} is not allowed; allowed: None, 'depth', or a non-empty "
                             "{{glob: s}} mapping")
        globs: dict[str, float] = {}
        for g, v in spec.items():
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
            if not isinstance(g, str) or not ok:
                raise ValueError(f"{field}: {g!r}: {v!r} is not allowed; allowed: a layer-name glob → a number > 0")
            globs[g] = float(v)
        return cls(s=s, globs=MappingProxyType(globs))

    def s_for(self, name: str, index: int, layers: int) -> float:
        """s of layer ``name``, the ``index``-th (0-based) of ``layers`` call sites in forward order."""
        if self.rule == "depth":
            return self.s * (index + 1) / layers if 0 <= index < layers else self.s
        for g, v in self.globs.items():
            if fnmatchcase(name, g):
                return v
        return self.s

    def meta(self) -> str | dict[str, float] | None:
        """The trace meta's ``s_layers``: None, the rule's name (``budget:B``) or the glob mapping."""
        if self.rule == "budget":
            return f"budget:{self.budget:g}"
        return self.rule if self.rule is not None else dict(self.globs) or None


class NoiseBudget:
    """The ``budget`` rule's state over a capture (module doc): per layer its last s and noise, per backward G."""

    def __init__(self, s_max: float, budget: float) -> None:
        self.s_max, self.budget = s_max, budget
        self.layers = 0  # dithered call sites of the first backward (fixed once it completes)
        self._last: dict[str, tuple[float, float]] = {}  # name -> (s, noise) of its last call
        self._done: set[str] = set()  # quantized in the current backward
        self._gain = 1.0  # G of the current backward
        self._pending: dict[str, float] = {}  # name -> the s handed out, until its noise is observed

    def s_for(self, name: str) -> float:
        """The s for ``name``'s next quantization."""
        if name in self._done:  # a second backward in this iteration (accumulation) or a new iteration
            self.layers = max(self.layers, len(self._done))
            self._done, self._gain = set(), 1.0
        left = max(1, (self.layers or len(self._done) + 1) - len(self._done))
        g = (self.budget / self._gain) ** (1.0 / left) if self._gain < self.budget else 1.0
        target = math.sqrt(max(0.0, g * g - 1.0))
        last = self._last.get(name)
        s = last[0] * target / last[1] if last and last[1] > 0 else target * math.sqrt(6.0)
        s = min(self.s_max, max(S_MIN, s))
        self._pending[name] = s
        return s

    def observe(self, name: str, noise: float | None) -> None:
        """The measured noise of ``name``'s quantization at the s :meth:`s_for` gave it."""
        s = self._pending.pop(name, None)
        self._done.add(name)
        if noise is None:
            return
        self._gain *= math.sqrt(1.0 + noise * noise)
        if s is not None:
            self._last[name] = (s, noise)
