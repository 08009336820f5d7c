"""What a report is made of: results files, sweep directories, trace directories and design comparisons.

The report reads results through :mod:`hwsim.results` (never the simulator) and traces through
:func:`hwsim.trace.format.load` — their ``manifest.json`` and per-iteration records (δ̃z density and
bit-width statistics), never the sample arrays — and design comparisons (``"format": "hwsim-designs"``,
:mod:`hwsim.results.designs`) as the JSON they are — so a report
can be rebuilt on a laptop that has the JSON files but neither the trace arrays nor torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwsim._io import read_regular
from hwsim.results import ResultsError, SimResult
from hwsim.results import provenance as prov_mod
from hwsim.results.designs import FORMAT as DESIGNS_FORMAT
from hwsim.results.designs import check_comparison
from hwsim.trace.records import IterationRecord, TraceMeta

MAX_JSON_BYTES = 256 << 20  # one results file or sweep summary
_SWEEP_NUMERIC = ("cycles_", "energy_pj_", "speedup_", "energy_ratio_", "utilization_")


class ReportInputError(ValueError):
    """A path given to the report is not a results file, a sweep directory or a trace directory."""


@dataclass(frozen=True)
class ResultEntry:
    label: str
    source: Path
    result: SimResult
    layers: Mapping[str, str] = field(default_factory=dict)  # name -> kind and shape

    @property
    def model(self) -> str:
        return str(self.result.trace.get("model") or "model")

    @property
    def method(self) -> str:
        return str(self.result.trace.get("method") or "?")

    @property
    def arch_name(self) -> str:
        return str(self.result.arch.get("name") or "arch")

    @property
    def provenance(self) -> dict[str, Any]:
        """The result's provenance block; for older files, what can be rebuilt from its trace/arch fields."""
        return result_provenance(self.result)

    @property
    def overrides(self) -> str:
        return prov_mod.override_label(self.provenance)

    def layer_label(self, name: str, *, limit: int = 14) -> str:
        """Short module name plus kind and shape on a second line: 'features.3\nconv 6→16 5×5 @14×14'."""
        from hwsim.report.style import short_layer

        desc = self.layers.get(name)
        return f"{short_layer(name, limit)}\n{desc}" if desc else short_layer(name, limit)

    @property
    def batch_text(self) -> str:
        """'training iteration 229 of 230, batch 64' (or what is known of it)."""
        t = self.provenance.get("trace") or {}
        mode = self.provenance.get("mode") or ("training iteration" if self.result.run.get("training", True)
                                               else "inference")
        rep = [x for x in (t.get("replayed_iterations") or [self.result.trace.get("iteration")]) if x is not None]
        if len(rep) > 3:  # a whole-run replay: how many, not which (the provenance block lists them)
            total = f" of {t['iterations']}" if t.get("iterations") else ""
            text = f"whole training run: {len(rep)} replayed iterations{total} (left-hold estimator)"
        else:
            text = f"{mode} {', '.join(str(x) for x in rep)}".strip()
            if t.get("iterations"):
                text += f" of {t['iterations']}"
        n, n0 = t.get("replayed_examples"), t.get("replayed_examples_min")
        return text + (f", batches {n0}–{n}" if n and n0 else (f", batch {n}" if n else ""))


def result_provenance(r: SimResult) -> dict[str, Any]:
    if r.provenance:
        return dict(r.provenance)
    params = r.arch.get("params") or {}
    arch = prov_mod.arch_provenance(params, name=r.arch.get("name"), file=r.arch.get("file"),
                                    content_hash=r.arch.get("hash"), overrides=None, base=None) if params else {}
    if arch:
        arch["overrides"] = {}
        arch["note"] = "overrides unknown (results written before provenance was recorded)"
    t = r.trace
    trace = {k: t.get(k) for k in ("model", "dataset", "method", "s", "path")}
    trace["replayed_iterations"] = [t.get("iteration")] if t.get("iteration") is not None else []
    return {"trace": trace, "arch": arch, "hwsim_version": r.hwsim_version}


