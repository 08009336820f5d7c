"""Unit tests of hwsim.experiments.distributed without torchrun: the launcher's retry rule, the failure excerpt,
aggregating rank traces (stand-in traces), the summary over seeds and the report folder."""

from __future__ import annotations

import csv
import json
import math
import subprocess
from types import SimpleNamespace

import pytest

from hwsim.experiments import distributed as dx
from hwsim.experiments.distributed import DistributedConfig, NodeRun


def _done(rc: int, out: str = "", err: str = "") -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess(args=[], returncode=rc, stdout=out, stderr=err)


@pytest.mark.parametrize("text,hit", [
    ("RuntimeError: ... EADDRINUSE ...", True), ("bind: Address already in use", True),
    ("ADDRESS ALREADY IN USE", True), ("connection refused", False), ("", False),
])
def test_port_collision(text, hit):
    assert dx.port_collision(text) is hit


def test_launch_retries_once_in_a_fresh_folder_after_a_port_collision(tmp_path, monkeypatch):
    out = tmp_path / "job"
    calls = []

    def fake(config, *, nodes, method, seed, out):
        calls.append((nodes, method, seed))
        if len(calls) == 1:
            (out / "rank0").mkdir(parents=True)  # the failed attempt left files behind
            return _done(1, err="The server socket has failed to listen: EADDRINUSE")
        assert not out.exists()  # removed before the retry
        return _done(0)

    monkeypatch.setattr(dx, "_torchrun", fake)
    r = dx.launch(DistributedConfig(), nodes=2, method="dither", seed=3, out=out)
    assert r.returncode == 0 and calls == [(2, "dither", 3), (2, "dither", 3)]


def test_launch_does_not_retry_other_failures_and_names_the_job(tmp_path, monkeypatch):
    calls = []

    def fake(config, **kw):
        calls.append(kw)
        return _done(7, err="Traceback (most recent call last):\n  boom\nValueError: bad model")

    monkeypatch.setattr(dx, "_torchrun", fake)
    with pytest.raises(RuntimeError, match=r"torchrun with 4 nodes \(none, seed 1\) failed with exit code 7") as e:
        dx.launch(DistributedConfig(), nodes=4, method="none", seed=1, out=tmp_path / "j")
    assert "ValueError: bad model" in str(e.value) and len(calls) == 1


def test_launch_reports_a_second_port_collision(tmp_path, monkeypatch):
    monkeypatch.setattr(dx, "_torchrun", lambda config, **kw: _done(1, err="address already in use"))
    with pytest.raises(RuntimeError, match="exit code 1"):
        dx.launch(DistributedConfig(), nodes=2, method="dither", seed=0, out=tmp_path / "j")


def test_failure_excerpt_keeps_the_first_traceback_and_the_tail():
    tb = "Traceback (most recent call last):\n  rank 1 failed here\n"
    err = "x" * 50 + tb + "y" * 300 + "SUMMARY"
    ex = dx._failure_excerpt(err, limit=100)
    assert ex.startswith(tb) and "\n...\n" in ex and ex.endswith("y" * 93 + "SUMMARY")
    # short output: only the tail (which already holds the traceback)
    assert dx._failure_excerpt("short " + tb, limit=100) == "short " + tb
    assert dx._failure_excerpt("no traceback", limit=5) == "eback"  # "no traceback"[-5:]


def _stats(density: float, bits: int) -> SimpleNamespace:
    return SimpleNamespace(density=density, max_bits=bits)


def _fake_trace(per_iteration: list[dict[str, tuple[float, int]]]) -> SimpleNamespace:
    layers = [SimpleNamespace(name="fc1", kind="linear"), SimpleNamespace(name="c1", kind="conv2d")]
    its = [SimpleNamespace(layers={n: _stats(*v) for n, v in it.items()}) for it in per_iteration]
    return SimpleNamespace(layers=layers, iterations=[SimpleNamespace(layers={}), *its])  # one without stats


def _job(tmp_path, accs=(0.9, 0.9)):
    out = tmp_path / "job"
    out.mkdir()
    ranks = [{"test_acc": a, "seconds": s} for a, s in zip(accs, (10.0, 12.5), strict=True)]
    (out / "run.json").write_text(json.dumps({"world_size": 2, "s_node": 2.83, "ranks": ranks}))
    traces = {
        "rank0": _fake_trace([{"fc1": (0.2, 3), "c1": (0.4, 5)}, {"fc1": (0.0, 0), "c1": (0.2, 2)}]),
        "rank1": _fake_trace([{"fc1": (0.4, 4), "c1": (0.4, 1)}, {"fc1": (0.2, 6), "c1": (0.2, 1)}]),
    }
    return out, traces


