"""The architecture as typed, frozen, self-validating dataclasses (units in field names).

Field names are the YAML keys (docs/contracts.md, "Architecture"), so ``Arch.to_dict()`` is the YAML
mapping and a YAML file is just ``Arch`` written down. Fields with a default are optional in YAML;
the contract's fields have none, so a file must say every number it relies on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from hwsim.arch.area import AreaTable
from hwsim.arch.costs import QuantizerConfig, ReductionConfig
from hwsim.arch.dataflows import SYSTOLIC_DATAFLOWS, Dataflows, GatherConfig
from hwsim.arch.energy import EnergyTable
from hwsim.arch.errors import ArchError
from hwsim.arch.fields import Validated, spec
from hwsim.arch.tensordash import TensorDashConfig
from hwsim.arch.update import UpdateConfig
from hwsim.arch.vector import VectorConfig

ARCH_VERSION = 1
COMPRESSIONS = ("bitmask", "run_length", "none")
MAC_KINDS = ("parallel", "bit_serial", "bit_fusion")
BIT_SERIAL_MODES = ("magnitude", "essential_bits")
SCHEDULES = ("isolated", "iteration")
DRAM_ARBITERS = ("reads_first", "in_order")  # hwsim/sim/model.py ARBITERS
STASH_PLACES = ("on_chip", "dram")


@dataclass(frozen=True, kw_only=True)
class PEArray(Validated):
    """Grid of processing elements."""

    rows: int = spec(ge=1, doc="PE rows")
    cols: int = spec(ge=1, doc="PE columns")
    # Issue 18: the mapper leaves SCNN's planar tiling of a plane that covers the grid when the split is this poor
    # by geometry alone (hwsim/sim/tiling.py). Omitted from to_dict/hash at its default.
    planar_min_balance: float = spec(ge=0, le=1, default=0.5, omit_default=True,
                                     doc="planar tiling kept while mean ÷ largest PE tile >= this (10×10 on 8×8: "
                                         "0.39); below it clustered or whole-plane mappings compete (0 = always planar)")


@dataclass(frozen=True, kw_only=True)
class PEConfig(Validated):
    """One PE: an F×I multiplier array, banked accumulators behind a crossbar, local buffers."""

    mult_f: int = spec(ge=1, doc="F: non-zero weights per cycle")
    mult_i: int = spec(ge=1, doc="I: non-zero activations per cycle (F×I Cartesian product)")
    mac_bits: int = spec(ge=1, le=64, doc="multiplier operand width; wider operands take extra passes")
    accumulator_bits: int = spec(ge=1, le=128, doc="accumulator width")
    accumulator_banks: int = spec(ge=1, doc="banks products are scattered to (2·F·I in SCNN)")
    bank_queue_depth: int = spec(ge=0, doc="per-bank queue entries absorbing conflict bursts")
    input_buffer_bytes: int = spec(ge=1, doc="input activation RAM per PE (IARAM)")
    output_buffer_bytes: int = spec(ge=1, doc="output activation RAM per PE (OARAM)")
    weight_fifo_bytes: int = spec(ge=1, doc="weight FIFO per PE")
    output_channel_group: int = spec(ge=1, doc="Kc: output channels per group; PEs barrier at group ends")
    # Added (optional in YAML).
    accumulator_bank_entries: int = spec(ge=1, default=32, doc="entries per accumulator bank (SCNN: 32)")
    # Precision-exploiting multipliers (issue 6; optional, omitted from to_dict/hash at their defaults).
    # Every kind has the area of F×I mac_bits-bit multipliers: bit_serial = F·I·mac_bits one-bit lanes
    # (Stripes), bit_fusion = F·I fusion units of (mac_bits/b)² b-bit BitBricks (Bit Fusion, b = the
    # smallest width). See hwsim/sim/bitserial.py for the cycle model.
    mac: str = spec(choices=MAC_KINDS, default="parallel", omit_default=True,
                    doc="parallel mac_bits MACs | bit_serial lanes | bit_fusion fusable bricks")
    bit_serial_mode: str = spec(choices=BIT_SERIAL_MODES, default="magnitude", omit_default=True,
                                doc="bit_serial cycles per value: magnitude bits (Stripes) | essential "
                                    "(non-zero) bits (Bit-Pragmatic)")
    serial_sign_cycle: bool = spec(default=True, omit_default=True,
                                   doc="bit_serial spends a cycle on the sign (two's complement, Stripes); "
                                       "false = sign-magnitude lanes, sign for free")
    bit_fusion_widths: tuple[int, ...] = spec(ge=1, default=(2, 4, 8), omit_default=True,
                                              doc="operand widths a fusion unit supports (powers of two, "
                                                  "largest = mac_bits)")
    serial_lanes: int = spec(ge=0, default=0, omit_default=True,
                             doc="serial-operand values in lock-step per PE (0 = the serial side's F or I)")
    # Issue 18 item 5 (hwsim/sim/banks.py, hwsim/arch/silicon.py): how many products of one cycle one accumulator
    # bank takes (the crossbar's outputs per bank, the queue's write ports). Before issue 18 a bank took up to
    # bank_queue_depth + 1 a cycle for free; that stays the default (0), now with its crossbar area.
    bank_queue_write_ports: int = spec(ge=0, default=0, doc="products one bank (its queue) accepts per cycle; "
                                       "0 = as many as the queue holds (bank_queue_depth + 1, at most F·I)")
    # Issue 10: systolic_os fold (hwsim/sim/systolic.py); omitted from to_dict/hash at its default.
    systolic_os_drain: str = spec(choices=("scalesim", "serial", "broadcast"), default="scalesim", omit_default=True,
                                  doc="systolic_os: outputs drain during the next fold's skew (SCALE-Sim v3) | "
                                      "in R extra cycles per fold | broadcast: a tensor-core-like array, no skew, "
                                      "fill and drain once per GEMM (hwsim/sim/systolic.py)")

    @property
    def multipliers(self) -> int:
        return self.mult_f * self.mult_i

    @property
    def bank_ports(self) -> int:
        """Products one accumulator bank accepts per cycle: ≤ depth + 1 (queue + bank), ≤ F·I, ≤ the write ports."""
        cap = min(self.multipliers, self.bank_queue_depth + 1)
        return min(cap, self.bank_queue_write_ports) if self.bank_queue_write_ports else cap

    @property
    def brick_bits(self) -> int:
        """Bit Fusion: width of one BitBrick (the smallest supported width)."""
        return self.bit_fusion_widths[0]

    def _check(self) -> None:
        def bad(field: str, problem: str, allowed: str) -> ArchError:
            return ArchError(problem, key=f"PEConfig.{field}", field=field, allowed=allowed)

        ws = self.bit_fusion_widths
        if any(w & (w - 1) for w in ws):
            raise bad("bit_fusion_widths", f"{list(ws)} has a width that is not a power of two",
                      "ascending powers of two, e.g. [2, 4, 8]")
        if self.mac == "bit_fusion" and ws[-1] != self.mac_bits:
            raise bad("bit_fusion_widths", f"largest width {ws[-1]} != mac_bits={self.mac_bits} "
                      "(a fusion unit fused whole is one mac_bits multiplier)",
                      f"ascending powers of two ending in {self.mac_bits}")
        lanes, what = ((self.multipliers * self.mac_bits, "one-bit lanes (mult_f·mult_i·mac_bits)")
                       if self.mac == "bit_serial" else (self.multipliers, "multipliers (mult_f·mult_i)"))
        if self.mac != "parallel" and self.serial_lanes and lanes % self.serial_lanes:
            raise bad("serial_lanes", f"{self.serial_lanes} does not divide the PE's {lanes} {what}",
                      f"0 (auto) or a divisor of {lanes}")


@dataclass(frozen=True, kw_only=True)
class ZeroSkip(Validated):
    """Which operand roles the dataflow skips when zero (weights, activations a, gradients δ̃z)."""

    weights: bool = spec(doc="skip zero weights")
    activations: bool = spec(doc="skip zero activations")
    gradients: bool = spec(doc="skip zero gradient levels")

    @property
    def any(self) -> bool:
        return self.weights or self.activations or self.gradients


@dataclass(frozen=True, kw_only=True)
class MemoryConfig(Validated):
    """Shared on-chip buffer and the DRAM interface."""

    global_buffer_bytes: int = spec(ge=1, doc="shared on-chip buffer")
    dram_bytes_per_cycle: float = spec(gt=0, allow_inf=True, doc="DRAM bandwidth (.inf = unlimited)")
    compression: str = spec(choices=COMPRESSIONS, doc="format of sparse operands in SRAM/DRAM")
    run_length_bits: int = spec(ge=1, le=32, doc="index bits per non-zero for run_length")
    # Added (optional in YAML; kept in to_dict, so configs hash differently from the pre-residency model and
    # sweep caches of the old traffic model are not reused). See hwsim/sim/residency.py.
    inter_layer_residency: bool = spec(default=True, doc="a layer's output stays on chip as the next GEMM's "
                                       "input when it fits (SCNN: OARAM -> IARAM); δ̃z reused by both backward GEMMs")
    # Issue 17 item 2 (memory policies, hwsim/sim/onchip.py). Default true: the 1 MB global buffer is paid for in area
    # and leakage (22 % of scnn's), so a designer keeps tensors in it between uses instead of only staging DRAM tiles.
    residency_in_global_buffer: bool = spec(default=True, doc="resident tensors may also use the global buffer "
                                            "(false: only the PEs' input/output RAMs, as in SCNN, which has none)")
    # Default on_chip: a training designer keeps the stash (each layer's input, live from its forward to its
    # backward-weight) on chip when it fits — it is written and read back once per iteration otherwise.
    stash: str = spec(choices=STASH_PLACES, default="on_chip",
                      doc="where the training stash lives: on_chip = kept on chip when it fits beside what is "
                          "already there (greedy, execution order), spilled to DRAM otherwise | dram = always "
                          "written in forward and read back by backward-weight")
    # Default true: weights that fit are loaded once per iteration (forward) and kept for backward-data, as any
    # designer with spare buffer would; δW's write-back is not affected.
    weights_resident: bool = spec(default=True,
                                  doc="a layer's weights stay in the global buffer from its forward to its "
                                      "backward-data when they fit (loaded once per iteration, not once per pass)")
    # Issue 17 item 1 (hwsim/sim/schedule.py). Default iteration: any accelerator with a DMA engine prefetches the
    # next layer's first tiles while the current one computes and drains write-backs behind the next; exposing
    # every layer-pass's first load and last write-back (isolated) charged LeNet-5 a third of its cycles as memory
    # stall. Always in to_dict, so results and sweep keys say which model produced them.
    schedule: str = spec(choices=SCHEDULES, default="iteration",
                         doc="iteration = one SimPy run per training iteration, the DMA prefetching the next "
                             "layer-pass and draining behind it (hwsim/sim/schedule.py) | isolated = each layer-pass "
                             "its own SimPy run, its first load and last write-back exposed (the model before "
                             "issue 17; kept for comparison)")
    # Who gets the one DRAM channel when the loader and the writer both wait (hwsim/sim/model.py), e.g. when a barrier
    # wakes both in the same cycle. Default reads_first: memory controllers serve reads before buffered writes
    # (FR-FCFS read priority, the write queue drained when it fills: here when the array needs a write-back's tile
    # buffer again) and a DMA engine prefetches before it drains; no read in the model waits for a write-back to free
    # a buffer (input tile buffers free at the compute barrier; a tensor read back from DRAM waits for its producer's
    # write-back explicitly). Only the iteration schedule uses it; isolated keeps each layer-pass's channel first
    # come, first served (the per-layer comparison model). Always in to_dict (it moves results and cache keys).
    dram_arbiter: str = spec(choices=DRAM_ARBITERS, default="reads_first",
                             doc="reads_first = a waiting load gets the DRAM channel before a waiting write-back "
                                 "(also when both ask in the same cycle) unless the array needs that write-back's "
                                 "tile buffer again | in_order = first come, first served "
                                 "(same-cycle ties in simulator event order; the model before the field)")
    # How many intervals' operands the chip's tile buffers hold (hwsim/sim/model.py): the loader loads interval j
    # once j − tile_buffers is done. Default 2: double buffering (ping-pong), the standard DMA overlap of SCNN's
    # and Eyeriss's buffers — the load of the next tile behind the compute of the current one. Only the iteration
    # schedule uses it (isolated keeps two). Omitted from to_dict at its default (the content hash of configs that
    # do not move it is unchanged); written out in every shipped config all the same.
    tile_buffers: int = spec(ge=1, default=2, omit_default=True,
                             doc="tile buffers per operand stream: the loader runs at most tile_buffers − 1 "
                                 "intervals ahead of the array (2 = double buffering; 1 = each load waits for "
                                 "the previous interval's compute)")


@dataclass(frozen=True, kw_only=True)
class Arch(Validated):
    """A whole accelerator. Build with :func:`hwsim.arch.load_arch` or directly (validated either way)."""

    version: int = spec(choices=(ARCH_VERSION,), doc="architecture file format version")
    name: str = spec(doc="short name used in reports")
    clock_ghz: float = spec(gt=0, doc="clock frequency")
    dataflow: Dataflows = spec(doc="cartesian = SCNN-like sparse; systolic_* = dense; or a mapping per pass "
                               "(backward passes may be dz_gather): hwsim/arch/dataflows.py")
    pe_array: PEArray = spec(doc="PE grid")
    pe: PEConfig = spec(doc="one PE")
    zero_skip: ZeroSkip = spec(doc="zero skipping per operand role")
    memory: MemoryConfig = spec(doc="global buffer and DRAM")
    energy: EnergyTable = spec(doc="pJ per action")
    # Added (optional in YAML): zero operands gate the multiplier (no cycles saved, energy saved).
    zero_gating: bool = spec(default=False, doc="gate multipliers on zero operands (DCNN-opt)")
    # Added (issue 10, training-only costs; optional sections with stated defaults, see costs.py / area.py).
    reduction: ReductionConfig = spec(default_factory=ReductionConfig,
                                      doc="cross-PE reduction of backward-weight partial sums")
    quantizer: QuantizerConfig = spec(default_factory=QuantizerConfig, doc="the NSD unit (δz quantizer)")
    area: AreaTable = spec(default_factory=AreaTable, doc="unit areas (µm², 45 nm) and leakage")
    # Issue 18: the dz_gather dataflow's work queue and operand compactor (omitted from to_dict/hash at its default).
    gather: GatherConfig = spec(default=GatherConfig(), omit_default=True,
                                doc="dz_gather unit: work-queue SRAM and operand compactor per PE")
    # Issue 18 item 3: the TensorDash-style scheduler of a systolic_os array with zero_skip (hwsim/arch/tensordash.py;
    # omitted from to_dict/hash at its default).
    tensordash: TensorDashConfig = spec(default=TensorDashConfig(), omit_default=True,
                                        doc="operand scheduler of a systolic_os array that skips zeros: lookahead, "
                                            "lookaside, backward-weight operand, mux energy")
    # Added (issue 17 item 3): the vector / post-processing unit (hwsim/arch/vector.py).
    vector: VectorConfig = spec(default_factory=VectorConfig, doc="vector unit: weight update and non-GEMM work")
    update: UpdateConfig = spec(default_factory=UpdateConfig, doc="weight update: W / state widths and placement")
    source: str = spec(default="<python>", compare=False, doc="file this came from (not part of to_dict/hash)")

    def __post_init__(self) -> None:
        # ``dataflow`` may be written as one name or a per-pass mapping (hwsim/arch/dataflows.py)
        object.__setattr__(self, "dataflow", Dataflows.coerce(self.dataflow))
        super().__post_init__()

    def _check(self) -> None:
        def bad(field: str, problem: str, allowed: str) -> ArchError:
            return ArchError(problem, key=f"Arch.{field}", field=field, allowed=allowed)

        if self.is_systolic:
            os_ = self.dataflow == "systolic_os"  # lanes and the TensorDash scheduler: hwsim/arch/tensordash.py
            if self.pe.mult_f != 1:
                raise bad("pe.mult_f", f"{self.pe.mult_f} with dataflow {self.dataflow} "
                          "(systolic PEs do one MAC per cycle)", "1")
            if self.pe.mult_i != 1 and not os_:
                raise bad("pe.mult_i", f"{self.pe.mult_i} with dataflow {self.dataflow} "
                          "(dot-product lanes per PE need the reduction along time)", "1, or use systolic_os")
            if self.zero_skip.weights or (self.zero_skip.any and not os_):
                f = "weights" if self.zero_skip.weights else "activations" if self.zero_skip.activations \
                    else "gradients"
                raise bad(f"zero_skip.{f}", f"true with {'' if os_ else 'dense '}dataflow {self.dataflow}",
                          "false; a systolic_os array schedules activations / gradients (TensorDash); "
                          "dataflow: cartesian skips any role")
            if self.zero_skip.any and self.pe.mult_i > 64:   # the scheduler holds a step's lanes in one 64-bit word
                raise bad("pe.mult_i", f"{self.pe.mult_i} lanes with the TensorDash-style scheduler", "1..64")
            if self.zero_skip.any and self.tensordash.lookaside > self.pe.mult_i - 1:
                raise bad("tensordash.lookaside", f"{self.tensordash.lookaside} neighbours with pe.mult_i = "
                          f"{self.pe.mult_i} lanes", f"0..{self.pe.mult_i - 1}")
        if self.pe.accumulator_bits < self.pe.mac_bits:
            raise bad("pe.accumulator_bits", f"{self.pe.accumulator_bits} is narrower than mac_bits="
                      f"{self.pe.mac_bits}", f"integer >= {self.pe.mac_bits}")
        if self.energy.max_mult_bits() < self.pe.mac_bits:
            raise bad("energy.mult_pj", f"no entry covers mac_bits={self.pe.mac_bits} "
                      f"(tabulated: {list(self.energy.mult_pj)})", f"a key >= {self.pe.mac_bits}")
        if self.pe.mac != "parallel" and self.dataflow != "cartesian":  # every pass Cartesian
            raise bad("pe.mac", f"{self.pe.mac} with dataflow {self.dataflow} (only the Cartesian "
                      "dataflow models precision-exploiting multipliers)", "parallel")
        if self.pe.mac != "parallel" and self.zero_gating:
            raise bad("zero_gating", f"true with pe.mac {self.pe.mac} (gating of bit-serial/bit-fusion "
                      "multipliers is not modelled; the dense_gated baseline uses parallel MACs)", "false")
        if self.energy.max_add_bits() < self.pe.accumulator_bits:
            raise bad("energy.add_pj", f"no entry covers accumulator_bits={self.pe.accumulator_bits} "
                      f"(tabulated: {list(self.energy.add_pj)})", f"a key >= {self.pe.accumulator_bits}")
        for key, table, bits, what in (("area.mult_um2", self.area.mult_um2, self.pe.mac_bits, "mac_bits"),
                                       ("area.add_um2", self.area.add_um2, self.pe.accumulator_bits,
                                        "accumulator_bits")):  # priced by hwsim.arch.silicon
            if max(table, default=0) < bits:
                raise bad(key, f"no entry covers {what}={bits} (tabulated: {list(table)})", f"a key >= {bits}")

    # derived -----------------------------------------------------------------------
    @property
    def num_pes(self) -> int:
        return self.pe_array.rows * self.pe_array.cols

    @property
    def multipliers_per_pe(self) -> int:
        return self.pe.mult_f * self.pe.mult_i

    @property
    def total_multipliers(self) -> int:
        return self.num_pes * self.multipliers_per_pe

    @property
    def vector_lanes(self) -> int:
        """Lanes of the vector unit: ``vector.lanes`` if set, else ``vector.lanes_per_pe`` per PE, or per PE column
        of a systolic array."""
        if self.vector.lanes:
            return self.vector.lanes
        return self.vector.lanes_per_pe * (self.pe_array.cols if self.is_systolic else self.num_pes)

    @property
    def is_systolic(self) -> bool:
        """A systolic array (then every pass uses the same systolic dataflow)."""
        return self.dataflow.forward in SYSTOLIC_DATAFLOWS

    @property
    def schedules_operands(self) -> bool:
        """A systolic array with the TensorDash-style scheduler (``zero_skip`` on ``systolic_os``)."""
        return self.is_systolic and self.zero_skip.any

    def pass_dataflow(self, pass_name: str) -> str:
        """The dataflow that maps ``pass_name`` (forward | backward_data | backward_weight)."""
        return self.dataflow.of(pass_name)

    @property
    def variant(self) -> str:
        """sparse (skips some zeros), dense_gated (gates zeros, no skipping) or dense."""
        if self.zero_skip.any:
            return "sparse"
        return "dense_gated" if self.zero_gating else "dense"

    @property
    def peak_macs_per_second(self) -> float:
        return self.total_multipliers * self.clock_ghz * 1e9

    # serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The YAML mapping (without ``source``); ``arch_from_dict(a.to_dict()) == a``."""
        d = super().to_dict()
        d.pop("source")
        return d

    def content_hash(self) -> str:
        """sha256 of the normalised mapping: same numbers, same hash, whatever the file or key order."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def __hash__(self) -> int:
        return hash(self.content_hash())
