"""The simulator: replay a trace on an architecture → cycles and energy per layer, pass and variant.

>>> import hwsim
>>> res = hwsim.simulate("traces/lenet5", "scnn")
>>> res.speedup("sparse", pass_name="backward_data"), res.energy_ratio("sparse")

Modules, one concept each: ``work`` (per-tile effectual work from masks), ``banks`` (accumulator
bank conflicts), ``traffic`` (compressed bytes, DRAM traffic), ``systolic`` (SCALE-Sim fold model),
``gemm`` (mapping the three GEMMs onto the Cartesian array), ``gather`` (the δz-driven gather dataflow of
the backward passes, ``dataflow: … dz_gather``), ``passes`` (one layer-pass on one
arch), ``model`` (SimPy: PEs, barriers, DRAM), ``analytic`` (closed form and cycle breakdown),
``energy`` (actions × table), ``vector`` (the vector unit's cycles and actions), ``update`` (the weight update
after the backward passes), ``replay`` (layers × passes × variants). numpy + simpy only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hwsim.results import SimResult

if TYPE_CHECKING:
    from hwsim.arch import Arch
    from hwsim.trace.format import Trace

__all__ = ["simulate"]


def simulate(trace_or_path: Trace | str | os.PathLike, arch_or_path: Arch | str | os.PathLike, *,
             iteration: int | None = None, seed: int = 0, progress: bool = False,
             training: bool = True, arch_base: Mapping[str, Any] | None = None) -> SimResult:
    """Replay one sampled iteration of a trace on an architecture and its dense baselines.

    ``trace_or_path``: a loaded :class:`~hwsim.trace.format.Trace` or a trace directory;
    ``arch_or_path``: an :class:`~hwsim.arch.Arch`, a YAML path or a shipped name ("scnn").
    ``iteration``: a sampled iteration (default: the last with a full mini-batch, :meth:`Trace.default_iteration`;
    ``result.run["iteration_choice"]`` then says which and why). Deterministic for a given ``seed``
    (it seeds weight masks a trace does not store and the bank-conflict sample).
    ``training``: replay a training iteration (all three passes; forward activations stashed for
    backward-weight, on chip or in DRAM as ``memory.stash`` says); ``False`` = inference, forward pass only, no stash (for comparisons
    with inference accelerators such as SCNN). See :mod:`hwsim.sim.residency`. ``arch_base``: the architecture
    file as written (validated ``to_dict()``), against which the provenance lists the overrides; default: read
    from ``arch.source`` (a caller that has already read the file passes it to spare a second read).

    A whole training run (many sampled iterations, integrated) is :func:`hwsim.simulate_run`
    (:mod:`hwsim.sweep.replays`): it runs its iterations through the sweep executor.
    """
    from dataclasses import replace

    from hwsim.arch import Arch, load_arch
    from hwsim.results.provenance import for_simulation
    from hwsim.sim.replay import simulate_trace
    from hwsim.trace.format import Trace, load

    # Manifest validated here; only the sample replayed is read, and its sha256 is checked as it is read
    # (Trace.sample): verifying every sample file up front would read the whole trace to use one iteration.
    trace = trace_or_path if isinstance(trace_or_path, Trace) else load(trace_or_path, verify=False)
    arch = arch_or_path if isinstance(arch_or_path, Arch) else load_arch(os.fspath(arch_or_path))
    choice = None
    if iteration is None:
        iteration, choice = trace.default_iteration()
    result = simulate_trace(trace, arch, iteration=iteration, seed=seed, progress=progress,
                            trace_path=str(trace.path), arch_file=arch.source, training=training)
    prov = for_simulation(trace, arch, iteration=int(result.trace.get("iteration")), training=training,
                          base=arch_base)
    run = {**result.run, "iteration_choice": choice} if choice else result.run
    return replace(result, provenance=prov, run=run)
