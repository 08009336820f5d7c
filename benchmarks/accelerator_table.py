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
backward-data, backward-weight, the weight update and the whole iteration (non-GEMM work included). The comparison
itself is :func:`hwsim.sweep.designs.compare_designs` (its rules: :mod:`hwsim.results.designs`), the one ``hwsim
demo``'s report section "Which accelerator for dithered backprop?" runs too; this script captures the traces and
writes the README's data.

Traces are captured here, with ``hwsim trace`` at small settings (:data:`TRACES`: dithered backprop, s = 4,
seed 0, one torch thread) so the table is reproducible in minutes on 2 cores: LeNet-5 and mlp500 for 5 epochs
and vit_digits for 3 on the embedded digits, replayed over the whole run (every 23rd iteration — an epoch's
first, full batch — and the last, integrated over the run as :func:`hwsim.simulate_run` does); gpt_char (23 iterations on
``pystdlib``) and resnet18_cifar (digits at 16², 8 iterations of 32) replayed at their last full batch only
(a gpt_char iteration takes 15–40 s to replay per design; resnet18_cifar's capture costs ~2 s an iteration, so
its run stays too short for several samples). Short runs: the δ̃z densities are those of early training.

    python benchmarks/accelerator_table.py [--models lenet5 ...] [--designs scnn ...] [--jobs 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from hwsim.results.designs import SCOPES, comparison
from hwsim.sweep.designs import compare_designs, designs

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "accelerator_table.json"
# The shipped designs compared (hwsim.sweep.designs.designs): BASE_DESIGNS, then any TensorDash-style config.
DESIGNS: tuple[str, ...] = designs()
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


def _cell(x: float | None) -> str:
    """A ratio for the progress line; '–' for a scope without work (None)."""
    return "–" if x is None else f"{x:.2f}×"


def trace_command(model: str, out: str) -> list[str]:
    """The ``hwsim trace`` command that captures ``model``'s trace into ``out`` (:data:`TRACES`)."""
    return ["hwsim", "trace", "--model", model, *_COMMON, *TRACES[model][0], "--out", out]


def capture(model: str, out: Path) -> None:
    """Run :func:`trace_command` in a subprocess of this interpreter (the same hwsim: ``PYTHONPATH`` kept)."""
    cmd = trace_command(model, str(out))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, "-m", "hwsim", *cmd[1:], "--overwrite"], check=True, env=env)


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
            t0 = time.perf_counter()
            doc = compare_designs({model: path}, args.designs, iterations=TRACES[model][1], jobs=args.jobs)
            for r in doc["rows"]:
                print(f"{model} {r['design']}: {r['area_mm2']:.2f} mm², equal-area {r['equal_area_shape']}: "
                      + " ".join(f"{s} {_cell(r['speedup'][s])}/{_cell(r['energy_gain'][s])}" for s in SCOPES),
                      file=sys.stderr, flush=True)
            print(f"{model}: {len(args.designs)} designs replayed in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            rows += doc["rows"]
            (t,) = doc["traces"]
            traces.append({"model": model, "capture": " ".join(trace_command(model, f"DIR/{model}")),
                           "replayed": t["replayed"], "capture_s": round(t_cap, 1), "iterations": t["iterations"],
                           "dz_density": t["dz_density"], "test_acc": t["test_acc"]})
    doc = comparison(rows, traces, args.designs, command=command(args.models, args.designs))
    Path(args.json).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
