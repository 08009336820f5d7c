"""The CLI's number types (hwsim/commands/args.py): every bound, open or closed, and the one-line reason argparse
prints after the flag for a value outside it."""

from __future__ import annotations

import argparse

import pytest

from hwsim.commands.args import float_range, int_range


@pytest.mark.parametrize("lo,hi,text,value", [(1, 8, "1", 1), (1, 8, "8", 8), (None, 8, "-5", -5), (0, None, "7", 7)])
def test_integers_inside_the_bounds(lo, hi, text, value):
    assert int_range(lo, hi)(text) == value


@pytest.mark.parametrize("lo,hi,text,message", [
    (1, 8, "0", "0 is out of range; allowed: an integer in 1..8"),
    (1, 8, "9", "9 is out of range; allowed: an integer in 1..8"),
    (1, None, "0", "0 is out of range; allowed: an integer >= 1"),
    (None, 8, "9", "9 is out of range; allowed: an integer <= 8"),
    (1, 8, "2.5", "'2.5' is not an integer"),
    (1, 8, "x", "'x' is not an integer"),
])
def test_integers_outside_the_bounds(lo, hi, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as e:
        int_range(lo, hi)(text)
    assert str(e.value) == message


@pytest.mark.parametrize("kw,text,value", [
    (dict(lo=0.0, hi=1.0), "0", 0.0), (dict(lo=0.0, hi=1.0), "1", 1.0), (dict(lo=0.0, lo_open=True), "1e-9", 1e-9),
    (dict(hi=1.0, hi_open=True), "0.999", 0.999), (dict(), "-3.5", -3.5),
])
def test_numbers_inside_the_bounds(kw, text, value):
    assert float_range(**kw)(text) == value


@pytest.mark.parametrize("kw,text,message", [
    (dict(lo=0.0, hi=1.0), "1.5", "1.5 is out of range; allowed: a finite number in [0.0, 1.0]"),
    (dict(lo=0.0, hi=1.0, lo_open=True), "0", "0 is out of range; allowed: a finite number in (0.0, 1.0]"),
    (dict(lo=0.0, hi=1.0, hi_open=True), "1", "1 is out of range; allowed: a finite number in [0.0, 1.0)"),
    (dict(lo=0.0), "-1", "-1 is out of range; allowed: a finite number in [0.0, inf)"),
    (dict(), "one", "'one' is not a number"),
])
def test_numbers_outside_the_bounds(kw, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as e:
        float_range(**kw)(text)
    assert str(e.value) == message


@pytest.mark.parametrize("kw,text", [(dict(hi=2.0), "3"), (dict(), "inf"), (dict(), "-inf"), (dict(), "nan")])
def test_non_finite_and_above_an_upper_bound_are_refused(kw, text):
    with pytest.raises(argparse.ArgumentTypeError, match=f"^{text} is out of range; allowed: a finite number in "):
        float_range(**kw)(text)


def test_argparse_names_the_flag_and_the_type(capsys):
    ap = argparse.ArgumentParser(prog="hwsim x")
    ap.add_argument("--jobs", type=int_range(1, 64))
    with pytest.raises(SystemExit):
        ap.parse_args(["--jobs", "0"])
    assert "argument --jobs: 0 is out of range; allowed: an integer in 1..64" in capsys.readouterr().err
    assert (int_range(1).__name__, float_range(0.0).__name__) == ("integer", "number")
