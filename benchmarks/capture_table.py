"""Accuracy, δ̃z sparsity and bit-width of dithered backprop on the embedded dataset, over seeds.

Runs the README's captures, ``hwsim trace --model M --method {none,dither} --seed S`` with ``hwsim trace``'s
defaults (digits, 20 epochs, batch 64, SGD), for mlp500, lenet300 and lenet5 at seeds 0, 1 and 2, one process at a
time, each into a temporary directory (deleted afterwards), and reads each trace's ``manifest.json`` summary: test
accuracy, mean δ̃z density over layers and iterations (sparsity = 1 − density, the seed paper's Table 1
definition), the largest bit-width of any δ̃z level and the dither scale s.

    python benchmarks/capture_table.py [--models mlp500,lenet300,lenet5] [--seeds 0,1,2] [--threads N]
                                       [--json benchmarks/results/capture_table.json]

Without ``--threads`` each run uses torch's default thread count, which is recorded: LeNet-5's figures at a seed
change with it (seed 0 at 1 thread differs from 2 threads), mlp500's and lenet300's seed-0 figures did not.

``--json FILE`` writes the raw figures per model, method and seed with the command, the hwsim version, the date
and the 1-minute load average before and after; ``benchmarks/results/capture_table.json`` is rendered into the
README's ``capture-accuracy`` block by ``scripts/readme_tables.py`` (``scripts/readme_captures.py``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METHODS = ("none", "dither")


def run_one(model: str, method: str, seed: int, workdir: Path, threads: int | None = None) -> dict:
    """One ``hwsim trace`` run with its defaults (``--threads`` only when given); the trace's summary figures and
    the CPU seconds it took."""
    out = workdir / f"{model}-{method}-{seed}"
    cmd = [sys.executable, "-m", "hwsim", "trace", "--model", model, "--method", method, "--seed", str(seed),
           "--out", str(out), *(["--threads", str(threads)] if threads else [])]
    t0 = os.times()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    t1 = os.times()
    if proc.returncode != 0:
        raise SystemExit(f"capture_table.py: `{' '.join(cmd[2:])}` failed ({proc.returncode}): "
                         f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ''}")
    manifest = json.loads((out / "manifest.json").read_text())
    summ, meta = manifest["summary"], manifest["meta"]
    return {"model": model, "method": method, "seed": seed, "test_acc": summ["test_acc"],
            "mean_density": summ["mean_density"], "max_bits": summ.get("max_bits"),
            "s": meta.get("s") if method != "none" else None, "iterations": summ["iterations"],
            "epochs": meta["epochs"], "batch_size": meta["batch_size"], "dataset": meta["dataset"],
            "dither_rng": meta.get("dither_rng"),
            "cpu_seconds": round(t1.children_user - t0.children_user + t1.children_system - t0.children_system, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mlp500,lenet300,lenet5", help="comma-separated zoo models")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    ap.add_argument("--threads", type=int, default=None,
                    help="pass --threads N to hwsim trace (default: trace's, torch's choice); LeNet-5's figures at a "
                         "seed depend on it")
    ap.add_argument("--json", type=Path, help="also write the figures, the command and the load to this file")
    args = ap.parse_args()
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise SystemExit(f"--seeds: expected comma-separated integers, got {args.seeds!r}") from None
    models = [m for m in args.models.split(",") if m]
    if args.threads is not None and args.threads < 1:
        raise SystemExit(f"--threads: expected an integer ≥ 1, got {args.threads}")
    import torch

    from hwsim import __version__

    threads = args.threads or torch.get_num_threads()  # what each hwsim trace process uses (same environment)

    load0 = os.getloadavg()[0]
    jobs = [(m, meth, s) for s in seeds for m in models for meth in METHODS]
    print(f"{len(jobs)} captures, one at a time, {threads} torch thread(s); 1-minute load {load0:.2f}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="capture_table_") as tmp:
        for i, (m, meth, s) in enumerate(jobs, 1):
            w0 = time.perf_counter()
            r = run_one(m, meth, s, Path(tmp), args.threads)
            rows.append(r)
            bits = "float" if meth == "none" or r["max_bits"] is None else f"{r['max_bits']} bits"
            print(f"[{i}/{len(jobs)}] {m} {meth} seed {s}: test acc {100 * r['test_acc']:.2f} %, sparsity "
                  f"{100 * (1 - r['mean_density']):.2f} %, {bits}; {time.perf_counter() - w0:.0f} s wall, "
                  f"{r['cpu_seconds']:.0f} s CPU", flush=True)
    if args.json:
        doc = {"command": "python benchmarks/capture_table.py " + " ".join(sys.argv[1:]),
               "capture": "hwsim trace --model M --method {none,dither} --seed S (trace's defaults)",
               "hwsim": __version__, "torch": torch.__version__, "threads": threads, "date": datetime.date.today().isoformat(), "cpus": os.cpu_count(),
               "load": [round(load0, 2), round(os.getloadavg()[0], 2)],
               "targets": {"sparsity": 0.90, "max_bits": 8, "acc_points": 1.0}, "rows": rows}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
