"""One layer-pass on one architecture: operand roles, work, traffic, actions and SimPy timing.

``run_pass`` is the single code path for every variant: the sparse architecture, its dense
baseline and its dense-gated baseline differ only in their :class:`~hwsim.arch.Arch` fields
(zero skipping per role, zero gating, compression), never in code.

δ̃z levels wider than ``mac_bits`` are split into ⌈bits / mac_bits⌉ slices, each a full MAC
pass (cycles, multiplies and accumulations multiply; nothing is truncated). Weights and
activations are taken at ``mac_bits`` (the MAC width is the operand width, as in 8-bit
training); a trace whose quantized forward operands are wider than the MAC is rejected upstream.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from hwsim.results.actions import Actions
from hwsim.sim import (
    banks,
    capacity,
    gather,
    gemm,
    halo,
    precision,
    reduction,
    shape_memo,
    systolic,
    tensordash,
    traffic,
    work,
)
from hwsim.sim.analytic import closed_form_cycles
from hwsim.sim.model import simulate_intervals
from hwsim.sim.operands import Operands, mask_bytes, operand_passes, role_density

if TYPE_CHECKING:
    from hwsim.arch import Arch, PEConfig, ZeroSkip

PASSES = ("forward", "backward_data", "backward_weight")


@dataclass(frozen=True, kw_only=True)
class PassTiming:
    """Timing and action counts of one layer-pass on one arch."""

    mult_cycles: np.ndarray   # (intervals, PEs), all δ̃z slices included
    conflict: np.ndarray      # (intervals, PEs)
    makespan: int
    analytical: int
    actions: Actions
    reduction_cycles: int = 0  # backward-weight cross-PE δW reduction, after the SimPy makespan (reduction.py)
    # DRAM bytes read before / written after each interval (what the SimPy model is given); with
    # memory.schedule: iteration, ``makespan`` is the memory-free Σ of barrier spans and the iteration's
    # schedule (hwsim.sim.schedule) adds the memory time from these.
    load_bytes: np.ndarray | None = None
    store_bytes: np.ndarray | None = None


def effectual_macs(ops: Operands, pass_name: str) -> int:
    """Exact MACs with both operands non-zero that land on a valid output (one MAC pass)."""
    geo = dict(stride=ops.stride, padding=ops.padding, dilation=ops.dilation)
    if pass_name == "forward":
        return work.effectual_macs_forward(ops.w, ops.a, out_hw=ops.dz.shape[2:], groups=ops.groups, **geo)
    if pass_name == "backward_data":
        return work.effectual_macs_backward_data(ops.w, ops.dz, in_hw=ops.a.shape[2:], groups=ops.groups, **geo)
    return work.effectual_macs_backward_weight(ops.dz, ops.a, groups=ops.groups, kernel=ops.kernel, **geo)


def role_operands(ops: Operands, skip: ZeroSkip) -> Operands:
    """``ops`` as a dataflow with zero-skip flags ``skip`` sees them (unskipped roles all ones)."""
    return replace(ops, w=ops.w if skip.weights else ops.w_struct,
                   a=ops.a if skip.activations else np.ones_like(ops.a),
                   dz=ops.dz if skip.gradients else np.ones_like(ops.dz))


def variant_macs(ops: Operands, pass_name: str, arch: Arch, *, macs_dense: int, cache: dict) -> int:
    """MACs a variant counts as useful work (one MAC pass).

    Cartesian arrays: :func:`streamed_macs` of the roles the arch skips. Systolic arrays multiply
    the im2col matrices, padding included: the geometry's MACs (``macs_dense``).
    """
    if arch.is_systolic:  # a TensorDash-style array issues only the products of its scheduled non-zeros
        sched = _scheduled(ops, pass_name, arch)
        return macs_dense if sched is None else sched.products
    return streamed_macs(ops, pass_name, arch.zero_skip, cache=cache)


def streamed_macs(ops: Operands, pass_name: str, skip: ZeroSkip, *, cache: dict) -> int:
    """Products a Cartesian dataflow that skips the zeros of ``skip``'s roles streams and that land on a
    real output, padding excluded (the dataflow never multiplies padding); zeros of unskipped roles
    included. Skipping every role gives the effectual MACs. ``cache``: per layer-pass, keyed by the roles."""
    key = (pass_name, skip.weights, skip.activations, skip.gradients)
    roles = {"forward": (skip.weights, skip.activations), "backward_data": (skip.weights, skip.gradients),
             "backward_weight": (skip.gradients, skip.activations)}[pass_name]
    if not any(roles) and key not in cache:
        n, k, p, q = ops.dz.shape
        cache[key] = work.dense_valid_macs(n=n, k=k, c_per_group=ops.a.shape[1] // ops.groups,
                                           in_hw=ops.a.shape[2:], out_hw=(p, q), kernel=ops.kernel,
                                           stride=ops.stride, padding=ops.padding, dilation=ops.dilation)
    if key not in cache:
        cache[key] = effectual_macs(role_operands(ops, skip), pass_name)
    return cache[key]


def _role_masks(ops: Operands, pass_name: str, skip: ZeroSkip | None, *, lazy: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(broadcast, streamed) masks as a dataflow sees them: real if the role is skipped, else ones.

    ``skip`` is the arch's ``zero_skip`` (or ``None`` for the real masks of every role).
    ``lazy``: the ones are a read-only broadcast view (:func:`hwsim.sim.work.ones_view`), which
    the parallel path counts from the geometry instead of reading.
    """
    def ones(x: np.ndarray) -> np.ndarray:
        return work.ones_view(x.shape) if lazy else np.ones_like(x)

    w = ops.w if skip is None or skip.weights else ops.w_struct
    a = ops.a if skip is None or skip.activations else ones(ops.a)
    dz = ops.dz if skip is None or skip.gradients else ones(ops.dz)
    if pass_name == "forward":
        return w, a
    if pass_name == "backward_data":
        return w, dz
    return dz, a


