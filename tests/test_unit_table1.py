"""Unit tests of hwsim.experiments.table1 without training: the summary per model, the Table-1 Markdown, the report."""

from __future__ import annotations

import csv
import json
import math

import pytest

from hwsim.experiments import table1
from hwsim.experiments.table1 import METHODS, PAPER, Cell, Table1Config

COLUMNS = [c for c, _, _ in METHODS]


def _cells(models=("lenet5", "mlp500"), seeds=(0,)) -> list[Cell]:
    out = []
    for mi, model in enumerate(models):
        for ci, column in enumerate(COLUMNS):
            for seed in seeds:
                out.append(Cell(model=model, column=column, seed=seed, test_acc=0.9 + 0.01 * ci - 0.1 * mi + 0.002 * seed,
                                sparsity=0.1 * ci + 0.01 * seed, max_bits=2 + ci + mi + seed, seconds=1.5))
    return out


def test_methods_are_the_four_table1_columns():
    assert COLUMNS == ["baseline", "dithered", "8-bit", "8-bit + dithered"]
    assert [(m, i8) for _, m, i8 in METHODS] == [("none", False), ("dither", False), ("none", True), ("dither", True)]
    assert all(len(v) == 2 * len(METHODS) for v in PAPER.values())


def test_summarize_one_row_per_model_in_first_seen_order():
    s = table1.summarize(_cells(models=("lenet5", "mlp500"), seeds=(0, 1)))
    assert [r["model"] for r in s] == ["lenet5", "mlp500"]
    assert set(s[0]) == {"model", *COLUMNS}
    d = s[1]["dithered"]
    assert d["acc_mean"] == pytest.approx(0.9 + 0.01 - 0.1 + 0.001)
    assert d["acc_std"] == pytest.approx(math.sqrt(2 * 0.001 ** 2))
    assert d["sparsity_mean"] == pytest.approx(0.105)
    assert d["max_bits"] == 2 + 1 + 1 + 1  # the larger over seeds
    assert d["seconds"] == pytest.approx(3.0)  # summed over seeds


def test_summarize_missing_column_is_nan_not_an_error():
    cells = [c for c in _cells(models=("lenet5",)) if c.column != "8-bit"]
    row = table1.summarize(cells)[0]
    assert math.isnan(row["8-bit"]["acc_mean"]) and row["8-bit"]["max_bits"] == 0
    assert row["baseline"]["acc_mean"] == pytest.approx(0.9)


def _table_rows(md: str) -> list[list[str]]:
    lines = [ln for ln in md.splitlines() if ln.startswith("|")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]


def test_markdown_single_seed_plain_percentages():
    cfg = Table1Config(models=("lenet5",), seeds=(0,))
    rows = _table_rows(table1.markdown(table1.summarize(_cells(models=("lenet5",))), cfg))
    header, sep, body = rows[0], rows[1], rows[2:]
    assert header[:4] == ["model", "dataset", "baseline acc%", "baseline sparsity%"]
    assert header[-1] == "max bits (dith. / 8-bit+dith.)" and len(header) == 2 + 2 * len(METHODS) + 1
    assert set(sep) == {"---"}
    assert body == [["lenet5", "digits", "90.00", "0.00", "91.00", "10.00", "92.00", "20.00", "93.00", "30.00",
                     "3 / 5"]]


def test_markdown_several_seeds_mean_pm_std():
    cfg = Table1Config(models=("lenet5",), seeds=(0, 1))
    body = _table_rows(table1.markdown(table1.summarize(_cells(models=("lenet5",), seeds=(0, 1))), cfg))[2:]
    assert body[0][2] == "90.10 ± 0.14" and body[0][3] == "0.50 ± 0.71"
    assert body[0][-1] == "4 / 6"


def test_paper_markdown_only_models_of_the_paper():
    assert table1.paper_markdown(("mlp500",)) == ""
    rows = _table_rows(table1.paper_markdown(("mlp500", "lenet300", "lenet5")))
    assert [r[0] for r in rows[2:]] == ["lenet300", "lenet5"]
    assert rows[2][1] == "MNIST" and rows[2][2:] == [f"{v:.2f}" for v in PAPER["lenet300"]]


def test_write_report(tmp_path):
    cfg = Table1Config(models=("lenet5", "mlp500"), s=2.5, epochs=3)
    cells = _cells()
    out = table1.write_report(cells, cfg, tmp_path / "t1")
    assert {p.name for p in out.iterdir()} == {"index.md", "cells.csv", "results.json"}
    with open(out / "cells.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(cells) and rows[1]["column"] == "dithered" and rows[1]["model"] == "lenet5"
    doc = json.loads((out / "results.json").read_text())
    assert doc["config"]["s"] == 2.5 and doc["config"]["models"] == ["lenet5", "mlp500"]
    assert [r["model"] for r in doc["summary"]] == ["lenet5", "mlp500"] and len(doc["cells"]) == len(cells)
    md = (out / "index.md").read_text()
    assert md.startswith("# Table 1 columns on digits")
    assert "3 epochs, batch 64" in md and "s = 2.5" in md
    assert table1.markdown(table1.summarize(cells), cfg) in md
    assert "Seed paper, Table 1 (MNIST):" in md and table1.paper_markdown(cfg.models) in md
    assert "| lenet5 | MNIST | 99.31 |" in md
