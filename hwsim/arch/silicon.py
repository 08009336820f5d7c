"""Area and leakage of a whole architecture, from its ``area:`` table (:mod:`hwsim.arch.area` says what is counted)."""

from __future__ import annotations

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
    if arch.is_systolic:
        out.update(adders=npe * add, accumulators=0.0, crossbar=0.0, pe_sram=0.0, quantizer=0.0, vector=vector)
        return out
    bufs = (pe.input_buffer_bytes, pe.output_buffer_bytes, pe.weight_fifo_bytes)
    acc_bytes = pe.accumulator_banks * pe.accumulator_bank_entries * pe.accumulator_bits / 8
    out.update(adders=npe * pe.accumulator_banks * add,
               accumulators=npe * acc_bytes / kb * t.accumulator_um2_per_kb,
               crossbar=npe * pe.multipliers * pe.accumulator_banks * 2 * pe.mac_bits * t.crossbar_um2_per_bit,
               pe_sram=npe * sum(b / kb * t.sram_um2_per_kb(b, arch.energy) for b in bufs),
               quantizer=npe * arch.quantizer.lanes_per_pe * t.quantizer_lane_um2, vector=vector)
    return out


def area_mm2(arch: Arch) -> float:
    """Total area of ``arch`` (mm²)."""
    return sum(area_breakdown_um2(arch).values()) / 1e6


def leakage_mw(arch: Arch) -> float:
    """Leakage power of ``arch`` (mW) = area × ``area.leakage_mw_per_mm2``."""
    return area_mm2(arch) * arch.area.leakage_mw_per_mm2


__all__ = ["area_breakdown_um2", "area_mm2", "leakage_mw"]
