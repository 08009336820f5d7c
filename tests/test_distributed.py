"""2-process torchrun on CPU (gloo, localhost): the explicit all-reduce average equals DDP's; rank traces load."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hwsim.trace.format import load

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_scale_s_rules():
    from hwsim.capture.distributed import scale_s

    assert scale_s(4.0, 4, "sqrt") == 8.0 and scale_s(4.0, 4, "linear") == 16.0 and scale_s(4.0, 4, "const") == 4.0
    with pytest.raises(ValueError, match="s rule 'cube' is unknown"):
        scale_s(4.0, 2, "cube")


def test_distributed_learning_rate_scales_linearly_with_the_global_batch(capsys):
    from hwsim.capture import train
    from hwsim.capture.distributed import BASE_BATCH, BASE_LR, scaled_lr
    from hwsim.cli import main

    assert (BASE_LR, BASE_BATCH) == (train.DEFAULT_LR, train.DEFAULT_BATCH)  # anchored at the single-node default
    assert scaled_lr(64) == pytest.approx(0.05)
    assert scaled_lr(2) == pytest.approx(0.0015625)  # 2 nodes × batch 1: the README's distributed command
    assert scaled_lr(8 * 4) == pytest.approx(0.025) and scaled_lr(128) == pytest.approx(0.1)
    assert scaled_lr(2, base_lr=0.1, base_batch=32) == pytest.approx(0.00625)
    with pytest.raises(ValueError, match="global batch must be >= 1"):
        scaled_lr(0)
    try:
        main(["trace", "--help"])
    except SystemExit:
        pass
    helptext = " ".join(capsys.readouterr().out.split())
    assert "linear scaling with the global batch" in helptext and "0.05·nodes·batch/64" in helptext


def test_port_collision_is_recognised_only_from_its_own_messages():
    from hwsim.experiments.distributed import port_collision

    assert port_collision("... port: 29500, useIpv6: 0, code: -98, name: EADDRINUSE, message: address already in use")
    assert port_collision("RuntimeError: Address already in use")
    assert not port_collision("terminate called without an active exception\nSignal 6 (SIGABRT)")
    assert not port_collision("AssertionError: DDP grad != mean of ranks")


def torchrun_once_or_on_port_collision(script: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """Run ``script OUT`` on 2 ranks; a second attempt (in a fresh folder) only after a port collision.

    The free port can be taken between ``free_port()`` and torchrun binding it; that, and only that,
    is retried. Any other first failure fails the test with the first attempt's own output.
    """
    from hwsim.experiments.distributed import port_collision

    for attempt in (1, 2):
        out = tmp_path / f"attempt{attempt}"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
               "--master-port", str(free_port()), str(script), str(out)]
        r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=180)
        if r.returncode == 0 or not port_collision(r.stdout + r.stderr):
            break
    assert r.returncode == 0, f"attempt {attempt} failed:\n" + r.stdout[-3000:] + r.stderr[-3000:]
    return r, out


def test_two_rank_explicit_average_equals_ddp_and_writes_rank_traces(tmp_path):
    r, tmp_path = torchrun_once_or_on_port_collision(Path(__file__).with_name("ddp_grad_worker.py"), tmp_path)
    assert "rank 0: ok" in r.stdout and "rank 1: ok" in r.stdout
    traces = [load(tmp_path / f"rank{i}") for i in range(2)]
    for i, tr in enumerate(traces):
        assert tr.complete and tr.meta["rank"] == i and tr.meta["world_size"] == 2
        assert tr.meta["s"] == pytest.approx(4.0 * 2**0.5) and tr.meta["seed"] == 3 + i
        assert len(tr.iterations) == 32 and tr.layers[0].batch_size == 1
        assert tr.sample()  # the last iteration's operands decode
        assert tr.meta["lr"] == pytest.approx(0.05 * 2 / 64) and tr.meta["lr_rule"].startswith("linear")
        assert tr.meta["global_batch"] == 2
    a, b = (t.iterations[0].layers["net.1"] for t in traces)
    assert a != b  # different data and dither on each node
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["world_size"] == 2 and [x["rank"] for x in run["ranks"]] == [0, 1]
    assert run["ranks"][0]["test_acc"] == run["ranks"][1]["test_acc"]  # same averaged weights everywhere
