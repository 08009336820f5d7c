"""Synthetic traces: chosen weight, activation and gradient densities on real layer shapes.

Same format and writer as captured traces (``method: "synthetic"``), so the simulator, sweeps and
reports have one path. Masks are i.i.d. Bernoulli from per-layer, per-role seeded streams, with
the uniform draws shared across densities: at the same seed a lower-density mask is a subset of a
higher-density one, so a density sweep changes only the density (monotone by construction).
Non-zero δ̃z levels are ±m with m geometric (P(m) ∝ (1-p)^(m-1)) capped at ``max_level``, giving
mostly ±1 like real dithered gradients and a worst case of 1 + bit_length(max_level) bits.
i.i.d. masks have none of the spatial clustering of real ReLU maps; use captured traces for that.
numpy only.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hwsim.trace.format import LayerSample, TraceWriter, layer_stats, load
from hwsim.trace.gemm_kinds import kind_densities, part_of
from hwsim.trace.layerspec import PARTS
from hwsim.trace.nongemm import meta_for
from hwsim.trace.scalesim_topology import CONVENTIONS
from hwsim.trace.topology import LayerSpec, as_layer_spec, model_layers, read_scalesim_topology
from hwsim.trace.topology_nongemm import topology_nongemm
from hwsim.trace.transformers import TRANSFORMERS, transformer_shape

ROLES = ("w", "a", "dz")
_CHUNK = 1 << 22  # elements per uniform draw: bounds temporary memory for huge fc weights
_STREAM = {"w": 1, "a": 2, "dz": 3, "level": 4, "sign": 5}
# LZMA level of a synthetic sample: i.i.d. masks are already near their entropy, so xz's default level 6 spends
# ~14x the CPU of level 0 for ~14 % smaller files (one GPT-2-small block at seq 1024 x batch 8: 34.7 vs 2.5 CPU s,
# 14.9 vs 17.4 MB; it was ~90 % of the synthesizer's time). The reader needs no level: traces read the same.
SYNTH_LZMA_PRESET = 0

# Han et al., "Learning both weights and connections", NIPS 2015 (Table/Fig. as quoted by SCNN):
HAN2015_WEIGHT_DENSITY = {"conv1": 0.84, "conv2": 0.38, "conv3": 0.35, "conv4": 0.37, "conv5": 0.37}
HAN2015_OUTPUT_ACT_DENSITY = {"conv1": 0.88, "conv2": 0.52, "conv3": 0.37, "conv4": 0.40, "conv5": 0.34}


def _rng(seed: int, name: str, role: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(name.encode()), _STREAM[role]])


def bernoulli_mask(shape: tuple[int, ...], density: float, *, seed: int, name: str, role: str) -> np.ndarray:
    """Seeded i.i.d. mask with P(True) = density; nested across densities for the same seed/name/role.

    Drawn in chunks of float32 uniforms so a 100 M-weight fc layer needs ~16 MB of temporaries.
    """
    n = int(np.prod(shape))
    if density >= 1.0:
        return np.ones(shape, dtype=bool)
    if density <= 0.0:
        return np.zeros(shape, dtype=bool)
    rng, thr = _rng(seed, name, role), np.float32(density)
    out = np.empty(n, dtype=bool)
    for i in range(0, n, _CHUNK):
        out[i:i + _CHUNK] = rng.random(min(_CHUNK, n - i), dtype=np.float32) < thr
    return out.reshape(shape)


def synth_levels(shape: tuple[int, ...], density: float, *, seed: int, name: str,
                 level_p: float = 0.6, max_level: int = 15) -> np.ndarray:
    """Integer δ̃z levels: non-zero with P = density, sign ±, magnitude geometric(level_p) capped at max_level."""
    mask = bernoulli_mask(shape, density, seed=seed, name=name, role="dz")
    dtype = np.int8 if max_level <= 127 else np.int16 if max_level <= 32767 else np.int32  # memory of big GEMMs
    levels = np.zeros(shape, dtype=dtype)
    nnz = int(mask.sum())
    if nnz:
        mag = np.minimum(_rng(seed, name, "level").geometric(level_p, size=nnz), max_level)
        sign = np.where(_rng(seed, name, "sign").random(nnz) < 0.5, -1, 1)
        levels[mask] = (sign * mag).astype(dtype)
    return levels


def _check_density(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
        raise ValueError(f"{where}: density {v!r} is not allowed; allowed: a number in [0, 1]")
    return float(v)


def spec_part(spec: LayerSpec) -> str:
    """The GEMM kind of a spec (``PARTS``): its ``part``, else inferred from its name (:mod:`hwsim.trace.gemm_kinds`)."""
    return spec.part or part_of(spec.name, spec.kind)


def _roles(d: Any, where: str) -> dict[str, float]:
    if not isinstance(d, Mapping):
        raise ValueError(f"{where}: {d!r} is not allowed; allowed: an object {{w|a|dz: density}}")
    for role in d:
        if role not in ROLES:
            raise ValueError(f"{where}.{role}: unknown role; allowed: {', '.join(ROLES)}")
    return {role: _check_density(v, f"{where}.{role}") for role, v in d.items()}


def resolve_densities(specs: Sequence[LayerSpec], *, w_density: float, a_density: float, dz_density: float,
                      per_layer: Mapping[str, Mapping[str, float]] | None,
                      dense_first_input: bool,
                      per_kind: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, dict[str, float]]:
    """Density of each role for each layer: global values, per-kind values (``PARTS``), the first input
    dense, then per-layer overrides."""
    names = [s.name for s in specs]
    per_layer = dict(per_layer or {})
    unknown = sorted(set(per_layer) - set(names))
    if unknown:
        raise ValueError(f"per_layer: unknown layer(s) {unknown}; allowed: {', '.join(names)}")
    if not isinstance(per_kind or {}, Mapping):
        raise ValueError(f"per_kind: {per_kind!r} is not allowed; allowed: {{kind: {{w|a|dz: density}}}}")
    kinds = {k: _roles(v, f"per_kind.{k}") for k, v in (per_kind or {}).items()}
    bad = sorted(set(kinds) - set(PARTS))
    if bad:
        raise ValueError(f"per_kind: unknown kind(s) {bad}; allowed: {', '.join(PARTS)}")
    out: dict[str, dict[str, float]] = {}
    for i, (nm, spec) in enumerate(zip(names, specs, strict=True)):
        d = {"w": _check_density(w_density, "w_density"), "a": _check_density(a_density, "a_density"),
             "dz": _check_density(dz_density, "dz_density")}
        d.update(kinds.get(spec_part(spec), {}))
        if i == 0 and dense_first_input:
            d["a"] = 1.0
        for role, v in per_layer.get(nm, {}).items():
            if role not in ROLES:
                raise ValueError(f"per_layer.{nm}.{role}: unknown role; allowed: {', '.join(ROLES)}")
            d[role] = _check_density(v, f"per_layer.{nm}.{role}")
        out[nm] = d
    return out


def _layer_specs(model: str | None, layers: Sequence[LayerSpec] | None,
                 scalesim_csv: str | os.PathLike | None, options: Mapping[str, Any],
                 conventions: str = "scalesim") -> tuple[list[LayerSpec], str]:
    if conventions not in CONVENTIONS:
        raise ValueError(f"scalesim_conventions: {conventions!r} is not allowed; allowed: {', '.join(CONVENTIONS)}")
    if scalesim_csv is None and conventions != "scalesim":
        raise ValueError("scalesim_conventions: applies to scalesim_csv= only")
    given = [x is not None for x in (model, layers, scalesim_csv)]
    if sum(given) != 1:
        raise ValueError("synthesize: give exactly one of model=, layers= or scalesim_csv=")
    if model is not None:
        return model_layers(model, **options), model
    used = [k for k, v in options.items() if v is not None and v is not False]
    if used:
        raise ValueError(f"synthesize: {', '.join(used)} apply to a named transformer (model=) only")
    if layers is not None:
        specs = [as_layer_spec(x, f"layers[{i}]") for i, x in enumerate(layers)]
        if not specs or len({s.name for s in specs}) != len(specs):
            raise ValueError("layers: must be a non-empty list of LayerSpec with unique names")
        return specs, "custom"
    return read_scalesim_topology(scalesim_csv, conventions), Path(scalesim_csv).stem  # type: ignore[arg-type]


def synthesize(out: str | os.PathLike, *, model: str | None = None,
               layers: Sequence[LayerSpec | Mapping[str, Any]] | None = None,
               scalesim_csv: str | os.PathLike | None = None, w_density: float = 1.0, a_density: float = 1.0,
               dz_density: float = 0.1, per_layer: Mapping[str, Mapping[str, float]] | None = None,
               batch: int = 1, seed: int = 0, level_p: float = 0.6, max_level: int = 15,
               operand_bits: int = 8, dense_first_input: bool = True, store_w_mask: bool = True,
               delta: float = 1e-3, overwrite: bool = False, meta: Mapping[str, Any] | None = None,
               seq: int | None = None, heads: int | None = None, kv_heads: int | None = None,
               blocks: int | None = None, head: bool = False,
               per_kind: Mapping[str, Mapping[str, float]] | None = None,
               densities_from: str | os.PathLike | None = None, scalesim_conventions: str = "scalesim") -> Path:
    """Write a one-iteration synthetic trace to ``out`` and return its path.

    Exactly one of ``model`` (alexnet, alexnet_conv, resnet18, vgg16, lenet5, or a transformer of
    :data:`hwsim.trace.transformers.TRANSFORMERS`: gpt2_small, gpt2_medium, bert_base, vit_b16, llama_block),
    ``layers`` (LayerSpec or mappings of its fields) or ``scalesim_csv`` (conv or GEMM topology, read in
    ``scalesim_conventions``: ``scalesim``, SCALE-Sim's output sizes, or ``conv``, conv arithmetic on the unpadded
    layers: :mod:`hwsim.trace.scalesim_topology`).
    Transformers take ``seq`` (tokens per example), ``heads``, ``kv_heads``, ``blocks`` and ``head``
    (add the LM/MLM/classifier head and ViT's patch embedding); ``batch`` is examples.
    Densities are global, then per GEMM kind (``per_kind={proj|attn|mlp|other: {"w", "a", "dz"}}``, on top of
    the kind means of a captured trace ``densities_from``), then ``per_layer={name: {"w", "a", "dz"}}``; the
    first layer's input is the dense image unless ``dense_first_input=False`` or per_layer says so.
    Causal attention matrices are zero above the diagonal (:mod:`hwsim.trace.transformers`).
    ``w_mask`` is stored when the weight density is below 1 (``store_w_mask``); operands are
    ``operand_bits`` wide (8: as on an int8 training accelerator); Δ = ``delta`` is nominal.
    """
    options = {"seq": seq, "heads": heads, "kv_heads": kv_heads, "blocks": blocks, "head": head}
    specs, model_name = _layer_specs(model, layers, scalesim_csv, options, scalesim_conventions)
    kinds: dict[str, dict[str, float]] = {}
    if densities_from is not None:
        kinds = kind_densities(load(densities_from))
    if not isinstance(per_kind or {}, Mapping):
        raise ValueError(f"per_kind: {per_kind!r} is not allowed; allowed: {{kind: {{w|a|dz: density}}}}")
    for k, v in (per_kind or {}).items():
        kinds[k] = {**kinds.get(k, {}), **_roles(v, f"per_kind.{k}")}
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch: {batch!r} is not allowed; allowed: integer >= 1")
    if not 0.0 < level_p <= 1.0:
        raise ValueError(f"level_p: {level_p!r} is not allowed; allowed: 0 < level_p <= 1")
    if isinstance(max_level, bool) or not isinstance(max_level, int) or max_level < 1:
        raise ValueError(f"max_level: {max_level!r} is not allowed; allowed: integer >= 1")
    dens = resolve_densities(specs, w_density=w_density, a_density=a_density, dz_density=dz_density,
                             per_layer=per_layer, dense_first_input=dense_first_input, per_kind=kinds)
    geoms = [s.geometry(batch) for s in specs]  # validate every shape before writing anything
    syn: dict[str, Any] = {"densities": dens, "level_p": level_p, "max_level": max_level,
                           "operand_bits": operand_bits, "dense_first_input": dense_first_input,
                           "source": str(scalesim_csv) if scalesim_csv is not None else model_name}
    if scalesim_csv is not None:
        syn["scalesim_conventions"] = scalesim_conventions
    if kinds:
        syn["per_kind"] = kinds
    if densities_from is not None:
        syn["densities_from"] = str(densities_from)
    tokens = max((s.tokens for s in specs if s.kind == "linear"), default=1)
    extra: dict[str, Any] = {"tokens_per_example": tokens} if tokens > 1 else {}
    if model is not None and model in TRANSFORMERS:
        syn["transformer"] = transformer_shape(model, **options)
    if kinds or "transformer" in syn:  # layers per GEMM kind (absent for CNNs: their traces stay as they were)
        syn["kinds"] = {p: n for p in PARTS if (n := sum(spec_part(s) == p for s in specs))}
    info = {"model": model_name, "dataset": "synthetic", "method": "synthetic", "s": None, "seed": int(seed),
            "int8": operand_bits <= 8, "batch": int(batch), **extra, "synthetic": syn, **(meta or {})}
    samples, stats = [], {}
    for spec, g in zip(specs, geoms, strict=True):
        d = dens[g.name]
        w_mask = None
        if d["w"] < 1.0 and store_w_mask:
            w_mask = bernoulli_mask(g.weight_shape, d["w"], seed=seed, name=g.name, role="w")
        w_dens = float(w_mask.mean()) if w_mask is not None else d["w"]
        a_mask = bernoulli_mask(g.input_shape, d["a"], seed=seed, name=g.name, role="a")
        levels = synth_levels(g.output_shape, d["dz"], seed=seed, name=g.name, level_p=level_p, max_level=max_level)
        if spec.causal:  # the T×T attention matrix is zero above the diagonal (masked scores)
            t = spec.tokens
            keep = np.tril(np.ones((t, t), dtype=bool))
            if spec.causal == "output":
                levels *= keep
            else:
                a_mask &= keep
        samples.append(LayerSample(geometry=g, delta=delta, dz_levels=levels, a_mask=a_mask, w_density=w_dens,
                                   w_mask=w_mask, w_bits=operand_bits, a_bits=operand_bits))
        stats[g.name] = {**layer_stats(levels), "a_density": float(a_mask.mean()), "w_density": w_dens}
    nongemm = topology_nongemm(model, batch, options)
    if nongemm is not None:  # the topology's non-GEMM work (hwsim.trace.topology_nongemm); custom layers: none
        info["nongemm"] = meta_for(nongemm, source="topology")
    with TraceWriter(out, meta=info, overwrite=overwrite, lzma_preset=SYNTH_LZMA_PRESET) as w:
        for g in geoms:
            w.add_layer(g)
        w.add_iteration(0, stats=stats, samples=samples,
                        **({"nongemm": nongemm.to_json()} if nongemm is not None else {}))
    return Path(out)


def alexnet_han2015(out: str | os.PathLike, seed: int = 0, *, dz_density: float = 0.1, batch: int = 1,
                    overwrite: bool = False, **kw: Any) -> Path:
    """AlexNet conv1–5 with the pruned densities of Han et al. 2015, as SCNN evaluated it.

    Weights conv1..5: 0.84, 0.38, 0.35, 0.37, 0.37. Layer l's input activation density is the
    *output* density of layer l−1 (0.88, 0.52, 0.37, 0.40; conv5's output 0.34 is not consumed):
    conv1 reads the dense image. Geometry is the single-tower (ungrouped) 96/256/384/384/256 net at
    227², as SCNN used; the max-pools between layers are not modelled, so their (small) densifying
    effect is ignored. δ̃z has no published counterpart (inference pruning): ``dz_density`` sets it.
    """
    names = list(HAN2015_WEIGHT_DENSITY)
    per_layer: dict[str, dict[str, float]] = {}
    for i, nm in enumerate(names):
        per_layer[nm] = {"w": HAN2015_WEIGHT_DENSITY[nm],
                         "a": 1.0 if i == 0 else HAN2015_OUTPUT_ACT_DENSITY[names[i - 1]]}
    return synthesize(out, model="alexnet_conv", per_layer=per_layer, dz_density=dz_density, batch=batch,
                      seed=seed, overwrite=overwrite,
                      meta={"model": "alexnet_han2015", "reference": "Han et al. 2015 densities via SCNN (ISCA 2017)",
                            "output_act_density": HAN2015_OUTPUT_ACT_DENSITY}, **kw)


DEFAULT_SWEEP = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)


def synthesize_density_sweep(out_dir: str | os.PathLike, model: str | None = "alexnet_conv", *,
                             densities: Sequence[float] = DEFAULT_SWEEP, roles: Sequence[str] = ROLES,
                             fixed: Mapping[str, float] | None = None, seed: int = 0,
                             dense_first_input: bool = False, overwrite: bool = False, **kw: Any) -> list[Path]:
    """One trace per density in ``out_dir/d<density>`` (SCNN's "performance vs density" figure).

    Every role in ``roles`` (default w, a and dz) is set to the density; ``fixed`` pins the others.
    The first input is at the swept density too unless ``dense_first_input``. Same seed for all
    points, so masks are nested and only density changes. Writes ``out_dir/index.json``.
    """
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise ValueError(f"roles: {bad or roles!r} not allowed; allowed: a non-empty subset of {', '.join(ROLES)}")
    root = Path(out_dir)
    paths, index = [], []
    for d in densities:
        dd = _check_density(d, "densities")
        vals = {"w": 1.0, "a": 1.0, "dz": 0.1, **(fixed or {})}
        vals.update({r: dd for r in roles})
        p = synthesize(root / f"d{dd:.2f}", model=model, w_density=vals["w"], a_density=vals["a"],
                       dz_density=vals["dz"], seed=seed, dense_first_input=dense_first_input,
                       overwrite=overwrite, **kw)
        paths.append(p)
        index.append({"density": dd, "path": p.name, **{f"{r}_density": vals[r] for r in ROLES}})
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.json").write_text(json.dumps({"model": model, "roles": list(roles), "seed": seed,
                                                 "traces": index}, indent=1))
    return paths
