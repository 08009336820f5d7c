"""Unit tests of hwsim.arch.variants (derived baselines) and hwsim.sim.analytic (closed form, breakdown)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwsim.arch import load_arch
from hwsim.arch.variants import dense_gated_variant, dense_systolic_variant, dense_variant, systolic_shape
from hwsim.sim.analytic import closed_form_cycles, cycle_breakdown
from hwsim.sim.model import simulate_intervals

# ---- variants ----


def _diff(a, b, prefix=""):
    """Dotted paths where two arch dicts differ."""
    out = set()
    for k in set(a) | set(b):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out |= _diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.add(f"{prefix}{k}")
    return out


@pytest.fixture(scope="module")
def scnn():
    return load_arch("scnn")


def test_dense_variant_turns_off_only_the_sparse_machinery(scnn):
    d = dense_variant(scnn)
    assert d.name == "scnn-dense"
    assert not (d.zero_skip.weights or d.zero_skip.activations or d.zero_skip.gradients)
    assert d.zero_gating is False and d.memory.compression == "none"
    assert d.pe.mac == "parallel"
    assert d.total_multipliers == scnn.total_multipliers and d.pe_array == scnn.pe_array
    changed = _diff(scnn.to_dict(), d.to_dict())
    assert changed <= {"name", "zero_skip.weights", "zero_skip.activations", "zero_skip.gradients", "zero_gating",
                       "memory.compression", "pe.mac", "pe.bit_serial_mode", "pe.serial_sign_cycle",
                       "pe.bit_fusion_widths", "pe.serial_lanes"}
    assert {"name", "zero_skip.weights", "memory.compression"} <= changed


def test_dense_gated_keeps_compression_and_gates(scnn):
    g = dense_gated_variant(scnn)
    assert g.name == "scnn-dense_gated"
    assert g.zero_gating is True and g.memory.compression == scnn.memory.compression == "run_length"
    assert not g.zero_skip.weights
    unc = load_arch(scnn, {"memory.compression": "none"})
    assert dense_gated_variant(unc).memory.compression == "bitmask"


def test_variant_names_do_not_stack(scnn):
    d = dense_variant(scnn)
    assert dense_variant(d).name == "scnn-dense"
    assert dense_gated_variant(d).name == "scnn-dense_gated"
    assert dense_variant(dense_gated_variant(scnn)).name == "scnn-dense"
    assert dense_systolic_variant(d).name == "scnn-dense_systolic"
    assert dense_variant(dense_systolic_variant(scnn)).name == "scnn-dense"


def test_bit_serial_arch_gets_parallel_baselines():
    bs = load_arch("scnn_bitserial")
    assert bs.pe.mac != "parallel"
    for v in (dense_variant(bs), dense_gated_variant(bs), dense_systolic_variant(bs)):
        assert v.pe.mac == "parallel" and v.pe.mac_bits == bs.pe.mac_bits


@pytest.mark.parametrize("m,shape", [(1024, (32, 32)), (64, (8, 8)), (128, (8, 16)), (12, (3, 4)), (7, (1, 7)),
                                     (1, (1, 1)), (2048, (32, 64))])
def test_systolic_shape(m, shape):
    assert systolic_shape(m) == shape
    r, c = shape
    assert r * c == m and r <= c


def test_dense_systolic_has_equal_multipliers_one_mac_pes(scnn):
    s = dense_systolic_variant(scnn)
    assert s.name == "scnn-dense_systolic" and s.dataflow == "systolic_ws"
    assert (s.pe_array.rows, s.pe_array.cols) == (32, 32)
    assert s.pe.mult_f == s.pe.mult_i == 1
    assert s.total_multipliers == scnn.total_multipliers
    assert s.zero_gating is False and s.memory.compression == "none" and not s.zero_skip.activations
    assert s.pe.mac_bits == scnn.pe.mac_bits and s.pe.accumulator_bits == scnn.pe.accumulator_bits
    assert s.memory.global_buffer_bytes == scnn.memory.global_buffer_bytes
    assert dense_systolic_variant(scnn, "systolic_os").dataflow == "systolic_os"


def test_variants_leave_the_source_arch_alone(scnn):
    before = scnn.to_dict()
    dense_variant(scnn)
    dense_gated_variant(scnn)
    dense_systolic_variant(scnn)
    assert scnn.to_dict() == before


# ---- analytic.closed_form_cycles ----


def test_closed_form_unlimited_bandwidth_is_sum_of_barriers():
    busy = np.array([[3, 5, 1], [2, 2, 9], [4, 0, 4]])
    z = np.array([100.0, 200.0, 300.0])
    assert closed_form_cycles(busy, z, z, dram_bytes_per_cycle=math.inf) == 5 + 9 + 4


def test_closed_form_by_hand():
    busy = np.array([[10], [2], [7]])
    loads = np.array([32.0, 64.0, 16.0])  # at 16 B/cycle: L = 2, 4, 1
    stores = np.array([48.0, 16.0, 80.0])  # S = 3, 1, 5
    # T = L0 + max(C0, L1 + 0) + max(C1, L2 + S0) + max(C2, 0 + S1) + S2
    want = 2 + max(10, 4) + max(2, 1 + 3) + max(7, 0 + 1) + 5
    assert closed_form_cycles(busy, loads, stores, dram_bytes_per_cycle=16.0) == want == 28


def test_closed_form_rounds_transfers_up():
    busy = np.array([[1]])
    assert closed_form_cycles(busy, np.array([17.0]), np.array([1.0]), dram_bytes_per_cycle=16.0) == 2 + 1 + 1


def test_closed_form_empty():
    e = np.zeros((0, 4))
    assert closed_form_cycles(e, np.zeros(0), np.zeros(0), dram_bytes_per_cycle=8.0) == 0


def test_closed_form_matches_simpy_with_unlimited_bandwidth():
    rng = np.random.default_rng(0)
    busy = rng.integers(0, 50, (6, 4))
    ld = rng.integers(0, 1000, 6).astype(float)
    st = rng.integers(0, 1000, 6).astype(float)
    sim = simulate_intervals(busy, ld, st, dram_bytes_per_cycle=math.inf)
    assert closed_form_cycles(busy, ld, st, dram_bytes_per_cycle=math.inf) == sim == int(busy.max(axis=1).sum())


# ---- analytic.cycle_breakdown ----


def test_breakdown_by_hand():
    mult = np.array([[4, 2], [3, 3]])  # 2 intervals × 2 PEs; Σ = 12 multiplier cycles
    conf = np.array([[1, 0], [0, 2]])  # busy = [[5, 2], [3, 5]]; Σ = 15
    b = cycle_breakdown(mult_cycles=mult, conflict=conf, macs=37, multipliers=8, makespan=14)
    compute = math.ceil(37 / 8)  # 5
    assert b.compute == compute
    assert b.fragmentation == 12 // 2 - compute  # ⌈12/2⌉ − 5 = 1
    assert b.bank_conflict == math.ceil(15 / 2) - 6  # 8 − 6 = 2
    assert b.imbalance == (5 + 5) - 8
    assert b.memory_stall == 14 - 10
    assert b.total == 14  # the parts add up to the makespan


def test_breakdown_rounds_up_per_pe():
    mult = np.array([[3, 2]])  # Σ = 5 over 2 PEs: ⌈2.5⌉ = 3
    b = cycle_breakdown(mult_cycles=mult, conflict=np.zeros_like(mult), macs=5, multipliers=2, makespan=3)
    assert (b.compute, b.fragmentation, b.bank_conflict, b.imbalance, b.memory_stall) == (3, 0, 0, 0, 0)


def test_breakdown_zero_macs_and_empty():
    e = np.zeros((0, 3), dtype=np.int64)
    b = cycle_breakdown(mult_cycles=e, conflict=e, macs=0, multipliers=16, makespan=7)
    assert b.compute == 0 and b.memory_stall == 7 and b.total == 7


def test_breakdown_inconsistent_work_raises():
    mult = np.array([[1, 1]])
    with pytest.raises(AssertionError, match="inconsistent work: compute"):
        cycle_breakdown(mult_cycles=mult, conflict=np.zeros_like(mult), macs=100, multipliers=2, makespan=5)
    with pytest.raises(AssertionError, match="makespan 0 < barrier sum 1"):
        cycle_breakdown(mult_cycles=mult, conflict=np.zeros_like(mult), macs=2, multipliers=2, makespan=0)
