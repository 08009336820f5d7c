"""The headline under the assumptions the papers do not state: one small table.

SCNN states no accumulator-bank queue depth and no DRAM bandwidth; hwsim assumes 4 entries and
16 B/cycle (arch YAML), a DRAM channel that serves loads before write-backs (``memory.dram_arbiter``,
:mod:`hwsim.sim.model`: it moves per-pass figures more than the headline) and double-buffered tiles
(``memory.tile_buffers`` 2; rows with 1 and 3); the weight update keeps W and its optimizer state in DRAM at fp32 (``update:``,
:mod:`hwsim.sim.update`). :data:`FREE_PARTS` are optional rows that make the halo exchange or the bank queues'
area and energy free again (issue 18), so a report can say what its match owes to them; :data:`PORT_ROWS` limit
the products a bank accepts per cycle (``pe.bank_queue_write_ports``). This module re-simulates one trace with
each of those assumptions moved
(the others at the arch's values) and reports the sparse speed-up and energy ratio against both
dense baselines: ``dense`` (same silicon, no skipping) and ``dense_systolic`` (a systolic array of
equal multipliers, :func:`hwsim.arch.dense_systolic_variant`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hwsim.arch import Arch
    from hwsim.trace.format import Trace

QUEUE_DEPTHS = (0, 1, 4)
DRAM_BYTES_PER_CYCLE = (8.0, 16.0, 64.0, math.inf)
# Who gets the DRAM channel when a load and a write-back both wait (memory.dram_arbiter; the iteration schedule only)
DRAM_ARBITERS = ("reads_first", "in_order")
# How many intervals' operands the tile buffers hold (memory.tile_buffers, default 2; the iteration schedule only):
# no overlap of a load with the previous compute (1) and a loader two intervals ahead (3)
TILE_BUFFERS = (1, 3)
# Fields only memory.schedule: iteration uses (isolated layer-passes keep a first-come channel and two buffers)
ITERATION_ONLY = frozenset({"memory.dram_arbiter", "memory.tile_buffers"})
# Products one accumulator bank takes per cycle (pe.bank_queue_write_ports; the arch's default is depth + 1): a plain
# crossbar (1) and a two-output one (2), rows for benchmarks/scnn_repro.py.
PORT_ROWS: tuple[tuple[str, dict[str, Any]], ...] = tuple(
    (f"bank write ports {w}", {"pe.bank_queue_write_ports": w}) for w in (1, 2))
# Parts of the SCNN anchor that were free before issue 18, made free again one at a time (rows for
# benchmarks/scnn_repro.py): what the reproduction's match owes to them.
FREE_PARTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("halo exchange free", {"reduction.halo_exchange": False}),
    ("bank queues free (area, energy)", {"energy.bank_queue_pj_per_product": 0.0, "area.bank_queue_um2_per_kb": 0.0}),
)
# The weight update's placement and state width (issue 17 item 3): each moved alone.
UPDATE_SETTINGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("update: W and state on chip when they fit", {"update.on_chip": True}),
    ("update: bf16 optimizer state", {"update.state_bits": 16}),
    # how non-GEMM work meets the array (issue 17 item 4; vector: section): fused pointwise ops, overlapped unit
    ("non-GEMM: pointwise ops fused into the GEMM output", {"vector.fuse_pointwise": True}),
    ("non-GEMM: vector unit overlapped with the array", {"vector.overlap_nongemm": True}),
    # the dense systolic baseline's vector unit: its own lanes (one per column) instead of the design's
    ("baselines: own vector lanes (1 per column)", {"vector.baseline_lanes": "own"}))


def settings(depths: Sequence[int] = QUEUE_DEPTHS, dram: Sequence[float] = DRAM_BYTES_PER_CYCLE,
             update: Sequence[tuple[str, dict[str, Any]]] = UPDATE_SETTINGS,
             arbiters: Sequence[str] = DRAM_ARBITERS,
             tile_buffers: Sequence[int] = TILE_BUFFERS) -> list[tuple[str, dict[str, Any]]]:
    """(label, overrides) of every row: each queue depth, then each DRAM bandwidth, then each DRAM arbiter, then
    each tile-buffer count, then the update's settings."""
    rows = [(f"queue depth {d}", {"pe.bank_queue_depth": d}) for d in depths]
    rows += [(f"DRAM {'∞' if math.isinf(b) else f'{b:g}'} B/cycle", {"memory.dram_bytes_per_cycle": b}) for b in dram]
    rows += [(f"DRAM arbiter {a}", {"memory.dram_arbiter": a}) for a in arbiters]
    rows += [(f"tile buffers {b}", {"memory.tile_buffers": b}) for b in tile_buffers]
    return rows + [(label, dict(over)) for label, over in update]


def sensitivity(trace: Trace, arch: Arch, *, training: bool = True, seed: int = 0,
                rows: Sequence[tuple[str, dict[str, Any]]] | None = None,
                pass_name: str | None = None) -> list[dict[str, Any]]:
    """Sparse speed-up and energy ratio vs both dense baselines for each setting (module doc).

    A row that moves only fields of the iteration schedule (:data:`ITERATION_ONLY`: ``memory.dram_arbiter``,
    ``memory.tile_buffers``) is left out where the arch's ``memory.schedule`` is ``isolated`` (e.g. scnn16.yaml, the
    SCNN reproduction): isolated layer-passes use neither, so the row would repeat the arch's figures and read as
    "this assumption moves nothing"."""
    from hwsim.arch import load_arch
    from hwsim.sim import simulate

    out = []
    for label, over in rows if rows is not None else settings():
        a = load_arch(arch, over)
        if over and set(over) <= ITERATION_ONLY and a.memory.schedule != "iteration":
            continue
        r = simulate(trace, a, training=training, seed=seed)
        default = all(_same(_get(arch, k), v) for k, v in over.items())
        out.append({"setting": label + (" (arch)" if default else ""), "overrides": dict(over),
                    "speedup_vs_dense": r.speedup(pass_name=pass_name),
                    "speedup_vs_dense_systolic": r.speedup(pass_name=pass_name, baseline="dense_systolic"),
                    "energy_vs_dense": r.energy_ratio(pass_name=pass_name),
                    "energy_vs_dense_systolic": r.energy_ratio(pass_name=pass_name, baseline="dense_systolic"),
                    "fraction_of_ideal": r.fraction_of_ideal(pass_name=pass_name)})
    return out


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as one Markdown table."""
    lines = ["| setting | speed-up vs dense | vs dense systolic | energy vs dense | vs dense systolic | "
             "fraction of ideal |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['setting']} | {r['speedup_vs_dense']:.2f}× | {r['speedup_vs_dense_systolic']:.2f}× | "
                     f"{r['energy_vs_dense']:.2f}× | {r['energy_vs_dense_systolic']:.2f}× | "
                     f"{r['fraction_of_ideal']:.1%} |")
    return "\n".join(lines)


def _get(arch: Arch, path: str) -> Any:
    """The arch's value at a dotted override path (attributes, so fields omitted from ``to_dict`` at their
    defaults resolve too)."""
    v: Any = arch
    for p in path.split("."):
        v = v[p] if isinstance(v, dict) else getattr(v, p)
    return v


def _same(a: Any, b: Any) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isinf(a) and math.isinf(b))
