"""What capture keeps per GEMM call site, per forward call and per iteration (micro-batches merged)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from hwsim.capture import ops, quant
from hwsim.trace.format import LayerGeometry, LayerSample
from hwsim.trace.noise import layer_noise


@dataclass
class Site:
    """One GEMM call position (``name``, ``name#1``, … for repeated calls within one forward)."""

    name: str
    w_bits: int = 32
    a_bits: int = 32
    geometry: LayerGeometry | None = None
    shape_key: tuple[Any, ...] | None = None


@dataclass
class Call:
    """What a forward call hands to its backward: where, which iteration, what to keep."""

    site: Site
    iteration: int
    gemm: ops.Gemm  # operand closures dropped after the forward; ``z`` and the row counts stay
    geometry: LayerGeometry
    keep: int
    dither: bool
    masks: tuple[Any, float, Any] | None = None  # (a_mask, w_density, w_mask) on sampled calls
    after: Callable[[torch.Tensor], None] | None = None  # SDPA: record QKᵀ from the output gradient
    operand_bits: int = 32  # width of the GEMM's operands as computed: 16 for bf16/fp16, 32 for float32/64


@dataclass
class Iteration:
    index: int
    sampled: bool
    acc: dict[str, list[Any]] = field(default_factory=dict)  # name -> [numel, nnz, max_bits, hist, Σδ·numel]
    samples: dict[str, LayerSample] = field(default_factory=dict)
    masked: set[str] = field(default_factory=set)
    noise: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (Σδz², Σδ̃z², Σδz·δ̃z), on δz's device
    noise_sums: dict[str, list[float]] = field(default_factory=dict)  # the same on the host (CPU δz: as they come)

    def add(self, name: str, st: quant.LevelStats, delta: float) -> None:
        """Merge one call's level statistics (plain Python numbers: nothing here touches a device)."""
        a = self.acc.get(name)
        if a is None:
            self.acc[name] = [st.numel, st.nnz, st.max_bits, list(st.hist), delta * st.numel, st.to_json(delta=delta)]
            return
        a[0] += st.numel
        a[1] += st.nnz
        a[2] = max(a[2], st.max_bits)
        a[3] = [x + y for x, y in zip(a[3], st.hist, strict=True)]
        a[4] += delta * st.numel
        a[5] = None  # merged micro-batches

    def add_noise(self, name: str, sums: torch.Tensor, *, host: bool = False) -> None:
        """Merge one call's (Σδz², Σδ̃z², Σδz·δ̃z) (:func:`~hwsim.capture.quantized.noise_sums`): micro-batches
        add up (float64). ``host``: the sums are a CPU quantizer's, read at once (three floats: no stacking when the
        iteration ends); else (a device, or the device path pinned on CPU) they stay there until :meth:`fetch_noise`
        brings every layer's at once."""
        if host and sums.is_cpu and name not in self.noise:
            a = self.noise_sums.get(name)
            new = sums.tolist()
            self.noise_sums[name] = new if a is None else [x + y for x, y in zip(a, new, strict=True)]
            return
        a = self.noise.get(name)
        self.noise[name] = sums if a is None else a + sums.to(a.device)

    def fetch_noise(self) -> None:
        """Bring every device layer's noise sums to the host in one transfer (when the iteration ends)."""
        if self.noise:
            names = list(self.noise)
            dev = next(iter(self.noise.values())).device
            rows = torch.stack([self.noise[n].to(dev) for n in names]).tolist()  # one transfer
            for n, row in zip(names, rows, strict=True):  # (a layer with CPU sums too: rare, they add up)
                a = self.noise_sums.get(n)
                self.noise_sums[n] = row if a is None else [x + y for x, y in zip(a, row, strict=True)]

    def stats(self, name: str) -> dict[str, Any]:
        n, nnz, mb, hist, dsum, single = self.acc[name]
        st = dict(single) if single is not None else {"density": nnz / max(1, n), "max_bits": mb, "hist": hist,
                                                      "delta": dsum / max(1, n)}
        sums = self.noise_sums.get(name)
        noise = layer_noise(*sums) if sums is not None else None
        if noise is not None:
            st.update(noise)
        return st


@dataclass
class RunTotals:
    """Run-level aggregates over the finished iterations (the manifest's ``summary``)."""

    iterations: int = 0
    dens_sum: float = 0.0  # Σ density over (layer, iteration) pairs
    dens_n: int = 0
    nnz: int = 0
    numel: int = 0
    max_bits: int = 0

    def add(self, it: Iteration, stats: dict[str, dict[str, Any]]) -> float | None:
        """Count one finished iteration (``stats``: its per-layer statistics); its element-weighted density."""
        numel = sum(it.acc[n][0] for n in stats)
        nnz = sum(it.acc[n][1] for n in stats)
        self.iterations += 1
        self.nnz += nnz
        self.numel += numel
        for st in stats.values():
            self.dens_sum += st["density"]
            self.dens_n += 1
            self.max_bits = max(self.max_bits, int(st["max_bits"]))
        return nnz / numel if numel else None

    def summary(self) -> dict[str, Any]:
        """Mean δ̃z density over (layer, iteration) pairs (as the paper's Table 1), element-weighted density, max bits."""
        return {"iterations": self.iterations, "mean_density": self.dens_sum / self.dens_n if self.dens_n else None,
                "weighted_density": self.nnz / self.numel if self.numel else None, "max_bits": self.max_bits}
