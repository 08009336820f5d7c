"""Unit tests of hwsim.arch.fields on a toy Validated dataclass: every field kind, range, message and to_dict."""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import Mapping
from dataclasses import dataclass

import pytest

from hwsim.arch.errors import ArchError
from hwsim.arch.fields import Validated, allowed_text, required_fields, spec


@dataclass(frozen=True, kw_only=True)
class Inner(Validated):
    n: int = spec(ge=1, default=2)


@dataclass(frozen=True, kw_only=True)
class Toy(Validated):
    size: int = spec(ge=1, doc="a size")
    frac: float = spec(gt=0, le=1)
    name: str = spec(choices=("a", "b"), default="a")
    flag: bool = spec(default=False)
    bw: float = spec(ge=0, allow_inf=True, default=1.0)
    widths: tuple[int, ...] = spec(ge=1, default=(2, 4))
    table: Mapping[int, float] = spec(default_factory=lambda: {8: 1.0})
    inner: Inner = spec(default_factory=Inner)
    extra: int = spec(ge=0, default=0, omit_default=True)
    mode: int = spec(choices=(1, 2), default=1)


def _err(**kw) -> ArchError:
    base = {"size": 4, "frac": 0.5}
    with pytest.raises(ArchError) as ei:
        Toy(**{**base, **kw})
    return ei.value


def test_valid_values_are_normalised():
    t = Toy(size=4.0, frac=1, widths=[1, 3], table={"16": 2, 8: 1})
    assert t.size == 4 and isinstance(t.size, int)
    assert t.frac == 1.0 and isinstance(t.frac, float)
    assert t.widths == (1, 3)
    assert list(t.table.items()) == [(8, 1.0), (16, 2.0)]  # keys as ints, sorted
    with pytest.raises(TypeError):
        t.table[8] = 3.0  # read-only
    assert Toy(size=1, frac=0.1, bw=math.inf).bw == math.inf


@pytest.mark.parametrize("kw,problem", [
    ({"size": 0}, "0 is out of range"),
    ({"size": True}, "must be an integer, got True (bool)"),
    ({"size": "8"}, "must be an integer, got '8' (str)"),
    ({"size": 2.5}, "must be an integer, got 2.5 (float)"),
    ({"frac": 0}, "0.0 is out of range"),
    ({"frac": 1.01}, "1.01 is out of range"),
    ({"frac": math.nan}, "must be finite"),
    ({"frac": math.inf}, "must be finite"),
    ({"frac": "x"}, "must be a number, got 'x' (str)"),
    ({"name": "c"}, "'c' is not a known value"),
    ({"name": "  "}, "must be a non-empty string"),
    ({"flag": 1}, "must be true or false, got 1 (int)"),
    ({"bw": -1.0}, "-1.0 is out of range"),
    ({"widths": []}, "must be a non-empty list of integers"),
    ({"widths": "24"}, "must be a non-empty list of integers"),
    ({"widths": [4, 2]}, "[4, 2] is not strictly ascending"),
    ({"widths": [2, 2]}, "is not strictly ascending"),
    ({"widths": [0, 2]}, "element 0 is out of range"),
    ({"widths": [2, 4.0]}, "element 4.0 (float) is not an integer"),
    ({"table": {}}, "must be a non-empty mapping"),
    ({"table": {0: 1.0}}, "key 0 is not a bit-width"),
    ({"table": {True: 1.0}}, "key True is not a bit-width"),
    ({"table": {8: -1.0}}, "value for 8 is -1.0, out of range"),
    ({"table": {8: math.inf}}, "value for 8 must be a finite number"),
    ({"inner": {"n": 1}}, "must be a Inner, got dict"),
    ({"mode": 3}, "3 is not a known value"),
])
def test_errors_name_the_field_and_the_problem(kw, problem):
    e = _err(**kw)
    (field,) = kw
    assert e.key == f"Toy.{field}" and e.field == field
    assert problem in e.problem, e.problem
    assert str(e).startswith(f"Toy.{field}: ") and "; allowed: " in str(e)


def test_nested_errors_name_the_inner_class():
    with pytest.raises(ArchError, match=r"Inner\.n: 0 is out of range; allowed: integer >= 1"):
        Inner(n=0)


@pytest.mark.parametrize("field,text", [
    ("size", "integer >= 1"), ("frac", "number > 0 and <= 1"), ("name", "one of a, b"), ("flag", "true or false"),
    ("bw", "number >= 0 (.inf allowed)"), ("widths", "non-empty list of distinct integers in ascending order >= 1"),
    ("table", "mapping {bits: pJ} with integer bits >= 1 and numbers >= 0"), ("inner", "mapping with keys n"),
])
def test_allowed_text(field, text):
    from dataclasses import fields

    from hwsim.arch.fields import hints

    f = next(f for f in fields(Toy) if f.name == field)
    assert allowed_text(hints(Toy)[field], f.metadata) == text


def test_required_fields():
    assert required_fields(Toy) == ["size", "frac"]


def test_to_dict_plain_and_omits_defaults_marked_so():
    t = Toy(size=4, frac=0.5)
    d = t.to_dict()
    assert "extra" not in d
    assert d["widths"] == [2, 4] and d["table"] == {8: 1.0} and type(d["table"]) is dict
    assert d["inner"] == {"n": 2}
    assert Toy(size=4, frac=0.5, extra=3).to_dict()["extra"] == 3


def test_pickle_and_deepcopy_round_trip():
    t = Toy(size=4, frac=0.5, table={8: 1.0, 16: 2.0})
    for back in (pickle.loads(pickle.dumps(t)), copy.deepcopy(t)):
        assert back == t and back.to_dict() == t.to_dict()
