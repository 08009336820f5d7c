"""Reading an architecture (hwsim/arch/loader.py) as a user meets it: a path or a shipped name, the size limits
that keep a typo from becoming a MemoryError, dotted overrides (added below the schema, refused above a scalar),
``--set`` parsing — each refusal one line, ``<file>: <key.path>: <problem>; allowed: <...>``."""

from __future__ import annotations

import os
import re

import pytest

from hwsim.arch import ArchError, apply_overrides, load_arch, parse_overrides
from hwsim.arch.loader import ARCH_DIR, arch_from_dict, read_yaml, resolve_arch_path, shipped_arch_names

SCNN = str(ARCH_DIR / "scnn.yaml")


def _refused(fn, message: str) -> None:
    with pytest.raises(ArchError) as e:
        fn()
    assert str(e.value) == message


def test_a_shipped_name_resolves_with_or_without_its_suffix_and_a_path_wins(tmp_path):
    assert resolve_arch_path("scnn") == resolve_arch_path("scnn.yaml") == ARCH_DIR / "scnn.yaml"
    mine = tmp_path / "scnn"
    mine.write_text("x")
    assert resolve_arch_path(mine) == mine                        # an existing file is taken as given
    assert "scnn" in shipped_arch_names() and shipped_arch_names() == sorted(shipped_arch_names())


def test_a_directory_a_fifo_and_a_typo_are_named(tmp_path):
    names = ", ".join(shipped_arch_names())
    _refused(lambda: resolve_arch_path(tmp_path),
             f"{tmp_path}: is a directory; allowed: an architecture YAML file or a shipped name ({names})")
    os.mkfifo(tmp_path / "pipe")
    _refused(lambda: resolve_arch_path(tmp_path / "pipe"), f"{tmp_path / 'pipe'}: is not a regular file (a FIFO or a "
             f"device); allowed: an architecture YAML file or a shipped name ({names})")
    _refused(lambda: resolve_arch_path("scnm"), "scnm: no such architecture file or name (did you mean 'scnn'?); "
             f"allowed: a YAML path or one of {names}")
    # a shipped name is looked up only as a bare name, not below another folder
    with pytest.raises(ArchError, match=r"^sub/scnn: no such architecture file or name"):
        resolve_arch_path("sub/scnn")


def test_a_file_or_mapping_that_is_not_a_mapping_at_the_top(tmp_path):
    f = tmp_path / "list.yaml"
    f.write_text("- 1\n- 2\n")
    with pytest.raises(ArchError, match=rf"^{re.escape(str(f))}: top level must be a mapping, got list; allowed: keys "
                                        r"version, name, clock_ghz, dataflow, pe_array, pe, "):
        read_yaml(f)
    with pytest.raises(ArchError, match=r"^<dict>: top level must be a mapping, got int; allowed: keys version, "):
        arch_from_dict(3)


@pytest.mark.parametrize("overrides,message", [
    ({"pe_array.rows": 300, "pe_array.cols": 300},
     "pe_array: 300×300 = 90,000 PEs exceeds the limit of 65,536; allowed: rows × cols <= 65,536"),
    ({"pe.mult_f": 257}, "pe.mult_f: 257 exceeds the limit of 256; allowed: 1..256"),
    ({"pe.mult_i": 300}, "pe.mult_i: 300 exceeds the limit of 256; allowed: 1..256"),
    ({"pe.accumulator_banks": 70_000}, "pe.accumulator_banks: 70,000 exceeds the limit of 65,536; allowed: 1..65,536"),
    ({"pe.accumulator_bank_entries": 2_000_000},
     "pe.accumulator_bank_entries: 2,000,000 exceeds the limit of 1,048,576; allowed: 1..1,048,576"),
])
def test_sizes_beyond_the_limits_are_refused_by_name(overrides, message):
    _refused(lambda: load_arch("scnn", overrides), f"{SCNN}: {message}")


def test_sizes_at_the_limits_load():
    arch = load_arch("scnn", {"pe_array.rows": 256, "pe_array.cols": 256, "pe.mult_f": 256, "pe.mult_i": 1,
                              "pe.accumulator_banks": 512})
    assert arch.num_pes == 65_536 and arch.pe.mult_f == 256


