"""README tables about runs (loaded by ``scripts/readme_tables.py``): NSD's noise over depth, the demo's time,
capture's overhead and capture's accuracy, and how close the checked-in sample trace is to its entropy.

``noise_table`` renders ``benchmarks/results/noise_table.json`` (``benchmarks/noise_table.py``); ``demo_time_table``
renders ``benchmarks/results/demo_time.json`` (``benchmarks/bench_demo.py --json``); ``capture_overhead_table``
renders ``benchmarks/results/capture_overhead.json`` (``benchmarks/bench_capture.py --json``);
``capture_accuracy_table`` renders ``benchmarks/results/capture_table.json`` (``benchmarks/capture_table.py --json``);
``trace_entropy_line`` renders what ``hwsim inspect --json`` says of ``traces/samples/lenet5-digits-dither``, kept in
``benchmarks/results/trace_entropy.json`` (``python scripts/readme_runs.py --trace-entropy FILE`` writes it).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hwsim.results import times  # the one ratio formatter (reports, sweep summaries, these tables)


def _pct1(x: Any) -> str:
    return "–" if x is None else f"{float(x) * 100:.1f} %"


def noise_table(doc: Mapping[str, Any]) -> list[str]:
    """NSD's noise over depth (``benchmarks/noise_table.py``): one-step ‖δW‖ blow-up, its estimate, accuracy."""
    names = {"resnet18": "ResNet-18 (resnet18_cifar)", "mobilenet": "MobileNet-V2-style"}
    lines = ["| model | δz | ‖δW‖ dither / plain, one step: first / middle / last GEMM | estimated (trace) | "
             "δ̃z density | test accuracy |", "|---|---|---|---|---|---|"]
    plain = {r["model"]: r for r in doc["rows"] if r["method"] == "none"}
    for r in doc["rows"]:
        rule = "plain" if r["method"] == "none" else f"s = {r['s']:g}" + (f", {r['s_layers']}" if r["s_layers"] else "")
        st = r.get("step")
        step = (f"{times(st['first'])} / {times(st['middle'])} / {times(st['last'])}" if st else "–")
        acc = "diverged" if r.get("diverged") else _pct1(r.get("test_acc"))
        base = plain.get(r["model"])
        if r["method"] != "none" and base and base.get("test_acc") is not None and r.get("test_acc") is not None:
            acc += f" ({100 * (r['test_acc'] - base['test_acc']):+.1f})"
        lines.append(f"| {names.get(r['model'], r['model'])} ({st['gemms'] if st else '–'} GEMMs) | {rule} | {step} | "
                     f"{times(st['estimate_first']) if st else '–'} | "
                     f"{'–' if r['method'] == 'none' else format(r['density'], '.3f')} | {acc} |")
    lines[2:] = [ln.replace("(– GEMMs) ", "") for ln in lines[2:]]
    return [*lines, "", f"Digits at {doc['image']}², {doc['epochs']} epochs, SGD momentum 0.9, lr 0.05 cosine, batch "
            f"64, seed 0; one-step ratios over {doc['seeds']} dither seeds; accuracy change against plain in points."]


def demo_time_table(doc: Mapping[str, Any]) -> list[str]:
    """How long ``hwsim demo`` took: the first run by step (wall and CPU seconds) and the warm reruns."""
    first = doc["first_run"]
    lines = ["| step of the first run | wall time | CPU time (all processes) |", "|---|---|---|"]
    lines += [f"| {n} | {t['wall']:.1f} s | {'–' if t.get('cpu') is None else format(t['cpu'], '.1f') + ' s'} |"
              for n, t in first["steps"].items()]
    cpu = sum(t["cpu"] for t in first["steps"].values() if t.get("cpu") is not None)
    lines.append(f"| **whole demo** ({'empty' if first['cold'] else 'reused'} `--out`) | **{first['seconds']:.1f} s** | {cpu:.1f} s |")
    said = (f"Measured {doc['date']} on a {doc['cpus']}-core machine shared with other jobs, `--jobs {doc['jobs']}`; 1-minute "
            f"load average {first['load'][0]:.2f} before → {first['load'][1]:.2f} after the first run")
    said += "".join(f"; a rerun into the same `--out` (`OUT/work/` reused: only the report is rebuilt) took {w['seconds']:.1f} s "
                    f"(load {w['load'][0]:.2f} → {w['load'][1]:.2f})" for w in doc.get("warm_reruns", [])[:1])
    said += f". On {doc['cpus']} idle cores the first run cannot take less than CPU ÷ cores = {cpu / doc['cpus']:.0f} s"
    return [*lines, "", said + "."]


