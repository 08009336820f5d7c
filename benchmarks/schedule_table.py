"""The headline under both memory schedules, side by side (issue 17 item 7): what moved and why.

For each trace, one training iteration on ``scnn`` with ``memory.schedule: isolated`` (every layer-pass its own
SimPy run, its first load and last write-back exposed: hwsim before issue 17) and ``iteration`` (one schedule per
training iteration, the DMA prefetching the next layer-pass and draining behind it: the default). Per schedule:
sparse and dense cycles, the iteration speed-up and energy gain vs dense, the share of the sparse iteration spent
waiting on memory (memory stall + exposed fill/drain), and the share of the roofline bound the sparse run reaches;
beside each trace, which of the model's GEMM MACs its whole-model figures cover (:func:`covered`).

Traces: the committed LeNet-5 dither sample (real gradients; its default replay: the last full batch) and two
synthetic ones made here (seeded): ResNet-18 224² at batch 1 (activations 0.5, δ̃z 0.05) and one GPT-2-small block
(sequence 256, batch 1; activations 0.5, attention products 0.9, δ̃z 0.05). More traces: ``--trace DIR`` (repeatable).
Not modelled yet under either schedule (issue 17 items 3–4): the weight update and non-GEMM work.

    python benchmarks/schedule_table.py [--trace DIR ...] [--json benchmarks/results/schedule_table.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from hwsim.arch import load_arch
from hwsim.results import SimResult
from hwsim.sim import simulate
from hwsim.trace.format import Trace, load
from hwsim.trace.synth import synthesize

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "traces" / "samples" / "lenet5-digits-dither"
OUT = ROOT / "benchmarks" / "results" / "schedule_table.json"
SCHEDULES = ("isolated", "iteration")
COLUMNS = ("trace", "GEMM MACs covered", "schedule", "sparse cycles", "dense cycles", "speed-up", "energy gain", "memory wait (sparse)",
           "share of roofline reached")


def covered(trace: Trace) -> str:
    """Which GEMMs a whole-model figure of this trace covers: the capture's coverage (forward / backward-data /
    backward-weight share of the model's GEMM MACs), every GEMM of the topology for a synthetic trace, or that the
    trace predates coverage records. Non-GEMM work is not modelled in any case (issue 17 item 4)."""
    cov = trace.meta.coverage
    if isinstance(cov, dict):
        return " / ".join(f"{cov.get(p, 0):.0%}" for p in ("forward", "backward_data", "backward_weight"))
    if trace.meta.method == "synthetic":
        return "all (synthetic topology)"
    return "not recorded (trace v1)"


def _row(label: str, cov: str, schedule: str, r: SimResult) -> dict:
    s, d = r.total("sparse"), r.total("dense")
    wait = s.cycle_breakdown.memory_stall + s.cycle_breakdown.fill_drain
    return {"trace": label, "GEMM MACs covered": cov, "schedule": schedule, "sparse cycles": f"{s.cycles:,}", "dense cycles": f"{d.cycles:,}",
            "speed-up": f"{r.speedup():.2f}×", "energy gain": f"{r.energy_ratio():.2f}×",
            "memory wait (sparse)": f"{wait / s.cycles:.0%}" if s.cycles else "–",
            "share of roofline reached": f"{r.speedup(baseline='roofline'):.0%}"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", action="append", default=[], metavar="DIR", help="another trace (repeatable)")
    ap.add_argument("--json", default=str(OUT), help="where to write the table's data")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        traces = [("lenet5 dither (sample, real gradients)", SAMPLE),
                  ("resnet18 224² b1 (synthetic)", synthesize(Path(tmp) / "resnet18", model="resnet18", batch=1,
                                                               w_density=1.0, a_density=0.5, dz_density=0.05, seed=0)),
                  ("gpt2_small 1 block, seq 256 (synthetic)",
                   synthesize(Path(tmp) / "gpt2", model="gpt2_small", blocks=1, seq=256, batch=1, a_density=0.5,
                              dz_density=0.05, per_kind={"attn": {"a": 0.9}}, seed=0))]
        traces += [(Path(t).name, Path(t)) for t in args.trace]
        for label, path in traces:
            trace = load(path, verify=False)
            it, _ = trace.default_iteration()
            for sched in SCHEDULES:
                r = simulate(trace, load_arch("scnn", {"memory.schedule": sched}), iteration=it)
                rows.append(_row(label, covered(trace), sched, r))
                print(" | ".join(str(v) for v in rows[-1].values()), file=sys.stderr)
    cmd = "python benchmarks/schedule_table.py" + "".join(f" --trace {t}" for t in args.trace)
    doc = {"command": cmd, "columns": list(COLUMNS), "rows": rows}
    Path(args.json).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
