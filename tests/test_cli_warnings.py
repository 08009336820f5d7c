"""Warnings under the command line print as one line ``hwsim <command>: warning: …`` (issue 20, item 6)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _hwsim(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "hwsim", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


def test_cli_warning_is_one_line_without_a_source_line(tmp_path):
    import torch
    from torch import nn

    import hwsim

    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    with hwsim.capture(m, out=tmp_path / "t", sample_every=1) as cap:
        for b in (16, 16, 4):  # the last mini-batch is partial: replaying it alone draws a caveat
            loss = nn.functional.cross_entropy(m(torch.randn(b, 8)), torch.randint(0, 4, (b,)))
            opt.zero_grad()
            loss.backward()
            opt.step()
            cap.step(loss=loss.item())
    r = _hwsim("simulate", str(tmp_path / "t"), "--arch", "scnn", "--iterations", "2", "--out",
               str(tmp_path / "r.json"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    warned = [ln for ln in r.stderr.splitlines() if "warning" in ln.lower()]
    assert len(warned) == 1, r.stderr
    assert warned[0].startswith("hwsim simulate: warning: ") and "partial mini-batch" in warned[0]
    assert "simulate_run(" not in r.stderr and "UserWarning" not in r.stderr and ".py:" not in r.stderr
