"""Sweep points: one (config, trace, seed) to simulate, and its content-hash key.

The key is what makes sweeps resumable and safe to extend: it hashes what determines the
result — the *validated* architecture dict (not the override spelling, so ``pe.mac_bits: 8``
on an 8-bit base is the same point as the base), the trace's manifest sha256, the iteration and
the seed — and a fingerprint of the simulator's own source, so a point cached by an older
simulator is recomputed rather than silently reused. A result stored under that key is valid for
any sweep that contains the same point.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwsim._io import atomic_write_text

POINTS_DIR = "points"


@dataclass(frozen=True)
class PointTask:
    """Everything a worker needs to evaluate one point (picklable, no open files)."""

    key: str
    config_index: int
    overrides: Mapping[str, Any]
    arch: str
    trace_label: str
    trace_path: str
    iteration: int
    seed: int

    def describe(self) -> dict[str, Any]:
        """Provenance stored beside the result: what this point is, in the sweep's terms."""
        return {"key": self.key, "config": self.config_index, "overrides": dict(self.overrides),
                "arch": self.arch, "trace": self.trace_label, "trace_path": self.trace_path,
                "iteration": self.iteration, "seed": self.seed}


@functools.lru_cache(maxsize=1)
def simulator_fingerprint() -> str:
    """sha256 of the simulator's source (``hwsim/sim``, ``hwsim/arch``, ``hwsim/results``).

    Cached results are only as valid as the code that produced them: a fix in the simulator must
    invalidate them, which a version number bumped by hand would not reliably do.
    """
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    files = sorted([*(root / "sim").glob("*.py"), *(root / "arch").glob("*.py"), *(root / "results").glob("*.py")])
    for f in files:
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def point_key(*, arch_dict: Mapping[str, Any], trace_sha: str, iteration: int, seed: int) -> str:
    """Content hash of a point: sha256 over arch dict, trace sha, iteration, seed and simulator fingerprint."""
    blob = json.dumps({"arch": arch_dict, "trace": trace_sha, "iteration": int(iteration), "seed": int(seed),
                       "simulator": simulator_fingerprint()},
                      sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


_VOLATILE = ("created",)


def manifest_sha(trace_dir: str | os.PathLike) -> str:
    """Content hash of a trace: sha256 of its manifest (which lists every sample file's sha256).

    The creation timestamp is left out, so the same synthetic trace generated twice (e.g. in two
    output directories) is the same trace and its points are shared. A version-3 manifest holds
    the sha256 of ``iterations.jsonl`` (field ``iteration_log``), so the hash covers it too. The
    manifest is read and validated by :func:`hwsim.trace.format.load` (no sample file is read).
    """
    from hwsim.trace.format import load

    return trace_sha(load(trace_dir, verify=False))


def trace_sha(trace: Any) -> str:
    """:func:`manifest_sha` of an already loaded :class:`hwsim.trace.format.Trace`."""
    man = {k: v for k, v in trace.manifest.items() if k not in _VOLATILE}
    return hashlib.sha256(json.dumps(man, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def point_path(out: str | os.PathLike, key: str) -> Path:
    return Path(out) / POINTS_DIR / f"{key}.json"


def write_point(out: str | os.PathLike, task: PointTask, result: Mapping[str, Any]) -> Path:
    """Store one point's result atomically (temp file + rename): a killed sweep leaves no half files."""
    p = point_path(out, task.key)
    atomic_write_text(p, json.dumps({"point": task.describe(), "result": dict(result)}, indent=1))
    return p


def read_point(path: str | os.PathLike) -> dict[str, Any]:
    """A stored point: ``{"point": {...}, "result": results-JSON}``."""
    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{p}: not valid JSON ({e}); delete it to recompute this point") from None
    if not isinstance(d, dict) or "point" not in d or "result" not in d:
        raise ValueError(f"{p}: fields 'point' and 'result' are required; delete it to recompute this point")
    return d


