"""Energy = Σ action counts × energy table, exactly, split into the five report categories.

The simulator never computes picojoules directly: it counts actions (:data:`ACTIONS`) and this
module prices them with the architecture's table, so a test can recompute every figure from the
counts stored in ``results.json``.

=================  ======================================================  ==================
action             counted per                                             category
=================  ======================================================  ==================
mult               multiply actually toggled (skipped/gated ones excluded) mac
bit_ops            1b×1b partial product of a bit_serial/bit_fusion PE     mac
add                accumulation of a product (accumulator width)            mac
acc_access         accumulator read-modify-write                            accumulator
reg_read           operand-register read feeding a multiplier              accumulator
xbar               product routed through the crossbar (or systolic hop)   crossbar
sram_*_bytes       bytes read/written in each on-chip buffer               sram (by size class)
dram_bytes         bytes moved off chip                                    dram
=================  ======================================================  ==================
"""

from __future__ import annotations

from collections.abc import Mapping

from hwsim.results import EnergyBreakdown

ACTIONS: tuple[str, ...] = ("mult", "bit_ops", "add", "acc_access", "reg_read", "xbar", "sram_input_bytes",
                            "sram_weight_bytes", "sram_output_bytes", "sram_global_bytes", "dram_bytes")


def buffer_sizes(arch) -> dict[str, int]:
    """Size (bytes) of the buffer behind each ``sram_*_bytes`` action, which picks its price class."""
    return {
        "sram_input_bytes": arch.pe.input_buffer_bytes,
        "sram_weight_bytes": arch.pe.weight_fifo_bytes,
        "sram_output_bytes": arch.pe.output_buffer_bytes,
        "sram_global_bytes": arch.memory.global_buffer_bytes,
    }


def price(actions: Mapping[str, float], arch) -> EnergyBreakdown:
    """Energy of ``actions`` on ``arch`` (pJ), by category."""
    e = arch.energy
    unknown = set(actions) - set(ACTIONS)
    if unknown:
        raise ValueError(f"actions: unknown {sorted(unknown)}; allowed: {ACTIONS}")
    a = {k: float(actions.get(k, 0.0)) for k in ACTIONS}
    sizes = buffer_sizes(arch)
    sram = sum(a[k] / 8 * e.sram_pj_per_64b(sizes[k]) for k in sizes)
    return EnergyBreakdown(
        mac=a["mult"] * e.mult_pj_for(arch.pe.mac_bits) + a["bit_ops"] * e.bit_op_pj
        + a["add"] * e.add_pj_for(arch.pe.accumulator_bits),
        accumulator=a["acc_access"] * e.accumulator_access_pj + a["reg_read"] * e.register_pj,
        sram=sram,
        crossbar=a["xbar"] * e.crossbar_pj_per_product,
        dram=a["dram_bytes"] / 8 * e.dram_pj_per_64b,
    )
