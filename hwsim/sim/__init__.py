"""The simulator: replay a trace on an architecture → cycles and energy per layer, pass and variant.

>>> import hwsim
>>> res = hwsim.simulate("traces/lenet5", "scnn")
>>> res.speedup("sparse", pass_name="backward_data"), res.energy_ratio("sparse")

Modules, one concept each: ``work`` (per-tile effectual work from masks), ``banks`` (accumulator
bank conflicts), ``traffic`` (compressed bytes, DRAM traffic), ``systolic`` (SCALE-Sim fold model),
``gemm`` (mapping the three GEMMs onto the Cartesian array), ``passes`` (one layer-pass on one
arch), ``model`` (SimPy: PEs, barriers, DRAM), ``analytic`` (closed form and cycle breakdown),
``energy`` (actions × table), ``replay`` (layers × passes × variants). numpy + simpy only.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

from hwsim.results import SimResult

if TYPE_CHECKING:
    from collections.abc import Collection

    from hwsim.trace.records import IterationRecord

__all__ = ["simulate", "simulate_run"]


def simulate(trace_or_path: Any, arch_or_path: Any, *, iteration: int | None = None, seed: int = 0,
             progress: bool = False, training: bool = True, iterations: Any = None, jobs: int = 1,
             scheduler: str | None = None, cache_dir: Any = None) -> SimResult | Any:
    """Replay one sampled iteration of a trace — or, with ``iterations``, many — on an architecture and its
    dense baselines.

    ``trace_or_path``: a loaded :class:`~hwsim.trace.format.Trace` or a trace directory;
    ``arch_or_path``: an :class:`~hwsim.arch.Arch`, a YAML path or a shipped name ("scnn").
    ``iteration``: a sampled iteration (default: the last). Deterministic for a given ``seed``
    (it seeds weight masks a trace does not store and the bank-conflict sample).
    ``training``: replay a training iteration (all three passes; forward activations stashed to
    DRAM for backward-weight); ``False`` = inference, forward pass only, no stash (for comparisons
    with inference accelerators such as SCNN). See :mod:`hwsim.sim.residency`.

    ``iterations``: ``"all"``, ``"last"``, ``"every:N"``, ``"0,10,45"`` or a list of sampled
    iterations → a :class:`hwsim.run_results.RunResult` (per-iteration results and their integral
    over the training run; training replays only). They run through the sweep executors:
    ``jobs`` local processes or a Dask ``scheduler`` address; ``cache_dir`` stores each replayed
    iteration as it finishes so an interrupted run resumes (:mod:`hwsim.sweep.replays`).
    """
    from hwsim.arch import Arch, load_arch
    from hwsim.sim.replay import simulate_trace
    from hwsim.trace.format import Trace, load

    # Manifest validated here; only the sample replayed is read, and its sha256 is checked as it is read
    # (Trace.sample): verifying every sample file up front would read the whole trace to use one iteration.
    trace = trace_or_path if isinstance(trace_or_path, Trace) else load(trace_or_path, verify=False)
    if iterations is not None:
        if not training:
            raise ValueError("iterations: whole-run replays are training replays; allowed with training=False: "
                             "iterations=None (one iteration)")
        if iteration is not None:
            raise ValueError("iteration and iterations: give one of them")
        return simulate_run(trace, arch_or_path, iterations=iterations, seed=seed, progress=progress, jobs=jobs,
                            scheduler=scheduler, cache_dir=cache_dir)
    arch = arch_or_path if isinstance(arch_or_path, Arch) else load_arch(os.fspath(arch_or_path))
    from dataclasses import replace

    from hwsim.provenance import for_simulation

    result = simulate_trace(trace, arch, iteration=iteration, seed=seed, progress=progress,
                            trace_path=str(trace.path), arch_file=arch.source, training=training)
    prov = for_simulation(trace, arch, iteration=int(result.trace.get("iteration")), training=training)
    return replace(result, provenance=prov)


def simulate_run(trace, arch_or_path: Any, *, iterations: Any = "all", seed: int = 0, progress: bool = False,
                 jobs: int = 1, scheduler: str | None = None, cache_dir: Any = None, overrides: Any = None):
    """Replay the chosen sampled iterations of ``trace`` and integrate them over the run (:func:`simulate`)."""
    import time

    from hwsim.arch import Arch, load_arch
    from hwsim.provenance import for_simulation
    from hwsim.run_results import RunResult
    from hwsim.sweep.replays import gemms_per_iteration, replay_tasks, run_replays, select_iterations

    t0 = time.perf_counter()
    its = select_iterations(trace.sampled_iterations, iterations)
    if isinstance(arch_or_path, Arch):
        if not arch_or_path.source:
            raise ValueError("arch: a whole-run replay needs an arch loaded from a YAML file (workers reload it)")
        arch, arch_ref, ov = arch_or_path, arch_or_path.source, {}
        if arch_or_path != load_arch(arch_ref):
            ov = _diff_overrides(arch_or_path)
    else:
        arch_ref, ov = os.fspath(arch_or_path), dict(overrides or {})
        arch = load_arch(arch_ref, overrides=ov or None)  # validated here, before any replay
    tasks = replay_tasks(trace.path, [(arch_ref, ov)], its, seed=seed)
    done = run_replays(tasks, gemms=gemms_per_iteration(trace), out=cache_dir, jobs=jobs, scheduler=scheduler,
                       progress=progress)
    stats = trace.iterations
    total = max([s.index for s in stats] + [its[-1]]) + 1
    training = [{"iteration": s.index, "epoch": s.epoch, "loss": s.loss, "dz_density": s.mean_density(),
                 "sampled": s.sampled} for s in stats]
    caveats = _batch_caveats(stats, its, total)
    for c in caveats:
        warnings.warn(f"{trace.path}: {c}", stacklevel=2)
    prov = for_simulation(trace, arch, iteration=its, overrides=ov or None)
    prov["mode"] = "whole training run (left-hold estimator over the replayed iterations); iterations"
    return RunResult.build([(t.iteration, done[t.key]) for t in tasks], total_iterations=total, training=training,
                           run={"seed": seed, "iterations_spec": str(iterations), "replayed": len(its),
                                "jobs": jobs, "scheduler": scheduler, "caveats": caveats,
                                "wall_s": round(time.perf_counter() - t0, 3)}, provenance=prov)


def _elements(stats: IterationRecord, names: Collection[str] | None = None) -> int | None:
    """δz elements of one iteration (Σ over layers of non-zeros ÷ density): proportional to its mini-batch.
    ``names``: count only these layers."""
    n = [sum(v.hist) / float(v.density) for k, v in stats.layers.items()
         if v.hist and v.density and (names is None or k in names)]
    return round(sum(n)) if n else None


def _batch_caveats(stats, its: list[int], total: int) -> list[str]:
    """Replayed iterations whose mini-batch differs from the iterations they stand for (e.g. an epoch's last,
    partial batch): the left-hold estimator counts them as they are, so the whole-run cost is biased.

    Only layers with statistics in all the compared iterations count: some are recorded on sampled
    iterations only (fused attention's QKᵀ), which says nothing about the batch."""
    from hwsim.run_results import hold_weights

    by_index = {s.index: s for s in stats}
    out = []
    for it, w in zip(its, hold_weights(its, total), strict=True):
        start = 0 if it == its[0] else it  # the first also stands for the iterations before it
        window = [by_index[j] for j in range(start, start + w) if j in by_index]
        if it not in by_index or not window:
            continue
        names = set(by_index[it].layers).intersection(*(s.layers for s in window))
        mine = _elements(by_index[it], names)
        others = sorted(e for s in window if (e := _elements(s, names)) is not None)
        if not mine or not others:
            continue
        typical = others[len(others) // 2]
        if abs(mine - typical) > 0.01 * typical:
            out.append(f"replayed iteration {it} has {mine / typical:.0%} of the δz elements of the typical iteration "
                       f"it stands for (a partial mini-batch?); it is counted for {w} iteration(s), so the whole-run "
                       f"cost is {'under' if mine < typical else 'over'}estimated — sample other iterations "
                       f"(sample_every a multiple of the iterations per epoch) or replay every iteration")
    return out


def _diff_overrides(arch) -> dict:
    """Dotted overrides that turn the arch's YAML file into ``arch`` (for workers that reload it)."""
    from hwsim.arch import load_arch

    base = load_arch(arch.source).to_dict()
    out: dict = {}

    def walk(a, b, prefix):
        for k, v in b.items():
            if isinstance(v, dict) and isinstance(a.get(k), dict):
                walk(a[k], v, f"{prefix}{k}.")
            elif a.get(k) != v:
                out[f"{prefix}{k}"] = v
    walk(base, arch.to_dict(), "")
    return out
