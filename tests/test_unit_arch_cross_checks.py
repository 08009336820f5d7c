"""Checks across an architecture's sections (hwsim/arch/spec.py ``Arch._check``) that a single field cannot make,
each refused in one line naming the file, the field and what is allowed; and the derived properties every model
reads (variant, systolic or not, operand scheduling, vector lanes, peak MAC rate)."""

from __future__ import annotations

import re

import pytest

from hwsim.arch import ArchError, load_arch
from hwsim.arch.loader import ARCH_DIR

NO_SKIP = {"zero_skip.weights": False, "zero_skip.activations": False, "zero_skip.gradients": False}


@pytest.mark.parametrize("name,overrides,message", [
    ("scnn_bitserial", {"dataflow": "systolic_ws", "pe.mult_f": 1, "pe.mult_i": 1, **NO_SKIP},
     "pe.mac: bit_serial with dataflow systolic_ws (only the Cartesian dataflow models precision-exploiting "
     "multipliers); allowed: parallel"),
    # every pass must be Cartesian: a gathering backward pass is refused too
    ("scnn_bitserial", {"dataflow": {"forward": "cartesian", "backward_data": "dz_gather",
                                     "backward_weight": "cartesian"}},
     "pe.mac: bit_serial with dataflow forward: cartesian, backward_data: dz_gather, backward_weight: cartesian "
     "(only the Cartesian dataflow models precision-exploiting multipliers); allowed: parallel"),
    ("scnn_bitserial", {"zero_gating": True},
     "zero_gating: true with pe.mac bit_serial (gating of bit-serial/bit-fusion multipliers is not modelled; the "
     "dense_gated baseline uses parallel MACs); allowed: false"),
    ("systolic32", {"pe.mult_i": 4},
     "pe.mult_i: 4 with dataflow systolic_ws (dot-product lanes per PE need the reduction along time); allowed: 1, "
     "or use systolic_os"),
    ("systolic32", {"zero_skip.activations": True},
     "zero_skip.activations: true with dense dataflow systolic_ws; allowed: false; a systolic_os array schedules "
     "activations / gradients (TensorDash); dataflow: cartesian skips any role"),
    # an output-stationary array may schedule activations or gradients, never skip weights
    ("systolic32", {"dataflow": "systolic_os", "zero_skip.weights": True},
     "zero_skip.weights: true with dataflow systolic_os; allowed: false; a systolic_os array schedules "),
])
def test_a_combination_no_model_covers_is_refused(name, overrides, message):
    with pytest.raises(ArchError, match="^" + re.escape(f"{ARCH_DIR / (name + '.yaml')}: {message}")):
        load_arch(name, overrides)


@pytest.mark.parametrize("name,overrides,variant,systolic,schedules,lanes", [
    ("scnn", {}, "sparse", False, False, 64),                       # one vector lane per PE
    ("scnn", {**NO_SKIP, "zero_gating": True}, "dense_gated", False, False, 64),
    ("scnn", NO_SKIP, "dense", False, False, 64),
    ("systolic32", {}, "dense", True, False, 32),                    # one lane per PE column
    ("tensordash", {}, "sparse", True, True, 32),                   # 4 lanes per column × 8 columns
    ("tensordash", NO_SKIP, "dense", True, False, 32),
])
def test_derived_properties(name, overrides, variant, systolic, schedules, lanes):
    a = load_arch(name, overrides)
    assert (a.variant, a.is_systolic, a.schedules_operands, a.vector_lanes) == (variant, systolic, schedules, lanes)


def test_peak_rate_and_per_pass_dataflow():
    a = load_arch("scnn", {"clock_ghz": 0.5, "dataflow": {"forward": "cartesian", "backward_data": "dz_gather",
                                                          "backward_weight": "cartesian"}})
    assert a.total_multipliers == 64 * 16 and a.peak_macs_per_second == 1024 * 0.5e9
    assert [a.pass_dataflow(p) for p in ("forward", "backward_data", "backward_weight")] == [
        "cartesian", "dz_gather", "cartesian"]
    assert load_arch("scnn", {"vector.lanes_per_pe": 2}).vector_lanes == 128
    assert load_arch("scnn", {"vector.lanes": 10, "vector.lanes_per_pe": 2}).vector_lanes == 10   # a total wins
