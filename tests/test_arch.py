"""Architecture loading: every bad input names file, key path and what is allowed; round trips; variants."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import yaml

from hwsim.arch import (
    ARCH_DIR,
    Arch,
    ArchError,
    EnergyTable,
    PEConfig,
    apply_overrides,
    arch_from_dict,
    dense_gated_variant,
    dense_variant,
    load_arch,
    parse_overrides,
    shipped_arch_names,
)

SCNN = ARCH_DIR / "scnn.yaml"


@pytest.fixture()
def raw() -> dict:
    return yaml.safe_load(SCNN.read_text())


def write(tmp_path: Path, d: dict, name: str = "bad.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(d, sort_keys=False))
    return p


def error_of(tmp_path: Path, d: dict) -> str:
    p = write(tmp_path, d)
    with pytest.raises(ArchError) as ei:
        load_arch(p)
    msg = str(ei.value)
    assert msg.startswith(f"{p}: "), msg
    return msg


# ---------------------------------------------------------------- shipped configs


@pytest.mark.parametrize("name", ["scnn", "scnn16", "systolic32", "systolic32_os"])
def test_shipped_configs_validate(name):
    assert name in shipped_arch_names()
    arch = load_arch(name)
    assert arch.version == 1 and arch.name == name
    assert arch.source == str(ARCH_DIR / f"{name}.yaml")


def test_scnn_matches_the_paper():
    a = load_arch("scnn")
    assert (a.pe_array.rows, a.pe_array.cols, a.pe.mult_f, a.pe.mult_i) == (8, 8, 4, 4)
    assert (a.num_pes, a.multipliers_per_pe, a.total_multipliers) == (64, 16, 1024)
    assert a.pe.accumulator_banks == 32 == 2 * a.multipliers_per_pe
    assert a.pe.input_buffer_bytes == a.pe.output_buffer_bytes == 10 * 1024
    assert a.pe.mac_bits == 8 and load_arch("scnn16").pe.mac_bits == 16
    assert a.dataflow == "cartesian" and a.variant == "sparse"
    s16 = load_arch("scnn16")
    assert dataclasses.replace(s16.pe, mac_bits=8) == a.pe  # scnn16 differs only in MAC width


def test_systolic32():
    a = load_arch("systolic32")
    assert a.dataflow == "systolic_ws" and a.num_pes == 1024 and a.multipliers_per_pe == 1
    assert a.variant == "dense" and a.is_systolic
    assert load_arch("systolic32_os").dataflow == "systolic_os"


def test_horowitz_defaults_and_lookups():
    e = load_arch("scnn").energy
    assert e.mult_pj_for(8) == 0.2 and e.mult_pj_for(32) == 3.1
    assert e.mult_pj_for(4) == 0.2 and e.mult_pj_for(9) == 0.8  # smallest covering width
    assert e.add_pj_for(8) == 0.03 and e.add_pj_for(24) == 0.1
    assert e.fp_mult_pj_for(32) == 3.7 and e.fp_add_pj_for(16) == 0.4
    assert e.sram_pj_per_64b(8192) == 10.0 and e.sram_pj_per_64b(10240) == 20.0
    assert e.sram_pj_per_64b(1 << 20) == 100.0 and e.dram_pj_per_64b == 1300.0
    with pytest.raises(ArchError, match=r"energy\.mult_pj: no entry covers 64-bit operands; allowed: bits 1\.\.32"):
        e.mult_pj_for(64)


# ---------------------------------------------------------------- bad input (issue 3)


def test_unknown_key(tmp_path, raw):
    raw["pe"]["mult_g"] = 4
    msg = error_of(tmp_path, raw)
    assert "pe.mult_g: unknown key (did you mean 'mult_i'?); allowed: mult_f, mult_i, mac_bits" in msg


def test_unknown_top_level_key(tmp_path, raw):
    raw["cache"] = {}
    assert "cache: unknown key; allowed: version, name, clock_ghz, dataflow" in error_of(tmp_path, raw)


def test_wrong_type(tmp_path, raw):
    raw["pe"]["mac_bits"] = "eight"
    msg = error_of(tmp_path, raw)
    assert "pe.mac_bits: must be an integer, got 'eight' (str); allowed: integer >= 1 and <= 64" in msg


def test_bool_is_not_a_number(tmp_path, raw):
    raw["clock_ghz"] = True
    assert "clock_ghz: must be a number, got True (bool); allowed: number > 0" in error_of(tmp_path, raw)


def test_section_not_a_mapping(tmp_path, raw):
    raw["memory"] = 5
    assert "memory: must be a mapping, got int; allowed: keys global_buffer_bytes" in error_of(tmp_path, raw)


@pytest.mark.parametrize("value", [0, -10240])
def test_zero_or_negative_size(tmp_path, raw, value):
    raw["pe"]["input_buffer_bytes"] = value
    msg = error_of(tmp_path, raw)
    assert f"pe.input_buffer_bytes: {value} is out of range; allowed: integer >= 1" in msg


def test_zero_pe_rows(tmp_path, raw):
    raw["pe_array"]["rows"] = 0
    assert "pe_array.rows: 0 is out of range; allowed: integer >= 1" in error_of(tmp_path, raw)


def test_negative_bandwidth(tmp_path, raw):
    raw["memory"]["dram_bytes_per_cycle"] = -1
    assert "memory.dram_bytes_per_cycle: -1.0 is out of range; allowed: number > 0" in error_of(tmp_path, raw)


def test_bad_enum(tmp_path, raw):
    raw["dataflow"] = "row_stationary"
    msg = error_of(tmp_path, raw)
    assert "dataflow: 'row_stationary' is not a known value; allowed: one of cartesian, systolic_ws, systolic_os" in msg
    raw["dataflow"] = "cartesian"
    raw["memory"]["compression"] = "zip"
    assert "memory.compression: 'zip' is not a known value; allowed: one of bitmask, run_length, none" in error_of(
        tmp_path, raw)


def test_missing_energy_entry(tmp_path, raw):
    del raw["energy"]["dram_pj_per_64b"]
    assert "energy.dram_pj_per_64b: missing required key; allowed: number >= 0" in error_of(tmp_path, raw)


def test_energy_table_must_cover_mac_bits(tmp_path, raw):
    raw["energy"]["mult_pj"] = {8: 0.2}
    raw["pe"]["mac_bits"] = 16
    msg = error_of(tmp_path, raw)
    assert "energy.mult_pj: no entry covers mac_bits=16 (tabulated: [8]); allowed: a key >= 16" in msg


def test_bad_energy_mapping(tmp_path, raw):
    raw["energy"]["mult_pj"] = {8: "cheap"}
    msg = error_of(tmp_path, raw)
    assert "energy.mult_pj: value for 8 must be a finite number, got 'cheap' (str); allowed: mapping {bits: pJ}" in msg


def test_missing_section_and_version(tmp_path, raw):
    del raw["zero_skip"]
    assert "zero_skip: missing required key; allowed: mapping with keys weights, activations, gradients" in error_of(
        tmp_path, raw)
    raw = yaml.safe_load(SCNN.read_text())
    raw["version"] = 2
    assert "version: 2 is not a known value; allowed: one of 1" in error_of(tmp_path, raw)


def test_systolic_cross_field_rules(tmp_path):
    raw = yaml.safe_load((ARCH_DIR / "systolic32.yaml").read_text())
    raw["pe"]["mult_f"] = 4
    assert "pe.mult_f: 4 with dataflow systolic_ws (systolic PEs do one MAC per cycle); allowed: 1" in error_of(
        tmp_path, raw)
    raw["pe"]["mult_f"] = 1
    raw["zero_skip"]["weights"] = True
    assert "zero_skip.weights: true with dense dataflow systolic_ws; allowed: false" in error_of(tmp_path, raw)


def test_yaml_syntax_and_duplicate_keys(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("version: 1\npe: {rows: 8\n")
    with pytest.raises(ArchError, match=rf"^{p}: not valid YAML"):
        load_arch(p)
    p.write_text(SCNN.read_text() + "\nclock_ghz: 2.0\n")
    with pytest.raises(ArchError, match="duplicate key 'clock_ghz'"):
        load_arch(p)


def test_unknown_name_lists_shipped():
    with pytest.raises(ArchError, match="no such architecture file or name; allowed: a YAML path or one of scnn"):
        load_arch("eyeriss")


def test_dataclass_errors_name_class_and_field():
    with pytest.raises(ArchError, match=r"^PEConfig\.mult_f: 0 is out of range; allowed: integer >= 1"):
        dataclasses.replace(load_arch("scnn").pe, mult_f=0)
    with pytest.raises(ArchError, match=r"^EnergyTable\.register_pj: must be a number"):
        dataclasses.replace(load_arch("scnn").energy, register_pj="x")


# ---------------------------------------------------------------- round trip, overrides, hash, variants


@pytest.mark.parametrize("name", ["scnn", "systolic32"])
def test_round_trip(tmp_path, name):
    a = load_arch(name)
    assert arch_from_dict(a.to_dict()) == a
    p = write(tmp_path, a.to_dict(), "rt.yaml")
    b = load_arch(p)
    assert b == a and b.content_hash() == a.content_hash() and b.source == str(p)
    assert isinstance(a.energy, EnergyTable) and isinstance(a.pe, PEConfig)
    assert hash(a) == hash(b)


def test_frozen():
    a = load_arch("scnn")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.pe.mac_bits = 16  # type: ignore[misc]
    with pytest.raises(TypeError):
        a.energy.mult_pj[8] = 0.0  # type: ignore[index]


def test_hash_is_stable_and_content_based(tmp_path, raw):
    a = load_arch("scnn")
    assert a.content_hash() == load_arch(SCNN).content_hash()
    reordered = dict(reversed(list(raw.items())))  # key order does not matter
    assert load_arch(write(tmp_path, reordered)).content_hash() == a.content_hash()
    assert len(a.content_hash()) == 64
    assert load_arch(a, {"pe.mac_bits": 16}).content_hash() != a.content_hash()


def test_overrides():
    a = load_arch("scnn", overrides={"pe_array.rows": 16, "pe.mac_bits": 16, "energy.mult_pj.4": 0.05})
    assert a.pe_array.rows == 16 and a.num_pes == 128 and a.pe.mac_bits == 16
    assert a.energy.mult_pj_for(4) == 0.05
    b = load_arch(load_arch("scnn"), {"memory.dram_bytes_per_cycle": float("inf")})
    assert b.memory.dram_bytes_per_cycle == float("inf")
    assert load_arch(load_arch("scnn"), {"clock_ghz": 2}).clock_ghz == 2.0
    assert parse_overrides(["pe.mac_bits=16", "memory.compression=none", "zero_gating=true"]) == {
        "pe.mac_bits": 16, "memory.compression": "none", "zero_gating": True}


def test_bad_overrides(raw):
    with pytest.raises(ArchError, match=r"scnn\.yaml: pe\.mult_g: unknown override path \(did you mean 'mult_i'\?\); allowed: mult_f, mult_i"):
        load_arch("scnn", overrides={"pe.mult_g": 1})
    with pytest.raises(ArchError, match=r"clock_ghz\.x: unknown override path|path goes below a scalar"):
        apply_overrides(raw, {"clock_ghz.x": 1})
    with pytest.raises(ArchError, match=r"pe\.mac_bits: must be an integer"):
        load_arch("scnn", overrides={"pe.mac_bits": "16 bits"})
    assert raw == yaml.safe_load(SCNN.read_text())  # apply_overrides never mutates its input


def test_dense_variants():
    a = load_arch("scnn")
    d, g = dense_variant(a), dense_gated_variant(a)
    for v in (d, g):
        assert not v.zero_skip.any
        assert (v.pe, v.pe_array, v.energy, v.clock_ghz, v.dataflow) == (a.pe, a.pe_array, a.energy, a.clock_ghz,
                                                                          a.dataflow)
    assert d.variant == "dense" and d.name == "scnn-dense" and d.memory.compression == "none"
    assert g.variant == "dense_gated" and g.name == "scnn-dense_gated" and g.zero_gating
    assert g.memory.compression == a.memory.compression
    assert dense_variant(g) == d and dense_gated_variant(d).name == "scnn-dense_gated"
    assert dense_gated_variant(load_arch("systolic32")).memory.compression == "bitmask"
    assert a.variant == "sparse" and len({a.content_hash(), d.content_hash(), g.content_hash()}) == 3


def test_arch_module_is_light():
    import subprocess
    import sys
    code = "import sys, hwsim.arch; assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_defaults_for_added_fields(raw):
    r = copy.deepcopy(raw)
    del r["zero_gating"], r["pe"]["accumulator_bank_entries"], r["energy"]["fp_mult_pj"]
    a = arch_from_dict(r)
    assert a.zero_gating is False and a.pe.accumulator_bank_entries == 32 and a.energy.fp_mult_pj_for(32) == 3.7
    assert isinstance(a, Arch)


def test_pickle_and_deepcopy():
    import pickle
    a = load_arch("scnn")
    b = pickle.loads(pickle.dumps(a))  # sweeps ship Arch objects to worker processes
    assert b == a and b.source == a.source and b.content_hash() == a.content_hash()
    assert copy.deepcopy(a) == a
