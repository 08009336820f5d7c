"""Self-validating frozen dataclasses: field metadata says what is allowed, ``__post_init__`` checks it.

The same metadata produces the error message (``allowed: integer >= 1``) and the ``hwsim validate``
summary, so the rules live in one place. Checks are strict on purpose: a ``true`` where a size is
expected, or ``"8"`` where a number is expected, is almost always a typo in the YAML.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from hwsim.arch.errors import ArchError

_HINTS: dict[type, dict[str, Any]] = {}


def spec(*, ge: float | None = None, gt: float | None = None, le: float | None = None,
         choices: tuple[Any, ...] | None = None, allow_inf: bool = False, default: Any = dataclasses.MISSING,
         default_factory: Any = dataclasses.MISSING, compare: bool = True, omit_default: bool = False,
         doc: str = "") -> Any:
    """A dataclass field with validation metadata (range, choices) and a one-line doc.

    ``omit_default``: ``to_dict`` leaves the field out while it holds its default, so adding an
    optional feature to the schema does not change the content hash of configs that do not use it
    (sweep caches and stored ``results.json`` hashes stay valid).
    """
    md = {"ge": ge, "gt": gt, "le": le, "choices": choices, "allow_inf": allow_inf, "doc": doc,
          "omit_default": omit_default}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, compare=compare, metadata=md)
    return dataclasses.field(default=default, compare=compare, metadata=md)


def hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def is_mapping_hint(hint: Any) -> bool:
    return typing.get_origin(hint) in (Mapping, dict, typing.Mapping)


def is_int_tuple_hint(hint: Any) -> bool:
    """``tuple[int, ...]`` (a YAML list of integers, e.g. ``pe.bit_fusion_widths``)."""
    return typing.get_origin(hint) is tuple and typing.get_args(hint) == (int, Ellipsis)


def required_fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]


def allowed_text(hint: Any, md: Mapping[str, Any]) -> str:
    """Human description of the values a field accepts."""
    if md.get("choices"):
        return "one of " + ", ".join(str(c) for c in md["choices"])
    if dataclasses.is_dataclass(hint):  # a section; one that also takes a scalar says so in its ALLOWED
        return getattr(hint, "ALLOWED", "") or "mapping with keys " + ", ".join(f.name for f in dataclasses.fields(hint))
    rng = []
    if md.get("gt") is not None:
        rng.append(f"> {md['gt']:g}")
    if md.get("ge") is not None:
        rng.append(f">= {md['ge']:g}")
    if md.get("le") is not None:
        rng.append(f"<= {md['le']:g}")
    bound = (" " + " and ".join(rng)) if rng else ""
    if hint is bool:
        return "true or false"
    if hint is int:
        return "integer" + bound
    if hint is float:
        return "number" + bound + (" (.inf allowed)" if md.get("allow_inf") else "")
    if hint is str:
        return "non-empty string"
    if is_int_tuple_hint(hint):
        return "non-empty list of distinct integers in ascending order" + bound
    if is_mapping_hint(hint):
        return "mapping {bits: pJ} with integer bits >= 1 and numbers" + (bound or " >= 0")
    return str(hint)


def _tname(v: Any) -> str:
    return "bool" if isinstance(v, bool) else type(v).__name__


def check_field(owner: str, name: str, hint: Any, md: Mapping[str, Any], value: Any) -> Any:
    """Validate one value; return it normalised (int→float, mapping→read-only dict). Raise ArchError."""
    allowed = allowed_text(hint, md)

    def fail(problem: str) -> ArchError:
        return ArchError(problem, key=f"{owner}.{name}", field=name, allowed=allowed)

    def in_range(v: float, what: str = "") -> None:
        if md.get("gt") is not None and not v > md["gt"] or md.get("ge") is not None and not v >= md["ge"] \
                or md.get("le") is not None and not v <= md["le"]:
            raise fail(f"{what}{v!r} is out of range")

    if dataclasses.is_dataclass(hint):
        if not isinstance(value, hint):
            raise fail(f"must be a {hint.__name__}, got {_tname(value)}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise fail(f"must be true or false, got {value!r} ({_tname(value)})")
        return value
    if hint is str:
        if not isinstance(value, str) or not value.strip():
            raise fail(f"must be a non-empty string, got {value!r} ({_tname(value)})")
        if md.get("choices") and value not in md["choices"]:
            raise fail(f"{value!r} is not a known value")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise fail(f"must be an integer, got {value!r} ({_tname(value)})")
        if md.get("choices") and value not in md["choices"]:
            raise fail(f"{value!r} is not a known value")
        in_range(value)
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail(f"must be a number, got {value!r} ({_tname(value)})")
        value = float(value)
        if math.isnan(value) or (math.isinf(value) and not md.get("allow_inf")):
            raise fail(f"must be finite, got {value!r}")
        in_range(value)
        return value
    if is_int_tuple_hint(hint):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)) or not value:
            raise fail(f"must be a non-empty list of integers, got {value!r} ({_tname(value)})")
        for v in value:
            if isinstance(v, bool) or not isinstance(v, int):
                raise fail(f"element {v!r} ({_tname(v)}) is not an integer")
            in_range(v, "element ")
        if list(value) != sorted(set(value)):
            raise fail(f"{list(value)!r} is not strictly ascending")
        return tuple(int(v) for v in value)
    if is_mapping_hint(hint):
        if not isinstance(value, Mapping) or not value:
            raise fail(f"must be a non-empty mapping, got {value!r} ({_tname(value)})")
        out: dict[int, float] = {}
        for k, v in value.items():
            kk = int(k) if isinstance(k, str) and k.strip().isdigit() else k
            if isinstance(kk, bool) or not isinstance(kk, int) or kk < 1:
                raise fail(f"key {k!r} is not a bit-width")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise fail(f"value for {k!r} must be a finite number, got {v!r} ({_tname(v)})")
            lo = md.get("ge") if md.get("ge") is not None else 0.0
            if v < lo:
                raise fail(f"value for {k!r} is {v!r}, out of range")
            out[kk] = float(v)
        return MappingProxyType(dict(sorted(out.items())))
    raise TypeError(f"{owner}.{name}: unsupported field type {hint!r}")  # programming error


def _rebuild(cls: type, kw: dict[str, Any]) -> Any:
    return cls(**kw)


class Validated:
    """Mixin for frozen dataclasses: validate and normalise every field after construction."""

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle/deepcopy via the constructor (read-only mapping proxies cannot be pickled)."""
        kw = {f.name: (dict(v) if isinstance(v, Mapping) else v)
              for f in dataclasses.fields(self)  # type: ignore[arg-type]
              for v in (getattr(self, f.name),)}
        return (_rebuild, (type(self), kw))

    def __post_init__(self) -> None:
        owner = type(self).__name__
        hs = hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = check_field(owner, f.name, hs[f.name], f.metadata, getattr(self, f.name))
            object.__setattr__(self, f.name, v)
        self._check()

    def _check(self) -> None:
        """Cross-field rules; override in subclasses."""

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict in YAML key order (mappings as plain dicts)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if f.metadata.get("omit_default") and v == f.default:
                continue
            if isinstance(v, Validated):
                v = v.to_dict()
            elif isinstance(v, Mapping):
                v = dict(v)
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out
