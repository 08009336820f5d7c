"""`hwsim sweep` ranks by absolute cycles and energy and by Pareto front, not by speed-up over own dense."""

from __future__ import annotations

from hwsim.sweep.summary import format_energy, pareto_indices, ranking_lines

ROWS = [  # the case: a 4×4 array "wins" on speed-up over its own slow dense run
    {"trace": "t", "pe_array.rows": 4, "cycles_sparse": 91_922, "energy_pj_sparse": 1.00e8, "speedup_sparse": 2.61},
    {"trace": "t", "pe_array.rows": 16, "cycles_sparse": 26_917, "energy_pj_sparse": 1.10e8, "speedup_sparse": 1.40},
    {"trace": "t", "pe_array.rows": 8, "cycles_sparse": 40_000, "energy_pj_sparse": 1.20e8, "speedup_sparse": 2.00},
]


def test_best_is_fewest_absolute_cycles_and_least_energy():
    lines = ranking_lines(ROWS, ["pe_array.rows"])
    fewest = next(ln for ln in lines if "fewest cycles" in ln)
    least = next(ln for ln in lines if "least energy" in ln)
    assert "26,917 cycles" in fewest and "pe_array.rows=16" in fewest and "1.40×" in fewest
    assert "100 µJ" in least and "pe_array.rows=4" in least
    front = lines[lines.index(next(ln for ln in lines if "Pareto front" in ln)) + 1:]
    assert "2 of 3 points" in next(ln for ln in lines if "Pareto front" in ln)
    assert [("pe_array.rows=16" in ln, "pe_array.rows=4" in ln) for ln in front] == [(True, False), (False, True)]


def test_area_joins_the_ranking_when_results_have_it():
    rows = [dict(r, area_mm2_sparse=a) for r, a in zip(ROWS, (1.0, 9.0, 3.0), strict=True)]
    lines = ranking_lines(rows, ["pe_array.rows"])
    assert any("smallest area" in ln and "pe_array.rows=4" in ln for ln in lines)
    assert "cycles / energy / area_mm2" in next(ln for ln in lines if "Pareto front" in ln)


def test_pareto_and_energy_units():
    assert pareto_indices([(1, 5), (2, 3), (3, 4), (4, 1)]) == [0, 1, 3]
    assert pareto_indices([(1, 1), (1, 1)]) == [0, 1]  # ties: neither dominates
    assert format_energy(2.67e8) == "267 µJ" and format_energy(950.0) == "950 pJ" and format_energy(4.2e3) == "4.2 nJ"
