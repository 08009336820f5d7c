"""The memory policies of an architecture in one line (issue 17 item 2), for ``hwsim validate`` and provenance.

Reads the YAML-shaped mapping (``Arch.to_dict()`` or a stored result's ``arch.params``), so results written before
the policies were fields say nothing rather than something wrong. The model: :mod:`hwsim.sim.residency`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def memory_policy(params: Mapping[str, Any]) -> str | None:
    """One line saying where tensors live (the ``memory:`` policies, hwsim/sim/residency.py), e.g. 'stash on
    chip when it fits, weights resident when they fit, residency in PE RAMs (checked per PE) + global buffer,
    iteration schedule (DRAM arbiter reads_first)' (scnn.yaml: ``memory.dram_arbiter`` moves the per-pass split, so
    the line names it where the iteration schedule uses it); None for results written before the policies were
    fields."""
    mem = params.get("memory") if isinstance(params, Mapping) else None
    keys = ("inter_layer_residency", "residency_in_global_buffer", "stash", "weights_resident")
    if not isinstance(mem, Mapping) or any(k not in mem for k in keys):
        return None
    sched = f", {mem['schedule']} schedule" if "schedule" in mem else ""
    if mem.get("schedule") == "iteration" and "dram_arbiter" in mem:  # isolated runs do not use the arbiter
        sched += f" (DRAM arbiter {mem['dram_arbiter']})"
    if not mem["inter_layer_residency"]:
        return f"nothing resident: every tensor through DRAM{sched}"
    systolic = str(params.get("dataflow", "")).startswith("systolic")
    pools = [p for p, on in (("PE RAMs (checked per PE)", not systolic),
                             ("global buffer", mem["residency_in_global_buffer"])) if on]
    stash = "stash on chip when it fits" if mem["stash"] == "on_chip" else "stash in DRAM"
    weights = "weights resident when they fit" if mem["weights_resident"] and mem["residency_in_global_buffer"] \
        else "weights streamed"
    return f"{stash}, {weights}, residency in {' + '.join(pools) or 'nothing'}{sched}"


__all__ = ["memory_policy"]
