"""Unit tests of hwsim.arch.energy: the covering-width rule, SRAM size classes, validation, hashing."""

from __future__ import annotations

import pytest

from hwsim.arch import load_arch
from hwsim.arch.energy import BIT_OP_PJ, HOROWITZ_45NM
from hwsim.arch.errors import ArchError


@pytest.fixture(scope="module")
def arch():
    return load_arch("scnn")


def _energy(arch, **over):
    return load_arch(arch, {f"energy.{k}": v for k, v in over.items()}).energy


@pytest.mark.parametrize("bits,want", [(1, 8), (7, 8), (8, 8), (9, 16), (16, 16), (17, 32), (32, 32)])
def test_smallest_covering_width_prices_a_multiply(arch, bits, want):
    assert arch.energy.mult_pj_for(bits) == arch.energy.mult_pj[want]


def test_add_and_float_lookups(arch):
    e = arch.energy
    assert e.add_pj_for(24) == e.add_pj[32] and e.add_pj_for(8) == e.add_pj[8]
    assert e.fp_mult_pj_for(16) == HOROWITZ_45NM["fp_mult_pj"][16]
    assert e.fp_add_pj_for(17) == HOROWITZ_45NM["fp_add_pj"][32]
    assert e.max_mult_bits() == 32 and e.max_add_bits() == 32


@pytest.mark.parametrize("bits", [0, -1, 33])
def test_uncovered_width_is_an_error_naming_the_table(arch, bits):
    with pytest.raises(ArchError, match=f"energy.mult_pj: no entry covers {bits}-bit operands") as ei:
        arch.energy.mult_pj_for(bits)
    assert "tabulated: [8, 16, 32]" in str(ei.value)


def test_unsorted_table_is_looked_up_by_width(arch):
    e = _energy(arch, mult_pj={32: 3.0, 4: 0.1, 16: 0.9})
    assert [e.mult_pj_for(b) for b in (2, 4, 5, 16, 20)] == [0.1, 0.1, 0.9, 0.9, 3.0]


def test_sram_size_classes_at_their_boundaries(arch):
    e = _energy(arch, sram_small_max_bytes=100, sram_medium_max_bytes=1000, sram_small_pj_per_64b=1.0,
                sram_medium_pj_per_64b=2.0, sram_large_pj_per_64b=3.0)
    assert [e.sram_pj_per_64b(b) for b in (1, 100, 101, 1000, 1001, 10**9)] == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]


def test_medium_below_small_is_refused(arch):
    with pytest.raises(ArchError, match="below sram_small_max_bytes=2000"):
        _energy(arch, sram_small_max_bytes=2000, sram_medium_max_bytes=1000)


def test_negative_price_is_refused(arch):
    with pytest.raises(ArchError, match="dram_pj_per_64b"):
        _energy(arch, dram_pj_per_64b=-1.0)


def test_bit_op_is_an_int8_multiply_over_64_cells(arch):
    assert BIT_OP_PJ == pytest.approx(0.2 / 64)
    assert arch.energy.bit_op_pj == BIT_OP_PJ
    assert "bit_op_pj" not in arch.energy.to_dict()  # omitted at its default
    assert _energy(arch, bit_op_pj=0.01).bit_op_pj == 0.01


def test_hash_follows_content(arch):
    same = _energy(arch)
    assert hash(same) == hash(arch.energy) and same == arch.energy
    other = _energy(arch, mult_pj={8: 0.3, 16: 0.8, 32: 3.1})
    assert hash(other) != hash(arch.energy)
