"""Unit tests of hwsim.experiments.meprop without training: the run grid, labels, the summary over seeds, the report."""

from __future__ import annotations

import csv
import json
import math

import pytest

from hwsim.experiments import meprop
from hwsim.experiments.meprop import MepropConfig, RunRow


def _row(method: str, param, seed: int, acc: float, sparsity: float, bits: int = 3) -> RunRow:
    return RunRow(method=method, param=param, seed=seed, test_acc=acc, sparsity=sparsity,
                  weighted_sparsity=sparsity + 0.01, max_bits=bits, iterations=10, seconds=0.5)


ROWS = [
    _row("none", None, 0, 0.90, 0.0), _row("none", None, 1, 0.92, 0.0),
    _row("dither", 2.0, 0, 0.89, 0.80, bits=4), _row("dither", 2.0, 1, 0.91, 0.90, bits=5),
    _row("meprop", 10, 0, 0.70, 0.95), _row("meprop", 10, 1, 0.50, 0.97),
    _row("dither", 8.0, 0, 0.88, 0.98, bits=2),
]


def test_runs_grid_baseline_first_then_every_s_and_k_per_seed():
    cfg = MepropConfig(s_values=(1, 4.5), k_values=(3.0,), seeds=(7, 9))
    runs = cfg.runs()
    assert runs == [("none", None, 7), ("none", None, 9), ("dither", 1.0, 7), ("dither", 1.0, 9),
                    ("dither", 4.5, 7), ("dither", 4.5, 9), ("meprop", 3, 7), ("meprop", 3, 9)]
    assert isinstance(runs[2][1], float) and isinstance(runs[-1][1], int)
    assert len(MepropConfig().runs()) == (1 + 6 + 6) * 3


def test_quick_config_is_smaller_than_the_default():
    q, d = meprop.QUICK, MepropConfig()
    assert len(q.runs()) < len(d.runs()) and q.epochs < d.epochs
    assert q.model == d.model


@pytest.mark.parametrize("method,param,label", [
    ("dither", 2.0, "s=2"), ("dither", 0.5, "s=0.5"), ("meprop", 10, "k=10"), ("meprop", 20.0, "k=20"),
    ("none", None, "—"),
])
def test_label(method, param, label):
    assert meprop._label(method, param) == label


def test_summarize_groups_seeds_in_run_order():
    s = meprop.summarize(ROWS)
    assert [(p["method"], p["label"]) for p in s] == [("none", "—"), ("dither", "s=2"), ("meprop", "k=10"),
                                                       ("dither", "s=8")]
    base, d2, k10, d8 = s
    assert base["seeds"] == 2 and base["acc_mean"] == pytest.approx(0.91)
    assert base["acc_std"] == pytest.approx(math.sqrt(2 * 0.01 ** 2))  # sample std of 0.90, 0.92
    assert d2["sparsity_mean"] == pytest.approx(0.85) and d2["max_bits"] == 5
    assert k10["acc_mean"] == pytest.approx(0.60) and k10["acc_std"] == pytest.approx(math.sqrt(0.02))
    assert d8["seeds"] == 1 and d8["acc_std"] == 0.0 and d8["param"] == 8.0


def test_write_report(tmp_path):
    cfg = MepropConfig(s_values=(2.0, 8.0), k_values=(10,), seeds=(0, 1), epochs=3)
    out = meprop.write_report(ROWS, cfg, tmp_path / "rep")
    assert {p.name for p in out.iterdir()} == {"index.md", "meprop.png", "runs.csv", "summary.csv", "results.json"}
    assert (out / "meprop.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(out / "runs.csv", newline="") as f:
        runs = list(csv.DictReader(f))
    assert len(runs) == len(ROWS) and runs[2]["method"] == "dither" and runs[2]["max_bits"] == "4"
    doc = json.loads((out / "results.json").read_text())
    assert doc["config"]["s_values"] == [2.0, 8.0] and len(doc["runs"]) == len(ROWS)
    assert doc["summary"] == json.loads(json.dumps(meprop.summarize(ROWS)))
    md = (out / "index.md").read_text()
    assert md.startswith("# Dithered backprop vs meProp — mlp500 on digits")
    assert "3 epochs, batch 64" in md and "seeds [0, 1]" in md
    # one table row per (method, parameter): accuracy and sparsity as mean ± std in percent
    assert "| dither | s=2 | 90.00 ± 1.41 | 85.00 ± 7.07 | 5 | 2 |" in md
    assert "| meprop | k=10 | 60.00 ± 14.14 | 96.00 ± 1.41 | 3 | 2 |" in md


def test_plot_draws_collapsed_runs_on_the_bottom_edge(tmp_path, monkeypatch):
    seen = {}

    def fake_save(fig, path):
        seen["texts"] = [t.get_text() for t in fig.axes[0].texts]
        seen["ylim"] = fig.axes[0].get_ylim()
        seen["labels"] = fig.axes[0].get_legend_handles_labels()[1]
        import matplotlib.pyplot as plt

        plt.close(fig)
        return path

    monkeypatch.setattr(meprop, "save_figure", fake_save)
    meprop.plot(meprop.summarize(ROWS), tmp_path / "x.png", title="t")
    # k=10 (60 % vs a 91 % baseline) collapsed: written out with its value, not drawn as a point
    assert "k=10: 60 ± 14 %" in seen["texts"]
    assert "k=10" not in seen["texts"]
    assert {"s=2", "s=8"} <= set(seen["texts"])
    assert seen["labels"] == ["Baseline (backprop)", "Dithered backprop", "meProp (top-k)"]
    # the y range covers the runs shown (lowest mean − std − 1 point), not the collapsed one
    shown = [p for p in meprop.summarize(ROWS) if p["method"] != "meprop"]
    assert seen["ylim"][0] == pytest.approx(100 * min(p["acc_mean"] - p["acc_std"] for p in shown) - 1.0)
    assert seen["ylim"][0] > 100 * 0.60
