"""Unit tests of hwsim.sim.traffic: compressed tensor sizes, run-length fillers and DRAM traffic of one GEMM."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.sim import traffic
from hwsim.sim.traffic import Residency, dram_traffic, tensor_bytes


def _fillers_brute(mask: np.ndarray, rl: int) -> int:
    """Σ over zero runs (before each non-zero, and the trailing run) of ⌊run / 2**rl⌋, one element at a time."""
    total, run = 0, 0
    for v in np.asarray(mask).ravel():
        if v:
            total += run // (1 << rl)
            run = 0
        else:
            run += 1
    return total + run // (1 << rl)


def test_plain_format_is_every_element_at_its_width():
    assert tensor_bytes(nnz=3, size=100, value_bits=8, compression="none") == 100.0
    assert tensor_bytes(nnz=0, size=10, value_bits=16, compression="none") == 20.0


def test_bitmask_is_a_bit_per_element_plus_the_values_plus_the_format_flag():
    # 64 elements, 4 non-zeros of 8 bits: 8 bytes of mask + 4 bytes of values + 1 flag bit
    assert tensor_bytes(nnz=4, size=64, value_bits=8, compression="bitmask") == 8 + 4 + 1 / 8


def test_run_length_is_value_plus_run_bits_per_entry_fillers_included():
    # 10 non-zeros + 2 fillers, (8 + 4) bits each = 18 bytes, + the flag bit
    assert tensor_bytes(nnz=10, size=1000, value_bits=8, compression="run_length", rl_bits=4, fillers=2) == \
        18 + 1 / 8


def test_compressed_formats_fall_back_to_plain_on_dense_tensors():
    plain = 100 * 8 / 8
    for comp in ("bitmask", "run_length"):
        assert tensor_bytes(nnz=100, size=100, value_bits=8, compression=comp) == plain + 1 / 8, comp


@pytest.mark.parametrize("comp", ["none", "bitmask", "run_length"])
def test_bytes_never_decrease_with_more_non_zeros(comp):
    sizes = [tensor_bytes(nnz=n, size=256, value_bits=8, compression=comp) for n in range(0, 257, 8)]
    assert all(a <= b for a, b in zip(sizes, sizes[1:], strict=False)), sizes


def test_unknown_compression_is_named():
    with pytest.raises(ValueError, match=r"compression: 'zip' is not one of \('none', 'bitmask', 'run_length'\)"):
        tensor_bytes(nnz=1, size=2, value_bits=8, compression="zip")


@pytest.mark.parametrize("rl", [1, 2, 3, 4, 6])
def test_run_length_fillers_match_a_run_by_run_count(rl):
    rng = np.random.default_rng(rl)
    for density in (0.0, 0.02, 0.1, 0.5, 1.0):
        for n in (1, 7, 8, 9, 63, 200):
            m = rng.random(n) < density
            assert traffic.run_length_fillers(m, rl) == _fillers_brute(m, rl), (rl, density, n)


def test_run_length_fillers_by_hand():
    # rl = 2: a run of 9 zeros needs ⌊9/4⌋ = 2 fillers; a trailing run of 4 needs 1
    m = np.array([0] * 9 + [1] + [1] + [0] * 4, dtype=bool)
    assert traffic.run_length_fillers(m, 2) == 3
    assert traffic.run_length_fillers(np.zeros(0, bool), 4) == 0
    assert traffic.run_length_fillers(np.zeros(40, bool), 3) == 5


def test_mask_bytes_counts_the_mask():
    m = np.zeros((4, 16), bool)
    m[0, :3] = True
    assert traffic.mask_bytes(m, value_bits=8, compression="bitmask", rl_bits=4) == 64 / 8 + 3 + 1 / 8
    # run_length: 3 entries, plus ⌊61 / 16⌋ = 3 fillers for the trailing run
    assert traffic.mask_bytes(m, value_bits=8, compression="run_length", rl_bits=4) == 6 * 12 / 8 + 1 / 8


def test_density_bytes_matches_an_exact_count_at_the_extremes():
    for comp in ("none", "bitmask", "run_length"):
        full = traffic.density_bytes(density=1.0, size=500, value_bits=8, compression=comp, rl_bits=4)
        assert full == tensor_bytes(nnz=500, size=500, value_bits=8, compression=comp, rl_bits=4)
        empty = traffic.density_bytes(density=0.0, size=500, value_bits=8, compression=comp, rl_bits=4)
        assert empty == tensor_bytes(nnz=0, size=500, value_bits=8, compression=comp, rl_bits=4)


def test_density_bytes_grow_with_density():
    b = [traffic.density_bytes(density=d, size=10_000, value_bits=8, compression="run_length", rl_bits=4)
         for d in np.linspace(0, 1, 21)]
    assert all(x <= y for x, y in zip(b, b[1:], strict=False))


def test_dram_traffic_reads_each_operand_once_when_the_stream_fits():
    assert dram_traffic(stream_bytes=100.0, broadcast_bytes=40.0, out_bytes=30.0, on_chip_bytes=100) == \
        (140.0, 30.0, 1)


def test_dram_traffic_rereads_the_broadcast_operand_per_chunk():
    rd, wr, chunks = dram_traffic(stream_bytes=250.0, broadcast_bytes=40.0, out_bytes=30.0, on_chip_bytes=100)
    assert chunks == 3 and rd == 250 + 3 * 40 and wr == 30
    # no on-chip memory: one chunk (nothing to tile against)
    assert dram_traffic(stream_bytes=250.0, broadcast_bytes=40.0, out_bytes=0.0, on_chip_bytes=0)[2] == 1


def test_resident_operands_cost_no_read_and_the_plan_sets_the_write():
    kw = dict(stream_bytes=250.0, broadcast_bytes=40.0, out_bytes=30.0, on_chip_bytes=100)
    assert dram_traffic(**kw, residency=Residency(stream_on_chip=True)) == (40.0, 30.0, 1)
    assert dram_traffic(**kw, residency=Residency(broadcast_on_chip=True)) == (250.0, 30.0, 3)
    assert dram_traffic(**kw, residency=Residency(out_bytes=0.0)) == (370.0, 0.0, 3)
    assert dram_traffic(**kw, residency=traffic.NO_RESIDENCY) == dram_traffic(**kw)
