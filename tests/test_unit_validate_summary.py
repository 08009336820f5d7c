"""``hwsim validate``'s summary (hwsim/commands/validate.py), the lines a designer reads to check a YAML file (the
field-by-field lines are in test_unit_commands_helpers.py): the array, multiplier and accumulator counts, the
on-chip pool residency may use, the vector lanes, ``--hash`` and a bad file among good ones. Expected counts worked out from the shipped
configs (scnn: 8×8 PEs of 4×4 8-bit multipliers, 10 KB input and output RAM per PE, 1 MB global buffer)."""

from __future__ import annotations

from hwsim.arch import load_arch
from hwsim.cli import main
from hwsim.commands.validate import summary


def _lines(name: str, **overrides) -> dict[str, str]:
    out = {}
    for ln in summary(load_arch(name, overrides or None)).splitlines()[1:]:
        key, _, rest = ln.strip().partition("  ")
        out.setdefault(key.strip(), rest.strip())
    return out


def test_scnn_counts_and_pools():
    s = _lines("scnn")
    assert s["PEs"] == "8×8 = 64"
    assert s["multipliers"] == "4×4 per PE, 1024 total, 8-bit, 24-bit accumulators"
    assert s["accumulators"] == "32 banks × 32 entries, queue depth 4, Kc = 8"
    # 10 + 10 KB of PE RAM per PE on 64 PEs, and the 1 MB global buffer
    assert s["on-chip pool"] == ("20 KB per PE (input + output RAM) × 64 + global buffer 1024 KB; greedy placement in "
                                 "execution order")
    assert s["NSD unit"].startswith("64 lanes (1/PE)") and s["vector unit"].startswith("64 fp32 lanes (1/PE)")
    assert "mac" not in s                                       # parallel MACs: no multiplier-kind line


def test_a_systolic_array_has_no_pe_rams_no_reduction_and_no_nsd_unit():
    s = _lines("systolic32")
    assert s["PEs"] == "32×32 = 1024" and s["multipliers"] == "1×1 per PE, 1024 total, 8-bit, 32-bit accumulators"
    assert s["on-chip pool"] == "global buffer 192 KB; greedy placement in execution order"
    assert "δW reduction" not in s and "NSD unit" not in s
    assert s["vector unit"].startswith("32 fp32 lanes (1/column)")
    lines = summary(load_arch("scnn", {"memory.inter_layer_residency": False})).splitlines()
    assert "  memory policy nothing resident: every tensor through DRAM" in lines
    assert not any(ln.startswith("  on-chip pool") for ln in lines)      # nothing may stay on chip


def test_hash_mode_and_a_bad_file_among_good_ones(tmp_path, capsys):
    assert main(["validate", "--hash", "scnn"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == f"{load_arch('scnn').content_hash()}  {load_arch('scnn').source}"
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\n")
    assert main(["validate", "--hash", str(bad), "scnn"]) == 2
    cap = capsys.readouterr()
    assert cap.out.strip() == out                              # the good file is still validated
    assert cap.err.startswith(f"hwsim validate: error: {bad}: ") and cap.err.count("\n") == 1
