"""Simulator speed: synthetic ResNet-18 (224²), all three passes × four variants, on scnn (and systolic32).

Two parts, trace synthesis never timed (it is the capture side):

1. **batch 32** (the issue-13 target; weights dense, activations 0.5, δ̃z 0.05, scnn.yaml), replayed in a
   child process so its peak RSS is the replay's own: wall time, ns per mask element (activations +
   δ̃z + weights) and, measured in the same run over the same masks, one vectorised numpy pass
   (``np.count_nonzero`` and an int64 ``sum``) for scale. Targets: ≤ 20 ns per element (≈ 3 s) and
   ≤ 1 GB peak RSS.
2. **batch 1** on scnn + systolic32 and time against trace size (first k layers: should grow linearly).
3. **per GEMM kind** (``--kinds``, issue 21 item 3): ns per mask element and peak RSS of the ``conv`` layers
   (ResNet-18 224², ``--batch``), and of the ``linear`` and ``matmul`` layers of a synthetic GPT-2 small
   (``--seq``, ``--gpt-batch``, ``--blocks``; activations 0.5, attention 0.9, δ̃z 0.05), each kind replayed
   alone in a fresh child process (all three passes, every variant), then the whole GPT-2 iteration as
   ``hwsim simulate`` runs it (non-GEMM work, weight update and the iteration schedule included). With
   ``--old PATH`` the same children also run the code at PATH (e.g. a worktree of ``main``), in the same run.
   Wall and CPU seconds are both printed: on a shared machine the wall time moves with the load, CPU less.

    python benchmarks/bench_sim.py            # parts 1 and 2
    python benchmarks/bench_sim.py --batch 8  # part 1 at another batch
    python benchmarks/bench_sim.py --kinds --batch 8 --seq 256 --gpt-batch 2 --old /tmp/old  # part 3 only
    python benchmarks/bench_sim.py --kinds --gpt-trace traces/gpt2-1024x8 --only linear matmul --old /tmp/old
    python benchmarks/bench_sim.py --decode traces/gpt2-1024x8   # a sample decoded whole vs one layer at a time
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # one core, as the target says

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ARCHS = ("scnn", "systolic32")
DENS = dict(w_density=1.0, a_density=0.5, dz_density=0.05)


def mask_elements(samples) -> int:
    return geometry_elements(s.geometry for s in samples.values())


def geometry_elements(geometries) -> int:
    """Mask elements (input + output + weight) of layers with these geometries — without decoding them."""
    return sum(int(np.prod(g.input_shape)) + int(np.prod(g.output_shape)) + int(np.prod(g.weight_shape))
               for g in geometries)


def numpy_pass(samples) -> tuple[float, float]:
    """Seconds of one count_nonzero and one int64 sum over every mask (weights as a dense mask)."""
    w = {n: np.ones(s.geometry.weight_shape, bool) if s.w_mask is None else np.asarray(s.w_mask, bool)
         for n, s in samples.items()}
    t0 = time.perf_counter()
    for n, s in samples.items():
        np.count_nonzero(s.a_mask), np.count_nonzero(s.dz_levels), np.count_nonzero(w[n])
    t1 = time.perf_counter()
    for n, s in samples.items():
        s.a_mask.sum(dtype=np.int64), s.dz_levels.sum(dtype=np.int64), w[n].sum(dtype=np.int64)
    return t1 - t0, time.perf_counter() - t1


def child(trace: str) -> int:
    """Replay one trace on scnn in this (fresh) process; print a JSON line of measurements."""
    t_start = time.perf_counter()
    from hwsim.arch import load_arch
    from hwsim.sim.replay import replay
    from hwsim.trace.format import load

    samples = load(trace).sample()
    arch = load_arch("scnn")
    t_loaded = time.perf_counter()
    replay(samples, arch)
    t_done = time.perf_counter()
    nz, sm = numpy_pass(samples)
    print(json.dumps({"elements": mask_elements(samples), "replay_s": t_done - t_loaded,
                      "process_s": t_done - t_start, "count_nonzero_s": nz, "sum_s": sm,
                      "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    return 0


KIND_OF = {"conv2d": "conv", "conv1d": "conv", "linear": "linear", "matmul": "matmul"}


def child_kind(trace: str, kind: str) -> int:
    """Replay the layers of one GEMM kind (``whole``: the iteration, as ``hwsim simulate``) in this process."""
    t_start = time.perf_counter()
    from hwsim.arch import load_arch
    from hwsim.sim.replay import replay, simulate_trace
    from hwsim.trace.format import load

    tr = load(trace)
    arch = load_arch("scnn")
    if kind == "whole":  # the sample is decoded by simulate_trace alone, as `hwsim simulate` runs it (peak RSS)
        geos = [g for g in tr.layers if g.name in set(tr.sample(lazy=True))]
        elements, layers = geometry_elements(geos), len(geos)
        t_loaded, c_loaded = time.perf_counter(), time.process_time()
        simulate_trace(tr, arch)
    else:
        samples = tr.sample()
        samples = {n: s for n, s in samples.items() if KIND_OF.get(s.geometry.kind) == kind}
        elements, layers = mask_elements(samples), len(samples)
        t_loaded, c_loaded = time.perf_counter(), time.process_time()
        replay(samples, arch, first_input_grad=kind != "conv")  # a slice of a transformer has input gradients
    t_done, c_done = time.perf_counter(), time.process_time()
    print(json.dumps({"elements": elements, "layers": layers, "replay_s": t_done - t_loaded,
                      "replay_cpu_s": c_done - c_loaded, "process_s": t_done - t_start,
                      "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    return 0


def child_decode(trace: str, mode: str) -> int:
    """Look every layer of a trace's last sample up, decoded whole (``eager``) or one at a time (``lazy``)."""
    from hwsim.trace.format import load

    tr = load(trace)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    c0 = time.process_time()
    samples = tr.sample(lazy=mode == "lazy")
    for nm in samples:
        samples[nm]
    print(json.dumps({"cpu_s": time.process_time() - c0,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base}))
    return 0


