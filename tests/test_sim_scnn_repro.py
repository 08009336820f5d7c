"""SCNN reproduction (benchmarks/scnn_repro.py) within a generous sanity window."""

from __future__ import annotations

import pytest
from _scripts import load_script

from hwsim.arch import load_arch

repro = load_script("benchmarks/scnn_repro.py")


@pytest.fixture(scope="module")
def arch():
    return load_arch("scnn16")


def test_alexnet_han2015_forward_speedup(tmp_path, arch):
    a = repro.alexnet(tmp_path, arch)
    assert 1.3 <= a["speedup"] <= 4.0          # paper: 2.37×
    assert a["energy"] > 1.0 and a["ideal"] > a["speedup"]


def test_density_sweep_break_even_and_high_sparsity(tmp_path, arch):
    rows = repro.sweep(tmp_path, arch, densities=(1.0, 0.8, 0.5, 0.1))
    sp = [r["speedup"] for r in rows]
    assert sp == sorted(sp)                     # faster as density falls
    assert 0.5 <= repro.break_even(rows) <= 1.0  # paper ≈ 0.85
    assert 5.0 <= rows[-1]["speedup"] <= 60.0    # paper 24× at 0.1
