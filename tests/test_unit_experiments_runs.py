"""Unit tests of the experiments' run loops (meprop, table1, distributed) with training replaced by a stand-in:
which runs are asked for, with which capture settings, and how their results become rows."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest

from hwsim.experiments import distributed, meprop, table1


def _stub_training(monkeypatch, results):
    """Replace train_and_capture; every call records its config and returns the next of ``results``."""
    seen: list = []

    def train_and_capture(config):
        seen.append(config)
        return results[len(seen) - 1]

    monkeypatch.setattr(importlib.import_module("hwsim.capture.train"), "train_and_capture", train_and_capture)
    return seen


def _result(acc, mean_density, weighted_density=None, bits=3):
    return SimpleNamespace(test_acc=acc, mean_density=mean_density, weighted_density=weighted_density,
                           max_bits=bits, iterations=12)


def test_meprop_run_all_passes_s_to_dither_and_an_integer_k_to_meprop(monkeypatch):
    cfg = meprop.MepropConfig(s_values=(2.0,), k_values=(10,), seeds=(4,), epochs=1, batch_size=8, lr=0.1)
    seen = _stub_training(monkeypatch, [_result(0.9, None), _result(0.8, 0.25, 0.2), _result(0.7, 0.1, 0.05)])
    lines: list[str] = []
    rows = meprop.run_all(cfg, progress=lines.append)
    assert [(c.capture.method, c.capture.s, c.capture.k, c.capture.seed) for c in seen] == [
        ("none", None, None, 4), ("dither", 2.0, None, 4), ("meprop", None, 10, 4)]
    assert all((c.epochs, c.batch_size, c.lr, c.capture.sample_every) == (1, 8, 0.1, 0) for c in seen)
    # sparsity = 1 − density; no density measured (plain backprop here) counts as dense
    assert [(r.method, r.param, r.sparsity) for r in rows] == [("none", None, 0.0), ("dither", 2.0, 0.75),
                                                               ("meprop", 10, pytest.approx(0.9))]
    assert rows[1].weighted_sparsity == pytest.approx(0.8) and rows[0].weighted_sparsity == 0.0
    assert len(lines) == 3 and lines[1].startswith("dither s=2") and "acc 80.00%" in lines[1]


def test_table1_run_all_asks_for_every_column_per_model_with_int8_where_due(monkeypatch):
    cfg = table1.Table1Config(models=("lenet5",), s=3.0, epochs=1, seeds=(0,))
    seen = _stub_training(monkeypatch, [_result(0.9, None), _result(0.88, 0.4, bits=4), _result(0.89, None),
                                        _result(0.87, 0.5, bits=5)])
    cells = table1.run_all(cfg)
    assert [(c.model, c.int8, c.capture.method, c.capture.s) for c in seen] == [
        ("lenet5", False, "none", None), ("lenet5", False, "dither", 3.0), ("lenet5", True, "none", None),
        ("lenet5", True, "dither", 3.0)]
    assert [c.column for c in cells] == ["baseline", "dithered", "8-bit", "8-bit + dithered"]
    assert [c.sparsity for c in cells] == [0.0, pytest.approx(0.6), 0.0, 0.5] and cells[3].max_bits == 5


def test_distributed_run_all_puts_every_job_in_its_own_folder(tmp_path, monkeypatch):
    jobs = []
    monkeypatch.setattr(distributed, "launch", lambda config, *, nodes, method, seed, out: jobs.append(
        (method, nodes, seed, out)))
    monkeypatch.setattr(distributed, "collect", lambda out, *, method, seed: SimpleNamespace(
        test_acc=0.5, sparsity_per_node=0.25, max_bits=3, seconds=1.0, out=out))
    cfg = distributed.DistributedConfig(nodes=(1, 4), seeds=(0, 1), methods=("dither",))
    lines: list[str] = []
    rows = distributed.run_all(cfg, tmp_path, progress=lines.append)
    assert [(m, n, s) for m, n, s, _ in jobs] == [("dither", 1, 0), ("dither", 1, 1), ("dither", 4, 0), ("dither", 4, 1)]
    assert jobs[3][3] == tmp_path / "dither" / "N4" / "seed1" and rows[3].out == jobs[3][3]
    assert lines[2] == "dither N=4 seed 0: acc 50.00%, per-node sparsity 25.00%, max 3 bits (1 s)"
