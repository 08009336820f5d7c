"""Unit test of hwsim.capture.records.Iteration: the level statistics of an iteration's micro-batches merge into
one record (density over all elements, widest level, summed histogram, element-weighted Δ)."""

from __future__ import annotations

from hwsim.capture.quantized import LevelStats
from hwsim.capture.records import Iteration


def test_micro_batches_of_one_iteration_merge_their_level_statistics():
    it = Iteration(index=0, sampled=False)
    # levels with |k| ≤ 3 need 1 + 2 = 3 bits, |k| ≤ 12 need 1 + 4 = 5 bits; hist entry b − 2 counts b-bit levels
    it.add("fc", LevelStats(numel=100, nnz=10, max_abs=3, hist=[4, 6, 0, 0]), delta=0.5)
    assert it.stats("fc") == {"density": 0.1, "max_bits": 3, "hist": [4, 6, 0, 0], "delta": 0.5}
    it.add("fc", LevelStats(numel=300, nnz=30, max_abs=12, hist=[10, 10, 5, 5]), delta=1.5)
    # density 40 / 400; the widest level wins; histograms add; Δ weighted by elements: (50 + 450) / 400
    assert it.stats("fc") == {"density": 0.1, "max_bits": 5, "hist": [14, 16, 5, 5], "delta": 1.25}
    it.add("fc", LevelStats(numel=100, nnz=0, max_abs=0, hist=[0, 0, 0, 0]), delta=0.0)
    assert it.stats("fc")["max_bits"] == 5  # a later all-zero micro-batch does not lower it