@dataclass(frozen=True)
class SweepEntry:
    label: str
    source: Path
    parameters: tuple[str, ...]
    rows: tuple[Mapping[str, Any], ...]
    spec: Mapping[str, Any]
    provenance: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TraceEntry:
    label: str
    source: Path
    meta: TraceMeta
    iterations: tuple[IterationRecord, ...]
    layer_order: tuple[str, ...]
    summary: Mapping[str, Any] = field(default_factory=dict)
    layers: Mapping[str, str] = field(default_factory=dict)  # name -> kind and shape
    plain: frozenset[str] = frozenset()  # GEMMs whose δz capture left plain (gemm_kinds.plain_dz)

    @property
    def method(self) -> str:
        return str(self.meta.method or "?")

    @property
    def model(self) -> str:
        return str(self.meta.model or self.label)

    @property
    def has_levels(self) -> bool:
        """False for method 'none': float δz has no level bit-width (its statistics are binned at Δ only)."""
        return self.method not in ("none", "?")


@dataclass(frozen=True)
class DesignsEntry:
    """A design comparison (:func:`hwsim.results.designs.comparison`): designs against equal-area dense arrays."""

    source: Path
    doc: Mapping[str, Any]


@dataclass(frozen=True)
class ReportInputs:
    results: tuple[ResultEntry, ...] = ()
    sweeps: tuple[SweepEntry, ...] = ()
    traces: tuple[TraceEntry, ...] = ()
    sources: tuple[str, ...] = field(default_factory=tuple)
    designs: tuple[DesignsEntry, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.results or self.sweeps or self.traces or self.designs)


def load_inputs(paths: Iterable[str | os.PathLike]) -> ReportInputs:
    """Classify and load every path; a directory of results files contributes each of them."""
    results: list[ResultEntry] = []
    sweeps: list[SweepEntry] = []
    traces: list[TraceEntry] = []
    designs: list[DesignsEntry] = []
    sources = []
    for raw in paths:
        p = Path(raw)
        sources.append(str(p))
        if not p.exists():
            raise ReportInputError(f"{p}: no such file or directory")
        if p.is_dir():
            if (p / "sweep.json").exists():
                sweeps.append(_load_sweep(p / "sweep.json"))
            elif (p / "manifest.json").exists():
                traces.append(_load_trace(p))
            elif (p / "results.json").exists():
                results.append(_load_result(p / "results.json"))
            else:
                files = sorted(p.glob("*.json"))
                if not files:
                    raise ReportInputError(f"{p}: holds no sweep.json, manifest.json or *.json results; give "
                                           "results.json files, sweep output directories or trace directories")
                results.extend(_load_result(f) for f in files)
        elif p.suffix == ".json":
            doc = _read_json(p)
            if isinstance(doc, Mapping) and "rows" in doc and "sweep" in doc:
                sweeps.append(_load_sweep(p, doc=doc))
            elif isinstance(doc, Mapping) and doc.get("format") == "hwsim-trace":
                traces.append(_load_trace(p.parent))
            elif isinstance(doc, Mapping) and doc.get("format") == DESIGNS_FORMAT:
                try:
                    designs.append(DesignsEntry(source=p, doc=check_comparison(doc, str(p))))
                except ResultsError as e:
                    raise ReportInputError(str(e)) from None
            else:
                results.append(_load_result(p))
        else:
            raise ReportInputError(f"{p}: not a .json results file or a directory")
    return ReportInputs(results=tuple(_unique_labels(results)), sweeps=tuple(sweeps), traces=tuple(traces),
                        sources=tuple(sources), designs=tuple(designs))


def _read_json(p: Path) -> Any:
    """A JSON document from a regular file of bounded size (a FIFO or a device is refused unread)."""
    data = read_regular(p, MAX_JSON_BYTES, "JSON input", ReportInputError)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ReportInputError(f"{p}: not UTF-8 text (byte offset {e.start}); not an hwsim JSON file") from None
    except json.JSONDecodeError as e:
        raise ReportInputError(f"{p}: not valid JSON ({e})") from None
    except RecursionError:
        raise ReportInputError(f"{p}: JSON nested too deeply; not an hwsim JSON file") from None


def _num_ok(v: Any, *, nullable: bool = False) -> bool:
    if v is None:
        return nullable
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0


def _load_result(p: Path) -> ResultEntry:
    d = _read_json(p)  # validated once, by SimResult.from_json (errors name the file and field)
    try:
        r = SimResult.from_json(d, where=str(p))
    except ResultsError as e:
        raise ReportInputError(str(e)) from None
    except (TypeError, KeyError, ValueError, AttributeError) as e:
        raise ReportInputError(f"{p}: malformed results file ({type(e).__name__}: {e})") from None
    t = r.trace
    label = " ".join(str(x) for x in (t.get("model"), t.get("method")) if x) or p.stem
    ov = prov_mod.override_label(result_provenance(r))
    label = f"{label} @ {r.arch.get('name') or 'arch'}" + (f" [{ov}]" if ov else "")
    return ResultEntry(label=label, source=p, result=r, layers=_layer_descriptions(r))


