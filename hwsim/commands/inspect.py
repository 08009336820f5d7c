"""``hwsim inspect TRACE``: per-layer shapes, δ̃z density and bit-width, and how close the storage is to entropy."""

from __future__ import annotations

import argparse
import json
from typing import Any

from hwsim.commands.args import int_range

HELP = "per-layer table of a trace: shape, δ̃z density, max bits, bytes on disk, bits/element vs entropy"
DESCRIPTION = (
    "Validate a trace (version, shapes, checksums) and print one row per layer: geometry, δ̃z density "
    "(fraction of non-zero levels; mean over all recorded iterations, and in the inspected sample), worst-case "
    "bit-width, input-activation density, bytes on disk and bits per stored element against the zeroth-order "
    "entropy of the δ̃z mask + non-zero levels and of the input mask. Per-layer bytes are the layer's arrays "
    "compressed alone (the file compresses all layers together; the summary uses the real file size). Traces "
    "that record NSD's noise add three columns: noise = ‖δ̃z − δz‖/‖δz‖ per layer, growth = ‖δz‖ over the layer "
    "above's (measured) and compound = the estimated noise gain of the gradient reaching the layer "
    "(Π √(1 + noise²) over the layers above). The header names the model, method, s and, for a dithered trace, "
    "its dither stream (counter or sfc64: meta.dither_rng)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace", metavar="TRACE", help="trace directory")
    parser.add_argument("--iteration", type=int_range(0), default=None, help="sampled iteration to inspect (default: last)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def inspect_trace(path: str, *, iteration: int | None = None) -> dict[str, Any]:
    """The numbers ``hwsim inspect`` prints, as a JSON-ready dict."""
    import numpy as np

    from hwsim.trace import format as fmt
    from hwsim.trace.gemm_kinds import plain_dz
    from hwsim.trace.noise import compound_gain, norm_growth
    from hwsim.trace.writer import encode_sample

    tr = fmt.load(path)
    its = tr.iterations
    per_layer: dict[str, list[fmt.LayerStats]] = {}
    for rec in its:
        for nm, st in rec.layers.items():
            per_layer.setdefault(nm, []).append(st)
    sample = tr.sample(iteration) if tr.sampled_iterations else {}
    it_used = (iteration if iteration is not None else tr.sampled_iterations[-1]) if sample else None
    sample_bytes = tr.sample_entry_bytes(it_used)
    layers, tot_elems, tot_entropy = [], 0, 0.0
    noise = _noise_columns([g.name for g in tr.layers], its, compound_gain, norm_growth)
    # δ̃z summaries per group: the GEMMs whose δz the method quantized, and those capture left plain (issue 20)
    groups = {True: {"nnz": 0, "numel": 0, "dens": [], "bits": 0, "n": 0},
              False: {"nnz": 0, "numel": 0, "dens": [], "bits": 0, "n": 0}}
    for g in tr.layers:
        stats = per_layer.get(g.name, [])
        numel = int(np.prod(g.output_shape)) // g.N * (g.batch_size or g.N)
        dens = [s.density for s in stats if s.density is not None]
        plain = plain_dz(g, tr.meta.method, tr.meta.dither_attention)
        row: dict[str, Any] = {
            "name": g.name, "kind": g.kind, "input_shape": list(g.input_shape), "output_shape": list(g.output_shape),
            "weight_shape": list(g.weight_shape), "macs": g.macs, "groups": g.groups,
            "stride": list(g.stride), "padding": list(g.padding),
            "density": float(np.mean(dens)) if dens else None,
            "max_bits": max((s.max_bits for s in stats if s.max_bits is not None), default=0),
            "iterations": len(stats), "plain_dz": plain, **noise.get(g.name, {}),
        }
        grp = groups[plain]
        grp["nnz"] += int(round(sum(dens) * numel))
        grp["numel"] += numel * len(dens)
        grp["dens"] += dens
        grp["bits"] = max(grp["bits"], row["max_bits"])
        grp["n"] += 1
        s = sample.get(g.name)
        if s is not None:
            dz_mask = s.dz_levels != 0
            h = fmt.entropy_bits(dz_mask, s.dz_levels[dz_mask]) + fmt.entropy_bits(s.a_mask, s.a_mask[s.a_mask])
            elems = s.dz_levels.size + s.a_mask.size
            if s.w_mask is not None:
                h += fmt.entropy_bits(s.w_mask, s.w_mask[s.w_mask])
                elems += s.w_mask.size
            nbytes = len(encode_sample([s])[0])
            row.update({"sample_iteration": it_used, "sample_density": s.dz_density, "sample_max_bits": s.max_bits,
                        "delta": s.delta, "a_density": s.a_density, "w_density": s.w_density,
                        "bytes": nbytes, "elements": elems, "bits_per_element": 8 * nbytes / elems,
                        "entropy_bits_per_element": h / elems})
            tot_elems += elems
            tot_entropy += h
        layers.append(row)
    if not groups[False]["n"]:  # nothing quantized apart from plain GEMMs: one summary of them all
        groups = {False: groups[True], True: None}

    def dens_bits(grp: dict[str, Any]) -> dict[str, Any]:
        return {"density": grp["nnz"] / grp["numel"] if grp["numel"] else None,
                "mean_density": float(np.mean(grp["dens"])) if grp["dens"] else None, "max_bits": grp["bits"]}

    plain_grp = groups[True]
    summary = {
        "trace": str(tr.path), "model": tr.meta.model, "dataset": tr.meta.dataset,
        "method": tr.meta.method, "s": tr.meta.s, "k": tr.meta.k,
        "dither_rng": tr.meta.dither_rng if tr.meta.method == "dither" else None,
        "complete": tr.complete, "status": tr.status, "iterations": len(its),
        "stats_every": tr.meta.stats_every,
        "sampled_iterations": tr.sampled_iterations, "inspected_iteration": it_used,
        # over the GEMMs whose δz the method quantized (all of them for none/synthetic, or when nothing stayed plain)
        **dens_bits(groups[False]), "gemms": groups[False]["n"],
        # GEMMs left plain (attention products without dither_attention): None when there are none
        "plain": {"layers": plain_grp["n"], **dens_bits(plain_grp)} if plain_grp and plain_grp["n"] else None,
        "sample_bytes": sample_bytes, "total_sample_bytes": tr.sample_bytes(),
        "manifest_bytes": (tr.path / fmt.MANIFEST).stat().st_size,
        "iteration_log_bytes": (tr.path / fmt.ITERATION_LOG).stat().st_size if tr.version >= 3 else 0,
        "bits_per_element": 8 * sample_bytes / tot_elems if tot_elems else None,
        "entropy_bits_per_element": tot_entropy / tot_elems if tot_elems else None,
        **{k: v for k, v in tr.summary.items() if k in ("test_acc", "train_loss")},
        "coverage": tr.meta.coverage,
        "s_layers": tr.meta.get("s_layers"),
        "compound_max": max((r["compound"] for r in noise.values() if r.get("compound") is not None), default=None),
        "nongemm": dict(tr.meta.nongemm) if tr.meta.nongemm is not None else None,
    }
    if summary["bits_per_element"] and summary["entropy_bits_per_element"]:
        summary["size_over_entropy"] = summary["bits_per_element"] / summary["entropy_bits_per_element"]
    return {"layers": layers, "summary": summary}


def _noise_columns(order: list[str], its: Any, compound_gain: Any, norm_growth: Any) -> dict[str, dict[str, Any]]:
    """Per layer, means over the iterations with noise statistics (:mod:`hwsim.trace.noise`): ``noise``
    (‖δ̃z − δz‖/‖δz‖), ``growth`` (‖δz‖ over the layer above's, measured) and ``compound`` (the estimated
    noise gain of the gradient reaching the layer). Empty for traces without them (synthetic, plain, older)."""
    acc: dict[str, dict[str, list[float]]] = {}
    for rec in its:
        if not any(st.noise is not None for st in rec.layers.values()):
            continue
        comp, grow = compound_gain(order, rec.layers), norm_growth(order, rec.layers)
        for nm in order:
            st = rec.layers.get(nm)
            a = acc.setdefault(nm, {"noise": [], "growth": [], "compound": []})
            if st is not None and st.noise is not None:
                a["noise"].append(st.noise)
            if grow.get(nm) is not None:
                a["growth"].append(grow[nm])
            a["compound"].append(comp[nm])
    return {nm: {k: (sum(v) / len(v) if v else None) for k, v in a.items()} for nm, a in acc.items()}


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def layer_table(layers: list[dict], method: str | None = None) -> list[str]:
    """The per-layer table of ``hwsim inspect``: header, rule, one row per layer, rule. Full layer names (the
    name and kind columns are as wide as the longest), so layers whose names share a long prefix stay distinct.
    A ``δz`` column (``method`` or ``plain``) when some rows have ``plain_dz`` (issue 20)."""
    wn = max([18] + [len(r["name"]) for r in layers])
    wk = max([6] + [len(r["kind"]) for r in layers])
    shapes = ["×".join(map(str, r["output_shape"])) for r in layers]
    ws = max([18] + [len(x) for x in shapes])
    # δz column (what was done to the layer's δz) only when some GEMMs were left plain and others quantized
    dz = ([("plain" if r.get("plain_dz") else method) for r in layers]
          if method and any(r.get("plain_dz") for r in layers) else None)
    wd = max([2] + [len(x) for x in dz]) if dz else 0
    dz_head = f"{'δz':{wd}s} " if dz else ""
    noisy = any(r.get("noise") is not None for r in layers)  # noise columns: captures with noise statistics
    noise_head = f" {'noise':>6s} {'growth':>7s} {'compound':>8s}" if noisy else ""
    head = (f"{'layer':{wn}s} {'kind':{wk}s} {dz_head}{'output shape':>{ws}s} {'density':>8s} {'max bits':>8s} "
            f"{'a dens':>7s} {'bytes':>9s} {'bits/el':>8s} {'entropy':>8s}{noise_head}")
    lines = [head, "-" * len(head)]
    for i, (r, shape) in enumerate(zip(layers, shapes, strict=True)):
        dz_col = f"{dz[i]:{wd}s} " if dz else ""
        lines.append(f"{r['name']:{wn}s} {r['kind']:{wk}s} {dz_col}{shape:>{ws}s} "
                     f"{_fmt(r['density'], '.4f'):>8s} {r['max_bits']:>8d} {_fmt(r.get('a_density'), '.3f'):>7s} "
                     f"{_fmt(r.get('bytes'), 'd'):>9s} {_fmt(r.get('bits_per_element'), '.3f'):>8s} "
                     f"{_fmt(r.get('entropy_bits_per_element'), '.3f'):>8s}"
                     + (f" {_fmt(r.get('noise'), '.2f'):>6s} {_fmt(r.get('growth'), '.3g'):>7s} "
                        f"{_fmt(r.get('compound'), '.3g'):>8s}" if noisy else ""))
    lines.append("-" * len(head))
    return lines


def run(args: argparse.Namespace) -> int:
    from hwsim.trace import schema as fmt
    from hwsim.trace.nongemm import coverage_line as nongemm_coverage_line

    info = inspect_trace(args.trace, iteration=args.iteration)
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    s = info["summary"]
    print(f"{s['trace']}: model {s['model']}, dataset {s['dataset']}, method {s['method']}"
          f"{', s=' + str(s['s']) if s['s'] is not None else ''}"
          f"{', dither stream ' + s['dither_rng'] if s['dither_rng'] else ''}, {s['iterations']} iterations "
          f"{'(statistics of every ' + str(s['stats_every']) + 'th and the sampled ones) ' if s['stats_every'] > 1 else ''}"
          f"({'complete' if s['complete'] else s['status']}), inspected sample: iteration {s['inspected_iteration']}")
    for line in layer_table(info["layers"], s["method"]):
        print(line)
    acc = f", test accuracy {s['test_acc']:.2%}" if s.get("test_acc") is not None else ""
    p = s["plain"]
    which = f" — the {s['gemms']} {'dithered' if s['method'] == 'dither' else s['method']} GEMMs" if p else ""
    print(f"δ̃z density {_fmt(s['density'], '.4f')} (element-weighted; mean over layers×iterations "
          f"{_fmt(s['mean_density'], '.4f')}), max {s['max_bits']} bits{which}{acc}")
    if p:
        print(f"plain δz of {p['layers']} GEMMs not dithered (attention's activation×activation products; "
              f"dither_attention=True / --dither-attention dithers them): density {_fmt(p['density'], '.4f')} (mean "
              f"{_fmt(p['mean_density'], '.4f')}), max {p['max_bits']} bits (float δz binned at Δ)")
    if s.get("compound_max") is not None:
        print(f"noise: ‖δ̃z − δz‖/‖δz‖ per layer; growth = ‖δz‖ over the layer above's (measured); compound = the "
              f"estimated noise gain of the gradient reaching the layer (Π √(1+noise²) above it; max "
              f"{s['compound_max']:.3g}×, hwsim/trace/noise.py){'; s_layers ' + str(s['s_layers']) if s['s_layers'] else ''}")
    print(fmt.coverage_line(s["coverage"]))
    print(nongemm_coverage_line(s["nongemm"]))
    print(f"sample file {s['sample_bytes']} B: {_fmt(s['bits_per_element'], '.3f')} bits/element vs entropy "
          f"{_fmt(s['entropy_bits_per_element'], '.3f')} ({_fmt(s.get('size_over_entropy'), '.2f')}×); "
          f"all samples {s['total_sample_bytes']} B, manifest {s['manifest_bytes']} B, "
          f"iterations.jsonl {s['iteration_log_bytes']} B")
    return 0
