"""Unit tests of the hwsim sub-commands' argument parsers (hwsim/commands/*.py add_arguments), without running them."""

from __future__ import annotations

import argparse
import importlib

import pytest

from hwsim.commands import experiment as exp_cmd
from hwsim.commands import trace as trace_cmd

COMMANDS = ("compare", "demo", "experiment", "inspect", "report", "simulate", "sweep", "synth", "trace", "validate")


class _ParseError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # raise instead of printing usage and exiting
        raise _ParseError(message)


def parse(command: str, argv: list[str]) -> argparse.Namespace:
    p = _Parser(prog=f"hwsim {command}")
    importlib.import_module(f"hwsim.commands.{command}").add_arguments(p)
    return p.parse_args(argv)


def parse_error(command: str, argv: list[str]) -> str:
    with pytest.raises(_ParseError) as ei:
        parse(command, argv)
    return str(ei.value)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_the_module_interface(command):
    mod = importlib.import_module(f"hwsim.commands.{command}")
    assert isinstance(mod.HELP, str) and mod.HELP and "\n" not in mod.HELP
    assert callable(mod.add_arguments) and callable(mod.run)


def test_simulate_defaults_and_repeatable_set():
    a = parse("simulate", ["t", "--arch", "scnn"])
    assert (a.trace, a.arch, a.overrides, a.iteration, a.seed) == ("t", "scnn", [], None, 0)
    assert (a.out, a.jobs, a.iterations, a.inference, a.overwrite) == ("results.json", 1, None, False, False)
    a = parse("simulate", ["t", "--arch", "scnn", "--set", "pe.mac_bits=16", "--set", "clock_ghz=2",
                           "--iterations", "every:3", "-j", "4"])
    assert a.overrides == ["pe.mac_bits=16", "clock_ghz=2"]
    assert a.iterations == "every:3" and a.jobs == 4


@pytest.mark.parametrize("argv,fragment", [
    (["t"], "--arch"),
    (["t", "--arch", "scnn", "--seed", "-1"], "--seed"),
    (["t", "--arch", "scnn", "--iteration", "x"], "--iteration"),
    (["t", "--arch", "scnn", "--jobs", "0"], "--jobs"),
    (["t", "--arch", "scnn", "--jobs", "257"], "--jobs"),
])
def test_simulate_errors_name_the_flag(argv, fragment):
    assert fragment in parse_error("simulate", argv)


def test_compare_arch_is_repeated_and_required():
    a = parse("compare", ["t", "--arch", "scnn", "--arch", "scnn_bitserial"])
    assert a.arch == ["scnn", "scnn_bitserial"]
    assert (a.csv, a.plot, a.seed, a.iteration) == (None, None, 0, None)
    assert "--arch" in parse_error("compare", ["t"])


def test_sweep_defaults_and_bounds():
    a = parse("sweep", ["s.yaml", "--out", "d"])
    assert (a.jobs, a.scheduler, a.timeout, a.max_points, a.dry_run) == (1, None, 10.0, None, False)
    assert parse("sweep", ["s.yaml", "--out", "d", "--timeout", "3600"]).timeout == 3600.0
    for bad in ("0", "3601", "nan"):
        assert "--timeout" in parse_error("sweep", ["s.yaml", "--out", "d", "--timeout", bad]), bad
    assert "--max-points" in parse_error("sweep", ["s.yaml", "--out", "d", "--max-points", "0"])
    assert "--out" in parse_error("sweep", ["s.yaml"])


def test_report_dpi_range():
    a = parse("report", ["r.json", "--out", "rep"])
    assert (a.inputs, a.dpi, a.title) == (["r.json"], 150, None)
    assert parse("report", ["a", "b", "--out", "rep", "--dpi", "50"]).dpi == 50
    assert "--dpi" in parse_error("report", ["a", "--out", "rep", "--dpi", "49"])
    assert "--dpi" in parse_error("report", ["a", "--out", "rep", "--dpi", "601"])


def test_demo_inspect_validate_defaults():
    d = parse("demo", [])
    assert (d.quick, d.out, d.jobs, d.quiet) == (False, "reports/demo", None, False)
    assert "--jobs" in parse_error("demo", ["-j", "0"])
    i = parse("inspect", ["t", "--iteration", "3", "--json"])
    assert (i.iteration, i.json) == (3, True)
    v = parse("validate", ["scnn", "x.yaml", "--set", "pe.mac_bits=16", "--hash"])
    assert (v.files, v.overrides, v.hash) == (["scnn", "x.yaml"], ["pe.mac_bits=16"], True)


