"""Summaries report the GEMMs whose δz was dithered apart from those left plain (issue 20, item 6).

Capture dithers δz of every weight GEMM but, without ``dither_attention``, leaves attention's activation×activation
products (QKᵀ, P·V) plain: their density (near 1) and bit-width (float δz binned at Δ) used to be mixed, unmarked,
into the trace's "δ̃z density" and "max bits" in ``hwsim inspect`` and the report's training table.
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hwsim
from hwsim.commands import inspect as inspect_cmd
from hwsim.report import build as report_build
from hwsim.report.inputs import load_inputs

torch.set_num_threads(1)


class _Attn(nn.Module):
    """q/k/v projections, SDPA (its QKᵀ and P·V: activation × activation) and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.q, self.k, self.v = nn.Linear(16, 16), nn.Linear(16, 16), nn.Linear(16, 16)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.scaled_dot_product_attention(self.q(x), self.k(x), self.v(x))
        return self.head(h.mean(1))


WEIGHT_GEMMS = {"q", "k", "v", "head"}


def _capture(path, **kw):
    torch.manual_seed(0)
    m = _Attn()
    opt = torch.optim.SGD(m.parameters(), lr=0.05)
    with hwsim.capture(m, method="dither", s=4.0, out=path, sample_every=1, **kw) as cap:
        for _ in range(3):
            loss = F.cross_entropy(m(torch.randn(8, 6, 16)), torch.randint(0, 4, (8,)))
            opt.zero_grad()
            loss.backward()
            opt.step()
            cap.step(loss=loss.item())
    return path


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    d = tmp_path_factory.mktemp("plain")
    return _capture(d / "default"), _capture(d / "dithered_attention", dither_attention=True)


def _by_hand(path, names):
    """Element-weighted density and max bits over the layers ``names`` of the trace at ``path``."""
    tr = hwsim.load_trace(path)
    size = {g.name: int(np.prod(g.output_shape)) for g in tr.layers}
    nnz = sum(st.density * size[n] for it in tr.iterations for n, st in it.layers.items() if n in names)
    numel = sum(size[n] for it in tr.iterations for n in it.layers if n in names)
    bits = max(st.max_bits for it in tr.iterations for n, st in it.layers.items() if n in names)
    return nnz / numel, bits


def test_inspect_summary_splits_dithered_from_plain_gemms(traces):
    path = traces[0]
    info = inspect_cmd.inspect_trace(str(path))
    rows = {r["name"]: r for r in info["layers"]}
    plain = {n for n, r in rows.items() if r["plain_dz"]}
    assert plain == set(rows) - WEIGHT_GEMMS and plain  # the attention products, nothing else
    s = info["summary"]
    dens, bits = _by_hand(path, WEIGHT_GEMMS)
    assert s["density"] == pytest.approx(dens) and s["max_bits"] == bits
    p_dens, p_bits = _by_hand(path, plain)
    assert s["plain"]["layers"] == len(plain)
    assert s["plain"]["density"] == pytest.approx(p_dens) and s["plain"]["max_bits"] == p_bits
    assert p_dens > dens  # the plain products are the denser: mixing them raised the summary


def test_inspect_prints_the_plain_gemms_on_their_own_line(traces, capsys):
    assert inspect_cmd.run(argparse.Namespace(trace=str(traces[0]), iteration=None, json=False)) == 0
    out = capsys.readouterr().out
    s = inspect_cmd.inspect_trace(str(traces[0]))["summary"]
    assert f"δ̃z density {s['density']:.4f}" in out and "4 dithered GEMMs" in out
    assert f"plain δz of {s['plain']['layers']} GEMMs not dithered" in out and "--dither-attention" in out
    rows = [ln for ln in out.splitlines() if ln.split(" ", 1)[0] in ("q", "qk", "pv")]
    assert [ln.split()[2] for ln in rows] == ["dither", "plain", "plain"]  # the δz column next to the kind


def test_a_trace_without_plain_gemms_keeps_one_summary(traces):
    info = inspect_cmd.inspect_trace(str(traces[1]))  # dither_attention: every GEMM dithered
    assert info["summary"]["plain"] is None and not any(r["plain_dz"] for r in info["layers"])
    names = {r["name"] for r in info["layers"]}
    dens, bits = _by_hand(traces[1], names)
    assert info["summary"]["density"] == pytest.approx(dens) and info["summary"]["max_bits"] == bits


def test_report_training_table_splits_dithered_from_plain(traces, tmp_path):
    entries = load_inputs([traces[0], traces[1]]).traces
    table = report_build._training_table(entries, tmp_path)
    rows = {e.meta.dither_attention: r for e, r in zip(entries, table.body, strict=True)}
    head = list(table.header)
    dens_col, bits_col, plain_col = (head.index(h) for h in ("mean δ̃z density (last 10%)", "worst-case δ̃z bits",
                                                              "plain δz (not dithered)"))
    tr = hwsim.load_trace(traces[0])
    plain = {g.name for g in tr.layers} - WEIGHT_GEMMS
    _, bits = _by_hand(traces[0], WEIGHT_GEMMS)
    _, p_bits = _by_hand(traces[0], plain)
    assert rows[False][bits_col] == str(bits) and bits < p_bits
    assert rows[False][plain_col].startswith(f"{len(plain)} GEMMs: ") and f"{p_bits} bits" in rows[False][plain_col]
    assert rows[True][plain_col] == "–"
    assert "plain δz" in table.note
    assert rows[False][dens_col] != rows[True][dens_col]
