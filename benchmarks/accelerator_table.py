"""Which accelerator for dithered backprop: every shipped design against a dense array of its own area (issue 18 item 7).

For each design of :data:`DESIGNS` — ``scnn`` (SCNN's Cartesian product in every pass), ``training`` (SCNN's
silicon, δz-driven gathers for both backward passes), the dense systolic arrays ``systolic32`` (weight
stationary) and ``systolic32_os`` (output stationary), ``scnn_bitserial`` (Stripes-style bit-serial lanes) and
any ``tensordash*.yaml`` shipped in ``arch_configs/`` — the table gives its area and, on each trace, its speed-up
and energy gain over the **equal-area dense design**: the ``dense_equal_area`` variant every simulation carries
(:func:`hwsim.arch.dense_equal_area_variant`: the largest square-ish weight-stationary systolic array whose area,
global buffer included, is at most the design's own, with the design's MAC width, DRAM, energy table and a
global-buffer residency of its own). So each design is compared with what the same silicon budget buys as a
dense array: a figure below 1× means that array is faster (or spends less energy). Scopes: forward,
backward-data, backward-weight, the weight update and the whole iteration (non-GEMM work included).

Traces are captured here, with ``hwsim trace`` at small settings (:data:`TRACES`: dithered backprop, s = 4,
seed 0, one torch thread) so the table is reproducible in minutes on 2 cores: LeNet-5 and mlp500 for 5 epochs
and vit_digits for 3 on the embedded digits, replayed over the whole run (every 23rd iteration — an epoch's
first, full batch — and the last, integrated by :func:`hwsim.simulate_run`); gpt_char (23 iterations on
``pystdlib``) and resnet18_cifar (digits at 16², 8 iterations of 32) replayed at their last full batch only
(a gpt_char iteration takes 15–40 s to replay per design; resnet18_cifar's capture costs ~2 s an iteration, so
its run stays too short for several samples). Short runs: the δ̃z densities are those of early training.

    python benchmarks/accelerator_table.py [--models lenet5 ...] [--designs scnn ...] [--jobs 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hwsim.arch import ARCH_DIR, load_arch
from hwsim.results import SimResult
from hwsim.results.views import finite_cell
from hwsim.sim import simulate
from hwsim.sweep.replays import simulate_run
from hwsim.trace.format import load

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "accelerator_table.json"
# The shipped designs compared, then any TensorDash-style config present in arch_configs/ (issue 18 item 3).
BASE_DESIGNS: tuple[str, ...] = ("scnn", "training", "systolic32", "systolic32_os", "scnn_bitserial")


def designs(arch_dir: str | os.PathLike = ARCH_DIR) -> tuple[str, ...]:
    """:data:`BASE_DESIGNS`, then every ``tensordash*.yaml`` of ``arch_dir`` (by name, sorted)."""
    return BASE_DESIGNS + tuple(sorted(p.stem for p in Path(arch_dir).glob("tensordash*.yaml")))


DESIGNS: tuple[str, ...] = designs()
BASELINE = "dense_equal_area"
SCOPES: tuple[str, ...] = ("forward", "backward_data", "backward_weight", "update", "iteration")
_COMMON = ("--method", "dither", "--s", "4", "--seed", "0", "--threads", "1", "--quiet")
# model → (extra ``hwsim trace`` arguments, which iterations are replayed: "all" sampled or the "last" full batch)
TRACES: dict[str, tuple[tuple[str, ...], str]] = {
    "lenet5": (("--epochs", "5", "--sample-every", "23"), "all"),
    "mlp500": (("--epochs", "5", "--sample-every", "23"), "all"),
    "vit_digits": (("--epochs", "3", "--sample-every", "23"), "all"),
    "gpt_char": (("--epochs", "1", "--limit-train", "1472", "--sample-every", "0"), "last"),
    "resnet18_cifar": (("--image-size", "16", "--batch-size", "32", "--epochs", "1", "--limit-train", "256",
                        "--sample-every", "0"), "last"),
}


def equal_area_figures(result: SimResult) -> dict[str, Any]:
    """A design's figures against its equal-area dense array, from one simulated (or integrated) result.

    ``speedup[scope]`` = equal-area dense cycles ÷ the design's cycles and ``energy_gain[scope]`` = equal-area
    dense energy ÷ the design's energy, each summed over the scope's layer-passes (``iteration``: all of them,
    the weight update included); ``None`` where the scope has no work (JSON has no ``inf``)."""
    ea = result.arch.get(BASELINE) or {}
    return {"area_mm2": result.arch.get("area_mm2"), "equal_area_mm2": ea.get("area_mm2"),
            "equal_area_shape": list(ea.get("shape") or []),
            "speedup": {s: finite_cell(result.speedup(pass_name=None if s == "iteration" else s, baseline=BASELINE))
                        for s in SCOPES},
            "energy_gain": {s: finite_cell(result.energy_ratio(pass_name=None if s == "iteration" else s,
                                                               baseline=BASELINE)) for s in SCOPES}}


def trace_command(model: str, out: str) -> list[str]:
    """The ``hwsim trace`` command that captures ``model``'s trace into ``out`` (:data:`TRACES`)."""
    return ["hwsim", "trace", "--model", model, *_COMMON, *TRACES[model][0], "--out", out]


