"""Per-layer s: which quantization step scale each layer's NSD uses (``capture(..., s_layers=...)``).

NSD's noise compounds layer by layer (:mod:`hwsim.trace.noise`): a layer quantizes a gradient that already carries
the noise of every layer above it. A deep net that diverges at one s for every layer may train when the early
layers (reached last by backward, after the most compounding) use a smaller s. Three forms:

* ``None`` — every dithered layer uses ``s`` (the seed paper's setting);
* ``"depth"`` — s grows linearly with depth in forward order: layer l of L (0-based) uses s·(l + 1)/L, so the
  last layer uses ``s`` and the first s/L. L is the number of GEMM call sites of the first iteration; a site that
  appears later uses ``s``. hwsim's rule, chosen because the compound gain is a product over the layers *above*
  a layer: the layers with the most above them get the least noise;
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

RULES = ("depth",)


@dataclass(frozen=True)
class SRule:
    """A validated per-layer s rule (module doc); :meth:`s_for` gives a layer's s."""

    s: float
    rule: str | None = None
    globs: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def parse(cls, s: float, spec: Any, *, field: str = "s_layers") -> SRule:
        """``spec``: None, ``"depth"``, a ``{glob: s}`` mapping or its text form ``"glob=s,glob=s"``."""
        if spec is None:
            return cls(s=s)
        if isinstance(spec, str) and spec.strip() in RULES:
            return cls(s=s, rule=spec.strip())
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
        """The trace meta's ``s_layers``: None, the rule's name or the glob mapping."""
        return self.rule if self.rule is not None else dict(self.globs) or None
