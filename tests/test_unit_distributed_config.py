"""DistributedOptions (frozen, self-validating) and train_distributed's checks before and after joining a job."""

from __future__ import annotations

import dataclasses
import json
import re
import socket

import numpy as np
import pytest

import hwsim
from hwsim.capture import CaptureConfig, DistributedOptions, TrainConfig
from hwsim.capture import distributed as ddp
from hwsim.cli import main
from hwsim.trace.format import load


@pytest.mark.parametrize(("kw", "message"), [
    ({"s_rule": "cube"}, r"s rule 'cube' is unknown; choose one of \('sqrt', 'linear', 'const'\)"),
    ({"lr_rule": "sqrt"}, r"lr rule 'sqrt' is unknown; choose one of \('linear', 'given'\)"),
    ({"lr_rule": None}, "lr rule None is unknown"),
    ({"bn": "batch"}, r"bn 'batch' is unknown; choose one of \('local', 'frozen', 'sync'\)"),
    ({"backend": ""}, "backend must be a torch.distributed backend name or None, got ''"),
    ({"backend": 3}, "backend must be a torch.distributed backend name or None, got 3"),
    ({"steps": 0}, "steps must be a positive integer or None, got 0"),
    ({"steps": -2}, "steps must be a positive integer or None"),
    ({"steps": 2.0}, "steps must be a positive integer or None, got 2.0"),
    ({"steps": True}, "steps must be a positive integer or None, got True"),
])
def test_distributed_options_reject_each_bad_field(kw, message):
    with pytest.raises(ValueError, match=message):
        DistributedOptions(**kw)


def test_distributed_options_defaults_frozen_and_replace_validates_again():
    o = DistributedOptions()
    assert (o.s_rule, o.lr_rule, o.bn, o.backend, o.steps) == ("sqrt", "linear", "local", None, None)
    assert hwsim.DistributedOptions is DistributedOptions is ddp.DistributedOptions
    steps = DistributedOptions(steps=np.int64(30)).steps
    assert steps == 30 and type(steps) is int  # JSON meta, arithmetic
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.bn = "frozen"  # type: ignore[misc]
    assert dataclasses.replace(o, bn="frozen", backend="gloo").bn == "frozen"
    with pytest.raises(ValueError, match="bn 'none' is unknown"):
        dataclasses.replace(o, bn="none")
    assert ddp.S_RULES == ("sqrt", "linear", "const") and ddp.BN_MODES == ("local", "frozen", "sync")


@pytest.fixture
def no_torchrun(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)


def test_train_distributed_checks_types_and_what_it_can_train_before_joining(no_torchrun):
    config = TrainConfig(model="lenet300", batch_size=1)
    with pytest.raises(TypeError, match="config must be a TrainConfig, got dict"):
        ddp.train_distributed({"model": "lenet300"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="options must be a DistributedOptions, got dict"):
        ddp.train_distributed(config, {"bn": "local"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="--model gpt_char: --distributed trains image models only"):
        ddp.train_distributed(TrainConfig(model="gpt_char"))
    with pytest.raises(ValueError, match=r"--device cuda: --distributed trains on the CPU \(one process per node\)"):
        ddp.train_distributed(dataclasses.replace(config, device="cuda"))
    with pytest.raises(ValueError, match="--distributed needs torchrun"):  # only now: a valid config
        ddp.train_distributed(config, DistributedOptions())


@pytest.mark.parametrize(("flags", "message"), [
    (["--device", "cuda"], "--device cuda: --distributed trains on the CPU"),
    (["--model", "gpt_char"], "--model gpt_char: --distributed trains image models only"),
    ([], r"--distributed needs torchrun \(RANK/WORLD_SIZE unset\)"),
])
def test_cli_distributed_messages(flags, message, no_torchrun, tmp_path, capsys):
    argv = ["trace", "--model", "lenet300", *flags, "--distributed", "--out", str(tmp_path / "t"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwsim trace: error: ")
    assert re.search(message, err), err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def world_of_one(monkeypatch):
    """A torch.distributed job of one rank (gloo on localhost) in this process; left cleanly afterwards."""
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    yield
    ddp.shutdown()


@pytest.mark.parametrize(("lr_rule", "lr", "want_lr", "want_rule"), [
    ("linear", 0.1, 0.1 * 2 / 64, "linear: 0.1·global batch/64"),  # config.lr is the rate at batch 64
    ("given", 0.02, 0.02, "given"),
])
def test_lr_rule_in_a_one_rank_job(lr_rule, lr, want_lr, want_rule, world_of_one, tmp_path):
    config = TrainConfig(model="lenet300", epochs=5, batch_size=2, lr=lr, limit_train=16,
                         capture=CaptureConfig(s=2.0, sample_every=0, seed=4))
    r = ddp.train_distributed(config, DistributedOptions(lr_rule=lr_rule, s_rule="linear", bn="frozen", steps=3),
                              out=tmp_path)
    assert (r.rank, r.world_size, r.iterations, r.s) == (0, 1, 3, 2.0)  # steps wins over epochs; s·1
    meta = load(tmp_path / "rank0").meta
    assert meta["lr"] == pytest.approx(want_lr) and meta["lr_rule"] == want_rule and meta["global_batch"] == 2
    assert (meta["s_base"], meta["s_rule"], meta["bn"], meta["steps"], meta["seed"]) == (2.0, "linear", "frozen", 3, 4)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["lr"] == meta["lr"] and run["lr_rule"] == want_rule and run["batch_per_node"] == 2


def test_one_rank_data_parallel_runs_the_same_loop_as_a_single_process(world_of_one, tmp_path):
    """Same batches (none short), s·1, seed + 0, given lr, no BN: DataParallel on 1 rank = SingleProcess, bit for bit."""
    from hwsim.capture.train import train_and_capture

    config = TrainConfig(model="lenet300", epochs=2, batch_size=8, lr=0.03, limit_train=24,
                         capture=CaptureConfig(s=2.0, sample_every=2, seed=3))
    single = train_and_capture(config, out=tmp_path / "single")
    r = ddp.train_distributed(config, DistributedOptions(lr_rule="given", s_rule="const"), out=tmp_path / "ddp")
    assert r.iterations == single.iterations == 6 and r.test_acc == single.test_acc
    a, b = load(tmp_path / "single"), load(tmp_path / "ddp" / "rank0")
    assert a.iterations == b.iterations and a.sampled_iterations == b.sampled_iterations == [0, 2, 4, 5]
    assert {k: v for k, v in b.meta.items() if k in a.meta} == a.meta  # plus the distributed fields
    for f in (tmp_path / "single" / "samples").iterdir():
        assert f.read_bytes() == (tmp_path / "ddp" / "rank0" / "samples" / f.name).read_bytes(), f.name
