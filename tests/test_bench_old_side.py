"""benchmarks/bench_wholerun.py --timing's old side: the trace copy in the layout a simulator from before the
iteration log reads holds the same records and samples (the new reader reads both layouts)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from _scripts import load_script

from hwsim.trace.format import load
from hwsim.trace.synth import synthesize

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    return load_script("benchmarks/bench_wholerun.py")


def test_the_old_layout_copy_holds_the_same_records_and_samples(tmp_path):
    src = synthesize(tmp_path / "t", model="lenet5", batch=2, a_density=0.5, dz_density=0.3, seed=1)
    man = json.loads((src / "manifest.json").read_text())
    assert "iteration_log" in man and "iterations" not in man  # the layout the old code cannot read
    copy = Path(_bench().old_format_copy(str(src), str(tmp_path / "old")))
    old = json.loads((copy / "manifest.json").read_text())
    assert old["version"] == 1 and "iteration_log" not in old and len(old["iterations"]) >= 1
    a, b = load(src), load(copy)
    assert [r.index for r in a.iterations] == [r.index for r in b.iterations]
    assert a.iterations == b.iterations and a.sampled_iterations == b.sampled_iterations
    for it in a.sampled_iterations:
        sa, sb = a.sample(it), b.sample(it)
        assert list(sa) == list(sb)
        for name in sa:
            assert np.array_equal(sa[name].dz_levels, sb[name].dz_levels)
            assert np.array_equal(sa[name].a_mask, sb[name].a_mask)
