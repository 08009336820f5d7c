"""Unit tests of hwsim.sweep.spec.parse_sweep on hand-written mappings: expansion of grids, lists, seeds and
synthetic traces, the point bound computed before expanding, and one clear error per malformed field."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwsim.sweep.spec import SweepError, parse_sweep

SYN = {"synthetic": {"model": "lenet5", "batch": 1}}


def _doc(**kw):
    d = {"version": 1, "arch": "scnn", "grid": {"pe.mac_bits": [8, 16]}, "traces": [SYN]}
    d.update(kw)
    return {k: v for k, v in d.items() if v is not None}


def _parse(**kw):
    return parse_sweep(_doc(**kw), validate_arch=False)


def test_grid_joined_keys_take_a_pair_per_value_or_one_value_for_both():
    s = _parse(grid={"pe_array.rows,pe_array.cols": [[2, 4], 8], "pe.mac_bits": 16})
    assert s.mode == "grid" and s.parameters == ("pe_array.rows", "pe_array.cols", "pe.mac_bits")
    assert [dict(c.overrides) for c in s.configs] == [
        {"pe_array.rows": 2, "pe_array.cols": 4, "pe.mac_bits": 16},
        {"pe_array.rows": 8, "pe_array.cols": 8, "pe.mac_bits": 16}]
    assert [c.index for c in s.configs] == [0, 1]
    assert s.configs[0].label == "pe_array.rows=2, pe_array.cols=4, pe.mac_bits=16"


def test_a_single_key_takes_a_list_value_whole():
    s = _parse(grid={"memory.levels": [[1, 2, 3]]})
    assert [dict(c.overrides) for c in s.configs] == [{"memory.levels": [1, 2, 3]}]


def test_grid_pair_of_the_wrong_length_and_empty_parts_are_refused():
    with pytest.raises(SweepError, match=r"value \[2, 4, 8\] must have 2 entries"):
        _parse(grid={"pe_array.rows,pe_array.cols": [[2, 4, 8]]})
    with pytest.raises(SweepError, match="has an empty part"):
        _parse(grid={"pe_array.rows,": [2]})
    with pytest.raises(SweepError, match="the value list is empty"):
        _parse(grid={"pe.mac_bits": []})


def test_list_mode_none_is_the_base_arch_and_parameters_are_the_union_in_order():
    s = _parse(grid=None, list=[None, {"pe.mac_bits": 8}, {"memory.dram_bytes_per_cycle": 4, "pe.mac_bits": 16}])
    assert s.mode == "list" and s.parameters == ("pe.mac_bits", "memory.dram_bytes_per_cycle")
    assert [dict(c.overrides) for c in s.configs] == [{}, {"pe.mac_bits": 8},
                                                      {"memory.dram_bytes_per_cycle": 4, "pe.mac_bits": 16}]
    assert s.configs[0].label == "base"


def test_list_item_that_is_not_a_mapping_is_named():
    with pytest.raises(SweepError, match=r"list\[1\]: must be a mapping"):
        _parse(grid=None, list=[{}, 3])


def test_grid_and_list_together_or_neither_are_refused():
    for kw in ({"list": [{}]}, {"grid": None}):
        with pytest.raises(SweepError, match="give exactly one of 'grid'"):
            _parse(**kw)


def test_seeds_int_becomes_a_list_and_duplicates_go():
    assert _parse(seeds=3).seeds == (3,)
    assert _parse(seeds=[2, 1, 2]).seeds == (2, 1)
    for bad in ([], [True], "0", [1.5]):
        with pytest.raises(SweepError, match="seeds: must be a non-empty list of integers"):
            _parse(seeds=bad)


def test_point_bound_is_configs_times_traces_times_seeds():
    # 2 configs × (3 densities × 2 batches = 6 traces) × 2 seeds = 24 points
    doc = _doc(traces=[{"synthetic": {"model": "lenet5", "density": [0.1, 0.2, 0.3], "batch": [1, 2]}}], seeds=[0, 1])
    assert parse_sweep(doc, validate_arch=False, max_points=24).num_points == 24
    with pytest.raises(SweepError, match=r"2 configs × 6 traces × 2 seeds = 24 points exceeds the limit of 23"):
        parse_sweep(doc, validate_arch=False, max_points=23)


def test_synthetic_value_lists_multiply_and_label_each_trace():
    s = _parse(traces=[{"name": "n", "synthetic": {"model": "lenet5", "density": [0.5, 1.0], "seed": [7, 8]}}])
    assert [t.label for t in s.traces] == ["n[density=0.5,seed=7]", "n[density=0.5,seed=8]",
                                           "n[density=1.0,seed=7]", "n[density=1.0,seed=8]"]
    # density is the shorthand for all three operand densities
    assert s.traces[0].synthetic == {"model": "lenet5", "seed": 7, "w_density": 0.5, "a_density": 0.5,
                                     "dz_density": 0.5}


def test_an_explicit_operand_density_wins_over_the_shorthand():
    s = _parse(traces=[{"synthetic": {"model": "lenet5", "density": 0.5, "dz_density": 0.1}}])
    (t,) = s.traces
    assert (t.synthetic["w_density"], t.synthetic["a_density"], t.synthetic["dz_density"]) == (0.5, 0.5, 0.1)
    assert t.label == "lenet5-synth"


@pytest.mark.parametrize("bad", [0.0, 1.5, True, "0.5"])
def test_densities_outside_zero_one_are_refused(bad):
    with pytest.raises(SweepError, match=r"traces\[0\].synthetic.w_density: .* must be a number in \(0, 1\]"):
        _parse(traces=[{"synthetic": {"model": "lenet5", "w_density": bad}}])


@pytest.mark.parametrize("syn,match", [
    ({"batch": 1}, "give exactly one of 'model'"),
    ({"model": "lenet5", "densty": 0.5}, r"unknown field\(s\) \['densty'\] \(did you mean 'density'\?\)"),
    ({"model": "lenet5", "density": []}, "synthetic.density: the value list is empty"),
    ({"model": "nosuchnet"}, "nosuchnet"),
    (3, "synthetic: must be a mapping"),
])
def test_bad_synthetic_specs(syn, match):
    with pytest.raises(SweepError, match=match):
        _parse(traces=[{"synthetic": syn}])


def test_trace_paths_resolve_against_the_sweep_file_folder(tmp_path):
    (tmp_path / "t1").mkdir()
    s = parse_sweep(_doc(traces=["t1", {"path": "missing", "name": "m", "iteration": 4}]),
                    source=tmp_path / "s.yaml", validate_arch=False)
    assert [(t.label, t.path, t.iteration) for t in s.traces] == [("t1", tmp_path / "t1", None),
                                                                  ("m", Path("missing"), 4)]
    assert s.name == "s" and s.source == tmp_path / "s.yaml"


@pytest.mark.parametrize("traces,match", [
    (None, "traces: give a non-empty list"),
    ([], "traces: give a non-empty list"),
    ([5], r"traces\[0\]: must be a path or a mapping"),
    ([{"path": "a", "synthetic": {"model": "lenet5"}}], r"traces\[0\]: give exactly one of 'path' or 'synthetic'"),
    ([{"pth": "a"}], r"unknown field\(s\) \['pth'\] \(did you mean 'path'\?\)"),
    (["a/x", "b/x"], r"duplicate trace label\(s\) \['x'\]"),
])
def test_bad_trace_lists(traces, match):
    with pytest.raises(SweepError, match=match):
        _parse(traces=traces)


def test_top_level_errors():
    with pytest.raises(SweepError, match="top level must be a mapping"):
        parse_sweep([1], validate_arch=False)
    with pytest.raises(SweepError, match="arch: must be an architecture name"):
        _parse(arch="")
    with pytest.raises(SweepError, match="iteration: must be an integer or null"):
        _parse(iteration="last")
    with pytest.raises(SweepError, match=r"unknown field\(s\) \['seed'\] \(did you mean 'seeds'\?\)"):
        _parse(seed=1)


def test_arch_paths_resolve_and_names_stay_names(tmp_path):
    (tmp_path / "mine.yaml").write_text("x: 1\n")
    s = parse_sweep(_doc(arch="mine.yaml"), source=tmp_path / "s.yaml", validate_arch=False)
    assert s.arch == str(tmp_path / "mine.yaml")
    assert _parse(arch="scnn").arch == "scnn"


def test_to_json_round_trips_the_fields():
    s = _parse(name="n", description="d", iteration=2, seeds=[1])
    j = s.to_json()
    assert (j["version"], j["name"], j["description"], j["mode"], j["iteration"], j["seeds"]) == (
        1, "n", "d", "grid", 2, [1])
    assert j["configs"] == [{"index": 0, "overrides": {"pe.mac_bits": 8}}, {"index": 1, "overrides": {"pe.mac_bits": 16}}]
    assert j["traces"][0]["synthetic"] == {"model": "lenet5", "batch": 1} and j["traces"][0]["path"] is None


def test_validate_arch_names_the_point_and_its_overrides():
    with pytest.raises(SweepError, match=r"point 1 \(pe.mac_bits=32\): .*accumulator_bits"):
        parse_sweep(_doc(grid={"pe.mac_bits": [8, 32]}))
