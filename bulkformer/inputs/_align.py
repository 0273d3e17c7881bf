"""Putting log1p TPM into a model's gene order: the exact input BulkFormer takes.

Genes the table did not measure get the placeholder ``-10.0`` (upstream's value, which the
model's expression embedding zeroes out); ``observed`` and ``mask_prob`` say how many.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bulkformer.errors import InputError
from bulkformer.model._config import MISSING

#: A table must measure at least this many of the model's genes (or all of them, for a model
#: with fewer genes): with fewer, nearly everything the model returns is its own guess.
MIN_MEASURED_GENES = 100


@dataclass(frozen=True, eq=False)
class AlignedMatrix:
    """log1p TPM in a model's gene order.

    ``values``: float32 ``[n_samples, n_genes]``, ``-10.0`` where a gene was not measured;
    ``observed``: bool ``[n_genes]``, True where the table had the gene. Arrays are read-only.
    """

    values: np.ndarray
    sample_ids: tuple[str, ...]
    gene_ids: tuple[str, ...]
    observed: np.ndarray

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float32)
        observed = np.asarray(self.observed, dtype=bool)
        if values.shape != (len(self.sample_ids), len(self.gene_ids)):
            raise ValueError(f"values shape {values.shape} does not match "
                             f"{len(self.sample_ids)} samples × {len(self.gene_ids)} genes")
        if observed.shape != (len(self.gene_ids),):
            raise ValueError(f"observed shape {observed.shape} does not match {len(self.gene_ids)} genes")
        values.flags.writeable = False
        observed.flags.writeable = False
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "observed", observed)

    @property
    def mask_prob(self) -> float:
        """Fraction of the model's genes the input lacks (the model's ``mask_prob``)."""
        return float(1.0 - self.observed.mean()) if len(self.observed) else 1.0

    def subset_samples(self, sample_ids: Sequence[str]) -> AlignedMatrix:
        """The same matrix restricted to (and ordered as) ``sample_ids``."""
        index = pd.Index(self.sample_ids).get_indexer(list(sample_ids))
        if (index < 0).any():
            unknown = [s for s, i in zip(sample_ids, index) if i < 0][:5]
            raise InputError(f"Unknown sample(s) {', '.join(map(repr, unknown))}.",
                             hint="Choose samples that are in the table.")
        return AlignedMatrix(self.values[index], tuple(sample_ids), self.gene_ids, self.observed)


def align(table: pd.DataFrame, *, gene_order: Sequence[str]) -> AlignedMatrix:
    """Place ``table`` (samples × genes, log1p TPM, columns unique Ensembl IDs without version)
    into ``gene_order``; genes the table lacks become ``-10.0``, genes the model lacks are
    dropped. A gene counts as observed when it is a column of the table, whatever its value."""
    order = pd.Index(list(gene_order))
    if order.has_duplicates:
        raise ValueError("gene_order repeats genes")
    if table.columns.has_duplicates:
        raise ValueError("table columns repeat genes; combine duplicates first")
    position = order.get_indexer(table.columns)
    keep = position >= 0
    values = np.full((table.shape[0], len(order)), MISSING, dtype=np.float32)
    values[:, position[keep]] = table.to_numpy(dtype=np.float32)[:, keep]
    observed = np.zeros(len(order), dtype=bool)
    observed[position[keep]] = True
    return AlignedMatrix(values, tuple(map(str, table.index)), tuple(order), observed)


def require_enough_genes(aligned: AlignedMatrix) -> None:
    """Refuse an input that measures fewer than :data:`MIN_MEASURED_GENES` of the model's genes."""
    n_measured, n_model = int(aligned.observed.sum()), len(aligned.gene_ids)
    needed = min(MIN_MEASURED_GENES, n_model)
    if n_measured < needed:
        raise InputError(
            f"The table measures only {n_measured:,} of the model's {n_model:,} genes; at least {needed:,} are "
            f"needed. With so few, nearly every value the model returns would be its own guess and the sample "
            f"embeddings would describe the model rather than your samples.",
            hint="Check that the gene column holds gene symbols or Ensembl IDs of human protein-coding genes "
                 "(the QC report lists labels it did not recognise), or upload a table with more genes.")
