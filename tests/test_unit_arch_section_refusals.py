"""Every modelling section of an architecture (quantizer, reduction, update, vector, gather, tensordash; hwsim/arch/
costs.py, update.py, vector.py, dataflows.py, tensordash.py) refuses a value outside what its model covers in one
line naming the file, the key path and what is allowed — whether the value comes from a YAML file or ``--set``."""

from __future__ import annotations

import re

import pytest

from hwsim.arch import ArchError, load_arch
from hwsim.arch.loader import ARCH_DIR


@pytest.mark.parametrize("overrides,message", [
    ({"quantizer.sigma": "old"}, "quantizer.sigma: 'old' is not a known value; allowed: one of current, delayed"),
    ({"quantizer.rng_bits": 65}, "quantizer.rng_bits: 65 is out of range; allowed: integer >= 1 and <= 64"),
    ({"quantizer.lanes_per_pe": 0}, "quantizer.lanes_per_pe: 0 is out of range; allowed: integer >= 1"),
    ({"quantizer.skip_zeros": "yes"}, "quantizer.skip_zeros: must be true or false, got 'yes' (str); allowed: true "
                                      "or false"),
    ({"reduction.network": "mesh"}, "reduction.network: 'mesh' is not a known value; allowed: one of ring, tree, "
                                    "accumulate_in_place"),
    ({"reduction.link_bytes_per_cycle": 0}, "reduction.link_bytes_per_cycle: 0.0 is out of range; allowed: number > 0 "
                                            "(.inf allowed)"),
    ({"update.state_bits": 8}, "update.state_bits: 8 is not a known value; allowed: one of 16, 32"),
    ({"update.default_optimizer": "lion"}, "update.default_optimizer: 'lion' is not a known value; allowed: one of "
                                           "sgd, sgd_momentum, adam, adamw"),
    ({"vector.compute_bits": 8}, "vector.compute_bits: 8 is not a known value; allowed: one of 16, 32"),
    ({"vector.baseline_lanes": "mine"}, "vector.baseline_lanes: 'mine' is not a known value; allowed: one of design, "
                                        "own"),
    ({"gather.compactor_inputs": 0}, "gather.compactor_inputs: 0 is out of range; allowed: integer >= 1"),
    ({"tensordash.lookahead": -1}, "tensordash.lookahead: -1 is out of range; allowed: integer >= 0 and <= 16"),
])
def test_a_value_no_model_covers_is_refused_in_one_line(overrides, message):
    with pytest.raises(ArchError) as e:
        load_arch("scnn", overrides)
    assert str(e.value) == f"{ARCH_DIR / 'scnn.yaml'}: {message}"


def test_the_same_refusal_from_a_yaml_file(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text((ARCH_DIR / "scnn.yaml").read_text().replace("network: ring", "network: mesh", 1))
    assert "network: mesh" in f.read_text()
    with pytest.raises(ArchError, match="^" + re.escape(f"{f}: reduction.network: 'mesh' is not a known value")):
        load_arch(f)


def test_unlimited_bandwidth_is_allowed_where_documented():
    assert load_arch("scnn", {"reduction.global_bytes_per_cycle": float("inf")}).reduction.global_bytes_per_cycle \
        == float("inf")
    from hwsim.arch import parse_overrides

    links = load_arch("scnn", parse_overrides(["reduction.link_bytes_per_cycle=.inf"]))   # --set spells it .inf
    assert links.reduction.link_bytes_per_cycle == float("inf")
