"""The headline under both memory schedules, side by side (issue 17 item 7): what moved and why.

For each trace, one training iteration on ``scnn`` with ``memory.schedule: isolated`` (every layer-pass its own
SimPy run, its first load and last write-back exposed: hwsim before issue 17) and ``iteration`` (one schedule per
training iteration, the DMA prefetching the next layer-pass and draining behind it: the default). Per schedule:
sparse and dense cycles, the iteration speed-up and energy gain vs dense, the shares of the sparse iteration spent
waiting on memory (memory stall + exposed fill/drain), in the weight update (:mod:`hwsim.sim.update`) and in
non-GEMM work on the vector unit (:mod:`hwsim.sim.nongemm`), and the share of the roofline bound the sparse run
reaches; beside each trace, which of the model's GEMM MACs its whole-model figures cover (:func:`covered`).

Traces: short dithered captures of the zoo's lenet5, mlp500, vit_digits and gpt_char made here with hwsim's own
training loop (seed 0, one epoch on the first ``--limit-train`` examples; their default replay: the last sampled full
batch), and two synthetic ones (seeded): ResNet-18 224² at batch 1 (activations 0.5, δ̃z 0.05) and one GPT-2-small
block (sequence 256, batch 1; activations 0.5, attention products 0.9, δ̃z 0.05). More traces: ``--trace DIR``.

    python benchmarks/schedule_table.py [--limit-train 512] [--trace DIR ...] [--json benchmarks/results/schedule_table.json]
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
OUT = ROOT / "benchmarks" / "results" / "schedule_table.json"
SCHEDULES = ("isolated", "iteration")
COLUMNS = ("trace", "GEMM MACs covered", "schedule", "sparse cycles", "dense cycles", "speed-up", "energy gain",
           "memory wait (sparse)", "weight update (sparse)", "non-GEMM (sparse)", "share of roofline reached")
ZOO = ("lenet5", "mlp500", "vit_digits", "gpt_char")


def covered(trace: Trace) -> str:
    """Which GEMMs a whole-model figure of this trace covers: the capture's coverage (forward / backward-data /
    backward-weight share of the model's GEMM MACs), every GEMM of the topology for a synthetic trace, or that the
    trace predates coverage records. Non-GEMM work has its own column (the vector unit's share)."""
    cov = trace.meta.coverage
    if isinstance(cov, dict):
        return " / ".join(f"{cov.get(p, 0):.0%}" for p in ("forward", "backward_data", "backward_weight"))
    if trace.meta.method == "synthetic":
        return "all (synthetic topology)"
    return "not recorded (trace v1)"


def _row(label: str, cov: str, schedule: str, r: SimResult) -> dict:
    s, d = r.total("sparse"), r.total("dense")
    wait = s.cycle_breakdown.memory_stall + s.cycle_breakdown.fill_drain
    update = r.scope_total("update", "sparse").cycles if any(lp.pass_name == "update" for lp in r.layers) else 0

    def share(x: float) -> str:
        return f"{x / s.cycles:.0%}" if s.cycles else "–"
    return {"trace": label, "GEMM MACs covered": cov, "schedule": schedule, "sparse cycles": f"{s.cycles:,}",
            "dense cycles": f"{d.cycles:,}", "speed-up": f"{r.speedup():.2f}×", "energy gain": f"{r.energy_ratio():.2f}×",
            "memory wait (sparse)": share(wait), "weight update (sparse)": share(update),
            "non-GEMM (sparse)": share(s.cycle_breakdown.nongemm),
            "share of roofline reached": f"{r.speedup(baseline='roofline'):.0%}"}


def capture_zoo(model: str, out: Path, *, limit_train: int) -> Path:
    """A short dithered capture of a zoo model with hwsim's own loop (what ``hwsim trace`` runs)."""
    from hwsim.capture.config import CaptureConfig, TrainConfig
    from hwsim.capture.train import train_and_capture

    cfg = TrainConfig(model=model, epochs=1, limit_train=limit_train,
                      capture=CaptureConfig(method="dither", sample_every=4, seed=0))
    return Path(train_and_capture(cfg, out=out).trace)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", action="append", default=[], metavar="DIR", help="another trace (repeatable)")
    ap.add_argument("--limit-train", type=int, default=512, help="examples of the zoo captures' one epoch")
    ap.add_argument("--json", default=str(OUT), help="where to write the table's data")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        traces = [(f"{m} dither (captured here, real gradients)",
                   capture_zoo(m, Path(tmp) / m, limit_train=args.limit_train)) for m in ZOO]
        traces += [("resnet18 224² b1 (synthetic)", synthesize(Path(tmp) / "resnet18", model="resnet18", batch=1,
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
    cmd = (f"python benchmarks/schedule_table.py --limit-train {args.limit_train}"
           + "".join(f" --trace {t}" for t in args.trace))
    doc = {"command": cmd, "columns": list(COLUMNS), "rows": rows}
    Path(args.json).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
