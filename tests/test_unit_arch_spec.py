"""Unit tests of hwsim.arch.spec: the frozen Arch, its cross-field checks, derived values, to_dict and hashing."""

from __future__ import annotations

import dataclasses

import pytest

from hwsim.arch import load_arch
from hwsim.arch.errors import ArchError
from hwsim.arch.loader import arch_from_dict
from hwsim.arch.spec import Arch, MemoryConfig, PEArray, PEConfig, ZeroSkip


@pytest.fixture(scope="module")
def scnn() -> Arch:
    return load_arch("scnn")


def _pe(**kw) -> PEConfig:
    base = dict(mult_f=2, mult_i=2, mac_bits=8, accumulator_bits=24, accumulator_banks=8, bank_queue_depth=2,
                input_buffer_bytes=64, output_buffer_bytes=64, weight_fifo_bytes=16, output_channel_group=4)
    return PEConfig(**{**base, **kw})


def _arch_error(base: Arch, overrides: dict) -> ArchError:
    with pytest.raises(ArchError) as ei:
        load_arch(base, overrides)
    return ei.value


# --- PEConfig -----------------------------------------------------------------------------------------------

def test_pe_derived_values():
    pe = _pe(mult_f=3, mult_i=5, bit_fusion_widths=(4, 8))
    assert pe.multipliers == 15
    assert pe.brick_bits == 4


def test_pe_range_error_names_class_and_field():
    with pytest.raises(ArchError) as ei:
        _pe(mult_f=0)
    assert ei.value.field == "mult_f"
    assert "PEConfig.mult_f" in str(ei.value)


def test_bit_fusion_widths_must_be_powers_of_two():
    with pytest.raises(ArchError, match=r"PEConfig\.bit_fusion_widths: \[2, 6\] has a width that is not a power"):
        _pe(bit_fusion_widths=(2, 6))
    assert _pe(bit_fusion_widths=(1, 2, 8)).bit_fusion_widths == (1, 2, 8)


def test_bit_fusion_largest_width_must_be_mac_bits():
    with pytest.raises(ArchError, match=r"largest width 4 != mac_bits=8") as ei:
        _pe(mac="bit_fusion", bit_fusion_widths=(2, 4))
    assert ei.value.field == "bit_fusion_widths"
    assert "ending in 8" in str(ei.value)
    # parallel MACs do not use the fusion widths, so the same widths are fine there
    assert _pe(mac="parallel", bit_fusion_widths=(2, 4)).mac == "parallel"


def test_serial_lanes_must_divide_the_lanes():
    # bit_serial: 2·2·8 = 32 one-bit lanes
    with pytest.raises(ArchError, match=r"PEConfig\.serial_lanes: 5 does not divide the PE's 32 one-bit lanes"):
        _pe(mac="bit_serial", serial_lanes=5)
    assert _pe(mac="bit_serial", serial_lanes=16).serial_lanes == 16
    # bit_fusion: lanes are the 4 multipliers
    with pytest.raises(ArchError, match=r"3 does not divide the PE's 4 multipliers"):
        _pe(mac="bit_fusion", serial_lanes=3)
    assert _pe(mac="bit_fusion", serial_lanes=2).serial_lanes == 2
    # parallel ignores serial_lanes; 0 means automatic
    assert _pe(serial_lanes=5).serial_lanes == 5
    assert _pe(mac="bit_serial", serial_lanes=0).serial_lanes == 0


def test_zero_skip_any():
    assert not ZeroSkip(weights=False, activations=False, gradients=False).any
    for f in ("weights", "activations", "gradients"):
        kw = {"weights": False, "activations": False, "gradients": False, f: True}
        assert ZeroSkip(**kw).any, f


def test_small_sections_validate():
    with pytest.raises(ArchError, match="PEArray.cols"):
        PEArray(rows=1, cols=0)
    with pytest.raises(ArchError, match="MemoryConfig.compression"):
        MemoryConfig(global_buffer_bytes=1, dram_bytes_per_cycle=1.0, compression="zip", run_length_bits=4)


