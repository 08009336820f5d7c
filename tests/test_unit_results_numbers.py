"""The number check every results field goes through (hwsim/results/breakdown.py ``check_number``) and the shape
errors of one variant's record: each names the field and what is allowed."""

from __future__ import annotations

import re

import pytest

from hwsim.results.breakdown import ResultsError, VariantResult, check_number


@pytest.mark.parametrize("x,kw", [(0, {}), (3.5, {}), (1e12, {}), (1.0, {"hi": 1.0}), (None, {"nullable": True})])
def test_numbers_that_pass(x, kw):
    check_number(x, "f", **kw)


@pytest.mark.parametrize("x,kw,message", [
    (-1, {}, "f: -1 is not allowed; allowed: a finite number >= 0"),
    (float("inf"), {}, "f: inf is not allowed; allowed: a finite number >= 0"),
    (float("nan"), {}, "f: nan is not allowed; allowed: a finite number >= 0"),
    (True, {}, "f: True is not allowed; allowed: a finite number >= 0"),
    ("3", {}, "f: '3' is not allowed; allowed: a finite number >= 0"),
    (None, {}, "f: None is not allowed; allowed: a finite number >= 0"),
    (1.5, {"hi": 1.0}, "f: 1.5 is not allowed; allowed: a number in [0, 1]"),
    (-0.5, {"hi": 1.0, "nullable": True}, "f: -0.5 is not allowed; allowed: a number in [0, 1] or null"),
])
def test_numbers_that_are_refused(x, kw, message):
    with pytest.raises(ResultsError) as e:
        check_number(x, "f", **kw)
    assert str(e.value) == message


def test_a_variant_record_of_the_wrong_shape_is_named():
    with pytest.raises(ResultsError, match=re.escape("v: must be an object, got list")):
        VariantResult.from_json([], where="v")
    with pytest.raises(ResultsError, match=re.escape("v.breakdown: must be an object, got int")):
        VariantResult.from_json({"breakdown": 7}, where="v")
    with pytest.raises(ResultsError, match=re.escape("v.breakdown.cycles: must be an object, got int")):
        VariantResult.from_json({"breakdown": {"cycles": 3, "energy_pj": {}}}, where="v")
    with pytest.raises(ResultsError, match=re.escape("v: field 'breakdown' is missing")):
        VariantResult.from_json({"cycles": 0}, where="v")
