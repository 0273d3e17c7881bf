"""Gene-length tables: which lengths turn a model's counts input into TPM.

A model's numbers are only reproduced when its inputs are normalised exactly as in training,
and counts → TPM divides by gene lengths. Each model therefore names the table it was
trained with, and :func:`bulkformer.prepare` uses that table:

- ``"upstream"``: upstream BulkFormer's ``gene_length_df.csv`` (78,932 Ensembl genes, MIT
  licensed; shipped in ``assets/gene_lengths/``). Every published checkpoint's inputs were
  normalised with it.
- ``"annotation"``: the shipped gene annotation's hg19 transcript-length estimates
  (``assets/annotation/``); the demo model was trained with these.

A gene absent from the table gets 1 kb, as upstream does; a length column in the user's own
file (featureCounts, RSEM, salmon) wins over either table.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bulkformer import paths
from bulkformer.errors import BulkFormerError, CheckpointError, check_choice
from bulkformer.genes import load_annotation

UPSTREAM = "upstream"
ANNOTATION = "annotation"
TABLE_NAMES = (UPSTREAM, ANNOTATION)
#: The table a model uses when it names none: our own folders saved before models named
#: their table were all normalised with the annotation's lengths.
LEGACY_DEFAULT = ANNOTATION
UPSTREAM_FILE = "gene_length_df.csv.gz"


@dataclass(frozen=True, eq=False)
class GeneLengthTable:
    """Lengths in bp by Ensembl gene ID (without version), with a name people can read.

    ``name`` is what a model's config stores; ``description`` is what the QC report shows.
    """

    name: str
    description: str
    lengths: pd.Series

    def lengths_bp(self, ensg_ids: Sequence[str | None]) -> np.ndarray:
        """float64 lengths for ``ensg_ids`` (version suffixes ignored); NaN where unknown."""
        keys = pd.Series(list(ensg_ids), dtype=object).str.split(".").str[0]
        return pd.to_numeric(keys.map(self.lengths), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan)


def check_name(name: object) -> str:
    """``name`` if it is a known table, else a :class:`CheckpointError` naming the choices."""
    return check_choice(name, TABLE_NAMES, what="gene-length table", error=CheckpointError)


@functools.cache
def load_gene_lengths(name: str) -> GeneLengthTable:
    """The named table (read once per process)."""
    check_name(name)
    if name == UPSTREAM:
        path = paths.GENE_LENGTHS_DIR / UPSTREAM_FILE
        try:
            table = pd.read_csv(path, dtype={"ensg_id": str, "length": np.float64})
        except (OSError, ValueError) as err:
            raise BulkFormerError(f"The shipped gene-length table {path} cannot be read ({err}).",
                                  hint="Reinstall the app: the file is part of assets/.") from err
        lengths = pd.Series(table["length"].to_numpy(), index=table["ensg_id"].to_numpy())
        return GeneLengthTable(UPSTREAM, f"upstream BulkFormer gene lengths (gene_length_df.csv, "
                                         f"{len(lengths):,} genes)", lengths)
    annotation = load_annotation()
    ids = list(annotation.table["ensg_id"])
    lengths = pd.Series(annotation.lengths_bp(ids), index=ids).dropna()
    return GeneLengthTable(ANNOTATION, f"the app's annotation lengths (hg19 transcript "
                                       f"estimates, {len(lengths):,} genes)", lengths)
