"""The on-disk layout of a trace directory: file names, format name and versions, size limits (a leaf).

The writer (:mod:`hwsim.trace.writer`), the reader (:mod:`hwsim.trace.format`, :mod:`hwsim.trace.reading`) and
the iteration log (:mod:`hwsim.trace.iterlog`) all take these from here, so the two sides cannot disagree.
"""

from __future__ import annotations

FORMAT_NAME = "hwsim-trace"
FORMAT_VERSION = 3  # written
READABLE_VERSIONS = (1, 2, 3)  # v1: linear and conv2d only, symmetric padding; v1 and v2: iterations in the manifest

MANIFEST = "manifest.json"
SAMPLES_DIR = "samples"
ITERATION_LOG = "iterations.jsonl"

MAX_TENSOR_ELEMENTS = 1 << 28  # per stored tensor (δ̃z, layer input, weights) of one layer
MAX_MANIFEST_BYTES = 256 << 20  # manifest.json
MAX_LINE_BYTES = 16 << 20  # one iteration's record in the iteration log (≈ 150 B per layer: 100 k layers)
MAX_LOG_BYTES = 4 << 30  # the whole iteration log

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "ITERATION_LOG", "MANIFEST", "MAX_LINE_BYTES", "MAX_LOG_BYTES",
           "MAX_MANIFEST_BYTES", "MAX_TENSOR_ELEMENTS", "READABLE_VERSIONS", "SAMPLES_DIR"]
