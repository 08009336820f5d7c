"""Sweep files: YAML (version 1) → a validated, fully expanded :class:`SweepSpec`.

A sweep is "every architecture config × every trace". Configs are overrides (dotted key paths,
exactly as :func:`hwsim.arch.load_arch` takes them) of one base architecture, given either as a
cartesian ``grid:`` or as an explicit ``list:``. Expansion and validation happen here, up front,
so that a typo in the 40th point fails in the first second (naming the key and the allowed ones)
instead of after 39 simulations. Example::

    version: 1
    name: demo
    arch: scnn                       # name in arch_configs/ or a YAML path
    grid:                            # cartesian product of the value lists
      pe_array.rows,pe_array.cols: [4, 8, 16]   # comma-joined keys move together (8 → 8×8)
      pe.mac_bits: [8, 16]
    traces:
      - traces/lenet5_dither         # a captured trace directory
      - synthetic: {model: lenet5, density: [0.1, 0.5, 1.0]}   # lists expand into several traces
    seeds: [0]
    iteration: null                  # null = the last sampled iteration of each trace with a full mini-batch

Relative paths are resolved against the current directory first, then the sweep file's directory.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwsim._yaml import YAMLInputError, did_you_mean, load_file

SWEEP_VERSION = 1
# Points (configs × traces × seeds) a sweep may have unless the caller raises the bound knowingly
# (``hwsim sweep --max-points N``); counted before anything is expanded.
MAX_POINTS = 10_000
_TOP_KEYS = ("version", "name", "description", "arch", "grid", "list", "traces", "seeds", "iteration")
_SYNTH_KEYS = ("model", "scalesim_csv", "density", "w_density", "a_density", "dz_density", "per_layer", "batch",
               "seed", "level_p", "max_level", "operand_bits", "dense_first_input", "scalesim_conventions")
_SYNTH_LISTABLE = ("density", "w_density", "a_density", "dz_density", "batch", "seed")


class SweepError(ValueError):
    """A sweep file is invalid. The message names the file, the field and what is allowed."""


@dataclass(frozen=True)
class Config:
    """One architecture point: the base arch plus these overrides (dotted key → value)."""

    index: int
    overrides: Mapping[str, Any]

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.overrides.items()) or "base"


@dataclass(frozen=True)
class TraceSpec:
    """One trace of the sweep: an existing directory, or a synthetic spec generated on demand."""

    label: str
    path: Path | None = None
    synthetic: Mapping[str, Any] | None = None
    iteration: int | None = None

    @property
    def is_synthetic(self) -> bool:
        return self.synthetic is not None


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: base architecture, expanded configs, traces, seeds.

    ``parameters`` lists the swept override keys in file order (a comma-joined group such as
    ``pe_array.rows,pe_array.cols`` contributes each key); reports plot against them.
    """

    name: str
    source: Path | None
    arch: str
    mode: str
    parameters: tuple[str, ...]
    configs: tuple[Config, ...]
    traces: tuple[TraceSpec, ...]
    seeds: tuple[int, ...] = (0,)
    iteration: int | None = None
    description: str = ""

    @property
    def num_points(self) -> int:
        return len(self.configs) * len(self.traces) * len(self.seeds)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": SWEEP_VERSION,
            "name": self.name,
            "source": str(self.source) if self.source else None,
            "description": self.description,
            "arch": self.arch,
            "mode": self.mode,
            "parameters": list(self.parameters),
            "configs": [{"index": c.index, "overrides": dict(c.overrides)} for c in self.configs],
            "traces": [
                {"label": t.label, "path": str(t.path) if t.path else None,
                 "synthetic": dict(t.synthetic) if t.synthetic else None, "iteration": t.iteration}
                for t in self.traces
            ],
            "seeds": list(self.seeds),
            "iteration": self.iteration,
        }


# ----------------------------------------------------------------------------- loading


