"""Hand-built, schema-conforming results for report and sweep tests (never shipped).

The numbers follow a simple closed form (cycles ∝ MACs × density + overheads) so tests can run
the report and sweep machinery without the simulator; they are not simulation results.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hwsim.results import (
    PASSES,
    CycleBreakdown,
    EnergyBreakdown,
    LayerPassResult,
    SimResult,
    VariantResult,
)

LAYERS = (("conv1", 117_600), ("conv2", 240_000), ("fc1", 48_000), ("fc2", 10_080), ("fc3", 840))


def _variant(macs: int, density: float, *, mults: int, skip: bool, gate: bool, ideal: bool = False) -> VariantResult:
    work = macs * (density if (skip or ideal) else 1.0)
    compute = max(1, int(work / mults))
    frag = 0 if ideal else int(compute * (0.15 if skip else 0.05))
    imb = 0 if ideal else int(compute * (0.10 if skip else 0.0))
    bank = 0 if ideal or not skip else int(compute * 0.05)
    mem = 0 if ideal else int(compute * 0.02)
    cyc = CycleBreakdown(compute=compute, fragmentation=frag, imbalance=imb, bank_conflict=bank, memory_stall=mem)
    e_scale = density if (skip or gate or ideal) else 1.0
    en = EnergyBreakdown(mac=0.23 * macs * e_scale, accumulator=1.1 * macs * e_scale, sram=0.4 * macs * (0.3 + e_scale),
                         crossbar=(0.2 * macs * e_scale) if skip else 0.0, dram=3.0 * macs * (0.2 + 0.8 * e_scale))
    return VariantResult(cycle_breakdown=cyc, energy_breakdown=en, macs=int(work), multipliers=mults,
                         analytical_cycles=compute)


def make_result(*, model: str = "lenet5", method: str = "dither", dz: float = 0.1, a: float = 0.5, w: float = 1.0,
                mults: int = 1024, arch_name: str = "scnn", params: dict[str, Any] | None = None) -> SimResult:
    layers = []
    for name, macs in LAYERS:
        for p in PASSES:
            d = {"forward": w * a, "backward_data": w * dz, "backward_weight": dz * a}[p]
            layers.append(LayerPassResult(
                name=name, pass_name=p, macs_dense=macs, macs_effectual=int(macs * d),
                sparse=_variant(macs, d, mults=mults, skip=True, gate=True),
                dense=_variant(macs, d, mults=mults, skip=False, gate=False),
                dense_gated=_variant(macs, d, mults=mults, skip=False, gate=True),
                ideal=_variant(macs, d, mults=mults, skip=False, gate=False, ideal=True),
                density={"w": w, "a": a, "dz": dz, "out": 0.5}, dz_bits=4 if p != "forward" else 0))
    return SimResult(
        trace={"path": f"traces/{model}_{method}", "model": model, "method": method, "s": 2.0, "iteration": 9,
               "dataset": "digits"},
        arch={"name": arch_name, "file": f"arch_configs/{arch_name}.yaml", "hash": "0" * 16,
              "params": params or {"pe_array": {"rows": 8, "cols": 8}, "pe": {"mult_f": 4, "mult_i": 4, "mac_bits": 8}}},
        layers=tuple(layers))


def write_result(path: Path, **kw: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(make_result(**kw).to_json(), indent=1))
    return path


def write_trace_manifest(path: Path, *, model: str = "lenet5", method: str = "dither", iterations: int = 20) -> Path:
    """A minimal trace directory: only the manifest (what reports read for training curves)."""
    path.mkdir(parents=True, exist_ok=True)
    its = []
    for i in range(iterations):
        its.append({"index": i, "epoch": i // 10, "loss": 2.3 / (1 + 0.2 * i), "acc": min(0.98, 0.1 + 0.05 * i),
                    "layers": {n: {"density": 0.3 / (1 + 0.1 * i) * (k + 1) / 3, "max_bits": 3 + (i + k) % 4,
                                   "hist": {}} for k, (n, _) in enumerate(LAYERS)}})
    man = {"format": "hwsim-trace", "version": 1, "meta": {"model": model, "method": method, "s": 2.0,
                                                          "dataset": "digits"},
           "layers": [], "iterations": its, "samples": [], "complete": True, "status": "complete"}
    (path / "manifest.json").write_text(json.dumps(man))
    return path


def fake_evaluate(task: Any) -> dict[str, Any]:
    """A deterministic stand-in for the simulator: bigger arrays and lower densities go faster."""
    ov = dict(task.overrides)
    rows = int(ov.get("pe_array.rows", 8))
    cols = int(ov.get("pe_array.cols", 8))
    f = int(ov.get("pe.mult_f", 4))
    i = int(ov.get("pe.mult_i", 4))
    dz = 0.05 + 0.01 * (sum(map(ord, task.trace_label)) % 20) + 0.001 * task.seed
    dens = {"w": 1.0, "a": 0.5}
    if "density=" in task.trace_label:  # a density sweep: w = a = dz = d
        d = float(task.trace_label.split("density=")[1].split("]")[0].split(",")[0])
        dz, dens = d, {"w": d, "a": d}
    params = {"pe_array": {"rows": rows, "cols": cols}, "pe": {"mult_f": f, "mult_i": i,
                                                                "mac_bits": int(ov.get("pe.mac_bits", 8))},
              "memory": {"dram_bytes_per_cycle": float(ov.get("memory.dram_bytes_per_cycle", 16.0))}}
    return make_result(dz=dz, mults=rows * cols * f * i, params=params, **dens).to_json()


def fake_sweeps(tmp: Path, *, grid: dict[str, list[Any]], densities: list[float], batch: int = 1) -> tuple[Path, Path]:
    """Run a grid sweep and a density sweep of a synthetic LeNet-5 on scnn with :func:`fake_evaluate` (no
    simulation) into ``tmp/sweep_grid`` and ``tmp/sweep_density``: the sweep inputs a report test needs."""
    from hwsim.sweep import parse_sweep
    from hwsim.sweep.runner import run_sweep

    g = parse_sweep({"version": 1, "name": "grid", "arch": "scnn", "grid": grid,
                     "traces": [{"synthetic": {"model": "lenet5", "batch": 1}}]})
    d = parse_sweep({"version": 1, "name": "density", "arch": "scnn", "list": [{}],
                     "traces": [{"name": "lenet5", "synthetic": {"model": "lenet5", "batch": batch,
                                                                "density": densities}}]})
    run_sweep(g, out=tmp / "sweep_grid", evaluate=fake_evaluate, progress=False)
    run_sweep(d, out=tmp / "sweep_density", evaluate=fake_evaluate, progress=False)
    return tmp / "sweep_grid", tmp / "sweep_density"


def cartesian_arch(rows: int, cols: int, *, f: int = 4, i: int = 4, banks: int = 32, bank_entries: int = 32):
    """The shipped ``scnn`` arch on a ``rows × cols`` grid of F×I PEs with ``banks × bank_entries`` accumulators."""
    from hwsim.arch import load_arch

    return load_arch("scnn", {"pe_array.rows": rows, "pe_array.cols": cols, "pe.mult_f": f,
                                             "pe.mult_i": i, "pe.accumulator_banks": banks,
                                             "pe.accumulator_bank_entries": bank_entries})


def figure_texts(fig: Any) -> str:
    """Every text a reader sees on a matplotlib figure: titles, axis labels, tick labels, annotations, legends."""
    out = [fig.get_suptitle()]
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.get_xticklabels()]
        out += [t.get_text() for t in ax.texts]
        leg = ax.get_legend()
        if leg is not None:
            out += [t.get_text() for t in leg.get_texts()]
    for leg in fig.legends:
        out += [t.get_text() for t in leg.get_texts()]
    return "\n".join(out)


def assert_figure_written(fig: Any, out_dir: Path, name: str) -> None:
    """Save ``fig`` as the report does (PNG + SVG, low dpi) and check both files are real, non-trivial images."""
    from hwsim.report.style import save_figure

    png, svg = save_figure(fig, out_dir=out_dir, name=name, dpi=30)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    assert svg.stat().st_size > 1000 and b"<svg" in svg.read_bytes()[:500]


def trace_from_manifest(man: dict[str, Any], path: str = "t") -> Any:
    """A :class:`hwsim.trace.format.Trace` over a hand-written manifest (meta, layers, samples, iterations; no files)."""
    from hwsim.trace.format import LayerGeometry, Trace
    from hwsim.trace.records import TraceMeta, iterations_from_manifest

    layers = [LayerGeometry.from_json({"kind": "linear", "C": 1, "K": 1, **g}) for g in man.get("layers", [])]
    return Trace(path=Path(path), manifest=man, layers=layers, meta=TraceMeta.from_json(man.get("meta", {}), file=path),
                 _iterations=iterations_from_manifest(man.get("iterations", []), path))
