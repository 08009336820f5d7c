"""YAML file → structural check → frozen :class:`Arch`; dotted-path overrides; name resolution.

Structure (unknown keys, missing keys, sections that are not mappings) is checked here, against the
dataclass fields, so the message can name the file and full key path; values are checked by the
dataclasses themselves and their errors are re-anchored to the file and section here.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hwsim._yaml import YAMLInputError, did_you_mean, load_file, parse_scalar
from hwsim.arch.dataflows import Dataflows
from hwsim.arch.errors import ArchError
from hwsim.arch.fields import allowed_text, hints, is_mapping_hint, required_fields
from hwsim.arch.spec import Arch

# The shipped configs are package data (hwsim/arch/configs/, in the repo a symlink to arch_configs/, the
# place to edit them); a source checkout reads arch_configs/ itself so paths in messages stay short.
PACKAGE_ARCH_DIR = Path(__file__).resolve().parent / "configs"
_REPO_ARCH_DIR = Path(__file__).resolve().parents[2] / "arch_configs"
ARCH_DIR = _REPO_ARCH_DIR if _REPO_ARCH_DIR.is_dir() else PACKAGE_ARCH_DIR
_TOP_KEYS = [f.name for f in dataclasses.fields(Arch) if f.name != "source"]


def shipped_arch_names() -> list[str]:
    """Names of the architectures in ``arch_configs/`` (``load_arch(name)`` accepts these)."""
    return sorted(p.stem for p in ARCH_DIR.glob("*.yaml")) if ARCH_DIR.is_dir() else []


def resolve_arch_path(path_or_name: str | os.PathLike) -> Path:
    """A path to a YAML file, or a shipped name like ``"scnn"`` → ``arch_configs/scnn.yaml``."""
    p = Path(path_or_name)
    if p.is_file():
        return p
    for cand in (ARCH_DIR / p.name, ARCH_DIR / f"{p.name}.yaml"):
        if p.parent == Path(".") and cand.is_file():
            return cand
    if p.exists():
        kind = "is a directory" if p.is_dir() else "is not a regular file (a FIFO or a device)"
        raise ArchError(kind, key="", file=str(p), allowed="an architecture YAML file or a shipped name ("
                        + ", ".join(shipped_arch_names()) + ")")
    raise ArchError("no such architecture file or name" + did_you_mean(p.name, shipped_arch_names()), key="",
                    file=str(path_or_name),
                    allowed="a YAML path or one of " + ", ".join(shipped_arch_names()))


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping of an architecture YAML file (size, depth, alias and duplicate-key limits of hwsim._yaml)."""
    try:
        raw = load_file(path, what="architecture YAML file")
    except YAMLInputError as e:
        raise ArchError(e.problem, file=str(path), allowed="a YAML mapping as in arch_configs/scnn.yaml") from None
    if not isinstance(raw, dict):
        raise ArchError(f"top level must be a mapping, got {type(raw).__name__}", file=str(path),
                        allowed="keys " + ", ".join(_TOP_KEYS))
    return raw


def _check_keys(section: Mapping[str, Any], cls: type, *, file: str, prefix: str) -> None:
    names = [f.name for f in dataclasses.fields(cls) if f.name != "source"]
    hs = hints(cls)
    for k in section:
        if k not in names:
            raise ArchError("unknown key" + did_you_mean(k, names), key=".".join(p for p in (prefix, str(k)) if p),
                            file=file, allowed=", ".join(names))
    for k in required_fields(cls):
        if k not in section:
            f = next(f for f in dataclasses.fields(cls) if f.name == k)
            raise ArchError("missing required key", key=".".join(p for p in (prefix, k) if p), file=file,
                            allowed=allowed_text(hs[k], f.metadata))


def arch_from_dict(raw: Mapping[str, Any], *, source: str = "<dict>") -> Arch:
    """Validate a YAML-shaped mapping and build the :class:`Arch` (errors name ``source`` + key path)."""
    if not isinstance(raw, Mapping):
        raise ArchError(f"top level must be a mapping, got {type(raw).__name__}", file=source,
                        allowed="keys " + ", ".join(_TOP_KEYS))
    _check_keys(raw, Arch, file=source, prefix="")
    hs = hints(Arch)
    kw: dict[str, Any] = {}
    for k, v in raw.items():
        cls = hs[k]
        if cls is Dataflows:  # a name or a per-pass mapping: Arch coerces and checks it (hwsim/arch/dataflows.py)
            kw[k] = v
        elif dataclasses.is_dataclass(cls):
            if not isinstance(v, Mapping):
                raise ArchError(f"must be a mapping, got {type(v).__name__}", key=k, file=source,
                                allowed="keys " + ", ".join(f.name for f in dataclasses.fields(cls)))
            _check_keys(v, cls, file=source, prefix=k)
            try:
                kw[k] = cls(**v)
            except ArchError as e:
                raise e.located(file=source, prefix=k) from None
        else:
            kw[k] = v
    try:
        arch = Arch(**kw, source=source)
    except ArchError as e:
        raise e.located(file=source) from None
    _check_bounds(arch, source)
    return arch


