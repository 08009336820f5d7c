"""SCALE-Sim v3 conventions, and hwsim's: output size of strided layers and the OS fold.

Two conventions differ between SCALE-Sim v3 (Samajdar et al.; ``scalesim`` 3.0.0 on PyPI) and
hwsim's conv arithmetic:

* **Output size.** SCALE-Sim topologies are unpadded, and SCALE-Sim computes
  ``ofmap = ⌈(H − R + stride) / stride⌉`` (its ``topology_utils.topo_calc_hyperparams``), one more
  than conv arithmetic ``⌊(H − R) / stride⌋ + 1`` whenever ``stride`` does not divide ``H − R``
  (every stride-2 layer of ResNet-18: conv1 110 vs 109, Conv3_1a 28 vs 27, the 1×1 shortcuts 29
  vs 28). A trace's geometry is what the framework ran, so captured traces use conv arithmetic;
  a SCALE-Sim file read with ``conventions="scalesim"`` (the default of ``hwsim synth --scalesim-csv`` and of
  ``synthesize(scalesim_csv=...)``; ``--conv-arithmetic`` / ``scalesim_conventions="conv"`` turn it off) pads each
  layer so that conv arithmetic gives SCALE-Sim's output size (padding ⌈(stride − (H − R) mod stride) / 2⌉ per
  axis). The reading lives in :mod:`hwsim.trace.scalesim_topology`; :func:`topology_layers` (default ``conv``,
  the file as written) and the two size functions are re-exported here.
* **OS fold.** SCALE-Sim v3 drains an output-stationary fold's outputs during the next fold's skew:
  R + C + T − 2 cycles per fold. hwsim now does the same by default (``pe.systolic_os_drain:
  scalesim``); ``serial`` keeps hwsim's earlier extra R-cycle drain (+ up to 16 % on ResNet-18).

WS folds were already SCALE-Sim's (2R + C + T − 2). :func:`layer_compute_cycles` is the per-layer
number SCALE-Sim reports as total cycles with no memory stalls (= its demand-matrix length − 1),
checked against SCALE-Sim v3 itself on ResNet-18, 32×32, WS and OS: ``tests/data/scalesim_v3/``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hwsim.sim.systolic import fold_plan, gemm_dims
from hwsim.trace.scalesim_topology import (
    CONVENTIONS,
    read_scalesim_topology,
    scalesim_ofmap,
    scalesim_padding,
)

if TYPE_CHECKING:
    import os

    from hwsim.trace.layerspec import LayerSpec

__all__ = ["CONVENTIONS", "layer_compute_cycles", "scalesim_ofmap", "scalesim_padding", "topology_layers"]


def topology_layers(path: str | os.PathLike, conventions: str = "conv") -> list:
    """Layers of a SCALE-Sim topology CSV as ``LayerSpec``: unpadded (``conv``) or padded so their output sizes
    are SCALE-Sim's (``scalesim``; :mod:`hwsim.trace.scalesim_topology`, which ``hwsim synth --scalesim-csv``
    and :func:`hwsim.trace.synth.synthesize` use, with ``scalesim`` their default)."""
    return read_scalesim_topology(path, conventions)


def layer_compute_cycles(spec: LayerSpec, dataflow: str, rows: int, cols: int, *, batch: int = 1,
                         pass_name: str = "forward", os_drain: str = "scalesim") -> int:
    """Compute cycles of one layer-pass on a ``rows × cols`` systolic array (fold model, :mod:`hwsim.sim.systolic`)."""
    g = spec.geometry(batch)
    m, kr, ncol = gemm_dims(pass_name, n=g.N, k=g.K // g.groups, c=g.C // g.groups, p=g.P, q=g.Q, r=g.R, s=g.S)
    return fold_plan(dataflow, m=m, kr=kr, ncol=ncol, rows=rows, cols=cols, repeat=g.groups,
                     os_drain=os_drain).compute_cycles