def part_decode(trace: str) -> None:
    print(f"decoding every layer of {trace}'s last sample (load {os.getloadavg()[0]:.1f}); peak RSS over imports")
    for mode in ("eager", "lazy"):
        out = subprocess.run([sys.executable, __file__, "--child-decode", mode, trace], check=True, capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}).stdout
        m = json.loads(out.strip().splitlines()[-1])
        print(f"  {mode:<6} CPU {m['cpu_s']:6.2f} s  peak RSS {m['rss_mb']:7.0f} MB")


def _run_child(trace: Path, kind: str, pythonpath: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child-kind", kind, str(trace)], check=True,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": pythonpath}).stdout
    return json.loads(out.strip().splitlines()[-1])


def part_kinds(batch: int, seq: int, gpt_batch: int, blocks: int, old: str | None, gpt_trace: str | None = None,
               kinds: tuple[str, ...] = ("conv", "linear", "matmul", "whole")) -> None:
    from hwsim.trace.synth import synthesize

    print(f"per GEMM kind on scnn.yaml, 3 passes × every variant, each kind alone in a fresh process "
          f"(load {os.getloadavg()[0]:.1f}): conv = ResNet-18 224² batch {batch} (a 0.5, δ̃z 0.05); linear, matmul, "
          f"whole = " + (gpt_trace or f"GPT-2 small seq {seq} batch {gpt_batch}, {blocks} blocks (a 0.5, attention "
                                      "0.9, δ̃z 0.05)"))
    codes = [("new", os.pathsep.join(sys.path))] + ([("old", old)] if old else [])
    with tempfile.TemporaryDirectory() as tmp:
        resnet = synthesize(Path(tmp) / "resnet18", model="resnet18", batch=batch, seed=0, **DENS) \
            if "conv" in kinds else None
        gpt = Path(gpt_trace) if gpt_trace else synthesize(
            Path(tmp) / "gpt2", model="gpt2_small", seq=seq, batch=gpt_batch, blocks=blocks, seed=0, w_density=1.0,
            a_density=0.5, dz_density=0.05, per_kind={"attn": {"a": 0.9}})
        print(f"{'kind':<8}{'code':<5}{'layers':>7}{'Melem':>9}{'replay s':>10}{'ns/elem':>9}{'CPU s':>8}"
              f"{'CPU ns/elem':>12}{'peak RSS MB':>13}{'load':>6}")
        for kind in kinds:
            trace = resnet if kind == "conv" else gpt
            for code, path in codes:
                m = _run_child(trace, kind, path)
                e = m["elements"]
                print(f"{kind:<8}{code:<5}{m['layers']:>7}{e / 1e6:>9.1f}{m['replay_s']:>10.2f}"
                      f"{m['replay_s'] / e * 1e9:>9.1f}{m['replay_cpu_s']:>8.2f}{m['replay_cpu_s'] / e * 1e9:>12.1f}"
                      f"{m['max_rss_mb']:>13.0f}{os.getloadavg()[0]:>6.1f}", flush=True)
    print(f"(load after: {os.getloadavg()[0]:.1f}; targets: ≤ 15 ns per element for linear and matmul)")


