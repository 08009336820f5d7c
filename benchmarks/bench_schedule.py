"""One schedule per training iteration (``memory.schedule: iteration``, issue 17 item 1): bound check and speed.

1. **Bound** (default trace: the LeNet-5 dither sample, scnn.yaml): the sparse run's iteration cycles under
   ``memory.schedule: iteration`` beside the isolated model's, and beside the figures no schedule can beat:
   work cycles W (Σ barrier spans of every layer-pass: compute + fragmentation + imbalance + bank conflicts),
   the serial extras E (δW reduction + NSD unit, outside the SimPy run in both models), DRAM cycles D (Σ of
   every transfer on the one channel) and the first load L0 (nothing computes before it). The iteration
   cannot end before max(W, D) + L0 + E (extras serial, DMA idle during them) nor before max(W + E, D) + L0.
2. **Speed** (``--speed``): ns per mask element of the replay of a synthetic ResNet-18 224² (batch
   ``--batch``, bench_sim.py's densities) on scnn under both schedules, measured alternately in one process
   (``--repeats`` each, best of), and their ratio (target: iteration ≤ 1.3× isolated).

    python benchmarks/bench_schedule.py                     # bound on the LeNet-5 sample
    python benchmarks/bench_schedule.py --speed --batch 32  # + speed
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "traces" / "samples" / "lenet5-digits-dither"
DENS = dict(w_density=1.0, a_density=0.5, dz_density=0.05)  # as benchmarks/bench_sim.py


def bound(trace: str, arch_name: str) -> None:
    from hwsim.arch import load_arch
    from hwsim.sim import schedule, simulate

    segments: list = []
    run = schedule.simulate_schedule

    def spy(segs, log=None):  # keep the sparse run's segments (the first schedule replay() runs)
        if not segments:
            segments.extend(segs)
        return run(segs, log=log)

    iso = simulate(trace, load_arch(arch_name))
    schedule.simulate_schedule = spy
    try:
        it = simulate(trace, load_arch(arch_name, {"memory.schedule": "iteration"}))
    finally:
        schedule.simulate_schedule = run
    sched = it.run["schedule"]
    tot = it.total("sparse").cycle_breakdown
    w = sum(sum(s.spans) for s in segments)
    e = tot.reduction + tot.nsd
    d = sum(sum(s.load) + sum(s.store) for s in segments)
    l0 = next(s.load[0] for s in segments if s.spans)
    cyc = it.total("sparse").cycles
    assert cyc == sched["makespan"]["sparse"] + e and w == tot.compute + tot.fragmentation + tot.imbalance + \
        tot.bank_conflict
    b1, b2 = max(w, d) + l0 + e, max(w + e, d) + l0
    print(f"{trace} on {arch_name}, sparse variant, iteration {it.trace['iteration']}")
    print(f"  isolated model                         {iso.total('sparse').cycles:>8,} cycles")
    print(f"  one schedule (memory.schedule=iteration){cyc:>7,} cycles = makespan {sched['makespan']['sparse']:,} "
          f"+ serial extras {e:,} (reduction {tot.reduction:,}, NSD {tot.nsd:,})")
    print(f"  work W (barrier spans)                 {w:>8,}   W + E = {w + e:,}")
    print(f"  DRAM D (all transfers, one channel)    {d:>8,}")
    print(f"  first load L0                          {l0:>8,}   (exposed fill {sched['fill']['sparse']:,}, "
          f"drain {sched['drain']['sparse']:,})")
    print(f"  max(W, D) + L0 + E                     {b1:>8,}   iteration is {cyc / b1 - 1:+.1%}")
    print(f"  max(W + E, D) + L0                     {b2:>8,}   iteration is {cyc / b2 - 1:+.1%}")
    print(f"  breakdown: memory_stall {tot.memory_stall:,}, fill_drain {tot.fill_drain:,} "
          f"(isolated memory_stall {iso.total('sparse').cycle_breakdown.memory_stall:,})")
    for v in ("dense", "dense_systolic"):
        print(f"  {v:<15} isolated {iso.total(v).cycles:>8,}  iteration {it.total(v).cycles:>8,}")
    print(f"  speed-up vs dense: isolated {iso.total('dense').cycles / iso.total('sparse').cycles:.3f}×, "
          f"iteration {it.total('dense').cycles / cyc:.3f}×")


def mask_elements(samples) -> int:
    return sum(s.a_mask.size + s.dz_levels.size + int(np.prod(s.geometry.weight_shape)) for s in samples.values())


def speed(batch: int, repeats: int) -> None:
    from hwsim.arch import load_arch
    from hwsim.sim.replay import replay
    from hwsim.trace.format import load
    from hwsim.trace.synth import synthesize

    with tempfile.TemporaryDirectory() as tmp:
        samples = load(synthesize(Path(tmp) / "resnet18", model="resnet18", batch=batch, seed=0, **DENS)).sample()
        archs = {m: load_arch("scnn", {"memory.schedule": m}) for m in ("isolated", "iteration")}
        e = mask_elements(samples)
        best = {m: float("inf") for m in archs}
        for _ in range(repeats):
            for m, a in archs.items():
                t0 = time.perf_counter()
                replay(samples, a)
                best[m] = min(best[m], time.perf_counter() - t0)
    print(f"\nResNet-18 224², batch {batch}, scnn.yaml, {e / 1e6:.1f} M mask elements, best of {repeats} (alternating)")
    for m, t in best.items():
        print(f"  {m:<10} {t:7.2f} s  {t / e * 1e9:6.1f} ns/element")
    print(f"  ratio iteration / isolated: {best['iteration'] / best['isolated']:.3f} (target ≤ 1.3)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default=str(SAMPLE), help="trace of the bound check (default: the LeNet-5 sample)")
    ap.add_argument("--arch", default="scnn", help="architecture of the bound check (default scnn)")
    ap.add_argument("--speed", action="store_true", help="also measure replay speed under both schedules")
    ap.add_argument("--batch", type=int, default=32, help="ResNet-18 batch of the speed part (default 32)")
    ap.add_argument("--repeats", type=int, default=2, help="replays per schedule, alternating (default 2)")
    args = ap.parse_args(argv)
    bound(args.trace, args.arch)
    if args.speed:
        speed(args.batch, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
