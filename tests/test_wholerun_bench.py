"""benchmarks/bench_wholerun.py's --json results (estimator error, max_examples error) feed the README generators."""

from __future__ import annotations

import json
from pathlib import Path

from _scripts import load_script

from hwsim.trace.format import load

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "traces" / "samples" / "lenet5-digits-dither"   # batch 64, 8 examples stored per sample


def _load(name: str, path: Path):
    return load_script(path)


def test_max_examples_json_compares_the_stored_batch_with_its_first_examples(tmp_path):
    bench = _load("bench_wholerun", ROOT / "benchmarks" / "bench_wholerun.py")
    out = tmp_path / "max.json"
    assert bench.main(["--max-examples", str(SAMPLE), "--keep", "4", "2", "--json", str(out),
                       "--capture", "hwsim trace X"]) == 0
    doc = json.loads(out.read_text())
    assert doc["command"].startswith("python benchmarks/bench_wholerun.py --max-examples ")
    assert "--capture" not in doc["command"] and doc["capture"] == "hwsim trace X"
    assert {(r["keep"], r["batch"]) for r in doc["rows"]} == {(2, 8), (4, 8)}
    assert len(doc["rows"]) == 2 * len(load(SAMPLE).sampled_iterations)
    r = doc["rows"][0]
    assert r["sample"]["dense_cycles"] < r["full"]["dense_cycles"]
    assert r["full"]["speedup"] == r["full"]["dense_cycles"] / r["full"]["sparse_cycles"]
    lines = _load("readme_tables", ROOT / "scripts" / "readme_tables.py").max_examples_table(doc)
    assert sum(x.startswith("|") for x in lines) == 2 + len(doc["rows"])


def test_error_json_holds_the_truth_and_every_estimate(tmp_path):
    bench = _load("bench_wholerun", ROOT / "benchmarks" / "bench_wholerun.py")
    out = tmp_path / "err.json"
    assert bench.main(["--error", str(SAMPLE), "--jobs", "1", "--cache", str(tmp_path / "points"),
                       "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    every = [r for r in doc["rows"] if r["kind"] == "every"]
    assert [r["every"] for r in every] == [2, 5]             # 6 sampled iterations: larger N are skipped
    assert [r["replayed"] for r in every] == [4, 2]          # of 0,10,20,30,40,45: 0,20,40 + 45; 0 + 45
    assert all(r["phases"] == r["every"] for r in every)
    assert {r["kind"] for r in doc["rows"]} == {"every", "last", "first"}
    lines = _load("readme_tables", ROOT / "scripts" / "readme_tables.py").estimator_error_table(doc)
    assert lines[2].startswith("| every:2 | 4 |")
