"""The README's result tables are generated from committed results (scripts/readme_tables.py) and cannot drift."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "scripts" / "readme_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_tables_agree_with_committed_results():
    mod = _module()
    text = (ROOT / "README.md").read_text()
    names = mod.marked_names(text)
    assert {"real-gradients", "scnn", "sensitivity", "whole-run"} <= set(names), names
    assert mod.render(text, mod.tables()) == text, "README tables differ: run `python scripts/readme_tables.py`"


def test_every_generated_table_is_marked_in_the_readme():
    mod = _module()
    assert set(mod.tables()) <= set(mod.marked_names((ROOT / "README.md").read_text()))


def test_a_changed_result_changes_the_rendered_table(tmp_path):
    """The check can fail: edit one committed number in a copy and the rendered README differs."""
    mod = _module()
    shutil.copytree(ROOT / "reports" / "example" / "data", tmp_path / "reports" / "example" / "data")
    shutil.copytree(ROOT / "benchmarks" / "results", tmp_path / "benchmarks" / "results")
    text = (ROOT / "README.md").read_text()
    assert mod.render(text, mod.tables(tmp_path)) == text
    summary = tmp_path / "reports" / "example" / "data" / "summary.json"
    rows = json.loads(summary.read_text())
    shown = next(r for r in rows if r["method"] == "dither" and r["scope"] == "iteration")
    shown["speedup_sparse"] = float(shown["speedup_sparse"]) * 1.5
    summary.write_text(json.dumps(rows))
    assert mod.render(text, mod.tables(tmp_path)) != text


def test_unknown_table_marker_is_an_error():
    mod = _module()
    with pytest.raises(SystemExit, match="no generator"):
        mod.render("<!-- table:nope -->\nx\n<!-- /table:nope -->\n", mod.tables())
