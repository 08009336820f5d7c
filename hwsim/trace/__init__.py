"""Traces: capture of real training gradients (torch) and the on-disk format (numpy only)."""

from hwsim.trace.format import (
    FORMAT_VERSION,
    LayerGeometry,
    LayerSample,
    Trace,
    TraceError,
    TraceWriter,
    bit_width,
    load,
)

__all__ = ["FORMAT_VERSION", "LayerGeometry", "LayerSample", "Trace", "TraceError", "TraceWriter", "bit_width", "load"]