def _tensor_bytes(ops: Operands, pass_name: str, arch: Arch, p: int) -> tuple[float, float, float]:
    """(streamed, broadcast, output) bytes in the arch's compression format."""
    mem, mb = arch.memory, arch.pe.mac_bits
    kw = dict(compression=mem.compression, rl_bits=mem.run_length_bits)
    wb = mask_bytes(ops, "w", value_bits=mb, **kw)
    if pass_name == "forward":
        out = traffic.density_bytes(density=ops.out_density, size=ops.dz.size, value_bits=mb, **kw)
        return mask_bytes(ops, "a", value_bits=mb, **kw), wb, out
    dzb = mask_bytes(ops, "dz", value_bits=mb * p, **kw)
    if pass_name == "backward_data":
        a_den = role_density(ops, "a") if ops.a.size else 1.0
        return dzb, wb, traffic.density_bytes(density=a_den, size=ops.a.size, value_bits=mb, **kw)
    nw = ops.weight_count
    out = traffic.tensor_bytes(nnz=nw, size=nw, value_bits=arch.pe.accumulator_bits, compression="none")
    return mask_bytes(ops, "a", value_bits=mb, **kw), dzb, out


# The tensor each pass streams, broadcasts and writes (DRAM ledger names: hwsim.sim.residency's module doc).
PASS_TENSORS = {"forward": ("a", "w", "out"), "backward_data": ("dz", "w", "grad"), "backward_weight": ("a", "dz", "dw")}


def dram_tensors(ops: Operands, pass_name: str, arch: Arch,
                 residency: traffic.Residency = traffic.NO_RESIDENCY) -> dict[str, float]:
    """DRAM bytes of one layer-pass per tensor: its two operands read (``a``, ``w``, ``dz``; the broadcast one with
    every chunk's re-read) and its output written (``out``: the forward output; ``grad``: what backward-data writes
    for the layer before, :func:`hwsim.sim.residency.plan`; ``dw``: δW). Sums to :func:`run_pass`'s DRAM bytes."""
    s_bytes, b_bytes, o_bytes = _tensor_bytes(ops, pass_name, arch, operand_passes(pass_name, ops.dz_bits,
                                                                                    arch.pe.mac_bits))
    on_chip = arch.memory.global_buffer_bytes + arch.num_pes * arch.pe.input_buffer_bytes
    rd_s, rd_b, wr, _ = traffic.dram_parts(stream_bytes=s_bytes, broadcast_bytes=b_bytes, out_bytes=o_bytes,
                                           on_chip_bytes=on_chip, residency=residency)
    stream, broadcast, out = PASS_TENSORS[pass_name]
    return {stream: rd_s, broadcast: rd_b, out: wr}