def capture(model: str, out: Path) -> None:
    """Run :func:`trace_command` in a subprocess of this interpreter (the same hwsim: ``PYTHONPATH`` kept)."""
    cmd = trace_command(model, str(out))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, "-m", "hwsim", *cmd[1:], "--overwrite"], check=True, env=env)


def replay(path: Path, design: str, mode: str, jobs: int) -> tuple[SimResult, str]:
    """``design``'s result on the trace at ``path`` and a phrase saying what was replayed (``mode``: all | last)."""
    trace = load(path, verify=False)
    if mode == "all":
        run = simulate_run(trace, design, iterations="all", jobs=jobs)
        return run.integrated, (f"whole run: {len(run.replayed)} sampled iterations of {run.total_iterations}, "
                                "integrated")
    it, _ = trace.default_iteration()
    return simulate(trace, load_arch(design), iteration=it), (f"last full batch: iteration {it} of "
                                                              f"{len(trace.iterations)}")


def _geomean(xs: Sequence[float | None]) -> float | None:
    v = [x for x in xs if x]
    return math.exp(sum(math.log(x) for x in v) / len(v)) if v else None


def summary(rows: Sequence[Mapping[str, Any]], designs: Sequence[str]) -> list[dict[str, Any]]:
    """Per design: the geometric mean over the traces of its iteration speed-up and energy gain, and the range."""
    out = []
    for d in designs:
        mine = [r for r in rows if r["design"] == d]
        sp = [r["speedup"]["iteration"] for r in mine]
        en = [r["energy_gain"]["iteration"] for r in mine]
        if not mine:
            continue
        out.append({"design": d, "area_mm2": mine[0]["area_mm2"], "equal_area_shape": mine[0]["equal_area_shape"],
                    "traces": len(mine), "speedup_geomean": _geomean(sp), "speedup_min": min(x for x in sp if x),
                    "speedup_max": max(x for x in sp if x), "energy_gain_geomean": _geomean(en),
                    "energy_gain_min": min(x for x in en if x), "energy_gain_max": max(x for x in en if x)})
    return out


def command(models: Sequence[str], design_names: Sequence[str]) -> str:
    """The command that makes these numbers: only ``--models`` / ``--designs`` when not the defaults (``--keep``,
    ``--json`` and ``--jobs`` change where and how fast, not what)."""
    picked = (("--models", list(models), list(TRACES)), ("--designs", list(design_names), list(DESIGNS)))
    return "python benchmarks/accelerator_table.py" + "".join(f" {flag} {' '.join(v)}" for flag, v, default in picked
                                                               if v != default)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(TRACES), choices=list(TRACES))
    ap.add_argument("--designs", nargs="+", default=list(DESIGNS))
    ap.add_argument("--jobs", type=int, default=2, help="processes for the whole-run replays (default 2)")
    ap.add_argument("--keep", default=None, metavar="DIR", help="capture the traces here and keep them (reused "
                    "when present) instead of a temporary folder")
    ap.add_argument("--json", default=str(OUT), help="where to write the table's data")
    args = ap.parse_args(argv)
    rows, traces = [], []
    with tempfile.TemporaryDirectory(prefix="hwsim-accel-") as tmp:
        work = Path(args.keep or tmp)
        for model in args.models:
            path = work / model
            t0 = time.perf_counter()
            if not (path / "manifest.json").exists():
                capture(model, path)
            t_cap = time.perf_counter() - t0
            summ = load(path, verify=False).summary or {}
            what = ""
            for design in args.designs:
                t0 = time.perf_counter()
                result, what = replay(path, design, TRACES[model][1], args.jobs)
                rows.append({"model": model, "design": design, **equal_area_figures(result)})
                r = rows[-1]
                print(f"{model} {design}: {r['area_mm2']:.2f} mm², equal-area {r['equal_area_shape']}: "
                      + " ".join(f"{s} {r['speedup'][s] or 0:.2f}×/{r['energy_gain'][s] or 0:.2f}×" for s in SCOPES)
                      + f" ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
            traces.append({"model": model, "capture": " ".join(trace_command(model, f"DIR/{model}")),
                           "replayed": what, "capture_s": round(t_cap, 1), "iterations": summ.get("iterations"),
                           "dz_density": summ.get("weighted_density"), "test_acc": summ.get("test_acc")})
    doc = {"command": command(args.models, args.designs), "baseline": BASELINE, "scopes": list(SCOPES), "designs": summary(rows, args.designs),
           "traces": traces, "rows": rows}
    Path(args.json).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
