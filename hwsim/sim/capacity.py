"""Accumulator capacity: the output-channel group Kc of each layer-pass is sized so its partial outputs fit.

A PE's accumulator banks hold ``pe.accumulator_banks × pe.accumulator_bank_entries`` partial sums.
One output channel of a group needs, per PE (the Cartesian dataflow, SCNN §IV):

* forward (``mode="down"``): the outputs its input tile ``th × tw`` reaches, halo included —
  (⌈th / stride⌉ + ⌈(R − 1)·dil / stride⌉) × (same for columns), the accumulator address space of
  :func:`hwsim.sim.gemm._scatter_units`;
* backward-data (``mode="up"``, x = δ̃z): (th·stride + (R − 1)·dil) × (tw·stride + (S − 1)·dil);
* backward-weight: R·S sums for at least one input channel (the receptive field is split into
  channel chunks that fit, :func:`hwsim.sim.gemm.weight_grad_work`).

Kc = min(``pe.output_channel_group``, ⌊capacity / per-channel entries⌋): the configured value is
the largest group a layer may use (SCNN sizes Kc per layer to fit the accumulator buffer). The
tile depends on the mapping, which depends on the number of groups (:func:`hwsim.sim.tiling.tile_grid`),
so Kc is lowered until the chosen mapping fits; the mapper considers only tilings that fit
(:func:`hwsim.sim.tiling.tile_grid`'s ``fits``), so a long token row is split over PEs. A layer whose single output channel does not fit
raises :class:`AccumulatorOverflow` naming the layer and pass. Only the Cartesian dataflow is
checked: systolic arrays accumulate in the PEs / global buffer (SCALE-Sim's model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hwsim.sim import tiling, work

if TYPE_CHECKING:
    import numpy as np

    from hwsim.arch import Arch
    from hwsim.sim.operands import Operands


class AccumulatorOverflow(ValueError):
    """A layer-pass whose partial outputs cannot fit the accumulator banks even with Kc = 1."""


scatter_entries = tiling.scatter_entries  # accumulator entries of one output channel per PE for a tiling


def _overflow(name: str, pass_name: str, need: int, arch: Arch, what: str) -> AccumulatorOverflow:
    pe = arch.pe
    cap = pe.accumulator_banks * pe.accumulator_bank_entries
    return AccumulatorOverflow(
        f"layer {name!r} pass {pass_name}: one output channel needs {need} accumulator entries per PE "
        f"({what}) but {arch.source} has pe.accumulator_banks × pe.accumulator_bank_entries = "
        f"{pe.accumulator_banks} × {pe.accumulator_bank_entries} = {cap}; allowed: a capacity >= {need} "
        f"(more banks or entries) or a larger PE grid (smaller tiles)")


def scatter_kc(conv: work.ScatterConv, arch: Arch, *, name: str, pass_name: str) -> int:
    """Kc of a forward / backward-data GEMM on the Cartesian ``arch`` (module doc)."""
    pe = arch.pe
    cap = pe.accumulator_banks * pe.accumulator_bank_entries
    rows, cols = arch.pe_array.rows, arch.pe_array.cols
    hx, wx = conv.x.shape[2:]
    kc = pe.output_channel_group
    while True:
        tr, tc, _ = tiling.tile_grid(rows, cols, hx, wx, **tiling.scatter_mapping_inputs(conv, kc, pe.mult_i, arch))
        need = scatter_entries(conv, tr, tc)
        if need > cap:
            raise _overflow(name, pass_name, need, arch, f"a {-(-hx // tr)}×{-(-wx // tc)} tile of {hx}×{wx} "
                            f"on {tr}×{tc} PEs, halo included")
        fit = cap // need
        if fit >= kc:
            return kc
        kc = fit


def weight_grad_kc(kernel: tuple[int, int], arch: Arch, *, name: str) -> int:
    """Kc of a backward-weight GEMM: at least one input channel's R·S sums per output channel must fit."""
    pe = arch.pe
    cap = pe.accumulator_banks * pe.accumulator_bank_entries
    rs = kernel[0] * kernel[1]
    if rs > cap:
        raise _overflow(name, "backward_weight", rs, arch, f"an {kernel[0]}×{kernel[1]} kernel of one input channel")
    return min(pe.output_channel_group, cap // rs)


def scatter_conv(ops: Operands, pass_name: str, masks: tuple[np.ndarray, np.ndarray]) -> work.ScatterConv:
    """The forward (``down``) or backward-data (``up``, x = δ̃z, w = Wᵀ) GEMM of ``ops`` as a ScatterConv."""
    bmask, smask = masks
    geo = dict(stride=ops.stride, padding=ops.padding, dilation=ops.dilation, groups=ops.groups)
    if pass_name == "forward":
        return work.ScatterConv(x=smask, w=bmask, mode="down", **geo)
    if work.is_compact(bmask, ops.groups, ops.a.shape[1]):  # Wᵀ of compact groups: each group's block transposed
        k, cg, r, s = bmask.shape
        g = ops.groups
        wt = bmask.reshape(g, k // g, cg, r, s).transpose(0, 2, 1, 3, 4).reshape(g * cg, k // g, r, s)
        return work.ScatterConv(x=smask, w=wt, mode="up", **geo)
    return work.ScatterConv(x=smask, w=bmask.transpose(1, 0, 2, 3), mode="up", **geo)


def outer_product(ops: Operands, masks: tuple[np.ndarray, np.ndarray]) -> work.PixelOuterProduct:
    """The backward-weight GEMM of ``ops`` on the (broadcast δ̃z, streamed a) ``masks``."""
    dz, a = masks
    return work.PixelOuterProduct(dz=dz, a=a, groups=ops.groups, kernel=ops.kernel, stride=ops.stride,
                                  padding=ops.padding, dilation=ops.dilation)


def group_kc(ops: Operands, pass_name: str, arch: Arch, masks: tuple[np.ndarray, np.ndarray]) -> int:
    """Kc of one layer-pass: the largest <= ``pe.output_channel_group`` whose partial outputs fit the
    accumulator banks, for the (broadcast, streamed) ``masks`` the dataflow sees (module doc)."""
    if pass_name == "backward_weight":
        return weight_grad_kc(ops.kernel, arch, name=ops.name)
    return scatter_kc(scatter_conv(ops, pass_name, masks), arch, name=ops.name, pass_name=pass_name)
