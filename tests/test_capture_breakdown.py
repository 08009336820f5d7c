"""benchmarks/capture_breakdown.py: the parts of a captured step add up, the no-op mechanism and the timed kernels
put back what they replace, and a real (tiny) run times the compiled calls it wraps."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from _scripts import load_script

from hwsim.capture import intercept, nongemm, quant_compiled, quant_counter

ROOT = Path(__file__).resolve().parents[1]


def _script():
    return load_script("benchmarks/capture_breakdown.py", siblings=True)  # (it imports bench_capture)


def test_the_report_splits_the_extra_time_into_parts_that_add_up():
    m = {"plain": 20.0, "mechanism": 21.0, "interception": 22.5, "dither": 25.0, "nsd": 1.5, "view": 0.25}
    lines = _script().report("toy", m)
    assert lines[0].startswith("toy: 20.00 ms per plain step; dither/plain 1.250×, interception/plain 1.125×, "
                               "mechanism/plain 1.050×")
    ms = [float(line.split()[-4]) for line in lines[1:6]]
    assert ms == [1.0, 1.5, 1.5, 0.25, 0.75]  # mechanism, book-keeping, kernel, view counts, quantizer's Python
    assert sum(ms) == pytest.approx(m["dither"] - m["plain"])
    # floor = 1 + 1.5 + 0.25 ms = 1.1375×; a 1.15× target leaves 3 − 2.75 = 0.25 ms; book-keeping takes 1.5 + 0.75
    assert lines[6] == ("  mechanism + compiled passes = 1.137×: a 1.15× target leaves 0.25 ms (1.2 %) for the "
                        "book-keeping, which now takes 2.25 ms")


def test_the_mechanism_only_context_puts_the_handlers_back():
    mod = _script()
    before = intercept.Interceptor._on_gemm, nongemm.NonGemmTally.on_op, nongemm.NonGemmTally.sdpa
    with mod._mechanism_only():
        assert intercept.Interceptor._on_gemm is not before[0]
        assert intercept.Interceptor._on_gemm(None, lambda a, b: a + b, None, (2, 3), {}) == 5
    assert (intercept.Interceptor._on_gemm, nongemm.NonGemmTally.on_op, nongemm.NonGemmTally.sdpa) == before


def test_a_timed_stand_in_adds_up_the_time_and_forwards_the_rest():
    mod = _script()

    class Ext:
        API = 7

        @staticmethod
        def work(n):
            return sum(range(n))

    t = mod._Timed(Ext, ("work",))
    assert t.work(10_000) == sum(range(10_000)) and t.API == 7
    assert t.spent["work"] > 0.0


@pytest.mark.skipif(not quant_compiled.available(), reason="the NSD kernel is not built here (no C compiler)")
def test_a_tiny_run_times_the_compiled_calls_and_restores_them(caplog):
    mod = _script()
    saved = quant_counter._ext, quant_compiled._ext
    with caplog.at_level(logging.WARNING, logger="hwsim.capture"):
        m = mod.breakdown("gpt_char", rounds=1, steps=1)
        assert logging.getLogger("hwsim.capture").level == logging.WARNING  # the level before, put back
    # the mechanism-only capture records nothing by design: no "0 iterations recorded" in the output
    assert not [r for r in caplog.records if "0 iterations recorded" in r.getMessage()]
    assert (quant_counter._ext, quant_compiled._ext) == saved
    assert set(m) == {"plain", "mechanism", "interception", "dither", "nsd", "view"}
    assert m["nsd"] > 0.0 and m["view"] > 0.0  # gpt_char dithers its projections, counts its attention products
    assert all(v > 0.0 for v in m.values())
