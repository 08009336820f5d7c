"""pe.mac (parallel | bit_serial | bit_fusion) and energy.bit_op_pj: defaults, validation, hashes, shipped configs."""

from __future__ import annotations

import copy

import pytest
import yaml

from hwsim.arch import (
    ARCH_DIR,
    BIT_OP_PJ,
    HOROWITZ_45NM,
    ArchError,
    arch_from_dict,
    dense_gated_variant,
    dense_variant,
    load_arch,
    parse_overrides,
)

NEW_PE_KEYS = ("mac", "bit_serial_mode", "serial_sign_cycle", "bit_fusion_widths", "serial_lanes")


@pytest.fixture()
def raw() -> dict:
    return yaml.safe_load((ARCH_DIR / "scnn.yaml").read_text())


def load_raw(tmp_path, d: dict):
    p = tmp_path / "a.yaml"
    p.write_text(yaml.safe_dump(d, sort_keys=False))
    return load_arch(p), p


def test_defaults_keep_todays_8bit_mac():
    a = load_arch("scnn")
    assert (a.pe.mac, a.pe.bit_serial_mode, a.pe.serial_sign_cycle, a.pe.bit_fusion_widths, a.pe.serial_lanes) == (
        "parallel", "magnitude", True, (2, 4, 8), 0)
    assert a.energy.bit_op_pj == BIT_OP_PJ == HOROWITZ_45NM["mult_pj"][8] / 64  # 8×8 array = 64 bit-products


@pytest.mark.parametrize("name", ["scnn", "scnn16", "systolic32", "systolic32_os"])
def test_existing_configs_hash_unchanged(name, tmp_path):
    """New fields at their defaults are left out of to_dict, so content hashes of old configs do not move."""
    a = load_arch(name)
    d = a.to_dict()
    assert not set(NEW_PE_KEYS) & set(d["pe"]) and "bit_op_pj" not in d["energy"]
    explicit = copy.deepcopy(d)   # writing the defaults out explicitly gives the same arch and hash
    explicit["pe"].update(mac="parallel", bit_serial_mode="magnitude", serial_sign_cycle=True,
                          bit_fusion_widths=[2, 4, 8], serial_lanes=0)
    explicit["energy"]["bit_op_pj"] = BIT_OP_PJ
    b, _ = load_raw(tmp_path, explicit)
    assert b == a and b.content_hash() == a.content_hash()


@pytest.mark.parametrize("name,mac,mode", [("scnn_bitserial", "bit_serial", "magnitude"),
                                           ("scnn_pragmatic", "bit_serial", "essential_bits"),
                                           ("scnn_bitfusion", "bit_fusion", "magnitude")])
def test_shipped_mac_configs(name, mac, mode, tmp_path):
    a = load_arch(name)
    assert (a.name, a.pe.mac, a.pe.bit_serial_mode) == (name, mac, mode)
    base = load_arch("scnn")
    # Same silicon as scnn.yaml except the multiplier kind.
    assert (a.pe_array, a.memory, a.zero_skip, a.energy) == (base.pe_array, base.memory, base.zero_skip, base.energy)
    assert a.pe.mult_f == base.pe.mult_f and a.pe.mac_bits == base.pe.mac_bits
    assert a.content_hash() != base.content_hash()
    b = arch_from_dict(a.to_dict())
    assert b == a and b.content_hash() == a.content_hash()
    assert load_raw(tmp_path, a.to_dict())[0] == a


def test_overrides_and_round_trip():
    a = load_arch("scnn", parse_overrides(["pe.mac=bit_fusion", "pe.bit_fusion_widths=[1, 2, 4, 8]",
                                           "pe.serial_lanes=8"]))
    assert a.pe.mac == "bit_fusion" and a.pe.bit_fusion_widths == (1, 2, 4, 8) and a.pe.brick_bits == 1
    d = a.to_dict()
    assert d["pe"]["bit_fusion_widths"] == [1, 2, 4, 8] and d["pe"]["mac"] == "bit_fusion"
    assert arch_from_dict(d) == a