def load_sweep(path: str | os.PathLike, *, validate_arch: bool = True, max_points: int = MAX_POINTS) -> SweepSpec:
    """Read, expand and validate a sweep YAML file.

    ``validate_arch`` runs every config through ``load_arch(base, overrides)`` so an override key
    the architecture schema lacks (or an out-of-range value) fails here, naming the point.
    ``max_points`` bounds configs × traces × seeds, computed before anything is expanded.
    """
    src = Path(path)
    try:
        doc = load_file(src, what="sweep file")
    except YAMLInputError as e:
        raise SweepError(str(e)) from None
    return parse_sweep(doc, source=src, validate_arch=validate_arch, max_points=max_points)


def parse_sweep(doc: Any, *, source: Path | None = None, validate_arch: bool = True,
                max_points: int = MAX_POINTS) -> SweepSpec:
    """Validate and expand an already-parsed sweep mapping (see :func:`load_sweep`)."""
    where = str(source) if source else "<sweep>"
    if not isinstance(doc, Mapping):
        raise SweepError(f"{where}: top level must be a mapping with keys {list(_TOP_KEYS)}")
    unknown = sorted(set(doc) - set(_TOP_KEYS), key=str)
    if unknown:
        raise SweepError(f"{where}: unknown field(s) {unknown}{did_you_mean(unknown[0], _TOP_KEYS)}; "
                         f"allowed: {list(_TOP_KEYS)}")
    if doc.get("version") != SWEEP_VERSION:
        raise SweepError(f"{where}: version: {doc.get('version')!r} is not supported; allowed: {SWEEP_VERSION}")
    base = source.parent if source else Path.cwd()
    arch = doc.get("arch")
    if not isinstance(arch, str) or not arch:
        raise SweepError(f"{where}: arch: must be an architecture name (e.g. scnn) or a YAML path")
    arch = _resolve_arch(arch, base)
    if ("grid" in doc) == ("list" in doc):
        raise SweepError(f"{where}: give exactly one of 'grid' (cartesian product) or 'list' (explicit points)")
    seeds = doc.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = [seeds]
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise SweepError(f"{where}: seeds: must be a non-empty list of integers, got {seeds!r}")
    seeds = list(dict.fromkeys(seeds))
    n_configs = _grid_size(doc["grid"], where) if "grid" in doc else _list_size(doc["list"], where)
    n_traces = _traces_size(doc.get("traces"), where)
    total = n_configs * n_traces * len(seeds)
    if total > max_points:
        raise SweepError(f"{where}: {n_configs:,} configs × {n_traces:,} traces × {len(seeds)} seeds = {total:,} points "
                         f"exceeds the limit of {max_points:,}; shrink the grid or raise the bound knowingly "
                         "(hwsim sweep --max-points N)")
    if "grid" in doc:
        mode, parameters, configs = "grid", *_expand_grid(doc["grid"], where)
    else:
        mode, parameters, configs = "list", *_expand_list(doc["list"], where)
    traces = _expand_traces(doc.get("traces"), where, base)
    iteration = doc.get("iteration")
    if iteration is not None and (not isinstance(iteration, int) or isinstance(iteration, bool)):
        raise SweepError(f"{where}: iteration: must be an integer or null, got {iteration!r}")
    name = str(doc.get("name") or (source.stem if source else "sweep"))
    spec = SweepSpec(name=name, source=source, arch=arch, mode=mode, parameters=parameters,
                     configs=tuple(configs), traces=tuple(traces), seeds=tuple(seeds),
                     iteration=iteration, description=str(doc.get("description") or ""))
    if validate_arch:
        validate_configs(spec, where=where)
    return spec


def _grid_size(grid: Any, where: str) -> int:
    """Configs a grid expands to, computed from the value-list lengths (nothing expanded)."""
    if not isinstance(grid, Mapping) or not grid:
        raise SweepError(f"{where}: grid: is empty; give at least one 'dotted.key: [values...]'")
    return math.prod(len(v) if isinstance(v, list) else 1 for v in grid.values())


def _list_size(items: Any, where: str) -> int:
    if not isinstance(items, list) or not items:
        raise SweepError(f"{where}: list: is empty; give at least one mapping of overrides ({{}} = base arch)")
    return len(items)


