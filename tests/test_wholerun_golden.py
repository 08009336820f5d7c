"""Golden test: the simulator's cycles and energy are unchanged to the last digit.

Recomputes every case of ``tests/golden/regen.py`` (the committed sample trace on several archs and a
synthetic ResNet-18) and compares with ``tests/golden/sim_golden.json``: exact equality of every
integer and float (json round-trips floats exactly). A speed-up must not move a figure; an intended
model change regenerates the file (``PYTHONPATH=. python tests/golden/regen.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

from _scripts import load_script

HERE = Path(__file__).parent / "golden"


def _regen():
    return load_script(HERE / "regen.py")


def _diff(a, b, path="") -> str | None:
    """First path where ``a`` and ``b`` differ (exactly), or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}/{k}: only in {'golden' if k in a else 'new'}"
            d = _diff(a[k], b[k], f"{path}/{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items in golden, {len(b)} now"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            d = _diff(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    if type(a) is not type(b) or a != b:
        return f"{path}: golden {a!r}, now {b!r}"
    return None


def test_simulator_matches_golden_to_the_last_digit():
    golden = json.loads((HERE / "sim_golden.json").read_text())
    now = _regen().compute()
    assert set(now) == set(golden)
    for case in golden:
        d = _diff(golden[case], now[case], case)
        assert d is None, f"simulator output changed: {d} (intended? regenerate with tests/golden/regen.py)"


def test_diff_finds_a_last_digit_change():
    a = {"x": [{"cycles": 10, "e": 1.0000000000000002}]}
    assert _diff(a, json.loads(json.dumps(a))) is None
    assert _diff(a, {"x": [{"cycles": 10, "e": 1.0}]}) is not None
    assert _diff(a, {"x": [{"cycles": 11, "e": 1.0000000000000002}]}) is not None