# Sizes beyond these are typos (or hostile), not designs: the simulator allocates per PE, per multiplier
# and per bank, so an absurd value would end in MemoryError instead of a message.
MAX_PES = 1 << 16  # 256 × 256
MAX_MULT_SIDE = 256  # mult_f, mult_i
MAX_BANKS = 1 << 16
MAX_BANK_ENTRIES = 1 << 20


def _check_bounds(arch: Arch, source: str) -> None:
    pa, pe = arch.pe_array, arch.pe
    if pa.rows * pa.cols > MAX_PES:
        raise ArchError(f"{pa.rows}×{pa.cols} = {pa.rows * pa.cols:,} PEs exceeds the limit of {MAX_PES:,}",
                        key="pe_array", file=source, allowed=f"rows × cols <= {MAX_PES:,}")
    for key, v, lim in (("pe.mult_f", pe.mult_f, MAX_MULT_SIDE), ("pe.mult_i", pe.mult_i, MAX_MULT_SIDE),
                        ("pe.accumulator_banks", pe.accumulator_banks, MAX_BANKS),
                        ("pe.accumulator_bank_entries", pe.accumulator_bank_entries, MAX_BANK_ENTRIES)):
        if v > lim:
            raise ArchError(f"{v:,} exceeds the limit of {lim:,}", key=key, file=source, allowed=f"1..{lim:,}")


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any] | None, *, file: str = "<dict>") -> dict:
    """A deep copy of ``raw`` with dotted key paths set (``{"pe.mac_bits": 16, "energy.mult_pj.4": 0.05}``).

    Paths are checked against the schema, not against the file, so a path that is valid but absent
    from the file is added; an unknown path is an ArchError naming the path and the allowed keys.
    """
    out = copy.deepcopy(dict(raw))
    for path, value in (overrides or {}).items():
        parts = str(path).split(".")
        cls: Any = Arch
        node: dict[str, Any] = out
        for i, part in enumerate(parts):
            here = ".".join(parts[: i + 1])
            last = i == len(parts) - 1
            if cls is None:
                raise ArchError("path goes below a scalar value", key=f"override {path}", file=file,
                                allowed=".".join(parts[:i]))
            if is_mapping_hint(cls):
                key: Any = int(part) if part.isdigit() else part
                if not isinstance(key, int):
                    raise ArchError("unknown override path", key=here, file=file, allowed="an integer bit-width")
                if not last:
                    raise ArchError("path goes below a scalar value", key=here, file=file,
                                    allowed=".".join(parts[: i + 1]))
                node[key] = value
                break
            names = [f.name for f in dataclasses.fields(cls) if f.name != "source"]
            if part not in names:
                raise ArchError("unknown override path" + did_you_mean(part, names), key=here, file=file,
                                allowed=", ".join(names))
            sub = hints(cls)[part]
            if last:
                node[part] = copy.deepcopy(value)
                break
            if dataclasses.is_dataclass(sub) or is_mapping_hint(sub):
                child = node.get(part)
                if sub is Dataflows:  # ``dataflow.backward_weight=...`` on a file that names one dataflow
                    child = node[part] = Dataflows.as_mapping(child)
                if not isinstance(child, dict):
                    child = dict(child) if isinstance(child, Mapping) else {}
                    node[part] = child
                node, cls = child, sub
            else:
                node, cls = {}, None
    return out


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["pe.mac_bits=16", "memory.compression=none"]`` → ``{"pe.mac_bits": 16, ...}`` (YAML scalars)."""
    out: dict[str, Any] = {}
    for it in items or []:
        if "=" not in it:
            raise ArchError("override must look like key.path=value", key=it, allowed="e.g. pe.mac_bits=16")
        k, v = it.split("=", 1)
        if not k.strip():
            raise ArchError("override has an empty key path", key=it, allowed="e.g. pe.mac_bits=16")
        try:
            out[k.strip()] = parse_scalar(v, flag=f"--set {k.strip()}") if v.strip() else v
        except YAMLInputError as e:
            raise ArchError(e.problem, key=e.file,
                            allowed="a plain YAML value such as 16, 0.5, .inf, none, [2, 4] or {8: 0.2}") from None
    return out


def load_arch(path_or_name: str | os.PathLike | Arch, overrides: Mapping[str, Any] | None = None) -> Arch:
    """Load, override and validate an architecture. ``path_or_name`` is a YAML path, a shipped name or an Arch."""
    if isinstance(path_or_name, Arch):
        if not overrides:
            return path_or_name
        return arch_from_dict(apply_overrides(path_or_name.to_dict(), overrides, file=path_or_name.source),
                              source=path_or_name.source)
    path = resolve_arch_path(path_or_name)
    raw = read_yaml(path)
    if overrides:
        raw = apply_overrides(raw, overrides, file=str(path))
    return arch_from_dict(raw, source=str(path))
