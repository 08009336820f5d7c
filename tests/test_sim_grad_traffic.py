"""The gradient hand-over in DRAM (hwsim/sim/residency.py, module doc): backward-data l writes δ̃z_{l−1} in exactly
the form its consumers read it, chained or not, so every DRAM read of a layer's gradient reads bytes an earlier
pass wrote."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from _traffic_ledger import ledger

import hwsim
from hwsim.arch import load_arch
from hwsim.sim import residency, schedule
from hwsim.sim.operands import Operands
from hwsim.sim.passes import dram_tensors, run_pass
from hwsim.trace.synth import synthesize

SAMPLE = Path(__file__).resolve().parent.parent / "traces" / "samples" / "lenet5-digits-dither"


def _linear(name: str, *, n: int, c: int, k: int, dz: np.ndarray) -> Operands:
    return Operands(name=name, w=np.ones((k, c, 1, 1), bool), w_struct=np.ones((k, c, 1, 1), bool),
                    a=np.ones((n, c, 1, 1), bool), dz=dz.reshape(n, k, 1, 1), dz_bits=4, groups=1, stride=(1, 1),
                    padding=(0, 0), dilation=(1, 1), out_density=1.0)


def _geo(n: int, c: int, k: int) -> SimpleNamespace:
    return SimpleNamespace(kind="linear", N=n, C=c, K=k, H=1, W=1, P=1, Q=1)


def test_an_unchained_gradient_is_written_in_the_form_its_consumer_reads():
    """A (2 rows, 8 → 6) then B (4 rows, 3 → 5): B's input is A's output re-laid out (as attention's head merge),
    so the shapes do not chain and δ̃z_A crosses DRAM. δ̃z_A: 12 elements, 3 non-zeros at flat positions 0, 5, 11,
    run-length with 8-bit values and 4-bit runs (gaps 0, 4, 5: no filler) = 3 · 12 / 8 = 4.5 bytes (< 12 plain)
    + 1/8 (format flag) = 4.625 bytes. B's backward-data used to write its own δa (12 dense elements: 12 + 1/8 =
    12.125 bytes) while A's backward-data read 4.625."""
    arch = load_arch("scnn")
    dz_a = np.zeros(12, bool)
    dz_a[[0, 5, 11]] = True
    a = _linear("A", n=2, c=8, k=6, dz=dz_a)
    b = _linear("B", n=4, c=3, k=5, dz=np.ones(20, bool))
    geos = [_geo(2, 8, 6), _geo(4, 3, 5)]
    assert not residency.chained(geos[0], geos[1])
    plan = residency.plan([a, b], geos, arch, first_input_grad=True)
    assert residency.role_bytes(a, "dz", arch) == 4.625
    rng = np.random.default_rng(0)

    def run(ops, pname):
        return run_pass(ops, pname, arch, rng=rng, macs_dense=ops.a.size * ops.dz.shape[1], macs_effectual=1,
                        residency=plan[(ops.name, pname)])

    written = run(b, "backward_data").store_bytes.sum()
    read = run(a, "backward_data").load_bytes.sum()   # A's weights are resident: the read is δ̃z_A alone
    assert written == read == 4.625
    assert dram_tensors(b, "backward_data", arch, plan[("B", "backward_data")])["grad"] == 4.625
    assert dram_tensors(a, "backward_data", arch, plan[("A", "backward_data")]) == {"dz": 4.625, "w": 0.0,
                                                                                   "grad": 16.125}
    # A's backward-weight finds δ̃z_A on chip, left there by its backward-data
    assert dram_tensors(a, "backward_weight", arch, plan[("A", "backward_weight")])["dz"] == 0.0
    # the schedule links the same pair: A's backward-data waits for B's write-back
    assert schedule.producers(("A", "backward_data"), ["A", "B"], plan) == [("B", "backward_data")]
    # the first layer's input gradient has no consumer: written as δa (2 × 8 dense 8-bit elements + the flag)
    assert plan[("A", "backward_data")].out_bytes is None


