"""Hyperparameters of a BulkFormer network, frozen, with the published sizes as presets.

The published checkpoints ship no config file: every field here except the dropouts can be
read off a state_dict's tensor shapes (see :func:`bulkformer.model._checkpoint.infer_config`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from bulkformer.errors import BulkFormerError

Family = Literal["v1", "v2"]

PUBLISHED_GENE_COUNT = 20010
#: The input value that marks a gene the sample did not measure (upstream's placeholder): the
#: one home of this fact for the model, alignment, hold-out and exports.
MISSING = -10.0
#: The sample features a v2 network appends to every gene embedding (``BulkFormer.gene_features``),
#: and so the last three columns of its sample embeddings: the share of the model's genes the
#: sample lacks, the mean of its measured values (log1p TPM) and the share of non-zero inputs.
#: The first is the same for every sample of one table, whose samples all lack the same genes.
V2_SAMPLE_FEATURES = ("missing_share", "mean_expression", "nonzero_share")


@dataclass(frozen=True)
class BulkFormerConfig:
    """Shape of one BulkFormer network.

    Attributes:
        family: ``"v2"`` (current code: one-hot gene identity, ``global_expr_proj``, a head
            fed with 3 auxiliary features, mean correction of imputed genes) or ``"v1"`` (first
            release: ESM2 protein embeddings as gene identity, ``ae_enc``, a plain head).
        n_genes: number of gene tokens; the model's gene order has this length.
        dim: width of every gene token.
        p_repeat: Performer layers per block (each a ``Performer(depth=1)``).
        gb_repeat: GCN + Performer blocks.
        heads: attention heads per Performer layer; ``dim_head = dim // heads``.
        esm_dim: width of the ESM2 gene table (v1 only, ``None`` for v2).
        attn_dropout: attention dropout (training only; inference runs in ``eval()``).
        ff_dropout: feed-forward dropout (training only).
        name: a label for people (``"147M"``, ``"demo"``, ``"custom"``); not used in the math.
    """

    family: Family = "v2"
    n_genes: int = PUBLISHED_GENE_COUNT
    dim: int = 640
    p_repeat: int = 12
    gb_repeat: int = 1
    heads: int = 8
    esm_dim: int | None = None
    attn_dropout: float = 0.05
    ff_dropout: float = 0.1
    name: str = "custom"

    def __post_init__(self) -> None:
        problems = []
        if self.family not in ("v1", "v2"):
            problems.append(f"family must be 'v1' or 'v2', not {self.family!r}")
        if min(self.n_genes, self.dim, self.p_repeat, self.gb_repeat, self.heads) < 1:
            problems.append("n_genes, dim, layers, blocks and heads must be positive")
        elif self.dim % self.heads or self.dim // self.heads < 2:
            # FAVOR+ draws int(d·ln d) random features per head: d = dim/heads must be >= 2.
            problems.append(f"dim {self.dim} must be a multiple of heads {self.heads} with at least 2 per head")
        if (self.family == "v1") != (self.esm_dim is not None):
            problems.append("esm_dim is required for v1 and must be None for v2")
        if problems:
            raise BulkFormerError(f"Invalid model shape: {'; '.join(problems)}.",
                                  hint="For a small model try --dim 32 --heads 8 --layers 2.")

    @property
    def dim_head(self) -> int:
        return self.dim // self.heads

    @property
    def random_features(self) -> int:
        """FAVOR+ random features per head, ``int(d·ln d)`` for ``d = dim_head`` (performer-pytorch's
        default; the checkpoints' ``projection_matrix`` has this many rows). 147M: 350."""
        return max(1, int(self.dim_head * math.log(self.dim_head)))

    @property
    def gene_feature_dim(self) -> int:
        """Width of the gene-level embedding offered to users (v2 appends 3 sample features)."""
        return self.dim + len(V2_SAMPLE_FEATURES) if self.family == "v2" else self.dim

    def feature_names(self) -> tuple[str, ...]:
        """Names of the embedding columns: ``emb_0`` … for the network's own dimensions, then
        :data:`V2_SAMPLE_FEATURES` for a v2 network."""
        extra = V2_SAMPLE_FEATURES if self.family == "v2" else ()
        return (*(f"emb_{i}" for i in range(self.dim)), *extra)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BulkFormerConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
