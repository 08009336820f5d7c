"""NSD's noise made visible (issue 20 item 5): per-layer statistics, their compound estimate, per-layer s rules."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
import warnings

import pytest
import torch
from torch import nn

import hwsim
from hwsim.capture.config import CaptureConfig
from hwsim.capture.quantized import LevelStats, Quantized, noise_sums
from hwsim.capture.srule import S_MIN, NoiseBudget, SRule
from hwsim.trace import format as fmt
from hwsim.trace.noise import compound_gain, compound_warning, layer_noise, norm_growth
from hwsim.trace.records import IterationRecord
from hwsim.trace.schema import TraceError

# --------------------------------------------------------------------------- the statistics, by hand

def test_layer_noise_by_hand():
    # Σδz² = 4, Σδ̃z² = 1, Σδz·δ̃z = 1: ‖δ̃z − δz‖² = 4 − 2 + 1 = 3
    assert layer_noise(4.0, 1.0, 1.0) == {"noise": math.sqrt(3 / 4), "dz_norm": 2.0}
    assert layer_noise(0.0, 0.0, 0.0) is None  # all-zero δz: no ratio
    assert layer_noise(1.0, 1.0, 1.0 + 1e-12)["noise"] == 0.0  # rounding below zero is clipped


def test_noise_sums_of_lazy_nsd_levels_and_of_values():
    dz = torch.tensor([0.3, -0.1, 0.0, 0.6])
    lazy = Quantized(values=None, levels=torch.tensor([1.0, 0.0, 0.0, 1.0]), delta=0.5)
    a, b, c = noise_sums(dz, lazy).tolist()  # δ̃z = [0.5, 0, 0, 0.5]
    assert a == pytest.approx(0.09 + 0.01 + 0.36)
    assert b == pytest.approx(0.5)
    assert c == pytest.approx(0.15 + 0.30)
    # the CPU NSD's shortcuts: Σδz² handed over by the quantizer, Σlevel² = the non-zeros when |level| <= 1
    known = Quantized(values=None, levels=torch.tensor([1.0, 0.0, 0.0, 1.0]), delta=0.5, sum_sq=0.25)
    st = LevelStats(numel=4, nnz=2, max_abs=1, hist=[2] + [0] * 14)
    assert noise_sums(dz, known, st).tolist() == pytest.approx([0.25, 0.5, 0.45])  # 0.25: taken, not recomputed
    st2 = LevelStats(numel=4, nnz=2, max_abs=2, hist=[1, 1] + [0] * 13)
    two = Quantized(values=None, levels=torch.tensor([2.0, 0.0, 0.0, -1.0]), delta=0.5, sum_sq=0.46)
    assert noise_sums(dz, two, st2).tolist() == pytest.approx([0.46, 0.25 * 5, 0.5 * (0.6 - 0.6)])  # Σlevel² = 5
    assert noise_sums(dz, two, st2)[1] != noise_sums(dz, two, st)[1]  # the count is used only when |level| <= 1
    v = Quantized(values=torch.tensor([0.3, 0.0, 0.0, 0.6]), levels=torch.zeros(4), delta=1.0)
    assert noise_sums(dz, v).tolist() == pytest.approx([0.46, 0.45, 0.45])  # meProp-like: the dropped −0.1 is the noise


def test_compound_gain_and_norm_growth_by_hand():
    order = ["a", "b", "c"]  # forward order: backward quantizes c, then b, then a
    stats = {"a": {"noise": 1.0, "dz_norm": 8.0}, "b": {"noise": math.sqrt(3.0), "dz_norm": 2.0},
             "c": {"noise": 0.0, "dz_norm": 1.0}}
    g = compound_gain(order, stats)
    assert g["c"] == 1.0 and g["b"] == 1.0  # nothing above c; c adds no noise
    assert g["a"] == pytest.approx(2.0)  # √(1 + 3) from b
    assert norm_growth(order, stats) == {"c": None, "b": 2.0, "a": 4.0}
    assert compound_warning(order, stats, threshold=1.5) is not None
    assert "'a'" in compound_warning(order, stats, threshold=1.5)
    assert compound_warning(order, stats, threshold=2.5) is None
    assert compound_warning(order, {"a": {"density": 0.1}}) is None  # no noise statistics: nothing to say


# --------------------------------------------------------------------------- per-layer s

def test_s_rules_by_hand():
    depth = SRule.parse(4.0, "depth")
    assert [depth.s_for(n, i, 4) for i, n in enumerate("abcd")] == [1.0, 2.0, 3.0, 4.0]
    assert depth.s_for("new", -1, 4) == 4.0  # a site first seen later uses s
    globs = SRule.parse(4.0, "features.*=1, classifier.2=8")
    assert globs.s_for("features.0", 0, 3) == 1.0
    assert globs.s_for("classifier.2", 2, 3) == 8.0
    assert globs.s_for("classifier.0", 1, 3) == 4.0  # no glob matches: s
    assert SRule.parse(4.0, {"*": 2}).s_for("x", 0, 1) == 2.0
    assert SRule.parse(4.0, None).s_for("x", 0, 1) == 4.0


@pytest.mark.parametrize("bad", ["deep", "x=", "=2", "x=abc", "x=-1", {}, {"x": 0}, {"x": True}, 3])
def test_bad_s_rules_are_refused_with_what_is_allowed(bad):
    with pytest.raises(ValueError, match="s_layers.*allowed"):
        CaptureConfig(s=4, s_layers=bad)


def test_s_layers_only_for_dither_and_recorded_in_meta():
    with pytest.raises(ValueError, match="method 'dither' only"):
        CaptureConfig(method="none", s_layers="depth")
    assert CaptureConfig(s=2, s_layers="depth").meta()["s_layers"] == "depth"
    assert CaptureConfig(s=2, s_layers="a*=1").meta()["s_layers"] == {"a*": 1.0}
    assert "s_layers" not in CaptureConfig(s=2).meta()


def _mlp(depth: int = 6) -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Linear(16, 32), nn.ReLU()]
    for _ in range(depth):
        layers += [nn.Linear(32, 32), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(32, 4))


def _one_step(model: nn.Module, **kw) -> hwsim.Capture:
    x, y = torch.randn(64, 16, generator=torch.Generator().manual_seed(1)), torch.arange(64) % 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with hwsim.capture(model, **kw) as cap:
            nn.functional.cross_entropy(model(x), y).backward()
            cap.step()
    return cap


def test_each_layer_is_quantized_at_its_own_s():
    m = _mlp(2)
    cap = _one_step(m, s=4, s_layers="depth", seed=3)
    names = list(cap._sites)
    assert names == ["0", "2", "4", "6"]
    assert [cap.dither.s_of(n, cap._sites) for n in names] == [1.0, 2.0, 3.0, 4.0]
    # the last layer (quantized first, from the same δz in both runs) has Δ = s·σ: the same Δ at s = 4
    plain4 = _one_step(_mlp(2), s=4, seed=3)
    assert cap.last_stats["6"]["delta"] == pytest.approx(plain4.last_stats["6"]["delta"])
    # the first layer's Δ at s = 1: Δ / (noise-free σ estimate) — check against a run where every layer has s = 1
    # on the top layer instead: Δ(s=1) = Δ(s=4) / 4 for the same δz
    quarter = _one_step(_mlp(2), s=4, seed=3, s_layers={"6": 1.0})
    assert quarter.last_stats["6"]["delta"] == pytest.approx(plain4.last_stats["6"]["delta"] / 4)


# --------------------------------------------------------------------------- capture records them

def test_capture_records_noise_and_norm_for_dithered_layers_only(tmp_path):
    cap = _one_step(_mlp(1), s=4, out=tmp_path / "t")
    st = cap.last_stats
    for name in ("0", "2", "4"):
        assert 0.0 < st[name]["noise"] < 5.0 and st[name]["dz_norm"] > 0.0
    tr = fmt.load(tmp_path / "t")
    rec = tr.iterations[-1].layers["0"]
    assert rec.noise == pytest.approx(st["0"]["noise"]) and rec.dz_norm == pytest.approx(st["0"]["dz_norm"])
    none = _one_step(_mlp(1), method="none")
    assert all("noise" not in s for s in none.last_stats.values())  # plain backprop adds no noise


def test_noise_grows_with_s():
    lo = _one_step(_mlp(1), s=0.5, seed=1).last_stats["4"]["noise"]
    hi = _one_step(_mlp(1), s=8.0, seed=1).last_stats["4"]["noise"]
    assert hi > 2 * lo  # the same δz (top layer): coarser steps, more noise


def test_deep_net_at_one_s_warns_once_naming_the_rule():
    m = _mlp(24)
    x, y = torch.randn(64, 16), torch.arange(64) % 4
    with pytest.warns(UserWarning, match="compounds over depth.*s_layers='budget:2'") as rec:
        with hwsim.capture(m, s=4) as cap:
            for _ in range(2):
                nn.functional.cross_entropy(m(x), y).backward()
                cap.step()
    assert sum("compounds over depth" in str(w.message) for w in rec) == 1


def test_depth_rule_lowers_the_measured_first_layer_gradient_blowup():
    """One step from the same weights: ‖δW‖ of the first layer with dither over plain (the noise table's figure)."""
    base = _mlp(8)

    def first_grad(**kw) -> float:
        m = copy.deepcopy(base)
        _one_step(m, **kw)
        return float(m[0].weight.grad.norm())

    plain = first_grad(method="none")
    one_s = sum(first_grad(s=4, seed=k) for k in range(3)) / 3 / plain
    depth = sum(first_grad(s=4, seed=k, s_layers="depth") for k in range(3)) / 3 / plain
    assert one_s > 3 * depth > 3.0


# --------------------------------------------------------------------------- reader and inspect

def test_reader_refuses_a_negative_noise():
    good = {"index": 0, "layers": {"fc1": {"density": 0.1, "noise": 0.5, "dz_norm": 2.0}}}
    rec = IterationRecord.from_json(good, file="t/iterations.jsonl")
    assert rec.layers["fc1"].noise == 0.5 and rec.layers["fc1"].dz_norm == 2.0
    for key in ("noise", "dz_norm"):
        bad = {"index": 0, "layers": {"fc1": {"density": 0.1, key: -1}}}
        with pytest.raises(TraceError, match=rf"t/iterations.jsonl: field 'layers\.fc1\.{key}'.*allowed"):
            IterationRecord.from_json(bad, file="t/iterations.jsonl")


def test_inspect_shows_noise_growth_and_compound(tmp_path):
    _one_step(_mlp(2), s=4, out=tmp_path / "t", s_layers="depth")
    out = subprocess.run([sys.executable, "-m", "hwsim", "inspect", str(tmp_path / "t")], capture_output=True,
                         text=True, check=True).stdout
    head = next(line for line in out.splitlines() if line.startswith("layer"))
    assert head.split()[-3:] == ["noise", "growth", "compound"]
    assert "s_layers depth" in out
    js = json.loads(subprocess.run([sys.executable, "-m", "hwsim", "inspect", "--json", str(tmp_path / "t")],
                                   capture_output=True, text=True, check=True).stdout)
    rows = {r["name"]: r for r in js["layers"]}
    assert rows["6"]["compound"] == 1.0 and rows["0"]["compound"] > rows["2"]["compound"] > 1.0
    assert js["summary"]["compound_max"] == rows["0"]["compound"]


def test_cli_refuses_a_bad_s_layers_rule():
    r = subprocess.run([sys.executable, "-m", "hwsim", "trace", "--model", "mlp500", "--epochs", "1",
                        "--s-layers", "nonsense", "--out", "unused"], capture_output=True, text=True)
    assert r.returncode != 0 and "s_layers" in r.stderr and "allowed" in r.stderr
    assert "Traceback" not in r.stderr


# --------------------------------------------------------------------------- the noise budget

def test_noise_budget_spreads_what_is_left_over_the_layers_to_come():
    b = NoiseBudget(s_max=4.0, budget=2.0)
    b.layers = 3
    # first layer of the first backward: g = 2^(1/3), target noise √(g² − 1), s = √6·target (no history)
    g = 2.0 ** (1 / 3)
    t = math.sqrt(g * g - 1)
    assert b.s_for("c") == pytest.approx(math.sqrt(6) * t)
    b.observe("c", 0.5)  # G = √1.25
    g2 = (2.0 / math.sqrt(1.25)) ** (1 / 2)
    assert b.s_for("b") == pytest.approx(math.sqrt(6) * math.sqrt(g2 * g2 - 1))
    b.observe("b", 3.0)  # G = √1.25·√10 > 2: the budget is spent
    assert b.s_for("a") == S_MIN  # target noise 0 → the smallest s
    b.observe("a", 0.01)
    # next backward: "c" again starts a new G = 1; its s scales its last s by target / its last noise
    s_c = math.sqrt(6) * t
    assert b.s_for("c") == pytest.approx(min(4.0, s_c * t / 0.5))


def test_budget_rule_keeps_the_compound_estimate_near_its_budget():
    m = _mlp(16)
    x, y = torch.randn(64, 16, generator=torch.Generator().manual_seed(2)), torch.arange(64) % 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with hwsim.capture(m, s=4, s_layers="budget:2") as cap:
            for _ in range(3):
                m.zero_grad()
                nn.functional.cross_entropy(m(x), y).backward()
                cap.step()
    order = list(cap.last_stats)
    g = compound_gain(order, cap.last_stats)
    assert 1.5 < g[order[0]] <= 2.2  # the estimate the rule steers by (the first layer's own noise is not in it)
    one_s = _one_step(_mlp(16), s=4)
    o = list(one_s.last_stats)
    assert compound_gain(o, one_s.last_stats)[o[0]] > 50  # the same net at one s


def test_budget_rule_spec_and_meta():
    assert CaptureConfig(s=4, s_layers="budget").meta()["s_layers"] == "budget:2"
    assert CaptureConfig(s=4, s_layers="budget:3").meta()["s_layers"] == "budget:3"
    for bad in ("budget:1", "budget:x", "budget:-2"):
        with pytest.raises(ValueError, match="budget.*allowed: a number > 1"):
            CaptureConfig(s=4, s_layers=bad)


def test_noise_sums_are_computed_only_where_kept_or_steering(monkeypatch):
    """The three dots per call are skipped on iterations whose statistics are not written (stats_every), unless the
    budget rule steers s by them."""
    from hwsim.capture import session

    calls: list[int] = []
    real = session.noise_sums

    def counted(dz, q, stats=None):
        calls.append(1)
        return real(dz, q, stats)

    monkeypatch.setattr(session, "noise_sums", counted)
    m = _mlp(1)  # 3 dithered GEMMs
    x, y = torch.randn(64, 16), torch.arange(64) % 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with hwsim.capture(m, s=4, stats_every=3, sample_every=0) as cap:
            for _ in range(4):  # iterations 0..3: statistics of 0 and 3 are kept
                nn.functional.cross_entropy(m(x), y).backward()
                cap.step()
        assert len(calls) == 2 * 3
        calls.clear()
        m2 = _mlp(1)
        with hwsim.capture(m2, s=4, stats_every=3, sample_every=0, s_layers="budget:2") as cap:
            for _ in range(4):
                nn.functional.cross_entropy(m2(x), y).backward()
                cap.step()
        assert len(calls) == 4 * 3


def test_cpu_nsd_hands_its_sum_of_squares_to_the_noise_sums():
    from hwsim.capture import quant
    x = torch.randn(50_000, generator=torch.Generator().manual_seed(3))
    q = quant.nsd(x, s=4.0, generator=quant.new_generator(0), lazy_values=True)
    xx = float((x.double() ** 2).sum())
    assert q.sum_sq == pytest.approx(xx, rel=1e-6)
    st = quant.level_stats(q.levels)
    sums = noise_sums(x, q, st).tolist()
    lv = q.levels.double()
    assert sums == pytest.approx([xx, float((lv ** 2).sum()) * q.delta ** 2, float((x.double() * lv).sum()) * q.delta],
                                 rel=1e-5)
