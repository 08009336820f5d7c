"""Area by component (hwsim/arch/silicon.py, the table of hwsim/arch/area.py), worked out by hand for the shipped
designs: the area sets the equal-area dense baseline and the leakage energy, so each component is pinned.

Unit areas (arch/area.py): int8 multiplier 282 µm², 32-bit adder 137 µm² (a 24-bit accumulator takes the 32-bit
entry), SRAM 9,450 / 5,670 / 4,050 µm² per KB (≤ 8 KB / ≤ 32 KB / larger), accumulator and bank-queue storage
28,350 µm²/KB, a crosspoint bit 1.862 µm², an NSD lane 1,640 + 1,360 + 1,128 + 67 = 4,195 µm², a vector lane
11,884 µm², leakage 20 mW/mm².
"""

from __future__ import annotations

import pytest

from hwsim.arch import ArchError, load_arch
from hwsim.arch.area import QUANTIZER_LANE_UM2, AreaTable
from hwsim.arch.silicon import area_breakdown_um2, area_mm2, bank_address_bits, leakage_mw

# scnn: 8×8 PEs of 4×4 int8 multipliers, 32 banks × 32 entries of 24 bits, bank queues 4 deep, 10 KB input and
# output buffers, a 500 B weight FIFO, a 1 MB global buffer, one NSD lane and one vector lane per PE
SCNN = {
    "multipliers": 1024 * 282.0,
    "global_sram": 1024 * 4050.0,                          # 1 MB: the large class
    "adders": 64 * 32 * 137.0,                             # one adder per bank
    "accumulators": 64 * 3 * 28_350.0,                     # 32 · 32 · 24 bits = 3 KB per PE
    "crossbar": 64 * 16 * 32 * 5 * 16 * 1.862,             # F·I × banks × 5 ports (depth + 1) × 16-bit products
    "bank_queues": 64 * (32 * 4 * (16 + 5) / 8 / 1024) * 28_350.0,   # 16-bit product + 5 address bits an entry
    "pe_sram": 64 * (10 * 5670.0 + 10 * 5670.0 + 500 / 1024 * 9450.0),  # 10 KB medium ×2, 500 B small
    "quantizer": 64 * 4195.0,
    "vector": 64 * 11_884.0,
}


def test_scnn_area_by_component():
    got = area_breakdown_um2(load_arch("scnn"))
    assert got == pytest.approx(SCNN) and set(got) == set(SCNN)
    assert QUANTIZER_LANE_UM2 == 1640.0 + 1360.0 + 1128.0 + 67.0
    total = sum(SCNN.values()) / 1e6                        # 24.218 mm²
    assert area_mm2(load_arch("scnn")) == pytest.approx(total)
    assert leakage_mw(load_arch("scnn")) == pytest.approx(total * 20.0)   # 484.4 mW


def test_a_systolic_array_has_no_pe_sram_and_one_vector_lane_per_column():
    # systolic32: 32×32 one-MAC PEs, 32-bit accumulators, a 192 KB global buffer (the large class)
    got = area_breakdown_um2(load_arch("systolic32"))
    assert got == pytest.approx({"multipliers": 1024 * 282.0, "global_sram": 192 * 4050.0,
                                 "adders": 1024 * 137.0, "accumulators": 0.0, "crossbar": 0.0, "bank_queues": 0.0,
                                 "pe_sram": 0.0, "quantizer": 0.0, "vector": 32 * 11_884.0})


def test_a_tensordash_array_pays_its_muxes_staging_and_nsd_lanes():
    # 8×8 PEs of 16 lanes; lookahead 2, lookaside 5: 8-input muxes, 7 2:1 muxes a bit, 2 per lane, 8 bits wide;
    # staging: 2 operands × 3 entries × 1 byte per lane; it consumes δ̃z, so it carries one NSD lane per PE;
    # its vector unit: 4 lanes per column of its 8 columns (systolic32's 32 lanes)
    got = area_breakdown_um2(load_arch("tensordash"))
    assert got["td_mux"] == pytest.approx(1024 * 2 * 7 * 8 * 1.862)
    assert got["td_staging"] == pytest.approx(1024 * 6 / 1024 * 28_350.0)
    assert got["quantizer"] == 64 * 4195.0 and got["vector"] == 4 * 8 * 11_884.0 and got["adders"] == 1024 * 137.0
    # scheduling only forward operands: no δ̃z consumed, no NSD unit
    assert area_breakdown_um2(load_arch("tensordash", {"zero_skip.gradients": False}))["quantizer"] == 0.0


def test_the_gather_unit_is_charged_only_where_a_pass_gathers():
    # training: scnn's silicon + per PE a 2 KB work queue (small SRAM) and a compactor of F·I = 16 lanes × 64
    # inputs × 8 bits of crosspoints
    got = area_breakdown_um2(load_arch("training"))
    assert got["gather_queue"] == pytest.approx(64 * 2 * 9450.0)
    assert got["gather_compactor"] == pytest.approx(64 * 16 * 64 * 8 * 1.862)
    assert {k: v for k, v in got.items() if not k.startswith("gather")} == pytest.approx(SCNN)
    assert "gather_queue" not in area_breakdown_um2(load_arch("scnn"))


def test_each_pe_buffer_is_priced_by_its_own_size_class():
    # 8 KB input buffer: small; 32 KB output buffer: medium; 1 KB FIFO: small
    arch = load_arch("scnn", {"pe.input_buffer_bytes": 8192, "pe.output_buffer_bytes": 32768,
                              "pe.weight_fifo_bytes": 1024})
    assert area_breakdown_um2(arch)["pe_sram"] == pytest.approx(64 * (8 * 9450.0 + 32 * 5670.0 + 1 * 9450.0))


def test_widths_pick_the_covering_table_entry():
    # 12-bit MACs are priced as the 16-bit multiplier (1,128 µm²); 32-bit accumulators as the 32-bit adder
    arch = load_arch("scnn", {"pe.mac_bits": 12, "pe.accumulator_bits": 32})
    got = area_breakdown_um2(arch)
    assert got["multipliers"] == 1024 * 1128.0 and got["adders"] == 64 * 32 * 137.0
    # a table that does not cover the width is refused when the arch is loaded, not when a run prices its area
    with pytest.raises(ArchError, match=r"area\.mult_um2: no entry covers mac_bits=16 \(tabulated: \[8\]\); "
                                        r"allowed: a key >= 16$"):
        load_arch("scnn", {"pe.mac_bits": 16, "area.mult_um2": {8: 282.0}})


@pytest.mark.parametrize("size,per_kb", [(500, 9450.0), (8192, 9450.0), (8193, 5670.0), (32768, 5670.0),
                                         (32769, 4050.0), (1 << 20, 4050.0)])
def test_sram_size_classes_follow_the_energy_table_bounds(size, per_kb):
    arch = load_arch("scnn")
    assert arch.area.sram_um2_per_kb(size, arch.energy) == per_kb
    assert AreaTable().sram_um2_per_kb(size, arch.energy) == per_kb


@pytest.mark.parametrize("entries,bits", [(1, 1), (2, 1), (3, 2), (32, 5), (33, 6), (1024, 10)])
def test_bank_address_bits(entries, bits):
    assert bank_address_bits(load_arch("scnn", {"pe.accumulator_bank_entries": entries})) == bits


def test_leakage_scales_with_the_table_density():
    base, hot = load_arch("scnn"), load_arch("scnn", {"area.leakage_mw_per_mm2": 40.0})
    assert leakage_mw(hot) == pytest.approx(2 * leakage_mw(base)) and area_mm2(hot) == area_mm2(base)
