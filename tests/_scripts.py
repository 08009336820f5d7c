"""The repository's scripts (``benchmarks/``, ``scripts/``, ``tests/golden/``) as modules for tests: they are
files, not an installed package."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_script(path: str | Path, *, siblings: bool = False) -> ModuleType:
    """Run the script at ``path`` (absolute, or relative to the repository root) as a fresh module named after
    its file. ``siblings``: put its folder on ``sys.path`` first, for a script that imports a sibling script."""
    p = Path(path) if Path(path).is_absolute() else ROOT / path
    if siblings and str(p.parent) not in sys.path:
        sys.path.insert(0, str(p.parent))
    spec = importlib.util.spec_from_file_location(p.stem, p)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
