"""ExpressionEmbedding and GraphBlock against formulas computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bulkformer.model._layers import ExpressionEmbedding, GraphBlock
from tests.conftest import random_graph


def test_expression_embedding_matches_formula_and_zeroes_missing() -> None:
    dim = 8
    emb = ExpressionEmbedding(dim)
    x = torch.tensor([[0.0, 1.5, -10.0, 7.25]])
    out = emb(x)
    assert out.shape == (1, 4, dim)
    for j, value in enumerate([0.0, 1.5, None, 7.25]):
        if value is None:
            assert torch.count_nonzero(out[0, j]) == 0
            continue
        freqs = [1.0 / 100 ** (i / dim) for i in range(0, dim, 2)]
        expected = [math.sin(value * f) for f in freqs] + [math.cos(value * f) for f in freqs]
        np.testing.assert_allclose(out[0, j].numpy(), expected, rtol=1e-6, atol=1e-6)


def test_graph_conv_equals_dense_normalised_adjacency_in_upstream_direction() -> None:
    n, dim, b = 30, 8, 3
    graph = random_graph(n, 120, seed=1)
    block = GraphBlock(dim, heads=2, p_repeat=1, attn_dropout=0.0, ff_dropout=0.0, with_bin_scorer=False)
    torch.nn.init.normal_(block.g.bias)
    x = torch.randn(b, n, dim)

    # Dense reference: A[g0, g1] = w (duplicates add up), D = row sums, Â = D^-1/2 A D^-1/2.
    a = np.zeros((n, n))
    g0, g1 = graph.edge_index.numpy()
    np.add.at(a, (g0, g1), graph.weight.numpy())
    deg = a.sum(axis=1)
    inv = np.where(deg > 0, deg ** -0.5, 0.0)
    a_hat = inv[:, None] * a * inv[None, :]
    w = block.g.lin.weight.detach().numpy().astype(np.float64)
    bias = block.g.bias.detach().numpy()
    expected = np.einsum("ij,bjd->bid", a_hat, x.numpy() @ w.T) + bias

    with torch.no_grad():
        got = block.graph_conv(x, graph.normalized_adjacency())
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-5)

    # The transposed graph (messages g0 -> g1) gives a different answer: direction matters.
    transposed = np.einsum("ij,bjd->bid", a_hat.T, x.numpy() @ w.T) + bias
    assert not np.allclose(got.numpy(), transposed, atol=1e-3)


def test_lean_favor_attention_equals_performer_pytorch() -> None:
    """Our FAVOR+ forward against performer-pytorch's own softmax_kernel + linear_attention."""
    from performer_pytorch.performer_pytorch import (
        FastAttention,
        linear_attention,
        softmax_kernel,
    )

    from bulkformer.model._layers import Fp32FastAttention

    torch.manual_seed(0)
    reference = FastAttention(16, nb_features=40)
    ours = FastAttention(16, nb_features=40)
    ours.__class__ = Fp32FastAttention
    ours.projection_matrix.copy_(reference.projection_matrix)
    q, k, v = (torch.randn(2, 3, 500, 16) * 2 for _ in range(3))
    kernel_q = softmax_kernel(q, projection_matrix=reference.projection_matrix, is_query=True)
    kernel_k = softmax_kernel(k, projection_matrix=reference.projection_matrix, is_query=False)
    expected = linear_attention(kernel_q, kernel_k, v)
    got = ours(q, k, v)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 inputs: computed in float32 all the same
        assert ours(q.bfloat16(), k.bfloat16(), v.bfloat16()).dtype == torch.float32


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_favor_half_precision_products_stay_close_to_performer_pytorch(half: torch.dtype) -> None:
    """The GPU path's arithmetic, checked on the CPU: products in half precision, exponent and
    normaliser in float32, against performer-pytorch's float32 FAVOR+ (cosine per output row)."""
    from performer_pytorch.performer_pytorch import (
        FastAttention,
        linear_attention,
        softmax_kernel,
    )

    from bulkformer.model._layers import favor_attention

    torch.manual_seed(1)
    reference = FastAttention(16, nb_features=44)
    q, k, v = (torch.randn(2, 3, 2000, 16) for _ in range(3))
    kernel_q = softmax_kernel(q, projection_matrix=reference.projection_matrix, is_query=True)
    kernel_k = softmax_kernel(k, projection_matrix=reference.projection_matrix, is_query=False)
    expected = linear_attention(kernel_q, kernel_k, v)
    got = favor_attention(q, k, v, reference.projection_matrix, eps=1e-4, products=half)
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    cosine = torch.nn.functional.cosine_similarity(got, expected, dim=-1)
    assert cosine.min() > 0.999
    assert (got - expected).abs().max() < 0.05 * expected.abs().max()
    exact = favor_attention(q, k, v, reference.projection_matrix, eps=1e-4)
    torch.testing.assert_close(exact, expected, rtol=1e-4, atol=1e-5)
