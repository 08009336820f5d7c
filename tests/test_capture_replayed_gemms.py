"""The simulator replays exactly the GEMMs a captured training step ran, and coverage counts the same set.

Capture records per GEMM whether its input needed a gradient (backward-data ran) and whether its
second operand did (backward-weight ran); the simulator and ``gemms_per_iteration`` follow those
records. Token embeddings make the first traced layer's input need a gradient (issue 20, item 1).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import hwsim
from hwsim.sweep.replays import gemms_per_iteration
from hwsim.trace.format import load

PASSES = ("forward", "backward_data", "backward_weight")


def _embedding_first():
    return nn.Sequential(nn.Embedding(100, 32), nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 100)), \
        torch.randint(0, 100, (8,))


def _mlp():
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 100)), torch.randn(8, 32)


def _frozen_middle():  # a frozen layer: its input needs a gradient, its weight does not
    m = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 100))
    m[2].weight.requires_grad_(False)
    m[2].bias.requires_grad_(False)
    return m, torch.randn(8, 32)


def _one_step(tmp_path, build):
    torch.manual_seed(0)
    model, x = build()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    with hwsim.capture(model, out=tmp_path / "t", sample_every=1) as cap:
        loss = nn.functional.cross_entropy(model(x), torch.randint(0, 100, (8,)))
        loss.backward()
        opt.step()
        cap.step(loss=loss.item())
    return cap, load(tmp_path / "t")


@pytest.mark.parametrize("build,first,first_passes", [
    (_embedding_first, "1", {"forward", "backward_data", "backward_weight"}),
    (_mlp, "0", {"forward", "backward_weight"}),
    (_frozen_middle, "0", {"forward", "backward_weight"}),
])
def test_replayed_gemms_are_the_covered_gemms(tmp_path, build, first, first_passes):
    cap, trace = _one_step(tmp_path, build)
    covered = {(n, p) for n, o in cap.coverage.ops.items() if o.captured
               for p, has in zip(PASSES, o.passes, strict=True) if has}
    r = hwsim.simulate(trace, "scnn")
    replayed = {(lp.name, lp.pass_name) for lp in r.layers if lp.pass_name != "update"}
    assert replayed == covered
    assert {p for n, p in replayed if n == first} == first_passes
    gemms = [lp for lp in r.layers if lp.pass_name != "update"]
    assert gemms_per_iteration(trace) == len(gemms) == len(covered)
    # the weight update: one per layer whose weight received a gradient (a frozen layer has none)
    assert {lp.name for lp in r.layers if lp.pass_name == "update"} == {n for n, p in covered if p == "backward_weight"}
    # the same MACs: coverage's captured MACs (one call per name) = the dense MACs of the replayed GEMMs
    macs = {g.name: g.macs for g in trace.layers}
    assert sum(macs[n] for n, _ in replayed) == trace.meta["coverage"]["captured_macs"]
    assert r.run["first_layer_input_grad"] is ("backward_data" in first_passes)


def test_frozen_layer_has_no_backward_weight(tmp_path):
    _, trace = _one_step(tmp_path, _frozen_middle)
    r = hwsim.simulate(trace, "scnn")
    assert [p for lp in r.layers if lp.name == "2" for p in [lp.pass_name]] == ["forward", "backward_data"]
    s = trace.sample()
    assert (s["2"].input_grad, s["2"].weight_grad) == (True, False)
    assert (s["0"].input_grad, s["0"].weight_grad) == (False, True)


def test_flags_are_optional_sample_keys_and_validated(tmp_path):
    import json
    from pathlib import Path

    from hwsim.trace.format import TraceError

    _, trace = _one_step(tmp_path, _embedding_first)
    man = json.loads((tmp_path / "t" / "manifest.json").read_text())
    assert man["version"] == 3 and man["samples"][-1]["layers"]["1"]["input_grad"] is True
    assert trace.grad_flags() == {"1": (True, True), "3": (True, True)}
    man["samples"][-1]["layers"]["1"]["input_grad"] = "yes"
    (tmp_path / "t" / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(TraceError, match=r"samples\[0\]\.layers\.1\.input_grad: 'yes' is not allowed; allowed: true, "
                                         r"false or null"):
        load(tmp_path / "t").sample()
    # a trace written before the flags: every flag unknown, the meta rule decides (first layer: no backward-data)
    old = load(Path(__file__).parent.parent / "traces" / "samples" / "lenet5-digits-dither")
    assert set(old.grad_flags().values()) == {(None, None)}
    assert all(s.input_grad is None for s in old.sample().values())
    assert gemms_per_iteration(old) == 3 * len(old.layers) - 1
