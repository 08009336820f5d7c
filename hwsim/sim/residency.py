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
OARAM and uses them as layer l+1's IARAM contents — if it fits (:mod:`hwsim.sim.onchip`: every PE's
share, over every step it is live, beside what is already placed): then the producer does not write
it to DRAM *for the chain* and the consumer does not read it. Otherwise it spills: the producer
writes it whole, the consumer reads it whole (tiled as any operand that does not fit). δ̃z_l, once
on chip for backward-data, also serves backward-weight of the same layer (it is placed for both).
``inter_layer_residency: false`` keeps nothing on chip (every policy below is then moot).

The forward hand-over, chained or not (the same rule in the forward direction): forward l writes its output in the
form its consumers read it — forward l+1's input a_{l+1} as :func:`role_bytes` gives it (compressed at its real
mask density, at ``mac_bits``), or nothing while it stays on chip for every consumer — plus the second operands of
the activation × activation products it produces (:func:`operand_sources`: GEMM l's output Q | K | V is read as
QKᵀ's K and P·V's V, at their masks). So every DRAM read of an activation — forward l+1's input, the stash that
backward-weight l+1 reads back, an activation product's second operand — is of bytes a forward wrote, byte for byte.
Between the two GEMMs, non-GEMM work (activation function, pooling, GELU, LayerNorm, softmax, the residual add, a
head merge's re-layout) transforms the tensor: a_{l+1} is that work's output, not GEMM l's raw output, and the
model assumes what a careful architect builds — the vector / post-processing unit that does the work writes it
directly in the consumer's form (its mask, compressed) rather than GEMM l's dense output. Which layer consumes
what follows the chain assumption below (each layer's input is the output of the layer executed before it, after
a residual block too). Only an output no captured GEMM reads — the last layer's (the logits, or what only non-GEMM
work after the captured layers consumes) — is written as before: GEMM l's own output elements at the density the
trace survey gives it (1 when no layer reads it, :func:`hwsim.sim.survey.out_densities`). The schedule's links
(:func:`hwsim.sim.schedule.producers`) follow these writes: forward l+1 waits for forward l's, an activation product
for its second operand's source's (P·V for c_attn's, not only QKᵀ's), and in the backward direction the source's
backward passes that read its δ̃z from DRAM wait for the products' backward-weight, which computes δK / δV.

