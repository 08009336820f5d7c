"""Energy = Σ action counts × energy table, exactly, split into the five report categories.

The simulator never computes picojoules directly: it counts actions (an
:class:`~hwsim.results.actions.Actions` record, one field per row below) and this module prices them with the architecture's table, so a test can recompute every figure from the
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
                   (+ its bank queue: ``bank_queue_pj_per_product``, Cartesian arrays with queues;
                   + ``tensordash.mux_pj_per_product`` on an array that schedules operands)
sram_*_bytes       bytes read/written in each on-chip buffer               sram (by size class)
dram_bytes         bytes moved off chip                                    dram
red_add            cross-PE δW reduction add (accumulator width)           reduction
red_acc            accumulator access of the reduction                     reduction
red_link_bytes     bytes over PE-to-PE links (reduction.link_pj_per_byte)  reduction
red_sram_bytes     global-buffer bytes of accumulate_in_place              reduction
nsd_std            dense δz element through the std reduction              nsd
nsd_rng            dither sample drawn                                     nsd
nsd_quantize       element quantized                                       nsd
nsd_compare        meProp top-k magnitude comparison                       nsd
nsd_sram_bytes     dense δz bytes read by the NSD unit (PE output RAM)     nsd
vec_<op>           vector-unit operation of kind <op> (vector.<op>_pj)     vector
vec_sram_bytes     bytes the vector unit reads/writes in the global buffer vector
leak_cycles        cycles of the variant (× leakage power / clock)         leakage
=================  ======================================================  ==================

Reduction: :mod:`hwsim.sim.reduction`; NSD unit: :mod:`hwsim.sim.nsd_unit`; vector unit (``<op>`` one of
:data:`hwsim.arch.VECTOR_OPS`): :mod:`hwsim.sim.vector`; leakage power:
:func:`hwsim.arch.silicon.leakage_mw` (area × mW/mm²; mW × ns = pJ).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hwsim.arch.silicon import leakage_mw
from hwsim.arch.vector import VECTOR_OPS
from hwsim.results import EnergyBreakdown
from hwsim.results.actions import ACTIONS, Actions

if TYPE_CHECKING:
    from hwsim.arch import Arch

__all__ = ["ACTIONS", "Actions", "buffer_sizes", "price"]


def buffer_sizes(arch: Arch) -> dict[str, int]:
    """Size (bytes) of the buffer behind each ``sram_*_bytes`` action, which picks its price class."""
    return {
        "sram_input_bytes": arch.pe.input_buffer_bytes,
        "sram_weight_bytes": arch.pe.weight_fifo_bytes,
        "sram_output_bytes": arch.pe.output_buffer_bytes,
        "sram_global_bytes": arch.memory.global_buffer_bytes,
    }


def price(actions: Actions | Mapping[str, float], arch: Arch) -> EnergyBreakdown:
    """Energy of ``actions`` on ``arch`` (pJ), by category (a plain ``{action: count}`` mapping is accepted)."""
    r = _rates(arch)
    n = Actions.from_mapping(actions).count
    sram = sum(n(k) / 8 * pj for k, pj in r.sram)
    leak = n("leak_cycles")
    return EnergyBreakdown(
        mac=n("mult") * r.mult + n("bit_ops") * r.bit_op + n("add") * r.add,
        accumulator=n("acc_access") * r.acc + n("reg_read") * r.reg,
        sram=sram,
        crossbar=n("xbar") * r.xbar,
        dram=n("dram_bytes") / 8 * r.dram,
        reduction=n("red_add") * r.add + n("red_acc") * r.acc + n("red_link_bytes") * r.link
        + n("red_sram_bytes") / 8 * r.global_sram,
        nsd=n("nsd_std") * r.nsd_std + n("nsd_rng") * r.nsd_rng + n("nsd_quantize") * r.nsd_quantize
        + n("nsd_compare") * r.nsd_compare + n("nsd_sram_bytes") / 8 * r.output_sram,
        vector=sum(n(a) * pj for a, pj in r.vector) + n("vec_sram_bytes") / 8 * r.global_sram,
        leakage=leak * _leakage_mw(arch) / arch.clock_ghz if leak else 0.0,
    )


@dataclass(frozen=True)
class _Rates:
    """The prices :func:`price` multiplies the counts by, looked up once per arch (the same figures, so the
    same sums to the last digit)."""

    mult: float
    bit_op: float
    add: float
    acc: float
    reg: float
    sram: tuple[tuple[str, float], ...]
    xbar: float
    dram: float
    link: float
    global_sram: float
    output_sram: float
    nsd_std: float
    nsd_rng: float
    nsd_quantize: float
    nsd_compare: float
    vector: tuple[tuple[str, float], ...]


_RATES: dict[int, tuple[Arch, _Rates]] = {}  # id(arch) -> (arch, its rates); the arch is kept so the id stays its own
_LEAKAGE: dict[int, tuple[Arch, float]] = {}  # the same for leakage_mw (computed only where leakage is priced)


def _per_arch(cache: dict[int, tuple[Arch, Any]], arch: Arch, compute: Callable[[Arch], Any]) -> Any:
    """``compute(arch)`` once per :class:`~hwsim.arch.Arch` object (keyed by identity, the arch kept beside its value
    so its id stays its own; at most 64 archs, a sweep's, then the cache starts over)."""
    hit = cache.get(id(arch))
    if hit is not None and hit[0] is arch:
        return hit[1]
    if len(cache) >= 64:
        cache.clear()
    value = compute(arch)
    cache[id(arch)] = (arch, value)
    return value


def _leakage_mw(arch: Arch) -> float:
    return _per_arch(_LEAKAGE, arch, leakage_mw)


def _rates(arch: Arch) -> _Rates:
    return _per_arch(_RATES, arch, _compute_rates)


def _compute_rates(arch: Arch) -> _Rates:
    e, q = arch.energy, arch.quantizer
    queue_pj = e.bank_queue_pj_per_product if arch.pe.bank_queue_depth and not arch.is_systolic else 0.0
    if arch.schedules_operands:  # TensorDash-style scheduler: staging read + operand muxes per scheduled product
        queue_pj += arch.tensordash.mux_pj_per_product
    return _Rates(mult=e.mult_pj_for(arch.pe.mac_bits), bit_op=e.bit_op_pj, add=e.add_pj_for(arch.pe.accumulator_bits),
                  acc=e.accumulator_access_pj, reg=e.register_pj,
                  sram=tuple((k, e.sram_pj_per_64b(size)) for k, size in buffer_sizes(arch).items()),
                  xbar=e.crossbar_pj_per_product + queue_pj, dram=e.dram_pj_per_64b, link=arch.reduction.link_pj_per_byte,
                  global_sram=e.sram_pj_per_64b(arch.memory.global_buffer_bytes),
                  output_sram=e.sram_pj_per_64b(arch.pe.output_buffer_bytes), nsd_std=q.std_pj_per_element,
                  nsd_rng=q.rng_pj_per_element, nsd_quantize=q.quantize_pj_per_element, nsd_compare=q.compare_pj,
                  vector=tuple((f"vec_{op}", arch.vector.op_pj(op)) for op in VECTOR_OPS))
