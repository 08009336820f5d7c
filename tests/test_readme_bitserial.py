"""The README's bit-serial sentence is generated from benchmarks/results/bitserial_vs_s.csv (scripts/readme_bitserial.py,
the ``bitserial`` block of scripts/readme_tables.py); tests/test_readme_tables.py checks the README agrees with it."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("scnn_bitserial", "scnn_pragmatic", "scnn_bitfusion")


def _module():
    spec = importlib.util.spec_from_file_location("readme_bitserial", ROOT / "scripts" / "readme_bitserial.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rows(backward_shipped, backward_unlimited, iteration, energy_vs_scnn, mac_share) -> list[dict[str, str]]:
    """Rows as the CSV reader gives them (strings) for s = 1, 2: per kind a pair (s = 1, s = 2) of each figure;
    scnn's backward rows carry ``mac_share`` (energy_mac / energy_pj, energy_pj = 100)."""
    rows = []
    for i, s in enumerate((1, 2)):
        rows.append({"s": str(s), "dram": "16 B/cycle", "scope": "backward", "arch": "scnn", "iterations": "5",
                     "energy_pj": "100", "energy_mac": str(100 * mac_share[i]), "speedup_vs_scnn": "1",
                     "energy_vs_scnn": "1"})
        for k in KINDS:
            for dram, scope, table in (("16 B/cycle", "backward", backward_shipped),
                                       ("unlimited", "backward", backward_unlimited),
                                       ("16 B/cycle", "iteration", iteration)):
                e = energy_vs_scnn[k][i] if (dram, scope) == ("16 B/cycle", "backward") else 1.0
                rows.append({"s": str(s), "dram": dram, "scope": scope, "arch": k, "iterations": "5",
                             "energy_pj": "90", "energy_mac": "1", "speedup_vs_scnn": str(table[k][i]),
                             "energy_vs_scnn": str(e)})
    return rows


SHIPPED = {"scnn_bitserial": (1.5, 1.2), "scnn_pragmatic": (1.6, 1.1), "scnn_bitfusion": (2.0, 1.05)}
UNLIMITED = {"scnn_bitserial": (3.0, 2.5), "scnn_pragmatic": (3.5, 2.5), "scnn_bitfusion": (4.0, 2.2)}
ITERATION = {"scnn_bitserial": (1.1, 0.9), "scnn_pragmatic": (1.2, 0.95), "scnn_bitfusion": (1.3, 1.01)}
ENERGY = {"scnn_bitserial": (1.25, 1.0), "scnn_pragmatic": (1.0, 1.0), "scnn_bitfusion": (1.0, 1.1)}


def test_the_sentence_reads_its_numbers_from_the_rows():
    """Backward: every kind above 1 at both s, 1.05 (Bit Fusion, s = 2) to 2.0 (Bit Fusion, s = 1) with the
    shipped DRAM, 2.2 to 4.0 unlimited; iteration: only Bit Fusion above 1 at both s (bit-serial 0.9 at s = 2,
    Pragmatic 0.95); energy: bit-serial at s = 1 needs 1/1.25 of scnn's, 20 % less, the most; MAC share 1 % / 3 %."""
    line = _module().bitserial_line(_rows(SHIPPED, UNLIMITED, ITERATION, ENERGY, (0.01, 0.03)))
    assert line == (
        "On real LeNet-5 traces (s = 1, 2) all three beat 8-bit zero skipping in the backward passes at every s "
        "(1.05×–2.00×; 2.20×–4.00× when not memory-bound), only Bit Fusion also wins the whole iteration at every s, "
        "and the backward energy falls by at most 20.0 % because MACs are only 1.0–3.0 % of 8-bit zero skipping's "
        "backward energy. Model and numbers: [`docs/bitserial.md`](docs/bitserial.md).")


def test_a_kind_that_loses_at_one_s_is_left_out():
    """Bit-serial below 1 at s = 2 unlimited: the backward claim names the two others and takes its range from them
    (shipped 1.05–2.0, unlimited 2.2–4.0 unchanged: Pragmatic's and Bit Fusion's); Pragmatic above 1 in the
    iteration at both s: two winners, named."""
    unlimited = {**UNLIMITED, "scnn_bitserial": (3.0, 0.9)}
    iteration = {**ITERATION, "scnn_pragmatic": (1.2, 1.02)}
    line = _module().bitserial_line(_rows(SHIPPED, unlimited, iteration, ENERGY, (0.01, 0.03)))
    assert "traces (s = 1, 2) Bit-Pragmatic and Bit Fusion beat 8-bit zero skipping" in line
    assert "(1.05×–2.00×; 2.20×–4.00× when not memory-bound)" in line
    assert ", only Bit-Pragmatic and Bit Fusion also win the whole iteration at every s," in line
    none = {k: (0.9, 0.9) for k in KINDS}
    line = _module().bitserial_line(_rows(none, none, none, ENERGY, (0.01, 0.03)))
    assert "none of the kinds beats 8-bit zero skipping in the backward passes at every s, none wins the whole " \
           "iteration at every s" in line


def test_the_block_names_its_source_and_a_bad_file_is_one_line(tmp_path):
    mod = _module()
    assert mod.bitserial_from(tmp_path) == []  # no CSV: no block
    rows = _rows(SHIPPED, UNLIMITED, ITERATION, ENERGY, (0.01, 0.03))
    path = tmp_path / "benchmarks" / "results" / "bitserial_vs_s.csv"
    path.parent.mkdir(parents=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    block = mod.bitserial_from(tmp_path)
    assert block[0] == mod.bitserial_line(rows) and block[1] == ""
    assert block[2].startswith("Generated from `benchmarks/results/bitserial_vs_s.csv`, made by "
                               "`python benchmarks/bitserial_vs_s.py`") and "; 5 sampled iterations per s" in block[2]
    path.write_text("s,dram\n1,16 B/cycle\n")
    with pytest.raises(SystemExit, match=r"bitserial_vs_s.csv: no rows or no column\(s\) scope, arch, energy_pj"):
        mod.bitserial_from(tmp_path)


def test_the_readme_shows_the_generated_sentence():
    text = (ROOT / "README.md").read_text()
    block = _module().bitserial_from(ROOT)
    assert block and block[0] in text
    assert "1.04–2.0×; 2.3–4.0×" not in text  # the hand-written sentence it replaces