@pytest.mark.parametrize("name", ["scnn_bitserial", "scnn_pragmatic", "scnn_bitfusion"])
def test_baselines_are_the_8bit_parallel_dcnn(name):
    """Every multiplier kind is compared with the same dense 8-bit DCNN / DCNN-opt as scnn.yaml."""
    a, base = load_arch(name), load_arch("scnn")
    for derive in (dense_variant, dense_gated_variant):
        d, ref = derive(a), derive(base)
        assert d.pe == ref.pe and d.pe.mac == "parallel" and d.name == ref.name.replace("scnn", name)
        assert d.to_dict() | {"name": ""} == ref.to_dict() | {"name": ""}


@pytest.mark.parametrize("overrides,key,match", [
    ({"pe.mac": "serial"}, "pe.mac", "one of parallel, bit_serial, bit_fusion"),
    ({"pe.bit_serial_mode": "booth"}, "pe.bit_serial_mode", "one of magnitude, essential_bits"),
    ({"pe.serial_sign_cycle": "yes"}, "pe.serial_sign_cycle", "true or false"),
    ({"pe.bit_fusion_widths": [2, 3, 8]}, "pe.bit_fusion_widths", "powers of two"),
    ({"pe.bit_fusion_widths": [4, 2, 8]}, "pe.bit_fusion_widths", "ascending"),
    ({"pe.bit_fusion_widths": []}, "pe.bit_fusion_widths", "non-empty list"),
    ({"pe.bit_fusion_widths": [2, "4"]}, "pe.bit_fusion_widths", "not an integer"),
    ({"pe.bit_fusion_widths": 8}, "pe.bit_fusion_widths", "non-empty list"),
    ({"pe.mac": "bit_fusion", "pe.bit_fusion_widths": [2, 4]}, "pe.bit_fusion_widths", "ending in 8"),
    ({"pe.mac": "bit_serial", "pe.serial_lanes": 5}, "pe.serial_lanes", "divisor of 128"),
    ({"pe.mac": "bit_fusion", "pe.serial_lanes": 32}, "pe.serial_lanes", "divisor of 16"),
    ({"pe.serial_lanes": -1}, "pe.serial_lanes", "integer >= 0"),
    ({"energy.bit_op_pj": -0.1}, "energy.bit_op_pj", ">= 0"),
])
def test_bad_values_name_file_key_and_allowed(overrides, key, match):
    with pytest.raises(ArchError) as ei:
        load_arch("scnn", overrides)
    msg = str(ei.value)
    assert msg.startswith(f"{ARCH_DIR / 'scnn.yaml'}: {key}: "), msg
    assert match in msg, msg


def test_precision_multipliers_need_the_cartesian_dataflow():
    with pytest.raises(ArchError, match=r"systolic32\.yaml: pe\.mac: bit_serial with dataflow systolic_ws.*allowed: "
                                        r"parallel"):
        load_arch("systolic32", {"pe.mac": "bit_serial"})


def test_widths_only_checked_against_mac_bits_for_bit_fusion():
    assert load_arch("scnn16").pe.bit_fusion_widths == (2, 4, 8)          # parallel 16-bit: widths unused
    assert load_arch("scnn16", {"pe.mac": "bit_fusion", "pe.bit_fusion_widths": [2, 4, 8, 16]}).pe.brick_bits == 2
    with pytest.raises(ArchError, match="ending in 16"):
        load_arch("scnn16", {"pe.mac": "bit_fusion"})


def test_yaml_comments_state_the_bit_op_source():
    for name in ("scnn_bitserial", "scnn_pragmatic", "scnn_bitfusion"):
        line = next(ln for ln in (ARCH_DIR / f"{name}.yaml").read_text().splitlines() if "bit_op_pj" in ln)
        assert "Horowitz" in line and "0.2 / 64" in line
