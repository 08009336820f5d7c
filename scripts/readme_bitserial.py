"""The README's bit-serial sentence, from the committed ``benchmarks/results/bitserial_vs_s.csv``.

Loaded by ``scripts/readme_tables.py`` (the ``bitserial`` block). Input: the CSV that ``python
benchmarks/bitserial_vs_s.py`` writes (one row per s × DRAM × scope × arch; ``speedup_vs_scnn`` = 8-bit zero
skipping's cycles over the arch's, ``energy_vs_scnn`` likewise for energy, ``energy_mac`` the MAC part of
``energy_pj``). Output: one paragraph saying, over every s of the file,

* which precision-exploiting kinds beat 8-bit zero skipping in the backward passes at every s, and by how much
  (the range over kinds and s) with the shipped DRAM and with unlimited DRAM (the compute-bound view);
* which of them also win the whole iteration at every s (shipped DRAM);
* how much they save of the backward energy at most, and the MAC share of 8-bit zero skipping's backward energy
  that bounds it (the range over s) —

then the source sentence (``readme_tables`` sets it in small type with its "do not edit" note).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hwsim.results import times

CSV = "benchmarks/results/bitserial_vs_s.csv"
COMMAND = "python benchmarks/bitserial_vs_s.py"  # its defaults write CSV (and the figure below the block)
KINDS = {"scnn_bitserial": "bit-serial", "scnn_pragmatic": "Bit-Pragmatic", "scnn_bitfusion": "Bit Fusion"}
SHIPPED, UNLIMITED = "16 B/cycle", "unlimited"
COLUMNS = ("s", "dram", "scope", "arch", "energy_pj", "energy_mac", "speedup_vs_scnn", "energy_vs_scnn")


def _names(kinds: Sequence[str]) -> str:
    """"all three" for every kind, else the kinds' names joined with "and"."""
    if len(kinds) == len(KINDS):
        return {2: "both", 3: "all three"}.get(len(KINDS), f"all {len(KINDS)}")
    names = [KINDS[k] for k in kinds]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def bitserial_line(rows: Sequence[Mapping[str, Any]]) -> str:
    """The paragraph (module doc) from the CSV's rows (values as read: strings)."""
    s_values = sorted({float(r["s"]) for r in rows})

    def pick(dram: str, scope: str, arch: str) -> list[Mapping[str, Any]]:
        return [r for r in rows if (r["dram"], r["scope"], r["arch"]) == (dram, scope, arch)]

    def speedups(dram: str, scope: str, arch: str) -> list[float]:
        return [float(r["speedup_vs_scnn"]) for r in pick(dram, scope, arch)]

    def wins(dram: str, scope: str) -> list[str]:
        return [k for k in KINDS if speedups(dram, scope, k) and min(speedups(dram, scope, k)) > 1]

    backward = [k for k in wins(SHIPPED, "backward") if k in wins(UNLIMITED, "backward")]
    iteration = wins(SHIPPED, "iteration")
    ranges = []
    for dram in (SHIPPED, UNLIMITED):
        v = [x for k in backward for x in speedups(dram, "backward", k)]
        ranges.append(f"{times(min(v))}–{times(max(v))}" if v else "–")
    saved = [1 - 1 / float(r["energy_vs_scnn"]) for k in KINDS for r in pick(SHIPPED, "backward", k)]
    share = [float(r["energy_mac"]) / float(r["energy_pj"]) for r in pick(SHIPPED, "backward", "scnn")]
    if not backward:
        said = "none of the kinds beats 8-bit zero skipping in the backward passes at every s"
    else:
        said = (f"{_names(backward)} beat{'s' if len(backward) == 1 else ''} 8-bit zero skipping in the backward "
                f"passes at every s ({ranges[0]}; {ranges[1]} when not memory-bound)")
    if not iteration:
        said += ", none wins the whole iteration at every s"
    else:
        only = "only " if len(iteration) < len(KINDS) else ""
        said += (f", {only}{_names(iteration)} also win{'s' if len(iteration) == 1 else ''} the whole iteration at "
                 "every s")
    return (f"On real LeNet-5 traces (s = {', '.join(f'{s:g}' for s in s_values)}) {said}, and the backward energy falls by "
            f"at most {100 * max(saved):.1f} % because MACs are only {100 * min(share):.1f}–{100 * max(share):.1f} % "
            "of 8-bit zero skipping's backward energy. Model and numbers: [`docs/bitserial.md`](docs/bitserial.md).")


def read_rows(path: Path) -> list[dict[str, str]]:
    """The CSV's rows; a missing column is a one-line error naming the file and the columns it needs."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    missing = [c for c in COLUMNS if not rows or c not in rows[0]]
    if missing:
        raise SystemExit(f"{path}: no rows or no column(s) {', '.join(missing)}; remake it with `{COMMAND}`")
    return rows


def bitserial_from(root: Path) -> list[str]:
    """The block (paragraph, blank line, source sentence) from ``root``'s CSV; empty when it is missing."""
    path = root / CSV
    if not path.exists():
        return []
    rows = read_rows(path)
    its = "/".join(sorted({r.get("iterations", "?") for r in rows}))
    return [bitserial_line(rows), "",
            f"Generated from `{CSV}`, made by `{COMMAND}` (LeNet-5 / digits dithered-backprop traces it captures; "
            f"{its} sampled iterations per s, summed; the shipped {SHIPPED} DRAM and unlimited)."]
