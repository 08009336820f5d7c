"""What a baseline that never looks at operand values computes, remembered across the iterations of a run.

A *mask-free* architecture (:func:`mask_free`) skips no zeros, gates none, stores every tensor uncompressed and
multiplies at full width (``pe.mac: parallel``, no operand scheduler): the dense baseline, the dense systolic and
the equal-area baselines of :func:`hwsim.sim.replay.baselines`. Every role it streams is all ones inside the
layer's connectivity, so its layer-pass timing (:func:`hwsim.sim.passes.run_pass`), the priced result of that
timing and its residency plan (:func:`hwsim.sim.residency.plan`) follow from the layer shapes, the residency, the
operand passes ``p`` (δ̃z bits) and the arch alone — the same in every iteration of a training run. A whole-run
replay computes them once (:func:`remember`) and reuses them; the values are shared, never mutated (frozen
records, read-only arrays). An arch that skips nothing but gates or compresses (the dense-gated baseline) still
streams every role dense: its mapping (Kc, GEMM work, halo exchange or δW reduction) is remembered the same way
(:func:`hwsim.sim.passes.run_pass`), its actions are counted from the masks each time.

The cache is keyed by the arch *object* (kept beside its values so its id stays its own; the replay derives
each baseline once per arch, :func:`hwsim.sim.replay.baselines`) and by a key the caller builds from everything
the computation reads (:func:`pass_key`, :func:`plan_key`). At most :data:`MAX_ENTRIES` values are held; then
the cache starts over (a sweep over many models must not pile them up), and at most :data:`MAX_BYTES` of arrays (a
transformer-sized layer-pass whose arrays exceed a sixteenth of that is not kept: a replay's memory stays bounded
per layer).

**Derived records.** A remembered value is the same object in every iteration, so what the record stages after
the GEMMs make of it — the iteration schedule's memory stall (:func:`hwsim.sim.schedule.retime`), the non-GEMM work
(:func:`hwsim.sim.nongemm.charge`), leakage (:func:`hwsim.sim.charges.finish`) — is the same too, for the same
additions. :func:`derive` computes such a stage's result once per shared record, arch and key (the key holds what
the stage adds) and shares the result in turn, so a chain of stages over a remembered record runs once per run.
Records that are not shared (the sparse run's, made from each iteration's masks) are computed every time and not
kept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from hwsim.results import VariantResult
from hwsim.sim.operands import Operands, operand_passes

if TYPE_CHECKING:
    from hwsim.arch import Arch
    from hwsim.sim.traffic import Residency
    from hwsim.trace.schema import LayerGeometry

MAX_ENTRIES = 4096  # layer-passes × baselines of a large model, with their results and plans
MAX_BYTES = 64 << 20  # array bytes held at most (a value above 1/16 of it is computed but not kept)
T = TypeVar("T")
_MEMO: dict[tuple, tuple[Arch, Any]] = {}


def mask_free(arch: Arch) -> bool:
    """Does nothing ``arch`` computes for a layer-pass depend on the operands' values (module doc)?"""
    skip = arch.zero_skip
    return (not (skip.weights or skip.activations or skip.gradients) and not arch.zero_gating
            and arch.memory.compression == "none" and arch.pe.mac == "parallel" and not arch.schedules_operands)


def shape_key(ops: Operands) -> tuple:
    """Everything of a layer a mask-free arch reads: its name, operand shapes and geometry (``w_struct`` is all
    ones in ``w``'s shape: :func:`hwsim.sim.layerops.layer_operands`)."""
    return (ops.name, ops.w.shape, ops.w_struct.shape, ops.a.shape, ops.dz.shape, ops.groups, ops.stride,
            ops.padding, ops.dilation)


def pass_key(ops: Operands, pass_name: str, arch: Arch, residency: Residency, macs_dense: int) -> tuple:
    """The key of one layer-pass on the mask-free ``arch``: shapes, pass, MAC passes, residency, dense MACs."""
    return ("pass", shape_key(ops), pass_name, operand_passes(pass_name, ops.dz_bits, arch.pe.mac_bits),
            residency, macs_dense)


