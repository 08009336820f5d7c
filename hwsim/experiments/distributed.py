"""Dithered backprop on N nodes at batch 1 per node (seed paper §3.6, §4.3, Figs. 6–8).

For every N of ``nodes`` (and every seed and method) this launches
``python -m torch.distributed.run --nproc-per-node N -m hwsim trace --distributed ...`` on this
machine (gloo over localhost, a free port per job), reads every rank's trace and reports, against
N: the final test accuracy, the **per-node** δ̃z sparsity and the worst-case bit-width of the
non-zero levels. s grows with N by the rule of :func:`hwsim.capture.distributed.scale_s`
(default s·√N: the averaged dither noise stays at the single-node level).

Every N runs the same number of SGD steps (``steps``) at the same learning rate, so larger N
averages more examples per step; plain backprop ("none") at every N is the reference that
separates that effect from the dither's.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hwsim.capture.config import (
    DEFAULT_BATCH_PER_NODE,
    DEFAULT_DATASETS,
    DEFAULT_DITHER_RNG,
    DEFAULT_S_RULE,
    check_dither_rng,
)
from hwsim.experiments.output import (
    markdown_table,
    mean_std,
    pm,
    save_figure,
    write_csv,
    write_json,
    write_text,
)


@dataclass(frozen=True)
class DistributedConfig:
    """What to run; defaults fit 2 CPU cores (8 processes share them) in a few minutes."""

    nodes: tuple[int, ...] = (1, 2, 4, 8)
    model: str = "lenet300"
    dataset: str = DEFAULT_DATASETS["image"]
    data_dir: str | None = None
    s: float = 2.0  # single-node s; node s = scale_s(s, N, s_rule)
    s_rule: str = DEFAULT_S_RULE
    steps: int = 400
    lr: float = 0.005
    batch_per_node: int = DEFAULT_BATCH_PER_NODE
    seeds: tuple[int, ...] = (0, 1)
    methods: tuple[str, ...] = ("dither", "none")
    timeout_s: float = 1800.0
    dither_rng: str = DEFAULT_DITHER_RNG  # the dither's random stream (hwsim.capture.config.DITHER_RNGS)

    def __post_init__(self) -> None:
        check_dither_rng(self.dither_rng, "DistributedConfig.dither_rng")  # at construction, not at the first capture


QUICK = DistributedConfig(nodes=(1, 2), steps=30, seeds=(0,), methods=("dither",))


@dataclass(frozen=True)
class NodeRun:
    """One torchrun job, aggregated over its ranks."""

    method: str
    nodes: int
    seed: int
    s_node: float | None
    test_acc: float
    sparsity_per_node: float  # mean over ranks of (1 − mean δ̃z density over layers and iterations)
    sparsity_per_node_std: float  # spread over ranks
    max_bits: int  # worst case over ranks, layers and iterations
    mean_iter_max_bits: float  # mean over ranks and iterations of the worst layer's bits
    by_kind: dict[str, dict[str, float]]  # linear / conv2d: sparsity, max_bits
    seconds: float


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(config: DistributedConfig, *, nodes: int, method: str, seed: int, out: Path) -> subprocess.CompletedProcess:
    """Run one torchrun job writing ``out/rank{r}`` and ``out/run.json``; raise RuntimeError on failure."""
    r = _torchrun(config, nodes=nodes, method=method, seed=seed, out=out)
    if r.returncode != 0 and port_collision(r.stdout + r.stderr):
        # The free port was taken before torchrun bound it: once more, in a fresh folder. Any other
        # failure is reported as it is (no retry could hide it).
        shutil.rmtree(out, ignore_errors=True)
        r = _torchrun(config, nodes=nodes, method=method, seed=seed, out=out)
    if r.returncode != 0:
        raise RuntimeError(f"torchrun with {nodes} nodes ({method}, seed {seed}) failed with exit code "
                           f"{r.returncode}:\n{_failure_excerpt(r.stderr)}")
    return r


def port_collision(output: str) -> bool:
    """True if a torchrun job's output says its rendezvous port was already taken (EADDRINUSE)."""
    low = output.lower()
    return "eaddrinuse" in low or "address already in use" in low


def _failure_excerpt(stderr: str, limit: int = 2000) -> str:
    """The failing rank's own traceback (torchrun prints it before its summary), then the summary's tail."""
    first = stderr.find("Traceback (most recent call last)")
    head = stderr[first:first + limit] + "\n...\n" if 0 <= first < len(stderr) - limit else ""
    return head + stderr[-limit:]


