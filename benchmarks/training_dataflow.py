"""The δz-driven training dataflow vs SCNN's Cartesian product on the backward passes (issue 18, items 1–2).

Replays one sampled iteration (default: the trace's last full batch) on ``scnn`` and ``training`` (scnn's
silicon, backward passes as a dz_gather, arch_configs/training.yaml) with unlimited DRAM
(``memory.dram_bytes_per_cycle: .inf``) and a free δW reduction (``reduction.network: accumulate_in_place`` through
an unlimited global-buffer port: 0 cycles), and reports per pass the *work cycles* — the barrier sum, compute +
fragmentation + bank conflicts + imbalance: the pass's cycles with memory stall, the δW reduction and the NSD
unit taken out — beside the MAC bound (effectual MACs ÷ multipliers). The NSD cycles that were taken out are
printed in their own column (no YAML value makes them 0); the per-layer backward-weight rows follow.
``--shipped-reduction`` keeps the arch's reduction network (its cycles then show in their column, and the
gather may prefer whole δW blocks per PE, which cost work cycles but no reduction).

    python benchmarks/training_dataflow.py [TRACE] [--arch scnn --arch training] [--iteration N] [--shipped-reduction]
                                           [--json FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hwsim.arch import load_arch
from hwsim.results import PASSES
from hwsim.sim import simulate
from hwsim.trace.format import load

DEFAULT = Path(__file__).resolve().parents[1] / "traces" / "samples" / "lenet5-digits-dither"
FREE_DRAM = {"memory.dram_bytes_per_cycle": float("inf")}
FREE_REDUCTION = {"reduction.network": "accumulate_in_place", "reduction.global_bytes_per_cycle": float("inf")}


def work_cycles(v) -> int:  # noqa: ANN001 - VariantResult
    """Cycles of a variant with memory stall, fill/drain, the δW reduction and the NSD unit taken out."""
    cb = v.cycle_breakdown
    return cb.compute + cb.fragmentation + cb.bank_conflict + cb.imbalance


def rows(result) -> list[dict]:  # noqa: ANN001 - SimResult
    out = []
    for p in PASSES:
        s, bound = result.pass_total(p, "sparse"), result.pass_total(p, "ideal").cycles
        if not s.cycles:
            continue
        cb = s.cycle_breakdown
        out.append({"pass": p, "work": work_cycles(s), "mac_bound": bound, "ratio": work_cycles(s) / max(1, bound),
                    "fragmentation": cb.fragmentation, "imbalance": cb.imbalance, "bank_conflict": cb.bank_conflict,
                    "reduction": cb.reduction, "nsd": cb.nsd, "dense_work": work_cycles(result.pass_total(p, "dense"))})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace", nargs="?", default=str(DEFAULT))
    ap.add_argument("--arch", action="append", default=None, help="architectures (default: scnn and training)")
    ap.add_argument("--iteration", type=int, default=None, help="sampled iteration (default: the last full batch)")
    ap.add_argument("--json", default=None, metavar="FILE", help="also write the rows as JSON")
    ap.add_argument("--shipped-reduction", action="store_true", help="keep the arch's δW reduction network "
                    "(default: a free one)")
    args = ap.parse_args(argv)
    trace = load(args.trace)
    it, why = (args.iteration, f"iteration {args.iteration}") if args.iteration is not None else \
        trace.default_iteration()
    free = FREE_DRAM if args.shipped_reduction else {**FREE_DRAM, **FREE_REDUCTION}
    print(f"{args.trace}: {why}; DRAM unlimited; δW reduction {'as shipped' if args.shipped_reduction else 'free'}; "
          "work = compute + fragmentation + bank conflicts + imbalance")
    doc: dict = {"trace": args.trace, "iteration": it, "archs": {}}
    for name in args.arch or ["scnn", "training"]:
        arch = load_arch(name, free)
        r = simulate(args.trace, arch, iteration=it)
        doc["archs"][name] = {"dataflow": str(arch.dataflow), "passes": rows(r)}
        print(f"\n{name} ({arch.dataflow})")
        print("| pass | work cycles | MAC bound | work ÷ bound | fragmentation | imbalance | bank conflicts | "
              "(δW reduction) | (NSD unit) | dense work |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for x in doc["archs"][name]["passes"]:
            print(f"| {x['pass']} | {x['work']:,} | {x['mac_bound']:,} | {x['ratio']:.2f}× | {x['fragmentation']:,} | "
                  f"{x['imbalance']:,} | {x['bank_conflict']:,} | {x['reduction']:,} | {x['nsd']:,} | "
                  f"{x['dense_work']:,} |")
        print("backward-weight per layer: " + ", ".join(
            f"{lp.name} {work_cycles(lp.sparse):,}/{lp.ideal.cycles:,}" for lp in r.layers
            if lp.pass_name == "backward_weight"))
    if args.json:
        from hwsim._io import atomic_write_text
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(args.json), json.dumps(doc, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
