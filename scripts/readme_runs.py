"""README tables about runs (loaded by ``scripts/readme_tables.py``): NSD's noise over depth, the demo's time and
capture's overhead.

``noise_table`` renders ``benchmarks/results/noise_table.json`` (``benchmarks/noise_table.py``); ``demo_time_table``
renders ``benchmarks/results/demo_time.json`` (``benchmarks/bench_demo.py --json``); ``capture_overhead_table``
renders ``benchmarks/results/capture_overhead.json`` (``benchmarks/bench_capture.py --json``).
"""

from __future__ import annotations

from collections.abc import Mapping
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
