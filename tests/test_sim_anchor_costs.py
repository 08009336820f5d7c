"""The SCNN anchor's formerly free parts, priced (issue 18 item 5): bank-queue storage in area, bank-queue and
crossbar energy per product — in the dense Cartesian baselines too. Numbers by hand from the shipped tables."""

from __future__ import annotations

import pytest

from hwsim.arch import area_breakdown_um2, load_arch
from hwsim.sim import simulate
from hwsim.sim.energy import price
from hwsim.trace.synth import synthesize


def test_bank_queue_area_by_hand():
    arch = load_arch("scnn")
    # 64 PEs × 32 banks × depth 4 entries × (16-bit product + 5-bit address of 32 entries) = 172,032 bits = 21 KB,
    # at the accumulators' 28,350 µm² per KB
    assert area_breakdown_um2(arch)["bank_queues"] == pytest.approx(64 * 32 * 4 * 21 / 8 / 1024 * 28350.0)
    assert area_breakdown_um2(load_arch(arch, {"pe.bank_queue_depth": 0}))["bank_queues"] == 0.0
    assert area_breakdown_um2(load_arch("systolic32"))["bank_queues"] == 0.0


def test_every_product_pays_crossbar_and_queue_energy():
    arch = load_arch("scnn")                                  # crossbar 0.2 pJ, queue write + read 0.2 pJ
    assert price({"xbar": 10.0}, arch).crossbar == pytest.approx(10 * (0.2 + 0.2))
    assert price({"xbar": 10.0}, load_arch(arch, {"pe.bank_queue_depth": 0})).crossbar == pytest.approx(10 * 0.2)
    assert price({"xbar": 10.0}, load_arch("systolic32")).crossbar == pytest.approx(10 * 0.2)   # a hop, no queue


def test_dense_cartesian_baseline_routes_its_products_through_the_crossbar(tmp_path):
    # 1×1 conv, 4 → 8 channels on a 4×4 plane, one image: the dense baseline issues 4·8·16 = 512 products
    t = synthesize(tmp_path / "t", layers=[{"name": "c", "C": 4, "K": 8, "H": 4, "W": 4}], w_density=0.5,
                   a_density=0.5, dense_first_input=False)
    arch = load_arch("scnn", {"pe_array.rows": 2, "pe_array.cols": 2})
    fwd = simulate(t, arch, training=False).layer("c", "forward")
    for v in ("dense", "dense_gated"):
        vr = getattr(fwd, v)
        assert vr.actions["xbar"] == vr.actions["reg_read"] == 512, v
        assert vr.energy_breakdown.crossbar == pytest.approx(512 * 0.4), v
    assert fwd.sparse.actions["xbar"] == fwd.sparse.actions["reg_read"] < 512


def test_free_parts_rows_make_each_cost_free_again(tmp_path):
    from hwsim.sim.sensitivity import FREE_PARTS, sensitivity
    from hwsim.trace import load

    t = synthesize(tmp_path / "t", layers=[{"name": "c", "C": 2, "K": 8, "H": 4, "W": 4, "R": 3, "S": 3,
                                            "padding": 1}], w_density=0.5, a_density=0.5, dense_first_input=False)
    arch = load_arch("scnn16", {"pe_array.rows": 2, "pe_array.cols": 2, "pe.output_channel_group": 4})
    rows = sensitivity(load(t), arch, training=False, rows=[("arch", {}), *FREE_PARTS])
    by = {r["setting"]: r for r in rows}
    assert list(by) == ["arch (arch)", "halo exchange free", "bank queues free (area, energy)"]
    # forward: sparse 43 vs dense 63 cycles with the 8 halo cycles, 35 vs 55 without (tests/test_sim_halo.py)
    assert by["arch (arch)"]["speedup_vs_dense"] == pytest.approx(63 / 43)
    assert by["halo exchange free"]["speedup_vs_dense"] == pytest.approx(55 / 35)
    assert by["bank queues free (area, energy)"]["speedup_vs_dense"] == by["arch (arch)"]["speedup_vs_dense"]
