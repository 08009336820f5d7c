"""``hwsim validate FILE...``: check architecture YAML files and print what they describe."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hwsim.arch import Arch, PEConfig

HELP = "check architecture YAML files and summarise them (PEs, multipliers, buffers, energy table)"
DESCRIPTION = (
    "Load each architecture file (or shipped name, e.g. 'scnn') through the same validator the simulator "
    "uses and print a summary. Any error names the file, the key path and what is allowed; exit code 2."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="architecture YAML file or shipped name")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a field before validation, e.g. pe.mac_bits=16 (repeatable)")
    parser.add_argument("--hash", action="store_true", help="print only '<content hash>  <file>' per file")


def _kib(n: int) -> str:
    return f"{n / 1024:g} KB" if n >= 1024 else f"{n} B"


def _mac_line(pe: PEConfig) -> str:
    lanes = pe.serial_lanes or ("F or I" if pe.mult_f != pe.mult_i else pe.mult_f)
    if pe.mac == "bit_serial":
        sign = "sign cycle" if pe.serial_sign_cycle else "free sign"
        return (f"  mac           bit_serial ({pe.bit_serial_mode}, {sign}): {pe.multipliers * pe.mac_bits} "
                f"one-bit lanes per PE, {lanes} serial values in lock-step")
    return (f"  mac           bit_fusion: {pe.multipliers} units of {(pe.mac_bits // pe.brick_bits) ** 2} "
            f"{pe.brick_bits}-bit bricks, widths {list(pe.bit_fusion_widths)}, {lanes} serial values in lock-step")


def _cost_lines(arch: Arch) -> list[str]:
    """Area, leakage, δW reduction network and NSD unit (issue 10)."""
    from hwsim.arch import VECTOR_OPS, area_breakdown_um2, area_mm2, leakage_mw

    parts = ", ".join(f"{k} {v / 1e6:.3f}" for k, v in area_breakdown_um2(arch).items() if v)
    r, q = arch.reduction, arch.quantizer
    lines = [
        f"  area          {area_mm2(arch):.2f} mm² (45 nm table: {parts}); leakage {leakage_mw(arch):.1f} mW "
        f"({arch.area.leakage_mw_per_mm2:g} mW/mm²)",
        f"  δW reduction  {r.network}, {r.adders_per_pe} adders/PE, links {r.link_bytes_per_cycle:g} B/cycle, "
        f"global port {r.global_bytes_per_cycle:g} B/cycle, {r.link_pj_per_byte:g} pJ/B",
        f"  NSD unit      {q.lanes_per_pe * arch.num_pes} lanes ({q.lanes_per_pe}/PE), {q.rng} {q.rng_bits}-bit RNG; "
        f"pJ/element std {q.std_pj_per_element:g}, rng {q.rng_pj_per_element:g}, quantize "
        f"{q.quantize_pj_per_element:g}; top-k compare {q.compare_pj:g}",
        f"                σ {q.sigma} ({'two passes' if q.sigma == 'current' else 'one pass'}), overlap {q.overlap}, "
        f"booked on {q.booked_on}, skip zeros {str(q.skip_zeros).lower()}, capacity check "
        f"{str(q.check_capacity).lower()}",
    ]
    v = arch.vector
    vec = (f"  vector unit   {arch.vector_lanes} fp{v.compute_bits} lanes ({v.lanes_per_pe}/"
           + ("column" if arch.is_systolic else "PE") + "); pJ/op "
           + ", ".join(f"{op} {v.op_pj(op):g}" for op in VECTOR_OPS)
           + f"; cycles exp {v.exp_cycles}, div {v.div_cycles}, sqrt {v.sqrt_cycles}; non-GEMM work "
           + ("overlapped with the array" if v.overlap_nongemm else "after each GEMM")
           + (", pointwise ops fused" if v.fuse_pointwise else ", no fusion"))
    u = arch.update
    upd = (f"  weight update W {u.master_weight_bits}-bit, state {u.state_bits}-bit, "
           + ("on chip when they fit" if u.on_chip else "in DRAM") + f"; optimizer {u.default_optimizer} unless the "
           "trace names one")
    # systolic: no cross-PE δW sums, no NSD unit
    return [*(lines[:1] if arch.is_systolic else lines), vec, upd]


def _buffers(n: int) -> str:
    """``memory.tile_buffers`` in words: how far the loader may run ahead of the array."""
    if n == 1:
        return "1 tile buffer (each load waits for the previous interval's compute)"
    return f"{n} tile buffers (the loader at most {n - 1} interval{'s' * (n != 2)} ahead)"


def _memory_lines(arch: Arch) -> list[str]:
    """The memory policies (issue 17 item 2, hwsim/sim/residency.py) and the capacity they may use."""
    from hwsim.arch.policy import memory_policy

    mem, pe = arch.memory, arch.pe
    d = arch.to_dict()
    d["memory"].pop("schedule", None)  # on the line above
    lines = [f"  memory policy {memory_policy(d)}"]
    if mem.inter_layer_residency:
        pools = [] if arch.is_systolic else \
            [f"{_kib(pe.input_buffer_bytes + pe.output_buffer_bytes)} per PE (input + output RAM) × {arch.num_pes}"]
        if mem.residency_in_global_buffer:
            pools.append(f"global buffer {_kib(mem.global_buffer_bytes)}")
        lines.append(f"  on-chip pool  {' + '.join(pools) or 'none'}; greedy placement in execution order")
    return lines


def summary(arch: Arch) -> str:
    """Multi-line human summary of an architecture."""
    pe, mem, e = arch.pe, arch.memory, arch.energy
    skip = [r for r in ("weights", "activations", "gradients") if getattr(arch.zero_skip, r)]
    lines = [
        f"{arch.name} ({arch.source}) — valid, version {arch.version}, hash {arch.content_hash()[:16]}",
        f"  dataflow      {arch.dataflow} ({arch.variant}), {arch.clock_ghz:g} GHz",
        f"  PEs           {arch.pe_array.rows}×{arch.pe_array.cols} = {arch.num_pes}",
        f"  multipliers   {pe.mult_f}×{pe.mult_i} per PE, {arch.total_multipliers} total, {pe.mac_bits}-bit, "
        f"{pe.accumulator_bits}-bit accumulators",
        *([_mac_line(pe)] if pe.mac != "parallel" else []),
        f"  accumulators  {pe.accumulator_banks} banks × {pe.accumulator_bank_entries} entries, "
        f"queue depth {pe.bank_queue_depth}, Kc = {pe.output_channel_group}",
        f"  zero skip     {', '.join(skip) or 'none'}; zero gating {'on' if arch.zero_gating else 'off'}",
        *([f"  scheduler     TensorDash-style: lookahead {arch.tensordash.lookahead}, lookaside "
           f"{arch.tensordash.lookaside} ({arch.tensordash.mux_inputs}-input muxes), backward-weight operand "
           f"{arch.tensordash.backward_weight_operand}"] if arch.schedules_operands else []),
        f"  PE buffers    input {_kib(pe.input_buffer_bytes)}, output {_kib(pe.output_buffer_bytes)}, "
        f"weight FIFO {_kib(pe.weight_fifo_bytes)}",
        f"  global buffer {_kib(mem.global_buffer_bytes)}; DRAM {mem.dram_bytes_per_cycle:g} B/cycle; "
        f"compression {mem.compression}" + (f" ({mem.run_length_bits}-bit runs)" if mem.compression == "run_length" else ""),
        f"  schedule      {mem.schedule} ("
        + ("one SimPy schedule per training iteration" if mem.schedule == "iteration"
           else "each layer-pass its own SimPy run") + ")"
        + (f"; DRAM arbiter {mem.dram_arbiter} ("
           + ("loads before write-backs until a tile buffer is needed" if mem.dram_arbiter == "reads_first"
              else "first come, first served") + f"); {_buffers(mem.tile_buffers)}" if mem.schedule == "iteration"
           else f"; DRAM arbiter {mem.dram_arbiter} and tile buffers unused (first come, first served, 2 buffers, "
                "per layer-pass)"),
        *_memory_lines(arch),
        "  energy (pJ)",
        f"    mult        {dict(e.mult_pj)} (at {pe.mac_bits} bits: {e.mult_pj_for(pe.mac_bits):g})",
        f"    add         {dict(e.add_pj)} (at {pe.accumulator_bits} bits: {e.add_pj_for(pe.accumulator_bits):g})",
        f"    accumulator {e.accumulator_access_pj:g}, register {e.register_pj:g}, crossbar {e.crossbar_pj_per_product:g}",
        f"    SRAM/64b    small {e.sram_small_pj_per_64b:g} (≤ {_kib(e.sram_small_max_bytes)}), medium "
        f"{e.sram_medium_pj_per_64b:g} (≤ {_kib(e.sram_medium_max_bytes)}), large {e.sram_large_pj_per_64b:g}",
        f"    DRAM/64b    {e.dram_pj_per_64b:g}",
        *([f"    bit-op      {e.bit_op_pj:g} (1b×1b partial product)"] if pe.mac != "parallel" else []),
        *_cost_lines(arch),
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from hwsim.arch import ArchError, load_arch, parse_overrides

    overrides = parse_overrides(args.overrides)
    failed = 0
    for f in args.files:
        try:
            arch = load_arch(f, overrides or None)
        except ArchError as e:
            print(f"hwsim validate: error: {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"{arch.content_hash()}  {arch.source}" if args.hash else summary(arch))
    return 2 if failed else 0
