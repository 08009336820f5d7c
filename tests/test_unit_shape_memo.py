"""The mask-free baselines' layer-passes and residency plans, remembered across iterations (hwsim.sim.shape_memo):
which archs qualify, that a remembered result is the one a fresh replay computes, and what keeps two apart."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.arch import load_arch
from hwsim.sim import replay, shape_memo
from hwsim.trace.schema import LayerGeometry, LayerSample


def _samples(seed: int, density: float, *, big_level: int = 3) -> dict[str, LayerSample]:
    """A conv → linear pair (chained: the linear reads the conv's 4 × 2 × 2 output flattened), random masks."""
    rng = np.random.default_rng(seed)
    conv = LayerGeometry(name="c", kind="conv2d", N=2, C=3, K=4, H=4, W=4, P=2, Q=2, R=3, S=3, stride=(2, 2),
                         padding=(1, 1))
    fc = LayerGeometry(name="fc", kind="linear", N=2, C=16, K=5)
    out = {}
    for g in (conv, fc):
        lv = rng.integers(-3, 4, g.output_shape) * (rng.random(g.output_shape) < density)
        lv.flat[0] = big_level  # the widest level sets dz_bits, hence the MAC passes p
        out[g.name] = LayerSample(geometry=g, delta=0.1, dz_levels=lv, a_mask=rng.random(g.input_shape) < density,
                                  w_mask=rng.random(g.weight_shape) < density, w_density=density)
    return out


def _json(results) -> list[dict]:
    return [r.to_json() for r in results]


def test_which_archs_are_mask_free():
    scnn = load_arch("scnn")
    dense, gated, systolic, equal_area = replay.baselines(scnn)
    # dense: no skipping, no gating, uncompressed; the systolic baselines likewise (module doc of arch.variants)
    assert shape_memo.mask_free(dense) and shape_memo.mask_free(systolic) and shape_memo.mask_free(equal_area)
    assert not shape_memo.mask_free(scnn)    # skips zeros
    assert not shape_memo.mask_free(gated)   # gates zeros and compresses DRAM traffic
    assert not shape_memo.mask_free(load_arch("scnn", {"zero_skip.weights": False, "zero_skip.activations": False,
                                                       "zero_skip.gradients": False, "zero_gating": False}))  # compressed
    serial = load_arch("scnn_bitserial")
    assert not shape_memo.mask_free(serial)                          # reads the levels' bits
    assert shape_memo.mask_free(replay.baselines(serial)[0])         # its dense baseline: parallel 8-bit MACs


def test_a_remembered_baseline_is_what_a_fresh_replay_computes(monkeypatch):
    arch = load_arch("scnn")
    a, b = _samples(1, 0.3), _samples(2, 0.6)  # other masks, the same shapes and δ̃z bits
    shape_memo.clear()
    fresh_b = replay.replay(b, arch)
    shape_memo.clear()
    ran = []
    run_pass = replay.run_pass

    def counted(ops, pass_name, on, **kw):
        ran.append(on.name)
        return run_pass(ops, pass_name, on, **kw)

    monkeypatch.setattr(replay, "run_pass", counted)
    first = replay.replay(a, arch)
    n_first = len(ran)
    second = replay.replay(b, arch)            # its baselines from the memo filled by ``a``
    assert _json(second) == _json(fresh_b)
    assert _json(first) != _json(second)       # the sparse run saw other masks
    # 2 layers × 3 passes minus the first layer's backward-data (the network input needs no gradient) = 5
    # layer-passes; the first replay runs 5 variants of each, the second only the sparse and dense-gated runs
    assert n_first == 5 * 5
    assert sorted(set(ran[n_first:])) == ["scnn", "scnn-dense_gated"] and len(ran) - n_first == 5 * 2


def test_only_the_mask_free_baselines_schedules_are_kept():
    """The iteration schedules of the three mask-free baselines repeat every iteration and are kept; the sparse
    run's, built from one iteration's masks, is never asked again and is not kept (its segments can be large)."""
    from hwsim.sim import schedule

    schedule._TIMELINES.clear()
    shape_memo.clear()
    arch = load_arch("scnn")
    lines: dict = {}
    replay.replay(_samples(1, 0.3), arch, timelines=lines)
    assert set(lines) == {"sparse", "dense", "dense_systolic", "dense_equal_area"}
    kept = list(schedule._TIMELINES.values())
    assert len(kept) == 3 and lines["sparse"] not in kept
    assert all(any(lines[v] is t for t in kept) for v in ("dense", "dense_systolic", "dense_equal_area"))


def test_wider_dz_levels_are_not_shared():
    """A level of 200 needs 9 bits (sign + 8): two MAC passes of the 8-bit MACs in each backward pass, so the dense
    baseline's backward work doubles — a remembered one-pass result must not be reused for it."""
    arch = load_arch("scnn")
    shape_memo.clear()
    one = {(r.name, r.pass_name): r for r in replay.replay(_samples(1, 0.3), arch)}
    two = {(r.name, r.pass_name): r for r in replay.replay(_samples(1, 0.3, big_level=200), arch)}
    for key, r in two.items():
        if key[1] in ("backward_data", "backward_weight"):
            assert r.operand_passes == 2 and one[key].operand_passes == 1
            assert r.dense.macs == 2 * one[key].dense.macs
            assert r.dense_systolic.macs == 2 * one[key].dense_systolic.macs
            assert r.dense.actions["mult"] == pytest.approx(2 * one[key].dense.actions["mult"], rel=1e-12)
        elif key[1] == "forward":
            assert r.dense.macs == one[key].dense.macs   # forward: one pass either way


def test_the_memo_is_bounded_and_keeps_its_arrays_read_only(monkeypatch):
    arch = replay.baselines(load_arch("scnn"))[0]
    shape_memo.clear()
    monkeypatch.setattr(shape_memo, "MAX_ENTRIES", 2)

    class Timing:
        mult_cycles = np.zeros((2, 3), dtype=np.int64)

    got = shape_memo.remember(arch, ("k", 1), Timing)
    assert not got.mult_cycles.flags.writeable
    assert shape_memo.remember(arch, ("k", 1), lambda: pytest.fail("computed twice")) is got
    shape_memo.remember(arch, ("k", 2), Timing)
    shape_memo.remember(arch, ("k", 3), Timing)                  # full: starts over
    assert len(shape_memo._MEMO) == 1
    other = replay.baselines(load_arch("scnn", {"pe_array.rows": 4}))[0]
    assert shape_memo.remember(other, ("k", 3), Timing) is not shape_memo.remember(arch, ("k", 3), Timing)


def test_keys_hold_the_mac_passes_and_the_shapes():
    arch = replay.baselines(load_arch("scnn"))[0]                    # 8-bit MACs
    narrow = replay.layer_operands(_samples(1, 0.3)["c"], seed=0, out_density=1.0, where="t")
    other = replay.layer_operands(_samples(2, 0.6)["c"], seed=0, out_density=1.0, where="t")
    wide = replay.layer_operands(_samples(1, 0.3, big_level=200)["c"], seed=0, out_density=1.0, where="t")
    assert (narrow.dz_bits, wide.dz_bits) == (3, 9)                  # |3|: 2 bits + sign; |200|: 8 bits + sign
    res = replay.traffic.NO_RESIDENCY

    def key(ops, pname):
        return shape_memo.pass_key(ops, pname, arch, res, 864)

    assert key(narrow, "backward_data") == key(other, "backward_data")   # other masks: one key
    assert key(narrow, "forward") == key(wide, "forward")                # forward: one MAC pass either way
    assert key(narrow, "backward_data") != key(wide, "backward_data")    # 1 vs 2 MAC passes
    assert key(narrow, "forward") != shape_memo.pass_key(narrow, "forward", arch, replay.traffic.Residency(
        stream_on_chip=True), 864)
    geo = [_samples(1, 0.3)["c"].geometry]

    def plan(ops):
        return shape_memo.plan_key([ops], geo, arch, training=True, input_grads=[False], weight_grads=[True])

    assert plan(narrow) == plan(other) and plan(narrow) != plan(wide)  # δ̃z stored at 8 vs 16 bits


@pytest.mark.parametrize("pname", ["forward", "backward_data", "backward_weight"])
def test_a_dense_streaming_arch_maps_each_shape_once(pname, monkeypatch):
    """The dense-gated baseline streams every role dense (its Kc, work, halo exchange or δW reduction follow from the
    shapes) but gates and compresses by the masks: the mapping is remembered, the actions are the masks' own."""
    from hwsim.sim import capacity, passes

    gated = replay.baselines(load_arch("scnn"))[1]
    shape_memo.clear()
    a, b = (replay.layer_operands(_samples(seed, dens)["c"], seed=0, out_density=1.0, where="t")
            for seed, dens in ((1, 0.3), (2, 0.6)))

    def run(ops, p=pname):
        return passes.run_pass(ops, p, gated, rng=np.random.default_rng(0), macs_dense=864, macs_effectual=1,
                               timing=False)

    fresh_b = run(b)
    shape_memo.clear()
    for p in passes.PASSES:                                       # every pass of a remembered (one key each)
        run(a, p)
    monkeypatch.setattr(capacity, "group_kc", lambda *x, **k: pytest.fail("mapped again"))
    again_b = run(b)                                              # the mapping remembered from a
    assert again_b.actions == fresh_b.actions and np.array_equal(again_b.mult_cycles, fresh_b.mult_cycles)
    assert again_b.actions != run(a).actions                      # gated multiplies and compressed bytes: the masks'


def test_the_memo_holds_a_bounded_number_of_array_bytes(monkeypatch):
    arch = replay.baselines(load_arch("scnn"))[0]
    shape_memo.clear()
    monkeypatch.setattr(shape_memo, "MAX_BYTES", 16 * 800)            # a value of at most 800 bytes is kept

    def timing(n):
        class Timing:
            mult_cycles = np.zeros(n, dtype=np.int64)                 # 8 bytes each
        return Timing

    big = shape_memo.remember(arch, ("big",), timing(101))           # 808 bytes: computed, not kept
    assert shape_memo.remember(arch, ("big",), timing(101)) is not big and ("big",) not in {k for _, k in shape_memo._MEMO}
    assert big.mult_cycles.flags.writeable                            # not shared, so not frozen
    for i in range(16):                                               # 16 × 800 bytes fill the budget exactly
        shape_memo.remember(arch, ("v", i), timing(100))
    assert len(shape_memo._MEMO) == 16 and shape_memo._BYTES == 16 * 800
    shape_memo.remember(arch, ("v", 16), timing(100))                 # over the budget: started over
    assert len(shape_memo._MEMO) == 1 and shape_memo._BYTES == 800


# ----------------------------------------------------------------------------- derived records (the record stages)


def test_derive_computes_once_per_shared_record_arch_and_key():
    from hwsim.results import CycleBreakdown, VariantResult

    arch = replay.baselines(load_arch("scnn"))[0]
    shape_memo.clear()
    rec, other = VariantResult(cycle_breakdown=CycleBreakdown(compute=5)), VariantResult()
    calls = []

    def stage(tag):
        def compute():
            calls.append(tag)
            return VariantResult(cycle_breakdown=CycleBreakdown(compute=len(calls)))
        return compute

    # a record that is not shared: computed every time, nothing kept
    a, b = shape_memo.derive(rec, arch, ("k",), stage("x")), shape_memo.derive(rec, arch, ("k",), stage("x"))
    assert calls == ["x", "x"] and a is not b and not shape_memo._DERIVED
    shape_memo.share(rec)
    first = shape_memo.derive(rec, arch, ("k",), stage("y"))
    assert shape_memo.derive(rec, arch, ("k",), stage("never")) is first          # remembered
    assert shape_memo.shared(first)                                               # and shared in turn: chains
    assert shape_memo.derive(first, None, ("next",), stage("z")) is shape_memo.derive(first, None, ("next",),
                                                                                       stage("never"))
    assert shape_memo.derive(rec, arch, ("k2",), stage("k2")) is not first        # another key: computed
    assert shape_memo.derive(rec, None, ("k",), stage("no arch")) is not first    # another arch: computed
    assert shape_memo.derive(other, arch, ("k",), stage("other")) is not first    # another record (equal or not)
    assert calls == ["x", "x", "y", "z", "k2", "no arch", "other"]
    shape_memo.clear()
    assert not shape_memo.shared(rec) and not shape_memo.shared(first)


def test_a_remembered_baseline_record_is_a_shared_one():
    arch = load_arch("scnn")
    shape_memo.clear()
    (lp, *_) = replay.replay(_samples(1, 0.3), arch)
    # the remembered (timing, record) pairs of the mask-free baselines are shared; the sparse run's records not
    shared = [v for _, v in shape_memo._MEMO.values() if isinstance(v, tuple) and len(v) == 2
              and shape_memo.shared(v[1])]
    assert shared and not shape_memo.shared(lp.sparse)


def _nongemm_work():
    from hwsim.trace.nongemm import NonGemmWork

    # conv c: a batchnorm and a ReLU forward and backward; fc: a ReLU (counts in trace.nongemm's ROW order)
    return NonGemmWork.from_rows([("c", "batchnorm", [1, 32, 40, 32, 1, 32, 72, 32]),
                                  ("c", "relu", [1, 32, 32, 32, 1, 32, 64, 32]),
                                  ("fc", "relu", [1, 10, 10, 10, 1, 10, 20, 10])])


@pytest.mark.parametrize("schedule", ["iteration", "isolated"])
def test_the_record_stages_of_a_shared_baseline_run_once_and_give_a_fresh_replays_records(schedule, monkeypatch):
    """Every iteration's schedule, non-GEMM work and leakage of the mask-free baselines are the first iteration's:
    a second replay (other masks, same shapes) derives none of them again, and its records are a fresh replay's."""
    from hwsim.sim import charges, nongemm

    arch = load_arch("scnn", {"memory.schedule": schedule})
    work = _nongemm_work()
    a, b = _samples(1, 0.3), _samples(2, 0.6)
    shape_memo.clear()
    fresh_b = replay.replay(b, arch, nongemm_work=work)
    shape_memo.clear()
    replay.replay(a, arch, nongemm_work=work)
    added, costs = [], []
    for mod in (charges, nongemm):
        def counted(vr, arch_, *rest, _f=mod._add, **kw):
            added.append(arch_.name)
            return _f(vr, arch_, *rest, **kw)

        monkeypatch.setattr(mod, "_add", counted)
    cost = nongemm.cost
    monkeypatch.setattr(nongemm, "cost", lambda *x: costs.append(x) or cost(*x))
    again_b = replay.replay(b, arch, nongemm_work=work)
    assert _json(again_b) == _json(fresh_b)
    # only the records made from the masks are charged again (sparse and ideal on scnn, dense-gated), never a
    # mask-free baseline's; the non-GEMM work's cost on every arch is remembered (the same counts)
    assert added and set(added) == {"scnn", "scnn-dense_gated"}
    assert costs == []


def test_a_shared_records_memory_stall_is_keyed_by_its_cycles():
    """The schedule stage of a shared record: another stall is another record."""
    from hwsim.results import CycleBreakdown, VariantResult
    from hwsim.sim import schedule

    shape_memo.clear()
    rec = VariantResult(cycle_breakdown=CycleBreakdown(compute=10))
    shape_memo.share(rec)
    one = shape_memo.derive(rec, None, ("schedule", 3, 0, 0), lambda: schedule._with_memory(rec, 3, 0, 0))
    two = shape_memo.derive(rec, None, ("schedule", 4, 1, 0), lambda: schedule._with_memory(rec, 4, 1, 0))
    three = shape_memo.derive(rec, None, ("schedule", 4, 1, 2), lambda: schedule._with_memory(rec, 4, 1, 2))
    assert (one.cycle_breakdown.memory_stall, one.cycles) == (3, 13)
    assert (two.cycle_breakdown.memory_stall, two.cycle_breakdown.fill_drain, two.cycles) == (4, 1, 15)
    # the same stall with another share of it spent waiting on other passes is another record (same cycles)
    assert (three.cycle_breakdown.memory_stall_foreign, two.cycle_breakdown.memory_stall_foreign) == (2, 0)
    assert three.cycles == two.cycles