def test_synth_densities_and_exclusive_sources():
    a = parse("synth", ["--model", "lenet5", "--out", "o"])
    assert (a.w_density, a.a_density, a.dz_density, a.level_p, a.max_level, a.batch) == (1.0, 1.0, 0.1, 0.6, 15, 1)
    assert a.sweep is None and str(a.out) == "o"
    # --sweep without values means 1.0, 0.9, ..., 0.1
    swept = parse("synth", ["--out", "o", "--sweep"]).sweep.split(",")
    assert [float(x) for x in swept] == pytest.approx([round(1 - 0.1 * i, 1) for i in range(10)])
    assert parse("synth", ["--out", "o", "--sweep", "0.5,0.25"]).sweep == "0.5,0.25"
    for flag, bad in (("--w-density", "0"), ("--a-density", "1.5"), ("--level-p", "1"), ("--max-level", "0")):
        assert flag in parse_error("synth", ["--model", "lenet5", "--out", "o", flag, bad]), flag
    assert "not allowed with" in parse_error("synth", ["--model", "lenet5", "--han2015", "--out", "o"])


def test_trace_defaults_match_the_module_constants():
    a = parse("trace", ["--model", "lenet5"])
    assert (a.method, a.s, a.k, a.epochs) == ("dither", trace_cmd.DEFAULT_S, trace_cmd.DEFAULT_K,
                                              trace_cmd.DEFAULT_EPOCHS)
    assert (a.batch_size, a.lr, a.momentum, a.weight_decay) == (None, None, 0.9, 5e-4)
    assert (a.sample_every, a.stats_every, a.seed, a.device, a.s_rule, a.bn) == (50, 1, 0, "cpu", "sqrt", "local")
    assert parse("trace", ["--model", "lenet5", "--scale", "2.5"]).s == 2.5  # torchrun-safe alias of --s
    assert "--method" in parse_error("trace", ["--model", "lenet5", "--method", "topk"])
    assert "--momentum" in parse_error("trace", ["--model", "lenet5", "--momentum", "1"])
    assert "--model" in parse_error("trace", [])


# --- hwsim experiment: sub-parsers and list types -----------------------------------------------------------------

def test_experiment_list_types():
    assert exp_cmd._floats("1, 2.5,") == (1.0, 2.5)
    assert exp_cmd._ints("1,2,8") == (1, 2, 8)
    assert exp_cmd._seeds("3") == (0, 1, 2)
    assert exp_cmd._seeds("0,5") == (0, 5)
    assert exp_cmd._seeds("7,") == (7,)
    for fn, bad in ((exp_cmd._floats, ","), (exp_cmd._floats, "0"), (exp_cmd._ints, ""), (exp_cmd._ints, "0,1"),
                    (exp_cmd._seeds, "0"), (exp_cmd._seeds, "-1,2"), (exp_cmd._seeds, "1001")):
        with pytest.raises(argparse.ArgumentTypeError):
            fn(bad)


def test_experiment_subcommands_and_defaults():
    m = parse("experiment", ["meprop", "--s", "1,2", "--k", "10,20", "--seeds", "2"])
    assert m.experiment == "meprop" and m.out == "reports/meprop"
    assert (m.s_values, m.k_values, m.seeds, m.epochs, m.threads) == ((1.0, 2.0), (10, 20), (0, 1), None, 1)
    d = parse("experiment", ["distributed", "--nodes", "1,4", "--methods", "dither,none"])
    assert (d.nodes, d.methods, d.out, d.keep_traces) == ((1, 4), ("dither", "none"), "reports/distributed", False)
    t = parse("experiment", ["table1", "--models", "mlp500"])
    assert (t.models, t.out, t.s) == (("mlp500",), "reports/table1", None)
    assert "experiment" in parse_error("experiment", []).lower()
    assert "--nodes" in parse_error("experiment", ["distributed", "--nodes", "0"])
    assert "--s-rule" in parse_error("experiment", ["distributed", "--s-rule", "cube"])


def test_experiment_config_replaces_only_given_options():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Cfg:
        epochs: int = 10
        lr: float = 0.1
        model: str = "mlp500"

    base, quick = Cfg(), Cfg(epochs=1)
    args = parse("experiment", ["meprop", "--lr", "0.5"])
    assert exp_cmd._config(args, base, quick, ("epochs", "lr", "model")) == Cfg(epochs=10, lr=0.5)
    args = parse("experiment", ["meprop", "--quick", "--epochs", "3"])
    assert exp_cmd._config(args, base, quick, ("epochs", "lr", "model")) == Cfg(epochs=3, lr=0.1)
    args = parse("experiment", ["meprop", "--quick"])
    assert exp_cmd._config(args, base, quick, ("epochs",)) == quick
