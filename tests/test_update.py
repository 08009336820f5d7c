"""The weight update (hwsim/sim/update.py, ``update:`` YAML section): bytes, vector ops and cycles by hand.

A two-layer trace: fc1 (64 → 32, 2,048 parameters) and fc2 (32 → 10, 320 parameters). On scnn: 64 PEs, one
vector lane each; 24-bit accumulators (δW is 3 B), 8-bit MACs (the GEMMs' copy of W is 1 B), 16 DRAM B/cycle,
fp32 master weights and states (4 B) by default.
"""

from __future__ import annotations

import pytest

from hwsim.arch import ArchError, dense_equal_area_variant, load_arch
from hwsim.sim import replay, update
from hwsim.sim.replay import simulate_trace
from hwsim.sim.residency import capacity_bytes
from hwsim.trace.format import load
from hwsim.trace.synth import synthesize

LAYERS = [{"name": "fc1", "kind": "linear", "C": 64, "K": 32}, {"name": "fc2", "kind": "linear", "C": 32, "K": 10}]
SGDM = update.Optimizer("sgd_momentum")            # no weight decay
ADAM = update.Optimizer("adam")
ISO = {"memory.schedule": "isolated"}


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    out = tmp_path_factory.mktemp("upd") / "t"
    synthesize(out, layers=LAYERS, batch=8, meta={"optimizer": "Adam", "betas": [0.9, 0.999], "weight_decay": 0.0})
    return load(out)


def _updates(trace, arch, opt):
    return {lp.name: lp for lp in replay.replay(trace.sample(), arch, optimizer=opt) if lp.pass_name == "update"}


def test_sgd_momentum_bytes_and_ops_by_hand(trace):
    ups = _updates(trace, load_arch("scnn", ISO), SGDM)
    # per parameter: read δW 3 + W 4 + momentum 4 = 11 B, write W 4 + momentum 4 + int8 copy 1 = 9 B → 20 B;
    # ops: δW → float (mul), int8 copy (mul + compare), buf = μ·buf + g (fma), w −= lr·buf (fma) = 5 lane cycles
    fc1, fc2 = ups["fc1"].sparse.actions, ups["fc2"].sparse.actions
    assert fc1["dram_bytes"] == 2048 * 20 == 40_960 and fc2["dram_bytes"] == 320 * 20
    assert (fc1["vec_mul"], fc1["vec_compare"], fc1["vec_fma"]) == (4096, 2048, 4096)
    assert "vec_sqrt" not in fc1 and fc1["vec_sram_bytes"] == 40_960
    # isolated, one chunk (1 MB global buffer holds 26,214 parameters' traffic twice over): load 2048·11/16 = 1408,
    # vector ⌈2048·5/64⌉ = 160, store 2048·9/16 = 1152 → 2720 cycles, 2560 of them memory stall
    cb = ups["fc1"].sparse.cycle_breakdown
    assert (cb.vector, cb.memory_stall, ups["fc1"].sparse.cycles) == (160, 2560, 2720)
    assert (ups["fc2"].sparse.cycle_breakdown.vector, ups["fc2"].sparse.cycles) == (25, 220 + 25 + 180)
    # the bounds: the most vector lanes of any variant — every baseline keeps scnn's 64 (vector.baseline_lanes:
    # design) — without memory, ⌈2048·5/64⌉ = 160; and 40,960 B / 16 B per cycle
    assert ups["fc1"].bound_cycles("mac_bound") == 160 and ups["fc1"].dram_bound_cycles == 2560
    # with the baselines' own lanes the equal-area array's 205 columns (tests/test_bounds.py): ⌈2048·5/205⌉ = 50
    own = _updates(trace, load_arch("scnn", {**ISO, "vector.baseline_lanes": "own"}), SGDM)
    assert own["fc1"].bound_cycles("mac_bound") == 50


def test_adam_bytes_and_ops_by_hand(trace):
    ups = _updates(trace, load_arch("scnn", ISO), ADAM)
    # read δW 3 + W 4 + m 4 + v 4 = 15, write W 4 + m 4 + v 4 + copy 1 = 13 → 28 B per parameter; ops: 2 mul + 1 compare
    # (δW, copy), m (mul + fma), v (2 mul + fma), √v·c + ε (sqrt + fma), step·m / denominator (div + fma)
    a = ups["fc1"].sparse.actions
    assert a["dram_bytes"] == 2048 * 28
    assert (a["vec_mul"], a["vec_fma"], a["vec_sqrt"], a["vec_div"], a["vec_compare"]) == (
        5 * 2048, 4 * 2048, 2048, 2048, 2048)
    # lane cycles per parameter 5 + 4 + 7 (sqrt) + 5 (div) + 1 = 22 → ⌈2048·22/64⌉ = 704
    assert ups["fc1"].sparse.cycle_breakdown.vector == 704
    # vector energy: 2048·(5·3.7 + 4·4.6 + 27.7 + 20.3 + 0.9) pJ + 57,344 B in the 1 MB buffer at 100 pJ / 8 B
    assert ups["fc1"].sparse.energy_breakdown.vector == pytest.approx(2048 * 85.8 + 57_344 / 8 * 100)
    # AdamW with weight decay: one more mul per parameter (w ·= 1 − lr·wd); Adam's L2 decay one more fma
    assert update.Optimizer("adamw", weight_decay=True).ops_per_param()["mul"] == 6
    assert update.Optimizer("adam", weight_decay=True).ops_per_param()["fma"] == 5


