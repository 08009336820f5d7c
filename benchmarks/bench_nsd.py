"""The NSD unit as a design (issue 18 item 4): one iteration of a trace on ``scnn`` under several quantizer designs.

Per design: the sparse iteration's cycles, the NSD unit's exposed cycles (their share; of which the spill of a dense
δz that does not fit the PE output RAMs, measured as the difference to the same design with
``quantizer.check_capacity=false``), the NSD energy, the speed-up over the dense baseline and the area::

    python benchmarks/bench_nsd.py                                    # the LeNet-5 sample (batch 8), iteration 40
    python benchmarks/bench_nsd.py /tmp/nsd-lenet5 --iteration 50     # a batch-64 capture (benchmarks/README.md)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hwsim.arch import area_mm2, load_arch
from hwsim.sim import simulate
from hwsim.trace.format import load

DEFAULT = Path(__file__).resolve().parents[1] / "traces" / "samples" / "lenet5-digits-dither"
OLD = {"quantizer.overlap": "none", "quantizer.booked_on": "backward_weight", "quantizer.skip_zeros": False,
       "quantizer.check_capacity": False}
DESIGNS = {
    "pre-issue-18 (two serial passes, every element, δz assumed to fit)": OLD,
    "pre-issue-18 + capacity check": {**OLD, "quantizer.check_capacity": True},
    "scnn.yaml default (σ current, overlap producer, skip zeros, capacity check)": {},
    "default, 4 lanes/PE": {"quantizer.lanes_per_pe": 4},
    "σ delayed (one pass), otherwise default": {"quantizer.sigma": "delayed"},
    "σ delayed, 4 lanes/PE": {"quantizer.sigma": "delayed", "quantizer.lanes_per_pe": 4},
}


def row(trace, iteration: int | None, overrides: dict) -> dict:
    arch = load_arch("scnn", overrides)
    r = simulate(trace, arch, iteration=iteration)
    free = simulate(trace, load_arch(arch, {"quantizer.check_capacity": False}), iteration=iteration)
    t = r.total("sparse")
    nsd = t.cycle_breakdown.nsd
    return {"cycles": t.cycles, "nsd": nsd, "share": nsd / t.cycles,
            "spill": nsd - free.total("sparse").cycle_breakdown.nsd, "nsd_uj": t.energy_breakdown.nsd / 1e6,
            "speedup": r.speedup(), "area": area_mm2(arch), "iteration": r.trace["iteration"]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace", nargs="?", default=str(DEFAULT))
    ap.add_argument("--iteration", type=int, default=None, help="sampled iteration (default: the last full batch)")
    a = ap.parse_args(argv)
    trace = load(a.trace)
    rows = {name: row(trace, a.iteration, ov) for name, ov in DESIGNS.items()}
    print(f"{a.trace}, iteration {next(iter(rows.values()))['iteration']}, scnn (NSD energy: the quantizer table and "
          "its RAM reads; a spill's DRAM energy is in the dram category)")
    print("| design | iteration cycles | NSD exposed (share) | of which spill | NSD energy µJ | speed-up vs dense "
          "| area mm² |\n|---|---|---|---|---|---|---|")
    for name, x in rows.items():
        print(f"| {name} | {x['cycles']:,} | {x['nsd']:,} ({100 * x['share']:.1f} %) | {x['spill']:,} | "
              f"{x['nsd_uj']:.2f} | {x['speedup']:.3f}× | {x['area']:.2f} |")


if __name__ == "__main__":
    main()
