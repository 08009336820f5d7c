"""Inter-layer residency and training stash traffic: which operands of a layer-pass cross DRAM.

A training iteration runs three GEMM chains over the trace's layers (execution order 1..L):

* **forward**: layer l's output, after the elementwise activation (and pooling / flatten) applied
  by the post-processing unit, *is* layer l+1's input ``a_{l+1}``;
* **backward-data** runs L..1: layer l's output δa_l, after the activation derivative (and
  unpooling) and the NSD quantizer, all elementwise in the post-processing unit, *is* layer l−1's
  gradient δ̃z_{l−1}, which both backward GEMMs of layer l−1 consume;
* **backward-weight** of layer l consumes δ̃z_l and the forward activation a_l.

Residency (``memory.inter_layer_residency``, default true, SCNN): a tensor that one GEMM of a
chain produces and the next consumes stays on chip — SCNN writes layer l's outputs into the PEs'
OARAM and uses them as layer l+1's IARAM contents — if its compressed size fits the on-chip
capacity (:func:`capacity_bytes`): then the producer does not write it to DRAM *for the chain* and
the consumer does not read it. Otherwise it spills: the producer writes it whole, the consumer
reads it whole (tiled as any operand that does not fit). δ̃z_l, once on chip for backward-data,
also serves backward-weight of the same layer if it fits. Weights are always streamed from DRAM.

Training stash (``training=True``): a_{l+1} is needed again by backward-weight of layer l+1, long
after the forward chain has overwritten the on-chip buffers, so forward writes it to DRAM,
compressed, whether or not it stays on chip for layer l+1 (one write: a spill *is* the stash), and
backward-weight reads a_l back from DRAM. The ReLU derivative mask backward-data needs is the
mask of that same a_l (no extra traffic). The network input a_1 is already in DRAM (read by
forward and again by backward-weight), and the last layer's forward output (the logits) is
written as before. The first layer has no backward-data GEMM (the network input needs no gradient)
unless ``first_input_grad`` (then its δa, which has no consumer, is written); ``input_grads`` says it
per layer (a capture records which backward-data GEMMs ran); without it, that layer's δ̃z is on chip for its backward-weight only if the layer after it left it there.
Inference (``training=False``) runs the forward chain only and writes no stash.

Which consecutive layers form a chain is read off their shapes (:func:`chained`): same batch,
input channels = output channels (conv → conv, spatial size equal or pooled down) or a flatten
of them (→ linear). Residual adds, concatenations and skip tensors are not modelled: a layer
that follows a residual block is treated as chained to the layer executed just before it, and
the skip tensor itself costs nothing.

On-chip capacity (:func:`capacity_bytes`): the aggregate of one kind of PE activation RAM,
``num_pes · min(input_buffer_bytes, output_buffer_bytes)`` — the tensor sits in the OARAMs while
it is produced and in the IARAMs while it is consumed (SCNN: 64 × 10 KB each) — plus the global
buffer only if ``memory.residency_in_global_buffer`` (default false: in hwsim the global buffer
stages DRAM tiles; SCNN has none). Systolic arrays have only operand registers in their PEs, so
they keep tensors on chip only in the global buffer (that switch). The check is aggregate: the
per-PE skew of a planar tile's non-zeros is not checked, nor are halos.

Overlap: within a layer-pass, DRAM transfers are double-buffered behind compute (the loader
fetches group b+1's weights while group b computes, the writer drains group b's outputs after its
barrier; :mod:`hwsim.sim.model`). Across layers, with ``memory.schedule: isolated`` (the default),
nothing overlaps: each layer-pass is its own SimPy run, so its first group's load and its last
group's write-back are exposed. With residency these are one group's weights and, in training, one
group's share of the stash — small except for layers with one or two groups. ``memory.schedule:
iteration`` runs the whole iteration as one SimPy schedule (:mod:`hwsim.sim.schedule`) that hides
them behind the neighbouring layer-passes, waiting only where a consumer reads from DRAM what an
earlier layer-pass of the iteration writes (:func:`hwsim.sim.schedule.producers`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hwsim.sim.operands import Operands, mask_bytes, operand_passes
from hwsim.sim.traffic import Residency

if TYPE_CHECKING:
    from hwsim.arch import Arch
    from hwsim.trace.schema import LayerGeometry


def chained(producer: LayerGeometry, consumer: LayerGeometry) -> bool:
    """Is ``consumer``'s input ``producer``'s output up to elementwise ops, pooling and flatten?

    Both are :class:`~hwsim.trace.format.LayerGeometry`, ``consumer`` executed right after.
    """
    if producer.N != consumer.N:
        return False
    if consumer.kind == "linear":  # flatten (after optional pooling) of K channels × h × w, h·w <= P·Q
        return consumer.C % producer.K == 0 and consumer.C // producer.K <= producer.P * producer.Q
    return consumer.C == producer.K and consumer.H <= producer.P and consumer.W <= producer.Q


def capacity_bytes(arch: Arch) -> int:
    """Bytes a resident tensor may occupy on chip (module doc); 0 with residency off."""
    mem = arch.memory
    if not mem.inter_layer_residency:
        return 0
    pe = 0 if arch.is_systolic else arch.num_pes * min(arch.pe.input_buffer_bytes, arch.pe.output_buffer_bytes)
    return pe + (mem.global_buffer_bytes if mem.residency_in_global_buffer else 0)


def role_bytes(ops: Operands, role: str, arch: Arch) -> float:
    """Compressed bytes of layer ``ops``'s activation ("a") or gradient ("dz") in ``arch``'s format.

    δ̃z is stored at ``mac_bits`` × its MAC passes (as the backward GEMMs read it).
    """
    mem, mb = arch.memory, arch.pe.mac_bits
    bits = mb * operand_passes("backward_data", ops.dz_bits, mb) if role == "dz" else mb
    return mask_bytes(ops, role, value_bits=bits, compression=mem.compression, rl_bits=mem.run_length_bits)


def plan(layers: Sequence[Operands], geometries: Sequence[LayerGeometry], arch: Arch, *, training: bool = True,
         first_input_grad: bool = True, input_grads: Sequence[bool] | None = None) -> dict[tuple[str, str], Residency]:
    """``{(layer name, pass): Residency}`` for every layer and pass of one iteration on ``arch``.

    ``layers`` / ``geometries``: the layers in execution order. ``first_input_grad``: does the first
    layer run backward-data (module doc)? ``input_grads``: whether each layer runs backward-data
    (overrides ``first_input_grad``; default: every layer but the first).
    """
    n = len(layers)
    cap = capacity_bytes(arch)
    link = [chained(geometries[i], geometries[i + 1]) for i in range(n - 1)] + [False]
    a_b = [role_bytes(o, "a", arch) for o in layers]
    dz_b = [role_bytes(o, "dz", arch) for o in layers] if training else [0.0] * n

    def fits(nbytes: float) -> bool:
        return cap > 0 and nbytes <= cap

    out: dict = {}
    for i, ops in enumerate(layers):
        fed = i > 0 and link[i - 1]          # a_i / δ̃z_{i-1} link to the layer before
        feeds = link[i]                      # a_{i+1} / δ̃z_i link to the layer after
        if feeds:  # forward output = a_{i+1}: stays on chip if it fits; the stash is written anyway
            fw_out = a_b[i + 1] if training or not fits(a_b[i + 1]) else 0.0
        out[(ops.name, "forward")] = Residency(stream_on_chip=fed and fits(a_b[i]),
                                               out_bytes=fw_out if feeds else None)
        if not training:
            continue
        bd_out = (0.0 if fits(dz_b[i - 1]) else dz_b[i - 1]) if fed else None
        out[(ops.name, "backward_data")] = Residency(stream_on_chip=feeds and fits(dz_b[i]), out_bytes=bd_out)
        # δ̃z_i is on chip for backward-data (resident or loaded): it stays for backward-weight if it fits.
        # Without a backward-data GEMM (first layer) it is on chip only if the next layer produced it there.
        has_bd = input_grads[i] if input_grads is not None else (i > 0 or first_input_grad)
        out[(ops.name, "backward_weight")] = Residency(broadcast_on_chip=fits(dz_b[i]) and (has_bd or feeds))
    return out
