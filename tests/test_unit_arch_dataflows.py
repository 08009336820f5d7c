"""Per-pass dataflows (hwsim/arch/dataflows.py): a name means every pass, a mapping names each pass, a config
written as one name hashes as before, and each malformed ``dataflow:`` is refused in one line naming the key and
what is allowed."""

from __future__ import annotations

import pytest

from hwsim.arch import ArchError, dense_gated_variant, dense_variant, load_arch
from hwsim.arch.dataflows import PASS_NAMES, Dataflows

GATHER = {"forward": "cartesian", "backward_data": "dz_gather", "backward_weight": "cartesian"}
ALLOWED = ("one of cartesian, systolic_ws, systolic_os (every pass), or a mapping {forward, backward_data, "
           "backward_weight} whose backward passes may also be dz_gather")


def test_one_name_is_every_pass_and_reads_as_that_name():
    d = Dataflows.coerce("systolic_os")
    assert [d.of(p) for p in PASS_NAMES] == ["systolic_os"] * 3
    assert d.uniform == "systolic_os" and d.to_dict() == "systolic_os" and str(d) == "systolic_os"
    assert d == "systolic_os" and d != "systolic_ws" and hash(d) == hash("systolic_os")
    assert Dataflows.coerce(d) is d


def test_a_mapping_names_each_pass():
    d = Dataflows.coerce(GATHER)
    assert d.of("backward_data") == "dz_gather" and d.uniform is None
    assert d.uses("dz_gather") and d.uses("cartesian") and not d.uses("systolic_ws")
    assert d.to_dict() == GATHER and d != "cartesian"
    assert str(d) == "forward: cartesian, backward_data: dz_gather, backward_weight: cartesian"
    assert d == Dataflows.coerce(dict(GATHER)) and hash(d) == hash(Dataflows.coerce(dict(GATHER)))
    assert d != Dataflows.coerce("cartesian") and d.__eq__(3) is NotImplemented
    weight_only = Dataflows.coerce({**GATHER, "backward_data": "cartesian", "backward_weight": "dz_gather"})
    assert weight_only.uniform is None and weight_only != "cartesian"
    assert Dataflows.as_mapping("cartesian") == dict.fromkeys(PASS_NAMES, "cartesian")
    assert Dataflows.as_mapping(GATHER) is GATHER


def test_a_mapping_of_one_name_is_the_old_config_with_the_same_hash():
    scnn = load_arch("scnn")
    spelt = load_arch("scnn", {"dataflow": dict.fromkeys(PASS_NAMES, "cartesian")})
    assert spelt == scnn and spelt.content_hash() == scnn.content_hash() and spelt.to_dict()["dataflow"] == "cartesian"
    gather = load_arch("scnn", {"dataflow": GATHER})
    assert gather.content_hash() != scnn.content_hash() and gather.to_dict()["dataflow"] == GATHER


def test_dense_baselines_keep_the_per_pass_dataflows():
    gather = load_arch("scnn", {"dataflow": GATHER})
    for derive in (dense_variant, dense_gated_variant):
        assert derive(gather).dataflow == Dataflows.coerce(GATHER)


@pytest.mark.parametrize("value,message", [
    ("tpu", f"Arch.dataflow: 'tpu' is not a known value; allowed: {ALLOWED}"),
    (3, f"Arch.dataflow: must be a dataflow name or a mapping, got int; allowed: {ALLOWED}"),
    ({"forward": "cartesian", "backward_data": "dz_gather"},
     "Arch.dataflow: missing key 'backward_weight'; allowed: a mapping with exactly the keys forward, "
     "backward_data, backward_weight"),
    ({**GATHER, "backward_wieght": "cartesian"},
     "Arch.dataflow: unknown key 'backward_wieght' (did you mean 'backward_weight'?); allowed: a mapping with "
     "exactly the keys forward, backward_data, backward_weight"),
    # the forward pass has no δ̃z to gather
    ({**GATHER, "forward": "dz_gather"},
     "dataflow.forward: 'dz_gather' is not a known value; allowed: one of cartesian, systolic_ws, systolic_os"),
    ({**GATHER, "backward_data": "systolic_ws"},
     "dataflow: ['cartesian', 'systolic_ws'] mixes a systolic array with other dataflows; allowed: one systolic "
     "dataflow for every pass, or cartesian / dz_gather"),
])
def test_a_bad_dataflow_is_refused_in_one_line(value, message):
    with pytest.raises(ArchError) as e:
        Dataflows.coerce(value)
    assert str(e.value) == message


def test_a_bad_per_pass_dataflow_in_a_file_names_the_file_and_the_pass(tmp_path):
    with pytest.raises(ArchError, match=r"scnn\.yaml: dataflow\.backward_data: 'gather' is not a known value; "
                                        r"allowed: one of cartesian, systolic_ws, systolic_os, dz_gather$"):
        load_arch("scnn", {"dataflow": {**GATHER, "backward_data": "gather"}})
    with pytest.raises(ArchError, match=r"scnn\.yaml: pe\.mult_f: 4 with dataflow systolic_ws"):
        load_arch("scnn", {"dataflow": "systolic_ws"})
