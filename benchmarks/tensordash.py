"""The TensorDash-style design's speed-up per pass over its own dense array (issue 18 item 3).

Replays one sampled iteration of TRACE on ``arch_configs/tensordash.yaml`` (8 × 8 PEs × 16 lanes, the per-lane
lookahead 2 / lookaside 5 scheduler, hwsim/sim/tensordash.py) and prints per pass, beside its dense baseline
(the same array without the scheduler):

* **work** — compute + fragmentation + imbalance: the array's own cycles, what the scheduler shortens;
* **pass** — every cycle of the pass as the iteration's schedule books it (memory stall, fill/drain and the NSD
  unit, which only the sparse design pays because only it consumes δ̃z, included);
* the **staging bound** — the dense work ÷ (lookahead + 1), below which no schedule can go.

Also the wall time of the replay (the scheduler is numpy over the real masks) beside ``systolic32``'s.

    python benchmarks/tensordash.py [TRACE] [--iteration N] [--arch tensordash] [--set KEY=VALUE ...] [--json FILE]
                                    [--no-baseline]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from hwsim.arch import load_arch, parse_overrides
from hwsim.results import PASSES
from hwsim.sim import simulate

DEFAULT = Path(__file__).resolve().parents[1] / "traces" / "samples" / "lenet5-digits-dither"


def work_cycles(v) -> int:  # noqa: ANN001 - VariantResult
    """The array's own cycles: memory stall, fill/drain, the NSD unit and the vector unit taken out."""
    cb = v.cycle_breakdown
    return cb.compute + cb.fragmentation + cb.bank_conflict + cb.imbalance


def rows(result, lookahead: int) -> list[dict]:  # noqa: ANN001 - SimResult
    out = []
    for p in PASSES:
        s, d = result.pass_total(p, "sparse"), result.pass_total(p, "dense")
        if not d.cycles:
            continue
        ws, wd = work_cycles(s), work_cycles(d)
        out.append({"pass": p, "work_sparse": ws, "work_dense": wd, "work_speedup": wd / max(1, ws),
                    "staging_bound": -(-wd // (lookahead + 1)), "cycles_sparse": s.cycles, "cycles_dense": d.cycles,
                    "pass_speedup": d.cycles / max(1, s.cycles), "nsd": s.cycle_breakdown.nsd,
                    "macs_issued": s.macs, "macs_dense": d.macs})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace", nargs="?", default=str(DEFAULT))
    ap.add_argument("--arch", default="tensordash", help="the scheduling architecture (default: tensordash)")
    ap.add_argument("--iteration", type=int, default=None, help="sampled iteration (default: the last full batch)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override an arch field, e.g. tensordash.lookahead=4")
    ap.add_argument("--json", default=None, metavar="FILE", help="also write the rows as JSON")
    ap.add_argument("--no-baseline", action="store_true", help="skip the systolic32 replay (its wall time)")
    args = ap.parse_args(argv)
    arch = load_arch(args.arch, parse_overrides(args.set) or None)
    t0 = time.perf_counter()
    result = simulate(args.trace, arch, iteration=args.iteration)
    t_td = time.perf_counter() - t0
    t0 = time.perf_counter()
    if not args.no_baseline:
        simulate(args.trace, "systolic32", iteration=args.iteration)
    t_sys = time.perf_counter() - t0
    td = arch.tensordash
    print(f"{args.trace} @ {arch.name}: lookahead {td.lookahead}, lookaside {td.lookaside}, "
          f"{arch.pe_array.rows}×{arch.pe_array.cols} PEs × {arch.pe.mult_i} lanes")
    print(f"{'pass':16s} {'work':>9s} {'dense':>9s} {'×':>6s} {'bound':>8s} {'cycles':>9s} {'dense':>9s} {'×':>6s} "
          f"{'nsd':>7s} {'issued/dense MACs':>18s}")
    table = rows(result, td.lookahead)
    for r in table:
        print(f"{r['pass']:16s} {r['work_sparse']:9d} {r['work_dense']:9d} {r['work_speedup']:6.2f} "
              f"{r['staging_bound']:8d} {r['cycles_sparse']:9d} {r['cycles_dense']:9d} {r['pass_speedup']:6.2f} "
              f"{r['nsd']:7d} {r['macs_issued'] / max(1, r['macs_dense']):18.3f}")
    ws, wd = sum(r["work_sparse"] for r in table), sum(r["work_dense"] for r in table)
    cs, cd = sum(r["cycles_sparse"] for r in table), sum(r["cycles_dense"] for r in table)
    print(f"{'three GEMMs':16s} {ws:9d} {wd:9d} {wd / max(1, ws):6.2f} {'':8s} {cs:9d} {cd:9d} {cd / max(1, cs):6.2f}")
    print(f"iteration (incl. weight update): speed-up {result.speedup():.3f}, energy gain {result.energy_ratio():.3f}")
    print(f"replay wall time: {arch.name} {t_td:.2f} s, systolic32 {t_sys:.2f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"trace": args.trace, "arch": arch.name, "rows": table,
                                               "wall_s": {arch.name: t_td, "systolic32": t_sys}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
