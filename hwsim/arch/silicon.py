"""Area and leakage of a whole architecture, from its ``area:`` table (:mod:`hwsim.arch.area` says what is counted)."""

from __future__ import annotations

import math

from hwsim.arch.energy import _covering
from hwsim.arch.spec import Arch


def area_breakdown_um2(arch: Arch) -> dict[str, float]:
    """Area of ``arch`` by component, µm² (module doc)."""
    t, pe, npe = arch.area, arch.pe, arch.num_pes
    mult = _covering(t.mult_um2, pe.mac_bits, key="area.mult_um2")
    add = _covering(t.add_um2, pe.accumulator_bits, key="area.add_um2")
    kb = 1024.0
    gb = arch.memory.global_buffer_bytes
    out = {"multipliers": arch.total_multipliers * mult,
           "global_sram": gb / kb * t.sram_um2_per_kb(gb, arch.energy)}
    vector = arch.vector_lanes * arch.vector.lane_um2
    if arch.is_systolic:  # a PE of mult_i dot-product lanes: mult_i − 1 tree adders + its accumulator
        out.update(adders=npe * pe.multipliers * add, accumulators=0.0, crossbar=0.0, bank_queues=0.0, pe_sram=0.0,
                   quantizer=0.0, vector=vector)
        if arch.schedules_operands:  # the TensorDash-style scheduler (hwsim/arch/tensordash.py), sparse variant only
            td, lanes = arch.tensordash, arch.total_multipliers
            out.update(td_mux=lanes * 2 * (td.mux_inputs - 1) * pe.mac_bits * t.crossbar_um2_per_bit,
                       td_staging=lanes * 2 * (td.lookahead + 1) * pe.mac_bits / 8 / kb * t.bank_queue_um2_per_kb)
            if arch.zero_skip.gradients:  # it consumes δ̃z, so it carries the NSD unit that makes it (sim/nsd_unit.py)
                out["quantizer"] = npe * arch.quantizer.lanes_per_pe * t.quantizer_lane_um2
        return out
    bufs = (pe.input_buffer_bytes, pe.output_buffer_bytes, pe.weight_fifo_bytes)
    acc_bytes = pe.accumulator_banks * pe.accumulator_bank_entries * pe.accumulator_bits / 8
    queue_bits = pe.accumulator_banks * pe.bank_queue_depth * (2 * pe.mac_bits + bank_address_bits(arch))
    out.update(adders=npe * pe.accumulator_banks * add,
               accumulators=npe * acc_bytes / kb * t.accumulator_um2_per_kb,
               crossbar=npe * pe.multipliers * pe.accumulator_banks * pe.bank_ports * 2 * pe.mac_bits
               * t.crossbar_um2_per_bit,
               bank_queues=npe * queue_bits / 8 / kb * t.bank_queue_um2_per_kb,
               pe_sram=npe * sum(b / kb * t.sram_um2_per_kb(b, arch.energy) for b in bufs),
               quantizer=npe * arch.quantizer.lanes_per_pe * t.quantizer_lane_um2, vector=vector)
    if arch.dataflow.uses("dz_gather"):  # the gather unit (hwsim/arch/dataflows.py), only where a pass uses it
        g = arch.gather
        out.update(gather_queue=npe * g.queue_bytes_per_pe / kb * t.sram_um2_per_kb(g.queue_bytes_per_pe, arch.energy),
                   gather_compactor=npe * pe.multipliers * g.compactor_inputs * pe.mac_bits * t.crossbar_um2_per_bit)
    return out


def bank_address_bits(arch: Arch) -> int:
    """Bits that name an entry of one accumulator bank (a bank-queue entry carries them beside its product)."""
    return max(1, math.ceil(math.log2(arch.pe.accumulator_bank_entries)))


def area_mm2(arch: Arch) -> float:
    """Total area of ``arch`` (mm²)."""
    return sum(area_breakdown_um2(arch).values()) / 1e6


def leakage_mw(arch: Arch) -> float:
    """Leakage power of ``arch`` (mW) = area × ``area.leakage_mw_per_mm2``."""
    return area_mm2(arch) * arch.area.leakage_mw_per_mm2


__all__ = ["area_breakdown_um2", "area_mm2", "bank_address_bits", "leakage_mw"]