def _counts(ops: Operands, pass_name: str, arch: Arch, masks: tuple[np.ndarray, np.ndarray],
            kc: int) -> gemm.Counted:
    """The GEMM of ``pass_name`` on the (broadcast, streamed) ``masks``, counted on the Cartesian ``arch``."""
    if pass_name == "backward_weight":
        return gemm.weight_grad_counts(capacity.outer_product(ops, masks), arch, kc=kc)
    return gemm.scatter_counts(capacity.scatter_conv(ops, pass_name, masks), arch, kc=kc)


def _cartesian(ops: Operands, pass_name: str, arch: Arch, rng: np.random.Generator,
               masks: tuple[np.ndarray, np.ndarray], *, sample: bool, kc: int | None = None) -> gemm.CartesianWork:
    """Work of one GEMM on the (broadcast, streamed) ``masks`` given (uncached); ``kc`` default: sized to fit."""
    counted = _counts(ops, pass_name, arch, masks, kc or capacity.group_kc(ops, pass_name, arch, masks))
    return replace(counted.work, stall_units=counted.sample_units(rng)) if sample else counted.work


def _cartesian_cached(ops: Operands, pass_name: str, arch: Arch, rng: np.random.Generator, skip: ZeroSkip | None, *,
                      sample: bool, kc: int | None = None) -> gemm.CartesianWork:
    """Work of one GEMM with the role masks ``skip`` sees (``None``: all real), cached per layer.

    The counts depend only on the masks and the mapping, so variants that stream the same masks on
    the same array (dense and dense-gated; the sparse run and the gated run's toggled products)
    share them; only the bank-conflict sample (``sample``, which draws from ``rng``) is per call.
    ``kc``: the output-channel group (default: sized to the accumulators, :mod:`hwsim.sim.capacity`).
    """
    pe = arch.pe
    roles = (True, True, True) if skip is None else (skip.weights, skip.activations, skip.gradients)
    masks = _role_masks(ops, pass_name, skip, lazy=True)
    kc = kc or capacity.group_kc(ops, pass_name, arch, masks)
    acc = pe.accumulator_banks * pe.accumulator_bank_entries
    key = ("cw", pass_name, roles, (arch.pe_array.rows, arch.pe_array.cols, kc, pe.mult_f, pe.mult_i,
                                    arch.pe_array.planar_min_balance),
           acc if pass_name == "backward_weight" else 0)
    if not any(roles) and not sample:  # every role streamed dense: the counts follow from the shapes alone
        return _dense_work(ops, pass_name, arch, masks, kc, key)
    if key not in ops.memo:
        ops.memo[key] = _counts(ops, pass_name, arch, masks, kc)
    counted = ops.memo[key]
    if not sample:
        return counted.work
    return replace(counted.work, stall_units=counted.sample_units(rng))


_DENSE_WORK: dict[tuple, gemm.CartesianWork] = {}  # (mapping key, layer shapes) -> work of the all-dense GEMM


def _dense_work(ops: Operands, pass_name: str, arch: Arch, masks: tuple[np.ndarray, np.ndarray], kc: int,
                key: tuple) -> gemm.CartesianWork:
    """The work of a GEMM whose roles are all streamed dense (a dense baseline): its masks are the layer's
    connectivity and all-ones tensors, so it depends on the mapping ``key`` and the layer's shapes only, and is
    counted once per process for every iteration of a run (read-only arrays)."""
    gkey = (key, ops.w.shape, ops.a.shape, ops.dz.shape, ops.groups, ops.stride, ops.padding, ops.dilation)
    hit = _DENSE_WORK.get(gkey)
    if hit is None:
        hit = _counts(ops, pass_name, arch, masks, kc).work
        for f in ("mult_cycles", "group_pes", "group_values", "group_interval"):
            getattr(hit, f).flags.writeable = False
        if len(_DENSE_WORK) >= 256:  # many models in one process: keep the cache small
            _DENSE_WORK.clear()
        _DENSE_WORK[gkey] = hit
    return hit


