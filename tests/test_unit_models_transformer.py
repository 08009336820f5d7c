"""Unit tests of hwsim.capture.zoo.transformers: shapes, parameter counts by hand, causality, errors."""

from __future__ import annotations

import pytest
import torch

from hwsim.capture.zoo.transformers import (
    MLP,
    CausalSelfAttention,
    Conv1D,
    GPTBlock,
    GPTChar,
    ViTBlock,
    ViTDigits,
)


def _nparams(m):
    return sum(p.numel() for p in m.parameters())


def test_conv1d_is_x_at_w_plus_b():
    torch.manual_seed(0)
    c = Conv1D(5, 3)
    assert c.weight.shape == (5, 3) and c.bias.shape == (3,)
    with torch.no_grad():
        c.bias.copy_(torch.randn(3))
    x = torch.randn(2, 4, 5)
    y = c(x)
    assert y.shape == (2, 4, 3)
    torch.testing.assert_close(y, x @ c.weight + c.bias)


def test_vit_shapes_and_tokens():
    torch.manual_seed(0)
    m = ViTDigits(in_channels=1, num_classes=10, image_size=8, patch=2, d=16, heads=2, depth=1)
    assert m.tokens_per_example == (8 // 2) ** 2 + 1 == 17
    assert m.pos.shape == (1, 17, 16)
    assert m(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    m4 = ViTDigits(in_channels=3, num_classes=5, image_size=8, patch=4, d=8, heads=2, depth=1)
    assert m4.tokens_per_example == 5 and m4(torch.randn(2, 3, 8, 8)).shape == (2, 5)


def test_vit_param_count_by_hand():
    c, k, img, p, d, depth = 1, 10, 8, 2, 16, 2
    m = ViTDigits(in_channels=c, num_classes=k, image_size=img, patch=p, d=d, heads=4, depth=depth)
    tokens = (img // p) ** 2 + 1
    patch = c * d * p * p + d
    block = (2 * d) * 2 + (3 * d * d + 3 * d) + (d * d + d) + (d * 2 * d + 2 * d) + (2 * d * d + d)
    assert _nparams(ViTBlock(d, 4)) == block
    assert _nparams(m) == patch + d + tokens * d + depth * block + 2 * d + (d * k + k)


def test_vit_rejects_bad_patch():
    with pytest.raises(ValueError, match="image_size 9 is not a multiple of the patch size 2"):
        ViTDigits(in_channels=1, num_classes=10, image_size=9)


def test_vit_class_output_sees_every_patch():
    torch.manual_seed(0)
    m = ViTDigits(in_channels=1, num_classes=4, image_size=4, patch=2, d=8, heads=2, depth=1).eval()
    x = torch.randn(1, 1, 4, 4)
    base = m(x)
    for i in range(2):
        for j in range(2):
            y = x.clone()
            y[..., 2 * i, 2 * j] += 1.0
            assert not torch.allclose(m(y), base)


def test_gpt_shapes_and_param_count_by_hand():
    vocab, ctx, d, depth = 20, 6, 8, 2
    m = GPTChar(vocab=vocab, context=ctx, d=d, heads=2, depth=depth)
    assert m.context == m.tokens_per_example == ctx
    out = m(torch.randint(0, vocab, (3, 5)))
    assert out.shape == (3, 5, vocab)
    attn = (d * 3 * d + 3 * d) + (d * d + d)
    mlp = (d * 4 * d + 4 * d) + (4 * d * d + d)
    block = 4 * d + attn + mlp
    assert _nparams(CausalSelfAttention(d, 2, ctx)) == attn
    assert _nparams(MLP(d)) == mlp
    assert _nparams(GPTBlock(d, 2, ctx)) == block
    assert _nparams(m) == vocab * d + ctx * d + depth * block + 2 * d + d * vocab


def test_gpt_is_causal():
    torch.manual_seed(0)
    m = GPTChar(vocab=16, context=8, d=8, heads=2, depth=2).eval()
    idx = torch.randint(0, 16, (2, 8))
    base = m(idx)
    for t in range(7):
        later = idx.clone()
        later[:, t + 1:] = (later[:, t + 1:] + 1) % 16  # change every token after t
        out = m(later)
        torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1], atol=0, rtol=0)
        assert not torch.allclose(out[:, t + 1:], base[:, t + 1:])  # later positions do see them


def test_attention_gradient_is_lower_triangular():
    torch.manual_seed(0)
    a = CausalSelfAttention(8, 2, context=5)
    x = torch.randn(1, 5, 8)
    jac = torch.autograd.functional.jacobian(lambda z: a(z).sum(-1), x)  # (1, T_out, 1, T_in, d)
    dep = jac[0, :, 0].abs().sum(-1)  # (T_out, T_in)
    assert torch.equal(dep > 0, torch.ones(5, 5, dtype=torch.bool).tril())


def test_attention_shorter_sequence_uses_the_mask_prefix():
    torch.manual_seed(0)
    a = CausalSelfAttention(8, 2, context=6)
    x = torch.randn(2, 6, 8)
    torch.testing.assert_close(a(x[:, :3]), a(x)[:, :3])


def test_gpt_input_errors():
    m = GPTChar(vocab=10, context=4, d=8, heads=2, depth=1)
    with pytest.raises(ValueError, match="7 tokens exceed the context of 4"):
        m(torch.zeros(1, 7, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"must be \(batch, tokens\) int64 token ids, got \(4,\)"):
        m(torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="torch.int32"):
        m(torch.zeros(1, 4, dtype=torch.int32))
    with pytest.raises(ValueError, match="width 10 is not a multiple of 4 heads"):
        CausalSelfAttention(10, 4, 8)


def test_gpt_position_embedding_matters():
    torch.manual_seed(0)
    m = GPTChar(vocab=10, context=4, d=8, heads=2, depth=1).eval()
    out = m(torch.full((1, 4), 3, dtype=torch.int64))
    assert not torch.allclose(out[0, 0], out[0, 3])  # same token, different positions
