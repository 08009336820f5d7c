"""Provenance as a reader sees it (hwsim/results/provenance.py, hwsim/arch/policy.py): the key parameters with
their units, the memory-policy line, which energy table priced a result, the coverage note, the override label
and the (label, value) lines every report page prints. Every expected string is written out by hand from the
module docs."""

from __future__ import annotations

import pytest

from hwsim.arch.policy import memory_policy
from hwsim.results import provenance as pv

# scnn.yaml's memory policies (arch_configs/scnn.yaml)
SCNN_MEMORY = {"global_buffer_bytes": 1048576, "dram_bytes_per_cycle": 16.0, "compression": "run_length",
               "inter_layer_residency": True, "residency_in_global_buffer": True, "stash": "on_chip",
               "weights_resident": True, "schedule": "iteration"}


def test_dotted_get_walks_mappings_and_integer_keys():
    d = {"a": {"b": 1}, "mult_pj": {8: 0.2}, "s": "text"}
    assert pv.dotted_get(d, "a.b") == 1
    assert pv.dotted_get(d, "mult_pj.8") == 0.2          # a YAML width key is an int
    assert pv.dotted_get(d, "a.c") is None and pv.dotted_get(d, "s.x") is None and pv.dotted_get(None, "a") is None


def test_flatten_keeps_lists_and_scalars_as_leaves():
    assert pv.flatten({"a": {"b": 1, "c": [1, 2]}, "d": 2}) == {"a.b": 1, "a.c": [1, 2], "d": 2}
    assert pv.flatten({"x": {"y": {"z": 0}}}, "p") == {"p.x.y.z": 0}


@pytest.mark.parametrize("n,text", [(500, "500 B"), (1023, "1023 B"), (1024, "1 KiB"), (10240, "10 KiB"),
                                    (1536, "1.5 KiB"), (2**20, "1 MiB"), (3 * 2**19, "1.5 MiB")])
def test_buffer_sizes_read_in_binary_units(n, text):
    assert pv.key_parameters({"pe": {"input_buffer_bytes": n}}) == {"input buffer": text}


def test_key_parameters_keep_the_table_order_skip_what_is_absent_and_carry_units():
    params = {"dataflow": "cartesian", "pe_array": {"rows": 8, "cols": 4}, "clock_ghz": 1.0,
              "pe": {"mult_f": 4, "mult_i": 2, "mac_bits": 8, "weight_fifo_bytes": 500},
              "memory": {"global_buffer_bytes": 1048576, "dram_bytes_per_cycle": float("inf"), "compression": "none"}}
    got = pv.key_parameters(params)
    assert got == {"dataflow": "cartesian", "PEs": "8×4", "multipliers per PE (F×I)": "4×2", "MAC bits": "8 bit",
                   "weight FIFO": "500 B", "global buffer": "1 MiB", "DRAM bandwidth": "∞ B/cycle",
                   "DRAM compression": "none", "clock": "1 GHz"}
    assert list(got) == [label for label, _, _ in pv.KEY_PARAMETERS if label in got]   # KEY_PARAMETERS' order
    assert "memory policy" not in got            # the policy fields are missing: a result written before them
    # a per-pass dataflow mapping is spelt out pass by pass
    per_pass = {"dataflow": {"forward": "cartesian", "backward_data": "dz_gather"}}
    assert pv.key_parameters(per_pass) == {"dataflow": "forward: cartesian, backward_data: dz_gather"}
    assert pv.key_parameters({"memory": {"dram_bytes_per_cycle": 12.5}}) == {"DRAM bandwidth": "12.5 B/cycle"}


@pytest.mark.parametrize("memory,dataflow,line", [
    (SCNN_MEMORY, "cartesian", "stash on chip when it fits, weights resident when they fit, residency in PE RAMs "
                               "(checked per PE) + global buffer, iteration schedule"),
    ({**SCNN_MEMORY, "schedule": "isolated"}, "systolic_ws",
     "stash on chip when it fits, weights resident when they fit, residency in global buffer, isolated schedule"),
    # weights can only stay resident in the global buffer: without it they stream
    ({**SCNN_MEMORY, "residency_in_global_buffer": False, "stash": "dram"}, "cartesian",
     "stash in DRAM, weights streamed, residency in PE RAMs (checked per PE), iteration schedule"),
    # a systolic array has no PE RAMs: without the global buffer nothing can hold a resident tensor
    ({k: v for k, v in SCNN_MEMORY.items() if k != "schedule"} | {"residency_in_global_buffer": False},
     "systolic_os", "stash on chip when it fits, weights streamed, residency in nothing"),
    ({**SCNN_MEMORY, "inter_layer_residency": False}, "cartesian",
     "nothing resident: every tensor through DRAM, iteration schedule"),
    # the DRAM arbiter moves the per-pass split of the iteration schedule; isolated runs do not use it
    ({**SCNN_MEMORY, "dram_arbiter": "in_order"}, "cartesian",
     "stash on chip when it fits, weights resident when they fit, residency in PE RAMs (checked per PE) + global "
     "buffer, iteration schedule (DRAM arbiter in_order)"),
    ({**SCNN_MEMORY, "schedule": "isolated", "dram_arbiter": "reads_first"}, "systolic_ws",
     "stash on chip when it fits, weights resident when they fit, residency in global buffer, isolated schedule"),
])
def test_memory_policy_line(memory, dataflow, line):
    params = {"dataflow": dataflow, "memory": memory}
    assert memory_policy(params) == line
    assert pv.key_parameters(params)["memory policy"] == line