def drop_work_cache(ops: Operands) -> None:
    """Forget the cached GEMM work of a layer (its count arrays) once all its passes ran."""
    for k in [k for k in ops.memo if k[0] == "cw"]:
        del ops.memo[k]


def run_pass(ops: Operands, pass_name: str, arch: Arch, *, rng: np.random.Generator, macs_dense: int,
             macs_effectual: int, timing: bool = True,
             residency: traffic.Residency = traffic.NO_RESIDENCY) -> PassTiming:
    """Simulate one layer-pass on ``arch`` (any variant): SimPy makespan, closed form, actions.

    ``timing=False`` counts the actions only (makespan and closed form 0): used for dense-gated,
    whose cycles are the dense run's. ``residency``: which operands are already on chip and what
    the output writes to DRAM (planned by :mod:`hwsim.sim.residency`; default: all through DRAM).
    ``arch.memory.schedule``: ``isolated`` runs this layer-pass's own SimPy model; ``iteration`` leaves the
    DRAM time to the iteration's schedule (:mod:`hwsim.sim.schedule`, called by the replay).
    """
    p = operand_passes(pass_name, ops.dz_bits, arch.pe.mac_bits)
    tensor_bytes = _tensor_bytes(ops, pass_name, arch, p)
    s_bytes, b_bytes, o_bytes = tensor_bytes
    on_chip = arch.memory.global_buffer_bytes + arch.num_pes * arch.pe.input_buffer_bytes
    rd, wr, _ = traffic.dram_traffic(stream_bytes=s_bytes, broadcast_bytes=b_bytes, out_bytes=o_bytes,
                                     on_chip_bytes=on_chip, residency=residency)
    if arch.is_systolic:
        mult_cycles, acts, operand_bytes = _systolic(ops, pass_name, arch, p, macs_dense=macs_dense,
                                                     macs_effectual=macs_effectual)
        conflict, red_cycles = np.zeros_like(mult_cycles), 0
    elif arch.pass_dataflow(pass_name) == "dz_gather":  # δz-driven gather (hwsim/sim/gather.py)
        masks = _role_masks(ops, pass_name, arch.zero_skip, lazy=True)
        mult_cycles, acts, red_cycles = gather.run(ops, pass_name, arch, masks, p=p, tensor_bytes=tensor_bytes,
                                                   macs_effectual=macs_effectual)
        conflict = np.zeros_like(mult_cycles)
        operand_bytes = 0.0
    else:
        mult_cycles, conflict, acts, red_cycles = _cartesian_pass(ops, pass_name, arch, rng, p, tensor_bytes)
        operand_bytes = 0.0  # the PEs' own buffers feed the multipliers; the global buffer stages DRAM tiles
    acts = replace(acts, dram_bytes=rd + wr, sram_global_bytes=rd + wr + operand_bytes + residency.global_bytes)
    nb = mult_cycles.shape[0]
    load = np.full(nb, rd / nb) if nb else np.zeros(0)
    store = np.full(nb, wr / nb) if nb else np.zeros(0)
    busy = mult_cycles + conflict
    bw = arch.memory.dram_bytes_per_cycle
    if not timing:
        makespan = 0
    elif arch.memory.schedule == "isolated":
        makespan = simulate_intervals(busy, load, store, dram_bytes_per_cycle=bw)
    else:  # one schedule per iteration (hwsim.sim.schedule) adds the DRAM time to the barrier spans
        makespan = int(busy.max(axis=1).sum()) if busy.size else 0
    analytical = closed_form_cycles(busy, load, store, dram_bytes_per_cycle=bw) + red_cycles if timing else 0
    return PassTiming(mult_cycles=mult_cycles, conflict=conflict, makespan=makespan, analytical=analytical,
                      actions=acts, reduction_cycles=red_cycles if timing else 0, load_bytes=load, store_bytes=store)