def _traces_size(items: Any, where: str) -> int:
    """Traces the ``traces:`` list expands to (synthetic value lists multiply), computed without expanding."""
    if not isinstance(items, list) or not items:
        return 1  # _expand_traces reports the error with its full message
    n = 0
    for item in items:
        syn = item.get("synthetic") if isinstance(item, Mapping) else None
        if isinstance(syn, Mapping):
            n += math.prod(len(syn[k]) if isinstance(syn.get(k), list) else 1 for k in _SYNTH_LISTABLE)
        else:
            n += 1
    return n


def validate_configs(spec: SweepSpec, *, where: str = "<sweep>") -> None:
    """Load every config through the architecture validator; name the failing point and key."""
    from hwsim.arch import load_arch  # the arch schema is the single source of truth for keys

    for c in spec.configs:
        try:
            load_arch(spec.arch, dict(c.overrides))
        except ValueError as e:
            raise SweepError(f"{where}: point {c.index} ({c.label}): {e}") from None


def _resolve_arch(arch: str, base: Path) -> str:
    """A bare name (``scnn``) is left for load_arch; a path is resolved like trace paths."""
    if arch.endswith((".yaml", ".yml")) or os.sep in arch or "/" in arch:
        return str(_resolve_path(arch, base))
    return arch


def _resolve_path(p: str, base: Path) -> Path:
    cand = Path(p).expanduser()
    if cand.is_absolute() or cand.exists():
        return cand
    alt = base / cand
    return alt if alt.exists() else cand


# ----------------------------------------------------------------------------- configs


def _split_key(key: Any, where: str) -> tuple[str, ...]:
    if not isinstance(key, str) or not key.strip():
        raise SweepError(f"{where}: grid key {key!r} must be a dotted key path such as 'pe_array.rows'")
    parts = tuple(k.strip() for k in key.split(","))
    if any(not k for k in parts):
        raise SweepError(f"{where}: grid key {key!r} has an empty part")
    return parts


def _expand_grid(grid: Any, where: str) -> tuple[tuple[str, ...], list[Config]]:
    if not isinstance(grid, Mapping) or not grid:
        raise SweepError(f"{where}: grid: is empty; give at least one 'dotted.key: [values...]'")
    axes: list[list[dict[str, Any]]] = []
    params: list[str] = []
    for key, values in grid.items():
        keys = _split_key(key, where)
        if not isinstance(values, list):
            values = [values]
        if not values:
            raise SweepError(f"{where}: grid: {key}: the value list is empty")
        axis = []
        for v in values:
            if len(keys) > 1 and isinstance(v, list):
                if len(v) != len(keys):
                    raise SweepError(f"{where}: grid: {key}: value {v!r} must have {len(keys)} entries")
                axis.append(dict(zip(keys, v, strict=True)))
            else:
                axis.append({k: v for k in keys})
        axes.append(axis)
        params.extend(k for k in keys if k not in params)
    configs = []
    for i, combo in enumerate(itertools.product(*axes)):
        ov: dict[str, Any] = {}
        for part in combo:
            ov.update(part)
        configs.append(Config(index=i, overrides=ov))
    return tuple(params), configs


def _expand_list(items: Any, where: str) -> tuple[tuple[str, ...], list[Config]]:
    if not isinstance(items, list) or not items:
        raise SweepError(f"{where}: list: is empty; give at least one mapping of overrides ({{}} = base arch)")
    params: list[str] = []
    configs = []
    for i, item in enumerate(items):
        if item is None:
            item = {}
        if not isinstance(item, Mapping):
            raise SweepError(f"{where}: list[{i}]: must be a mapping of 'dotted.key: value', got {item!r}")
        ov: dict[str, Any] = {}
        for key, v in item.items():
            for k in _split_key(key, f"{where}: list[{i}]"):
                ov[k] = v
                if k not in params:
                    params.append(k)
        configs.append(Config(index=i, overrides=ov))
    return tuple(params), configs


# ----------------------------------------------------------------------------- traces


