"""Unit tests of hwsim simulate's printed tables (hwsim.commands.simulate.table / run_table) on the sample trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwsim.arch import load_arch
from hwsim.commands.simulate import attribution_lines, run_table, table
from hwsim.results import PASSES

SAMPLE = Path(__file__).resolve().parents[1] / "traces" / "samples" / "lenet5-digits-dither"


@pytest.fixture(scope="module")
def training():
    from hwsim.sim import simulate

    return simulate(str(SAMPLE), load_arch("scnn"), progress=False)


@pytest.fixture(scope="module")
def inference():
    from hwsim.sim import simulate

    return simulate(str(SAMPLE), load_arch("scnn"), progress=False, training=False)


def _cells(line: str) -> list[str]:
    return line.split()


def test_one_row_per_layer_with_the_result_numbers(training):
    lines = table(training).splitlines()
    names = training.layer_names()
    assert lines[1] == "-" * len(lines[0]) and lines[2 + len(names)] == "-" * len(lines[0])
    for name, line in zip(names, lines[2:2 + len(names)], strict=True):
        cells = _cells(line)
        assert cells[0] == name
        want = []
        for p in PASSES:
            try:
                lp = training.layer(name, p)
            except KeyError:
                want += ["-", "-"]
                continue
            want += [f"{lp.speedup():.2f}×", f"{lp.energy_ratio():.2f}×"]
        assert cells[1:] == want, name


def test_first_layer_has_no_backward_data_pass(training):
    first = _cells(table(training).splitlines()[2])
    assert first[3:5] == ["-", "-"] and first[1] != "-" and first[5] != "-"


def test_totals_and_iteration_line(training):
    lines = table(training).splitlines()
    total = _cells(next(ln for ln in lines if ln.startswith("total")))
    assert total[1:] == [v for p in PASSES for v in (f"{training.speedup(pass_name=p):.2f}×",
                                                    f"{training.energy_ratio(pass_name=p):.2f}×")]
    it = next(ln for ln in lines if ln.startswith("iteration:"))
    assert f"sparse {training.speedup():.2f}× faster" in it
    assert "ideal" not in table(training)  # bounds are named for what they are (issue 17)
    assert f"dense-gated {training.energy_ratio('dense_gated'):.2f}× energy" in it
    vs = next(ln for ln in lines if ln.startswith("sparse vs "))
    sparse = training.total("sparse").cycles
    for name, label in (("dense_systolic", "dense systolic (equal multipliers)"), ("dense_full", "dense @ 100 %")):
        assert f"{label}" in vs and f"{training.scope_cycles('iteration', name) / sparse:.2f}×" in vs
    ea = training.arch["dense_equal_area"]["shape"]
    assert f"dense systolic (equal area) {ea[0]}×{ea[1]} " in vs
    reach = next(ln for ln in lines if ln.startswith("sparse reaches "))
    assert f"{training.bound('mac_bound') / sparse:.1%} of the MAC bound" in reach
    assert f"{training.bound('roofline') / sparse:.1%} of the roofline bound ({training.bound('roofline'):,} cycles)" in reach
    assert f"the MAC bound is {training.speedup('mac_bound'):.2f}× faster than dense" in reach
    assert lines[-1].startswith("GEMM-MAC coverage")


def test_inference_shows_dashes_for_the_backward_passes(inference):
    lines = table(inference).splitlines()
    total = _cells(next(ln for ln in lines if ln.startswith("total")))
    assert total[3:] == ["-"] * 4 and total[1] == f"{inference.speedup(pass_name='forward'):.2f}×"
    for line in lines[2:2 + len(inference.layer_names())]:
        assert _cells(line)[3:] == ["-"] * 4


def test_run_table(tmp_path):
    from hwsim.sweep.replays import simulate_run
    from hwsim.trace.format import load

    run = simulate_run(load(SAMPLE, verify=False), "scnn", iterations="all", progress=False,
                       cache_dir=str(tmp_path / "points"))
    lines = run_table(run).splitlines()
    assert lines[-1].startswith("non-GEMM work: not recorded")  # the sample predates non-GEMM records
    attr = attribution_lines(run.last, scope="the last replayed iteration")  # tests/test_unit_simulate_attribution.py
    assert lines[-1 - len(attr):-1] == attr
    lines = lines[:-1 - len(attr)]
    assert [_cells(ln)[0] for ln in lines[1:-1]] == [*PASSES, "update", "iteration"]
    # scnn's default memory.schedule is iteration: the last column is the whole run's share of each scope's sparse
    # cycles spent waiting on other passes' DRAM transfers (memory_stall_foreign, hwsim/sim/schedule.py)
    assert lines[0].endswith("waits on other passes")
    for ln in lines[1:-1]:
        scope = _cells(ln)[0]
        v = run.integrated.scope_total(scope, "sparse")
        assert _cells(ln)[-1] == f"{v.cycle_breakdown.memory_stall_foreign / v.cycles:.1%}", scope
    it = _cells(lines[-2])
    assert it[1] == f"{run.integrated.speedup():.2f}×" and it[2] == f"{run.last.speedup():.2f}×"
    sp = run.spread()["iteration"]["speedup"]
    assert f"{sp['p10']:.2f}–{sp['p90']:.2f}" in lines[-2] and f"[{sp['min']:.2f}, {sp['max']:.2f}]" in lines[-2]
    assert lines[-1].startswith(f"{len(run.iterations)} replayed iterations {run.replayed[:6]}")
    assert f"standing for {run.total_iterations} training iterations" in lines[-1]
    assert ("…" in lines[-1]) == (len(run.replayed) > 6)


def test_waits_row_carries_the_update_and_the_iteration(training):
    """On the sample trace only the weight update waits on other passes' transfers (every forward / backward pass
    0 %): the row is still printed, with the update's and the iteration's shares, so the footnote's "see 'waits on
    other passes' above" points at something."""
    lines = table(training).splitlines()
    share = {s: training.scope_total(s, "sparse").cycle_breakdown.memory_stall_foreign
             / training.scope_total(s, "sparse").cycles for s in (*PASSES, "update", "iteration")}
    assert share["update"] > 0 and share["iteration"] > 0  # the case this test is about
    row = next(ln for ln in lines if ln.startswith("waits on other passes"))
    assert _cells(row)[4:7] == [f"{share[p]:.1%}" for p in PASSES]
    assert row.endswith(f"(update {share['update']:.1%}, iteration {share['iteration']:.1%})")
    assert any("see 'waits on other passes' above" in ln for ln in lines)


def test_run_table_of_one_replayed_iteration_says_so_in_the_singular(tmp_path):
    """A synthetic trace holds one iteration: simulate's default whole-run replay is that iteration alone."""
    from hwsim.sweep.replays import simulate_run
    from hwsim.trace.format import load
    from hwsim.trace.synth import synthesize

    path = synthesize(tmp_path / "t", model="lenet5", w_density=0.5, a_density=0.5, dz_density=0.1, batch=1, seed=0)
    run = simulate_run(load(path), "scnn", iterations="all", progress=False, cache_dir=str(tmp_path / "points"))
    line = next(ln for ln in run_table(run).splitlines() if "replayed iteration" in ln)
    assert line == ("1 replayed iteration [0] standing for 1 training iteration (left-hold estimator); one "
                    "iteration: the whole run is that iteration, with no spread")