def test_memory_policy_of_a_result_written_before_the_policy_fields_is_none():
    assert memory_policy({"memory": {k: v for k, v in SCNN_MEMORY.items() if k != "stash"}}) is None
    assert memory_policy({"dataflow": "cartesian"}) is None and memory_policy(["not", "a mapping"]) is None


def _energy(**changes) -> dict:
    e = {"mult_pj": {"8": 0.2, "16": 0.8, "32": 3.1}, "add_pj": {"8": 0.03, "16": 0.05, "32": 0.1},
         "sram_small_pj_per_64b": 10.0, "sram_medium_pj_per_64b": 20.0, "sram_large_pj_per_64b": 100.0,
         "dram_pj_per_64b": 1300.0, "sram_small_max_bytes": 8192, "sram_medium_max_bytes": 32768}
    return {"energy": {**e, **changes}}


def test_energy_source_names_the_horowitz_entries_that_were_changed_and_the_estimates():
    assert pv.energy_source(_energy()) == "Horowitz, ISSCC 2014, 45 nm"   # size-class bounds are not prices
    assert pv.energy_source(_energy(register_pj=0.1, crossbar_pj_per_product=0.2)) == \
        "Horowitz, ISSCC 2014, 45 nm; hwsim estimates for register_pj, crossbar_pj_per_product"
    changed = _energy(mult_pj={"8": 0.3, "16": 0.8}, dram_pj_per_64b=2600.0)
    assert pv.energy_source(changed) == ("Horowitz, ISSCC 2014, 45 nm except mult_pj, dram_pj_per_64b "
                                         "(set in the architecture file)")
    # a table with fewer widths is compared on the widths it has
    assert pv.energy_source(_energy(add_pj={"16": 0.05})) == "Horowitz, ISSCC 2014, 45 nm"
    assert pv.energy_source({"name": "x"}) == "unknown"


@pytest.mark.parametrize("path,short", [("/home/u/hwsim/arch_configs/scnn.yaml", "arch_configs/scnn.yaml"),
                                        ("/venv/site-packages/hwsim/arch/configs/scnn16.yaml",
                                         "arch_configs/scnn16.yaml"),
                                        ("C:\\repo\\arch_configs\\sweeps\\demo.yaml", "arch_configs/sweeps/demo.yaml"),
                                        ("/tmp/mine.yaml", "/tmp/mine.yaml"), (None, ""), ("", "")])
def test_short_path(path, short):
    assert pv.short_path(path) == short


def test_coverage_note_lists_the_passes_when_any_is_short_of_the_whole_model():
    cov = {"forward": 0.93, "backward_data": 1.0, "backward_weight": 0.5, "missed": ["attn.matmul", "bmm"]}
    assert pv.coverage_note({"trace": {"coverage": cov}}) == (
        "covers forward 93%, backward-data 100%, backward-weight 50% of the model's MACs (missed: attn.matmul, bmm)")
    assert pv.coverage_note({"trace": {"coverage": {"forward": 0.5, "backward_data": "?"}}}) == \
        "covers forward 50% of the model's MACs"
    whole = {"forward": 1.0, "backward_data": 1.0, "backward_weight": 1.0, "missed": []}
    assert pv.coverage_note({"trace": {"coverage": whole}}) is None
    assert pv.coverage_note({"trace": {}}) is None and pv.coverage_note(None) is None


def test_override_label_shortens_memory_and_pe_keys_only():
    prov = {"arch": {"overrides": {"memory.dram_bytes_per_cycle": 64.0, "pe_array.rows": 16, "pe.mac_bits": 16,
                                   "energy.dram_pj_per_64b": 2600.0}}}
    assert pv.override_label(prov) == ("dram_bytes_per_cycle=64, pe_array.rows=16, mac_bits=16, "
                                       "energy.dram_pj_per_64b=2600")
    assert pv.override_label({"arch": {"overrides": {}}}) == "" and pv.override_label(None) == ""


