"""Reproduce SCNN's headline figures (Parashar et al., ISCA 2017) on scnn16.yaml, forward pass.

1. AlexNet conv1–5 with the pruned densities of Han et al. 2015: forward speed-up and energy vs
   dense (paper: 2.37× speed-up; 2.3× energy on average over its networks).
2. Density sweep, weights = activations = 1.0 → 0.1: break-even density (paper ≈ 0.85) and
   speed-up at 0.1 (paper 24×).
3. Sensitivity of (1) to the assumptions SCNN does not state: accumulator-bank queue depth
   {0, 1, 4} and DRAM bandwidth {8, 16, 64, ∞} B/cycle, against both dense baselines (the same
   silicon without skipping, and a systolic array of equal multipliers); then 1 and 2 products per bank per
   cycle (bank write ports; the arch's queue takes depth + 1) and the parts charged since issue 18 made free
   again one at a time (halo exchange; bank-queue area and energy).

Each figure comes with its loss breakdown (where the sparse cycles go). Parameters are the
SCNN paper's (scnn16.yaml); nothing here is tuned to hit the paper's numbers. SCNN is an
inference accelerator, so the replay is inference (``training=False``: forward only, no
activation stash to DRAM); activations stay on chip between layers when they fit the PEs'
IARAM/OARAM (``memory.inter_layer_residency``, the default), as in SCNN.

    python benchmarks/scnn_repro.py [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from hwsim.arch import load_arch
from hwsim.results import CYCLE_PARTS, VariantResult, sum_variants
from hwsim.sim.replay import replay
from hwsim.sim.sensitivity import FREE_PARTS, PORT_ROWS, sensitivity, settings, table
from hwsim.trace.format import load
from hwsim.trace.synth import alexnet_han2015, synthesize_density_sweep

PAPER = {"alexnet_speedup": 2.37, "break_even": 0.85, "speedup_at_0.1": 24.0}
DENSITIES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)


def forward_totals(trace_dir: Path, arch) -> dict[str, VariantResult]:
    """Forward-pass (inference) totals of every variant for one trace."""
    layers = replay(load(trace_dir).sample(), arch, passes=("forward",), training=False)
    return {v: sum_variants(lp.variant(v) for lp in layers)
            for v in ("sparse", "dense", "dense_gated", "ideal", "dense_systolic")}


def shares(v: VariantResult) -> str:
    cb = v.cycle_breakdown.to_json()
    # reduction = SCNN's output-halo exchange in the forward pass (hwsim/sim/halo.py); no NSD unit in inference
    return " ".join(f"{k}={cb[k] / v.cycles:5.1%}" for k in CYCLE_PARTS if k != "nsd")


def alexnet(work: Path, arch) -> dict:
    t = forward_totals(alexnet_han2015(work / "alexnet_han2015", overwrite=True), arch)
    return {"speedup": t["dense"].cycles / t["sparse"].cycles,
            "energy": t["dense"].energy_pj / t["sparse"].energy_pj,
            "gated_energy": t["dense"].energy_pj / t["dense_gated"].energy_pj,
            "ideal": t["dense"].cycles / t["ideal"].cycles,
            "speedup_systolic": t["dense_systolic"].cycles / t["sparse"].cycles,
            "energy_systolic": t["dense_systolic"].energy_pj / t["sparse"].energy_pj, "totals": t}


def sweep(work: Path, arch, densities=DENSITIES) -> list[dict]:
    paths = synthesize_density_sweep(work / "sweep", "alexnet_conv", densities=densities, roles=("w", "a"),
                                     overwrite=True)
    rows = []
    for d, p in zip(densities, paths, strict=True):
        t = forward_totals(p, arch)
        rows.append({"density": d, "speedup": t["dense"].cycles / t["sparse"].cycles,
                     "speedup_systolic": t["dense_systolic"].cycles / t["sparse"].cycles,
                     "ideal": t["dense"].cycles / t["ideal"].cycles,
                     "energy": t["dense"].energy_pj / t["sparse"].energy_pj, "totals": t})
    return rows


def break_even(rows: list[dict], key: str = "speedup") -> float:
    """Density where the sparse speed-up (``key``) crosses 1 (linear interpolation; 1.0 if never below)."""
    rows = sorted(rows, key=lambda r: r["density"])
    for lo, hi in zip(rows, rows[1:], strict=False):
        if lo[key] >= 1.0 > hi[key]:
            f = (lo[key] - 1.0) / (lo[key] - hi[key])
            return lo["density"] + f * (hi["density"] - lo["density"])
    return 1.0 if rows[-1][key] >= 1.0 else rows[0]["density"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="keep the synthetic traces here (default: a temp dir)")
    ap.add_argument("--json", default=None, metavar="FILE",
                    help="also write the figures as JSON (the README's SCNN tables are generated from "
                         "benchmarks/results/scnn_repro.json by scripts/readme_tables.py)")
    args = ap.parse_args(argv)
    arch = load_arch("scnn16")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.out or tmp)
        a = alexnet(work, arch)
        sens = sensitivity(load(work / "alexnet_han2015"), arch, training=False, rows=[*settings(), *PORT_ROWS, *FREE_PARTS])
        rows = sweep(work, arch)
    be = break_even(rows)
    at01 = next(r for r in rows if abs(r["density"] - 0.1) < 1e-9)
    print("SCNN reproduction on scnn16.yaml (inference: forward pass, no stash; AlexNet conv1-5; "
          f"inter_layer_residency={arch.memory.inter_layer_residency})\n")
    print(f"{'figure':<34}{'hwsim':>9}{'paper':>9}{'off':>8}")
    for name, ours, paper in (("AlexNet (Han 2015) speed-up", a["speedup"], PAPER["alexnet_speedup"]),
                              ("break-even density (w = a)", be, PAPER["break_even"]),
                              ("speed-up at density 0.1", at01["speedup"], PAPER["speedup_at_0.1"])):
        print(f"{name:<34}{ours:>8.2f}{'×' if 'speed' in name else ' '}{paper:>8.2f}{'×' if 'speed' in name else ' '}"
              f"{(ours / paper - 1):>+8.0%}")
    print(f"\nbreak-even density against the dense systolic array of equal multipliers: "
          f"{break_even(rows, 'speedup_systolic'):.2f}")
    print(f"AlexNet: energy {a['energy']:.2f}× vs dense, dense-gated {a['gated_energy']:.2f}×, "
          f"ideal speed-up {a['ideal']:.2f}×")
    print(f"AlexNet vs the dense systolic array of equal multipliers: speed-up {a['speedup_systolic']:.2f}×, "
          f"energy {a['energy_systolic']:.2f}×")
    print(f"  sparse cycles: {shares(a['totals']['sparse'])}")
    print(f"  dense cycles:  {shares(a['totals']['dense'])}")
    print(f"\n{'density':>8}{'speed-up':>10}{'ideal':>8}{'energy':>8}   sparse cycle breakdown")
    for r in rows:
        print(f"{r['density']:>8.2f}{r['speedup']:>9.2f}×{r['ideal']:>7.2f}×{r['energy']:>7.2f}×   "
              f"{shares(r['totals']['sparse'])}")
    print("\nSensitivity of the AlexNet headline to the assumptions SCNN does not state (one moved at a time):\n")
    print(table(sens))
    if args.json:
        _write_json(Path(args.json), a=a, rows=rows, sens=sens, be=be, at01=at01)
        print(f"\nwrote {args.json}")
    return 0


def _write_json(path: Path, *, a: dict, rows: list[dict], sens: list[dict], be: float, at01: dict) -> None:
    """The printed figures as one JSON document (cycle-breakdown shares as fractions of the sparse cycles)."""
    import json

    from hwsim._io import atomic_write_text

    def parts(v: VariantResult) -> dict[str, float]:
        cb = v.cycle_breakdown.to_json()
        return {k: cb.get(k, 0) / max(1, v.cycles) for k in CYCLE_PARTS}

    doc = {"command": "python benchmarks/scnn_repro.py --json benchmarks/results/scnn_repro.json",
           "arch": "scnn16", "paper": PAPER,
           "alexnet": {"speedup": a["speedup"], "energy": a["energy"], "gated_energy": a["gated_energy"],
                       "ideal": a["ideal"], "speedup_systolic": a["speedup_systolic"],
                       "energy_systolic": a["energy_systolic"], "sparse_cycle_shares": parts(a["totals"]["sparse"])},
           "break_even": be, "break_even_systolic": break_even(rows, "speedup_systolic"),
           "at_0_1": {"speedup": at01["speedup"], "sparse_cycle_shares": parts(at01["totals"]["sparse"])},
           "density_sweep": [{"density": r["density"], "speedup": r["speedup"], "ideal": r["ideal"],
                              "energy": r["energy"], "sparse_cycle_shares": parts(r["totals"]["sparse"])}
                             for r in rows],
           "sensitivity": sens}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(doc, indent=1, default=float))


if __name__ == "__main__":
    raise SystemExit(main())