# --- Arch cross-field checks ----------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides,key,fragment", [
    ({"dataflow": "systolic_ws"}, "pe.mult_f", "with dataflow systolic_ws"),
    ({"dataflow": "systolic_ws", "pe.mult_f": 1}, "pe.mult_i", "lanes per PE need the reduction along time"),
    ({"dataflow": "systolic_ws", "pe.mult_f": 1, "pe.mult_i": 1}, "zero_skip.weights", "true with dense dataflow"),
    ({"dataflow": "systolic_ws", "pe.mult_f": 1, "pe.mult_i": 1, "zero_skip.weights": False,
      "zero_skip.activations": False}, "zero_skip.gradients", "true with dense dataflow"),
    ({"dataflow": "systolic_os", "pe.mult_f": 1}, "zero_skip.weights", "true with dataflow systolic_os"),
    ({"dataflow": "systolic_os", "pe.mult_f": 1, "zero_skip.weights": False}, "tensordash.lookaside",
     "5 neighbours with pe.mult_i = 4 lanes"),
    ({"pe.accumulator_bits": 7}, "pe.accumulator_bits", "7 is narrower than mac_bits=8"),
    ({"pe.mac_bits": 64, "pe.accumulator_bits": 64}, "energy.mult_pj", "no entry covers mac_bits=64"),
    ({"pe.mac_bits": 32, "pe.accumulator_bits": 48}, "energy.add_pj", "no entry covers accumulator_bits=48"),
    ({"zero_gating": True, "pe.mac": "bit_serial"}, "zero_gating", "true with pe.mac bit_serial"),
    # the area tables are checked at load too (they priced only when a run reached hwsim.arch.silicon)
    ({"pe.mac_bits": 64, "pe.accumulator_bits": 64, "energy.mult_pj": {8: 0.2, 64: 12.0},
      "energy.add_pj": {64: 0.2}}, "area.mult_um2", "no entry covers mac_bits=64"),
    ({"pe.accumulator_bits": 48, "energy.add_pj": {64: 0.2}}, "area.add_um2",
     "no entry covers accumulator_bits=48"),
])
def test_cross_field_errors_name_the_field(scnn, overrides, key, fragment):
    e = _arch_error(scnn, overrides)
    assert e.key == key, str(e)
    assert fragment in e.problem
    assert str(e).startswith(f"{scnn.source}: {key}: ")
    assert "; allowed: " in str(e)


def test_precision_multipliers_need_the_cartesian_dataflow():
    sys32 = load_arch("systolic32")
    e = _arch_error(sys32, {"pe.mac": "bit_serial"})
    assert e.key == "pe.mac" and "bit_serial with dataflow systolic_ws" in e.problem
    assert e.allowed == "parallel"


def test_arch_error_from_python_names_the_class(scnn):
    kw = {f.name: getattr(scnn, f.name) for f in dataclasses.fields(Arch)}
    with pytest.raises(ArchError, match=r"Arch\.pe\.accumulator_bits") as ei:
        Arch(**{**kw, "pe": dataclasses.replace(scnn.pe, accumulator_bits=4)})
    assert ei.value.field == "pe.accumulator_bits"
    with pytest.raises(ArchError, match=r"Arch\.clock_ghz"):
        Arch(**{**kw, "clock_ghz": 0.0})
    with pytest.raises(ArchError, match=r"Arch\.version"):
        Arch(**{**kw, "version": 2})


def test_frozen(scnn):
    with pytest.raises(dataclasses.FrozenInstanceError):
        scnn.clock_ghz = 2.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        scnn.pe.mac_bits = 16  # type: ignore[misc]


# --- derived values -----------------------------------------------------------------------------------------------

def test_derived_counts_follow_the_fields(scnn):
    a = load_arch(scnn, {"pe_array.rows": 3, "pe_array.cols": 5, "pe.mult_f": 2, "pe.mult_i": 7,
                             "clock_ghz": 0.5})
    assert a.num_pes == 15
    assert a.multipliers_per_pe == 14
    assert a.total_multipliers == 15 * 14
    assert a.peak_macs_per_second == pytest.approx(15 * 14 * 0.5e9)
    assert not a.is_systolic
    assert load_arch("systolic32").is_systolic and load_arch("systolic32_os").is_systolic


