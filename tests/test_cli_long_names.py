"""``hwsim inspect`` and ``hwsim simulate`` print full layer names, column-aligned (issue 20, item 4)."""

from __future__ import annotations

import argparse

import pytest
import torch
from torch import nn

import hwsim
from hwsim.commands import inspect as inspect_cmd
from hwsim.commands.simulate import table


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.self_attention_out = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.self_attention_out(x))


class _Encoder(nn.Module):  # ViT-like names: 'encoder.layers.encoder_layer_N.self_attention_out', 12 of them
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Module()
        self.encoder.layers = nn.Sequential(*[_Block() for _ in range(12)])
        self.encoder.layers._modules = {f"encoder_layer_{i}": m for i, m in enumerate(self.encoder.layers)}
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder.layers(x))


NAMES = [f"encoder.layers.encoder_layer_{i}.self_attention_out" for i in range(12)] + ["head"]


@pytest.fixture(scope="module")
def trace_path(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("long")
    torch.manual_seed(0)
    m = _Encoder()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    with hwsim.capture(m, out=tmp_path / "t", sample_every=1) as cap:
        loss = nn.functional.cross_entropy(m(torch.randn(4, 8)), torch.randint(0, 3, (4,)))
        loss.backward()
        opt.step()
        cap.step(loss=loss.item())
    return tmp_path / "t"


def test_inspect_shows_full_names_distinct_and_aligned(trace_path, capsys):
    path, names = trace_path, NAMES
    assert [g.name for g in hwsim.load_trace(path).layers] == names

    assert inspect_cmd.run(argparse.Namespace(trace=str(path), iteration=None, json=False)) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [ln for ln in out if ln.split(" ", 1)[0] in names]
    assert [r.split()[0] for r in rows] == names  # every row its own full name: 13 distinct rows
    head = next(ln for ln in out if ln.startswith("layer "))
    assert {len(r) for r in rows} == {len(head)}  # aligned: every row as wide as the header
    col = head.index("kind")
    assert all(r[col:].split()[0] == "linear" for r in rows)


def test_simulate_table_stays_aligned_with_long_names(trace_path):
    path, names = trace_path, NAMES
    lines = table(hwsim.simulate(path, "scnn")).splitlines()
    body = [ln for ln in lines if ln.split(" ", 1)[0] in names + ["total"]]
    assert [b.split()[0] for b in body] == names + ["total"]
    assert {len(b) for b in body} == {len(lines[0])} == {len(lines[1])}  # every column lines up with the header
    fwd = lines[0].index("fwd speed-up") + len("fwd speed-up")
    assert all(b[fwd - 1] == "×" for b in body)  # the forward speed-ups end in one column
