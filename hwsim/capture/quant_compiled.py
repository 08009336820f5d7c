"""The compiled CPU quantizers: NSD and the int8 view's statistics in one C pass over δz (optional).

:mod:`hwsim.capture.quant` calls these for float32 CPU δz when the C extension ``hwsim.capture._nsdkernel`` is
built (``pip install`` builds it when a C compiler is present; in a checkout, ``python setup.py build_ext
--inplace``) and ``HWSIM_QUANT_PATH`` is not ``numpy``. They give exactly the numpy path's results, so traces at a
seed do not depend on which path ran:

* :func:`nsd` — after Δ = s·σ is known (σ from ``quant._std_rms``, unchanged), one pass draws the dither from the
  same numpy SFC64 stream (the generator's state is read, advanced in C and written back: the same raw 64-bit
  words as ``random_raw``), computes the levels ⌊δz/Δ + u⌋ with the same float32 arithmetic (rounded once, as
  torch's FMA in ``add_(x, alpha=…)``, or twice, as numpy's multiply-then-add for tensors of at most
  ``quant._SMALL`` elements — torch's rounding is measured once per process, :func:`torch_fuses`), writes δ̃z =
  level·Δ once, the levels only when asked (sampled iterations), and gathers the level statistics
  (:class:`LevelStats`) and the noise sums (Σδz·level in float64, where the numpy path uses a float32 BLAS dot:
  the noise statistics agree to ~1e-7 relative, the levels and Δ exactly).
* :func:`view_stats` — ``quant.counted_view``'s statistics (two reads of δz, no writes; a permuted δz is read in
  memory order, without a copy: the counts do not depend on the order).

Tensors below ``quant._RAW_MIN`` elements draw ``Generator.random``'s uniforms instead (numpy's 32-bit draws, a
left-over half kept in the generator's state as numpy keeps it). Other dtypes, other devices and other bit
generators stay on the numpy / torch paths.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np
import torch

from hwsim._native import optional_extension
from hwsim.capture.quantized import LevelStats, Quantized, memory_order

NSD_KERNEL_API = 2  # the compiled module's interface version (NSD_KERNEL_API in _nsdkernel.c)
_ext, IMPORT_ERROR = optional_extension("hwsim.capture._nsdkernel", NSD_KERNEL_API)  # (None, why): not built / stale

EXACT_REBUILD = 1 << 22  # |level| below this: level = rint(δ̃z/Δ) exactly (δ̃z = level·Δ rounded once in float32)
_PROBE = 2 * 32768 + 37  # elements of the FMA probe: two of torch's parallel grains and a scalar tail
_fuses: list[bool | None] = []  # torch_fuses()'s answer, measured once


def extension():  # noqa: ANN201 - the extension module (no stub to name its type)
    """The compiled module (one import for capture: the sfc64 NSD here, the counter dither in
    :mod:`hwsim.capture.quant_counter`), or None where it is not built or stale."""
    return _ext


def available() -> bool:
    """Is the C extension built and usable here (little-endian, as numpy's ``view(float32)`` of raw words)?"""
    return _ext is not None and sys.byteorder == "little"


def isa() -> str:
    """The instruction set the kernel's loops use (``avx2+fma`` or ``baseline``); ``none`` if not built."""
    return _ext.isa() if _ext is not None else "none"


def torch_fuses() -> bool | None:
    """Does torch's CPU ``u.add_(x, alpha=a)`` round x·a + u once (an FMA: True) or twice (False)? None when it
    matches neither on a probe (then NSD of more than ``quant._SMALL`` elements keeps the numpy path).

    Measured once per process on random data where the two differ in ~30 % of the elements; it depends on the CPU
    capability torch dispatches to (``ATEN_CPU_CAPABILITY``), not on the data."""
    if not _fuses:
        rng = np.random.default_rng(12345)
        x = rng.standard_normal(_PROBE).astype(np.float32)
        u = ((2 * rng.integers(0, 1 << 23, _PROBE) + 1) * 2.0**-24).astype(np.float32)
        alpha = 1.0 / 1.37
        got = torch.from_numpy(u.copy()).add_(torch.from_numpy(x), alpha=alpha).numpy()
        answer = None
        for fused in (True, False):
            out = np.empty_like(x)
            _ext.muladd(x, u, alpha, fused, out)
            if np.array_equal(out, got):
                answer = fused
        _fuses.append(answer)
    return _fuses[0]


def nsd(x: torch.Tensor, *, delta: float, fused: bool, generator: np.random.Generator, sum_sq: float,
        keep_levels: bool, bound: float, small: bool = False) -> Quantized:
    """NSD of a float32 CPU tensor ``x`` (any shape and strides, read in row-major order) with step ``delta``
    (> 0, a normal float) — module doc.

    ``fused``: round x/Δ + u once (the numpy path's torch route) or twice (its numpy route); ``small``: the uniforms
    of ``Generator.random`` (the numpy path's route below ``quant._RAW_MIN`` elements). ``sum_sq``: Σx² of the
    std (Σδz² of the noise sums). ``keep_levels``: also write the levels (else :meth:`Quantized.level_tensor`
    rebuilds them from δ̃z, exact below 2^22; a larger ``bound`` on |level| writes them anyway)."""
    xc = x.detach().contiguous()  # row-major: the C loops read it (and write the outputs) as one flat buffer
    values = torch.empty(xc.shape, dtype=torch.float32)
    levels = torch.empty(xc.shape, dtype=torch.float32) if keep_levels or bound >= EXACT_REBUILD else None
    a, out, lv = xc.numpy(), values.numpy(), None if levels is None else levels.numpy()
    bg = generator.bit_generator
    with bg.lock:
        st = bg.state
        if small:
            nnz, mx, hist, skk, sxk, st["has_uint32"], st["uinteger"] = _ext.nsd_small(
                a, st["state"]["state"], st["has_uint32"], st["uinteger"], 1.0 / delta, delta, out, lv)
        else:
            nnz, mx, hist, skk, sxk = _ext.nsd(a, st["state"]["state"], 1.0 / delta, delta, fused, out, lv)
        bg.state = st
    stats = LevelStats(numel=a.size, nnz=nnz, max_abs=int(mx), hist=list(hist))
    return Quantized(values=values, levels=levels, delta=delta, bound=bound, stats=stats, sum_sq=sum_sq,
                     noise=(sum_sq, skk * delta * delta, sxk * delta),
                     make_levels=None if levels is not None else rebuild_levels(values, delta))


def rebuild_levels(values: torch.Tensor, delta: float) -> Callable[[], torch.Tensor]:
    """The levels from δ̃z = fl32(level·fl32(Δ)): rint(δ̃z/fl32(Δ)) in float64 is exact for |level| <
    :data:`EXACT_REBUILD` (both dithers' kernels keep only δ̃z on unsampled iterations); Δ = 0: all zero."""
    def levels() -> torch.Tensor:
        v = values.numpy().astype(np.float64)
        if not delta:
            return torch.from_numpy(np.zeros_like(v, np.float32))
        return torch.from_numpy(np.rint(v / float(np.float32(delta))).astype(np.float32))
    return levels


def view_stats(dz: torch.Tensor) -> tuple[float, LevelStats] | None:
    """(Δ, statistics) of ``quant.counted_view`` for a float32 CPU δz; None when it holds NaN/Inf or max|δz|/127
    is not a normal float32 (the caller's torch view handles those)."""
    a = memory_order(dz.detach()).reshape(-1).numpy()  # order-free counts: a permuted δz is read as it lies
    got = _ext.view_stats(a)
    if got is None:
        return None
    mx, nnz, top, hist = got
    return mx / 127, LevelStats(numel=a.size, nnz=nnz, max_abs=top, hist=list(hist))
