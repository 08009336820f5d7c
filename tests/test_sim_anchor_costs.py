"""The SCNN anchor's formerly free parts, priced (issue 18 item 5): bank-queue storage in area, bank-queue and
crossbar energy per product — in the dense Cartesian baselines too. Numbers by hand from the shipped tables."""

from __future__ import annotations

import numpy as np
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


def test_bank_ports_and_their_crossbar_area_by_hand():
    arch = load_arch("scnn")                       # 4×4 multipliers, 32 banks, queue depth 4, write ports 0 (= depth + 1)
    assert arch.pe.bank_ports == 5
    assert load_arch(arch, {"pe.bank_queue_write_ports": 2}).pe.bank_ports == 2
    assert load_arch(arch, {"pe.bank_queue_write_ports": 9}).pe.bank_ports == 5     # the queue holds 4 + the bank
    assert load_arch(arch, {"pe.bank_queue_depth": 0}).pe.bank_ports == 1
    # 64 PEs × 16 inputs × 32 banks × 5 outputs per bank × 16-bit products × 1.862 µm² per crosspoint bit
    assert area_breakdown_um2(arch)["crossbar"] == pytest.approx(64 * 16 * 32 * 5 * 16 * 1.862)
    one = load_arch(arch, {"pe.bank_queue_write_ports": 1})
    assert area_breakdown_um2(one)["crossbar"] == pytest.approx(64 * 16 * 32 * 1 * 16 * 1.862)


def test_write_ports_stall_bursts_to_one_bank():
    from hwsim.sim import banks

    # f = 1, i = 4: six activations of one weight → cycle 1 puts 4 products on bank 0, cycle 2 puts 2
    unit = [(np.array([0]), np.zeros(6, dtype=np.int64))]
    rate = {w: banks.stall_rate(unit, f=1, i=4, banks=8, depth=1, ports=w) for w in (0, 1, 2, 4)}
    # no port limit, depth 1 (2 a cycle): cycle 1 waits 4 − 2 = 2, leaving 3 queued after the bank retires one
    # (the model before issue 18); cycle 2: 3 + 2 − 2 = 3 → 5 stall cycles over 2
    assert rate[0] == 5 / 2
    # 1 port: cycle 1 delivers its 4 over 4 cycles (3 waits) while the bank retires them, cycle 2 its 2 over 2 (1)
    assert rate[1] == (3 + 1) / 2
    # 2 ports: cycle 1 waits max(4 − 2, ⌈4/2⌉ − 1) = 2 and the bank retires 3 of the 4 in those 3 cycles; cycle 2:
    # 1 + 2 − 2 = 1 more → 3 over 2
    assert rate[2] == 3 / 2
    assert rate[4] == rate[2]           # the depth binds (2 a cycle), not the ports


def test_simulator_passes_the_port_limit_only_when_it_binds(tmp_path):
    t = synthesize(tmp_path / "t", layers=[{"name": "c", "C": 8, "K": 16, "H": 8, "W": 8, "R": 3, "S": 3,
                                            "padding": 1}], w_density=0.6, a_density=0.6, dense_first_input=False)
    arch = load_arch("scnn", {"pe_array.rows": 2, "pe_array.cols": 2})
    cyc = {w: simulate(t, load_arch(arch, {"pe.bank_queue_write_ports": w}), training=False).layer("c", "forward")
           .sparse.cycle_breakdown.bank_conflict for w in (0, 5, 1)}
    assert cyc[5] == cyc[0] < cyc[1]
