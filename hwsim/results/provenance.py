"""What produced a result: trace meta, architecture parameters and overrides, energy table, version, command.

A provenance block is a plain JSON mapping stored in every ``results.json`` (``SimResult.provenance``)
and every ``sweep.json`` (per point, under ``provenance``), and shown on every report page, so a
reader can tell two results apart (e.g. DRAM 16 vs 64 B/cycle) and rebuild them. numpy/torch-free:
it reads a loaded trace's typed records (:class:`~hwsim.trace.format.Trace`, :class:`~hwsim.trace.records.TraceMeta`)
and the architecture's YAML-shaped mapping (``Arch.to_dict()``).

Layout (every key optional for a reader; older files have none)::

    {"trace": {"model", "dataset", "method", "s", "dither_rng" (method dither: counter or sfc64), "k", "epochs", "seed", "batch_size", "iterations",
               "replayed_iterations", "replayed_examples" (the largest replayed batch, in examples:
               a transformer's token rows ÷ meta "tokens_per_example"),
               "replayed_examples_min" (when replayed batches differ), "test_acc", "coverage", "path"},
     "arch": {"name", "file", "hash", "overrides": {dotted.key: value}, "key": {display key: value},
              "energy_source": str},
     "hwsim_version": str, "command": [argv...]}
"""

from __future__ import annotations

import copy
import functools
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwsim._version import __version__

if TYPE_CHECKING:
    from hwsim.arch import Arch
    from hwsim.trace.format import Trace
    from hwsim.trace.records import TraceMeta

# The arch parameters a reader needs to tell two designs apart, as (label, dotted key, unit).
KEY_PARAMETERS: tuple[tuple[str, str, str], ...] = (
    ("dataflow", "dataflow", ""),
    ("PEs", "pe_array.rows×pe_array.cols", ""),
    ("multipliers per PE (F×I)", "pe.mult_f×pe.mult_i", ""),
    ("MAC", "pe.mac", ""),
    ("MAC bits", "pe.mac_bits", "bit"),
    ("accumulator banks", "pe.accumulator_banks", ""),
    ("bank queue depth", "pe.bank_queue_depth", ""),
    ("input buffer", "pe.input_buffer_bytes", "B"),
    ("output buffer", "pe.output_buffer_bytes", "B"),
    ("weight FIFO", "pe.weight_fifo_bytes", "B"),
    ("global buffer", "memory.global_buffer_bytes", "B"),
    ("DRAM bandwidth", "memory.dram_bytes_per_cycle", "B/cycle"),
    ("DRAM compression", "memory.compression", ""),
    ("clock", "clock_ghz", "GHz"),
)

# Energy entries taken from Horowitz (ISSCC 2014, 45 nm); the others are hwsim estimates.
_HOROWITZ_KEYS = ("mult_pj", "add_pj", "fp_mult_pj", "fp_add_pj", "sram_small_pj_per_64b",
                  "sram_medium_pj_per_64b", "sram_large_pj_per_64b", "dram_pj_per_64b")
HOROWITZ_SOURCE = "Horowitz, ISSCC 2014, 45 nm"


def dotted_get(d: Any, key: str) -> Any:
    cur = d
    for part in key.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        elif isinstance(cur, Mapping) and part.isdigit() and int(part) in cur:
            cur = cur[int(part)]
        else:
            return None
    return cur


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (lists and scalars are leaves)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def diff_overrides(params: Mapping[str, Any], base: Mapping[str, Any] | None) -> dict[str, Any]:
    """Dotted keys whose value in ``params`` differs from ``base`` (the architecture file as written)."""
    if base is None:
        return {}
    a, b = flatten(params), flatten(base)
    return {k: a.get(k) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def _num(v: Any) -> str:
    if isinstance(v, Mapping):  # e.g. a per-pass dataflow: "forward: cartesian, backward_data: dz_gather, …"
        return ", ".join(f"{k}: {_num(x)}" for k, x in v.items())
    if isinstance(v, float):
        if v == float("inf"):
            return "∞"
        return f"{v:g}"
    return str(v)


def _bytes(n: float) -> str:
    for scale, unit in ((2**20, "MiB"), (2**10, "KiB")):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n:g} B"


def short_path(path: str | None) -> str:
    """A shipped or repo file from ``arch_configs/`` on; other paths as given."""
    if not path:
        return ""
    text = str(path).replace("\\", "/")
    for anchor in ("arch_configs/", "hwsim/arch/configs/"):
        if anchor in text:
            return "arch_configs/" + text.split(anchor, 1)[1]
    return text


