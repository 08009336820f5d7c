"""A sweep never reuses a point cached by a different simulator."""

from __future__ import annotations

from hwsim.sweep import points


def test_point_key_depends_on_simulator_source(monkeypatch):
    kw = dict(arch_dict={"name": "scnn"}, trace_sha="abc", iteration=3, seed=0)
    before = points.point_key(**kw)
    assert points.point_key(**kw) == before  # stable
    monkeypatch.setattr(points, "simulator_fingerprint", lambda: "another-simulator")
    assert points.point_key(**kw) != before


def test_fingerprint_is_a_hash_of_real_files():
    fp = points.simulator_fingerprint()
    assert len(fp) == 16 and int(fp, 16) >= 0