def _expand_traces(items: Any, where: str, base: Path) -> list[TraceSpec]:
    if not isinstance(items, list) or not items:
        raise SweepError(f"{where}: traces: give a non-empty list of trace directories or {{synthetic: {{...}}}} specs")
    out: list[TraceSpec] = []
    for i, item in enumerate(items):
        w = f"{where}: traces[{i}]"
        if isinstance(item, str):
            item = {"path": item}
        if not isinstance(item, Mapping):
            raise SweepError(f"{w}: must be a path or a mapping with 'path' or 'synthetic'")
        allowed = {"path", "synthetic", "name", "iteration"}
        unknown = sorted(set(item) - allowed, key=str)
        if unknown:
            raise SweepError(f"{w}: unknown field(s) {unknown}{did_you_mean(unknown[0], allowed)}; "
                             f"allowed: {sorted(allowed)}")
        iteration = item.get("iteration")
        if ("path" in item) == ("synthetic" in item):
            raise SweepError(f"{w}: give exactly one of 'path' or 'synthetic'")
        if "path" in item:
            p = _resolve_path(str(item["path"]), base)
            out.append(TraceSpec(label=str(item.get("name") or p.name), path=p, iteration=iteration))
            continue
        out.extend(_expand_synthetic(item["synthetic"], w, item.get("name"), iteration))
    labels = [t.label for t in out]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise SweepError(f"{where}: traces: duplicate trace label(s) {dup}; give each a distinct 'name'")
    return out


def _expand_synthetic(syn: Any, where: str, name: Any, iteration: Any) -> list[TraceSpec]:
    if not isinstance(syn, Mapping):
        raise SweepError(f"{where}.synthetic: must be a mapping with keys {list(_SYNTH_KEYS)}")
    unknown = sorted(set(syn) - set(_SYNTH_KEYS), key=str)
    if unknown:
        raise SweepError(f"{where}.synthetic: unknown field(s) {unknown}{did_you_mean(unknown[0], _SYNTH_KEYS)}; "
                         f"allowed: {list(_SYNTH_KEYS)}")
    if ("model" in syn) == ("scalesim_csv" in syn):
        raise SweepError(f"{where}.synthetic: give exactly one of 'model' (e.g. lenet5, alexnet, resnet18, vgg16) "
                         "or 'scalesim_csv' (a SCALE-Sim topology file)")
    if "scalesim_conventions" in syn:
        from hwsim.trace.scalesim_topology import CONVENTIONS

        if "scalesim_csv" not in syn or syn["scalesim_conventions"] not in CONVENTIONS:
            raise SweepError(f"{where}.synthetic.scalesim_conventions: {syn['scalesim_conventions']!r} is not allowed; "
                             f"allowed: {' or '.join(CONVENTIONS)}, with scalesim_csv")
    listed = [k for k in _SYNTH_LISTABLE if isinstance(syn.get(k), list)]
    for k in listed:
        if not syn[k]:
            raise SweepError(f"{where}.synthetic.{k}: the value list is empty")
    specs = []
    for combo in itertools.product(*(syn[k] for k in listed)):
        d = dict(syn)
        d.update(zip(listed, combo, strict=True))
        dens = d.pop("density", None)
        if dens is not None:  # SCNN-style: one density for weights, activations and gradients
            for k in ("w_density", "a_density", "dz_density"):
                d.setdefault(k, dens)
        for k in ("w_density", "a_density", "dz_density"):
            v = d.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 < v <= 1.0):
                raise SweepError(f"{where}.synthetic.{k}: {v!r} must be a number in (0, 1]")
        if isinstance(d.get("model"), str):
            from hwsim.trace.topology import check_synthetic_size

            try:
                check_synthetic_size(d["model"], d.get("batch", 1), f"{where}.synthetic")
            except ValueError as e:  # unknown model or batch, or tensors over the limit
                raise SweepError(str(e)) from None
        tag = ",".join(f"{k}={combo[j]}" for j, k in enumerate(listed))
        model = d.get("model") or Path(str(d["scalesim_csv"])).stem
        label = str(name or f"{model}-synth") + (f"[{tag}]" if tag else "")
        specs.append(TraceSpec(label=label, synthetic=d, iteration=iteration))
    return specs
