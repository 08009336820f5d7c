"""Orchestration: every layer × pass × variant of one sampled iteration → :class:`SimResult`.

Variants (DESIGN §4), all through the same code (:func:`hwsim.sim.passes.run_pass`):

* ``sparse``      — the architecture as given;
* ``dense``       — :func:`hwsim.arch.dense_variant`: no skipping, no gating, uncompressed;
* ``dense_gated`` — :func:`hwsim.arch.dense_gated_variant`: zero gating + compressed DRAM. Gating
  saves energy, not cycles, so its cycles *are* the dense run's (its compressed DRAM traffic
  would only shorten memory stalls, which SCNN's DCNN-opt does not claim); its actions are its own;
* ``ideal``       — the MAC bound (reports say so; the key stays ``ideal`` for older results files):
  cycles = ⌈effectual MACs / multipliers⌉ (all compute); energy = the effectual
  MACs plus reading each operand and writing the output once, compressed (operands the sparse
  run finds on chip are not read, and the output write is the sparse run's plan: see below).
* ``dense_systolic`` / ``dense_equal_area`` — :func:`hwsim.arch.dense_systolic_variant` (equal multipliers) and
  :func:`hwsim.arch.dense_equal_area_variant` (equal area, buffers included), each with its own residency plan.

The DRAM term of the roofline bound (``dram_bound_cycles``) comes from :mod:`hwsim.sim.bounds`.

Each record's energy is Σ its final action counts × the energy table, priced once: the records the replay builds from
one iteration's masks (sparse, dense-gated, ideal) hold :data:`UNPRICED` (zeros) while the stages after the GEMMs add
their actions (the weight update, the iteration schedule, non-GEMM work, the NSD unit) and are priced by
:func:`hwsim.sim.charges.finish`, which prices every record it returns; the remembered baselines' records are priced
when first made (:mod:`hwsim.sim.shape_memo`).

DRAM traffic follows the layer chains of a training iteration (:mod:`hwsim.sim.residency`): with
``memory.inter_layer_residency`` a GEMM's output that the next GEMM of its chain consumes stays on
chip if it fits; ``training=True`` adds the forward-activation stash (written in forward, read by
backward-weight). ``training=False`` models inference: forward only, no stash. Each variant plans
with its own arch (the dense baseline's uncompressed tensors may not fit where the sparse ones do).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from hwsim.arch import (
    ZeroSkip,
    dense_equal_area_variant,
    dense_gated_variant,
    dense_systolic_variant,
    dense_variant,
)
from hwsim.results import CycleBreakdown, EnergyBreakdown, LayerPassResult, SimResult, VariantResult
from hwsim.results.actions import Actions
from hwsim.sim import (
    bounds,
    charges,
    energy,
    heap,
    nongemm,
    precision,
    residency,
    schedule,
    shape_memo,
    traffic,
    update,
)
from hwsim.sim.analytic import cycle_breakdown
from hwsim.sim.blas import one_blas_thread
from hwsim.sim.layerops import TraceArchMismatch, layer_operands
from hwsim.sim.layerops import _max_bits as _max_bits
from hwsim.sim.layerops import check as _check  # noqa: F401 - the old name, kept for callers
from hwsim.sim.mapping import to_machine
from hwsim.sim.nsd_unit import NSD_METHODS
from hwsim.sim.operands import Operands, mask_bytes, operand_passes, released, role_density
from hwsim.sim.passes import PASSES, PassTiming, drop_work_cache, run_pass, streamed_macs, variant_macs
from hwsim.sim.replayed import first_layer_input_grad, layer_grads, replayed_passes
from hwsim.sim.survey import out_densities, survey
from hwsim.trace.reading import LazySamples

if TYPE_CHECKING:
    from tqdm import tqdm

    from hwsim.arch import Arch
    from hwsim.trace.format import Trace
    from hwsim.trace.nongemm import NonGemmWork
    from hwsim.trace.schema import LayerSample


SKIP_ALL = ZeroSkip(weights=True, activations=True, gradients=True)  # its streamed MACs are the effectual MACs
LEAN_ELEMENTS = 50_000_000  # activation + δ̃z elements of an iteration above which a replay holds one layer at a time


# The energy of a record the replay builds from one iteration's masks until charges.finish prices it (module doc).
UNPRICED = EnergyBreakdown()


def _variant(t: PassTiming, arch: Arch, *, macs: int, actions: Actions | None = None,
             priced: bool = True) -> VariantResult:
    """The result of timing ``t`` on ``arch``; ``actions`` (default: ``t``'s) are priced on ``arch`` (``priced=False``:
    not yet, :data:`UNPRICED`)."""
    cb = cycle_breakdown(mult_cycles=t.mult_cycles, conflict=t.conflict, macs=macs,
                         multipliers=arch.total_multipliers, makespan=t.makespan)
    cb = replace(cb, reduction=t.reduction_cycles)
    acts = t.actions if actions is None else actions
    return VariantResult(cycle_breakdown=cb, energy_breakdown=energy.price(acts, arch) if priced else UNPRICED,
                         macs=macs, multipliers=arch.total_multipliers, analytical_cycles=t.analytical, actions=acts)


def _baseline(ops: Operands, pass_name: str, arch: Arch, *, rng: np.random.Generator, macs_dense: int,
              macs_effectual: int, residency: traffic.Residency, macs: int) -> tuple[PassTiming, VariantResult]:
    """(timing, result) of a baseline layer-pass: :func:`run_pass` and :func:`_variant` with ``macs``; a mask-free
    baseline's pair computed once per run and reused by every iteration (:mod:`hwsim.sim.shape_memo`)."""
    def compute() -> tuple[PassTiming, VariantResult]:
        t = run_pass(ops, pass_name, arch, rng=rng, macs_dense=macs_dense, macs_effectual=macs_effectual,
                     residency=residency)
        return t, _variant(t, arch, macs=macs)

    if not shape_memo.mask_free(arch):
        return compute()
    key = (*shape_memo.pass_key(ops, pass_name, arch, residency, macs_dense), macs)
    return shape_memo.remember(arch, key, compute)


