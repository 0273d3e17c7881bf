"""The BulkFormer network, for both published checkpoint families.

A plain ``nn.Module``: it knows tensors, not files or gene names. The user-facing object that
owns loading, the gene order and devices is :class:`bulkformer.model._bulkformer_model.BulkFormerModel`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from bulkformer.model._config import BulkFormerConfig
from bulkformer.model._layers import (
    MISSING,
    ExpressionEmbedding,
    GraphBlock,
    LayerRunner,
)

_EPS = 1e-8


class BulkFormer(nn.Module):
    """GCN + Performer encoder over every gene of a bulk RNA-seq sample.

    Token of gene ``j`` in sample ``s`` = expression embedding of ``x[s, j]`` + projected gene
    identity of ``j`` + a sample context vector (an MLP over the whole vector ``x[s]``), mixed by
    ``x_proj``, then ``gb_repeat`` :class:`GraphBlock` s and a final LayerNorm.

    Shapes:
        x: ``[batch, genes]`` log1p TPM with ``-10`` for missing genes
        adjacency: sparse ``[genes, genes]`` normalised gene graph
        :meth:`encode` → ``[batch, genes, dim]``; :meth:`gene_features` → ``[batch, genes,
        gene_feature_dim]``; :meth:`impute` → ``[batch, genes]``
    """

    def __init__(self, config: BulkFormerConfig) -> None:
        super().__init__()
        self.config = config
        dim, n = config.dim, config.n_genes
        v1 = config.family == "v1"
        # Registration order matters only for readability of state_dict listings; it matches
        # the published checkpoints.
        if v1:
            assert config.esm_dim is not None
            self.gene_emb = nn.Parameter(torch.randn(n, config.esm_dim) * 0.02)
        else:
            self.gene_emb_onehot_layer = nn.Embedding(n, dim)
            nn.init.xavier_uniform_(self.gene_emb_onehot_layer.weight)
        identity_width = config.esm_dim if v1 else dim
        self.gene_emb_proj = nn.Sequential(
            nn.Linear(identity_width, 4 * dim), nn.ReLU(), nn.Linear(4 * dim, dim)
        )
        self.expr_emb = ExpressionEmbedding(dim)
        self.x_proj = nn.Sequential(nn.Linear(dim, 4 * dim), nn.ReLU(), nn.Linear(4 * dim, dim))
        self.gb_formers = nn.ModuleList(
            [
                GraphBlock(
                    dim,
                    heads=config.heads,
                    p_repeat=config.p_repeat,
                    attn_dropout=config.attn_dropout,
                    ff_dropout=config.ff_dropout,
                    with_bin_scorer=v1,
                )
                for _ in range(config.gb_repeat)
            ]
        )
        self.layernorm = nn.LayerNorm(dim)
        context = nn.Sequential(nn.Linear(n, 4 * dim), nn.ReLU(), nn.Linear(4 * dim, dim))
        if v1:
            self.ae_enc = context
            self.head = nn.Sequential(
                nn.Linear(dim, 4 * dim), nn.ReLU(), nn.Linear(4 * dim, 1), nn.ReLU()
            )
        else:
            self.global_expr_proj = context
            self.head = nn.Sequential(
                nn.LayerNorm(dim + 3), nn.Linear(dim + 3, dim), nn.ReLU(), nn.Linear(dim, 1), nn.ReLU()
            )

    def gene_identity(self) -> Tensor:
        """Projected gene-identity embedding ``[genes, dim]``; independent of the input.

        Inference computes it once per loaded model and passes it to :meth:`encode`.
        """
        table = self.gene_emb if self.config.family == "v1" else self.gene_emb_onehot_layer.weight
        return self.gene_emb_proj(table)

    def sample_context(self, x: Tensor) -> Tensor:
        """Per-sample context vector ``[batch, dim]`` from the whole expression vector."""
        return self.ae_enc(x) if self.config.family == "v1" else self.global_expr_proj(x)

    def encode(
        self,
        x: Tensor,
        adjacency: Tensor,
        *,
        identity: Tensor | None = None,
        run_layer: LayerRunner | None = None,
    ) -> Tensor:
        """Per-gene embeddings after the final LayerNorm, ``[batch, genes, dim]``.

        ``identity``: :meth:`gene_identity`, when the caller already has it; ``run_layer``: see
        :meth:`GraphBlock.forward`.
        """
        if identity is None:
            identity = self.gene_identity()
        h = self.expr_emb(x) + identity + self.sample_context(x).unsqueeze(1)
        h = self.x_proj(h)
        for block in self.gb_formers:
            h = block(h, adjacency, run_layer=run_layer)
        return self.layernorm(h)

    def gene_features(self, x: Tensor, h: Tensor, *, mask_prob: Tensor | None = None) -> Tensor:
        """The gene-level embedding the family offers: v1 ``h``; v2 ``h ++ aux(x)``.

        The three v2 auxiliary features, repeated for every gene of a sample, are: the fraction
        of genes missing (``mask_prob``, per sample unless given), the mean of the observed
        values, and the fraction of entries that are not exactly 0 (missing ``-10`` entries count
        as non-zero, as upstream computes it).
        """
        if self.config.family == "v1":
            return h
        observed = (x != MISSING).to(x.dtype)
        if mask_prob is None:
            mask_prob = 1.0 - observed.mean(dim=1)
        mask_prob = torch.as_tensor(mask_prob, dtype=x.dtype, device=x.device).expand(x.shape[0])
        observed_mean = (x * observed).sum(1) / (observed.sum(1) + _EPS)
        nonzero = (x != 0).to(x.dtype).mean(dim=1)
        aux = torch.stack((mask_prob, observed_mean, nonzero), dim=-1)
        aux = aux.to(h.dtype).unsqueeze(1).expand(-1, h.shape[1], -1)
        return torch.cat((h, aux), dim=-1)

    def impute(self, x: Tensor, features: Tensor) -> Tensor:
        """Predicted log1p TPM for every gene, ``[batch, genes]``.

        v2 shifts the predictions of missing genes by the gap between the mean prediction and
        the mean observed value over the observed genes; observed genes are left as predicted.
        """
        pred = self.head(features).squeeze(-1)
        if self.config.family == "v1":
            return pred
        pred = pred.to(x.dtype)
        observed = (x != MISSING).to(x.dtype)
        n_observed = observed.sum(1, keepdim=True) + _EPS
        gap = (pred * observed).sum(1, keepdim=True) / n_observed - (x * observed).sum(1, keepdim=True) / n_observed
        return pred - (1.0 - observed) * gap

    def forward(self, x: Tensor, adjacency: Tensor) -> Tensor:
        """Imputed expression ``[batch, genes]`` (the training objective's output)."""
        h = self.encode(x, adjacency)
        return self.impute(x, self.gene_features(x, h))
