"""The replay's first walk over one iteration's layers: what the whole iteration needs before any layer runs.

:func:`survey` looks every layer up once, in execution order, and keeps only small per-layer summaries: the
machine geometry (:mod:`hwsim.sim.mapping`), the input density, the gradient flags, the sample without its
arrays (for the optimizer step's parameter counts) and — for ``quantizer.skip_zeros`` — the dense-δz counts of
:mod:`hwsim.sim.dz_zeros` (that test reads a layer's δ̃z beside the next layer's input, so the previous layer's
levels are the one array kept from one layer to the next).

``lean``: a large iteration. Each layer's mask statistics for the residency plans are counted
(:func:`hwsim.sim.residency.warm`) and its arrays released (:func:`hwsim.sim.operands.released`) before the next
layer is looked up; the replay looks the layer up again when it runs it. With a lazy sample
(:class:`hwsim.trace.reading.LazySamples`) memory is then the packed sample plus about one layer, not the whole
iteration decoded. A lean survey walks the layers last to first, so the layer it builds last is the one the replay
runs first: that layer's operands are kept whole (:attr:`Survey.first`) and not built a second time. Otherwise the
machine samples are kept and the layers built at their output densities.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from hwsim.sim import dz_zeros, residency
from hwsim.sim.layerops import check, layer_operands
from hwsim.sim.mapping import to_machine
from hwsim.sim.operands import Operands, released

if TYPE_CHECKING:
    from hwsim.arch import Arch
    from hwsim.trace.schema import LayerGeometry, LayerSample


@dataclass
class Survey:
    """Per-layer summaries of one iteration (module doc), every list in execution order."""

    names: list[str]
    geometries: list[LayerGeometry]          # machine geometries (linear / symmetric conv2d)
    out_densities: dict[str, float]          # density of each layer's stored forward output (next layer's input)
    flags: list[tuple[bool | None, bool | None]]  # (input_grad, weight_grad) as recorded
    shapes_only: dict[str, LayerSample]      # the traced samples with zero-cost stand-ins for their arrays
    layers: list[Operands]                   # lean: released operands (statistics counted); else full operands
    dz_nonzero: dict[str, int] | None        # dz_zeros.dense_dz_nonzero of the machine samples, if asked for
    first: Operands | None = None            # lean: the first layer's full operands (built last), for the replay


def shapes_only(s: LayerSample) -> LayerSample:
    """``s`` with its arrays replaced by broadcast zero views of their shapes (no memory): geometry, flags, bits
    and ``w_density`` stay; densities computed from the masks read 0."""
    def stub(x: np.ndarray | None) -> np.ndarray | None:
        if x is None:
            return None
        x = np.asarray(x)
        return np.broadcast_to(np.zeros((), dtype=x.dtype), x.shape)

    return replace(s, dz_levels=stub(s.dz_levels), a_mask=stub(s.a_mask), w_mask=stub(s.w_mask))


def out_densities(names: list[str], geometries: list[LayerGeometry], a_densities: list[float]) -> dict[str, float]:
    """Density of each layer's stored forward output: the next layer's input density if shapes match, else 1."""
    out = {}
    for i, (nm, g) in enumerate(zip(names, geometries, strict=True)):
        same = i + 1 < len(names) and geometries[i + 1].input_shape == g.output_shape
        out[nm] = a_densities[i + 1] if same else 1.0
    return out


def survey(samples: Mapping[str, LayerSample], arch: Arch, plan_archs: Iterable[Arch], *, seed: int, where: str,
           lean: bool, training: bool, dz_nonzero: bool) -> Survey:
    """One walk over ``samples`` (each layer looked up once; module doc). ``plan_archs``: the archs whose
    residency plans a lean replay counts statistics for; ``dz_nonzero``: compute the dense-δz counts."""
    plan_archs = list(plan_archs)
    order = list(samples)
    walk = order[::-1] if lean else order  # lean: last to first, so the first layer is the one left built
    geos, dens, flags, light, layers, kept = {}, {}, {}, {}, {}, []
    found: dict[str, int] = {}
    first: Operands | None = None
    nxt: tuple[LayerGeometry, np.ndarray] | None = None  # lean: the next layer's input mask (dz_nonzero)
    prev: tuple[str, LayerGeometry, np.ndarray] | None = None  # else: the previous layer's δ̃z levels (dz_nonzero)
    for nm in walk:
        s = samples[nm]
        m = to_machine(s)  # trace-v2 kinds → linear / symmetric conv2d (hwsim.sim.mapping)
        check(m, arch, where)
        g = m.geometry
        geos[nm] = g
        dens[nm] = m.a_density
        flags[nm] = (m.input_grad, m.weight_grad)
        light[nm] = shapes_only(s)
        if dz_nonzero:  # δ̃z of a layer beside the next layer's input, whichever of the two is looked up first
            if lean and nxt is not None:  # walking backwards: this layer's δ̃z, the later layer seen just before
                _count_dense_dz(found, nm, g, m.dz_levels, *nxt)
            elif not lean and prev is not None:  # walking forwards: the previous layer's δ̃z, this layer's input
                _count_dense_dz(found, prev[0], prev[1], prev[2], g, m.a_mask)
            nxt, prev = (g, m.a_mask), (nm, g, m.dz_levels)
        if lean:  # out_density is not read by the statistics the plans count; the run loop rebuilds the layer
            ops = layer_operands(m, seed=seed, out_density=1.0, where=where)
            residency.warm(ops, plan_archs, training=training)
            if nm == order[0]:
                first = ops  # the replay runs this layer next: kept whole, not built again
            layers[nm] = released(ops)
            del ops
        else:
            kept.append(m)
        del m, s
    nxt = prev = None
    names = order
    geo_list = [geos[nm] for nm in names]
    outd = out_densities(names, geo_list, [dens[nm] for nm in names])
    if lean:
        built = [replace(layers[nm], out_density=outd[nm]) for nm in names]
        if first is not None:
            first = replace(first, out_density=outd[names[0]])
    else:
        built = [layer_operands(m, seed=seed, out_density=outd[nm], where=where) for m, nm in zip(kept, names,
                                                                                                 strict=True)]
    nonzero = {nm: found[nm] for nm in names if nm in found} if dz_nonzero else None
    return Survey(names=names, geometries=geo_list, out_densities=outd, flags=[flags[nm] for nm in names],
                  shapes_only={nm: light[nm] for nm in names}, layers=built, dz_nonzero=nonzero, first=first)


def _count_dense_dz(found: dict[str, int], name: str, geometry: LayerGeometry, dz_levels: np.ndarray,
                    later: LayerGeometry, later_input: np.ndarray) -> None:
    """``found[name]`` = the dense-δz count of layer ``name`` (:func:`hwsim.sim.dz_zeros.relu_mask_nonzero` of its
    δ̃z levels beside the later layer's input mask), when the two are one chain (shapes match) and the test holds."""
    if geometry.output_shape != later.input_shape:
        return
    known = dz_zeros.relu_mask_nonzero(np.asarray(dz_levels), np.asarray(later_input))
    if known is not None:
        found[name] = known