def test_arch_provenance_takes_given_overrides_or_the_difference_from_the_file():
    params = {"name": "scnn", "pe": {"mac_bits": 16, "mult_f": 4}, "memory": {"compression": "none"}}
    base = {"name": "scnn", "pe": {"mac_bits": 8, "mult_f": 4}, "memory": {"compression": "none", "stash": "dram"}}
    a = pv.arch_provenance(params, base=base, file="f.yaml", content_hash="h")
    assert a["name"] == "scnn" and a["file"] == "f.yaml" and a["hash"] == "h"
    assert a["overrides"] == {"memory.stash": None, "pe.mac_bits": 16}     # sorted; a key the file had, now gone
    assert a["key"] == {"MAC bits": "16 bit", "DRAM compression": "none"}
    assert pv.arch_provenance(params, name="mine", overrides={"pe.mac_bits": 16}, base=base)["overrides"] == \
        {"pe.mac_bits": 16}
    assert pv.arch_provenance(params)["overrides"] == {}                   # no file to compare with


TRACE = {"model": "lenet5", "dataset": "digits", "method": "dither", "s": 4.0, "k": None, "epochs": 2, "seed": 0,
         "batch_size": 64, "test_acc": 0.9556, "iterations": 115, "replayed_iterations": [50, 60],
         "replayed_examples": 64, "replayed_examples_min": 32}


def test_describe_trace_reads_as_one_line_per_part():
    lines = pv.describe_trace({"trace": TRACE, "mode": "training iteration"})
    assert lines == [("trace", "model lenet5, dataset digits, method dither, s = 4, epochs 2, seed 0, batch 64, "
                               "test accuracy 95.56%"),
                     ("replayed", "training iteration 50, 60 of 115, batches of 32–64")]
    one = {**TRACE, "method": "meprop", "s": None, "k": 30, "replayed_iterations": [7], "iterations": None,
           "replayed_examples_min": None, "test_acc": None,
           "coverage": {"forward": 0.5, "backward_data": 1.0, "backward_weight": 1.0, "missed": ["bmm"]}}
    assert pv.describe_trace({"trace": one}) == [
        ("trace", "model lenet5, dataset digits, method meprop, k = 30, epochs 2, seed 0, batch 64"),
        ("replayed", "iteration 7, batch of 64"),
        ("coverage", "covers forward 50%, backward-data 100%, backward-weight 100% of the model's MACs (missed: bmm)")]
    assert pv.describe_trace({"trace": {}}) == [] and pv.describe_trace(None) == []


def test_describe_arch_and_describe_add_the_file_hash_overrides_version_and_command():
    arch = {"name": "scnn", "file": "/r/arch_configs/scnn.yaml", "hash": "0123456789abcdef", "overrides": {},
            "key": {"PEs": "8×8", "clock": "1 GHz"}, "energy_source": "Horowitz, ISSCC 2014, 45 nm"}
    prov = {"trace": {"model": "m"}, "arch": arch, "hwsim_version": "1.2.3", "command": ["hwsim", "simulate", "t"]}
    assert pv.describe(prov) == [("trace", "model m"),
                                 ("architecture", "scnn (arch_configs/scnn.yaml), hash 0123456789ab"),
                                 ("overrides", "none"), ("parameters", "PEs 8×8; clock 1 GHz"),
                                 ("energy table", "Horowitz, ISSCC 2014, 45 nm"),
                                 ("hwsim", "1.2.3"), ("command", "hwsim simulate t")]
    bare = {"arch": {"name": "x", "overrides": {"pe.mac_bits": 16}}}
    assert pv.describe_arch(bare) == [("architecture", "x"), ("overrides", "mac_bits=16")]
    assert pv.describe_arch({"arch": {}}) == [] and pv.describe({}) == [] and pv.describe(None) == []


@pytest.mark.parametrize("argv,first", [(["/venv/bin/hwsim", "simulate"], "hwsim"),
                                        (["/src/hwsim/__main__.py", "simulate"], "hwsim"),
                                        (["pytest", "-q"], "pytest")])
def test_command_line_names_the_entry_point_hwsim(monkeypatch, argv, first):
    monkeypatch.setattr("sys.argv", argv)
    assert pv.command_line() == [first, *argv[1:]]
    out = pv.build(trace={"model": "m"}, extra={"mode": "inference (forward)"})
    assert out == {"trace": {"model": "m"}, "arch": {}, "hwsim_version": pv.hwsim_version(),
                   "command": [first, *argv[1:]], "mode": "inference (forward)"}