def _cartesian_pass(ops: Operands, pass_name: str, arch: Arch, rng: np.random.Generator, p: int,
                    tensor_bytes: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, Actions, int]:
    """(multiplier cycles, conflict cycles, actions, reduction cycles) of one GEMM on the Cartesian ``arch``.

    ``p``: MAC passes; ``tensor_bytes``: (streamed, broadcast, output) bytes in the arch's format.
    The actions leave DRAM and global-buffer bytes uncounted (:func:`run_pass` adds them).
    """
    s_bytes, b_bytes, o_bytes = tensor_bytes
    skip = arch.zero_skip
    masks = _role_masks(ops, pass_name, skip, lazy=True)
    if not skip.any and arch.pe.mac == "parallel":  # every role streamed dense: the mapping follows from the shapes
        kc, cw, red = shape_memo.remember(arch, ("cartesian", shape_memo.shape_key(ops), pass_name),
                                          lambda: _dense_mapping(ops, pass_name, arch, rng, masks))
    else:
        kc = capacity.group_kc(ops, pass_name, arch, masks)
        cw = _cartesian_cached(ops, pass_name, arch, rng, skip, sample=skip.any, kc=kc)
        red = None
    mult_cycles = cw.mult_cycles * p
    rate = 0.0
    if skip.any and cw.stall_units:
        pe = arch.pe
        rate = banks.stall_rate(cw.stall_units, f=pe.mult_f, i=pe.mult_i, banks=pe.accumulator_banks,
                                depth=pe.bank_queue_depth, ports=_port_limit(pe))
    conflict = banks.conflict_cycles(mult_cycles, rate)
    issued = cw.products * p
    if arch.zero_gating:  # zero gating: only products of two non-zero operands toggle the multiplier
        toggled = _cartesian_cached(ops, pass_name, arch, rng, None, sample=False, kc=kc).products * p
    else:
        toggled = issued
    # the δW partial sums reduced across PEs are priced by the reduction network (below), not here; every issued
    # product is scattered to its bank through the crossbar, in the dense baselines too (issue 18: the same Cartesian
    # dataflow on the same silicon; before, only variants that skip zeros paid the crossbar)
    acts = Actions(mult=toggled, add=toggled, acc_access=toggled, reg_read=issued, xbar=issued,
                   sram_input_bytes=s_bytes * cw.stream_reads, sram_weight_bytes=b_bytes * cw.broadcast_reads,
                   sram_output_bytes=o_bytes)
    if arch.pe.mac != "parallel":  # bit_serial / bit_fusion: cycles and bit-ops from the real levels
        pw = precision.precision_work(ops, pass_name, arch, _role_masks(ops, pass_name, skip), kc=kc)
        mult_cycles, conflict = precision.busy_split(pw, rate)
        # a product is multiplied once, however wide its level (no MAC passes)
        acts = replace(acts, mult=0.0, bit_ops=pw.bit_ops, add=pw.products, acc_access=pw.products,
                       reg_read=pw.products, xbar=pw.products)
    red_cycles, red_acts = _exchange(ops, pass_name, arch, masks, cw, kc) if red is None else red
    acts = acts + red_acts
    return mult_cycles, conflict, acts, red_cycles


def _exchange(ops: Operands, pass_name: str, arch: Arch, masks: tuple[np.ndarray, np.ndarray], cw: gemm.CartesianWork,
              kc: int) -> tuple[int, Actions]:
    """(cycles, actions) of what the PEs exchange after the GEMM: the δW reduction (backward-weight) or SCNN's
    output-halo exchange after each output-channel group (hwsim.sim.halo)."""
    if pass_name == "backward_weight":
        return reduction.cost(cw.group_pes, cw.group_values, cw.group_interval, arch)
    out_hw = ops.dz.shape[2:] if pass_name == "forward" else ops.a.shape[2:]
    return halo.cost(capacity.scatter_conv(ops, pass_name, masks), cw.tiling, kc, out_hw, arch)


def _dense_mapping(ops: Operands, pass_name: str, arch: Arch, rng: np.random.Generator,
                   masks: tuple[np.ndarray, np.ndarray]) -> tuple[int, gemm.CartesianWork, tuple[int, Actions]]:
    """(Kc, work, exchange) of a GEMM whose roles are all streamed dense on ``arch``: all-ones masks within the
    layer's connectivity, so the same for every iteration of a run (:mod:`hwsim.sim.shape_memo`)."""
    kc = capacity.group_kc(ops, pass_name, arch, masks)
    cw = _cartesian_cached(ops, pass_name, arch, rng, arch.zero_skip, sample=False, kc=kc)
    return kc, cw, _exchange(ops, pass_name, arch, masks, cw, kc)