def part_batch(batch: int) -> None:
    from hwsim.trace.synth import synthesize

    with tempfile.TemporaryDirectory() as tmp:
        path = synthesize(Path(tmp) / "resnet18", model="resnet18", batch=batch, seed=0, **DENS)
        out = subprocess.run([sys.executable, __file__, "--child", str(path)], check=True, capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}).stdout
    m = json.loads(out.strip().splitlines()[-1])
    e = m["elements"]
    print(f"ResNet-18 224², batch {batch}, scnn.yaml, 3 passes × 4 variants "
          f"(w {DENS['w_density']}, a {DENS['a_density']}, δ̃z {DENS['dz_density']}): {e / 1e6:.1f} M mask elements")
    print(f"  replay            {m['replay_s']:6.2f} s  {m['replay_s'] / e * 1e9:6.1f} ns/element  (target ≤ 20)")
    print(f"  whole process     {m['process_s']:6.2f} s  (imports + trace load + replay)")
    print(f"  numpy, same masks {m['count_nonzero_s'] / e * 1e9:6.2f} ns/element count_nonzero, "
          f"{m['sum_s'] / e * 1e9:.2f} ns/element int64 sum  → replay = "
          f"{m['replay_s'] / m['sum_s']:.0f} int64-sum passes")
    print(f"  peak RSS          {m['max_rss_mb']:6.0f} MB  (target ≤ 1024)")


def part_batch1() -> None:
    from hwsim.arch import load_arch
    from hwsim.sim.replay import replay
    from hwsim.trace.format import load
    from hwsim.trace.synth import synthesize

    with tempfile.TemporaryDirectory() as tmp:
        samples = load(synthesize(Path(tmp) / "resnet18", model="resnet18", w_density=1.0, a_density=0.5,
                                  dz_density=0.1)).sample()
    archs = {a: load_arch(a) for a in ARCHS}
    replay({k: samples[k] for k in list(samples)[:2]}, archs["scnn"])  # warm imports
    total = 0.0
    print(f"\nResNet-18 224², batch 1, {len(samples)} layers × 3 passes × 4 variants")
    for name, arch in archs.items():
        t0 = time.perf_counter()
        replay(samples, arch)
        wall = time.perf_counter() - t0
        total += wall
        print(f"  {name:<12} wall {wall:6.2f} s")
    print(f"  total        wall {total:6.2f} s")
    print("\ntime vs trace size (scnn, first k layers)")
    print(f"{'layers':>7}{'Melem (a+δz+W)':>16}{'GMACs':>8}{'wall s':>8}{'ns/elem':>9}")
    names = list(samples)
    for k in (3, 6, 11, 16, len(names)):
        sub = {n: samples[n] for n in names[:k]}
        elems = mask_elements(sub)
        macs = sum(s.geometry.macs for s in sub.values())
        t0 = time.perf_counter()
        replay(sub, archs["scnn"])
        wall = time.perf_counter() - t0
        print(f"{k:>7}{elems / 1e6:>16.2f}{macs / 1e9:>8.2f}{wall:>8.2f}{wall / elems * 1e9:>9.1f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32, help="batch of part 1 (default 32)")
    ap.add_argument("--only-batch", action="store_true", help="run part 1 only")
    ap.add_argument("--kinds", action="store_true", help="run part 3 only (per GEMM kind, GPT-2 small)")
    ap.add_argument("--seq", type=int, default=256, help="GPT-2 sequence length of part 3 (default 256)")
    ap.add_argument("--gpt-batch", type=int, default=2, help="GPT-2 batch (sequences) of part 3 (default 2)")
    ap.add_argument("--blocks", type=int, default=12, help="GPT-2 blocks of part 3 (default 12, the whole model)")
    ap.add_argument("--old", metavar="PATH", help="part 3: also run the code at PATH (PYTHONPATH) in the same run")
    ap.add_argument("--gpt-trace", metavar="TRACE", help="part 3: replay this GPT-2 trace (e.g. from `hwsim synth "
                    "--model gpt2_small --seq 1024 --batch 8`) instead of synthesizing one")
    ap.add_argument("--only", nargs="+", choices=("conv", "linear", "matmul", "whole"),
                    default=("conv", "linear", "matmul", "whole"), help="part 3: these kinds only")
    ap.add_argument("--decode", metavar="TRACE", help="only: memory and CPU of decoding TRACE's sample whole vs one "
                    "layer at a time (Trace.sample(lazy=True))")
    ap.add_argument("--child", metavar="TRACE", help=argparse.SUPPRESS)
    ap.add_argument("--child-decode", nargs=2, metavar=("MODE", "TRACE"), help=argparse.SUPPRESS)
    ap.add_argument("--child-kind", nargs=2, metavar=("KIND", "TRACE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args.child)
    if args.child_kind:
        return child_kind(args.child_kind[1], args.child_kind[0])
    if args.child_decode:
        return child_decode(args.child_decode[1], args.child_decode[0])
    if args.decode:
        part_decode(args.decode)
        return 0
    if args.kinds:
        part_kinds(args.batch, args.seq, args.gpt_batch, args.blocks, args.old, args.gpt_trace, tuple(args.only))
        return 0
    part_batch(args.batch)
    if not args.only_batch:
        part_batch1()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
