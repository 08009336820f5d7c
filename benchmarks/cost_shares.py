"""Share of cycles and energy that the training-only costs take, per pass (issue 10).

For each trace: per pass, the sparse run's cycles spent in the δW cross-PE reduction and the NSD unit,
and the energy in reduction, NSD unit and leakage, as fractions of that pass's total; plus the
backward-weight speed-up with and without the reduction cycles.

    python benchmarks/cost_shares.py [TRACE ...] [--arch scnn]   (default: traces/samples/lenet5-digits-dither)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hwsim.arch import load_arch
from hwsim.results import PASSES
from hwsim.sim import simulate

DEFAULT = Path(__file__).resolve().parents[1] / "traces" / "samples" / "lenet5-digits-dither"


def shares(result) -> list[dict]:  # noqa: ANN001 - SimResult
    rows = []
    for p in PASSES:
        s = result.pass_total(p, "sparse")
        if not s.cycles:
            continue
        cb, eb = s.cycle_breakdown, s.energy_breakdown
        rows.append({"pass": p, "cycles": s.cycles, "energy_uj": s.energy_pj / 1e6,
                     "cyc_reduction": cb.reduction / s.cycles, "cyc_nsd": cb.nsd / s.cycles,
                     "en_reduction": eb.reduction / s.energy_pj, "en_nsd": eb.nsd / s.energy_pj,
                     "en_leakage": eb.leakage / s.energy_pj})
    s = result.total("sparse")
    rows.append({"pass": "iteration", "cycles": s.cycles, "energy_uj": s.energy_pj / 1e6,
                 "cyc_reduction": s.cycle_breakdown.reduction / s.cycles, "cyc_nsd": s.cycle_breakdown.nsd / s.cycles,
                 "en_reduction": s.energy_breakdown.reduction / s.energy_pj,
                 "en_nsd": s.energy_breakdown.nsd / s.energy_pj, "en_leakage": s.energy_breakdown.leakage / s.energy_pj})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("traces", nargs="*", default=[str(DEFAULT)])
    ap.add_argument("--arch", default="scnn")
    ap.add_argument("--json", default=None, metavar="FILE",
                    help="also write the shares as JSON (the README's table is generated from "
                         "benchmarks/results/cost_shares.json by scripts/readme_tables.py)")
    args = ap.parse_args(argv)
    arch = load_arch(args.arch)
    def shown(t: str) -> str:  # a demo trace is named as `hwsim demo --out DEMO` makes it
        q = Path(t).resolve()
        if q == DEFAULT:
            return str(DEFAULT.relative_to(DEFAULT.parents[2]))
        return f"DEMO/work/full/traces/{q.name}" if q.parent.parts[-3:] == ("work", "full", "traces") else t

    doc: dict = {"command": " ".join(["python benchmarks/cost_shares.py", *map(shown, args.traces), "--arch",
                                      args.arch, "--json", "benchmarks/results/cost_shares.json"]),
                 "arch": args.arch, "traces": []}
    for t in args.traces:
        r = simulate(t, arch)
        bw_s, bw_d = r.pass_total("backward_weight", "sparse"), r.pass_total("backward_weight", "dense")
        doc["traces"].append({"trace": Path(t).name, "model": r.trace.get("model"), "method": r.trace.get("method"),
                              "passes": shares(r), "bwd_weight_speedup": r.speedup(pass_name="backward_weight"),
                              "bwd_weight_speedup_without_reduction":
                                  (bw_d.cycles - bw_d.cycle_breakdown.reduction)
                                  / max(1, bw_s.cycles - bw_s.cycle_breakdown.reduction)})
        print(f"\n{t} on {arch.name} ({r.trace.get('model')}, {r.trace.get('method')}): sparse run, share of the pass")
        print("| pass | cycles | energy µJ | cycles: δW reduction | cycles: NSD unit | energy: δW reduction | "
              "energy: NSD unit | energy: leakage |")
        print("|---|---|---|---|---|---|---|---|")
        for x in shares(r):
            print(f"| {x['pass']} | {x['cycles']:,} | {x['energy_uj']:.2f} | {x['cyc_reduction']:.1%} | "
                  f"{x['cyc_nsd']:.1%} | {x['en_reduction']:.1%} | {x['en_nsd']:.1%} | {x['en_leakage']:.1%} |")
        bw = r.pass_total("backward_weight", "sparse")
        dn = r.pass_total("backward_weight", "dense")
        print(f"backward-weight speed-up vs dense {r.speedup(pass_name='backward_weight'):.2f}× "
              f"(without the reduction cycles of both: "
              f"{(dn.cycles - dn.cycle_breakdown.reduction) / max(1, bw.cycles - bw.cycle_breakdown.reduction):.2f}×); "
              f"whole iteration {r.speedup():.2f}× vs dense, {r.speedup(baseline='dense_systolic'):.2f}× vs dense "
              f"systolic; fraction of ideal {r.fraction_of_ideal():.1%}; bandwidth floor {r.bandwidth_floor():,} cycles")
    if args.json:
        import json

        from hwsim._io import atomic_write_text
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(args.json), json.dumps(doc, indent=1, default=float))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