def _port_limit(pe: PEConfig) -> int:
    """Products one bank takes per cycle when that binds below the queue's own depth + 1 (else 0: no limit)."""
    return pe.bank_ports if pe.bank_ports < min(pe.multipliers, pe.bank_queue_depth + 1) else 0


def _systolic(ops: Operands, pass_name: str, arch: Arch, p: int, *, macs_dense: int,
              macs_effectual: int) -> tuple[np.ndarray, Actions, float]:
    """(multiplier cycles (folds, 1), actions, global-buffer operand bytes) of one GEMM on a systolic ``arch``.

    All operand traffic of a systolic array goes through its global buffer (SCALE-Sim's model):
    the returned bytes are added to the DRAM staging bytes by :func:`run_pass`.
    """
    m, kr, ncol = _gemm_dims(ops, pass_name)
    plan = _fold_plan(ops, pass_name, arch)
    sched = _scheduled(ops, pass_name, arch)
    mult_cycles = ((plan.column_fold_cycles() if sched is None else sched.column_fold_cycles) * p)[:, None]
    mb, ab = arch.pe.mac_bits, arch.pe.accumulator_bits
    g = ops.groups
    if arch.dataflow == "systolic_ws":   # A streamed per column fold, B loaded once, partial sums per row fold
        a_el, b_el, o_el = plan.col_folds * m * kr, kr * ncol, plan.row_folds * m * ncol
    else:                                # OS: A per column fold, B per row fold, outputs once
        a_el, b_el, o_el = plan.col_folds * m * kr, plan.row_folds * kr * ncol, m * ncol
    issued = macs_dense if sched is None else sched.products  # TensorDash: products of the scheduled non-zeros
    toggled = (macs_effectual if arch.zero_gating else issued) * p
    acts = Actions(mult=toggled, add=toggled, acc_access=toggled, reg_read=issued * p, xbar=issued * p,
                   sram_input_bytes=0.0, sram_weight_bytes=0.0, sram_output_bytes=0.0)
    return mult_cycles, acts, g * (a_el * mb * p + b_el * mb + o_el * ab) / 8


def _gemm_dims(ops: Operands, pass_name: str) -> tuple[int, int, int]:
    """(M, Kr, Ncol) of one conv group's GEMM of ``pass_name`` (:func:`hwsim.sim.systolic.gemm_dims`)."""
    n, k, pp, qq = ops.dz.shape
    r, s = ops.kernel
    return systolic.gemm_dims(pass_name, n=n, k=k // ops.groups, c=ops.a.shape[1] // ops.groups, p=pp, q=qq, r=r, s=s)


def _fold_plan(ops: Operands, pass_name: str, arch: Arch) -> systolic.FoldPlan:
    """The fold plan of ``pass_name``'s GEMM (every conv group) on the systolic ``arch``."""
    m, kr, ncol = _gemm_dims(ops, pass_name)
    return systolic.fold_plan(arch.pass_dataflow(pass_name), m=m, kr=kr, ncol=ncol, rows=arch.pe_array.rows,
                              cols=arch.pe_array.cols, repeat=ops.groups, os_drain=arch.pe.systolic_os_drain,
                              lanes=arch.pe.mult_i)


def _scheduled(ops: Operands, pass_name: str, arch: Arch) -> tensordash.ScheduledWork | None:
    """The TensorDash-style schedule of ``pass_name`` on ``arch`` (None: no scheduler, or a dense pass), cached
    per layer with the GEMM work (dropped by :func:`drop_work_cache`)."""
    if not arch.schedules_operands:
        return None
    td, pe = arch.tensordash, arch.pe
    key = ("cw", "tensordash", pass_name, arch.pe_array.rows, arch.pe_array.cols, pe.mult_i, pe.systolic_os_drain,
           td.lookahead, td.lookaside, td.backward_weight_operand, arch.zero_skip.activations, arch.zero_skip.gradients)
    if key not in ops.memo:
        ops.memo[key] = tensordash.schedule(ops, pass_name, arch, _fold_plan(ops, pass_name, arch))
    return ops.memo[key]