def test_overrides_set_add_and_descend_by_the_schema():
    raw = {"name": "a", "pe": {"mac_bits": 8}, "energy": {"mult_pj": {8: 0.2}}, "dataflow": "cartesian"}
    out = apply_overrides(raw, {"pe.mac_bits": 16, "pe.mult_f": 2, "energy.mult_pj.4": 0.05,
                                "memory.compression": "none", "dataflow.backward_weight": "dz_gather"})
    assert out["pe"] == {"mac_bits": 16, "mult_f": 2}
    assert out["energy"]["mult_pj"] == {8: 0.2, 4: 0.05}         # a width key is an int
    assert out["memory"] == {"compression": "none"}               # valid in the schema, absent from the file: added
    # one dataflow name becomes the per-pass mapping before one pass is changed
    assert out["dataflow"] == {"forward": "cartesian", "backward_data": "cartesian", "backward_weight": "dz_gather"}
    assert raw == {"name": "a", "pe": {"mac_bits": 8}, "energy": {"mult_pj": {8: 0.2}}, "dataflow": "cartesian"}
    assert apply_overrides({"pe": None}, {"pe.mac_bits": 16}) == {"pe": {"mac_bits": 16}}
    assert apply_overrides({"pe": 5}, {"pe.mac_bits": 16}) == {"pe": {"mac_bits": 16}}   # a scalar is replaced
    assert apply_overrides(raw, None) == raw and apply_overrides(raw, None) is not raw


@pytest.mark.parametrize("path,message", [
    ("pe.mac_bits.x", "override pe.mac_bits.x: path goes below a scalar value; allowed: pe.mac_bits"),
    ("energy.mult_pj.x", "energy.mult_pj.x: unknown override path; allowed: an integer bit-width"),
    ("pe.mult_g", "pe.mult_g: unknown override path (did you mean 'mult_i'?); allowed: mult_f, mult_i, mac_bits, "),
    ("memry.compression", "memry: unknown override path (did you mean 'memory'?); allowed: version, name, "),
])
def test_an_override_path_outside_the_schema_is_named(path, message):
    with pytest.raises(ArchError, match="^" + re.escape(f"{SCNN}: {message}")):
        load_arch("scnn", {path: 1})


def test_set_values_parse_as_yaml_scalars():
    assert parse_overrides(["pe.mac_bits=16", "memory.dram_bytes_per_cycle=.inf", "energy.mult_pj={8: 0.2}",
                            "memory.compression=none", " pe.mult_f = 2"]) == {
        "pe.mac_bits": 16, "memory.dram_bytes_per_cycle": float("inf"), "energy.mult_pj": {8: 0.2},
        "memory.compression": "none", "pe.mult_f": 2}
    assert parse_overrides(["name=a=b"]) == {"name": "a=b"}       # the first '=' splits
    assert parse_overrides(None) == {} and parse_overrides(["name="]) == {"name": ""}


@pytest.mark.parametrize("item,message", [
    ("pe.mac_bits", "pe.mac_bits: override must look like key.path=value; allowed: e.g. pe.mac_bits=16"),
    ("=3", "=3: override has an empty key path; allowed: e.g. pe.mac_bits=16"),
    (" =3", " =3: override has an empty key path; allowed: e.g. pe.mac_bits=16"),
])
def test_a_malformed_set_is_refused(item, message):
    _refused(lambda: parse_overrides([item]), message)


def test_a_set_value_that_is_not_yaml_names_the_flag():
    with pytest.raises(ArchError, match=r"^--set pe\.mac_bits: value '\[1, ': not valid YAML .*; allowed: a plain "
                                        r"YAML value such as 16, 0\.5, \.inf, none, \[2, 4\] or \{8: 0\.2\}$"):
        parse_overrides(["pe.mac_bits=[1, "])


def test_section_errors_name_the_file_and_key_path():
    raw = read_yaml(ARCH_DIR / "scnn.yaml")
    no_pe = {k: v for k, v in raw.items() if k != "pe"}
    with pytest.raises(ArchError, match=r"^x\.yaml: pe: missing required key; allowed: mapping with keys mult_f, "):
        arch_from_dict(no_pe, source="x.yaml")
    _refused(lambda: arch_from_dict({**raw, "pe": {k: v for k, v in raw["pe"].items() if k != "mult_f"}},
                                    source="x.yaml"), "x.yaml: pe.mult_f: missing required key; allowed: integer >= 1")
    with pytest.raises(ArchError, match=r"^x\.yaml: pe: must be a mapping, got int; allowed: keys mult_f, mult_i, "):
        arch_from_dict({**raw, "pe": 5}, source="x.yaml")
    with pytest.raises(ArchError, match=r"^x\.yaml: pe\.mult_ff: unknown key \(did you mean 'mult_f'\?\); allowed: "):
        arch_from_dict({**raw, "pe": {**raw["pe"], "mult_ff": 3}}, source="x.yaml")
    _refused(lambda: arch_from_dict({**raw, "clock_ghz": -1}, source="x.yaml"),
             "x.yaml: clock_ghz: -1.0 is out of range; allowed: number > 0")
    _refused(lambda: arch_from_dict({**raw, "pe": {**raw["pe"], "mac_bits": "eight"}}, source="x.yaml"),
             "x.yaml: pe.mac_bits: must be an integer, got 'eight' (str); allowed: integer >= 1 and <= 64")
