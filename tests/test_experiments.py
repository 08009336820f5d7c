"""`hwsim experiment meprop|distributed|table1 --quick`: real runs end to end, report folders complete."""

from __future__ import annotations

import csv
import json

import pytest

from hwsim.cli import main


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_meprop_quick_report(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["experiment", "meprop", "--quick", "--out", str(out), "--quiet"]) == 0
    assert {"index.md", "meprop.png", "runs.csv", "summary.csv", "results.json"} <= {p.name for p in out.iterdir()}
    runs = _rows(out / "runs.csv")
    assert [(r["method"], r["param"]) for r in runs] == [("none", ""), ("dither", "2"), ("dither", "8"),
                                                         ("meprop", "10"), ("meprop", "50")]
    res = json.loads((out / "results.json").read_text())
    by = {(p["method"], p["label"]): p for p in res["summary"]}
    assert by[("dither", "s=8")]["sparsity_mean"] > by[("dither", "s=2")]["sparsity_mean"] > by[("none", "—")][
        "sparsity_mean"]
    assert all(0.5 < p["acc_mean"] <= 1 for p in res["summary"])
    assert "![accuracy vs sparsity](meprop.png)" in (out / "index.md").read_text()


def test_distributed_quick_report(tmp_path):
    out = tmp_path / "d"
    assert main(["experiment", "distributed", "--quick", "--out", str(out), "--quiet", "--keep-traces"]) == 0
    res = json.loads((out / "results.json").read_text())
    rows = {r["nodes"]: r for r in res["runs"]}
    assert sorted(rows) == [1, 2] and rows[2]["s_node"] == pytest.approx(2.0 * 2**0.5)
    assert all(0 < r["sparsity_per_node"] < 1 and 1 <= r["max_bits"] <= 16 for r in rows.values())
    assert (out / "traces" / "dither" / "N2" / "seed0" / "rank1" / "manifest.json").exists()
    assert (out / "distributed.png").stat().st_size > 10_000


def test_table1_quick_report(tmp_path):
    out = tmp_path / "t"
    assert main(["experiment", "table1", "--quick", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    cells = _rows(out / "cells.csv")
    assert [c["column"] for c in cells] == ["baseline", "dithered", "8-bit", "8-bit + dithered"]
    sp = {c["column"]: float(c["sparsity"]) for c in cells}
    assert sp["dithered"] > sp["baseline"] and sp["8-bit + dithered"] > sp["8-bit"]
    text = (out / "index.md").read_text()
    assert "| lenet300 | digits |" in text and "98.45" in text  # measured row and the paper's row


def test_bad_nodes_is_one_clear_line(tmp_path, capsys):
    assert main(["experiment", "distributed", "--nodes", "0,2", "--out", str(tmp_path)]) == 2
    assert "argument --nodes: 0 is out of range; allowed: an integer >= 1" in capsys.readouterr().err