def capture_overhead_table(doc: Mapping[str, Any]) -> list[str]:
    """Step-time ratios of capture to plain training per model (``benchmarks/bench_capture.py --json``): interception
    alone, dither and dither + recording, CPU time with wall time in parentheses; a ratio above its target is marked.
    A file made with ``--fallback`` adds the same two ratios on the numpy path (no compiled NSD kernel), measured in
    the same rounds."""
    targets = doc["targets"]
    fallback = [c for c in ("dither/numpy", "dither+record/numpy") if all(c in r for r in doc["rows"])]
    head = ("| model | batch | plain CPU ms/step | interception only | dither/plain (target ≤ "
            f"{targets['dither']:.2f}×) | dither+record/plain (target ≤ {targets['dither+record']:.2f}×) |")
    head += "".join(f" {c.split('/')[0]}/plain, numpy path |" for c in fallback)
    lines = [head, "|---|---|---|---|---|---|" + "---|" * len(fallback)]
    for r in doc["rows"]:
        cells = []
        for c in ("intercept", "dither", "dither+record", *fallback):
            cell = f"{r[c]['cpu']:.3f}× ({r[c]['wall']:.3f}×)"
            cells.append(f"**{cell} — missed**" if c in targets and r[c]["cpu"] > targets[c] else cell)
        lines.append(f"| {r['model']} | {r['batch']} | {r['plain_ms']:.1f} | {' | '.join(cells)} |")
    said = (f"Measured {doc['date']} on a {doc['cpus']}-core machine shared with other jobs; 1-minute load average "
            f"{doc['load'][0]:.2f} before → {doc['load'][1]:.2f} after; {doc['threads']} torch thread, s = {doc['s']:g}, "
            f"recording every {doc['sample_every']} steps; configurations interleaved in {doc['rounds']} rounds of "
            f"{doc['steps']} steps, medians over rounds of the training thread's CPU-time ratio (wall-clock ratio in "
            "parentheses). Interception only: capture with the quantizer replaced by the identity (module hooks, "
            "the op mode, the non-GEMM tally, the δz hand-over and the records still run)")
    if "nsd_kernel" in doc:  # what bench_capture.py ran: the compiled kernel's instruction set, or "numpy path"
        k = doc["nsd_kernel"]
        said += ". NSD ran on the numpy path (no compiled kernel)" if k == "numpy path" else \
            f". NSD ran on the compiled kernel ({k})"
    if fallback:
        said += ("; the numpy-path columns time the same captures with the compiled kernel off "
                 "(`HWSIM_QUANT_PATH=numpy`), the same traces bit for bit")
    return [*lines, "", said + "."]


ROW_KEYS = ("model", "method", "seed", "test_acc", "mean_density", "max_bits")


