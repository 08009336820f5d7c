"""The counted int8 view of undithered δz (hwsim.capture.quant.counted_view): the statistics and levels of
quant.int_view exactly, the view built only when asked for, and capture's use of it (the same trace statistics)."""

from __future__ import annotations

import pytest
import torch

from hwsim.capture import quant
from hwsim.capture.session import capture


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("case", ["gauss", "ties", "zeros", "tiny_nonzero", "wide"])
def test_counted_int8_view_equals_the_reference_view(case):
    g = _gen(9)
    x = {"gauss": torch.randn(20_000, generator=g),
         # Δ = 127/127 = 1: |x|/Δ = 1.5, 2.5, 3.5, 4.5, 63.5, 64.5 exactly, rounding half to even → 2, 2, 4, 4, 64, 64
         "ties": torch.tensor([127.0, -1.5, 2.5, -3.5, 4.5, 0.49, 0.5, 0.0, 63.5, -64.5]),
         "zeros": torch.where(torch.rand(20_000, generator=g) < 0.7, 0.0, torch.randn(20_000, generator=g)),
         "tiny_nonzero": torch.tensor([1.0, 1e-6, -1e-5, 0.0, 0.004]),  # rint(|x|/Δ) = 0 but x ≠ 0: level ±1
         "wide": torch.randn(20_000, generator=g) ** 5}[case]
    q = quant.passthrough(x, lazy_levels=True)
    r = quant.passthrough(x)
    assert q.levels is None and q.values is x and q.delta == r.delta
    assert q.stats == quant.level_stats(r.levels)
    assert torch.equal(q.level_tensor(), r.levels)


def test_counted_view_of_the_ties_by_hand():
    x = torch.tensor([127.0, -1.5, 2.5, -3.5, 4.5, 0.49, 0.5, 0.0, 63.5, -64.5])
    st = quant.passthrough(x, lazy_levels=True).stats
    # levels 127, -2, 2, -4, 4, 0 (0.49 → 0, x ≠ 0 → 1), 0 (0.5 → 0 → 1), 0, 64, -64:
    # 1 bit-magnitude: 0.49, 0.5 → 2; 2: ±2 → 2; 3: ±4 → 2; 7: ±64 → 2; 7 bits: 127 → hist[6] gets 127 and ±64
    assert (st.numel, st.nnz, st.max_abs) == (10, 9, 127)
    assert st.hist[:8] == [2, 2, 2, 0, 0, 0, 3, 0]


def test_counted_view_falls_back_to_the_reference_for_other_dtypes_and_zero_tensors():
    assert quant.passthrough(torch.randn(10).double(), lazy_levels=True).levels is not None
    assert quant.passthrough(torch.zeros(10), lazy_levels=True).levels is not None
    assert quant.quantize(torch.randn(10), method="none", lazy_values=True).levels is None


class _Attn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.q, self.k = torch.nn.Linear(16, 16), torch.nn.Linear(16, 16)

    def forward(self, x):  # QKᵀ is an activation × activation product: not dithered by default, only viewed
        return (self.q(x) @ self.k(x).transpose(-1, -2)).softmax(-1).sum(-1)


def _attention_run(monkeypatch, counted: bool) -> list:
    if not counted:  # the reference: build the int8 view and count it
        monkeypatch.setattr(quant, "counted_view", lambda dz, **_: None)
    torch.manual_seed(0)
    model = _Attn()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x = torch.randn(4, 8, 16, generator=_gen(1))
    stats = []
    with capture(model, method="dither", s=4.0, seed=0) as cap:
        for _ in range(2):
            loss = model(x).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            stats.append(cap.last_stats)
    return stats


def test_capture_statistics_of_undithered_products_are_unchanged(monkeypatch):
    counted = _attention_run(monkeypatch, True)
    monkeypatch.undo()
    ref = _attention_run(monkeypatch, False)
    assert counted == ref
    assert "matmul" in counted[-1] and counted[-1]["matmul"]["density"] > 0


@pytest.mark.parametrize("compiled", [True, False])
def test_counted_view_of_a_permuted_gradient_reads_it_in_memory_order(compiled):
    """The gradient of ``y.transpose(1, 2)`` (attention's P·V δz) is a permuted view: the counts, which do not depend
    on the order, are read from memory as it lies (no copy) and are those of the reference view exactly."""
    from hwsim.capture.quantized import memory_order
    base = torch.tensor([[[127.0, -1.5], [2.5, -3.5], [4.5, 0.49]], [[0.5, 0.0], [63.5, -64.5], [0.0, 0.0]]])
    x = base.transpose(1, 2)  # shape (2, 2, 3), strides (6, 1, 2): not contiguous
    assert not x.is_contiguous()
    flat = memory_order(x)
    assert flat.data_ptr() == base.data_ptr() and flat.is_contiguous()  # no copy: base's own memory
    assert flat.reshape(-1).tolist() == base.reshape(-1).tolist()
    q = quant.passthrough(x, lazy_levels=True, compiled=compiled)
    # the ties case by hand (test above): levels 127, -2, 2, -4, 4, ±1 (0.49, 0.5), 64, -64 and three zeros
    assert (q.stats.numel, q.stats.nnz, q.stats.max_abs) == (12, 9, 127)
    assert q.stats.hist[:8] == [2, 2, 2, 0, 0, 0, 3, 0]
    r = quant.passthrough(x)
    assert q.delta == r.delta and q.stats == quant.level_stats(r.levels)
    assert torch.equal(q.level_tensor(), r.levels)  # the view itself keeps x's (logical) order
    wide = torch.randn(4, 8, 16, 5, generator=_gen(4)).permute(0, 2, 1, 3)
    assert quant.passthrough(wide, lazy_levels=True, compiled=compiled).stats == quant.level_stats(
        quant.passthrough(wide).levels)
