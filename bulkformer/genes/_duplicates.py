"""Several table rows that map to one gene, merged on the TPM scale."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bulkformer.genes._mapping import GeneMapping


@dataclass(frozen=True, eq=False)
class CombinedGenes:
    """log1p TPM with one column per Ensembl gene (samples × genes), and which table rows
    were merged into one gene (``duplicates``: ensg_id, n_rows, labels)."""

    table: pd.DataFrame
    duplicates: pd.DataFrame


def combine_duplicates(values: np.ndarray, *, mapping: GeneMapping, sample_ids: Sequence[str],
                       keep: Sequence[str] | None = None) -> CombinedGenes:
    """Keep mapped genes (only those in ``keep``, if given) and merge rows that map to the
    same gene.

    ``values`` is log1p TPM ``[n_samples, n_labels]``. Merged rows add up on the TPM scale,
    ``log1p(Σ expm1(x))``: a gene's TPM is the sum of its parts' TPM, whatever the input was
    (counts, TPM and FPKM are all turned into TPM before this step). Genes measured once
    pass through untouched. ``duplicates`` lists every merged gene, kept or not.
    """
    ensg = pd.Series(mapping.ensg_ids, dtype=object)
    codes, genes = pd.factorize(ensg)  # unmapped (None) get code -1
    sizes = np.bincount(codes[codes >= 0], minlength=len(genes))
    merged = (codes >= 0) & (np.append(sizes, 0)[codes] > 1)  # code -1 reads the 0 appended: no gene
    duplicates = pd.DataFrame({"ensg_id": ensg[merged].to_numpy(),
                               "label": np.asarray(mapping.labels, dtype=object)[merged]})
    duplicates = duplicates.groupby("ensg_id", sort=True)["label"].agg(
        n_rows="size", labels="; ".join).reset_index()

    wanted = np.ones(len(genes), dtype=bool) if keep is None else genes.isin(list(keep))
    new_code = np.cumsum(wanted) - 1  # position of each kept gene in the output
    rows = np.flatnonzero(np.append(wanted, False)[codes])  # unmapped (-1) read the False appended
    out_codes = new_code[codes[rows]]
    single = sizes[codes[rows]] == 1
    out = np.empty((values.shape[0], int(wanted.sum())), dtype=np.float32)
    out[:, out_codes[single]] = values[:, rows[single]]
    if not single.all():
        groups, local = np.unique(out_codes[~single], return_inverse=True)
        total = np.zeros((len(groups), values.shape[0]), dtype=np.float64)
        np.add.at(total, local, np.expm1(values[:, rows[~single]].astype(np.float64)).T)
        out[:, groups] = np.log1p(total).T
    table = pd.DataFrame(out, index=pd.Index(list(sample_ids), name="sample_id"),
                         columns=pd.Index(np.asarray(genes[wanted], dtype=object), name="ensg_id"))
    return CombinedGenes(table, duplicates)