def test_bf16_states_halve_the_state_bytes(trace):
    bf16 = _updates(trace, load_arch("scnn", {**ISO, "update.state_bits": 16}), ADAM)
    # 3 + 4 + 2·2 read, 4 + 2·2 + 1 written = 20 B per parameter (fp32: 28)
    assert bf16["fc1"].sparse.actions["dram_bytes"] == 2048 * 20
    bf16w = _updates(trace, load_arch("scnn", {**ISO, "update.master_weight_bits": 16}), SGDM)
    assert bf16w["fc1"].sparse.actions["dram_bytes"] == 2048 * (3 + 2 + 4 + 2 + 4 + 1)


def test_on_chip_keeps_w_and_state_out_of_dram(trace):
    arch = load_arch("scnn", {**ISO, "update.on_chip": True})
    # the model's W and Adam states: 2,368 · 12 B = 28,416 B ≤ the on-chip capacity → only δW (3 B) and the int8
    # copy (1 B) cross DRAM; the vector unit still reads and writes every byte in the global buffer
    assert 2368 * 12 <= capacity_bytes(arch)
    ups = _updates(trace, arch, ADAM)
    a = ups["fc1"].sparse.actions
    assert a["dram_bytes"] == 2048 * 4 and a["vec_sram_bytes"] == 2048 * 28
    assert ups["fc1"].sparse.cycles == 2048 * 3 // 16 + 704 + 2048 // 16      # load 384, vector 704, store 128
    # too small to hold them: the same traffic as off chip, and the result says so
    small = load_arch("scnn", {**ISO, "update.on_chip": True, "pe.input_buffer_bytes": 16,
                               "pe.output_buffer_bytes": 16, "memory.global_buffer_bytes": 4096})
    assert capacity_bytes(small) < 2368 * 12
    assert _updates(trace, small, ADAM)["fc1"].sparse.actions["dram_bytes"] == 2048 * 28
    assert update.update_record(trace.sample(), small, ADAM)["on_chip"] is False
    assert update.update_record(trace.sample(), arch, ADAM)["on_chip"] is True


