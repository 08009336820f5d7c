"""Silicon area and leakage of an architecture (the ``area:`` YAML section).

Area is a sum of components, each a count × a tabulated unit area (µm², 45 nm):

=============  ==============================================================================
multipliers    total multipliers × ``mult_um2`` at ``pe.mac_bits`` (bit-serial / bit-fusion PEs
               have the area of F×I mac_bits multipliers by construction, see ``PEConfig.mac``)
adders         Cartesian: one accumulator adder per bank per PE; systolic: one per multiplier lane (the MAC, or
               a PE's ``mult_i``-lane dot product: mult_i − 1 tree adders and its accumulator)
accumulators   Cartesian: banks × entries × accumulator_bits per PE, at ``accumulator_um2_per_kb``
crossbar       Cartesian: (F·I) × banks × ``pe.bank_ports`` crosspoints per PE, 2·mac_bits wide (a product): a
               bank that takes k products in one cycle needs k crossbar outputs (issue 18: before, one was charged
               while the queue model took up to depth + 1)
bank_queues    Cartesian: banks × ``pe.bank_queue_depth`` queue entries per PE, each a product (2·mac_bits) and
               its entry address in the bank (⌈log2 accumulator_bank_entries⌉ bits), at ``bank_queue_um2_per_kb``
               (issue 18: the queues that absorb conflict bursts were free before)
pe_sram        Cartesian: input + output buffer + weight FIFO per PE, per KB by SRAM size class
               (systolic PEs hold registers only: no per-PE SRAM)
global_sram    the global buffer, per KB by size class
quantizer      Cartesian: ``quantizer.lanes_per_pe`` NSD lanes per PE (the dense baselines are the
               same silicon, so they carry it too; a systolic design has none, but for one that schedules
               δ̃z, TensorDash-style: it pays the NSD unit, :mod:`hwsim.sim.nsd_unit`)
gather_queue   only if a pass uses ``dz_gather``: ``gather.queue_bytes_per_pe`` of SRAM per PE
gather_        only if a pass uses ``dz_gather``: F·I lanes × ``gather.compactor_inputs`` inputs ×
compactor      mac_bits crosspoints per PE at ``crossbar_um2_per_bit`` (the operand compactor; the
               products reuse the Cartesian PE's scatter crossbar to its accumulator banks)
td_mux         only on a systolic_os array that schedules operands (TensorDash, :mod:`hwsim.arch.tensordash`):
               per multiplier two (lookahead + 1 + lookaside)-input muxes (scheduled operand and its partner),
               mac_bits wide, each (inputs − 1) 2:1 muxes per bit at ``crossbar_um2_per_bit``
td_staging     same arrays: per multiplier the two operands' (lookahead + 1)-deep staging windows, mac_bits
               each, register storage at ``bank_queue_um2_per_kb`` (the scheduler's priority logic is not counted)
vector         the vector unit's lanes (:attr:`Arch.vector_lanes`) × ``vector.lane_um2``
               (:mod:`hwsim.arch.vector`; every design has one: the weight update runs on it)
=============  ==============================================================================

Wires of the reduction network and control are not counted. Leakage power = total area ×
``leakage_mw_per_mm2``; leakage energy of a run = power × cycles / clock (mW · ns = pJ), charged
to every variant on its own silicon (:mod:`hwsim.sim.energy`), so energy grows with cycles — a
bandwidth-starved or larger array pays for its idle time. This module holds the unit-area table; the
functions of a whole architecture (area by component, total area, leakage) are in :mod:`hwsim.arch.silicon`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from hwsim.arch.energy import EnergyTable
from hwsim.arch.fields import Validated, spec

# Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm (µm²): int8/16/32 add 36/67/137,
# int8/32 mult 282/3495 (int16 mult not given: 282·(16/8)² = 1128, quadratic as for its energy),
# fp16 add 1360, fp16 mult 1640.
HOROWITZ_AREA_UM2 = {"mult": {8: 282.0, 16: 1128.0, 32: 3495.0}, "add": {8: 36.0, 16: 67.0, 32: 137.0},
                     "fp16_add": 1360.0, "fp16_mult": 1640.0}
# 45 nm 6T SRAM bit cell 0.346 µm² (Intel 45 nm, Mistry et al., IEDM 2007) = 2,834 µm² of cells per KB;
# array efficiency (cells / macro area) assumed 30 % for ≤ 8 KB, 50 % for ≤ 32 KB, 70 % for ~1 MB macros
# (periphery amortised over larger arrays; hwsim estimate, CACTI trend).
_CELL_UM2_PER_KB = 0.346 * 8192
SRAM_UM2_PER_KB = {k: round(_CELL_UM2_PER_KB / eff, -1) for k, eff in (("small", 0.3), ("medium", 0.5),
                                                                         ("large", 0.7))}  # 9450, 5670, 4050
# Accumulator banks are multi-ported register files read-modified-written every cycle: latch/flop
# storage ≈ 3× a small SRAM per bit (hwsim estimate).
ACCUMULATOR_UM2_PER_KB = 3 * SRAM_UM2_PER_KB["small"]
# Bank-queue entries are flop/latch FIFO storage written and read every cycle, like the accumulator banks: priced
# as the same multi-ported register file per bit (hwsim estimate).
BANK_QUEUE_UM2_PER_KB = ACCUMULATOR_UM2_PER_KB
# One crosspoint bit ≈ one 2:1 mux (Nangate 45 nm open cell library MUX2_X1: 1.862 µm²).
CROSSBAR_UM2_PER_BIT = 1.862
# One NSD lane: fp16 mult + fp16 add (std and quantize passes share them) + an int16 mult + add (LCG).
QUANTIZER_LANE_UM2 = (HOROWITZ_AREA_UM2["fp16_mult"] + HOROWITZ_AREA_UM2["fp16_add"]
                      + HOROWITZ_AREA_UM2["mult"][16] + HOROWITZ_AREA_UM2["add"][16])
# Leakage: Nangate 45 nm open cell library, typical corner, NAND2_X1 ≈ 17 nW in 0.798 µm² ≈ 20 mW/mm²
# (logic; hwsim applies it to SRAM too — a high-performance 45 nm process, order of magnitude).
LEAKAGE_MW_PER_MM2 = 20.0


@dataclass(frozen=True, kw_only=True)
class AreaTable(Validated):
    """Unit areas (µm², 45 nm) and leakage power density (module doc)."""

    mult_um2: Mapping[int, float] = spec(default_factory=lambda: MappingProxyType(dict(HOROWITZ_AREA_UM2["mult"])),
                                         doc="integer multiplier by operand bits")
    add_um2: Mapping[int, float] = spec(default_factory=lambda: MappingProxyType(dict(HOROWITZ_AREA_UM2["add"])),
                                        doc="integer adder by bits")
    sram_small_um2_per_kb: float = spec(ge=0, default=SRAM_UM2_PER_KB["small"], doc="SRAM <= sram_small_max_bytes")
    sram_medium_um2_per_kb: float = spec(ge=0, default=SRAM_UM2_PER_KB["medium"],
                                         doc="SRAM <= sram_medium_max_bytes")
    sram_large_um2_per_kb: float = spec(ge=0, default=SRAM_UM2_PER_KB["large"], doc="larger SRAM")
    accumulator_um2_per_kb: float = spec(ge=0, default=ACCUMULATOR_UM2_PER_KB, doc="accumulator bank storage")
    crossbar_um2_per_bit: float = spec(ge=0, default=CROSSBAR_UM2_PER_BIT, doc="one crosspoint, one bit wide")
    bank_queue_um2_per_kb: float = spec(ge=0, default=BANK_QUEUE_UM2_PER_KB, doc="accumulator-bank queue storage")
    quantizer_lane_um2: float = spec(ge=0, default=QUANTIZER_LANE_UM2, doc="one NSD lane")
    leakage_mw_per_mm2: float = spec(ge=0, default=LEAKAGE_MW_PER_MM2, doc="leakage power per mm²")

    def __hash__(self) -> int:
        return hash(tuple(tuple(v.items()) if isinstance(v, Mapping) else v for v in self.to_dict().values()))

    def sram_um2_per_kb(self, buffer_bytes: int, energy: EnergyTable) -> float:
        if buffer_bytes <= energy.sram_small_max_bytes:
            return self.sram_small_um2_per_kb
        if buffer_bytes <= energy.sram_medium_max_bytes:
            return self.sram_medium_um2_per_kb
        return self.sram_large_um2_per_kb
