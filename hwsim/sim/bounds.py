"""The DRAM term of the roofline bound: the bytes a layer-pass must move, at the widths the variants use.

Bounds and baselines (DESIGN §4, issue 17 item 5; the records and their names: :mod:`hwsim.results.views`):

* **MAC bound** = effectual MACs ÷ multipliers — the ``ideal`` variant's cycles (:func:`hwsim.sim.replay._ideal`);
* **roofline bound** = per layer-pass max(MAC bound, DRAM bound), summed over a scope, where the DRAM bound
  (``LayerPassResult.dram_bound_cycles``) is :func:`dram_bound_bytes` ÷ ``memory.dram_bytes_per_cycle``;
* **dense @ 100 %** = dense MACs ÷ multipliers (derived from the record, nothing stored);
* **equal-area dense**: a variant of its own (:func:`hwsim.arch.dense_equal_area_variant`).

:func:`dram_bound_bytes` counts what the sparse design's residency plan leaves in DRAM, each tensor crossing
once (no re-read of a broadcast operand per chunk), at the value widths every variant moves: activations,
weights and the forward / backward-data outputs at ``pe.mac_bits``; δ̃z at ``pe.mac_bits`` × its MAC passes (as
the backward GEMMs read it and the residency plan stores it); δW at ``pe.accumulator_bits``, uncompressed (every
variant writes the accumulated δW back so: :func:`hwsim.sim.passes._tensor_bytes`). Each tensor is counted in the
smaller of plain values and the compressed format (the arch's; ``bitmask`` when the arch has none), so the bound
is below the traffic of the compressed and the uncompressed variants alike.

Before issue 17 the only memory bound was ``bandwidth_floor_cycles`` = the ``ideal`` variant's DRAM bytes ÷
bandwidth, which writes δW at ``mac_bits`` (8 bits where every variant writes 24) and reads δ̃z at one MAC pass.
It is kept unchanged (stored in older results files); the roofline reads ``dram_bound_cycles``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hwsim.sim import traffic
from hwsim.sim.model import transfer_cycles
from hwsim.sim.operands import Operands, mask_bytes, operand_passes, role_density

if TYPE_CHECKING:
    from hwsim.arch import Arch

# (streamed, broadcast) operand roles of each pass, as hwsim.sim.passes._tensor_bytes orders them
ROLES = {"forward": ("a", "w"), "backward_data": ("dz", "w"), "backward_weight": ("a", "dz")}


def dram_bound_bytes(ops: Operands, pass_name: str, arch: Arch, res: traffic.Residency = traffic.NO_RESIDENCY) -> float:
    """Bytes one layer-pass must move between DRAM and the chip (module doc); ``res``: the sparse design's plan."""
    mem, mb = arch.memory, arch.pe.mac_bits
    comp = mem.compression if mem.compression != "none" else "bitmask"
    kw = dict(compression=comp, rl_bits=mem.run_length_bits)
    p = operand_passes(pass_name, ops.dz_bits, mb)

    def tensor(role: str) -> float:
        bits = mb * p if role == "dz" else mb
        size = ops.weight_count if role == "w" else getattr(ops, role).size
        return min(size * bits / 8, mask_bytes(ops, role, value_bits=bits, **kw))

    on_chip = (res.stream_on_chip, res.broadcast_on_chip)
    rd = sum(tensor(r) for r, oc in zip(ROLES[pass_name], on_chip, strict=True) if not oc)
    if res.out_bytes is not None:  # the plan's own figure (a hand-over, stash or spill: hwsim.sim.residency)
        wr = res.out_bytes
    elif pass_name == "backward_weight":  # δW: accumulator width, plain (as every variant writes it)
        wr = ops.weight_count * arch.pe.accumulator_bits / 8
    else:
        den, size = ((ops.out_density, ops.dz.size) if pass_name == "forward"
                     else (role_density(ops, "a") if ops.a.size else 1.0, ops.a.size))
        wr = min(size * mb / 8, traffic.density_bytes(density=den, size=size, value_bits=mb, **kw))
    return rd + wr


def dram_bound_cycles(ops: Operands, pass_name: str, arch: Arch, res: traffic.Residency = traffic.NO_RESIDENCY) -> int:
    """⌈:func:`dram_bound_bytes` ÷ DRAM bandwidth⌉ (0 with unlimited bandwidth)."""
    return transfer_cycles(dram_bound_bytes(ops, pass_name, arch, res), arch.memory.dram_bytes_per_cycle)


__all__ = ["ROLES", "dram_bound_bytes", "dram_bound_cycles"]