def _check_capture_doc(doc: Any) -> list[Mapping[str, Any]]:
    """The rows of ``capture_table.json``, or a one-line error naming the file, the row and the missing field."""
    where = "benchmarks/results/capture_table.json"
    if not isinstance(doc, Mapping) or not isinstance(doc.get("rows"), list) or not doc["rows"]:
        raise SystemExit(f"{where}: expected an object with a non-empty list 'rows' (made by "
                         "benchmarks/capture_table.py --json)")
    for i, r in enumerate(doc["rows"]):
        missing = [k for k in ROW_KEYS if not isinstance(r, Mapping) or k not in r]
        if missing:
            raise SystemExit(f"{where}: rows[{i}] lacks {', '.join(missing)} (each row needs {', '.join(ROW_KEYS)})")
        if r["method"] not in ("none", "dither"):
            raise SystemExit(f"{where}: rows[{i}].method is {r['method']!r}; allowed: none, dither")
    for k in ("sparsity", "max_bits", "acc_points"):
        if k not in doc.get("targets", {}):
            raise SystemExit(f"{where}: targets lacks {k!r} (needs sparsity, max_bits, acc_points)")
    return doc["rows"]


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def capture_target(rows: list[Mapping[str, Any]], model: str, targets: Mapping[str, float]) -> list[str]:
    """What the dithered runs of ``model`` miss of the target, empty when met: every seed's δ̃z sparsity ≥
    ``targets["sparsity"]`` and largest bit-width ≤ ``targets["max_bits"]``, and the mean test accuracy over seeds
    at most ``targets["acc_points"]`` points below plain training's."""
    d = [r for r in rows if r["model"] == model and r["method"] == "dither"]
    n = [r for r in rows if r["model"] == model and r["method"] == "none"]
    missed = []
    low = min(1 - r["mean_density"] for r in d)
    if low < targets["sparsity"]:
        missed.append(f"sparsity {100 * low:.2f} % < {100 * targets['sparsity']:g} %")
    unknown = sorted(r["seed"] for r in d if r["max_bits"] is None)
    if unknown:  # a dithered run that recorded no bit-width cannot show it meets the width target
        missed.append("no bit-width recorded (seed " + ", ".join(map(str, unknown)) + ")")
    known = [r["max_bits"] for r in d if r["max_bits"] is not None]
    if known and max(known) > targets["max_bits"]:
        missed.append(f"{max(known)} bits > {targets['max_bits']}")
    drop = 100 * (_mean([r["test_acc"] for r in n]) - _mean([r["test_acc"] for r in d]))
    if drop > targets["acc_points"]:
        missed.append(f"accuracy {drop:.2f} points below none")
    return missed


def capture_accuracy_table(doc: Mapping[str, Any]) -> list[str]:
    """Plain against dithered backprop on the embedded dataset (``benchmarks/capture_table.py --json``): the
    lowest seed's runs as a table, then the test accuracy's mean over all seeds (none → dither) per model and
    whether each model meets the target (see :func:`capture_target`)."""
    rows = _check_capture_doc(doc)
    seeds = sorted({r["seed"] for r in rows})
    models = list(dict.fromkeys(r["model"] for r in rows))
    for m in models:
        for meth in ("none", "dither"):
            have = {r["seed"] for r in rows if r["model"] == m and r["method"] == meth}
            if have != set(seeds):
                raise SystemExit(f"benchmarks/results/capture_table.json: {m} {meth} has seeds "
                                 f"{sorted(have)}; every model and method needs seeds {seeds}")
    lines = ["| model | method | test acc | avg δ̃z sparsity | max bit-width | s |", "|---|---|---|---|---|---|"]
    for m in models:
        for meth in ("none", "dither"):
            r = next(x for x in rows if x["model"] == m and x["method"] == meth and x["seed"] == seeds[0])
            plain = meth == "none" or r["max_bits"] is None
            lines.append(f"| {m} | {meth} | {100 * r['test_acc']:.2f} % | {100 * (1 - r['mean_density']):.2f} % | "
                         f"{'– (float)' if plain else r['max_bits']} | "
                         f"{'–' if plain or r.get('s') is None else format(r['s'], 'g')} |")
    span = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))}"
    means = []
    for m in models:
        acc = [_mean([r["test_acc"] for r in rows if r["model"] == m and r["method"] == meth])
               for meth in ("none", "dither")]
        means.append(f"{m} {100 * acc[0]:.2f} → {100 * acc[1]:.2f} %")
    t = doc["targets"]
    met = [m for m in models if not capture_target(rows, m, t)]
    missed = [f"{m} ({'; '.join(capture_target(rows, m, t))})" for m in models if capture_target(rows, m, t)]
    verdict = ("met by " + ", ".join(met) if met else "met by none") + ("; missed by " + ", ".join(missed)
                                                                        if missed else "")
    said = (f"Table: seed {seeds[0]}. Mean test accuracy over {span}, none → dither: {', '.join(means)}. Target "
            f"(dither at every seed: ≥ {100 * t['sparsity']:g} % sparsity and ≤ {t['max_bits']} bits; mean accuracy "
            f"at most {t['acc_points']:g} point below none's): {verdict}. Measured {doc.get('date', '?')}, hwsim "
            f"{doc.get('hwsim', '?')}")
    if doc.get("threads"):  # LeNet-5's figures at a seed depend on torch's thread count
        said += f", {doc['threads']} torch thread{'s' if doc['threads'] > 1 else ''} per run"
    said += "."
    return [*lines, "", said]