def _plan(layers: list[Operands], geos: list, arch: Arch, *, training: bool,
          grads: list[tuple[bool, bool]]) -> dict:
    """The iteration's residency plan on ``arch`` (:func:`hwsim.sim.residency.plan`); a mask-free baseline's
    once per run for the same shapes (:mod:`hwsim.sim.shape_memo`)."""
    bd, bw = [g[0] for g in grads], [g[1] for g in grads]

    def compute() -> dict:
        return residency.plan(layers, geos, arch, training=training, input_grads=bd, weight_grads=bw)

    if not shape_memo.mask_free(arch):
        return compute()
    key = shape_memo.plan_key(layers, geos, arch, training=training, input_grads=bd, weight_grads=bw)
    return shape_memo.remember(arch, key, compute)


def _ideal(ops: Operands, pass_name: str, arch: Arch, *, eff: int, p: int,
           res: traffic.Residency = traffic.NO_RESIDENCY, bit_ops: int | None = None,
           priced: bool = True) -> VariantResult:
    mem = arch.memory
    comp = mem.compression if mem.compression != "none" else "bitmask"
    kw = dict(value_bits=arch.pe.mac_bits, compression=comp, rl_bits=mem.run_length_bits)
    roles = {"forward": ("a", "w"), "backward_data": ("dz", "w"), "backward_weight": ("a", "dz")}[pass_name]
    t_bytes = [mask_bytes(ops, r, **kw) for r in roles]  # the mask statistics counted once per layer
    in_bytes = sum(t_bytes)
    out_bytes = {"forward": ops.dz.size * ops.out_density, "backward_data": float(_nnz(ops, "a")),
                 "backward_weight": float(ops.weight_count)}[pass_name] * arch.pe.mac_bits / 8
    on_chip = (res.stream_on_chip, res.broadcast_on_chip)  # tensors = (streamed, broadcast)
    dram = sum(b for b, oc in zip(t_bytes, on_chip, strict=True) if not oc) + \
        (out_bytes if res.out_bytes is None else res.out_bytes)
    macs = eff * p
    acts = Actions(mult=macs, add=macs, acc_access=macs, reg_read=macs, xbar=0.0, sram_input_bytes=in_bytes,
                   sram_weight_bytes=0.0, sram_output_bytes=out_bytes, sram_global_bytes=dram, dram_bytes=dram)
    if bit_ops is not None:  # bit_serial / bit_fusion: each effectual product once, at its own bits
        acts = replace(acts, mult=0.0, bit_ops=bit_ops, add=eff, acc_access=eff, reg_read=eff)
        macs = bit_ops // arch.pe.mac_bits ** 2  # work in mac_bits MAC-equivalents
    cyc = -(-macs // arch.total_multipliers)
    return VariantResult(cycle_breakdown=CycleBreakdown(compute=cyc),
                         energy_breakdown=energy.price(acts, arch) if priced else UNPRICED,
                         macs=macs, multipliers=arch.total_multipliers, analytical_cycles=cyc, actions=acts)


def _nnz(ops: Operands, role: str) -> int:
    role_density(ops, role)
    return ops.memo[("nnz", role)][0]


def _out_densities(samples: Mapping[str, LayerSample]) -> dict[str, float]:
    """Density of each layer's stored forward output: the next layer's input if shapes match, else 1."""
    items = list(samples.values())
    return out_densities(list(samples), [s.geometry for s in items], [s.a_density for s in items])


def baselines(arch: Arch) -> tuple[Arch, Arch, Arch, Arch]:
    """(dense, dense-gated, dense systolic, dense equal-area) variants of ``arch``, derived once per arch (a whole run).

    Looked up by the arch object first (hashing an :class:`~hwsim.arch.Arch` serialises it: ≈ 0.1 ms a call), then
    by its content, so equal archs of one file share their baselines."""
    hit = _BY_OBJECT.get(id(arch))
    if hit is not None and hit[0] is arch:
        return hit[1]
    found = _baselines(arch, arch.source)
    if len(_BY_OBJECT) >= 16:
        _BY_OBJECT.clear()
    _BY_OBJECT[id(arch)] = (arch, found)  # the arch kept beside its baselines so its id stays its own
    return found


_BY_OBJECT: dict[int, tuple[Arch, tuple[Arch, Arch, Arch, Arch]]] = {}


@functools.lru_cache(maxsize=16)
def _baselines(arch: Arch, source: str) -> tuple[Arch, Arch, Arch, Arch]:  # source: equal archs of other files differ
    return dense_variant(arch), dense_gated_variant(arch), dense_systolic_variant(arch), dense_equal_area_variant(arch)


@one_blas_thread()
def replay(samples: Mapping[str, LayerSample], arch: Arch, *, seed: int = 0, passes: Iterable[str] = PASSES,
           progress: bool = False, where: str = "trace", training: bool = True,
           first_input_grad: bool = False, bar: tqdm | None = None, method: str | None = None,
           k: int | None = None, timelines: dict | None = None, optimizer: update.Optimizer | None = None,
           nongemm_work: NonGemmWork | None = None, shapes: dict | None = None) -> list[LayerPassResult]:
    """Simulate every layer × pass of one iteration's samples on ``arch`` and its baselines (BLAS on one thread).

    ``samples`` in execution order. ``training``: a training iteration (forward-activation stash,
    δ̃z chain); ``False`` = inference, forward pass only (module doc). ``first_input_grad``: does
    the first layer's input need a gradient? ``False`` (default): it is the network input, so the
    first layer has no backward-data GEMM and that layer-pass is left out of the results
    (:func:`first_layer_input_grad` decides it from a trace's meta). ``bar``: a tqdm bar to advance by
    one per GEMM instead of a bar of its own. ``method`` (trace meta ``method``: dither | synthetic |
    meprop | none) and ``k`` (meProp) pick the quantizer cost the sparse run pays
    (:mod:`hwsim.sim.nsd_unit`; ``None``: none; zeros it may skip: :mod:`hwsim.sim.dz_zeros`). Leakage,
    the bandwidth floor, the DRAM bound of the
    roofline (:mod:`hwsim.sim.bounds`) and the ``dense_systolic`` and ``dense_equal_area`` baselines
    (:func:`hwsim.arch.dense_systolic_variant`, :func:`hwsim.arch.dense_equal_area_variant`) are always added.
    With ``memory.schedule: iteration`` (the baselines derive it from ``arch``) each timed variant's
    layer-passes run as one SimPy schedule (:mod:`hwsim.sim.schedule`); ``timelines``: a dict to fill
    with variant → :class:`~hwsim.sim.schedule.Timeline` (left empty with the isolated schedule). A training
    iteration (all three passes) ends with the weight update of every layer with parameters (:mod:`hwsim.sim.update`, pass
    ``update``) with ``optimizer`` (default: ``arch.update.default_optimizer``).
    ``nongemm_work``: the iteration's non-GEMM work (``Trace.nongemm``), charged to every variant's vector
    unit after the GEMMs (:mod:`hwsim.sim.nongemm`); ``None``: none recorded, nothing charged.
    ``samples`` may be a :class:`~hwsim.trace.reading.LazySamples` (``Trace.sample(it, lazy=True)``): each layer is
    then decoded twice (once to count what the iteration's plans need, once to run it; the first layer once: the
    survey builds it last and hands it over) and memory stays about one layer (:mod:`hwsim.sim.survey`); the
    results are the eager mapping's. ``shapes``: a dict to fill with every
    layer's sample without its arrays (:func:`hwsim.sim.survey.shapes_only`), e.g. for
    :func:`hwsim.sim.update.update_record` without decoding the layers again.
    """
    dense, gated, systolic, equal_area = baselines(arch)
    passes = list(passes)
    if not training and passes != ["forward"]:
        raise ValueError(f"passes: {passes} with training=False; allowed: ['forward'] (inference has no "
                         "backward passes)")
    plan_archs = {"sparse": arch, "dense": dense, "dense_gated": gated, "dense_systolic": systolic,
                  "dense_equal_area": equal_area}
    # a large iteration holds one layer's arrays at a time (hwsim.sim.survey): each layer's statistics are counted
    # for the residency plans, its arrays released, and the layer looked up again when it runs
    lazy = isinstance(samples, LazySamples)
    lean = lazy or sum(np.size(s.a_mask) + np.size(s.dz_levels) for s in samples.values()) > LEAN_ELEMENTS
    sv = survey(samples, arch, plan_archs.values(), seed=seed, where=where, lean=lean, training=training,
                dz_nonzero=arch.quantizer.skip_zeros and method in NSD_METHODS)
    if shapes is not None:
        shapes.update(sv.shapes_only)
    layers, geos, flags, names, outd = sv.layers, sv.geometries, sv.flags, sv.names, sv.out_densities
    grads = layer_grads(flags, first_input_grad=first_input_grad)
    plans: dict = {}
    made: dict = {}  # residency.plan_inputs -> plan: archs that read the same (sparse, dense-gated) share one
    for v, a in plan_archs.items():
        key = residency.plan_inputs(a)
        if key not in made:
            made[key] = _plan(layers, geos, a, training=training, grads=grads)
        plans[v] = made[key]
    run = set(replayed_passes(flags, first_input_grad=first_input_grad, passes=passes))
    skip = {(names[i], p) for i in range(len(names)) for p in passes if (i, p) not in run}
    own_bar = bar is None and progress   # ``bar``: an outer progress bar (GEMMs of many iterations) to advance
    if own_bar:
        from tqdm import tqdm
        bar = tqdm(total=len(run), desc=f"simulate {arch.name}", unit="gemm")
    timed_archs = {"sparse": arch, "dense": dense, "dense_systolic": systolic, "dense_equal_area": equal_area}
    timed: dict = {v: {} for v, a in timed_archs.items() if a.memory.schedule == "iteration"}
    results = []
    for li, (name, ops) in enumerate(zip(names, layers, strict=True)):
        if lean and li == 0 and sv.first is not None:  # the survey's last-built layer: not built again
            ops, sv.first = sv.first, None
        elif lean:  # the layer's arrays again, with the statistics counted before
            ops = layers[li] = layer_operands(to_machine(samples[name]), seed=seed, out_density=outd[name],
                                              where=where, memo=ops.memo)
        for pi, pname in enumerate(passes):
            if (name, pname) in skip:  # no such GEMM in training (e.g. the network input needs no gradient)
                continue
            res = {v: pl[(name, pname)] for v, pl in plans.items()}
            rng = np.random.default_rng([seed, li, pi])
            p = operand_passes(pname, ops.dz_bits, arch.pe.mac_bits)
            macs_dense = geos[li].macs
            cache: dict = {}
            eff = streamed_macs(ops, pname, SKIP_ALL, cache=cache)
            m_s = variant_macs(ops, pname, arch, macs_dense=macs_dense, cache=cache)
            m_d = variant_macs(ops, pname, dense, macs_dense=macs_dense, cache=cache)
            bits_ideal = None
            if arch.pe.mac != "parallel":  # work in mac_bits MAC-equivalents (hwsim.sim.precision)
                m_s = precision.useful_bit_ops(ops, pname, arch, real_only=False)[1] // arch.pe.mac_bits ** 2
                bits_ideal = precision.useful_bit_ops(ops, pname, arch, real_only=True)[1]
            t_s = run_pass(ops, pname, arch, rng=rng, macs_dense=macs_dense, macs_effectual=eff,
                           residency=res["sparse"])
            t_d, v_d = _baseline(ops, pname, dense, rng=rng, macs_dense=macs_dense, macs_effectual=eff,
                                 residency=res["dense"], macs=m_d * p)
            g_acts = run_pass(ops, pname, gated, rng=rng, macs_dense=macs_dense, macs_effectual=eff,
                              timing=False, residency=res["dense_gated"]).actions
            t_y, v_y = _baseline(ops, pname, systolic, rng=rng, macs_dense=macs_dense, macs_effectual=eff,
                                 residency=res["dense_systolic"], macs=macs_dense * p)
            t_e, v_e = _baseline(ops, pname, equal_area, rng=rng, macs_dense=macs_dense, macs_effectual=eff,
                                 residency=res["dense_equal_area"], macs=macs_dense * p)
            for v, t in (("sparse", t_s), ("dense", t_d), ("dense_systolic", t_y), ("dense_equal_area", t_e)):
                if v in timed:  # the iteration's schedule times it after the loop
                    busy = t.mult_cycles + t.conflict
                    timed[v][(name, pname)] = schedule.intervals(
                        busy, t.load_bytes, t.store_bytes, dram_bytes_per_cycle=timed_archs[v].memory.dram_bytes_per_cycle)
            dens = {"w": role_density(ops, "w"), "a": role_density(ops, "a"),
                    "dz": role_density(ops, "dz"), "out": ops.out_density if pname == "forward"
                    else (role_density(ops, "a") if pname == "backward_data" else 1.0)}
            results.append(LayerPassResult(
                name=name, pass_name=pname, macs_dense=macs_dense * p, macs_effectual=eff * p, density=dens,
                dz_bits=ops.dz_bits if pname != "forward" else 0, operand_passes=p,
                sparse=_variant(t_s, arch, macs=m_s * (p if bits_ideal is None else 1), priced=False),
                dense=v_d,
                dense_gated=_variant(t_d, gated, macs=m_d * p, actions=g_acts, priced=False),
                ideal=_ideal(ops, pname, arch, eff=eff, p=p, res=res["sparse"], bit_ops=bits_ideal, priced=False),
                dense_systolic=v_y,
                dense_equal_area=v_e,
                dram_bound_cycles=bounds.dram_bound_cycles(ops, pname, arch, res["sparse"])))
            if bar is not None:
                bar.update(1)
        drop_work_cache(ops)  # the layer's count arrays are not needed by the next layer
        if lean:
            layers[li] = released(ops)
        del ops
    if own_bar:
        bar.close()
    variant_archs = {"sparse": arch, "dense": dense, "dense_gated": gated, "dense_systolic": systolic,
                     "dense_equal_area": equal_area}
    if training and set(passes) == set(PASSES):  # a whole iteration ends with the optimizer step
        opt = optimizer or update.optimizer_from_meta(None, arch.update.default_optimizer)
        upd = update.update_results(sv.shapes_only, variant_archs, opt, timed=timed, follow={"dense_gated": "dense"})
        shape_memo.share(*(getattr(lp, v) for lp in upd for v in (*variant_archs, "ideal")))  # the same every iteration
        results += upd
    if timed:  # one SimPy schedule per variant over the whole iteration; dense-gated has the dense cycles
        results, lines = schedule.retime(results, timed, plans, list(samples), follow={"dense_gated": "dense"},
                                         sources=residency.operand_sources(geos),
                                         remember=[v for v in timed if shape_memo.mask_free(timed_archs[v])],
                                         memory={v: timed_archs[v].memory for v in timed})
        if timelines is not None:
            timelines.update(lines)
    archs = {**variant_archs, "ideal": arch}
    results = nongemm.charge(results, nongemm_work, archs, priced=False)  # serial vector-unit work, before leakage
    return charges.finish(results, dict(zip(names, geos, strict=True)), archs, method=method, k=k,
                          dz_nonzero=sv.dz_nonzero)


def simulate_trace(trace: Trace, arch: Arch, *, iteration: int | None = None, seed: int = 0, progress: bool = False,
                   trace_path: str = "", arch_file: str = "", training: bool = True) -> SimResult:
    """Replay one sampled iteration of ``trace`` (a loaded :class:`~hwsim.trace.format.Trace`) on ``arch``.

    ``training=False``: inference (forward pass only, no activation stash).
    """
    from hwsim.arch import area_mm2, leakage_mw

    t0 = time.perf_counter()
    _, _, systolic, equal_area = baselines(arch)
    big = sum(math.prod(g.input_shape) + math.prod(g.output_shape) for g in trace.layers) > LEAN_ELEMENTS
    if big:  # one layer decoded at a time; freed layers' memory reused, not page-faulted in again (hwsim.sim.heap)
        heap.keep_freed_memory()
    samples = trace.sample(iteration, lazy=True) if big else trace.sample(iteration)
    known = {g.name for g in trace.layers}
    missing = [n for n in samples if n not in known]
    if missing:
        raise TraceArchMismatch(f"{trace.path}: sampled layers {missing} are not in the manifest's layer table")
    it = iteration if iteration is not None else trace.sampled_iterations[-1]
    meta = trace.meta
    in_grad = first_layer_input_grad(meta)
    first = next(iter(samples), None)
    if first is not None:  # recorded by capture: what training ran (a lazy sample: from the manifest, not decoded)
        rec = trace.grad_flags(iteration).get(first, (None, None))[0] if big else samples[first].input_grad
        if rec is not None:
            in_grad = rec
    lines: dict = {}
    shapes: dict = {}
    opt = update.optimizer_from_meta(meta, arch.update.default_optimizer)
    layers = replay(samples, arch, seed=seed, progress=progress, where=str(trace.path), training=training,
                    passes=PASSES if training else ("forward",), first_input_grad=in_grad,
                    method=meta.method, k=meta.k, timelines=lines, optimizer=opt, nongemm_work=trace.nongemm(it),
                    shapes=shapes)
    tinfo = {"path": trace_path or str(trace.path), "model": meta.model, "method": meta.method,
             "s": meta.s, "iteration": it, "dataset": meta.dataset}
    if meta.coverage is not None:  # GEMM-MAC coverage of the capture (hwsim.capture.coverage)
        tinfo["coverage"] = meta.coverage
    if meta.nongemm is not None:  # what non-GEMM work the trace records (hwsim.trace.nongemm)
        tinfo["nongemm"] = dict(meta.nongemm)
    ainfo = {"name": arch.name, "file": arch_file or arch.source, "hash": arch.content_hash(),
             "params": arch.to_dict(), "area_mm2": area_mm2(arch), "leakage_mw": leakage_mw(arch),
             "dense_systolic": {"area_mm2": area_mm2(systolic), "shape": [systolic.pe_array.rows,
                                                                          systolic.pe_array.cols]},
             "dense_equal_area": {"area_mm2": area_mm2(equal_area), "shape": [equal_area.pe_array.rows,
                                                                              equal_area.pe_array.cols]}}
    return SimResult(trace=tinfo, arch=ainfo, layers=tuple(layers),
                     run={"seed": seed, "training": training, "first_layer_input_grad": in_grad,
                          "wall_s": round(time.perf_counter() - t0, 3),
                          **({"update": update.update_record(shapes, arch, opt)} if training else {}),
                          **({"schedule": _schedule_record(lines)} if lines else {})})


def _schedule_record(lines: Mapping[str, schedule.Timeline]) -> dict:
    """``run["schedule"]`` of an iteration schedule: per timed variant its makespan (before the serial
    reduction / NSD cycles), exposed first load and last write-back; ``foreign_waits: "measured"`` says the
    layer-passes' ``memory_stall_foreign`` was measured (a results file without it predates the measurement, so
    its zeros mean "not measured", not "no wait")."""
    return {"mode": "iteration", **{f: {v: int(getattr(tl, f)) for v, tl in lines.items()}
                                    for f in ("makespan", "fill", "drain")}, "foreign_waits": "measured"}
