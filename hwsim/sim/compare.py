"""Several architectures on one trace, side by side against one dense baseline and one sparse reference.

Why: a multiplier kind (``pe.mac``) is only interesting relative to the 8-bit zero-skipping engine
it would replace. :func:`compare` simulates the same sampled iteration on every architecture and
puts their ``sparse`` variants beside the *first* architecture's ``dense`` (DCNN) and ``sparse``
(the reference, e.g. scnn.yaml's 8-bit zero skipping) — per layer and pass, per pass and for the
whole iteration. Every baseline is derived with parallel MACs (:func:`hwsim.arch.dense_variant`), so
archs that share the array share the dense figures exactly.

>>> cmp = compare("traces/lenet5", ["scnn", "scnn_bitserial", "scnn_bitfusion"])
>>> print(cmp.table())
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hwsim.results import ALL_SCOPES, PASSES, SimResult, ratio


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """Results of one trace on several archs; ``results[0]`` provides the dense baseline and the reference."""

    names: tuple[str, ...]
    results: tuple[SimResult, ...]

    def rows(self) -> list[dict[str, Any]]:
        """One row per (layer or ``*``, scope, arch): cycles, energy and ratios vs dense and vs the reference."""
        base = self.results[0]
        layers = [None, *base.layer_names()]
        out = []
        for layer in layers:
            scopes = ALL_SCOPES if layer is None else PASSES
            for scope in scopes:
                if layer is not None and not any(lp.name == layer and lp.pass_name == scope for lp in base.layers):
                    continue
                dense = base.scope_total(scope, "dense", layer=layer)
                ref = base.scope_total(scope, "sparse", layer=layer)
                entries = [("dense", base, "dense"), *((n, r, "sparse") for n, r in zip(self.names, self.results, strict=True))]
                for name, res, variant in entries:
                    v = res.scope_total(scope, variant, layer=layer)
                    ideal = res.scope_total(scope, "ideal", layer=layer)
                    cb, eb = v.cycle_breakdown.to_json(), v.energy_breakdown.to_json()
                    out.append({
                        "layer": layer or "*", "scope": scope, "arch": name, "mac": _mac(res, variant),
                        "cycles": v.cycles, "energy_pj": v.energy_pj, "ideal_cycles": ideal.cycles,
                        "speedup_vs_dense": ratio(dense.cycles, v.cycles),
                        "energy_vs_dense": ratio(dense.energy_pj, v.energy_pj),
                        "speedup_vs_ref": ratio(ref.cycles, v.cycles),
                        "energy_vs_ref": ratio(ref.energy_pj, v.energy_pj),
                        "compute_cycles": v.cycles - cb["memory_stall"] - cb["fill_drain"],
                        **{f"cycles_{k}": c for k, c in cb.items()},
                        **{f"energy_{k}": e for k, e in eb.items()},
                    })
        return out

    def table(self, *, scopes: Sequence[str] = ALL_SCOPES) -> str:
        """Whole-model rows as text: cycles and energy per arch, ×dense and ×reference."""
        ref = self.names[0]
        head = (f"{'scope':<16}{'arch':<18}{'cycles':>11}{'×dense':>8}{f'×{ref}':>{max(9, len(ref) + 3)}}"
                f"{'non-mem cyc':>12}{'energy µJ':>11}{'×dense':>8}{f'×{ref}':>{max(9, len(ref) + 3)}}")
        lines = [head, "-" * len(head)]
        w = max(9, len(ref) + 3)
        for r in self.rows():
            if r["layer"] != "*" or r["scope"] not in scopes:
                continue
            lines.append(f"{r['scope']:<16}{r['arch']:<18}{r['cycles']:>11,}{r['speedup_vs_dense']:>7.2f}×"
                         f"{r['speedup_vs_ref']:>{w - 1}.2f}×{r['compute_cycles']:>12,}{r['energy_pj'] / 1e6:>11.3f}"
                         f"{r['energy_vs_dense']:>7.2f}×{r['energy_vs_ref']:>{w - 1}.2f}×")
        lines.append(f"×dense / ×{ref}: cycles (energy) of the dense baseline / of {ref}'s sparse run, divided by "
                     "the row's (> 1 = the row is faster / cheaper); non-mem cyc = cycles less memory stall and "
                     "exposed fill / drain")
        return "\n".join(lines)


def _mac(res: SimResult, variant: str) -> str:
    if variant != "sparse":
        return "parallel"
    pe = res.arch.get("params", {}).get("pe", {})
    mac = pe.get("mac", "parallel")
    return f"{mac}/{pe.get('bit_serial_mode', 'magnitude')}" if mac == "bit_serial" else mac


def compare(trace_or_path: Any, archs: Sequence[Any], *, iteration: int | None = None, seed: int = 0,
            overrides: dict[str, Any] | None = None) -> Comparison:
    """Simulate ``trace_or_path`` on every arch (names, paths or Arch; ``overrides`` applied to each).

    The first arch is the reference (its dense baseline and its sparse run head every ratio).
    """
    from hwsim.arch import Arch, load_arch
    from hwsim.sim import simulate
    from hwsim.trace.format import Trace, load

    if not archs:
        raise ValueError("archs: empty; allowed: one or more architecture names or files")
    # Manifest validated here; only the sample replayed is read, and its sha256 is checked as it is read
    # (Trace.sample): verifying every sample file up front would read the whole trace to use one iteration.
    trace = trace_or_path if isinstance(trace_or_path, Trace) else load(trace_or_path, verify=False)
    loaded = [load_arch(a if isinstance(a, Arch) else str(a), overrides) for a in archs]
    results = tuple(simulate(trace, a, iteration=iteration, seed=seed) for a in loaded)
    return Comparison(names=tuple(a.name for a in loaded), results=results)