def test_collect_aggregates_every_rank_by_hand(tmp_path, monkeypatch):
    out, traces = _job(tmp_path)
    monkeypatch.setattr("hwsim.trace.format.load", lambda p: traces[p.name])
    r = dx.collect(out, method="dither", seed=5)
    # rank 0: densities 0.2, 0.4, 0.0, 0.2 → mean 0.2, sparsity 0.8; rank 1: 0.4, 0.4, 0.2, 0.2 → 0.7
    assert (r.method, r.nodes, r.seed, r.s_node, r.test_acc) == ("dither", 2, 5, 2.83, 0.9)
    assert r.sparsity_per_node == pytest.approx(0.75)
    assert r.sparsity_per_node_std == pytest.approx(math.sqrt(2 * 0.05 ** 2))
    # worst layer per iteration: rank 0 → 5, 2 (mean 3.5); rank 1 → 4, 6 (mean 5); over ranks 4.25; max 6
    assert r.max_bits == 6 and r.mean_iter_max_bits == pytest.approx(4.25)
    # linear: 0.2, 0.0, 0.4, 0.2 → sparsity 0.8, bits max(3, 0, 4, 6); conv2d: 0.4, 0.2, 0.4, 0.2 → 0.7, bits 5
    assert r.by_kind["linear"] == {"sparsity": pytest.approx(0.8), "max_bits": 6}
    assert r.by_kind["conv2d"] == {"sparsity": pytest.approx(0.7), "max_bits": 5}
    assert r.seconds == 12.5  # the slowest rank


def test_collect_refuses_ranks_whose_accuracies_differ(tmp_path, monkeypatch):
    out, traces = _job(tmp_path, accs=(0.9, 0.8))
    monkeypatch.setattr("hwsim.trace.format.load", lambda p: traces[p.name])
    with pytest.raises(RuntimeError, match="ranks report different test accuracies"):
        dx.collect(out, method="dither", seed=0)


def _row(method, nodes, seed, acc, sp, bits, it_bits, s_node=None):
    return NodeRun(method=method, nodes=nodes, seed=seed, s_node=s_node, test_acc=acc, sparsity_per_node=sp,
                   sparsity_per_node_std=0.0, max_bits=bits, mean_iter_max_bits=it_bits,
                   by_kind={"linear": {"sparsity": sp, "max_bits": bits}}, seconds=1.0)


ROWS = [
    _row("dither", 2, 0, 0.80, 0.90, 4, 3.0, s_node=2.83), _row("dither", 1, 0, 0.70, 0.60, 5, 4.0, s_node=2.0),
    _row("dither", 2, 1, 0.90, 0.70, 6, 5.0, s_node=2.83), _row("none", 1, 0, 0.75, 0.10, 8, 8.0),
]


def test_summarize_groups_seeds_per_method_and_sorted_n():
    s = dx.summarize(ROWS)
    assert [(p["method"], p["nodes"], p["seeds"]) for p in s] == [("dither", 1, 1), ("dither", 2, 2), ("none", 1, 1)]
    d2 = s[1]
    assert d2["acc_mean"] == pytest.approx(0.85) and d2["acc_std"] == pytest.approx(math.sqrt(2 * 0.05 ** 2))
    assert d2["sparsity_mean"] == pytest.approx(0.80) and d2["max_bits_mean"] == 5.0
    assert d2["max_bits_std"] == pytest.approx(math.sqrt(2)) and d2["iter_bits_mean"] == 4.0
    assert d2["s_node"] == 2.83 and s[2]["s_node"] is None and s[0]["acc_std"] == 0.0


@pytest.mark.parametrize("rule,text", [("sqrt", "√N"), ("linear", "N"), ("const", "1"), ("other", "other")])
def test_rule_text(rule, text):
    assert dx._rule_text(rule) == text


def test_node_label_shows_s_per_node_when_known():
    s = dx.summarize(ROWS)
    assert dx._node_label(s, 2) == "2\n(s=2.8)"
    assert dx._node_label([p for p in s if p["method"] == "none"], 1) == "1"


def test_write_report(tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(dx, "plot", lambda summary, path, *, title: drawn.update(title=title, n=len(summary)))
    cfg = DistributedConfig(nodes=(1, 2), steps=30, seeds=(0, 1), methods=("dither", "none"))
    out = dx.write_report(ROWS, cfg, tmp_path / "rep")
    assert drawn == {"title": "lenet300 on digits, batch 1/node, 30 steps, s = 2·√N", "n": 3}
    assert {p.name for p in out.iterdir()} == {"index.md", "runs.csv", "summary.csv", "results.json"}
    with open(out / "runs.csv", newline="") as f:
        runs = list(csv.DictReader(f))
    assert [r["nodes"] for r in runs] == ["2", "1", "2", "1"]
    assert json.loads(runs[0]["by_kind"]) == {"linear": {"sparsity": 0.9, "max_bits": 4}}
    doc = json.loads((out / "results.json").read_text())
    assert doc["config"]["nodes"] == [1, 2] and len(doc["runs"]) == 4 and len(doc["summary"]) == 3
    md = (out / "index.md").read_text()
    assert md.startswith("# Distributed dithered backprop — lenet300 on digits")
    assert "30 SGD steps at lr 0.005" in md and "seeds [0, 1]" in md
    # dither at N = 2: acc 85 ± 7.07 %, sparsity 80 ± 14.14 %, bits 5 ± 1.4, per-iteration bits 4 ± 1.41
    assert "| dither | 2 | 2.83 | 85.00 ± 7.07 | 80.00 ± 14.14 | 5.0 ± 1.4 | 4.00 ± 1.41 | 2 |" in md
    assert "| none | 1 | — | 75.00 ± 0.00 |" in md


def test_quick_config_is_a_subset_of_the_default():
    q, d = dx.QUICK, DistributedConfig()
    assert set(q.nodes) <= set(d.nodes) and q.steps < d.steps and set(q.methods) <= set(d.methods)
