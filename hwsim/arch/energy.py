"""Energy per action (pJ), with the Horowitz (ISSCC 2014, 45 nm) numbers as defaults.

The simulator counts actions; this table prices them. Energy = Σ count × price exactly, so every
price is a YAML field and the lookup helpers below are the only rounding rules: an operation on
b bits costs the entry of the smallest tabulated width >= b (an 8-bit multiply on a 16-bit
multiplier is not cheaper than the multiplier), and an SRAM access is priced by the size class of
the buffer it reads (≤ 8 KB small, ≤ 32 KB medium, larger = the ~1 MB figure).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from hwsim.arch.errors import ArchError
from hwsim.arch.fields import Validated, spec

# Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm, 0.9 V (pJ per operation).
# 16-bit integer entries are not in the paper: multiply scales ~quadratically with width
# (0.2·(16/8)² = 0.8), add ~linearly between the 8- and 32-bit figures (0.05).
HOROWITZ_45NM: dict[str, Any] = {
    "mult_pj": {8: 0.2, 16: 0.8, 32: 3.1},
    "add_pj": {8: 0.03, 16: 0.05, 32: 0.1},
    "fp_mult_pj": {16: 1.1, 32: 3.7},
    "fp_add_pj": {16: 0.4, 32: 0.9},
    "sram_small_pj_per_64b": 10.0,    # 8 KB SRAM, 64-bit read
    "sram_medium_pj_per_64b": 20.0,   # 32 KB
    "sram_large_pj_per_64b": 100.0,   # 1 MB
    "dram_pj_per_64b": 1300.0,        # 1300–2600 in the paper; the low end
}
# One 1-bit × 1-bit partial product (AND + full-adder cell): an 8×8 array multiplier is 64 of them,
# so Horowitz's int8 multiply gives 0.2 / 64 pJ. A bit-serial lane step (1 bit × 8 bits) is 8
# bit-ops, a 2×2 BitBrick 4: every multiplier kind is priced from the same measured figure.
BIT_OP_PJ = HOROWITZ_45NM["mult_pj"][8] / 64
# A bank-queue entry written and read once per product: two small register-file accesses, each priced like the
# operand-register read of the shipped tables (register_pj 0.1; hwsim estimate, as that figure is).
BANK_QUEUE_PJ = 0.2


def _covering(table: Mapping[int, float], bits: int, *, key: str) -> float:
    widths = list(table)
    i = bisect.bisect_left(widths, int(bits))
    if bits < 1 or i == len(widths):
        raise ArchError(f"no entry covers {bits}-bit operands", key=key,
                        allowed=f"bits 1..{widths[-1]} (tabulated: {widths})")
    return table[widths[i]]


@dataclass(frozen=True, kw_only=True)
class EnergyTable(Validated):
    """pJ per action. Integer ops are keyed by operand bits; memory by 64-bit access."""

    mult_pj: Mapping[int, float] = spec(doc="integer multiply by operand bits (must cover mac_bits)")
    add_pj: Mapping[int, float] = spec(doc="integer add by accumulator bits")
    accumulator_access_pj: float = spec(ge=0, doc="one read-modify-write of an accumulator bank entry")
    register_pj: float = spec(ge=0, doc="operand register read per product")
    crossbar_pj_per_product: float = spec(ge=0, doc="routing one product through the crossbar")
    sram_small_pj_per_64b: float = spec(ge=0, doc="SRAM <= sram_small_max_bytes, 64-bit access")
    sram_medium_pj_per_64b: float = spec(ge=0, doc="SRAM <= sram_medium_max_bytes, 64-bit access")
    sram_large_pj_per_64b: float = spec(ge=0, doc="larger SRAM (~1 MB), 64-bit access")
    dram_pj_per_64b: float = spec(ge=0, doc="DRAM, 64-bit access")
    # Added fields (optional in YAML; defaults from Horowitz 2014).
    sram_small_max_bytes: int = spec(ge=1, default=8192, doc="largest buffer priced as small SRAM")
    sram_medium_max_bytes: int = spec(ge=1, default=32768, doc="largest buffer priced as medium SRAM")
    fp_mult_pj: Mapping[int, float] = spec(default_factory=lambda: MappingProxyType(
        dict(HOROWITZ_45NM["fp_mult_pj"])), doc="float multiply by bits (fp16, fp32)")
    fp_add_pj: Mapping[int, float] = spec(default_factory=lambda: MappingProxyType(
        dict(HOROWITZ_45NM["fp_add_pj"])), doc="float add by bits (fp16, fp32)")
    # Issue 18 item 5: the accumulator-bank queues were free. Every product routed to a bank is written into the
    # bank's queue and read out of it (Cartesian arrays with pe.bank_queue_depth > 0; priced with the crossbar).
    bank_queue_pj_per_product: float = spec(ge=0, default=BANK_QUEUE_PJ, doc="bank-queue write + read of one "
                                            "product (with pe.bank_queue_depth > 0)")
    bit_op_pj: float = spec(ge=0, default=BIT_OP_PJ, omit_default=True,
                            doc="one 1b×1b partial product of a bit_serial / bit_fusion multiplier")

    def _check(self) -> None:
        if self.sram_medium_max_bytes < self.sram_small_max_bytes:
            raise ArchError(f"{self.sram_medium_max_bytes} is below sram_small_max_bytes="
                            f"{self.sram_small_max_bytes}", key="EnergyTable.sram_medium_max_bytes",
                            field="sram_medium_max_bytes", allowed=f"integer >= {self.sram_small_max_bytes}")

    def __hash__(self) -> int:  # the mappings are read-only proxies: hash their items
        return hash(tuple(tuple(v.items()) if isinstance(v, Mapping) else v for v in self.to_dict().values()))

    # lookups ----------------------------------------------------------------------
    def mult_pj_for(self, bits: int) -> float:
        """pJ of one integer multiply of ``bits``-bit operands (smallest tabulated width >= bits)."""
        return _covering(self.mult_pj, bits, key="energy.mult_pj")

    def add_pj_for(self, bits: int) -> float:
        """pJ of one integer add at ``bits`` bits (smallest tabulated width >= bits)."""
        return _covering(self.add_pj, bits, key="energy.add_pj")

    def fp_mult_pj_for(self, bits: int) -> float:
        return _covering(self.fp_mult_pj, bits, key="energy.fp_mult_pj")

    def fp_add_pj_for(self, bits: int) -> float:
        return _covering(self.fp_add_pj, bits, key="energy.fp_add_pj")

    def sram_pj_per_64b(self, buffer_bytes: int) -> float:
        """pJ of one 64-bit access to an SRAM of ``buffer_bytes`` (priced by size class)."""
        if buffer_bytes <= self.sram_small_max_bytes:
            return self.sram_small_pj_per_64b
        if buffer_bytes <= self.sram_medium_max_bytes:
            return self.sram_medium_pj_per_64b
        return self.sram_large_pj_per_64b

    def max_mult_bits(self) -> int:
        return max(self.mult_pj)

    def max_add_bits(self) -> int:
        return max(self.add_pj)