def key_parameters(params: Mapping[str, Any]) -> dict[str, str]:
    """Display label → value with unit, for the parameters present in ``params``."""
    out: dict[str, str] = {}
    for label, key, unit in KEY_PARAMETERS:
        parts = [dotted_get(params, k) for k in key.split("×")]
        if any(p is None for p in parts):
            continue
        if unit == "B" and len(parts) == 1 and isinstance(parts[0], (int, float)):
            out[label] = _bytes(parts[0])
            continue
        text = "×".join(_num(p) for p in parts)
        out[label] = f"{text} {unit}".strip() if unit else text
    from hwsim.arch.policy import memory_policy

    policy = memory_policy(params)
    if policy is not None:
        out["memory policy"] = policy
    return out


def energy_source(params: Mapping[str, Any]) -> str:
    """Which table priced the actions: Horowitz's 45 nm figures, or which entries differ from them."""
    try:
        from hwsim.arch.energy import HOROWITZ_45NM
    except ImportError:  # pragma: no cover - hwsim.arch is always importable
        return "energy table in the architecture file"
    energy = params.get("energy") if isinstance(params, Mapping) else None
    if not isinstance(energy, Mapping):
        return "unknown"
    changed = []
    for k in _HOROWITZ_KEYS:
        v, ref = energy.get(k), HOROWITZ_45NM.get(k)
        if v is None or ref is None:
            continue
        if isinstance(ref, Mapping):
            v = {int(b): float(x) for b, x in dict(v).items()}
            if any(v.get(int(b)) != float(x) for b, x in ref.items() if int(b) in v):
                changed.append(k)
        elif float(v) != float(ref):
            changed.append(k)
    estimates = [k for k in energy if k not in _HOROWITZ_KEYS and k not in ("sram_small_max_bytes",
                                                                            "sram_medium_max_bytes")]
    text = HOROWITZ_SOURCE
    if changed:
        text += f" except {', '.join(changed)} (set in the architecture file)"
    if estimates:
        text += f"; hwsim estimates for {', '.join(estimates)}"
    return text