def _layer_descriptions(r: SimResult) -> dict[str, str]:
    """Kind and shape per layer: from the provenance, else from the trace if it is still there (and valid)."""
    from hwsim.trace.format import load  # numpy only; validates the manifest, reads no sample

    known = (r.provenance.get("trace") or {}).get("layers") if r.provenance else None
    if known:
        return dict(known)
    path = r.trace.get("path")
    if not path:
        return {}
    try:
        tr = load(str(path), verify=False)
    except (OSError, ValueError):  # TraceError is a ValueError: the trace moved or changed; no descriptions
        return {}
    return {g.name: prov_mod.layer_description(g.to_json()) for g in tr.layers}


def _unique_labels(entries: list[ResultEntry]) -> list[ResultEntry]:
    counts: dict[str, int] = {}
    for e in entries:
        counts[e.label] = counts.get(e.label, 0) + 1
    out = []
    for e in entries:
        if counts[e.label] > 1:
            e = ResultEntry(label=f"{e.label} [{e.source.parent.name}/{e.source.stem}]", source=e.source,
                            result=e.result, layers=e.layers)
        out.append(e)
    return out


def _load_sweep(p: Path, doc: Any = None) -> SweepEntry:
    doc = _read_json(p) if doc is None else doc
    if not isinstance(doc, Mapping):
        raise ReportInputError(f"{p}: top level must be a JSON object (an 'hwsim sweep' summary)")
    for key in ("rows", "sweep", "parameters"):
        if key not in doc:
            raise ReportInputError(f"{p}: field {key!r} is missing; is this an 'hwsim sweep' summary?")
    spec, params, rows = doc["sweep"], doc["parameters"], doc["rows"]
    if not isinstance(spec, Mapping):
        raise ReportInputError(f"{p}: field 'sweep' must be an object, got {type(spec).__name__}")
    if not isinstance(params, list) or not all(isinstance(x, str) for x in params):
        raise ReportInputError(f"{p}: field 'parameters' must be a list of key paths (strings), got {params!r}"[:300])
    if not isinstance(rows, list):
        raise ReportInputError(f"{p}: field 'rows' must be a list of objects, got {type(rows).__name__}")
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ReportInputError(f"{p}: field 'rows[{i}]' must be an object, got {type(row).__name__}")
        for k, v in row.items():
            if str(k).startswith(_SWEEP_NUMERIC) and not _num_ok(v, nullable=True):
                raise ReportInputError(f"{p}: field 'rows[{i}].{k}': {v!r} is not allowed; allowed: a number >= 0 "
                                       "or null")
    return SweepEntry(label=str(spec.get("name") or p.parent.name), source=p.parent,
                      parameters=tuple(doc["parameters"]), rows=tuple(doc["rows"]), spec=spec,
                      provenance=dict(doc.get("provenance") or {}))


def _load_trace(p: Path) -> TraceEntry:
    from hwsim.trace.format import TraceError, load  # numpy only; validates the manifest, reads no sample
    from hwsim.trace.gemm_kinds import plain_dz

    try:
        tr = load(p, verify=False)
        its = tr.iterations
    except TraceError as e:
        raise ReportInputError(str(e)) from None
    meta = tr.meta
    order = [g.name for g in tr.layers]
    for it in its:
        for name in it.layers:
            if name not in order:
                order.append(name)
    method = meta.method
    extra = f" s={meta.s:g}" if method == "dither" and meta.s is not None else ""
    extra += f" k={meta.k}" if method == "meprop" and meta.k is not None else ""
    label = " ".join(str(x) for x in (meta.model, method) if x) + extra
    layers = {g.name: prov_mod.layer_description(g.to_json()) for g in tr.layers}
    plain = frozenset(g.name for g in tr.layers if plain_dz(g, meta.method, meta.dither_attention))
    return TraceEntry(label=label or p.name, source=p, meta=meta, iterations=its, layer_order=tuple(order),
                      summary=dict(tr.summary), layers=layers, plain=plain)
