"""``hwsim synth`` and ``hwsim compare`` refusals, run in-process (hwsim/commands/synth.py, compare.py): exit code 2,
one line on stderr naming the flag and what is allowed, and nothing written to ``--out``."""

from __future__ import annotations

import pytest

from hwsim.cli import main

GATHER = '{"attn": {"a": 0.5}}'


@pytest.mark.parametrize("argv,message", [
    ([], "synth: give --model, --scalesim-csv, --han2015 or --sweep"),
    (["--sweep", "1,x"], "--sweep: '1,x' is not allowed; allowed: comma-separated densities"),
    (["--sweep", "0.5", "--han2015"],
     "--sweep: cannot be combined with --han2015, --per-layer-json, --per-kind-json or --densities-from"),
    (["--han2015", "--per-kind-json", GATHER], "--han2015: cannot be combined with --per-kind-json or --densities-from"),
    (["--model", "gpt2_small", "--per-kind-json", '{"atn": {"a": 0.5}}'],
     "--per-kind-json: unknown kind(s) ['atn']; allowed: proj, attn, mlp, other"),
    (["--model", "gpt2_small", "--per-kind-json", '{"attn": {"b": 0.5}}'],
     "--per-kind-json: attn.b: unknown role; allowed: w, a, dz"),
    (["--model", "gpt2_small", "--per-kind-json", '{"attn": {"a": 2}}'],
     "--per-kind-json: attn.a: density 2 is not allowed; allowed: a number in [0, 1]"),
    (["--model", "gpt2_small", "--per-kind-json", '{"attn": {"a": true}}'],
     "--per-kind-json: attn.a: density True is not allowed; allowed: a number in [0, 1]"),
    (["--model", "lenet5", "--per-layer-json", '{"a": '],
     "--per-layer-json: not valid JSON (Expecting value: line 1 column 7 (char 6)); allowed: "
     "{layer: {w|a|dz: density}}"),
    (["--model", "lenet5", "--per-layer-json", '{"conv1": 1}'],
     "--per-layer-json: must be an object {layer: {w|a|dz: density}}"),
    (["--model", "lenet5", "--per-layer-json", "/nonexistent/p.json"],
     "--per-layer-json: /nonexistent/p.json: no such JSON file"),
    (["--model", "lenet5", "--seq", "8"],
     "--seq: not allowed with --model lenet5; allowed with --model gpt2_small, gpt2_medium, bert_base, vit_b16, "
     "llama_block"),
    (["--han2015", "--blocks", "2", "--head"],
     "--blocks, --head: not allowed with --han2015; allowed with --model gpt2_small, "),
])
def test_synth_refusals(tmp_path, capsys, argv, message):
    out = tmp_path / "t"
    assert main(["synth", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"hwsim synth: error: {message}") and "\n" not in err
    assert not out.exists()


def test_per_layer_json_from_a_file(tmp_path, capsys):
    f = tmp_path / "d.json"
    f.write_text('{"conv1": [0.5]}')
    assert main(["synth", "--model", "lenet5", "--per-layer-json", str(f), "--out", str(tmp_path / "t")]) == 2
    assert capsys.readouterr().err.strip() == ("hwsim synth: error: --per-layer-json: must be an object "
                                               "{layer: {w|a|dz: density}}")


def test_compare_plot_needs_an_image_suffix(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "no-trace"), "--arch", "scnn", "--plot", "x.pdf"]) == 2
    assert capsys.readouterr().err.strip() == "hwsim compare: error: --plot: x.pdf must end in .png or .svg"
