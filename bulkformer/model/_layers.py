"""Building blocks of BulkFormer: the expression embedding and the GCN + Performer block.

Attribute names follow the published checkpoints exactly, so that their state_dicts load with
``strict=True``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from performer_pytorch import Performer
from performer_pytorch.performer_pytorch import FastAttention
from torch import Tensor, nn
from torch_geometric.nn import GCNConv

from bulkformer.model._config import MISSING

LayerRunner = Callable[[nn.Module, Tensor], Tensor]
"""Runs one Performer layer on ``[batch, genes, dim]``; inference passes a compiled one."""


class ExpressionEmbedding(nn.Module):
    """Sinusoidal embedding of a continuous log1p-TPM value (the paper's "rotary" embedding).

    ``inv_freq = 1 / 100^(2i/dim)``; a value ``x`` becomes ``[sin(x·inv_freq), cos(x·inv_freq)]``.
    Missing genes (``x == -10``) get the zero vector, so they carry no expression signal.

    Shapes:
        x: ``[batch, genes]`` → ``[batch, genes, dim]``
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        inv_freq = 1.0 / (100 ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
        # A frozen Parameter rather than a buffer: that is how the checkpoints store it.
        self.inv_freq = nn.Parameter(inv_freq, requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        angles = x.unsqueeze(-1) * self.inv_freq
        emb = torch.cat((angles.sin(), angles.cos()), dim=-1)
        return emb.masked_fill((x == MISSING).unsqueeze(-1), 0.0)


_HALF = (torch.float16, torch.bfloat16)


def favor_attention(q: Tensor, k: Tensor, v: Tensor, projection_matrix: Tensor, *, eps: float,
                    products: torch.dtype = torch.float32) -> Tensor:
    """Non-causal FAVOR+ softmax-kernel attention, as performer-pytorch computes it, leaner.

    The same mathematics as performer-pytorch's ``FastAttention`` in fewer passes over the
    ``[batch, heads, genes, features]`` tensors (the dominant memory traffic at 20,010 genes):
    the data normaliser is folded into the projection matrix, the two subtractions before
    ``exp`` are merged, and the ``features^-0.5`` factor is left out because it multiplies
    numerator and denominator alike.

    ``products``: the dtype of the three matrix products (projection, context, output).
    float32 is the reference arithmetic; float16/bfloat16 halve the memory traffic on a GPU,
    while the shift, the ``exp``, the key sum and the normaliser stay in float32 (the normaliser
    is a sum over all genes, which half precision cannot hold).

    Shapes:
        q, k, v: ``[batch, heads, genes, dim_head]``; projection_matrix: ``[features, dim_head]``
        → ``[batch, heads, genes, dim_head]`` float32
    """
    d = q.shape[-1]
    projection = (projection_matrix.float().t() * d**-0.25).to(products)  # [dim_head, features]
    q_feat = _favor_features(q, projection, d, eps=eps, per_row=True)
    k_feat = _favor_features(k, projection, d, eps=eps, per_row=False)
    k_sum = k_feat.sum(dim=-2, dtype=torch.float32).unsqueeze(-1)  # [b, h, features, 1]
    context = k_feat.transpose(-1, -2) @ v.to(products)  # [b, h, features, dim_head]
    numerator = (q_feat @ context).float()
    return numerator / (q_feat.float() @ k_sum)


def _favor_features(x: Tensor, projection: Tensor, d: int, *, eps: float, per_row: bool) -> Tensor:
    """``exp(x·P/d^¼ − |x|²/(2√d) − max) + eps`` in ``projection``'s dtype, the exponent in float32;
    the max is per row for queries, per head for keys."""
    dash = (x.to(projection.dtype) @ projection).float()  # [b, h, n, features]; no copy when float32
    peak = dash.detach().amax(dim=-1, keepdim=True) if per_row else dash.detach().amax(dim=(-1, -2), keepdim=True)
    shift = x.float().pow(2).sum(dim=-1, keepdim=True) * (0.5 / math.sqrt(d)) + peak
    return (torch.exp(dash.sub_(shift)) + eps).to(projection.dtype)


class Fp32FastAttention(FastAttention):
    """performer-pytorch's FAVOR+ attention (softmax kernel, non-causal) through
    :func:`favor_attention`: same parameters and buffers as the parent class.

    Under autocast the projections around this module run in half precision. Inside it, on a
    CPU everything is float32 (half-precision products gave no gain there, measured); on a
    CUDA GPU the three matrix products take the autocast dtype and the exponent and the
    normaliser stay float32.
    """

    eps = 1e-4

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        products = q.dtype if q.is_cuda and q.dtype in _HALF else torch.float32
        with torch.autocast(q.device.type, enabled=False):
            return favor_attention(q, k, v, self.projection_matrix, eps=self.eps, products=products)


def _performer(dim: int, *, heads: int, attn_dropout: float, ff_dropout: float) -> Performer:
    """One ``Performer(depth=1)`` layer as the checkpoints have it, with float32 FAVOR+."""
    layer = Performer(dim=dim, heads=heads, depth=1, dim_head=dim // heads,
                      attn_dropout=attn_dropout, ff_dropout=ff_dropout)
    for module in layer.modules():
        if type(module) is FastAttention:
            module.__class__ = Fp32FastAttention  # same state, float32 forward
    return layer


class GraphBlock(nn.Module):
    """One encoder block: LayerNorm, a residual GCN step over the gene graph, Performer layers.

    The GCN is torch-geometric's ``GCNConv`` (weights ``g.lin``, ``g.bias``) driven by a
    pre-normalised sparse adjacency ``Â = D^-1/2 A D^-1/2`` (see :class:`bulkformer.model._graph.GeneGraph`).
    The batch is folded into the feature axis so one sparse product serves every sample.

    Shapes:
        x: ``[batch, genes, dim]``, adjacency: sparse ``[genes, genes]`` → ``[batch, genes, dim]``
    """

    def __init__(
        self,
        dim: int,
        *,
        heads: int,
        p_repeat: int,
        attn_dropout: float,
        ff_dropout: float,
        with_bin_scorer: bool,
    ) -> None:
        super().__init__()
        self.g = GCNConv(dim, dim, add_self_loops=False, normalize=False)
        if with_bin_scorer:
            # v1 checkpoints carry the gene-binning scorer; with bins=0 it is never called.
            self.which_b = nn.Sequential(nn.Linear(dim, 1))
        self.f = nn.Sequential(
            *[_performer(dim, heads=heads, attn_dropout=attn_dropout, ff_dropout=ff_dropout) for _ in range(p_repeat)]
        )
        self.layernorm = nn.LayerNorm(dim)

    def graph_conv(self, x: Tensor, adjacency: Tensor) -> Tensor:
        """``Â (x W) + b`` for every sample of the batch at once."""
        b, n, d = x.shape
        h = self.g.lin(x)
        h = h.transpose(0, 1).reshape(n, b * d).to(adjacency.dtype)
        with torch.autocast(x.device.type, enabled=False):  # sparse kernels are fp32-only on CPU
            h = self.g.propagate(adjacency, x=h, edge_weight=None)
        return h.reshape(n, b, d).transpose(0, 1).to(x.dtype) + self.g.bias

    def forward(self, x: Tensor, adjacency: Tensor, *, run_layer: LayerRunner | None = None) -> Tensor:
        """``run_layer(layer, x)`` replaces ``layer(x)`` for each Performer layer when given:
        one compiled function then serves every layer of the model (they share their code)."""
        x = self.layernorm(x)
        x = x + self.graph_conv(x, adjacency)
        if run_layer is None:
            return self.f(x)
        for layer in self.f:
            x = run_layer(layer, x)
        return x
