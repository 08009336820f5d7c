"""``hwsim sweep FILE --dry-run`` (hwsim/commands/sweep.py): the point count configs × traces × seeds and one line
per config and trace, with nothing simulated or written; ``--max-points`` bounds that count."""

from __future__ import annotations

import yaml

from hwsim.cli import main

SPEC = {"version": 1, "name": "dry", "arch": "scnn",
        "grid": {"pe_array.rows,pe_array.cols": [2, 4], "memory.dram_bytes_per_cycle": [8.0, 64.0, 128.0]},
        "traces": [{"name": "t", "synthetic": {"model": "lenet5", "dz_density": 0.1, "batch": 1}}],
        "seeds": [0, 1]}


def test_dry_run_lists_the_points_and_writes_nothing(tmp_path, capsys):
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(SPEC, sort_keys=False))
    out = tmp_path / "sw"
    assert main(["sweep", str(f), "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # 2 array sizes × 3 bandwidths = 6 configs, 1 trace, 2 seeds
    assert lines[0] == "sweep dry: 6 configs × 1 traces × 2 seeds = 12 points"
    assert lines[1] == ("  config 0: pe_array.rows=2, pe_array.cols=2, memory.dram_bytes_per_cycle=8.0")
    assert lines[6] == ("  config 5: pe_array.rows=4, pe_array.cols=4, memory.dram_bytes_per_cycle=128.0")
    assert lines[7].startswith("  trace t: {") and "'model': 'lenet5'" in lines[7] and len(lines) == 8
    assert not out.exists()


def test_max_points_bounds_the_count(tmp_path, capsys):
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(SPEC, sort_keys=False))
    assert main(["sweep", str(f), "--out", str(tmp_path / "sw"), "--dry-run", "--max-points", "11"]) == 2
    err = capsys.readouterr().err
    assert "12 points exceeds the limit of 11" in err and err.count("\n") == 1