def test_chunks_follow_the_global_buffer(trace):
    arch = load_arch("scnn", {**ISO, "memory.global_buffer_bytes": 4096})
    # 4096 // (2 · 28 B) = 73 parameters per chunk: fc1 = 28 chunks of 73 and one of 4;
    # vector cycles 28·⌈73·22/64⌉ + ⌈4·22/64⌉ = 28·26 + 2 = 730 (704 for the whole layer at once: the MAC bound)
    c = update.layer_cost(2048, arch, ADAM, on_chip=False)
    assert len(c.spans) == 29 and int(c.spans.sum()) == 730 and c.compute_cycles == 704
    assert c.load_bytes[0] == 73 * 15 and c.store_bytes[-1] == 4 * 13
    ups = _updates(trace, arch, ADAM)
    lanes = dense_equal_area_variant(arch).vector_lanes   # the most lanes of any variant
    assert ups["fc1"].sparse.cycle_breakdown.vector == 730 and ups["fc1"].ideal.cycles == -(-2048 * 22 // lanes)


def test_every_variant_pays_it(trace):
    for sched in ("isolated", "iteration"):
        ups = _updates(trace, load_arch("scnn", {"memory.schedule": sched}), SGDM)
        for lp in ups.values():
            s, d, g = lp.sparse, lp.dense, lp.dense_gated
            assert s.cycle_breakdown.vector == d.cycle_breakdown.vector == g.cycle_breakdown.vector > 0
            assert s.actions.count("dram_bytes") > 0
            if sched == "isolated":   # in one schedule the memory stall a segment is charged depends on its neighbours
                assert s.cycles == d.cycles == g.cycles and s.actions == d.actions == g.actions
                assert s.energy_pj == pytest.approx(d.energy_pj)
            else:
                assert all(s.actions[k] == d.actions[k] == g.actions[k] for k in s.actions if k != "leak_cycles")
            for v in ("dense_systolic", "dense_equal_area"):
                assert lp.variant(v).actions["dram_bytes"] == s.actions["dram_bytes"]
        # the systolic baseline of equal multipliers keeps scnn's 64 lanes: the same vector cycles; with its own
        # lanes (one per column, 32) twice as many
        assert ups["fc1"].dense_systolic.cycle_breakdown.vector == 160
        own = _updates(trace, load_arch("scnn", {"memory.schedule": sched, "vector.baseline_lanes": "own"}), SGDM)
        assert own["fc1"].dense_systolic.cycle_breakdown.vector == 2 * 160


def test_iteration_schedule_runs_the_update_last(trace):
    arch = load_arch("scnn")
    res = replay.replay(trace.sample(), arch, optimizer=SGDM, timelines=(lines := {}))
    # the iteration's makespan covers every layer-pass, updates included; fc1's update is the last segment
    assert sum(lp.sparse.cycles - lp.sparse.cycle_breakdown.reduction - lp.sparse.cycle_breakdown.nsd
               for lp in res) == lines["sparse"].makespan
    ups = [lp for lp in res if lp.pass_name == "update"]
    assert ups[0].name == "fc1" and ups[0].sparse.cycle_breakdown.fill_drain == lines["sparse"].drain > 0
    # fc1's update alone moves 2560 DRAM cycles: the iteration cannot end before every update byte moved
    assert lines["sparse"].makespan >= 2560 + 400


def test_optimizer_from_the_trace_meta(trace):
    o = update.optimizer_from_meta({"optimizer": "sgd+cosine", "momentum": 0.9, "weight_decay": 5e-4}, "adam")
    assert (o.kind, o.weight_decay, o.states) == ("sgd_momentum", True, 1) and o.source.startswith("trace meta")
    assert update.optimizer_from_meta({"optimizer": "SGD", "momentum": 0.0}, "adam").kind == "sgd"
    o = update.optimizer_from_meta({"optimizer": "SGD", "momentum": 0.9, "nesterov": True}, "sgd")
    assert o.nesterov and o.ops_per_param()["fma"] == 3 and not o.weight_decay   # torch's default decay is 0
    assert update.optimizer_from_meta({"optimizer": "AdamW"}, "sgd").weight_decay    # AdamW's default 1e-2
    d = update.optimizer_from_meta({}, "sgd_momentum")
    assert d.kind == "sgd_momentum" and d.weight_decay and "names none" in d.source
    r = update.optimizer_from_meta({"optimizer": "RMSprop"}, "adam")
    assert r.kind == "adam" and "'RMSprop' is not modelled" in r.source
    with pytest.raises(ValueError, match="trace meta optimizer: 3 is not allowed"):
        update.optimizer_from_meta({"optimizer": 3}, "sgd")
    res = simulate_trace(trace, load_arch("scnn"))
    assert res.run["update"]["optimizer"] == "adam" and res.run["update"]["params"] == 2368
    assert "Adam" in res.run["update"]["from"]
    # the iteration adds up: its total includes the update entries
    assert res.total("sparse").cycles == sum(lp.sparse.cycles for lp in res.layers)
    assert res.scope_total("update", "sparse").cycles > 0
    # results files keep them: pass "update", the vector cycle part and energy category, the run record
    import json

    from hwsim.results import SimResult

    d = json.loads(json.dumps(res.to_json()))
    assert "update" in d["passes"] and d["run"]["update"]["optimizer"] == "adam"
    back = SimResult.from_json(d)
    assert back.layers == res.layers and back.total("sparse") == res.total("sparse")
    assert back.scope_total("update", "sparse").cycle_breakdown.vector == 704 + 110   # fc1 + fc2 (⌈320·22/64⌉)


def test_activation_products_and_frozen_weights_have_no_parameters(trace):
    from dataclasses import replace

    s = trace.sample()["fc1"]
    assert update.layer_params(s) == 2048
    assert update.layer_params(replace(s, weight_grad=False)) == 0


def test_bad_yaml_names_the_field():
    with pytest.raises(ArchError, match=r"update\.state_bits"):
        load_arch("scnn", {"update.state_bits": 8})
    with pytest.raises(ArchError, match=r"update\.default_optimizer.*allowed: one of sgd, sgd_momentum, adam, adamw"):
        load_arch("scnn", {"update.default_optimizer": "lion"})


def test_update_records_are_computed_once_per_run(trace):
    """The update depends on parameter counts, not masks: a second iteration with the same archs, optimizer and
    schedule reuses the records and adds the same schedule intervals; another optimizer or arch recomputes."""
    arch = load_arch("scnn")
    dense, gated, systolic, equal_area = replay.baselines(arch)
    archs = {"sparse": arch, "dense": dense, "dense_gated": gated, "dense_systolic": systolic,
             "dense_equal_area": equal_area}
    update._UPDATES.clear()

    def run(opt, a=archs):
        timed = {"sparse": {}, "dense": {}}
        return update.update_results(trace.sample(), a, opt, timed=timed, follow={"dense_gated": "dense"}), timed

    (first, t1), (again, t2) = run(SGDM), run(SGDM)
    assert [a is b for a, b in zip(first, again, strict=True)] == [True, True] and t1 == t2 and len(update._UPDATES) == 1
    assert set(t1["sparse"]) == {("fc1", "update"), ("fc2", "update")}
    adam, _ = run(ADAM)
    assert adam[0].sparse.actions["dram_bytes"] != first[0].sparse.actions["dram_bytes"] and len(update._UPDATES) == 2
    other = {**archs, "sparse": load_arch("scnn")}                       # an equal arch, another object
    assert run(SGDM, other)[0][0] is not first[0] and run(SGDM, other)[0][0].sparse == first[0].sparse