def plan_key(layers: Sequence[Operands], geometries: Sequence[LayerGeometry], arch: Arch, *, training: bool,
             input_grads: Sequence[bool], weight_grads: Sequence[bool]) -> tuple:
    """The key of an iteration's residency plan on the mask-free ``arch``: every layer's shapes and δ̃z MAC
    passes (uncompressed tensors: their bytes are their sizes), the chain geometry and which GEMMs run."""
    mb = arch.pe.mac_bits
    return ("plan", training, tuple(input_grads), tuple(weight_grads), tuple(geometries),
            tuple((shape_key(o), operand_passes("backward_data", o.dz_bits, mb)) for o in layers))


def remember(arch: Arch, key: tuple, compute: Callable[[], T]) -> T:
    """``compute()`` once per mask-free ``arch`` object and ``key`` (module doc); its arrays made read-only."""
    k = (id(arch), key)
    hit = _MEMO.get(k)
    if hit is not None and hit[0] is arch:
        return hit[1]
    value = compute()
    arrays = [x for part in (value if isinstance(value, tuple) else (value,)) for f in _ARRAYS
              if isinstance(x := getattr(part, f, None), np.ndarray)]
    nbytes = sum(x.nbytes for x in arrays)
    if nbytes > MAX_BYTES // 16:  # a transformer-sized layer's arrays: not kept (memory stays bounded per layer)
        return value
    for x in arrays:
        x.flags.writeable = False
    global _BYTES
    if len(_MEMO) >= MAX_ENTRIES or _BYTES + nbytes > MAX_BYTES:
        clear()
    _MEMO[k] = (arch, value)
    _BYTES += nbytes
    share(*(x for x in (value if isinstance(value, tuple) else (value,)) if isinstance(x, VariantResult)))
    return value


_ARRAYS = ("mult_cycles", "conflict", "load_bytes", "store_bytes", "group_pes", "group_values", "group_interval")
_BYTES = 0  # array bytes the remembered values hold


def share(*values: Any) -> None:
    """Mark ``values`` as shared across iterations (never mutated): :func:`derive` remembers what is made of them
    (:func:`remember` marks the variant records it keeps; the weight-update records, the same for every iteration,
    are marked by the replay)."""
    for v in values:
        if len(_SHARED) >= MAX_ENTRIES:
            _SHARED.clear()
            _DERIVED.clear()
        _SHARED[id(v)] = v


def shared(value: Any) -> bool:
    """Is ``value`` a shared record (:func:`share`)?"""
    return _SHARED.get(id(value)) is value


def derive(record: Any, arch: Arch | None, key: tuple, compute: Callable[[], T]) -> T:
    """``compute()``: a record stage applied to ``record`` on ``arch`` (module doc, "Derived records"). Once per
    shared ``record``, ``arch`` object and ``key`` (everything the stage reads besides the two), its result shared in
    turn; for any other record simply ``compute()``."""
    if _SHARED.get(id(record)) is not record:
        return compute()
    k = (id(record), id(arch), key)
    hit = _DERIVED.get(k)
    if hit is not None and hit[0] is record and hit[1] is arch:
        return hit[2]
    value = compute()
    if len(_DERIVED) >= MAX_ENTRIES:
        _DERIVED.clear()
    _DERIVED[k] = (record, arch, value)  # the inputs kept so their ids stay theirs
    share(value)
    return value


_SHARED: dict[int, Any] = {}  # id -> a shared record (kept, so its id stays its own)
_DERIVED: dict[tuple, tuple[Any, Any, Any]] = {}  # (id(record), id(arch), key) -> (record, arch, derived record)


def clear() -> None:
    """Forget every remembered value (tests; a caller that wants the memory back)."""
    global _BYTES
    _MEMO.clear()
    _SHARED.clear()
    _DERIVED.clear()
    _BYTES = 0


__all__ = ["MAX_BYTES", "MAX_ENTRIES", "clear", "derive", "mask_free", "pass_key", "plan_key", "remember", "shape_key",
           "share", "shared"]