def test_variant(scnn):
    assert scnn.variant == "sparse"
    only_grads = load_arch(scnn, {"zero_skip.weights": False, "zero_skip.activations": False})
    assert only_grads.variant == "sparse"
    none = {"zero_skip.weights": False, "zero_skip.activations": False, "zero_skip.gradients": False}
    assert load_arch(scnn, none).variant == "dense"
    assert load_arch(scnn, {**none, "zero_gating": True}).variant == "dense_gated"
    # gating does not matter while something is skipped
    assert load_arch(scnn, {"zero_gating": True}).variant == "sparse"


# --- load_arch(arch, overrides) / to_dict / hash----------------------------------------------------------------

def test_load_arch_with_overrides_of_an_arch_returns_a_new_validated_copy(scnn):
    a = load_arch(scnn, {"pe.mac_bits": 16, "energy.mult_pj.4": 0.05})
    assert a.pe.mac_bits == 16 and scnn.pe.mac_bits == 8
    assert a.energy.mult_pj[4] == 0.05 and 4 not in scnn.energy.mult_pj
    assert a.source == scnn.source
    assert a.name == scnn.name and a.pe.mult_f == scnn.pe.mult_f
    assert load_arch(scnn, {}) == scnn


def test_load_arch_overrides_of_an_arch_unknown_path_names_it(scnn):
    with pytest.raises(ArchError, match=r"pe\.mac_bitz: unknown override path") as ei:
        load_arch(scnn, {"pe.mac_bitz": 16})
    assert "mac_bits" in str(ei.value)


def test_to_dict_round_trip_and_shape(scnn):
    d = scnn.to_dict()
    assert "source" not in d
    assert list(d)[:4] == ["version", "name", "clock_ghz", "dataflow"]
    assert d["pe"]["mac_bits"] == 8 and d["pe_array"] == {"rows": 8, "cols": 8}
    # optional PE fields at their defaults are left out (so old configs keep their hash)
    for omitted in ("mac", "bit_serial_mode", "serial_sign_cycle", "bit_fusion_widths", "serial_lanes",
                    "systolic_os_drain"):
        assert omitted not in d["pe"], omitted
    back = arch_from_dict(d, source="elsewhere.yaml")
    assert back == scnn and back.to_dict() == d
    assert back.source == "elsewhere.yaml"  # source is not compared


def test_to_dict_keeps_non_default_optional_fields(scnn):
    a = load_arch(scnn, {"pe.mac": "bit_serial", "pe.serial_lanes": 16})
    d = a.to_dict()
    assert d["pe"]["mac"] == "bit_serial" and d["pe"]["serial_lanes"] == 16
    assert arch_from_dict(d) == a


def test_content_hash_stable_and_sensitive(scnn):
    h = scnn.content_hash()
    assert len(h) == 64 and int(h, 16) >= 0
    assert h == load_arch("scnn").content_hash()
    # input key order and source do not matter (to_dict writes fields in declaration order)
    d = scnn.to_dict()
    shuffled = dict(reversed(list(d.items())))
    assert arch_from_dict(shuffled, source="x.yaml").content_hash() == h
    # every kind of change does
    changed = [load_arch(scnn, {k: v}).content_hash() for k, v in (
        ("clock_ghz", 1.5), ("pe.bank_queue_depth", 5), ("memory.compression", "bitmask"),
        ("energy.dram_pj_per_64b", 1301.0), ("zero_skip.gradients", False), ("name", "other"),
        ("pe.mac", "bit_serial"), ("quantizer.rng_bits", 8))]
    assert len(set(changed)) == len(changed) and h not in changed
    assert hash(scnn) == hash(load_arch("scnn"))
    assert {scnn, load_arch("scnn")} == {scnn}
