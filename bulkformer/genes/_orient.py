"""Which axis of a table holds the genes: rows turned into samples."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bulkformer.choices import ORIENTATION
from bulkformer.errors import InputError
from bulkformer.genes._annotation import GeneAnnotation, load_annotation
from bulkformer.genes._counters import split_counters
from bulkformer.io import Guess, RawTable

ORIENTATIONS = ORIENTATION.names


@dataclass(frozen=True, eq=False)
class OrientedTable:
    """A table turned so that rows are samples: ``values`` float32 ``[n_samples, n_genes]``,
    gene labels as written in the file, and the file's own gene lengths if it had them.

    ``counter_labels``: the labels on the gene axis that were counters of the read-counting
    tool (HTSeq-count's ``__no_feature``, STAR's ``N_unmapped`` …), left out of ``values``,
    ``gene_labels`` and ``gene_lengths`` so that they count towards no TPM or library size.
    """

    values: np.ndarray
    sample_ids: tuple[str, ...]
    gene_labels: tuple[str, ...]
    gene_lengths: np.ndarray | None
    orientation: Guess
    counter_labels: tuple[str, ...] = ()


def orient(raw: RawTable, *, orientation: str = "auto",
           annotation: GeneAnnotation | None = None) -> OrientedTable:
    """Decide which axis holds genes (or take ``orientation``), and turn rows into samples.

    ``auto`` trusts formats that fix the layout (featureCounts, RSEM, salmon, AnnData), else
    picks the axis whose labels look more like gene IDs. Then the gene axis's counters of the
    read-counting tool (:func:`bulkformer.genes.is_counter_label`) are left out; sample labels
    are never looked at for this.
    """
    ORIENTATION.check(orientation, error=InputError)
    if orientation != "auto":
        guess = Guess(orientation, "chosen by you")
    elif raw.layout is not None:
        guess = raw.layout
    else:
        guess = _guess_orientation(raw, annotation or load_annotation())
    if guess.value == "genes_in_rows":
        values, samples, genes = raw.values.T, raw.column_labels, raw.row_labels
        lengths = raw.row_lengths
    else:
        values, samples, genes = raw.values, raw.row_labels, raw.column_labels
        lengths = None
    _check_sample_ids(samples)
    kept, dropped, keep = split_counters(genes)
    if dropped and not kept:
        raise InputError(f"Every gene label of the table is a counter of the read-counting tool "
                         f"({', '.join(map(repr, genes[:5]))}), not a gene.",
                         hint="Give the table with one row per gene (or check the orientation).")
    if keep is not None:
        values = values[:, keep]
        lengths = None if lengths is None else lengths[keep]
    return OrientedTable(np.ascontiguousarray(values), samples, kept, lengths, guess, dropped)


def _guess_orientation(raw: RawTable, annotation: GeneAnnotation) -> Guess:
    rows = annotation.gene_like_fraction(raw.row_labels)
    columns = annotation.gene_like_fraction(raw.column_labels)
    shape = f"{len(raw.row_labels)} rows × {len(raw.column_labels)} columns"
    if rows > columns:
        return Guess("genes_in_rows", f"{rows:.0%} of row labels look like gene IDs, "
                                      f"{columns:.0%} of column names ({shape})")
    if columns > rows:
        return Guess("genes_in_columns", f"{columns:.0%} of column names look like gene IDs, "
                                         f"{rows:.0%} of row labels ({shape})")
    longer = "genes_in_rows" if len(raw.row_labels) >= len(raw.column_labels) else "genes_in_columns"
    return Guess(longer, f"neither axis has recognisable gene IDs; assumed genes run along the "
                         f"longer one ({shape})")


def _check_sample_ids(samples: tuple[str, ...]) -> None:
    index = pd.Index(samples)
    if index.has_duplicates:
        repeated = index[index.duplicated()].unique()[:5]
        raise InputError(f"Sample name(s) {', '.join(map(repr, repeated))} appear more than once.",
                         hint="Give every sample a unique name (or check the orientation).")
    if not index.map(lambda s: isinstance(s, str) and bool(s.strip())).all():
        raise InputError("A sample has no name.", hint="Give every sample a name.")
