"""The README's "seed paper's other experiments" block, from the committed ``docs/experiments/*/results.json``.

Loaded by ``scripts/readme_tables.py`` (the ``experiments`` block). Input: the ``results.json`` that ``hwsim
experiment table1 | meprop | distributed --out docs/experiments/NAME`` writes (``config``, ``summary``, runs).
Output: the Table-1 columns (accuracy / δ̃z sparsity per model and method), one line each of what Table 1,
the meProp comparison and the distributed runs measured, and the command that remakes each file — its options
read from the file's own ``config`` (every field that differs from the experiment's default), including the
dither stream the runs used (``config.dither_rng``; absent in files made before the counter dither: sfc64).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from hwsim.experiments.distributed import DistributedConfig
from hwsim.experiments.meprop import MepropConfig
from hwsim.experiments.table1 import METHODS, PAPER, Table1Config

NAMES = ("table1", "meprop", "distributed")
DEFAULTS = {"table1": Table1Config(), "meprop": MepropConfig(), "distributed": DistributedConfig()}
# config field → the `hwsim experiment` option that sets it (fields without one, e.g. timeout_s, are not options)
FLAGS = {"models": "--models", "model": "--model", "dataset": "--dataset", "data_dir": "--data-dir", "s": "--s",
         "s_values": "--s", "k_values": "--k", "epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr",
         "seeds": "--seeds", "nodes": "--nodes", "s_rule": "--s-rule", "steps": "--steps",
         "batch_per_node": "--batch-per-node", "methods": "--methods", "dither_rng": "--dither-rng"}
OLD_STREAM = "sfc64"  # what a results.json without config.dither_rng used (made before the counter dither)
KEEP_POINTS = 0.5  # the meProp line: dither's sparsest setting within this many points of plain backprop


def stream(doc: Mapping[str, Any]) -> str:
    """The dither stream of a results file: its ``config.dither_rng``, else sfc64 (files made before it)."""
    return str(doc["config"].get("dither_rng", OLD_STREAM))


def command(name: str, doc: Mapping[str, Any]) -> str:
    """``hwsim experiment NAME`` with the options that turn the experiment's defaults into ``doc``'s config."""
    config = {**doc["config"], "dither_rng": stream(doc)}
    default = asdict(DEFAULTS[name])
    parts = ["hwsim", "experiment", name]
    for f in fields(DEFAULTS[name]):
        value, base = config.get(f.name), default[f.name]
        if f.name not in FLAGS or value is None or _same(value, base):
            continue
        parts += [FLAGS[f.name], _option(f.name, value)]
    return " ".join(parts + ["--out", f"docs/experiments/{name}"])


def _same(a: Any, b: Any) -> bool:
    return (list(a) == list(b)) if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) else a == b


def _option(field: str, value: Any) -> str:
    if field == "seeds" and list(value) == list(range(len(value))):
        return str(len(value))  # --seeds N = seeds 0..N-1
    if isinstance(value, (list, tuple)):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _pct(x: float, digits: int = 2) -> str:
    return f"{100 * x:.{digits}f}"


def _points(x: float) -> str:
    return f"{100 * x:+.2f}".replace("-", "−")


def table1_lines(doc: Mapping[str, Any]) -> list[str]:
    """The Table-1 columns (acc % / sparsity %, max bits of the dithered columns) and what they measured."""
    c = doc["config"]
    head = (f"Table 1 columns on the embedded {c['dataset']} ({c['epochs']} epochs, s = {c['s']:g}, mean of "
            f"{len(c['seeds'])} seeds; accuracy % / δ̃z sparsity %):")
    cols = [m for m, _, _ in METHODS]
    lines = [head, "", "| model | " + " | ".join(cols) + " | max bits |", "|---|" + "---|" * (len(cols) + 1)]
    for r in doc["summary"]:
        cells = [f"{_pct(r[m]['acc_mean'])} / {_pct(r[m]['sparsity_mean'], 1)}" for m in cols]
        bits = max(r[m]["max_bits"] for m, method, _ in METHODS if method == "dither")
        lines.append(f"| {r['model']} | " + " | ".join(cells) + f" | {bits} |")
    dith = [(r["model"], m, r[m]) for r in doc["summary"] for m, method, _ in METHODS if method == "dither"]
    sp = [v["sparsity_mean"] for _, _, v in dith]
    bits = max(v["max_bits"] for _, _, v in dith)
    said = (f"Dithered columns: {_pct(min(sp), 1)}–{_pct(max(sp), 1)} % δ̃z sparsity with ≤ {bits}-bit non-zeros, "
            "with or without 8-bit training")
    paper = [f"{r['model']} dithered {_pct(r['dithered']['sparsity_mean'])} % vs the paper's {PAPER[r['model']][3]:.2f} %"
             for r in doc["summary"] if r["model"] in PAPER]
    said += f" ({'; '.join(paper)} on MNIST)" if paper else ""
    change = [f"{r['model']} {_points(r['dithered']['acc_mean'] - r['baseline']['acc_mean'])}" for r in doc["summary"]]
    ours = [r["model"] for r in doc["summary"]]
    theirs = [f"{m} {PAPER[m][2] - PAPER[m][0]:+.2f}".replace("-", "−") for m in ours if m in PAPER]
    said += (f". Accuracy, dithered − baseline: {', '.join(change)} points"
             + (f" (the paper, MNIST: {', '.join(theirs)})" if theirs else "") + ".")
    return [*lines, "", said]


def meprop_line(doc: Mapping[str, Any]) -> str:
    """Dither's sparsest setting within :data:`KEEP_POINTS` of plain backprop, and meProp's sparsest setting."""
    c, rows = doc["config"], doc["summary"]
    base = next(r for r in rows if r["method"] == "none")
    keep = [r for r in rows if r["method"] == "dither" and r["acc_mean"] >= base["acc_mean"] - KEEP_POINTS / 100]
    said = f"meProp ({c['model']}, {len(c['seeds'])} seeds, {c['epochs']} epochs): "
    if keep:
        k = max(keep, key=lambda r: r["sparsity_mean"])
        said += (f"dither stays within {KEEP_POINTS:g} points of plain backprop's {_pct(base['acc_mean'])} % up to "
                 f"{_pct(k['sparsity_mean'])} % sparsity ({k['label']}: {_pct(k['acc_mean'])} %)")
    else:
        said += f"no dither setting stays within {KEEP_POINTS:g} points of plain backprop's {_pct(base['acc_mean'])} %"
    mp = [r for r in rows if r["method"] == "meprop"]
    if mp:
        m = max(mp, key=lambda r: r["sparsity_mean"])
        said += (f"; meProp's sparsest setting ({m['label']}) reaches {_pct(m['sparsity_mean'])} % sparsity at "
                 f"{_pct(m['acc_mean'])} %")
    return said + "."


def distributed_line(doc: Mapping[str, Any]) -> str:
    """Per-node sparsity and worst-case bits from the smallest to the largest N; dither − plain accuracy per N."""
    c = doc["config"]
    rule = {"sqrt": "·√N", "linear": "·N", "const": ""}.get(c["s_rule"], f" ({c['s_rule']})")
    dither = sorted((r for r in doc["summary"] if r["method"] == "dither"), key=lambda r: r["nodes"])
    plain = {r["nodes"]: r for r in doc["summary"] if r["method"] == "none"}
    said = (f"Distributed ({c['model']}, batch {c['batch_per_node']} per node, {c['steps']} steps, "
            f"s = {c['s']:g}{rule}, {len(c['seeds'])} seeds)")
    if not dither:
        return said + ": no dithered runs."
    lo, hi = dither[0], dither[-1]

    def bits(n: int) -> str:
        b = sorted({r["max_bits"] for r in doc["runs"] if r["method"] == "dither" and r["nodes"] == n})
        return str(b[0]) if len(b) == 1 else f"{b[0]}–{b[-1]}"

    said += (f": per-node sparsity {_pct(lo['sparsity_mean'], 1)} → {_pct(hi['sparsity_mean'], 1)} % and worst-case "
             f"bits {bits(lo['nodes'])} → {bits(hi['nodes'])} from N = {lo['nodes']} to {hi['nodes']}")
    gaps = [f"{_points(r['acc_mean'] - plain[r['nodes']]['acc_mean'])} (N = {r['nodes']})" for r in dither
            if r["nodes"] in plain]
    return said + (f"; accuracy, dither − plain backprop: {', '.join(gaps)} points." if gaps else ".")


def experiments_block(docs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The whole block (``docs``: NAME → its results.json), the source sentence last (``readme_tables`` sets it in
    small type with its "do not edit" note)."""
    streams = sorted({stream(d) for d in docs.values()})
    old = " (their `config` has no `dither_rng`: made before the counter dither)" if OLD_STREAM in streams else ""
    made = "; ".join(f"`{command(n, docs[n])}`" for n in NAMES)
    return [*table1_lines(docs["table1"]), meprop_line(docs["meprop"]), distributed_line(docs["distributed"]), "",
            f"Generated from `docs/experiments/{{{','.join(NAMES)}}}/results.json`, made with the "
            f"{' and '.join(streams)} dither stream{old}; the same settings on that stream: {made}."]


def experiments_from(root: Path) -> list[str]:
    """:func:`experiments_block` of ``root/docs/experiments/*/results.json``; empty when one of them is missing."""
    paths = {n: root / "docs" / "experiments" / n / "results.json" for n in NAMES}
    if not all(p.exists() for p in paths.values()):
        return []
    return experiments_block({n: json.loads(p.read_text()) for n, p in paths.items()})
