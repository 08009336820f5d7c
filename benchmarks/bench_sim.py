"""Simulator speed: synthetic ResNet-18 (224², batch 1), all three passes, on scnn and systolic32.

Prints wall time and peak memory per architecture and in all (target: ≤ 3 s and ≤ 1 GB on one
core), and time against trace size (the first k layers of the network: should grow linearly with
the MACs / mask elements simulated). Trace synthesis is not timed (it is the capture side).

    python benchmarks/bench_sim.py
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # one core, as the target says

import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from hwsim.arch import load_arch  # noqa: E402
from hwsim.sim.replay import replay  # noqa: E402
from hwsim.trace.format import load  # noqa: E402
from hwsim.trace.synth import synthesize  # noqa: E402

ARCHS = ("scnn", "systolic32")


def timed(samples, arch) -> tuple[float, float]:
    """(wall seconds, peak traced MB) of one replay."""
    tracemalloc.start()
    t0 = time.perf_counter()
    replay(samples, arch)
    wall = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return wall, peak


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = synthesize(Path(tmp) / "resnet18", model="resnet18", w_density=1.0, a_density=0.5, dz_density=0.1)
        trace = load(path)
        samples = trace.sample()
    archs = {a: load_arch(a) for a in ARCHS}
    replay({k: samples[k] for k in list(samples)[:2]}, archs["scnn"])  # warm imports
    total = 0.0
    print(f"ResNet-18 224², batch 1, {len(samples)} layers × 3 passes × 4 variants")
    for name, arch in archs.items():
        t0 = time.perf_counter()
        replay(samples, arch)
        wall = time.perf_counter() - t0
        total += wall
        print(f"  {name:<12} wall {wall:6.2f} s")
    _, peak = timed(samples, archs["scnn"])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  total        wall {total:6.2f} s  (target ≤ 3 s)")
    print(f"  peak memory  {peak:6.1f} MB traced by tracemalloc (scnn run), max RSS {rss:.0f} MB (target ≤ 1 GB)")
    print("\ntime vs trace size (scnn, first k layers)")
    print(f"{'layers':>7}{'Melem (a+δz+W)':>16}{'GMACs':>8}{'wall s':>8}{'µs/kelem':>10}")
    names = list(samples)
    for k in (3, 6, 11, 16, len(names)):
        sub = {n: samples[n] for n in names[:k]}
        elems = sum(s.a_mask.size + s.dz_levels.size + int(np.prod(s.geometry.weight_shape)) for s in sub.values())
        macs = sum(s.geometry.macs for s in sub.values())
        t0 = time.perf_counter()
        replay(sub, archs["scnn"])
        wall = time.perf_counter() - t0
        print(f"{k:>7}{elems / 1e6:>16.2f}{macs / 1e9:>8.2f}{wall:>8.2f}{wall / elems * 1e9 / 1e3:>10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