SAMPLE_TRACE = "traces/samples/lenet5-digits-dither"
TRACE_ENTROPY = "benchmarks/results/trace_entropy.json"
TRACE_ENTROPY_COMMAND = f"python scripts/readme_runs.py --trace-entropy {TRACE_ENTROPY}"


def trace_entropy_block(root: Path) -> list[str]:
    """The ``trace-entropy`` block from ``root``'s committed :data:`TRACE_ENTROPY` (empty without it): the line of
    :func:`trace_entropy_line`, a blank line and its source sentence. Rendered from the committed file, not from a
    fresh ``hwsim inspect``: the stored sizes are the sample re-encoded with LZMA, whose output length differs by a
    few bytes between LZMA builds (Debian's Python and a pyenv one give 1.19×–4.51× and 1.20×–4.60×)."""
    f = root / TRACE_ENTROPY
    if not f.exists():
        return []
    doc = json.loads(f.read_text())
    return [*trace_entropy_line(doc["inspect"]), "",
            f"Generated from `{TRACE_ENTROPY}`, made by `{doc['command']}` (`hwsim inspect {SAMPLE_TRACE} --json` "
            f"under Python {doc['python']}; stored sizes re-encode each sample with LZMA, so another LZMA build "
            "gives a few bytes more or less)."]


def write_trace_entropy(root: Path, out: Path) -> dict[str, Any]:
    """Run ``hwsim inspect --json`` on the sample trace and write :data:`TRACE_ENTROPY`'s document to ``out``."""
    import platform

    from hwsim.commands.inspect import inspect_trace  # what `hwsim inspect --json` prints

    doc = {"command": TRACE_ENTROPY_COMMAND, "python": platform.python_version(),
           "inspect": inspect_trace(str(root / SAMPLE_TRACE))}
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    tmp.replace(out)  # write aside, then rename
    return doc


def trace_entropy_line(inspected: Mapping[str, Any]) -> list[str]:
    """Stored size over zeroth-order entropy of a trace's last sample file and of its layers (``hwsim inspect``'s
    ``inspect_trace``: ``summary.size_over_entropy``, per layer ``bits_per_element / entropy_bits_per_element``)."""
    s, layers = inspected["summary"], [r for r in inspected["layers"] if r.get("entropy_bits_per_element")]
    ratios = [r["bits_per_element"] / r["entropy_bits_per_element"] for r in layers]
    stored = sorted({r["output_shape"][0] for r in layers})
    stream = s.get("dither_rng") or "—"
    return [f"`hwsim inspect TRACE` compares each layer's stored bits per element with the zeroth-order entropy of its "
            f"δ̃z mask + levels and input mask. The checked-in sample trace `{SAMPLE_TRACE}` ({s['model']}, "
            f"s = {s['s']:g}, dither stream {stream}, {'/'.join(map(str, stored))} examples stored per sample) keeps "
            f"its last sample (iteration {s['inspected_iteration']}) at {times(s['size_over_entropy'])} that entropy; "
            f"its layers at {times(min(ratios))}–{times(max(ratios))}, the smallest layers' fixed overhead weighing "
            "most."]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write the data of the README's trace-entropy block.")
    ap.add_argument("--trace-entropy", type=Path, required=True, metavar="FILE",
                    help=f"where to write it (the README reads {TRACE_ENTROPY})")
    args = ap.parse_args(argv)
    write_trace_entropy(Path(__file__).resolve().parents[1], args.trace_entropy)
    print(f"wrote {args.trace_entropy}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
