"""``CycleBreakdown.memory_stall_foreign`` in the results (hwsim/results/breakdown.py, hwsim/results/run.py): a share
of ``memory_stall`` (the cycles the DRAM channel carried other layer-passes' transfers, hwsim/sim/schedule.py),
never a part of the cycles; it adds, scales and round-trips with the record and is written only when non-zero."""

from __future__ import annotations

import pytest

from hwsim.results import CYCLE_PARTS, CycleBreakdown, ResultsError, VariantResult
from hwsim.results.run import scale_variant


def _v(stall: int, foreign: int) -> VariantResult:
    return VariantResult(cycle_breakdown=CycleBreakdown(compute=10, memory_stall=stall, memory_stall_foreign=foreign))


def test_a_share_of_memory_stall_not_a_part():
    v = _v(40, 30)
    assert "memory_stall_foreign" not in CYCLE_PARTS
    assert v.cycles == 50  # 10 + 40: the 30 are inside the 40
    assert "memory_stall_foreign" not in v.cycle_breakdown.to_json()
    d = v.to_json()
    assert d["memory_stall_foreign"] == 30 and d["cycles"] == 50
    assert "memory_stall_foreign" not in d["breakdown"]["cycles"]
    assert VariantResult.from_json(d) == v


def test_written_only_when_non_zero_and_older_files_read_as_zero():
    d = _v(40, 0).to_json()
    assert "memory_stall_foreign" not in d
    assert VariantResult.from_json(d).cycle_breakdown.memory_stall_foreign == 0


def test_adds_and_scales_with_the_record():
    s = _v(40, 30) + _v(7, 5)
    assert s.cycle_breakdown.memory_stall == 47 and s.cycle_breakdown.memory_stall_foreign == 35
    k = scale_variant(_v(40, 30), 3)
    assert k.cycle_breakdown.memory_stall == 120 and k.cycle_breakdown.memory_stall_foreign == 90


def test_more_than_the_stall_is_refused_naming_the_field():
    d = _v(40, 30).to_json()
    d["memory_stall_foreign"] = 41
    with pytest.raises(ResultsError, match=r"^v\.memory_stall_foreign: 41 is not allowed; allowed: at most "
                                           r"breakdown\.cycles\.memory_stall \(40\)"):
        VariantResult.from_json(d, where="v")
    d["memory_stall_foreign"] = -1
    with pytest.raises(ResultsError, match=r"^v\.memory_stall_foreign: -1 is not allowed"):
        VariantResult.from_json(d, where="v")


def test_report_summary_column_is_the_scope_share_under_the_iteration_schedule():
    from dataclasses import replace
    from pathlib import Path

    from hwsim.report.inputs import ResultEntry
    from hwsim.report.tables import SUMMARY_COLUMNS, summary_rows
    from hwsim.results import LayerPassResult, SimResult

    def lp(name, p, stall, foreign):
        v = VariantResult(cycle_breakdown=CycleBreakdown(compute=60, memory_stall=stall, memory_stall_foreign=foreign))
        return LayerPassResult(name=name, pass_name=p, macs_dense=1, macs_effectual=1, sparse=v, dense=v,
                               dense_gated=v, ideal=v)

    layers = (lp("a", "forward", 40, 0), lp("a", "backward_data", 40, 30), lp("a", "backward_weight", 140, 10))
    r = SimResult(trace={"model": "toy"}, arch={"name": "scnn", "params": {"memory": {"schedule": "iteration"}}},
                  layers=layers, run={"schedule": {"mode": "iteration", "foreign_waits": "measured"}})
    rows = {x["scope"]: x for x in summary_rows([ResultEntry(label="x", source=Path("x.json"), result=r)])}
    assert rows["forward"]["foreign_wait_share_sparse"] == 0.0
    assert rows["backward_data"]["foreign_wait_share_sparse"] == pytest.approx(30 / 100)
    assert rows["iteration"]["foreign_wait_share_sparse"] == pytest.approx(40 / 400)  # (30 + 10) / (100+100+200)
    assert ("foreign_wait_share_sparse", "waits on other passes (sparse)") in [c[:2] for c in SUMMARY_COLUMNS]
    iso = replace(r, arch={"name": "scnn", "params": {"memory": {"schedule": "isolated"}}})
    rows = summary_rows([ResultEntry(label="x", source=Path("x.json"), result=iso)])
    assert all(x["foreign_wait_share_sparse"] is None for x in rows)  # an empty column, dropped from the table
    # a results file written before the measurement (no run.schedule.foreign_waits) reads 0 everywhere: the column
    # says "not measured" (–), not 0 %
    old = replace(r, run={"schedule": {"mode": "iteration"}})
    rows = summary_rows([ResultEntry(label="x", source=Path("x.json"), result=old)])
    assert all(x["foreign_wait_share_sparse"] is None for x in rows)


def test_new_iteration_results_say_the_waits_were_measured():
    from pathlib import Path

    from hwsim.arch import load_arch
    from hwsim.sim import simulate

    sample = Path(__file__).resolve().parents[1] / "traces" / "samples" / "lenet5-digits-dither"
    r = simulate(str(sample), load_arch("scnn"), progress=False)
    assert r.run["schedule"]["foreign_waits"] == "measured"
