"""Keep freed memory in the C heap during a large replay (glibc only; results never depend on it).

A large replay (:mod:`hwsim.sim.survey`) builds and frees arrays of 10–200 MB layer after layer. glibc serves
allocations above its mmap threshold (at most 32 MB) with fresh ``mmap`` pages and returns them on ``free``, so
every layer page-faults its arrays in again: one GPT-2-small block at seq 1024 × batch 8 spent 2–6 s of system
time per 6 s of user time in page faults. :func:`keep_freed_memory` raises the mmap threshold to
:data:`MMAP_THRESHOLD` and the trim threshold to :data:`TRIM_THRESHOLD` (``mallopt``), so freed blocks stay in
the heap and are reused: the same block then took 0.75 s of system time, peak RSS +54 MB (778 → 832 MB).

The setting is process-wide and stays for the life of the process (a later replay in the same process gains
too); elsewhere (musl, macOS, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers (malloc.h)
MMAP_THRESHOLD = 1 << 30  # bytes: allocations below it come from the heap (a layer's largest array is ~210 MB)
TRIM_THRESHOLD = 1 << 31  # bytes of free heap top kept instead of returned to the kernel (bounded by the peak)


@functools.cache
def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds once per process (module doc); ``True`` if both were accepted."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc: nothing to set
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