The gradient hand-over, chained or not (one rule, the link :func:`hwsim.sim.schedule.producers` and the NSD
unit's ``overlap: producer`` use too): δ̃z_{l−1} is written by backward-data l, whose output δa_l becomes it in the
post-processing unit (activation derivative, then — for a dithered layer — NSD, compressed at its output), and in
DRAM it takes exactly the form its consumers read: :func:`role_bytes` of δ̃z_{l−1} (its real mask — the plain δz's
for a layer that is not dithered, e.g. attention's products — at ``mac_bits`` × its MAC passes). So every DRAM read
of a layer's gradient is a read of bytes an earlier pass wrote, byte for byte (the per-tensor view:
:func:`hwsim.sim.passes.dram_tensors`). When the shapes do not chain (attention's head split and merge, a layer after
a residual block) the tensor goes through DRAM (written whole, read whole), never stays on chip. Only a δa_l
no backward GEMM consumes (the first layer's input gradient, with ``first_input_grad``) is written as δa_l: its own
elements at the activation's density. The loss gradient δ̃z_L is in DRAM before the iteration (no producer).
The backward-weight GEMM of an activation × activation product (``w_role: activation``: attention's QKᵀ and P·V)
computes the gradient of its second operand (δK, δV), not a δW: that operand is an earlier GEMM's output (GPT-2's
c_attn), so its gradient is part of that GEMM's δz, which its own hand-over writes whole, once — the product's
backward-weight writes nothing to DRAM (no optimizer reads it; the NSD unit holds a dithered layer's dense δz
whole until it is quantized, :mod:`hwsim.sim.nsd_unit`'s capacity check, spills charged there). Limits: the
hand-over write is booked on the backward-data that follows the layer in execution order, even where part of the
tensor is computed by a later pass (QKᵀ's backward-data writes c_attn's δ̃z, whose δK part its backward-weight
computes); and the staging of a plain (undithered) δz's parts on chip until then is not capacity-checked.

Memory policies (``memory:``, :class:`hwsim.arch.MemoryConfig`), each a candidate for the greedy
placement of :func:`hwsim.sim.onchip.allocate`, in execution order:

* **training stash** (``stash``): a_l is needed again by backward-weight of layer l, long after the
  forward chain has moved on. ``dram``: forward writes it to DRAM, compressed, whether or not it
  stays on chip for layer l+1 (one write: a spill *is* the stash), and backward-weight reads it back.
  ``on_chip`` (default): a_l is placed live from the forward that produces it (or, for the network
  input and inputs not chained to the layer before, the forward that loads it) until backward-weight
  l; then it is neither written nor read back; if it does not fit (at its first step: see
  :mod:`hwsim.sim.onchip`) it goes to DRAM, written whole and read back by both of its consumers. The ReLU derivative mask backward-data needs
  is the mask of that same a_l (no extra traffic). A layer without a backward-weight GEMM needs no stash.
* **resident weights** (``weights_resident``, default true): W_l is placed in the global buffer
  from forward l to backward-data l, so backward-data does not read it again (loaded once per
  iteration, not once per pass). Forward still loads it, once even if its streamed operand is
  processed in chunks; δW's write-back is not affected.
* **global buffer** (``residency_in_global_buffer``, default true): the second pool; without it
  only the PE RAMs hold tensors, and weights are never resident.

The network input a_1 is already in DRAM (read by forward; read again by backward-weight unless the
stash keeps it), and the last layer's forward output (the logits) is written as before. The first
layer has no backward-data GEMM (the network input needs no gradient) unless ``first_input_grad``
(then its δa, which has no consumer, is written); ``input_grads`` / ``weight_grads`` say per layer which
backward GEMMs ran (a capture records them); without backward-data, a layer's δ̃z is on chip for its
backward-weight only if the layer after it left it there.
Inference (``training=False``) runs the forward chain only and writes no stash.

Which consecutive layers form a chain is read off their shapes (:func:`chained`): same batch,
input channels = output channels (conv → conv, spatial size equal or pooled down) or a flatten
of them (→ linear). Residual adds, concatenations and skip tensors are not modelled: a layer
that follows a residual block is treated as chained to the layer executed just before it, and
the skip tensor itself costs nothing. So a ResNet's downsample convolution, executed after its block's second
convolution but reading the block's input, is taken to read that convolution's output: the forward hand-over
writes, for it, the bytes it reads (its input's, at the input's mask), in place of the convolution's own output
(which really goes to the residual add).

On-chip capacity: :mod:`hwsim.sim.onchip` (two pools, the PE RAMs checked per PE, the global buffer in
aggregate; a greedy placement over the iteration). :func:`capacity_bytes` is their aggregate, for summaries.

Overlap: within a layer-pass, DRAM transfers are double-buffered behind compute (the loader
fetches group b+1's weights while group b computes, the writer drains group b's outputs after its
barrier; :mod:`hwsim.sim.model`). Across layers, with ``memory.schedule: isolated``, nothing
overlaps: each layer-pass is its own SimPy run, so its first group's load and its last group's
write-back are exposed. With residency these are one group's weights and, in training, one
group's share of the stash — small except for layers with one or two groups. ``memory.schedule:
iteration`` (the default) runs the whole iteration as one SimPy schedule (:mod:`hwsim.sim.schedule`)
that hides them behind the neighbouring layer-passes, waiting only where a consumer reads from DRAM what an
earlier layer-pass of the iteration writes (:func:`hwsim.sim.schedule.producers`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from hwsim.sim import onchip
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


def operand_sources(geometries: Sequence[LayerGeometry]) -> list[int | None]:
    """For each layer, the index of the layer whose forward output holds its second operand, if that is an
    activation (``w_role: activation``: attention's QKᵀ reads K, P·V reads V): the nearest layer before it that is
    not itself an activation product (GPT-2's fused c_attn, whose output is Q | K | V); None for a weight GEMM or
    when no such layer precedes it (the operand is then in DRAM before the iteration, as the network input)."""
    out: list[int | None] = []
    last = None
    for g in geometries:
        act = getattr(g, "w_role", "weight") == "activation"
        out.append(last if act else None)
        if not act:
            last = len(out) - 1
    return out


def capacity_bytes(arch: Arch) -> int:
    """Aggregate bytes resident tensors may occupy on chip: every PE's RAMs plus the global buffer if allowed
    (:mod:`hwsim.sim.onchip`); 0 with residency off. A summary figure: placement checks each PE's share."""
    if not arch.memory.inter_layer_residency:
        return 0
    per_pe, gb = onchip.pool_bytes(arch)
    return arch.num_pes * per_pe + gb


def role_bytes(ops: Operands, role: str, arch: Arch) -> float:
    """Compressed bytes of layer ``ops``'s activation ("a"), gradient ("dz") or weights ("w") in ``arch``'s format.

    δ̃z is stored at ``mac_bits`` × its MAC passes (as the backward GEMMs read it).
    """
    mem, mb = arch.memory, arch.pe.mac_bits
    bits = mb * operand_passes("backward_data", ops.dz_bits, mb) if role == "dz" else mb
    return mask_bytes(ops, role, value_bits=bits, compression=mem.compression, rl_bits=mem.run_length_bits)


def role_shares(ops: Operands, role: str, arch: Arch) -> np.ndarray | None:
    """Bytes of ``ops``'s "a" or "dz" on each PE (:func:`hwsim.sim.onchip.pe_shares`); None on a systolic array."""
    if arch.is_systolic:
        return None
    mem, mb = arch.memory, arch.pe.mac_bits
    bits = mb * operand_passes("backward_data", ops.dz_bits, mb) if role == "dz" else mb
    role_bytes(ops, role, arch)  # fills the per-layer mask statistics (fillers) once
    fill = ops.memo[("stats", role, mem.run_length_bits if mem.compression == "run_length" else 0)][2]
    rows, cols = arch.pe_array.rows, arch.pe_array.cols
    key = ("pe_counts", role, rows, cols)  # the variants of one array share the per-PE counts
    if key not in ops.memo:
        ops.memo[key] = onchip.pe_counts(getattr(ops, role), rows=rows, cols=cols)
    return onchip.pe_shares(getattr(ops, role), value_bits=bits, compression=mem.compression,
                            rl_bits=mem.run_length_bits, rows=rows, cols=cols, fillers=fill, counts=ops.memo[key])


def warm(ops: Operands, archs: Iterable[Arch], *, training: bool = True) -> None:
    """Count into ``ops.memo`` every mask statistic :func:`plan` reads for ``ops`` on each of ``archs``.

    After this, :func:`plan` needs only the memo, the name, the geometry and ``dz_bits`` of the layer — not its
    masks — so a replay can release each layer's arrays before the next layer is built
    (:func:`hwsim.sim.operands.released`): memory bounded per layer, not per model.
    """
    for arch in archs:
        for role in ("a", "dz", "w") if training else ("a", "w"):
            role_bytes(ops, role, arch)
            if role != "w" and arch.memory.inter_layer_residency:
                role_shares(ops, role, arch)


def plan_inputs(arch: Arch) -> tuple:
    """Everything of ``arch`` that :func:`plan` reads (the memory policies and formats, the MAC width, the PE RAMs
    and the array): two archs with equal inputs get equal plans for the same layers (the sparse run and its
    dense-gated baseline usually do)."""
    pe = arch.pe
    return (arch.memory, pe.mac_bits, arch.is_systolic, arch.pe_array.rows, arch.pe_array.cols,
            pe.input_buffer_bytes, pe.output_buffer_bytes)


def plan(layers: Sequence[Operands], geometries: Sequence[LayerGeometry], arch: Arch, *, training: bool = True,
         first_input_grad: bool = True, input_grads: Sequence[bool] | None = None,
         weight_grads: Sequence[bool] | None = None) -> dict[tuple[str, str], Residency]:
    """``{(layer name, pass): Residency}`` for every layer and pass of one iteration on ``arch``.

    ``layers`` / ``geometries``: the layers in execution order. ``first_input_grad``: does the first
    layer run backward-data (module doc)? ``input_grads`` / ``weight_grads``: whether each layer runs
    backward-data / backward-weight (default: backward-data for every layer but the first, unless
    ``first_input_grad``; backward-weight for all).
    """
    n = len(layers)
    mem = arch.memory
    st = onchip.steps(n)
    link = [chained(geometries[i], geometries[i + 1]) for i in range(n - 1)] + [False]
    has_bd = list(input_grads) if input_grads is not None else [i > 0 or first_input_grad for i in range(n)]
    has_bw = list(weight_grads) if weight_grads is not None else [True] * n
    if not training:
        has_bd = has_bw = [False] * n
    a_b = [role_bytes(o, "a", arch) for o in layers]
    w_b = [role_bytes(o, "w", arch) for o in layers]
    # the forward hand-over (module doc): what forward i writes for the second operands of activation products
    operand_out = [0.0] * n
    for j, src in enumerate(operand_sources(geometries)):
        if src is not None:
            operand_out[src] += w_b[j]
    dz_b = [role_bytes(o, "dz", arch) if training else 0.0 for o in layers]
    a_in_chain = [i > 0 and link[i - 1] for i in range(n)]            # a_i produced on chip by forward i−1
    dz_in_chain = [i + 1 < n and link[i] and has_bd[i + 1] for i in range(n)]  # δ̃z_i produced by backward-data i+1
    stash_kept = training and mem.stash == "on_chip"

    cands = []
    if mem.inter_layer_residency:
        for i, ops in enumerate(layers):
            start = st[(i - 1, "forward")] if a_in_chain[i] else st[(i, "forward")]
            end = st[(i, "backward_weight")] if stash_kept and has_bw[i] else st[(i, "forward")]
            if end > start:
                cands.append(onchip.Candidate(key=("a", i), start=start, end=end, nbytes=a_b[i],
                                              shares=role_shares(ops, "a", arch)))
            if not (has_bd[i] or has_bw[i]):
                continue
            first_use = st[(i, "backward_data")] if has_bd[i] else st[(i, "backward_weight")]
            start = st[(i + 1, "backward_data")] if dz_in_chain[i] else first_use
            end = st[(i, "backward_weight")] if has_bw[i] else st[(i, "backward_data")]
            if end > start:
                cands.append(onchip.Candidate(key=("dz", i), start=start, end=end, nbytes=dz_b[i],
                                              shares=role_shares(ops, "dz", arch)))
            if mem.weights_resident and has_bd[i]:
                cands.append(onchip.Candidate(key=("w", i), start=st[(i, "forward")], end=st[(i, "backward_data")],
                                              nbytes=role_bytes(ops, "w", arch), shares=None))
    placed = onchip.allocate(cands, arch, 3 * n)

    def stash_held(i: int) -> bool:
        """Is a_i on chip for backward-weight i (placed with the stash's long interval)?"""
        return ("a", i) in placed and stash_kept and has_bw[i]

    def gb(*tensors: tuple[str, int, float]) -> float:
        """Bytes of the (kind, layer, bytes) ``tensors`` that sit in the global buffer."""
        return float(sum(b for kind, j, b in tensors if placed.get((kind, j)) == "gb"))

    out: dict = {}
    for i, ops in enumerate(layers):
        # the forward hand-over (module doc): a_{i+1} in the form forward i+1 reads it — nothing if it stays on chip
        # as long as anything needs it, chained or not its compressed bytes otherwise — plus the activation
        # products' second operands it produces; the last layer's output (no GEMM reads it) as before (None)
        fw_out = None
        if link[i]:
            kept = ("a", i + 1) in placed and (not (training and has_bw[i + 1]) or stash_held(i + 1))
            fw_out = (0.0 if kept else a_b[i + 1]) + operand_out[i]
        elif i + 1 < n:
            fw_out = a_b[i + 1] + operand_out[i]
        # global-buffer traffic of resident tensors: a chained input read from it, an output written into it
        fw_gb = gb(("a", i, a_b[i] if a_in_chain[i] else 0.0), ("a", i + 1, a_b[i + 1] if link[i] else 0.0))
        out[(ops.name, "forward")] = Residency(stream_on_chip=a_in_chain[i] and ("a", i) in placed,
                                               out_bytes=fw_out, broadcast_kept=("w", i) in placed,
                                               global_bytes=fw_gb)
        if not training:
            continue
        # δa_i becomes δ̃z_{i−1} (module doc: the gradient hand-over), written in the form its consumers read it:
        # nothing if it stays on chip for them, else role_bytes(δ̃z_{i−1}) — chained or not; δa_i itself (its own
        # bytes, None) only when no backward GEMM of layer i−1 consumes it (the first layer's input gradient)
        grad_consumed = i > 0 and (has_bd[i - 1] or has_bw[i - 1])
        if not grad_consumed:
            bd_out = None
        elif a_in_chain[i] and ("dz", i - 1) in placed:
            bd_out = 0.0
        else:
            bd_out = dz_b[i - 1]
        bd_gb = gb(("dz", i, dz_b[i] if dz_in_chain[i] else 0.0), ("w", i, w_b[i]),
                   ("dz", i - 1, dz_b[i - 1] if a_in_chain[i] else 0.0))
        out[(ops.name, "backward_data")] = Residency(stream_on_chip=dz_in_chain[i] and ("dz", i) in placed,
                                                     broadcast_on_chip=("w", i) in placed, out_bytes=bd_out,
                                                     global_bytes=bd_gb)
        bw_gb = gb(("a", i, a_b[i] if stash_held(i) else 0.0), ("dz", i, dz_b[i]))
        # an activation × activation product's second-operand gradient is part of an earlier GEMM's δz, which
        # the hand-over writes whole (module doc): not written again here
        bw_out = 0.0 if i > 0 and getattr(geometries[i], "w_role", "weight") == "activation" else None
        out[(ops.name, "backward_weight")] = Residency(stream_on_chip=stash_held(i), out_bytes=bw_out,
                                                       broadcast_on_chip=("dz", i) in placed, global_bytes=bw_gb)
    return out
