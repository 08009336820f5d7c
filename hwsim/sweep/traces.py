"""Materialise a sweep's traces: existing directories are checked, synthetic specs generated once.

Synthetic traces are generated into ``<out>/traces/`` under a name that includes a hash of the
spec, written to a temporary directory and renamed into place, so a killed sweep never leaves
a half-written trace that a resumed run would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwsim.sweep.spec import SweepError, SweepSpec, TraceSpec

if TYPE_CHECKING:
    from hwsim.trace.records import TraceMeta

TRACES_DIR = "traces"


@dataclass(frozen=True)
class ReadyTrace:
    """A trace on disk, ready to simulate: where it is, its manifest hash, the iteration to replay, its typed meta."""

    spec: TraceSpec
    path: Path
    sha: str
    iteration: int
    meta: TraceMeta


def prepare_traces(spec: SweepSpec, *, out: str | os.PathLike) -> list[ReadyTrace]:
    """Generate missing synthetic traces and validate every trace; one ReadyTrace per TraceSpec."""
    from hwsim.sweep.points import trace_sha
    from hwsim.trace.format import load

    ready = []
    for t in spec.traces:
        path = _synthesize(t, Path(out)) if t.is_synthetic else t.path
        assert path is not None
        where = f"{spec.source or spec.name}: trace {t.label!r}"
        if not (path / "manifest.json").exists():
            raise SweepError(f"{where}: {path} is not a trace directory (no manifest.json)")
        try:
            tr = load(path, verify=True)
        except ValueError as e:
            raise SweepError(f"{where}: {e}") from None
        sampled = tr.sampled_iterations
        if not sampled:
            raise SweepError(f"{where}: {path}/manifest.json field 'samples' is empty; the trace holds no operands")
        it = t.iteration if t.iteration is not None else spec.iteration
        if it is None:  # the last sampled iteration with a full mini-batch (an epoch's short batch would bias it)
            it = tr.default_iteration()[0]
        elif it not in sampled:
            raise SweepError(f"{where}: iteration {it} was not sampled; sampled: {sampled}")
        ready.append(ReadyTrace(spec=t, path=path, sha=trace_sha(tr), iteration=int(it), meta=tr.meta))
    return ready


def synthetic_kwargs(syn: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for :func:`hwsim.trace.synth.synthesize` from a synthetic trace spec."""
    return {k: v for k, v in syn.items() if v is not None}


def _synthesize(t: TraceSpec, out: Path) -> Path:
    from hwsim.trace.synth import synthesize

    assert t.synthetic is not None
    kwargs = synthetic_kwargs(t.synthetic)
    digest = hashlib.sha256(json.dumps(kwargs, sort_keys=True, default=str).encode()).hexdigest()[:10]
    safe = re.sub(r"[^A-Za-z0-9_.=-]+", "_", t.label).strip("_")[:60]
    final = out / TRACES_DIR / f"{safe}-{digest}"
    if (final / "manifest.json").exists():
        return final
    tmp = final.with_name(f".{final.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    try:
        synthesize(tmp, **kwargs)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except TypeError as e:  # a spec key the generator does not take
        raise SweepError(f"trace {t.label!r}: synthetic spec {kwargs}: {e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