def _torchrun(config: DistributedConfig, *, nodes: int, method: str, seed: int,
              out: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nodes),
           "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
           "-m", "hwsim", "trace", "--distributed", "--model", config.model, "--dataset", config.dataset,
           "--method", method, "--scale", str(config.s), "--s-rule", config.s_rule, "--steps", str(config.steps),
           "--lr", str(config.lr), "--batch-size", str(config.batch_per_node), "--seed", str(seed),
           "--sample-every", "0", "--dither-rng", config.dither_rng, "--out", str(out), "--overwrite", "--quiet",
           "--threads", "1"]
    if config.data_dir:
        cmd += ["--data-dir", str(config.data_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=config.timeout_s)


def collect(out: Path, *, method: str, seed: int) -> NodeRun:
    """Aggregate the rank traces of one job (``out/run.json`` + ``out/rank*/``)."""
    from hwsim.trace.format import load

    run = json.loads((out / "run.json").read_text())
    n = int(run["world_size"])
    sparsity, mean_iter_bits, kinds = [], [], {}
    max_bits = 0
    for r in range(n):
        tr = load(out / f"rank{r}")
        kind = {g.name: g.kind for g in tr.layers}
        with_stats = [it for it in tr.iterations if it.layers]
        dens = [st.density for it in with_stats for st in it.layers.values()]
        sparsity.append(1.0 - sum(dens) / len(dens))
        per_it = [max(st.max_bits for st in it.layers.values()) for it in with_stats]
        mean_iter_bits.append(sum(per_it) / len(per_it))
        max_bits = max(max_bits, max(per_it))
        for it in with_stats:
            for name, st in it.layers.items():
                k = kinds.setdefault(kind.get(name, "?"), {"dens": [], "bits": 0})
                k["dens"].append(st.density)
                k["bits"] = max(k["bits"], int(st.max_bits))
    sp, sp_sd = mean_std(sparsity)
    if len({x["test_acc"] for x in run["ranks"]}) != 1:
        raise RuntimeError(f"{out}/run.json: ranks report different test accuracies — their weights diverged")
    return NodeRun(method=method, nodes=n, seed=seed, s_node=run["s_node"], test_acc=float(run["ranks"][0]["test_acc"]),
                   sparsity_per_node=sp, sparsity_per_node_std=sp_sd, max_bits=max_bits,
                   mean_iter_max_bits=sum(mean_iter_bits) / n,
                   by_kind={k: {"sparsity": 1.0 - sum(v["dens"]) / len(v["dens"]), "max_bits": v["bits"]}
                            for k, v in kinds.items()},
                   seconds=max(float(x["seconds"]) for x in run["ranks"]))


def run_all(config: DistributedConfig, work: Path, *,
            progress: Callable[[str], None] | None = None) -> list[NodeRun]:
    """Every (method, N, seed) job; traces under ``work/<method>/N<n>/seed<s>``."""
    rows = []
    for method in config.methods:
        for n in config.nodes:
            for seed in config.seeds:
                out = work / method / f"N{n}" / f"seed{seed}"
                launch(config, nodes=n, method=method, seed=seed, out=out)
                row = collect(out, method=method, seed=seed)
                rows.append(row)
                if progress is not None:
                    progress(f"{method:6s} N={n} seed {seed}: acc {row.test_acc:.2%}, per-node sparsity "
                             f"{row.sparsity_per_node:.2%}, max {row.max_bits} bits ({row.seconds:.0f} s)")
    return rows


def summarize(rows: Sequence[NodeRun]) -> list[dict[str, Any]]:
    """Mean ± std over seeds per (method, N)."""
    out = []
    for method in dict.fromkeys(r.method for r in rows):
        for n in sorted({r.nodes for r in rows if r.method == method}):
            sel = [r for r in rows if r.method == method and r.nodes == n]
            acc = mean_std([r.test_acc for r in sel])
            sp = mean_std([r.sparsity_per_node for r in sel])
            bits = mean_std([float(r.max_bits) for r in sel])
            it_bits = mean_std([r.mean_iter_max_bits for r in sel])
            out.append({"method": method, "nodes": n, "s_node": sel[0].s_node, "seeds": len(sel),
                        "acc_mean": acc[0], "acc_std": acc[1], "sparsity_mean": sp[0], "sparsity_std": sp[1],
                        "max_bits_mean": bits[0], "max_bits_std": bits[1], "iter_bits_mean": it_bits[0],
                        "iter_bits_std": it_bits[1]})
    return out


def plot(summary: Sequence[dict[str, Any]], path: Path, *, title: str) -> Path:
    """Three panels against N: test accuracy, per-node sparsity, worst-case bit-width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), dpi=150)
    style = {"dither": ("dithered backprop", "tab:blue", "o", "-"), "none": ("plain backprop", "0.35", "s", "--")}
    panels = [("acc", 100, "test accuracy, %"), ("sparsity", 100, "per-node δz sparsity, %"),
              ("max_bits", 1, "worst-case bits of non-zero δ̃z")]
    nodes: list[int] = sorted({p["nodes"] for p in summary})
    for ax, (key, scale, ylabel) in zip(axes, panels, strict=True):
        for method, (name, color, marker, ls) in style.items():
            pts = [p for p in summary if p["method"] == method]
            if not pts or (key == "max_bits" and method == "none"):
                continue  # plain backprop's levels are an int8 view: 8 bits by construction
            ax.errorbar([p["nodes"] for p in pts], [scale * p[f"{key}_mean"] for p in pts],
                        yerr=[scale * p[f"{key}_std"] for p in pts], color=color, marker=marker, ls=ls,
                        capsize=3, lw=1.5, label=name + (" (max over run)" if key == "max_bits" else ""))
            if key == "max_bits":
                ax.errorbar([p["nodes"] for p in pts], [p["iter_bits_mean"] for p in pts],
                            yerr=[p["iter_bits_std"] for p in pts], color=color, marker="x", ls=":", capsize=3,
                            lw=1.2, label="mean per-iteration worst case (0 = all zero)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(nodes)
        ax.set_xticklabels([_node_label(summary, n) for n in nodes], fontsize=9)
        ax.set_xlabel("nodes N (s per node)", fontsize=10)
        ax.set_ylabel(ylabel, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8.5)
    fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)


def write_report(rows: Sequence[NodeRun], config: DistributedConfig, out: str | os.PathLike) -> Path:
    """``out/index.md``, ``distributed.png``, ``runs.csv``, ``summary.csv``, ``results.json``."""
    out = Path(out)
    summary = summarize(rows)
    title = (f"{config.model} on {config.dataset}, batch {config.batch_per_node}/node, {config.steps} steps, "
             f"s = {config.s:g}·{_rule_text(config.s_rule)}")
    plot(summary, out / "distributed.png", title=title)
    write_csv(out / "runs.csv", [{**asdict(r), "by_kind": json.dumps(r.by_kind)} for r in rows])
    write_csv(out / "summary.csv", summary)
    write_json(out / "results.json", {"config": asdict(config), "summary": summary, "runs": [asdict(r) for r in rows]})
    table = markdown_table(
        ["method", "N", "s per node", "test acc. %", "per-node sparsity %", "worst-case bits",
         "mean per-iteration worst bits", "seeds"],
        [[p["method"], p["nodes"], "—" if p["s_node"] is None else f"{p['s_node']:.2f}",
          pm(p["acc_mean"], p["acc_std"]), pm(p["sparsity_mean"], p["sparsity_std"]),
          pm(p["max_bits_mean"], p["max_bits_std"], scale=1, digits=1),
          pm(p["iter_bits_mean"], p["iter_bits_std"], scale=1, digits=2), p["seeds"]] for p in summary])
    text = (f"# Distributed dithered backprop — {config.model} on {config.dataset}\n\n"
            f"Seed paper §4.3 / Figs. 6–8. N nodes (torchrun, gloo, gradients all-reduced), batch {config.batch_per_node} per node, "
            f"NSD on every node before the gradient allreduce, gradients averaged; {config.steps} SGD steps at "
            f"lr {config.lr} for every N; s per node = {config.s:g}·{_rule_text(config.s_rule)}; seeds "
            f"{list(config.seeds)}; dither stream {config.dither_rng}. Sparsity and bits are per node (each rank's own "
            "trace), averaged over ranks; "
            "plain backprop's bits are an int8 view (8 by construction) and are not plotted.\n\n"
            "![accuracy, per-node sparsity and worst-case bits against N](distributed.png)\n\n" + table +
            "\nFiles: `runs.csv` (one row per torchrun job, with a per-layer-kind split), `summary.csv`, "
            "`results.json`; traces under `traces/` when kept.\n")
    write_text(out / "index.md", text)
    return out


def run_experiment(config: DistributedConfig, out: str | os.PathLike, *, keep_traces: bool = False,
                   progress: Callable[[str], None] | None = None) -> Path:
    """Run every job, write the report to ``out``; rank traces stay in ``out/traces`` if ``keep_traces``."""
    import tempfile

    out = Path(out)
    if keep_traces:
        rows = run_all(config, out / "traces", progress=progress)
    else:
        with tempfile.TemporaryDirectory(prefix="hwsim-distributed-") as tmp:
            rows = run_all(config, Path(tmp), progress=progress)
        shutil.rmtree(out / "traces", ignore_errors=True)
    return write_report(rows, config, out)


def _rule_text(rule: str) -> str:
    return {"sqrt": "√N", "linear": "N", "const": "1"}.get(rule, rule)


def _node_label(summary: Sequence[dict[str, Any]], n: int) -> str:
    s = next((p["s_node"] for p in summary if p["nodes"] == n and p["s_node"] is not None), None)
    return f"{n}" if s is None else f"{n}\n(s={s:.2g})"
