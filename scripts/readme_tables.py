"""Generate the README's result tables from committed results, so the README cannot drift from them.

Each table lives between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->`` in README.md and is
rebuilt from a committed data file, with the command that produced that file printed under it:

* ``real-gradients`` — from ``reports/example/data/summary.json``, the summary of the example report
  that ``--regenerate`` makes with ``hwsim demo`` + ``hwsim report``;
* ``whole-run`` — from ``reports/example/data/*_run_summary.json`` (the same report's whole-run figures);
* ``scnn``, ``sensitivity`` — from ``benchmarks/results/scnn_repro.json`` (``benchmarks/scnn_repro.py --json``);
* ``cost-shares`` — from ``benchmarks/results/cost_shares.json`` (``benchmarks/cost_shares.py --json``);
* ``coverage`` — from ``benchmarks/results/coverage_table.json`` (``benchmarks/coverage_table.py``);
* ``schedule`` — from ``benchmarks/results/schedule_table.json`` (``benchmarks/schedule_table.py``);
* ``estimator-error`` — from ``benchmarks/results/wholerun_error.json`` (``benchmarks/bench_wholerun.py --error``);
* ``max-examples`` — from ``benchmarks/results/max_examples.json`` (``benchmarks/bench_wholerun.py --max-examples``);
* ``noise`` — from ``benchmarks/results/noise_table.json`` (``benchmarks/noise_table.py``);
* ``accelerators`` — from ``benchmarks/results/accelerator_table.json`` (``benchmarks/accelerator_table.py``;
  rendered by ``scripts/readme_accelerators.py``);
* ``demo-time`` — from ``benchmarks/results/demo_time.json`` (``benchmarks/bench_demo.py --json``).
* ``capture-overhead`` — from ``benchmarks/results/capture_overhead.json`` (``benchmarks/bench_capture.py --json``;
  rendered by ``scripts/readme_runs.py``).
* ``capture-accuracy`` — from ``benchmarks/results/capture_table.json`` (``benchmarks/capture_table.py --json``;
  rendered by ``scripts/readme_runs.py``).
* ``trace-entropy`` — from the checked-in sample trace ``traces/samples/lenet5-digits-dither`` (``hwsim inspect``;
  rendered by ``scripts/readme_runs.py``).
* ``experiments`` — from ``docs/experiments/{table1,meprop,distributed}/results.json`` (``hwsim experiment NAME
  --out docs/experiments/NAME``; rendered by ``scripts/readme_experiments.py``).
* ``bitserial`` — from ``benchmarks/results/bitserial_vs_s.csv`` (``benchmarks/bitserial_vs_s.py``; rendered by
  ``scripts/readme_bitserial.py``).

Usage::

    python scripts/readme_tables.py              # rewrite the tables in README.md from the committed data
    python scripts/readme_tables.py --check      # exit 1 (and show the difference) if README.md disagrees
    python scripts/readme_tables.py --regenerate # rerun the demo, rebuild reports/example, then rewrite

``tests/test_readme_tables.py`` runs ``--check``'s logic, so CI fails when the two disagree.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hwsim.results import times  # the one ratio formatter (reports, sweep summaries, these tables)

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXAMPLE = ROOT / "reports" / "example"
SUMMARY = EXAMPLE / "data" / "summary.json"
TITLE = ("hwsim example: the demo (LeNet-5 and mlp500 on digits, plain and dithered backprop; a small ViT, dithered) "
         "on an SCNN-like array")


def regenerate_commands(work: str) -> list[list[str]]:
    """The commands that make reports/example (the demo's results, sweeps and traces → the example report)."""
    w = f"{work}/work/full"
    names = ("lenet5_none", "lenet5_dither", "mlp500_none", "mlp500_dither", "vit_digits_dither")
    inputs = [f"{w}/results/{n}.json" for n in names]
    inputs += [f"{w}/sweep_demo", f"{w}/sweep_nsd", f"{w}/sweep_density", f"{w}/designs.json"]
    inputs += [f"{w}/traces/{n}" for n in names]
    return [["hwsim", "demo", "--out", work, "--quiet"],
            ["hwsim", "report", *inputs, "--out", "reports/example", "--overwrite", "--dpi", "100", "--title", TITLE]]




def _pct(digits: int) -> Callable[[Any], str]:
    def f(x: Any) -> str:
        if x is None:
            return "–"
        x = float(x)
        if 0 < x < 10 ** -(digits + 2):
            return f"<{10 ** -digits:g} %"
        return f"{x * 100:.{digits}f} %"
    return f


_PASS = {"forward": "forward", "backward_data": "backward-data", "backward_weight": "backward-weight",
         "iteration": "iteration"}
_ROWS = (("none", "iteration"), ("dither", "forward"), ("dither", "backward_data"), ("dither", "backward_weight"),
         ("dither", "iteration"))


def real_gradients_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The 'Real gradients' table: per network, plain backprop's iteration and dithered backprop's passes."""
    cols: list[tuple[str, Callable[[Mapping[str, Any]], str]]] = [
        ("network", lambda r: str(r["network"])),
        ("method", lambda r: str(r["method"])),
        ("pass", lambda r: _PASS[r["scope"]]),
        ("test acc", lambda r: _pct(2)(r.get("test_acc"))),
        ("δ̃z density", lambda r: _pct(1)(r.get("dz_density"))),
        ("speed-up (sparse)", lambda r: times(r.get("speedup_sparse"))),
        ("MAC bound (effectual MACs ÷ multipliers)", lambda r: times(r.get("speedup_ideal"))),
        ("fraction of MAC bound", lambda r: _pct(1)(_div(r.get("speedup_sparse"), r.get("speedup_ideal")))),
        ("energy gain (sparse)", lambda r: times(r.get("energy_ratio_sparse"))),
        ("energy gain (dense-gated)", lambda r: times(r.get("energy_ratio_dense_gated"))),
        ("sparse pJ / effectual MAC", lambda r: _num3(r.get("pj_per_effectual_mac_sparse"))),
        ("dense utilisation", lambda r: _pct(0)(r.get("utilization_dense"))),
    ]
    lines = ["| " + " | ".join(c for c, _ in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for net in dict.fromkeys(r["network"] for r in rows):
        for method, scope in _ROWS:
            r = next((x for x in rows if x["network"] == net and x["method"] == method and x["scope"] == scope
                      and not x.get("overrides")), None)
            if r is not None:
                lines.append("| " + " | ".join(f(r) for _, f in cols) + " |")
    return lines


def _div(a: Any, b: Any) -> float | None:
    return float(a) / float(b) if a is not None and b else None


def _num3(x: Any) -> str:
    return "–" if x is None else f"{float(x):.3g}"


def _sub(text: str) -> str:
    return f"<sub>{text} Do not edit by hand: `tests/test_readme_tables.py` fails when this table and its data disagree.</sub>"


def _parts(shares: Mapping[str, float]) -> str:
    return " / ".join(f"{shares.get(k, 0) * 100:.2g}" for k in _CYCLE_PARTS) + " %"


_CYCLE_PARTS = ("compute", "fragmentation", "imbalance", "bank_conflict", "memory_stall", "reduction", "nsd")


def scnn_table(doc: Mapping[str, Any]) -> list[str]:
    """SCNN reproduction headline: hwsim vs the paper, with where the sparse cycles go."""
    p, a = doc["paper"], doc["alexnet"]
    rows = [("AlexNet speed-up vs dense", times(a["speedup"]), f"{p['alexnet_speedup']:.2f}×",
             _parts(a["sparse_cycle_shares"])),
            ("AlexNet energy vs dense", times(a["energy"]), "2.19×", ""),
            ("AlexNet vs a dense systolic array of equal multipliers", times(a["speedup_systolic"]), "–", ""),
            ("break-even density (same silicon, no skipping)", f"{doc['break_even']:.2f}", f"≈ {p['break_even']:.2f}",
             ""),
            ("break-even density (vs dense systolic)", f"{doc['break_even_systolic']:.2f}", "–", ""),
            ("speed-up at density 0.1", times(doc["at_0_1"]["speedup"]), f"{p['speedup_at_0.1']:.0f}×",
             _parts(doc["at_0_1"]["sparse_cycle_shares"]))]
    lines = ["| figure | hwsim | SCNN paper | sparse cycles: compute / fragmentation / imbalance / bank / memory / reduction / NSD |",
             "|---|---|---|---|"]
    lines += [f"| {a_} | {b} | {c} | {d} |" for a_, b, c, d in rows]
    return lines


def sensitivity_table(doc: Mapping[str, Any]) -> list[str]:
    """The AlexNet headline under the assumptions SCNN does not state, one moved at a time."""
    lines = ["| setting (AlexNet, scnn16, inference) | speed-up vs dense | vs dense systolic | energy vs dense | "
             "vs dense systolic | fraction of MAC bound |", "|---|---|---|---|---|---|"]
    for r in doc["sensitivity"]:
        lines.append(f"| {r['setting']} | {times(r['speedup_vs_dense'])} | {times(r['speedup_vs_dense_systolic'])} | "
                     f"{times(r['energy_vs_dense'])} | {times(r['energy_vs_dense_systolic'])} | "
                     f"{_pct(1)(r['fraction_of_ideal'])} |")
    return lines


def cost_shares_table(doc: Mapping[str, Any]) -> list[str]:
    """Share of each pass's sparse cycles and energy that the training-only costs take."""
    lines = ["| trace | pass | cycles: δW reduction | cycles: NSD unit | energy: δW reduction | energy: NSD unit | "
             "energy: leakage |", "|---|---|---|---|---|---|---|"]
    for t in doc["traces"]:
        name = f"{t.get('model')} {t.get('method')}"
        for x in t["passes"]:
            lines.append(f"| {name} | {_PASS[x['pass']]} | {_pct(1)(x['cyc_reduction'])} | {_pct(1)(x['cyc_nsd'])} | "
                         f"{_pct(1)(x['en_reduction'])} | {_pct(1)(x['en_nsd'])} | {_pct(1)(x['en_leakage'])} |")
    return lines


def whole_run_table(docs: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> list[str]:
    """Whole-run cost (every sampled iteration replayed, left-hold estimator) against the last iteration alone."""
    lines = ["| network | method | pass | speed-up: whole run | last iteration | p10–p90 over iterations | "
             "energy gain: whole run | last iteration | p10–p90 |", "|---|---|---|---|---|---|---|---|---|"]
    for _name, rows in docs:
        for scope in ("backward_data", "backward_weight", "iteration"):
            sp = next((r for r in rows if r["pass"] == scope and r["figure"] == "speedup"), None)
            en = next((r for r in rows if r["pass"] == scope and r["figure"] == "energy_ratio"), None)
            if sp is None or en is None:
                continue
            net, _, rest = str(sp["run"]).partition(" ")
            method = rest.split(" @")[0]
            lines.append(f"| {net} | {method} | {_PASS[scope]} | {times(sp['whole_run'])} | "
                         f"{times(sp['last_iteration'])} | {times(sp['p10'])}–{times(sp['p90'])} | "
                         f"{times(en['whole_run'])} | {times(en['last_iteration'])} | "
                         f"{times(en['p10'])}–{times(en['p90'])} |")
    return lines


def coverage_table(doc: Mapping[str, Any]) -> list[str]:
    """A table of ``doc["columns"]`` × ``doc["rows"]``, cells as written (the coverage and schedule tables)."""
    cols = doc["columns"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in doc["rows"]]
    return lines


def _rel(est: Any, true: Any) -> float:
    return (float(est) - float(true)) / float(true)


def _spct(x: float) -> str:
    return "0.0 %" if round(x * 100, 1) == 0 else f"{x * 100:+.1f} %"


ERROR_BOUND = 0.02  # the estimator-error sentence names the largest every:N whose error stays within this


def estimator_error_table(doc: Mapping[str, Any]) -> list[str]:
    """Left-hold estimator over every N-th iteration (and one iteration × T) against replaying every iteration."""
    t, truth = doc["trace"], doc["truth"]
    keys = ("sparse_cycles", "dense_cycles", "sparse_energy_pj", "speedup", "energy_ratio")
    lines = [f"| replayed (of {t['iterations']}) | iterations | sparse cycles | dense cycles | sparse energy | speed-up | "
             "energy gain | speed-up, worst phase | energy gain, worst phase |", "|---|---|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        label = f"every:{r['every']}" if r["kind"] == "every" else f"{r['kind']} iteration × {t['iterations']}"
        w = r.get("worst_abs_err_pct")
        worst = [f"±{w[k]:.1f} %" if w else "–" for k in ("speedup", "energy_ratio")]
        lines.append(f"| {label} | {r['replayed']} | " + " | ".join(_spct(_rel(r["estimate"][k], truth[k])) for k in keys)
                     + f" | {worst[0]} | {worst[1]} |")
    every = sorted((r for r in doc["rows"] if r["kind"] == "every"), key=lambda r: r["every"])
    ok = []
    for r in every:
        if max(r["worst_abs_err_pct"].values()) > ERROR_BOUND * 100:
            break
        ok.append(r)
    last = next((r for r in doc["rows"] if r["kind"] == "last"), None)
    said = (f"Of the N tested, replaying every N-th iteration for N ≤ {ok[-1]['every']} keeps the whole-run speed-up and energy gain "
            f"within ±{ERROR_BOUND * 100:g} % at every phase (worst ±"
            f"{max(max(r['worst_abs_err_pct'].values()) for r in ok):.1f} %)" if ok else
            f"No every:N keeps both within ±{ERROR_BOUND * 100:g} % at every phase")
    if last is not None:
        said += (f"; the last iteration alone is off by {_spct(_rel(last['estimate']['speedup'], truth['speedup']))} "
                 f"(speed-up) and {_spct(_rel(last['estimate']['energy_ratio'], truth['energy_ratio']))} (energy gain)")
    truth_line = (f"Truth: all {t['iterations']} iterations of {t['model']} {t['method']} on {t['dataset']} "
                  f"(batch {t['batch_size']}, {t['epochs']} epochs) replayed on {doc['arch']}: speed-up "
                  f"{times(truth['speedup'])}, energy gain {times(truth['energy_ratio'])}. Errors are estimate − truth "
                  "(capture samples from iteration 0; *worst phase* is the largest |error| over the N start offsets).")
    return [*lines, "", truth_line + " " + said + "."]


def max_examples_table(doc: Mapping[str, Any]) -> list[str]:
    """A full batch against its first ``keep`` examples (what ``max_examples`` stores), cycles/energy scaled."""
    lines = ["| iteration | batch → kept | sparse cycles × batch/kept | dense cycles × batch/kept | "
             "sparse energy × batch/kept | speed-up: full → kept | error | energy gain: full → kept | error | "
             "backward-weight speed-up: full → kept |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        f, c, k = r["full"], r["sample"], r["batch"] / r["keep"]
        lines.append(f"| {r['iteration']} | {r['batch']} → {r['keep']} | "
                     + " | ".join(_spct(_rel(k * c[x], f[x])) for x in ("sparse_cycles", "dense_cycles",
                                                                          "sparse_energy_pj"))
                     + f" | {times(f['speedup'])} → {times(c['speedup'])} | {_spct(_rel(c['speedup'], f['speedup']))} | "
                     f"{times(f['energy_ratio'])} → {times(c['energy_ratio'])} | "
                     f"{_spct(_rel(c['energy_ratio'], f['energy_ratio']))} | {_bw(f)} → {_bw(c)} |")
    t = doc["trace"]
    said = []
    full_batch = max(r["batch"] for r in doc["rows"])  # the summary leaves out an epoch's short last batch
    for keep in sorted({r["keep"] for r in doc["rows"]}):
        rs = [r for r in doc["rows"] if r["keep"] == keep and r["batch"] == full_batch]
        if not rs:
            continue
        sp = [_rel(r["sample"]["speedup"], r["full"]["speedup"]) for r in rs]
        en = [_rel(r["sample"]["energy_ratio"], r["full"]["energy_ratio"]) for r in rs]
        said.append(f"keeping {keep} of {rs[0]['batch']} examples changes the speed-up by {_spct(min(sp))} to "
                    f"{_spct(max(sp))} and the energy gain by {_spct(min(en))} to {_spct(max(en))}")
    acc = f", test accuracy {_pct(1)(t['test_acc'])}" if t.get("test_acc") is not None else ""
    return [*lines, "", f"{t['model']} {t['method']} on {t['dataset']} at {t['image_size']}², batch {t['batch_size']}, "
            f"{t['epochs']} epochs{acc}, on {doc['arch']}: " + "; ".join(said) + "."]


def _bw(figs: Mapping[str, Any]) -> str:
    return times(figs.get("speedup_passes", {}).get("backward_weight"))


BENCH = ROOT / "benchmarks" / "results"


def _sibling(name: str) -> Any:
    """A module of this folder, loaded by path (this file runs as a script and is loaded by path in tests)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def tables(root: Path = ROOT) -> dict[str, list[str]]:
    """NAME → the lines between the markers (table, blank line, source line)."""
    summary = root / SUMMARY.relative_to(ROOT)
    rows = json.loads(summary.read_text())
    training = summary.parent / "training_summary.json"  # test accuracy of each trace, from its manifest
    if training.exists():
        acc = {(t["model"], t["method"]): t.get("test_acc") for t in json.loads(training.read_text())}
        rows = [{**r, "test_acc": r.get("test_acc") or acc.get((r["network"], r["method"]))} for r in rows]
    cmds = regenerate_commands("DIR")
    source = _sub(f"Generated by `python scripts/readme_tables.py` from `{summary.relative_to(root)}`, which "
                  f"`python scripts/readme_tables.py --regenerate` makes with `{' '.join(cmds[0])}` then "
                  f"`hwsim report DIR/work/full/{{results/*.json,sweep_demo,sweep_nsd,sweep_density,designs.json,traces/*}} "
                  f"--out reports/example --overwrite --dpi 100`.")
    out = {"real-gradients": [*real_gradients_table(rows), "", source]}
    runs = sorted((root / SUMMARY.relative_to(ROOT)).parent.glob("*_run_summary.json"))
    if runs:
        out["whole-run"] = [*whole_run_table([(p.stem, json.loads(p.read_text())) for p in runs]), "",
                            _sub(f"Generated from `{runs[0].parent.relative_to(root)}/*_run_summary.json` (the "
                                 "example report's whole-run figures; same commands as above).")]
    bench = root / BENCH.relative_to(ROOT)
    for name, fn, gen in (("scnn", "scnn_repro.json", scnn_table), ("sensitivity", "scnn_repro.json",
                          sensitivity_table), ("cost-shares", "cost_shares.json", cost_shares_table),
                          ("coverage", "coverage_table.json", coverage_table),
                          ("schedule", "schedule_table.json", coverage_table),
                          ("estimator-error", "wholerun_error.json", estimator_error_table),
                          ("max-examples", "max_examples.json", max_examples_table),
                          ("noise", "noise_table.json", _sibling("readme_runs").noise_table),
                          ("accelerators", "accelerator_table.json", _sibling("readme_accelerators").accelerators_table),
                          ("demo-time", "demo_time.json", _sibling("readme_runs").demo_time_table),
                          ("capture-overhead", "capture_overhead.json", _sibling("readme_runs").capture_overhead_table)):
        f = bench / fn
        if f.exists():
            doc = json.loads(f.read_text())
            made = f" from a trace made by `{doc['capture']}`" if doc.get("capture") else ""
            out[name] = [*gen(doc), "", _sub(f"Generated from `{f.relative_to(root)}`, made by "
                                             f"`{doc.get('command', '?')}`{made}.")]
    for name, block in (("trace-entropy", _sibling("readme_runs").trace_entropy_block(root)),
                        ("experiments", _sibling("readme_experiments").experiments_from(root)),
                        ("bitserial", _sibling("readme_bitserial").bitserial_from(root))):
        if block:  # the text, then its source sentence (set small, with the "do not edit" note)
            out[name] = [*block[:-1], _sub(block[-1])]
    f = bench / "capture_table.json"
    if f.exists():
        try:
            doc = json.loads(f.read_text())
        except json.JSONDecodeError as e:
            raise SystemExit(f"{f.relative_to(root)}: not valid JSON ({e}); remake it with "
                             "`python benchmarks/capture_table.py --json benchmarks/results/capture_table.json`") from None
        out["capture-accuracy"] = [*_sibling("readme_runs").capture_accuracy_table(doc), "", _sub(
            f"Generated from `{f.relative_to(root)}`, made by `{doc.get('command', '?')}` (each run: "
            f"`{doc.get('capture', '?')}`).")]
    return out


_BLOCK = re.compile(r"(<!-- table:(?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(<!-- /table:(?P=name) -->)", re.S)


def render(text: str, generated: Mapping[str, list[str]]) -> str:
    """``text`` with every marked table replaced by its generated content (unknown names are an error)."""
    def repl(m: re.Match) -> str:
        name = m.group("name")
        if name not in generated:
            raise SystemExit(f"README.md: no generator for <!-- table:{name} -->; known: {', '.join(generated)}")
        return m.group(1) + "\n".join(generated[name]) + "\n" + m.group(4)
    return _BLOCK.sub(repl, text)


def marked_names(text: str) -> list[str]:
    return [m.group("name") for m in _BLOCK.finditer(text)]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if README.md differs from the committed results")
    ap.add_argument("--regenerate", action="store_true",
                    help="rerun the demo and rebuild reports/example first (minutes), then rewrite the tables")
    ap.add_argument("--work", default=None, help="demo folder for --regenerate (default: a temporary folder)")
    args = ap.parse_args(argv)
    if args.regenerate:
        with tempfile.TemporaryDirectory(prefix="hwsim-readme-") as tmp:
            work = args.work or tmp
            for cmd in regenerate_commands(work):
                print("$", " ".join(cmd), file=sys.stderr)
                subprocess.run([sys.executable, "-m", "hwsim", *cmd[1:]], cwd=ROOT, check=True)
    text = README.read_text()
    new = render(text, tables())
    if args.check:
        if new != text:
            sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), new.splitlines(True), "README.md",
                                                       "README.md (generated)"))
            return 1
        print(f"README.md tables agree with the committed results ({', '.join(marked_names(text))})")
        return 0
    if new != text:
        README.write_text(new)
        print("README.md: tables rewritten")
    else:
        print("README.md: tables already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
