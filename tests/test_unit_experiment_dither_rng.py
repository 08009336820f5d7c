"""``hwsim experiment ... --dither-rng``: the flag (one definition shared with ``hwsim trace``), its way from the
command line into every experiment's capture settings, and where the report records it — without training."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess

import pytest

from hwsim.capture.config import DEFAULT_DITHER_RNG, DITHER_RNGS
from hwsim.commands import experiment as exp_cmd
from hwsim.commands import trace as trace_cmd
from hwsim.experiments import distributed, meprop, table1

EXPERIMENTS = {"meprop": meprop, "distributed": distributed, "table1": table1}


class _ParseError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # raise instead of printing usage and exiting
        raise _ParseError(message)


def _parser(module) -> _Parser:
    p = _Parser(prog="hwsim x")
    module.add_arguments(p)
    return p


def _action(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    return next(a for a in parser._actions if flag in a.option_strings)


def _sub(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


@pytest.mark.parametrize("experiment", sorted(EXPERIMENTS))
def test_every_experiment_has_the_trace_commands_dither_rng_flag(experiment):
    theirs = _action(_sub(_parser(exp_cmd), experiment), "--dither-rng")
    ours = _action(_parser(trace_cmd), "--dither-rng")
    assert (theirs.dest, theirs.default, tuple(theirs.choices), theirs.help) == (
        ours.dest, ours.default, tuple(ours.choices), ours.help)
    assert (theirs.dest, theirs.default, tuple(theirs.choices)) == ("dither_rng", DEFAULT_DITHER_RNG, DITHER_RNGS)


@pytest.mark.parametrize("experiment", sorted(EXPERIMENTS))
@pytest.mark.parametrize("argv,want", [([], DEFAULT_DITHER_RNG), (["--dither-rng", "sfc64"], "sfc64"),
                                        (["--quick", "--dither-rng", "sfc64"], "sfc64")])
def test_the_flag_reaches_the_experiment_config(experiment, argv, want, tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(importlib.import_module("torch"), "set_num_threads", lambda n: None)
    monkeypatch.setattr(EXPERIMENTS[experiment], "run_experiment", lambda cfg, out, **kw: seen.append(cfg))
    args = _parser(exp_cmd).parse_args([experiment, *argv, "--out", str(tmp_path / "o"), "--quiet"])
    exp_cmd._run(args)
    assert len(seen) == 1 and seen[0].dither_rng == want


def test_a_stream_that_does_not_exist_is_refused_naming_the_flag():
    with pytest.raises(_ParseError, match=r"argument --dither-rng: invalid choice: 'philox' \(choose from 'counter', 'sfc64'\)"):
        _parser(exp_cmd).parse_args(["table1", "--dither-rng", "philox"])


def _stub_training(monkeypatch):
    seen = []

    def train_and_capture(config):
        seen.append(config)
        return type("R", (), {"test_acc": 0.5, "mean_density": 0.5, "weighted_density": 0.5, "max_bits": 3,
                              "iterations": 1})()

    monkeypatch.setattr(importlib.import_module("hwsim.capture.train"), "train_and_capture", train_and_capture)
    return seen


def test_meprop_and_table1_capture_with_the_configured_stream(monkeypatch):
    seen = _stub_training(monkeypatch)
    meprop.run_all(meprop.MepropConfig(s_values=(2.0,), k_values=(10,), seeds=(0,), dither_rng="sfc64"))
    table1.run_all(table1.Table1Config(models=("lenet5",), dither_rng="sfc64"))
    assert len(seen) == 3 + 4 and {c.capture.dither_rng for c in seen} == {"sfc64"}


def test_distributed_passes_the_stream_to_every_torchrun_job(tmp_path, monkeypatch):
    cmds = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: cmds.append(cmd))
    distributed._torchrun(distributed.DistributedConfig(dither_rng="sfc64"), nodes=2, method="dither", seed=0,
                          out=tmp_path)
    cmd = cmds[0]
    assert cmd[cmd.index("trace") - 1:cmd.index("trace") + 1] == ["hwsim", "trace"]
    assert cmd[cmd.index("--dither-rng") + 1] == "sfc64"


def test_the_report_records_the_stream_with_the_other_capture_settings(tmp_path):
    row = meprop.RunRow(method="dither", param=2.0, seed=0, test_acc=0.9, sparsity=0.8, weighted_sparsity=0.8,
                        max_bits=3, iterations=5, seconds=1.0)
    out = meprop.write_report([row], meprop.MepropConfig(s_values=(2.0,), dither_rng="sfc64"), tmp_path / "m")
    assert json.loads((out / "results.json").read_text())["config"]["dither_rng"] == "sfc64"
    assert "dither stream sfc64" in (out / "index.md").read_text()
    cell = table1.Cell(model="lenet5", column="dithered", seed=0, test_acc=0.9, sparsity=0.8, max_bits=3,
                       seconds=1.0)
    out = table1.write_report([cell], table1.Table1Config(models=("lenet5",), dither_rng="sfc64"), tmp_path / "t")
    assert json.loads((out / "results.json").read_text())["config"]["dither_rng"] == "sfc64"
    assert "dither stream sfc64" in (out / "index.md").read_text()