def arch_provenance(params: Mapping[str, Any], *, name: str | None = None, file: str | None = None,
                    content_hash: str | None = None, base: Mapping[str, Any] | None = None,
                    overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The arch part: name, file, hash, overrides (given, or the difference from ``base``), key parameters."""
    ov = dict(overrides) if overrides is not None else diff_overrides(params, base)
    return {"name": name or params.get("name"), "file": file, "hash": content_hash, "overrides": ov,
            "key": key_parameters(params), "energy_source": energy_source(params)}


def base_params_for(file: str | None) -> dict[str, Any] | None:
    """The architecture file as written (validated, normalised), to diff overrides against; None if unreadable.

    Parsed once per file version (path, size, mtime): a whole-run replay or a sweep asks for it once per
    replayed point, and YAML parsing was a fifth of a small model's replay time."""
    if not file:
        return None
    try:
        st = Path(file).stat()
    except OSError:
        return None
    params = _base_params(str(file), st.st_size, st.st_mtime_ns)
    return copy.deepcopy(params) if params is not None else None


@functools.lru_cache(maxsize=32)
def _base_params(file: str, size: int, mtime_ns: int) -> dict[str, Any] | None:  # size, mtime: cache key only
    if not Path(file).is_file():
        return None
    try:
        from hwsim.arch.loader import arch_from_dict, read_yaml

        return arch_from_dict(read_yaml(Path(file)), source=file).to_dict()
    except (ValueError, OSError):
        return None


def run_provenance(meta: TraceMeta, summary: Mapping[str, Any], *, iterations: int) -> dict[str, Any]:
    """What was trained and how, from a trace's typed meta and summary (``iterations``: recorded iterations)."""
    out = {"model": meta.model, "dataset": meta.dataset, "method": meta.method, "s": meta.s, "k": meta.k,
           "epochs": meta.get("epochs"), "seed": meta.seed, "batch_size": meta.get("batch_size"),
           "iterations": iterations or None, "test_acc": summary.get("test_acc")}
    if meta.method == "dither":  # which random stream drew the dither: traces of one seed differ between streams
        out["dither_rng"] = meta.dither_rng
    cov = meta.coverage if meta.coverage is not None else summary.get("coverage")
    if cov is not None:
        out["coverage"] = cov
    return out


def trace_provenance(trace: Trace, *, replayed: Iterable[int] = (), path: str | None = None) -> dict[str, Any]:
    """The trace part, from a loaded :class:`~hwsim.trace.format.Trace`: its typed meta, summary, iteration
    records, layer table and the batches of the ``replayed`` sampled iterations."""
    replayed = [int(i) for i in replayed]
    batches = [n for n in (trace.sample_batch(i) for i in replayed) if n]
    # the largest layer batch of each replayed iteration; over iterations, the range
    examples, examples_min = (max(batches), min(batches)) if batches else (None, None)
    if examples is None:
        ns = [g.N for g in trace.layers if g.N]
        examples = max(ns) if ns else None
    tokens = trace.meta.get("tokens_per_example")
    if isinstance(tokens, int) and tokens > 1:  # a transformer: its largest GEMM runs over examples × tokens rows
        examples = examples // tokens if examples else examples
        examples_min = examples_min // tokens if examples_min else examples_min
    run = run_provenance(trace.meta, trace.summary, iterations=len(trace.iterations))
    cov = run.pop("coverage", None)
    test_acc = run.pop("test_acc")
    out = {
        **run, "replayed_iterations": replayed, "replayed_examples": examples,
        **({"replayed_examples_min": examples_min} if examples_min not in (None, examples) else {}),
        "test_acc": test_acc, "path": path,
        "layers": {g.name: layer_description(g.to_json()) for g in trace.layers if g.name},
    }
    if cov is not None:
        out["coverage"] = cov
    return out


def layer_description(g: Mapping[str, Any]) -> str:
    """A GEMM's kind and shape for figure labels: 'conv 6→16 5×5 @14×14', 'linear 400→120',
    'conv1d 8→16 k3 @32', 'convT 16→8 4×4 @7×7', 'matmul 17×12·12×17 ×256' (rows × inner · inner × cols,
    times the independent products, e.g. batch × heads of attention's QKᵀ)."""
    kind = str(g.get("kind") or "")
    c, k, groups = g.get("C"), g.get("K"), g.get("groups") or 1
    gtext = f" g{groups}" if groups != 1 else ""
    if kind == "linear":
        return f"linear {c}→{k}"
    if kind in ("conv2d", "conv_transpose2d"):
        name = "conv" if kind == "conv2d" else "convT"
        return f"{name} {c}→{k} {g.get('R')}×{g.get('S')}{gtext} @{g.get('H')}×{g.get('W')}"
    if kind in ("conv1d", "conv_transpose1d"):
        name = "conv1d" if kind == "conv1d" else "convT1d"
        return f"{name} {c}→{k} k{g.get('S')}{gtext} @{g.get('W')}"
    n = g.get("N")
    if kind == "matmul" and all(isinstance(x, int) and x > 0 for x in (n, c, k, groups)):
        text = f"matmul {n}×{c // groups}·{c // groups}×{k // groups}"
        return text + (f" ×{groups}" if groups != 1 else "")
    return f"{kind} {c}→{k}".strip() if c is not None and k is not None else kind


def hwsim_version() -> str:
    return __version__


def command_line() -> list[str]:
    argv = list(sys.argv)
    if argv and argv[0].endswith(("__main__.py", "/hwsim")):
        argv[0] = "hwsim"
    return argv


def build(*, trace: Mapping[str, Any] | None = None, arch: Mapping[str, Any] | None = None,
          extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"trace": dict(trace or {}), "arch": dict(arch or {}), "hwsim_version": hwsim_version(),
                           "command": command_line()}
    out.update(extra or {})
    return out


def for_simulation(trace: Trace, arch: Arch, *, iteration: int | Iterable[int],
                   overrides: Mapping[str, Any] | None = None, training: bool = True,
                   base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Provenance of one ``simulate`` call; ``iteration``: the replayed iteration, or several for a whole-run
    replay. The overrides are ``overrides`` if given, else the difference from ``base`` (the architecture file as
    written, validated: ``to_dict()``), which is read from ``arch.source`` when not given."""
    params = arch.to_dict()
    if overrides is None and base is None:
        base = base_params_for(arch.source)
    a = arch_provenance(params, name=arch.name, file=arch.source,
                        content_hash=arch.content_hash(), base=base, overrides=overrides)
    replayed = [iteration] if isinstance(iteration, int) else list(iteration)
    t = trace_provenance(trace, replayed=replayed, path=str(trace.path))
    return build(trace=t, arch=a, extra={"mode": "training iteration" if training else "inference (forward)"})


def coverage_note(prov: Mapping[str, Any] | None) -> str | None:
    """'covers 93 % of forward MACs (missed: attn.matmul)' when a trace does not cover the whole model."""
    cov = ((prov or {}).get("trace") or {}).get("coverage")
    if not isinstance(cov, Mapping):
        return None
    fr = {k: cov.get(k) for k in ("forward", "backward_data", "backward_weight") if isinstance(cov.get(k), (int, float))}
    if not fr or all(v >= 1.0 for v in fr.values()):
        return None
    parts = ", ".join(f"{k.replace('_', '-')} {v:.0%}" for k, v in fr.items())
    missed = cov.get("missed") or []
    return f"covers {parts} of the model's MACs" + (f" (missed: {', '.join(map(str, missed))})" if missed else "")


def override_label(prov: Mapping[str, Any] | None) -> str:
    """Short text of the overrides, e.g. 'dram_bytes_per_cycle=64, pe_array.rows=16' ('' when none)."""
    ov = ((prov or {}).get("arch") or {}).get("overrides") or {}
    return ", ".join(f"{_short_key(k)}={_num(v)}" for k, v in ov.items())


def _short_key(key: str) -> str:
    parts = key.split(".")
    return parts[-1] if parts[0] in ("memory", "pe") else key


def describe_trace(prov: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(label, value) lines of the trace part: what was trained, how, and which iteration was replayed."""
    t = (prov or {}).get("trace") or {}
    lines: list[tuple[str, str]] = []
    run = []
    for label, key in (("model", "model"), ("dataset", "dataset"), ("method", "method")):
        if t.get(key) is not None:
            run.append(f"{label} {t[key]}")
    if t.get("s") is not None:
        run.append(f"s = {_num(t['s'])}")
    if t.get("dither_rng") is not None:
        run.append(f"dither stream {t['dither_rng']}")
    if t.get("k") is not None:
        run.append(f"k = {t['k']}")
    for label, key in (("epochs", "epochs"), ("seed", "seed"), ("batch", "batch_size")):
        if t.get(key) is not None:
            run.append(f"{label} {t[key]}")
    if t.get("test_acc") is not None:
        run.append(f"test accuracy {float(t['test_acc']):.2%}")
    if run:
        lines.append(("trace", ", ".join(run)))
    rep = t.get("replayed_iterations") or []
    if rep:
        what = (prov or {}).get("mode") or "iteration"
        n, n0 = t.get("replayed_examples"), t.get("replayed_examples_min")
        batch = f", batches of {n0}–{n}" if n and n0 else (f", batch of {n}" if n else "")
        lines.append(("replayed", f"{what} {', '.join(map(str, rep))}" + (f" of {t['iterations']}" if t.get(
            "iterations") else "") + batch))
    cov = coverage_note(prov)
    if cov:
        lines.append(("coverage", cov))
    return lines


def describe_arch(prov: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(label, value) lines of the arch part: file and hash, overrides, key parameters, energy table."""
    a = (prov or {}).get("arch") or {}
    if not a:
        return []
    head = f"{a.get('name')}"
    if a.get("file"):
        head += f" ({short_path(a['file'])})"
    if a.get("hash"):
        head += f", hash {str(a['hash'])[:12]}"
    lines = [("architecture", head), ("overrides", override_label(prov) or "none")]
    if a.get("key"):
        lines.append(("parameters", "; ".join(f"{k} {v}" for k, v in a["key"].items())))
    if a.get("energy_source"):
        lines.append(("energy table", str(a["energy_source"])))
    return lines


def describe(prov: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(label, value) lines for a page: what was replayed, on what, with which tables, by which command."""
    if not prov:
        return []
    lines = [*describe_trace(prov), *describe_arch(prov)]
    if prov.get("hwsim_version"):
        lines.append(("hwsim", str(prov["hwsim_version"])))
    if prov.get("command"):
        lines.append(("command", " ".join(str(x) for x in prov["command"])))
    return lines


__all__ = ["KEY_PARAMETERS", "arch_provenance", "build", "coverage_note", "describe", "diff_overrides",
           "describe_arch", "describe_trace", "for_simulation", "key_parameters", "override_label", "run_provenance",
           "trace_provenance"]