def test_an_activation_products_second_operand_gradient_is_not_written_as_a_weight_gradient():
    """B = A's output × X (w_role activation, as attention's P·V): B's backward-weight computes the gradient of its
    second operand, part of A's δz, which B's backward-data hands over whole (4.625 B, as above); the product's
    backward-weight writes nothing (it used to write 5 × 3 24-bit values as a δW: 45 bytes nobody reads)."""
    arch = load_arch("scnn")
    dz_a = np.zeros(12, bool)
    dz_a[[0, 5, 11]] = True
    a = _linear("A", n=2, c=8, k=6, dz=dz_a)
    b = _linear("B", n=4, c=3, k=5, dz=np.ones(20, bool))
    geos = [_geo(2, 8, 6), SimpleNamespace(**vars(_geo(4, 3, 5)), w_role="activation")]
    plan = residency.plan([a, b], geos, arch, first_input_grad=True)
    assert dram_tensors(b, "backward_weight", arch, plan[("B", "backward_weight")])["dw"] == 0.0
    assert dram_tensors(b, "backward_data", arch, plan[("B", "backward_data")])["grad"] == 4.625
    # a weight GEMM's δW is written at accumulator width, uncompressed, for the optimizer step
    assert dram_tensors(a, "backward_weight", arch, plan[("A", "backward_weight")])["dw"] == 6 * 8 * 24 / 8


def _check_handover(seen, dz, order, roles):
    """Every read of a layer's δ̃z is of bytes the hand-over wrote in that form; a backward-weight writes δW only
    for a weight GEMM (the optimizer step reads it), nothing for an activation product (``roles``: w_role)."""
    checked = 0
    for arch_id, passes in seen.items():
        for name in order:
            if (name, "backward_weight") in passes:
                assert (passes[(name, "backward_weight")]["dw"] > 0) == (roles[name] == "weight"), name
        for i, name in enumerate(order):
            reads = [passes[(name, p)]["dz"] for p in ("backward_data", "backward_weight") if (name, p) in passes]
            nxt = order[i + 1] if i + 1 < len(order) else None
            if nxt is None or (nxt, "backward_data") not in passes:
                continue  # the loss gradient (or one from outside the replayed layers): in DRAM before the iteration
            write = passes[(nxt, "backward_data")]["grad"]
            want = dz[arch_id][name]["dz"]
            if any(reads):
                assert write == want, (name, write, want)
                for r in reads:  # each read is the tensor whole (the broadcast role: once per chunk)
                    assert r == 0 or (r / want == round(r / want) >= 1), (name, r, want)
                checked += 1
            else:
                assert write == 0, (name, write)  # kept on chip for every consumer: nothing written
    return checked


def _roles(path) -> dict[str, str]:
    return {g.name: g.w_role for g in hwsim.load_trace(path).layers}


@pytest.fixture(scope="module")
def gpt2_block(tmp_path_factory):
    return synthesize(tmp_path_factory.mktemp("g") / "gpt2", model="gpt2_small", seq=16, batch=1, blocks=1)


@pytest.mark.parametrize("over", [{}, {"pe.input_buffer_bytes": 64, "pe.output_buffer_bytes": 64,
                                       "memory.residency_in_global_buffer": False}])
def test_every_gradient_read_of_a_gpt2_block_was_written_in_that_form(monkeypatch, gpt2_block, over):
    seen, dz, order = ledger(monkeypatch, gpt2_block, load_arch("scnn", over), roles=("dz",), iteration=0)
    assert _check_handover(seen, dz, order, _roles(gpt2_block)) >= 2   # c_proj → P·V and QKᵀ → c_attn cross DRAM in every variant
    sparse = seen[max(seen, key=lambda k: len(seen[k]))]
    assert sparse[("h.0.attn.c_proj", "backward_data")]["grad"] == sparse[("h.0.attn:pv", "backward_data")]["dz"] > 0


@pytest.mark.parametrize("over", [{}, {"pe.input_buffer_bytes": 16, "pe.output_buffer_bytes": 16,
                                       "memory.residency_in_global_buffer": False}])
def test_every_gradient_read_of_lenet5_was_written_in_that_form(monkeypatch, over):
    seen, dz, order = ledger(monkeypatch, str(SAMPLE), load_arch("scnn", over), roles=("dz",), iteration=45)
    checked = _check_handover(seen, dz, order, _roles(SAMPLE))
    assert checked >= (4 if over else 0)  # tiny RAMs: every δ̃z spills; default: all on chip, nothing written
