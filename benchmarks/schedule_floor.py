"""Iteration cycles against the floor no schedule can beat, under the memory policies (issue 17 item 2 "must show").

One training iteration of a trace (default: the committed LeNet-5 dither sample at its default replay, the last
sampled iteration with a full batch of 64) on ``scnn`` with ``memory.schedule: iteration``, sparse variant:

* **iteration** = the sparse run's cycles (the schedule's makespan + the serial extras);
* **work** W + E = Σ barrier spans of every layer-pass (compute, fragmentation, imbalance, bank conflicts) + the
  serial extras E (δW reduction, NSD unit: outside the SimPy run, :mod:`hwsim.sim.schedule`);
* **DRAM** D = Σ of every transfer on the one channel (⌈bytes ÷ bandwidth⌉ per interval);
* **first load** L0 = the first interval's load (nothing computes before it).

The floor is max(W + E, D) + L0; the script prints the three numbers, the floor, and how far the iteration is
above it. It also prints a floor that respects the data dependency of write-backs: interval j's outputs cannot
leave before its barrier, at the earliest L0 + Σ spans up to j, and they share the one channel, so the makespan
is at least max over j of (L0 + Σ_{k ≤ j} spans_k + Σ_{k ≥ j} store cycles_k); plus E. Both are lower bounds — for the shipped default policies and for the policies before issue 17 item 2 (stash in DRAM, weights
streamed, PE RAMs only), so the reader sees what the placement moved.

    python benchmarks/schedule_floor.py [--trace DIR] [--iteration N] [--arch scnn]
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from hwsim.arch import load_arch
from hwsim.sim import schedule, simulate
from hwsim.trace.format import load

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "traces" / "samples" / "lenet5-digits-dither"
POLICIES = {
    "shipped defaults": {},
    "before issue 17 item 2": {"memory.stash": "dram", "memory.weights_resident": False,
                               "memory.residency_in_global_buffer": False},
}


def floor(trace, arch_name: str, overrides: dict, iteration: int) -> dict:
    """The sparse run's iteration cycles and the floor's terms (module doc)."""
    segments: list = []
    run = schedule.simulate_schedule

    def spy(segs, log=None):  # keep the sparse run's segments: the first schedule replay() runs
        if not segments:
            segments.extend(segs)
        return run(segs, log=log)

    schedule.simulate_schedule = spy
    try:
        r = simulate(trace, load_arch(arch_name, {**overrides, "memory.schedule": "iteration"}), iteration=iteration)
    finally:
        schedule.simulate_schedule = run
    tot = r.total("sparse")
    cb = tot.cycle_breakdown
    w = sum(sum(s.spans) for s in segments)
    e = cb.reduction + cb.nsd
    assert w == cb.compute + cb.fragmentation + cb.imbalance + cb.bank_conflict  # the spans are the work
    d = sum(sum(s.load) + sum(s.store) for s in segments)
    l0 = next(s.load[0] for s in segments if s.spans)
    dram_bytes = sum(lp.sparse.actions["dram_bytes"] for lp in r.layers)
    spans = [x for s in segments for x in s.spans]
    stores = [x for s in segments for x in s.store]
    done = list(itertools.accumulate(spans))
    after = list(itertools.accumulate(reversed(stores)))[::-1]  # store cycles of intervals j.. end
    writeback = max(l0 + done[j] + after[j] for j in range(len(spans))) + e
    return {"iteration": tot.cycles, "work": w + e, "W": w, "E": e, "dram": d, "dram_bytes": dram_bytes,
            "first_load": l0, "floor": max(w + e, d) + l0, "writeback_floor": writeback}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default=str(SAMPLE), help="trace directory (default: the LeNet-5 dither sample)")
    ap.add_argument("--iteration", type=int, default=None, help="sampled iteration (default: the trace's default "
                                                                "replay, the last full batch)")
    ap.add_argument("--arch", default="scnn", help="architecture (default scnn)")
    args = ap.parse_args(argv)
    trace = load(args.trace, verify=False)
    it, why = (args.iteration, "as asked") if args.iteration is not None else trace.default_iteration()
    examples = next(iter(trace.sample(it).values())).geometry.N
    print(f"{args.trace} on {args.arch}, sparse variant, {why} ({examples} examples recorded per GEMM)")
    for label, over in POLICIES.items():
        f = floor(trace, args.arch, over, it)
        gap = f["iteration"] / f["floor"] - 1
        print(f"  {label}:")
        print(f"    iteration cycles                   {f['iteration']:>8,}")
        print(f"    work cycles W + E                  {f['work']:>8,}   (spans {f['W']:,} + serial extras {f['E']:,})")
        print(f"    DRAM cycles D                      {f['dram']:>8,}   ({f['dram_bytes']:,.0f} bytes)")
        print(f"    first load L0                      {f['first_load']:>8,}")
        print(f"    max(W + E, D) + L0                 {f['floor']:>8,}   iteration {gap:+.1%} "
              f"({'within' if gap <= 0.10 else 'NOT within'} 10 %)")
        gap2 = f["iteration"] / f["writeback_floor"] - 1
        print(f"    write-back dependency floor + E    {f['writeback_floor']:>8,}   iteration {gap2:+.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
