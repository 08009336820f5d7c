"""Traces: capture of real training gradients (torch) and the on-disk format (numpy only)."""

from hwsim.trace.format import (
    FORMAT_VERSION,
    IterationRecord,
    LayerGeometry,
    LayerSample,
    LayerStats,
    Trace,
    TraceError,
    TraceMeta,
    TraceWarning,
    TraceWriter,
    bit_width,
    load,
)

__all__ = ["FORMAT_VERSION", "IterationRecord", "LayerGeometry", "LayerSample", "LayerStats", "Trace", "TraceError",
           "TraceMeta", "TraceWarning", "TraceWriter", "bit_width", "load"]
