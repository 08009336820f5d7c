"""Provenance: every results.json and sweep.json says what produced it, and overrides tell results apart."""

from __future__ import annotations

import json

import pytest

import hwsim
from hwsim.results import SimResult, load_results, provenance, save_results
from hwsim.trace.synth import synthesize

LAYERS = [{"name": "c1", "C": 4, "K": 8, "H": 8, "W": 8, "R": 3, "S": 3},
          {"name": "fc", "kind": "linear", "C": 32, "K": 10}]


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    return synthesize(tmp_path_factory.mktemp("prov") / "t", layers=LAYERS, dz_density=0.2, batch=2,
                      meta={"epochs": 3, "coverage": {"forward": 0.9, "backward_data": 0.9, "backward_weight": 0.9,
                                                       "missed": ["attn.matmul"]}})


def test_diff_overrides_names_only_changed_dotted_keys():
    base = {"pe": {"mac_bits": 8, "mult_f": 4}, "memory": {"dram_bytes_per_cycle": 16.0}}
    now = {"pe": {"mac_bits": 8, "mult_f": 2}, "memory": {"dram_bytes_per_cycle": 64.0}}
    assert provenance.diff_overrides(now, base) == {"memory.dram_bytes_per_cycle": 64.0, "pe.mult_f": 2}
    assert provenance.diff_overrides(base, base) == {}


def test_simulate_records_provenance_that_round_trips(trace, tmp_path):
    r16 = hwsim.simulate(trace, hwsim.load_arch("scnn"))
    r64 = hwsim.simulate(trace, hwsim.load_arch("scnn", overrides={"memory.dram_bytes_per_cycle": 64}))
    p16, p64 = r16.provenance, r64.provenance
    assert p16["arch"]["overrides"] == {}
    assert p64["arch"]["overrides"] == {"memory.dram_bytes_per_cycle": 64.0}
    assert p64["arch"]["key"]["DRAM bandwidth"] == "64 B/cycle" and p16["arch"]["key"]["DRAM bandwidth"] == "16 B/cycle"
    assert p16["arch"]["key"]["PEs"] == "8×8" and p16["arch"]["key"]["multipliers per PE (F×I)"] == "4×4"
    assert p16["arch"]["hash"] == hwsim.load_arch("scnn").content_hash() != p64["arch"]["hash"]
    assert "Horowitz" in p16["arch"]["energy_source"]
    t = p16["trace"]
    assert t["model"] and t["dataset"] == "synthetic"
    assert t["replayed_iterations"] == [r16.trace["iteration"]] and t["replayed_examples"] == 2
    assert t["epochs"] == 3 and t["coverage"]["missed"] == ["attn.matmul"]
    assert p16["hwsim_version"] == hwsim.__version__ and isinstance(p16["command"], list)
    path = save_results(r64, tmp_path / "r.json")
    assert json.loads(path.read_text())["provenance"] == json.loads(json.dumps(p64))
    assert load_results(path).provenance == json.loads(json.dumps(p64))
    assert provenance.override_label(p64) == "dram_bytes_per_cycle=64"
    lines = dict(provenance.describe(p64))
    assert lines["overrides"] == "dram_bytes_per_cycle=64" and "90%" in lines["coverage"]
    assert "attn.matmul" in lines["coverage"]


def test_old_results_without_provenance_still_load():
    from _hwsim_fixtures import make_result

    d = make_result().to_json()
    assert "provenance" not in d
    assert SimResult.from_json(d).provenance == {}


def test_replayed_batches_that_differ_are_shown_as_a_range():
    from _hwsim_fixtures import trace_from_manifest

    from hwsim.results import provenance

    man = trace_from_manifest({"meta": {"model": "m"}, "iterations": [{}] * 3,
                               "samples": [{"iteration": 0, "layers": [{"name": "fc", "N": 64}]},
                                           {"iteration": 2, "layers": [{"name": "fc", "N": 29}]}]})
    both = provenance.trace_provenance(man, replayed=[0, 2])
    assert (both["replayed_examples"], both["replayed_examples_min"]) == (64, 29)
    assert "batches of 29–64" in dict(provenance.describe_trace({"trace": both}))["replayed"]
    one = provenance.trace_provenance(man, replayed=[2])
    assert one["replayed_examples"] == 29 and "replayed_examples_min" not in one
